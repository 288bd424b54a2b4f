/*
 * test_smtp_addr - the MAIL FROM / RCPT TO argument parser: brackets,
 * the null address, strict and lenient forms, source routes, quoted local
 * parts, bad characters, the length limit, parameters, UTF-8 validation
 * (overlong forms, surrogates, truncated sequences), every prefix of good
 * input, embedded NUL bytes, and RFC 3461 xtext.
 *
 * Input is parsed from heap copies of its exact size, so that ASan and
 * valgrind catch any read past the terminating NUL.
 */
#include "unit.h"

#include "mail/smtp_addr.h"

static STRBUF *addr;
static ARGV *params;
static const char *why;

static int setup(void **state)
{
    (void) state;
    addr = strbuf_alloc(64);
    params = argv_alloc(4);
    return 0;
}

static int teardown(void **state)
{
    (void) state;
    strbuf_free(&addr);
    argv_free(&params);
    return 0;
}

/* Parse a heap copy of args; on success, addr and params are set. */
static int parse(const char *args, const char *keyword, int strict)
{
    char *copy = strdup(args);
    int rc;

    assert_non_null(copy);
    why = NULL;
    rc = smtp_addr_parse(copy, keyword, strict, addr, params, &why);
    free(copy);
    if (rc < 0)
        assert_non_null(why);
    else
        assert_int_equal(rc, 0);
    return rc;
}

/* The parameters joined with "|". */
static const char *joined_params(void)
{
    static STRBUF *out;

    if (out == NULL)
        out = strbuf_alloc(64);
    strbuf_reset(out);
    for (size_t i = 0; i < params->argc; i++)
        strbuf_printf_append(out, "%s%s", i ? "|" : "", params->argv[i]);
    return out->data;
}

static void expect_addr(const char *args, int strict, const char *want)
{
    if (parse(args, "FROM", strict) < 0)
        fail_msg("\"%s\": %s", args, why);
    assert_string_equal(addr->data, want);
}

static void expect_bad(const char *args, int strict, const char *reason)
{
    if (parse(args, "FROM", strict) == 0)
        fail_msg("\"%s\" was accepted as \"%s\"", args, addr->data);
    if (reason && strcmp(why, reason) != 0)
        fail_msg("\"%s\": \"%s\", expected \"%s\"", args, why, reason);
}

static void test_basic(void **state)
{
    (void) state;
    expect_addr("FROM:<>", 0, "");
    expect_addr("FROM:<>", 1, "");
    expect_addr("FROM:<user@example.com>", 1, "user@example.com");
    assert_int_equal(params->argc, 0);
    expect_addr("from:<user@example.com>", 1, "user@example.com");
    expect_addr("From:<User@Example.COM>", 1, "User@Example.COM");
    /* A space (or several) after the colon. */
    expect_addr("FROM: <user@example.com>", 1, "user@example.com");
    expect_addr("FROM:   <>", 1, "");
    expect_addr("FROM:<user>", 1, "user");                 /* no domain */
    expect_addr("FROM:<user@[192.0.2.1]>", 1, "user@[192.0.2.1]");
    expect_addr("FROM:<user@[IPv6:2001:db8::1]>", 1,
                "user@[IPv6:2001:db8::1]");
    /* Trailing spaces are no parameters. */
    expect_addr("FROM:<a@b>   ", 1, "a@b");
    assert_int_equal(params->argc, 0);
    /* The keyword is the caller's. */
    assert_int_equal(parse("TO:<a@b>", "TO", 1), 0);
    assert_string_equal(addr->data, "a@b");
    assert_int_equal(parse("TO:<a@b>", "FROM", 1), -1);
    assert_string_equal(why, "missing keyword");
    expect_bad("FROM :<a@b>", 0, "missing keyword");
    expect_bad("FROM<a@b>", 0, "missing keyword");
    expect_bad("FRO:<a@b>", 0, "missing keyword");
    expect_bad("FROMX:<a@b>", 0, "missing keyword");
    expect_bad("FROM", 0, "missing keyword");
    expect_bad("", 0, "missing keyword");
    expect_bad("<a@b>", 0, "missing keyword");
}

static void test_brackets(void **state)
{
    (void) state;
    /* Without "<>": lenient only. */
    expect_addr("FROM:user@example.com", 0, "user@example.com");
    expect_addr("FROM: user@example.com SIZE=10", 0, "user@example.com");
    assert_string_equal(joined_params(), "SIZE=10");
    expect_bad("FROM:user@example.com", 1, "missing '<'");
    expect_bad("FROM: user@example.com", 1, "missing '<'");
    /* Nothing at all is no address, not the null sender. */
    expect_bad("FROM:", 0, NULL);
    expect_bad("FROM:   ", 0, NULL);
    expect_bad("FROM:", 1, NULL);
    /* Unbalanced or extra brackets. */
    expect_bad("FROM:<user@example.com", 1, "missing '>'");
    expect_bad("FROM:<", 1, "missing '>'");
    expect_bad("FROM:<user@example.com>x", 1, "text after '>'");
    expect_bad("FROM:<user@example.com>>", 1, "text after '>'");
    expect_bad("FROM:<user@example.com>\tSIZE=1", 1, "text after '>'");
    expect_bad("FROM:<<user@example.com>>", 1, NULL);
    expect_bad("FROM:<a<b@example.com>", 1, NULL);
    expect_bad("FROM:user>@example.com", 0, NULL);
}

static void test_source_route(void **state)
{
    (void) state;
    expect_addr("FROM:<@a.example,@b.example:user@d.example>", 1,
                "user@d.example");
    expect_addr("FROM:<@a.example:user@d.example>", 1, "user@d.example");
    expect_addr("FROM:@a.example:user@d.example", 0, "user@d.example");
    expect_bad("FROM:<@a.example>", 1, "bad source route");
    expect_bad("FROM:<@>", 1, "bad source route");
    expect_bad("FROM:@a.example", 0, "bad source route");
    /* What follows the route is checked like any address. */
    expect_bad("FROM:<@a.example:user@>", 1, NULL);
    expect_bad("FROM:<@a.example:@b>", 1, NULL);
    expect_bad("FROM:<@a.example:a b@c>", 1, NULL);
}

static void test_quoted(void **state)
{
    (void) state;
    expect_addr("FROM:<\"john doe\"@example.com>", 1,
                "\"john doe\"@example.com");
    expect_addr("FROM:<\"a\\\"b\"@example.com>", 1,
                "\"a\\\"b\"@example.com");
    expect_addr("FROM:<\"a\\\\\"@example.com>", 1, "\"a\\\\\"@example.com");
    expect_addr("FROM:<\"a>b\"@example.com>", 1, "\"a>b\"@example.com");
    expect_addr("FROM:<\"a@b\"@example.com>", 1, "\"a@b\"@example.com");
    expect_addr("FROM:<\"a,b;c(d)<e>\"@example.com> SIZE=5", 1,
                "\"a,b;c(d)<e>\"@example.com");
    assert_string_equal(joined_params(), "SIZE=5");
    expect_addr("FROM:<\"\"@example.com>", 1, "\"\"@example.com");
    /* Unbalanced quotes. */
    expect_bad("FROM:<\"john@example.com>", 1, NULL);
    expect_bad("FROM:<john\"@example.com>", 1, NULL);
    expect_bad("FROM:<\"a\\\"@example.com>", 1, NULL);
    expect_bad("FROM:<\"a\\>", 1, NULL);
    expect_bad("FROM:\"john@example.com", 0, "unbalanced quote in address");
    expect_bad("FROM:john\"@example.com", 0, "unbalanced quote in address");
    expect_bad("FROM:\"a\\\"@example.com", 0,
               "unbalanced quote in address");
    /* Control characters are bad even when quoted. */
    expect_bad("FROM:<\"a\x01\"@example.com>", 1,
               "control character in address");
    expect_bad("FROM:<\"a\tb\"@example.com>", 1,
               "control character in address");
    expect_bad("FROM:<\"a\\\rb\"@example.com>", 1,
               "control character in address");
    /* ... and cannot be escaped into it. */
    expect_bad("FROM:<\"a\\\nb\"@example.com>", 1,
               "control character in address");
    expect_bad("FROM:<\"a\\\tb\"@example.com>", 1,
               "control character in address");
    expect_bad("FROM:<\"a\\\x7f\"@example.com>", 1,
               "control character in address");
    expect_bad("FROM:<\"a\\\x01\"@example.com>", 1,
               "control character in address");
    expect_addr("FROM:<\"a\\ b\"@example.com>", 1, "\"a\\ b\"@example.com");
}

static void test_bad_characters(void **state)
{
    static const char *const bad[] = {
        "a b@example.com", "a,b@example.com", "a;b@example.com",
        "a(b)@example.com", "a\\b@example.com", "a<b@example.com",
        "a\tb@example.com", "a\rb@example.com", "a\nb@example.com",
        "a\x01@example.com", "a\x1f@example.com", "a\x7f@example.com",
        "a@b@example.com", "@@example.com", "a@", "a@example.com@",
        "a@\"b\"@c",
    };
    STRBUF *args = strbuf_alloc(64);

    (void) state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strbuf_printf(args, "FROM:<%s>", bad[i]);
        expect_bad(args->data, 0, NULL);
    }
    expect_bad("FROM:<a@b@c>", 0, "bad address syntax");
    expect_bad("FROM:<a@>", 0, "bad address syntax");
    expect_bad("FROM:<a b@c>", 0, "bad character in address");
    expect_bad("FROM:<a\x7f@c>", 0, "control character in address");
    strbuf_free(&args);
}

static void test_length(void **state)
{
    STRBUF *args = strbuf_alloc(2048);
    STRBUF *local = strbuf_alloc(1024);
    const char *domain = "@example.com";

    (void) state;
    /* Exactly SMTP_ADDR_MAX bytes: fine; one more: too long. */
    while (local->len + strlen(domain) < SMTP_ADDR_MAX)
        strbuf_addch(local, 'x');
    strbuf_printf(args, "FROM:<%s%s>", local->data, domain);
    assert_int_equal(parse(args->data, "FROM", 1), 0);
    assert_int_equal(addr->len, SMTP_ADDR_MAX);
    strbuf_printf(args, "FROM:<x%s%s>", local->data, domain);
    expect_bad(args->data, 1, "address too long");
    /* Without brackets too, and the source route does not count. */
    strbuf_printf(args, "FROM:x%s%s", local->data, domain);
    expect_bad(args->data, 0, "address too long");
    strbuf_printf(args, "FROM:<@route.example:%s%s>", local->data, domain);
    assert_int_equal(parse(args->data, "FROM", 1), 0);
    assert_int_equal(addr->len, SMTP_ADDR_MAX);
    /* Far too long. */
    strbuf_set(args, "FROM:<");
    for (int i = 0; i < 100000; i++)
        strbuf_addch(args, 'y');
    strbuf_cat(args, "@example.com>");
    expect_bad(args->data, 1, "address too long");
    strbuf_free(&args);
    strbuf_free(&local);
}

static void test_parameters(void **state)
{
    (void) state;
    assert_int_equal(parse("FROM:<a@b> SIZE=100 BODY=8BITMIME", "FROM", 1),
                     0);
    assert_string_equal(joined_params(), "SIZE=100|BODY=8BITMIME");
    assert_int_equal(parse("FROM:<a@b>  SMTPUTF8   RET=HDRS ", "FROM", 1),
                     0);
    assert_string_equal(joined_params(), "SMTPUTF8|RET=HDRS");
    /* Values with "=", lowercase, 8-bit: the caller judges them. */
    assert_int_equal(parse("TO:<a@b> ORCPT=rfc822;a+3Db@c x=1 Y= Z=\xc3\xa9",
                           "TO", 1), 0);
    assert_string_equal(joined_params(),
                        "ORCPT=rfc822;a+3Db@c|x=1|Y=|Z=\xc3\xa9");
    /* Junk words are parameters too (smtpd: 555 unsupported). */
    assert_int_equal(parse("FROM:<a@b> junk", "FROM", 1), 0);
    assert_string_equal(joined_params(), "junk");
    /* Bad parameters. */
    expect_bad("FROM:<a@b> =x", 1, "bad parameter");
    expect_bad("FROM:<a@b> SIZE=1 =", 1, "bad parameter");
    expect_bad("FROM:<a@b> SIZE=1\x01", 1, "bad parameter");
    expect_bad("FROM:<a@b> SIZE=\t1", 1, "bad parameter");
    expect_bad("FROM:<a@b> SIZE=1\r", 1, "bad parameter");
    expect_bad("FROM:<a@b> X=\x7f", 1, "bad parameter");
    /* Each call starts afresh. */
    assert_int_equal(parse("FROM:<a@b> A=1 B=2", "FROM", 1), 0);
    assert_int_equal(parse("FROM:<c@d>", "FROM", 1), 0);
    assert_int_equal(params->argc, 0);
    assert_string_equal(addr->data, "c@d");
    assert_int_equal(parse("FROM:<a@b> A=1 B=2", "FROM", 1), 0);
    assert_int_equal(parse("FROM:<c@d", "FROM", 1), -1);
    assert_int_equal(params->argc, 0);
}

static void test_utf8(void **state)
{
    static const char *const good[] = {
        "j\xc3\xbcrgen@b\xc3\xbc" "cher.example",          /* 2 bytes */
        "\xe2\x82\xac@example.com",                     /* U+20AC */
        "\xe0\xa0\x80@example.com",                     /* U+0800 */
        "\xef\xbf\xbf@example.com",                     /* U+FFFF */
        "\xed\x9f\xbf@example.com",                     /* U+D7FF */
        "\xee\x80\x80@example.com",                     /* U+E000 */
        "\xf0\x9f\x98\x80@example.com",                 /* U+1F600 */
        "\xf0\x90\x80\x80@example.com",                 /* U+10000 */
        "\xf4\x8f\xbf\xbf@example.com",                 /* U+10FFFF */
        "\xc2\x80@example.com",                         /* U+0080 */
        "\"\xc3\xa9 \xc3\xa9\"@example.com",
    };
    static const char *const bad[] = {
        "\xc0\x80@example.com",                 /* overlong NUL */
        "\xc1\xbf@example.com",                 /* overlong U+007F */
        "\xc0\xaf@example.com",                 /* overlong "/" */
        "\xe0\x80\x80@example.com",             /* overlong, 3 bytes */
        "\xe0\x9f\xbf@example.com",             /* overlong U+07FF */
        "\xf0\x80\x80\x80@example.com",         /* overlong, 4 bytes */
        "\xf0\x8f\xbf\xbf@example.com",         /* overlong U+FFFF */
        "\xed\xa0\x80@example.com",             /* surrogate D800 */
        "\xed\xbf\xbf@example.com",             /* surrogate DFFF */
        "\xed\xa0\xbd\xed\xb8\x80@example.com", /* CESU-8 pair */
        "\xf4\x90\x80\x80@example.com",         /* U+110000 */
        "\xf5\x80\x80\x80@example.com",
        "\xf7\xbf\xbf\xbf@example.com",
        "\xf8\x88\x80\x80\x80@example.com",     /* 5 bytes */
        "\xfc\x84\x80\x80\x80\x80@example.com", /* 6 bytes */
        "\xfe@example.com", "\xff@example.com",
        "\x80@example.com",                     /* lone continuation */
        "a\xbf@example.com",
        "\xc3@example.com",                     /* truncated */
        "\xe2\x82@example.com",
        "\xf0\x9f\x98@example.com",
        "\xc3\x41@example.com",                 /* not a continuation */
        "\xe2\x41\xa1@example.com",
        "\xf0\x9f\xc3\xa9@example.com",
        "user@example.\xc3",                    /* truncated at the end */
        "user@example.\xe2\x82",
        "user@example.\xf0\x9f\x98",
        "\"\xc3\"@example.com",                 /* quoted */
    };
    STRBUF *args = strbuf_alloc(64);

    (void) state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        strbuf_printf(args, "FROM:<%s>", good[i]);
        expect_addr(args->data, 1, good[i]);
        assert_true(smtp_addr_8bit(addr->data));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strbuf_printf(args, "FROM:<%s>", bad[i]);
        expect_bad(args->data, 1, "malformed UTF-8 in address");
        /* Also at the very end of the input, without brackets. */
        strbuf_printf(args, "FROM:%s", bad[i]);
        expect_bad(args->data, 0, "malformed UTF-8 in address");
    }
    assert_false(smtp_addr_8bit(""));
    assert_false(smtp_addr_8bit("user@example.com\x7f"));
    assert_true(smtp_addr_8bit("user@example.com\x80"));
    assert_true(smtp_addr_8bit("\xff"));
    strbuf_free(&args);
}

/* Every prefix of good input parses or fails cleanly. */
static void test_prefixes(void **state)
{
    static const char *const lines[] = {
        "FROM:<\"a \\\" b\"@[192.0.2.1]> SIZE=100 BODY=8BITMIME",
        "TO:<@r1.example,@r2.example:j\xc3\xbcrgen@\xf0\x9f\x98\x80.example> "
        "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+2By@z",
        "FROM: user@example.com SMTPUTF8",
    };

    (void) state;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        const char *kw = lines[i][0] == 'T' ? "TO" : "FROM";
        size_t len = strlen(lines[i]);

        for (size_t n = 0; n <= len; n++) {
            char *copy = malloc(n + 1);
            int rc;

            assert_non_null(copy);
            memcpy(copy, lines[i], n);
            copy[n] = 0;
            why = NULL;
            rc = smtp_addr_parse(copy, kw, 0, addr, params, &why);
            assert_true(rc == 0 || (rc == -1 && why != NULL));
            if (rc == 0)
                assert_true(addr->len <= SMTP_ADDR_MAX);
            free(copy);
        }
        assert_int_equal(parse(lines[i], kw, 0), 0);
    }
    /* A cut inside the brackets is never accepted. */
    expect_bad("FROM:<\"a \\\" b\"@[192.0.2.1]", 1, NULL);
    expect_bad("FROM:<\"a \\\" b\"", 1, NULL);
    expect_bad("FROM:<\"a \\", 1, NULL);
}

static void test_nul(void **state)
{
    static const char input[] = "FROM:<a@b\0>";
    static const char input2[] = "FROM:<a@b> SIZE=1\0 X=\x01";

    (void) state;
    /* The parser sees a C string: a NUL ends the input. */
    assert_int_equal(parse(input, "FROM", 1), -1);
    assert_string_equal(why, "missing '>'");
    assert_int_equal(parse(input2, "FROM", 1), 0);
    assert_string_equal(joined_params(), "SIZE=1");
}

static void test_xtext_decode(void **state)
{
    STRBUF *out = strbuf_alloc(16);

    (void) state;
    assert_int_equal(xtext_decode("", out), 0);
    assert_string_equal(out->data, "");
    assert_int_equal(xtext_decode("abc", out), 0);
    assert_string_equal(out->data, "abc");
    assert_int_equal(xtext_decode("a+2Bb+3Dc+20d", out), 0);
    assert_string_equal(out->data, "a+b=c d");
    assert_int_equal(xtext_decode("+C3+A9", out), 0);
    assert_string_equal(out->data, "\xc3\xa9");
    assert_int_equal(xtext_decode("rfc822;user+40example.com", out), 0);
    assert_string_equal(out->data, "rfc822;user@example.com");
    assert_int_equal(xtext_decode("+7E+21", out), 0);
    assert_string_equal(out->data, "~!");
    /* Malformed: lowercase hex, short or missing digits, bad bytes. */
    strbuf_set(out, "junk");
    assert_int_equal(xtext_decode("+2b", out), -1);
    assert_int_equal(xtext_decode("+c3", out), -1);
    assert_int_equal(xtext_decode("+", out), -1);
    assert_int_equal(xtext_decode("abc+", out), -1);
    assert_int_equal(xtext_decode("abc+2", out), -1);
    assert_int_equal(xtext_decode("+G0", out), -1);
    assert_int_equal(xtext_decode("+0G", out), -1);
    assert_int_equal(xtext_decode("+ 2B", out), -1);
    assert_int_equal(xtext_decode("a=b", out), -1);
    assert_int_equal(xtext_decode("a b", out), -1);
    assert_int_equal(xtext_decode("a\tb", out), -1);
    assert_int_equal(xtext_decode("a\x7f", out), -1);
    assert_int_equal(xtext_decode("\xc3\xa9", out), -1);
    /* Decoding starts afresh. */
    assert_int_equal(xtext_decode("x", out), 0);
    assert_string_equal(out->data, "x");
    /* "+" at the very end of a heap buffer: no read past the end. */
    {
        char *copy = strdup("ab+");

        assert_int_equal(xtext_decode(copy, out), -1);
        copy[2] = 0;
        assert_int_equal(xtext_decode(copy, out), 0);
        free(copy);
    }
    strbuf_free(&out);
}

static void test_xtext_encode(void **state)
{
    STRBUF *enc = strbuf_alloc(16);
    STRBUF *dec = strbuf_alloc(16);
    char all[256];

    (void) state;
    xtext_encode("a+b=c d", enc);
    assert_string_equal(enc->data, "a+2Bb+3Dc+20d");
    xtext_encode("\xc3\xa9\x01\x7f~!", enc);
    assert_string_equal(enc->data, "+C3+A9+01+7F~!");
    xtext_encode("", enc);
    assert_string_equal(enc->data, "");
    xtext_encode("rfc822;user@example.com", enc);
    assert_string_equal(enc->data, "rfc822;user@example.com");
    /* Round trip over every byte value but NUL. */
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char) i;
    all[255] = 0;
    xtext_encode(all, enc);
    for (size_t i = 0; i < enc->len; i++) {
        unsigned char ch = (unsigned char) enc->data[i];

        assert_true(ch >= 0x21 && ch <= 0x7e && ch != '=');
    }
    assert_int_equal(xtext_decode(enc->data, dec), 0);
    assert_int_equal(dec->len, 255);
    assert_memory_equal(dec->data, all, 255);
    strbuf_free(&enc);
    strbuf_free(&dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_brackets),
        cmocka_unit_test(test_source_route),
        cmocka_unit_test(test_quoted),
        cmocka_unit_test(test_bad_characters),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_parameters),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_xtext_decode),
        cmocka_unit_test(test_xtext_encode),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
