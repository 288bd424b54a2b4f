/*
 * test_cfline - logical configuration lines: comments, continuation,
 * trimming, line numbers, NUL bytes, oversized input and input that is
 * cut anywhere (no final newline).
 */
#include "unit.h"

#include <errno.h>

#include "util/cfline.h"

/*
 * Run the reader over text[0..len) and describe every result as
 * "lineno:text|" (with "*" after the number when leading_ws is set), or
 * "lineno:ERR|" for -1, which ends the run.
 */
static void describe(const char *text, size_t len, STRBUF *out)
{
    STRBUF *line = strbuf_alloc(0);
    CFLINE cf;
    int lineno;
    int ws;
    int rc;
    int rounds = 0;

    strbuf_reset(out);
    cfline_init(&cf, text, len);
    while ((rc = cfline_next(&cf, line, &lineno, &ws)) != 0) {
        if (rc < 0) {
            strbuf_printf_append(out, "%d:ERR|", lineno);
            break;
        }
        assert_int_equal(rc, 1);
        assert_int_equal(strlen(line->data), line->len);
        strbuf_printf_append(out, "%d%s:%s|", lineno, ws ? "*" : "",
                             line->data);
        if (++rounds > 100000)
            fail_msg("cfline_next does not stop");
    }
    strbuf_free(&line);
}

static void check(const char *text, const char *expect)
{
    STRBUF *out = strbuf_alloc(0);

    describe(text, strlen(text), out);
    if (strcmp(out->data, expect) != 0)
        fail_msg("input \"%s\"\n got    \"%s\"\n expect \"%s\"", text,
                 out->data, expect);
    strbuf_free(&out);
}

static void test_simple(void **state)
{
    (void) state;
    check("", "");
    check("\n\n\n", "");
    check("a = 1\nb = 2\n", "1:a = 1|2:b = 2|");
    check("a = 1", "1:a = 1|");                 /* no final newline */
    check("a = 1\nb = 2", "1:a = 1|2:b = 2|");
}

static void test_comments_blank(void **state)
{
    (void) state;
    check("# comment\n\n  # indented comment\na = 1\n#\n", "4:a = 1|");
    check("#only", "");
    /* "#" later in a line is not a comment (Postfix main.cf). */
    check("a = b # c\n", "1:a = b # c|");
    check("   \n\t\n", "");
}

static void test_trailing_space_cr(void **state)
{
    (void) state;
    check("a = 1 \t\r\nb = 2\r\n", "1:a = 1|2:b = 2|");
    check("a = 1\r", "1:a = 1|");
    /* A CR inside the line is text. */
    check("a\rb\n", "1:a\rb|");
    check("\r\n\r\nx\r\n", "3:x|");
}

/* Continuation: the newline goes, the indentation stays. */
static void test_continuation(void **state)
{
    (void) state;
    check("a = 1,\n    2,\n\t3\nb = 4\n", "1:a = 1,    2,\t3|4:b = 4|");
    /* Blank lines and comments inside do not end the logical line. */
    check("a = x\n\n  y\n# note\n  # indented note\n  z\nb\n",
          "1:a = x  y  z|7:b|");
    /* Trailing space of each piece is removed, before joining. */
    check("a = x  \r\n  y \r\n", "1:a = x  y|");
    /* Continuation at the very end, without a final newline. */
    check("a\n  b", "1:a  b|");
    /* A whitespace-only line is blank, not an empty continuation. */
    check("a\n   \n  b\n", "1:a  b|");
}

/* A first line that starts with whitespace has nothing to continue. */
static void test_leading_whitespace(void **state)
{
    (void) state;
    check("  a = 1\nb = 2\n", "1*:  a = 1|2:b = 2|");
    check("\n\n \tx\n  y\nz\n", "3*: \tx  y|5:z|");
    /* The flag is per logical line. */
    check("  a\nb\n  c\n", "1*:  a|2:b  c|");
}

/* Line numbers name the first physical line of each logical line. */
static void test_line_numbers(void **state)
{
    (void) state;
    check("# 1\n\na\n  b\n\n  c\n# 7\nd\n\n\ne\n",
          "3:a  b  c|8:d|11:e|");
}

static void test_nul_byte(void **state)
{
    STRBUF *out = strbuf_alloc(0);

    (void) state;
    describe("a\0b\n", 4, out);
    assert_string_equal(out->data, "1:ERR|");
    /* The line number names the line with the NUL. */
    describe("x\n\ny = a\0b\nz\n", 12, out);
    assert_string_equal(out->data, "1:x|3:ERR|");
    /* Inside a continuation: still the physical line of the NUL. */
    describe("x = 1\n  2\n  3\0\n", 15, out);
    assert_string_equal(out->data, "3:ERR|");
    /* In a comment too: a NUL is never expected in text. */
    describe("# c\0mment\nx\n", 12, out);
    assert_string_equal(out->data, "1:ERR|");
    /* A NUL at the very end. */
    describe("x\n\0", 3, out);
    assert_string_equal(out->data, "1:x|2:ERR|");
    /* Lines before the bad one come out first, continued or not. */
    describe("x\n  y\n\n# c\nz\0\n", 15, out);
    assert_string_equal(out->data, "1:x  y|5:ERR|");
    describe("x\n  y\n\n#\0\n  z\n", 15, out);
    assert_string_equal(out->data, "1:x  y|4:ERR|");
    strbuf_free(&out);
}

/* Repeated calls after an error keep returning the error, not garbage. */
static void test_nul_byte_sticky(void **state)
{
    STRBUF *line = strbuf_alloc(0);
    CFLINE cf;
    int lineno = 0;

    (void) state;
    cfline_init(&cf, "a\nb\0\n", 5);
    assert_int_equal(cfline_next(&cf, line, &lineno, NULL), 1);
    assert_string_equal(line->data, "a");
    assert_int_equal(cfline_next(&cf, line, &lineno, NULL), -1);
    assert_int_equal(lineno, 2);
    assert_int_equal(cfline_next(&cf, line, &lineno, NULL), -1);
    assert_int_equal(lineno, 2);
    strbuf_free(&line);
}

/* Only len bytes are read: the text need not be NUL-terminated. */
static void test_not_terminated(void **state)
{
    static const char raw[] = {'a', '\n', ' ', 'b', '\n', 'c'};
    STRBUF *out = strbuf_alloc(0);

    (void) state;
    describe(raw, sizeof(raw), out);
    assert_string_equal(out->data, "1:a b|3:c|");
    describe(raw, 3, out);
    assert_string_equal(out->data, "1:a|");
    strbuf_free(&out);
}

/* The same text cut at every length: never a crash, lines stay whole. */
static void test_every_prefix(void **state)
{
    static const char text[] =
        "# head\r\nalpha = 1,\n  2\r\n\n# mid\n  3 \nbeta=x\n\t\ngamma";
    STRBUF *out = strbuf_alloc(0);
    char *copy;

    (void) state;
    for (size_t n = 0; n <= sizeof(text) - 1; n++) {
        copy = malloc(n ? n : 1);       /* exactly n bytes for ASan */
        assert_non_null(copy);
        memcpy(copy, text, n);
        describe(copy, n, out);
        assert_null(strstr(out->data, "ERR"));
        free(copy);
    }
    describe(text, sizeof(text) - 1, out);
    assert_string_equal(out->data, "2:alpha = 1,  2  3|7:beta=x|9:gamma|");
    strbuf_free(&out);
}

static void test_oversized(void **state)
{
    STRBUF *text = strbuf_alloc(0);
    STRBUF *line = strbuf_alloc(0);
    CFLINE cf;
    int lineno;
    int count = 0;

    (void) state;
    /* One logical line of 1 MB made of 10000 continuation lines. */
    strbuf_cat(text, "big =");
    for (int i = 0; i < 10000; i++)
        strbuf_printf_append(text, "\n %096d", i);
    strbuf_cat(text, "\nnext = 1\n");
    cfline_init(&cf, text->data, text->len);
    assert_int_equal(cfline_next(&cf, line, &lineno, NULL), 1);
    assert_int_equal(lineno, 1);
    assert_int_equal(line->len, 5 + 10000 * 97);
    assert_int_equal(cfline_next(&cf, line, &lineno, NULL), 1);
    assert_int_equal(lineno, 10002);
    assert_string_equal(line->data, "next = 1");
    assert_int_equal(cfline_next(&cf, line, &lineno, NULL), 0);

    /* Many short lines. */
    strbuf_reset(text);
    for (int i = 0; i < 50000; i++)
        strbuf_printf_append(text, "k%d = v\n", i);
    cfline_init(&cf, text->data, text->len);
    while (cfline_next(&cf, line, &lineno, NULL) == 1)
        assert_int_equal(lineno, ++count);
    assert_int_equal(count, 50000);
    strbuf_free(&text);
    strbuf_free(&line);
}

static void test_read_file(void **state)
{
    STRBUF *buf = strbuf_alloc(0);
    STRBUF *big = strbuf_alloc(0);
    const char *path;

    (void) state;
    path = unit_write_file("main.cf", "a = 1\n  b\n");
    strbuf_set(buf, "old contents");
    assert_int_equal(cfline_read_file(path, buf), 0);
    assert_string_equal(buf->data, "a = 1\n  b\n");

    /* Larger than the read chunk. */
    for (int i = 0; i < 5000; i++)
        strbuf_printf_append(big, "line%d = %d\n", i, i);
    path = unit_write_file("big.cf", big->data);
    assert_int_equal(cfline_read_file(path, buf), 0);
    assert_int_equal(buf->len, big->len);
    assert_string_equal(buf->data, big->data);

    path = unit_write_file("empty.cf", "");
    assert_int_equal(cfline_read_file(path, buf), 0);
    assert_int_equal(buf->len, 0);

    errno = 0;
    assert_int_equal(cfline_read_file("/nonexistent/postern/main.cf", buf),
                     -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(cfline_read_file(unit_tmpdir(), buf), -1);
    assert_int_equal(errno, EISDIR);
    strbuf_free(&buf);
    strbuf_free(&big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_comments_blank),
        cmocka_unit_test(test_trailing_space_cr),
        cmocka_unit_test(test_continuation),
        cmocka_unit_test(test_leading_whitespace),
        cmocka_unit_test(test_line_numbers),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_nul_byte_sticky),
        cmocka_unit_test(test_not_terminated),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_read_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
