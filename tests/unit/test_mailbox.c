/*
 * test_mailbox - the read side of the mail store: a Maildir and its LMDB
 * index (mailbox_open on a missing and an empty Maildir, new/ moved to
 * cur/ with ":2,", UIDs ascending and stable across reopens, new mail
 * above them, expunge removing file and entry and never reusing a UID,
 * a lost index starting over under a new UIDVALIDITY, a file renamed for
 * new flags found again, duplicate base names, a session that indexes
 * mail while another one scans) and the CRLF form POP3 and IMAP send
 * (every chunking, CR and LF in different chunks, no final newline),
 * whose length is the vsize the index keeps.
 *
 * The concurrent case needs a session to run in the middle of another's
 * mailbox_open(): this program's own readdir() (it interposes on libc's
 * for the library code linked into it) runs a hook when a directory
 * scan ends.
 */
#include "unit.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "mail/mailbox.h"
#include "util/xmalloc.h"

/* --- helpers ---------------------------------------------------------- */

/* unit_tmpdir()/name (a buffer that lives as long as the test). */
static char *tmp_path(const char *name)
{
    static char paths[16][256];
    static int next;
    char *p = paths[next++ % 16];

    snprintf(p, 256, "%s/%s", unit_tmpdir(), name);
    return p;
}

static void write_bytes(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t) len);
    assert_int_equal(close(fd), 0);
}

/* Put a message file into DIR/sub/name. */
static void put(const char *dir, const char *sub, const char *name,
                const char *text)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    write_bytes(path, text, strlen(text));
}

static int exists(const char *dir, const char *rel)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return lstat(path, &st) == 0;
}

static size_t count_dir(const char *dir, const char *sub)
{
    char path[512];
    DIR *dp;
    struct dirent *de;
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    assert_non_null(dp = opendir(path));
    while ((de = readdir(dp)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(dp);
    return n;
}

static MAILBOX *open_ok(const char *dir)
{
    STRBUF *why = strbuf_alloc(64);
    MAILBOX *mb = mailbox_open(dir, why);

    if (mb == NULL)
        fail_msg("mailbox_open %s: %s", dir, why->data);
    strbuf_free(&why);
    return mb;
}

/* An empty Maildir, made (with its index) by a first mailbox_open(). */
static void make_maildir(const char *dir)
{
    MAILBOX *mb = open_ok(dir);

    mailbox_close(&mb);
}

/*
 * n (at most 3) messages delivered to new/: STAMP.M1P1Q1.h "one\n",
 * STAMP.M2P1Q1.h "two\n" and STAMP.M3P1Q1.h "three\n".
 */
static void put_numbered(const char *dir, int stamp, size_t n)
{
    static const char *const texts[] = {"one\n", "two\n", "three\n"};
    char name[64];

    assert_true(n <= sizeof(texts) / sizeof(texts[0]));
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%d.M%zuP1Q1.h", stamp, i + 1);
        put(dir, "new", name, texts[i]);
    }
}

/* Message i of the snapshot by base name (the file name up to ':'). */
static long find_base(const MAILBOX *mb, const char *base)
{
    size_t len = strlen(base);

    for (size_t i = 0; i < mb->count; i++) {
        const char *name = mb->msgs[i].file + 4;

        if (strncmp(name, base, len) == 0
            && (name[len] == ':' || name[len] == 0))
            return (long) i;
    }
    return -1;
}

static uint32_t uid_of(const MAILBOX *mb, const char *base)
{
    long i = find_base(mb, base);

    assert_true(i >= 0);
    return mb->msgs[i].uid;
}

static STRBUF *read_fd(int fd)
{
    STRBUF *buf = strbuf_alloc(128);
    char chunk[4096];
    ssize_t n;

    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        strbuf_append(buf, chunk, (size_t) n);
    assert_int_equal(n, 0);
    return buf;
}

/* The CRLF form of data in one piece. */
static STRBUF *crlf_all(const char *data, size_t len)
{
    MAILBOX_CRLF st = MAILBOX_CRLF_INIT;
    STRBUF *out = strbuf_alloc(64);

    mailbox_crlf(&st, data, len, out);
    mailbox_crlf_end(&st, out);
    return out;
}

static void remove_index(const char *dir)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/postern-index", dir);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/postern-index-lock", dir);
    (void) unlink(path);
}

/* --- readdir() with a hook --------------------------------------------- */

/*
 * When readdir_hook is set, it runs (once) when the readdir_hook_at-th
 * directory scan from now ends.
 */
static void (*readdir_hook)(void);
static int readdir_hook_at;

struct dirent *readdir(DIR *dir);

struct dirent *readdir(DIR *dir)
{
    static struct dirent *(*real_readdir)(DIR *);
    struct dirent *de;

    if (real_readdir == NULL) {
        *(void **) &real_readdir = dlsym(RTLD_NEXT, "readdir");
        if (real_readdir == NULL)
            abort();
    }
    de = real_readdir(dir);
    if (de == NULL && readdir_hook && --readdir_hook_at == 0) {
        void (*hook)(void) = readdir_hook;

        readdir_hook = NULL;
        hook();
    }
    return de;
}

/* --- tests ------------------------------------------------------------ */

static void test_open_missing_and_empty(void **state)
{
    const char *dir = tmp_path("missing/deeper");
    STRBUF *why = strbuf_alloc(64);
    MAILBOX *mb;
    struct stat st;

    (void) state;
    /* The parent must exist: only the Maildir itself is made. */
    assert_null(mailbox_open(dir, why));
    assert_true(why->len > 0);
    assert_int_equal(mkdir(tmp_path("missing"), 0700), 0);

    mb = open_ok(dir);
    assert_int_equal(mb->count, 0);
    assert_true(mb->uidvalidity > 0);
    assert_int_equal(mb->uidnext, 1);
    for (const char *const *sub = (const char *const[]) {"", "/cur", "/new",
                                                        "/tmp", NULL};
         *sub; sub++) {
        char path[512];

        snprintf(path, sizeof(path), "%s%s", dir, *sub);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
    }
    assert_true(exists(dir, "postern-index"));
    mailbox_close(&mb);
    assert_null(mb);

    /* Empty and existing: the same UIDVALIDITY the second time. */
    mb = open_ok(dir);
    assert_int_equal(mb->count, 0);
    {
        uint32_t v = mb->uidvalidity;

        mailbox_close(&mb);
        mb = open_ok(dir);
        assert_int_equal(mb->uidvalidity, v);
    }
    mailbox_close(&mb);
    strbuf_free(&why);
}

static void test_new_moves_to_cur(void **state)
{
    const char *dir = tmp_path("newcur");
    MAILBOX *mb;

    (void) state;
    make_maildir(dir);
    put(dir, "new", "1000.M1P1Q1.host,S=6", "a\nb\nc\n");
    put(dir, "new", "1000.M2P1Q1.host,S=2", "x\n");
    /* A file with an info part already keeps it. */
    put(dir, "new", "1000.M3P1Q1.host:2,S", "seen\n");
    mb = open_ok(dir);
    assert_int_equal(mb->count, 3);
    assert_int_equal(count_dir(dir, "new"), 0);
    assert_true(exists(dir, "cur/1000.M1P1Q1.host,S=6:2,"));
    assert_true(exists(dir, "cur/1000.M2P1Q1.host,S=2:2,"));
    assert_true(exists(dir, "cur/1000.M3P1Q1.host:2,S"));
    assert_string_equal(mb->msgs[0].file, "cur/1000.M1P1Q1.host,S=6:2,");
    assert_string_equal(mb->msgs[1].file, "cur/1000.M2P1Q1.host,S=2:2,");
    assert_string_equal(mb->msgs[2].file, "cur/1000.M3P1Q1.host:2,S");
    /* size: from S= or the file; vsize: the CRLF form. */
    assert_int_equal(mb->msgs[0].size, 6);
    assert_int_equal(mb->msgs[0].vsize, 9);
    assert_int_equal(mb->msgs[2].size, 5);
    assert_int_equal(mb->msgs[2].vsize, 6);
    mailbox_close(&mb);
}

static void test_uids_stable(void **state)
{
    const char *dir = tmp_path("uids");
    MAILBOX *mb;
    uint32_t validity;
    uint32_t first[3];

    (void) state;
    make_maildir(dir);
    put_numbered(dir, 2000, 3);
    mb = open_ok(dir);
    assert_int_equal(mb->count, 3);
    validity = mb->uidvalidity;
    for (size_t i = 0; i < 3; i++) {
        first[i] = mb->msgs[i].uid;
        if (i > 0)
            assert_true(first[i] > first[i - 1]);
    }
    /* Name order, as delivered. */
    assert_int_equal(uid_of(mb, "2000.M1P1Q1.h"), first[0]);
    assert_int_equal(uid_of(mb, "2000.M3P1Q1.h"), first[2]);
    assert_int_equal(mb->uidnext, first[2] + 1);
    mailbox_close(&mb);

    for (int round = 0; round < 2; round++) {
        mb = open_ok(dir);
        assert_int_equal(mb->count, 3);
        assert_int_equal(mb->uidvalidity, validity);
        for (size_t i = 0; i < 3; i++)
            assert_int_equal(mb->msgs[i].uid, first[i]);
        mailbox_close(&mb);
    }

    /* New mail gets higher UIDs, also when its name sorts first. */
    put(dir, "new", "1999.M9P1Q1.h", "older name\n");
    put(dir, "cur", "2001.M1P1Q1.h:2,S", "straight into cur\n");
    mb = open_ok(dir);
    assert_int_equal(mb->count, 5);
    assert_int_equal(mb->uidvalidity, validity);
    assert_true(uid_of(mb, "1999.M9P1Q1.h") > first[2]);
    assert_true(uid_of(mb, "2001.M1P1Q1.h") > first[2]);
    assert_int_equal(uid_of(mb, "2000.M2P1Q1.h"), first[1]);
    /* The snapshot is sorted by UID. */
    for (size_t i = 1; i < mb->count; i++)
        assert_true(mb->msgs[i].uid > mb->msgs[i - 1].uid);
    mailbox_close(&mb);
}

static void test_snapshot(void **state)
{
    const char *dir = tmp_path("snapshot");
    MAILBOX *mb;
    MAILBOX *other;

    (void) state;
    make_maildir(dir);
    put_numbered(dir, 3000, 1);
    mb = open_ok(dir);
    /* Delivered later: not in this snapshot, in the next. */
    put(dir, "new", "3000.M2P1Q1.h", "two\n");
    assert_int_equal(mb->count, 1);
    other = open_ok(dir);
    assert_int_equal(other->count, 2);
    assert_int_equal(mb->count, 1);
    assert_int_equal(other->msgs[0].uid, mb->msgs[0].uid);
    mailbox_close(&other);
    mailbox_close(&mb);
}

static void test_expunge(void **state)
{
    const char *dir = tmp_path("expunge");
    STRBUF *why = strbuf_alloc(64);
    MAILBOX *mb;
    MAILBOX *other;
    uint32_t u1, u2, u3;
    size_t which[2];

    (void) state;
    make_maildir(dir);
    put_numbered(dir, 4000, 3);
    mb = open_ok(dir);
    u1 = mb->msgs[0].uid;
    u2 = mb->msgs[1].uid;
    u3 = mb->msgs[2].uid;
    /* The middle one and the newest. */
    which[0] = 1;
    which[1] = 2;
    assert_int_equal(mailbox_expunge(mb, which, 2, why), 0);
    assert_false(exists(dir, "cur/4000.M2P1Q1.h:2,"));
    assert_false(exists(dir, "cur/4000.M3P1Q1.h:2,"));
    assert_true(exists(dir, "cur/4000.M1P1Q1.h:2,"));
    /* Twice: what is gone counts as removed. */
    assert_int_equal(mailbox_expunge(mb, which, 2, why), 0);
    mailbox_close(&mb);

    mb = open_ok(dir);
    assert_int_equal(mb->count, 1);
    assert_int_equal(mb->msgs[0].uid, u1);
    mailbox_close(&mb);

    /*
     * The same file again (restored from a backup): a new message as far
     * as the index knows, so its entry must be gone; no UID comes back.
     */
    put(dir, "cur", "4000.M2P1Q1.h:2,", "two\n");
    put(dir, "new", "4000.M4P1Q1.h", "four\n");
    mb = open_ok(dir);
    assert_int_equal(mb->count, 3);
    assert_true(uid_of(mb, "4000.M2P1Q1.h") > u3);
    assert_true(uid_of(mb, "4000.M4P1Q1.h") > u3);
    assert_true(uid_of(mb, "4000.M2P1Q1.h") != u2);
    assert_int_equal(uid_of(mb, "4000.M1P1Q1.h"), u1);

    /* Removed by another session: expunge still succeeds. */
    other = open_ok(dir);
    which[0] = (size_t) find_base(other, "4000.M4P1Q1.h");
    assert_int_equal(mailbox_expunge(other, which, 1, why), 0);
    mailbox_close(&other);
    which[0] = (size_t) find_base(mb, "4000.M4P1Q1.h");
    assert_int_equal(mailbox_msg_open(mb, which[0]), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(mailbox_expunge(mb, which, 1, why), 0);
    mailbox_close(&mb);

    /* Expunged outside (a mail client on the files): dropped at sync. */
    assert_int_equal(unlink(tmp_path("expunge/cur/4000.M1P1Q1.h:2,")), 0);
    mb = open_ok(dir);
    assert_int_equal(mb->count, 1);
    assert_int_equal(find_base(mb, "4000.M1P1Q1.h"), -1);
    mailbox_close(&mb);
    strbuf_free(&why);
}

static void test_index_lost(void **state)
{
    const char *dir = tmp_path("lost");
    MAILBOX *mb;
    uint32_t validity;
    uint32_t uid;

    (void) state;
    make_maildir(dir);
    put_numbered(dir, 5000, 2);
    mb = open_ok(dir);
    validity = mb->uidvalidity;
    uid = mb->msgs[1].uid;
    mailbox_close(&mb);
    /* UIDVALIDITY is a time: let the clock move on. */
    while ((uint32_t) time(NULL) <= validity)
        usleep(50000);
    remove_index(dir);
    mb = open_ok(dir);
    assert_int_equal(mb->count, 2);
    assert_true(mb->uidvalidity > validity);
    /* UIDs start over, which the new UIDVALIDITY tells clients. */
    assert_int_equal(mb->msgs[0].uid, 1);
    assert_int_equal(mb->msgs[1].uid, 2);
    assert_int_equal(uid, 2);
    mailbox_close(&mb);
}

static void test_renamed_file(void **state)
{
    const char *dir = tmp_path("renamed");
    MAILBOX *mb;
    STRBUF *got;
    uint32_t uid;
    long i;
    int fd;

    (void) state;
    make_maildir(dir);
    put(dir, "new", "6000.M1P1Q1.h", "keep me\n");
    put(dir, "new", "6000.M1P1Q1.h.x", "a longer name\n");
    mb = open_ok(dir);
    i = find_base(mb, "6000.M1P1Q1.h");
    assert_true(i >= 0);
    uid = mb->msgs[i].uid;
    /* Another session (a mail client) sets flags: a new file name. */
    assert_int_equal(rename(tmp_path("renamed/cur/6000.M1P1Q1.h:2,"),
                            tmp_path("renamed/cur/6000.M1P1Q1.h:2,RS")), 0);
    assert_true((fd = mailbox_msg_open(mb, (size_t) i)) >= 0);
    got = read_fd(fd);
    close(fd);
    /* The right file, not the one whose name starts the same. */
    assert_string_equal(got->data, "keep me\n");
    assert_string_equal(mb->msgs[i].file, "cur/6000.M1P1Q1.h:2,RS");
    strbuf_free(&got);
    /* And once more, to a name without an info part. */
    assert_int_equal(rename(tmp_path("renamed/cur/6000.M1P1Q1.h:2,RS"),
                            tmp_path("renamed/cur/6000.M1P1Q1.h")), 0);
    assert_true((fd = mailbox_msg_open(mb, (size_t) i)) >= 0);
    close(fd);
    mailbox_close(&mb);
    /* The UID goes with the base name. */
    mb = open_ok(dir);
    assert_int_equal(mb->count, 2);
    assert_int_equal(uid_of(mb, "6000.M1P1Q1.h"), uid);
    mailbox_close(&mb);
}

static void test_duplicate_base_names(void **state)
{
    const char *dir = tmp_path("dups");
    MAILBOX *mb;

    (void) state;
    make_maildir(dir);
    /* One message, two files (a crash in the middle of a flag change). */
    put(dir, "cur", "7000.M1P1Q1.h:2,", "one\n");
    put(dir, "cur", "7000.M1P1Q1.h:2,S", "one\n");
    /*
     * Another: without an info part and with one, and between them by
     * name a message whose base name starts with theirs.
     */
    put(dir, "cur", "7000.M2P1Q1.h", "two\n");
    put(dir, "cur", "7000.M2P1Q1.h.x:2,", "another\n");
    put(dir, "cur", "7000.M2P1Q1.h:2,S", "two\n");
    unit_log_reset();
    mb = open_ok(dir);
    assert_int_equal(mb->count, 3);
    assert_true(unit_logged("are one message"));
    assert_true(find_base(mb, "7000.M1P1Q1.h") >= 0);
    assert_true(find_base(mb, "7000.M2P1Q1.h") >= 0);
    assert_true(find_base(mb, "7000.M2P1Q1.h.x") >= 0);
    for (size_t i = 1; i < mb->count; i++)
        assert_true(mb->msgs[i].uid > mb->msgs[i - 1].uid);
    mailbox_close(&mb);
    msg_set_hook(NULL);
}

/*
 * A session that indexes mail while another one is between its directory
 * scan and its index update: the mail keeps the UID it got, and is in
 * the snapshot of the second session when its scan saw the file.
 */
static const char *race_dir;
static const char *race_put;            /* a message the other delivers */
static const char *race_base;           /* whose UID it reports */
static uint32_t race_uid;

static void race_other_session(void)
{
    int fds[2];
    pid_t pid;
    int status;

    assert_int_equal(pipe(fds), 0);
    if ((pid = fork()) == 0) {
        MAILBOX *mb;
        uint32_t uid = 0;

        if (race_put)
            put(race_dir, "new", race_put, "arrived meanwhile\n");
        mb = open_ok(race_dir);
        uid = uid_of(mb, race_base);
        if (write(fds[1], &uid, sizeof(uid)) != sizeof(uid))
            _exit(1);
        _exit(0);
    }
    assert_true(pid > 0);
    close(fds[1]);
    assert_int_equal(read(fds[0], &race_uid, sizeof(race_uid)),
                     sizeof(race_uid));
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Open with the other session run when our scan of cur/ (after new/) ends. */
static MAILBOX *race_open(const char *put_name, const char *base)
{
    MAILBOX *mb;

    race_put = put_name;
    race_base = base;
    race_uid = 0;
    readdir_hook = race_other_session;
    readdir_hook_at = 2;
    mb = open_ok(race_dir);
    assert_null(readdir_hook);
    assert_true(race_uid > 0);
    return mb;
}

static void test_concurrent_sync(void **state)
{
    MAILBOX *mb;

    (void) state;
    race_dir = tmp_path("race");
    make_maildir(race_dir);
    put_numbered(race_dir, 8000, 2);
    make_maildir(race_dir);             /* indexed */

    /* Delivered and indexed by the other after our scan: not ours. */
    mb = race_open("8000.M9P1Q1.h", "8000.M9P1Q1.h");
    assert_int_equal(mb->count, 2);
    mailbox_close(&mb);
    mb = open_ok(race_dir);
    assert_int_equal(mb->count, 3);
    assert_int_equal(uid_of(mb, "8000.M9P1Q1.h"), race_uid);
    mailbox_close(&mb);

    /* Seen by our scan, indexed by the other first: ours too. */
    put(race_dir, "new", "8001.M1P1Q1.h", "new\n");
    mb = race_open(NULL, "8001.M1P1Q1.h");
    assert_int_equal(mb->count, 4);
    assert_int_equal(uid_of(mb, "8001.M1P1Q1.h"), race_uid);
    mailbox_close(&mb);
    mb = open_ok(race_dir);
    assert_int_equal(uid_of(mb, "8001.M1P1Q1.h"), race_uid);
    mailbox_close(&mb);
}

/* --- the CRLF form ------------------------------------------------------- */

static const struct {
    const char *in;
    const char *out;
} crlf_cases[] = {
    {"", ""},
    {"\n", "\r\n"},
    {"a\nb\n", "a\r\nb\r\n"},
    {"a\r\nb\r\n", "a\r\nb\r\n"},
    {"a\r\nb\nc\r\n", "a\r\nb\r\nc\r\n"},
    {"no final newline", "no final newline\r\n"},
    {"a\nlast", "a\r\nlast\r\n"},
    {"\n\n\n", "\r\n\r\n\r\n"},
    {"\r\n\r\n", "\r\n\r\n"},
    {"bare\rcr\n", "bare\rcr\r\n"},
    {"\r\r\n", "\r\r\n"},
    {"ends in cr\r", "ends in cr\r\r\n"},
    {".\n..\n", ".\r\n..\r\n"},
};

/* Every split into two chunks, and byte by byte. */
static void test_crlf(void **state)
{
    (void) state;
    for (size_t c = 0; c < sizeof(crlf_cases) / sizeof(crlf_cases[0]); c++) {
        const char *in = crlf_cases[c].in;
        size_t len = strlen(in);
        STRBUF *whole = crlf_all(in, len);

        assert_string_equal(whole->data, crlf_cases[c].out);
        for (size_t cut = 0; cut <= len; cut++) {
            MAILBOX_CRLF st = MAILBOX_CRLF_INIT;
            STRBUF *out = strbuf_alloc(64);

            mailbox_crlf(&st, in, cut, out);
            mailbox_crlf(&st, in + cut, len - cut, out);
            mailbox_crlf_end(&st, out);
            assert_int_equal(out->len, whole->len);
            assert_memory_equal(out->data, whole->data, whole->len);
            strbuf_free(&out);
        }
        {
            MAILBOX_CRLF st = MAILBOX_CRLF_INIT;
            STRBUF *out = strbuf_alloc(64);

            for (size_t k = 0; k < len; k++)
                mailbox_crlf(&st, in + k, 1, out);
            mailbox_crlf_end(&st, out);
            assert_string_equal(out->data, whole->data);
            strbuf_free(&out);
        }
        strbuf_free(&whole);
    }
}

/* CR at the end of one chunk, LF at the start of the next: one CRLF. */
static void test_crlf_chunk_border(void **state)
{
    MAILBOX_CRLF st = MAILBOX_CRLF_INIT;
    STRBUF *out = strbuf_alloc(64);

    (void) state;
    mailbox_crlf(&st, "line\r", 5, out);
    mailbox_crlf(&st, "\nnext\n", 6, out);
    mailbox_crlf(&st, "", 0, out);
    mailbox_crlf(&st, "x", 1, out);
    mailbox_crlf_end(&st, out);
    assert_string_equal(out->data, "line\r\nnext\r\nx\r\n");
    /* The end is idempotent; a state can go on after it. */
    mailbox_crlf_end(&st, out);
    assert_string_equal(out->data, "line\r\nnext\r\nx\r\n");
    strbuf_free(&out);
}

/* The vsize of each message is the length of its CRLF form. */
static void test_vsize(void **state)
{
    const char *dir = tmp_path("vsize");
    const char *texts[] = {
        "Subject: lf\n\nbody\n", "Subject: crlf\r\n\r\nbody\r\n",
        "Subject: mixed\n\r\nbody", "", "\n", "\r",
    };
    size_t n = sizeof(texts) / sizeof(texts[0]);
    char big[40000];
    MAILBOX *mb;

    (void) state;
    make_maildir(dir);
    for (size_t i = 0; i < n; i++) {
        char name[64];

        snprintf(name, sizeof(name), "9000.M%zuP1Q1.h", i);
        put(dir, "new", name, texts[i]);
    }
    /* Longer than the 8 kB read chunks, a CR LF across each border. */
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (i % 8192 == 8191) ? '\r' : (i % 8192 == 0 && i) ? '\n'
            : (i % 61 == 60) ? '\n' : 'x';
    write_bytes(tmp_path("vsize/new/9001.M1P1Q1.h"), big, sizeof(big));

    for (int round = 0; round < 2; round++) {
        mb = open_ok(dir);
        assert_int_equal(mb->count, n + 1);
        for (size_t i = 0; i < mb->count; i++) {
            int fd = mailbox_msg_open(mb, i);
            STRBUF *raw;
            STRBUF *conv;

            assert_true(fd >= 0);
            raw = read_fd(fd);
            close(fd);
            conv = crlf_all(raw->data, raw->len);
            assert_int_equal(mb->msgs[i].vsize, (off_t) conv->len);
            assert_int_equal(mb->msgs[i].size, (off_t) raw->len);
            strbuf_free(&raw);
            strbuf_free(&conv);
        }
        mailbox_close(&mb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_missing_and_empty),
        cmocka_unit_test(test_new_moves_to_cur),
        cmocka_unit_test(test_uids_stable),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_expunge),
        cmocka_unit_test(test_index_lost),
        cmocka_unit_test(test_renamed_file),
        cmocka_unit_test(test_duplicate_base_names),
        cmocka_unit_test(test_concurrent_sync),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_crlf_chunk_border),
        cmocka_unit_test(test_vsize),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
