/*
 * queue_file - queue file writer and reader.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "mail/queue_file.h"
#include "mail/queue_id.h"
#include "mail/record.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

#define QFILE_TMP_DIR   "tmp"
#define QFILE_SIZE_FMT  "%15ld %15ld %15ld %15ld"
#define QFILE_SIZE_LEN  (15 * 4 + 3)
#define QFILE_REC_LIMIT (1024 * 1024)   /* envelope records */
#define QFILE_WARN_FMT  "%15ld"
#define QFILE_WARN_LEN  15

struct QFILE {
    int     fd;
    STREAM *stream;
    char   *tmp_path;
    STRBUF *id;
    long    message_size;
    off_t   content_offset;
    long    rcpt_count;
    long    flags;
};

QFILE *qfile_create(STRBUF *err)
{
    QFILE *q;
    STRBUF *path = strbuf_alloc(64);
    struct timeval tv;
    struct stat st;
    char zeros[QFILE_SIZE_LEN + 1];
    int fd = -1;

    gettimeofday(&tv, NULL);
    /* A name only this process uses; the ID comes from the inode. */
    for (int attempt = 0; attempt < 100; attempt++) {
        strbuf_printf(path, QFILE_TMP_DIR "/%ld.%ld.%d", (long) getpid(),
                      (long) tv.tv_usec, attempt);
        fd = open(path->data, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC
                  | O_NOFOLLOW, QFILE_BUSY_MODE);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0 || fstat(fd, &st) < 0) {
        strbuf_printf(err, "create queue file %s: %s", path->data,
                      strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(path->data);
        }
        strbuf_free(&path);
        return NULL;
    }
    q = xcalloc(1, sizeof(*q));
    q->fd = fd;
    q->tmp_path = strbuf_export(&path);
    q->id = strbuf_alloc(QUEUE_ID_MAX + 1);
    queue_id_make(q->id, (long) tv.tv_sec, (long) tv.tv_usec, st.st_ino);
    q->stream = stream_open(fd, 0, 4096);
    snprintf(zeros, sizeof(zeros), QFILE_SIZE_FMT, 0L, 0L, 0L, 0L);
    rec_put(q->stream, QREC_SIZE, zeros, QFILE_SIZE_LEN);
    rec_fprintf(q->stream, QREC_TIME, "%ld %ld", (long) tv.tv_sec,
                (long) tv.tv_usec);
    rec_fprintf(q->stream, QREC_WARN, QFILE_WARN_FMT, 0L);
    return q;
}

const char *qfile_id(const QFILE *q)
{
    return q->id->data;
}

STREAM *qfile_stream(QFILE *q)
{
    return q->stream;
}

off_t qfile_offset(QFILE *q)
{
    return (off_t) (q->stream->bytes_out + q->stream->wlen);
}

void qfile_set_size(QFILE *q, long message_size, off_t content_offset,
                    long rcpt_count, long flags)
{
    q->message_size = message_size;
    q->content_offset = content_offset;
    q->rcpt_count = rcpt_count;
    q->flags = flags;
}

static void qfile_free(QFILE *q)
{
    stream_free(&q->stream);
    if (q->fd >= 0)
        close(q->fd);
    free(q->tmp_path);
    strbuf_free(&q->id);
    free(q);
}

void qfile_abort(QFILE **qp)
{
    QFILE *q = *qp;

    if (q == NULL)
        return;
    (void) unlink(q->tmp_path);
    qfile_free(q);
    *qp = NULL;
}

static int qfile_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int qfile_commit(QFILE **qp, const char *dest_dir, STRBUF *err)
{
    QFILE *q = *qp;
    STRBUF *dest = strbuf_alloc(64);
    char size[QFILE_SIZE_LEN + 1];
    int rc = -1;
    int saved_errno = 0;

    rec_put(q->stream, QREC_END, "", 0);
    if (stream_flush(q->stream) < 0) {
        saved_errno = errno;
        strbuf_printf(err, "write queue file: %s", strerror(errno));
        goto done;
    }
    /* The size record sits right after its 2-byte header at offset 0. */
    snprintf(size, sizeof(size), QFILE_SIZE_FMT, q->message_size,
             (long) q->content_offset, q->rcpt_count, q->flags);
    if (pwrite(q->fd, size, QFILE_SIZE_LEN, 2) != QFILE_SIZE_LEN) {
        saved_errno = errno;
        strbuf_printf(err, "write queue file: %s", strerror(errno));
        goto done;
    }
    /* Ready mark first, so that the one fsync makes both durable. */
    if (fchmod(q->fd, QFILE_READY_MODE) < 0 || fsync(q->fd) < 0) {
        saved_errno = errno;
        strbuf_printf(err, "sync queue file: %s", strerror(errno));
        goto done;
    }
    strbuf_printf(dest, "%s/%s", dest_dir, q->id->data);
    if (renameat2(AT_FDCWD, q->tmp_path, AT_FDCWD, dest->data,
                  RENAME_NOREPLACE) < 0) {
        saved_errno = errno;
        strbuf_printf(err, "rename queue file to %s: %s", dest->data,
                      strerror(errno));
        goto done;
    }
    if (qfile_fsync_dir(dest_dir) < 0) {
        /* The file is in place but not durable: take it back. */
        saved_errno = errno;
        strbuf_printf(err, "sync %s: %s", dest_dir, strerror(errno));
        (void) unlink(dest->data);
        goto done;
    }
    rc = 0;
done:
    if (rc < 0)
        (void) unlink(q->tmp_path);
    qfile_free(q);
    *qp = NULL;
    strbuf_free(&dest);
    /* The caller tells a full disk (452) from other errors (451). */
    if (rc < 0)
        errno = saved_errno;
    return rc;
}

/* --- reading ---------------------------------------------------------- */

void qenv_free(QENV **envp)
{
    QENV *env = *envp;

    if (env == NULL)
        return;
    for (size_t i = 0; i < env->nrcpt; i++) {
        free(env->rcpts[i].address);
        free(env->rcpts[i].orig);
        free(env->rcpts[i].orcpt);
    }
    free(env->rcpts);
    free(env->id);
    free(env->sender);
    free(env->fullname);
    argv_free(&env->attrs);
    xfree(envp);
}

const char *qenv_attr(const QENV *env, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < env->attrs->argc; i++)
        if (strncmp(env->attrs->argv[i], name, len) == 0
            && env->attrs->argv[i][len] == '=')
            return env->attrs->argv[i] + len + 1;
    return NULL;
}

/* Parse exactly n space-separated non-negative numbers. */
static int qenv_numbers(const char *text, long *out, size_t n)
{
    ARGV *words = argv_split(text, " ");
    int rc = words->argc == n ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = str_to_long(words->argv[i], 0, 0x7fffffffffffffffL, &out[i]);
    argv_free(&words);
    return rc;
}

static int qenv_bad(STRBUF *err, const char *id, const char *why)
{
    strbuf_printf(err, "%s: corrupt queue file: %s", id, why);
    return -1;
}

int qenv_read_fd(int fd, const char *id, QENV **env_r, STRBUF *err)
{
    STREAM *s = stream_open(fd, 0, 4096);
    STRBUF *data = strbuf_alloc(256);
    STRBUF *why = strbuf_alloc(64);
    QENV *env = xcalloc(1, sizeof(*env));
    char *pend_orig = NULL;
    char *pend_orcpt = NULL;
    int pend_notify = 0;
    off_t offset = 0;
    size_t rsize = 0;
    int type;
    int rc;
    int seen_size = 0;
    int seen_sender = 0;
    struct stat st;

    env->id = xstrdup(id);
    env->attrs = argv_alloc(8);
    if (fstat(fd, &st) == 0)
        env->file_size = st.st_size;
    for (;;) {
        off_t rec_offset = offset;

        rc = rec_get(s, &type, data, QFILE_REC_LIMIT, why);
        if (rc <= 0) {
            rc = qenv_bad(err, id, rc < 0 ? why->data : "no content record");
            goto done;
        }
        offset = (off_t) s->bytes_in - (off_t) (s->rend - s->rpos);
        if (memchr(data->data, 0, data->len) != NULL) {
            rc = qenv_bad(err, id, "NUL byte in envelope");
            goto done;
        }
        switch (type) {
        case QREC_SIZE:
            {
                long v[4];

                if (seen_size || rec_offset != 0
                    || qenv_numbers(data->data, v, 4) < 0) {
                    rc = qenv_bad(err, id, "bad size record");
                    goto done;
                }
                env->message_size = v[0];
                env->content_offset = (off_t) v[1];
                env->flags = v[3];
            }
            seen_size = 1;
            break;
        case QREC_TIME:
            {
                long v[2];

                if (qenv_numbers(data->data, v, 2) < 0) {
                    rc = qenv_bad(err, id, "bad time record");
                    goto done;
                }
                env->arrival_sec = v[0];
                env->arrival_usec = v[1];
            }
            break;
        case QREC_WARN:
            {
                long v;
                const char *cp = data->data + strspn(data->data, " ");

                /* Rewritten in place: it must have the layout we write. */
                if (data->len != QFILE_WARN_LEN
                    || offset - rec_offset != 2 + QFILE_WARN_LEN
                    || str_to_long(cp, -1, 0x7fffffffffffffffL, &v) < 0) {
                    rc = qenv_bad(err, id, "bad warning record");
                    goto done;
                }
                env->warn_time = v;
                env->warn_offset = rec_offset;
            }
            break;
        case QREC_FULLNAME:
            free(env->fullname);
            env->fullname = xstrdup(data->data);
            break;
        case QREC_SENDER:
            free(env->sender);
            env->sender = xstrdup(data->data);
            seen_sender = 1;
            break;
        case QREC_ATTR:
            if (strchr(data->data, '=') == NULL) {
                rc = qenv_bad(err, id, "bad attribute record");
                goto done;
            }
            argv_add(env->attrs, data->data);
            break;
        case QREC_DSN_ORCPT:
            free(pend_orcpt);
            pend_orcpt = xstrdup(data->data);
            break;
        case QREC_DSN_NOTIFY:
            {
                long n;

                if (str_to_long(data->data, 0, 15, &n) < 0) {
                    rc = qenv_bad(err, id, "bad notify record");
                    goto done;
                }
                pend_notify = (int) n;
            }
            break;
        case QREC_ORIG_RCPT:
            free(pend_orig);
            pend_orig = xstrdup(data->data);
            break;
        case QREC_RCPT:
        case QREC_DONE:
            if (env->nrcpt == rsize) {
                rsize = rsize ? rsize * 2 : 4;
                env->rcpts = xreallocarray(env->rcpts, rsize,
                                           sizeof(QENV_RCPT));
            }
            env->rcpts[env->nrcpt].address = xstrdup(data->data);
            env->rcpts[env->nrcpt].orig = pend_orig;
            env->rcpts[env->nrcpt].orcpt = pend_orcpt;
            env->rcpts[env->nrcpt].notify = pend_notify;
            env->rcpts[env->nrcpt].done = type == QREC_DONE;
            env->rcpts[env->nrcpt].offset = rec_offset;
            env->nrcpt++;
            pend_orig = pend_orcpt = NULL;
            pend_notify = 0;
            break;
        case QREC_CONTENT:
            if (!seen_size || !seen_sender) {
                rc = qenv_bad(err, id, "content before envelope");
                goto done;
            }
            if (env->content_offset != rec_offset) {
                rc = qenv_bad(err, id, "content offset mismatch");
                goto done;
            }
            rc = 0;
            goto done;
        default:
            rc = qenv_bad(err, id, "unknown record type");
            goto done;
        }
    }
done:
    free(pend_orig);
    free(pend_orcpt);
    stream_free(&s);
    strbuf_free(&data);
    strbuf_free(&why);
    if (rc < 0)
        qenv_free(&env);
    else
        *env_r = env;
    return rc;
}

int qenv_read(const char *path, QENV **env_r, STRBUF *err)
{
    const char *slash = strrchr(path, '/');
    int fd;
    int rc;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        strbuf_printf(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    rc = qenv_read_fd(fd, slash ? slash + 1 : path, env_r, err);
    close(fd);
    return rc;
}

int qfile_read_content(int fd, const QENV *env, QFILE_CONTENT_FN fn,
                       void *ctx, STRBUF *err)
{
    STREAM *s;
    STRBUF *data = strbuf_alloc(8192);
    STRBUF *why = strbuf_alloc(64);
    int type;
    int rc;
    int first = 1;

    if (lseek(fd, env->content_offset, SEEK_SET) < 0) {
        strbuf_printf(err, "%s: seek: %s", env->id, strerror(errno));
        strbuf_free(&data);
        strbuf_free(&why);
        return -1;
    }
    s = stream_open(fd, 0, 4096);
    for (;;) {
        if ((rc = rec_get(s, &type, data, REC_LEN_MAX, why)) <= 0) {
            rc = qenv_bad(err, env->id, rc < 0 ? why->data
                          : "content not terminated");
            break;
        }
        if (first) {
            if (type != QREC_CONTENT) {
                rc = qenv_bad(err, env->id, "no content record");
                break;
            }
            first = 0;
            continue;
        }
        if (type == QREC_CONTENT_END) {
            /* A file without its end record is incomplete. */
            if ((rc = rec_get(s, &type, data, QFILE_REC_LIMIT, why)) < 0
                || (rc == 1 && (type != QREC_END || data->len != 0))) {
                rc = qenv_bad(err, env->id, rc < 0 ? why->data
                              : "unexpected record after content");
            } else if (rc == 0) {
                rc = qenv_bad(err, env->id, "no end record");
            } else {
                rc = 0;
            }
            break;
        }
        if (type != QREC_DATA) {
            rc = qenv_bad(err, env->id, "unexpected record in content");
            break;
        }
        if ((rc = fn(data->data, data->len, ctx)) < 0) {
            strbuf_printf(err, "%s: content consumer failed", env->id);
            break;
        }
    }
    stream_free(&s);
    strbuf_free(&data);
    strbuf_free(&why);
    return rc;
}

int qfile_set_warn(int fd, const QENV *env, long when, STRBUF *err)
{
    char buf[QFILE_WARN_LEN + 1];

    if (env->warn_offset == 0) {
        strbuf_printf(err, "%s: no warning record", env->id);
        return -1;
    }
    snprintf(buf, sizeof(buf), QFILE_WARN_FMT, when);
    /* Type byte and one length byte precede the data. */
    if (pwrite(fd, buf, QFILE_WARN_LEN, env->warn_offset + 2)
        != QFILE_WARN_LEN) {
        strbuf_printf(err, "%s: update warning time: %s", env->id,
                      strerror(errno));
        return -1;
    }
    return 0;
}

int qfile_mark_done(int fd, off_t offset, STRBUF *err)
{
    return qfile_mark(fd, offset, 1, err);
}

int qfile_mark(int fd, off_t offset, int sync, STRBUF *err)
{
    char type;

    if (pread(fd, &type, 1, offset) != 1
        || (type != QREC_RCPT && type != QREC_DONE)) {
        strbuf_printf(err, "mark done at offset %ld: not a recipient record",
                      (long) offset);
        return -1;
    }
    type = QREC_DONE;
    if (pwrite(fd, &type, 1, offset) != 1 || (sync && fsync(fd) < 0)) {
        strbuf_printf(err, "mark done at offset %ld: %s", (long) offset,
                      strerror(errno));
        return -1;
    }
    return 0;
}
