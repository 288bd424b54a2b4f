/*
 * test_events - the poll(2) event loop: read and write readiness on pipes
 * and socketpairs, disabling, callbacks that change other fds, hangups,
 * one-shot timers (order, moving, cancelling, timers set from timers), the
 * idle wait of event_loop(max_ms), and event_reset().
 *
 * The module keeps global state: every test ends with event_reset().
 * Timing checks are loose, the machine may be busy.
 */
#include "unit.h"

#include <fcntl.h>
#include <sys/socket.h>

#include "util/events.h"
#include "util/stream.h"

/* What the callbacks saw, in order. */
#define MAX_CALLS 64

typedef struct CALL {
    const char *tag;                    /* the context's name */
    int     event;
    long long when;
} CALL;

static CALL calls[MAX_CALLS];
static int ncalls;

/* A callback context: a name, an fd to drain, and what to do next. */
typedef struct CTX {
    const char *tag;
    int     fd;                         /* read one byte on EVENT_READ */
    void    (*then)(struct CTX *ctx, int event);
    struct CTX *other;                  /* for 'then' */
    int     count;
} CTX;

static void record(int event, void *context)
{
    CTX    *ctx = context;

    if (ncalls >= MAX_CALLS)
        fail_msg("too many callbacks");
    calls[ncalls].tag = ctx->tag;
    calls[ncalls].event = event;
    calls[ncalls].when = stream_now_ms();
    ncalls++;
    ctx->count++;
    if ((event & EVENT_READ) && ctx->fd >= 0) {
        char    ch;
        ssize_t n = read(ctx->fd, &ch, 1);     /* 0 after a hangup */

        assert_true(n >= 0);
    }
    if (ctx->then)
        ctx->then(ctx, event);
}

static int reset_all(void **state)
{
    (void) state;
    event_reset();
    ncalls = 0;
    memset(calls, 0, sizeof(calls));
    return 0;
}

static void put_byte(int fd)
{
    assert_int_equal(write(fd, "x", 1), 1);
}

/* Sequence of tags seen, as one string: "a b c". */
static const char *seen(void)
{
    static char buf[512];
    size_t len = 0;

    buf[0] = 0;
    for (int i = 0; i < ncalls && len < sizeof(buf); i++)
        len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%s%s",
                                 i ? " " : "", calls[i].tag);
    return buf;
}

/* Run the loop until 'done' callbacks have run, at most limit_ms. */
static void loop_until(int done, long long limit_ms)
{
    long long end = stream_now_ms() + limit_ms;

    while (ncalls < done && stream_now_ms() < end)
        event_loop(end - stream_now_ms());
}

static void test_read_pipe(void **state)
{
    CTX     a = {"a", -1, NULL, NULL, 0};
    int     p[2];

    (void) state;
    assert_int_equal(pipe(p), 0);
    a.fd = p[0];
    event_enable_read(p[0], record, &a);
    /* Nothing to read: no callback. */
    event_loop(20);
    assert_int_equal(ncalls, 0);

    put_byte(p[1]);
    event_loop(1000);
    assert_int_equal(ncalls, 1);
    assert_int_equal(calls[0].event, EVENT_READ);
    assert_string_equal(calls[0].tag, "a");
    /* The byte was consumed: no further callback. */
    event_loop(20);
    assert_int_equal(ncalls, 1);

    /* Level-triggered: two bytes, one read per callback, two callbacks. */
    put_byte(p[1]);
    put_byte(p[1]);
    event_loop(1000);
    event_loop(1000);
    assert_int_equal(ncalls, 3);
    event_loop(20);
    assert_int_equal(ncalls, 3);
    close(p[0]);
    close(p[1]);
}

static void test_write_event(void **state)
{
    CTX     w = {"w", -1, NULL, NULL, 0};
    int     sv[2];

    (void) state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    w.fd = sv[0];
    event_enable_write(sv[0], record, &w);
    event_loop(1000);
    assert_int_equal(ncalls, 1);
    assert_int_equal(calls[0].event, EVENT_WRITE);

    /* Switching the fd to read: one callback per fd, the write is gone. */
    event_enable_read(sv[0], record, &w);
    event_loop(20);
    assert_int_equal(ncalls, 1);
    put_byte(sv[1]);
    event_loop(1000);
    assert_int_equal(ncalls, 2);
    assert_int_equal(calls[1].event, EVENT_READ);
    close(sv[0]);
    close(sv[1]);
}

static void test_disable(void **state)
{
    CTX     a = {"a", -1, NULL, NULL, 0};
    int     p[2];

    (void) state;
    assert_int_equal(pipe(p), 0);
    a.fd = p[0];
    put_byte(p[1]);
    event_enable_read(p[0], record, &a);
    event_disable_readwrite(p[0]);
    event_loop(20);
    assert_int_equal(ncalls, 0);

    /* Disabling what was never enabled is harmless. */
    event_disable_readwrite(p[0]);
    event_disable_readwrite(-1);
    event_disable_readwrite(100000);
    event_disable_readwrite(p[1]);

    event_enable_read(p[0], record, &a);
    event_loop(1000);
    assert_int_equal(ncalls, 1);
    close(p[0]);
    close(p[1]);
}

/* 'then' actions. */
static void then_disable_enable(CTX *ctx, int event)
{
    (void) event;
    event_disable_readwrite(ctx->other->fd);
    event_enable_read(ctx->other->other->fd, record, ctx->other->other);
}

static void then_switch_to_read(CTX *ctx, int event)
{
    (void) event;
    event_enable_read(ctx->other->fd, record, ctx->other);
}

/*
 * A callback may disable and enable other fds: a disabled fd gets no
 * callback even when it was ready in the same poll round, and a newly
 * enabled one joins in the next round.
 */
static void test_callback_changes_others(void **state)
{
    CTX     a = {"a", -1, then_disable_enable, NULL, 0};
    CTX     b = {"b", -1, NULL, NULL, 0};
    CTX     c = {"c", -1, NULL, NULL, 0};
    int     pa[2];
    int     pb[2];
    int     pc[2];

    (void) state;
    assert_int_equal(pipe(pa), 0);
    assert_int_equal(pipe(pb), 0);
    assert_int_equal(pipe(pc), 0);
    /* The loop dispatches in fd order; a must come first. */
    assert_true(pa[0] < pb[0] && pa[0] < pc[0]);
    a.fd = pa[0];
    b.fd = pb[0];
    c.fd = pc[0];
    a.other = &b;
    b.other = &c;
    put_byte(pa[1]);
    put_byte(pb[1]);
    put_byte(pc[1]);
    event_enable_read(pa[0], record, &a);
    event_enable_read(pb[0], record, &b);
    event_loop(1000);
    assert_string_equal(seen(), "a");
    event_loop(1000);
    assert_string_equal(seen(), "a c");
    event_loop(20);
    assert_string_equal(seen(), "a c");
    assert_int_equal(b.count, 0);
    close(pa[0]);
    close(pa[1]);
    close(pb[0]);
    close(pb[1]);
    close(pc[0]);
    close(pc[1]);
}

/*
 * An fd that was polled for writing and is switched to reading by an
 * earlier callback in the same round must not receive the stale write
 * event: its new owner asked for input only.
 */
static void test_switch_in_round(void **state)
{
    CTX     a = {"a", -1, then_switch_to_read, NULL, 0};
    CTX     d = {"d", -1, NULL, NULL, 0};
    int     pa[2];
    int     sv[2];

    (void) state;
    assert_int_equal(pipe(pa), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_true(pa[0] < sv[0]);
    a.fd = pa[0];
    a.other = &d;
    d.fd = sv[0];
    put_byte(pa[1]);
    event_enable_read(pa[0], record, &a);
    event_enable_write(sv[0], record, &d);      /* always writable */
    event_loop(1000);
    /* a ran and made d read-only; d has nothing to read. */
    assert_string_equal(seen(), "a");
    for (int i = 0; i < ncalls; i++)
        assert_false(strcmp(calls[i].tag, "d") == 0
                     && (calls[i].event & EVENT_WRITE));
    put_byte(sv[1]);
    event_loop(1000);
    assert_string_equal(seen(), "a d");
    assert_int_equal(calls[1].event, EVENT_READ);
    close(pa[0]);
    close(pa[1]);
    close(sv[0]);
    close(sv[1]);
}

/* The peer of a socketpair closes: EVENT_XCPT, and EVENT_READ for a reader. */
static void test_hangup(void **state)
{
    CTX     r = {"r", -1, NULL, NULL, 0};
    CTX     w = {"w", -1, NULL, NULL, 0};
    CTX     p = {"p", -1, NULL, NULL, 0};
    int     sv[2];
    int     sw[2];
    int     pp[2];

    (void) state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    r.fd = sv[0];
    event_enable_read(sv[0], record, &r);
    close(sv[1]);
    event_loop(1000);
    assert_int_equal(ncalls, 1);
    assert_int_equal(calls[0].event & (EVENT_XCPT | EVENT_READ),
                     EVENT_XCPT | EVENT_READ);
    assert_int_equal(calls[0].event & EVENT_TIME, 0);
    /* The reader sees end of file. */
    {
        char ch;

        assert_int_equal(read(sv[0], &ch, 1), 0);
    }
    event_disable_readwrite(sv[0]);
    close(sv[0]);

    /* A writer whose peer went away hears of it too. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sw), 0);
    event_enable_write(sw[0], record, &w);
    close(sw[1]);
    event_loop(1000);
    assert_int_equal(ncalls, 2);
    assert_true(calls[1].event & EVENT_XCPT);
    assert_false(calls[1].event & EVENT_READ);
    event_disable_readwrite(sw[0]);
    close(sw[0]);

    /* A pipe whose writer closed. */
    assert_int_equal(pipe(pp), 0);
    event_enable_read(pp[0], record, &p);
    close(pp[1]);
    event_loop(1000);
    assert_int_equal(ncalls, 3);
    assert_true(calls[2].event & EVENT_XCPT);
    assert_true(calls[2].event & EVENT_READ);
    event_disable_readwrite(pp[0]);
    close(pp[0]);
}

/*
 * Timers fire in due order, FIFO among equal times, never early.  The
 * expected order comes from the due times returned (a stall between two
 * requests may reorder them); normally it is the order of the delays.
 */
static void test_timer_order(void **state)
{
    static CTX ctx[] = {
        {"120", -1, NULL, NULL, 0}, {"40", -1, NULL, NULL, 0},
        {"80", -1, NULL, NULL, 0}, {"0", -1, NULL, NULL, 0},
        {"60a", -1, NULL, NULL, 0}, {"60b", -1, NULL, NULL, 0},
    };
    static const long long delay[] = {120, 40, 80, 0, 60, 60};
    long long due[6];
    int     order[6];
    char    want[64];
    size_t  len = 0;

    (void) state;
    for (int i = 0; i < 6; i++)
        due[i] = event_request_timer(record, &ctx[i], delay[i]);
    /* Stable insertion sort by due time: FIFO among equals. */
    for (int i = 0; i < 6; i++) {
        int     j = i;

        while (j > 0 && due[order[j - 1]] > due[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (int i = 0; i < 6; i++)
        len += (size_t) snprintf(want + len, sizeof(want) - len, "%s%s",
                                 i ? " " : "", ctx[order[i]].tag);
    loop_until(6, 3000);
    assert_string_equal(seen(), want);
    for (int i = 0; i < ncalls; i++) {
        assert_int_equal(calls[i].event, EVENT_TIME);
        assert_true(calls[i].when >= due[order[i]]);    /* never early */
    }
    /* One-shot: nothing more. */
    event_loop(80);
    assert_int_equal(ncalls, 6);
    assert_int_equal(event_cancel_timer(record, &ctx[3]), 0);
}

/* Requesting (fn, context) again moves the timer instead of adding one. */
static void test_timer_move(void **state)
{
    CTX     x = {"x", -1, NULL, NULL, 0};
    CTX     y = {"y", -1, NULL, NULL, 0};
    long long due1;
    long long due2;

    (void) state;
    due1 = event_request_timer(record, &x, 10000);
    due2 = event_request_timer(record, &x, 20);
    assert_true(due2 < due1);
    loop_until(1, 2000);
    assert_string_equal(seen(), "x");
    assert_int_equal(event_cancel_timer(record, &x), 0);     /* no second */
    event_loop(50);
    assert_int_equal(ncalls, 1);

    /* Moving later works too. */
    event_request_timer(record, &y, 10);
    event_request_timer(record, &y, 400);
    event_loop(100);
    assert_int_equal(ncalls, 1);
    assert_int_equal(event_cancel_timer(record, &y), 1);
    assert_int_equal(event_cancel_timer(record, &y), 0);

    /* The same function with another context is another timer. */
    event_request_timer(record, &x, 10);
    event_request_timer(record, &y, 10);
    loop_until(3, 2000);
    assert_int_equal(x.count, 2);
    assert_int_equal(y.count, 1);

    /* A negative delay means now. */
    event_request_timer(record, &x, -5);
    event_loop(1000);
    assert_int_equal(x.count, 3);
}

static void other_fn(int event, void *context)
{
    record(event, context);
}

static void test_timer_cancel(void **state)
{
    CTX     a = {"a", -1, NULL, NULL, 0};
    CTX     b = {"b", -1, NULL, NULL, 0};
    CTX     c = {"c", -1, NULL, NULL, 0};

    (void) state;
    assert_int_equal(event_cancel_timer(record, &a), 0);     /* none set */
    event_request_timer(record, &a, 10);
    event_request_timer(record, &b, 50);
    event_request_timer(record, &c, 150);
    event_request_timer(other_fn, &b, 80);
    assert_int_equal(event_cancel_timer(record, &b), 1);     /* middle */
    assert_int_equal(event_cancel_timer(record, &b), 0);
    assert_int_equal(event_cancel_timer(other_fn, &a), 0);   /* wrong fn */
    loop_until(3, 2000);
    assert_string_equal(seen(), "a b c");
    assert_int_equal(b.count, 1);                            /* other_fn */
    event_loop(100);
    assert_int_equal(ncalls, 3);

    /* A cancelled timer never fires. */
    event_request_timer(record, &a, 0);
    assert_int_equal(event_cancel_timer(record, &a), 1);
    event_loop(30);
    assert_int_equal(ncalls, 3);
}

/* Timer callbacks that set and cancel timers. */
static void then_again(CTX *ctx, int event)
{
    (void) event;
    if (ctx->count < 3)
        event_request_timer(record, ctx, 10);
}

static void then_cancel_other(CTX *ctx, int event)
{
    (void) event;
    ctx->other->count += 100 * event_cancel_timer(record, ctx->other);
}

static void test_timer_from_timer(void **state)
{
    CTX     r = {"r", -1, then_again, NULL, 0};
    CTX     b = {"b", -1, NULL, NULL, 0};
    CTX     a = {"a", -1, then_cancel_other, &b, 0};
    int     rounds = 0;

    (void) state;
    event_request_timer(record, &r, 0);
    while (r.count < 3 && rounds++ < 200)
        event_loop(1000);
    assert_int_equal(r.count, 3);
    assert_string_equal(seen(), "r r r");
    assert_true(calls[1].when - calls[0].when >= 9);
    assert_true(calls[2].when - calls[1].when >= 9);
    event_loop(50);
    assert_int_equal(r.count, 3);

    /* Both due in the same round; a cancels b first. */
    event_request_timer(record, &a, 0);
    event_request_timer(record, &b, 0);
    {
        long long until = stream_now_ms() + 5;

        while (stream_now_ms() < until)
            ;
    }
    event_loop(0);
    assert_int_equal(a.count, 1);
    assert_int_equal(b.count, 100);     /* cancelled, never run */
    event_loop(20);
    assert_int_equal(b.count, 100);
}

/*
 * A timer that keeps rescheduling itself with no delay runs once per
 * event_loop() call: it neither spins inside one call nor starves I/O.
 */
static void rearm_now(int event, void *context)
{
    CTX    *ctx = context;

    assert_int_equal(event, EVENT_TIME);
    ctx->count++;
    event_request_timer(rearm_now, ctx, 0);
}

static void test_rearm_zero(void **state)
{
    CTX     t = {"t", -1, NULL, NULL, 0};
    CTX     io = {"io", -1, NULL, NULL, 0};
    long long start;
    int     p[2];

    (void) state;
    assert_int_equal(pipe(p), 0);
    io.fd = p[0];
    put_byte(p[1]);
    event_enable_read(p[0], record, &io);
    event_request_timer(rearm_now, &t, 0);
    start = stream_now_ms();
    event_loop(1000);
    assert_int_equal(t.count, 1);
    assert_int_equal(io.count, 1);
    for (int i = 2; i <= 5; i++) {
        event_loop(1000);               /* returns at once: a timer is due */
        assert_int_equal(t.count, i);
    }
    assert_true(stream_now_ms() - start < 1000);
    assert_int_equal(io.count, 1);
    assert_int_equal(event_cancel_timer(rearm_now, &t), 1);
    close(p[0]);
    close(p[1]);
}

/* With nothing to do, event_loop(max_ms) waits about max_ms. */
static void test_loop_idle(void **state)
{
    CTX     far = {"far", -1, NULL, NULL, 0};
    long long start;
    long long took;
    long long now;

    (void) state;
    start = stream_now_ms();
    event_loop(200);
    took = stream_now_ms() - start;
    if (took < 160 || took >= 2200)
        fail_msg("event_loop(200) took %lld ms", took);
    now = event_now();
    assert_true(now >= start + 160 && now <= stream_now_ms());

    start = stream_now_ms();
    event_loop(0);
    assert_true(stream_now_ms() - start < 1000);
    assert_true(event_now() >= start);

    /* A far timer does not stretch or shorten the wait. */
    event_request_timer(record, &far, 10000);
    start = stream_now_ms();
    event_loop(100);
    took = stream_now_ms() - start;
    if (took < 80 || took >= 2100)
        fail_msg("event_loop(100) took %lld ms", took);
    assert_int_equal(ncalls, 0);
    /* A near timer shortens it. */
    event_request_timer(record, &far, 20);
    start = stream_now_ms();
    event_loop(5000);
    took = stream_now_ms() - start;
    assert_int_equal(ncalls, 1);
    if (took >= 2000)
        fail_msg("event_loop(5000) with a 20 ms timer took %lld ms", took);
}

static void then_reset(CTX *ctx, int event)
{
    (void) ctx;
    (void) event;
    event_reset();
}

static void test_reset(void **state)
{
    CTX     a = {"a", -1, NULL, NULL, 0};
    CTX     r = {"r", -1, then_reset, NULL, 0};
    CTX     b = {"b", -1, NULL, NULL, 0};
    int     pa[2];
    int     pb[2];

    (void) state;
    assert_int_equal(pipe(pa), 0);
    assert_int_equal(pipe(pb), 0);
    a.fd = pa[0];
    b.fd = pb[0];
    put_byte(pa[1]);
    put_byte(pb[1]);
    event_enable_read(pa[0], record, &a);
    event_request_timer(record, &a, 0);
    event_request_timer(record, &b, 10);
    event_reset();
    event_loop(30);
    assert_int_equal(ncalls, 0);
    assert_int_equal(event_cancel_timer(record, &a), 0);
    assert_int_equal(event_cancel_timer(record, &b), 0);
    event_reset();                      /* twice is fine */

    /* Usable again afterwards. */
    event_enable_read(pa[0], record, &a);
    event_loop(1000);
    assert_string_equal(seen(), "a");

    /* A callback that resets (a child after fork): nothing else runs. */
    assert_true(pa[0] < pb[0]);
    r.fd = pa[0];
    put_byte(pa[1]);
    event_enable_read(pa[0], record, &r);
    event_enable_read(pb[0], record, &b);
    event_request_timer(record, &b, 10000);
    event_loop(1000);
    assert_string_equal(seen(), "a r");
    assert_int_equal(event_cancel_timer(record, &b), 0);
    event_loop(20);
    assert_string_equal(seen(), "a r");

    /* A timer callback that resets. */
    event_request_timer(record, &r, 0);
    event_request_timer(record, &b, 0);
    event_enable_read(pb[0], record, &b);
    {
        long long until = stream_now_ms() + 3;

        while (stream_now_ms() < until)
            ;
    }
    event_loop(0);
    assert_string_equal(seen(), "a r r");
    close(pa[0]);
    close(pa[1]);
    close(pb[0]);
    close(pb[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_read_pipe, reset_all),
        cmocka_unit_test_teardown(test_write_event, reset_all),
        cmocka_unit_test_teardown(test_disable, reset_all),
        cmocka_unit_test_teardown(test_callback_changes_others, reset_all),
        cmocka_unit_test_teardown(test_switch_in_round, reset_all),
        cmocka_unit_test_teardown(test_hangup, reset_all),
        cmocka_unit_test_teardown(test_timer_order, reset_all),
        cmocka_unit_test_teardown(test_timer_move, reset_all),
        cmocka_unit_test_teardown(test_timer_cancel, reset_all),
        cmocka_unit_test_teardown(test_timer_from_timer, reset_all),
        cmocka_unit_test_teardown(test_rearm_zero, reset_all),
        cmocka_unit_test_teardown(test_loop_idle, reset_all),
        cmocka_unit_test_teardown(test_reset, reset_all),
    };

    return cmocka_run_group_tests(tests, reset_all, reset_all);
}
