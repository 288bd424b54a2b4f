/*
 * test_htable - insert, find, delete, insertion-ordered iteration after
 * deletes, growth to thousands of keys, and value destructors.
 */
#include "unit.h"

#include "util/htable.h"
#include "util/xmalloc.h"

static int freed;

static void count_free(void *value)
{
    freed++;
    free(value);
}

/* The keys in iteration order, joined by ",". */
static void order_of(const HTABLE *t, STRBUF *out)
{
    HTABLE_ENTRY *ent;

    strbuf_reset(out);
    HTABLE_FOREACH(t, ent)
        strbuf_printf_append(out, "%s%s", out->len ? "," : "", ent->key);
}

static void test_enter_find(void **state)
{
    HTABLE *t = htable_alloc(0);
    HTABLE_ENTRY *ent;
    char key[] = "alpha";
    int one = 1;
    int two = 2;

    (void) state;
    assert_null(htable_find(t, "alpha"));
    assert_null(htable_locate(t, "alpha"));
    ent = htable_enter(t, key, &one);
    assert_non_null(ent);
    assert_string_equal(ent->key, "alpha");
    assert_ptr_not_equal(ent->key, key);        /* the key is copied */
    assert_ptr_equal(ent->value, &one);
    key[0] = 'X';
    assert_ptr_equal(htable_find(t, "alpha"), &one);
    assert_null(htable_find(t, "Xlpha"));
    assert_ptr_equal(htable_locate(t, "alpha"), ent);

    /* A duplicate key is refused and changes nothing. */
    assert_null(htable_enter(t, "alpha", &two));
    assert_ptr_equal(htable_find(t, "alpha"), &one);
    assert_int_equal(t->used, 1);

    /* Keys are case-sensitive and exact. */
    assert_null(htable_find(t, "ALPHA"));
    assert_null(htable_find(t, "alph"));
    assert_null(htable_find(t, "alphaa"));
    assert_null(htable_find(t, ""));

    /* The empty key and a NULL value are ordinary. */
    assert_non_null(htable_enter(t, "", &two));
    assert_ptr_equal(htable_find(t, ""), &two);
    assert_non_null(htable_enter(t, "nullval", NULL));
    assert_null(htable_find(t, "nullval"));
    assert_non_null(htable_locate(t, "nullval"));
    assert_int_equal(t->used, 3);
    htable_free(&t, NULL);
    assert_null(t);
    htable_free(&t, NULL);
}

static void test_delete(void **state)
{
    HTABLE *t = htable_alloc(4);
    STRBUF *order = strbuf_alloc(64);
    const char *keys[] = {"a", "b", "c", "d", "e"};

    (void) state;
    freed = 0;
    for (size_t i = 0; i < 5; i++)
        assert_non_null(htable_enter(t, keys[i], xstrdup(keys[i])));
    order_of(t, order);
    assert_string_equal(order->data, "a,b,c,d,e");

    htable_delete(t, "c", count_free);  /* middle */
    assert_int_equal(freed, 1);
    assert_null(htable_find(t, "c"));
    order_of(t, order);
    assert_string_equal(order->data, "a,b,d,e");

    htable_delete(t, "a", count_free);  /* head */
    htable_delete(t, "e", count_free);  /* tail */
    order_of(t, order);
    assert_string_equal(order->data, "b,d");
    assert_ptr_equal(t->head, htable_locate(t, "b"));
    assert_ptr_equal(t->tail, htable_locate(t, "d"));
    assert_null(t->head->list_prev);
    assert_null(t->tail->list_next);

    /* Unknown keys: nothing happens. */
    htable_delete(t, "zzz", count_free);
    htable_delete(t, "c", count_free);
    assert_int_equal(freed, 3);
    assert_int_equal(t->used, 2);

    /* A re-entered key goes to the end. */
    assert_non_null(htable_enter(t, "a", xstrdup("A")));
    order_of(t, order);
    assert_string_equal(order->data, "b,d,a");
    assert_string_equal(htable_find(t, "a"), "A");

    htable_delete(t, "b", count_free);
    htable_delete(t, "d", count_free);
    htable_delete(t, "a", count_free);
    assert_int_equal(t->used, 0);
    assert_null(t->head);
    assert_null(t->tail);
    order_of(t, order);
    assert_string_equal(order->data, "");

    /* Usable again after being emptied. */
    assert_non_null(htable_enter(t, "z", xstrdup("Z")));
    order_of(t, order);
    assert_string_equal(order->data, "z");
    freed = 0;
    htable_free(&t, count_free);
    assert_int_equal(freed, 1);
    strbuf_free(&order);
}

/* Thousands of keys: growth keeps every key findable and the order. */
static void test_growth(void **state)
{
    HTABLE *t = htable_alloc(1);
    HTABLE_ENTRY *ent;
    char key[32];
    long i;
    long n = 0;
    size_t first_size = t->size;

    (void) state;
    for (i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%ld", i);
        assert_non_null(htable_enter(t, key, (void *) (i + 1)));
    }
    assert_int_equal(t->used, 5000);
    assert_true(t->size > first_size);
    for (i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%ld", i);
        assert_ptr_equal(htable_find(t, key), (void *) (i + 1));
    }
    HTABLE_FOREACH(t, ent) {
        snprintf(key, sizeof(key), "key-%ld", n);
        assert_string_equal(ent->key, key);
        n++;
    }
    assert_int_equal(n, 5000);

    /* Delete every other key; the rest keep their order. */
    for (i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof(key), "key-%ld", i);
        htable_delete(t, key, NULL);
    }
    assert_int_equal(t->used, 2500);
    n = 1;
    HTABLE_FOREACH(t, ent) {
        snprintf(key, sizeof(key), "key-%ld", n);
        assert_string_equal(ent->key, key);
        n += 2;
    }
    assert_int_equal(n, 5001);
    for (i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%ld", i);
        if (i % 2)
            assert_ptr_equal(htable_find(t, key), (void *) (i + 1));
        else
            assert_null(htable_find(t, key));
    }
    htable_free(&t, NULL);
}

/* Keys that differ only late, long keys and non-ASCII bytes. */
static void test_odd_keys(void **state)
{
    HTABLE *t = htable_alloc(13);
    STRBUF *big = strbuf_alloc(0);
    int v1 = 1;
    int v2 = 2;
    int v3 = 3;

    (void) state;
    for (int i = 0; i < 10000; i++)
        strbuf_addch(big, 'k');
    assert_non_null(htable_enter(t, big->data, &v1));
    big->data[9999] = 'K';
    assert_non_null(htable_enter(t, big->data, &v2));
    assert_ptr_equal(htable_find(t, big->data), &v2);
    big->data[9999] = 'k';
    assert_ptr_equal(htable_find(t, big->data), &v1);
    assert_non_null(htable_enter(t, "\xff\xfe", &v3));
    assert_ptr_equal(htable_find(t, "\xff\xfe"), &v3);
    assert_null(htable_find(t, "\xff"));
    htable_free(&t, NULL);
    strbuf_free(&big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enter_find),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_odd_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
