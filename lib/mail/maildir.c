/*
 * maildir - Maildir delivery and mbox append (see maildir.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mail/dsn_log.h"
#include "mail/maildir.h"
#include "util/msg.h"
#include "util/xmalloc.h"

#define MAILDIR_OUT_CHUNK   (64 * 1024)
#define MAILDIR_DIR_MODE    0700
#define MAILDIR_FILE_MODE   0600

MAILDIR_STATUS *maildir_status_alloc(void)
{
    MAILDIR_STATUS *st = xcalloc(1, sizeof(*st));

    st->why = strbuf_alloc(128);
    st->path = strbuf_alloc(128);
    return st;
}

void maildir_status_free(MAILDIR_STATUS **stp)
{
    if (*stp == NULL)
        return;
    strbuf_free(&(*stp)->why);
    strbuf_free(&(*stp)->path);
    xfree(stp);
}

static void maildir_status_reset(MAILDIR_STATUS *st)
{
    st->code = MAILDIR_OK;
    snprintf(st->dsn, sizeof(st->dsn), "2.0.0");
    strbuf_reset(st->why);
    strbuf_reset(st->path);
}

static int maildir_fail(MAILDIR_STATUS *st, int code, const char *dsn,
                        const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Record the first failure only: it is the cause, the rest follows. */
static int maildir_fail(MAILDIR_STATUS *st, int code, const char *dsn,
                        const char *fmt, ...)
{
    va_list ap;

    if (st->code != MAILDIR_OK)
        return st->code;
    st->code = code;
    snprintf(st->dsn, sizeof(st->dsn), "%s", dsn);
    strbuf_reset(st->why);
    va_start(ap, fmt);
    strbuf_vprintf_append(st->why, fmt, ap);
    va_end(ap);
    return code;
}

/* The class and DSN of a system error (Postfix mbox_dsn(), see maildir.h). */
static int maildir_errno_class(int err, const char **dsn)
{
    switch (err) {
    case EDQUOT:
    case EFBIG:
        *dsn = "4.2.2";
        return MAILDIR_TEMP;
    case ENOSPC:
    case EIO:
        *dsn = "4.3.0";
        return MAILDIR_TEMP;
    case EACCES:
    case EPERM:
    case EROFS:
    case EAGAIN:
    case ESTALE:
    case EBUSY:
        *dsn = "4.2.0";
        return MAILDIR_TEMP;
    case ENOTDIR:
    case ELOOP:
    case ENAMETOOLONG:
    case EISDIR:
        *dsn = "5.2.0";
        return MAILDIR_PERM;
    default:
        *dsn = "4.3.0";
        return MAILDIR_TEMP;
    }
}

static int maildir_fail_errno(MAILDIR_STATUS *st, int err, const char *what,
                              const char *path)
{
    const char *dsn;
    int code = maildir_errno_class(err, &dsn);

    return maildir_fail(st, code, dsn, "%s %s: %s", what, path,
                        strerror(err));
}

static int maildir_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;
    int saved;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* --- names ------------------------------------------------------------ */

void maildir_unique_name(STRBUF *out)
{
    static unsigned long counter;
    struct timeval tv;
    char host[256];

    gettimeofday(&tv, NULL);
    if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = 0;
    strbuf_printf(out, "%ld.M%ldP%ldQ%lu.", (long) tv.tv_sec,
                  (long) tv.tv_usec, (long) getpid(), ++counter);
    /* "/" would make a path, ":" starts the flags, "," the fields. */
    for (const char *cp = host; *cp; cp++) {
        if (*cp == '/')
            strbuf_cat(out, "\\057");
        else if (*cp == ':')
            strbuf_cat(out, "\\072");
        else if (*cp == ',')
            strbuf_cat(out, "\\054");
        else
            strbuf_addch(out, *cp);
    }
}

void maildir_from_line(STRBUF *out, const char *sender, time_t when)
{
    char date[64];
    struct tm tm;
    STRBUF *quoted = strbuf_alloc(64);

    localtime_r(&when, &tm);
    /* asctime(3) without its newline, as Postfix writes it. */
    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
    if (*sender)
        dsn_log_quote_address(quoted, sender);
    strbuf_printf(out, "From %s  %s\n", *sender ? quoted->data
                  : "MAILER-DAEMON", date);
    strbuf_free(&quoted);
}

/* --- the output filter ------------------------------------------------ */

/*
 * Buffered output to one file with the size limit, optional ">From "
 * quoting (decided at each line start, across chunk boundaries) and
 * tracking of the last content byte.
 */
typedef struct MAILDIR_OUT {
    int     fd;
    STRBUF *buf;
    off_t   base;                       /* file size before we started */
    off_t   written;                    /* bytes accepted so far */
    off_t   limit;                      /* 0: none */
    int     quote;
    int     bol;                        /* at the start of a line */
    char    pend[5];                    /* a line start that may be "From " */
    size_t  pend_len;
    int     last;                       /* last content byte, -1: none */
    int     err;                        /* errno of a write failure */
    int     over;                       /* the size limit was hit */
} MAILDIR_OUT;

static void maildir_out_init(MAILDIR_OUT *out, int fd, off_t base,
                             off_t limit, int quote)
{
    memset(out, 0, sizeof(*out));
    out->fd = fd;
    out->buf = strbuf_alloc(MAILDIR_OUT_CHUNK + 1024);
    out->base = base;
    out->limit = limit;
    out->quote = quote;
    out->bol = 1;
    out->last = -1;
}

static int maildir_out_flush(MAILDIR_OUT *out)
{
    const char *cp = out->buf->data;
    size_t len = out->buf->len;

    while (len > 0 && out->err == 0) {
        ssize_t n = write(out->fd, cp, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            out->err = n < 0 ? errno : EIO;
            break;
        }
        cp += n;
        len -= (size_t) n;
    }
    strbuf_reset(out->buf);
    return out->err ? -1 : 0;
}

static int maildir_out_write(MAILDIR_OUT *out, const char *data, size_t len)
{
    if (out->err || out->over)
        return -1;
    if (out->limit > 0
        && out->base + out->written + (off_t) len > out->limit) {
        out->over = 1;
        return -1;
    }
    out->written += (off_t) len;
    strbuf_append(out->buf, data, len);
    if (out->buf->len >= MAILDIR_OUT_CHUNK)
        return maildir_out_flush(out);
    return 0;
}

/* The put() callback: content bytes. */
static int maildir_out_put(const char *data, size_t len, void *ctx)
{
    MAILDIR_OUT *out = ctx;
    static const char from[] = "From ";

    if (len > 0)
        out->last = (unsigned char) data[len - 1];
    while (len > 0) {
        if (out->quote && out->bol) {
            while (out->pend_len < 5 && len > 0
                   && *data == from[out->pend_len]) {
                out->pend[out->pend_len++] = *data++;
                len--;
            }
            if (out->pend_len == 5) {
                if (maildir_out_write(out, ">From ", 6) < 0)
                    return -1;
                out->pend_len = 0;
                out->bol = 0;
                continue;
            }
            if (len == 0)
                return 0;               /* undecided: wait for more */
            if (maildir_out_write(out, out->pend, out->pend_len) < 0)
                return -1;
            out->pend_len = 0;
            out->bol = 0;
        }
        {
            const char *nl = memchr(data, '\n', len);
            size_t n = nl ? (size_t) (nl - data) + 1 : len;

            if (maildir_out_write(out, data, n) < 0)
                return -1;
            data += n;
            len -= n;
            out->bol = nl != NULL;
        }
    }
    return 0;
}

/* After the content: what was held back, the last newline, a blank line. */
static int maildir_out_finish(MAILDIR_OUT *out, int blank_line)
{
    if (out->pend_len > 0
        && maildir_out_write(out, out->pend, out->pend_len) < 0)
        return -1;
    out->pend_len = 0;
    if (out->last != -1 && out->last != '\n'
        && maildir_out_write(out, "\n", 1) < 0)
        return -1;
    if (blank_line && maildir_out_write(out, "\n", 1) < 0)
        return -1;
    return maildir_out_flush(out);
}

static void maildir_out_free(MAILDIR_OUT *out)
{
    strbuf_free(&out->buf);
}

/*
 * Copy prepend (and from_line) and the content through out; classify a
 * failure into st (path names the file for messages).
 */
static int maildir_copy(MAILDIR_OUT *out, const MAILDIR_MSG *msg,
                        const char *from_line, int blank_line,
                        const char *path, MAILDIR_STATUS *st)
{
    STRBUF *err = strbuf_alloc(64);
    int rc = 0;

    if ((from_line && maildir_out_write(out, from_line, strlen(from_line)) < 0)
        || (msg->prepend && maildir_out_write(out, msg->prepend,
                                              strlen(msg->prepend)) < 0))
        rc = -1;
    if (rc == 0 && msg->source
        && msg->source(msg->source_ctx, maildir_out_put, out, err) < 0)
        rc = -1;
    if (rc == 0 && maildir_out_finish(out, blank_line) < 0)
        rc = -1;
    if (rc < 0) {
        if (out->over)
            maildir_fail(st, MAILDIR_TEMP, "4.2.2", "mailbox full: size "
                         "limit of %lld bytes exceeded",
                         (long long) out->limit);
        else if (out->err)
            maildir_fail_errno(st, out->err, "write", path);
        else
            maildir_fail(st, MAILDIR_TEMP, "4.3.0", "error reading message: "
                         "%s", err->len ? err->data : "unknown error");
    }
    strbuf_free(&err);
    return rc;
}

/* --- Maildir ---------------------------------------------------------- */

/* mkdir that counts "already there" as success; 1 when it created it. */
static int maildir_mkdir(const char *path, const MAILDIR_MSG *msg)
{
    if (mkdir(path, MAILDIR_DIR_MODE) < 0)
        return errno == EEXIST ? 0 : -1;
    if (msg && (msg->flags & MAILDIR_FLAG_CHOWN) && geteuid() == 0
        && lchown(path, msg->uid, msg->gid) < 0)
        return -1;
    return 1;
}

/* Create path and its missing parents; fsync the parent of each new one. */
static int maildir_mkdir_p(const char *path, const MAILDIR_MSG *msg,
                           MAILDIR_STATUS *st)
{
    STRBUF *prefix = strbuf_alloc(128);
    struct stat sb;
    int rc = 0;

    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        strbuf_free(&prefix);
        return 0;
    }
    for (const char *cp = path; rc == 0; cp++) {
        if (*cp != '/' && *cp != 0)
            continue;
        if (cp > path && cp[-1] != '/') {
            int made;

            strbuf_setn(prefix, path, (size_t) (cp - path));
            if ((made = maildir_mkdir(prefix->data, msg)) < 0) {
                rc = -1;
                maildir_fail_errno(st, errno, "create directory",
                                   prefix->data);
            } else if (made) {
                char *slash = strrchr(prefix->data, '/');

                if (slash == prefix->data)
                    strbuf_truncate(prefix, 1);
                else if (slash)
                    strbuf_truncate(prefix, (size_t) (slash - prefix->data));
                else
                    strbuf_set(prefix, ".");
                if (maildir_fsync_dir(prefix->data) < 0) {
                    rc = -1;
                    maildir_fail_errno(st, errno, "fsync directory",
                                       prefix->data);
                }
            }
        }
        if (*cp == 0)
            break;
    }
    strbuf_free(&prefix);
    return rc;
}

/* dir without trailing slashes ("/" stays "/"). */
static void maildir_trim(STRBUF *out, const char *dir)
{
    strbuf_set(out, dir);
    while (out->len > 1 && out->data[out->len - 1] == '/')
        strbuf_truncate(out, out->len - 1);
}

int maildir_make(const char *dir, const MAILDIR_MSG *msg, MAILDIR_STATUS *st)
{
    static const char *const subdirs[] = {"tmp", "new", "cur"};
    STRBUF *base = strbuf_alloc(128);
    STRBUF *sub = strbuf_alloc(128);

    maildir_status_reset(st);
    maildir_trim(base, dir);
    if (base->len == 0) {
        maildir_fail(st, MAILDIR_PERM, "5.2.0", "empty maildir path");
        goto done;
    }
    if (maildir_mkdir_p(base->data, msg, st) < 0)
        goto done;
    for (size_t i = 0; i < 3; i++) {
        int made;

        strbuf_printf(sub, "%s/%s", base->data, subdirs[i]);
        if ((made = maildir_mkdir(sub->data, msg)) < 0) {
            maildir_fail_errno(st, errno, "create directory", sub->data);
            goto done;
        }
        if (made && maildir_fsync_dir(base->data) < 0) {
            maildir_fail_errno(st, errno, "fsync directory", base->data);
            goto done;
        }
    }
done:
    strbuf_free(&base);
    strbuf_free(&sub);
    return st->code;
}

/* Rename without replacing; link+unlink where renameat2() cannot. */
static int maildir_rename(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (link(from, to) < 0)
        return -1;
    (void) unlink(from);
    return 0;
}

/* Create a file in tmp/ under a fresh name; its fd, or -1 with st set. */
static int maildir_create_tmp(const char *base, const MAILDIR_MSG *msg,
                              STRBUF *name, STRBUF *tmp, MAILDIR_STATUS *st)
{
    int fd = -1;

    for (int attempt = 0; attempt < 10; attempt++) {
        maildir_unique_name(name);
        strbuf_printf(tmp, "%s/tmp/%s", base, name->data);
        fd = open(tmp->data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
                  | O_CLOEXEC | O_NOCTTY, MAILDIR_FILE_MODE);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        maildir_fail_errno(st, errno, "create maildir file", tmp->data);
        return -1;
    }
    if ((msg->flags & MAILDIR_FLAG_CHOWN) && geteuid() == 0
        && fchown(fd, msg->uid, msg->gid) < 0) {
        maildir_fail_errno(st, errno, "change owner of", tmp->data);
        close(fd);
        (void) unlink(tmp->data);
        return -1;
    }
    return fd;
}

int maildir_deliver(const char *dir, const MAILDIR_MSG *msg,
                    MAILDIR_STATUS *st)
{
    STRBUF *base = strbuf_alloc(128);
    STRBUF *name = strbuf_alloc(128);
    STRBUF *tmp = strbuf_alloc(128);
    STRBUF *final = strbuf_alloc(128);
    MAILDIR_OUT out;
    int fd = -1;
    int rc;

    if (maildir_make(dir, msg, st) != MAILDIR_OK)
        goto done;
    maildir_trim(base, dir);
    if ((fd = maildir_create_tmp(base->data, msg, name, tmp, st)) < 0)
        goto done;
    maildir_out_init(&out, fd, 0, msg->size_limit, 0);
    rc = maildir_copy(&out, msg, NULL, 0, tmp->data, st);
    maildir_out_free(&out);
    if (rc == 0 && fsync(fd) < 0)
        maildir_fail_errno(st, errno, "fsync", tmp->data);
    rc = close(fd);
    if (rc < 0)
        maildir_fail_errno(st, errno, "close", tmp->data);
    if (st->code != MAILDIR_OK) {
        (void) unlink(tmp->data);
        goto done;
    }
    strbuf_printf(final, "%s/new/%s,S=%lld", base->data, name->data,
                  (long long) out.written);
    if (maildir_rename(tmp->data, final->data) < 0) {
        maildir_fail_errno(st, errno, "rename to", final->data);
        (void) unlink(tmp->data);
        goto done;
    }
    /* Durable only once new/ is: otherwise take it back and try later. */
    strbuf_printf(tmp, "%s/new", base->data);
    if (maildir_fsync_dir(tmp->data) < 0) {
        maildir_fail_errno(st, errno, "fsync directory", tmp->data);
        (void) unlink(final->data);
        goto done;
    }
    strbuf_set(st->path, final->data);
done:
    strbuf_free(&base);
    strbuf_free(&name);
    strbuf_free(&tmp);
    strbuf_free(&final);
    return st->code;
}

/* --- mbox ------------------------------------------------------------- */

static void maildir_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        /* void */ ;
}

/*
 * Open an existing mbox or create it, without following a symbolic link
 * and without blocking on a FIFO; check what it is.  The fd, or -1.
 */
static int maildir_mbox_open(const char *path, const MAILDIR_MSG *msg,
                             MAILDIR_STATUS *st)
{
    int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
        | O_NOCTTY;
    struct stat sb;
    int created = 0;
    int fd = -1;

    for (int attempt = 0; fd < 0 && attempt < 10; attempt++) {
        if ((fd = open(path, flags)) >= 0 || errno != ENOENT)
            break;
        if ((fd = open(path, flags | O_CREAT | O_EXCL, MAILDIR_FILE_MODE)) >= 0)
            created = 1;
        else if (errno != EEXIST)
            break;
    }
    if (fd < 0) {
        if (errno == ELOOP)
            maildir_fail(st, MAILDIR_PERM, "5.2.0", "%s is a symbolic link",
                         path);
        else if (errno == ENOENT)
            maildir_fail(st, MAILDIR_PERM, "5.2.0", "create %s: %s", path,
                         strerror(errno));
        else
            maildir_fail_errno(st, errno, "open", path);
        return -1;
    }
    if (fstat(fd, &sb) < 0) {
        maildir_fail_errno(st, errno, "fstat", path);
    } else if (!S_ISREG(sb.st_mode)) {
        maildir_fail(st, MAILDIR_PERM, "5.2.0", "%s is not a regular file",
                     path);
    } else if (sb.st_nlink != 1) {
        maildir_fail(st, MAILDIR_PERM, "5.2.0", "%s has %lu hard links",
                     path, (unsigned long) sb.st_nlink);
    } else if (!created && (msg->flags & MAILDIR_FLAG_OWNER_CHECK)
               && sb.st_uid != geteuid()) {
        maildir_fail(st, MAILDIR_TEMP, "4.2.0", "%s is not owned by uid %ld",
                     path, (long) geteuid());
    } else if (created && (msg->flags & MAILDIR_FLAG_CHOWN)
               && geteuid() == 0 && fchown(fd, msg->uid, msg->gid) < 0) {
        maildir_fail_errno(st, errno, "change owner of", path);
    } else if (fcntl(fd, F_SETFL, O_WRONLY | O_APPEND) < 0) {
        maildir_fail_errno(st, errno, "fcntl", path);
    }
    if (st->code != MAILDIR_OK) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Take PATH.lock: 1 when held, 0 when not needed (a directory we may not
 * write, with MAILDIR_FLAG_DOTLOCK_MAY_FAIL), -1 with st set.
 */
static int maildir_dotlock(const char *lock, const MAILDIR_MSG *msg,
                           MAILDIR_STATUS *st)
{
    struct stat sb;

    for (int attempt = 0; attempt < MAILDIR_LOCK_ATTEMPTS; attempt++) {
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
                      | O_CLOEXEC, MAILDIR_FILE_MODE);

        if (fd >= 0) {
            close(fd);
            return 1;
        }
        if (errno != EEXIST) {
            if ((msg->flags & MAILDIR_FLAG_DOTLOCK_MAY_FAIL)
                && (errno == EACCES || errno == EPERM || errno == EROFS))
                return 0;
            maildir_fail(st, MAILDIR_TEMP, "4.2.0", "create lock file %s: %s",
                         lock, strerror(errno));
            return -1;
        }
        /* Someone died holding it (Postfix stale_lock_time). */
        if (lstat(lock, &sb) == 0
            && time(NULL) - sb.st_mtime > MAILDIR_LOCK_STALE) {
            if (unlink(lock) == 0)
                msg_warn("%s: removed stale lock file", lock);
            continue;
        }
        maildir_sleep_ms(MAILDIR_LOCK_DELAY_MS);
    }
    maildir_fail(st, MAILDIR_TEMP, "4.2.0", "unable to lock %s for exclusive "
                 "access: lock file exists", lock);
    return -1;
}

static int maildir_fcntl_lock(int fd, const char *path, MAILDIR_STATUS *st)
{
    struct flock fl;

    for (int attempt = 0; attempt < MAILDIR_LOCK_ATTEMPTS; attempt++) {
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_SETLK, &fl) == 0)
            return 0;
        if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
            maildir_fail_errno(st, errno, "lock", path);
            return -1;
        }
        maildir_sleep_ms(MAILDIR_LOCK_DELAY_MS);
    }
    maildir_fail(st, MAILDIR_TEMP, "4.2.0", "unable to lock %s for exclusive "
                 "access: %s", path, strerror(EAGAIN));
    return -1;
}

int maildir_mbox_append(const char *path, const MAILDIR_MSG *msg,
                        MAILDIR_STATUS *st)
{
    STRBUF *lock = strbuf_alloc(128);
    STRBUF *from = strbuf_alloc(128);
    MAILDIR_OUT out;
    int locked = 0;
    int fd;
    off_t size;

    maildir_status_reset(st);
    if (*path == 0 || path[strlen(path) - 1] == '/') {
        maildir_fail(st, MAILDIR_PERM, "5.2.0", "bad mailbox file name "
                     "\"%s\"", path);
        goto done;
    }
    if (msg->flags & MAILDIR_FLAG_MKDIR) {
        const char *slash = strrchr(path, '/');

        if (slash && slash > path) {
            strbuf_setn(lock, path, (size_t) (slash - path));
            if (maildir_mkdir_p(lock->data, msg, st) < 0)
                goto done;
        }
    }
    if ((fd = maildir_mbox_open(path, msg, st)) < 0)
        goto done;
    strbuf_printf(lock, "%s.lock", path);
    if ((msg->flags & MAILDIR_FLAG_DOTLOCK)
        && (locked = maildir_dotlock(lock->data, msg, st)) < 0) {
        close(fd);
        goto done;
    }
    if (maildir_fcntl_lock(fd, path, st) < 0
        || (size = lseek(fd, 0, SEEK_END)) < 0) {
        if (st->code == MAILDIR_OK)
            maildir_fail_errno(st, errno, "seek", path);
    } else {
        maildir_out_init(&out, fd, size, msg->size_limit, 1);
        maildir_from_line(from, msg->sender ? msg->sender : "", time(NULL));
        if (maildir_copy(&out, msg, from->data, 1, path, st) == 0
            && fsync(fd) < 0)
            maildir_fail_errno(st, errno, "fsync", path);
        maildir_out_free(&out);
        /* Undo a partial append while the lock is still ours. */
        if (st->code != MAILDIR_OK && ftruncate(fd, size) < 0)
            msg_warn("%s: cannot truncate to its old size %lld: %m", path,
                     (long long) size);
    }
    if (close(fd) < 0)
        maildir_fail_errno(st, errno, "close", path);
    if (locked > 0 && unlink(lock->data) < 0)
        msg_warn("remove lock file %s: %m", lock->data);
done:
    strbuf_free(&lock);
    strbuf_free(&from);
    return st->code;
}
