/*
 * test_addr_canon - canonical envelope addresses: site!user with
 * swap_bangpath on and off, the percent hack (only for mydestination
 * domains, repeated, allow_percent_hack off), @$myorigin for bare
 * names, the null address, and addr_domain().
 */
#include "unit.h"

#include "mail/addr_canon.h"
#include "mail/params.h"

static MATCH_LIST *local;
static STRBUF *out;

static int setup(void **state)
{
    (void) state;
    var_parent_domain_matches_subdomains = "relay_domains";
    local = match_list_domains("mydestination",
                               "example.com, localhost.example.com, "
                               "localhost");
    out = strbuf_alloc(64);
    return 0;
}

static int teardown(void **state)
{
    (void) state;
    match_list_free(&local);
    strbuf_free(&out);
    return 0;
}

static void reset_params(void)
{
    var_swap_bangpath = 1;
    var_allow_percent_hack = 1;
    var_myorigin = "origin.example.com";
}

static const char *canon(const char *addr)
{
    addr_canon(addr, local, out);
    return out->data;
}

static void test_null_and_plain(void **state)
{
    (void) state;
    reset_params();
    assert_string_equal(canon(""), "");
    assert_int_equal(out->len, 0);
    assert_string_equal(canon("user@remote.example"), "user@remote.example");
    assert_string_equal(canon("user@example.com"), "user@example.com");
    assert_string_equal(canon("User@Example.COM"), "User@Example.COM");
    assert_string_equal(canon("\"a b\"@example.com"), "\"a b\"@example.com");
    assert_string_equal(canon("user@[192.0.2.1]"), "user@[192.0.2.1]");
    /* The output buffer is replaced, not appended to. */
    strbuf_set(out, "junk");
    assert_string_equal(canon("a@b"), "a@b");
    strbuf_set(out, "junk");
    assert_string_equal(canon(""), "");
}

static void test_myorigin(void **state)
{
    (void) state;
    reset_params();
    assert_string_equal(canon("user"), "user@origin.example.com");
    assert_string_equal(canon("postmaster"), "postmaster@origin.example.com");
    assert_string_equal(canon("\"a b\""), "\"a b\"@origin.example.com");
    var_myorigin = "other.example";
    assert_string_equal(canon("user"), "user@other.example");
    /* An empty domain is a domain: nothing is appended. */
    assert_string_equal(canon("user@"), "user@");
    assert_string_equal(canon("@example.net"), "@example.net");
}

static void test_bangpath(void **state)
{
    (void) state;
    reset_params();
    assert_string_equal(canon("site!user"), "user@site");
    assert_string_equal(canon("remote.example!user"),
                        "user@remote.example");
    /* One level per pass: the rest stays a bang path (Postfix). */
    assert_string_equal(canon("a!b!user"), "b!user@a");
    /* No site or no user: not a bang path. */
    assert_string_equal(canon("!user"), "!user@origin.example.com");
    assert_string_equal(canon("site!"), "site!@origin.example.com");
    assert_string_equal(canon("!"), "!@origin.example.com");
    /* With a domain, "!" is part of the local part. */
    assert_string_equal(canon("site!user@remote.example"),
                        "site!user@remote.example");
    /* A bang path to a local site, with the percent hack after it. */
    assert_string_equal(canon("example.com!user%remote.example"),
                        "user@remote.example");
    /* Off: an ordinary local part. */
    var_swap_bangpath = 0;
    assert_string_equal(canon("site!user"), "site!user@origin.example.com");
    assert_string_equal(canon("a!b!user"), "a!b!user@origin.example.com");
    reset_params();
}

static void test_percent_hack(void **state)
{
    (void) state;
    reset_params();
    /* Local domains only. */
    assert_string_equal(canon("user%remote.example@example.com"),
                        "user@remote.example");
    assert_string_equal(canon("user%remote.example@EXAMPLE.com"),
                        "user@remote.example");
    assert_string_equal(canon("user%remote.example@localhost"),
                        "user@remote.example");
    assert_string_equal(canon("user%remote.example@other.example"),
                        "user%remote.example@other.example");
    /* Subdomains of a local domain are not local (not parent style). */
    assert_string_equal(canon("user%remote.example@sub.example.com"),
                        "user%remote.example@sub.example.com");
    /* The last "%" goes first; repeated while the domain is local. */
    assert_string_equal(canon("user%a.example%example.com@localhost"),
                        "user@a.example");
    assert_string_equal(canon("user%a.example%b.example@example.com"),
                        "user%a.example@b.example");
    assert_string_equal(canon("u%localhost%example.com@localhost"),
                        "u@localhost");
    /* Nothing before the "%": left alone. */
    assert_string_equal(canon("%remote.example@example.com"),
                        "%remote.example@example.com");
    /* No "%": unchanged. */
    assert_string_equal(canon("user@example.com"), "user@example.com");
    /* No domain: @myorigin is appended, and no hack is applied. */
    assert_string_equal(canon("user%remote.example"),
                        "user%remote.example@origin.example.com");
    /* Off, or without a list of local domains. */
    var_allow_percent_hack = 0;
    assert_string_equal(canon("user%remote.example@example.com"),
                        "user%remote.example@example.com");
    var_allow_percent_hack = 1;
    addr_canon("user%remote.example@example.com", NULL, out);
    assert_string_equal(out->data, "user%remote.example@example.com");
    reset_params();
}

static void test_percent_hack_errors(void **state)
{
    MATCH_LIST *broken;
    STRBUF *spec = strbuf_alloc(64);

    (void) state;
    reset_params();
    /* A failing list is no reason to rewrite (nor to crash). */
    strbuf_printf(spec, "lmdb:%s/nonexistent", unit_tmpdir());
    unit_log_reset();
    broken = match_list_domains("mydestination", spec->data);
    addr_canon("user%remote.example@example.com", broken, out);
    assert_string_equal(out->data, "user%remote.example@example.com");
    match_list_free(&broken);
    strbuf_free(&spec);
}

static void test_long(void **state)
{
    STRBUF *in = strbuf_alloc(64);
    STRBUF *want = strbuf_alloc(64);

    (void) state;
    reset_params();
    /* Many "%" hops, all through local domains. */
    strbuf_set(in, "user");
    for (int i = 0; i < 200; i++)
        strbuf_cat(in, "%localhost");
    strbuf_cat(in, "@example.com");
    assert_string_equal(canon(in->data), "user@localhost");
    /* A long bang path site. */
    strbuf_reset(in);
    for (int i = 0; i < 1000; i++)
        strbuf_addch(in, 's');
    strbuf_printf(want, "user@%s", in->data);
    strbuf_cat(in, "!user");
    assert_string_equal(canon(in->data), want->data);
    strbuf_free(&in);
    strbuf_free(&want);
}

static void test_addr_domain(void **state)
{
    (void) state;
    assert_string_equal(addr_domain("user@example.com"), "example.com");
    assert_string_equal(addr_domain("a@b@c.example"), "c.example");
    assert_string_equal(addr_domain("\"a@b\"@c.example"), "c.example");
    assert_string_equal(addr_domain("user"), "");
    assert_string_equal(addr_domain("user@"), "");
    assert_string_equal(addr_domain("@example.com"), "example.com");
    assert_string_equal(addr_domain(""), "");
    {
        const char *a = "x@y";

        assert_ptr_equal(addr_domain(a), a + 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_and_plain),
        cmocka_unit_test(test_myorigin),
        cmocka_unit_test(test_bangpath),
        cmocka_unit_test(test_percent_hack),
        cmocka_unit_test(test_percent_hack_errors),
        cmocka_unit_test(test_long),
        cmocka_unit_test(test_addr_domain),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
