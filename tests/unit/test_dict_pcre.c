/*
 * test_dict_pcre - pcre: tables (lib/mail/dict_pcre.c).
 *
 * The expected behaviour is Postfix's pcre_table(5), checked against
 * "postmap -q" from Debian's Postfix 3.7 with smtputf8_enable=no, except
 * where dict_pcre.h says Postern is stricter: every line Postfix would
 * skip with a warning makes the whole table fail to open.
 */
#include "unit.h"

#include "mail/dict.h"
#include "mail/dict_pcre.h"

#define ORIGIN  "/etc/postern/test.pcre"

static DICT *open_len(const char *text, size_t len, STRBUF *err)
{
    return dict_pcre_open_text(ORIGIN, text, len, DICT_FLAG_DEFAULT, err);
}

static DICT *open_ok(const char *text)
{
    STRBUF *err = strbuf_alloc(64);
    DICT *d = open_len(text, strlen(text), err);

    if (d == NULL)
        fail_msg("unexpected error: %s", err->data);
    strbuf_free(&err);
    return d;
}

/*
 * The table must fail to open with "ORIGIN, line N: " followed by text
 * that contains 'want'.
 */
static void open_bad_len(const char *text, size_t len, int lineno,
                         const char *want)
{
    STRBUF *err = strbuf_alloc(64);
    STRBUF *prefix = strbuf_alloc(64);
    DICT *d = open_len(text, len, err);

    if (d != NULL)
        fail_msg("no error for \"%s\"", text);
    strbuf_printf(prefix, "%s, line %d: ", ORIGIN, lineno);
    if (strncmp(err->data, prefix->data, prefix->len) != 0
        || strstr(err->data + prefix->len, want) == NULL)
        fail_msg("table \"%s\":\n got \"%s\"\nwant \"%s...%s...\"", text,
                 err->data, prefix->data, want);
    strbuf_free(&prefix);
    strbuf_free(&err);
}

static void open_bad(const char *text, int lineno, const char *want)
{
    open_bad_len(text, strlen(text), lineno, want);
}

/* Look key up directly; expect 'want' (NULL: not found). */
static void assert_lookup(DICT *d, const char *key, const char *want)
{
    const char *value = "untouched";
    int rc = d->lookup(d, key, &value);

    if (rc == DICT_ERROR)
        fail_msg("lookup \"%s\": error: %s", key, d->error->data);
    if (want == NULL) {
        if (rc != DICT_NOTFOUND)
            fail_msg("lookup \"%s\": found \"%s\", want not found", key,
                     value);
        return;
    }
    if (rc != DICT_FOUND)
        fail_msg("lookup \"%s\": not found, want \"%s\"", key, want);
    assert_string_equal(value, want);
}

/* The lookup must fail, with d->error containing both strings. */
static void assert_lookup_error(DICT *d, const char *key, const char *want1,
                                const char *want2)
{
    const char *value = "untouched";

    assert_int_equal(d->lookup(d, key, &value), DICT_ERROR);
    if (strstr(d->error->data, want1) == NULL
        || strstr(d->error->data, want2) == NULL)
        fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", d->error->data,
                 want1, want2);
}

/* --- matching ------------------------------------------------------- */

static void test_plain_match(void **state)
{
    DICT *d = open_ok("/^abc$/ found it\n/^b.*c$/ bc\n");

    (void) state;
    assert_string_equal(d->type, "pcre");
    assert_string_equal(d->name, ORIGIN);
    assert_true(d->flags & DICT_FLAG_PATTERN);
    assert_false(d->flags & DICT_FLAG_FIXED);
    assert_null(d->sequence);
    assert_lookup(d, "abc", "found it");
    assert_lookup(d, "abcd", NULL);
    assert_lookup(d, "xabc", NULL);
    assert_lookup(d, "b-to-c", "bc");
    assert_lookup(d, "", NULL);
    d->close(d);
}

static void test_caseless(void **state)
{
    DICT *d = open_ok("/^abc$/ default\n"
                      "/^Def$/i sensitive\n"
                      "/^ghi$/ii twice\n"
                      "/^JKL$/ upper pattern\n");

    (void) state;
    assert_lookup(d, "abc", "default");
    assert_lookup(d, "ABC", "default");
    assert_lookup(d, "aBc", "default");
    assert_lookup(d, "Def", "sensitive");
    assert_lookup(d, "def", NULL);
    assert_lookup(d, "DEF", NULL);
    assert_lookup(d, "GHI", "twice");
    assert_lookup(d, "jkl", "upper pattern");
    d->close(d);
}

static void test_substitution(void **state)
{
    DICT *d = open_ok("/^(a)(b)?c$/ r=[$1][$2][${2}][$(1)]\n"
                      "/^d(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)$/ ${10}-$10-${1}0\n"
                      "/^(e)$/ $$ $$1 $1$$ ${1}$$$1 $$$$\n"
                      "/^f(x*)g$/ [$1]\n"
                      "/^(h)|(i)$/ [$1][$2]\n"
                      "/^(j)(?:(k)|l)$/ [$2]${1}_x\n"
                      "/^(m)$/ a-$1.b ($1) {$1} $1\n");

    (void) state;
    assert_lookup(d, "ac", "r=[a][][][a]");
    assert_lookup(d, "abc", "r=[a][b][b][a]");
    assert_lookup(d, "d0123456789", "9-9-00");
    assert_lookup(d, "e", "$ $1 e$ e$e $$");
    assert_lookup(d, "fg", "[]");
    assert_lookup(d, "fxxg", "[xx]");
    assert_lookup(d, "h", "[h][]");
    assert_lookup(d, "i", "[][i]");
    assert_lookup(d, "jl", "[]j_x");
    assert_lookup(d, "jk", "[k]j_x");
    assert_lookup(d, "m", "a-m.b (m) {m} m");
    d->close(d);
}

static void test_empty_expansion(void **state)
{
    DICT *d = open_ok("/^x(a*)$/ $1\n/^y(b)?$/ ${1}\n/^z(c*)$/ $1-\n");

    (void) state;
    assert_lookup(d, "xaa", "aa");
    /* Postfix maps_find() refuses an empty result as a lookup error. */
    assert_lookup_error(d, "x", ORIGIN ", line 1:", "empty");
    assert_lookup_error(d, "y", ORIGIN ", line 2:", "empty");
    assert_lookup(d, "z", "-");
    d->close(d);
}

static void test_negated(void **state)
{
    DICT *d = open_ok("/^keep$/ kept\n"
                      "!/^abc$/ not abc: $$\n"
                      "/^abc$/ abc itself\n");
    DICT *d2 = open_ok("! /^x$/ spaced\n!!/^y$/ double\n");

    (void) state;
    assert_lookup(d, "keep", "kept");
    assert_lookup(d, "xyz", "not abc: $");
    assert_lookup(d, "ABC", "abc itself");
    assert_lookup(d, "abc", "abc itself");
    assert_lookup(d2, "q", "spaced");
    assert_lookup(d2, "x", NULL);
    d->close(d);
    d2->close(d2);

    d = open_ok("!!/^y$/ double\n");
    assert_lookup(d, "y", "double");
    assert_lookup(d, "z", NULL);
    d->close(d);
}

static void test_first_match_wins(void **state)
{
    DICT *d = open_ok("/^a/ first\n/^ab/ second\n/b$/ third\n/.*/ last\n");

    (void) state;
    assert_lookup(d, "abc", "first");
    assert_lookup(d, "cab", "third");
    assert_lookup(d, "zzz", "last");
    d->close(d);
}

static void test_if_endif(void **state)
{
    DICT *d = open_ok("if /^user/\n"
                      "if !/admin/\n"
                      "/^user(.*)@(.*)$/ plain $2 $1\n"
                      "endif\n"
                      "/^user/ admin\n"
                      "endif\n"
                      "IF /^x/\n"
                      "If/^xy/\n"
                      "/./ xy\n"
                      "ENDIF\n"
                      "/./ x\n"
                      "Endif\n"
                      "if /^empty/\n"
                      "endif\n"
                      "/^(.*)$/ fallback $1\n");

    (void) state;
    assert_lookup(d, "userfoo@example", "plain example foo");
    assert_lookup(d, "useradmin@example", "admin");
    assert_lookup(d, "xy", "xy");
    assert_lookup(d, "xz", "x");
    assert_lookup(d, "empty", "fallback empty");
    assert_lookup(d, "other", "fallback other");
    d->close(d);

    /* A failed if skips to its endif, not to the first endif after it. */
    d = open_ok("if /^a/\nif /^ab/\n/./ ab\nendif\n/^a/ a\nendif\n/./ z\n");
    assert_lookup(d, "ab", "ab");
    assert_lookup(d, "ac", "a");
    assert_lookup(d, "b", "z");
    d->close(d);
}

static void test_delimiters(void **state)
{
    DICT *d = open_ok("|^a\\|b$| pipe\n"
                      "/^c\\/d$/ slash\n"
                      ",^e/f$, comma\n"
                      "%^g$%i sensitive\n"
                      "!x^hx not h\n");

    (void) state;
    assert_lookup(d, "a|b", "pipe");
    assert_lookup(d, "c/d", "slash");
    assert_lookup(d, "e/f", "comma");
    assert_lookup(d, "g", "sensitive");
    assert_lookup(d, "h", NULL);
    assert_lookup(d, "G", "not h");
    d->close(d);
}

static void test_comments_continuation(void **state)
{
    DICT *d = open_ok("# a comment\n"
                      "\n"
                      "   # an indented comment\n"
                      "/^a$/\n"
                      "  550 a result\n"
                      "# a comment inside\n"
                      "\tthat continues\n"
                      "/^b\n"
                      " c$/ joined   \r\n"
                      "/^d$/ not # a comment\n");

    (void) state;
    assert_lookup(d, "a", "550 a result\tthat continues");
    assert_lookup(d, "b c", "joined");
    assert_lookup(d, "d", "not # a comment");
    d->close(d);
}

static void test_flags(void **state)
{
    DICT *d = open_ok("/^a.b$/ dotall\n"
                      "/^c.d$/s not dotall\n"
                      "/^e$/m multiline\n"
                      "/^ f g $/x extended\n"
                      "/h$/A anchored\n"
                      "/^i$/E dollar endonly\n"
                      "/^(j+?)/U ungreedy $1\n"
                      "/^k\\w$/X extra\n"
                      "/^l$/ dollar\n");

    (void) state;
    assert_lookup(d, "a\nb", "dotall");
    assert_lookup(d, "c\nd", NULL);
    assert_lookup(d, "x\ne\ny", "multiline");
    assert_lookup(d, "fg", "extended");
    assert_lookup(d, "h", "anchored");
    assert_lookup(d, "xh", NULL);
    assert_lookup(d, "i", "dollar endonly");
    assert_lookup(d, "i\n", NULL);
    assert_lookup(d, "l\n", "dollar");
    assert_lookup(d, "jjj", "ungreedy jjj");
    assert_lookup(d, "kz", "extra");
    d->close(d);
}

/* Keys are bytes: text that is not UTF-8 matches, and never fails. */
static void test_8bit(void **state)
{
    DICT *d = open_ok("/^\xe9t\xe9$/ exact\n"
                      "/^(.)t\xc9$/ caseless=$1\n"
                      "/^.x.$/ any\n"
                      "/(*UTF)^.$/ one utf-8 character\n"
                      "/(*UTF)^.u\\xff$/ never\n"
                      "/^(\\xff)u/ byte $1\n");

    (void) state;
    assert_lookup(d, "\xe9t\xe9", "exact");
    /* Byte mode: caseless folds ASCII only, as in Postfix. */
    assert_lookup(d, "\xc9t\xc9", "caseless=\xc9");
    assert_lookup(d, "\xc9T\xc9", "caseless=\xc9");
    assert_lookup(d, "\xc9t\xe9", NULL);
    assert_lookup(d, "\xff" "x\x80", "any");
    assert_lookup(d, "\xc3\xa9", "one utf-8 character");
    assert_lookup(d, "\xe9", NULL);
    assert_lookup(d, "\xffu\xff", "byte \xff");
    d->close(d);
}

/*
 * A pattern with nested quantifiers backtracks exponentially on a key
 * that almost matches; the lookup must fail, not spin, and the table
 * must work afterwards.  (*NO_JIT) covers the interpreter's limits.
 */
static void test_match_limit(void **state)
{
    DICT *d = open_ok("/^ok$/ fine\n"
                      "/^(a+)+$/ slow\n"
                      "/(*NO_JIT)^(b+)+$/ slow too\n"
                      "/(*NO_JIT)^(?:c|d)*e$/ deep\n");
    STRBUF *key = strbuf_alloc(64);

    (void) state;
    for (int i = 0; i < 40; i++)
        strbuf_addch(key, 'a');
    assert_lookup(d, key->data, "slow");
    strbuf_addch(key, '!');
    assert_lookup_error(d, key->data, ORIGIN ", line 2:", "limit");
    assert_lookup(d, "ok", "fine");

    strbuf_reset(key);
    for (int i = 0; i < 40; i++)
        strbuf_addch(key, 'b');
    strbuf_addch(key, '!');
    assert_lookup_error(d, key->data, ORIGIN ", line 3:", "limit");

    /* Interpreter backtracking depth grows with the key. */
    strbuf_reset(key);
    for (int i = 0; i < 300000; i++)
        strbuf_addch(key, 'c');
    assert_lookup_error(d, key->data, ORIGIN ", line 4:", "limit");
    strbuf_set(key, "cdcde");
    assert_lookup(d, key->data, "deep");
    strbuf_free(&key);
    d->close(d);
}

/* --- errors --------------------------------------------------------- */

static void test_errors(void **state)
{
    (void) state;
    /* Bad patterns: PCRE2's message. */
    open_bad("/ok/ x\n/a(b/ x\n", 2, "missing closing parenthesis");
    open_bad("/a**/ x\n", 1, "error in regular expression at offset");
    open_bad("/\\q/ x\n", 1, "unrecognized character follows \\");
    open_bad("if /a[/\n/b/ c\nendif\n", 1, "error in regular expression");
    open_bad("/a/ x\n/abc x\n", 2, "missing closing delimiter \"/\"");
    open_bad("/abc\\/ x\n", 1, "missing closing delimiter");
    open_bad("/a/Z x\n", 1, "unknown regular expression flag \"Z\"");
    open_bad("/a/i\x01 x\n", 1, "unknown regular expression flag \\x01");
    open_bad("!\n", 1, "missing regular expression");
    open_bad("! \t!\n", 1, "missing regular expression");

    /* Results. */
    open_bad("/a/ x\n/abc/\n", 2, "missing result");
    open_bad("/abc/   \t\n", 1, "missing result");
    open_bad("/a/\n# only a comment follows\n", 1, "missing result");
    open_bad("!/(a)/ $1\n", 1, "negated");
    open_bad("!/(a)/ ${1}\n", 1, "negated");
    open_bad("/(a)/ $2\n", 1, "has 1 group");
    open_bad("/a/ $1\n", 1, "has 0 groups");
    open_bad("/(a)/ $0\n", 1, "out of range");
    open_bad("/(a)/ $99999999999999999999\n", 1, "out of range");
    open_bad("/(a)/ $1x\n", 1, "\"1x\" after \"$\" is not a group number");
    open_bad("/(a)/ $1_x\n", 1, "\"1_x\" after \"$\" is not a group");
    open_bad("/(a)/ ${a}\n", 1, "not a group number");
    open_bad("/(a)/ ${}\n", 1, "without a group number");
    open_bad("/(a)/ x$\n", 1, "without a group number");
    open_bad("/(a)/ $ x\n", 1, "without a group number");
    open_bad("/(a)/ ${1\n", 1, "missing \"}\"");
    open_bad("/(a)/ $(1\n", 1, "missing \")\"");

    /* if/endif balance and form. */
    open_bad("if /a/\n/b/ c\n", 1, "\"if\" without \"endif\"");
    open_bad("if /a/\nif /b/\nendif\n/c/ d\n", 1, "\"if\" without \"endif\"");
    open_bad("if /a/\nendif\nif /b/\n", 3, "\"if\" without \"endif\"");
    open_bad("endif\n", 1, "\"endif\" without \"if\"");
    open_bad("if /a/\nendif\n/b/ c\nendif\n", 4, "\"endif\" without \"if\"");
    open_bad("if /a/\n  /b/ c\nendif\n", 1, "text after the \"if\" pattern");
    open_bad("if /a/\nendif x\n", 2, "text after \"endif\"");
    open_bad("if\nendif\n", 1, "missing regular expression");

    /* Lines that are not rules. */
    open_bad("/a/ b\nfoo bar\n", 2, "expected \"/pattern/ result\"");
    open_bad("iffy /a/\n", 1, "expected");
    open_bad("endiff\n", 1, "expected");
    open_bad("  /a/ b\n", 1, "must not start with whitespace");

    /* NUL bytes. */
    open_bad_len("/a/ b\n/c/ \0d\n", 13, 2, "NUL byte");
    open_bad_len("\0", 1, 1, "NUL byte");
    open_bad_len("/a/\n \0\n", 7, 2, "NUL byte");
}

/* --- sources -------------------------------------------------------- */

/* Only text[0..len) counts; the text need not be NUL-terminated. */
static void test_partial_text(void **state)
{
    const char text[] = "/^a$/ first\n/^b$/ second\n/(/ broken";
    STRBUF *err = strbuf_alloc(64);
    DICT *d;

    (void) state;
    d = open_len(text, strlen("/^a$/ first\n/^b$/ sec"), err);
    if (d == NULL)
        fail_msg("unexpected error: %s", err->data);
    assert_lookup(d, "a", "first");
    assert_lookup(d, "b", "sec");
    d->close(d);
    d = open_len(text, 0, err);
    assert_non_null(d);
    assert_lookup(d, "a", NULL);
    d->close(d);
    open_bad_len(text, sizeof(text) - 1, 3, "regular expression");
    strbuf_free(&err);
}

static void test_oversized(void **state)
{
    STRBUF *text = strbuf_alloc(64);
    STRBUF *key = strbuf_alloc(64);
    STRBUF *want = strbuf_alloc(64);
    DICT *d;

    (void) state;
    /* Many rules, many nested ifs, a long result. */
    for (int i = 0; i < 2000; i++)
        strbuf_printf_append(text, "if /^/\n/^k%d$/ v%d\n", i, i);
    for (int i = 0; i < 2000; i++)
        strbuf_cat(text, "endif\n");
    strbuf_cat(text, "/^(long)$/ ");
    for (int i = 0; i < 10000; i++) {
        strbuf_cat(text, "$1.");
        strbuf_cat(want, "long.");
    }
    strbuf_cat(text, "\n");
    d = open_ok(text->data);
    assert_lookup(d, "k0", "v0");
    assert_lookup(d, "k1999", "v1999");
    assert_lookup(d, "long", want->data);

    /* A 1 MB key. */
    for (int i = 0; i < 1024 * 1024; i++)
        strbuf_addch(key, 'x');
    strbuf_cat(key, "k7");
    assert_lookup(d, key->data, NULL);
    d->close(d);

    d = open_ok("/(k\\d+)$/ tail $1\n");
    assert_lookup(d, key->data, "tail k7");
    d->close(d);
    strbuf_free(&text);
    strbuf_free(&key);
    strbuf_free(&want);
}

static void test_open_file(void **state)
{
    const char *path = unit_write_file("access.pcre",
                                       "# access table\n"
                                       "/^Mixed@Case$/i exact case\n"
                                       "/^(.*)@example\\.com$/ OK $1\n");
    STRBUF *spec = strbuf_alloc(64);
    STRBUF *err = strbuf_alloc(64);
    const char *value;
    DICT *d;

    (void) state;
    d = dict_pcre_open(path, DICT_FLAG_DEFAULT, err);
    if (d == NULL)
        fail_msg("unexpected error: %s", err->data);
    assert_string_equal(d->name, path);
    assert_lookup(d, "Joe@Example.COM", "OK Joe");
    d->close(d);

    /* Through the registry: dict_lookup() must not fold the key. */
    strbuf_printf(spec, "pcre:%s", path);
    d = dict_open(spec->data, DICT_FLAG_DEFAULT, err);
    if (d == NULL)
        fail_msg("dict_open %s: %s", spec->data, err->data);
    assert_int_equal(dict_lookup(d, "Mixed@Case", &value), DICT_FOUND);
    assert_string_equal(value, "exact case");
    assert_int_equal(dict_lookup(d, "mixed@case", &value), DICT_NOTFOUND);
    assert_int_equal(dict_lookup(d, "Ann@example.com", &value), DICT_FOUND);
    assert_string_equal(value, "OK Ann");
    assert_int_equal(dict_lookup(d, "ann@example.org", &value),
                     DICT_NOTFOUND);
    dict_close(&d);
    assert_null(d);

    /* Errors name the file. */
    path = unit_write_file("bad.pcre", "/a/ b\n\n/c/\n");
    strbuf_printf(spec, "pcre:%s", path);
    assert_null(dict_open(spec->data, DICT_FLAG_DEFAULT, err));
    strbuf_printf(spec, "%s, line 3: missing result", path);
    if (strncmp(err->data, spec->data, spec->len) != 0)
        fail_msg("got \"%s\", want \"%s...\"", err->data, spec->data);

    strbuf_printf(spec, "%s/missing.pcre", unit_tmpdir());
    assert_null(dict_pcre_open(spec->data, DICT_FLAG_DEFAULT, err));
    assert_non_null(strstr(err->data, "missing.pcre"));
    assert_non_null(strstr(err->data, "No such file"));

    /* A surrogate carries the reason into every lookup. */
    strbuf_printf(spec, "pcre:%s", path);
    unit_log_reset();
    d = dict_open_surrogate(spec->data, DICT_FLAG_DEFAULT);
    assert_int_equal(dict_lookup(d, "c", &value), DICT_ERROR);
    assert_true(unit_logged("line 3: missing result"));
    dict_close(&d);
    strbuf_free(&spec);
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_match),
        cmocka_unit_test(test_caseless),
        cmocka_unit_test(test_substitution),
        cmocka_unit_test(test_empty_expansion),
        cmocka_unit_test(test_negated),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_if_endif),
        cmocka_unit_test(test_delimiters),
        cmocka_unit_test(test_comments_continuation),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_8bit),
        cmocka_unit_test(test_match_limit),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_partial_text),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_open_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
