/*
 * dict_lmdb - lmdb: tables in Postfix's on-disk format (see dict_lmdb.h).
 *
 * Why no LMDB lock file: Postfix opens these files with MDB_NOLOCK, and a
 * reader table in the lock file would have to be writable by every reader.
 * Without it LMDB does not know which snapshots readers still use, so
 * nothing may hold a read transaction while a writer runs: readers take a
 * shared fcntl() lock for the length of each read transaction and never
 * keep one open between calls (sequence() repositions its cursor on each
 * call for that reason), and the builder holds an exclusive lock.  The
 * locks cover the whole file, as Postfix's myflock() does, so Postfix and
 * Postern programs exclude each other correctly.
 *
 * POSIX drops all of a process's fcntl() locks on a file when it closes any
 * descriptor of that file; LMDB closes its own descriptor in
 * mdb_env_close(), so that comes last.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mail/dict_lmdb.h"
#include "mail/dict_source.h"
#include "util/msg.h"
#include "util/xmalloc.h"

#define DICT_LMDB_ENV_FLAGS     (MDB_NOSUBDIR | MDB_NOLOCK)
#define DICT_LMDB_RESIZE_RETRIES 5      /* MDB_MAP_RESIZED per transaction */
#define DICT_LMDB_GROW_RETRIES  64      /* MDB_MAP_FULL per build */
#define DICT_LMDB_MAP_SIZE_MAX  (SIZE_MAX / 2)

static size_t dict_lmdb_map_size = DICT_LMDB_MAP_SIZE_DEF;

typedef struct DICT_LMDB {
    DICT    dict;
    char   *path;                       /* name + ".lmdb" */
    int     lock_fd;                    /* for fcntl() locks only */
    MDB_env *env;
    MDB_dbi dbi;
    STRBUF *key_buf;                    /* sequence() key, without NUL */
    STRBUF *val_buf;                    /* the value last returned */
    STRBUF *seq_pos;                    /* raw key sequence() returned last */
    int     seq_active;                 /* seq_pos is valid */
} DICT_LMDB;

void dict_lmdb_set_map_size(size_t size)
{
    if (size == 0)
        size = DICT_LMDB_MAP_SIZE_DEF;
    dict_lmdb_map_size = size < DICT_LMDB_MAP_SIZE_MIN
        ? DICT_LMDB_MAP_SIZE_MIN : size;
}

/* dict_lmdb_lock - F_RDLCK, F_WRLCK or F_UNLCK on the whole file. */
static int dict_lmdb_lock(int fd, short type)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    while (fcntl(fd, F_SETLKW, &fl) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

/*
 * dict_lmdb_txn_begin - mdb_txn_begin() that follows a map that another
 * process has grown: MDB_MAP_RESIZED means "adopt the size in the file".
 */
static int dict_lmdb_txn_begin(MDB_env *env, unsigned int flags,
                               MDB_txn **txn_r)
{
    int rc;

    for (int i = 0; i < DICT_LMDB_RESIZE_RETRIES; i++) {
        if ((rc = mdb_txn_begin(env, NULL, flags, txn_r)) != MDB_MAP_RESIZED)
            return rc;
        if ((rc = mdb_env_set_mapsize(env, 0)) != 0)
            return rc;
    }
    return MDB_MAP_RESIZED;
}

/* dict_lmdb_copy - a stored key or value as a C string, minus its NUL. */
static const char *dict_lmdb_copy(STRBUF *buf, const MDB_val *val)
{
    size_t len = val->mv_size;

    if (len > 0 && ((const char *) val->mv_data)[len - 1] == 0)
        len--;
    strbuf_setn(buf, val->mv_data, len);
    return strbuf_str(buf);
}

/* dict_lmdb_read_begin - shared lock plus read transaction, or DICT_ERROR. */
static int dict_lmdb_read_begin(DICT_LMDB *dl, MDB_txn **txn_r)
{
    int rc;

    if (dict_lmdb_lock(dl->lock_fd, F_RDLCK) < 0)
        return dict_fail(&dl->dict, "lock %s: %s", dl->path, strerror(errno));
    if ((rc = dict_lmdb_txn_begin(dl->env, MDB_RDONLY, txn_r)) != 0) {
        (void) dict_lmdb_lock(dl->lock_fd, F_UNLCK);
        return dict_fail(&dl->dict, "read %s: %s", dl->path,
                         mdb_strerror(rc));
    }
    return 0;
}

/* dict_lmdb_read_end - end the transaction and unlock; passes status on. */
static int dict_lmdb_read_end(DICT_LMDB *dl, MDB_txn *txn, int status)
{
    mdb_txn_abort(txn);
    if (dict_lmdb_lock(dl->lock_fd, F_UNLCK) < 0)
        return dict_fail(&dl->dict, "unlock %s: %s", dl->path,
                         strerror(errno));
    return status;
}

/*
 * dict_lmdb_get - look the key up with its NUL (Postfix TRY1NULL), then
 * without (TRY0NULL, tables written where LMDB_NO_TRAILING_NULL is set).
 * A key longer than LMDB allows cannot be in the table.
 */
static int dict_lmdb_get(DICT_LMDB *dl, MDB_txn *txn, const char *key,
                         MDB_val *value)
{
    size_t len = strlen(key);
    size_t max = (size_t) mdb_env_get_maxkeysize(dl->env);
    MDB_val k;
    int rc = MDB_NOTFOUND;

    k.mv_data = (void *) key;
    if (len + 1 <= max) {
        k.mv_size = len + 1;
        rc = mdb_get(txn, dl->dbi, &k, value);
    }
    if (rc == MDB_NOTFOUND && len > 0 && len <= max) {
        k.mv_size = len;
        rc = mdb_get(txn, dl->dbi, &k, value);
    }
    return rc;
}

static int dict_lmdb_lookup(DICT *d, const char *key, const char **value_r)
{
    DICT_LMDB *dl = (DICT_LMDB *) d;
    MDB_txn *txn;
    MDB_val value;
    int status;
    int rc;

    if (dict_lmdb_read_begin(dl, &txn) < 0)
        return DICT_ERROR;
    rc = dict_lmdb_get(dl, txn, key, &value);
    if (rc == 0) {
        *value_r = dict_lmdb_copy(dl->val_buf, &value);
        status = DICT_FOUND;
    } else if (rc == MDB_NOTFOUND) {
        status = DICT_NOTFOUND;
    } else {
        status = dict_fail(d, "read %s: %s", dl->path, mdb_strerror(rc));
    }
    return dict_lmdb_read_end(dl, txn, status);
}

/*
 * dict_lmdb_seek - position the cursor on the entry after seq_pos (the
 * first entry when starting over).  A rebuild between two calls is
 * harmless: the walk goes on in the new content after the same key.
 */
static int dict_lmdb_seek(DICT_LMDB *dl, MDB_cursor *cursor, int first,
                          MDB_val *key, MDB_val *value)
{
    int rc;

    if (first)
        return mdb_cursor_get(cursor, key, value, MDB_FIRST);
    key->mv_data = dl->seq_pos->data;
    key->mv_size = dl->seq_pos->len;
    rc = mdb_cursor_get(cursor, key, value, MDB_SET_RANGE);
    if (rc == 0 && key->mv_size == dl->seq_pos->len
        && memcmp(key->mv_data, dl->seq_pos->data, key->mv_size) == 0)
        rc = mdb_cursor_get(cursor, key, value, MDB_NEXT);
    return rc;
}

static int dict_lmdb_sequence(DICT *d, int first, const char **key_r,
                              const char **value_r)
{
    DICT_LMDB *dl = (DICT_LMDB *) d;
    MDB_cursor *cursor;
    MDB_txn *txn;
    MDB_val key;
    MDB_val value;
    int status;
    int rc;

    if (!first && !dl->seq_active)
        return DICT_NOTFOUND;
    dl->seq_active = 0;
    if (dict_lmdb_read_begin(dl, &txn) < 0)
        return DICT_ERROR;
    if ((rc = mdb_cursor_open(txn, dl->dbi, &cursor)) == 0) {
        rc = dict_lmdb_seek(dl, cursor, first, &key, &value);
        mdb_cursor_close(cursor);
    }
    if (rc == 0) {
        strbuf_setn(dl->seq_pos, key.mv_data, key.mv_size);
        dl->seq_active = 1;
        *key_r = dict_lmdb_copy(dl->key_buf, &key);
        *value_r = dict_lmdb_copy(dl->val_buf, &value);
        status = DICT_FOUND;
    } else if (rc == MDB_NOTFOUND) {
        status = DICT_NOTFOUND;
    } else {
        status = dict_fail(d, "read %s: %s", dl->path, mdb_strerror(rc));
    }
    return dict_lmdb_read_end(dl, txn, status);
}

static void dict_lmdb_close(DICT *d)
{
    DICT_LMDB *dl = (DICT_LMDB *) d;

    if (dl->env)
        mdb_env_close(dl->env);
    if (dl->lock_fd >= 0)
        (void) close(dl->lock_fd);
    free(dl->path);
    strbuf_free(&dl->key_buf);
    strbuf_free(&dl->val_buf);
    strbuf_free(&dl->seq_pos);
    dict_free(d);
}

/*
 * dict_lmdb_env_check - read the first entry once, so that a file whose
 * header is fine but whose tree is not fails at open, not at lookup.
 * (LMDB trusts its pages: a file cut short after a valid header can still
 * fault when the missing pages are read, in Postfix as here.)
 */
static int dict_lmdb_env_check(DICT_LMDB *dl)
{
    MDB_cursor *cursor;
    MDB_txn *txn;
    MDB_val key;
    MDB_val value;
    int rc;

    if ((rc = dict_lmdb_txn_begin(dl->env, MDB_RDONLY, &txn)) != 0)
        return rc;
    if ((rc = mdb_dbi_open(txn, NULL, 0, &dl->dbi)) == 0
        && (rc = mdb_cursor_open(txn, dl->dbi, &cursor)) == 0) {
        rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
        mdb_cursor_close(cursor);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    mdb_txn_abort(txn);
    return rc;
}

/*
 * dict_lmdb_check_age - warn, as Postfix does, when the source was edited
 * after the last build, unless that was moments ago (a build may follow).
 */
static void dict_lmdb_check_age(DICT_LMDB *dl, time_t db_mtime)
{
    struct stat st;

    if (stat(dl->dict.name, &st) == 0 && st.st_mtime > db_mtime
        && st.st_mtime < time(NULL) - 100)
        msg_warn("database %s is older than source file %s", dl->path,
                 dl->dict.name);
}

/* dict_lmdb_env_open - open the environment under a shared lock. */
static int dict_lmdb_env_open(DICT_LMDB *dl, STRBUF *err)
{
    struct stat st;
    int rc;

    if ((dl->lock_fd = open(dl->path, O_RDONLY | O_CLOEXEC)) < 0
        || fstat(dl->lock_fd, &st) < 0) {
        strbuf_printf(err, "open database %s: %s", dl->path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        strbuf_printf(err, "open database %s: not a regular file", dl->path);
        return -1;
    }
    if (dict_lmdb_lock(dl->lock_fd, F_RDLCK) < 0) {
        strbuf_printf(err, "lock %s: %s", dl->path, strerror(errno));
        return -1;
    }

    /*
     * An empty file is not a table; LMDB would try to initialize it and
     * fail with EBADF.  Checked under the lock: postmap/"postern map"
     * write the header while they hold the exclusive lock.
     */
    if (fstat(dl->lock_fd, &st) < 0) {
        strbuf_printf(err, "open database %s: %s", dl->path, strerror(errno));
        rc = -1;
    } else if (st.st_size == 0) {
        strbuf_printf(err, "open database %s: empty file, not an LMDB table",
                      dl->path);
        rc = -1;
    } else if ((rc = mdb_env_create(&dl->env)) != 0
               || (rc = mdb_env_set_mapsize(dl->env, dict_lmdb_map_size)) != 0
               || (rc = mdb_env_open(dl->env, dl->path,
                                     DICT_LMDB_ENV_FLAGS | MDB_RDONLY,
                                     0644)) != 0
               || (rc = dict_lmdb_env_check(dl)) != 0) {
        strbuf_printf(err, "open database %s: %s", dl->path,
                      mdb_strerror(rc));
        rc = -1;
    }
    if (dict_lmdb_lock(dl->lock_fd, F_UNLCK) < 0 && rc == 0) {
        strbuf_printf(err, "unlock %s: %s", dl->path, strerror(errno));
        rc = -1;
    }
    if (rc == 0)
        dict_lmdb_check_age(dl, st.st_mtime);
    return rc;
}

DICT *dict_lmdb_open(const char *name, int flags, STRBUF *err)
{
    DICT_LMDB *dl = (DICT_LMDB *) dict_alloc("lmdb", name, sizeof(*dl),
                                             flags | DICT_FLAG_FIXED);
    STRBUF *path = strbuf_alloc(strlen(name) + sizeof(DICT_LMDB_SUFFIX));

    strbuf_printf(path, "%s%s", name, DICT_LMDB_SUFFIX);
    dl->path = strbuf_export(&path);
    dl->lock_fd = -1;
    dl->key_buf = strbuf_alloc(64);
    dl->val_buf = strbuf_alloc(64);
    dl->seq_pos = strbuf_alloc(64);
    dl->dict.lookup = dict_lmdb_lookup;
    dl->dict.sequence = dict_lmdb_sequence;
    dl->dict.close = dict_lmdb_close;
    if (dict_lmdb_env_open(dl, err) < 0) {
        dict_lmdb_close(&dl->dict);
        return NULL;
    }
    return &dl->dict;
}

/*
 * The builder.  The source is parsed into memory first, so that a bad
 * line is reported before the table is touched and so that the write
 * transaction can be redone from the same entries when the map is full.
 */
typedef struct DICT_LMDB_ENTRY {
    char   *key;
    char   *value;
    int     lineno;
} DICT_LMDB_ENTRY;

typedef struct DICT_LMDB_BUILD {
    const char *source;                 /* for messages */
    const char *db_path;
    DICT_LMDB_ENTRY *entries;
    size_t  count;
    size_t  size;
    int     fd;                         /* for the exclusive lock */
    int     created;                    /* unlink db_path on failure */
    MDB_env *env;
    size_t  map_size;                   /* current map size */
} DICT_LMDB_BUILD;

static int dict_lmdb_build_add(const char *key, const char *value, int lineno,
                               void *ctx, STRBUF *err)
{
    DICT_LMDB_BUILD *b = ctx;

    (void) err;
    if (b->count == b->size) {
        b->size = b->size ? 2 * b->size : 256;
        b->entries = xreallocarray(b->entries, b->size, sizeof(*b->entries));
    }
    b->entries[b->count].key = xstrdup(key);
    b->entries[b->count].value = xstrdup(value);
    b->entries[b->count].lineno = lineno;
    b->count++;
    return 0;
}

/*
 * dict_lmdb_build_file - open or create the .lmdb file and lock it.  A new
 * file gets owner read/write plus the source's group and other read bits,
 * whatever the umask (postmap sets its umask to the same effect).
 */
static int dict_lmdb_build_file(DICT_LMDB_BUILD *b, STRBUF *err)
{
    struct stat st;
    mode_t mode;

    if (stat(b->source, &st) < 0) {
        strbuf_printf(err, "stat %s: %s", b->source, strerror(errno));
        return -1;
    }
    mode = S_IRUSR | S_IWUSR | (st.st_mode & (S_IRGRP | S_IROTH));
    if ((b->fd = open(b->db_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                      mode)) >= 0) {
        b->created = 1;
        if (fchmod(b->fd, mode) < 0) {
            strbuf_printf(err, "chmod %s: %s", b->db_path, strerror(errno));
            return -1;
        }
    } else if (errno != EEXIST
               || (b->fd = open(b->db_path, O_RDWR | O_CLOEXEC)) < 0) {
        strbuf_printf(err, "open database %s: %s", b->db_path,
                      strerror(errno));
        return -1;
    }
    if (dict_lmdb_lock(b->fd, F_WRLCK) < 0) {
        strbuf_printf(err, "lock %s: %s", b->db_path, strerror(errno));
        return -1;
    }
    if (fstat(b->fd, &st) < 0) {
        strbuf_printf(err, "stat %s: %s", b->db_path, strerror(errno));
        return -1;
    }

    /*
     * The pages that the rebuild frees cannot be reused in the same
     * transaction: start with room for the old file plus a step (Postfix
     * slmdb_open() does the same).
     */
    b->map_size = dict_lmdb_map_size;
    if (b->map_size > DICT_LMDB_MAP_SIZE_MAX
        || (size_t) st.st_size > DICT_LMDB_MAP_SIZE_MAX - b->map_size)
        b->map_size = DICT_LMDB_MAP_SIZE_MAX;
    else
        b->map_size += (size_t) st.st_size;
    return 0;
}

/* dict_lmdb_build_put_error - explain why entry i could not be stored. */
static void dict_lmdb_build_put_error(DICT_LMDB_BUILD *b, size_t i, int rc,
                                      STRBUF *err)
{
    if (rc == MDB_BAD_VALSIZE)
        strbuf_printf(err, "%s, line %d: key longer than %d bytes, the limit "
                      "of lmdb tables", b->source, b->entries[i].lineno,
                      mdb_env_get_maxkeysize(b->env) - 1);
    else
        strbuf_printf(err, "%s, line %d: write %s: %s", b->source,
                      b->entries[i].lineno, b->db_path, mdb_strerror(rc));
}

/*
 * dict_lmdb_build_txn - empty the table and store every entry in one
 * transaction.  Returns 0, MDB_MAP_FULL with *done_r set to the number of
 * entries stored before the map filled up, or -1 with err set.
 */
static int dict_lmdb_build_txn(DICT_LMDB_BUILD *b, size_t *done_r,
                               STRBUF *err)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val key;
    MDB_val value;
    size_t i;
    int rc;

    *done_r = 0;
    if ((rc = dict_lmdb_txn_begin(b->env, 0, &txn)) != 0) {
        strbuf_printf(err, "write %s: %s", b->db_path, mdb_strerror(rc));
        return -1;
    }

    /*
     * mdb_drop() walks the old tree to free its pages, so a damaged table
     * cannot be emptied; the file must be removed before a new build.
     */
    if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0
        || (rc = mdb_drop(txn, dbi, 0)) != 0) {
        mdb_txn_abort(txn);
        if (rc == MDB_MAP_FULL)
            return rc;
        strbuf_printf(err, "empty %s (remove the file if it is damaged): %s",
                      b->db_path, mdb_strerror(rc));
        return -1;
    }
    for (i = 0; i < b->count; i++) {
        key.mv_data = b->entries[i].key;
        key.mv_size = strlen(b->entries[i].key) + 1;
        value.mv_data = b->entries[i].value;
        value.mv_size = strlen(b->entries[i].value) + 1;
        if ((rc = mdb_put(txn, dbi, &key, &value, 0)) != 0)
            break;
    }
    *done_r = i;
    if (rc != 0) {
        mdb_txn_abort(txn);
        if (rc == MDB_MAP_FULL)
            return rc;
        dict_lmdb_build_put_error(b, i, rc, err);
        return -1;
    }
    if ((rc = mdb_txn_commit(txn)) == MDB_MAP_FULL)
        return rc;
    if (rc != 0) {
        strbuf_printf(err, "write %s: %s", b->db_path, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

/*
 * dict_lmdb_build_grow - enlarge the map after MDB_MAP_FULL by a whole
 * number of steps: enough for the share of entries still missing, so that
 * a big table is not rewritten once per step.
 */
static int dict_lmdb_build_grow(DICT_LMDB_BUILD *b, size_t done,
                                STRBUF *err)
{
    size_t step = dict_lmdb_map_size;
    double want = (double) b->map_size * 1.25
        * ((double) b->count + 1) / ((double) done + 1);
    size_t steps = 1;
    int rc;

    if (want > (double) b->map_size)
        steps = (size_t) ((want - (double) b->map_size) / (double) step) + 1;
    if (b->map_size >= DICT_LMDB_MAP_SIZE_MAX
        || steps > (DICT_LMDB_MAP_SIZE_MAX - b->map_size) / step) {
        strbuf_printf(err, "write %s: map size limit reached", b->db_path);
        return -1;
    }
    b->map_size += steps * step;
    if (msg_verbose)
        msg_info("%s: map full after %zu of %zu entries, map size now %zu",
                 b->db_path, done, b->count, b->map_size);
    if ((rc = mdb_env_set_mapsize(b->env, b->map_size)) != 0) {
        strbuf_printf(err, "write %s: set map size %zu: %s", b->db_path,
                      b->map_size, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

/* dict_lmdb_build_write - open the environment and write the table. */
static int dict_lmdb_build_write(DICT_LMDB_BUILD *b, STRBUF *err)
{
    size_t done;
    int rc;

    if (dict_lmdb_build_file(b, err) < 0)
        return -1;
    if ((rc = mdb_env_create(&b->env)) != 0
        || (rc = mdb_env_set_mapsize(b->env, b->map_size)) != 0
        || (rc = mdb_env_open(b->env, b->db_path, DICT_LMDB_ENV_FLAGS,
                              0644)) != 0) {
        strbuf_printf(err, "open database %s: %s", b->db_path,
                      mdb_strerror(rc));
        return -1;
    }
    for (int i = 0; i < DICT_LMDB_GROW_RETRIES; i++) {
        if ((rc = dict_lmdb_build_txn(b, &done, err)) != MDB_MAP_FULL)
            return rc;
        if (dict_lmdb_build_grow(b, done, err) < 0)
            return -1;
    }
    strbuf_printf(err, "write %s: %s", b->db_path, mdb_strerror(MDB_MAP_FULL));
    return -1;
}

int dict_lmdb_build(const char *source_path, const char *db_path, int flags,
                    STRBUF *err)
{
    DICT_LMDB_BUILD b;
    STRBUF *path = NULL;
    int status;

    memset(&b, 0, sizeof(b));
    b.source = source_path;
    b.fd = -1;
    if (db_path == NULL) {
        path = strbuf_alloc(strlen(source_path) + sizeof(DICT_LMDB_SUFFIX));
        strbuf_printf(path, "%s%s", source_path, DICT_LMDB_SUFFIX);
        db_path = strbuf_str(path);
    }
    b.db_path = db_path;
    status = dict_source_parse_file(source_path,
                                    ((flags & DICT_FLAG_FOLD_FIX)
                                     ? DICT_SOURCE_FOLD : 0)
                                    | ((flags & DICT_FLAG_ALIASES)
                                       ? DICT_SOURCE_ALIASES : 0),
                                    dict_lmdb_build_add, &b, err);
    if (status == 0)
        status = dict_lmdb_build_write(&b, err);

    /* A file that this call created and could not fill goes away. */
    if (status < 0 && b.created && unlink(b.db_path) < 0)
        msg_warn("remove %s: %m", b.db_path);
    if (b.env)
        mdb_env_close(b.env);
    if (b.fd >= 0)
        (void) close(b.fd);
    for (size_t i = 0; i < b.count; i++) {
        free(b.entries[i].key);
        free(b.entries[i].value);
    }
    free(b.entries);
    strbuf_free(&path);
    return status;
}
