/*
 * test_dns - the resolver module against a real server: NSD on
 * 127.0.0.1 on a free port, serving test zones from unit_tmpdir().
 *
 * var_dns_servers points at it before the first lookup, so no query
 * leaves loopback.  Covered: A (several), AAAA, MX with preferences, TXT
 * (split strings joined, several records, empty, too big for UDP), PTR,
 * CNAME chains, NXDOMAIN and no data (not found), a zone the server
 * refuses (try again), dns_domain_exists() for MX, A only, AAAA only,
 * the null MX, a name without address records and a missing name, and
 * bad entries in dns_servers.  NSD that cannot start fails the test.
 */
#include "unit.h"

#include <fcntl.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#include "mail/dns.h"
#include "mail/params.h"
#include "util/argv.h"

static pid_t nsd_pid;
static int nsd_port;
static char nsd_servers[64];

static const char zone_text[] =
    "$ORIGIN example.test.\n"
    "$TTL 300\n"
    "@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n"
    "@ IN NS ns\n"
    "ns IN A 127.0.0.1\n"
    "@ IN A 192.0.2.1\n"
    "@ IN AAAA 2001:db8::1\n"
    "@ IN MX 20 mx2.example.test.\n"
    "@ IN MX 10 mx1\n"
    "mx1 IN A 192.0.2.10\n"
    "mx2 IN A 192.0.2.11\n"
    "multi IN A 192.0.2.20\n"
    "multi IN A 192.0.2.21\n"
    "multi IN A 192.0.2.22\n"
    "aonly IN A 192.0.2.30\n"
    "v6only IN AAAA 2001:db8::2\n"
    "alias IN CNAME aonly\n"
    "mxalias IN CNAME example.test.\n"
    "nullmx IN MX 0 .\n"
    "nullmx IN A 192.0.2.40\n"
    "nullplus IN MX 0 .\n"
    "nullplus IN MX 10 mx1\n"
    "txtonly IN TXT \"no mail here\"\n"
    "spf IN TXT \"v=spf1 \" \"ip4:192.0.2.0/24\" \" -all\"\n"
    "two IN TXT \"one\"\n"
    "two IN TXT \"two\"\n"
    "emptytxt IN TXT \"\"\n"
    "quoted IN TXT \"a \\\"b\\\" c\"\n";

static const char rev_text[] =
    "$ORIGIN 2.0.192.in-addr.arpa.\n"
    "$TTL 300\n"
    "@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n"
    "@ IN NS ns.example.test.\n"
    "1 IN PTR example.test.\n"
    "10 IN PTR mx1.example.test.\n"
    "10 IN PTR mail.example.test.\n";

/* A port free for UDP and TCP on 127.0.0.1 (racy, so callers retry). */
static int free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (udp >= 0 && tcp >= 0
        && bind(udp, (struct sockaddr *) &sin, sizeof(sin)) == 0
        && getsockname(udp, (struct sockaddr *) &sin, &len) == 0
        && bind(tcp, (struct sockaddr *) &sin, sizeof(sin)) == 0)
        port = ntohs(sin.sin_port);
    if (udp >= 0)
        close(udp);
    if (tcp >= 0)
        close(tcp);
    return port;
}

/* Is the server answering for example.test yet?  One UDP query. */
static int nsd_answers(void)
{
    /* By hand: res_mkquery() would set up glibc's global resolver. */
    static const unsigned char query[] =
        "\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        "\x07" "example" "\x04" "test" "\x00" "\x00\x06" "\x00\x01";
    unsigned char reply[4096];
    struct sockaddr_in sin;
    struct pollfd pfd;
    ns_msg msg;
    ssize_t n;
    int ok = 0;
    int fd;

    if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
        return 0;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short) nsd_port);
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (sendto(fd, query, sizeof(query) - 1, 0, (struct sockaddr *) &sin,
               sizeof(sin)) == (ssize_t) sizeof(query) - 1
        && poll(&pfd, 1, 200) == 1
        && (n = recv(fd, reply, sizeof(reply), 0)) > 0
        && ns_initparse(reply, (int) n, &msg) == 0
        && ns_msg_getflag(msg, ns_f_rcode) == ns_r_noerror
        && ns_msg_count(msg, ns_s_an) > 0)
        ok = 1;
    close(fd);
    return ok;
}

/* Stop NSD: TERM (it stops its children), KILL if it does not go. */
static void nsd_stop(void)
{
    int status;

    if (nsd_pid <= 0)
        return;
    kill(nsd_pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        struct timespec ts = {0, 50 * 1000000L};

        if (waitpid(nsd_pid, &status, WNOHANG) == nsd_pid) {
            nsd_pid = 0;
            return;
        }
        nanosleep(&ts, NULL);
    }
    kill(nsd_pid, SIGKILL);
    waitpid(nsd_pid, &status, 0);
    nsd_pid = 0;
}

static void dump_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char line[512];

    if (fp == NULL)
        return;
    while (fgets(line, sizeof(line), fp) != NULL)
        fputs(line, stderr);
    fclose(fp);
}

/* Start NSD on a free port; 0, or -1 with a message on stderr. */
static int nsd_start(void)
{
    const char *dir = unit_tmpdir();
    STRBUF *conf = strbuf_alloc(1024);
    STRBUF *path = strbuf_alloc(128);
    char *conf_path;

    strbuf_set(conf, zone_text);
    strbuf_cat(conf, "big IN TXT");
    for (int i = 0; i < 8; i++) {
        strbuf_cat(conf, " \"");
        for (int j = 0; j < 255; j++)
            strbuf_addch(conf, 'a' + i);
        strbuf_cat(conf, "\"");
    }
    strbuf_cat(conf, "\n");
    unit_write_file("example.test.zone", conf->data);
    unit_write_file("rev.zone", rev_text);
    for (int attempt = 0; attempt < 5; attempt++) {
        long long waited = 0;
        int status;

        if ((nsd_port = free_port()) < 0) {
            perror("free_port");
            break;
        }
        strbuf_printf(conf,
                      "server:\n"
                      "    ip-address: 127.0.0.1@%d\n"
                      "    port: %d\n"
                      "    username: \"\"\n"
                      "    chroot: \"\"\n"
                      "    database: \"\"\n"
                      "    zonesdir: \"%s\"\n"
                      "    zonelistfile: \"%s/zone.list\"\n"
                      "    xfrdfile: \"%s/xfrd.state\"\n"
                      "    xfrdir: \"%s\"\n"
                      "    pidfile: \"%s/nsd.pid\"\n"
                      "    logfile: \"%s/nsd.log\"\n"
                      "    server-count: 1\n"
                      "    do-ip4: yes\n"
                      "    do-ip6: no\n"
                      "    verbosity: 1\n"
                      "remote-control:\n"
                      "    control-enable: no\n"
                      "zone:\n"
                      "    name: \"example.test\"\n"
                      "    zonefile: \"%s/example.test.zone\"\n"
                      "zone:\n"
                      "    name: \"2.0.192.in-addr.arpa\"\n"
                      "    zonefile: \"%s/rev.zone\"\n",
                      nsd_port, nsd_port, dir, dir, dir, dir, dir, dir, dir,
                      dir);
        conf_path = strdup(unit_write_file("nsd.conf", conf->data));
        strbuf_printf(path, "%s/nsd.out", dir);
        fflush(stdout);
        fflush(stderr);
        if ((nsd_pid = fork()) < 0) {
            perror("fork");
            free(conf_path);
            break;
        }
        if (nsd_pid == 0) {
            int fd = open(path->data, O_WRONLY | O_CREAT | O_APPEND, 0600);

            /* Never outlive the test, even when it crashes. */
            (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
            }
            execlp("nsd", "nsd", "-d", "-c", conf_path, (char *) NULL);
            perror("exec nsd");
            _exit(127);
        }
        free(conf_path);
        /* Ready when it answers; gone when it exited (port taken?). */
        while (waited < 10000) {
            struct timespec ts = {0, 50 * 1000000L};

            if (waitpid(nsd_pid, &status, WNOHANG) == nsd_pid) {
                nsd_pid = 0;
                break;
            }
            if (nsd_answers()) {
                strbuf_free(&conf);
                strbuf_free(&path);
                return 0;
            }
            nanosleep(&ts, NULL);
            waited += 250;                      /* poll + sleep */
        }
        nsd_stop();
    }
    fprintf(stderr, "test_dns: cannot start nsd; see %s/nsd.out and "
            "%s/nsd.log\n", dir, dir);
    strbuf_printf(path, "%s/nsd.out", dir);
    dump_file(path->data);
    strbuf_printf(path, "%s/nsd.log", dir);
    dump_file(path->data);
    strbuf_free(&conf);
    strbuf_free(&path);
    return -1;
}

static int setup(void **state)
{
    (void) state;
    /* Before anything can query: only the test server, on loopback. */
    var_dns_servers = "127.0.0.1:1";
    if (nsd_start() < 0)
        return -1;
    snprintf(nsd_servers, sizeof(nsd_servers), "127.0.0.1:%d", nsd_port);
    var_dns_servers = nsd_servers;
    return 0;
}

static int teardown(void **state)
{
    (void) state;
    nsd_stop();
    return 0;
}

/* Look up name/type; the answers sorted and joined with "|". */
static int lookup(const char *name, int type, const char **joined_r)
{
    static STRBUF *joined;
    static STRBUF *why;
    ARGV *answers = argv_alloc(4);
    int rc;

    if (joined == NULL) {
        joined = strbuf_alloc(64);
        why = strbuf_alloc(64);
    }
    strbuf_reset(why);
    argv_add(answers, "stale");
    rc = dns_lookup(name, type, answers, why);
    argv_sort(answers);
    strbuf_reset(joined);
    for (size_t i = 0; i < answers->argc; i++)
        strbuf_printf_append(joined, "%s%s", i ? "|" : "", answers->argv[i]);
    if (rc == DNS_FOUND)
        assert_true(answers->argc > 0);
    else
        assert_int_equal(answers->argc, 0);
    if (rc != DNS_FOUND && why->len == 0)
        fail_msg("%s: no reason given", name);
    if (rc != DNS_FOUND)
        strbuf_set(joined, why->data);
    argv_free(&answers);
    if (joined_r)
        *joined_r = joined->data;
    return rc;
}

static void expect(const char *name, int type, const char *want)
{
    const char *got;
    int rc = lookup(name, type, &got);

    if (rc != DNS_FOUND)
        fail_msg("%s/%d: %d (%s)", name, type, rc, got);
    assert_string_equal(got, want);
}

static void test_addresses(void **state)
{
    (void) state;
    expect("example.test", ns_t_a, "192.0.2.1");
    expect("EXAMPLE.Test", ns_t_a, "192.0.2.1");
    expect("example.test.", ns_t_a, "192.0.2.1");
    expect("multi.example.test", ns_t_a, "192.0.2.20|192.0.2.21|192.0.2.22");
    expect("example.test", ns_t_aaaa, "2001:db8::1");
    expect("v6only.example.test", ns_t_aaaa, "2001:db8::2");
    /* A CNAME is followed; only records of the asked type come back. */
    expect("alias.example.test", ns_t_a, "192.0.2.30");
    expect("alias.example.test", ns_t_cname, "aonly.example.test");
    expect("mxalias.example.test", ns_t_mx,
           "10 mx1.example.test|20 mx2.example.test");
}

static void test_mx(void **state)
{
    (void) state;
    expect("example.test", ns_t_mx,
           "10 mx1.example.test|20 mx2.example.test");
    expect("nullmx.example.test", ns_t_mx, "0 .");
    expect("nullplus.example.test", ns_t_mx, "0 .|10 mx1.example.test");
}

static void test_txt_ptr(void **state)
{
    STRBUF *want = strbuf_alloc(64);
    const char *got;

    (void) state;
    expect("spf.example.test", ns_t_txt, "v=spf1 ip4:192.0.2.0/24 -all");
    expect("two.example.test", ns_t_txt, "one|two");
    expect("txtonly.example.test", ns_t_txt, "no mail here");
    expect("quoted.example.test", ns_t_txt, "a \"b\" c");
    assert_int_equal(lookup("emptytxt.example.test", ns_t_txt, &got),
                     DNS_FOUND);
    assert_string_equal(got, "");
    expect("1.2.0.192.in-addr.arpa", ns_t_ptr, "example.test");
    expect("10.2.0.192.in-addr.arpa", ns_t_ptr,
           "mail.example.test|mx1.example.test");
    /* Too big for UDP: the TCP retry goes to the same port. */
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 255; j++)
            strbuf_addch(want, 'a' + i);
    expect("big.example.test", ns_t_txt, want->data);
    strbuf_free(&want);
}

static void test_not_found(void **state)
{
    const char *got;

    (void) state;
    /* NXDOMAIN. */
    assert_int_equal(lookup("nosuch.example.test", ns_t_a, &got),
                     DNS_NOTFOUND);
    assert_non_null(strstr(got, "nosuch.example.test"));
    assert_int_equal(lookup("a.b.nosuch.example.test", ns_t_mx, &got),
                     DNS_NOTFOUND);
    assert_int_equal(lookup("99.2.0.192.in-addr.arpa", ns_t_ptr, &got),
                     DNS_NOTFOUND);
    /* The name exists, without records of that type. */
    assert_int_equal(lookup("aonly.example.test", ns_t_aaaa, &got),
                     DNS_NOTFOUND);
    assert_non_null(strstr(got, "aonly.example.test"));
    assert_int_equal(lookup("aonly.example.test", ns_t_mx, &got),
                     DNS_NOTFOUND);
    assert_int_equal(lookup("v6only.example.test", ns_t_a, &got),
                     DNS_NOTFOUND);
    assert_int_equal(lookup("txtonly.example.test", ns_t_a, &got),
                     DNS_NOTFOUND);
    assert_int_equal(lookup("example.test", ns_t_ptr, &got), DNS_NOTFOUND);
    /* Only a CNAME in the answer: none of the asked type. */
    assert_int_equal(lookup("alias.example.test", ns_t_mx, &got),
                     DNS_NOTFOUND);
    assert_int_equal(lookup("alias.example.test", ns_t_txt, &got),
                     DNS_NOTFOUND);
    assert_int_equal(lookup("alias.example.test", ns_t_aaaa, &got),
                     DNS_NOTFOUND);
}

static void test_refused(void **state)
{
    const char *got;
    time_t start = time(NULL);

    (void) state;
    /* A zone the server does not serve: REFUSED, at once. */
    assert_int_equal(lookup("example.org", ns_t_a, &got), DNS_RETRY);
    assert_non_null(strstr(got, "example.org"));
    assert_int_equal(lookup("www.example.net", ns_t_mx, &got), DNS_RETRY);
    assert_int_equal(lookup("3.2.0.198.in-addr.arpa", ns_t_ptr, &got),
                     DNS_RETRY);
    assert_true(time(NULL) - start < 3);
}

static void test_domain_exists(void **state)
{
    (void) state;
    assert_int_equal(dns_domain_exists("example.test"), DNS_FOUND);
    assert_int_equal(dns_domain_exists("aonly.example.test"), DNS_FOUND);
    assert_int_equal(dns_domain_exists("v6only.example.test"), DNS_FOUND);
    assert_int_equal(dns_domain_exists("alias.example.test"), DNS_FOUND);
    assert_int_equal(dns_domain_exists("mx1.example.test"), DNS_FOUND);
    /* RFC 7505: a lone "0 ." MX takes no mail, its A record is moot. */
    assert_int_equal(dns_domain_exists("nullmx.example.test"), DNS_NOTFOUND);
    /* Not alone: an ordinary MX list. */
    assert_int_equal(dns_domain_exists("nullplus.example.test"), DNS_FOUND);
    /* A name without MX, A or AAAA; a name that does not exist. */
    assert_int_equal(dns_domain_exists("txtonly.example.test"),
                     DNS_NOTFOUND);
    assert_int_equal(dns_domain_exists("nosuch.example.test"), DNS_NOTFOUND);
    /* Refused: try again, not "does not exist". */
    assert_int_equal(dns_domain_exists("example.org"), DNS_RETRY);
}

/* Bad dns_servers entries are skipped with a warning (in a child, before
 * the parent's first lookup: the resolver is set up once per process). */
static void child_bad_servers(void *arg)
{
    static STRBUF *servers;
    static ARGV *answers;
    static STRBUF *why;

    (void) arg;
    servers = strbuf_alloc(128);
    answers = argv_alloc(2);
    why = strbuf_alloc(64);
    strbuf_printf(servers, "bogus 127.0.0.1:0 127.0.0.1:99999 "
                  "[::1]:%d ::1 127.0.0.1:x, 127.0.0.1:%d", nsd_port,
                  nsd_port);
    var_dns_servers = servers->data;
    unit_log_reset();
    if (dns_lookup("example.test", ns_t_a, answers, why) != DNS_FOUND
        || strcmp(answers->argv[0], "192.0.2.1") != 0)
        _exit(1);
    fputs(unit_log->data, stderr);
    exit(0);                            /* atexit: the resolver's cleanup */
}

/*
 * Only bad entries: every lookup fails, none goes to the system's
 * resolvers.  The child has a network namespace of its own (no network
 * at all), so that a broken module cannot send a query anywhere either.
 */
static void child_no_servers(void *arg)
{
    static ARGV *answers;
    static STRBUF *why;

    (void) arg;
    if (unshare(CLONE_NEWNET) < 0)
        _exit(3);
    answers = argv_alloc(2);
    why = strbuf_alloc(64);
    var_dns_servers = "bogus, [::1]:53";
    unit_log_reset();
    for (int i = 0; i < 2; i++)
        if (dns_lookup("example.test", ns_t_a, answers, why) != DNS_RETRY
            || strstr(why->data, "dns_servers") == NULL)
            _exit(1);
    if (dns_domain_exists("example.test") != DNS_RETRY)
        _exit(1);
    fputs(unit_log->data, stderr);
    exit(0);                            /* atexit: the resolver's cleanup */
}

static void test_no_servers(void **state)
{
    STRBUF *err = strbuf_alloc(256);
    int status;

    (void) state;
    status = unit_fork(child_no_servers, NULL, err);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        strbuf_free(&err);
        skip();                                 /* not root */
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child failed: %s", err->data);
    assert_non_null(strstr(err->data, "bogus"));
    strbuf_free(&err);
}

static void test_bad_servers(void **state)
{
    STRBUF *err = strbuf_alloc(256);
    int status;

    (void) state;
    status = unit_fork(child_bad_servers, NULL, err);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child failed: %s", err->data);
    assert_non_null(strstr(err->data, "\"bogus\""));
    assert_non_null(strstr(err->data, "127.0.0.1:0"));
    assert_non_null(strstr(err->data, "127.0.0.1:99999"));
    assert_non_null(strstr(err->data, "127.0.0.1:x"));
    assert_non_null(strstr(err->data, "::1"));
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First: their children must set up their resolvers. */
        cmocka_unit_test(test_bad_servers),
        cmocka_unit_test(test_no_servers),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_mx),
        cmocka_unit_test(test_txt_ptr),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_domain_exists),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
