/*
 * showq - the mail queue listing (see showq.h).
 *
 * Formats after Postfix 3.x src/postqueue/showq_compat.c and showq_json.c,
 * the selection of messages and recipients after src/showq/showq.c.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mail/dsn_log.h"
#include "mail/queue_file.h"
#include "mail/record.h"
#include "mail/showq.h"
#include "util/argv.h"
#include "util/htable.h"
#include "util/msg.h"
#include "util/stream.h"
#include "util/xmalloc.h"

const char *const showq_queues[] = {
    "maildrop", "active", "incoming", "deferred", "hold", NULL,
};

#define SHOWQ_DEFER_DIR     "defer"
#define SHOWQ_ENV_LIMIT     (1024 * 1024)       /* one envelope record */
#define SHOWQ_FLUSH_AT      (32 * 1024)         /* output buffer */
#define SHOWQ_ID_LEN_MAX    64

/*
 * Postfix's long-ID layout (showq_compat.c L_STRING_FORMAT etc.).  The
 * "(reason)" line is padded to end in column 78 whatever the ID layout:
 * Postfix uses 76 - strlen(reason) for short and long IDs alike (checked
 * against a real Postfix 3.7 with enable_long_queue_ids = yes).
 */
#define SHOWQ_STRING_FMT    "%-17s %8s %-19s %s\n"
#define SHOWQ_SENDER_FMT    "%-17s %8ld %19.19s %s\n"
#define SHOWQ_REASON_WIDTH  76

/* --- names and paths --------------------------------------------------- */

int showq_id_ok(const char *id)
{
    size_t len = strlen(id);

    if (len == 0 || len > SHOWQ_ID_LEN_MAX)
        return 0;
    for (const char *cp = id; *cp; cp++)
        if (!isascii((unsigned char) *cp)
            || (!isalnum((unsigned char) *cp) && *cp != '_'))
            return 0;
    return 1;
}

/* Is dir/name a directory?  d_type when the file system says. */
static int showq_is_dir(const struct dirent *de, const char *path)
{
    struct stat st;

    if (de->d_type == DT_DIR)
        return 1;
    if (de->d_type != DT_UNKNOWN)
        return 0;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * Collect the paths of queue files under dir, descending into the
 * one-character subdirectories of hashed queues.  -1 with err only when
 * the top directory cannot be read; a missing directory is empty.
 */
static int showq_collect(const char *dir, int depth, ARGV *paths,
                         STRBUF *err)
{
    STRBUF *path = strbuf_alloc(64);
    struct dirent *de;
    DIR *d;

    if ((d = opendir(dir)) == NULL) {
        strbuf_free(&path);
        if (errno == ENOENT || depth > 0)
            return 0;
        strbuf_printf(err, "open queue directory %s: %s", dir,
                      strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;

        if (name[0] == '.')
            continue;
        strbuf_printf(path, "%s/%s", dir, name);
        if (name[1] == 0 && depth < SHOWQ_HASH_DEPTH
            && showq_is_dir(de, path->data))
            (void) showq_collect(path->data, depth + 1, paths, err);
        else if (showq_id_ok(name))
            argv_add(paths, path->data);
    }
    closedir(d);
    strbuf_free(&path);
    return 0;
}

static const char *showq_basename(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? slash + 1 : path;
}

static int showq_by_id(const void *a, const void *b)
{
    const char *pa = *(const char *const *) a;
    const char *pb = *(const char *const *) b;
    int rc = strcmp(showq_basename(pa), showq_basename(pb));

    return rc ? rc : strcmp(pa, pb);
}

int showq_find(const char *queue, const char *id, STRBUF *path_r)
{
    ARGV *paths = argv_alloc(4);
    STRBUF *err = strbuf_alloc(64);
    struct stat st;
    int found = 0;

    /* The flat name first: no directory scan in the common case. */
    strbuf_printf(path_r, "%s/%s", queue, id);
    if (lstat(path_r->data, &st) == 0) {
        found = 1;
    } else if (errno == ENOENT && showq_collect(queue, 0, paths, err) == 0) {
        argv_sort(paths);
        for (size_t i = 0; i < paths->argc && !found; i++) {
            if (strcmp(showq_basename(paths->argv[i]), id) == 0) {
                strbuf_set(path_r, paths->argv[i]);
                found = 1;
            }
        }
    }
    argv_free(&paths);
    strbuf_free(&err);
    if (!found && errno != EACCES)
        errno = ENOENT;
    return found;
}

/* ID -> path of every defer log, read once per listing. */
static HTABLE *showq_defer_index(void)
{
    HTABLE *index = htable_alloc(64);
    ARGV *paths = argv_alloc(16);
    STRBUF *err = strbuf_alloc(64);

    if (showq_collect(SHOWQ_DEFER_DIR, 0, paths, err) < 0)
        msg_warn("%s", err->data);
    for (size_t i = 0; i < paths->argc; i++) {
        char *copy = xstrdup(paths->argv[i]);

        if (htable_enter(index, showq_basename(copy), copy) == NULL)
            free(copy);
    }
    argv_free(&paths);
    strbuf_free(&err);
    return index;
}

/* --- reading one message ----------------------------------------------- */

void showq_msg_free(SHOWQ_MSG **msgp)
{
    SHOWQ_MSG *msg = *msgp;

    if (msg == NULL)
        return;
    for (size_t i = 0; i < msg->nrcpt; i++) {
        free(msg->rcpts[i].address);
        free(msg->rcpts[i].reason);
    }
    free(msg->rcpts);
    free(msg->queue);
    free(msg->id);
    free(msg->sender);
    xfree(msgp);
}

static void showq_add_rcpt(SHOWQ_MSG *msg, const char *addr,
                           const char *reason)
{
    if (msg->nrcpt == msg->size_rcpts) {
        msg->size_rcpts = msg->size_rcpts ? msg->size_rcpts * 2 : 8;
        msg->rcpts = xreallocarray(msg->rcpts, msg->size_rcpts,
                                   sizeof(*msg->rcpts));
    }
    msg->rcpts[msg->nrcpt].address = xstrdup(addr);
    msg->rcpts[msg->nrcpt].reason = xstrdup(reason);
    msg->nrcpt++;
}

/* A recipient record of the queue file. */
typedef struct SHOWQ_QRCPT {
    char   *quoted;                     /* quoted form */
    char   *key;                        /* printable quoted: the log's form */
    long    offset;
    int     done;
    int     shown;                      /* listed from the defer log */
} SHOWQ_QRCPT;

typedef struct SHOWQ_ENV {
    long    size;                       /* -1: none */
    long    arrival;                    /* 0: none */
    char   *sender;
    SHOWQ_QRCPT *rcpts;
    size_t  nrcpt;
    size_t  size_rcpts;
} SHOWQ_ENV;

static void showq_env_free(SHOWQ_ENV *env)
{
    for (size_t i = 0; i < env->nrcpt; i++) {
        free(env->rcpts[i].quoted);
        free(env->rcpts[i].key);
    }
    free(env->rcpts);
    free(env->sender);
}

/*
 * The first number of a size or time record: digits and spaces only, as
 * Postfix's showq checks (leading spaces: the size record is "%15ld ...").
 * -1 if malformed.
 */
static long showq_first_number(const char *text)
{
    long n;

    if (text[strspn(text, "0123456789 ")] != 0)
        return -1;
    errno = 0;
    n = strtol(text, NULL, 10);
    return errno || n < 0 ? -1 : n;
}

static void showq_env_rcpt(SHOWQ_ENV *env, const char *addr, long offset,
                           int done, STRBUF *tmp)
{
    SHOWQ_QRCPT *r;

    if (env->nrcpt == env->size_rcpts) {
        env->size_rcpts = env->size_rcpts ? env->size_rcpts * 2 : 8;
        env->rcpts = xreallocarray(env->rcpts, env->size_rcpts,
                                   sizeof(*env->rcpts));
    }
    r = &env->rcpts[env->nrcpt++];
    /* An empty recipient "can't happen" (Postfix), but show it if it does. */
    dsn_log_quote_address(tmp, *addr ? addr : SHOWQ_EMPTY_ADDR);
    r->quoted = xstrdup(tmp->data);
    dsn_log_printable(tmp, r->quoted, strlen(r->quoted));
    r->key = xstrdup(tmp->data);
    r->offset = offset;
    r->done = done;
    r->shown = 0;
}

/*
 * Read the envelope up to the content (or the end).  Only framing errors
 * and a missing or repeated sender make a file corrupt: other record
 * types are skipped, so that maildrop files and later additions to the
 * format are listed too.
 */
static int showq_read_env(int fd, const char *id, SHOWQ_ENV *env,
                          STRBUF *err)
{
    STREAM *s = stream_open(fd, 0, 4096);
    STRBUF *data = strbuf_alloc(256);
    STRBUF *why = strbuf_alloc(64);
    STRBUF *tmp = strbuf_alloc(64);
    off_t offset = 0;
    int type;
    int rc;

    env->size = -1;
    for (;;) {
        off_t rec_offset = offset;

        if ((rc = rec_get(s, &type, data, SHOWQ_ENV_LIMIT, why)) <= 0) {
            strbuf_printf(err, "%s: corrupt queue file: %s", id,
                          rc < 0 ? why->data : "premature end of file");
            rc = -1;
            break;
        }
        offset = (off_t) s->bytes_in - (off_t) (s->rend - s->rpos);
        if (type == QREC_CONTENT || type == QREC_END) {
            rc = env->sender ? 0 : -1;
            if (rc < 0)
                strbuf_printf(err, "%s: corrupt queue file: no sender", id);
            break;
        }
        if ((type == QREC_SENDER || type == QREC_RCPT || type == QREC_DONE)
            && memchr(data->data, 0, data->len) != NULL) {
            strbuf_printf(err, "%s: corrupt queue file: NUL in address", id);
            rc = -1;
            break;
        }
        if (type == QREC_SIZE && env->size == -1) {
            if ((env->size = showq_first_number(data->data)) < 0) {
                msg_warn("%s: malformed size record: %.100s -- using file "
                         "size instead", id, data->data);
                env->size = -2;         /* do not look again */
            }
        } else if (type == QREC_TIME && env->arrival == 0) {
            long t = showq_first_number(data->data);

            env->arrival = t > 0 ? t : 0;
        } else if (type == QREC_SENDER) {
            if (env->sender) {
                strbuf_printf(err, "%s: corrupt queue file: duplicate "
                              "sender", id);
                rc = -1;
                break;
            }
            env->sender = xstrdup(data->data);
        } else if (type == QREC_RCPT || type == QREC_DONE) {
            if (env->sender == NULL) {
                strbuf_printf(err, "%s: corrupt queue file: recipient "
                              "before sender", id);
                rc = -1;
                break;
            }
            showq_env_rcpt(env, data->data, (long) rec_offset,
                           type == QREC_DONE, tmp);
        }
    }
    stream_free(&s);
    strbuf_free(&data);
    strbuf_free(&why);
    strbuf_free(&tmp);
    return rc;
}

/* The queue file's recipient that a defer log entry is about, or NULL. */
static SHOWQ_QRCPT *showq_match(SHOWQ_ENV *env, const DSN_LOG_ENTRY *e)
{
    SHOWQ_QRCPT *undone = NULL;
    SHOWQ_QRCPT *any = NULL;

    for (size_t i = 0; i < env->nrcpt; i++) {
        SHOWQ_QRCPT *r = &env->rcpts[i];

        /* The offset names the record: the log belongs to this file. */
        if (e->offset > 0 && r->offset == e->offset)
            return r;
        if (strcmp(r->key, e->recipient) == 0) {
            if (!r->done && undone == NULL)
                undone = r;
            any = r;
        }
    }
    return undone ? undone : any;
}

/*
 * Defer log recipients first (Postfix showq_reasons()), leaving out those
 * whose queue file recipient is done by now, then the queue file's other
 * recipients that are not done and not already shown by address (the
 * duplicate filter of Postfix's showq_report()).
 */
static void showq_merge(SHOWQ_MSG *msg, SHOWQ_ENV *env, const DSN_LOG *log)
{
    HTABLE *shown = htable_alloc(16);

    for (size_t i = 0; log && i < log->count; i++) {
        const DSN_LOG_ENTRY *e = &log->entries[i];
        SHOWQ_QRCPT *r = showq_match(env, e);

        if (r != NULL && r->done)
            continue;
        if (r != NULL)
            r->shown = 1;
        (void) htable_enter(shown, e->recipient, NULL);
        showq_add_rcpt(msg, e->recipient, e->reason);
    }
    for (size_t i = 0; i < env->nrcpt; i++) {
        SHOWQ_QRCPT *r = &env->rcpts[i];

        if (r->done || r->shown || htable_locate(shown, r->key) != NULL)
            continue;
        showq_add_rcpt(msg, r->quoted, "");
    }
    htable_free(&shown, NULL);
}

int showq_read(int fd, const struct stat *st, const char *queue,
               const char *id, const char *defer_log, SHOWQ_MSG **msg_r,
               STRBUF *err)
{
    SHOWQ_ENV env;
    SHOWQ_MSG *msg;
    DSN_LOG *log = NULL;
    STRBUF *tmp;

    memset(&env, 0, sizeof(env));
    if (showq_read_env(fd, id, &env, err) < 0) {
        showq_env_free(&env);
        return -1;
    }
    if (defer_log && dsn_log_read(defer_log, &log, err) < 0) {
        /* The reasons are lost, not the message. */
        msg_warn("%s", err->data);
        strbuf_reset(err);
    }
    msg = xcalloc(1, sizeof(*msg));
    msg->queue = xstrdup(queue);
    msg->id = xstrdup(id);
    msg->arrival_time = env.arrival > 0 ? env.arrival : (long) st->st_mtime;
    msg->size = env.size >= 0 ? env.size : (long) st->st_size;
    msg->forced_expire = (st->st_mode & SHOWQ_STAT_EXPIRE) != 0;
    tmp = strbuf_alloc(64);
    dsn_log_quote_address(tmp, *env.sender ? env.sender : SHOWQ_EMPTY_ADDR);
    msg->sender = strbuf_export(&tmp);
    showq_merge(msg, &env, log);
    dsn_log_free(&log);
    showq_env_free(&env);
    *msg_r = msg;
    return 0;
}

/* --- formatting -------------------------------------------------------- */

void showq_format_time(STRBUF *out, long t)
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    time_t tt = (time_t) t;
    struct tm tm;

    if (localtime_r(&tt, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6
        || tm.tm_mon < 0 || tm.tm_mon > 11) {
        strbuf_cat(out, "??");
        return;
    }
    strbuf_printf_append(out, "%.3s %.3s%3d %.2d:%.2d:%.2d %ld",
                         days + 3 * tm.tm_wday, months + 3 * tm.tm_mon,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         1900L + tm.tm_year);
}

void showq_json_quote(STRBUF *out, const char *text)
{
    STRBUF *clean = strbuf_alloc(64);

    /* Postfix json_quote(): short escapes, \uXXXX for other controls. */
    dsn_log_utf8_clean(clean, text, strlen(text));
    strbuf_reset(out);
    for (const unsigned char *cp = (const unsigned char *) clean->data;
         *cp; cp++) {
        switch (*cp) {
        case '\b':
            strbuf_cat(out, "\\b");
            break;
        case '\f':
            strbuf_cat(out, "\\f");
            break;
        case '\n':
            strbuf_cat(out, "\\n");
            break;
        case '\r':
            strbuf_cat(out, "\\r");
            break;
        case '\t':
            strbuf_cat(out, "\\t");
            break;
        case '"':
        case '\\':
            strbuf_addch(out, '\\');
            strbuf_addch(out, *cp);
            break;
        default:
            if (*cp < 0x20 || *cp == 0x7f)
                strbuf_printf_append(out, "\\u%04X", *cp);
            else
                strbuf_addch(out, *cp);
            break;
        }
    }
    strbuf_free(&clean);
}

static void showq_format_text(SHOWQ_FMT *fmt, const SHOWQ_MSG *msg,
                              STRBUF *out)
{
    STRBUF *id = strbuf_alloc(32);
    STRBUF *when = strbuf_alloc(32);
    STRBUF *text = strbuf_alloc(64);
    STRBUF *saved = strbuf_alloc(64);

    if (fmt->count == 0)
        strbuf_printf_append(out, SHOWQ_STRING_FMT, "----Queue ID-----",
                             "--Size--", "---Arrival Time----",
                             "--Sender/Recipient------");
    else
        strbuf_addch(out, '\n');
    strbuf_set(id, msg->id);
    if (strcmp(msg->queue, "active") == 0)
        strbuf_addch(id, '*');
    else if (strcmp(msg->queue, "hold") == 0)
        strbuf_addch(id, '!');
    if (msg->forced_expire)
        strbuf_addch(id, '#');
    showq_format_time(when, msg->arrival_time);
    dsn_log_printable(text, msg->sender, strlen(msg->sender));
    strbuf_printf_append(out, SHOWQ_SENDER_FMT, id->data, msg->size,
                         when->data, text->data);
    for (size_t i = 0; i < msg->nrcpt; i++) {
        const SHOWQ_RCPT *r = &msg->rcpts[i];

        /*
         * A "(reason)" line when the reason changes; "(reason
         * unavailable)" when a recipient without one follows one with.
         */
        dsn_log_printable(text, r->reason, strlen(r->reason));
        if (strcmp(saved->data, text->data) != 0) {
            const char *show = text->len ? text->data : "reason unavailable";
            int pad = SHOWQ_REASON_WIDTH - (int) strlen(show);

            strbuf_set(saved, text->data);
            strbuf_printf_append(out, "%*s(%s)\n", pad > 0 ? pad : 0, "",
                                 show);
        }
        dsn_log_printable(text, r->address, strlen(r->address));
        strbuf_printf_append(out, SHOWQ_STRING_FMT, "", "", "", text->data);
    }
    strbuf_free(&id);
    strbuf_free(&when);
    strbuf_free(&text);
    strbuf_free(&saved);
}

static void showq_format_json(const SHOWQ_MSG *msg, STRBUF *out)
{
    STRBUF *q = strbuf_alloc(64);

    showq_json_quote(q, msg->queue);
    strbuf_printf_append(out, "{\"queue_name\": \"%s\", ", q->data);
    showq_json_quote(q, msg->id);
    strbuf_printf_append(out, "\"queue_id\": \"%s\", ", q->data);
    strbuf_printf_append(out, "\"arrival_time\": %ld, ", msg->arrival_time);
    strbuf_printf_append(out, "\"message_size\": %ld, ", msg->size);
    strbuf_printf_append(out, "\"forced_expire\": %s, ",
                         msg->forced_expire ? "true" : "false");
    showq_json_quote(q, msg->sender);
    strbuf_printf_append(out, "\"sender\": \"%s\", ", q->data);
    strbuf_cat(out, "\"recipients\": [");
    for (size_t i = 0; i < msg->nrcpt; i++) {
        showq_json_quote(q, msg->rcpts[i].address);
        strbuf_printf_append(out, "%s{\"address\": \"%s\"", i ? ", " : "",
                             q->data);
        if (*msg->rcpts[i].reason) {
            showq_json_quote(q, msg->rcpts[i].reason);
            strbuf_printf_append(out, ", \"delay_reason\": \"%s\"", q->data);
        }
        strbuf_addch(out, '}');
    }
    strbuf_cat(out, "]}\n");
    strbuf_free(&q);
}

void showq_format_msg(SHOWQ_FMT *fmt, const SHOWQ_MSG *msg, STRBUF *out)
{
    if (fmt->format == SHOWQ_JSON)
        showq_format_json(msg, out);
    else
        showq_format_text(fmt, msg, out);
    fmt->count++;
    fmt->total += (unsigned long) msg->size;
}

void showq_format_end(SHOWQ_FMT *fmt, STRBUF *out)
{
    if (fmt->format == SHOWQ_JSON)
        return;
    if (fmt->count == 0)
        strbuf_cat(out, "Mail queue is empty\n");
    else
        strbuf_printf_append(out, "\n-- %lu Kbytes in %lu Request%s.\n",
                             fmt->total / 1024, fmt->count,
                             fmt->count == 1 ? "" : "s");
}

/* --- the listing ------------------------------------------------------- */

static void showq_warn(const SHOWQ_OUTPUT *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void showq_warn(const SHOWQ_OUTPUT *out, const char *fmt, ...)
{
    STRBUF *text = strbuf_alloc(128);
    va_list ap;

    va_start(ap, fmt);
    strbuf_vprintf_append(text, fmt, ap);
    va_end(ap);
    if (out->warn)
        out->warn(text->data, out->ctx);
    else
        msg_warn("%s", text->data);
    strbuf_free(&text);
}

/*
 * Open and read one queue file; NULL when it is gone, not ready, or bad
 * (the last reported).
 */
static SHOWQ_MSG *showq_one(const SHOWQ_OUTPUT *out, const char *queue,
                            const char *path, HTABLE *defer, STRBUF *err)
{
    const char *id = showq_basename(path);
    SHOWQ_MSG *msg = NULL;
    struct stat st;
    int fd;

    /* O_NONBLOCK: a FIFO planted in the queue must not hang us. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK))
        < 0) {
        if (errno != ENOENT)
            showq_warn(out, "open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        showq_warn(out, "stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        showq_warn(out, "%s: not a regular file", path);
    } else if ((st.st_mode & S_IRWXU) == S_IRWXU) {
        if (showq_read(fd, &st, queue, id, htable_find(defer, id), &msg,
                       err) < 0)
            showq_warn(out, "%s", err->data);
    }
    close(fd);
    return msg;
}

static int showq_flush(const SHOWQ_OUTPUT *out, STRBUF *buf, STRBUF *err)
{
    int rc = 0;

    if (buf->len > 0 && (rc = out->write(buf->data, buf->len, out->ctx)) < 0)
        strbuf_set(err, "output write error");
    strbuf_reset(buf);
    return rc;
}

int showq_list(int format, const SHOWQ_OUTPUT *out, STRBUF *err)
{
    HTABLE *defer = showq_defer_index();
    STRBUF *buf = strbuf_alloc(SHOWQ_FLUSH_AT + 4096);
    STRBUF *why = strbuf_alloc(128);
    SHOWQ_FMT fmt = {format, 0, 0};
    int rc = 0;

    for (size_t q = 0; rc == 0 && showq_queues[q]; q++) {
        ARGV *paths = argv_alloc(64);

        if (showq_collect(showq_queues[q], 0, paths, err) < 0) {
            argv_free(&paths);
            rc = -1;
            break;
        }
        qsort(paths->argv, paths->argc, sizeof(char *), showq_by_id);
        for (size_t i = 0; rc == 0 && i < paths->argc; i++) {
            SHOWQ_MSG *msg = showq_one(out, showq_queues[q], paths->argv[i],
                                       defer, why);

            if (msg == NULL)
                continue;
            showq_format_msg(&fmt, msg, buf);
            showq_msg_free(&msg);
            if (buf->len >= SHOWQ_FLUSH_AT)
                rc = showq_flush(out, buf, err);
        }
        argv_free(&paths);
    }
    if (rc == 0) {
        showq_format_end(&fmt, buf);
        rc = showq_flush(out, buf, err);
    }
    htable_free(&defer, free);
    strbuf_free(&buf);
    strbuf_free(&why);
    return rc;
}
