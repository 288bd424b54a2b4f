/*
 * test_argv - string vectors and the token cursor: splitting on several
 * delimiters, empty fields, "{ braced items }" and their errors.
 */
#include "unit.h"

#include "util/argv.h"
#include "util/token.h"

/* Compare av with a NULL-terminated list. */
static void assert_argv(const ARGV *av, const char *const *expect)
{
    size_t n = 0;

    assert_non_null(av);
    while (expect[n])
        n++;
    if (av->argc != n) {
        STRBUF *got = strbuf_alloc(64);

        for (size_t i = 0; i < av->argc; i++)
            strbuf_printf_append(got, "[%s]", av->argv[i]);
        fail_msg("argc %zu, expected %zu: %s", av->argc, n, got->data);
    }
    for (size_t i = 0; i < n; i++)
        assert_string_equal(av->argv[i], expect[i]);
    assert_null(av->argv[av->argc]);
}

#define ARGV_IS(av, ...) do { \
        static const char *const expect_[] = {__VA_ARGS__, NULL}; \
        assert_argv((av), expect_); \
    } while (0)
#define ARGV_EMPTY(av) do { \
        assert_non_null(av); \
        assert_int_equal((av)->argc, 0); \
        assert_null((av)->argv[0]); \
    } while (0)

static void test_add_grow_truncate(void **state)
{
    ARGV *av = argv_alloc(0);
    char name[32];

    (void) state;
    ARGV_EMPTY(av);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "item%d", i);
        argv_add(av, name);
        assert_int_equal(av->argc, (size_t) i + 1);
        assert_null(av->argv[av->argc]);
    }
    assert_string_equal(av->argv[0], "item0");
    assert_string_equal(av->argv[999], "item999");

    /* Copies, not pointers to the caller's storage. */
    snprintf(name, sizeof(name), "changed");
    assert_string_equal(av->argv[999], "item999");

    argv_truncate(av, 2);
    ARGV_IS(av, "item0", "item1");
    argv_truncate(av, 10);              /* longer: no change */
    ARGV_IS(av, "item0", "item1");
    argv_truncate(av, 0);
    ARGV_EMPTY(av);
    argv_addn(av, "abcdef", 3);
    argv_addn(av, "xy", 10);            /* stops at the NUL */
    argv_addn(av, "", 0);
    ARGV_IS(av, "abc", "xy", "");
    argv_free(&av);
    assert_null(av);
    argv_free(&av);
}

static void test_sort_copy(void **state)
{
    ARGV *av = argv_split("pear apple fig banana apple", " ");
    ARGV *cp;

    (void) state;
    cp = argv_copy(av);
    argv_sort(av);
    ARGV_IS(av, "apple", "apple", "banana", "fig", "pear");
    ARGV_IS(cp, "pear", "apple", "fig", "banana", "apple");
    assert_ptr_not_equal(cp->argv[0], av->argv[4]);
    argv_free(&av);
    argv_free(&cp);

    av = argv_alloc(1);
    cp = argv_copy(av);
    ARGV_EMPTY(cp);
    argv_add(cp, "grows");              /* a copy of nothing still grows */
    ARGV_IS(cp, "grows");
    argv_free(&av);
    argv_free(&cp);
}

static void test_split(void **state)
{
    ARGV *av;

    (void) state;
    av = argv_split("a, b,,c ,\t d", ", \t");
    ARGV_IS(av, "a", "b", "c", "d");
    argv_free(&av);

    /* Leading, trailing and repeated delimiters make no empty fields. */
    av = argv_split(",,,x,,,", ",");
    ARGV_IS(av, "x");
    argv_free(&av);
    av = argv_split("", ", ");
    ARGV_EMPTY(av);
    argv_free(&av);
    av = argv_split(" ,  , ", ", ");
    ARGV_EMPTY(av);
    argv_free(&av);

    /* No delimiters: one field. */
    av = argv_split("one two", "");
    ARGV_IS(av, "one two");
    argv_free(&av);

    /* Braces are ordinary text for the plain split. */
    av = argv_split("{ a b }", " ");
    ARGV_IS(av, "{", "a", "b", "}");
    argv_free(&av);

    /* Bytes above 0x7f are data. */
    av = argv_split("caf\xc3\xa9:\xff", ":");
    ARGV_IS(av, "caf\xc3\xa9", "\xff");
    argv_free(&av);
}

static void test_split_braced(void **state)
{
    const char *err = NULL;
    ARGV *av;

    (void) state;
    av = argv_split_braced("a, { b c }, d", ", ", &err);
    ARGV_IS(av, "a", "b c", "d");
    argv_free(&av);

    /* Whitespace just inside the braces goes; inner text stays. */
    av = argv_split_braced("{\t x  =  y \n}", " \t\n", &err);
    ARGV_IS(av, "x  =  y");
    argv_free(&av);

    /* Nested braces: the outer pair goes, the inner ones stay. */
    av = argv_split_braced("{ a { b c } d } e", " ", &err);
    ARGV_IS(av, "a { b c } d", "e");
    argv_free(&av);
    av = argv_split_braced("{{x}}", " ", &err);
    ARGV_IS(av, "{x}");
    argv_free(&av);

    /* Empty braces are an empty item, not nothing. */
    av = argv_split_braced("a {} b { }", " ", &err);
    ARGV_IS(av, "a", "", "b", "");
    argv_free(&av);

    /* A brace inside a word is ordinary text. */
    av = argv_split_braced("a{b c}d", " ", &err);
    ARGV_IS(av, "a{b", "c}d");
    argv_free(&av);

    /* Delimiters inside braces do not split. */
    av = argv_split_braced("x,{y, z},w", ",", &err);
    ARGV_IS(av, "x", "y, z", "w");
    argv_free(&av);

    av = argv_split_braced("", " ", &err);
    ARGV_EMPTY(av);
    argv_free(&av);
}

static void test_split_braced_errors(void **state)
{
    const char *err;
    ARGV *av;

    (void) state;
    err = NULL;
    av = argv_split_braced("a { b c", " ", &err);
    assert_null(av);
    assert_non_null(err);
    assert_non_null(strstr(err, "missing '}'"));

    err = NULL;
    av = argv_split_braced("{ a { b }", " ", &err);
    assert_null(av);
    assert_non_null(strstr(err, "missing '}'"));

    err = NULL;
    av = argv_split_braced("{ a }b c", " ", &err);
    assert_null(av);
    assert_non_null(err);
    assert_non_null(strstr(err, "after '}'"));

    err = NULL;
    av = argv_split_braced("{a}}", " ", &err);
    assert_null(av);
    assert_non_null(err);

    /* A glued "}" followed by a delimiter is fine. */
    av = argv_split_braced("{a},b", ",", &err);
    ARGV_IS(av, "a", "b");
    argv_free(&av);
}

static void test_token_next(void **state)
{
    TOKEN_CURSOR cur;
    const char *tok = NULL;
    size_t len = 0;
    const char *text = "  alpha\tbeta  ";

    (void) state;
    token_init(&cur, text);
    assert_int_equal(token_next(&cur, " \t", &tok, &len), 1);
    assert_ptr_equal(tok, text + 2);    /* points into the input */
    assert_int_equal(len, 5);
    assert_int_equal(token_next(&cur, " \t", &tok, &len), 1);
    assert_memory_equal(tok, "beta", 4);
    assert_int_equal(len, 4);
    assert_int_equal(token_next(&cur, " \t", &tok, &len), 0);
    assert_int_equal(token_next(&cur, " \t", &tok, &len), 0);
    assert_string_equal(text, "  alpha\tbeta  ");       /* untouched */

    /*
     * The delimiter set may change from call to call; the cursor stops at
     * the delimiter that ended the token, so the caller can see which.
     */
    token_init(&cur, "key=value with=sign");
    assert_int_equal(token_next(&cur, "=", &tok, &len), 1);
    assert_int_equal(len, 3);
    assert_int_equal(*cur.pos, '=');
    assert_int_equal(token_next(&cur, "", &tok, &len), 1);
    assert_int_equal(len, 16);
    assert_memory_equal(tok, "=value with=sign", len);
}

static void test_token_braced(void **state)
{
    TOKEN_CURSOR cur;
    const char *tok = NULL;
    const char *err = NULL;
    size_t len = 0;

    (void) state;
    token_init(&cur, " { a b } plain ");
    assert_int_equal(token_next_braced(&cur, " ", &tok, &len, &err), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(tok, "a b", 3);
    assert_int_equal(token_next_braced(&cur, " ", &tok, &len, &err), 1);
    assert_int_equal(len, 5);
    assert_memory_equal(tok, "plain", 5);
    assert_int_equal(token_next_braced(&cur, " ", &tok, &len, &err), 0);

    /* After an error the cursor is at the end: no loop on the caller. */
    token_init(&cur, "{ never closed");
    assert_int_equal(token_next_braced(&cur, " ", &tok, &len, &err), -1);
    assert_int_equal(token_next_braced(&cur, " ", &tok, &len, &err), 0);
    token_init(&cur, "{x}y z");
    assert_int_equal(token_next_braced(&cur, " ", &tok, &len, &err), -1);
    assert_int_equal(token_next_braced(&cur, " ", &tok, &len, &err), 0);
}

static void test_match_brace(void **state)
{
    const char *s = "{a{b}c}d}";

    (void) state;
    assert_ptr_equal(token_match_brace(s), s + 6);
    assert_ptr_equal(token_match_brace(s + 2), s + 4);
    assert_null(token_match_brace("{{}"));
    assert_null(token_match_brace("{"));
    s = "{}";
    assert_ptr_equal(token_match_brace(s), s + 1);
}

/* Oversized input: a long list and deep nesting. */
static void test_large_input(void **state)
{
    STRBUF *text = strbuf_alloc(0);
    const char *err = NULL;
    ARGV *av;
    int i;

    (void) state;
    for (i = 0; i < 20000; i++)
        strbuf_printf_append(text, "w%d,", i);
    av = argv_split(text->data, ",");
    assert_int_equal(av->argc, 20000);
    assert_string_equal(av->argv[19999], "w19999");
    argv_free(&av);

    strbuf_reset(text);
    for (i = 0; i < 5000; i++)
        strbuf_addch(text, '{');
    strbuf_cat(text, "core");
    for (i = 0; i < 5000; i++)
        strbuf_addch(text, '}');
    av = argv_split_braced(text->data, " ", &err);
    assert_non_null(av);
    assert_int_equal(av->argc, 1);
    assert_int_equal(strlen(av->argv[0]), 4999 * 2 + 4);
    argv_free(&av);
    strbuf_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_grow_truncate),
        cmocka_unit_test(test_sort_copy),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_braced),
        cmocka_unit_test(test_split_braced_errors),
        cmocka_unit_test(test_token_next),
        cmocka_unit_test(test_token_braced),
        cmocka_unit_test(test_match_brace),
        cmocka_unit_test(test_large_input),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
