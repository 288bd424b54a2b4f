/*
 * anvil - connection count and connection rate bookkeeping for smtpd
 * (Postfix anvil(8)).
 *
 * One event-driven process serves every smtpd process: each keeps one
 * connection to private/anvil open for its client session and sends
 * connect/disconnect requests, and event/lookup requests for rates of
 * things other than connections (lib/mail/anvil_proto.h, anvil(8)).  The
 * counts themselves live in lib/mail/anvil_table.c; this file holds the
 * per-connection I/O: records are read without blocking, a few bytes at
 * a time if that is how they come, into a bounded buffer per connection,
 * and a connection that sends a malformed or oversized record is
 * dropped, which releases every count it still held.
 *
 * Every anvil_status_update_time and at exit the peaks are logged as
 * Postfix does, so log tools that know Postfix's anvil lines read ours:
 *   statistics: max connection rate N/60s for (ident) at TIME
 *   statistics: max connection count N for (ident) at TIME
 *   statistics: max cache size N at TIME
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mail/anvil_proto.h"
#include "mail/anvil_table.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/server.h"
#include "util/events.h"
#include "util/htable.h"
#include "util/msg.h"
#include "util/stream.h"
#include "util/xmalloc.h"

#define ANVIL_READ_CHUNK        4096

/*
 * One client connection (one smtpd process).  'pending' maps each ident
 * this connection connected and has not disconnected to how many times,
 * so that closing the connection can give them all back.
 */
typedef struct ANVIL_CLIENT {
    int     fd;
    long    pid;                        /* peer pid, for the logs; 0 */
    STRBUF *in;                         /* received, not yet processed */
    STRBUF *out;                        /* replies not yet written */
    size_t  out_pos;
    HTABLE *pending;                    /* ident -> (intptr_t) count */
    int     npending;                   /* sum of the counts */
    int     timer;                      /* partial-record timer armed */
} ANVIL_CLIENT;

static ANVIL_TABLE *anvil_table;

static void anvil_client_event(int event, void *context);

/* --- statistics ------------------------------------------------------- */

/* Wall-clock "Mmm dd HH:MM:SS" of a monotonic time (Postfix ctime()+4). */
static void anvil_format_time(long long when, STRBUF *out)
{
    time_t t = time(NULL) - (time_t) ((stream_now_ms() - when) / 1000);
    struct tm tm;
    char buf[32];

    if (localtime_r(&t, &tm) == NULL
        || strftime(buf, sizeof(buf), "%b %e %H:%M:%S", &tm) == 0)
        strbuf_set(out, "(unknown time)");
    else
        strbuf_set(out, buf);
}

/* Log the peaks since the last report, and start over (Postfix). */
static void anvil_status_dump(void)
{
    const ANVIL_STATS *st = anvil_table_stats(anvil_table);
    STRBUF *when = strbuf_alloc(32);

    if (st->rate.value > 0) {
        anvil_format_time(st->rate.when, when);
        msg_info("statistics: max connection rate %d/%ds for (%s) at %s",
                 st->rate.value, var_anvil_rate_time_unit, st->rate.ident,
                 when->data);
    }
    if (st->count.value > 0) {
        anvil_format_time(st->count.when, when);
        msg_info("statistics: max connection count %d for (%s) at %s",
                 st->count.value, st->count.ident, when->data);
    }
    if (st->size > 0) {
        anvil_format_time(st->size_when, when);
        msg_info("statistics: max cache size %zu at %s", st->size,
                 when->data);
    }
    anvil_table_stats_reset(anvil_table);
    strbuf_free(&when);
}

static void anvil_status_event(int event, void *context)
{
    (void) event;
    anvil_status_dump();
    event_request_timer(anvil_status_event, context,
                        (long long) var_anvil_status_update_time * 1000);
}

/* Forget idents that are idle and whose rate window has ended. */
static void anvil_expire_event(int event, void *context)
{
    size_t n;

    (void) event;
    n = anvil_table_expire(anvil_table, event_now());
    if (msg_verbose && n > 0)
        msg_info("expired %zu idle entries, %zu left", n,
                 anvil_table_size(anvil_table));
    event_request_timer(anvil_expire_event, context,
                        (long long) var_anvil_rate_time_unit * 1000);
}

/* --- client connections ----------------------------------------------- */

static void anvil_client_close(ANVIL_CLIENT *c)
{
    HTABLE_ENTRY *ent;
    long long now = event_now();

    /* A client that went away without saying so gives back its counts. */
    HTABLE_FOREACH(c->pending, ent) {
        for (intptr_t n = (intptr_t) ent->value; n > 0; n--)
            (void) anvil_table_disconnect(anvil_table, ent->key, now);
        if (msg_verbose)
            msg_info("client pid %ld closed with %ld connection(s) for %s",
                     c->pid, (long) (intptr_t) ent->value, ent->key);
    }
    if (c->timer)
        event_cancel_timer(anvil_client_event, c);
    event_disable_readwrite(c->fd);
    (void) close(c->fd);
    htable_free(&c->pending, NULL);
    strbuf_free(&c->in);
    strbuf_free(&c->out);
    free(c);
}

static void anvil_client_drop(ANVIL_CLIENT *c, const char *why)
{
    msg_warn("client pid %ld: %s -- closing connection", c->pid, why);
    anvil_client_close(c);
}

/* Count one more (or, with delta -1, one fewer) pending connect. */
static void anvil_pending_add(ANVIL_CLIENT *c, const char *ident, int delta)
{
    HTABLE_ENTRY *ent = htable_locate(c->pending, ident);
    intptr_t n = ent ? (intptr_t) ent->value : 0;

    n += delta;
    c->npending += delta;
    if (n <= 0)
        htable_delete(c->pending, ident, NULL);
    else if (ent)
        ent->value = (void *) n;
    else
        htable_enter(c->pending, ident, (void *) n);
}

static intptr_t anvil_pending_count(ANVIL_CLIENT *c, const char *ident)
{
    HTABLE_ENTRY *ent = htable_locate(c->pending, ident);

    return ent ? (intptr_t) ent->value : 0;
}

/*
 * Serve one request: 0 with the reply in 'reply', or -1 with err set when
 * the client broke the protocol and must be dropped.
 */
static int anvil_request(ANVIL_CLIENT *c, const IPC_MSG *req, IPC_MSG *reply,
                         STRBUF *err)
{
    const char *name = NULL;
    const char *ident = NULL;
    IPC_SPEC specs[] = {
        {ANVIL_ATTR_REQ, IPC_STR, 1, &name},
        {ANVIL_ATTR_IDENT, IPC_STR, 1, &ident},
        IPC_SPEC_END,
    };
    size_t len;

    ipc_msg_reset(reply);
    if (ipc_scan(req, specs, err) < 0)
        return -1;
    if ((len = strlen(ident)) == 0 || len > ANVIL_IDENT_MAX) {
        strbuf_printf(err, "ident of %zu bytes (allowed: 1..%d)", len,
                      ANVIL_IDENT_MAX);
        return -1;
    }
    if (strcmp(name, ANVIL_REQ_CONNECT) == 0) {
        int count;
        int rate;

        if (c->npending >= ANVIL_CONN_PENDING_MAX) {
            strbuf_printf(err, "more than %d connects without disconnect",
                          ANVIL_CONN_PENDING_MAX);
            return -1;
        }
        anvil_table_connect(anvil_table, ident, event_now(), &count, &rate);
        anvil_pending_add(c, ident, 1);
        if (msg_verbose)
            msg_info("connect %s: count=%d rate=%d", ident, count, rate);
        ipc_put_long(reply, ANVIL_ATTR_STATUS, ANVIL_STAT_OK);
        ipc_put_long(reply, ANVIL_ATTR_COUNT, count);
        ipc_put_long(reply, ANVIL_ATTR_RATE, rate);
    } else if (strcmp(name, ANVIL_REQ_DISCONNECT) == 0) {
        /* Only what this client connected: no one can drop others' counts. */
        if (anvil_pending_count(c, ident) > 0) {
            (void) anvil_table_disconnect(anvil_table, ident, event_now());
            anvil_pending_add(c, ident, -1);
        } else if (msg_verbose) {
            msg_info("disconnect %s: not connected by this client", ident);
        }
        ipc_put_long(reply, ANVIL_ATTR_STATUS, ANVIL_STAT_OK);
    } else if (strcmp(name, ANVIL_REQ_EVENT) == 0) {
        int rate;

        /*
         * Not recorded in c->pending: an event opens nothing that a
         * disconnect or the end of this connection would give back.  Nor
         * limited per connection: each costs at most one entry, which
         * expires with its window like any idle ident.
         */
        anvil_table_event(anvil_table, ident, event_now(), &rate);
        if (msg_verbose)
            msg_info("event %s: rate=%d", ident, rate);
        ipc_put_long(reply, ANVIL_ATTR_STATUS, ANVIL_STAT_OK);
        ipc_put_long(reply, ANVIL_ATTR_RATE, rate);
    } else if (strcmp(name, ANVIL_REQ_LOOKUP) == 0) {
        int count;
        int rate;

        /* Read-only: an unknown ident is not created (0 and 0). */
        (void) anvil_table_lookup(anvil_table, ident, event_now(), &count,
                                  &rate);
        if (msg_verbose)
            msg_info("lookup %s: count=%d rate=%d", ident, count, rate);
        ipc_put_long(reply, ANVIL_ATTR_STATUS, ANVIL_STAT_OK);
        ipc_put_long(reply, ANVIL_ATTR_COUNT, count);
        ipc_put_long(reply, ANVIL_ATTR_RATE, rate);
    } else {
        msg_warn("client pid %ld: unrecognized request: \"%.100s\", ignored",
                 c->pid, name);
        ipc_put_long(reply, ANVIL_ATTR_STATUS, ANVIL_STAT_FAIL);
    }
    return 0;
}

static uint32_t anvil_get_u32(const char *p)
{
    const unsigned char *b = (const unsigned char *) p;

    return ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16)
        | ((uint32_t) b[2] << 8) | (uint32_t) b[3];
}

/*
 * Decode and answer every complete record in c->in; keep a partial one
 * for later.  Returns the number of records served, or -1 when the client
 * was dropped.
 */
static int anvil_client_process(ANVIL_CLIENT *c)
{
    IPC_MSG *req = ipc_msg_alloc();
    IPC_MSG *reply = ipc_msg_alloc();
    STRBUF *err = strbuf_alloc(64);
    STRBUF *enc = strbuf_alloc(64);
    size_t off = 0;
    int served = 0;

    while (c->in->len - off >= 4) {
        uint32_t len = anvil_get_u32(c->in->data + off);

        /* Refuse before buffering it: the length alone gives it away. */
        if (len > ANVIL_RECORD_MAX) {
            strbuf_printf(err, "record of %lu bytes exceeds the limit of %d",
                          (unsigned long) len, ANVIL_RECORD_MAX);
            served = -1;
            break;
        }
        if (c->in->len - off - 4 < len)
            break;
        if (ipc_decode(req, c->in->data + off + 4, len, err) < 0
            || anvil_request(c, req, reply, err) < 0) {
            served = -1;
            break;
        }
        ipc_encode(reply, enc);
        strbuf_append(c->out, enc->data, enc->len);
        off += 4 + (size_t) len;
        served++;
    }
    if (served < 0) {
        strbuf_printf(enc, "bad request: %s", err->data);
        anvil_client_drop(c, enc->data);
    } else if (off > 0) {
        memmove(c->in->data, c->in->data + off, c->in->len - off);
        strbuf_truncate(c->in, c->in->len - off);
    }
    ipc_msg_free(&req);
    ipc_msg_free(&reply);
    strbuf_free(&err);
    strbuf_free(&enc);
    return served;
}

/*
 * Write what we can.  Returns 1 when everything is out, 0 when the socket
 * is full (wait for EVENT_WRITE), -1 when the client was dropped.
 */
static int anvil_client_flush(ANVIL_CLIENT *c)
{
    while (c->out_pos < c->out->len) {
        ssize_t n = send(c->fd, c->out->data + c->out_pos,
                         c->out->len - c->out_pos, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) {
            /* The peer is gone: not worth a warning, but release counts. */
            if (msg_verbose)
                msg_info("client pid %ld: write: %m", c->pid);
            anvil_client_close(c);
            return -1;
        }
        c->out_pos += (size_t) n;
    }
    strbuf_reset(c->out);
    c->out_pos = 0;
    return 1;
}

/*
 * Read, serve, write.  While replies are waiting to be written we stop
 * reading: a client that sends without reading gets no further, and our
 * output buffer stays as small as one read's worth of replies.
 */
static void anvil_client_input(ANVIL_CLIENT *c)
{
    ssize_t n;
    int served;

    strbuf_reserve(c->in, ANVIL_READ_CHUNK);
    n = read(c->fd, c->in->data + c->in->len, ANVIL_READ_CHUNK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n < 0) {
        if (msg_verbose)
            msg_info("client pid %ld: read: %m", c->pid);
        anvil_client_close(c);
        return;
    }
    if (n == 0) {
        if (c->in->len > 0)
            msg_warn("client pid %ld: end of input inside a record", c->pid);
        anvil_client_close(c);
        return;
    }
    /* UNSAFE: strbuf_reserve() made room for the bytes and the NUL. */
    c->in->len += (size_t) n;
    c->in->data[c->in->len] = 0;
    if ((served = anvil_client_process(c)) < 0)
        return;

    /* A record must not trickle in forever; idle between records is fine. */
    if (c->in->len == 0) {
        if (c->timer)
            event_cancel_timer(anvil_client_event, c);
        c->timer = 0;
    } else if (served > 0 || !c->timer) {
        event_request_timer(anvil_client_event, c,
                            ANVIL_PARTIAL_TIMEOUT * 1000LL);
        c->timer = 1;
    }
    if (c->out->len > 0 && anvil_client_flush(c) == 0)
        event_enable_write(c->fd, anvil_client_event, c);
}

static void anvil_client_event(int event, void *context)
{
    ANVIL_CLIENT *c = context;

    if (event & EVENT_TIME) {
        c->timer = 0;
        anvil_client_drop(c, "timeout while reading a request");
        return;
    }
    if (event & EVENT_WRITE) {
        if (anvil_client_flush(c) == 1)
            event_enable_read(c->fd, anvil_client_event, c);
        return;
    }
    if (event & EVENT_READ) {
        anvil_client_input(c);
        return;
    }
    if (event & EVENT_XCPT)
        anvil_client_close(c);
}

static long anvil_peer_pid(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return 0;
    return (long) cred.pid;
}

static void anvil_accept(SERVER_CLIENT *client, const char *service,
                         char **argv)
{
    ANVIL_CLIENT *c;
    int fl;

    (void) service;
    (void) argv;
    if ((fl = fcntl(client->fd, F_GETFL)) < 0
        || fcntl(client->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        msg_warn("fcntl O_NONBLOCK: %m");
        (void) close(client->fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->fd = client->fd;
    c->pid = anvil_peer_pid(client->fd);
    c->in = strbuf_alloc(ANVIL_READ_CHUNK);
    c->out = strbuf_alloc(256);
    c->pending = htable_alloc(4);
    if (msg_verbose)
        msg_info("connection from pid %ld", c->pid);
    event_enable_read(c->fd, anvil_client_event, c);
}

/* --- start-up --------------------------------------------------------- */

static void anvil_pre_init(const char *service, char **argv)
{
    (void) service;
    (void) argv;
    /* Read the time zone before a chroot hides /etc/localtime. */
    tzset();
}

static void anvil_post_init(const char *service, char **argv)
{
    (void) service;
    if (argv[0] != NULL)
        msg_fatal("unexpected command-line argument: %s", argv[0]);
    anvil_table = anvil_table_alloc((long long) var_anvil_rate_time_unit
                                    * 1000);
    event_request_timer(anvil_status_event, NULL,
                        (long long) var_anvil_status_update_time * 1000);
    event_request_timer(anvil_expire_event, NULL,
                        (long long) var_anvil_rate_time_unit * 1000);
}

static void anvil_pre_exit(void)
{
    anvil_status_dump();
}

int main(int argc, char **argv)
{
    static const SERVER_OPS ops = {
        .kind = SERVER_EVENT,
        .pre_init = anvil_pre_init,
        .post_init = anvil_post_init,
        .accept = anvil_accept,
        .pre_exit = anvil_pre_exit,
    };

    server_main(argc, argv, &ops);
}
