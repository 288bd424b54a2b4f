/*
 * test_dict_source - the postmap(1) source format (lib/mail/dict_source.c):
 * "key whitespace value", trimmed, quoted keys keep their quotes, keys
 * folded on request, duplicates warned about (first kept), and a line
 * without a value or a NUL byte refuses the whole source.
 */
#include "unit.h"

#include "mail/dict_source.h"

#define ORIGIN  "/etc/postern/access"

/* What the callback saw: "key=value@line;" per entry. */
typedef struct SEEN {
    STRBUF *text;
    int     calls;
    int     stop_at;                    /* return -1 on this call (1-based) */
} SEEN;

static int collect(const char *key, const char *value, int lineno, void *ctx,
                   STRBUF *err)
{
    SEEN *seen = ctx;

    seen->calls++;
    strbuf_printf_append(seen->text, "%s=%s@%d;", key, value, lineno);
    if (seen->calls == seen->stop_at) {
        strbuf_printf(err, "callback says stop at \"%s\"", key);
        return -1;
    }
    return 0;
}

/* Parse len bytes; returns the status, *seen_r holds what was collected. */
static int parse_n(const char *text, size_t len, int fold, SEEN *seen,
                   STRBUF *err)
{
    seen->text = strbuf_alloc(64);
    seen->calls = 0;
    return dict_source_parse(text, len, ORIGIN, fold, collect, seen, err);
}

static void parse_ok_flags(const char *text, int flags, const char *want);

/* A valid source: its entries must be exactly 'want'. */
static void parse_ok(const char *text, int fold, const char *want)
{
    parse_ok_flags(text, fold ? DICT_SOURCE_FOLD : 0, want);
}

static void parse_ok_flags(const char *text, int fold, const char *want)
{
    SEEN seen = {NULL, 0, 0};
    STRBUF *err = strbuf_alloc(64);

    if (parse_n(text, strlen(text), fold, &seen, err) != 0)
        fail_msg("unexpected error: %s", err->data);
    if (strcmp(seen.text->data, want) != 0)
        fail_msg("\n got \"%s\"\nwant \"%s\"", seen.text->data, want);
    strbuf_free(&seen.text);
    strbuf_free(&err);
}

/* A bad source: the error must be exactly 'want'. */
static void parse_bad_n(const char *text, size_t len, const char *want)
{
    SEEN seen = {NULL, 0, 0};
    STRBUF *err = strbuf_alloc(64);

    if (parse_n(text, len, 1, &seen, err) != -1)
        fail_msg("no error for \"%s\"", text);
    if (strcmp(err->data, want) != 0)
        fail_msg("\n got \"%s\"\nwant \"%s\"", err->data, want);
    strbuf_free(&seen.text);
    strbuf_free(&err);
}

static void parse_bad(const char *text, const char *want)
{
    parse_bad_n(text, strlen(text), want);
}

static void test_trimming(void **state)
{
    (void) state;
    unit_log_reset();
    /* Only the very first line can start with whitespace: later, that
     * makes a continuation line. */
    parse_ok("  lead   spaced  value  here   \n"
             "key value\n"
             "tab\tseparated\tvalue\t\n"
             "mixed \t \t value\n"
             "crlf value\r\n"
             "equals a=b = c\n"
             "hash value # not a comment\n"
             "last no newline",
             1,
             "lead=spaced  value  here@1;"
             "key=value@2;"
             "tab=separated\tvalue@3;"
             "mixed=value@4;"
             "crlf=value@5;"
             "equals=a=b = c@6;"
             "hash=value # not a comment@7;"
             "last=no newline@8;");
    assert_false(unit_logged("warning"));
}

static void test_comments_and_continuation(void **state)
{
    (void) state;
    parse_ok("# comment\n"
             "\n"
             "   # indented comment\n"
             "a first\n"
             "  second\n"
             "# comment inside\n"
             "\n"
             "\tthird\n"
             "b 2\n"
             "c\n"
             "  value on the next line\n",
             1,
             "a=first  second\tthird@4;"
             "b=2@9;"
             "c=value on the next line@10;");
}

static void test_quoted_keys(void **state)
{
    (void) state;
    parse_ok("\"with space\" value\n"
             "\"\" empty quoted key\n"
             "\"Mixed Case\"\tv2\n"
             "\"tab\there\" v4\n",
             1,
             "\"with space\"=value@1;"
             "\"\"=empty quoted key@2;"
             "\"mixed case\"=v2@3;"
             "\"tab\there\"=v4@4;");
    parse_ok("  \"lead\"   v3\n", 1, "\"lead\"=v3@1;");
    parse_ok("\"Mixed Case\" V\n", 0, "\"Mixed Case\"=V@1;");
    /* A quote in the middle of a key is just a character. */
    parse_ok("a\"b v\n", 1, "a\"b=v@1;");

    parse_bad("ok 1\n\"unterminated key value\n",
              ORIGIN ", line 2: missing '\"' in key");
    parse_bad("\"a\"b value\n", ORIGIN ", line 1: text after quoted key");
    parse_bad("\"quoted key only\"\n",
              ORIGIN ", line 1: expected format: key whitespace value");
    parse_bad("\"quoted key only\"   \n",
              ORIGIN ", line 1: expected format: key whitespace value");
}

static void test_fold(void **state)
{
    (void) state;
    parse_ok("User@Example.COM OK\nlower Value\n", 1,
             "user@example.com=OK@1;lower=Value@2;");
    parse_ok("User@Example.COM OK\nlower Value\n", 0,
             "User@Example.COM=OK@1;lower=Value@2;");
    /* Non-ASCII bytes are left alone. */
    parse_ok("\xc3\x89T\xc3\x89 v\n", 1, "\xc3\x89t\xc3\x89=v@1;");
}

static void test_duplicates(void **state)
{
    (void) state;
    unit_log_reset();
    parse_ok("a 1\nb 2\nA 3\na 4\n", 1, "a=1@1;b=2@2;");
    assert_true(unit_logged("warning: " ORIGIN ", line 3: duplicate entry: "
                            "\"a\""));
    assert_true(unit_logged("warning: " ORIGIN ", line 4: duplicate entry: "
                            "\"a\""));

    /* Without folding, A and a are different keys. */
    unit_log_reset();
    parse_ok("a 1\nA 3\na 4\n", 0, "a=1@1;A=3@2;");
    assert_true(unit_logged("line 3: duplicate entry: \"a\""));
    assert_false(unit_logged("line 2"));
}

static void test_missing_value(void **state)
{
    (void) state;
    parse_bad("keyonly\n",
              ORIGIN ", line 1: expected format: key whitespace value");
    parse_bad("a 1\n# c\n\nkeyonly   \t\nb 2\n",
              ORIGIN ", line 4: expected format: key whitespace value");
    parse_bad("a 1\n  \nkey\r\n",
              ORIGIN ", line 3: expected format: key whitespace value");
    /* The line number is the first line of the logical line. */
    parse_bad("a 1\nbad\n# comment\n\n",
              ORIGIN ", line 2: expected format: key whitespace value");
    /* Entries before the bad line were seen; the status says stop. */
    {
        SEEN seen = {NULL, 0, 0};
        STRBUF *err = strbuf_alloc(64);
        const char *text = "a 1\nb 2\nbad\nc 3\n";

        assert_int_equal(parse_n(text, strlen(text), 1, &seen, err), -1);
        assert_string_equal(seen.text->data, "a=1@1;b=2@2;");
        strbuf_free(&seen.text);
        strbuf_free(&err);
    }
}

static void test_callback_stops(void **state)
{
    SEEN seen = {NULL, 0, 2};
    STRBUF *err = strbuf_alloc(64);
    const char *text = "a 1\nb 2\nc 3\nd 4\n";

    (void) state;
    assert_int_equal(parse_n(text, strlen(text), 1, &seen, err), -1);
    assert_int_equal(seen.calls, 2);
    assert_string_equal(seen.text->data, "a=1@1;b=2@2;");
    /* The callback's own reason is kept. */
    assert_string_equal(err->data, "callback says stop at \"b\"");
    strbuf_free(&seen.text);

    /* Stopping at the last entry is still a failure. */
    seen.stop_at = 4;
    assert_int_equal(parse_n(text, strlen(text), 1, &seen, err), -1);
    assert_int_equal(seen.calls, 4);
    strbuf_free(&seen.text);
    strbuf_free(&err);
}

static void test_nul_byte(void **state)
{
    static const char text1[] = "a 1\nb 2\0\nc 3\n";
    static const char text2[] = "a 1\n  more\0\n";
    static const char text3[] = "a\0 1\n";
    static const char text4[] = "a 1\nb 2\nc 3\n# \0\n";

    (void) state;
    parse_bad_n(text1, sizeof(text1) - 1, ORIGIN ", line 2: NUL byte in "
                "input");
    parse_bad_n(text2, sizeof(text2) - 1, ORIGIN ", line 2: NUL byte in "
                "input");
    parse_bad_n(text3, sizeof(text3) - 1, ORIGIN ", line 1: NUL byte in "
                "input");
    parse_bad_n(text4, sizeof(text4) - 1, ORIGIN ", line 4: NUL byte in "
                "input");
    parse_bad_n("\0", 1, ORIGIN ", line 1: NUL byte in input");
}

static void test_empty(void **state)
{
    (void) state;
    parse_ok("", 1, "");
    parse_ok("\n\n# nothing\n   \n", 1, "");
    {
        SEEN seen = {NULL, 0, 0};
        STRBUF *err = strbuf_alloc(64);

        assert_int_equal(parse_n("ignored", 0, 1, &seen, err), 0);
        assert_int_equal(seen.calls, 0);
        strbuf_free(&seen.text);
        strbuf_free(&err);
    }
}

/* The text is not NUL-terminated, and a short len is a partial read. */
static void test_length_is_respected(void **state)
{
    static const char src[] = "alpha one\nbeta two\n";
    size_t len = sizeof(src) - 1;
    char *buf = malloc(len);
    SEEN seen = {NULL, 0, 0};
    STRBUF *err = strbuf_alloc(64);

    (void) state;
    memcpy(buf, src, len);
    assert_int_equal(parse_n(buf, len, 1, &seen, err), 0);
    assert_string_equal(seen.text->data, "alpha=one@1;beta=two@2;");
    strbuf_free(&seen.text);
    assert_int_equal(parse_n(buf, len - 2, 1, &seen, err), 0);
    assert_string_equal(seen.text->data, "alpha=one@1;beta=tw@2;");
    strbuf_free(&seen.text);
    assert_int_equal(parse_n(buf, 14, 1, &seen, err), -1);
    assert_string_equal(err->data, ORIGIN ", line 2: expected format: key "
                        "whitespace value");
    strbuf_free(&seen.text);
    free(buf);
    strbuf_free(&err);
}

static void test_oversized(void **state)
{
    STRBUF *text = strbuf_alloc(4 * 1024 * 1024);
    SEEN seen = {NULL, 0, 0};
    STRBUF *err = strbuf_alloc(64);

    (void) state;
    /* A 1 MB key and a 1 MB value. */
    for (int i = 0; i < 1024 * 1024; i++)
        strbuf_addch(text, 'K');
    strbuf_addch(text, ' ');
    for (int i = 0; i < 1024 * 1024; i++)
        strbuf_addch(text, 'v');
    strbuf_cat(text, "\nsmall 1\n");
    assert_int_equal(parse_n(text->data, text->len, 1, &seen, err), 0);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(seen.text->len,
                     2 * 1024 * 1024 + strlen("=@1;small=1@2;"));
    assert_int_equal(seen.text->data[0], 'k');
    strbuf_free(&seen.text);

    /* 100000 entries, then an error on the last line. */
    strbuf_reset(text);
    for (int i = 0; i < 100000; i++)
        strbuf_printf_append(text, "key%d value%d\n", i, i);
    assert_int_equal(parse_n(text->data, text->len, 1, &seen, err), 0);
    assert_int_equal(seen.calls, 100000);
    strbuf_free(&seen.text);
    strbuf_cat(text, "oops\n");
    assert_int_equal(parse_n(text->data, text->len, 1, &seen, err), -1);
    assert_string_equal(err->data, ORIGIN ", line 100001: expected format: "
                        "key whitespace value");
    strbuf_free(&seen.text);
    strbuf_free(&text);
    strbuf_free(&err);
}

static void test_parse_file(void **state)
{
    SEEN seen = {NULL, 0, 0};
    STRBUF *err = strbuf_alloc(64);
    STRBUF *want = strbuf_alloc(64);
    const char *path;

    (void) state;
    path = unit_write_file("source", "Key Value\n# c\nother 2\n");
    seen.text = strbuf_alloc(64);
    assert_int_equal(dict_source_parse_file(path, 1, collect, &seen, err), 0);
    assert_string_equal(seen.text->data, "key=Value@1;other=2@3;");
    strbuf_free(&seen.text);

    /* Errors name the file. */
    path = unit_write_file("source", "a 1\nb\n");
    seen.text = strbuf_alloc(64);
    assert_int_equal(dict_source_parse_file(path, 1, collect, &seen, err),
                     -1);
    strbuf_printf(want, "%s, line 2: expected format: key whitespace value",
                  path);
    assert_string_equal(err->data, want->data);
    strbuf_free(&seen.text);

    strbuf_printf(want, "%s/no-such-source", unit_tmpdir());
    seen.text = strbuf_alloc(64);
    seen.calls = 0;
    {
        char *missing = strbuf_export(&want);

        want = strbuf_alloc(64);
        assert_int_equal(dict_source_parse_file(missing, 1, collect, &seen,
                                                err), -1);
        strbuf_printf(want, "open %s: No such file or directory", missing);
        assert_string_equal(err->data, want->data);
        assert_int_equal(seen.calls, 0);
        free(missing);
    }
    strbuf_free(&seen.text);
    strbuf_free(&err);
    strbuf_free(&want);
}

/* aliases(5) syntax: "name: value", quotes dropped, keys folded. */
static void test_aliases(void **state)
{
    const int flags = DICT_SOURCE_ALIASES | DICT_SOURCE_FOLD;
    SEEN seen = {NULL, 0, 0};
    STRBUF *err = strbuf_alloc(64);

    (void) state;
    parse_ok_flags("Postmaster: root\nroot:alice, bob\n  carol\n"
                   "\"a b\" : x\nmailer-daemon :postmaster\n", flags,
                   "postmaster=root@1;root=alice, bob  carol@2;a b=x@4;"
                   "mailer-daemon=postmaster@5;");
    assert_int_equal(parse_n("no colon here\n", 14, flags, &seen, err), -1);
    assert_non_null(strstr(err->data, "line 1: expected format: name: value"));
    strbuf_free(&seen.text);
    assert_int_equal(parse_n(": empty\n", 8, flags, &seen, err), -1);
    strbuf_free(&seen.text);
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trimming),
        cmocka_unit_test(test_comments_and_continuation),
        cmocka_unit_test(test_quoted_keys),
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_aliases),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
