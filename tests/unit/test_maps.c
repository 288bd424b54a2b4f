/*
 * test_maps - table lists and the address lookup orders.
 */
#include "unit.h"

#include "mail/maps.h"
#include "mail/params.h"
#include "util/argv.h"

static char *keys_of(const char *addr, MAPS_ADDR_KIND kind, int flags,
                     const char *delims)
{
    static char joined[1024];
    ARGV *keys = argv_alloc(8);

    maps_addr_keys(addr, kind, flags, delims, keys);
    joined[0] = 0;
    for (size_t i = 0; i < keys->argc; i++) {
        strcat(joined, i ? " " : "");
        strcat(joined, keys->argv[i]);
    }
    argv_free(&keys);
    return joined;
}

static void test_orders(void **state)
{
    (void) state;
    assert_string_equal(keys_of("u+e@d.example", MAPS_ADDR_VIRTUAL, 0, "+"),
                        "u+e@d.example u@d.example @d.example");
    assert_string_equal(keys_of("u+e@d.example", MAPS_ADDR_VIRTUAL,
                                MAPS_ADDR_FLAG_LOCAL, "+"),
                        "u+e@d.example u@d.example u+e u @d.example");
    assert_string_equal(keys_of("u@d.example", MAPS_ADDR_MAILBOX, 0, "+"),
                        "u@d.example @d.example");
    assert_string_equal(keys_of("u+e@a.b.example", MAPS_ADDR_ACCESS, 0, "+"),
                        "u+e@a.b.example u@a.b.example a.b.example "
                        ".b.example .example u+e@ u@");
    assert_string_equal(keys_of("u@a.b.example", MAPS_ADDR_ACCESS,
                                MAPS_ADDR_FLAG_PARENT, "+"),
                        "u@a.b.example a.b.example b.example example u@");
    assert_string_equal(keys_of("u-e@d", MAPS_ADDR_ALIAS, 0, "+-"), "u-e u");
    assert_string_equal(keys_of("u@a.example", MAPS_ADDR_TRANSPORT, 0, ""),
                        "u@a.example a.example .example *");
    assert_string_equal(keys_of("", MAPS_ADDR_ACCESS, 0, "+"), "<>");
    /* No delimiter configured: "+" is part of the user name. */
    assert_string_equal(keys_of("u+e@d", MAPS_ADDR_MAILBOX, 0, ""),
                        "u+e@d @d");
    /* A delimiter at the start is no extension. */
    assert_string_equal(keys_of("+u@d", MAPS_ADDR_MAILBOX, 0, "+"),
                        "+u@d @d");
}

static void test_find_addr(void **state)
{
    const char *src;
    const char *value;
    const char *key;
    STRBUF *spec = strbuf_alloc(128);
    MAPS *maps;

    (void) state;
    var_recipient_delimiter = "+";
    src = unit_write_file("virtual", "@example.com catchall\n"
                          "bob@example.com bob-box\n");
    strbuf_printf(spec, "inline:{ {alice+tag@example.com = tagged} }, "
                  "texthash:%s", src);
    maps = maps_open("virtual_alias_maps", spec->data, DICT_FLAG_DEFAULT);
    assert_int_equal(maps_find_addr(maps, "Bob+x@Example.COM",
                                    MAPS_ADDR_VIRTUAL, 0, &value, &key),
                     DICT_FOUND);
    assert_string_equal(value, "bob-box");
    assert_string_equal(key, "Bob@Example.COM");   /* folded by the table */
    assert_int_equal(maps_find_addr(maps, "alice+tag@example.com",
                                    MAPS_ADDR_VIRTUAL, 0, &value, NULL),
                     DICT_FOUND);
    assert_string_equal(value, "tagged");
    assert_int_equal(maps_find_addr(maps, "carol@example.com",
                                    MAPS_ADDR_VIRTUAL, 0, &value, NULL),
                     DICT_FOUND);
    assert_string_equal(value, "catchall");
    assert_int_equal(maps_find_addr(maps, "carol@example.net",
                                    MAPS_ADDR_VIRTUAL, 0, &value, NULL),
                     DICT_NOTFOUND);
    maps_free(&maps);

    /* A broken table is an error, not "not found", and stops the search. */
    unit_log_reset();
    strbuf_printf(spec, "lmdb:%s/nonexistent texthash:%s", unit_tmpdir(),
                  src);
    maps = maps_open("virtual_alias_maps", spec->data, DICT_FLAG_DEFAULT);
    assert_true(unit_logged("nonexistent"));
    assert_int_equal(maps_find_addr(maps, "bob@example.com",
                                    MAPS_ADDR_VIRTUAL, 0, &value, NULL),
                     DICT_ERROR);
    assert_non_null(strstr(maps->error->data, "virtual_alias_maps"));
    maps_free(&maps);
    strbuf_free(&spec);
}

static void test_pattern_tables_see_whole_address(void **state)
{
    const char *src;
    const char *value;
    STRBUF *spec = strbuf_alloc(128);
    MAPS *maps;

    (void) state;
    var_recipient_delimiter = "+";
    /* Would match the key "example.com" if pcre saw the shorter keys. */
    src = unit_write_file("access.pcre", "/^example\\.com$/ REJECT\n"
                          "/^user@/ OK\n");
    strbuf_printf(spec, "pcre:%s", src);
    maps = maps_open("smtpd_sender_restrictions", spec->data,
                     DICT_FLAG_DEFAULT);
    assert_int_equal(maps_find_addr(maps, "x@example.com", MAPS_ADDR_ACCESS,
                                    0, &value, NULL), DICT_NOTFOUND);
    assert_int_equal(maps_find_addr(maps, "user@example.com",
                                    MAPS_ADDR_ACCESS, 0, &value, NULL),
                     DICT_FOUND);
    assert_string_equal(value, "OK");
    maps_free(&maps);
    strbuf_free(&spec);
}

static void test_bad_list(void **state)
{
    const char *value;
    MAPS *maps;

    (void) state;
    unit_log_reset();
    maps = maps_open("x_maps", "inline:{ a=1", DICT_FLAG_DEFAULT);
    assert_true(unit_logged("x_maps"));
    assert_int_equal(maps_find(maps, "a", &value), DICT_ERROR);
    maps_free(&maps);
    maps = maps_open("x_maps", "", DICT_FLAG_DEFAULT);
    assert_int_equal(maps_find(maps, "a", &value), DICT_NOTFOUND);
    maps_free(&maps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orders),
        cmocka_unit_test(test_find_addr),
        cmocka_unit_test(test_pattern_tables_see_whole_address),
        cmocka_unit_test(test_bad_list),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
