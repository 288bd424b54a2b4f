/*
 * test_strnum - strict number parsing: bounds, signs, junk and overflow.
 */
#include "unit.h"

#include <limits.h>

#include "util/strnum.h"

#define LONG_OK(str, min, max, want) do { \
        long v_ = 12345; \
        if (str_to_long((str), (min), (max), &v_) != 0) \
            fail_msg("str_to_long(\"%s\") failed", (str)); \
        assert_int_equal(v_, (want)); \
    } while (0)

#define LONG_BAD(str, min, max) do { \
        long v_ = 12345; \
        if (str_to_long((str), (min), (max), &v_) != -1) \
            fail_msg("str_to_long(\"%s\") accepted %ld", (str), v_); \
        assert_int_equal(v_, 12345);    /* untouched on failure */ \
    } while (0)

#define ULONG_OK(str, max, want) do { \
        unsigned long v_ = 12345; \
        if (str_to_ulong((str), (max), &v_) != 0) \
            fail_msg("str_to_ulong(\"%s\") failed", (str)); \
        assert_int_equal(v_, (want)); \
    } while (0)

#define ULONG_BAD(str, max) do { \
        unsigned long v_ = 12345; \
        if (str_to_ulong((str), (max), &v_) != -1) \
            fail_msg("str_to_ulong(\"%s\", %lu) accepted %lu", (str), \
                     (unsigned long) (max), v_); \
        assert_int_equal(v_, 12345); \
    } while (0)

static void test_long_valid(void **state)
{
    (void) state;
    LONG_OK("0", 0, 10, 0);
    LONG_OK("7", 0, 10, 7);
    LONG_OK("10", 0, 10, 10);
    LONG_OK("-10", -10, 10, -10);
    LONG_OK("-0", -1, 1, 0);
    LONG_OK("007", 0, 10, 7);           /* decimal, not octal */
    LONG_OK("9223372036854775807", LONG_MIN, LONG_MAX, LONG_MAX);
    LONG_OK("-9223372036854775808", LONG_MIN, LONG_MAX, LONG_MIN);
}

static void test_long_bounds(void **state)
{
    (void) state;
    LONG_BAD("11", 0, 10);
    LONG_BAD("-1", 0, 10);
    LONG_BAD("-11", -10, 10);
    LONG_BAD("5", 6, 6);
    LONG_OK("6", 6, 6, 6);
}

static void test_long_junk(void **state)
{
    (void) state;
    LONG_BAD("", 0, 100);
    LONG_BAD(" 5", 0, 100);
    LONG_BAD("5 ", 0, 100);
    LONG_BAD("\t5", 0, 100);
    LONG_BAD("5\n", 0, 100);
    LONG_BAD("+5", 0, 100);
    LONG_BAD("-", -100, 100);
    LONG_BAD("--5", -100, 100);
    LONG_BAD("-+5", -100, 100);
    LONG_BAD("- 5", -100, 100);
    LONG_BAD("5x", 0, 100);
    LONG_BAD("x5", 0, 100);
    LONG_BAD("0x10", 0, 100);
    LONG_BAD("1e3", 0, 10000);
    LONG_BAD("1.0", 0, 100);
    LONG_BAD("1,000", 0, 10000);
    LONG_BAD("\xd9\xa5", 0, 100);       /* a non-ASCII digit */
}

static void test_long_overflow(void **state)
{
    (void) state;
    LONG_BAD("9223372036854775808", LONG_MIN, LONG_MAX);
    LONG_BAD("-9223372036854775809", LONG_MIN, LONG_MAX);
    LONG_BAD("99999999999999999999999999", LONG_MIN, LONG_MAX);
    LONG_BAD("-99999999999999999999999999", LONG_MIN, LONG_MAX);
}

static void test_ulong(void **state)
{
    (void) state;
    ULONG_OK("0", 0, 0);
    ULONG_OK("42", 100, 42);
    ULONG_OK("100", 100, 100);
    ULONG_OK("0000000000000000000000042", 100, 42);
    ULONG_OK("18446744073709551615", ULONG_MAX, ULONG_MAX);
    ULONG_BAD("101", 100);
    ULONG_BAD("18446744073709551616", ULONG_MAX);
    ULONG_BAD("99999999999999999999", ULONG_MAX);
    ULONG_BAD("", 100);
    ULONG_BAD("-1", 100);
    ULONG_BAD("+1", 100);
    ULONG_BAD(" 1", 100);
    ULONG_BAD("1 ", 100);
    ULONG_BAD("1a", 100);
    ULONG_BAD("0x1", 100);
}

/* The maximum is honoured even when it is below a single digit. */
static void test_ulong_small_max(void **state)
{
    (void) state;
    ULONG_OK("5", 5, 5);
    ULONG_BAD("6", 5);
    ULONG_BAD("9", 5);
    ULONG_BAD("1", 0);
    ULONG_OK("0", 0, 0);
    ULONG_OK("00", 0, 0);
    ULONG_BAD("19", 15);
    ULONG_OK("15", 15, 15);
    ULONG_BAD("16", 15);
    /* Every value up to max is accepted, every value above refused. */
    for (unsigned long max = 0; max < 120; max++) {
        for (unsigned long v = 0; v < 130; v++) {
            char num[16];
            unsigned long got = 999;
            int rc;

            snprintf(num, sizeof(num), "%lu", v);
            rc = str_to_ulong(num, max, &got);
            if (v <= max && (rc != 0 || got != v))
                fail_msg("\"%s\" max %lu: rc %d got %lu", num, max, rc, got);
            if (v > max && rc != -1)
                fail_msg("\"%s\" max %lu: accepted %lu", num, max, got);
        }
    }
}

/* A counted run of digits: exactly len characters, all digits. */
static void test_ulong_n(void **state)
{
    unsigned long v = 12345;

    (void) state;
    assert_int_equal(str_to_ulong_n("123abc", 3, 1000, &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(str_to_ulong_n("123abc", 2, 1000, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(str_to_ulong_n("123abc", 4, 1000, &v), -1);
    assert_int_equal(str_to_ulong_n("123", 0, 1000, &v), -1);
    assert_int_equal(str_to_ulong_n("999", 3, 998, &v), -1);
    assert_int_equal(str_to_ulong_n("998", 3, 998, &v), 0);
    assert_int_equal(v, 998);
    assert_int_equal(str_to_ulong_n("7", 1, 6, &v), -1);
    /* Does not run past a NUL inside len. */
    assert_int_equal(str_to_ulong_n("12\0" "34", 5, 100000, &v), -1);
    /* Reads no more than len bytes (no NUL needed). */
    {
        static const char raw[2] = {'4', '2'};

        assert_int_equal(str_to_ulong_n(raw, 2, 100, &v), 0);
        assert_int_equal(v, 42);
    }
    assert_int_equal(v, 42);
}

/* Oversized input: a very long run of digits overflows, a run of zeros
 * does not. */
static void test_long_inputs(void **state)
{
    STRBUF *sb = strbuf_alloc(0);

    (void) state;
    for (int i = 0; i < 5000; i++)
        strbuf_addch(sb, '0');
    strbuf_addch(sb, '9');
    ULONG_OK(sb->data, 9, 9);
    LONG_OK(sb->data, 0, 9, 9);
    sb->data[0] = '1';
    ULONG_BAD(sb->data, ULONG_MAX);
    LONG_BAD(sb->data, LONG_MIN, LONG_MAX);
    strbuf_free(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_valid),
        cmocka_unit_test(test_long_bounds),
        cmocka_unit_test(test_long_junk),
        cmocka_unit_test(test_long_overflow),
        cmocka_unit_test(test_ulong),
        cmocka_unit_test(test_ulong_small_max),
        cmocka_unit_test(test_ulong_n),
        cmocka_unit_test(test_long_inputs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
