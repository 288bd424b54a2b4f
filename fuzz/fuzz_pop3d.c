/*
 * fuzz_pop3d - the POP3 server's command reader and both states of a
 * session: AUTHORIZATION (pop3d_login(): CAPA, USER/PASS, AUTH with
 * libsasl2 against a real sasldb, STLS, QUIT) and, once a login
 * succeeds, TRANSACTION and UPDATE (pop3d_mail() on a small Maildir).
 *
 * pop3d/pop3d.c is compiled into this file (its main() renamed) for the
 * command reader it shares with the other pop3d sources, which are
 * linked as objects (see the Makefile's fuzz target).  The login and
 * mail halves run in this one process, one after the other, on the same
 * stream, as the login process's relay joins them in production; no
 * process is forked and no ids change.
 *
 * Each input is what one client sends: a helper thread writes it to one
 * end of a socketpair, shuts down its write side and reads the replies
 * until pop3d closes; the session runs on the other end.  The user
 * fuzz@fuzz.example has the password "fuzz-secret" (PLAIN and LOGIN are
 * offered), so "USER fuzz@fuzz.example" "PASS fuzz-secret" or
 * "AUTH PLAIN AGZ1enpAZnV6ei5leGFtcGxlAGZ1enotc2VjcmV0" gets into the
 * mailbox: four messages (dot lines, CRLF and LF line ends, a bare CR,
 * no final newline), restored before each input that needs them.
 *
 * An input whose first byte is below 0x20 uses that byte as options (the
 * byte is not sent):
 *   0x01  the client is 192.0.2.1 on 192.0.2.110 (not the server's own
 *         address): no plaintext login before TLS
 *   0x02  pop3d_tls_auth_only = no
 *   0x04  pop3d_error_limit = 3, pop3d_auth_failure_limit = 1
 *
 * Properties checked (abort() on failure): the first reply line is the
 * "+OK" greeting; every LF pop3d sends ends a CRLF; the replies end with
 * a complete line.  Nothing may crash, leak or hang.  The session runs
 * in /tmp/fuzz-pop3d.PID.XXXXXX (removed at exit, or by the next run
 * after a crash); libFuzzer's own paths stay relative to where it was
 * started.  FUZZ_POP3D_TRACE=1 in the environment prints pop3d's log and
 * replies to stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* pop3d.c, without its main(). */
int     pop3d_main_unused(int argc, char **argv);

#define main pop3d_main_unused
#include "../pop3d/pop3d.c"
#undef main

#include "sasl/xsasl.h"
#include "util/argv.h"
#include "util/xmalloc.h"

#define FUZZ_USER           "fuzz@fuzz.example"
#define FUZZ_PASSWORD       "fuzz-secret"
#define FUZZ_REPLY_MAX      (1024 * 1024)       /* replies kept to check */

#define FUZZ_OPT_REMOTE     0x01
#define FUZZ_OPT_OPEN       0x02
#define FUZZ_OPT_STRICT     0x04

static char fuzz_dir[64];
static int fuzz_home_fd = -1;           /* where libFuzzer was started */
static int fuzz_trace;
static char **fuzz_argv;                /* argv with absolute artifacts */

static struct {
    int     tls_auth_only;
    int     error_limit;
    int     auth_failure_limit;
} fuzz_defaults;

/* The mailbox: file names in cur/ and their text. */
static const struct {
    const char *name;
    const char *text;
} fuzz_msgs[] = {
    {"1700000000.M1P1Q1.fuzz,S=58:2,",
     "From: a@example.org\nSubject: one\n\n.dot\n..two\n.\nlast\n"},
    {"1700000000.M2P1Q1.fuzz,S=40:2,S",
     "Subject: crlf\r\n\r\nline one\r\nline two\r\n"},
    {"1700000000.M3P1Q1.fuzz:2,",
     "Subject: no final newline\n\nbare\rcr\nend"},
    {"1700000000.M4P1Q1.fuzz:2,", "Subject: only a header\n"},
};

/*
 * Cyrus SASL's LOGIN plugin (2.1.28) leaks the password buffer when the
 * user name it was given does not canonicalize (an empty one): not ours.
 */
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void)
{
    return "leak:liblogin.so\n";
}

static void fuzz_quiet(const char *severity, const char *text)
{
    if (fuzz_trace)
        fprintf(stderr, "log: %s%s%s\n", severity, *severity ? ": " : "",
                text);
}

static void fuzz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_pop3d: %s: %s\n", what, detail);
    abort();
}

/* --- setup ------------------------------------------------------------ */

static int fuzz_rm(const char *path, const struct stat *st, int type,
                   struct FTW *ftw)
{
    (void) st;
    (void) ftw;
    if (type == FTW_DP)
        (void) rmdir(path);
    else
        (void) unlink(path);
    return 0;
}

static void fuzz_remove_tree(const char *dir)
{
    (void) nftw(dir, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void fuzz_remove_dir(void)
{
    if (fuzz_dir[0])
        fuzz_remove_tree(fuzz_dir);
}

/* The directories of fuzzers that are gone (the pid is in the name). */
static void fuzz_remove_stale_dirs(void)
{
    DIR *dp = opendir("/tmp");
    struct dirent *de;
    STRBUF *path = strbuf_alloc(64);

    if (dp == NULL)
        return;
    while ((de = readdir(dp)) != NULL) {
        long pid;
        char *end;

        if (strncmp(de->d_name, "fuzz-pop3d.", 11) != 0)
            continue;
        pid = strtol(de->d_name + 11, &end, 10);
        if (end == de->d_name + 11 || *end != '.' || pid <= 0
            || kill((pid_t) pid, 0) == 0 || errno != ESRCH)
            continue;
        strbuf_printf(path, "/tmp/%s", de->d_name);
        fuzz_remove_tree(path->data);
    }
    closedir(dp);
    strbuf_free(&path);
}

/*
 * Crash artifacts are written by libFuzzer's handlers while the session
 * runs in the Maildir: make their location absolute.
 */
static void fuzz_fix_artifact_args(int *argc, char ***argv)
{
    static const char *const flags[] = {
        "-artifact_prefix=", "-exact_artifact_path=",
    };
    char *cwd = getcwd(NULL, 0);
    int have_prefix = 0;
    int n = 0;

    if (cwd == NULL)
        fuzz_fail("getcwd", strerror(errno));
    fuzz_argv = xcalloc((size_t) *argc + 2, sizeof(char *));
    for (int i = 0; i < *argc; i++) {
        const char *arg = (*argv)[i];

        fuzz_argv[n] = (*argv)[i];
        for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
            size_t len = strlen(flags[f]);

            if (strncmp(arg, flags[f], len) != 0)
                continue;
            have_prefix |= f == 0;
            if (arg[len] != '/') {
                STRBUF *abs = strbuf_alloc(256);

                strbuf_printf(abs, "%.*s%s/%s", (int) len, arg, cwd,
                              arg + len);
                fuzz_argv[n] = strbuf_export(&abs);
            }
        }
        n++;
    }
    if (!have_prefix) {
        STRBUF *abs = strbuf_alloc(256);

        strbuf_printf(abs, "-artifact_prefix=%s/", cwd);
        fuzz_argv[n++] = strbuf_export(&abs);
    }
    fuzz_argv[n] = NULL;
    *argc = n;
    *argv = fuzz_argv;
    free(cwd);
}

static void fuzz_write_file(const char *name, const char *text)
{
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text);

    if (fd < 0 || write(fd, text, len) != (ssize_t) len || close(fd) < 0)
        fuzz_fail("write", name);
}

/* Put back what an earlier input deleted (new/ stays empty). */
static void fuzz_restore_maildir(void)
{
    STRBUF *path = strbuf_alloc(128);
    struct stat st;

    for (size_t i = 0; i < sizeof(fuzz_msgs) / sizeof(fuzz_msgs[0]); i++) {
        strbuf_printf(path, "%s/mail/cur/%s", fuzz_dir, fuzz_msgs[i].name);
        if (stat(path->data, &st) < 0)
            fuzz_write_file(path->data, fuzz_msgs[i].text);
    }
    strbuf_free(&path);
}

static void *fuzz_helper(void *arg);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ARGV *overrides = argv_alloc(16);
    STRBUF *err = strbuf_alloc(128);
    STRBUF *setting = strbuf_alloc(128);

    fuzz_trace = getenv("FUZZ_POP3D_TRACE") != NULL;
    msg_set_hook(fuzz_quiet);
    signal(SIGPIPE, SIG_IGN);
    fuzz_fix_artifact_args(argc, argv);
    if ((fuzz_home_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        fuzz_fail("open .", strerror(errno));
    fuzz_remove_stale_dirs();
    snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/fuzz-pop3d.%ld.XXXXXX",
             (long) getpid());
    if (mkdtemp(fuzz_dir) == NULL || chdir(fuzz_dir) < 0)
        fuzz_fail("temporary directory", strerror(errno));
    atexit(fuzz_remove_dir);
    if (mkdir("mail", 0700) < 0 || mkdir("mail/cur", 0700) < 0
        || mkdir("mail/new", 0700) < 0 || mkdir("mail/tmp", 0700) < 0)
        fuzz_fail("mkdir", strerror(errno));
    fuzz_restore_maildir();

    argv_add(overrides, "myhostname=pop.fuzz.example");
    argv_add(overrides, "sasl_mech_list=PLAIN LOGIN");
    argv_add(overrides, "pop3d_tls_security_level=none");
    argv_add(overrides, "pop3d_auth_failure_delay=0");
    argv_add(overrides, "pop3d_timeout=5");
    strbuf_printf(setting, "sasl_db_path=%s/sasldb2", fuzz_dir);
    argv_add(overrides, setting->data);
    strbuf_printf(setting, "queue_directory=%s", fuzz_dir);
    argv_add(overrides, setting->data);
    strbuf_printf(setting, "config_directory=%s", fuzz_dir);
    argv_add(overrides, setting->data);
    /* No main.cf in the temporary directory: defaults and overrides. */
    if (params_load_r(fuzz_dir, overrides, PARAMS_FLAG_MISSING_OK, err) < 0)
        fuzz_fail("params_load", err->data);
    if (pop3d_login_pre_init() < 0)
        fuzz_fail("pop3d_login_pre_init", "configuration error");
    /* The password store, as postern user add makes it. */
    if (xsasl_user_set(FUZZ_USER, FUZZ_PASSWORD, err) < 0)
        fuzz_fail("xsasl_user_set", err->data);
    fuzz_defaults.tls_auth_only = var_pop3d_tls_auth_only;
    fuzz_defaults.error_limit = var_pop3d_error_limit;
    fuzz_defaults.auth_failure_limit = var_pop3d_auth_failure_limit;
    argv_free(&overrides);
    strbuf_free(&err);
    strbuf_free(&setting);
    if (fchdir(fuzz_home_fd) < 0)
        fuzz_fail("fchdir", strerror(errno));
    return 0;
}

/* --- the client side -------------------------------------------------- */

typedef struct FUZZ_PEER {
    int     fd;                         /* the client's end */
    const uint8_t *data;
    size_t  len;
    STRBUF *replies;                    /* what pop3d said, up to a cut */
    int     cut;                        /* replies stopped at the limit */
} FUZZ_PEER;

/*
 * Write the input (while reading replies, so that neither side blocks
 * the other), shut down the write side, then read until pop3d closes.
 */
static void *fuzz_helper(void *arg)
{
    FUZZ_PEER *p = arg;
    size_t sent = 0;
    int shut = 0;
    char buf[8192];

    for (;;) {
        struct pollfd pfd;

        if (sent == p->len && !shut) {
            (void) shutdown(p->fd, SHUT_WR);
            shut = 1;
        }
        pfd.fd = p->fd;
        pfd.events = POLLIN | (shut ? 0 : POLLOUT);
        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            fuzz_fail("poll", strerror(errno));
        }
        if (pfd.revents & POLLOUT) {
            ssize_t n = send(p->fd, p->data + sent, p->len - sent,
                             MSG_DONTWAIT | MSG_NOSIGNAL);

            if (n > 0)
                sent += (size_t) n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                sent = p->len;          /* pop3d hung up */
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);

            if (n > 0) {
                if (!p->cut && p->replies->len + (size_t) n <= FUZZ_REPLY_MAX)
                    strbuf_append(p->replies, buf, (size_t) n);
                else
                    p->cut = 1;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                break;                  /* pop3d closed its end */
            }
        }
    }
    return NULL;
}

static void fuzz_check_replies(const STRBUF *r, int cut)
{
    if (r->len < 5 || memcmp(r->data, "+OK ", 4) != 0)
        fuzz_fail("reply", "no +OK greeting");
    for (size_t i = 0; i < r->len; i++)
        if (r->data[i] == '\n' && (i == 0 || r->data[i - 1] != '\r'))
            fuzz_fail("reply", "LF without CR");
    if (!cut && r->data[r->len - 1] != '\n')
        fuzz_fail("reply", "incomplete last line");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SERVER_CLIENT client;
    FUZZ_PEER peer;
    pthread_t helper;
    STREAM *s = NULL;
    STRBUF *user = strbuf_alloc(64);
    STRBUF *path = strbuf_alloc(128);
    int opts = 0;
    int sv[2];

    msg_set_hook(fuzz_quiet);
    if (size > 0 && data[0] < 0x20) {
        opts = data[0];
        data++;
        size--;
    }
    var_pop3d_tls_auth_only = (opts & FUZZ_OPT_OPEN)
        ? 0 : fuzz_defaults.tls_auth_only;
    var_pop3d_error_limit = (opts & FUZZ_OPT_STRICT)
        ? 3 : fuzz_defaults.error_limit;
    var_pop3d_auth_failure_limit = (opts & FUZZ_OPT_STRICT)
        ? 1 : fuzz_defaults.auth_failure_limit;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        fuzz_fail("socketpair", strerror(errno));
    memset(&peer, 0, sizeof(peer));
    peer.fd = sv[1];
    peer.data = data;
    peer.len = size;
    peer.replies = strbuf_alloc(1024);
    if (pthread_create(&helper, NULL, fuzz_helper, &peer) != 0)
        fuzz_fail("pthread_create", "failed");

    memset(&client, 0, sizeof(client));
    client.fd = sv[0];
    client.wfd = sv[0];
    client.family = AF_INET;
    snprintf(client.addr, sizeof(client.addr), "%s",
             (opts & FUZZ_OPT_REMOTE) ? "192.0.2.1" : "127.0.0.1");
    client.port = 54321;
    snprintf(client.local_addr, sizeof(client.local_addr), "%s",
             (opts & FUZZ_OPT_REMOTE) ? "192.0.2.110" : "127.0.0.1");
    client.local_port = 110;
    if (pop3d_login(&client, &s, user) == 1) {
        /* The mail process: in the Maildir, as login.c runs it. */
        fuzz_restore_maildir();
        strbuf_printf(path, "%s/mail", fuzz_dir);
        if (chdir(path->data) < 0)
            fuzz_fail("chdir", strerror(errno));
        pop3d_mail(s, user->data, client.addr);
        if (fchdir(fuzz_home_fd) < 0)
            fuzz_fail("fchdir", strerror(errno));
    }
    if (s) {
        (void) stream_flush(s);
        pop3d_logout(s);
        stream_free(&s);
    }
    close(sv[0]);                       /* the skeleton closes client->fd */
    if (pthread_join(helper, NULL) != 0)
        fuzz_fail("pthread_join", "failed");
    close(sv[1]);
    if (fuzz_trace)
        fprintf(stderr, "replies:\n%.*s", (int) peer.replies->len,
                peer.replies->data);
    fuzz_check_replies(peer.replies, peer.cut);
    strbuf_free(&peer.replies);
    strbuf_free(&user);
    strbuf_free(&path);
    return 0;
}
