/*
 * test_msg - severities, the test hook, control-character cleaning, the
 * stderr and log-file layouts, and the exits of msg_fatal and msg_panic.
 */
#include "unit.h"

#include <errno.h>
#include <regex.h>
#include <signal.h>

#include "util/cfline.h"

/* The last message seen by the hook. */
static char last_sev[32];
static STRBUF *last_text;
static int hook_calls;

static void capture_hook(const char *severity, const char *text)
{
    snprintf(last_sev, sizeof(last_sev), "%s", severity);
    strbuf_set(last_text, text);
    hook_calls++;
}

static int setup(void **state)
{
    (void) state;
    if (last_text == NULL)
        last_text = strbuf_alloc(64);
    hook_calls = 0;
    msg_init("test_msg", 0);
    msg_close_log();
    msg_set_hook(capture_hook);
    return 0;
}

static int teardown(void **state)
{
    (void) state;
    msg_close_log();
    msg_stderr(0);
    msg_set_hook(NULL);
    msg_set_cleanup(NULL);
    return 0;
}

static void test_hook_severity(void **state)
{
    (void) state;
    msg_info("plain %d", 1);
    assert_string_equal(last_sev, "");
    assert_string_equal(last_text->data, "plain 1");
    msg_warn("careful %s", "now");
    assert_string_equal(last_sev, "warning");
    assert_string_equal(last_text->data, "careful now");
    msg_error("bad %c", 'x');
    assert_string_equal(last_sev, "error");
    assert_string_equal(last_text->data, "bad x");
    assert_int_equal(hook_calls, 3);

    /* unit.h's hook sees the same thing. */
    unit_log_reset();
    msg_warn("via unit log");
    assert_true(unit_logged("warning: via unit log\n"));
    msg_set_hook(capture_hook);
}

/* Network input must not be able to forge log lines. */
static void test_control_chars_cleaned(void **state)
{
    (void) state;
    msg_info("a\tb\nc\rd\x7f" "e\x1b[0mf\x01");
    assert_string_equal(last_text->data, "a?b?c?d?e?[0mf?");
    msg_warn("%s", "forged\nJan  1 00:00:00 host postfix/smtpd[1]: x");
    assert_null(strchr(last_text->data, '\n'));
    assert_string_equal(last_text->data,
                        "forged?Jan  1 00:00:00 host postfix/smtpd[1]: x");
    /* Bytes above 0x7f (UTF-8) are left alone. */
    msg_info("caf\xc3\xa9 \xff");
    assert_string_equal(last_text->data, "caf\xc3\xa9 \xff");
}

static void test_errno_and_percent_m(void **state)
{
    (void) state;
    errno = ENOENT;
    msg_warn("open foo: %m");
    assert_string_equal(last_text->data, "open foo: No such file or directory");
    assert_int_equal(errno, ENOENT);    /* preserved for the caller */
    errno = EACCES;
    msg_info("x");
    assert_int_equal(errno, EACCES);
}

/* An oversized message is truncated, not overflowed. */
static void test_long_message(void **state)
{
    STRBUF *big = strbuf_alloc(0);

    (void) state;
    for (int i = 0; i < 10000; i++)
        strbuf_addch(big, 'a' + i % 26);
    msg_info("%s", big->data);
    assert_true(last_text->len > 1000);
    assert_true(last_text->len < 10000);
    assert_memory_equal(last_text->data, big->data, last_text->len);
    strbuf_free(&big);
}

static void test_progname(void **state)
{
    (void) state;
    msg_init("/usr/libexec/postern/smtpd", 0);
    assert_string_equal(msg_progname(), "smtpd");
    msg_init("postern", 0);
    assert_string_equal(msg_progname(), "postern");
}

static void stderr_child(void *arg)
{
    (void) arg;
    msg_set_hook(NULL);
    msg_init("/some/dir/myprog", MSG_STDERR);
    msg_info("hello %s", "there");
    msg_warn("watch\nout");
    msg_error("oops");
    msg_stderr(0);
    msg_info("not shown");
    msg_stderr(1);
    msg_info("shown again");
}

/* Command style on stderr: "prog: severity: text". */
static void test_stderr_format(void **state)
{
    STRBUF *err = strbuf_alloc(256);
    int status;

    (void) state;
    status = unit_fork(stderr_child, NULL, err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_string_equal(err->data,
                        "myprog: hello there\n"
                        "myprog: warning: watch?out\n"
                        "myprog: error: oops\n"
                        "myprog: shown again\n");
    strbuf_free(&err);
}

/* Does every line of 'text' match 'pattern' (POSIX extended)? */
static void assert_lines_match(const char *text, const char **patterns,
                               size_t count)
{
    const char *cp = text;
    regex_t re;
    size_t i;

    for (i = 0; i < count; i++) {
        const char *nl = strchr(cp, '\n');
        char *line;
        int rc;

        if (nl == NULL)
            fail_msg("line %zu missing in \"%s\"", i + 1, text);
        line = strndup(cp, (size_t) (nl - cp));
        assert_int_equal(regcomp(&re, patterns[i], REG_EXTENDED | REG_NOSUB),
                         0);
        rc = regexec(&re, line, 0, NULL, 0);
        regfree(&re);
        if (rc != 0)
            fail_msg("line \"%s\" does not match /%s/", line, patterns[i]);
        free(line);
        cp = nl + 1;
    }
    if (*cp)
        fail_msg("unexpected text after %zu lines: \"%s\"", count, cp);
}

static const char *short_hostname(void)
{
    static char host[256];

    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    host[strcspn(host, ".")] = 0;
    return host;
}

#define STAMP   "^[A-Z][a-z]{2} [ 0-9][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] "

static void test_log_file(void **state)
{
    const char *path;
    const char *error = NULL;
    STRBUF *text = strbuf_alloc(256);
    STRBUF *pat[4];
    const char *pats[4];
    int i;

    (void) state;
    path = unit_write_file("maillog", "");
    msg_init("smtpd", 0);
    assert_int_equal(msg_open_log("postern-test", path, &error), 0);
    msg_info("connect from unknown[192.0.2.1]");
    msg_warn("bad\rline");
    msg_error("err %d", 3);
    msg_info("%s", "");
    msg_close_log();
    msg_info("after close: not in the file");
    assert_int_equal(cfline_read_file(path, text), 0);

    for (i = 0; i < 4; i++)
        pat[i] = strbuf_alloc(128);
    strbuf_printf(pat[0], STAMP "%s postern-test/smtpd\\[%ld\\]: "
                  "connect from unknown\\[192\\.0\\.2\\.1\\]$",
                  short_hostname(), (long) getpid());
    strbuf_printf(pat[1], STAMP "%s postern-test/smtpd\\[%ld\\]: "
                  "warning: bad\\?line$", short_hostname(), (long) getpid());
    strbuf_printf(pat[2], STAMP "%s postern-test/smtpd\\[%ld\\]: "
                  "error: err 3$", short_hostname(), (long) getpid());
    strbuf_printf(pat[3], STAMP "%s postern-test/smtpd\\[%ld\\]: $",
                  short_hostname(), (long) getpid());
    for (i = 0; i < 4; i++)
        pats[i] = pat[i]->data;
    assert_lines_match(text->data, pats, 4);

    /* Appends; the default syslog name is "postern". */
    assert_int_equal(msg_open_log(NULL, path, &error), 0);
    msg_warn("second");
    msg_close_log();
    assert_int_equal(cfline_read_file(path, text), 0);
    strbuf_printf(pat[0], "\n" "[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} %s "
                  "postern/smtpd\\[%ld\\]: warning: second\n$",
                  short_hostname(), (long) getpid());
    {
        regex_t re;

        assert_int_equal(regcomp(&re, pat[0]->data, REG_EXTENDED | REG_NOSUB),
                         0);
        assert_int_equal(regexec(&re, text->data, 0, NULL, 0), 0);
        regfree(&re);
    }
    for (i = 0; i < 4; i++)
        strbuf_free(&pat[i]);
    strbuf_free(&text);
}

/* A long message in the file still ends with one newline. */
static void test_log_file_long(void **state)
{
    const char *path;
    const char *error = NULL;
    STRBUF *text = strbuf_alloc(256);
    STRBUF *big = strbuf_alloc(0);

    (void) state;
    for (int i = 0; i < 20000; i++)
        strbuf_addch(big, 'x');
    path = unit_write_file("longlog", "");
    assert_int_equal(msg_open_log("p", path, &error), 0);
    msg_warn("%s\n", big->data);
    msg_info("next");
    msg_close_log();
    assert_int_equal(cfline_read_file(path, text), 0);
    assert_int_equal(text->data[text->len - 1], '\n');
    /* Exactly two lines. */
    {
        char *nl = strchr(text->data, '\n');

        assert_non_null(nl);
        assert_true(nl - text->data > 4000);
        assert_non_null(strstr(nl + 1, ": next\n"));
        assert_ptr_equal(strchr(nl + 1, '\n'), text->data + text->len - 1);
    }
    strbuf_free(&text);
    strbuf_free(&big);
}

static void test_log_open_error(void **state)
{
    const char *error = NULL;
    STRBUF *path = strbuf_alloc(64);

    (void) state;
    strbuf_printf(path, "%s/no/such/dir/maillog", unit_tmpdir());
    assert_int_equal(msg_open_log("x", path->data, &error), -1);
    assert_non_null(error);
    assert_string_equal(error, strerror(ENOENT));
    /* Still usable afterwards. */
    msg_info("still here");
    assert_string_equal(last_text->data, "still here");
    strbuf_free(&path);
}

static void devstderr_child(void *arg)
{
    const char *error;

    (void) arg;
    msg_set_hook(NULL);
    msg_init("cleanup", 0);
    if (msg_open_log("postfix", "/dev/stderr", &error) < 0)
        _exit(2);
    msg_warn("via /dev/stderr");
    msg_close_log();
}

/* /dev/stderr as the log file: syslog layout on the inherited stderr. */
static void test_log_dev_stderr(void **state)
{
    STRBUF *err = strbuf_alloc(256);
    regex_t re;
    int status;

    (void) state;
    status = unit_fork(devstderr_child, NULL, err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(regcomp(&re, STAMP "[^ ]+ postfix/cleanup\\[[0-9]+\\]: "
                             "warning: via /dev/stderr\n$",
                             REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, err->data, 0, NULL, 0) != 0)
        fail_msg("bad line \"%s\"", err->data);
    regfree(&re);
    strbuf_free(&err);
}

static int cleanup_calls;

static void cleanup_fn(void)
{
    /* Reported on stderr so that the parent can count the calls. */
    fprintf(stderr, "cleanup %d\n", ++cleanup_calls);
    fflush(stderr);
}

static void cleanup_fatal_fn(void)
{
    cleanup_fn();
    msg_fatal("fatal inside cleanup");
}

static void fatal_child(void *arg)
{
    (void) arg;
    msg_init("test_msg", MSG_STDERR);
    msg_set_cleanup(cleanup_fn);
    msg_fatal("cannot %s", "go on");
}

static void fatal_status_child(void *arg)
{
    (void) arg;
    msg_init("test_msg", MSG_STDERR);
    msg_fatal_status(75, "temporary trouble");
}

static void fatal_recursive_child(void *arg)
{
    (void) arg;
    msg_init("test_msg", MSG_STDERR);
    msg_set_cleanup(cleanup_fatal_fn);
    msg_fatal("first");
}

static void panic_child(void *arg)
{
    (void) arg;
    msg_init("test_msg", MSG_STDERR);
    msg_set_cleanup(cleanup_fn);        /* a panic does not clean up */
    msg_panic("%s: bug %d", "myname", 42);
}

static void test_fatal_exits_1(void **state)
{
    STRBUF *err = strbuf_alloc(256);
    int status;

    (void) state;
    status = unit_fork(fatal_child, NULL, err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_string_equal(err->data, "test_msg: fatal: cannot go on\n"
                        "cleanup 1\n");
    strbuf_free(&err);
}

static void test_fatal_status(void **state)
{
    STRBUF *err = strbuf_alloc(256);
    int status;

    (void) state;
    status = unit_fork(fatal_status_child, NULL, err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 75);
    assert_string_equal(err->data, "test_msg: fatal: temporary trouble\n");
    strbuf_free(&err);
}

/* A cleanup routine that itself fails must not loop. */
static void test_fatal_in_cleanup(void **state)
{
    STRBUF *err = strbuf_alloc(256);
    int status;

    (void) state;
    status = unit_fork(fatal_recursive_child, NULL, err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_string_equal(err->data, "test_msg: fatal: first\n"
                        "cleanup 1\n"
                        "test_msg: fatal: fatal inside cleanup\n");
    strbuf_free(&err);
}

static void test_panic_aborts(void **state)
{
    STRBUF *err = strbuf_alloc(256);
    int status;

    (void) state;
    status = unit_fork(panic_child, NULL, err);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_string_equal(err->data, "test_msg: panic: myname: bug 42\n");
    strbuf_free(&err);
}

static void stderr_hook(const char *severity, const char *text)
{
    fprintf(stderr, "hook %s: %s\n", severity, text);
    fflush(stderr);
}

static void hook_fatal_child(void *arg)
{
    (void) arg;
    msg_set_hook(stderr_hook);
    msg_stderr(0);
    if (arg)
        msg_panic("p\tq");
    msg_fatal("x\ny");
}

/* The hook sees fatal and panic messages too, cleaned, before the exit. */
static void test_hook_fatal_panic(void **state)
{
    STRBUF *err = strbuf_alloc(256);
    int status;

    (void) state;
    status = unit_fork(hook_fatal_child, NULL, err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_string_equal(err->data, "hook fatal: x?y\n");
    status = unit_fork(hook_fatal_child, "panic", err);
    assert_true(WIFSIGNALED(status));
    assert_string_equal(err->data, "hook panic: p?q\n");
    strbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hook_severity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_chars_cleaned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_errno_and_percent_m, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stderr_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_file_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_open_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_dev_stderr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal_exits_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal_in_cleanup, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_panic_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook_fatal_panic, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    strbuf_free(&last_text);
    strbuf_free(&unit_log);
    return rc;
}
