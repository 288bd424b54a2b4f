/*
 * test_dict - the table registry, case folding and surrogate tables
 * (lib/mail/dict.c) and the in-memory types: static (dict_static.c),
 * inline (dict_inline.c), texthash (dict_texthash.c) and their store
 * (dict_hashed.c).  pcre and lmdb have tests of their own.
 */
#include "unit.h"

#include "mail/dict.h"
#include "mail/dict_hashed.h"

static DICT *open_ok(const char *spec, int flags)
{
    STRBUF *err = strbuf_alloc(64);
    DICT *d = dict_open(spec, flags, err);

    if (d == NULL)
        fail_msg("dict_open %s: %s", spec, err->data);
    strbuf_free(&err);
    return d;
}

/* dict_open must fail with exactly 'want' (or containing it, if sub). */
static void open_bad(const char *spec, int flags, const char *want, int sub)
{
    STRBUF *err = strbuf_alloc(64);
    DICT *d = dict_open(spec, flags, err);

    if (d != NULL)
        fail_msg("dict_open %s: no error", spec);
    if (sub ? strstr(err->data, want) == NULL : strcmp(err->data, want) != 0)
        fail_msg("dict_open %s:\n got \"%s\"\nwant \"%s\"", spec, err->data,
                 want);
    strbuf_free(&err);
}

/* Look key up; expect 'want' (NULL: not found). */
static void assert_lookup(DICT *d, const char *key, const char *want)
{
    const char *value = "untouched";
    int rc = dict_lookup(d, key, &value);

    if (want == NULL) {
        if (rc != DICT_NOTFOUND)
            fail_msg("%s: rc %d, value \"%s\", want not found", key, rc,
                     rc == DICT_FOUND ? value : "");
        return;
    }
    if (rc != DICT_FOUND)
        fail_msg("%s: rc %d, want \"%s\"", key, rc, want);
    assert_string_equal(value, want);
}

/* All entries via sequence(), as "k=v;" in order. */
static void assert_sequence(DICT *d, const char *want)
{
    STRBUF *got = strbuf_alloc(64);
    const char *key;
    const char *value;
    int rc;

    assert_non_null(d->sequence);
    for (int first = 1; (rc = d->sequence(d, first, &key, &value))
         == DICT_FOUND; first = 0)
        strbuf_printf_append(got, "%s=%s;", key, value);
    assert_int_equal(rc, DICT_NOTFOUND);
    /* At the end it stays at the end. */
    assert_int_equal(d->sequence(d, 0, &key, &value), DICT_NOTFOUND);
    if (strcmp(got->data, want) != 0)
        fail_msg("sequence \"%s\", want \"%s\"", got->data, want);
    strbuf_free(&got);
}

static const char *write_table(const char *name, const char *text,
                               size_t len);

static const char *write_table_str(const char *name, const char *text)
{
    return write_table(name, text, strlen(text));
}

static const char *write_table(const char *name, const char *text,
                               size_t len)
{
    static char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", unit_tmpdir(), name);
    if ((fp = fopen(path, "w")) == NULL || fwrite(text, 1, len, fp) != len
        || fclose(fp) != 0)
        fail_msg("cannot write %s", path);
    return path;
}

/* --- dict_open -------------------------------------------------------- */

static void test_open_errors(void **state)
{
    (void) state;
    unit_log_reset();
    open_bad("nocolon", DICT_FLAG_DEFAULT,
             "table \"nocolon\": need type:name", 0);
    open_bad(":name", DICT_FLAG_DEFAULT, "table \":name\": need type:name", 0);
    open_bad("", DICT_FLAG_DEFAULT, "table \"\": need type:name", 0);
    open_bad("bogus:/etc/x", DICT_FLAG_DEFAULT, "table \"bogus:/etc/x\": "
             "unsupported dictionary type: bogus", 0);
    open_bad("hash:/etc/aliases", DICT_FLAG_DEFAULT, "table "
             "\"hash:/etc/aliases\": unsupported dictionary type: hash", 0);
    /* Type names are exact: no prefix or case games. */
    open_bad("stati:x", DICT_FLAG_DEFAULT, "unsupported dictionary type: "
             "stati", 1);
    open_bad("statics:x", DICT_FLAG_DEFAULT, "unsupported dictionary type: "
             "statics", 1);
    open_bad("STATIC:x", DICT_FLAG_DEFAULT, "unsupported dictionary type: "
             "STATIC", 1);
    /* dict_open itself does not log; the caller decides. */
    assert_false(unit_logged("warning"));

    assert_true(dict_type_known("static"));
    assert_true(dict_type_known("inline"));
    assert_true(dict_type_known("texthash"));
    assert_true(dict_type_known("lmdb"));
    assert_true(dict_type_known("pcre"));
    assert_false(dict_type_known("hash"));
    assert_false(dict_type_known(""));
    assert_false(dict_type_known("stat"));
}

/* --- the registry ----------------------------------------------------- */

static void test_shared_refcount(void **state)
{
    static const char *specs[] = {
        "static:shared", "static:{ a b }", "inline:{ k=v }", NULL,
    };
    const char *path = write_table_str("shared", "k v\n");
    STRBUF *th = strbuf_alloc(64);

    (void) state;
    strbuf_printf(th, "texthash:%s", path);
    for (int i = 0; i < 4; i++) {
        const char *spec = specs[i] ? specs[i] : th->data;
        DICT *d1 = open_ok(spec, DICT_FLAG_DEFAULT);
        DICT *d2 = open_ok(spec, DICT_FLAG_DEFAULT);
        DICT *other = open_ok(spec, 0);
        DICT *d3;

        /* The same type:name and flags: the same table. */
        assert_ptr_equal(d1, d2);
        assert_int_equal(d1->refcount, 2);
        /* Other flags: another table. */
        assert_ptr_not_equal(d1, other);
        assert_int_equal(other->refcount, 1);

        /* Closing one reference leaves the other usable. */
        dict_close(&d2);
        assert_null(d2);
        assert_int_equal(d1->refcount, 1);
        assert_lookup(d1, "k", i == 1 ? "a b" : i == 0 ? "shared" : "v");

        /* The last close frees it and forgets it: a new open is fresh. */
        dict_close(&d1);
        assert_null(d1);
        d3 = open_ok(spec, DICT_FLAG_DEFAULT);
        assert_int_equal(d3->refcount, 1);
        assert_lookup(d3, "k", i == 1 ? "a b" : i == 0 ? "shared" : "v");
        dict_close(&d3);
        assert_int_equal(other->refcount, 1);
        dict_close(&other);
        dict_close(&other);             /* NULL: nothing happens */
    }
    strbuf_free(&th);
}

static void test_registry_many(void **state)
{
    DICT *d[200];
    STRBUF *spec = strbuf_alloc(32);

    (void) state;
    for (int i = 0; i < 200; i++) {
        strbuf_printf(spec, "static:v%d", i % 100);
        d[i] = open_ok(spec->data, DICT_FLAG_DEFAULT);
    }
    for (int i = 0; i < 100; i++) {
        assert_ptr_equal(d[i], d[i + 100]);
        assert_int_equal(d[i]->refcount, 2);
    }
    for (int i = 199; i >= 0; i--)
        dict_close(&d[i]);
    strbuf_printf(spec, "static:v%d", 42);
    d[0] = open_ok(spec->data, DICT_FLAG_DEFAULT);
    assert_int_equal(d[0]->refcount, 1);
    dict_close(&d[0]);
    strbuf_free(&spec);
}

/* --- case folding ----------------------------------------------------- */

static char *seen_key;

static int record_lookup(DICT *d, const char *key, const char **value_r)
{
    (void) d;
    free(seen_key);
    seen_key = strdup(key);
    *value_r = "found";
    return DICT_FOUND;
}

static void record_close(DICT *d)
{
    dict_free(d);
}

static void test_lookup_folding(void **state)
{
    static const struct {
        int     flags;
        const char *want;
    } cases[] = {
        {DICT_FLAG_FIXED | DICT_FLAG_FOLD_FIX, "mixed.case@example"},
        {DICT_FLAG_FIXED, "MiXeD.CaSe@Example"},
        {DICT_FLAG_FOLD_FIX, "MiXeD.CaSe@Example"},
        {DICT_FLAG_PATTERN | DICT_FLAG_FOLD_FIX, "MiXeD.CaSe@Example"},
    };

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        DICT *d = dict_alloc("test", "recorder", sizeof(DICT),
                             cases[i].flags);
        const char *value;

        d->lookup = record_lookup;
        d->close = record_close;
        assert_int_equal(dict_lookup(d, "MiXeD.CaSe@Example", &value),
                         DICT_FOUND);
        assert_string_equal(value, "found");
        assert_string_equal(seen_key, cases[i].want);
        d->close(d);
    }
    free(seen_key);
    seen_key = NULL;
}

static void test_fold_fixed_tables(void **state)
{
    const char *path = write_table_str("fold", "MixedKey value1\n"
                                       "lower value2\n");
    STRBUF *spec = strbuf_alloc(64);
    DICT *d;

    (void) state;
    /* Folded: stored lowercase, any case finds it. */
    strbuf_printf(spec, "texthash:%s", path);
    d = open_ok(spec->data, DICT_FLAG_FOLD_FIX);
    assert_true(d->flags & DICT_FLAG_FIXED);
    assert_lookup(d, "mixedkey", "value1");
    assert_lookup(d, "MIXEDKEY", "value1");
    assert_lookup(d, "MixedKey", "value1");
    assert_lookup(d, "LOWER", "value2");
    assert_sequence(d, "mixedkey=value1;lower=value2;");
    dict_close(&d);

    /* Not folded: exact keys only. */
    d = open_ok(spec->data, 0);
    assert_true(d->flags & DICT_FLAG_FIXED);
    assert_false(d->flags & DICT_FLAG_FOLD_FIX);
    assert_lookup(d, "MixedKey", "value1");
    assert_lookup(d, "mixedkey", NULL);
    assert_lookup(d, "LOWER", NULL);
    assert_lookup(d, "lower", "value2");
    assert_sequence(d, "MixedKey=value1;lower=value2;");
    dict_close(&d);

    d = open_ok("inline:{ MixedKey=V1 }", DICT_FLAG_FOLD_FIX);
    assert_lookup(d, "MIXEDKEY", "V1");
    assert_lookup(d, "mixedkey", "V1");
    dict_close(&d);
    d = open_ok("inline:{ MixedKey=V1 }", 0);
    assert_lookup(d, "MIXEDKEY", NULL);
    assert_lookup(d, "MixedKey", "V1");
    dict_close(&d);

    /* Values are never folded. */
    d = open_ok("static:MiXeD", DICT_FLAG_FOLD_FIX);
    assert_true(d->flags & DICT_FLAG_FIXED);
    assert_lookup(d, "ANY", "MiXeD");
    dict_close(&d);
    strbuf_free(&spec);
}

/* --- surrogates ------------------------------------------------------- */

static void test_surrogate(void **state)
{
    static const struct {
        const char *spec;
        const char *why;
    } cases[] = {
        {"bogus:/etc/x", "unsupported dictionary type: bogus"},
        {"nocolon", "need type:name"},
        {"inline:{ a }", "expected key=value"},
        {"static:{ x", "missing or misplaced '}'"},
        {"texthash:/nonexistent/table", "open /nonexistent/table: No such "
         "file or directory"},
    };

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        DICT *d;
        const char *value = "untouched";

        unit_log_reset();
        d = dict_open_surrogate(cases[i].spec, DICT_FLAG_DEFAULT);
        assert_non_null(d);
        assert_true(d->flags & DICT_FLAG_SURROGATE);
        assert_int_equal(d->refcount, 1);
        /* Logged once, at open. */
        assert_true(unit_logged("warning: "));
        assert_true(unit_logged(cases[i].why));
        unit_log_reset();
        /* Every lookup fails and says why. */
        for (int n = 0; n < 3; n++) {
            assert_int_equal(dict_lookup(d, "key", &value), DICT_ERROR);
            assert_string_equal(value, "untouched");
            assert_non_null(strstr(d->error->data, cases[i].why));
        }
        assert_int_equal(dict_lookup(d, "KEY", &value), DICT_ERROR);
        assert_false(unit_logged("warning"));
        assert_null(d->sequence);
        dict_close(&d);
        assert_null(d);
    }

    /* A surrogate is not shared and does not block a later good open. */
    {
        DICT *s1 = dict_open_surrogate("bogus:x", 0);
        DICT *s2 = dict_open_surrogate("bogus:x", 0);

        assert_ptr_not_equal(s1, s2);
        assert_string_equal(s1->type, "bogus");
        assert_string_equal(s1->name, "x");
        dict_close(&s1);
        dict_close(&s2);
    }

    /* A spec that opens gives the real, shared table, and no warning. */
    {
        DICT *d1;
        DICT *d2;

        unit_log_reset();
        d1 = dict_open_surrogate("static:fine", DICT_FLAG_DEFAULT);
        d2 = open_ok("static:fine", DICT_FLAG_DEFAULT);
        assert_ptr_equal(d1, d2);
        assert_false(d1->flags & DICT_FLAG_SURROGATE);
        assert_false(unit_logged("warning"));
        assert_lookup(d1, "x", "fine");
        dict_close(&d1);
        dict_close(&d2);
    }
}

static void test_dict_fail(void **state)
{
    DICT *d = dict_alloc("test", "name", sizeof(DICT), 0);

    (void) state;
    assert_string_equal(d->type, "test");
    assert_string_equal(d->name, "name");
    assert_int_equal(dict_fail(d, "first %d", 1), DICT_ERROR);
    assert_string_equal(d->error->data, "first 1");
    assert_int_equal(dict_fail(d, "%s", "second"), DICT_ERROR);
    assert_string_equal(d->error->data, "second");
    dict_free(d);
}

/* --- static ----------------------------------------------------------- */

static void test_static(void **state)
{
    DICT *d;

    (void) state;
    d = open_ok("static:OK", DICT_FLAG_DEFAULT);
    assert_string_equal(d->type, "static");
    assert_string_equal(d->name, "OK");
    assert_lookup(d, "anything", "OK");
    assert_lookup(d, "", "OK");
    assert_null(d->sequence);
    dict_close(&d);

    d = open_ok("static:{ REJECT go away }", DICT_FLAG_DEFAULT);
    assert_lookup(d, "x", "REJECT go away");
    dict_close(&d);

    d = open_ok("static:{x}", DICT_FLAG_DEFAULT);
    assert_lookup(d, "x", "x");
    dict_close(&d);

    d = open_ok("static:{ }", DICT_FLAG_DEFAULT);
    assert_lookup(d, "x", "");
    dict_close(&d);

    d = open_ok("static:", DICT_FLAG_DEFAULT);
    assert_lookup(d, "x", "");
    dict_close(&d);

    /* Only a leading brace groups. */
    d = open_ok("static:a{b}c", DICT_FLAG_DEFAULT);
    assert_lookup(d, "x", "a{b}c");
    dict_close(&d);

    d = open_ok("static:{ a {b c} d }", DICT_FLAG_DEFAULT);
    assert_lookup(d, "x", "a {b c} d");
    dict_close(&d);

    open_bad("static:{ a b", 0, "static:{ a b: missing or misplaced '}'", 0);
    open_bad("static:{ a } b", 0, "static:{ a } b: missing or misplaced '}'",
             0);
    open_bad("static:{ a }}", 0, "missing or misplaced '}'", 1);
}

static void test_static_oversized(void **state)
{
    STRBUF *spec = strbuf_alloc(1024 * 1024 + 16);
    DICT *d;
    const char *value;

    (void) state;
    strbuf_cat(spec, "static:{ ");
    for (int i = 0; i < 1024 * 1024; i++)
        strbuf_addch(spec, i % 100 ? 'v' : ' ');
    strbuf_cat(spec, " }");
    d = open_ok(spec->data, 0);
    assert_int_equal(dict_lookup(d, "k", &value), DICT_FOUND);
    assert_int_equal(strlen(value), 1024 * 1024 - 1);
    dict_close(&d);
    strbuf_free(&spec);
}

/* --- inline ----------------------------------------------------------- */

static void test_inline(void **state)
{
    DICT *d;

    (void) state;
    d = open_ok("inline:{ a=1, { b = two words }, C=3 }", DICT_FLAG_DEFAULT);
    assert_string_equal(d->type, "inline");
    assert_true(d->flags & DICT_FLAG_FIXED);
    assert_lookup(d, "a", "1");
    assert_lookup(d, "b", "two words");
    assert_lookup(d, "c", "3");
    assert_lookup(d, "C", "3");
    assert_lookup(d, "A", "1");
    assert_lookup(d, "d", NULL);
    assert_lookup(d, "", NULL);
    assert_sequence(d, "a=1;b=two words;c=3;");
    dict_close(&d);

    /* Without folding, C stays C. */
    d = open_ok("inline:{ a=1, { b = two words }, C=3 }", 0);
    assert_lookup(d, "C", "3");
    assert_lookup(d, "c", NULL);
    assert_sequence(d, "a=1;b=two words;C=3;");
    dict_close(&d);

    /* Separators: commas and/or whitespace; empty items are nothing. */
    d = open_ok("inline:{a=1,b=2 c=3\td=4 ,, e=5,}", DICT_FLAG_DEFAULT);
    assert_sequence(d, "a=1;b=2;c=3;d=4;e=5;");
    dict_close(&d);

    /* Values: "=" and braces inside, empty. */
    d = open_ok("inline:{ url=a=b, {k = {x y} z }, empty=, { sp =  } }",
                DICT_FLAG_DEFAULT);
    assert_lookup(d, "url", "a=b");
    assert_lookup(d, "k", "{x y} z");
    assert_lookup(d, "empty", "");
    assert_lookup(d, "sp", "");
    dict_close(&d);
}

static void test_inline_errors(void **state)
{
    (void) state;
    open_bad("inline:{ a }", DICT_FLAG_DEFAULT,
             "inline table: expected key=value, found \"a\"", 0);
    open_bad("inline:{ a=1, b }", DICT_FLAG_DEFAULT,
             "inline table: expected key=value, found \"b\"", 0);
    open_bad("inline:{ =1 }", DICT_FLAG_DEFAULT,
             "inline table: expected key=value, found \"=1\"", 0);
    open_bad("inline:{ { = 1 } }", DICT_FLAG_DEFAULT,
             "inline table: expected key=value, found \"= 1\"", 0);
    open_bad("inline:{ a = 1 }", DICT_FLAG_DEFAULT,
             "inline table: expected key=value, found \"a\"", 0);
    open_bad("inline:a=1", DICT_FLAG_DEFAULT,
             "inline:a=1: expected inline:{ key=value, ... }", 0);
    open_bad("inline:", DICT_FLAG_DEFAULT,
             "inline:: expected inline:{ key=value, ... }", 0);
    open_bad("inline:{ a=1", DICT_FLAG_DEFAULT,
             "inline:{ a=1: expected inline:{ key=value, ... }", 0);
    open_bad("inline:{ a=1 } x", DICT_FLAG_DEFAULT,
             "inline:{ a=1 } x: expected inline:{ key=value, ... }", 0);
    open_bad("inline:{ a=1, { b=2 }", DICT_FLAG_DEFAULT,
             "expected inline:{ key=value, ... }", 1);
    open_bad("inline:{ a=1, {b=2}c }", DICT_FLAG_DEFAULT,
             "inline:{ a=1, {b=2}c }: text after '}' must be separated by a "
             "delimiter", 0);
    open_bad("inline:{ a=1, b=2, a=3 }", DICT_FLAG_DEFAULT,
             "inline table: duplicate key \"a\"", 0);
    /* Duplicates after folding. */
    open_bad("inline:{ a=1, A=2 }", DICT_FLAG_DEFAULT,
             "inline table: duplicate key \"a\"", 0);
    {
        DICT *d = open_ok("inline:{ a=1, A=2 }", 0);

        assert_lookup(d, "a", "1");
        assert_lookup(d, "A", "2");
        dict_close(&d);
    }
    /* A failed open leaves nothing behind in the registry. */
    open_bad("inline:{ a=1, a=2 }", DICT_FLAG_DEFAULT, "duplicate key", 1);
    open_bad("inline:{ a=1, a=2 }", DICT_FLAG_DEFAULT, "duplicate key", 1);
}

static void test_inline_oversized(void **state)
{
    STRBUF *spec = strbuf_alloc(256 * 1024);
    STRBUF *key = strbuf_alloc(16);
    DICT *d;
    const char *value;

    (void) state;
    strbuf_cat(spec, "inline:{");
    for (int i = 0; i < 10000; i++)
        strbuf_printf_append(spec, " K%d=v%d,", i, i);
    strbuf_cat(spec, " { big = ");
    for (int i = 0; i < 100000; i++)
        strbuf_addch(spec, 'b');
    strbuf_cat(spec, " } }");
    d = open_ok(spec->data, DICT_FLAG_DEFAULT);
    for (int i = 0; i < 10000; i += 999) {
        strbuf_printf(key, "K%d", i);
        assert_int_equal(dict_lookup(d, key->data, &value), DICT_FOUND);
        strbuf_printf(key, "v%d", i);
        assert_string_equal(value, key->data);
    }
    assert_int_equal(dict_lookup(d, "big", &value), DICT_FOUND);
    assert_int_equal(strlen(value), 100000);
    dict_close(&d);
    strbuf_free(&spec);
    strbuf_free(&key);
}

/* --- texthash --------------------------------------------------------- */

static void test_texthash(void **state)
{
    static const char text[] =
        "# access table\n"
        "example.com      OK\n"
        "\n"
        "   # indented comment\n"
        "\"with space\"   REJECT spaced key\n"
        "Spam.Example     REJECT\n"
        "  no spam here, thanks\n"
        "# comment between continuation lines\n"
        "\treally\n"
        "example.com      DUNNO\n"
        "user@example.net\t550 5.1.1 no such user   \n"
        "crlf.example 4.4.4\r\n"
        "last no newline";
    const char *path = write_table("access", text, sizeof(text) - 1);
    STRBUF *spec = strbuf_alloc(64);
    DICT *d;

    (void) state;
    strbuf_printf(spec, "texthash:%s", path);
    unit_log_reset();
    d = open_ok(spec->data, DICT_FLAG_DEFAULT);
    assert_string_equal(d->type, "texthash");
    assert_string_equal(d->name, path);
    /* The first of two duplicates is kept, with a warning. */
    assert_lookup(d, "example.com", "OK");
    assert_true(unit_logged("access, line 10: duplicate entry: "
                            "\"example.com\""));
    /* Quoted keys keep their quotes. */
    assert_lookup(d, "\"with space\"", "REJECT spaced key");
    assert_lookup(d, "with space", NULL);
    assert_lookup(d, "spam.example", "REJECT  no spam here, thanks\treally");
    assert_lookup(d, "user@example.net", "550 5.1.1 no such user");
    assert_lookup(d, "crlf.example", "4.4.4");
    assert_lookup(d, "last", "no newline");
    assert_lookup(d, "#", NULL);
    assert_sequence(d, "example.com=OK;"
                    "\"with space\"=REJECT spaced key;"
                    "spam.example=REJECT  no spam here, thanks\treally;"
                    "user@example.net=550 5.1.1 no such user;"
                    "crlf.example=4.4.4;"
                    "last=no newline;");
    dict_close(&d);
    strbuf_free(&spec);
}

static void test_texthash_errors(void **state)
{
    static const char nul[] = "a 1\nb 2\0\nc 3\n";
    const char *path;
    STRBUF *spec = strbuf_alloc(64);
    STRBUF *want = strbuf_alloc(64);

    (void) state;
    path = write_table_str("bad", "a 1\n# c\nkeyonly\nc 3\n");
    strbuf_printf(spec, "texthash:%s", path);
    strbuf_printf(want, "%s, line 3: expected format: key whitespace value",
                  path);
    open_bad(spec->data, DICT_FLAG_DEFAULT, want->data, 0);
    /* The failed open was not registered. */
    open_bad(spec->data, DICT_FLAG_DEFAULT, want->data, 0);

    path = write_table("nul", nul, sizeof(nul) - 1);
    strbuf_printf(spec, "texthash:%s", path);
    strbuf_printf(want, "%s, line 2: NUL byte in input", path);
    open_bad(spec->data, DICT_FLAG_DEFAULT, want->data, 0);

    strbuf_printf(spec, "texthash:%s/missing", unit_tmpdir());
    strbuf_printf(want, "open %s/missing: No such file or directory",
                  unit_tmpdir());
    open_bad(spec->data, DICT_FLAG_DEFAULT, want->data, 0);

    /* An empty file is an empty table. */
    path = write_table_str("empty", "");
    strbuf_printf(spec, "texthash:%s", path);
    {
        DICT *d = open_ok(spec->data, DICT_FLAG_DEFAULT);

        assert_lookup(d, "x", NULL);
        assert_sequence(d, "");
        dict_close(&d);
    }
    strbuf_free(&spec);
    strbuf_free(&want);
}

static void test_texthash_oversized(void **state)
{
    STRBUF *text = strbuf_alloc(4 * 1024 * 1024);
    STRBUF *spec = strbuf_alloc(64);
    DICT *d;
    const char *value;
    const char *path;

    (void) state;
    for (int i = 0; i < 100000; i++)
        strbuf_printf_append(text, "key%d value%d\n", i, i);
    strbuf_cat(text, "big ");
    for (int i = 0; i < 1024 * 1024; i++)
        strbuf_addch(text, 'x');
    strbuf_cat(text, "\n");
    path = write_table("big", text->data, text->len);
    strbuf_printf(spec, "texthash:%s", path);
    d = open_ok(spec->data, DICT_FLAG_DEFAULT);
    assert_lookup(d, "key0", "value0");
    assert_lookup(d, "key99999", "value99999");
    assert_lookup(d, "key100000", NULL);
    assert_int_equal(dict_lookup(d, "big", &value), DICT_FOUND);
    assert_int_equal(strlen(value), 1024 * 1024);
    dict_close(&d);
    strbuf_free(&text);
    strbuf_free(&spec);
}

/* --- dict_hashed ------------------------------------------------------ */

static void test_hashed(void **state)
{
    DICT_HASHED *dh = dict_hashed_alloc("mem", "name", 0);
    const char *value;

    (void) state;
    assert_true(dh->dict.flags & DICT_FLAG_FIXED);
    assert_int_equal(dict_hashed_add(dh, "k", "v1"), 0);
    assert_int_equal(dict_hashed_add(dh, "k", "v2"), -1);
    assert_int_equal(dict_hashed_add(dh, "K", "v3"), 0);
    assert_int_equal(dict_hashed_add(dh, "", "empty key"), 0);
    assert_int_equal(dh->dict.lookup(&dh->dict, "k", &value), DICT_FOUND);
    assert_string_equal(value, "v1");
    assert_int_equal(dh->dict.lookup(&dh->dict, "", &value), DICT_FOUND);
    assert_string_equal(value, "empty key");
    assert_int_equal(dh->dict.lookup(&dh->dict, "x", &value), DICT_NOTFOUND);
    assert_sequence(&dh->dict, "k=v1;K=v3;=empty key;");
    /* sequence restarts with first != 0 at any point. */
    {
        const char *key;

        assert_int_equal(dh->dict.sequence(&dh->dict, 1, &key, &value),
                         DICT_FOUND);
        assert_int_equal(dh->dict.sequence(&dh->dict, 0, &key, &value),
                         DICT_FOUND);
        assert_string_equal(key, "K");
        assert_int_equal(dh->dict.sequence(&dh->dict, 1, &key, &value),
                         DICT_FOUND);
        assert_string_equal(key, "k");
    }
    dh->dict.close(&dh->dict);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_shared_refcount),
        cmocka_unit_test(test_registry_many),
        cmocka_unit_test(test_lookup_folding),
        cmocka_unit_test(test_fold_fixed_tables),
        cmocka_unit_test(test_surrogate),
        cmocka_unit_test(test_dict_fail),
        cmocka_unit_test(test_static),
        cmocka_unit_test(test_static_oversized),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_inline_errors),
        cmocka_unit_test(test_inline_oversized),
        cmocka_unit_test(test_texthash),
        cmocka_unit_test(test_texthash_errors),
        cmocka_unit_test(test_texthash_oversized),
        cmocka_unit_test(test_hashed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
