/*
 * qmgr_message - a message from activation to removal: load, resolve
 * recipients into jobs, record each recipient's outcome durably, then
 * defer, bounce or remove the message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mail/deliver_req.h"
#include "mail/dsn_log.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "qmgr.h"
#include "util/msg.h"
#include "util/xmalloc.h"

static QMGR_MESSAGE *qmgr_messages;

static void qmgr_rcpt_fail(QMGR_MESSAGE *msg, size_t idx, const char *dsn,
                           const char *reason, const char *relay);

static void qmgr_path(STRBUF *buf, const char *dir, const char *id)
{
    strbuf_printf(buf, "%s/%s", dir, id);
}

void qmgr_log_delivery(QMGR_MESSAGE *msg, size_t idx, const char *relay,
                       const char *dsn, const char *status,
                       const char *reason)
{
    QENV_RCPT *r = &msg->env->rcpts[idx];
    STRBUF *line = strbuf_alloc(256);
    struct timeval now;
    long a_usec;
    long b_usec;

    gettimeofday(&now, NULL);
    a_usec = (msg->active_sec - msg->env->arrival_sec) * 1000000L
        + (msg->active_usec - msg->env->arrival_usec);
    b_usec = (now.tv_sec - msg->active_sec) * 1000000L
        + (now.tv_usec - msg->active_usec);
    strbuf_printf(line, "%s: to=<%s>, ", msg->id, r->address);
    if (r->orig && strcasecmp(r->orig, r->address) != 0)
        strbuf_printf_append(line, "orig_to=<%s>, ", r->orig);
    strbuf_printf_append(line, "relay=%s, delay=", relay);
    deliver_format_delay(line, (a_usec + b_usec) / 1000000L,
                         (a_usec + b_usec) % 1000000L);
    strbuf_cat(line, ", delays=");
    deliver_format_delay(line, a_usec / 1000000L, a_usec % 1000000L);
    strbuf_addch(line, '/');
    deliver_format_delay(line, b_usec / 1000000L, b_usec % 1000000L);
    strbuf_printf_append(line, "/0/0, dsn=%s, status=%s (%s)", dsn, status,
                         reason);
    msg_info("%s", line->data);
    strbuf_free(&line);
}

/* --- recipient outcomes ----------------------------------------------- */

void qmgr_rcpt_done(QMGR_MESSAGE *msg, size_t idx)
{
    STRBUF *err = strbuf_alloc(64);
    int others = 0;

    /* The last one: the file goes (or waits for its notices) next. */
    for (size_t i = 0; i < msg->env->nrcpt && !others; i++)
        others = i != idx && !msg->env->rcpts[i].done;
    if (qfile_mark(msg->fd, msg->env->rcpts[idx].offset, others, err) < 0)
        msg_warn("%s: %s", msg->id, err->data);
    msg->env->rcpts[idx].done = 1;
    strbuf_free(&err);
}

/* Append to dir/ID; 0, or -1 when the entry could not be made durable. */
static int qmgr_log_entry(QMGR_MESSAGE *msg, size_t idx, const char *dir,
                          const char *dsn, const char *action,
                          const char *reason, const char *relay)
{
    int rc = 0;
    QENV_RCPT *r = &msg->env->rcpts[idx];
    STRBUF *path = strbuf_alloc(64);
    STRBUF *err = strbuf_alloc(64);
    DSN_LOG_ENTRY e;

    memset(&e, 0, sizeof(e));
    e.recipient = r->address;
    e.orig_rcpt = r->orig ? r->orig : "";
    e.offset = (long) r->offset;
    e.dsn_orcpt = r->orcpt ? r->orcpt : "";
    e.notify = r->notify;
    e.status = (char *) dsn;
    e.action = (char *) action;
    e.reason = (char *) reason;
    if (relay && strcmp(relay, "none") != 0) {
        e.mta_type = "dns";
        e.mta_name = (char *) relay;
    }
    qmgr_path(path, dir, msg->id);
    if (dsn_log_append(path->data, &e, err) < 0) {
        msg_warn("%s: %s", msg->id, err->data);
        rc = -1;
    }
    strbuf_free(&path);
    strbuf_free(&err);
    return rc;
}

/* Is this message itself a notice that must never bounce again? */
static int qmgr_is_double_bounce(const QMGR_MESSAGE *msg)
{
    const char *s = msg->env->sender;
    size_t n = strlen(var_double_bounce_sender);

    return strncasecmp(s, var_double_bounce_sender, n) == 0
        && (s[n] == 0 || (s[n] == '@'
                          && strcasecmp(s + n + 1, var_myorigin) == 0));
}

/*
 * A recipient failed for good: record it for the notice, then mark it
 * done.  When the record cannot be made durable the recipient stays (as
 * deferred), so that no failure goes unreported.
 */
static void qmgr_rcpt_fail(QMGR_MESSAGE *msg, size_t idx, const char *dsn,
                           const char *reason, const char *relay)
{
    QENV_RCPT *r = &msg->env->rcpts[idx];

    if (qmgr_is_double_bounce(msg)) {
        if (!msg->discard_logged++)
            msg_warn("%s: undeliverable postmaster notification discarded",
                     msg->id);
    } else if (!(r->notify && !(r->notify & DSN_NOTIFY_FAILURE))) {
        /* NOTIFY without FAILURE (e.g. NEVER): no notice for this one. */
        if (qmgr_log_entry(msg, idx, "bounce", dsn, "failed", reason,
                           relay) < 0) {
            qmgr_rcpt_defer(msg, idx, "4.3.0",
                            "cannot record the delivery failure", NULL);
            return;
        }
        msg->bounced = 1;
    }
    /* Durable bounce entry first, then the done mark. */
    qmgr_rcpt_done(msg, idx);
}

void qmgr_rcpt_bounce(QMGR_MESSAGE *msg, size_t idx, const char *dsn,
                      const char *reason, const char *relay)
{
    if (var_soft_bounce) {
        char soft[16];

        snprintf(soft, sizeof(soft), "4%s", dsn[0] ? dsn + 1 : ".0.0");
        qmgr_rcpt_defer(msg, idx, soft, reason, relay);
        return;
    }
    qmgr_rcpt_fail(msg, idx, dsn, reason, relay);
}

void qmgr_rcpt_defer(QMGR_MESSAGE *msg, size_t idx, const char *dsn,
                     const char *reason, const char *relay)
{
    qmgr_log_entry(msg, idx, "defer", dsn, "delayed", reason, relay);
    msg->deferred = 1;
}

/* --- activation ------------------------------------------------------- */

static void qmgr_message_free(QMGR_MESSAGE *msg)
{
    if (msg->prev)
        msg->prev->next = msg->next;
    else
        qmgr_messages = msg->next;
    if (msg->next)
        msg->next->prev = msg->prev;
    if (msg->fd >= 0)
        close(msg->fd);
    qenv_free(&msg->env);
    free(msg->id);
    free(msg);
    if (qmgr_active_count-- >= var_qmgr_message_active_limit)
        qmgr_scan_request();            /* room again: scan what waited */
}

/* Move a queue file to corrupt/ so that nobody tries it again. */
static void qmgr_corrupt(const char *path, const char *id, const char *why)
{
    STRBUF *dest = strbuf_alloc(64);

    qmgr_path(dest, "corrupt", id);
    if (rename(path, dest->data) < 0)
        msg_warn("%s: rename to %s: %m", id, dest->data);
    else
        (void) chmod(dest->data, 0400);
    msg_warn("%s: %s -- moved to corrupt/", id, why);
    strbuf_free(&dest);
}

/* Expired: every recipient left bounces with its last reason. */
static void qmgr_expire(QMGR_MESSAGE *msg, DSN_LOG *old)
{
    msg_info("%s: from=<%s>, status=expired, returned to sender", msg->id,
             msg->env->sender);
    for (size_t i = 0; i < msg->env->nrcpt; i++) {
        QENV_RCPT *r = &msg->env->rcpts[i];
        const char *reason = "message expired";
        char dsn[16] = "5.4.7";

        if (r->done)
            continue;
        for (size_t k = 0; old && k < old->count; k++) {
            DSN_LOG_ENTRY *e = &old->entries[k];

            if (e->offset == (long) r->offset && *e->reason) {
                reason = e->reason;
                if (e->status[0])
                    snprintf(dsn, sizeof(dsn), "5%s", e->status + 1);
            }
        }
        qmgr_rcpt_fail(msg, i, dsn, reason, NULL);
    }
}

void qmgr_message_activate(const char *from_dir, const char *id)
{
    STRBUF *from = strbuf_alloc(64);
    STRBUF *path = strbuf_alloc(64);
    STRBUF *err = strbuf_alloc(128);
    RESOLVE_REPLY *rr = resolve_reply_alloc();
    DSN_LOG *old = NULL;
    QMGR_MESSAGE *msg;
    struct timeval now;
    long lifetime;
    size_t todo = 0;
    int fd;

    qmgr_path(from, from_dir, id);
    qmgr_path(path, "active", id);
    if (strcmp(from_dir, "active") != 0 && rename(from->data, path->data) < 0) {
        if (errno != ENOENT)
            msg_warn("%s: rename %s to active: %m", id, from->data);
        goto done;
    }
    if ((fd = open(path->data, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        int saved = errno;

        /* Not ours to read (or a link): it would block active/ forever. */
        if (saved != ENOENT) {
            strbuf_printf(err, "open: %s", strerror(saved));
            qmgr_corrupt(path->data, id, err->data);
        }
        goto done;
    }
    msg = xcalloc(1, sizeof(*msg));
    msg->id = xstrdup(id);
    msg->fd = fd;
    if (qenv_read_fd(fd, id, &msg->env, err) < 0) {
        qmgr_corrupt(path->data, id, err->data);
        close(fd);
        free(msg->id);
        free(msg);
        goto done;
    }
    gettimeofday(&now, NULL);
    msg->active_sec = now.tv_sec;
    msg->active_usec = now.tv_usec;
    msg->next = qmgr_messages;
    if (qmgr_messages)
        qmgr_messages->prev = msg;
    qmgr_messages = msg;
    qmgr_active_count++;
    msg_info("%s: from=<%s>, size=%ld, nrcpt=%zu (queue active)", id,
             msg->env->sender, msg->env->message_size, msg->env->nrcpt);

    /* A retry starts a new defer log; the old one may explain expiry. */
    qmgr_path(from, "defer", id);
    if (dsn_log_read(from->data, &old, err) < 0)
        msg_warn("%s: %s", id, err->data);
    (void) unlink(from->data);

    lifetime = *msg->env->sender ? var_maximal_queue_lifetime
        : var_bounce_queue_lifetime;
    if (strcmp(from_dir, "deferred") == 0
        && now.tv_sec - msg->env->arrival_sec > lifetime)
        qmgr_expire(msg, old);

    msg->loading = 1;
    for (size_t i = 0; i < msg->env->nrcpt; i++) {
        QENV_RCPT *r = &msg->env->rcpts[i];

        if (r->done)
            continue;
        todo++;
        if (resolve_addr(r->address, rr, err) < 0) {
            msg_warn("%s: %s", id, err->data);
            qmgr_log_delivery(msg, i, "none", "4.3.0", "deferred",
                              "address resolver failure");
            qmgr_rcpt_defer(msg, i, "4.3.0", "address resolver failure",
                            NULL);
            continue;
        }
        qmgr_job_add(msg, qmgr_transport(rr->transport->data),
                     rr->nexthop->data, i);
    }
    msg->loading = 0;
    if (msg->jobs_pending == 0)
        qmgr_message_job_done(msg);     /* nothing to deliver: finish */
    else
        qmgr_schedule();
done:
    dsn_log_free(&old);
    resolve_reply_free(&rr);
    strbuf_free(&from);
    strbuf_free(&path);
    strbuf_free(&err);
}

/* --- completion ------------------------------------------------------- */

static void qmgr_message_defer(QMGR_MESSAGE *msg)
{
    STRBUF *src = strbuf_alloc(64);
    STRBUF *dst = strbuf_alloc(64);
    STRBUF *err = strbuf_alloc(64);
    struct timeval times[2];
    long age = time(NULL) - msg->env->arrival_sec;
    long delay = age < var_minimal_backoff_time ? var_minimal_backoff_time
        : age > var_maximal_backoff_time ? var_maximal_backoff_time : age;

    /* The delay warning, once, when it is due. */
    if (var_delay_warning_time > 0 && msg->env->warn_time == 0) {
        msg->env->warn_time = msg->env->arrival_sec + var_delay_warning_time;
        if (qfile_set_warn(msg->fd, msg->env, msg->env->warn_time, err) < 0)
            msg_warn("%s", err->data);
    }
    if (msg->env->warn_time > 0 && time(NULL) >= msg->env->warn_time) {
        if (qmgr_bounce_send(msg, "defer", "delayed", err) < 0)
            msg_warn("%s: delay warning: %s", msg->id, err->data);
        else if (qfile_set_warn(msg->fd, msg->env, -1, err) < 0)
            msg_warn("%s", err->data);
    }
    qmgr_path(src, "active", msg->id);
    qmgr_path(dst, "deferred", msg->id);
    if (rename(src->data, dst->data) < 0) {
        msg_warn("%s: rename to deferred: %m", msg->id);
    } else {
        gettimeofday(&times[0], NULL);
        times[0].tv_sec += delay;
        times[1] = times[0];
        if (utimes(dst->data, times) < 0)
            msg_warn("%s: set retry time: %m", msg->id);
    }
    strbuf_free(&src);
    strbuf_free(&dst);
    strbuf_free(&err);
}

static void qmgr_message_remove(QMGR_MESSAGE *msg)
{
    STRBUF *path = strbuf_alloc(64);

    qmgr_path(path, "active", msg->id);
    if (unlink(path->data) < 0 && errno != ENOENT)
        msg_warn("%s: remove %s: %m", msg->id, path->data);
    qmgr_path(path, "defer", msg->id);
    (void) unlink(path->data);
    msg_info("%s: removed", msg->id);
    strbuf_free(&path);
}

/* A job of msg finished (or msg had none): maybe the message is done. */
void qmgr_message_job_done(QMGR_MESSAGE *msg)
{
    STRBUF *err;
    STRBUF *path;
    struct stat st;

    if (msg->jobs_pending > 0 || msg->loading)
        return;
    err = strbuf_alloc(64);
    path = strbuf_alloc(64);
    /* Bounces first: a bounce/ID left from a crash counts too. */
    qmgr_path(path, "bounce", msg->id);
    if (msg->bounced || stat(path->data, &st) == 0) {
        if (qmgr_bounce_send(msg, "bounce", "failed", err) < 0) {
            msg_warn("%s: bounce: %s", msg->id, err->data);
            msg->deferred = 1;          /* keep the log, try again later */
        } else {
            (void) unlink(path->data);
        }
    }
    if (msg->deferred)
        qmgr_message_defer(msg);
    else
        qmgr_message_remove(msg);
    qmgr_message_free(msg);
    strbuf_free(&err);
    strbuf_free(&path);
}
