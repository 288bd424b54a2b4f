/*
 * test_mac_expand - every form in mac_expand.h, recursion through the
 * lookup callback, runaway self references, syntax errors, Postfix's own
 * default strings, and truncated or oversized input.
 */
#include "unit.h"

#include "util/mac_expand.h"
#include "util/xmalloc.h"

/* The "parameters" seen through the lookup callback. */
typedef struct VAR {
    const char *name;
    const char *value;
} VAR;

static VAR vars[] = {
    {"a", "A"},
    {"b", "B"},
    {"a_b", "AB"},
    {"empty", ""},
    {"num", "10"},
    {"chain1", "<$chain2>"},
    {"chain2", "[$a]"},
    {"self", "x$self"},
    {"selfcond", "${selfcond?{y}}"},
    {"ping", "$pong"},
    {"pong", "${ping}"},
    {"dollar", "$$a"},
    {"compatibility_level", NULL},      /* set by the tests */
    {"multi_instance_name", NULL},
    {"stress", NULL},
    {NULL, NULL},
};

static int lookups;

static const char *lookup(const char *name, void *ctx)
{
    (void) ctx;
    lookups++;
    for (VAR *v = vars; v->name; v++)
        if (strcmp(v->name, name) == 0)
            return v->value;
    return NULL;
}

static void set_var(const char *name, const char *value)
{
    for (VAR *v = vars; v->name; v++) {
        if (strcmp(v->name, name) == 0) {
            v->value = value;
            return;
        }
    }
    fail_msg("no variable %s", name);
}

/* Expand and compare; the output buffer starts with "pre:". */
static void expand_flags(const char *text, int flags, const char *expect)
{
    STRBUF *out = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);

    strbuf_set(out, "pre:");
    if (mac_expand(out, text, flags, lookup, NULL, err) != 0)
        fail_msg("\"%s\": unexpected error: %s", text, err->data);
    if (strncmp(out->data, "pre:", 4) != 0 || strcmp(out->data + 4, expect))
        fail_msg("\"%s\" expanded to \"%s\", expected \"pre:%s\"", text,
                 out->data, expect);
    assert_int_equal(strlen(out->data), out->len);
    strbuf_free(&out);
    strbuf_free(&err);
}

static void expand(const char *text, const char *expect)
{
    expand_flags(text, 0, expect);
    expand_flags(text, MAC_EXP_RECURSE, expect);
}

/* Expansion that must fail with a message containing 'why'. */
static void expand_error(const char *text, int flags, const char *why)
{
    STRBUF *out = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);

    if (mac_expand(out, text, flags, lookup, NULL, err) != -1)
        fail_msg("\"%s\" expanded to \"%s\", expected an error", text,
                 out->data);
    if (err->len == 0 || strstr(err->data, why) == NULL)
        fail_msg("\"%s\": error \"%s\" lacks \"%s\"", text, err->data, why);
    strbuf_free(&out);
    strbuf_free(&err);
}

static void test_plain_names(void **state)
{
    (void) state;
    expand("", "");
    expand("no macros here", "no macros here");
    expand("$a", "A");
    expand("${a}", "A");
    expand("$(a)", "A");
    expand("x$a.y", "xA.y");            /* a name ends at a non-name char */
    expand("$a$b", "AB");
    expand("$a_b", "AB");               /* '_' belongs to the name */
    expand("${a}_b", "A_b");
    expand("$a/$b:${a}-$(b)", "A/B:A-B");
    expand("$num0", "");                /* the name is "num0" */
}

static void test_undefined_empty(void **state)
{
    (void) state;
    expand("[$nope]", "[]");
    expand("[${nope}]", "[]");
    expand("[$(nope)]", "[]");
    expand("[$empty]", "[]");
}

static void test_dollars(void **state)
{
    (void) state;
    expand("$$", "$");
    expand("$$a", "$a");
    expand("$$$a", "$A");
    expand("$$$$", "$$");
    expand("cost: 5$", "cost: 5$");     /* a lone $ stays */
    expand("$ a", "$ a");
    expand("$-x", "$-x");
    expand("$.", "$.");
    expand("$}", "$}");
    expand("${a}$", "A$");
}

static void test_conditionals(void **state)
{
    (void) state;
    /* ${name?value}: value when name is non-empty. */
    expand("${a?yes}", "yes");
    expand("${empty?yes}", "");
    expand("${nope?yes}", "");
    /* ${name:value}: value when name is empty or undefined. */
    expand("${a:no}", "");
    expand("${empty:no}", "no");
    expand("${nope:no}", "no");
    expand("$(nope:no)", "no");
    /* Unbraced values run to the end, ":" included. */
    expand("${a?x:y}", "x:y");
    /* Braced pairs. */
    expand("${a?{one}:{two}}", "one");
    expand("${empty?{one}:{two}}", "two");
    expand("${nope?{one}:{two}}", "two");
    expand("${a?{one}:two}", "one");
    expand("${nope?{one}:two}", "two");
    expand("${nope:{v}}", "v");
    expand("${a:{v}}", "");
    expand("${a?{one}}", "one");
    expand("${nope?{one}}", "");
    /* Whitespace around {value} is ignored; inside it stays. */
    expand("${a? { one } : {two} }", " one ");
    expand("${nope?  {one}  :  {two}  }", "two");
    /* An unbraced value is taken as is, like Postfix does. */
    expand("${nope?{one}:   two}", "   two");
    /* Values are expanded. */
    expand("${a?{<$b>}:{x}}", "<B>");
    expand("${nope?{x}:{<$b>}}", "<B>");
    expand("${a?$b}", "B");
    expand("${a?{${b?{nested}}}}", "nested");
    expand("${a?{$$}}", "$");
    /* Braces inside a value are balanced text. */
    expand("${a?{{x}}}", "{x}");
}

static void test_relational(void **state)
{
    (void) state;
    expand("${{a} == {a} ? {T} : {F}}", "T");
    expand("${{a} == {b} ? {T} : {F}}", "F");
    expand("${{a} != {b} ? {T} : {F}}", "T");
    expand("${{a} != {a} ? {T} : {F}}", "F");
    expand("${{} == {} ? {T} : {F}}", "T");
    expand("${{$a} == {A} ? {T} : {F}}", "T");
    expand("${{$nope} == {} ? {T} : {F}}", "T");
    /* Numeric when both sides are all digits... */
    expand("${{10} < {9} ? {T} : {F}}", "F");
    expand("${{9} < {10} ? {T} : {F}}", "T");
    expand("${{010} == {10} ? {T} : {F}}", "T");
    expand("${{0} == {000} ? {T} : {F}}", "T");
    expand("${{$num} > {9} ? {T} : {F}}", "T");
    expand("${{123456789012345678901234567890} > "
           "{123456789012345678901234567889} ? {T} : {F}}", "T");
    /* ...lexical otherwise. */
    expand("${{10} < {9x} ? {T} : {F}}", "T");
    expand("${{010} == {10x} ? {T} : {F}}", "F");
    expand("${{abc} < {abd} ? {T} : {F}}", "T");
    expand("${{b} < {abc} ? {T} : {F}}", "F");
    expand("${{-1} < {1} ? {T} : {F}}", "T");
    /* Every operator, at equality and either side of it. */
    expand("${{2} < {2} ? {T} : {F}}", "F");
    expand("${{2} <= {2} ? {T} : {F}}", "T");
    expand("${{3} <= {2} ? {T} : {F}}", "F");
    expand("${{2} > {2} ? {T} : {F}}", "F");
    expand("${{3} > {2} ? {T} : {F}}", "T");
    expand("${{2} >= {2} ? {T} : {F}}", "T");
    expand("${{1} >= {2} ? {T} : {F}}", "F");
    /* Without spaces, with only one branch, with ":". */
    expand("${{1}=={1}?{T}:{F}}", "T");
    expand("${{1} == {2} ? {T}}", "");
    expand("${{1} == {2} : {not equal}}", "not equal");
    expand("${{1} == {1} : {not equal}}", "");
    expand("${{1} == {2} ? {T} : F}", " F");
}

/* "level" compares compatibility levels: 3.10 is above 3.9. */
static void test_level(void **state)
{
    (void) state;
    expand("${{3.10} >level {3.9} ? {T} : {F}}", "T");
    expand("${{3.10} > {3.9} ? {T} : {F}}", "F");       /* lexical */
    expand("${{3.9} <level {3.10} ? {T} : {F}}", "T");
    expand("${{3.6} ==level {3.6.0} ? {T} : {F}}", "T");
    expand("${{3.6} !=level {3.6.1} ? {T} : {F}}", "T");
    expand("${{2} <=level {2.0} ? {T} : {F}}", "T");
    expand("${{2} >=level {1.99} ? {T} : {F}}", "T");
    expand("${{0} <level {2} ? {T} : {F}}", "T");
    expand("${{10} <level {9} ? {T} : {F}}", "F");
    expand_error("${{x} <level {2} ? {T} : {F}}", 0, "compatibility level");
    expand_error("${{3.} <level {2} ? {T} : {F}}", 0, "compatibility level");
    expand_error("${{1.2.3.4} <level {2} ? {T} : {F}}", 0,
                 "compatibility level");
    expand_error("${{} <level {2} ? {T} : {F}}", 0, "compatibility level");
}

static void test_level_compare(void **state)
{
    (void) state;
    assert_int_equal(mac_level_compare("3.10", "3.9"), 1);
    assert_int_equal(mac_level_compare("3.9", "3.10"), -1);
    assert_int_equal(mac_level_compare("2", "2.0.0"), 0);
    assert_int_equal(mac_level_compare("3.6.1", "3.6"), 1);
    assert_int_equal(mac_level_compare("0", "2"), -1);
    assert_int_equal(mac_level_compare("1000000000", "1"), 1);
    assert_int_equal(mac_level_compare("1.2.3.4", "1"), -2);
    assert_int_equal(mac_level_compare("", "1"), -2);
    assert_int_equal(mac_level_compare("1", ""), -2);
    assert_int_equal(mac_level_compare("1.", "1"), -2);
    assert_int_equal(mac_level_compare(".1", "1"), -2);
    assert_int_equal(mac_level_compare("1..2", "1"), -2);
    assert_int_equal(mac_level_compare("a", "1"), -2);
    assert_int_equal(mac_level_compare("1", "1x"), -2);
    assert_int_equal(mac_level_compare("-1", "1"), -2);
    assert_int_equal(mac_level_compare("+1", "1"), -2);
    assert_int_equal(mac_level_compare(" 1", "1"), -2);
    assert_int_equal(mac_level_compare("99999999999999999999", "1"), -2);
}

/* The defaults Postfix itself ships, with the values that matter. */
static void test_postfix_defaults(void **state)
{
    static const char *relay = "${{$compatibility_level} <level {2} ? "
                               "{subnet} : {host}}";
    static const char *instance = "${multi_instance_name?"
                                  "{$multi_instance_name}:{postfix}}";
    static const char *stress = "${stress?{10}:{300}}s";

    (void) state;
    set_var("compatibility_level", "0");
    expand(relay, "subnet");
    set_var("compatibility_level", "1");
    expand(relay, "subnet");
    set_var("compatibility_level", "2");
    expand(relay, "host");
    set_var("compatibility_level", "3.6");
    expand(relay, "host");
    set_var("compatibility_level", "3.10");
    expand(relay, "host");
    set_var("compatibility_level", "1.9");
    expand(relay, "subnet");
    set_var("compatibility_level", NULL);

    expand(instance, "postfix");
    set_var("multi_instance_name", "");
    expand(instance, "postfix");
    set_var("multi_instance_name", "postfix-out");
    expand(instance, "postfix-out");
    set_var("multi_instance_name", NULL);

    expand(stress, "300s");
    set_var("stress", "");
    expand(stress, "300s");
    set_var("stress", "yes");
    expand(stress, "10s");
    set_var("stress", NULL);
}

static void test_recursion(void **state)
{
    (void) state;
    /* Looked-up values are expanded only with MAC_EXP_RECURSE. */
    expand_flags("$chain1", 0, "<$chain2>");
    expand_flags("$chain1", MAC_EXP_RECURSE, "<[A]>");
    expand_flags("${chain1?{ok}}", MAC_EXP_RECURSE, "ok");
    expand_flags("$dollar", 0, "$$a");
    expand_flags("$dollar", MAC_EXP_RECURSE, "$a");
    /* Without recursion a self reference is just text. */
    expand_flags("$self", 0, "x$self");
    expand_flags("$ping", 0, "$pong");
}

/* A name that refers to itself is an error, not a hang or a crash. */
static void test_self_reference(void **state)
{
    (void) state;
    lookups = 0;
    expand_error("$self", MAC_EXP_RECURSE, "nesting");
    assert_true(lookups < 1000);        /* gave up early */
    expand_error("${self}", MAC_EXP_RECURSE, "nesting");
    expand_error("ok ${self?{x}:{y}}", MAC_EXP_RECURSE, "nesting");
    expand_error("$ping", MAC_EXP_RECURSE, "nesting");
    expand_error("$selfcond", MAC_EXP_RECURSE, "nesting");
    expand_error("${{$self} == {x} ? {T}}", MAC_EXP_RECURSE, "nesting");
    /* The state resets: an ordinary expansion works afterwards. */
    expand_flags("$chain1", MAC_EXP_RECURSE, "<[A]>");
}

static void test_syntax_errors(void **state)
{
    (void) state;
    expand_error("${a", 0, "missing '}'");
    expand_error("x ${a?{y}", 0, "missing '}'");
    expand_error("$(a", 0, "missing ')'");
    expand_error("${}", 0, "bad parameter name");
    expand_error("$()", 0, "bad parameter name");
    expand_error("${a-b}", 0, "bad parameter name");
    expand_error("${a b}", 0, "bad parameter name");
    expand_error("${?x}", 0, "bad parameter name");
    expand_error("${a?{x} junk}", 0, "unexpected text");
    expand_error("${a?{x}:{y} junk}", 0, "unexpected text");
    expand_error("${a?{x}:{y}:{z}}", 0, "unexpected text");
    expand_error("${a:{x}:{y}}", 0, "unexpected text");
    expand_error("${{a} = {b} ? {x}}", 0, "relational operator");
    expand_error("${{a} {b} ? {x}}", 0, "relational operator");
    expand_error("${{a} == {b}}", 0, "expected '?' or ':'");
    expand_error("${{a} == b ? {x}}", 0, "expected {text}");
    expand_error("${{a} == ? {x}}", 0, "expected {text}");
    expand_error("${{a ? {x}}", 0, "missing '}'");
    expand_error("${{a ? {x}}}", 0, "relational operator");
    /* An error in a branch that is not taken still counts? No: only the
     * taken branch is expanded, but the braces must balance. */
    expand_error("${a?{x}:{${b}}", 0, "missing '}'");
    /* Errors inside a taken branch surface. */
    expand_error("${a?{${}}}", 0, "bad parameter name");
}

/* Output already in the buffer is kept: mac_expand() appends. */
static void test_appends(void **state)
{
    STRBUF *out = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);

    (void) state;
    strbuf_set(out, "a=");
    assert_int_equal(mac_expand(out, "$a", 0, lookup, NULL, err), 0);
    assert_int_equal(mac_expand(out, ",b=$b", 0, lookup, NULL, err), 0);
    assert_string_equal(out->data, "a=A,b=B");
    assert_int_equal(err->len, 0);
    strbuf_free(&out);
    strbuf_free(&err);
}

/* The lookup gets the context pointer and the exact name. */
static const char *ctx_lookup(const char *name, void *ctx)
{
    STRBUF *seen = ctx;

    strbuf_printf_append(seen, "[%s]", name);
    return strcmp(name, "x") == 0 ? "$y" : NULL;
}

static void test_lookup_context(void **state)
{
    STRBUF *out = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    STRBUF *seen = strbuf_alloc(0);

    (void) state;
    assert_int_equal(mac_expand(out, "$x ${long_name_9} $(z?{q})",
                                MAC_EXP_RECURSE, ctx_lookup, seen, err), 0);
    assert_string_equal(seen->data, "[x][y][long_name_9][z]");
    assert_string_equal(out->data, "  ");
    strbuf_free(&out);
    strbuf_free(&err);
    strbuf_free(&seen);
}

/* Every prefix of valid text: an answer or an error, never a crash. */
static void test_truncated_input(void **state)
{
    static const char *texts[] = {
        "${{$compatibility_level} <level {2} ? {subnet} : {host}}",
        "${multi_instance_name?{$multi_instance_name}:{postfix}}",
        "x$a${b?{<$(a)>}:y}$$ ${{1} >= {02} ? {$a} : {$b}}",
        "$(a:{${b?{x}}})",
    };
    STRBUF *out = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);

    (void) state;
    set_var("compatibility_level", "3.6");
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        size_t len = strlen(texts[t]);

        for (size_t n = 0; n <= len; n++) {
            char *cut = xstrndup(texts[t], n);         /* exact size */
            int rc;

            strbuf_reset(out);
            strbuf_reset(err);
            rc = mac_expand(out, cut, MAC_EXP_RECURSE, lookup, NULL, err);
            assert_true(rc == 0 || rc == -1);
            if (rc < 0)
                assert_true(err->len > 0);
            assert_int_equal(strlen(out->data), out->len);
            free(cut);
        }
    }
    set_var("compatibility_level", NULL);
    strbuf_free(&out);
    strbuf_free(&err);
}

static void test_oversized(void **state)
{
    STRBUF *text = strbuf_alloc(0);
    STRBUF *out = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    int i;

    (void) state;
    for (i = 0; i < 50000; i++)
        strbuf_cat(text, "$a${b}");
    assert_int_equal(mac_expand(out, text->data, 0, lookup, NULL, err), 0);
    assert_int_equal(out->len, 100000);

    /* Bytes above 0x7f are text, never part of a name. */
    strbuf_reset(out);
    assert_int_equal(mac_expand(out, "$a\xc3\xa9\xff", 0, lookup, NULL, err),
                     0);
    assert_string_equal(out->data, "A\xc3\xa9\xff");
    strbuf_free(&text);
    strbuf_free(&out);
    strbuf_free(&err);
}

/* Nested "${a?...}" text, n levels deep around "x". */
static int expand_nested(int depth, STRBUF *out, STRBUF *err)
{
    STRBUF *text = strbuf_alloc(0);
    int rc;

    for (int i = 0; i < depth; i++)
        strbuf_cat(text, "${a?");
    strbuf_addch(text, 'x');
    for (int i = 0; i < depth; i++)
        strbuf_addch(text, '}');
    strbuf_reset(out);
    strbuf_reset(err);
    rc = mac_expand(out, text->data, 0, lookup, NULL, err);
    strbuf_free(&text);
    return rc;
}

/*
 * Deeply nested text (no lookups involved) is an error, not a stack
 * overflow; reasonable nesting works.
 */
static void test_deep_nesting(void **state)
{
    STRBUF *out = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);

    (void) state;
    assert_int_equal(expand_nested(50, out, err), 0);
    assert_string_equal(out->data, "x");
    assert_int_equal(expand_nested(100000, out, err), -1);
    assert_non_null(strstr(err->data, "nesting"));
    assert_true(err->len < 200);        /* the excerpt is bounded */
    strbuf_free(&out);
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_names),
        cmocka_unit_test(test_undefined_empty),
        cmocka_unit_test(test_dollars),
        cmocka_unit_test(test_conditionals),
        cmocka_unit_test(test_relational),
        cmocka_unit_test(test_level),
        cmocka_unit_test(test_level_compare),
        cmocka_unit_test(test_postfix_defaults),
        cmocka_unit_test(test_recursion),
        cmocka_unit_test(test_self_reference),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_appends),
        cmocka_unit_test(test_lookup_context),
        cmocka_unit_test(test_truncated_input),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_deep_nesting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
