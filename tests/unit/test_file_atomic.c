/*
 * test_file_atomic - write-temp-fsync-rename: a new file gets new_mode, a
 * replaced one keeps its mode, binary and empty contents, failures (no
 * directory, target is a directory, write error) leave the old file and
 * no temporary file behind and name the path, and the temporary name is
 * never followed as a symbolic link.
 */
#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include "util/file_atomic.h"

/* DIR/name, in a buffer of the caller's. */
static const char *tmp_path(STRBUF *buf, const char *name)
{
    strbuf_printf(buf, "%s/%s", unit_tmpdir(), name);
    return buf->data;
}

/* The number of "*.tmp.*" names in the test directory. */
static int count_tmp_files(void)
{
    DIR    *dir;
    struct dirent *de;
    int     n = 0;

    assert_non_null(dir = opendir(unit_tmpdir()));
    while ((de = readdir(dir)) != NULL)
        if (strstr(de->d_name, ".tmp.") != NULL)
            n++;
    closedir(dir);
    return n;
}

/* The whole contents of path. */
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

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    return st.st_mode & 07777;
}

static void test_new_file(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    STRBUF *got = strbuf_alloc(0);
    mode_t  old_umask;

    (void) state;
    /* new_mode is the mode, whatever the umask. */
    old_umask = umask(077);
    tmp_path(path, "new.cf");
    assert_int_equal(file_write_atomic(path->data, "hello\n", 6, 0644, err),
                     0);
    assert_int_equal(err->len, 0);
    slurp(path->data, got);
    assert_string_equal(got->data, "hello\n");
    assert_int_equal(mode_of(path->data), 0644);

    tmp_path(path, "private.cf");
    assert_int_equal(file_write_atomic(path->data, "x", 1, 0600, err), 0);
    assert_int_equal(mode_of(path->data), 0600);
    umask(old_umask);
    assert_int_equal(count_tmp_files(), 0);
    strbuf_free(&path);
    strbuf_free(&err);
    strbuf_free(&got);
}

static void test_replace_keeps_mode(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    STRBUF *got = strbuf_alloc(0);
    struct stat before;
    struct stat after;
    int     fd;

    (void) state;
    tmp_path(path, "old.cf");
    assert_int_equal(file_write_atomic(path->data,
                                       "a long first version\n", 21, 0644,
                                       err), 0);
    assert_int_equal(chmod(path->data, 0640), 0);
    assert_int_equal(stat(path->data, &before), 0);
    /* A reader that has the old file open keeps seeing the old contents. */
    assert_true((fd = open(path->data, O_RDONLY)) >= 0);

    assert_int_equal(file_write_atomic(path->data, "short\n", 6, 0600, err),
                     0);
    slurp(path->data, got);
    assert_string_equal(got->data, "short\n");  /* no old tail */
    assert_int_equal(mode_of(path->data), 0640);
    assert_int_equal(stat(path->data, &after), 0);
    assert_true(after.st_ino != before.st_ino); /* renamed, not rewritten */
    {
        char    old[32];
        ssize_t n = read(fd, old, sizeof(old));

        assert_int_equal(n, 21);
        assert_memory_equal(old, "a long first version\n", 21);
    }
    close(fd);

    /* Odd modes survive too. */
    assert_int_equal(chmod(path->data, 0751), 0);
    assert_int_equal(file_write_atomic(path->data, "", 0, 0600, err), 0);
    assert_int_equal(mode_of(path->data), 0751);
    assert_int_equal(count_tmp_files(), 0);
    strbuf_free(&path);
    strbuf_free(&err);
    strbuf_free(&got);
}

/* Empty and binary contents, and more than one write's worth. */
static void test_contents(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    STRBUF *got = strbuf_alloc(0);
    size_t  big_len = 3 * 1024 * 1024 + 17;
    char   *big = malloc(big_len);

    (void) state;
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char) (i * 7 % 251);
    tmp_path(path, "data");
    assert_int_equal(file_write_atomic(path->data, NULL, 0, 0644, err), 0);
    slurp(path->data, got);
    assert_int_equal(got->len, 0);
    assert_int_equal(file_write_atomic(path->data, "a\0b\0", 4, 0644, err),
                     0);
    slurp(path->data, got);
    assert_int_equal(got->len, 4);
    assert_memory_equal(got->data, "a\0b\0", 4);
    assert_int_equal(file_write_atomic(path->data, big, big_len, 0644, err),
                     0);
    slurp(path->data, got);
    assert_int_equal(got->len, big_len);
    assert_memory_equal(got->data, big, big_len);
    assert_int_equal(count_tmp_files(), 0);
    free(big);
    strbuf_free(&path);
    strbuf_free(&err);
    strbuf_free(&got);
}

/* A directory that does not exist: -1, the path in the message. */
static void test_missing_directory(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    struct stat st;

    (void) state;
    tmp_path(path, "nodir/file.cf");
    assert_int_equal(file_write_atomic(path->data, "x\n", 2, 0644, err), -1);
    assert_non_null(strstr(err->data, path->data));
    assert_non_null(strstr(err->data, strerror(ENOENT)));
    assert_int_equal(stat(path->data, &st), -1);
    assert_int_equal(count_tmp_files(), 0);
    strbuf_free(&path);
    strbuf_free(&err);
}

/*
 * The target is a directory: the temporary file is written, the rename
 * fails, and the temporary file goes away again.
 */
static void test_target_is_directory(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    struct stat st;

    (void) state;
    tmp_path(path, "adir");
    assert_int_equal(mkdir(path->data, 0755), 0);
    assert_int_equal(file_write_atomic(path->data, "x\n", 2, 0644, err), -1);
    assert_non_null(strstr(err->data, path->data));
    assert_non_null(strstr(err->data, strerror(EISDIR)));
    assert_int_equal(stat(path->data, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(count_tmp_files(), 0);
    assert_int_equal(rmdir(path->data), 0);
    strbuf_free(&path);
    strbuf_free(&err);
}

/*
 * A write error half way (file size limit): -1, the old file intact, no
 * temporary file.  In a child, for the resource limit.
 */
static STRBUF *child_path;              /* reachable in the child */
static STRBUF *child_err;

static void write_error_child(void *arg)
{
    struct rlimit small = {1000, 1000};
    static char data[5000];

    (void) arg;
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &small) < 0)
        _exit(2);
    child_err = strbuf_alloc(0);
    memset(data, 'd', sizeof(data));
    if (file_write_atomic(child_path->data, data, sizeof(data), 0644,
                          child_err) != -1)
        _exit(3);
    fprintf(stderr, "%s\n", child_err->data);
    _exit(0);
}

static void test_write_error(void **state)
{
    STRBUF *err = strbuf_alloc(0);
    STRBUF *got = strbuf_alloc(0);
    int     status;

    (void) state;
    child_path = strbuf_alloc(0);
    tmp_path(child_path, "limited.cf");
    assert_int_equal(file_write_atomic(child_path->data, "old\n", 4, 0644,
                                       err), 0);
    status = unit_fork(write_error_child, NULL, err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_non_null(strstr(err->data, child_path->data));
    assert_non_null(strstr(err->data, strerror(EFBIG)));
    slurp(child_path->data, got);
    assert_string_equal(got->data, "old\n");
    assert_int_equal(count_tmp_files(), 0);
    strbuf_free(&child_path);
    strbuf_free(&err);
    strbuf_free(&got);
}

/*
 * Whoever can write to the directory can plant the temporary name in
 * advance (the name is predictable).  A stale file is replaced; a
 * symbolic link is not followed: the file it points to stays untouched,
 * and the target becomes a regular file.
 */
static void test_planted_tmp_name(void **state)
{
    STRBUF *path = strbuf_alloc(0);
    STRBUF *tmp = strbuf_alloc(0);
    STRBUF *victim = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    STRBUF *got = strbuf_alloc(0);

    (void) state;
    tmp_path(path, "planted.cf");
    strbuf_printf(tmp, "%s.tmp.%ld", path->data, (long) getpid());

    /* A stale temporary file of a crashed writer with our pid. */
    assert_int_equal(rename(unit_write_file("stale", "stale contents, long"),
                            tmp->data), 0);
    assert_int_equal(file_write_atomic(path->data, "new\n", 4, 0644, err), 0);
    slurp(path->data, got);
    assert_string_equal(got->data, "new\n");
    assert_int_equal(count_tmp_files(), 0);

    /* A symbolic link. */
    strbuf_set(victim, unit_write_file("victim", "precious\n"));
    assert_int_equal(chmod(victim->data, 0604), 0);
    assert_int_equal(symlink(victim->data, tmp->data), 0);
    assert_int_equal(file_write_atomic(path->data, "newer\n", 6, 0600, err),
                     0);
    slurp(victim->data, got);
    assert_string_equal(got->data, "precious\n");
    assert_int_equal(mode_of(victim->data), 0604);
    slurp(path->data, got);
    assert_string_equal(got->data, "newer\n");
    assert_int_equal(mode_of(path->data), 0644);        /* lstat: regular */
    assert_int_equal(count_tmp_files(), 0);
    strbuf_free(&path);
    strbuf_free(&tmp);
    strbuf_free(&victim);
    strbuf_free(&err);
    strbuf_free(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_file),
        cmocka_unit_test(test_replace_keeps_mode),
        cmocka_unit_test(test_contents),
        cmocka_unit_test(test_missing_directory),
        cmocka_unit_test(test_target_is_directory),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test(test_planted_tmp_name),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
