/*
 * qmgr_deliver - scheduling jobs onto delivery agents.
 *
 * Each transport keeps its destinations (next hops) with waiting jobs.
 * A job goes to an agent when its destination has fewer than
 * TRANSPORT_destination_concurrency_limit deliveries running and the
 * transport fewer than its process limit.  Agents are reached over
 * private/TRANSPORT with deliver_proto.h; replies are read without
 * blocking from the event loop.  An agent that cannot be reached defers
 * its job ("mail transport unavailable") and the transport pauses for a
 * while, as Postfix does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/deliver_proto.h"
#include "mail/deliver_req.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "qmgr.h"
#include "util/events.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/stream.h"
#include "util/xmalloc.h"

#define QMGR_REPLY_TIMEOUT_MS   (3600 * 1000)

typedef struct QMGR_CONN {
    int     fd;
    QMGR_JOB *job;
    STRBUF *in;                         /* bytes read, not yet decoded */
    size_t  replies;                    /* recipients answered */
} QMGR_CONN;

static HTABLE *qmgr_transports;

void qmgr_deliver_init(void)
{
    qmgr_transports = htable_alloc(16);
}

QMGR_TRANSPORT *qmgr_transport(const char *name)
{
    QMGR_TRANSPORT *t;
    STRBUF *pname;

    if ((t = htable_find(qmgr_transports, name)) != NULL)
        return t;
    t = xcalloc(1, sizeof(*t));
    t->name = xstrdup(name);
    t->dests = htable_alloc(16);
    pname = strbuf_alloc(64);
    strbuf_printf(pname, "%s_destination_concurrency_limit", name);
    t->dest_limit = (int) param_dynamic_long(pname->data,
                                             var_default_destination_concurrency_limit,
                                             1, 10000);
    strbuf_printf(pname, "%s_destination_recipient_limit", name);
    t->rcpt_limit = (int) param_dynamic_long(pname->data,
                                             var_default_destination_recipient_limit,
                                             1, DELIVER_RCPT_MAX);
    t->limit = var_default_process_limit;
    strbuf_free(&pname);
    htable_enter(qmgr_transports, name, t);
    return t;
}

static QMGR_DEST *qmgr_dest(QMGR_TRANSPORT *t, const char *nexthop)
{
    QMGR_DEST *d = htable_find(t->dests, nexthop);

    if (d == NULL) {
        d = xcalloc(1, sizeof(*d));
        d->name = xstrdup(nexthop);
        d->transport = t;
        d->limit = t->dest_limit;
        htable_enter(t->dests, nexthop, d);
    }
    return d;
}

/* Add recipient idx of msg to a job for (t, nexthop). */
void qmgr_job_add(QMGR_MESSAGE *msg, QMGR_TRANSPORT *t, const char *nexthop,
                  size_t idx)
{
    QMGR_DEST *d = qmgr_dest(t, nexthop);
    QMGR_JOB *job = d->tail;

    /* Recipients of one message arrive together: extend its last job. */
    if (job == NULL || job->message != msg
        || job->nrcpt >= (size_t) t->rcpt_limit) {
        job = xcalloc(1, sizeof(*job));
        job->message = msg;
        job->dest = d;
        job->rcpts = xreallocarray(NULL, (size_t) t->rcpt_limit,
                                   sizeof(size_t));
        if (d->tail)
            d->tail->next = job;
        else
            d->head = job;
        d->tail = job;
        msg->jobs_pending++;
    }
    job->rcpts[job->nrcpt++] = idx;
}

static void qmgr_job_free(QMGR_JOB *job)
{
    free(job->rcpts);
    free(job);
}

/* The job ended (all recipients answered, or given up): account. */
static void qmgr_job_finish(QMGR_JOB *job)
{
    QMGR_MESSAGE *msg = job->message;

    qmgr_job_free(job);
    msg->jobs_pending--;
    qmgr_message_job_done(msg);
}

/* Fail the recipients of a job from index 'from' on, temporarily. */
static void qmgr_job_defer_rest(QMGR_JOB *job, size_t from, const char *dsn,
                                const char *reason)
{
    for (size_t i = from; i < job->nrcpt; i++) {
        qmgr_log_delivery(job->message, job->rcpts[i], "none", dsn,
                          "deferred", reason);
        qmgr_rcpt_defer(job->message, job->rcpts[i], dsn, reason, NULL);
    }
}

static void qmgr_conn_timeout(int event, void *context);

static void qmgr_conn_close(QMGR_CONN *c)
{
    QMGR_DEST *d = c->job->dest;

    event_disable_readwrite(c->fd);
    event_cancel_timer(qmgr_conn_timeout, c);
    close(c->fd);
    d->active--;
    d->transport->active--;
    strbuf_free(&c->in);
    qmgr_job_finish(c->job);
    free(c);
    qmgr_schedule();
}

/* One reply record for the next recipient of the job. */
static int qmgr_conn_reply(QMGR_CONN *c, IPC_MSG *m, STRBUF *err)
{
    QMGR_JOB *job = c->job;
    size_t idx = job->rcpts[c->replies];
    DELIVER_REPLY *reply = deliver_reply_alloc();
    const char *relay;
    int rc = 0;

    if (deliver_reply_scan(m, (long) job->message->env->rcpts[idx].offset,
                           reply, err) < 0) {
        rc = -1;
    } else {
        relay = reply->relay->len ? reply->relay->data : NULL;
        if (reply->status == 0)
            qmgr_rcpt_done(job->message, idx);
        else if (reply->status < 500)
            qmgr_rcpt_defer(job->message, idx, reply->dsn,
                            reply->reason->data, relay);
        else
            qmgr_rcpt_bounce(job->message, idx, reply->dsn,
                             reply->reason->data, relay);
        c->replies++;
    }
    deliver_reply_free(&reply);
    return rc;
}

static void qmgr_conn_broken(QMGR_CONN *c, const char *why)
{
    msg_warn("%s: %s transport: %s", c->job->message->id,
             c->job->dest->transport->name, why);
    qmgr_job_defer_rest(c->job, c->replies, "4.3.0",
                        "unknown mail transport error");
    qmgr_conn_close(c);
}

static void qmgr_conn_timeout(int event, void *context)
{
    (void) event;
    qmgr_conn_broken(context, "timeout waiting for the delivery agent");
}

static void qmgr_conn_read(int event, void *context)
{
    QMGR_CONN *c = context;
    char buf[8192];
    ssize_t n;

    (void) event;
    n = read(c->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        qmgr_conn_broken(c, n < 0 ? strerror(errno)
                         : "agent closed the connection early");
        return;
    }
    strbuf_append(c->in, buf, (size_t) n);
    /* Decode every complete record. */
    for (;;) {
        const unsigned char *p = (const unsigned char *) c->in->data;
        STRBUF *err;
        IPC_MSG *m;
        size_t len;

        if (c->in->len < 4)
            return;
        len = ((size_t) p[0] << 24) | ((size_t) p[1] << 16)
            | ((size_t) p[2] << 8) | p[3];
        if (len > DELIVER_RECORD_MAX) {
            qmgr_conn_broken(c, "reply record too large");
            return;
        }
        if (c->in->len < 4 + len)
            return;
        err = strbuf_alloc(64);
        m = ipc_msg_alloc();
        if (ipc_decode(m, c->in->data + 4, len, err) < 0
            || qmgr_conn_reply(c, m, err) < 0) {
            ipc_msg_free(&m);
            qmgr_conn_broken(c, err->data);
            strbuf_free(&err);
            return;
        }
        ipc_msg_free(&m);
        strbuf_free(&err);
        memmove(c->in->data, c->in->data + 4 + len, c->in->len - 4 - len);
        strbuf_truncate(c->in, c->in->len - 4 - len);
        if (c->replies == c->job->nrcpt) {
            qmgr_conn_close(c);
            return;
        }
    }
}

/* Connect without blocking; -1 with errno when the agent is unreachable. */
static int qmgr_connect(const char *transport)
{
    struct sockaddr_un sun;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (snprintf(sun.sun_path, sizeof(sun.sun_path), DELIVER_CLASS "/%s",
                 transport) >= (int) sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                     0)) < 0)
        return -1;
    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* The request for a job, through the agents' own module. */
static int qmgr_send_request(int fd, QMGR_JOB *job)
{
    QMGR_MESSAGE *msg = job->message;
    DELIVER_REQUEST *req = deliver_req_alloc();
    STREAM *s = stream_open(fd, 10, 4096);
    const char *v;
    int rc;

    req->queue_name = xstrdup("active");
    req->queue_id = xstrdup(msg->id);
    req->sender = xstrdup(msg->env->sender);
    req->nexthop = xstrdup(job->dest->name);
    req->arrival.tv_sec = msg->env->arrival_sec;
    req->arrival.tv_usec = msg->env->arrival_usec;
    req->active.tv_sec = msg->active_sec;
    req->active.tv_usec = msg->active_usec;
    if ((v = qenv_attr(msg->env, "dsn_envid")) != NULL)
        req->dsn_envid = xstrdup(v);
    if ((v = qenv_attr(msg->env, "dsn_ret")) != NULL
        && (strcmp(v, "full") == 0 || strcmp(v, "hdrs") == 0))
        req->dsn_ret = xstrdup(v);
    req->smtputf8 = (v = qenv_attr(msg->env, "smtputf8")) != NULL
        && strcmp(v, "1") == 0;
    if ((v = qenv_attr(msg->env, "client_name")) != NULL)
        req->client_name = xstrdup(v);
    if ((v = qenv_attr(msg->env, "client_address")) != NULL)
        req->client_address = xstrdup(v);
    for (size_t i = 0; i < job->nrcpt; i++) {
        QENV_RCPT *r = &msg->env->rcpts[job->rcpts[i]];

        deliver_req_add_rcpt(req, r->address, (long) r->offset, r->orig,
                             r->orcpt, r->notify);
    }
    rc = deliver_req_write(s, req);
    deliver_req_free(&req);
    stream_free(&s);
    return rc;
}

static void qmgr_schedule_event(int event, void *context)
{
    (void) event;
    (void) context;
    qmgr_schedule();
}

/* The transport has no agent: every waiting job of it is deferred. */
static void qmgr_transport_unavailable(QMGR_TRANSPORT *t)
{
    HTABLE_ENTRY *de;

    HTABLE_FOREACH(t->dests, de) {
        QMGR_DEST *d = de->value;
        QMGR_JOB *job;

        while ((job = d->head) != NULL) {
            d->head = job->next;
            if (d->head == NULL)
                d->tail = NULL;
            qmgr_job_defer_rest(job, 0, "4.3.0",
                                "mail transport unavailable");
            qmgr_job_finish(job);
        }
    }
}

static void qmgr_start(QMGR_DEST *d)
{
    QMGR_TRANSPORT *t = d->transport;
    QMGR_JOB *job = d->head;
    QMGR_CONN *c;
    int fd;

    d->head = job->next;
    if (d->head == NULL)
        d->tail = NULL;
    job->next = NULL;
    if ((fd = qmgr_connect(t->name)) < 0) {
        /* Put the job back; then either wait or give up on the transport. */
        job->next = d->head;
        d->head = job;
        if (d->tail == NULL)
            d->tail = job;
        if (errno == EAGAIN) {
            /* Every agent busy and the backlog full: try again soon. */
            t->retry_at = event_now() + 1000;
            event_request_timer(qmgr_schedule_event, NULL, 1000);
        } else {
            msg_warn("connect to transport %s/%s: %m", DELIVER_CLASS,
                     t->name);
            qmgr_transport_unavailable(t);
        }
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->job = job;
    c->in = strbuf_alloc(256);
    d->active++;
    t->active++;
    if (qmgr_send_request(fd, job) < 0) {
        qmgr_conn_broken(c, "cannot send the request");
        return;
    }
    event_enable_read(fd, qmgr_conn_read, c);
    event_request_timer(qmgr_conn_timeout, c, QMGR_REPLY_TIMEOUT_MS);
}

void qmgr_schedule(void)
{
    static int busy;
    static int again;
    HTABLE_ENTRY *te;
    HTABLE_ENTRY *de;
    int progress;

    /* Completions call back in here; run the loop once more instead. */
    if (busy) {
        again = 1;
        return;
    }
    busy = 1;
    do {
        again = 0;
        /* Round robin over destinations so that none starves the others. */
        do {
            progress = 0;
            HTABLE_FOREACH(qmgr_transports, te) {
                QMGR_TRANSPORT *t = te->value;

                HTABLE_FOREACH(t->dests, de) {
                    QMGR_DEST *d = de->value;

                    if (d->head && d->active < d->limit
                        && t->active < t->limit && t->retry_at <= event_now()) {
                        qmgr_start(d);
                        progress = 1;
                    }
                }
            }
        } while (progress);
    } while (again);
    busy = 0;
}
