/*
 * test_dict_lmdb - lmdb: tables: build, lookup, rebuild under a reader,
 * failures, map growth, locking, and interoperation with Postfix's postmap
 * (skipped when /usr/sbin/postmap is not installed).
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "mail/dict.h"
#include "mail/dict_lmdb.h"
#include "util/xmalloc.h"

#define T_POSTMAP   "/usr/sbin/postmap"

/* t_path - DIR/name, to free. */
static char *t_path(const char *name)
{
    STRBUF *sb = strbuf_alloc(128);

    strbuf_printf(sb, "%s/%s", unit_tmpdir(), name);
    return strbuf_export(&sb);
}

static char *t_source(const char *name, const char *text)
{
    return xstrdup(unit_write_file(name, text));
}

static void t_build(const char *source, int flags)
{
    STRBUF *err = strbuf_alloc(64);

    if (dict_lmdb_build(source, NULL, flags, err) != 0)
        fail_msg("build %s: %s", source, err->data);
    strbuf_free(&err);
}

/* t_build_fails - the build must fail with 'want' in the reason. */
static void t_build_fails(const char *source, const char *want)
{
    STRBUF *err = strbuf_alloc(64);

    assert_int_equal(dict_lmdb_build(source, NULL, DICT_FLAG_DEFAULT, err),
                     -1);
    if (strstr(err->data, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err->data, want);
    strbuf_free(&err);
}

static DICT *t_open(const char *source, int flags)
{
    STRBUF *spec = strbuf_alloc(128);
    STRBUF *err = strbuf_alloc(64);
    DICT *d;

    strbuf_printf(spec, "lmdb:%s", source);
    if ((d = dict_open(spec->data, flags, err)) == NULL)
        fail_msg("open %s: %s", spec->data, err->data);
    strbuf_free(&spec);
    strbuf_free(&err);
    return d;
}

/* t_open_fails - dict_open() must fail with 'want' in the reason. */
static void t_open_fails(const char *source, const char *want)
{
    STRBUF *spec = strbuf_alloc(128);
    STRBUF *err = strbuf_alloc(64);

    strbuf_printf(spec, "lmdb:%s", source);
    assert_null(dict_open(spec->data, DICT_FLAG_DEFAULT, err));
    if (strstr(err->data, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err->data, want);
    strbuf_free(&spec);
    strbuf_free(&err);
}

/* t_expect - key has value want, or is not there when want is NULL. */
static void t_expect(DICT *d, const char *key, const char *want)
{
    const char *value = NULL;
    int rc = dict_lookup(d, key, &value);

    if (rc == DICT_ERROR)
        fail_msg("lookup \"%s\": %s", key, d->error->data);
    if (want == NULL) {
        if (rc != DICT_NOTFOUND)
            fail_msg("lookup \"%s\": found \"%s\"", key, value);
    } else {
        if (rc != DICT_FOUND)
            fail_msg("lookup \"%s\": not found, want \"%s\"", key, want);
        assert_string_equal(value, want);
    }
}

static char *t_db_path(const char *source)
{
    STRBUF *sb = strbuf_alloc(128);

    strbuf_printf(sb, "%s.lmdb", source);
    return strbuf_export(&sb);
}

/*
 * Raw LMDB access, independent of the module, to check what is on disk
 * and to make files the module did not write.
 */
static MDB_env *t_raw_env(const char *db_path, unsigned int flags)
{
    MDB_env *env;

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 1 << 20), 0);
    assert_int_equal(mdb_env_open(env, db_path, MDB_NOSUBDIR | MDB_NOLOCK
                                  | flags, 0644), 0);
    return env;
}

/* t_raw_get - the raw stored value (with any NUL), or MDB_NOTFOUND. */
static int t_raw_get(const char *db_path, const void *key, size_t klen,
                     STRBUF *value)
{
    MDB_env *env = t_raw_env(db_path, MDB_RDONLY);
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k;
    MDB_val v;
    int rc;

    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    k.mv_data = (void *) key;
    k.mv_size = klen;
    if ((rc = mdb_get(txn, dbi, &k, &v)) == 0)
        strbuf_setn(value, v.mv_data, v.mv_size);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

/* t_raw_put - store key/value with exactly the given lengths. */
static void t_raw_put(MDB_env *env, const char *key, size_t klen,
                      const char *value, size_t vlen)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k;
    MDB_val v;

    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    k.mv_data = (void *) key;
    k.mv_size = klen;
    v.mv_data = (void *) value;
    v.mv_size = vlen;
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
}

/* t_write_at - overwrite bytes of a file in place. */
static void t_write_at(const char *path, off_t offset, const void *data,
                       size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);

    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, offset), (ssize_t) len);
    assert_int_equal(close(fd), 0);
}

static double t_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* t_big_source - "keyNNNNN value number NNNNN" lines. */
static char *t_big_source(const char *name, int count)
{
    STRBUF *text = strbuf_alloc(32 * (size_t) count);
    char *path;

    for (int i = 0; i < count; i++)
        strbuf_printf_append(text, "key%05d value number %05d\n", i, i);
    path = t_source(name, text->data);
    strbuf_free(&text);
    return path;
}

static void test_build_lookup(void **state)
{
    char *src;
    DICT *d;

    (void) state;
    src = t_source("basic",
                   "# a comment\n"
                   "Foo bar\n"
                   "\n"
                   "spaced   value with   inner  spaces  \n"
                   "\"quoted key\" q\n"
                   "cont first\n"
                   "  second\n"
                   "user@Example.COM OK\n");
    t_build(src, DICT_FLAG_DEFAULT);
    d = t_open(src, DICT_FLAG_DEFAULT);
    assert_true(d->flags & DICT_FLAG_FIXED);
    assert_string_equal(d->type, "lmdb");
    t_expect(d, "foo", "bar");
    t_expect(d, "FOO", "bar");
    t_expect(d, "spaced", "value with   inner  spaces");
    t_expect(d, "\"quoted key\"", "q");
    t_expect(d, "\"QUOTED KEY\"", "q");
    t_expect(d, "quoted key", NULL);
    t_expect(d, "cont", "first  second");
    t_expect(d, "user@example.com", "OK");
    t_expect(d, "nope", NULL);
    t_expect(d, "", NULL);
    t_expect(d, "fo", NULL);
    t_expect(d, "foo ", NULL);
    dict_close(&d);
    assert_null(d);
    free(src);
}

/* Keys are folded on build only with DICT_FLAG_FOLD_FIX. */
static void test_fold_flags(void **state)
{
    char *src;
    DICT *d;

    (void) state;
    src = t_source("nofold", "MixedCase v1\nlower v2\n");
    t_build(src, 0);
    d = t_open(src, 0);
    t_expect(d, "MixedCase", "v1");
    t_expect(d, "mixedcase", NULL);
    t_expect(d, "lower", "v2");
    dict_close(&d);

    /* A folding reader of an unfolded table cannot find mixed case. */
    d = t_open(src, DICT_FLAG_DEFAULT);
    t_expect(d, "MixedCase", NULL);
    t_expect(d, "LOWER", "v2");
    dict_close(&d);

    t_build(src, DICT_FLAG_FOLD_FIX);
    d = t_open(src, DICT_FLAG_DEFAULT);
    t_expect(d, "MIXEDCASE", "v1");
    t_expect(d, "mixedcase", "v1");
    dict_close(&d);
    free(src);
}

/* What is on disk: the main database, keys and values with their NUL. */
static void test_on_disk_format(void **state)
{
    STRBUF *value = strbuf_alloc(16);
    MDB_env *env;
    MDB_stat st;
    char *src;
    char *db;

    (void) state;
    src = t_source("format", "Alpha one\nbeta two words\n");
    db = t_db_path(src);
    t_build(src, DICT_FLAG_DEFAULT);
    assert_int_equal(t_raw_get(db, "alpha", 6, value), 0);
    assert_int_equal(value->len, 4);
    assert_memory_equal(value->data, "one", 4);
    assert_int_equal(t_raw_get(db, "beta", 5, value), 0);
    assert_int_equal(value->len, 10);
    assert_memory_equal(value->data, "two words", 10);
    assert_int_equal(t_raw_get(db, "alpha", 5, value), MDB_NOTFOUND);
    assert_int_equal(t_raw_get(db, "Alpha", 6, value), MDB_NOTFOUND);

    env = t_raw_env(db, MDB_RDONLY);
    assert_int_equal(mdb_env_stat(env, &st), 0);
    assert_int_equal(st.ms_entries, 2);
    mdb_env_close(env);

    /* A build to an explicit path. */
    free(db);
    db = t_path("elsewhere.lmdb");
    {
        STRBUF *err = strbuf_alloc(64);
        char *name = t_path("elsewhere");
        DICT *d;

        assert_int_equal(dict_lmdb_build(src, db, DICT_FLAG_DEFAULT, err), 0);
        d = t_open(name, DICT_FLAG_DEFAULT);
        t_expect(d, "alpha", "one");
        dict_close(&d);
        free(name);
        strbuf_free(&err);
    }
    strbuf_free(&value);
    free(db);
    free(src);
}

/* A reader sees a rebuild at its next lookup, without reopening. */
static void test_rebuild_while_open(void **state)
{
    STRBUF *text = strbuf_alloc(256);
    STRBUF *want = strbuf_alloc(64);
    char *src;
    DICT *d;

    (void) state;
    src = t_source("rebuild", "a 1\nb 2\n");
    t_build(src, DICT_FLAG_DEFAULT);
    d = t_open(src, DICT_FLAG_DEFAULT);
    t_expect(d, "a", "1");
    t_expect(d, "b", "2");

    free(src);
    src = t_source("rebuild", "a 10\nc 30\n");
    t_build(src, DICT_FLAG_DEFAULT);
    t_expect(d, "a", "10");
    t_expect(d, "b", NULL);
    t_expect(d, "c", "30");

    /* Many rebuilds reuse freed pages; the reader must keep up. */
    for (int round = 0; round < 30; round++) {
        strbuf_reset(text);
        for (int i = 0; i < 50; i++)
            strbuf_printf_append(text, "k%d round %d value %d\n", i, round,
                                 i);
        free(src);
        src = t_source("rebuild", text->data);
        t_build(src, DICT_FLAG_DEFAULT);
        strbuf_printf(want, "round %d value 7", round);
        t_expect(d, "k7", want->data);
        strbuf_printf(want, "round %d value 49", round);
        t_expect(d, "k49", want->data);
        t_expect(d, "a", NULL);
    }
    dict_close(&d);
    strbuf_free(&text);
    strbuf_free(&want);
    free(src);
}

/* A bad source leaves the old table as it was. */
static void test_failed_rebuild(void **state)
{
    struct stat st;
    char *src;
    char *db;
    DICT *d;
    DICT *d2;

    (void) state;
    src = t_source("failed", "a 1\nb 2\n");
    t_build(src, DICT_FLAG_DEFAULT);
    d = t_open(src, DICT_FLAG_DEFAULT);
    t_expect(d, "a", "1");

    free(src);
    src = t_source("failed", "a 10\nb 20\nnovalue\nc 30\n");
    {
        STRBUF *want = strbuf_alloc(64);

        strbuf_printf(want, "%s, line 3: ", src);
        t_build_fails(src, want->data);
        strbuf_free(&want);
    }
    t_expect(d, "a", "1");
    t_expect(d, "b", "2");
    t_expect(d, "c", NULL);

    /* A second, separate environment sees the same. */
    d2 = t_open(src, 0);
    t_expect(d2, "a", "1");
    t_expect(d2, "c", NULL);
    dict_close(&d2);

    free(src);
    src = t_source("failed", "a 10\n\"unterminated c 30\n");
    t_build_fails(src, ", line 2: ");
    t_expect(d, "a", "1");

    free(src);
    src = t_source("failed", "a 10\nb 20\nc 30\n");
    t_build(src, DICT_FLAG_DEFAULT);
    t_expect(d, "a", "10");
    t_expect(d, "c", "30");
    dict_close(&d);
    free(src);

    /* A failed first build leaves no file behind. */
    src = t_source("failednew", "ok 1\nbroken\n");
    db = t_db_path(src);
    t_build_fails(src, ", line 2: ");
    assert_int_equal(stat(db, &st), -1);
    assert_int_equal(errno, ENOENT);
    free(db);
    free(src);

    /* A missing source. */
    src = t_path("nosuchsource");
    t_build_fails(src, src);
    free(src);
}

/* LMDB keys are at most 511 bytes, the NUL included. */
static void test_long_key(void **state)
{
    STRBUF *text = strbuf_alloc(1024);
    STRBUF *key = strbuf_alloc(1024);
    struct stat st;
    char *src;
    char *db;
    DICT *d;

    (void) state;
    src = t_source("longkey", "short ok\n");
    t_build(src, DICT_FLAG_DEFAULT);
    d = t_open(src, DICT_FLAG_DEFAULT);

    for (int i = 0; i < 600; i++)
        strbuf_addch(key, 'k');
    strbuf_printf(text, "short changed\n%s long\n", key->data);
    free(src);
    src = t_source("longkey", text->data);
    t_build_fails(src, ", line 2: key longer than 510 bytes");
    t_expect(d, "short", "ok");
    t_expect(d, key->data, NULL);

    /* The longest key that fits. */
    strbuf_truncate(key, 510);
    strbuf_printf(text, "short changed\n%s long\n", key->data);
    free(src);
    src = t_source("longkey", text->data);
    t_build(src, DICT_FLAG_DEFAULT);
    t_expect(d, key->data, "long");
    t_expect(d, "short", "changed");
    dict_close(&d);
    free(src);

    /* A first build that fails in LMDB leaves no file behind. */
    strbuf_addch(key, 'k');
    strbuf_printf(text, "%s long\n", key->data);
    src = t_source("longnew", text->data);
    db = t_db_path(src);
    t_build_fails(src, ", line 1: key longer than 510 bytes");
    assert_int_equal(stat(db, &st), -1);
    assert_int_equal(errno, ENOENT);
    strbuf_free(&text);
    strbuf_free(&key);
    free(db);
    free(src);
}

static void test_missing(void **state)
{
    char *name = t_path("missing");

    (void) state;
    t_open_fails(name, "missing.lmdb: No such file or directory");
    free(name);
}

static void test_corrupt(void **state)
{
    STRBUF *garbage = strbuf_alloc(20000);
    unsigned int seed = 12345;
    MDB_envinfo info;
    MDB_stat st;
    MDB_env *env;
    const char *value;
    char *src;
    char *db;
    char *dir;
    DICT *d;

    (void) state;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245 + 12345;
        strbuf_addch(garbage, (int) (seed >> 16) & 0xff);
    }
    src = t_path("garbage");
    db = t_db_path(src);
    t_write_at(db, 0, "", 0);
    t_open_fails(src, "empty");
    t_write_at(db, 0, garbage->data, garbage->len);
    t_open_fails(src, "garbage.lmdb: ");
    free(db);
    free(src);

    /* A valid header whose only data page is damaged. */
    src = t_source("damaged", "a 1\nb 2\n");
    db = t_db_path(src);
    t_build(src, DICT_FLAG_DEFAULT);
    env = t_raw_env(db, MDB_RDONLY);
    assert_int_equal(mdb_env_info(env, &info), 0);
    assert_int_equal(mdb_env_stat(env, &st), 0);
    mdb_env_close(env);
    assert_int_equal(info.me_last_pgno, 2);     /* pages 0, 1: meta */

    d = t_open(src, DICT_FLAG_DEFAULT);
    t_expect(d, "a", "1");
    /* Page flags (at offset 10) that are neither branch nor leaf. */
    t_write_at(db, 2 * (off_t) st.ms_psize + 10, "\0\0", 2);
    assert_int_equal(dict_lookup(d, "a", &value), DICT_ERROR);
    assert_non_null(strstr(d->error->data, "MDB_CORRUPTED"));
    assert_non_null(strstr(d->error->data, "damaged.lmdb"));
    assert_int_equal(d->sequence(d, 1, &value, &value), DICT_ERROR);
    dict_close(&d);
    t_open_fails(src, "MDB_CORRUPTED");

    /* The builder cannot empty a damaged tree; a removed file it can. */
    t_build_fails(src, "MDB_CORRUPTED");
    assert_int_equal(unlink(db), 0);
    t_build(src, DICT_FLAG_DEFAULT);
    d = t_open(src, DICT_FLAG_DEFAULT);
    t_expect(d, "b", "2");
    dict_close(&d);
    free(db);
    free(src);

    /* A directory is not a table. */
    dir = t_path("dir.lmdb");
    assert_int_equal(mkdir(dir, 0700), 0);
    src = t_path("dir");
    t_open_fails(src, "not a regular file");
    free(src);
    free(dir);
    strbuf_free(&garbage);
}

static void test_sequence(void **state)
{
    STRBUF *text = strbuf_alloc(1024);
    STRBUF *want = strbuf_alloc(64);
    const char *key;
    const char *value;
    char *src;
    DICT *d;
    int n = 0;
    int rc;

    (void) state;
    for (int i = 0; i < 40; i++)
        strbuf_printf_append(text, "K%02d value %d\n", i, i);
    src = t_source("seq", text->data);
    t_build(src, DICT_FLAG_DEFAULT);
    d = t_open(src, DICT_FLAG_DEFAULT);
    assert_non_null(d->sequence);
    for (rc = d->sequence(d, 1, &key, &value); rc == DICT_FOUND && n < 40;
         rc = d->sequence(d, 0, &key, &value)) {
        strbuf_printf(want, "k%02d", n);        /* sorted, folded */
        assert_string_equal(key, want->data);
        strbuf_printf(want, "value %d", n);
        assert_string_equal(value, want->data);
        if (n == 10)
            t_expect(d, "k30", "value 30");     /* does not lose the place */
        n++;
    }
    assert_int_equal(rc, DICT_NOTFOUND);
    assert_int_equal(n, 40);
    assert_int_equal(d->sequence(d, 0, &key, &value), DICT_NOTFOUND);

    /* Starting over. */
    assert_int_equal(d->sequence(d, 1, &key, &value), DICT_FOUND);
    assert_string_equal(key, "k00");
    assert_int_equal(d->sequence(d, 0, &key, &value), DICT_FOUND);
    assert_string_equal(key, "k01");
    dict_close(&d);

    /* An empty table. */
    free(src);
    src = t_source("seqempty", "# nothing\n");
    t_build(src, DICT_FLAG_DEFAULT);
    d = t_open(src, DICT_FLAG_DEFAULT);
    assert_int_equal(d->sequence(d, 1, &key, &value), DICT_NOTFOUND);
    t_expect(d, "x", NULL);
    dict_close(&d);
    strbuf_free(&text);
    strbuf_free(&want);
    free(src);
}

/* Duplicates: dict_source warns and keeps the first. */
static void test_duplicates(void **state)
{
    char *src;
    DICT *d;

    (void) state;
    unit_log_reset();
    src = t_source("dups", "a first\nA second\nb x\n");
    t_build(src, DICT_FLAG_DEFAULT);
    assert_true(unit_logged("duplicate entry"));
    d = t_open(src, DICT_FLAG_DEFAULT);
    t_expect(d, "a", "first");
    dict_close(&d);
    free(src);
}

/* A source edited after the build (and not just now) earns a warning. */
static void test_stale_warning(void **state)
{
    struct timespec times[2];
    char *src;
    char *db;
    DICT *d;

    (void) state;
    src = t_source("stale", "a 1\n");
    db = t_db_path(src);
    t_build(src, DICT_FLAG_DEFAULT);
    unit_log_reset();
    d = t_open(src, DICT_FLAG_DEFAULT);
    dict_close(&d);
    assert_false(unit_logged("older than source"));

    times[0].tv_sec = times[1].tv_sec = time(NULL) - 1000;
    times[0].tv_nsec = times[1].tv_nsec = 0;
    assert_int_equal(utimensat(AT_FDCWD, db, times, 0), 0);
    times[0].tv_sec = times[1].tv_sec = time(NULL) - 500;
    assert_int_equal(utimensat(AT_FDCWD, src, times, 0), 0);
    d = t_open(src, DICT_FLAG_DEFAULT);
    t_expect(d, "a", "1");
    dict_close(&d);
    assert_true(unit_logged("is older than source file"));
    free(db);
    free(src);
}

/* A build that outgrows the map grows it and starts over. */
static void test_map_growth(void **state)
{
    struct stat st;
    char *src;
    char *db;
    DICT *d;

    (void) state;
    dict_lmdb_set_map_size(65536);
    src = t_big_source("big", 10000);
    db = t_db_path(src);
    t_build(src, DICT_FLAG_DEFAULT);
    assert_int_equal(stat(db, &st), 0);
    assert_true(st.st_size > 4 * 65536);

    d = t_open(src, DICT_FLAG_DEFAULT);
    t_expect(d, "key00000", "value number 00000");
    t_expect(d, "KEY05000", "value number 05000");
    t_expect(d, "key09999", "value number 09999");
    t_expect(d, "key10000", NULL);

    /* A rebuild of the big file, then a smaller table. */
    t_build(src, DICT_FLAG_DEFAULT);
    t_expect(d, "key09999", "value number 09999");
    free(src);
    src = t_big_source("big", 100);
    t_build(src, DICT_FLAG_DEFAULT);
    t_expect(d, "key00099", "value number 00099");
    t_expect(d, "key00100", NULL);
    dict_close(&d);
    dict_lmdb_set_map_size(0);
    free(db);
    free(src);
}

/* A reader whose map is smaller than the table another builder grew. */
static void test_reader_follows_growth(void **state)
{
    char *src;
    DICT *d;

    (void) state;
    dict_lmdb_set_map_size(65536);
    src = t_source("grow", "key00001 small\n");
    t_build(src, DICT_FLAG_DEFAULT);
    d = t_open(src, DICT_FLAG_DEFAULT);
    t_expect(d, "key00001", "small");
    free(src);
    src = t_big_source("grow", 20000);
    t_build(src, DICT_FLAG_DEFAULT);
    t_expect(d, "key00001", "value number 00001");
    t_expect(d, "key19999", "value number 19999");
    dict_close(&d);
    dict_lmdb_set_map_size(0);
    free(src);
}

/* Tables written without the trailing NUL (Postfix LMDB_NO_TRAILING_NULL). */
static void test_no_nul_table(void **state)
{
    const char *key;
    const char *value;
    MDB_env *env;
    char *name;
    char *db;
    DICT *d;

    (void) state;
    name = t_path("nonul");
    db = t_db_path(name);
    env = t_raw_env(db, 0);
    t_raw_put(env, "plain", 5, "value", 5);
    t_raw_put(env, "mixed", 6, "v2", 2);
    t_raw_put(env, "other", 5, "v3", 3);
    mdb_env_close(env);

    d = t_open(name, DICT_FLAG_DEFAULT);
    t_expect(d, "plain", "value");
    t_expect(d, "mixed", "v2");
    t_expect(d, "other", "v3");
    t_expect(d, "plai", NULL);
    assert_int_equal(d->sequence(d, 1, &key, &value), DICT_FOUND);
    assert_string_equal(key, "mixed");
    assert_string_equal(value, "v2");
    assert_int_equal(d->sequence(d, 0, &key, &value), DICT_FOUND);
    assert_string_equal(key, "other");
    assert_int_equal(d->sequence(d, 0, &key, &value), DICT_FOUND);
    assert_string_equal(key, "plain");
    assert_int_equal(d->sequence(d, 0, &key, &value), DICT_NOTFOUND);
    dict_close(&d);
    free(db);
    free(name);
}

/* New files: owner rw plus the source's read bits, whatever the umask. */
static void test_file_mode(void **state)
{
    static const struct {
        mode_t  source;
        mode_t  table;
    } cases[] = {
        {0640, 0640}, {0604, 0604}, {0400, 0600}, {0666, 0644}, {0600, 0600},
    };
    mode_t old_umask = umask(077);
    struct stat st;

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *src = t_source("mode", "a b\n");
        char *db = t_db_path(src);

        (void) unlink(db);
        assert_int_equal(chmod(src, cases[i].source), 0);
        t_build(src, DICT_FLAG_DEFAULT);
        assert_int_equal(stat(db, &st), 0);
        assert_int_equal(st.st_mode & 07777, cases[i].table);
        free(db);
        free(src);
    }

    /* A rebuild keeps the mode of the existing file. */
    {
        char *src = t_source("mode", "a b\n");
        char *db = t_db_path(src);

        assert_int_equal(chmod(db, 0640), 0);
        assert_int_equal(chmod(src, 0644), 0);
        t_build(src, DICT_FLAG_DEFAULT);
        assert_int_equal(stat(db, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        free(db);
        free(src);
    }
    umask(old_umask);
}

/*
 * t_lock_child - a child process holds an fcntl() lock of 'type' on the
 * whole file for 'hold' seconds; returns once the lock is held.
 */
static pid_t t_lock_child(const char *path, short type, double hold)
{
    int fds[2];
    pid_t pid;
    char ch;

    assert_int_equal(pipe(fds), 0);
    if ((pid = fork()) == 0) {
        struct flock fl;
        int fd = open(path, type == F_WRLCK ? O_RDWR : O_RDONLY);

        memset(&fl, 0, sizeof(fl));
        fl.l_type = type;
        fl.l_whence = SEEK_SET;
        if (fd < 0 || fcntl(fd, F_SETLKW, &fl) < 0
            || write(fds[1], "x", 1) != 1)
            _exit(1);
        usleep((useconds_t) (hold * 1e6));
        _exit(0);
    }
    assert_true(pid > 0);
    (void) close(fds[1]);
    assert_int_equal(read(fds[0], &ch, 1), 1);
    (void) close(fds[0]);
    return pid;
}

static void t_wait_child(pid_t pid)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Readers wait for a writer's exclusive lock; the builder for readers. */
static void test_locking(void **state)
{
    double start;
    char *src;
    char *db;
    pid_t pid;
    DICT *d;

    (void) state;
    src = t_source("locked", "a 1\n");
    db = t_db_path(src);
    t_build(src, DICT_FLAG_DEFAULT);
    d = t_open(src, DICT_FLAG_DEFAULT);

    pid = t_lock_child(db, F_WRLCK, 0.5);
    start = t_now();
    t_expect(d, "a", "1");
    assert_true(t_now() - start >= 0.3);
    t_wait_child(pid);

    pid = t_lock_child(db, F_RDLCK, 0.5);
    t_expect(d, "a", "1");                      /* shared: no wait */
    start = t_now();
    t_build(src, DICT_FLAG_DEFAULT);
    assert_true(t_now() - start >= 0.3);
    t_wait_child(pid);

    dict_close(&d);
    free(db);
    free(src);
}

/*
 * Interoperation with Postfix.  postmap reads main.cf from -c DIR; an
 * empty one will do.
 */
static int t_postmap_skip(void)
{
    return access(T_POSTMAP, X_OK) != 0;
}

/* t_postmap - run postmap with args; output into out; exit status. */
static int t_postmap(const char *args, STRBUF *out)
{
    STRBUF *cmd = strbuf_alloc(256);
    char *conf = t_path("main.cf");
    char buf[512];
    size_t n;
    FILE *fp;
    int status;

    if (access(conf, F_OK) != 0)
        (void) unit_write_file("main.cf", "");
    strbuf_printf(cmd, "%s -c %s %s 2>&1", T_POSTMAP, unit_tmpdir(), args);
    assert_non_null(fp = popen(cmd->data, "r"));
    strbuf_reset(out);
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        strbuf_append(out, buf, n);
    status = pclose(fp);
    assert_true(WIFEXITED(status));
    strbuf_free(&cmd);
    free(conf);
    return WEXITSTATUS(status);
}

/* t_postmap_query - postmap -q must print want (or find nothing). */
static void t_postmap_query(const char *key, const char *src,
                            const char *want)
{
    STRBUF *args = strbuf_alloc(128);
    STRBUF *out = strbuf_alloc(128);
    int rc;

    strbuf_printf(args, "-q '%s' lmdb:%s", key, src);
    rc = t_postmap(args->data, out);
    if (want == NULL) {
        if (rc != 1)
            fail_msg("postmap %s: status %d: %s", args->data, rc, out->data);
    } else {
        if (rc != 0)
            fail_msg("postmap %s: status %d: %s", args->data, rc, out->data);
        strbuf_trim_right(out);
        assert_string_equal(out->data, want);
    }
    strbuf_free(&args);
    strbuf_free(&out);
}

static void test_postmap_builds_we_read(void **state)
{
    STRBUF *out = strbuf_alloc(256);
    STRBUF *args = strbuf_alloc(256);
    STRBUF *text = strbuf_alloc(256);
    const char *key;
    const char *value;
    char *src;
    DICT *d;
    int n = 0;

    (void) state;
    if (t_postmap_skip())
        skip();
    src = t_source("pfbuilt",
                   "Foo bar\n"
                   "\"quoted key\" with spaces  in value\n"
                   "user@Example.COM REJECT go away\n");
    strbuf_printf(args, "lmdb:%s", src);
    if (t_postmap(args->data, out) != 0)
        fail_msg("postmap %s: %s", args->data, out->data);
    d = t_open(src, DICT_FLAG_DEFAULT);
    t_expect(d, "FOO", "bar");
    t_expect(d, "\"quoted key\"", "with spaces  in value");
    t_expect(d, "user@example.com", "REJECT go away");
    t_expect(d, "nope", NULL);
    for (int rc = d->sequence(d, 1, &key, &value); rc == DICT_FOUND && n < 9;
         rc = d->sequence(d, 0, &key, &value))
        n++;
    assert_int_equal(n, 3);

    /* postmap rebuilds while we hold the table open. */
    for (int i = 0; i < 300; i++)
        strbuf_printf_append(text, "k%d v%d\n", i, i);
    free(src);
    src = t_source("pfbuilt", text->data);
    if (t_postmap(args->data, out) != 0)
        fail_msg("postmap %s: %s", args->data, out->data);
    t_expect(d, "foo", NULL);
    t_expect(d, "k299", "v299");

    /* We rebuild a table postmap made, and postmap reads it. */
    free(src);
    src = t_source("pfbuilt", "after us\n");
    t_build(src, DICT_FLAG_DEFAULT);
    t_expect(d, "after", "us");
    t_expect(d, "k1", NULL);
    t_postmap_query("after", src, "us");
    t_postmap_query("k1", src, NULL);
    dict_close(&d);
    strbuf_free(&out);
    strbuf_free(&args);
    strbuf_free(&text);
    free(src);
}

static void test_we_build_postmap_reads(void **state)
{
    STRBUF *out = strbuf_alloc(256);
    STRBUF *args = strbuf_alloc(256);
    char *src;

    (void) state;
    if (t_postmap_skip())
        skip();
    dict_lmdb_set_map_size(65536);
    src = t_big_source("ourbuilt", 5000);
    t_build(src, DICT_FLAG_DEFAULT);
    dict_lmdb_set_map_size(0);
    t_postmap_query("key00000", src, "value number 00000");
    t_postmap_query("key04999", src, "value number 04999");
    t_postmap_query("KEY02500", src, "value number 02500");
    t_postmap_query("key05000", src, NULL);

    free(src);
    src = t_source("ourbuilt",
                   "Foo bar\n"
                   "\"quoted key\" with spaces  in value\n"
                   "cont first\n"
                   "  second\n");
    t_build(src, DICT_FLAG_DEFAULT);
    t_postmap_query("foo", src, "bar");
    t_postmap_query("\"quoted key\"", src, "with spaces  in value");
    t_postmap_query("cont", src, "first  second");
    t_postmap_query("key00000", src, NULL);

    /* postmap -s walks the whole table: sorted key<TAB>value lines. */
    strbuf_printf(args, "-s lmdb:%s", src);
    assert_int_equal(t_postmap(args->data, out), 0);
    assert_string_equal(out->data,
                        "\"quoted key\"\twith spaces  in value\n"
                        "cont\tfirst  second\n"
                        "foo\tbar\n");
    strbuf_free(&out);
    strbuf_free(&args);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_lookup),
        cmocka_unit_test(test_fold_flags),
        cmocka_unit_test(test_on_disk_format),
        cmocka_unit_test(test_rebuild_while_open),
        cmocka_unit_test(test_failed_rebuild),
        cmocka_unit_test(test_long_key),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_sequence),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_stale_warning),
        cmocka_unit_test(test_map_growth),
        cmocka_unit_test(test_reader_follows_growth),
        cmocka_unit_test(test_no_nul_table),
        cmocka_unit_test(test_file_mode),
        cmocka_unit_test(test_locking),
        cmocka_unit_test(test_postmap_builds_we_read),
        cmocka_unit_test(test_we_build_postmap_reads),
    };

    msg_init("test_dict_lmdb", MSG_STDERR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
