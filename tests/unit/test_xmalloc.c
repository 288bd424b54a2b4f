/*
 * test_xmalloc - allocation wrappers: copies, zero sizes, and the fatal or
 * panic exits when memory runs out or sizes overflow (tested in a child).
 */
#include "unit.h"

#include <signal.h>
#include <stdint.h>

#include "util/xmalloc.h"

/* Let ASan return NULL for impossible sizes, as libc does. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* Too large for any address space, yet not "negative" to valgrind. */
#define HUGE_SIZE   ((size_t) 1 << 62)

static void test_zero_sizes(void **state)
{
    void *p;
    void *q;

    (void) state;
    p = xmalloc(0);
    q = xmalloc(0);
    assert_non_null(p);
    assert_non_null(q);
    assert_ptr_not_equal(p, q);
    free(p);
    free(q);

    p = xcalloc(0, 8);
    assert_non_null(p);
    free(p);
    p = xcalloc(8, 0);
    assert_non_null(p);
    free(p);

    p = xrealloc(NULL, 0);
    assert_non_null(p);
    p = xrealloc(p, 0);                 /* must not free and return NULL */
    assert_non_null(p);
    free(p);

    p = xmemdup("abc", 0);
    assert_non_null(p);
    free(p);
}

static void test_calloc_zeroed(void **state)
{
    unsigned char *p = xcalloc(1000, 3);

    (void) state;
    for (size_t i = 0; i < 3000; i++)
        assert_int_equal(p[i], 0);
    free(p);
}

static void test_realloc_keeps_data(void **state)
{
    char *p = xrealloc(NULL, 4);

    (void) state;
    memcpy(p, "abc", 4);
    p = xrealloc(p, 100000);
    assert_string_equal(p, "abc");
    p[99999] = 'z';
    p = xrealloc(p, 2);
    assert_memory_equal(p, "ab", 2);
    free(p);

    p = xreallocarray(NULL, 10, 7);
    memset(p, 'x', 70);
    p = xreallocarray(p, 1000, 7);
    for (int i = 0; i < 70; i++)
        assert_int_equal(p[i], 'x');
    free(p);
}

static void test_strdup(void **state)
{
    const char *src = "hello";
    char *copy = xstrdup(src);

    (void) state;
    assert_ptr_not_equal(copy, src);
    assert_string_equal(copy, "hello");
    free(copy);
    copy = xstrdup("");
    assert_string_equal(copy, "");
    free(copy);
}

static void test_strndup(void **state)
{
    static const char raw[3] = {'a', 'b', 'c'};    /* no NUL */
    char *p;

    (void) state;
    p = xstrndup("hello", 3);
    assert_string_equal(p, "hel");
    free(p);
    p = xstrndup("hi", 10);             /* stops at the NUL */
    assert_string_equal(p, "hi");
    free(p);
    p = xstrndup("hello", 0);
    assert_string_equal(p, "");
    free(p);
    /* Reads no further than len: ASan/valgrind catch an overread. */
    p = xstrndup(raw, sizeof(raw));
    assert_string_equal(p, "abc");
    free(p);
    p = xstrndup("a\0bc", 4);
    assert_string_equal(p, "a");
    free(p);
}

static void test_memdup(void **state)
{
    char *p = xmemdup("a\0b\0c", 5);

    (void) state;
    assert_memory_equal(p, "a\0b\0c", 5);
    free(p);
}

static void test_xfree(void **state)
{
    char *p = xstrdup("x");

    (void) state;
    xfree(&p);
    assert_null(p);
    xfree(&p);                          /* NULL is allowed */
    assert_null(p);
}

static void oom_malloc_child(void *arg)
{
    (void) arg;
    (void) xmalloc(HUGE_SIZE);
}

static void oom_calloc_child(void *arg)
{
    (void) arg;
    (void) xcalloc(SIZE_MAX / 2, 4);    /* calloc checks the product */
}

static void oom_realloc_child(void *arg)
{
    static char *volatile p;            /* reachable when xrealloc exits */

    (void) arg;
    p = xmalloc(8);
    p = xrealloc(p, HUGE_SIZE);
    free(p);
}

static void overflow_array_child(void *arg)
{
    (void) arg;
    (void) xreallocarray(NULL, SIZE_MAX / 2, 3);
}

static void run_fatal(void (*fn)(void *), const char *expect)
{
    STRBUF *err = strbuf_alloc(128);
    int status = unit_fork(fn, NULL, err);

    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    if (strstr(err->data, expect) == NULL)
        fail_msg("stderr \"%s\" lacks \"%s\"", err->data, expect);
    strbuf_free(&err);
}

/* Out of memory is fatal (exit 1, master restarts us), never NULL. */
static void test_out_of_memory_is_fatal(void **state)
{
    (void) state;
    msg_init("test_xmalloc", MSG_STDERR);
    run_fatal(oom_malloc_child, "test_xmalloc: fatal: out of memory");
    run_fatal(oom_calloc_child, "test_xmalloc: fatal: out of memory");
    run_fatal(oom_realloc_child, "test_xmalloc: fatal: out of memory");
    msg_stderr(0);
}

/* A wrapped nmemb * size is a bug in the caller: panic, not a short block. */
static void test_array_overflow_panics(void **state)
{
    STRBUF *err = strbuf_alloc(128);
    int status;

    (void) state;
    msg_init("test_xmalloc", MSG_STDERR);
    status = unit_fork(overflow_array_child, NULL, err);
    msg_stderr(0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_non_null(strstr(err->data, "panic: xreallocarray: size overflow"));
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_sizes),
        cmocka_unit_test(test_calloc_zeroed),
        cmocka_unit_test(test_realloc_keeps_data),
        cmocka_unit_test(test_strdup),
        cmocka_unit_test(test_strndup),
        cmocka_unit_test(test_memdup),
        cmocka_unit_test(test_xfree),
        cmocka_unit_test(test_out_of_memory_is_fatal),
        cmocka_unit_test(test_array_overflow_panics),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
