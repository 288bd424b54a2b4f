/*
 * test_dsn_log - defer/bounce logs in Postfix's bounce-log format: the
 * writer's exact bytes (old-style line, attribute order, what is left out,
 * quoting, control characters and newlines made harmless), appending to
 * an existing log, the file mode, a failed write taken back; the reader on
 * new, old and mixed entries, Postfix's place holders, "name = value"
 * spacing, unknown and malformed lines, NUL bytes, a torn last entry, a
 * last entry without its blank line, every prefix of a log (partial
 * writes), an oversized line, a missing file and a directory; the
 * printable and quoted forms; a log written by a real Postfix 3.7.11.
 */
#include "unit.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "mail/dsn_log.h"
#include "util/xmalloc.h"

static const char *tmp_path(STRBUF *buf, const char *name)
{
    strbuf_printf(buf, "%s/%s", unit_tmpdir(), name);
    return buf->data;
}

static void slurp(const char *path, STRBUF *buf)
{
    char    chunk[4096];
    ssize_t n;
    int     fd;

    strbuf_reset(buf);
    assert_true((fd = open(path, O_RDONLY)) >= 0);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        strbuf_append(buf, chunk, (size_t) n);
    assert_int_equal(n, 0);
    close(fd);
}

static DSN_LOG *parse(const char *text)
{
    return dsn_log_parse(text, strlen(text), "test");
}

/* --- the writer -------------------------------------------------------- */

static void test_append_format(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    STRBUF *got = strbuf_alloc(0);
    DSN_LOG_ENTRY e = {
        .recipient = "carol@remote.test",
        .orig_rcpt = "Carol@Other.test",
        .offset = 172,
        .dsn_orcpt = "rfc822;Carol@Other.test",
        .notify = 12,
        .status = "4.4.1",
        .action = "delayed",
        .diag_type = "smtp",
        .diag_text = "451 4.3.0 try later",
        .mta_type = "dns",
        .mta_name = "mx.remote.test",
        .reason = "connect to 127.0.0.1[127.0.0.1]:9: Connection refused",
    };
    struct stat st;

    (void) state;
    tmp_path(path, "format");
    assert_int_equal(dsn_log_append(path->data, &e, err), 0);
    slurp(path->data, got);
    assert_string_equal(got->data,
        "\n"
        "<carol@remote.test>: connect to 127.0.0.1[127.0.0.1]:9: "
        "Connection refused\n"
        "recipient=carol@remote.test\n"
        "original_recipient=Carol@Other.test\n"
        "offset=172\n"
        "dsn_orig_rcpt=rfc822;Carol@Other.test\n"
        "notify_flags=12\n"
        "status=4.4.1\n"
        "action=delayed\n"
        "diag_type=smtp\n"
        "diag_text=451 4.3.0 try later\n"
        "mta_type=dns\n"
        "mta_mname=mx.remote.test\n"
        "reason=connect to 127.0.0.1[127.0.0.1]:9: Connection refused\n"
        "\n");
    assert_int_equal(stat(path->data, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    strbuf_free(&path);
    strbuf_free(&err);
    strbuf_free(&got);
}

/*
 * The minimum; the same original recipient in another case is left out
 * (Postfix), so are empty and zero fields; the diagnostic and MTA pairs
 * only come whole.
 */
static void test_append_minimal(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    STRBUF *got = strbuf_alloc(0);
    DSN_LOG_ENTRY e = {
        .recipient = "Bob@Example.ORG",
        .orig_rcpt = "bob@example.org",
        .status = "4.4.1",
        .action = "",
        .diag_type = "smtp",
        .mta_name = "mx.example.org",
        .reason = "later",
    };

    (void) state;
    tmp_path(path, "minimal");
    assert_int_equal(dsn_log_append(path->data, &e, err), 0);
    slurp(path->data, got);
    assert_string_equal(got->data,
                        "\n<Bob@Example.ORG>: later\n"
                        "recipient=Bob@Example.ORG\n"
                        "status=4.4.1\n"
                        "reason=later\n\n");
    strbuf_free(&path);
    strbuf_free(&err);
    strbuf_free(&got);
}

/*
 * Addresses are quoted; the null address is "<>"; control characters,
 * newlines and malformed UTF-8 cannot break the line structure.
 */
static void test_append_quoting(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    STRBUF *got = strbuf_alloc(0);
    DSN_LOG_ENTRY spaced = {
        .recipient = "john doe@example.org",
        .orig_rcpt = "J\"D@example.org",
        .reason = "line one\nrecipient=evil@example.org\r\x01\xff caf\xc3\xa9",
    };
    DSN_LOG_ENTRY null = {.recipient = "", .reason = NULL};
    DSN_LOG *log = NULL;

    (void) state;
    tmp_path(path, "quoting");
    assert_int_equal(dsn_log_append(path->data, &spaced, err), 0);
    assert_int_equal(dsn_log_append(path->data, &null, err), 0);
    slurp(path->data, got);
    assert_string_equal(got->data,
        "\n<\"john doe\"@example.org>: line one?recipient=evil@example.org"
        "??? caf\xc3\xa9\n"
        "recipient=\"john doe\"@example.org\n"
        "original_recipient=\"J\\\"D\"@example.org\n"
        "reason=line one?recipient=evil@example.org??? caf\xc3\xa9\n"
        "\n"
        "\n<>: \n"
        "recipient=<>\n"
        "reason=\n\n");
    /* And it reads back as two entries. */
    assert_int_equal(dsn_log_read(path->data, &log, err), 1);
    assert_int_equal(log->count, 2);
    assert_string_equal(log->entries[0].recipient,
                        "\"john doe\"@example.org");
    assert_string_equal(log->entries[0].orig_rcpt,
                        "\"J\\\"D\"@example.org");
    assert_string_equal(log->entries[1].recipient, "<>");
    assert_string_equal(log->entries[1].reason, "");
    dsn_log_free(&log);
    strbuf_free(&path);
    strbuf_free(&err);
    strbuf_free(&got);
}

/* Appends add to the end; what was written reads back field by field. */
static void test_append_read_back(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    DSN_LOG *log = NULL;
    char addr[64];

    (void) state;
    tmp_path(path, "roundtrip");
    for (int i = 0; i < 50; i++) {
        DSN_LOG_ENTRY e = {
            .recipient = addr, .offset = 100 + i, .status = "4.4.1",
            .action = "delayed", .notify = 8, .dsn_orcpt = "rfc822;x@y",
            .reason = i % 2 ? "odd" : "even",
        };

        snprintf(addr, sizeof(addr), "user%d@example.org", i);
        assert_int_equal(dsn_log_append(path->data, &e, err), 0);
    }
    assert_int_equal(dsn_log_read(path->data, &log, err), 1);
    assert_int_equal(log->count, 50);
    for (int i = 0; i < 50; i++) {
        const DSN_LOG_ENTRY *e = &log->entries[i];

        snprintf(addr, sizeof(addr), "user%d@example.org", i);
        assert_string_equal(e->recipient, addr);
        assert_int_equal(e->offset, 100 + i);
        assert_int_equal(e->notify, 8);
        assert_string_equal(e->dsn_orcpt, "rfc822;x@y");
        assert_string_equal(e->status, "4.4.1");
        assert_string_equal(e->action, "delayed");
        assert_string_equal(e->orig_rcpt, "");
        assert_string_equal(e->diag_type, "");
        assert_string_equal(e->reason, i % 2 ? "odd" : "even");
    }
    dsn_log_free(&log);
    strbuf_free(&path);
    strbuf_free(&err);
}

static void test_append_errors(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    DSN_LOG_ENTRY e = {.recipient = "a@b", .reason = "x"};

    (void) state;
    tmp_path(path, "no/such/dir/log");
    assert_int_equal(dsn_log_append(path->data, &e, err), -1);
    assert_non_null(strstr(err->data, path->data));
    assert_non_null(strstr(err->data, strerror(ENOENT)));
    /* A directory in the way. */
    tmp_path(path, "adir");
    assert_int_equal(mkdir(path->data, 0700), 0);
    strbuf_reset(err);
    assert_int_equal(dsn_log_append(path->data, &e, err), -1);
    assert_non_null(strstr(err->data, path->data));
    /* A symbolic link is not followed. */
    tmp_path(path, "alink");
    assert_int_equal(symlink("/etc/passwd", path->data), 0);
    strbuf_reset(err);
    assert_int_equal(dsn_log_append(path->data, &e, err), -1);
    strbuf_free(&path);
    strbuf_free(&err);
}

/* A write cut short (file size limit) is taken back whole. */
static STRBUF *child_path;

static void write_error_child(void *arg)
{
    struct rlimit lim;
    struct stat st;
    STRBUF *err = strbuf_alloc(0);
    DSN_LOG_ENTRY e = {
        .recipient = "carol@remote.test", .status = "4.4.1",
        .action = "delayed", .reason = "a reason long enough to be cut",
    };

    (void) arg;
    signal(SIGXFSZ, SIG_IGN);
    if (stat(child_path->data, &st) < 0)
        _exit(3);
    lim.rlim_cur = lim.rlim_max = (rlim_t) st.st_size + 20;
    if (setrlimit(RLIMIT_FSIZE, &lim) < 0)
        _exit(4);
    if (dsn_log_append(child_path->data, &e, err) == 0)
        _exit(5);
    fprintf(stderr, "%s\n", err->data);
    strbuf_free(&err);
}

static void test_append_write_error(void **state)
{
    STRBUF *err = strbuf_alloc(0);
    STRBUF *before = strbuf_alloc(0);
    STRBUF *after = strbuf_alloc(0);
    DSN_LOG_ENTRY e = {.recipient = "a@b", .reason = "first"};
    int     status;

    (void) state;
    child_path = strbuf_alloc(0);
    tmp_path(child_path, "limited");
    assert_int_equal(dsn_log_append(child_path->data, &e, err), 0);
    slurp(child_path->data, before);
    status = unit_fork(write_error_child, NULL, err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_non_null(strstr(err->data, strerror(EFBIG)));
    slurp(child_path->data, after);
    assert_int_equal(after->len, before->len);
    assert_string_equal(after->data, before->data);
    strbuf_free(&child_path);
    strbuf_free(&err);
    strbuf_free(&before);
    strbuf_free(&after);
}

/*
 * Byte for byte what Postfix 3.7.11's bounce service wrote into defer/A/ID
 * of a scratch instance (relayhost [127.0.0.1]:9), given the same fields;
 * and that file reads back.
 */
static const char postfix_log[] =
    "\n"
    "<\"tab here\"@remote.test>: connect to 127.0.0.1[127.0.0.1]:9: "
    "Connection refused\n"
    "recipient=\"tab here\"@remote.test\n"
    "offset=261\n"
    "dsn_orig_rcpt=rfc822;tab here@remote.test\n"
    "status=4.4.1\n"
    "action=delayed\n"
    "reason=connect to 127.0.0.1[127.0.0.1]:9: Connection refused\n"
    "\n"
    "\n"
    "<a-very-long-recipient-address-for-testing-the-column@subdomain."
    "remote.test>: connect to 127.0.0.1[127.0.0.1]:9: Connection refused\n"
    "recipient=a-very-long-recipient-address-for-testing-the-column@"
    "subdomain.remote.test\n"
    "offset=456\n"
    "dsn_orig_rcpt=rfc822;a-very-long-recipient-address-for-testing-the-"
    "column@subdomain.remote.test\n"
    "status=4.4.1\n"
    "action=delayed\n"
    "reason=connect to 127.0.0.1[127.0.0.1]:9: Connection refused\n"
    "\n";

static void test_matches_postfix(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    STRBUF *got = strbuf_alloc(0);
    DSN_LOG_ENTRY e = {
        .recipient = "tab here@remote.test",
        .orig_rcpt = "tab here@remote.test",
        .offset = 261,
        .dsn_orcpt = "rfc822;tab here@remote.test",
        .status = "4.4.1",
        .action = "delayed",
        .reason = "connect to 127.0.0.1[127.0.0.1]:9: Connection refused",
    };
    DSN_LOG *log;

    (void) state;
    tmp_path(path, "postfix");
    assert_int_equal(dsn_log_append(path->data, &e, err), 0);
    e.recipient = e.orig_rcpt = "a-very-long-recipient-address-for-testing-"
        "the-column@subdomain.remote.test";
    e.dsn_orcpt = "rfc822;a-very-long-recipient-address-for-testing-the-"
        "column@subdomain.remote.test";
    e.offset = 456;
    assert_int_equal(dsn_log_append(path->data, &e, err), 0);
    slurp(path->data, got);
    assert_string_equal(got->data, postfix_log);
    unit_log_reset();
    log = dsn_log_parse(postfix_log, sizeof(postfix_log) - 1, "postfix");
    assert_int_equal(unit_log->len, 0);
    assert_int_equal(log->count, 2);
    assert_string_equal(log->entries[0].recipient,
                        "\"tab here\"@remote.test");
    assert_int_equal(log->entries[0].offset, 261);
    assert_string_equal(log->entries[0].dsn_orcpt,
                        "rfc822;tab here@remote.test");
    assert_string_equal(log->entries[1].status, "4.4.1");
    assert_string_equal(log->entries[1].action, "delayed");
    assert_string_equal(log->entries[1].reason,
                        "connect to 127.0.0.1[127.0.0.1]:9: "
                        "Connection refused");
    dsn_log_free(&log);
    strbuf_free(&path);
    strbuf_free(&err);
    strbuf_free(&got);
}

/* --- the reader -------------------------------------------------------- */

/* What Postfix 3.x writes, and its old format, and both in one entry. */
static void test_parse_formats(void **state)
{
    DSN_LOG *log;

    (void) state;
    unit_log_reset();
    log = parse("\n<a@x.test>: old reason\n\n"
                "\n<b@x.test>: old text\nrecipient=b@x.test\n"
                "offset=99\nstatus=4.4.1\naction=delayed\n"
                "reason=new text\n\n"
                "recipient=c@x.test\nreason=only new\n\n");
    assert_int_equal(log->count, 3);
    assert_string_equal(log->entries[0].recipient, "a@x.test");
    assert_string_equal(log->entries[0].reason, "old reason");
    assert_string_equal(log->entries[0].status, "");
    assert_int_equal(log->entries[0].offset, 0);
    assert_string_equal(log->entries[1].recipient, "b@x.test");
    assert_string_equal(log->entries[1].reason, "new text");
    assert_int_equal(log->entries[1].offset, 99);
    assert_string_equal(log->entries[1].status, "4.4.1");
    assert_string_equal(log->entries[1].action, "delayed");
    assert_string_equal(log->entries[2].recipient, "c@x.test");
    assert_string_equal(log->entries[2].reason, "only new");
    assert_int_equal(unit_log->len, 0);
    dsn_log_free(&log);
}

/* Postfix's place holders, and the null address in its two spellings. */
static void test_parse_placeholders(void **state)
{
    DSN_LOG *log;

    (void) state;
    log = parse("status=4.0.0\n\nrecipient=\n\nrecipient=<>\n\n<>: why\n\n");
    assert_int_equal(log->count, 4);
    assert_string_equal(log->entries[0].recipient, DSN_LOG_NO_RECIPIENT);
    assert_string_equal(log->entries[0].reason, DSN_LOG_NO_REASON);
    assert_string_equal(log->entries[1].recipient, "(MAILER-DAEMON)");
    assert_string_equal(log->entries[2].recipient, "<>");
    assert_string_equal(log->entries[3].recipient, "(MAILER-DAEMON)");
    assert_string_equal(log->entries[3].reason, "why");
    dsn_log_free(&log);
}

static void test_parse_spacing(void **state)
{
    DSN_LOG *log;

    (void) state;
    log = parse("recipient = a@b  \nreason=  spaced out \t\n"
                "diag_text=x=y=z\n\n");
    assert_int_equal(log->count, 1);
    assert_string_equal(log->entries[0].recipient, "a@b");
    assert_string_equal(log->entries[0].reason, "spaced out");
    assert_string_equal(log->entries[0].diag_text, "x=y=z");
    dsn_log_free(&log);
}

/* Bad lines are skipped with a warning naming the file and line. */
static void test_parse_bad_lines(void **state)
{
    static const char text[] =
        "recipient=a@b\n"
        "colour=blue\n"                 /* 2: unknown name */
        "offset=-5\n"                   /* 3: bad offset */
        "offset=12x\n"                  /* 4 */
        "notify_flags=99\n"             /* 5 */
        "recipient\n"                   /* 6: no '=' */
        " indented=1\n"                 /* 7: malformed */
        "<no closing bracket\n"         /* 8 */
        "reason=a\0b\n"                 /* 9: NUL */
        "reason=kept\n"
        "\n";
    DSN_LOG *log;

    (void) state;
    unit_log_reset();
    log = dsn_log_parse(text, sizeof(text) - 1, "defer/ID");
    assert_int_equal(log->count, 1);
    assert_string_equal(log->entries[0].recipient, "a@b");
    assert_string_equal(log->entries[0].reason, "kept");
    assert_int_equal(log->entries[0].offset, 0);
    assert_int_equal(log->entries[0].notify, 0);
    assert_true(unit_logged("defer/ID, line 2: unknown attribute name: "
                            "colour"));
    assert_true(unit_logged("defer/ID, line 3: bad offset"));
    assert_true(unit_logged("defer/ID, line 4: bad offset"));
    assert_true(unit_logged("defer/ID, line 5: bad notify_flags"));
    assert_true(unit_logged("defer/ID, line 6: malformed record: missing '='"));
    assert_true(unit_logged("defer/ID, line 7: malformed record"));
    assert_true(unit_logged("defer/ID, line 8: malformed record"));
    assert_true(unit_logged("defer/ID, line 9: NUL byte"));
    dsn_log_free(&log);
    /* Garbage alone makes no entry. */
    log = parse("???\n\n\n\n");
    assert_int_equal(log->count, 0);
    dsn_log_free(&log);
}

/*
 * The last entry: without its blank line it counts; cut in the middle of
 * a line (a crash while appending) it does not.
 */
static void test_parse_last_entry(void **state)
{
    DSN_LOG *log;

    (void) state;
    log = parse("recipient=a@b\nreason=x\n\nrecipient=c@d\nreason=y\n");
    assert_int_equal(log->count, 2);
    assert_string_equal(log->entries[1].reason, "y");
    dsn_log_free(&log);
    unit_log_reset();
    log = parse("recipient=a@b\nreason=x\n\nrecipient=c@d\nreason=y");
    assert_int_equal(log->count, 1);
    assert_true(unit_logged("line 5: incomplete last line"));
    dsn_log_free(&log);
    /* Not finished: no reason yet. */
    log = parse("recipient=a@b\nreason=x\n\nrecipient=c@d\noffset=5\n");
    assert_int_equal(log->count, 1);
    dsn_log_free(&log);
    /* The old-style line carries a reason. */
    log = parse("\n<c@d>: why\nrecipient=c@d\n");
    assert_int_equal(log->count, 1);
    assert_string_equal(log->entries[0].reason, "why");
    dsn_log_free(&log);
    log = parse("");
    assert_int_equal(log->count, 0);
    dsn_log_free(&log);
}

/* Every prefix of a log (as a reader may see a log being appended). */
static void test_parse_prefixes(void **state)
{
    static const char text[] =
        "\n<a@x>: one\nrecipient=a@x\noffset=10\nstatus=4.4.1\n"
        "action=delayed\nreason=one\n\n"
        "\n<b@x>: two\nrecipient=b@x\noffset=20\nstatus=4.4.1\n"
        "action=delayed\nreason=two\n\n";
    size_t prev = 0;

    (void) state;
    msg_set_hook(NULL);
    unit_log_reset();
    for (size_t len = 0; len <= sizeof(text) - 1; len++) {
        char *copy = xmemdup(text, len ? len : 1);
        DSN_LOG *log = dsn_log_parse(copy, len, "prefix");

        assert_true(log->count >= prev);
        assert_true(log->count <= 2);
        for (size_t i = 0; i < log->count; i++)
            assert_non_null(log->entries[i].reason);
        prev = log->count;
        dsn_log_free(&log);
        free(copy);
    }
    assert_int_equal(prev, 2);
}

static void test_parse_long_line(void **state)
{
    STRBUF *text = strbuf_alloc(0);
    DSN_LOG *log;

    (void) state;
    strbuf_cat(text, "recipient=a@b\nreason=");
    for (int i = 0; i < 100000; i++)
        strbuf_cat(text, "0123456789");
    strbuf_cat(text, "\n\n");
    log = dsn_log_parse(text->data, text->len, "long");
    assert_int_equal(log->count, 1);
    assert_int_equal(strlen(log->entries[0].reason), 1000000);
    dsn_log_free(&log);
    strbuf_free(&text);
}

static void test_read_files(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    DSN_LOG *log = (DSN_LOG *) 1;

    (void) state;
    assert_int_equal(dsn_log_read(tmp_path(path, "absent"), &log, err), 0);
    assert_null(log);
    assert_int_equal(mkdir(tmp_path(path, "isdir"), 0700), 0);
    assert_int_equal(dsn_log_read(path->data, &log, err), -1);
    assert_null(log);
    assert_non_null(strstr(err->data, "not a regular file"));
    unit_write_file("plain", "recipient=x@y\nreason=z\n\n");
    assert_int_equal(dsn_log_read(tmp_path(path, "plain"), &log, err), 1);
    assert_int_equal(log->count, 1);
    assert_string_equal(log->entries[0].recipient, "x@y");
    dsn_log_free(&log);
    unit_write_file("empty", "");
    assert_int_equal(dsn_log_read(tmp_path(path, "empty"), &log, err), 1);
    assert_int_equal(log->count, 0);
    dsn_log_free(&log);
    strbuf_free(&path);
    strbuf_free(&err);
}

/* --- text forms -------------------------------------------------------- */

static void check_printable(const char *in, size_t len, const char *want)
{
    STRBUF *out = strbuf_alloc(0);

    dsn_log_printable(out, in, len);
    assert_string_equal(out->data, want);
    strbuf_free(&out);
}

static void test_printable(void **state)
{
    STRBUF *out = strbuf_alloc(0);

    (void) state;
    check_printable("plain text", 10, "plain text");
    check_printable("a\tb\nc\rd\x7f" "e\x1b", 10, "a?b?c?d?e?");
    check_printable("x\0y", 3, "x?y");
    /* Well-formed UTF-8 of each length stays. */
    check_printable("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 11,
                    "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    /* Overlong, surrogate, too large, stray, truncated: one '?' a byte. */
    check_printable("\xc0\x80", 2, "??");
    check_printable("\xe0\x80\xaf", 3, "???");
    check_printable("\xed\xa0\x80", 3, "???");
    check_printable("\xf4\x90\x80\x80", 4, "????");
    check_printable("\xf5\x80", 2, "??");
    check_printable("\x80x", 2, "?x");
    check_printable("ab\xe2\x82", 4, "ab??");
    check_printable("\xe2\x82" "x", 3, "??x");
    /* utf8_clean keeps control characters. */
    dsn_log_utf8_clean(out, "a\tb\x01\xff\xc3\xa9", 7);
    assert_string_equal(out->data, "a\tb\x01?\xc3\xa9");
    strbuf_free(&out);
}

static void check_quote(const char *in, const char *want)
{
    STRBUF *out = strbuf_alloc(0);

    dsn_log_quote_address(out, in);
    assert_string_equal(out->data, want);
    strbuf_free(&out);
}

static void test_quote_address(void **state)
{
    (void) state;
    check_quote("user@example.org", "user@example.org");
    check_quote("first.last+tag@example.org", "first.last+tag@example.org");
    check_quote("john doe@example.org", "\"john doe\"@example.org");
    check_quote(".lead@x", "\".lead\"@x");
    check_quote("trail.@x", "\"trail.\"@x");
    check_quote("a..b@x", "\"a..b\"@x");
    check_quote("a\"b\\c@x", "\"a\\\"b\\\\c\"@x");
    check_quote("a(b)@x", "\"a(b)\"@x");
    check_quote("at@sign@x", "\"at@sign\"@x");
    check_quote("@relay:user@x", "@relay:user@x");
    check_quote("@relay:us er@x", "@relay:\"us er\"@x");
    check_quote("postmaster", "postmaster");
    check_quote("", "\"\"");
    check_quote("@x", "\"\"@x");
    check_quote("j\xc3\xb6rg@x", "j\xc3\xb6rg@x");
    check_quote("tab\there@x", "\"tab\there\"@x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_format),
        cmocka_unit_test(test_append_minimal),
        cmocka_unit_test(test_append_quoting),
        cmocka_unit_test(test_append_read_back),
        cmocka_unit_test(test_append_errors),
        cmocka_unit_test(test_append_write_error),
        cmocka_unit_test(test_matches_postfix),
        cmocka_unit_test(test_parse_formats),
        cmocka_unit_test(test_parse_placeholders),
        cmocka_unit_test(test_parse_spacing),
        cmocka_unit_test(test_parse_bad_lines),
        cmocka_unit_test(test_parse_last_entry),
        cmocka_unit_test(test_parse_prefixes),
        cmocka_unit_test(test_parse_long_line),
        cmocka_unit_test(test_read_files),
        cmocka_unit_test(test_printable),
        cmocka_unit_test(test_quote_address),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
