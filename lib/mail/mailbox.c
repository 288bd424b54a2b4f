/*
 * mailbox - a Maildir and its LMDB index (see mailbox.h).
 *
 * The index has two databases: "meta" holds uidvalidity and uidnext (each
 * a uint32_t), "names" maps a base name to MAILBOX_REC.  A session first
 * reads the index; only when it finds messages without a UID or entries
 * without a file (or sizes to cache) does it take LMDB's write lock, look
 * again under it and write.  Every write is committed with LMDB's own
 * fsync: a UID handed out is never handed out again after a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mail/mailbox.h"
#include "util/htable.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

#define MAILBOX_INDEX       "postern-index"
#define MAILBOX_MAP_SIZE    ((size_t) 1 << 30)  /* address space, not disk */

typedef struct MAILBOX_REC {
    uint32_t uid;
    int64_t vsize;                      /* -1: not known yet */
} MAILBOX_REC;

typedef struct MAILBOX_INDEX_DB {
    MDB_env *env;
    MDB_dbi meta;
    MDB_dbi names;
} MAILBOX_INDEX_DB;

/* One file of cur/ as the directory scan found it. */
typedef struct MAILBOX_FILE {
    char   *name;                       /* "NAME:2,FLAGS" */
    char   *base;                       /* "NAME" */
    size_t  base_len;
    off_t   size;                       /* -1: not known */
    MAILBOX_REC rec;
    int     known;                      /* rec came from the index */
} MAILBOX_FILE;

static int mailbox_lmdb_error(STRBUF *why, const char *what, int rc)
{
    strbuf_printf(why, "%s: %s", what, mdb_strerror(rc));
    return -1;
}

/* --- the CRLF form ---------------------------------------------------- */

void mailbox_crlf(MAILBOX_CRLF *st, const char *data, size_t len,
                  STRBUF *out)
{
    const char *cp = data;
    const char *end = data + len;

    while (cp < end) {
        const char *lf = memchr(cp, '\n', (size_t) (end - cp));
        int before;

        if (lf == NULL) {
            strbuf_append(out, cp, (size_t) (end - cp));
            st->last = (unsigned char) end[-1];
            return;
        }
        before = lf > cp ? (unsigned char) lf[-1] : st->last;
        strbuf_append(out, cp, (size_t) (lf - cp));
        if (before != '\r')
            strbuf_addch(out, '\r');
        strbuf_addch(out, '\n');
        st->last = '\n';
        cp = lf + 1;
    }
}

void mailbox_crlf_end(MAILBOX_CRLF *st, STRBUF *out)
{
    if (st->last != -1 && st->last != '\n')
        strbuf_append(out, "\r\n", 2);
    st->last = '\n';
}

/* The CRLF size of an open file, read from its start; -1 on error. */
static off_t mailbox_vsize_fd(int fd)
{
    MAILBOX_CRLF st = MAILBOX_CRLF_INIT;
    STRBUF *out = strbuf_alloc(8192 * 2 + 2);
    char buf[8192];
    off_t total = 0;
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            strbuf_free(&out);
            return -1;
        }
        strbuf_reset(out);
        mailbox_crlf(&st, buf, (size_t) n, out);
        total += (off_t) out->len;
    }
    strbuf_reset(out);
    mailbox_crlf_end(&st, out);
    total += (off_t) out->len;
    strbuf_free(&out);
    return total;
}

/* --- the directory ---------------------------------------------------- */

/* The ",S=<size>" of a name (maildir.h), or -1. */
static off_t mailbox_name_size(const char *name, size_t base_len)
{
    const char *cp;
    unsigned long size;
    STRBUF *num;
    off_t result = -1;

    for (cp = name; (cp = strstr(cp, ",S=")) != NULL && cp < name + base_len;
         cp += 3) {
        size_t digits = strspn(cp + 3, "0123456789");

        if (digits == 0 || digits > 18)
            continue;
        num = strbuf_alloc(24);
        strbuf_append(num, cp + 3, digits);
        if (str_to_ulong(num->data, (unsigned long) 1 << 62, &size) == 0)
            result = (off_t) size;
        strbuf_free(&num);
    }
    return result;
}

static int mailbox_mkdirs(const char *path, STRBUF *why)
{
    static const char *const subdirs[] = {"", "/cur", "/new", "/tmp"};
    STRBUF *dir = strbuf_alloc(128);
    int rc = 0;

    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        strbuf_printf(dir, "%s%s", path, subdirs[i]);
        if (mkdir(dir->data, 0700) < 0 && errno != EEXIST) {
            strbuf_printf(why, "create %s: %s", dir->data, strerror(errno));
            rc = -1;
            break;
        }
    }
    strbuf_free(&dir);
    return rc;
}

/* Move what new/ holds to cur/, as read: "NAME" becomes "NAME:2,". */
static int mailbox_scan_new(const char *path, STRBUF *why)
{
    STRBUF *from = strbuf_alloc(128);
    STRBUF *to = strbuf_alloc(128);
    struct dirent *de;
    DIR *dir;

    strbuf_printf(from, "%s/new", path);
    if ((dir = opendir(from->data)) == NULL) {
        strbuf_printf(why, "open %s: %s", from->data, strerror(errno));
        strbuf_free(&from);
        strbuf_free(&to);
        return -1;
    }
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        strbuf_printf(from, "%s/new/%s", path, de->d_name);
        strbuf_printf(to, "%s/cur/%s%s", path, de->d_name,
                      strchr(de->d_name, ':') ? "" : ":2,");
        /* ENOENT: another session moved it first. */
        if (rename(from->data, to->data) < 0 && errno != ENOENT)
            msg_warn("rename %s to %s: %m", from->data, to->data);
    }
    closedir(dir);
    strbuf_free(&from);
    strbuf_free(&to);
    return 0;
}

/*
 * By base name, then name: the files of one message are neighbours even
 * when another base name extends theirs ("X", "X.y:2,", "X:2,S").
 */
static int mailbox_file_cmp(const void *a, const void *b)
{
    const MAILBOX_FILE *fa = a;
    const MAILBOX_FILE *fb = b;
    int rc = strcmp(fa->base, fb->base);

    return rc ? rc : strcmp(fa->name, fb->name);
}

/* The files of cur/, sorted by base name (delivery time first). */
static MAILBOX_FILE *mailbox_scan_cur(const char *path, size_t *count,
                                      STRBUF *why)
{
    STRBUF *cur = strbuf_alloc(128);
    MAILBOX_FILE *files = NULL;
    size_t n = 0;
    size_t alloc = 0;
    struct dirent *de;
    DIR *dir;

    strbuf_printf(cur, "%s/cur", path);
    if ((dir = opendir(cur->data)) == NULL) {
        strbuf_printf(why, "open %s: %s", cur->data, strerror(errno));
        strbuf_free(&cur);
        return NULL;
    }
    while ((de = readdir(dir)) != NULL) {
        MAILBOX_FILE *f;

        if (de->d_name[0] == '.')
            continue;
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            files = xreallocarray(files, alloc, sizeof(*files));
        }
        f = &files[n++];
        memset(f, 0, sizeof(*f));
        f->name = xstrdup(de->d_name);
        f->base_len = strcspn(f->name, ":");
        f->base = xstrndup(f->name, f->base_len);
        f->size = mailbox_name_size(f->name, f->base_len);
        f->rec.vsize = -1;
    }
    closedir(dir);
    strbuf_free(&cur);
    if (n > 1)
        qsort(files, n, sizeof(*files), mailbox_file_cmp);
    /* One message, two files (a crash between link and unlink): one. */
    for (size_t i = 1; i < n; i++) {
        if (strcmp(files[i].base, files[i - 1].base) == 0) {
            msg_warn("%s/cur: %s and %s are one message; ignoring the "
                     "second", path, files[i - 1].name, files[i].name);
            free(files[i].name);
            free(files[i].base);
            memmove(&files[i], &files[i + 1], (n - i - 1) * sizeof(*files));
            n--;
            i--;
        }
    }
    *count = n;
    return files ? files : xcalloc(1, sizeof(*files));
}

/* --- the index -------------------------------------------------------- */

static int mailbox_index_open(MAILBOX *mb, STRBUF *why)
{
    MAILBOX_INDEX_DB *ix = xcalloc(1, sizeof(*ix));
    STRBUF *file = strbuf_alloc(128);
    MDB_txn *txn;
    int rc;

    mb->index = ix;
    strbuf_printf(file, "%s/" MAILBOX_INDEX, mb->path);
    if ((rc = mdb_env_create(&ix->env)) != 0
        || (rc = mdb_env_set_maxdbs(ix->env, 4)) != 0
        || (rc = mdb_env_set_mapsize(ix->env, MAILBOX_MAP_SIZE)) != 0
        || (rc = mdb_env_open(ix->env, file->data, MDB_NOSUBDIR | MDB_NOTLS,
                              0600)) != 0) {
        strbuf_free(&file);
        return mailbox_lmdb_error(why, "open the mailbox index", rc);
    }
    strbuf_free(&file);
    if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0)
        return mailbox_lmdb_error(why, "mailbox index", rc);
    if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ix->meta)) != 0
        || (rc = mdb_dbi_open(txn, "names", MDB_CREATE, &ix->names)) != 0) {
        mdb_txn_abort(txn);
        return mailbox_lmdb_error(why, "mailbox index", rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return mailbox_lmdb_error(why, "mailbox index", rc);
    return 0;
}

static int mailbox_meta_get(MAILBOX_INDEX_DB *ix, MDB_txn *txn,
                            const char *name, uint32_t *value)
{
    MDB_val key = {strlen(name), (void *) name};
    MDB_val val;
    int rc;

    if ((rc = mdb_get(txn, ix->meta, &key, &val)) != 0)
        return rc;
    if (val.mv_size != sizeof(*value))
        return MDB_CORRUPTED;
    memcpy(value, val.mv_data, sizeof(*value));
    return 0;
}

static int mailbox_meta_put(MAILBOX_INDEX_DB *ix, MDB_txn *txn,
                            const char *name, uint32_t value)
{
    MDB_val key = {strlen(name), (void *) name};
    MDB_val val = {sizeof(value), &value};

    return mdb_put(txn, ix->meta, &key, &val, 0);
}

/*
 * Look up every file in the index (under txn); the number of files
 * without an entry or without a cached size.
 */
static size_t mailbox_lookup_all(MAILBOX_INDEX_DB *ix, MDB_txn *txn,
                                 MAILBOX_FILE *files, size_t count)
{
    size_t missing = 0;

    for (size_t i = 0; i < count; i++) {
        MDB_val key = {files[i].base_len, files[i].name};
        MDB_val val;

        files[i].known = mdb_get(txn, ix->names, &key, &val) == 0
            && val.mv_size == sizeof(MAILBOX_REC);
        if (files[i].known)
            memcpy(&files[i].rec, val.mv_data, sizeof(MAILBOX_REC));
        else
            files[i].rec.vsize = -1;
        if (!files[i].known || files[i].rec.vsize < 0)
            missing++;
    }
    return missing;
}

/* Index entries without a file (expunged by someone else); 0 or 1. */
static int mailbox_has_stale(MAILBOX_INDEX_DB *ix, MDB_txn *txn,
                             size_t count)
{
    MDB_stat st;

    return mdb_stat(txn, ix->names, &st) == 0 && st.ms_entries > count;
}

/* The CRLF size of a file of cur/, or -1 with a warning. */
static int64_t mailbox_file_vsize(const char *path, const MAILBOX_FILE *f)
{
    STRBUF *file = strbuf_alloc(128);
    off_t vsize = -1;
    int fd;

    strbuf_printf(file, "%s/cur/%s", path, f->name);
    if ((fd = open(file->data, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
        vsize = mailbox_vsize_fd(fd);
        close(fd);
    }
    if (vsize < 0 && errno != ENOENT)
        msg_warn("read %s: %m", file->data);
    strbuf_free(&file);
    return vsize;
}

/*
 * Under the write lock: new UIDs, cached sizes, stale entries dropped.
 * Sizes are computed before the lock is taken, so that a big first sync
 * does not hold up other sessions while it reads every file.  Only
 * entries with a UID below seen_next count as stale: the others were
 * made by sessions that ran after our directory scan began, for files
 * the scan may not have seen.
 */
static int mailbox_index_update(MAILBOX *mb, MAILBOX_FILE *files,
                                size_t count, uint32_t seen_next,
                                STRBUF *why)
{
    MAILBOX_INDEX_DB *ix = mb->index;
    HTABLE *present = htable_alloc(count * 2 + 1);
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val key;
    MDB_val val;
    int rc;

    for (size_t i = 0; i < count; i++)
        if (!files[i].known || files[i].rec.vsize < 0)
            files[i].rec.vsize = mailbox_file_vsize(mb->path, &files[i]);

    if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0) {
        htable_free(&present, NULL);
        return mailbox_lmdb_error(why, "mailbox index", rc);
    }
    if ((rc = mailbox_meta_get(ix, txn, "uidvalidity", &mb->uidvalidity))
        == MDB_NOTFOUND) {
        /* A new index: UIDs start over under a new UIDVALIDITY. */
        mb->uidvalidity = (uint32_t) time(NULL);
        mb->uidnext = 1;
        if ((rc = mailbox_meta_put(ix, txn, "uidvalidity", mb->uidvalidity))
            == 0)
            rc = mailbox_meta_put(ix, txn, "uidnext", mb->uidnext);
    } else if (rc == 0) {
        rc = mailbox_meta_get(ix, txn, "uidnext", &mb->uidnext);
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        MAILBOX_FILE *f = &files[i];
        int64_t vsize = f->rec.vsize;

        key.mv_size = f->base_len;
        key.mv_data = f->name;
        /* Another session may have got here first: its UID stands. */
        if (mdb_get(txn, ix->names, &key, &val) == 0
            && val.mv_size == sizeof(MAILBOX_REC)) {
            memcpy(&f->rec, val.mv_data, sizeof(MAILBOX_REC));
            f->known = 1;
            if (f->rec.vsize >= 0 || vsize < 0)
                continue;
            f->rec.vsize = vsize;
        } else {
            if (mb->uidnext == UINT32_MAX) {
                rc = MDB_MAP_FULL;
                break;
            }
            f->rec.uid = mb->uidnext++;
            f->rec.vsize = vsize;
        }
        f->known = 1;
        val.mv_size = sizeof(MAILBOX_REC);
        val.mv_data = &f->rec;
        rc = mdb_put(txn, ix->names, &key, &val, 0);
    }
    if (rc == 0)
        rc = mailbox_meta_put(ix, txn, "uidnext", mb->uidnext);

    /* Entries whose file is gone. */
    for (size_t i = 0; i < count; i++)
        htable_enter(present, files[i].base, NULL);
    if (rc == 0 && (rc = mdb_cursor_open(txn, ix->names, &cur)) == 0) {
        STRBUF *name = strbuf_alloc(64);

        while (rc == 0 && (rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
               == 0) {
            MAILBOX_REC rec = {0, -1};

            strbuf_reset(name);
            strbuf_append(name, key.mv_data, key.mv_size);
            if (val.mv_size == sizeof(rec))
                memcpy(&rec, val.mv_data, sizeof(rec));
            if (htable_locate(present, name->data) == NULL
                && rec.uid < seen_next)
                rc = mdb_cursor_del(cur, 0);
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        mdb_cursor_close(cur);
        strbuf_free(&name);
    }
    htable_free(&present, NULL);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return mailbox_lmdb_error(why, "update the mailbox index", rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return mailbox_lmdb_error(why, "update the mailbox index", rc);
    return 0;
}

static int mailbox_msg_cmp(const void *a, const void *b)
{
    uint32_t ua = ((const MAILBOX_MSG *) a)->uid;
    uint32_t ub = ((const MAILBOX_MSG *) b)->uid;

    return ua < ub ? -1 : ua > ub;
}

static int mailbox_sync(MAILBOX *mb, STRBUF *why)
{
    MAILBOX_INDEX_DB *ix = mb->index;
    MAILBOX_FILE *files;
    size_t count = 0;
    MDB_txn *txn;
    int need_write;
    int rc;

    /*
     * The index is read as it was before the directory scan: what other
     * sessions add meanwhile is not taken for stale (see above).
     */
    if ((rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn)) != 0)
        return mailbox_lmdb_error(why, "mailbox index", rc);
    if (mailbox_scan_new(mb->path, why) < 0
        || (files = mailbox_scan_cur(mb->path, &count, why)) == NULL) {
        mdb_txn_abort(txn);
        return -1;
    }
    need_write = mailbox_meta_get(ix, txn, "uidvalidity", &mb->uidvalidity)
        != 0 || mailbox_meta_get(ix, txn, "uidnext", &mb->uidnext) != 0
        || mailbox_lookup_all(ix, txn, files, count) > 0
        || mailbox_has_stale(ix, txn, count);
    mdb_txn_abort(txn);
    /* mb->uidnext: 0 (nothing is stale) when the index was new. */
    if (need_write && (rc = mailbox_index_update(mb, files, count,
                                                 mb->uidnext, why)) < 0)
        goto done;
    rc = 0;

    mb->msgs = xcalloc(count ? count : 1, sizeof(MAILBOX_MSG));
    for (size_t i = 0; i < count; i++) {
        MAILBOX_FILE *f = &files[i];
        MAILBOX_MSG *m = &mb->msgs[mb->count];
        STRBUF *file;
        struct stat st;

        if (!f->known)
            continue;
        file = strbuf_alloc(128);
        strbuf_printf(file, "cur/%s", f->name);
        m->uid = f->rec.uid;
        m->vsize = f->rec.vsize;
        m->size = f->size;
        if (m->size < 0 || m->vsize < 0) {
            STRBUF *full = strbuf_alloc(128);

            strbuf_printf(full, "%s/%s", mb->path, file->data);
            if (stat(full->data, &st) < 0) {
                /* Gone since the scan: it is not in the snapshot. */
                strbuf_free(&full);
                strbuf_free(&file);
                continue;
            }
            strbuf_free(&full);
            if (m->size < 0)
                m->size = st.st_size;
        }
        m->file = strbuf_export(&file);
        mb->count++;
    }
    if (mb->count > 1)
        qsort(mb->msgs, mb->count, sizeof(MAILBOX_MSG), mailbox_msg_cmp);
done:
    for (size_t i = 0; i < count; i++) {
        free(files[i].name);
        free(files[i].base);
    }
    free(files);
    return rc;
}

MAILBOX *mailbox_open(const char *path, STRBUF *why)
{
    MAILBOX *mb = xcalloc(1, sizeof(*mb));

    mb->path = xstrdup(path);
    if (mailbox_mkdirs(path, why) < 0 || mailbox_index_open(mb, why) < 0
        || mailbox_sync(mb, why) < 0) {
        mailbox_close(&mb);
        return NULL;
    }
    return mb;
}

void mailbox_close(MAILBOX **mbp)
{
    MAILBOX *mb = *mbp;
    MAILBOX_INDEX_DB *ix;

    if (mb == NULL)
        return;
    if ((ix = mb->index) != NULL) {
        if (ix->env)
            mdb_env_close(ix->env);
        free(ix);
    }
    for (size_t i = 0; i < mb->count; i++)
        free(mb->msgs[i].file);
    free(mb->msgs);
    free(mb->path);
    free(mb);
    *mbp = NULL;
}

/* --- messages --------------------------------------------------------- */

/*
 * Find message i's file again after a rename (new flags): the file of
 * cur/ with the same base name.  0 with m->file updated, or -1 (ENOENT).
 */
static int mailbox_refind(MAILBOX *mb, MAILBOX_MSG *m)
{
    const char *name = m->file + 4;     /* after "cur/" */
    size_t base_len = strcspn(name, ":");
    STRBUF *dir = strbuf_alloc(128);
    struct dirent *de;
    DIR *dp;
    int rc = -1;

    strbuf_printf(dir, "%s/cur", mb->path);
    if ((dp = opendir(dir->data)) != NULL) {
        while ((de = readdir(dp)) != NULL) {
            if (strncmp(de->d_name, name, base_len) == 0
                && (de->d_name[base_len] == ':' || de->d_name[base_len] == 0)) {
                strbuf_printf(dir, "cur/%s", de->d_name);
                free(m->file);
                m->file = strbuf_export(&dir);
                rc = 0;
                break;
            }
        }
        closedir(dp);
    }
    strbuf_free(&dir);
    errno = ENOENT;
    return rc;
}

int mailbox_msg_open(MAILBOX *mb, size_t i)
{
    MAILBOX_MSG *m = &mb->msgs[i];
    STRBUF *file = strbuf_alloc(128);
    int fd;

    for (int tries = 0; tries < 2; tries++) {
        strbuf_printf(file, "%s/%s", mb->path, m->file);
        fd = open(file->data, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT || mailbox_refind(mb, m) < 0)
            break;
    }
    strbuf_free(&file);
    return fd;
}

int mailbox_expunge(MAILBOX *mb, const size_t *which, size_t n, STRBUF *why)
{
    MAILBOX_INDEX_DB *ix = mb->index;
    STRBUF *file = strbuf_alloc(128);
    MDB_txn *txn;
    int rc;

    /* Files first: an entry without a file is dropped at the next sync. */
    for (size_t k = 0; k < n; k++) {
        MAILBOX_MSG *m = &mb->msgs[which[k]];

        strbuf_printf(file, "%s/%s", mb->path, m->file);
        if (unlink(file->data) < 0 && errno == ENOENT
            && mailbox_refind(mb, m) == 0) {
            strbuf_printf(file, "%s/%s", mb->path, m->file);
            (void) unlink(file->data);
        }
    }
    strbuf_free(&file);
    if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0)
        return mailbox_lmdb_error(why, "mailbox index", rc);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const char *name = mb->msgs[which[k]].file + 4;
        MDB_val key = {strcspn(name, ":"), (void *) name};

        if ((rc = mdb_del(txn, ix->names, &key, NULL)) == MDB_NOTFOUND)
            rc = 0;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return mailbox_lmdb_error(why, "update the mailbox index", rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return mailbox_lmdb_error(why, "update the mailbox index", rc);
    return 0;
}
