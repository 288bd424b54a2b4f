/*
 * test_mastercf - master.cf syntax and "postconf -M" layout
 * (lib/mail/mastercf.c).
 *
 * The expected -M / -Mf output below was produced by Debian 12's Postfix
 * 3.7.11 ("postconf -c DIR -M" and "-Mf") on the same master.cf lines.
 */
#include "unit.h"

#include <errno.h>

#include "mail/mastercf.h"

#define PATH    "/etc/postern/master.cf"

static MASTERCF *parse_ok(const char *text)
{
    MASTERCF *cf = mastercf_alloc(PATH);
    STRBUF *err = strbuf_alloc(64);

    if (mastercf_parse(cf, text, strlen(text), err) != 0)
        fail_msg("unexpected error: %s", err->data);
    strbuf_free(&err);
    return cf;
}

/* Parse text that must fail; the error must be exactly 'want'. */
static void parse_bad_n(const char *text, size_t len, const char *want)
{
    MASTERCF *cf = mastercf_alloc(PATH);
    STRBUF *err = strbuf_alloc(64);

    if (mastercf_parse(cf, text, len, err) != -1)
        fail_msg("no error for \"%s\"", text);
    if (strcmp(err->data, want) != 0)
        fail_msg("error \"%s\", want \"%s\"", err->data, want);
    mastercf_free(&cf);
    strbuf_free(&err);
}

static void parse_bad(const char *text, const char *want)
{
    parse_bad_n(text, strlen(text), want);
}

/* The args joined with "|" for easy comparison. */
static void assert_argv(const ARGV *argv, const char *want)
{
    STRBUF *got = strbuf_alloc(64);

    for (size_t i = 0; i < argv->argc; i++)
        strbuf_printf_append(got, "%s%s", i ? "|" : "", argv->argv[i]);
    assert_null(argv->argv[argv->argc]);
    if (strcmp(got->data, want) != 0)
        fail_msg("argv \"%s\", want \"%s\"", got->data, want);
    strbuf_free(&got);
}

/* --- fields ----------------------------------------------------------- */

static void test_all_fields(void **state)
{
    MASTERCF *cf;
    MASTER_ENT *ent;

    (void) state;
    unit_log_reset();
    cf = parse_ok("relay unix n n y 60 100 smtp -v\n");
    assert_int_equal(cf->count, 1);
    ent = cf->entries[0];
    assert_string_equal(ent->service, "relay");
    assert_string_equal(ent->type, "unix");
    assert_string_equal(ent->raw[0], "n");
    assert_string_equal(ent->raw[1], "n");
    assert_string_equal(ent->raw[2], "y");
    assert_string_equal(ent->raw[3], "60");
    assert_string_equal(ent->raw[4], "100");
    assert_int_equal(ent->private_, 0);
    assert_int_equal(ent->unpriv, 0);
    assert_int_equal(ent->chroot, 1);
    assert_int_equal(ent->wakeup, 60);
    assert_int_equal(ent->wakeup_on_use, 0);
    assert_int_equal(ent->maxproc, 100);
    assert_argv(ent->args, "smtp|-v");
    assert_argv(ent->overrides, "");
    assert_int_equal(ent->lineno, 1);
    assert_false(unit_logged("warning"));
    mastercf_free(&cf);
    assert_null(cf);
    mastercf_free(&cf);
}

static void test_defaults(void **state)
{
    MASTERCF *cf;
    MASTER_ENT *ent;

    (void) state;
    cf = parse_ok("cleanup unix - - - - - cleanup\n"
                  "local\tunix\t-\tn\tn\t-\t0\tlocal\n"
                  "pub unix y y n 0 1 x\n");
    ent = cf->entries[0];
    for (int i = 0; i < 5; i++)
        assert_string_equal(ent->raw[i], "-");
    assert_int_equal(ent->private_, 1);
    assert_int_equal(ent->unpriv, 1);
    assert_int_equal(ent->chroot, 0);
    assert_int_equal(ent->wakeup, 0);
    assert_int_equal(ent->wakeup_on_use, 0);
    assert_int_equal(ent->maxproc, -1);
    assert_argv(ent->args, "cleanup");

    ent = cf->entries[1];
    assert_string_equal(ent->service, "local");
    assert_int_equal(ent->private_, 1);
    assert_int_equal(ent->unpriv, 0);
    assert_int_equal(ent->maxproc, 0);         /* 0 = no limit */

    ent = cf->entries[2];
    assert_int_equal(ent->private_, 1);
    assert_int_equal(ent->unpriv, 1);
    assert_int_equal(ent->chroot, 0);
    assert_int_equal(ent->wakeup, 0);
    assert_int_equal(ent->maxproc, 1);
    mastercf_free(&cf);
}

static void test_types(void **state)
{
    MASTERCF *cf;

    (void) state;
    cf = parse_ok("a inet n - n - - x\n"
                  "b unix - - n - - x\n"
                  "postlog unix-dgram n - n - 1 postlogd\n"
                  "d fifo n - n 60 1 x\n"
                  "e pass n - n - - x\n");
    assert_int_equal(cf->count, 5);
    assert_string_equal(cf->entries[2]->type, "unix-dgram");
    assert_string_equal(cf->entries[2]->service, "postlog");
    assert_int_equal(cf->entries[2]->private_, 0);
    assert_int_equal(cf->entries[2]->maxproc, 1);
    mastercf_free(&cf);
}

static void test_wakeup(void **state)
{
    MASTERCF *cf;

    (void) state;
    cf = parse_ok("tlsmgr unix - - y 1000? 1 tlsmgr\n"
                  "pickup unix n - y 60 1 pickup\n"
                  "w0 unix n - y 0 1 x\n");
    assert_int_equal(cf->entries[0]->wakeup, 1000);
    assert_int_equal(cf->entries[0]->wakeup_on_use, 1);
    assert_string_equal(cf->entries[0]->raw[3], "1000?");
    assert_int_equal(cf->entries[1]->wakeup, 60);
    assert_int_equal(cf->entries[1]->wakeup_on_use, 0);
    assert_int_equal(cf->entries[2]->wakeup, 0);
    mastercf_free(&cf);

    cf = parse_ok("x unix - - n 60? - x\n");
    assert_int_equal(cf->entries[0]->wakeup, 60);
    assert_int_equal(cf->entries[0]->wakeup_on_use, 1);
    mastercf_free(&cf);
}

static void test_inet_not_private(void **state)
{
    MASTERCF *cf;

    (void) state;
    /* "-" means private by default, but an inet service never is. */
    cf = parse_ok("smtp inet - - n - - smtpd\n"
                  "127.0.0.1:2525 inet n - n - - smtpd\n"
                  "[::1]:25 inet n - n - - smtpd\n");
    assert_int_equal(cf->entries[0]->private_, 0);
    assert_int_equal(cf->entries[1]->private_, 0);
    assert_string_equal(cf->entries[1]->service, "127.0.0.1:2525");
    assert_string_equal(cf->entries[2]->service, "[::1]:25");
    mastercf_free(&cf);
    /* Saying "y" is an error, as in Postfix's master. */
    parse_bad("ok unix - - n - - x\nsmtp inet y - n - - smtpd\n",
              PATH ", line 2: inet service cannot be private");
}

/* --- the command ------------------------------------------------------ */

static void test_overrides(void **state)
{
    MASTERCF *cf;
    MASTER_ENT *ent;

    (void) state;
    cf = parse_ok("submission inet n - n - - smtpd\n"
                  "  -o syslog_name=postfix/submission\n"
                  "  -o { smtpd_client_restrictions = "
                  "permit_sasl_authenticated, reject }\n"
                  "  -o {smtpd_tls_security_level=encrypt}\n"
                  "  -o empty=\n"
                  "  -o { spaced   =   a  b  }\n");
    ent = cf->entries[0];
    assert_argv(ent->args, "smtpd"
                "|-o|syslog_name=postfix/submission"
                "|-o|smtpd_client_restrictions=permit_sasl_authenticated, "
                "reject"
                "|-o|smtpd_tls_security_level=encrypt"
                "|-o|empty="
                "|-o|spaced=a  b");
    assert_argv(ent->overrides, "syslog_name=postfix/submission"
                "|smtpd_client_restrictions=permit_sasl_authenticated, reject"
                "|smtpd_tls_security_level=encrypt"
                "|empty="
                "|spaced=a  b");
    mastercf_free(&cf);

    /* Other options mixed in. */
    cf = parse_ok("x unix - - n - - smtpd -v -o a=b -D -o c=$d\n");
    assert_argv(cf->entries[0]->args, "smtpd|-v|-o|a=b|-D|-o|c=$d");
    assert_argv(cf->entries[0]->overrides, "a=b|c=$d");
    mastercf_free(&cf);
}

/*
 * Like Postfix (daemons parse options with getopt "+..."), -o counts only
 * among the options before the first non-option argument: after that it
 * is an argument of the program, such as a pipe(8) command's.
 */
static void test_overrides_only_among_options(void **state)
{
    MASTERCF *cf;

    (void) state;
    cf = parse_ok("p unix - n n - - pipe flags=R argv=/bin/foo -o bar\n"
                  "q unix - n n - - pipe -o a=b argv=/bin/foo -o c=d\n"
                  "r unix - - n - - smtpd -o a=b -- -o c\n"
                  "s unix - n n - - pipe user=x argv=/bin/foo -o\n");
    assert_argv(cf->entries[0]->args, "pipe|flags=R|argv=/bin/foo|-o|bar");
    assert_argv(cf->entries[0]->overrides, "");
    assert_argv(cf->entries[1]->args, "pipe|-o|a=b|argv=/bin/foo|-o|c=d");
    assert_argv(cf->entries[1]->overrides, "a=b");
    assert_argv(cf->entries[2]->args, "smtpd|-o|a=b|--|-o|c");
    assert_argv(cf->entries[2]->overrides, "a=b");
    assert_argv(cf->entries[3]->args, "pipe|user=x|argv=/bin/foo|-o");
    assert_argv(cf->entries[3]->overrides, "");
    mastercf_free(&cf);
}

static void test_brace_arguments(void **state)
{
    MASTERCF *cf;

    (void) state;
    cf = parse_ok("pipe1 unix - n n - - pipe flags=Rq user=nobody "
                  "argv=/bin/echo ${sender} { a  b } {} {x} { {nested} y }\n");
    assert_argv(cf->entries[0]->args, "pipe|flags=Rq|user=nobody|"
                "argv=/bin/echo|${sender}|a  b||x|{nested} y");
    assert_argv(cf->entries[0]->overrides, "");
    mastercf_free(&cf);
}

static void test_continuation(void **state)
{
    MASTERCF *cf;

    (void) state;
    cf = parse_ok("# comment\n"
                  "\n"
                  "scalemail-backend unix -  n   n   -   2   pipe\n"
                  "  flags=R user=scalemail\n"
                  "# a comment inside the entry\n"
                  "\targv=/usr/lib/scalemail/bin/scalemail-store ${nexthop}\n"
                  "smtp\n"
                  "  inet n - n - - smtpd\n");
    assert_int_equal(cf->count, 2);
    assert_int_equal(cf->entries[0]->lineno, 3);
    assert_int_equal(cf->entries[0]->maxproc, 2);
    assert_argv(cf->entries[0]->args, "pipe|flags=R|user=scalemail|"
                "argv=/usr/lib/scalemail/bin/scalemail-store|${nexthop}");
    /* Even the fields may be split over lines. */
    assert_int_equal(cf->entries[1]->lineno, 7);
    assert_string_equal(cf->entries[1]->type, "inet");
    assert_argv(cf->entries[1]->args, "smtpd");
    mastercf_free(&cf);
}

static void test_duplicate_last_wins(void **state)
{
    MASTERCF *cf;

    (void) state;
    unit_log_reset();
    cf = parse_ok("smtp inet n - n - - smtpd\n"
                  "smtp unix - - n - - smtp\n"
                  "pickup unix n - n 60 1 pickup\n"
                  "smtp inet n - n - 5 smtpd -v\n");
    assert_int_equal(cf->count, 3);
    assert_true(unit_logged("warning: " PATH ", line 4: duplicate service "
                            "smtp/inet overrides line 1"));
    assert_string_equal(cf->entries[0]->type, "unix");
    assert_string_equal(cf->entries[1]->service, "pickup");
    assert_int_equal(cf->entries[2]->maxproc, 5);
    assert_int_equal(cf->entries[2]->lineno, 4);
    assert_argv(cf->entries[2]->args, "smtpd|-v");
    assert_ptr_equal(mastercf_find(cf, "smtp", "inet"), cf->entries[2]);
    assert_ptr_equal(mastercf_find(cf, "smtp", "unix"), cf->entries[0]);
    assert_ptr_equal(mastercf_find(cf, "smtp", NULL), cf->entries[0]);
    assert_ptr_equal(mastercf_find(cf, "pickup", NULL), cf->entries[1]);
    assert_null(mastercf_find(cf, "pickup", "inet"));
    assert_null(mastercf_find(cf, "nope", NULL));
    mastercf_free(&cf);

    /* Same service, other type: not a duplicate. */
    unit_log_reset();
    cf = parse_ok("smtp inet n - n - - smtpd\nsmtp unix - - n - - smtp\n");
    assert_int_equal(cf->count, 2);
    assert_false(unit_logged("duplicate"));
    mastercf_free(&cf);
}

/* --- errors ----------------------------------------------------------- */

static void test_errors(void **state)
{
    (void) state;
    unit_log_reset();
    parse_bad("ok unix - - n - - x\nfoo bogus n - n - - x\n",
              PATH ", line 2: bad transport type: bogus");
    parse_bad("foo INET n - n - - x\n",
              PATH ", line 1: bad transport type: INET");
    parse_bad("foo unix x - n - - x\n", PATH ", line 1: bad boolean field "
              "(use y, n or -): x - n");
    parse_bad("foo unix - yes n - - x\n", PATH ", line 1: bad boolean field "
              "(use y, n or -): - yes n");
    parse_bad("foo unix - - Y - - x\n", PATH ", line 1: bad boolean field "
              "(use y, n or -): - - Y");
    parse_bad("foo unix - - n abc - x\n",
              PATH ", line 1: bad wakeup time: abc");
    parse_bad("foo unix - - n -1 - x\n",
              PATH ", line 1: bad wakeup time: -1");
    parse_bad("foo unix - - n ? - x\n", PATH ", line 1: bad wakeup time: ?");
    parse_bad("foo unix - - n 60?? - x\n",
              PATH ", line 1: bad wakeup time: 60??");
    parse_bad("foo unix - - n 6x - x\n",
              PATH ", line 1: bad wakeup time: 6x");
    parse_bad("foo unix - - n 60?x - x\n",
              PATH ", line 1: bad wakeup time: 60?x");
    parse_bad("foo unix - - n 99999999999 - x\n",
              PATH ", line 1: bad wakeup time: 99999999999");
    parse_bad("foo unix - - n - -1 x\n",
              PATH ", line 1: bad process limit: -1");
    parse_bad("foo unix - - n - x x\n",
              PATH ", line 1: bad process limit: x");
    parse_bad("foo unix - - n - +5 x\n",
              PATH ", line 1: bad process limit: +5");
    parse_bad("foo unix - - n - 99999999999 x\n",
              PATH ", line 1: bad process limit: 99999999999");
    parse_bad("foo unix - - n - 1? x\n",
              PATH ", line 1: bad process limit: 1?");
    parse_bad("foo\n", PATH ", line 1: missing type field");
    parse_bad("foo unix\n", PATH ", line 1: missing private field");
    parse_bad("foo unix -\n", PATH ", line 1: missing unprivileged field");
    parse_bad("foo unix - -\n", PATH ", line 1: missing chroot field");
    parse_bad("foo unix - - n\n", PATH ", line 1: missing wakeup field");
    parse_bad("foo unix - - n -\n",
              PATH ", line 1: missing process limit field");
    parse_bad("foo unix - - n - -\n", PATH ", line 1: missing command field");
    parse_bad("foo unix - - n - -   \t\n",
              PATH ", line 1: missing command field");
    parse_bad("foo unix - - n - - smtpd -o\n",
              PATH ", line 1: -o without name=value");
    parse_bad("foo unix - - n - - smtpd -v -o\n",
              PATH ", line 1: -o without name=value");
    parse_bad("foo unix - - n - - smtpd -o novalue\n", PATH ", line 1: bad "
              "-o argument, need name=value: \"novalue\"");
    parse_bad("foo unix - - n - - smtpd -o =x\n", PATH ", line 1: bad "
              "-o argument, need name=value: \"=x\"");
    parse_bad("foo unix - - n - - smtpd -o {bad-name = x}\n", PATH ", line 1: "
              "bad -o argument, need name=value: \"bad-name = x\"");
    parse_bad("foo unix - - n - - smtpd -o { a = b\n",
              PATH ", line 1: missing '}'");
    parse_bad("foo unix - - n - - pipe argv=x { a b\n",
              PATH ", line 1: missing '}'");
    parse_bad("foo unix - - n - - pipe {a}b\n", PATH ", line 1: text after "
              "'}' must be separated by a delimiter");
    /* Nothing was logged for any of them. */
    assert_false(unit_logged("warning"));
}

static void test_error_line_numbers(void **state)
{
    (void) state;
    parse_bad("# comment\n"
              "smtp inet n - n - - smtpd\n"
              "  -o a=b\n"
              "\n"
              "# another\n"
              "bad unix - - n - - x -o\n"
              "  -o c=d\n",
              PATH ", line 6: bad -o argument, need name=value: \"-o\"");
    parse_bad("a unix - - n - - x\n"
              "b unix - - n - -\n"
              "\n"
              "  # only a comment follows\n",
              PATH ", line 2: missing command field");
    parse_bad("a unix - - n - - x\n"
              "\n"
              "b\n"
              "  unix\n"
              "  q - n - - x\n",
              PATH ", line 3: bad boolean field (use y, n or -): q - n");
}

static void test_nul_byte(void **state)
{
    static const char text1[] = "a unix - - n - - x\nb unix - - n - - \0x\n";
    static const char text2[] = "a unix - - n - - x\n  -o a=\0b\n";

    (void) state;
    parse_bad_n(text1, sizeof(text1) - 1,
                PATH ", line 2: NUL byte in input");
    parse_bad_n(text2, sizeof(text2) - 1,
                PATH ", line 2: NUL byte in input");
    parse_bad_n("\0", 1, PATH ", line 1: NUL byte in input");
}

static void test_length_is_respected(void **state)
{
    static const char src[] = "a unix - - n - - cmd1\nb unix - - n - - cmd2\n";
    size_t len = sizeof(src) - 1;
    char *buf = malloc(len);
    MASTERCF *cf = mastercf_alloc(PATH);
    STRBUF *err = strbuf_alloc(64);

    (void) state;
    memcpy(buf, src, len);                      /* no NUL at the end */
    assert_int_equal(mastercf_parse(cf, buf, len, err), 0);
    assert_int_equal(cf->count, 2);
    mastercf_free(&cf);

    /* Cut inside the last word: "cm". */
    cf = mastercf_alloc(PATH);
    assert_int_equal(mastercf_parse(cf, buf, len - 3, err), 0);
    assert_argv(cf->entries[1]->args, "cm");
    mastercf_free(&cf);

    /* Cut before the command. */
    cf = mastercf_alloc(PATH);
    assert_int_equal(mastercf_parse(cf, buf, 17, err), -1);
    assert_string_equal(err->data, PATH ", line 1: missing command field");
    mastercf_free(&cf);
    free(buf);
    strbuf_free(&err);
}

static void test_oversized(void **state)
{
    STRBUF *text = strbuf_alloc(1024 * 1024 + 128);
    MASTERCF *cf;
    MASTER_ENT *ent;

    (void) state;
    /* 10000 -o pairs. */
    strbuf_set(text, "big unix - - n - - smtpd");
    for (int i = 0; i < 10000; i++)
        strbuf_printf_append(text, "\n  -o p%d=v%d", i, i);
    strbuf_cat(text, "\nnext unix - - n - - x\n");
    cf = parse_ok(text->data);
    ent = cf->entries[0];
    assert_int_equal(ent->args->argc, 1 + 2 * 10000);
    assert_int_equal(ent->overrides->argc, 10000);
    assert_string_equal(ent->overrides->argv[9999], "p9999=v9999");
    assert_int_equal(cf->entries[1]->lineno, 10002);
    mastercf_free(&cf);

    /* A 1 MB argument, and a 1 MB -o value in braces. */
    strbuf_set(text, "big unix - - n - - pipe ");
    for (int i = 0; i < 1024 * 1024; i++)
        strbuf_addch(text, 'x');
    strbuf_cat(text, " -o\n");
    cf = parse_ok(text->data);
    assert_int_equal(strlen(cf->entries[0]->args->argv[1]), 1024 * 1024);
    assert_int_equal(cf->entries[0]->overrides->argc, 0);
    mastercf_free(&cf);

    strbuf_set(text, "big unix - - n - - smtpd -o { name = ");
    for (int i = 0; i < 1024 * 1024; i++)
        strbuf_addch(text, i % 64 ? 'v' : ' ');
    strbuf_cat(text, " }\n");
    cf = parse_ok(text->data);
    ent = cf->entries[0];
    assert_int_equal(ent->overrides->argc, 1);
    assert_int_equal(strncmp(ent->overrides->argv[0], "name=v", 6), 0);
    mastercf_free(&cf);

    /* A 64 KB service name is only text. */
    strbuf_reset(text);
    for (int i = 0; i < 65536; i++)
        strbuf_addch(text, 's');
    strbuf_cat(text, " unix - - n - - x\n");
    cf = parse_ok(text->data);
    assert_int_equal(strlen(cf->entries[0]->service), 65536);
    mastercf_free(&cf);

    /* 5000 entries, every one a duplicate of the last but a few. */
    strbuf_reset(text);
    for (int i = 0; i < 5000; i++)
        strbuf_printf_append(text, "s%d unix - - n - - x\n", i % 50);
    unit_log_reset();
    cf = parse_ok(text->data);
    assert_int_equal(cf->count, 50);
    assert_int_equal(cf->entries[49]->lineno, 5000);
    mastercf_free(&cf);
    strbuf_free(&text);
}

static void test_read_file(void **state)
{
    const char *path;
    MASTERCF *cf;
    STRBUF *err = strbuf_alloc(64);
    STRBUF *missing = strbuf_alloc(64);

    (void) state;
    path = unit_write_file("master.cf", "smtp inet n - n - - smtpd\n"
                           "bad unix - - n - - x -o\n");
    cf = mastercf_alloc(path);
    assert_int_equal(mastercf_read(cf, err), -1);
    assert_non_null(strstr(err->data, "master.cf, line 2: -o without"));
    mastercf_free(&cf);

    path = unit_write_file("master.cf", "smtp inet n - n - - smtpd\n");
    cf = mastercf_alloc(path);
    assert_int_equal(mastercf_read(cf, err), 0);
    assert_int_equal(cf->count, 1);
    mastercf_free(&cf);

    strbuf_printf(missing, "%s/nonexistent/master.cf", unit_tmpdir());
    cf = mastercf_alloc(missing->data);
    assert_int_equal(mastercf_read(cf, err), -1);
    assert_non_null(strstr(err->data, "nonexistent/master.cf"));
    assert_non_null(strstr(err->data, "No such file"));
    mastercf_free(&cf);
    strbuf_free(&err);
    strbuf_free(&missing);
}

/* --- postconf -M layout ----------------------------------------------- */

/* Each entry as master.cf text, and postconf -M / -Mf output for it. */
static const struct {
    const char *in;
    const char *m;
    const char *mf;
} layout[] = {
    {"smtp      inet  n       -       y       -       -       smtpd",
     "smtp       inet  n       -       y       -       -       smtpd",
     NULL},
    {"pickup unix n - y 60 1 pickup",
     "pickup     unix  n       -       y       60      1       pickup",
     NULL},
    {"postlog   unix-dgram n  -       n       -       1       postlogd",
     "postlog    unix-dgram n  -       n       -       1       postlogd",
     NULL},
    {"tlsmgr    unix  -       -       y       1000?   1       tlsmgr",
     "tlsmgr     unix  -       -       y       1000?   1       tlsmgr",
     NULL},
    {"averyveryverylongservicename unix - - n - - smtp",
     "averyveryverylongservicename unix - - n  -       -       smtp",
     NULL},
    {"127.0.0.1:2525 inet n - n - - smtpd",
     "127.0.0.1:2525 inet n    -       n       -       -       smtpd",
     NULL},
    {"scalemail-backend unix -  n   n   -   2   pipe\n"
     "  flags=R user=scalemail argv=/usr/lib/scalemail/bin/scalemail-store "
     "${nexthop} ${user} ${extension}",
     "scalemail-backend unix - n       n       -       2       pipe flags=R "
     "user=scalemail argv=/usr/lib/scalemail/bin/scalemail-store ${nexthop} "
     "${user} ${extension}",
     "scalemail-backend unix - n       n       -       2       pipe flags=R\n"
     "    user=scalemail argv=/usr/lib/scalemail/bin/scalemail-store "
     "${nexthop}\n"
     "    ${user} ${extension}"},
    {"submission inet n       -       y       -       -       smtpd\n"
     "  -o syslog_name=postfix/submission\n"
     "  -o smtpd_tls_security_level=encrypt\n"
     "  -o smtpd_sasl_auth_enable=yes\n"
     "  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }\n"
     "  -o milter_macro_daemon_name=ORIGINATING",
     "submission inet  n       -       y       -       -       smtpd "
     "-o syslog_name=postfix/submission -o smtpd_tls_security_level=encrypt "
     "-o smtpd_sasl_auth_enable=yes "
     "-o {smtpd_client_restrictions=permit_sasl_authenticated, reject} "
     "-o milter_macro_daemon_name=ORIGINATING",
     "submission inet  n       -       y       -       -       smtpd\n"
     "    -o syslog_name=postfix/submission\n"
     "    -o smtpd_tls_security_level=encrypt\n"
     "    -o smtpd_sasl_auth_enable=yes\n"
     "    -o {smtpd_client_restrictions=permit_sasl_authenticated, reject}\n"
     "    -o milter_macro_daemon_name=ORIGINATING"},
    /* Short -o pairs still go on lines of their own, and so does the
     * word after them. */
    {"short unix - - n - - smtpd -o a=b -o c=d foo bar",
     "short      unix  -       -       n       -       -       smtpd "
     "-o a=b -o c=d foo bar",
     "short      unix  -       -       n       -       -       smtpd\n"
     "    -o a=b\n"
     "    -o c=d\n"
     "    foo bar"},
    {"x unix - - n - - smtpd -v -o a=b -D",
     "x          unix  -       -       n       -       -       smtpd "
     "-v -o a=b -D",
     "x          unix  -       -       n       -       -       smtpd -v\n"
     "    -o a=b\n"
     "    -D"},
    /* A line may reach 79 columns, not 80. */
    {"pipe1 unix - n n - - pipe flags=Rq user=nob1 x",
     "pipe1      unix  -       n       n       -       -       pipe flags=Rq "
     "user=nob1 x",
     "pipe1      unix  -       n       n       -       -       pipe flags=Rq\n"
     "    user=nob1 x"},
    {"pipe2 unix - n n - - pipe flags=Rq user=nob x",
     "pipe2      unix  -       n       n       -       -       pipe flags=Rq "
     "user=nob x",
     "pipe2      unix  -       n       n       -       -       pipe flags=Rq "
     "user=nob\n"
     "    x"},
    /* After the first non-option, -o is an ordinary word. */
    {"pipe3 unix - n n - - pipe flags=Rq argv=foo -o bar",
     "pipe3      unix  -       n       n       -       -       pipe flags=Rq "
     "argv=foo -o bar",
     "pipe3      unix  -       n       n       -       -       pipe flags=Rq "
     "argv=foo\n"
     "    -o bar"},
    {"pipe5 unix - n n - - pipe -o {a = b c} -- -o x=y",
     "pipe5      unix  -       n       n       -       -       pipe "
     "-o {a=b c} -- -o x=y",
     "pipe5      unix  -       n       n       -       -       pipe\n"
     "    -o {a=b c}\n"
     "    -- -o x=y"},
    {"pipe6 unix - n n - - pipe flags=R {c d} user=x",
     "pipe6      unix  -       n       n       -       -       pipe flags=R "
     "{c d} user=x",
     "pipe6      unix  -       n       n       -       -       pipe flags=R "
     "{c d}\n"
     "    user=x"},
};

static void test_format_entry(void **state)
{
    STRBUF *out = strbuf_alloc(64);

    (void) state;
    for (size_t i = 0; i < sizeof(layout) / sizeof(layout[0]); i++) {
        MASTERCF *cf = parse_ok(layout[i].in);
        const char *mf = layout[i].mf ? layout[i].mf : layout[i].m;

        assert_int_equal(cf->count, 1);
        mastercf_format_entry(cf->entries[0], 0, out);
        if (strcmp(out->data, layout[i].m) != 0)
            fail_msg("-M:\n got \"%s\"\nwant \"%s\"", out->data,
                     layout[i].m);
        mastercf_format_entry(cf->entries[0], 1, out);
        if (strcmp(out->data, mf) != 0)
            fail_msg("-Mf:\n got \"%s\"\nwant \"%s\"", out->data, mf);
        /* No folded line is longer than 79 columns. */
        for (const char *cp = out->data; *cp;) {
            size_t n = strcspn(cp, "\n");

            if (n > 79)
                fail_msg("line too long: %.*s", (int) n, cp);
            cp += n + (cp[n] != 0);
        }
        /* The output is master.cf text that parses to the same entry. */
        {
            MASTERCF *again = parse_ok(out->data);
            STRBUF *out2 = strbuf_alloc(64);

            mastercf_format_entry(again->entries[0], 0, out2);
            assert_string_equal(out2->data, layout[i].m);
            strbuf_free(&out2);
            mastercf_free(&again);
        }
        mastercf_free(&cf);
    }
    strbuf_free(&out);
}

static void test_format_command(void **state)
{
    MASTERCF *cf;
    STRBUF *out = strbuf_alloc(8);

    (void) state;
    cf = parse_ok("x unix - - n - - smtpd -o { a = b c } -v\n"
                  "y unix - - n - - pipe argv=x {} { p q }\n");
    strbuf_set(out, "junk");
    mastercf_format_command(cf->entries[0], out);
    assert_string_equal(out->data, "smtpd -o {a=b c} -v");
    mastercf_format_command(cf->entries[1], out);
    assert_string_equal(out->data, "pipe argv=x {} {p q}");
    mastercf_free(&cf);
    strbuf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_fields),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_wakeup),
        cmocka_unit_test(test_inet_not_private),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_overrides_only_among_options),
        cmocka_unit_test(test_brace_arguments),
        cmocka_unit_test(test_continuation),
        cmocka_unit_test(test_duplicate_last_wins),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_line_numbers),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_format_entry),
        cmocka_unit_test(test_format_command),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
