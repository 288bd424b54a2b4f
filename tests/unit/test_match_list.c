/*
 * test_match_list - domain and network lists: plain names, .name,
 * parent-domain style (by parameter name), negation with first match
 * wins, /file lists with comments, type:table items (inline, a broken
 * lmdb table, an unknown type), IPv4 and IPv6 networks and addresses,
 * IPv4-mapped clients, malformed networks and case-insensitivity.
 */
#include "unit.h"

#include "mail/match_list.h"
#include "mail/params.h"

#define PARENT_STYLE    "relay_domains,mynetworks,debug_peer_list"

static int domain_match(const char *name, const char *value,
                        const char *domain)
{
    MATCH_LIST *list = match_list_domains(name, value);
    int rc = match_list_domain(list, domain);

    match_list_free(&list);
    assert_null(list);
    return rc;
}

static int net_match(const char *value, const char *address)
{
    MATCH_LIST *list = match_list_networks("mynetworks", value);
    int rc = match_list_address(list, address);

    match_list_free(&list);
    return rc;
}

static void test_parent_style(void **state)
{
    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    assert_true(match_list_parent_style("relay_domains"));
    assert_true(match_list_parent_style("mynetworks"));
    assert_true(match_list_parent_style("debug_peer_list"));
    assert_false(match_list_parent_style("mydestination"));
    assert_false(match_list_parent_style("relay"));        /* whole names */
    assert_false(match_list_parent_style("relay_domains_x"));
    assert_false(match_list_parent_style(""));
    var_parent_domain_matches_subdomains = "";
    assert_false(match_list_parent_style("relay_domains"));
    var_parent_domain_matches_subdomains = NULL;
    assert_false(match_list_parent_style("relay_domains"));
    var_parent_domain_matches_subdomains = " relay_domains\tmydestination ";
    assert_true(match_list_parent_style("mydestination"));
    var_parent_domain_matches_subdomains = PARENT_STYLE;
}

static void test_domains_plain(void **state)
{
    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    /* Not parent style: the name only, .name for subdomains. */
    assert_int_equal(domain_match("mydestination", "example.com",
                                  "example.com"), MATCH_YES);
    assert_int_equal(domain_match("mydestination", "example.com",
                                  "sub.example.com"), MATCH_NO);
    assert_int_equal(domain_match("mydestination", "example.com",
                                  "xexample.com"), MATCH_NO);
    assert_int_equal(domain_match("mydestination", "example.com",
                                  "example.co"), MATCH_NO);
    assert_int_equal(domain_match("mydestination", "example.com",
                                  "com"), MATCH_NO);
    assert_int_equal(domain_match("mydestination", "example.com", ""),
                     MATCH_NO);
    assert_int_equal(domain_match("mydestination", ".example.com",
                                  "example.com"), MATCH_NO);
    assert_int_equal(domain_match("mydestination", ".example.com",
                                  "a.b.example.com"), MATCH_YES);
    assert_int_equal(domain_match("mydestination", ".example.com",
                                  "aexample.com"), MATCH_NO);
    assert_int_equal(domain_match("mydestination",
                                  "example.com, .example.com",
                                  "a.example.com"), MATCH_YES);

    /* Parent style: the name and its subdomains, never lookalikes. */
    assert_int_equal(domain_match("relay_domains", "example.com",
                                  "example.com"), MATCH_YES);
    assert_int_equal(domain_match("relay_domains", "example.com",
                                  "a.b.example.com"), MATCH_YES);
    assert_int_equal(domain_match("relay_domains", "example.com",
                                  "badexample.com"), MATCH_NO);
    assert_int_equal(domain_match("relay_domains", "example.com",
                                  "example.com.evil"), MATCH_NO);
    assert_int_equal(domain_match("relay_domains", ".example.com",
                                  "example.com"), MATCH_NO);
    assert_int_equal(domain_match("relay_domains", ".example.com",
                                  "a.example.com"), MATCH_YES);

    /* Separators: commas, blanks, newlines; an empty list. */
    assert_int_equal(domain_match("mydestination",
                                  " a.example,,b.example\tc.example\n"
                                  "d.example\r\n", "c.example"), MATCH_YES);
    assert_int_equal(domain_match("mydestination",
                                  " a.example,,b.example\tc.example\n"
                                  "d.example\r\n", "d.example"), MATCH_YES);
    assert_int_equal(domain_match("mydestination", "", "example.com"),
                     MATCH_NO);
    assert_int_equal(domain_match("mydestination", " , ", "example.com"),
                     MATCH_NO);
}

static void test_domains_case(void **state)
{
    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    assert_int_equal(domain_match("mydestination", "Example.COM",
                                  "eXAMPLE.com"), MATCH_YES);
    assert_int_equal(domain_match("mydestination", ".Example.COM",
                                  "Sub.EXAMPLE.com"), MATCH_YES);
    assert_int_equal(domain_match("relay_domains", "EXAMPLE.com",
                                  "X.Example.Com"), MATCH_YES);
    assert_int_equal(domain_match("mydestination",
                                  "inline:{ Example.COM=1 }",
                                  "EXAMPLE.com"), MATCH_YES);
}

static void test_domains_negation(void **state)
{
    const char *value = "!secret.example.com, .example.com, example.com";

    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    /* First match wins: a negated match is a final "no". */
    assert_int_equal(domain_match("mydestination", value,
                                  "secret.example.com"), MATCH_NO);
    assert_int_equal(domain_match("mydestination", value,
                                  "other.example.com"), MATCH_YES);
    assert_int_equal(domain_match("mydestination", value, "example.com"),
                     MATCH_YES);
    /* Order matters: the positive item first decides. */
    assert_int_equal(domain_match("mydestination",
                                  ".example.com, !secret.example.com",
                                  "secret.example.com"), MATCH_YES);
    /* A negation that does not match passes on to the next item. */
    assert_int_equal(domain_match("mydestination", "!a.example, b.example",
                                  "b.example"), MATCH_YES);
    assert_int_equal(domain_match("mydestination", "!a.example",
                                  "b.example"), MATCH_NO);
    /* "!!" cancels out. */
    assert_int_equal(domain_match("mydestination", "!!a.example",
                                  "a.example"), MATCH_YES);
    /* A lone "!" is no item. */
    assert_int_equal(domain_match("mydestination", "!, a.example",
                                  "a.example"), MATCH_YES);
    /* Parent style negation covers the subdomains too. */
    assert_int_equal(domain_match("relay_domains",
                                  "!internal.example.com, example.com",
                                  "x.internal.example.com"), MATCH_NO);
    assert_int_equal(domain_match("relay_domains",
                                  "!internal.example.com, example.com",
                                  "x.example.com"), MATCH_YES);
}

static void test_domains_file(void **state)
{
    STRBUF *value = strbuf_alloc(128);
    const char *path;
    char *inner;

    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    path = unit_write_file("inner", "# nested list\nnested.example\n");
    inner = strdup(path);
    path = unit_write_file("domains",
                           "# our domains\n"
                           "a.example b.example, # trailing comment\n"
                           "   # indented comment c.example\n"
                           "!no.d.example .d.example\n"
                           "#e.example\n"
                           "f.example#g.example\n");
    strbuf_printf(value, "x.example, %s, %s", path, inner);
    assert_int_equal(domain_match("mydestination", value->data, "a.example"),
                     MATCH_YES);
    assert_int_equal(domain_match("mydestination", value->data, "b.example"),
                     MATCH_YES);
    assert_int_equal(domain_match("mydestination", value->data, "x.example"),
                     MATCH_YES);
    assert_int_equal(domain_match("mydestination", value->data,
                                  "c.example"), MATCH_NO);
    assert_int_equal(domain_match("mydestination", value->data,
                                  "e.example"), MATCH_NO);
    assert_int_equal(domain_match("mydestination", value->data,
                                  "f.example"), MATCH_YES);
    assert_int_equal(domain_match("mydestination", value->data,
                                  "g.example"), MATCH_NO);
    assert_int_equal(domain_match("mydestination", value->data,
                                  "y.d.example"), MATCH_YES);
    assert_int_equal(domain_match("mydestination", value->data,
                                  "no.d.example"), MATCH_NO);
    assert_int_equal(domain_match("mydestination", value->data,
                                  "nested.example"), MATCH_YES);
    /* A file that names itself nests too deep: an error, no loop. */
    path = unit_write_file("self", "");
    strbuf_printf(value, "a.example %s\n", path);
    unit_write_file("self", value->data);
    unit_log_reset();
    assert_int_equal(domain_match("mydestination", path, "a.example"),
                     MATCH_ERROR);
    assert_true(unit_logged("too deep"));
    free(inner);
    strbuf_free(&value);
}

static void test_domains_file_errors(void **state)
{
    STRBUF *value = strbuf_alloc(128);
    MATCH_LIST *list;
    const char *path;

    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    /* An unreadable file breaks the whole list, even items before it. */
    strbuf_printf(value, "a.example, %s/missing", unit_tmpdir());
    unit_log_reset();
    list = match_list_domains("mydestination", value->data);
    assert_true(unit_logged("mydestination"));
    assert_true(unit_logged("missing"));
    assert_int_equal(match_list_domain(list, "a.example"), MATCH_ERROR);
    assert_int_equal(match_list_domain(list, "b.example"), MATCH_ERROR);
    assert_non_null(strstr(match_list_error(list), "missing"));
    match_list_free(&list);

    /* A NUL byte in a list file must not hide what follows it. */
    path = unit_write_file("nul", "");
    {
        FILE *fp = fopen(path, "w");

        assert_non_null(fp);
        assert_int_equal(fwrite("a.example\0\n!b.example\n", 1, 22, fp), 22);
        assert_int_equal(fclose(fp), 0);
    }
    unit_log_reset();
    list = match_list_domains("mydestination", path);
    assert_int_equal(match_list_domain(list, "a.example"), MATCH_ERROR);
    assert_true(unit_logged("NUL"));
    match_list_free(&list);

    /* Unbalanced braces. */
    unit_log_reset();
    list = match_list_domains("mydestination", "a.example inline:{ x=1");
    assert_true(unit_logged("mydestination"));
    assert_int_equal(match_list_domain(list, "a.example"), MATCH_ERROR);
    assert_string_not_equal(match_list_error(list), "");
    match_list_free(&list);
    strbuf_free(&value);
}

static void test_domains_tables(void **state)
{
    STRBUF *value = strbuf_alloc(128);
    MATCH_LIST *list;
    const char *path;

    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    /* Found means match; the value does not matter. */
    list = match_list_domains("mydestination",
                              "inline:{ a.example=x, { b.example = 0 } }");
    assert_int_equal(match_list_domain(list, "b.example"), MATCH_YES);
    assert_int_equal(match_list_domain(list, "a.example"), MATCH_YES);
    assert_int_equal(match_list_domain(list, "c.example"), MATCH_NO);
    assert_int_equal(match_list_domain(list, "x.b.example"), MATCH_NO);
    match_list_free(&list);
    /* Not parent style: parent domains are looked up as ".parent". */
    list = match_list_domains("mydestination",
                              "inline:{ .example.com=1, example.net=1 }");
    assert_int_equal(match_list_domain(list, "a.b.example.com"), MATCH_YES);
    assert_int_equal(match_list_domain(list, "example.com"), MATCH_NO);
    assert_int_equal(match_list_domain(list, "example.net"), MATCH_YES);
    assert_int_equal(match_list_domain(list, "a.example.net"), MATCH_NO);
    match_list_free(&list);
    /* Parent style: as "parent". */
    list = match_list_domains("relay_domains",
                              "inline:{ .example.com=1, example.net=1 }");
    assert_int_equal(match_list_domain(list, "a.example.net"), MATCH_YES);
    assert_int_equal(match_list_domain(list, "example.net"), MATCH_YES);
    assert_int_equal(match_list_domain(list, "a.b.example.com"), MATCH_NO);
    assert_int_equal(match_list_domain(list, "xexample.net"), MATCH_NO);
    match_list_free(&list);
    /* Negated table, then a catch-all. */
    assert_int_equal(domain_match("mydestination",
                                  "!inline:{ bad.example=1 }, .example, "
                                  "bad.example", "bad.example"), MATCH_NO);
    /* texthash source file. */
    path = unit_write_file("relay", "listed.example OK\n");
    strbuf_printf(value, "texthash:%s", path);
    assert_int_equal(domain_match("relay_domains", value->data,
                                  "sub.listed.example"), MATCH_YES);
    assert_int_equal(domain_match("relay_domains", value->data,
                                  "unlisted.example"), MATCH_NO);
    /* A pcre table sees the whole domain only. */
    path = unit_write_file("relay.pcre", "/^example\\.org$/ OK\n");
    strbuf_printf(value, "pcre:%s", path);
    assert_int_equal(domain_match("relay_domains", value->data,
                                  "example.org"), MATCH_YES);
    assert_int_equal(domain_match("relay_domains", value->data,
                                  "a.example.org"), MATCH_NO);
    strbuf_free(&value);
}

static void test_domains_table_errors(void **state)
{
    STRBUF *value = strbuf_alloc(128);
    MATCH_LIST *list;

    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    /* A table that fails: MATCH_ERROR when it is reached, with a reason. */
    strbuf_printf(value, "a.example, lmdb:%s/nonexistent, b.example",
                  unit_tmpdir());
    unit_log_reset();
    list = match_list_domains("mydestination", value->data);
    assert_true(unit_logged("nonexistent"));
    assert_int_equal(match_list_domain(list, "a.example"), MATCH_YES);
    assert_int_equal(match_list_domain(list, "b.example"), MATCH_ERROR);
    assert_non_null(strstr(match_list_error(list), "mydestination"));
    assert_non_null(strstr(match_list_error(list), "nonexistent"));
    assert_int_equal(match_list_domain(list, "c.example"), MATCH_ERROR);
    match_list_free(&list);

    /* The error is not hidden by a negation either. */
    strbuf_printf(value, "!lmdb:%s/nonexistent, .example", unit_tmpdir());
    list = match_list_domains("mydestination", value->data);
    assert_int_equal(match_list_domain(list, "x.example"), MATCH_ERROR);
    match_list_free(&list);

    /* An unknown type in a domain list fails loudly. */
    unit_log_reset();
    list = match_list_domains("mydestination", "a.example, bogus:thing");
    assert_true(unit_logged("bogus"));
    assert_int_equal(match_list_domain(list, "a.example"), MATCH_YES);
    assert_int_equal(match_list_domain(list, "b.example"), MATCH_ERROR);
    assert_non_null(strstr(match_list_error(list), "bogus"));
    match_list_free(&list);
    strbuf_free(&value);
}

static void test_networks_ipv4(void **state)
{
    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    assert_int_equal(net_match("10.0.0.0/8", "10.255.1.2"), MATCH_YES);
    assert_int_equal(net_match("10.0.0.0/8", "11.0.0.0"), MATCH_NO);
    assert_int_equal(net_match("10.0.0.0/8", "9.255.255.255"), MATCH_NO);
    assert_int_equal(net_match("192.168.1.0/24", "192.168.1.255"),
                     MATCH_YES);
    assert_int_equal(net_match("192.168.1.0/24", "192.168.2.0"), MATCH_NO);
    /* Non-octet boundaries. */
    assert_int_equal(net_match("172.16.0.0/12", "172.31.255.255"),
                     MATCH_YES);
    assert_int_equal(net_match("172.16.0.0/12", "172.32.0.0"), MATCH_NO);
    assert_int_equal(net_match("172.16.0.0/12", "172.15.255.255"),
                     MATCH_NO);
    assert_int_equal(net_match("1.2.3.128/25", "1.2.3.200"), MATCH_YES);
    assert_int_equal(net_match("1.2.3.128/25", "1.2.3.127"), MATCH_NO);
    assert_int_equal(net_match("1.2.3.4/31", "1.2.3.5"), MATCH_YES);
    assert_int_equal(net_match("1.2.3.4/31", "1.2.3.6"), MATCH_NO);
    /* /32, a bare address and an address in brackets: exact. */
    assert_int_equal(net_match("1.2.3.4/32", "1.2.3.4"), MATCH_YES);
    assert_int_equal(net_match("1.2.3.4/32", "1.2.3.5"), MATCH_NO);
    assert_int_equal(net_match("1.2.3.4", "1.2.3.4"), MATCH_YES);
    assert_int_equal(net_match("1.2.3.4", "1.2.3.40"), MATCH_NO);
    assert_int_equal(net_match("[1.2.3.4]", "1.2.3.4"), MATCH_YES);
    /* /0 matches every IPv4 address, but no IPv6 address. */
    assert_int_equal(net_match("0.0.0.0/0", "255.255.255.255"), MATCH_YES);
    assert_int_equal(net_match("0.0.0.0/0", "0.0.0.0"), MATCH_YES);
    assert_int_equal(net_match("0.0.0.0/0", "2001:db8::1"), MATCH_NO);
    /* IPv4 items never match IPv6 clients and vice versa. */
    assert_int_equal(net_match("::/0", "1.2.3.4"), MATCH_NO);
    /* Not an address: no match, no error. */
    assert_int_equal(net_match("0.0.0.0/0", "host.example"), MATCH_NO);
    assert_int_equal(net_match("0.0.0.0/0", ""), MATCH_NO);
    assert_int_equal(net_match("0.0.0.0/0", "1.2.3"), MATCH_NO);
    assert_int_equal(net_match("0.0.0.0/0", "[1.2.3.4]"), MATCH_NO);
    /* Several items; negation, first match wins. */
    assert_int_equal(net_match("127.0.0.0/8 !10.1.0.0/16 10.0.0.0/8",
                               "10.1.2.3"), MATCH_NO);
    assert_int_equal(net_match("127.0.0.0/8 !10.1.0.0/16 10.0.0.0/8",
                               "10.2.2.3"), MATCH_YES);
    assert_int_equal(net_match("127.0.0.0/8, !10.1.0.0/16, 10.0.0.0/8",
                               "127.0.0.1"), MATCH_YES);
    assert_int_equal(net_match("", "127.0.0.1"), MATCH_NO);
}

static void test_networks_ipv6(void **state)
{
    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    assert_int_equal(net_match("[2001:db8::]/32", "2001:db8:ffff::1"),
                     MATCH_YES);
    assert_int_equal(net_match("[2001:db8::]/32", "2001:db9::1"), MATCH_NO);
    assert_int_equal(net_match("2001:db8::/32", "2001:DB8::abcd"),
                     MATCH_YES);
    assert_int_equal(net_match("2001:db8::/32", "2001:db7::"), MATCH_NO);
    assert_int_equal(net_match("[2001:db8::1]", "2001:db8::1"), MATCH_YES);
    assert_int_equal(net_match("[2001:db8::1]", "2001:db8::2"), MATCH_NO);
    assert_int_equal(net_match("::1", "::1"), MATCH_YES);
    assert_int_equal(net_match("[::1]/128", "::1"), MATCH_YES);
    assert_int_equal(net_match("[::1]/128", "::2"), MATCH_NO);
    assert_int_equal(net_match("fe80::/10", "febf::1"), MATCH_YES);
    assert_int_equal(net_match("fe80::/10", "fec0::1"), MATCH_NO);
    assert_int_equal(net_match("2001:db8::/127", "2001:db8::1"), MATCH_YES);
    assert_int_equal(net_match("2001:db8::/127", "2001:db8::2"), MATCH_NO);
    assert_int_equal(net_match("[::]/0", "2001:db8::1"), MATCH_YES);
    assert_int_equal(net_match("::/0", "::"), MATCH_YES);
    /* Negation. */
    assert_int_equal(net_match("![2001:db8::1] [2001:db8::]/64",
                               "2001:db8::1"), MATCH_NO);
    assert_int_equal(net_match("![2001:db8::1] [2001:db8::]/64",
                               "2001:db8::2"), MATCH_YES);
}

static void test_networks_mapped(void **state)
{
    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    /* An IPv4-mapped IPv6 client matches as the IPv4 address. */
    assert_int_equal(net_match("10.0.0.0/8", "::ffff:10.1.2.3"), MATCH_YES);
    assert_int_equal(net_match("10.0.0.0/8", "::FFFF:10.1.2.3"), MATCH_YES);
    assert_int_equal(net_match("10.0.0.0/8", "::ffff:11.1.2.3"), MATCH_NO);
    assert_int_equal(net_match("1.2.3.4", "::ffff:102:304"), MATCH_YES);
    assert_int_equal(net_match("!1.2.3.4 0.0.0.0/0", "::ffff:1.2.3.4"),
                     MATCH_NO);
    /* Not mapped: the IPv4-compatible and NAT64 forms stay IPv6. */
    assert_int_equal(net_match("1.2.3.4", "::1.2.3.4"), MATCH_NO);
    assert_int_equal(net_match("1.2.3.4", "64:ff9b::1.2.3.4"), MATCH_NO);
    assert_int_equal(net_match("1.2.3.4", "::fffe:1.2.3.4"), MATCH_NO);
}

static void test_networks_bad(void **state)
{
    static const char *const bad[] = {
        "1.2.3.4/33", "1.2.3.4/", "1.2.3.4/-1", "1.2.3.4/x", "1.2.3.4/8x",
        "1.2.3/24", "1.2.3.256", "01.2.3.4", "[1.2.3.4", "1.2.3.4]", "[]",
        "2001:db8::/129", "[2001:db8::/32]", "2001:db8:::1", "host.example",
        "example", "/", "[2001:db8::]/", "1.2.3.4/24/8",
    };
    MATCH_LIST *list;
    STRBUF *value = strbuf_alloc(64);

    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* A bad item anywhere makes every match fail. */
        strbuf_printf(value, "127.0.0.0/8, %s, ::1", bad[i]);
        unit_log_reset();
        list = match_list_networks("mynetworks", value->data);
        if (!unit_logged("mynetworks"))
            fail_msg("no warning for \"%s\"", bad[i]);
        if (match_list_address(list, "127.0.0.1") != MATCH_ERROR
            || match_list_address(list, "::1") != MATCH_ERROR
            || match_list_address(list, "192.0.2.1") != MATCH_ERROR)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_non_null(strstr(match_list_error(list), "mynetworks"));
        match_list_free(&list);
    }
    /* Negated bad networks too. */
    list = match_list_networks("mynetworks", "!1.2.3.4/40 0.0.0.0/0");
    assert_int_equal(match_list_address(list, "1.2.3.4"), MATCH_ERROR);
    match_list_free(&list);
    strbuf_free(&value);
}

static void test_networks_tables_files(void **state)
{
    STRBUF *value = strbuf_alloc(128);
    MATCH_LIST *list;
    const char *path;

    (void) state;
    var_parent_domain_matches_subdomains = PARENT_STYLE;
    assert_int_equal(net_match("inline:{ 192.0.2.1=OK }", "192.0.2.1"),
                     MATCH_YES);
    assert_int_equal(net_match("inline:{ 192.0.2.1=OK }", "192.0.2.2"),
                     MATCH_NO);
    assert_int_equal(net_match("!inline:{ 192.0.2.1=OK } 192.0.2.0/24",
                               "192.0.2.1"), MATCH_NO);
    /* A colon in an IPv6 address is no table type. */
    assert_int_equal(net_match("fe80::1, inline:{ 2001:db8::5=1 }",
                               "2001:db8::5"), MATCH_YES);
    assert_int_equal(net_match("fe80::1, inline:{ 2001:db8::5=1 }",
                               "fe80::1"), MATCH_YES);
    /* A broken table: MATCH_ERROR once reached. */
    strbuf_printf(value, "127.0.0.1 lmdb:%s/nonexistent 10.0.0.0/8",
                  unit_tmpdir());
    unit_log_reset();
    list = match_list_networks("mynetworks", value->data);
    assert_int_equal(match_list_address(list, "127.0.0.1"), MATCH_YES);
    assert_int_equal(match_list_address(list, "10.0.0.1"), MATCH_ERROR);
    assert_non_null(strstr(match_list_error(list), "nonexistent"));
    match_list_free(&list);
    /* Addresses from a file, with comments. */
    path = unit_write_file("networks", "# trusted\n"
                           "127.0.0.0/8 [::1]/128  # loopback\n"
                           "!192.0.2.7\n192.0.2.0/24\n"
                           "#198.51.100.0/24\n");
    strbuf_printf(value, "%s, [2001:db8::]/32", path);
    list = match_list_networks("mynetworks", value->data);
    assert_int_equal(match_list_address(list, "127.1.2.3"), MATCH_YES);
    assert_int_equal(match_list_address(list, "::1"), MATCH_YES);
    assert_int_equal(match_list_address(list, "192.0.2.7"), MATCH_NO);
    assert_int_equal(match_list_address(list, "192.0.2.8"), MATCH_YES);
    assert_int_equal(match_list_address(list, "198.51.100.1"), MATCH_NO);
    assert_int_equal(match_list_address(list, "2001:db8::9"), MATCH_YES);
    match_list_free(&list);
    strbuf_free(&value);
}

static void test_free_null(void **state)
{
    MATCH_LIST *list = NULL;

    (void) state;
    match_list_free(&list);
    assert_null(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parent_style),
        cmocka_unit_test(test_domains_plain),
        cmocka_unit_test(test_domains_case),
        cmocka_unit_test(test_domains_negation),
        cmocka_unit_test(test_domains_file),
        cmocka_unit_test(test_domains_file_errors),
        cmocka_unit_test(test_domains_tables),
        cmocka_unit_test(test_domains_table_errors),
        cmocka_unit_test(test_networks_ipv4),
        cmocka_unit_test(test_networks_ipv6),
        cmocka_unit_test(test_networks_mapped),
        cmocka_unit_test(test_networks_bad),
        cmocka_unit_test(test_networks_tables_files),
        cmocka_unit_test(test_free_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
