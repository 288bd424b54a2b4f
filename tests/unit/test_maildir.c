/*
 * test_maildir - the mail store: Maildir delivery (the exact bytes in
 * new/ under a Maildir-spec name with S=, missing directories created,
 * nothing left in tmp/ after success or failure, unique names with five
 * concurrent writers, the size limit, source errors, a read-only
 * directory as an ordinary user, bad paths, the host name escaped) and
 * mbox append (From_ line, ">From " quoting across chunk boundaries, the
 * final newline and blank line, the size limit and truncation back to
 * the old size, fcntl and dotlock locking, stale locks, symbolic links,
 * FIFOs, hard links, ownership).
 *
 * Root ignores file modes, so permission cases run in a child that
 * becomes "nobody" when the tests run as root.
 */
#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <regex.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "mail/maildir.h"
#include "util/argv.h"
#include "util/xmalloc.h"

/* --- helpers ---------------------------------------------------------- */

/* A content source: data in chunks of 'chunk' bytes; fail_at: -1 never. */
typedef struct SRC {
    const char *data;
    size_t  len;
    size_t  chunk;
    long    fail_at;                    /* fail before this offset */
} SRC;

static int src_read(void *ctx, MAILDIR_PUT_FN put, void *put_ctx,
                    STRBUF *err)
{
    SRC *src = ctx;

    for (size_t off = 0; off < src->len; off += src->chunk) {
        size_t n = src->len - off < src->chunk ? src->len - off : src->chunk;

        if (src->fail_at >= 0 && (long) off >= src->fail_at) {
            strbuf_set(err, "queue file truncated");
            return -1;
        }
        if (put(src->data + off, n, put_ctx) < 0)
            return -1;
    }
    return 0;
}

static void msg_init_src(MAILDIR_MSG *msg, SRC *src, const char *data,
                         size_t chunk)
{
    memset(msg, 0, sizeof(*msg));
    memset(src, 0, sizeof(*src));
    src->data = data;
    src->len = strlen(data);
    src->chunk = chunk;
    src->fail_at = -1;
    msg->sender = "alice@example.org";
    msg->prepend = "Return-Path: <alice@example.org>\n"
        "Delivered-To: bob@example.test\n";
    msg->source = src_read;
    msg->source_ctx = src;
}

static const char *tmp_path(const char *fmt, ...)
        __attribute__((format(printf, 1, 2)));

/*
 * Paths live until the end, in one list, so that they stay reachable in
 * forked children (valgrind checks each child's leaks at its exit).
 */
static ARGV *tmp_paths;
static MAILDIR_STATUS *keep_st;        /* the same, for a status */

/* unit_tmpdir()/NAME. */
static const char *tmp_path(const char *fmt, ...)
{
    STRBUF *buf = strbuf_alloc(128);
    va_list ap;

    if (tmp_paths == NULL)
        tmp_paths = argv_alloc(16);
    strbuf_printf(buf, "%s/", unit_tmpdir());
    va_start(ap, fmt);
    strbuf_vprintf_append(buf, fmt, ap);
    va_end(ap);
    argv_add(tmp_paths, buf->data);
    strbuf_free(&buf);
    return tmp_paths->argv[tmp_paths->argc - 1];
}

static STRBUF *read_file(const char *path)
{
    STRBUF *buf = strbuf_alloc(256);
    char chunk[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        strbuf_append(buf, chunk, (size_t) n);
    close(fd);
    return buf;
}

/* The names in dir (not . and ..), sorted. */
static ARGV *list_dir(const char *dir)
{
    ARGV *names = argv_alloc(8);
    DIR *dp = opendir(dir);
    struct dirent *de;

    assert_non_null(dp);
    while ((de = readdir(dp)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            argv_add(names, de->d_name);
    closedir(dp);
    argv_sort(names);
    return names;
}

static size_t count_dir(const char *fmt, const char *dir)
{
    const char *path = tmp_path(fmt, dir);
    ARGV *names = list_dir(path);
    size_t n = names->argc;

    argv_free(&names);
    return n;
}

static int file_mode(const char *path)
{
    struct stat sb;

    assert_int_equal(stat(path, &sb), 0);
    return (int) (sb.st_mode & 07777);
}

/*
 * Run fn(arg) in a child as "nobody" when we are root (root ignores
 * modes), as ourselves otherwise; the child's exit status says which
 * check failed.  paths are handed to nobody first.
 */
static int as_nobody(void (*fn)(const void *), const void *arg)
{
    struct passwd *pw = getpwnam("nobody");
    pid_t pid;
    int status;

    assert_non_null(pw);
    fflush(stdout);
    if ((pid = fork()) == 0) {
        if (geteuid() == 0) {
            gid_t gid = pw->pw_gid;

            if (setgroups(1, &gid) < 0 || setgid(pw->pw_gid) < 0
                || setuid(pw->pw_uid) < 0)
                _exit(100);
        }
        fn(arg);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Give path (a file or directory) to nobody, when root. */
static void give_to_nobody(const char *path)
{
    struct passwd *pw = getpwnam("nobody");

    if (geteuid() == 0)
        assert_int_equal(chown(path, pw->pw_uid, pw->pw_gid), 0);
}

static const char *content1 =
    "From: alice@example.org\nTo: bob@example.test\nSubject: test\n\n"
    "Hello.\nFrom here on, a line that starts with From.\n"
    ">From already quoted\n.\n..\nlast line\n";

/* --- Maildir ---------------------------------------------------------- */

static void check_delivered(const char *dir, const MAILDIR_STATUS *st,
                            const char *want)
{
    const char *newdir = tmp_path("%s/new", dir);
    STRBUF *got = read_file(st->path->data);
    STRBUF *pattern = strbuf_alloc(128);
    const char *slash = strrchr(st->path->data, '/');
    regex_t re;

    assert_int_equal(st->code, MAILDIR_OK);
    assert_string_equal(st->dsn, "2.0.0");
    assert_int_equal(strncmp(st->path->data, newdir, strlen(newdir)), 0);
    assert_int_equal(got->len, strlen(want));
    assert_memory_equal(got->data, want, got->len);
    strbuf_printf(pattern, "^[0-9]+\\.M[0-9]+P%ldQ[0-9]+\\.[^/:,]+,S=%zu$",
                  (long) getpid(), strlen(want));
    assert_int_equal(regcomp(&re, pattern->data, REG_EXTENDED | REG_NOSUB),
                     0);
    if (regexec(&re, slash + 1, 0, NULL, 0) != 0)
        fail_msg("bad maildir file name %s", slash + 1);
    regfree(&re);
    assert_int_equal(file_mode(st->path->data), 0600);
    strbuf_free(&got);
    strbuf_free(&pattern);
}

static void test_maildir_deliver(void **state)
{
    MAILDIR_STATUS *st = maildir_status_alloc();
    MAILDIR_MSG msg;
    SRC src;
    STRBUF *want = strbuf_alloc(256);
    const char *dir = tmp_path("home/bob/Maildir/");
    const char *path;

    (void) state;
    msg_init_src(&msg, &src, content1, 4096);
    /* The maildir and its parents are missing. */
    assert_int_equal(maildir_deliver(dir, &msg, st), MAILDIR_OK);
    strbuf_printf(want, "%s%s", msg.prepend, content1);
    check_delivered("home/bob/Maildir", st, want->data);
    assert_int_equal(count_dir("%s", "home/bob/Maildir/tmp"), 0);
    assert_int_equal(count_dir("%s", "home/bob/Maildir/cur"), 0);
    path = tmp_path("home/bob/Maildir/cur");
    assert_int_equal(file_mode(path), 0700);
    path = tmp_path("home/bob");
    assert_int_equal(file_mode(path), 0700);

    /* One byte at a time: the same bytes; no trailing slash needed. */
    dir = tmp_path("home/bob/Maildir");
    src.chunk = 1;
    assert_int_equal(maildir_deliver(dir, &msg, st), MAILDIR_OK);
    check_delivered("home/bob/Maildir", st, want->data);
    assert_int_equal(count_dir("%s", "home/bob/Maildir/new"), 2);

    /* No newline at the end: one is added.  Empty content. */
    msg_init_src(&msg, &src, "Subject: x\n\nno newline", 7);
    msg.prepend = NULL;
    assert_int_equal(maildir_deliver(dir, &msg, st), MAILDIR_OK);
    check_delivered("home/bob/Maildir", st, "Subject: x\n\nno newline\n");
    msg_init_src(&msg, &src, "", 7);
    assert_int_equal(maildir_deliver(dir, &msg, st), MAILDIR_OK);
    check_delivered("home/bob/Maildir", st, msg.prepend);
    assert_int_equal(count_dir("%s", "home/bob/Maildir/tmp"), 0);

    /* Exactly at the size limit is fine. */
    msg_init_src(&msg, &src, content1, 100);
    msg.size_limit = (off_t) want->len;
    assert_int_equal(maildir_deliver(dir, &msg, st), MAILDIR_OK);
    check_delivered("home/bob/Maildir", st, want->data);
    strbuf_free(&want);
    maildir_status_free(&st);
    assert_null(st);
}

static void test_maildir_failures(void **state)
{
    MAILDIR_STATUS *st = maildir_status_alloc();
    MAILDIR_MSG msg;
    SRC src;
    const char *dir = tmp_path("fail/Maildir");
    const char *under = tmp_path("fail/plain/Maildir/");
    STRBUF *big = strbuf_alloc(200000);

    (void) state;
    /* One byte over the limit: mailbox full, nothing left behind. */
    msg_init_src(&msg, &src, content1, 10);
    msg.size_limit = (off_t) (strlen(msg.prepend) + strlen(content1) - 1);
    assert_int_equal(maildir_deliver(dir, &msg, st), MAILDIR_TEMP);
    assert_string_equal(st->dsn, "4.2.2");
    assert_non_null(strstr(st->why->data, "mailbox full: size limit of"));
    assert_int_equal(st->path->len, 0);
    assert_int_equal(count_dir("%s", "fail/Maildir/tmp"), 0);
    assert_int_equal(count_dir("%s", "fail/Maildir/new"), 0);

    /* The limit is checked while writing, past the first flush. */
    for (int i = 0; i < 3000; i++)
        strbuf_cat(big, "0123456789012345678901234567890123456789012345678"
                   "9012345678901234567890123456789\n");
    msg_init_src(&msg, &src, big->data, 8192);
    msg.size_limit = 100000;
    assert_int_equal(maildir_deliver(dir, &msg, st), MAILDIR_TEMP);
    assert_string_equal(st->dsn, "4.2.2");
    assert_int_equal(count_dir("%s", "fail/Maildir/tmp"), 0);

    /* The source cannot read the queue file. */
    msg_init_src(&msg, &src, big->data, 8192);
    src.fail_at = 150000;
    assert_int_equal(maildir_deliver(dir, &msg, st), MAILDIR_TEMP);
    assert_string_equal(st->dsn, "4.3.0");
    assert_string_equal(st->why->data, "error reading message: queue file "
                        "truncated");
    assert_int_equal(count_dir("%s", "fail/Maildir/tmp"), 0);
    assert_int_equal(count_dir("%s", "fail/Maildir/new"), 0);

    /* A path through a regular file: permanent. */
    unit_write_file("fail/plain", "x");
    msg_init_src(&msg, &src, content1, 100);
    assert_int_equal(maildir_deliver(under, &msg, st), MAILDIR_PERM);
    assert_string_equal(st->dsn, "5.2.0");
    assert_non_null(strstr(st->why->data, "Not a directory"));
    assert_int_equal(maildir_deliver("", &msg, st), MAILDIR_PERM);
    assert_string_equal(st->why->data, "empty maildir path");
    strbuf_free(&big);
    maildir_status_free(&st);
}

/* Five processes deliver at once: every message lands once, intact. */
#define WRITERS     5
#define PER_WRITER  40

static void test_maildir_concurrent(void **state)
{
    const char *dir = tmp_path("conc/Maildir");
    pid_t pids[WRITERS];
    ARGV *names;
    const char *newdir;
    int seen[WRITERS][PER_WRITER];

    (void) state;
    memset(seen, 0, sizeof(seen));
    for (int w = 0; w < WRITERS; w++) {
        if ((pids[w] = fork()) == 0) {
            MAILDIR_STATUS *st = maildir_status_alloc();
            STRBUF *text = strbuf_alloc(64);
            MAILDIR_MSG msg;
            SRC src;
            int bad = 0;

            for (int i = 0; i < PER_WRITER; i++) {
                strbuf_printf(text, "Subject: %d/%d\n\nwriter %d message "
                              "%d\n", w, i, w, i);
                msg_init_src(&msg, &src, text->data, 5);
                if (maildir_deliver(dir, &msg, st) != MAILDIR_OK)
                    bad++;
            }
            strbuf_free(&text);
            maildir_status_free(&st);
            _exit(bad ? 1 : 0);
        }
    }
    for (int w = 0; w < WRITERS; w++) {
        int status;

        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        assert_int_equal(status, 0);
    }
    newdir = tmp_path("conc/Maildir/new");
    names = list_dir(newdir);
    assert_int_equal(names->argc, WRITERS * PER_WRITER);
    for (size_t i = 0; i < names->argc; i++) {
        const char *path = tmp_path("conc/Maildir/new/%s", names->argv[i]);
        STRBUF *got = read_file(path);
        int w, n;

        assert_int_equal(sscanf(strstr(got->data, "writer"),
                                "writer %d message %d", &w, &n), 2);
        assert_true(w >= 0 && w < WRITERS && n >= 0 && n < PER_WRITER);
        seen[w][n]++;
        strbuf_free(&got);
    }
    for (int w = 0; w < WRITERS; w++)
        for (int n = 0; n < PER_WRITER; n++)
            assert_int_equal(seen[w][n], 1);
    assert_int_equal(count_dir("%s", "conc/Maildir/tmp"), 0);
    argv_free(&names);
}

/* As an ordinary user: read-only tmp/, then read-only new/. */
static void readonly_child(const void *arg)
{
    const char *dir = arg;
    MAILDIR_STATUS *st = maildir_status_alloc();
    STRBUF *sub = strbuf_alloc(128);
    MAILDIR_MSG msg;
    SRC src;
    ARGV *left;

    msg_init_src(&msg, &src, content1, 100);
    if (maildir_make(dir, &msg, st) != MAILDIR_OK)
        _exit(1);
    strbuf_printf(sub, "%s/tmp", dir);
    if (chmod(sub->data, 0500) < 0)
        _exit(2);
    if (maildir_deliver(dir, &msg, st) != MAILDIR_TEMP
        || strcmp(st->dsn, "4.2.0") != 0
        || strstr(st->why->data, "Permission denied") == NULL)
        _exit(3);
    if (chmod(sub->data, 0700) < 0)
        _exit(4);
    strbuf_printf(sub, "%s/new", dir);
    if (chmod(sub->data, 0500) < 0)
        _exit(5);
    if (maildir_deliver(dir, &msg, st) != MAILDIR_TEMP
        || strcmp(st->dsn, "4.2.0") != 0)
        _exit(6);
    strbuf_printf(sub, "%s/tmp", dir);
    left = list_dir(sub->data);
    if (left->argc != 0)
        _exit(7);
    argv_free(&left);
    /* A parent directory we may not write: the maildir cannot be made. */
    strbuf_printf(sub, "%s/../locked", dir);
    if (mkdir(sub->data, 0500) < 0)
        _exit(8);
    strbuf_cat(sub, "/Maildir");
    if (maildir_deliver(sub->data, &msg, st) != MAILDIR_TEMP
        || strcmp(st->dsn, "4.2.0") != 0
        || strstr(st->why->data, "create directory") == NULL)
        _exit(9);
    strbuf_free(&sub);
    maildir_status_free(&st);
}

static void test_maildir_readonly(void **state)
{
    const char *top = tmp_path("ro");
    const char *dir = tmp_path("ro/Maildir");

    (void) state;
    assert_int_equal(chmod(unit_tmpdir(), 0711), 0);
    assert_int_equal(mkdir(top, 0700), 0);
    give_to_nobody(top);
    assert_int_equal(as_nobody(readonly_child, dir), 0);
}

/* The host name part: "/" ":" "," escaped (needs a UTS namespace). */
static void hostname_child(void *arg)
{
    static const char host[] = "a/b:c,d.example";
    STRBUF *name = strbuf_alloc(64);
    const char *dot;

    (void) arg;
    if (unshare(CLONE_NEWUTS) < 0 || sethostname(host, strlen(host)) < 0)
        _exit(77);
    maildir_unique_name(name);
    dot = strchr(name->data, '.');
    if (dot == NULL || (dot = strchr(dot + 1, '.')) == NULL
        || strcmp(dot + 1, "a\\057b\\072c\\054d.example") != 0)
        _exit(1);
    strbuf_free(&name);
}

static void test_maildir_unique_name(void **state)
{
    STRBUF *a = strbuf_alloc(64);
    STRBUF *b = strbuf_alloc(64);
    int status;

    (void) state;
    maildir_unique_name(a);
    maildir_unique_name(b);
    assert_string_not_equal(a->data, b->data);
    assert_null(strchr(a->data, '/'));
    assert_null(strchr(a->data, ':'));
    if (geteuid() == 0) {
        status = unit_fork(hostname_child, NULL, NULL);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 77)
            assert_int_equal(WEXITSTATUS(status), 0);
    }
    strbuf_free(&a);
    strbuf_free(&b);
}

/* --- mbox ------------------------------------------------------------- */

static const char *quoted1 =
    "From: alice@example.org\nTo: bob@example.test\nSubject: test\n\n"
    "Hello.\n>From here on, a line that starts with From.\n"
    ">From already quoted\n.\n..\nlast line\n";

/* Check "From SENDER  Www Mmm dd hh:mm:ss yyyy\n" + rest at data. */
static const char *check_from_line(const char *data, const char *sender)
{
    STRBUF *pattern = strbuf_alloc(128);
    const char *nl = strchr(data, '\n');
    char *line;
    regex_t re;

    assert_non_null(nl);
    line = xstrndup(data, (size_t) (nl - data));
    strbuf_printf(pattern, "^From %s  [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] "
                  "[0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}$", sender);
    assert_int_equal(regcomp(&re, pattern->data, REG_EXTENDED | REG_NOSUB),
                     0);
    if (regexec(&re, line, 0, NULL, 0) != 0)
        fail_msg("bad From_ line \"%s\"", line);
    regfree(&re);
    free(line);
    strbuf_free(&pattern);
    return nl + 1;
}

static void test_mbox_append(void **state)
{
    MAILDIR_STATUS *st = maildir_status_alloc();
    MAILDIR_MSG msg;
    SRC src;
    const char *path = tmp_path("mbox1");
    const char *lock = tmp_path("mbox1.lock");
    STRBUF *got;
    const char *cp;
    size_t first_len;

    (void) state;
    /* Every chunk size, down to one byte, quotes the same lines. */
    for (size_t chunk = 1; chunk <= 7; chunk += 3) {
        unlink(path);
        msg_init_src(&msg, &src, content1, chunk);
        msg.flags = MAILDIR_FLAG_DOTLOCK;
        assert_int_equal(maildir_mbox_append(path, &msg, st), MAILDIR_OK);
        assert_string_equal(st->dsn, "2.0.0");
        got = read_file(path);
        cp = check_from_line(got->data, "alice@example.org");
        assert_int_equal(strncmp(cp, msg.prepend, strlen(msg.prepend)), 0);
        cp += strlen(msg.prepend);
        assert_int_equal(strlen(cp), strlen(quoted1) + 1);
        assert_int_equal(strncmp(cp, quoted1, strlen(quoted1)), 0);
        assert_string_equal(cp + strlen(quoted1), "\n");
        strbuf_free(&got);
        assert_int_equal(access(lock, F_OK), -1);
        assert_int_equal(file_mode(path), 0600);
    }
    got = read_file(path);
    first_len = got->len;
    strbuf_free(&got);

    /* A second message after the first; the null sender; no final LF;
     * "From " split over chunks at the very end. */
    msg_init_src(&msg, &src, "Subject: 2\n\nbody\nFrom ", 3);
    msg.sender = "";
    msg.prepend = "Return-Path: <>\n";
    assert_int_equal(maildir_mbox_append(path, &msg, st), MAILDIR_OK);
    got = read_file(path);
    cp = check_from_line(got->data + first_len, "MAILER-DAEMON");
    assert_string_equal(cp, "Return-Path: <>\nSubject: 2\n\nbody\n>From \n\n");
    strbuf_free(&got);

    /* A sender that needs quoting. */
    unlink(path);
    msg_init_src(&msg, &src, "x\n", 3);
    msg.sender = "john doe@example.org";
    msg.prepend = NULL;
    assert_int_equal(maildir_mbox_append(path, &msg, st), MAILDIR_OK);
    got = read_file(path);
    cp = check_from_line(got->data, "\"john doe\"@example.org");
    assert_string_equal(cp, "x\n\n");
    strbuf_free(&got);
    maildir_status_free(&st);
}

static void test_mbox_truncate(void **state)
{
    MAILDIR_STATUS *st = maildir_status_alloc();
    MAILDIR_MSG msg;
    SRC src;
    const char *path = tmp_path("mbox2");
    STRBUF *before;
    STRBUF *after;
    STRBUF *big = strbuf_alloc(300000);

    (void) state;
    msg_init_src(&msg, &src, content1, 100);
    assert_int_equal(maildir_mbox_append(path, &msg, st), MAILDIR_OK);
    before = read_file(path);

    /* Over the limit (the whole file counts): back to the old size. */
    for (int i = 0; i < 3000; i++)
        strbuf_cat(big, "From 0123456789012345678901234567890123456789012345"
                   "67890123456789012345678901234567\n");
    msg_init_src(&msg, &src, big->data, 10000);
    msg.size_limit = (off_t) before->len + 200000;
    assert_int_equal(maildir_mbox_append(path, &msg, st), MAILDIR_TEMP);
    assert_string_equal(st->dsn, "4.2.2");
    after = read_file(path);
    assert_int_equal(after->len, before->len);
    assert_memory_equal(after->data, before->data, before->len);
    strbuf_free(&after);

    /* Already over the limit. */
    msg_init_src(&msg, &src, "x\n", 100);
    msg.size_limit = (off_t) before->len;
    assert_int_equal(maildir_mbox_append(path, &msg, st), MAILDIR_TEMP);
    assert_string_equal(st->dsn, "4.2.2");

    /* The source fails after data was written out. */
    msg_init_src(&msg, &src, big->data, 10000);
    src.fail_at = 250000;
    assert_int_equal(maildir_mbox_append(path, &msg, st), MAILDIR_TEMP);
    assert_string_equal(st->dsn, "4.3.0");
    after = read_file(path);
    assert_int_equal(after->len, before->len);
    assert_memory_equal(after->data, before->data, before->len);
    strbuf_free(&after);
    strbuf_free(&before);
    strbuf_free(&big);
    maildir_status_free(&st);
}

static void test_mbox_bad_files(void **state)
{
    MAILDIR_STATUS *st = maildir_status_alloc();
    MAILDIR_MSG msg;
    SRC src;
    const char *target = tmp_path("target");
    const char *link_path = tmp_path("symlink");
    const char *hard = tmp_path("hardlink");
    const char *fifo = tmp_path("fifo");
    const char *dir = tmp_path("adir");
    const char *missing = tmp_path("no/such/dir/mbox");

    (void) state;
    msg_init_src(&msg, &src, content1, 100);
    unit_write_file("target", "");
    assert_int_equal(symlink(target, link_path), 0);
    assert_int_equal(maildir_mbox_append(link_path, &msg, st), MAILDIR_PERM);
    assert_string_equal(st->dsn, "5.2.0");
    assert_non_null(strstr(st->why->data, "is a symbolic link"));

    assert_int_equal(link(target, hard), 0);
    assert_int_equal(maildir_mbox_append(hard, &msg, st), MAILDIR_PERM);
    assert_non_null(strstr(st->why->data, "has 2 hard links"));

    /* No reader: opening must not block. */
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(maildir_mbox_append(fifo, &msg, st), MAILDIR_TEMP);
    assert_int_equal(unlink(fifo), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    {
        int rfd = open(fifo, O_RDONLY | O_NONBLOCK);

        assert_true(rfd >= 0);
        assert_int_equal(maildir_mbox_append(fifo, &msg, st), MAILDIR_PERM);
        assert_non_null(strstr(st->why->data, "is not a regular file"));
        close(rfd);
    }
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(maildir_mbox_append(dir, &msg, st), MAILDIR_PERM);
    assert_string_equal(st->dsn, "5.2.0");
    assert_int_equal(maildir_mbox_append(missing, &msg, st), MAILDIR_PERM);
    assert_string_equal(st->dsn, "5.2.0");
    /* Virtual mbox users: the directories are made. */
    msg.flags = MAILDIR_FLAG_MKDIR;
    assert_int_equal(maildir_mbox_append(missing, &msg, st), MAILDIR_OK);
    assert_int_equal(file_mode(tmp_path("no/such")), 0700);
    msg.flags = 0;
    assert_int_equal(maildir_mbox_append("", &msg, st), MAILDIR_PERM);
    assert_int_equal(unlink(hard), 0);
    assert_int_equal(maildir_mbox_append(target, &msg, st), MAILDIR_OK);
    maildir_status_free(&st);
}

static long long elapsed_ms(const struct timeval *start)
{
    struct timeval now;

    gettimeofday(&now, NULL);
    return (now.tv_sec - start->tv_sec) * 1000LL
        + (now.tv_usec - start->tv_usec) / 1000;
}

static void test_mbox_locking(void **state)
{
    MAILDIR_STATUS *st = keep_st = maildir_status_alloc();
    MAILDIR_MSG msg;
    SRC src;
    const char *path = tmp_path("mbox3");
    const char *lock = tmp_path("mbox3.lock");
    struct timeval start;
    struct timeval old[2] = {{1000, 0}, {1000, 0}};
    int sync_pipe[2];
    pid_t pid;
    int status;
    char ch;

    (void) state;
    msg_init_src(&msg, &src, content1, 100);
    msg.flags = MAILDIR_FLAG_DOTLOCK;

    /* Someone holds the dot lock for a while. */
    unit_write_file("mbox3.lock", "");
    if ((pid = fork()) == 0) {
        usleep(700 * 1000);
        unlink(lock);
        _exit(0);
    }
    gettimeofday(&start, NULL);
    assert_int_equal(maildir_mbox_append(path, &msg, st), MAILDIR_OK);
    assert_true(elapsed_ms(&start) >= 600);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(access(lock, F_OK), -1);

    /* Someone holds an fcntl lock on the file. */
    assert_int_equal(pipe(sync_pipe), 0);
    if ((pid = fork()) == 0) {
        int fd = open(path, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

        if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
            _exit(1);
        if (write(sync_pipe[1], "x", 1) != 1)
            _exit(2);
        usleep(700 * 1000);
        _exit(0);
    }
    assert_int_equal(read(sync_pipe[0], &ch, 1), 1);
    gettimeofday(&start, NULL);
    assert_int_equal(maildir_mbox_append(path, &msg, st), MAILDIR_OK);
    assert_true(elapsed_ms(&start) >= 500);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
    close(sync_pipe[0]);
    close(sync_pipe[1]);

    /* A stale dot lock left by a crash is removed. */
    unit_log_reset();
    unit_write_file("mbox3.lock", "");
    assert_int_equal(utimes(lock, old), 0);
    gettimeofday(&start, NULL);
    assert_int_equal(maildir_mbox_append(path, &msg, st), MAILDIR_OK);
    assert_true(elapsed_ms(&start) < 500);
    assert_true(unit_logged("removed stale lock file"));
    assert_int_equal(access(lock, F_OK), -1);
    msg_set_hook(NULL);
    maildir_status_free(&st);
    keep_st = NULL;
}

/* As an ordinary user in a directory it may not write. */
static void locked_dir_child(const void *arg)
{
    const char *path = arg;
    MAILDIR_STATUS *st = maildir_status_alloc();
    MAILDIR_MSG msg;
    SRC src;

    msg_init_src(&msg, &src, content1, 100);
    msg.flags = MAILDIR_FLAG_DOTLOCK;
    if (maildir_mbox_append(path, &msg, st) != MAILDIR_TEMP
        || strcmp(st->dsn, "4.2.0") != 0
        || strstr(st->why->data, "create lock file") == NULL)
        _exit(1);
    /* A file named in aliases: no dot lock then, just fcntl. */
    msg.flags |= MAILDIR_FLAG_DOTLOCK_MAY_FAIL;
    if (maildir_mbox_append(path, &msg, st) != MAILDIR_OK)
        _exit(2);
    /* Read-only mailbox file. */
    if (chmod(path, 0400) < 0)
        _exit(3);
    if (maildir_mbox_append(path, &msg, st) != MAILDIR_TEMP
        || strcmp(st->dsn, "4.2.0") != 0)
        _exit(4);
    maildir_status_free(&st);
}

static void test_mbox_permissions(void **state)
{
    const char *dir = tmp_path("spool");
    const char *path = tmp_path("spool/nobody");
    MAILDIR_STATUS *st = keep_st = maildir_status_alloc();
    MAILDIR_MSG msg;
    SRC src;

    (void) state;
    assert_int_equal(chmod(unit_tmpdir(), 0711), 0);
    assert_int_equal(mkdir(dir, 0755), 0);
    unit_write_file("spool/nobody", "");
    assert_int_equal(chmod(path, 0600), 0);
    give_to_nobody(path);
    assert_int_equal(chmod(dir, 0555), 0);     /* no lock files here */
    assert_int_equal(as_nobody(locked_dir_child, path), 0);
    assert_int_equal(chmod(dir, 0755), 0);

    /* strict_mailbox_ownership: an existing file of someone else. */
    if (geteuid() == 0) {
        assert_int_equal(chmod(path, 0600), 0);
        msg_init_src(&msg, &src, content1, 100);
        msg.flags = MAILDIR_FLAG_OWNER_CHECK;
        assert_int_equal(maildir_mbox_append(path, &msg, st), MAILDIR_TEMP);
        assert_string_equal(st->dsn, "4.2.0");
        assert_non_null(strstr(st->why->data, "is not owned by uid 0"));
        /* MAILDIR_FLAG_CHOWN: a new file gets the owner asked for. */
        {
            const char *fresh = tmp_path("spool/fresh");
            struct stat sb;

            msg.flags = MAILDIR_FLAG_CHOWN;
            msg.uid = 65534;
            msg.gid = 65534;
            assert_int_equal(maildir_mbox_append(fresh, &msg, st),
                             MAILDIR_OK);
            assert_int_equal(stat(fresh, &sb), 0);
            assert_int_equal(sb.st_uid, 65534);
            fresh = tmp_path("spool/md/");
            assert_int_equal(maildir_deliver(fresh, &msg, st), MAILDIR_OK);
            assert_int_equal(stat(fresh, &sb), 0);
            assert_int_equal(sb.st_uid, 65534);
            assert_int_equal(stat(st->path->data, &sb), 0);
            assert_int_equal(sb.st_uid, 65534);
        }
    }
    maildir_status_free(&st);
    keep_st = NULL;
}

static void test_from_line(void **state)
{
    STRBUF *out = strbuf_alloc(64);

    (void) state;
    setenv("TZ", "UTC", 1);
    tzset();
    maildir_from_line(out, "alice@example.org", 1795738946);
    assert_string_equal(out->data,
                        "From alice@example.org  Fri Nov 27 00:22:26 2026\n");
    /* asctime(3) pads the day with a space. */
    maildir_from_line(out, "", 1793700000);
    assert_string_equal(out->data, "From MAILER-DAEMON  Tue Nov  3 10:00:00 "
                        "2026\n");
    strbuf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maildir_deliver),
        cmocka_unit_test(test_maildir_failures),
        cmocka_unit_test(test_maildir_concurrent),
        cmocka_unit_test(test_maildir_readonly),
        cmocka_unit_test(test_maildir_unique_name),
        cmocka_unit_test(test_mbox_append),
        cmocka_unit_test(test_mbox_truncate),
        cmocka_unit_test(test_mbox_bad_files),
        cmocka_unit_test(test_mbox_locking),
        cmocka_unit_test(test_mbox_permissions),
        cmocka_unit_test(test_from_line),
    };

    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    argv_free(&tmp_paths);
    return rc;
}
