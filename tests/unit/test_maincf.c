/*
 * test_maincf - main.cf syntax (lib/mail/maincf.c).
 *
 * The expected behaviour is Postfix's main.cf(5) as summarised in
 * postfix-compat.md section 1: "name = value", no trailing comments,
 * continuation lines keep their indentation, a repeated name wins with a
 * warning, and every syntax error names "PATH, line N".
 */
#include "unit.h"

#include <errno.h>

#include "mail/maincf.h"
#include "util/htable.h"

#define PATH    "/etc/postern/main.cf"

/* Parse text (of explicit length) into a fresh MAINCF; rc and err out. */
static MAINCF *parse_n(const char *text, size_t len, int *rc_r, STRBUF *err)
{
    MAINCF *cf = maincf_alloc(PATH);

    *rc_r = maincf_parse(cf, text, len, err);
    return cf;
}

/* Parse text that must be valid. */
static MAINCF *parse_ok(const char *text)
{
    STRBUF *err = strbuf_alloc(64);
    int rc;
    MAINCF *cf = parse_n(text, strlen(text), &rc, err);

    if (rc != 0)
        fail_msg("unexpected error: %s", err->data);
    strbuf_free(&err);
    return cf;
}

/* Parse text that must fail; returns the error text (caller frees). */
static char *parse_bad(const char *text, size_t len)
{
    STRBUF *err = strbuf_alloc(64);
    int rc;
    MAINCF *cf = parse_n(text, len, &rc, err);

    assert_int_equal(rc, -1);
    assert_true(err->len > 0);
    maincf_free(&cf);
    return strbuf_export(&err);
}

static char *parse_bad_str(const char *text)
{
    return parse_bad(text, strlen(text));
}

static void assert_value(const MAINCF *cf, const char *name,
                         const char *value)
{
    const MAINCF_ENTRY *ent = maincf_find(cf, name);

    if (ent == NULL)
        fail_msg("%s: not found", name);
    assert_string_equal(ent->name, name);
    assert_string_equal(ent->value, value);
}

static void assert_starts(const char *text, const char *prefix)
{
    if (strncmp(text, prefix, strlen(prefix)) != 0)
        fail_msg("\"%s\" does not start with \"%s\"", text, prefix);
}

/* --- name = value ----------------------------------------------------- */

static void test_forms(void **state)
{
    MAINCF *cf;

    (void) state;
    unit_log_reset();
    cf = parse_ok("a = b\n"
                  "c=d\n"
                  "e\t=\tf\n"
                  "g =h\n"
                  "i= j\n"
                  "k   =    l m   n   \n"
                  "o = p\r\n"
                  "Mixed_Case_09 = q\n"
                  "empty =\n"
                  "empty2=   \n"
                  "last = no newline");
    assert_value(cf, "a", "b");
    assert_value(cf, "c", "d");
    assert_value(cf, "e", "f");
    assert_value(cf, "g", "h");
    assert_value(cf, "i", "j");
    assert_value(cf, "k", "l m   n");
    assert_value(cf, "o", "p");
    assert_value(cf, "Mixed_Case_09", "q");
    assert_value(cf, "empty", "");
    assert_value(cf, "empty2", "");
    assert_value(cf, "last", "no newline");
    /* Names are case-sensitive. */
    assert_null(maincf_find(cf, "A"));
    assert_null(maincf_find(cf, "mixed_case_09"));
    assert_null(maincf_find(cf, "nonexistent"));
    assert_false(unit_logged("warning"));
    maincf_free(&cf);
    assert_null(cf);
    maincf_free(&cf);                   /* NULL is fine */
}

static void test_value_keeps_equals_and_hash(void **state)
{
    MAINCF *cf;

    (void) state;
    cf = parse_ok("a = b # c\n"
                  "x = y=z == w\n"
                  "h = #start\n"
                  "d = $a ${b} $(c)\n");
    assert_value(cf, "a", "b # c");
    assert_value(cf, "x", "y=z == w");
    assert_value(cf, "h", "#start");
    assert_value(cf, "d", "$a ${b} $(c)");      /* raw, not expanded */
    maincf_free(&cf);
}

static void test_comments_and_blank_lines(void **state)
{
    MAINCF *cf;
    const MAINCF_ENTRY *ent;

    (void) state;
    cf = parse_ok("# a comment\n"
                  "\n"
                  "   # indented comment\n"
                  "\t\n"
                  "a = 1\n"
                  "#b = 2\n"
                  "   \n"
                  "c = 3\n");
    assert_value(cf, "a", "1");
    assert_value(cf, "c", "3");
    assert_null(maincf_find(cf, "b"));
    assert_null(maincf_find(cf, "#b"));
    ent = maincf_find(cf, "a");
    assert_int_equal(ent->lineno, 5);
    ent = maincf_find(cf, "c");
    assert_int_equal(ent->lineno, 8);
    assert_int_equal(cf->entries->used, 2);
    maincf_free(&cf);
}

static void test_continuation(void **state)
{
    MAINCF *cf;

    (void) state;
    /* The newline goes, the indentation stays. */
    cf = parse_ok("a = one\n"
                  "  two\n"
                  "\tthree   \n"
                  "b = x\n"
                  " y\n");
    assert_value(cf, "a", "one  two\tthree");
    assert_value(cf, "b", "x y");
    assert_int_equal(maincf_find(cf, "a")->lineno, 1);
    assert_int_equal(maincf_find(cf, "b")->lineno, 4);
    maincf_free(&cf);

    /* "name =" alone, value on the next lines. */
    cf = parse_ok("list =\n"
                  "    a,\n"
                  "    b\n");
    assert_value(cf, "list", "a,    b");
    maincf_free(&cf);

    /* Even the "=" may come on a continuation line. */
    cf = parse_ok("name\n  = value\n");
    assert_value(cf, "name", "value");
    maincf_free(&cf);
}

static void test_comment_inside_continuation(void **state)
{
    MAINCF *cf;

    (void) state;
    cf = parse_ok("a = one\n"
                  "# a comment does not end the logical line\n"
                  "  two\n"
                  "    # indented comment\n"
                  "\n"
                  "  three\n"
                  "b = four\n");
    assert_value(cf, "a", "one  two  three");
    assert_value(cf, "b", "four");
    assert_int_equal(maincf_find(cf, "b")->lineno, 7);
    maincf_free(&cf);
}

static void test_repeated_name(void **state)
{
    MAINCF *cf;
    HTABLE_ENTRY *ent;
    const char *order[3];
    int n = 0;

    (void) state;
    unit_log_reset();
    cf = parse_ok("a = 1\n"
                  "b = 2\n"
                  "c = 3\n"
                  "a = 4\n");
    assert_value(cf, "a", "4");
    assert_int_equal(maincf_find(cf, "a")->lineno, 4);
    assert_int_equal(cf->entries->used, 3);
    assert_true(unit_logged("warning: " PATH ", line 4: overriding earlier "
                            "entry"));
    /* The last one wins and takes the later place in file order. */
    HTABLE_FOREACH(cf->entries, ent) {
        assert_true(n < 3);
        order[n++] = ent->key;
    }
    assert_int_equal(n, 3);
    assert_string_equal(order[0], "b");
    assert_string_equal(order[1], "c");
    assert_string_equal(order[2], "a");
    maincf_free(&cf);

    /* Three times: still one entry, the last value, two warnings. */
    unit_log_reset();
    cf = parse_ok("x = 1\nx = 2\nx = 3\n");
    assert_value(cf, "x", "3");
    assert_int_equal(cf->entries->used, 1);
    assert_true(unit_logged("line 2: overriding earlier entry"));
    assert_true(unit_logged("line 3: overriding earlier entry"));
    maincf_free(&cf);

    /* No warning without a repeat. */
    unit_log_reset();
    cf = parse_ok("x = 1\ny = 1\n");
    assert_false(unit_logged("overriding"));
    maincf_free(&cf);
}

static void test_parse_twice_accumulates(void **state)
{
    MAINCF *cf = maincf_alloc(PATH);
    STRBUF *err = strbuf_alloc(64);

    (void) state;
    unit_log_reset();
    assert_int_equal(maincf_parse(cf, "a = 1\n", 6, err), 0);
    assert_int_equal(maincf_parse(cf, "a = 2\nb = 3\n", 12, err), 0);
    assert_value(cf, "a", "2");
    assert_value(cf, "b", "3");
    assert_true(unit_logged("overriding earlier entry"));
    maincf_free(&cf);
    strbuf_free(&err);
}

static void test_leading_whitespace_warns(void **state)
{
    MAINCF *cf;

    (void) state;
    unit_log_reset();
    cf = parse_ok("  a = b\nc = d\n");
    assert_value(cf, "a", "b");
    assert_value(cf, "c", "d");
    assert_true(unit_logged("warning: " PATH ", line 1: logical line must "
                            "not start with whitespace"));
    maincf_free(&cf);
}

/* --- syntax errors ---------------------------------------------------- */

static void test_missing_equals(void **state)
{
    char *why;

    (void) state;
    why = parse_bad_str("a = 1\n\nfoo bar\n");
    assert_starts(why, PATH ", line 3: missing '=' after parameter name");
    assert_non_null(strstr(why, "foo bar"));
    free(why);

    why = parse_bad_str("justaname\n");
    assert_starts(why, PATH ", line 1: missing '='");
    free(why);

    why = parse_bad_str("a b = c\n");
    assert_starts(why, PATH ", line 1: missing '='");
    free(why);
}

static void test_bad_name(void **state)
{
    static const char *bad[] = {
        "bad-name = x\n", "a.b = c\n", "= value\n", " = value\n",
        "na$me = v\n", "caf\xc3\xa9 = v\n", "{x} = y\n", "a/b=c\n",
    };
    char *why;

    (void) state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = parse_bad_str(bad[i]);
        assert_starts(why, PATH ", line 1: bad parameter name");
        free(why);
    }
    why = parse_bad_str("ok = 1\n# c\n\n  \nbad-name = 2\n");
    assert_starts(why, PATH ", line 5: bad parameter name");
    free(why);
}

static void test_error_line_numbers(void **state)
{
    char *why;
    const char *text;

    (void) state;
    /* The first physical line of the bad logical line is named. */
    text = "a = 1\n"
           "  continued\n"
           "# comment\n"
           "bad line\n"
           "  more of it\n";
    why = parse_bad_str(text);
    assert_starts(why, PATH ", line 4: missing '='");
    free(why);

    /* The entries before the error are kept; nothing after it. */
    {
        MAINCF *cf = maincf_alloc(PATH);
        STRBUF *err = strbuf_alloc(64);

        text = "a = 1\nbad\nc = 3\n";
        assert_int_equal(maincf_parse(cf, text, strlen(text), err), -1);
        assert_non_null(maincf_find(cf, "a"));
        assert_null(maincf_find(cf, "c"));
        maincf_free(&cf);
        strbuf_free(&err);
    }
}

static void test_nul_byte(void **state)
{
    static const char text1[] = "a = 1\nb = 2\0x\nc = 3\n";
    static const char text2[] = "a = 1\n  more\0\n";
    static const char text3[] = "\0";
    static const char text4[] = "a = 1\n# comment \0 here\nb = 2\n";
    char *why;

    (void) state;
    why = parse_bad(text1, sizeof(text1) - 1);
    assert_string_equal(why, PATH ", line 2: NUL byte in input");
    free(why);

    /* In a continuation line: that line is named. */
    why = parse_bad(text2, sizeof(text2) - 1);
    assert_string_equal(why, PATH ", line 2: NUL byte in input");
    free(why);

    why = parse_bad(text3, 1);
    assert_string_equal(why, PATH ", line 1: NUL byte in input");
    free(why);

    /* Even in a comment: the file is binary, not main.cf. */
    why = parse_bad(text4, sizeof(text4) - 1);
    assert_string_equal(why, PATH ", line 2: NUL byte in input");
    free(why);
}

static void test_empty_input(void **state)
{
    MAINCF *cf;
    STRBUF *err = strbuf_alloc(16);
    int rc;

    (void) state;
    cf = parse_n("", 0, &rc, err);
    assert_int_equal(rc, 0);
    assert_int_equal(cf->entries->used, 0);
    maincf_free(&cf);
    cf = parse_n("\n\n# only comments\n   \n", 22, &rc, err);
    assert_int_equal(rc, 0);
    assert_int_equal(cf->entries->used, 0);
    maincf_free(&cf);
    strbuf_free(&err);
}

/*
 * The parser must respect len: the buffer is not NUL-terminated (under
 * ASan an overread is caught), and a text cut short mid-line (a partial
 * read) gives exactly the bytes that are there.
 */
static void test_length_is_respected(void **state)
{
    static const char src[] = "alpha = one\nbeta = two\n";
    size_t len = sizeof(src) - 1;
    char *buf = malloc(len);
    MAINCF *cf;
    STRBUF *err = strbuf_alloc(16);
    int rc;

    (void) state;
    memcpy(buf, src, len);
    cf = parse_n(buf, len, &rc, err);
    assert_int_equal(rc, 0);
    assert_value(cf, "beta", "two");
    maincf_free(&cf);

    /* Cut in the middle of the second value. */
    cf = parse_n(buf, len - 3, &rc, err);
    assert_int_equal(rc, 0);
    assert_value(cf, "alpha", "one");
    assert_value(cf, "beta", "t");
    maincf_free(&cf);

    /* Cut in the middle of the first name: "alp" has no "=". */
    cf = parse_n(buf, 3, &rc, err);
    assert_int_equal(rc, -1);
    assert_starts(err->data, PATH ", line 1: missing '='");
    maincf_free(&cf);

    /* Cut just after the first newline. */
    cf = parse_n(buf, 12, &rc, err);
    assert_int_equal(rc, 0);
    assert_value(cf, "alpha", "one");
    assert_null(maincf_find(cf, "beta"));
    maincf_free(&cf);
    free(buf);
    strbuf_free(&err);
}

static void test_oversized(void **state)
{
    size_t big = 1024 * 1024;
    STRBUF *text = strbuf_alloc(big + 64);
    STRBUF *name = strbuf_alloc(70000);
    MAINCF *cf;
    const MAINCF_ENTRY *ent;
    char *why;

    (void) state;
    /* A 1 MB value. */
    strbuf_cat(text, "big = ");
    for (size_t i = 0; i < big; i++)
        strbuf_addch(text, 'a' + (int) (i % 26));
    strbuf_cat(text, "\nafter = 1\n");
    cf = parse_ok(text->data);
    ent = maincf_find(cf, "big");
    assert_non_null(ent);
    assert_int_equal(strlen(ent->value), big);
    assert_int_equal(ent->value[big - 1], 'a' + (int) ((big - 1) % 26));
    assert_value(cf, "after", "1");
    maincf_free(&cf);

    /* A 64 KB name. */
    for (size_t i = 0; i < 65536; i++)
        strbuf_addch(name, 'n');
    strbuf_printf(text, "%s = v\n", name->data);
    cf = parse_ok(text->data);
    assert_value(cf, name->data, "v");
    maincf_free(&cf);

    /* A value continued over 20000 lines. */
    strbuf_set(text, "long =");
    for (int i = 0; i < 20000; i++)
        strbuf_cat(text, "\n x");
    strbuf_cat(text, "\nnext = 2\n");
    cf = parse_ok(text->data);
    ent = maincf_find(cf, "long");
    assert_int_equal(strlen(ent->value), 20000 * 2 - 1);
    assert_int_equal(maincf_find(cf, "next")->lineno, 20002);
    maincf_free(&cf);

    /* 50000 distinct names (the table grows). */
    strbuf_reset(text);
    for (int i = 0; i < 50000; i++)
        strbuf_printf_append(text, "p%d = %d\n", i, i * 7);
    cf = parse_ok(text->data);
    assert_int_equal(cf->entries->used, 50000);
    assert_value(cf, "p0", "0");
    assert_value(cf, "p49999", "349993");
    assert_int_equal(maincf_find(cf, "p12345")->lineno, 12346);
    maincf_free(&cf);

    /* An error deep into a big file still names its line. */
    strbuf_cat(text, "oops\n");
    why = parse_bad(text->data, text->len);
    assert_starts(why, PATH ", line 50001: missing '='");
    free(why);

    strbuf_free(&text);
    strbuf_free(&name);
}

/* --- helpers ---------------------------------------------------------- */

static void test_split_line(void **state)
{
    char line1[] = "  name  =  some value  ";
    char line2[] = "a=b";
    char line3[] = "a=";
    char line4[] = "novalue";
    char line5[] = "-x = 1";
    char line6[] = "";
    char line7[] = "a==b";
    char *name;
    char *value;
    const char *why = NULL;

    (void) state;
    assert_int_equal(maincf_split_line(line1, &name, &value, &why), 0);
    assert_string_equal(name, "name");
    assert_string_equal(value, "some value");
    assert_int_equal(maincf_split_line(line2, &name, &value, &why), 0);
    assert_string_equal(name, "a");
    assert_string_equal(value, "b");
    assert_int_equal(maincf_split_line(line3, &name, &value, &why), 0);
    assert_string_equal(name, "a");
    assert_string_equal(value, "");
    assert_int_equal(maincf_split_line(line7, &name, &value, &why), 0);
    assert_string_equal(value, "=b");
    assert_int_equal(maincf_split_line(line4, &name, &value, &why), -1);
    assert_string_equal(why, "missing '=' after parameter name");
    assert_int_equal(maincf_split_line(line5, &name, &value, &why), -1);
    assert_string_equal(why, "bad parameter name");
    assert_int_equal(maincf_split_line(line6, &name, &value, &why), -1);
    assert_string_equal(why, "bad parameter name");
}

static void test_valid_name(void **state)
{
    (void) state;
    assert_true(maincf_valid_name("a", 1));
    assert_true(maincf_valid_name("smtpd_banner", 12));
    assert_true(maincf_valid_name("ABC_09_xyz", 10));
    assert_true(maincf_valid_name("_", 1));
    assert_true(maincf_valid_name("9", 1));
    assert_false(maincf_valid_name("", 0));
    assert_false(maincf_valid_name("a-b", 3));
    assert_false(maincf_valid_name("a b", 3));
    assert_false(maincf_valid_name("a.b", 3));
    assert_false(maincf_valid_name("a=b", 3));
    assert_false(maincf_valid_name("\xe9t\xe9", 3));
    /* Only len bytes count. */
    assert_true(maincf_valid_name("ab-c", 2));
    assert_false(maincf_valid_name("ab\0c", 4));
}

static void test_read_file(void **state)
{
    const char *path;
    MAINCF *cf;
    STRBUF *err = strbuf_alloc(64);
    STRBUF *missing = strbuf_alloc(64);

    (void) state;
    path = unit_write_file("main.cf", "# test\nmyhostname = mx.example.com\n"
                           "relay = [mx]:25\n");
    cf = maincf_alloc(path);
    assert_int_equal(maincf_read(cf, err), 0);
    assert_value(cf, "myhostname", "mx.example.com");
    assert_value(cf, "relay", "[mx]:25");
    assert_string_equal(cf->path, path);
    maincf_free(&cf);

    /* Errors name the file that was read. */
    path = unit_write_file("bad.cf", "ok = 1\nnot ok\n");
    cf = maincf_alloc(path);
    assert_int_equal(maincf_read(cf, err), -1);
    assert_non_null(strstr(err->data, "bad.cf, line 2: missing '='"));
    assert_int_not_equal(errno, ENOENT);
    maincf_free(&cf);

    /* A missing file is an error, and errno says why. */
    strbuf_printf(missing, "%s/does-not-exist.cf", unit_tmpdir());
    cf = maincf_alloc(missing->data);
    strbuf_reset(err);
    assert_int_equal(maincf_read(cf, err), -1);
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err->data, "does-not-exist.cf"));
    assert_non_null(strstr(err->data, "No such file"));
    maincf_free(&cf);

    /* A file with a NUL byte. */
    {
        char nulpath[256];
        FILE *fp;

        snprintf(nulpath, sizeof(nulpath), "%s/nul.cf", unit_tmpdir());
        fp = fopen(nulpath, "w");
        assert_non_null(fp);
        fwrite("a = 1\n\nb = x\0y\n", 1, 15, fp);
        fclose(fp);
        cf = maincf_alloc(nulpath);
        assert_int_equal(maincf_read(cf, err), -1);
        assert_non_null(strstr(err->data, "nul.cf, line 3: NUL byte"));
        maincf_free(&cf);
    }
    strbuf_free(&err);
    strbuf_free(&missing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_value_keeps_equals_and_hash),
        cmocka_unit_test(test_comments_and_blank_lines),
        cmocka_unit_test(test_continuation),
        cmocka_unit_test(test_comment_inside_continuation),
        cmocka_unit_test(test_repeated_name),
        cmocka_unit_test(test_parse_twice_accumulates),
        cmocka_unit_test(test_leading_whitespace_warns),
        cmocka_unit_test(test_missing_equals),
        cmocka_unit_test(test_bad_name),
        cmocka_unit_test(test_error_line_numbers),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_split_line),
        cmocka_unit_test(test_valid_name),
        cmocka_unit_test(test_read_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
