/*
 * test_anvil_clnt - the anvil client (lib/mail/anvil_clnt.c) against a
 * scripted fake anvil in a child process: good replies, refusals,
 * malformed replies, a connection lost before the reply (one retry on a
 * fresh connection), an anvil that is not there, and bad idents; event
 * and lookup requests under the same rules.
 */
#include "unit.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "mail/anvil_clnt.h"
#include "mail/anvil_proto.h"
#include "mail/ipc.h"
#include "util/stream.h"

static char saved_cwd[4096];

static int setup(void **state)
{
    (void) state;
    if (getcwd(saved_cwd, sizeof(saved_cwd)) == NULL)
        return -1;
    if (chdir(unit_tmpdir()) < 0)
        return -1;
    (void) mkdir("private", 0755);
    (void) unlink("private/anvil");
    return 0;
}

static int teardown(void **state)
{
    (void) state;
    (void) unlink("private/anvil");
    return chdir(saved_cwd);
}

/*
 * The fake anvil answers each request with the next step of the script:
 *   "ok"       status=0 count=3 rate=7 (connect, lookup) / status=0
 *              rate=7 (event) / status=0 (disconnect)
 *   "fail"     status=-1
 *   "short"    status=0 only (count and/or rate missing)
 *   "negative" status=0 count=-1 rate=1
 *   "extra"    status=0 count=1 rate=1 bogus=1
 *   "huge"     a length prefix over the client's limit
 *   "close"    close the connection without a reply, take the next one
 * It checks each request strictly, takes a new connection when the
 * client closes one, and exits when the script ends.
 */
static void fake_anvil_serve(int lfd, const char *const *script)
{
    IPC_MSG *req = ipc_msg_alloc();
    IPC_MSG *reply = ipc_msg_alloc();
    STRBUF *err = strbuf_alloc(64);
    STREAM *s = NULL;

    while (*script) {
        const char *name = NULL;
        const char *ident = NULL;
        IPC_SPEC specs[] = {
            {ANVIL_ATTR_REQ, IPC_STR, 1, &name},
            {ANVIL_ATTR_IDENT, IPC_STR, 1, &ident},
            IPC_SPEC_END,
        };
        const char *step = *script++;
        int with_count;
        int with_rate;
        int rc;

        /* A client that closed its connection comes back on a new one. */
        do {
            if (s == NULL) {
                int fd = accept(lfd, NULL, NULL);

                if (fd < 0)
                    _exit(2);
                s = stream_open(fd, 10, 1024);
            }
            if ((rc = ipc_read(s, req, ANVIL_RECORD_MAX, err)) == 0)
                stream_close(&s);
        } while (rc == 0);
        if (rc < 0 || ipc_scan(req, specs, err) < 0)
            _exit(3);
        with_count = strcmp(name, ANVIL_REQ_CONNECT) == 0
            || strcmp(name, ANVIL_REQ_LOOKUP) == 0;
        with_rate = with_count || strcmp(name, ANVIL_REQ_EVENT) == 0;
        ipc_msg_reset(reply);
        if (strcmp(step, "close") == 0) {
            stream_close(&s);
            continue;
        } else if (strcmp(step, "huge") == 0) {
            stream_write(s, "\x7f\0\0\0", 4);
            (void) stream_flush(s);
            continue;
        } else if (strcmp(step, "fail") == 0) {
            ipc_put_long(reply, ANVIL_ATTR_STATUS, ANVIL_STAT_FAIL);
        } else {
            ipc_put_long(reply, ANVIL_ATTR_STATUS, ANVIL_STAT_OK);
            if (with_count && strcmp(step, "short") != 0)
                ipc_put_long(reply, ANVIL_ATTR_COUNT,
                             strcmp(step, "negative") == 0 ? -1 : 3);
            if (with_rate && strcmp(step, "short") != 0)
                ipc_put_long(reply, ANVIL_ATTR_RATE,
                             strcmp(step, "negative") == 0
                             && !with_count ? -1 : 7);
            if (strcmp(step, "extra") == 0)
                ipc_put_str(reply, "bogus", "1");
        }
        if (ipc_write(s, reply) < 0)
            _exit(4);
    }
    if (s)
        stream_close(&s);
    ipc_msg_free(&req);
    ipc_msg_free(&reply);
    strbuf_free(&err);
}

static pid_t fake_anvil_start(const char *const *script)
{
    struct sockaddr_un sun;
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    pid_t pid;

    assert_true(lfd >= 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, "private/anvil");     /* fits */
    (void) unlink(sun.sun_path);
    assert_int_equal(bind(lfd, (struct sockaddr *) &sun, sizeof(sun)), 0);
    assert_int_equal(listen(lfd, 8), 0);
    fflush(stdout);
    fflush(stderr);
    if ((pid = fork()) == 0) {
        fake_anvil_serve(lfd, script);
        close(lfd);
        _exit(0);
    }
    assert_true(pid > 0);
    close(lfd);
    return pid;
}

static void fake_anvil_wait(pid_t pid)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("fake anvil: status 0x%x", status);
    (void) unlink("private/anvil");
}

static void test_good_replies(void **state)
{
    static const char *const script[] = {"ok", "ok", "ok", NULL};
    STRBUF *err = strbuf_alloc(64);
    pid_t pid = fake_anvil_start(script);
    ANVIL_CLNT *a = anvil_clnt_open(err);
    int count = 0;
    int rate = 0;

    (void) state;
    assert_non_null(a);
    assert_int_equal(anvil_clnt_connect(a, "smtp:192.0.2.1", &count, &rate,
                                        err), 0);
    assert_int_equal(count, 3);
    assert_int_equal(rate, 7);
    assert_int_equal(anvil_clnt_disconnect(a, "smtp:192.0.2.1", err), 0);
    assert_int_equal(anvil_clnt_connect(a, "smtp:192.0.2.2", &count, &rate,
                                        err), 0);
    anvil_clnt_close(&a);
    assert_null(a);
    anvil_clnt_close(&a);               /* NULL is fine */
    fake_anvil_wait(pid);
    strbuf_free(&err);
}

/* A refusal keeps the connection: the next request uses it. */
static void test_refusal(void **state)
{
    static const char *const script[] = {"fail", "fail", "ok", NULL};
    STRBUF *err = strbuf_alloc(64);
    pid_t pid = fake_anvil_start(script);
    ANVIL_CLNT *a = anvil_clnt_open(err);
    int count = 0;
    int rate = 0;

    (void) state;
    assert_non_null(a);
    assert_int_equal(anvil_clnt_connect(a, "x", &count, &rate, err), -1);
    assert_string_equal(err->data, "anvil connect request failed: status -1");
    assert_int_equal(anvil_clnt_disconnect(a, "x", err), -1);
    assert_string_equal(err->data,
                        "anvil disconnect request failed: status -1");
    assert_int_equal(anvil_clnt_connect(a, "x", &count, &rate, err), 0);
    anvil_clnt_close(&a);
    fake_anvil_wait(pid);
    strbuf_free(&err);
}

/* Broken replies: each fails, the client reconnects for the next. */
static void test_malformed_replies(void **state)
{
    static const char *const script[] = {
        "short", "short", "negative", "negative", "extra", "extra",
        "huge", "huge", NULL,
    };
    static const char *const want[] = {
        "missing attribute \"count\"",
        "anvil reply: bad count -1",
        "unexpected attribute \"bogus\"",
        "exceeds the limit of 1024",
    };
    STRBUF *err = strbuf_alloc(64);
    pid_t pid = fake_anvil_start(script);
    ANVIL_CLNT *a = anvil_clnt_open(err);
    int count = 0;
    int rate = 0;

    (void) state;
    assert_non_null(a);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        /* Two attempts per call: the request is retried once. */
        assert_int_equal(anvil_clnt_connect(a, "x", &count, &rate, err), -1);
        if (strstr(err->data, want[i]) == NULL)
            fail_msg("got \"%s\", want \"%s\"", err->data, want[i]);
    }
    anvil_clnt_close(&a);
    fake_anvil_wait(pid);
    strbuf_free(&err);
}

/*
 * anvil went away (restart): the connect is retried on a new connection;
 * a disconnect is not, the broken connection released the count.
 */
static void test_lost_connection(void **state)
{
    static const char *const script[] = {"ok", "close", "ok", "close",
                                         NULL};
    STRBUF *err = strbuf_alloc(64);
    pid_t pid = fake_anvil_start(script);
    ANVIL_CLNT *a = anvil_clnt_open(err);
    int count = 0;
    int rate = 0;

    (void) state;
    assert_non_null(a);
    assert_int_equal(anvil_clnt_connect(a, "x", &count, &rate, err), 0);
    assert_int_equal(anvil_clnt_connect(a, "x", &count, &rate, err), 0);
    assert_int_equal(count, 3);
    assert_int_equal(anvil_clnt_disconnect(a, "x", err), -1);
    assert_string_equal(err->data,
                        "anvil disconnect reply: connection closed");
    assert_int_equal(anvil_clnt_disconnect(a, "x", err), -1);
    assert_string_equal(err->data,
                        "anvil disconnect: no connection to anvil");
    fake_anvil_wait(pid);
    /* Now nobody listens: the reconnect for a connect fails cleanly. */
    assert_int_equal(anvil_clnt_connect(a, "x", &count, &rate, err), -1);
    assert_non_null(strstr(err->data, "anvil service unavailable: connect "
                           "to private/anvil: "));
    anvil_clnt_close(&a);
    strbuf_free(&err);
}

/* Event and lookup: the numbers each needs, one retry, refusals. */
static void test_event_lookup(void **state)
{
    static const char *const script[] = {
        "ok", "ok", "fail", "fail", "close", "ok", "close", "ok",
        "short", "short", "negative", "negative", "short", "short", NULL,
    };
    STRBUF *err = strbuf_alloc(64);
    pid_t pid = fake_anvil_start(script);
    ANVIL_CLNT *a = anvil_clnt_open(err);
    int count = 0;
    int rate = 0;

    (void) state;
    assert_non_null(a);
    assert_int_equal(anvil_clnt_event(a, "auth:192.0.2.1", &rate, err), 0);
    assert_int_equal(rate, 7);
    rate = 0;
    assert_int_equal(anvil_clnt_lookup(a, "auth:192.0.2.1", &count, &rate,
                                       err), 0);
    assert_int_equal(count, 3);
    assert_int_equal(rate, 7);
    /* A refusal keeps the connection and is not retried. */
    assert_int_equal(anvil_clnt_event(a, "x", &rate, err), -1);
    assert_string_equal(err->data, "anvil event request failed: status -1");
    assert_int_equal(anvil_clnt_lookup(a, "x", &count, &rate, err), -1);
    assert_string_equal(err->data, "anvil lookup request failed: status -1");
    /* A lost connection: one retry on a fresh one, as for connect. */
    assert_int_equal(anvil_clnt_event(a, "x", &rate, err), 0);
    assert_int_equal(anvil_clnt_lookup(a, "x", &count, &rate, err), 0);
    /* Each must get the numbers it asked for, in range. */
    assert_int_equal(anvil_clnt_event(a, "x", &rate, err), -1);
    assert_non_null(strstr(err->data, "missing attribute \"rate\""));
    assert_int_equal(anvil_clnt_event(a, "x", &rate, err), -1);
    assert_string_equal(err->data, "anvil reply: bad rate -1");
    assert_int_equal(anvil_clnt_lookup(a, "x", &count, &rate, err), -1);
    assert_non_null(strstr(err->data, "missing attribute \"count\""));
    /* Bad idents never leave the client. */
    assert_int_equal(anvil_clnt_event(a, "", &rate, err), -1);
    assert_int_equal(anvil_clnt_lookup(a, "", &count, &rate, err), -1);
    anvil_clnt_close(&a);
    fake_anvil_wait(pid);
    strbuf_free(&err);
}

static void test_unreachable(void **state)
{
    STRBUF *err = strbuf_alloc(64);

    (void) state;
    (void) unlink("private/anvil");
    assert_null(anvil_clnt_open(err));
    assert_string_equal(err->data, "anvil service unavailable: connect to "
                        "private/anvil: No such file or directory");
    strbuf_free(&err);
}

/* Idents anvil would drop the connection for never leave the client. */
static void test_bad_ident(void **state)
{
    static const char *const script[] = {"ok", NULL};
    STRBUF *err = strbuf_alloc(64);
    STRBUF *longid = strbuf_alloc(600);
    pid_t pid = fake_anvil_start(script);
    ANVIL_CLNT *a = anvil_clnt_open(err);
    int count = 0;
    int rate = 0;

    (void) state;
    assert_non_null(a);
    for (int i = 0; i <= ANVIL_IDENT_MAX; i++)
        strbuf_addch(longid, 'x');
    assert_int_equal(anvil_clnt_connect(a, "", &count, &rate, err), -1);
    assert_string_equal(err->data, "anvil: ident of 0 bytes (allowed: "
                        "1..512)");
    assert_int_equal(anvil_clnt_connect(a, longid->data, &count, &rate,
                                        err), -1);
    assert_int_equal(anvil_clnt_disconnect(a, longid->data, err), -1);
    strbuf_truncate(longid, ANVIL_IDENT_MAX);
    assert_int_equal(anvil_clnt_connect(a, longid->data, &count, &rate,
                                        err), 0);
    anvil_clnt_close(&a);
    fake_anvil_wait(pid);
    strbuf_free(&longid);
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_replies),
        cmocka_unit_test(test_refusal),
        cmocka_unit_test(test_malformed_replies),
        cmocka_unit_test(test_lost_connection),
        cmocka_unit_test(test_event_lookup),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_bad_ident),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
