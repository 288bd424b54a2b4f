/*
 * test_deliver_req - the qmgr <-> delivery agent conversation: requests
 * and replies through a socketpair (every field, optional fields absent,
 * the recipient limit), strict refusal of malformed requests and replies
 * (each one built by hand), end of input, panics on requests and replies
 * our own code builds wrongly, Postfix's delay number format, the
 * delivery log line, and soft_bounce.
 */
#include "unit.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

#include "mail/deliver_req.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/queue_file.h"
#include "util/argv.h"
#include "util/stream.h"
#include "util/xmalloc.h"

#define QID     "4jbDdq6GYFz1bcV8"

typedef struct PAIR {
    int     fd[2];
    STREAM *w;                          /* qmgr's end */
    STREAM *r;                          /* the agent's end */
} PAIR;

static void pair_open(PAIR *p)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
    p->w = stream_open(p->fd[0], 5, 4096);
    p->r = stream_open(p->fd[1], 5, 4096);
}

static void pair_close_writer(PAIR *p)
{
    stream_close(&p->w);
}

static void pair_close(PAIR *p)
{
    if (p->w)
        stream_close(&p->w);
    stream_close(&p->r);
}

static DELIVER_REQUEST *full_request(void)
{
    DELIVER_REQUEST *req = deliver_req_alloc();

    req->queue_name = xstrdup("active");
    req->queue_id = xstrdup(QID);
    req->sender = xstrdup("alice@example.org");
    req->nexthop = xstrdup("mx.example.test");
    req->arrival.tv_sec = 1795738946;
    req->arrival.tv_usec = 12;
    req->active.tv_sec = 1795738947;
    req->active.tv_usec = 999999;
    req->dsn_envid = xstrdup("env-1");
    req->dsn_ret = xstrdup("hdrs");
    req->smtputf8 = 1;
    req->client_name = xstrdup("client.example.org");
    req->client_address = xstrdup("192.0.2.7");
    deliver_req_add_rcpt(req, "bob@example.test", 172, "Bob@Example.TEST",
                         "rfc822;Bob@Example.TEST", DSN_NOTIFY_FAILURE
                         | DSN_NOTIFY_DELAY);
    deliver_req_add_rcpt(req, "carol@example.test", 230, NULL, NULL, 0);
    deliver_req_add_rcpt(req, "d\xc3\xa9@example.test", 290, NULL, NULL,
                         DSN_NOTIFY_NEVER);
    return req;
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_same_request(const DELIVER_REQUEST *a,
                                const DELIVER_REQUEST *b)
{
    assert_string_equal(a->queue_name, b->queue_name);
    assert_string_equal(a->queue_id, b->queue_id);
    assert_string_equal(a->sender, b->sender);
    assert_string_equal(a->nexthop, b->nexthop);
    assert_int_equal(a->arrival.tv_sec, b->arrival.tv_sec);
    assert_int_equal(a->arrival.tv_usec, b->arrival.tv_usec);
    assert_int_equal(a->active.tv_sec, b->active.tv_sec);
    assert_int_equal(a->active.tv_usec, b->active.tv_usec);
    assert_str_or_null(a->dsn_envid, b->dsn_envid);
    assert_str_or_null(a->dsn_ret, b->dsn_ret);
    assert_int_equal(a->smtputf8, b->smtputf8);
    assert_str_or_null(a->client_name, b->client_name);
    assert_str_or_null(a->client_address, b->client_address);
    assert_int_equal(a->rcpt_count, b->rcpt_count);
    for (size_t i = 0; i < a->rcpt_count; i++) {
        assert_string_equal(a->rcpts[i].address, b->rcpts[i].address);
        assert_int_equal(a->rcpts[i].offset, b->rcpts[i].offset);
        assert_str_or_null(a->rcpts[i].orig, b->rcpts[i].orig);
        assert_str_or_null(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
        assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
    }
}

/* --- requests --------------------------------------------------------- */

static void test_request_round_trip(void **state)
{
    DELIVER_REQUEST *req = full_request();
    DELIVER_REQUEST *got = NULL;
    STRBUF *err = strbuf_alloc(64);
    PAIR p;

    (void) state;
    pair_open(&p);
    assert_int_equal(deliver_req_write(p.w, req), 0);
    assert_int_equal(deliver_req_read(p.r, &got, err), 1);
    assert_same_request(req, got);
    deliver_req_free(&got);
    assert_null(got);

    /* Only the required fields. */
    deliver_req_free(&req);
    req = deliver_req_alloc();
    req->queue_name = xstrdup("active");
    req->queue_id = xstrdup(QID);
    req->sender = xstrdup("");
    req->nexthop = xstrdup("");
    deliver_req_add_rcpt(req, "x@y", 1, NULL, NULL, 0);
    assert_int_equal(deliver_req_write(p.w, req), 0);
    assert_int_equal(deliver_req_read(p.r, &got, err), 1);
    assert_same_request(req, got);
    assert_null(got->dsn_envid);
    assert_null(got->rcpts[0].orig);
    assert_int_equal(got->arrival.tv_sec, 0);

    /* A clean end of input between requests. */
    pair_close_writer(&p);
    deliver_req_free(&got);
    assert_int_equal(deliver_req_read(p.r, &got, err), 0);
    assert_null(got);
    pair_close(&p);
    deliver_req_free(&req);
    strbuf_free(&err);
}

/* The largest request: DELIVER_RCPT_MAX recipients, written by a child. */
static void test_request_max_rcpts(void **state)
{
    DELIVER_REQUEST *req = deliver_req_alloc();
    DELIVER_REQUEST *got = NULL;
    STRBUF *err = strbuf_alloc(64);
    STRBUF *addr = strbuf_alloc(64);
    PAIR p;
    pid_t pid;
    int status;

    (void) state;
    req->queue_name = xstrdup("active");
    req->queue_id = xstrdup(QID);
    req->sender = xstrdup("s@x");
    req->nexthop = xstrdup("x");
    for (long i = 0; i < DELIVER_RCPT_MAX; i++) {
        strbuf_printf(addr, "user%ld@example.test", i);
        deliver_req_add_rcpt(req, addr->data, 100 + i * 40, addr->data,
                             NULL, 0);
    }
    pair_open(&p);
    if ((pid = fork()) == 0) {
        _exit(deliver_req_write(p.w, req) == 0 ? 0 : 1);
    }
    assert_int_equal(deliver_req_read(p.r, &got, err), 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
    assert_same_request(req, got);
    deliver_req_free(&got);
    pair_close(&p);
    deliver_req_free(&req);
    strbuf_free(&err);
    strbuf_free(&addr);
}

/*
 * Hand-made requests.  Each case: attributes of the head record as
 * "name=value" strings ending with NULL, then the recipient records, one
 * string each of "name=value" pairs separated by "|".
 */
typedef struct BAD_CASE {
    const char *what;                   /* expected in err */
    const char *head[20];
    const char *rcpts[4];
} BAD_CASE;

#define GOOD_HEAD_WITHOUT(x) \
    "req=deliver", "queue_id=" QID, "queue_name=active", "sender=s@x", \
    "nexthop=x", "arrival=10.000001", "active=11.000000"

static void put_pairs(IPC_MSG *m, const char *const *pairs, size_t n)
{
    for (size_t i = 0; i < n && pairs[i]; i++) {
        const char *eq = strchr(pairs[i], '=');
        char *name = strndup(pairs[i], (size_t) (eq - pairs[i]));

        ipc_put_str(m, name, eq + 1);
        free(name);
    }
}

static void write_case(STREAM *s, const BAD_CASE *c)
{
    IPC_MSG *m = ipc_msg_alloc();

    put_pairs(m, c->head, 20);
    assert_int_equal(ipc_write(s, m), 0);
    for (size_t i = 0; i < 4 && c->rcpts[i]; i++) {
        ARGV *pairs = argv_split(c->rcpts[i], "|");

        ipc_msg_reset(m);
        put_pairs(m, (const char *const *) pairs->argv, pairs->argc);
        assert_int_equal(ipc_write(s, m), 0);
        argv_free(&pairs);
    }
    ipc_msg_free(&m);
}

static void test_request_strict(void **state)
{
    static const BAD_CASE cases[] = {
        {"missing attribute \"queue_id\"", {"req=deliver",
            "queue_name=active", "sender=s", "nexthop=x", "arrival=1.000000",
            "active=1.000000", "rcpt_count=1"}, {"rcpt=a@b|offset=5"}},
        {"unexpected attribute \"color\"", {GOOD_HEAD_WITHOUT(),
            "rcpt_count=1", "color=red"}, {"rcpt=a@b|offset=5"}},
        {"unexpected request \"open\"", {"req=open", "queue_id=" QID,
            "queue_name=active", "sender=s", "nexthop=x",
            "arrival=1.000000", "active=1.000000", "rcpt_count=1"}, {NULL}},
        {"bad queue_id \"../../etc\"", {"req=deliver",
            "queue_id=../../etc", "queue_name=active", "sender=s",
            "nexthop=x", "arrival=1.000000", "active=1.000000",
            "rcpt_count=1"}, {NULL}},
        {"bad queue_name \"../active\"", {"req=deliver", "queue_id=" QID,
            "queue_name=../active", "sender=s", "nexthop=x",
            "arrival=1.000000", "active=1.000000", "rcpt_count=1"}, {NULL}},
        {"bad queue_name \"\"", {"req=deliver", "queue_id=" QID,
            "queue_name=", "sender=s", "nexthop=x", "arrival=1.000000",
            "active=1.000000", "rcpt_count=1"}, {NULL}},
        {"bad arrival time \"1.5\"", {"req=deliver", "queue_id=" QID,
            "queue_name=active", "sender=s", "nexthop=x", "arrival=1.5",
            "active=1.000000", "rcpt_count=1"}, {NULL}},
        {"bad active time \"-1.000000\"", {"req=deliver", "queue_id=" QID,
            "queue_name=active", "sender=s", "nexthop=x",
            "arrival=1.000000", "active=-1.000000", "rcpt_count=1"}, {NULL}},
        {"bad arrival time \"1.0000001\"", {"req=deliver", "queue_id=" QID,
            "queue_name=active", "sender=s", "nexthop=x",
            "arrival=1.0000001", "active=1.000000", "rcpt_count=1"}, {NULL}},
        {"bad arrival time \"x.000000\"", {"req=deliver", "queue_id=" QID,
            "queue_name=active", "sender=s", "nexthop=x",
            "arrival=x.000000", "active=1.000000", "rcpt_count=1"}, {NULL}},
        {"bad dsn_ret \"body\"", {GOOD_HEAD_WITHOUT(), "rcpt_count=1",
            "dsn_ret=body"}, {NULL}},
        {"bad smtputf8 value", {GOOD_HEAD_WITHOUT(), "rcpt_count=1",
            "smtputf8=2"}, {NULL}},
        {"attribute \"smtputf8\": bad number", {GOOD_HEAD_WITHOUT(),
            "rcpt_count=1", "smtputf8=yes"}, {NULL}},
        {"bad rcpt_count", {GOOD_HEAD_WITHOUT(), "rcpt_count=0"}, {NULL}},
        {"bad rcpt_count", {GOOD_HEAD_WITHOUT(), "rcpt_count=1001"}, {NULL}},
        {"attribute \"sender\": control character", {"req=deliver",
            "queue_id=" QID, "queue_name=active", "sender=a\nb",
            "nexthop=x", "arrival=1.000000", "active=1.000000",
            "rcpt_count=1"}, {NULL}},
        {"end of input after 1 of 2 recipients", {GOOD_HEAD_WITHOUT(),
            "rcpt_count=2"}, {"rcpt=a@b|offset=5"}},
        {"empty recipient", {GOOD_HEAD_WITHOUT(), "rcpt_count=1"},
            {"rcpt=|offset=5"}},
        {"bad recipient offset", {GOOD_HEAD_WITHOUT(), "rcpt_count=1"},
            {"rcpt=a@b|offset=0"}},
        {"attribute \"offset\": bad number", {GOOD_HEAD_WITHOUT(),
            "rcpt_count=1"}, {"rcpt=a@b|offset=12x"}},
        {"missing attribute \"offset\"", {GOOD_HEAD_WITHOUT(),
            "rcpt_count=1"}, {"rcpt=a@b"}},
        {"duplicate recipient offset", {GOOD_HEAD_WITHOUT(),
            "rcpt_count=2"}, {"rcpt=a@b|offset=5", "rcpt=c@d|offset=5"}},
        {"bad orcpt \"a@b\"", {GOOD_HEAD_WITHOUT(), "rcpt_count=1"},
            {"rcpt=a@b|offset=5|orcpt=a@b"}},
        {"bad notify value", {GOOD_HEAD_WITHOUT(), "rcpt_count=1"},
            {"rcpt=a@b|offset=5|notify=16"}},
        {"attribute \"rcpt\": control character", {GOOD_HEAD_WITHOUT(),
            "rcpt_count=1"}, {"rcpt=a\rb|offset=5"}},
        {"unexpected attribute \"req\"", {GOOD_HEAD_WITHOUT(),
            "rcpt_count=1"}, {"req=rcpt|rcpt=a@b|offset=5"}},
    };
    STRBUF *err = strbuf_alloc(64);

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        DELIVER_REQUEST *got = NULL;
        PAIR p;

        pair_open(&p);
        write_case(p.w, &cases[i]);
        pair_close_writer(&p);
        strbuf_reset(err);
        assert_int_equal(deliver_req_read(p.r, &got, err), -1);
        assert_null(got);
        if (strstr(err->data, cases[i].what) == NULL)
            fail_msg("case %zu: expected \"%s\", got \"%s\"", i,
                     cases[i].what, err->data);
        pair_close(&p);
    }

    /* A NUL inside a text attribute. */
    {
        IPC_MSG *m = ipc_msg_alloc();
        DELIVER_REQUEST *got = NULL;
        PAIR p;

        pair_open(&p);
        put_pairs(m, (const char *[]) {GOOD_HEAD_WITHOUT(), "rcpt_count=1",
                  NULL}, 20);
        ipc_put_data(m, "dsn_envid", "a\0b", 3);
        assert_int_equal(ipc_write(p.w, m), 0);
        assert_int_equal(deliver_req_read(p.r, &got, err), -1);
        assert_non_null(strstr(err->data, "NUL in text"));
        pair_close(&p);
        ipc_msg_free(&m);
    }
    /* A record over the size limit. */
    {
        IPC_MSG *m = ipc_msg_alloc();
        DELIVER_REQUEST *got = NULL;
        char *big = malloc(DELIVER_RECORD_MAX + 1);
        PAIR p;
        pid_t pid;
        int status;

        memset(big, 'a', DELIVER_RECORD_MAX);
        big[DELIVER_RECORD_MAX] = 0;
        pair_open(&p);
        ipc_put_str(m, "req", "deliver");
        ipc_put_str(m, "sender", big);
        if ((pid = fork()) == 0) {
            (void) ipc_write(p.w, m);
            _exit(0);
        }
        assert_int_equal(deliver_req_read(p.r, &got, err), -1);
        assert_non_null(strstr(err->data, "exceeds the limit"));
        pair_close(&p);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        ipc_msg_free(&m);
        free(big);
    }
    strbuf_free(&err);
}

static void write_bad_request(void *arg)
{
    DELIVER_REQUEST *req = arg;
    int fd = open("/dev/null", O_WRONLY);
    STREAM *s = stream_open(fd, 5, 4096);

    msg_init("test_deliver_req", MSG_STDERR);
    (void) deliver_req_write(s, req);
}

static void test_request_write_panics(void **state)
{
    DELIVER_REQUEST *req = full_request();
    STRBUF *err = strbuf_alloc(64);
    int status;

    (void) state;
    free(req->queue_id);
    req->queue_id = xstrdup("../x");
    status = unit_fork(write_bad_request, req, err);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(err->data, "deliver_req_write: bad request"));
    deliver_req_free(&req);

    req = full_request();
    req->rcpt_count = 0;                /* the strings leak in the child */
    status = unit_fork(write_bad_request, req, err);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    req->rcpt_count = 3;
    deliver_req_free(&req);
    strbuf_free(&err);
}

/* --- replies ---------------------------------------------------------- */

static void test_reply_round_trip(void **state)
{
    DELIVER_REPLY *reply = deliver_reply_alloc();
    STRBUF *err = strbuf_alloc(64);
    PAIR p;

    (void) state;
    pair_open(&p);
    assert_int_equal(deliver_reply_write(p.r, 172, 0, "2.0.0",
                                         "delivered to maildir", NULL), 0);
    assert_int_equal(deliver_reply_write(p.r, 230, 450, "4.2.2",
                                         "mailbox full\n(really)", "local"),
                     0);
    assert_int_equal(deliver_reply_write(p.r, 290, 550, "5.1.1",
                                         "unknown user: \"x\"", NULL), 0);
    stream_close(&p.r);

    assert_int_equal(deliver_reply_read(p.w, 172, reply, err), 1);
    assert_int_equal(reply->offset, 172);
    assert_int_equal(reply->status, 0);
    assert_string_equal(reply->dsn, "2.0.0");
    assert_string_equal(reply->reason->data, "delivered to maildir");
    assert_string_equal(reply->relay->data, "");

    assert_int_equal(deliver_reply_read(p.w, 230, reply, err), 1);
    assert_int_equal(reply->status, 450);
    assert_string_equal(reply->dsn, "4.2.2");
    /* Control characters never reach qmgr's logs. */
    assert_string_equal(reply->reason->data, "mailbox full?(really)");
    assert_string_equal(reply->relay->data, "local");

    /* A reply for another recipient than expected. */
    assert_int_equal(deliver_reply_read(p.w, 291, reply, err), -1);
    assert_non_null(strstr(err->data, "reply for offset 290, expected 291"));

    /* The agent went away before the next reply. */
    assert_int_equal(deliver_reply_read(p.w, 300, reply, err), 0);
    stream_close(&p.w);
    deliver_reply_free(&reply);
    assert_null(reply);
    strbuf_free(&err);
}

static void test_reply_strict(void **state)
{
    static const char *const cases[][6] = {
        {"bad status 0 with dsn \"4.0.0\"", "offset=5", "status=0",
            "dsn=4.0.0", "reason=x", NULL},
        {"bad status 250", "offset=5", "status=250", "dsn=2.0.0",
            "reason=x", NULL},
        {"bad status 450 with dsn \"5.1.1\"", "offset=5", "status=450",
            "dsn=5.1.1", "reason=x", NULL},
        {"bad status 550 with dsn \"5.1\"", "offset=5", "status=550",
            "dsn=5.1", "reason=x", NULL},
        {"bad status 550 with dsn \"5.1.1234\"", "offset=5", "status=550",
            "dsn=5.1.1234", "reason=x", NULL},
        {"bad status 600", "offset=5", "status=600", "dsn=5.0.0",
            "reason=x", NULL},
        {"missing attribute \"reason\"", "offset=5", "status=0",
            "dsn=2.0.0", NULL, NULL},
        {"control character in reply text", "offset=5", "status=0",
            "dsn=2.0.0", "reason=a\nb", NULL},
        {"unexpected attribute \"queue_id\"", "offset=5", "status=0",
            "dsn=2.0.0", "reason=x", "queue_id=x"},
    };
    DELIVER_REPLY *reply = deliver_reply_alloc();
    STRBUF *err = strbuf_alloc(64);
    IPC_MSG *m = ipc_msg_alloc();

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        PAIR p;

        pair_open(&p);
        ipc_msg_reset(m);
        put_pairs(m, &cases[i][1], 5);
        assert_int_equal(ipc_write(p.r, m), 0);
        strbuf_reset(err);
        assert_int_equal(deliver_reply_read(p.w, 5, reply, err), -1);
        if (strstr(err->data, cases[i][0]) == NULL)
            fail_msg("case %zu: expected \"%s\", got \"%s\"", i, cases[i][0],
                     err->data);
        pair_close(&p);
    }
    /* A record decoded elsewhere (qmgr's event loop). */
    ipc_msg_reset(m);
    put_pairs(m, (const char *[]) {"offset=9", "status=452", "dsn=4.2.2",
              "reason=full", "relay=virtual", NULL}, 6);
    assert_int_equal(deliver_reply_scan(m, 9, reply, err), 0);
    assert_int_equal(reply->status, 452);
    assert_string_equal(reply->relay->data, "virtual");
    assert_int_equal(deliver_reply_scan(m, 10, reply, err), -1);

    assert_true(deliver_dsn_valid("2.0.0"));
    assert_true(deliver_dsn_valid("5.123.456"));
    assert_false(deliver_dsn_valid("3.0.0"));
    assert_false(deliver_dsn_valid("5.0.0 "));
    assert_false(deliver_dsn_valid("5..0"));
    assert_false(deliver_dsn_valid(""));
    ipc_msg_free(&m);
    deliver_reply_free(&reply);
    strbuf_free(&err);
}

static void write_bad_reply(void *arg)
{
    int fd = open("/dev/null", O_WRONLY);
    STREAM *s = stream_open(fd, 5, 4096);

    (void) arg;
    msg_init("test_deliver_req", MSG_STDERR);
    (void) deliver_reply_write(s, 5, 550, "4.0.0", "x", NULL);
}

static void test_reply_write_panics(void **state)
{
    STRBUF *err = strbuf_alloc(64);
    int status;

    (void) state;
    status = unit_fork(write_bad_reply, NULL, err);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(err->data, "status 550 with dsn \"4.0.0\""));
    strbuf_free(&err);
}

/* --- the log line ----------------------------------------------------- */

static void test_format_delay(void **state)
{
    static const struct {
        long    sec;
        long    usec;
        const char *want;
    } cases[] = {
        {0, 0, "0"}, {0, 100, "0"}, {0, 4999, "0"}, {0, 5000, "0.01"},
        {0, 12345, "0.01"}, {0, 50000, "0.05"}, {0, 123456, "0.12"},
        {0, 125000, "0.13"}, {0, 100000, "0.1"}, {0, 994999, "0.99"},
        {0, 995000, "1"}, {0, 999999, "1"}, {1, 0, "1"}, {1, 250000, "1.3"},
        {1, 940000, "1.9"}, {1, 960000, "2"}, {9, 960000, "10"},
        {12, 400000, "12"}, {12, 600000, "13"}, {123, 0, "123"},
        {86400, 999999, "86401"},
    };
    STRBUF *out = strbuf_alloc(16);

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strbuf_reset(out);
        deliver_format_delay(out, cases[i].sec, cases[i].usec);
        if (strcmp(out->data, cases[i].want) != 0)
            fail_msg("%ld.%06ld: expected %s, got %s", cases[i].sec,
                     cases[i].usec, cases[i].want, out->data);
    }
    strbuf_free(&out);
}

static void set_tv(struct timeval *tv, long sec, long usec)
{
    tv->tv_sec = sec;
    tv->tv_usec = usec;
}

static void test_log_format(void **state)
{
    DELIVER_REQUEST *req = full_request();
    DELIVER_STATS stats;
    STRBUF *out = strbuf_alloc(128);

    (void) state;
    set_tv(&req->arrival, 1000, 0);
    set_tv(&req->active, 1000, 250000);
    memset(&stats, 0, sizeof(stats));
    set_tv(&stats.handoff, 1000, 260000);
    set_tv(&stats.done, 1001, 500000);
    deliver_log_format(out, req, "bob@example.test", "Bob@Example.TEST",
                       "local", &stats, 0, "2.0.0", "delivered to maildir");
    assert_string_equal(out->data, QID ": to=<bob@example.test>, "
                        "relay=local, delay=1.5, delays=0.25/0.01/0/1.2, "
                        "dsn=2.0.0, status=sent (delivered to maildir)");

    deliver_log_format(out, req, "bob@example.test", "list@example.test",
                       "virtual", &stats, 450, "4.2.2", "mailbox full");
    assert_string_equal(out->data, QID ": to=<bob@example.test>, "
                        "orig_to=<list@example.test>, relay=virtual, "
                        "delay=1.5, delays=0.25/0.01/0/1.2, dsn=4.2.2, "
                        "status=deferred (mailbox full)");

    /* A network agent: connection setup, then transmission. */
    set_tv(&stats.conn_setup, 1000, 300000);
    set_tv(&stats.done, 1012, 600000);
    deliver_log_format(out, req, "x@remote.test", "", "mx[192.0.2.1]:25",
                       &stats, 550, "5.1.1", "host mx said: 550 no");
    assert_string_equal(out->data, QID ": to=<x@remote.test>, "
                        "relay=mx[192.0.2.1]:25, delay=13, "
                        "delays=0.25/0.01/0.04/12, dsn=5.1.1, "
                        "status=bounced (host mx said: 550 no)");

    /* Clock steps backwards show as 0, never as negative numbers. */
    set_tv(&req->active, 999, 0);
    memset(&stats, 0, sizeof(stats));
    set_tv(&stats.handoff, 998, 0);
    set_tv(&stats.done, 997, 0);
    deliver_log_format(out, req, "a@b", NULL, "local", &stats, 0, "2.0.0",
                       "ok");
    assert_string_equal(out->data, QID ": to=<a@b>, relay=local, delay=0, "
                        "delays=0/0/0/0, dsn=2.0.0, status=sent (ok)");

    /* done unset: now. */
    gettimeofday(&req->arrival, NULL);
    req->active = req->arrival;
    stats.handoff = req->arrival;
    stats.done.tv_sec = 0;
    deliver_log_format(out, req, "a@b", "a@b", "local", &stats, 0, "2.0.0",
                       "ok");
    assert_non_null(strstr(out->data, "relay=local, delay=0"));
    assert_null(strstr(out->data, "orig_to"));
    deliver_req_free(&req);
    strbuf_free(&out);
}

static void test_soft_bounce_and_done(void **state)
{
    DELIVER_REQUEST *req = full_request();
    DELIVER_REPLY *reply = deliver_reply_alloc();
    DELIVER_STATS stats;
    STRBUF *err = strbuf_alloc(64);
    char dsn[DELIVER_DSN_MAX] = "5.1.1";
    int status = 550;
    PAIR p;

    (void) state;
    deliver_soft_bounce(&status, dsn);
    assert_int_equal(status, 450);
    assert_string_equal(dsn, "4.1.1");
    deliver_soft_bounce(&status, dsn);
    assert_int_equal(status, 450);
    status = 0;
    strcpy(dsn, "2.0.0");
    deliver_soft_bounce(&status, dsn);
    assert_int_equal(status, 0);
    assert_string_equal(dsn, "2.0.0");

    memset(&stats, 0, sizeof(stats));
    gettimeofday(&stats.handoff, NULL);
    pair_open(&p);
    unit_log_reset();
    var_soft_bounce = 0;
    assert_int_equal(deliver_done(p.r, req, &req->rcpts[0], "local", &stats,
                                  550, "5.1.1", "unknown user: \"bob\""), 0);
    var_soft_bounce = 1;
    assert_int_equal(deliver_done(p.r, req, &req->rcpts[1], "local", &stats,
                                  550, "5.1.1", "unknown user: \"carol\""),
                     0);
    var_soft_bounce = 0;
    /* orig_to differs only in case: not shown. */
    assert_true(unit_logged(QID ": to=<bob@example.test>, relay=local, "));
    assert_true(unit_logged("dsn=5.1.1, status=bounced (unknown user: "
                            "\"bob\")"));
    assert_true(unit_logged(QID ": to=<carol@example.test>, relay=local, "));
    assert_true(unit_logged("dsn=4.1.1, status=deferred (unknown user: "
                            "\"carol\")"));
    assert_int_equal(deliver_reply_read(p.w, 172, reply, err), 1);
    assert_int_equal(reply->status, 550);
    assert_int_equal(deliver_reply_read(p.w, 230, reply, err), 1);
    assert_int_equal(reply->status, 450);
    assert_string_equal(reply->dsn, "4.1.1");
    assert_string_equal(reply->relay->data, "local");

    /* qmgr went away: the agent learns it from the write. */
    stream_close(&p.w);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(deliver_done(p.r, req, &req->rcpts[2], "local", &stats,
                                  0, "2.0.0", "delivered"), -1);
    pair_close(&p);
    msg_set_hook(NULL);
    deliver_reply_free(&reply);
    deliver_req_free(&req);
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_max_rcpts),
        cmocka_unit_test(test_request_strict),
        cmocka_unit_test(test_request_write_panics),
        cmocka_unit_test(test_reply_round_trip),
        cmocka_unit_test(test_reply_strict),
        cmocka_unit_test(test_reply_write_panics),
        cmocka_unit_test(test_format_delay),
        cmocka_unit_test(test_log_format),
        cmocka_unit_test(test_soft_bounce_and_done),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
