/*
 * test_strbuf - growth, termination, binary safety and formatting of STRBUF.
 */
#include "unit.h"

#include <signal.h>
#include <stdint.h>

/* The invariants every operation must keep. */
static void check_invariants(const STRBUF *sb)
{
    assert_non_null(sb->data);
    assert_true(sb->len < sb->size);
    assert_int_equal(sb->data[sb->len], 0);
    assert_ptr_equal(strbuf_str(sb), sb->data);
    assert_int_equal(strbuf_len(sb), sb->len);
}

static void test_alloc_empty(void **state)
{
    STRBUF *sb = strbuf_alloc(0);

    (void) state;
    check_invariants(sb);
    assert_int_equal(sb->len, 0);
    assert_string_equal(sb->data, "");
    assert_true(sb->size >= 1);
    strbuf_free(&sb);
    assert_null(sb);
    strbuf_free(&sb);                   /* NULL is allowed */
    assert_null(sb);
}

static void test_many_appends(void **state)
{
    STRBUF *sb = strbuf_alloc(1);
    size_t i;

    (void) state;
    for (i = 0; i < 10000; i++) {
        strbuf_cat(sb, "abc");
        check_invariants(sb);
        assert_int_equal(sb->len, 3 * (i + 1));
    }
    for (i = 0; i < 10000; i++)
        assert_memory_equal(sb->data + 3 * i, "abc", 3);
    assert_int_equal(strlen(sb->data), 30000);
    strbuf_free(&sb);
}

static void test_addch_growth(void **state)
{
    STRBUF *sb = strbuf_alloc(16);
    size_t i;

    (void) state;
    for (i = 0; i < 100000; i++) {
        strbuf_addch(sb, 'a' + (int) (i % 26));
        assert_int_equal(sb->len, i + 1);
        assert_int_equal(sb->data[sb->len], 0);
        assert_true(sb->len < sb->size);
    }
    for (i = 0; i < 100000; i++)
        assert_int_equal(sb->data[i], 'a' + (int) (i % 26));
    strbuf_free(&sb);
}

/* Every byte value, including NUL and 0xff, survives append/addch. */
static void test_binary_data(void **state)
{
    STRBUF *sb = strbuf_alloc(4);
    unsigned char all[256];
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char) i;
    strbuf_append(sb, all, sizeof(all));
    check_invariants(sb);
    assert_int_equal(sb->len, 256);
    assert_memory_equal(sb->data, all, 256);
    assert_int_equal(strlen(sb->data), 0);      /* starts with a NUL */

    strbuf_setn(sb, "a\0b\0c", 5);
    check_invariants(sb);
    assert_int_equal(sb->len, 5);
    assert_memory_equal(sb->data, "a\0b\0c", 6);

    strbuf_addch(sb, 0);
    strbuf_addch(sb, 0xff);
    check_invariants(sb);
    assert_int_equal(sb->len, 7);
    assert_memory_equal(sb->data, "a\0b\0c\0\xff", 8);

    /* Formatted output goes after the binary data, not after the first NUL. */
    strbuf_printf_append(sb, "%d", 42);
    check_invariants(sb);
    assert_int_equal(sb->len, 9);
    assert_memory_equal(sb->data, "a\0b\0c\0\xff" "42", 10);

    strbuf_append(sb, "", 0);
    assert_int_equal(sb->len, 9);
    strbuf_append(sb, NULL, 0);         /* nothing to copy */
    assert_int_equal(sb->len, 9);
    check_invariants(sb);
    strbuf_free(&sb);
}

static void test_set_reset_cat(void **state)
{
    STRBUF *sb = strbuf_alloc(0);

    (void) state;
    strbuf_set(sb, "hello");
    assert_string_equal(sb->data, "hello");
    strbuf_cat(sb, ", world");
    assert_string_equal(sb->data, "hello, world");
    assert_int_equal(sb->len, 12);
    strbuf_set(sb, "x");
    assert_string_equal(sb->data, "x");
    assert_int_equal(sb->len, 1);
    strbuf_reset(sb);
    check_invariants(sb);
    assert_int_equal(sb->len, 0);
    assert_string_equal(sb->data, "");
    strbuf_set(sb, "");
    assert_int_equal(sb->len, 0);
    strbuf_free(&sb);
}

static void test_reserve(void **state)
{
    STRBUF *sb = strbuf_alloc(0);
    char *before;

    (void) state;
    strbuf_set(sb, "keep");
    strbuf_reserve(sb, 5000);
    assert_true(sb->size >= 4 + 5000 + 1);
    assert_int_equal(sb->len, 4);
    assert_string_equal(sb->data, "keep");

    /* No reallocation while the reserved room lasts. */
    before = sb->data;
    for (int i = 0; i < 5000; i++)
        strbuf_addch(sb, 'x');
    assert_ptr_equal(sb->data, before);
    check_invariants(sb);
    strbuf_reserve(sb, 0);
    check_invariants(sb);
    strbuf_free(&sb);
}

static void reserve_overflow_child(void *arg)
{
    STRBUF *sb = strbuf_alloc(0);

    (void) arg;
    strbuf_set(sb, "abc");
    strbuf_reserve(sb, SIZE_MAX - 2);   /* len + more + 1 wraps */
    _exit(0);
}

/* A length that would wrap the size arithmetic is a bug: panic, no wrap. */
static void test_reserve_overflow_panics(void **state)
{
    STRBUF *err = strbuf_alloc(64);
    int status;

    (void) state;
    status = unit_fork(reserve_overflow_child, NULL, err);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    strbuf_free(&err);
}

static void test_printf_growth(void **state)
{
    STRBUF *sb;
    char big[3000];

    (void) state;
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;

    /* Each length around the initial size, from a fresh buffer. */
    for (size_t n = 10; n < 40; n++) {
        sb = strbuf_alloc(16);
        strbuf_printf(sb, "%.*s", (int) n, big);
        check_invariants(sb);
        assert_int_equal(sb->len, n);
        assert_memory_equal(sb->data, big, n);
        strbuf_free(&sb);
    }

    sb = strbuf_alloc(16);
    strbuf_printf(sb, "<%s|%d|%s>", big, -17, "end");
    check_invariants(sb);
    assert_int_equal(sb->len, 1 + 2999 + 5 + 4);
    assert_int_equal(sb->data[0], '<');
    assert_memory_equal(sb->data + 1, big, 2999);
    assert_string_equal(sb->data + 3000, "|-17|end>");

    /* strbuf_printf replaces, the _append variant appends. */
    strbuf_printf(sb, "%s", "short");
    assert_string_equal(sb->data, "short");
    assert_int_equal(sb->len, 5);
    strbuf_printf_append(sb, " %u %s", 7u, big);
    check_invariants(sb);
    assert_int_equal(sb->len, 5 + 3 + 2999);
    assert_memory_equal(sb->data, "short 7 ", 8);
    strbuf_printf(sb, "%s", "");
    assert_int_equal(sb->len, 0);
    check_invariants(sb);
    strbuf_free(&sb);
}

/* Appending past the initial size, one formatted piece at a time. */
static void test_printf_append_many(void **state)
{
    STRBUF *sb = strbuf_alloc(0);
    STRBUF *expect = strbuf_alloc(0);
    char num[32];

    (void) state;
    for (int i = 0; i < 2000; i++) {
        strbuf_printf_append(sb, "%d,", i);
        snprintf(num, sizeof(num), "%d,", i);
        strbuf_cat(expect, num);
        check_invariants(sb);
    }
    assert_int_equal(sb->len, expect->len);
    assert_string_equal(sb->data, expect->data);
    strbuf_free(&sb);
    strbuf_free(&expect);
}

static void vprintf_helper(STRBUF *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void vprintf_helper(STRBUF *sb, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    strbuf_vprintf_append(sb, fmt, ap);
    va_end(ap);
}

/* The va_list is used twice when the first attempt does not fit. */
static void test_vprintf_append(void **state)
{
    STRBUF *sb = strbuf_alloc(16);
    char big[200];

    (void) state;
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    strbuf_set(sb, "pre:");
    vprintf_helper(sb, "%s/%d/%s", big, 12345, "tail");
    check_invariants(sb);
    assert_int_equal(sb->len, 4 + 199 + 11);
    assert_memory_equal(sb->data, "pre:", 4);
    assert_memory_equal(sb->data + 4, big, 199);
    assert_string_equal(sb->data + 4 + 199, "/12345/tail");
    strbuf_free(&sb);
}

static void test_truncate(void **state)
{
    STRBUF *sb = strbuf_alloc(0);

    (void) state;
    strbuf_set(sb, "hello world");
    strbuf_truncate(sb, 5);
    check_invariants(sb);
    assert_string_equal(sb->data, "hello");
    assert_int_equal(sb->len, 5);
    strbuf_truncate(sb, 50);            /* longer: no change */
    assert_string_equal(sb->data, "hello");
    assert_int_equal(sb->len, 5);
    strbuf_truncate(sb, 5);
    assert_int_equal(sb->len, 5);
    strbuf_truncate(sb, 0);
    check_invariants(sb);
    assert_string_equal(sb->data, "");
    strbuf_cat(sb, "again");
    assert_string_equal(sb->data, "again");
    strbuf_free(&sb);
}

static void test_trim_right(void **state)
{
    STRBUF *sb = strbuf_alloc(0);

    (void) state;
    strbuf_set(sb, "  a b \t\r\n \v\f");
    strbuf_trim_right(sb);
    check_invariants(sb);
    assert_string_equal(sb->data, "  a b");
    assert_int_equal(sb->len, 5);

    strbuf_set(sb, "none");
    strbuf_trim_right(sb);
    assert_string_equal(sb->data, "none");
    assert_int_equal(sb->len, 4);

    strbuf_set(sb, " \t \r\n");
    strbuf_trim_right(sb);
    check_invariants(sb);
    assert_int_equal(sb->len, 0);

    strbuf_reset(sb);
    strbuf_trim_right(sb);
    assert_int_equal(sb->len, 0);

    /* A NUL is data, not whitespace. */
    strbuf_setn(sb, "x\0 ", 3);
    strbuf_trim_right(sb);
    assert_int_equal(sb->len, 2);
    assert_memory_equal(sb->data, "x\0", 3);

    /* Bytes above 0x7f are not whitespace (isspace on a negative char). */
    strbuf_set(sb, "caf\xc3\xa0");
    strbuf_trim_right(sb);
    assert_int_equal(sb->len, 5);
    strbuf_set(sb, "x\xa0");
    strbuf_trim_right(sb);
    assert_int_equal(sb->len, 2);
    strbuf_free(&sb);
}

static void test_lower(void **state)
{
    STRBUF *sb = strbuf_alloc(0);

    (void) state;
    strbuf_set(sb, "MiXeD Case 123 @[]_Z");
    strbuf_lower(sb);
    check_invariants(sb);
    assert_string_equal(sb->data, "mixed case 123 @[]_z");

    /* Lowercases past an embedded NUL; leaves non-ASCII bytes alone. */
    strbuf_setn(sb, "AB\0CD\xc4\xd6", 7);
    strbuf_lower(sb);
    assert_int_equal(sb->len, 7);
    assert_memory_equal(sb->data, "ab\0cd\xc4\xd6", 8);
    strbuf_free(&sb);
}

static void test_export(void **state)
{
    STRBUF *sb = strbuf_alloc(0);
    char *str;

    (void) state;
    for (int i = 0; i < 100; i++)
        strbuf_cat(sb, "0123456789");
    str = strbuf_export(&sb);
    assert_null(sb);
    assert_int_equal(strlen(str), 1000);
    assert_memory_equal(str + 990, "0123456789", 11);
    free(str);

    sb = strbuf_alloc(0);
    str = strbuf_export(&sb);
    assert_null(sb);
    assert_string_equal(str, "");
    free(str);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_empty),
        cmocka_unit_test(test_many_appends),
        cmocka_unit_test(test_addch_growth),
        cmocka_unit_test(test_binary_data),
        cmocka_unit_test(test_set_reset_cat),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_reserve_overflow_panics),
        cmocka_unit_test(test_printf_growth),
        cmocka_unit_test(test_printf_append_many),
        cmocka_unit_test(test_vprintf_append),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_trim_right),
        cmocka_unit_test(test_lower),
        cmocka_unit_test(test_export),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
