/*
 * test_anvil_table - anvil's count and rate bookkeeping
 * (lib/mail/anvil_table.c) against a fake clock: counts per ident,
 * fixed rate windows, disconnects that were never connected, expiry of
 * idle idents (memory stays bounded), and the peak statistics; events
 * (rate without a connection) and lookups that must change nothing.
 */
#include "unit.h"

#include <stdio.h>

#include "mail/anvil_table.h"

#define UNIT    60000                   /* ms, the default 60s */

static void connect_expect(ANVIL_TABLE *t, const char *ident, long long now,
                           int want_count, int want_rate)
{
    int count = -1;
    int rate = -1;

    anvil_table_connect(t, ident, now, &count, &rate);
    if (count != want_count || rate != want_rate)
        fail_msg("connect %s at %lld: count=%d rate=%d, want %d/%d", ident,
                 now, count, rate, want_count, want_rate);
}

static void event_expect(ANVIL_TABLE *t, const char *ident, long long now,
                         int want_rate)
{
    int rate = -1;

    anvil_table_event(t, ident, now, &rate);
    if (rate != want_rate)
        fail_msg("event %s at %lld: rate=%d, want %d", ident, now, rate,
                 want_rate);
}

static void lookup_expect(const ANVIL_TABLE *t, const char *ident,
                          long long now, int want_found, int want_count,
                          int want_rate)
{
    int count = -1;
    int rate = -1;
    int found = anvil_table_lookup(t, ident, now, &count, &rate);

    if (found != want_found || count != want_count || rate != want_rate)
        fail_msg("lookup %s at %lld: found=%d count=%d rate=%d, want "
                 "%d %d/%d", ident, now, found, count, rate, want_found,
                 want_count, want_rate);
}

static void test_counts(void **state)
{
    ANVIL_TABLE *t = anvil_table_alloc(UNIT);
    int count;
    int rate;

    (void) state;
    connect_expect(t, "smtp:192.0.2.1", 1000, 1, 1);
    connect_expect(t, "smtp:192.0.2.1", 1001, 2, 2);
    connect_expect(t, "smtp:192.0.2.2", 1002, 1, 1);
    connect_expect(t, "submission:192.0.2.1", 1003, 1, 1);
    assert_int_equal(anvil_table_size(t), 3);
    assert_int_equal(anvil_table_disconnect(t, "smtp:192.0.2.1", 1004), 1);
    /* The rate remembers connects that have ended. */
    connect_expect(t, "smtp:192.0.2.1", 1005, 2, 3);
    assert_int_equal(anvil_table_disconnect(t, "smtp:192.0.2.1", 1006), 1);
    assert_int_equal(anvil_table_disconnect(t, "smtp:192.0.2.1", 1007), 0);
    /* Nothing left to disconnect; unknown idents are not created. */
    assert_int_equal(anvil_table_disconnect(t, "smtp:192.0.2.1", 1008), -1);
    assert_int_equal(anvil_table_disconnect(t, "smtp:192.0.2.9", 1008), -1);
    assert_int_equal(anvil_table_size(t), 3);
    assert_int_equal(anvil_table_lookup(t, "smtp:192.0.2.1", 1009, &count,
                                        &rate), 1);
    assert_int_equal(count, 0);
    assert_int_equal(rate, 3);
    assert_int_equal(anvil_table_lookup(t, "smtp:192.0.2.9", 1009, &count,
                                        &rate), 0);
    assert_int_equal(count, 0);
    assert_int_equal(rate, 0);
    /* Idents are exact strings: no folding, no prefix matching. */
    connect_expect(t, "SMTP:192.0.2.1", 1010, 1, 1);
    connect_expect(t, "smtp:192.0.2.", 1010, 1, 1);
    anvil_table_free(&t);
    assert_null(t);
}

static void test_rate_window(void **state)
{
    ANVIL_TABLE *t = anvil_table_alloc(UNIT);
    int count;
    int rate;

    (void) state;
    connect_expect(t, "a", 0, 1, 1);
    connect_expect(t, "a", UNIT / 2, 2, 2);
    connect_expect(t, "a", UNIT - 1, 3, 3);
    /* A fixed window: at start + unit a new one begins. */
    connect_expect(t, "a", UNIT, 4, 1);
    connect_expect(t, "a", UNIT + 10, 5, 2);
    /* A stale window reads as rate 0; the count stays. */
    anvil_table_lookup(t, "a", 3 * UNIT, &count, &rate);
    assert_int_equal(count, 5);
    assert_int_equal(rate, 0);
    /* The next window starts at the first connect after the last ended. */
    connect_expect(t, "a", 3 * UNIT + 500, 6, 1);
    connect_expect(t, "a", 4 * UNIT + 499, 7, 2);
    connect_expect(t, "a", 4 * UNIT + 500, 8, 1);
    /* Another ident has a window of its own. */
    connect_expect(t, "b", 4 * UNIT + 501, 1, 1);
    anvil_table_free(&t);
}

static void test_expire(void **state)
{
    ANVIL_TABLE *t = anvil_table_alloc(UNIT);
    int count;
    int rate;

    (void) state;
    connect_expect(t, "busy", 0, 1, 1);
    connect_expect(t, "idle", 0, 1, 1);
    connect_expect(t, "recent", UNIT - 10, 1, 1);
    assert_int_equal(anvil_table_disconnect(t, "idle", 5), 0);
    assert_int_equal(anvil_table_disconnect(t, "recent", UNIT - 5), 0);
    /* Within the window: an idle ident's rate still matters. */
    assert_int_equal(anvil_table_expire(t, UNIT - 1), 0);
    assert_int_equal(anvil_table_size(t), 3);
    /* "idle" ended; "busy" is connected; "recent"'s window runs on. */
    assert_int_equal(anvil_table_expire(t, UNIT), 1);
    assert_int_equal(anvil_table_size(t), 2);
    assert_int_equal(anvil_table_lookup(t, "idle", UNIT, &count, &rate), 0);
    assert_int_equal(anvil_table_expire(t, 2 * UNIT - 10), 1);
    /* A connected ident stays however old its window is. */
    assert_int_equal(anvil_table_expire(t, 100 * UNIT), 0);
    assert_int_equal(anvil_table_lookup(t, "busy", 100 * UNIT, &count,
                                        &rate), 1);
    assert_int_equal(count, 1);
    assert_int_equal(anvil_table_disconnect(t, "busy", 100 * UNIT), 0);
    assert_int_equal(anvil_table_expire(t, 100 * UNIT), 1);
    assert_int_equal(anvil_table_size(t), 0);
    /* An expired ident starts from scratch. */
    connect_expect(t, "idle", 100 * UNIT, 1, 1);
    anvil_table_free(&t);
}

/*
 * Many one-off clients: with expiry at every unit (as anvil does), the
 * table holds only the idents of about the last two units.
 */
static void test_memory_bounded(void **state)
{
    ANVIL_TABLE *t = anvil_table_alloc(1000);
    STRBUF *ident = strbuf_alloc(32);
    size_t peak = 0;
    long long now = 0;

    (void) state;
    for (int i = 0; i < 50000; i++, now += 1) {
        strbuf_printf(ident, "smtp:10.%d.%d.%d", i >> 16, (i >> 8) & 255,
                      i & 255);
        connect_expect(t, ident->data, now, 1, 1);
        assert_int_equal(anvil_table_disconnect(t, ident->data, now), 0);
        if (anvil_table_size(t) > peak)
            peak = anvil_table_size(t);
        if (now % 1000 == 999)
            (void) anvil_table_expire(t, now);
    }
    assert_true(peak <= 2000);
    assert_int_equal(anvil_table_stats(t)->size, peak);
    (void) anvil_table_expire(t, now + 1000);
    assert_int_equal(anvil_table_size(t), 0);
    strbuf_free(&ident);
    anvil_table_free(&t);
}

static void test_stats(void **state)
{
    ANVIL_TABLE *t = anvil_table_alloc(UNIT);
    const ANVIL_STATS *st = anvil_table_stats(t);

    (void) state;
    assert_int_equal(st->count.value, 0);
    assert_null(st->count.ident);
    assert_int_equal(st->size, 0);
    connect_expect(t, "a", 100, 1, 1);
    connect_expect(t, "b", 200, 1, 1);
    connect_expect(t, "b", 300, 2, 2);
    /* A tie keeps the first to reach the peak. */
    connect_expect(t, "a", 400, 2, 2);
    assert_int_equal(st->count.value, 2);
    assert_string_equal(st->count.ident, "b");
    assert_int_equal(st->count.when, 300);
    assert_int_equal(st->rate.value, 2);
    assert_string_equal(st->rate.ident, "b");
    /* Disconnects lower the count, not the peak. */
    anvil_table_disconnect(t, "a", 500);
    anvil_table_disconnect(t, "a", 500);
    connect_expect(t, "a", 600, 1, 3);
    assert_int_equal(st->count.value, 2);
    assert_int_equal(st->rate.value, 3);
    assert_string_equal(st->rate.ident, "a");
    assert_int_equal(st->rate.when, 600);
    assert_int_equal(st->size, 2);
    assert_int_equal(st->size_when, 200);
    /* After a report, peaks start over (Postfix anvil_status_dump). */
    anvil_table_stats_reset(t);
    assert_int_equal(st->count.value, 0);
    assert_null(st->count.ident);
    assert_int_equal(st->rate.value, 0);
    assert_int_equal(st->size, 0);
    connect_expect(t, "c", 700, 1, 1);
    assert_int_equal(st->count.value, 1);
    assert_string_equal(st->count.ident, "c");
    assert_int_equal(st->size, 3);
    anvil_table_free(&t);
}

/* Events raise the rate, never the count, by the connect window rules. */
static void test_event_rate(void **state)
{
    ANVIL_TABLE *t = anvil_table_alloc(UNIT);

    (void) state;
    event_expect(t, "auth:192.0.2.1", 1000, 1);
    event_expect(t, "auth:192.0.2.1", 1001, 2);
    event_expect(t, "auth:192.0.2.2", 1002, 1);
    assert_int_equal(anvil_table_size(t), 2);
    lookup_expect(t, "auth:192.0.2.1", 1003, 1, 0, 2);
    /* Nothing to disconnect: an event opens no connection. */
    assert_int_equal(anvil_table_disconnect(t, "auth:192.0.2.1", 1004), -1);
    lookup_expect(t, "auth:192.0.2.1", 1005, 1, 0, 2);
    /* One ident, one rate: connects and events add up. */
    connect_expect(t, "auth:192.0.2.1", 1006, 1, 3);
    event_expect(t, "auth:192.0.2.1", 1007, 4);
    lookup_expect(t, "auth:192.0.2.1", 1008, 1, 1, 4);
    connect_expect(t, "auth:192.0.2.1", 1009, 2, 5);
    anvil_table_free(&t);
}

static void test_event_window(void **state)
{
    ANVIL_TABLE *t = anvil_table_alloc(UNIT);

    (void) state;
    event_expect(t, "a", 0, 1);
    event_expect(t, "a", UNIT / 2, 2);
    event_expect(t, "a", UNIT - 1, 3);
    lookup_expect(t, "a", UNIT - 1, 1, 0, 3);
    /* At start + unit the window is over: it reads 0 ... */
    lookup_expect(t, "a", UNIT, 1, 0, 0);
    /* ... and the next event starts a new one. */
    event_expect(t, "a", UNIT, 1);
    event_expect(t, "a", UNIT + 10, 2);
    /* Idle for a while: the new window starts at the first event after. */
    event_expect(t, "a", 5 * UNIT + 500, 1);
    event_expect(t, "a", 6 * UNIT + 499, 2);
    event_expect(t, "a", 6 * UNIT + 500, 1);
    /* A window started by an event is the connect's window too. */
    connect_expect(t, "a", 7 * UNIT + 499, 1, 2);
    connect_expect(t, "a", 7 * UNIT + 500, 2, 1);
    anvil_table_free(&t);
}

/*
 * An ident that only has events never has an open connection, so it is
 * dropped as soon as its window ends; memory stays bounded however many
 * clients fail their AUTH once.
 */
static void test_event_expire(void **state)
{
    ANVIL_TABLE *t = anvil_table_alloc(1000);
    STRBUF *ident = strbuf_alloc(32);
    size_t peak = 0;
    long long now = 10000;              /* after the cases below */

    (void) state;
    event_expect(t, "old", 0, 1);
    event_expect(t, "new", 999, 1);
    connect_expect(t, "both", 0, 1, 1);
    event_expect(t, "both", 1, 2);
    assert_int_equal(anvil_table_expire(t, 999), 0);
    /* "old"'s window is over; "new"'s is not; "both" is connected. */
    assert_int_equal(anvil_table_expire(t, 1000), 1);
    lookup_expect(t, "old", 1000, 0, 0, 0);
    assert_int_equal(anvil_table_expire(t, 1998), 0);
    assert_int_equal(anvil_table_expire(t, 1999), 1);
    assert_int_equal(anvil_table_size(t), 1);
    /* Once disconnected, the entry with events goes like any other. */
    assert_int_equal(anvil_table_disconnect(t, "both", 5000), 0);
    assert_int_equal(anvil_table_expire(t, 5000), 1);
    assert_int_equal(anvil_table_size(t), 0);
    /* An expired ident starts from scratch. */
    event_expect(t, "old", 5000, 1);
    assert_int_equal(anvil_table_expire(t, 6000), 1);

    for (int i = 0; i < 50000; i++, now += 1) {
        strbuf_printf(ident, "auth:10.%d.%d.%d", i >> 16, (i >> 8) & 255,
                      i & 255);
        event_expect(t, ident->data, now, 1);
        if (anvil_table_size(t) > peak)
            peak = anvil_table_size(t);
        if (now % 1000 == 999)
            (void) anvil_table_expire(t, now);
    }
    assert_true(peak <= 2000);
    (void) anvil_table_expire(t, now + 1000);
    assert_int_equal(anvil_table_size(t), 0);
    strbuf_free(&ident);
    anvil_table_free(&t);
}

/* Events update the rate peak and the size, never the count peak. */
static void test_event_stats(void **state)
{
    ANVIL_TABLE *t = anvil_table_alloc(UNIT);
    const ANVIL_STATS *st = anvil_table_stats(t);

    (void) state;
    connect_expect(t, "smtp:a", 100, 1, 1);
    event_expect(t, "auth:a", 200, 1);
    event_expect(t, "auth:a", 300, 2);
    assert_int_equal(st->rate.value, 2);
    assert_string_equal(st->rate.ident, "auth:a");
    assert_int_equal(st->rate.when, 300);
    assert_int_equal(st->count.value, 1);
    assert_string_equal(st->count.ident, "smtp:a");
    assert_int_equal(st->size, 2);
    assert_int_equal(st->size_when, 200);
    anvil_table_stats_reset(t);
    event_expect(t, "auth:a", 400, 3);
    assert_int_equal(st->rate.value, 3);
    assert_int_equal(st->count.value, 0);
    assert_null(st->count.ident);
    anvil_table_free(&t);
}

/*
 * A lookup is read-only: it creates no entry, starts no window, keeps
 * nothing from expiring and moves no statistic.
 */
static void test_lookup_changes_nothing(void **state)
{
    ANVIL_TABLE *t = anvil_table_alloc(UNIT);
    const ANVIL_STATS *st = anvil_table_stats(t);

    (void) state;
    lookup_expect(t, "unknown", 0, 0, 0, 0);
    assert_int_equal(anvil_table_size(t), 0);
    assert_int_equal(st->size, 0);
    assert_null(st->rate.ident);

    connect_expect(t, "c", 0, 1, 1);
    event_expect(t, "e", 0, 1);
    for (int i = 0; i < 10; i++) {
        lookup_expect(t, "c", 10 + i, 1, 1, 1);
        lookup_expect(t, "e", 10 + i, 1, 0, 1);
        lookup_expect(t, "unknown", 10 + i, 0, 0, 0);
    }
    assert_int_equal(anvil_table_size(t), 2);
    assert_int_equal(st->rate.value, 1);
    assert_int_equal(st->count.value, 1);
    assert_int_equal(st->size, 2);

    /*
     * A lookup after the window ended must not start the next one: the
     * event at UNIT + 10 does, so the one at 2 * UNIT + 5 is in it.
     */
    lookup_expect(t, "e", UNIT, 1, 0, 0);
    event_expect(t, "e", UNIT + 10, 1);
    event_expect(t, "e", 2 * UNIT + 5, 2);

    /* Nor keep an idle entry alive. */
    lookup_expect(t, "e", 3 * UNIT + 10, 1, 0, 0);
    assert_int_equal(anvil_table_expire(t, 3 * UNIT + 10), 1);
    lookup_expect(t, "e", 3 * UNIT + 10, 0, 0, 0);
    lookup_expect(t, "c", 3 * UNIT + 10, 1, 1, 0);
    assert_int_equal(anvil_table_size(t), 1);
    anvil_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_rate_window),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_event_rate),
        cmocka_unit_test(test_event_window),
        cmocka_unit_test(test_event_expire),
        cmocka_unit_test(test_event_stats),
        cmocka_unit_test(test_lookup_changes_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
