/*
 * test_queue_file - queue files, their records and queue IDs.
 *
 * The writer works relative to the cwd (the queue directory), so the
 * tests chdir into a temporary directory with tmp/ and incoming/.
 * Covered: write, commit (mode, nothing left in tmp/, no replacing),
 * abort, a missing destination, reading the envelope and content back,
 * marking recipients done in place, corrupt files (every truncation of a
 * good file, bad or misplaced records, NUL bytes, offsets), record
 * varints at their boundaries, and queue ID encoding and validation.
 */
#include "unit.h"

#include <fcntl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#include "mail/queue_file.h"
#include "mail/queue_id.h"
#include "mail/record.h"

#define SIZE_REC_LEN    (15 * 4 + 3)

static char *queue_dir;

static int setup(void **state)
{
    (void) state;
    queue_dir = strdup(unit_tmpdir());
    if (chdir(queue_dir) < 0 || mkdir("tmp", 0700) < 0
        || mkdir("incoming", 0700) < 0 || mkdir("corrupt", 0700) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void) state;
    free(queue_dir);
    return 0;
}

/* The number of entries in a directory, without . and .. */
static int dir_count(const char *dir)
{
    DIR *dp = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(dp);
    while ((de = readdir(dp)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(dp);
    return n;
}

/* Read a whole file into buf. */
static void slurp(const char *path, STRBUF *buf)
{
    char chunk[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    strbuf_reset(buf);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        strbuf_append(buf, chunk, (size_t) n);
    assert_int_equal(n, 0);
    close(fd);
}

/* Write len bytes to path (replacing it). */
static void spew(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t) len);
    close(fd);
}

static int collect(const char *data, size_t len, void *ctx)
{
    strbuf_append((STRBUF *) ctx, data, len);
    return 0;
}

static int refuse(const char *data, size_t len, void *ctx)
{
    (void) data;
    (void) len;
    (void) ctx;
    return -1;
}

/* The content of the good file: headers, a body > 127 and > 16383 bytes,
 * 8-bit text and a NUL byte. */
static void good_content(STRBUF *chunk1, STRBUF *chunk2)
{
    strbuf_set(chunk1, "Subject: test\nFrom: alice@example.com\n\n");
    strbuf_reset(chunk2);
    for (int i = 0; i < 400; i++)
        strbuf_printf_append(chunk2, "line %d \xc3\xa9\n", i);
    strbuf_append(chunk2, "nul:\0:\n", 7);
}

/*
 * Write the good file through the writer; return its path (static).
 * big: make the second content chunk larger than 16383 bytes.
 */
static const char *write_good(int big, long flags)
{
    static char path[64];
    STRBUF *err = strbuf_alloc(64);
    STRBUF *c1 = strbuf_alloc(64);
    STRBUF *c2 = strbuf_alloc(64);
    QFILE *q;
    STREAM *s;
    off_t content;
    off_t before;

    good_content(c1, c2);
    while (big && c2->len <= 16384)
        strbuf_cat(c2, "0123456789abcdef0123456789abcdef\n");
    q = qfile_create(err);
    if (q == NULL)
        fail_msg("qfile_create: %s", err->data);
    assert_true(queue_id_valid(qfile_id(q)));
    s = qfile_stream(q);
    /* The size and time records are already there. */
    assert_true(qfile_offset(q) > SIZE_REC_LEN + 2);
    rec_puts(s, QREC_FULLNAME, "Alice Example");
    before = qfile_offset(q);
    rec_puts(s, QREC_SENDER, "alice@example.com");
    assert_int_equal(qfile_offset(q), before + 2 + 17);
    rec_puts(s, QREC_ATTR, "client_name=mail.example.net");
    rec_fprintf(s, QREC_ATTR, "client_address=%s", "192.0.2.1");
    rec_puts(s, QREC_ATTR, "empty=");
    rec_puts(s, QREC_DSN_ORCPT, "rfc822;Bob@Example.ORG");
    rec_fprintf(s, QREC_DSN_NOTIFY, "%d",
                DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE);
    rec_puts(s, QREC_ORIG_RCPT, "Bob@Example.ORG");
    rec_puts(s, QREC_RCPT, "bob@example.org");
    rec_puts(s, QREC_RCPT, "carol@example.org");
    rec_puts(s, QREC_DSN_NOTIFY, "1");
    rec_puts(s, QREC_DONE, "dave@example.org");
    content = qfile_offset(q);
    rec_put(s, QREC_CONTENT, "", 0);
    rec_put(s, QREC_DATA, c1->data, c1->len);
    rec_put(s, QREC_DATA, c2->data, c2->len);
    rec_put(s, QREC_CONTENT_END, "", 0);
    qfile_set_size(q, (long) (c1->len + c2->len), content, 3, flags);
    snprintf(path, sizeof(path), "incoming/%s", qfile_id(q));
    if (qfile_commit(&q, "incoming", err) < 0)
        fail_msg("qfile_commit: %s", err->data);
    assert_null(q);
    strbuf_free(&err);
    strbuf_free(&c1);
    strbuf_free(&c2);
    return path;
}

static void test_write_read(void **state)
{
    STRBUF *err = strbuf_alloc(64);
    STRBUF *content = strbuf_alloc(64);
    STRBUF *c1 = strbuf_alloc(64);
    STRBUF *c2 = strbuf_alloc(64);
    const char *path;
    struct stat st;
    QENV *env = NULL;
    char type;
    int fd;

    (void) state;
    path = write_good(0, 0);
    /* Committed: ready mode, in incoming/, nothing left in tmp/. */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, QFILE_READY_MODE);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(dir_count("tmp"), 0);
    assert_true(queue_id_valid(path + strlen("incoming/")));

    if (qenv_read(path, &env, err) < 0)
        fail_msg("qenv_read: %s", err->data);
    assert_string_equal(env->id, path + strlen("incoming/"));
    good_content(c1, c2);
    assert_int_equal(env->message_size, (long) (c1->len + c2->len));
    assert_int_equal(env->flags, 0);
    assert_int_equal(env->file_size, st.st_size);
    assert_true(labs(env->arrival_sec - (long) time(NULL)) <= 5);
    assert_true(env->arrival_usec >= 0 && env->arrival_usec < 1000000);
    assert_int_equal(queue_id_time(env->id), env->arrival_sec);
    assert_string_equal(env->sender, "alice@example.com");
    assert_string_equal(env->fullname, "Alice Example");
    assert_int_equal(env->attrs->argc, 3);
    assert_string_equal(qenv_attr(env, "client_name"), "mail.example.net");
    assert_string_equal(qenv_attr(env, "client_address"), "192.0.2.1");
    assert_string_equal(qenv_attr(env, "empty"), "");
    assert_null(qenv_attr(env, "client"));
    assert_null(qenv_attr(env, "client_name=mail"));
    assert_null(qenv_attr(env, "missing"));

    assert_int_equal(env->nrcpt, 3);
    assert_string_equal(env->rcpts[0].address, "bob@example.org");
    assert_string_equal(env->rcpts[0].orig, "Bob@Example.ORG");
    assert_string_equal(env->rcpts[0].orcpt, "rfc822;Bob@Example.ORG");
    assert_int_equal(env->rcpts[0].notify,
                     DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE);
    assert_false(env->rcpts[0].done);
    /* o/n/O apply to the next recipient only. */
    assert_string_equal(env->rcpts[1].address, "carol@example.org");
    assert_null(env->rcpts[1].orig);
    assert_null(env->rcpts[1].orcpt);
    assert_int_equal(env->rcpts[1].notify, 0);
    assert_false(env->rcpts[1].done);
    assert_string_equal(env->rcpts[2].address, "dave@example.org");
    assert_int_equal(env->rcpts[2].notify, DSN_NOTIFY_NEVER);
    assert_true(env->rcpts[2].done);

    /* The offsets point at the R/D records. */
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    for (size_t i = 0; i < env->nrcpt; i++) {
        assert_int_equal(pread(fd, &type, 1, env->rcpts[i].offset), 1);
        assert_int_equal(type, i == 2 ? QREC_DONE : QREC_RCPT);
    }
    assert_int_equal(pread(fd, &type, 1, env->content_offset), 1);
    assert_int_equal(type, QREC_CONTENT);
    assert_int_equal(pread(fd, &type, 1, 0), 1);
    assert_int_equal(type, QREC_SIZE);

    /* The content, chunk by chunk, byte for byte. */
    assert_int_equal(qfile_read_content(fd, env, collect, content, err), 0);
    assert_int_equal(content->len, c1->len + c2->len);
    assert_memory_equal(content->data, c1->data, c1->len);
    assert_memory_equal(content->data + c1->len, c2->data, c2->len);
    /* A consumer that fails makes the read fail. */
    strbuf_reset(err);
    assert_int_equal(qfile_read_content(fd, env, refuse, NULL, err), -1);
    assert_string_not_equal(err->data, "");
    close(fd);
    qenv_free(&env);
    assert_null(env);
    qenv_free(&env);

    /* Unreadable: an error naming the file, no crash. */
    strbuf_reset(err);
    assert_int_equal(qenv_read("incoming/missing", &env, err), -1);
    assert_non_null(strstr(err->data, "incoming/missing"));
    strbuf_free(&err);
    strbuf_free(&content);
    strbuf_free(&c1);
    strbuf_free(&c2);
}

static void test_big_and_flags(void **state)
{
    STRBUF *err = strbuf_alloc(64);
    STRBUF *content = strbuf_alloc(64);
    const char *path;
    QENV *env = NULL;
    int fd;

    (void) state;
    path = write_good(1, QFLAG_HOLD);
    assert_int_equal(qenv_read(path, &env, err), 0);
    assert_int_equal(env->flags, QFLAG_HOLD);
    assert_true(env->message_size > 16384);
    fd = open(path, O_RDONLY);
    assert_int_equal(qfile_read_content(fd, env, collect, content, err), 0);
    assert_int_equal((long) content->len, env->message_size);
    close(fd);
    qenv_free(&env);
    strbuf_free(&err);
    strbuf_free(&content);
}

static void test_mark_done(void **state)
{
    STRBUF *err = strbuf_alloc(64);
    STRBUF *before = strbuf_alloc(64);
    STRBUF *after = strbuf_alloc(64);
    const char *path;
    QENV *env = NULL;
    off_t off;
    int fd;

    (void) state;
    path = write_good(0, 0);
    assert_int_equal(qenv_read(path, &env, err), 0);
    off = env->rcpts[1].offset;
    slurp(path, before);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(qfile_mark_done(fd, off, err), 0);
    /* Exactly one byte changed, R to D, in place. */
    slurp(path, after);
    assert_int_equal(after->len, before->len);
    before->data[off] = QREC_DONE;
    assert_memory_equal(after->data, before->data, before->len);
    /* Again: still fine; a D stays a D. */
    assert_int_equal(qfile_mark_done(fd, off, err), 0);
    assert_int_equal(qfile_mark_done(fd, env->rcpts[2].offset, err), 0);
    /* Not a recipient record: refused, nothing written. */
    strbuf_reset(err);
    assert_int_equal(qfile_mark_done(fd, 0, err), -1);
    assert_string_not_equal(err->data, "");
    assert_int_equal(qfile_mark_done(fd, env->content_offset, err), -1);
    assert_int_equal(qfile_mark_done(fd, env->rcpts[1].offset + 1, err), -1);
    assert_int_equal(qfile_mark_done(fd, (off_t) after->len + 10, err), -1);
    slurp(path, before);
    assert_memory_equal(after->data, before->data, before->len);
    close(fd);
    qenv_free(&env);
    assert_int_equal(qenv_read(path, &env, err), 0);
    assert_false(env->rcpts[0].done);
    assert_true(env->rcpts[1].done);
    assert_true(env->rcpts[2].done);
    assert_string_equal(env->rcpts[1].address, "carol@example.org");
    qenv_free(&env);
    /* A read-only descriptor: an error, not a crash. */
    fd = open(path, O_RDONLY);
    assert_int_equal(qenv_read(path, &env, err), 0);
    assert_int_equal(qfile_mark_done(fd, env->rcpts[0].offset, err), -1);
    close(fd);
    qenv_free(&env);
    strbuf_free(&err);
    strbuf_free(&before);
    strbuf_free(&after);
}

static void test_abort_and_failures(void **state)
{
    STRBUF *err = strbuf_alloc(64);
    STRBUF *path = strbuf_alloc(64);
    STRBUF *text = strbuf_alloc(64);
    int incoming = dir_count("incoming");
    QFILE *q;
    QFILE *many[40];

    (void) state;
    /* Abort: nothing left anywhere. */
    q = qfile_create(err);
    assert_non_null(q);
    rec_puts(qfile_stream(q), QREC_SENDER, "x@example.com");
    assert_int_equal(dir_count("tmp"), 1);
    qfile_abort(&q);
    assert_null(q);
    qfile_abort(&q);
    assert_int_equal(dir_count("tmp"), 0);

    /* A missing destination: an error, nothing left behind. */
    q = qfile_create(err);
    assert_non_null(q);
    rec_puts(qfile_stream(q), QREC_SENDER, "x@example.com");
    strbuf_reset(err);
    assert_int_equal(qfile_commit(&q, "nonexistent", err), -1);
    assert_null(q);
    assert_non_null(strstr(err->data, "nonexistent"));
    assert_int_equal(dir_count("tmp"), 0);
    assert_int_equal(dir_count("incoming"), incoming);

    /* The rename never replaces an existing file. */
    q = qfile_create(err);
    assert_non_null(q);
    strbuf_printf(path, "incoming/%s", qfile_id(q));
    spew(path->data, "precious", 8);
    strbuf_reset(err);
    assert_int_equal(qfile_commit(&q, "incoming", err), -1);
    assert_string_not_equal(err->data, "");
    slurp(path->data, text);
    assert_string_equal(text->data, "precious");
    assert_int_equal(dir_count("tmp"), 0);
    assert_int_equal(unlink(path->data), 0);

    /* IDs of files that exist at once differ (inode), same microsecond
     * or not. */
    for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++) {
        many[i] = qfile_create(err);
        assert_non_null(many[i]);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(qfile_id(many[i]), qfile_id(many[j]));
    }
    for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++)
        qfile_abort(&many[i]);
    assert_int_equal(dir_count("tmp"), 0);

    /* No tmp/: qfile_create fails cleanly. */
    assert_int_equal(mkdir("notmp", 0700), 0);
    assert_int_equal(chdir("notmp"), 0);
    strbuf_reset(err);
    assert_null(qfile_create(err));
    assert_non_null(strstr(err->data, "tmp/"));
    assert_int_equal(chdir(queue_dir), 0);
    assert_int_equal(rmdir("notmp"), 0);
    strbuf_free(&err);
    strbuf_free(&path);
    strbuf_free(&text);
}

/* Is the file rejected by the envelope or the content reader? */
static int file_rejected(int fd, STRBUF *err)
{
    STRBUF *content = strbuf_alloc(64);
    QENV *env = NULL;
    int rc;

    strbuf_reset(err);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    if (qenv_read_fd(fd, "TESTID", &env, err) < 0) {
        assert_null(env);
        rc = 1;
    } else {
        rc = qfile_read_content(fd, env, collect, content, err) < 0;
        qenv_free(&env);
    }
    if (rc && err->len == 0)
        fail_msg("rejected without a reason");
    strbuf_free(&content);
    return rc;
}

static void test_truncated(void **state)
{
    STRBUF *good = strbuf_alloc(1024);
    STRBUF *err = strbuf_alloc(64);
    const char *path;
    int fd;

    (void) state;
    path = write_good(0, 0);
    slurp(path, good);
    fd = open("corrupt/truncated", O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, good->data, good->len), (ssize_t) good->len);
    assert_false(file_rejected(fd, err));
    for (size_t n = good->len; n-- > 0;) {
        assert_int_equal(ftruncate(fd, (off_t) n), 0);
        if (!file_rejected(fd, err))
            fail_msg("truncated at %zu of %zu: accepted", n, good->len);
        assert_non_null(strstr(err->data, "TESTID"));
    }
    close(fd);
    strbuf_free(&good);
    strbuf_free(&err);
}

/*
 * Build a file from records: a size record (text, or the right one if
 * NULL), the envelope bytes, and content records.
 */
static void build(STRBUF *out, const char *size, const STRBUF *envelope,
                  long offset_delta, int with_content)
{
    STRBUF *text = strbuf_alloc(SIZE_REC_LEN + 1);
    long offset = SIZE_REC_LEN + 2 + (long) envelope->len;

    strbuf_printf(text, "%15ld %15ld %15ld %15ld", 5L, offset + offset_delta,
                  1L, 0L);
    assert_int_equal(text->len, SIZE_REC_LEN);
    if (size)
        strbuf_set(text, size);
    strbuf_reset(out);
    rec_encode(out, QREC_SIZE, text->data, text->len);
    strbuf_free(&text);
    strbuf_append(out, envelope->data, envelope->len);
    if (with_content) {
        rec_encode(out, QREC_CONTENT, "", 0);
        rec_encode(out, QREC_DATA, "body\n", 5);
        rec_encode(out, QREC_CONTENT_END, "", 0);
        rec_encode(out, QREC_END, "", 0);
    }
}

/* A standard envelope, with extra bytes before the recipient. */
static void envelope(STRBUF *out, const void *extra, size_t len)
{
    strbuf_reset(out);
    rec_encode(out, QREC_TIME, "1700000000 5", 12);
    rec_encode(out, QREC_SENDER, "a@example.com", 13);
    strbuf_append(out, extra, len);
    rec_encode(out, QREC_RCPT, "b@example.com", 13);
}

static void expect_corrupt(const STRBUF *file, const char *reason)
{
    STRBUF *err = strbuf_alloc(64);
    int fd = open("corrupt/file", O_RDWR | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, file->data, file->len), (ssize_t) file->len);
    if (!file_rejected(fd, err))
        fail_msg("corrupt file accepted (expected \"%s\")",
                 reason ? reason : "an error");
    if (reason && strstr(err->data, reason) == NULL)
        fail_msg("\"%s\", expected \"%s\"", err->data, reason);
    close(fd);
    strbuf_free(&err);
}

static void test_corrupt(void **state)
{
    STRBUF *env = strbuf_alloc(256);
    STRBUF *file = strbuf_alloc(256);
    STRBUF *rec = strbuf_alloc(256);
    STRBUF *err = strbuf_alloc(64);
    QENV *qenv = NULL;
    int fd;

    (void) state;
    /* The builder makes good files. */
    envelope(env, "", 0);
    build(file, NULL, env, 0, 1);
    spew("corrupt/file", file->data, file->len);
    if (qenv_read("corrupt/file", &qenv, err) < 0)
        fail_msg("good file: %s", err->data);
    assert_int_equal(qenv->arrival_sec, 1700000000);
    assert_int_equal(qenv->nrcpt, 1);
    qenv_free(&qenv);

    /* Size records. */
    build(file, "abc", env, 0, 1);
    expect_corrupt(file, "bad size record");
    build(file, "1 2 3", env, 0, 1);
    expect_corrupt(file, "bad size record");
    build(file, "1 2 3 4 5", env, 0, 1);
    expect_corrupt(file, "bad size record");
    build(file, "-1 2 3 4", env, 0, 1);
    expect_corrupt(file, "bad size record");
    build(file, "", env, 0, 1);
    expect_corrupt(file, "bad size record");
    /* A second size record. */
    strbuf_reset(rec);
    rec_encode(rec, QREC_SIZE, "0 0 0 0", 7);
    envelope(env, rec->data, rec->len);
    build(file, NULL, env, 0, 1);
    expect_corrupt(file, "bad size record");
    /* No size record at all. */
    envelope(env, "", 0);
    strbuf_reset(file);
    strbuf_append(file, env->data, env->len);
    rec_encode(file, QREC_CONTENT, "", 0);
    expect_corrupt(file, "content before envelope");
    /* The content offset does not point at the content record. */
    build(file, NULL, env, 1, 1);
    expect_corrupt(file, "content offset mismatch");
    build(file, NULL, env, -1, 1);
    expect_corrupt(file, "content offset mismatch");
    /* No sender. */
    strbuf_reset(env);
    rec_encode(env, QREC_RCPT, "b@example.com", 13);
    build(file, NULL, env, 0, 1);
    expect_corrupt(file, "content before envelope");
    /* Unknown record types, in the envelope and the content. */
    {
        static const int types[] = {'Z', 0, 0xff, QREC_END,
                                    QREC_CONTENT_END, QREC_DATA};

        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            strbuf_reset(rec);
            rec_encode(rec, types[i], "x", 1);
            envelope(env, rec->data, rec->len);
            build(file, NULL, env, 0, 1);
            expect_corrupt(file, "unknown record type");
        }
    }
    /* NUL bytes in envelope records. */
    strbuf_reset(rec);
    rec_encode(rec, QREC_ATTR, "a=b\0c", 5);
    envelope(env, rec->data, rec->len);
    build(file, NULL, env, 0, 1);
    expect_corrupt(file, "NUL byte in envelope");
    strbuf_reset(rec);
    rec_encode(rec, QREC_RCPT, "\0", 1);
    envelope(env, rec->data, rec->len);
    build(file, NULL, env, 0, 1);
    expect_corrupt(file, "NUL byte in envelope");
    /* Malformed attribute, notify and time records. */
    strbuf_reset(rec);
    rec_encode(rec, QREC_ATTR, "novalue", 7);
    envelope(env, rec->data, rec->len);
    build(file, NULL, env, 0, 1);
    expect_corrupt(file, "bad attribute record");
    {
        static const char *const bad[] = {"16", "-1", "x", "", "1 2"};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            strbuf_reset(rec);
            rec_encode(rec, QREC_DSN_NOTIFY, bad[i], strlen(bad[i]));
            envelope(env, rec->data, rec->len);
            build(file, NULL, env, 0, 1);
            expect_corrupt(file, "bad notify record");
        }
    }
    strbuf_reset(rec);
    rec_encode(rec, QREC_TIME, "1700000000", 10);
    envelope(env, rec->data, rec->len);
    build(file, NULL, env, 0, 1);
    expect_corrupt(file, "bad time record");
    /* An envelope record over the limit, and a bad varint. */
    strbuf_reset(rec);
    strbuf_append(rec, "S\x80\x80\x80\x01", 5);     /* 2 MB */
    envelope(env, rec->data, rec->len);
    build(file, NULL, env, 0, 1);
    expect_corrupt(file, "exceeds the limit");
    strbuf_reset(rec);
    strbuf_append(rec, "S\x80\x80\x80\x80\x80\x01", 7);
    envelope(env, rec->data, rec->len);
    build(file, NULL, env, 0, 1);
    expect_corrupt(file, "bad record length");
    /* No content record: the file just ends. */
    envelope(env, "", 0);
    build(file, NULL, env, 0, 0);
    expect_corrupt(file, "no content record");

    /* Content: a stray record, no end, no end of file record. */
    envelope(env, "", 0);
    build(file, NULL, env, 0, 0);
    rec_encode(file, QREC_CONTENT, "", 0);
    rec_encode(file, QREC_DATA, "x\n", 2);
    rec_encode(file, QREC_RCPT, "x", 1);
    rec_encode(file, QREC_CONTENT_END, "", 0);
    rec_encode(file, QREC_END, "", 0);
    expect_corrupt(file, "unexpected record in content");
    build(file, NULL, env, 0, 0);
    rec_encode(file, QREC_CONTENT, "", 0);
    rec_encode(file, QREC_DATA, "x\n", 2);
    expect_corrupt(file, "content not terminated");
    build(file, NULL, env, 0, 0);
    rec_encode(file, QREC_CONTENT, "", 0);
    rec_encode(file, QREC_CONTENT_END, "", 0);
    expect_corrupt(file, "no end record");
    build(file, NULL, env, 0, 0);
    rec_encode(file, QREC_CONTENT, "", 0);
    rec_encode(file, QREC_CONTENT_END, "", 0);
    rec_encode(file, QREC_DATA, "x\n", 2);
    expect_corrupt(file, "unexpected record after content");
    build(file, NULL, env, 0, 0);
    rec_encode(file, QREC_CONTENT, "", 0);
    rec_encode(file, QREC_CONTENT_END, "", 0);
    rec_encode(file, QREC_END, "x", 1);
    expect_corrupt(file, NULL);
    /* Empty content is fine. */
    build(file, NULL, env, 0, 0);
    rec_encode(file, QREC_CONTENT, "", 0);
    rec_encode(file, QREC_CONTENT_END, "", 0);
    rec_encode(file, QREC_END, "", 0);
    fd = open("corrupt/file", O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(write(fd, file->data, file->len), (ssize_t) file->len);
    assert_false(file_rejected(fd, err));
    close(fd);
    /* A content offset that qenv_read did not check (the caller's own
     * QENV): no content record there. */
    spew("corrupt/file", file->data, file->len);
    assert_int_equal(qenv_read("corrupt/file", &qenv, err), 0);
    qenv->content_offset = qenv->rcpts[0].offset;
    fd = open("corrupt/file", O_RDONLY);
    strbuf_reset(err);
    assert_int_equal(qfile_read_content(fd, qenv, collect, rec, err), -1);
    assert_non_null(strstr(err->data, "no content record"));
    qenv->content_offset = 100000;
    assert_int_equal(qfile_read_content(fd, qenv, collect, rec, err), -1);
    close(fd);
    qenv_free(&qenv);
    /* Empty file. */
    spew("corrupt/file", "", 0);
    assert_int_equal(qenv_read("corrupt/file", &qenv, err), -1);
    assert_null(qenv);
    strbuf_free(&env);
    strbuf_free(&file);
    strbuf_free(&rec);
    strbuf_free(&err);
}

/* --- records ----------------------------------------------------------- */

static void test_record_varint(void **state)
{
    static const struct {
        size_t  len;
        const char *hdr;
        size_t  hdr_len;
    } cases[] = {
        {0, "\x42\x00", 2},
        {1, "\x42\x01", 2},
        {127, "\x42\x7f", 2},
        {128, "\x42\x80\x01", 3},
        {300, "\x42\xac\x02", 3},
        {16383, "\x42\xff\x7f", 3},
        {16384, "\x42\x80\x80\x01", 4},
        {2097151, "\x42\xff\xff\x7f", 4},
        {2097152, "\x42\x80\x80\x80\x01", 5},
    };
    STRBUF *buf = strbuf_alloc(64);
    STRBUF *data = strbuf_alloc(64);
    STRBUF *err = strbuf_alloc(64);
    char *payload = malloc(2097152);

    (void) state;
    assert_non_null(payload);
    for (size_t i = 0; i < 2097152; i++)
        payload[i] = (char) (i * 7 + 3);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = cases[i].len;
        size_t pos = 0;
        const char *rdata;
        size_t rlen;
        int type;
        char *exact;

        strbuf_reset(buf);
        rec_encode(buf, 'B', payload, len);
        assert_int_equal(buf->len, cases[i].hdr_len + len);
        assert_memory_equal(buf->data, cases[i].hdr, cases[i].hdr_len);

        /* Decode from an exact heap copy. */
        exact = malloc(buf->len);
        assert_non_null(exact);
        memcpy(exact, buf->data, buf->len);
        assert_int_equal(rec_decode(exact, buf->len, &pos, &type, &rdata,
                                    &rlen, len, err), 1);
        assert_int_equal(type, 'B');
        assert_int_equal(rlen, len);
        assert_int_equal(pos, buf->len);
        assert_ptr_equal(rdata, exact + cases[i].hdr_len);
        assert_memory_equal(rdata, payload, len);
        assert_int_equal(rec_decode(exact, buf->len, &pos, &type, &rdata,
                                    &rlen, len, err), 0);
        /* One byte over the limit. */
        if (len > 0) {
            pos = 0;
            strbuf_reset(err);
            assert_int_equal(rec_decode(exact, buf->len, &pos, &type,
                                        &rdata, &rlen, len - 1, err), -1);
            assert_string_not_equal(err->data, "");
            assert_int_equal(pos, 0);
        }
        /* Every truncation. */
        for (size_t n = 0; n < buf->len; n += n < 8 ? 1 : 4093) {
            pos = 0;
            assert_int_equal(rec_decode(exact, n, &pos, &type, &rdata,
                                        &rlen, REC_LEN_MAX, err),
                             n == 0 ? 0 : -1);
        }
        free(exact);

        /* rec_put writes the same bytes; rec_get reads them back. */
        {
            int fd = open("corrupt/rec", O_RDWR | O_CREAT | O_TRUNC, 0600);
            STREAM *s;

            assert_true(fd >= 0);
            s = stream_open(fd, 0, 4096);
            rec_put(s, 'B', payload, len);
            assert_int_equal(stream_flush(s), 0);
            stream_free(&s);
            slurp("corrupt/rec", data);
            assert_int_equal(data->len, buf->len);
            assert_memory_equal(data->data, buf->data, buf->len);
            assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
            s = stream_open(fd, 0, 4096);
            assert_int_equal(rec_get(s, &type, data, len, err), 1);
            assert_int_equal(type, 'B');
            assert_int_equal(data->len, len);
            assert_memory_equal(data->data, payload, len);
            assert_int_equal(rec_get(s, &type, data, len, err), 0);
            stream_free(&s);
            if (len > 0) {
                assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
                s = stream_open(fd, 0, 4096);
                strbuf_reset(err);
                assert_int_equal(rec_get(s, &type, data, len - 1, err), -1);
                assert_non_null(strstr(err->data, "exceeds the limit"));
                stream_free(&s);
            }
            close(fd);
        }
    }
    free(payload);
    strbuf_free(&buf);
    strbuf_free(&data);
    strbuf_free(&err);
}

static void test_record_malformed(void **state)
{
    static const struct {
        const char *bytes;
        size_t  len;
        int     rc;
        const char *why;
    } cases[] = {
        {"", 0, 0, ""},
        {"S", 1, -1, "truncated record header"},        /* no length */
        {"S\x80", 2, -1, "truncated record header"},
        {"S\x05" "abc", 5, -1, "truncated record"},     /* short data */
        {"S\xff\xff\xff\xff\x0f", 6, -1, ""},           /* 4 GB */
        {"S\x80\x80\x80\x80\x80\x01", 7, -1, "bad record length"},
        {"S\x81\x80\x80\x80\x00" "x", 7, 1, ""},        /* 5 bytes: 1 */
        {"\xff\x00", 2, 1, ""},                         /* any type */
        {"\x00\x00", 2, 1, ""},
    };
    STRBUF *err = strbuf_alloc(64);
    STRBUF *data = strbuf_alloc(64);

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *exact = malloc(cases[i].len + 1);
        size_t pos = 0;
        const char *rdata;
        size_t rlen;
        int type = -1;
        int fd;
        STREAM *s;

        assert_non_null(exact);
        memcpy(exact, cases[i].bytes, cases[i].len);
        strbuf_reset(err);
        if (rec_decode(exact, cases[i].len, &pos, &type, &rdata, &rlen,
                       REC_LEN_MAX, err) != cases[i].rc)
            fail_msg("rec_decode case %zu", i);
        if (cases[i].rc < 0)
            assert_string_not_equal(err->data, "");
        assert_non_null(strstr(err->data, cases[i].why));
        if (cases[i].rc > 0)
            assert_int_equal(type, (unsigned char) cases[i].bytes[0]);
        free(exact);

        spew("corrupt/rec", cases[i].bytes, cases[i].len);
        fd = open("corrupt/rec", O_RDONLY);
        s = stream_open(fd, 0, 4096);
        strbuf_reset(err);
        if (rec_get(s, &type, data, REC_LEN_MAX, err) != cases[i].rc)
            fail_msg("rec_get case %zu", i);
        if (cases[i].rc < 0)
            assert_string_not_equal(err->data, "");
        assert_non_null(strstr(err->data, cases[i].why));
        stream_free(&s);
        close(fd);
    }
    strbuf_free(&err);
    strbuf_free(&data);
}

static void test_record_sequence(void **state)
{
    STRBUF *buf = strbuf_alloc(64);
    STRBUF *err = strbuf_alloc(64);
    size_t pos = 0;
    const char *rdata;
    size_t rlen;
    int type;
    int fd;
    STREAM *s;

    (void) state;
    fd = open("corrupt/seq", O_RDWR | O_CREAT | O_TRUNC, 0600);
    s = stream_open(fd, 0, 4096);
    rec_puts(s, 'S', "sender");
    rec_fprintf(s, 'A', "%s=%d", "n", 42);
    rec_put(s, 'M', "", 0);
    assert_int_equal(stream_flush(s), 0);
    stream_free(&s);
    close(fd);
    slurp("corrupt/seq", buf);
    assert_int_equal(rec_decode(buf->data, buf->len, &pos, &type, &rdata,
                                &rlen, 100, err), 1);
    assert_int_equal(type, 'S');
    assert_int_equal(rlen, 6);
    assert_memory_equal(rdata, "sender", 6);
    assert_int_equal(rec_decode(buf->data, buf->len, &pos, &type, &rdata,
                                &rlen, 100, err), 1);
    assert_int_equal(type, 'A');
    assert_int_equal(rlen, 4);
    assert_memory_equal(rdata, "n=42", 4);
    assert_int_equal(rec_decode(buf->data, buf->len, &pos, &type, &rdata,
                                &rlen, 100, err), 1);
    assert_int_equal(type, 'M');
    assert_int_equal(rlen, 0);
    assert_int_equal(pos, buf->len);
    assert_int_equal(rec_decode(buf->data, buf->len, &pos, &type, &rdata,
                                &rlen, 100, err), 0);
    strbuf_free(&buf);
    strbuf_free(&err);
}

/* --- queue IDs ---------------------------------------------------------- */

static const char id_digits[] =
    "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";

static void test_queue_id_make(void **state)
{
    STRBUF *id = strbuf_alloc(QUEUE_ID_MAX + 1);

    (void) state;
    assert_int_equal(strlen(id_digits), 52);
    queue_id_make(id, 0, 0, 0);
    assert_string_equal(id->data, "0000000000z0");
    queue_id_make(id, 1, 2, 3);
    assert_string_equal(id->data, "0000010002z3");
    /* Time digits may be "z" (base 52); the separator is the last "z". */
    queue_id_make(id, 51, 51, 50);
    assert_string_equal(id->data, "00000z000zzy");
    assert_true(queue_id_valid(id->data));
    assert_int_equal(queue_id_time(id->data), 51);
    queue_id_make(id, 19770609663L, 7311615, 0);        /* 52^6-1, 52^4-1 */
    assert_string_equal(id->data, "zzzzzzzzzzz0");
    assert_true(queue_id_valid(id->data));
    assert_int_equal(queue_id_time(id->data), 19770609663L);
    queue_id_make(id, 52, 52, 51);
    assert_string_equal(id->data, "0000100010z10");
    queue_id_make(id, 1700000000, 999999, 123456789);
    assert_int_equal(strchr(id->data, 'z') - id->data, 10);
    assert_true(queue_id_valid(id->data));
    assert_int_equal(queue_id_time(id->data), 1700000000);
    /* The largest inode: base 51, still short enough. */
    queue_id_make(id, 1700000000, 999999, (ino_t) -1);
    assert_true(id->len <= QUEUE_ID_MAX);
    assert_true(queue_id_valid(id->data));
    assert_null(strchr(strchr(id->data, 'z') + 1, 'z'));
    /* The inode part never contains "z"; every digit is in the alphabet. */
    for (unsigned long long ino = 0; ino < 200000;
         ino += ino < 3000 ? 1 : 97) {
        queue_id_make(id, 1700000000, 0, (ino_t) ino);
        assert_int_equal(strcspn(id->data, "z"), 10);
        assert_null(strchr(id->data + 11, 'z'));
        assert_int_equal(strspn(id->data, id_digits), id->len);
        assert_true(queue_id_valid(id->data));
    }
    /* Every ID made is valid and gives its time back, also when the
     * time digits contain "z". */
    for (long t = 1700000000; t < 1700000000 + 3000; t++) {
        queue_id_make(id, t, (t * 7919) % 1000000, (ino_t) t);
        assert_int_equal(id->data[10], 'z');
        assert_null(strchr(id->data + 11, 'z'));
        if (!queue_id_valid(id->data))
            fail_msg("made %s, not valid", id->data);
        assert_int_equal(queue_id_time(id->data), t);
    }
    /* The buffer is replaced. */
    strbuf_set(id, "junk");
    queue_id_make(id, 0, 0, 0);
    assert_string_equal(id->data, "0000000000z0");
    strbuf_free(&id);
}

static void test_queue_id_sort(void **state)
{
    static const long times[][2] = {
        {0, 0}, {0, 1}, {0, 51}, {0, 52}, {0, 999999}, {1, 0}, {51, 0},
        {52, 0}, {1699999999, 999999}, {1700000000, 0}, {1700000000, 1},
        {1700000000, 2703}, {1700000000, 2704}, {1700000001, 0},
        {19770609663L, 999999},                 /* 52^6 - 1 */
    };
    STRBUF *a = strbuf_alloc(32);
    STRBUF *b = strbuf_alloc(32);
    size_t n = sizeof(times) / sizeof(times[0]);

    (void) state;
    for (size_t i = 0; i < n; i++) {
        queue_id_make(a, times[i][0], times[i][1], 999999);
        assert_int_equal(queue_id_time(a->data), times[i][0]);
        assert_int_equal(strlen(a->data) > 11 && a->data[10] == 'z', 1);
        for (size_t j = i + 1; j < n; j++) {
            /* Later arrival sorts later, whatever the inodes. */
            queue_id_make(b, times[j][0], times[j][1], 0);
            if (strcmp(a->data, b->data) >= 0)
                fail_msg("%s !< %s", a->data, b->data);
        }
    }
    strbuf_free(&a);
    strbuf_free(&b);
}

static void test_queue_id_valid(void **state)
{
    static const char *const bad[] = {
        "", "z", "0000000000z", "000000000z0", "000000000z12", "0000000000",
        "0000000000zz", "00000000zz12",
        "0000010002z3z", "0000010002z3a", "A000010002z3", "0000010002z3 ",
        " 0000010002z3", "0000010002z3/", "../../etc/passwd",
        "0000010002z3\n", "00000100e2z3", "0000010002z-3", "0000010002Z3",
        "0000010002z1234567890123456789012",      /* 33 bytes */
        "0000010002z3\xc3\xa9", ".", "..",
    };

    (void) state;
    assert_true(queue_id_valid("0000010002z3"));
    assert_true(queue_id_valid("4jbDdq6GYFz1bcV8"));
    assert_true(queue_id_valid("0000010002z123456789012345678901"));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (queue_id_valid(bad[i]))
            fail_msg("\"%s\" accepted", bad[i]);
        assert_int_equal(queue_id_time(bad[i]), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read),
        cmocka_unit_test(test_big_and_flags),
        cmocka_unit_test(test_mark_done),
        cmocka_unit_test(test_abort_and_failures),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_record_varint),
        cmocka_unit_test(test_record_malformed),
        cmocka_unit_test(test_record_sequence),
        cmocka_unit_test(test_queue_id_make),
        cmocka_unit_test(test_queue_id_sort),
        cmocka_unit_test(test_queue_id_valid),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
