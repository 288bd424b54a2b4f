/*
 * qmgr_bounce - delivery status notifications (RFC 3464): non-delivery
 * reports from bounce/ID and delay warnings from defer/ID, submitted to
 * cleanup as new messages.
 *
 * A notice about an ordinary message goes from the null sender to the
 * message's sender.  A notice about a bounce (null sender) goes to
 * $2bounce_notice_recipient from $double_bounce_sender; a notice about
 * that is dropped, so notices never loop.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/cleanup_proto.h"
#include "mail/dsn_log.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "qmgr.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

typedef struct BOUNCE_OUT {
    STREAM *cleanup;
    STRBUF *buf;
    int     failed;
    int     in_headers;
    int     headers_only;
    char    prev;                       /* last byte copied */
} BOUNCE_OUT;

static void bounce_flush(BOUNCE_OUT *out, int force)
{
    IPC_MSG *m;

    if (out->buf->len == 0 || (!force && out->buf->len < CLEANUP_CHUNK_MAX)
        || out->failed)
        return;
    m = ipc_msg_alloc();
    ipc_put_str(m, "req", "data");
    ipc_put_data(m, "data", out->buf->data, out->buf->len);
    if (ipc_write(out->cleanup, m) < 0)
        out->failed = 1;
    ipc_msg_free(&m);
    strbuf_reset(out->buf);
}

static void bounce_put(BOUNCE_OUT *out, const char *text, size_t len)
{
    strbuf_append(out->buf, text, len);
    if (out->buf->len >= CLEANUP_CHUNK_MAX)
        bounce_flush(out, 1);
}

static void bounce_printf(BOUNCE_OUT *out, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void bounce_printf(BOUNCE_OUT *out, const char *fmt, ...)
{
    STRBUF *tmp = strbuf_alloc(256);
    va_list ap;

    va_start(ap, fmt);
    strbuf_vprintf_append(tmp, fmt, ap);
    va_end(ap);
    bounce_put(out, tmp->data, tmp->len);
    strbuf_free(&tmp);
}

/* The original message, or its headers: the third part. */
static int bounce_copy(const char *data, size_t len, void *ctx)
{
    BOUNCE_OUT *out = ctx;

    if (!out->headers_only) {
        bounce_put(out, data, len);
        return 0;
    }
    /* Headers end at the first empty line (not included). */
    for (size_t i = 0; i < len && out->in_headers; i++) {
        if (data[i] == '\n' && out->prev == '\n') {
            out->in_headers = 0;
            break;
        }
        bounce_put(out, data + i, 1);
        out->prev = data[i];
    }
    return 0;
}

/* "2 hour(s)", "30 minute(s)": the largest whole unit. */
static void bounce_duration(STRBUF *out, long secs)
{
    static const struct {
        long    secs;
        const char *name;
    } units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (secs >= units[i].secs || units[i].secs == 1) {
            strbuf_printf(out, "%ld %s(s)", secs / units[i].secs,
                          units[i].name);
            return;
        }
    }
}

static void bounce_date(char *buf, size_t size, time_t when)
{
    struct tm tm;

    localtime_r(&when, &tm);
    strftime(buf, size, "%a, %e %b %Y %H:%M:%S %z (%Z)", &tm);
}

/* The latest entry per recipient, for this action. */
static size_t bounce_select(DSN_LOG *log, const char *action,
                            DSN_LOG_ENTRY ***sel_r)
{
    DSN_LOG_ENTRY **sel = xcalloc(log->count ? log->count : 1,
                                  sizeof(DSN_LOG_ENTRY *));
    size_t n = 0;

    for (size_t i = 0; i < log->count; i++) {
        DSN_LOG_ENTRY *e = &log->entries[i];
        size_t k;

        if (strcmp(e->action, action) != 0)
            continue;
        /* Delay notices only to those who did not turn them off. */
        if (strcmp(action, "delayed") == 0 && e->notify
            && !(e->notify & DSN_NOTIFY_DELAY))
            continue;
        for (k = 0; k < n; k++)
            if (strcmp(sel[k]->recipient, e->recipient) == 0)
                break;
        sel[k] = e;
        if (k == n)
            n++;
    }
    *sel_r = sel;
    return n;
}

static int bounce_submit(QMGR_MESSAGE *msg, DSN_LOG_ENTRY **sel, size_t n,
                         const char *action, const char *from,
                         const char *to, STRBUF *new_id, STRBUF *err)
{
    QENV *env = msg->env;
    int delayed = strcmp(action, "delayed") == 0;
    STRBUF *boundary = strbuf_alloc(64);
    IPC_MSG *m = ipc_msg_alloc();
    BOUNCE_OUT out;
    char date[64];
    char arrival[64];
    const char *ret = qenv_attr(env, "dsn_ret");
    const char *envid = qenv_attr(env, "dsn_envid");
    const IPC_ATTR *a;
    long code = -1;
    int fd;
    int rc = -1;

    memset(&out, 0, sizeof(out));
    out.buf = strbuf_alloc(CLEANUP_CHUNK_MAX + 1024);
    if ((fd = ipc_connect(CLEANUP_CLASS, CLEANUP_SERVICE, err)) < 0)
        goto done;
    out.cleanup = stream_open(fd, var_ipc_timeout, 4096);
    ipc_put_str(m, "req", "open");
    ipc_put_str(m, "origin", CLEANUP_ORIGIN_BOUNCE);
    ipc_put_str(m, "sender", from);
    if (ipc_write(out.cleanup, m) < 0
        || ipc_read(out.cleanup, m, CLEANUP_RECORD_MAX, err) <= 0
        || (a = ipc_find(m, "status")) == NULL
        || str_to_long(a->value, 0, 599, &code) < 0 || code != 0
        || (a = ipc_find(m, "queue_id")) == NULL) {
        if (!err->len)
            strbuf_set(err, "cleanup refused the notice");
        goto done;
    }
    strbuf_set(new_id, a->value);
    ipc_msg_reset(m);
    ipc_put_str(m, "req", "rcpt");
    ipc_put_str(m, "rcpt", to);
    if (ipc_write(out.cleanup, m) < 0) {
        strbuf_set(err, "write to cleanup failed");
        goto done;
    }

    bounce_date(date, sizeof(date), time(NULL));
    bounce_date(arrival, sizeof(arrival), (time_t) env->arrival_sec);
    strbuf_printf(boundary, "%s.%ld/%s", msg->id, (long) time(NULL),
                  var_myhostname);
    bounce_printf(&out, "From: MAILER-DAEMON@%s (Mail Delivery System)\n",
                  var_myhostname);
    bounce_printf(&out, "Subject: %s\n", delayed
                  ? "Delayed Mail (still being retried)"
                  : *env->sender ? "Undelivered Mail Returned to Sender"
                  : "Postmaster Copy: Undelivered Mail");
    bounce_printf(&out, "To: %s\n", to);
    bounce_printf(&out, "Auto-Submitted: auto-replied\n");
    bounce_printf(&out, "MIME-Version: 1.0\n");
    bounce_printf(&out, "Content-Type: multipart/report; "
                  "report-type=delivery-status;\n\tboundary=\"%s\"\n",
                  boundary->data);
    bounce_printf(&out, "Content-Transfer-Encoding: 8bit\n");
    bounce_printf(&out, "Message-Id: <%s.%s@%s>\n", new_id->data, msg->id,
                  var_myhostname);
    bounce_printf(&out, "Date: %s\n\n", date);
    bounce_printf(&out, "This is a MIME-encapsulated message.\n\n");

    /* 1. The human-readable part. */
    bounce_printf(&out, "--%s\nContent-Description: Notification\n"
                  "Content-Type: text/plain; charset=utf-8\n\n",
                  boundary->data);
    if (delayed) {
        bounce_printf(&out, "%s",
                      "####################################################"
                      "################\n"
                      "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND "
                      "YOUR MESSAGE. #\n"
                      "####################################################"
                      "################\n\n");
    }
    bounce_printf(&out, "This is the mail system at host %s.\n\n",
                  var_myhostname);
    if (delayed) {
        STRBUF *warn = strbuf_alloc(32);
        STRBUF *life = strbuf_alloc(32);

        bounce_duration(warn, var_delay_warning_time);
        bounce_duration(life, var_maximal_queue_lifetime);
        bounce_printf(&out, "Your message could not be delivered for more "
                      "than %s.\nIt will be retried until it is %s old.\n\n",
                      warn->data, life->data);
        strbuf_free(&warn);
        strbuf_free(&life);
    }
    else
        bounce_printf(&out, "I'm sorry to have to inform you that your "
                      "message could not\nbe delivered to one or more "
                      "recipients. It's attached below.\n\n");
    bounce_printf(&out, "For further assistance, please send mail to "
                  "postmaster.\n\nIf you do so, please include this problem "
                  "report. You can\ndelete your own text from the attached "
                  "returned message.\n\n                   The mail "
                  "system\n\n");
    for (size_t i = 0; i < n; i++)
        bounce_printf(&out, "<%s>: %s\n", sel[i]->recipient, sel[i]->reason);
    bounce_printf(&out, "\n");

    /* 2. The machine-readable report. */
    bounce_printf(&out, "--%s\nContent-Description: %s\n"
                  "Content-Type: message/delivery-status\n\n",
                  boundary->data, delayed ? "Delivery report"
                  : "Delivery report");
    bounce_printf(&out, "Reporting-MTA: dns; %s\n", var_myhostname);
    bounce_printf(&out, "X-Postern-Queue-ID: %s\n", msg->id);
    bounce_printf(&out, "X-Postern-Sender: rfc822; %s\n", env->sender);
    bounce_printf(&out, "Arrival-Date: %s\n", arrival);
    if (envid)
        bounce_printf(&out, "Original-Envelope-Id: %s\n", envid);
    for (size_t i = 0; i < n; i++) {
        DSN_LOG_ENTRY *e = sel[i];

        bounce_printf(&out, "\nFinal-Recipient: rfc822; %s\n", e->recipient);
        if (e->dsn_orcpt[0]) {
            const char *semi = strchr(e->dsn_orcpt, ';');

            if (semi)
                bounce_printf(&out, "Original-Recipient: %.*s; %s\n",
                              (int) (semi - e->dsn_orcpt), e->dsn_orcpt,
                              semi + 1);
        }
        bounce_printf(&out, "Action: %s\n", action);
        bounce_printf(&out, "Status: %s\n", e->status[0] ? e->status
                      : delayed ? "4.0.0" : "5.0.0");
        if (e->mta_name[0])
            bounce_printf(&out, "Remote-MTA: %s; %s\n",
                          e->mta_type[0] ? e->mta_type : "dns", e->mta_name);
        if (e->diag_text[0])
            bounce_printf(&out, "Diagnostic-Code: %s; %s\n",
                          e->diag_type[0] ? e->diag_type : "smtp",
                          e->diag_text);
        else
            bounce_printf(&out, "Diagnostic-Code: X-Postern; %s\n",
                          e->reason);
    }
    bounce_printf(&out, "\n");

    /* 3. The message, or its headers (RET=HDRS, delay notices, size). */
    out.headers_only = delayed || (ret && strcasecmp(ret, "hdrs") == 0)
        || env->message_size > var_bounce_size_limit;
    out.in_headers = 1;
    out.prev = '\n';
    bounce_printf(&out, "--%s\nContent-Description: %s\nContent-Type: %s\n"
                  "Content-Transfer-Encoding: 8bit\n\n", boundary->data,
                  out.headers_only ? "Undelivered Message Headers"
                  : "Undelivered Message",
                  out.headers_only ? "text/rfc822-headers"
                  : "message/rfc822");
    if (qfile_read_content(msg->fd, env, bounce_copy, &out, err) < 0)
        goto done;
    if (out.buf->len && out.buf->data[out.buf->len - 1] != '\n')
        bounce_printf(&out, "\n");
    bounce_printf(&out, "\n--%s--\n", boundary->data);
    bounce_flush(&out, 1);
    if (out.failed) {
        strbuf_set(err, "write to cleanup failed");
        goto done;
    }
    ipc_msg_reset(m);
    ipc_put_str(m, "req", "end");
    if (ipc_write(out.cleanup, m) < 0
        || ipc_read(out.cleanup, m, CLEANUP_RECORD_MAX, err) <= 0
        || (a = ipc_find(m, "status")) == NULL
        || str_to_long(a->value, 0, 599, &code) < 0 || code != 0) {
        if (!err->len)
            strbuf_printf(err, "cleanup refused the notice: %s",
                          ipc_find(m, "reason") ? ipc_find(m, "reason")->value
                          : "no reason");
        goto done;
    }
    rc = 0;
done:
    stream_close(&out.cleanup);
    strbuf_free(&out.buf);
    strbuf_free(&boundary);
    ipc_msg_free(&m);
    return rc;
}

int qmgr_bounce_send(QMGR_MESSAGE *msg, const char *log_dir,
                     const char *action, STRBUF *err)
{
    STRBUF *path = strbuf_alloc(64);
    STRBUF *from = strbuf_alloc(64);
    STRBUF *new_id = strbuf_alloc(32);
    DSN_LOG *log = NULL;
    DSN_LOG_ENTRY **sel = NULL;
    const char *sender = msg->env->sender;
    const char *to;
    size_t n;
    int rc = 0;

    strbuf_printf(path, "%s/%s", log_dir, msg->id);
    if ((rc = dsn_log_read(path->data, &log, err)) <= 0)
        goto done;
    rc = 0;
    if ((n = bounce_select(log, action, &sel)) == 0)
        goto done;
    strbuf_printf(from, "%s@%s", var_double_bounce_sender, var_myorigin);
    if (strncasecmp(sender, var_double_bounce_sender,
                    strlen(var_double_bounce_sender)) == 0
        && (sender[strlen(var_double_bounce_sender)] == 0
            || sender[strlen(var_double_bounce_sender)] == '@')) {
        msg_info("%s: discarding a notice about a postmaster notice",
                 msg->id);
        goto done;
    }
    if (*sender) {
        to = sender;
        strbuf_reset(from);             /* the null sender */
    } else if (strcmp(action, "delayed") == 0) {
        goto done;                      /* no delay notices for bounces */
    } else {
        to = var_2bounce_notice_recipient;
    }
    if ((rc = bounce_submit(msg, sel, n, action, from->data, to, new_id,
                            err)) == 0)
        msg_info("%s: %s %s notification: %s", msg->id,
                 *sender ? "sender" : "postmaster",
                 strcmp(action, "delayed") == 0 ? "delay" : "non-delivery",
                 new_id->data);
done:
    free(sel);
    dsn_log_free(&log);
    strbuf_free(&path);
    strbuf_free(&from);
    strbuf_free(&new_id);
    return rc;
}
