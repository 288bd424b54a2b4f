/*
 * smtp - the delivery agent for other mail systems: SMTP to MX hosts or a
 * relay host (the smtp and relay transports), LMTP to a mail store (the
 * same program run as lmtp).  Postfix smtp(8) is the model.
 *
 * Per request from qmgr (deliver_proto.h): open the queue file, find the
 * servers of the next hop, and try them in order until every recipient
 * has a result or the servers are exhausted ($smtp_mx_address_limit
 * addresses, $smtp_mx_session_limit servers that talked to us).  Then
 * every recipient is answered and logged: sent, bounced with the server's
 * reply, or deferred with the last reason.  A connection that served the
 * request well is kept for the next request to the same next hop
 * (smtp_connect.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mail/params.h"
#include "mail/server.h"
#include "smtp.h"
#include "util/msg.h"
#include "util/xmalloc.h"

/* --- results ----------------------------------------------------------- */

void smtp_fail(SMTP_STATE *state, int status, const char *dsn,
               const char *fmt, ...)
{
    va_list ap;

    state->fail.status = status;
    snprintf(state->fail.dsn, sizeof(state->fail.dsn), "%s", dsn);
    /* relay= in the log, as Postfix: the server, once connected. */
    xfree(&state->fail.relay);
    if (state->session)
        state->fail.relay = xstrdup(state->session->namaddr);
    strbuf_reset(state->fail.reason);
    va_start(ap, fmt);
    strbuf_vprintf_append(state->fail.reason, fmt, ap);
    va_end(ap);
}

void smtp_rcpt_done(SMTP_STATE *state, size_t i, int status, const char *dsn,
                    const char *reason, const char *relay)
{
    SMTP_RCPT_STATE *rs = &state->rcpts[i];

    if (rs->status != 0)
        return;
    /* 0 is "pending" here: success is stored as 250. */
    rs->status = status == 0 ? 250 : status;
    snprintf(rs->dsn, sizeof(rs->dsn), "%s", dsn);
    strbuf_set(rs->reason, reason);
    rs->relay = xstrdup(relay ? relay : "none");
    if (state->session && state->session->tls_summary)
        rs->tls = xstrdup(state->session->tls_summary);
    state->pending--;
}

/* --- the content --------------------------------------------------------- */

static int smtp_scan_8bit(const char *data, size_t len, void *ctx)
{
    int *eight_bit = ctx;

    for (size_t i = 0; i < len && !*eight_bit; i++)
        if ((unsigned char) data[i] & 0x80)
            *eight_bit = 1;
    return 0;
}

static int smtp_open_queue_file(SMTP_STATE *state)
{
    STRBUF *path = strbuf_alloc(64);
    STRBUF *err = strbuf_alloc(64);
    int rc = -1;

    strbuf_printf(path, "%s/%s", state->req->queue_name, state->req->queue_id);
    if ((state->fd = open(path->data, O_RDONLY | O_CLOEXEC)) < 0) {
        msg_warn("%s: open %s: %m", state->req->queue_id, path->data);
        smtp_fail(state, 450, "4.3.0", "mail system error: cannot read the "
                  "queue file");
        goto done;
    }
    if (qenv_read_fd(state->fd, state->req->queue_id, &state->env, err) < 0
        || qfile_read_content(state->fd, state->env, smtp_scan_8bit,
                              &state->eight_bit, err) < 0) {
        msg_warn("%s: %s", state->req->queue_id, err->data);
        smtp_fail(state, 450, "4.3.0", "mail system error: cannot read the "
                  "queue file");
        goto done;
    }
    rc = 0;
done:
    strbuf_free(&path);
    strbuf_free(&err);
    return rc;
}

/* --- one request ---------------------------------------------------------- */

/* Deliver on a session; keep it for the next request if it is good. */
static void smtp_use_session(SMTP_STATE *state, SMTP_SESSION *sess)
{
    state->session = sess;
    sess->uses++;
    if (state->stats.conn_setup.tv_sec == 0)
        gettimeofday(&state->stats.conn_setup, NULL);
    if (state->stats.conn_use < sess->uses)
        state->stats.conn_use = sess->uses;
    if (smtp_transaction(state, sess) == 0)
        smtp_cache_put(sess);
    else
        smtp_session_free(&sess);
    state->session = NULL;
}

static void smtp_try_servers(SMTP_STATE *state, const char *dest_key)
{
    SMTP_ADDR_LIST list = {NULL, 0};
    SMTP_SESSION *sess;
    int sessions = 0;
    int rc;

    if (smtp_dest_addrs(state, &list) < 0)
        return;
    for (size_t i = 0; i < list.count && state->pending > 0; i++) {
        const SMTP_ADDR *a = &list.addrs[i];

        if (state->stop || (var_smtp_mx_session_limit > 0
                            && sessions >= var_smtp_mx_session_limit))
            break;
        state->best_mx = a->pref == list.addrs[0].pref;
        /* The last chance: 4xx replies become final results. */
        state->final_server = i + 1 == list.count
            || (var_smtp_mx_session_limit > 0
                && sessions + 1 >= var_smtp_mx_session_limit);
        if ((sess = smtp_connect(state, a)) == NULL)
            continue;
        state->session = sess;
        rc = smtp_session_start(state, sess);
        state->session = NULL;
        if (rc < 0) {
            smtp_session_free(&sess);
            /* Opportunistic TLS failed: once more, in plaintext. */
            if (state->tls_fallback && !state->no_tls) {
                state->tls_fallback = 0;
                state->no_tls = 1;
                i--;
            } else {
                state->no_tls = 0;
            }
            continue;
        }
        state->no_tls = 0;
        sessions++;
        sess->dest_key = xstrdup(dest_key);
        smtp_use_session(state, sess);
    }
    smtp_addr_list_free(&list);
}

static void smtp_deliver(SMTP_STATE *state)
{
    STRBUF *why = strbuf_alloc(64);
    STRBUF *dest_key = strbuf_alloc(64);
    SMTP_SESSION *sess;

    if (smtp_open_queue_file(state) < 0)
        goto done;
    if (smtp_dest_parse(&state->dest, state->req->nexthop, state->lmtp,
                        why) < 0) {
        msg_warn("%s: %s", state->req->queue_id, why->data);
        smtp_fail(state, 450, "4.3.5", "mail system configuration error: %s",
                  why->data);
        goto done;
    }
    strbuf_printf(dest_key, "%s/%s", state->transport, state->req->nexthop);
    /* A connection left by the previous request to the same next hop. */
    if ((sess = smtp_cache_take(dest_key->data)) != NULL)
        smtp_use_session(state, sess);
    if (state->pending > 0)
        smtp_try_servers(state, dest_key->data);
done:
    strbuf_free(&why);
    strbuf_free(&dest_key);
}

static void smtp_serve(SERVER_CLIENT *client, const char *service,
                       char **argv)
{
    STREAM *s = stream_open(client->fd, var_ipc_timeout, DELIVER_RECORD_MAX);
    STRBUF *err = strbuf_alloc(64);
    DELIVER_REQUEST *req = NULL;
    SMTP_STATE state;
    int rc;

    (void) argv;
    if ((rc = deliver_req_read(s, &req, err)) <= 0) {
        if (rc < 0)
            msg_warn("bad request from qmgr: %s", err->data);
        goto out;
    }
    memset(&state, 0, sizeof(state));
    state.req = req;
    state.transport = service;
    state.lmtp = strcmp(msg_progname(), "lmtp") == 0;
    state.fd = -1;
    state.fail.reason = strbuf_alloc(128);
    state.rcpts = xcalloc(req->rcpt_count, sizeof(SMTP_RCPT_STATE));
    for (size_t i = 0; i < req->rcpt_count; i++)
        state.rcpts[i].reason = strbuf_alloc(64);
    state.pending = req->rcpt_count;
    gettimeofday(&state.stats.handoff, NULL);

    smtp_deliver(&state);

    /* What is still open shares the last failure. */
    if (state.fail.status == 0)
        smtp_fail(&state, 450, "4.4.0", "delivery failed for an unknown "
                  "reason");
    for (size_t i = 0; i < req->rcpt_count; i++) {
        SMTP_RCPT_STATE *rs = &state.rcpts[i];

        if (rs->status == 0) {
            rs->status = state.fail.status;
            snprintf(rs->dsn, sizeof(rs->dsn), "%s", state.fail.dsn);
            strbuf_set(rs->reason, state.fail.reason->data);
            rs->relay = xstrdup(state.fail.relay ? state.fail.relay
                                : "none");
        }
    }
    for (size_t i = 0; i < req->rcpt_count; i++) {
        SMTP_RCPT_STATE *rs = &state.rcpts[i];

        state.stats.tls = rs->tls;
        if (deliver_done(s, req, &req->rcpts[i], rs->relay, &state.stats,
                         rs->status / 100 == 2 ? 0 : rs->status, rs->dsn,
                         rs->reason->data) < 0)
            break;                      /* qmgr went away */
    }

    for (size_t i = 0; i < req->rcpt_count; i++) {
        strbuf_free(&state.rcpts[i].reason);
        free(state.rcpts[i].relay);
        free(state.rcpts[i].tls);
    }
    free(state.rcpts);
    strbuf_free(&state.fail.reason);
    free(state.fail.relay);
    smtp_dest_free(&state.dest);
    qenv_free(&state.env);
    if (state.fd >= 0)
        close(state.fd);
out:
    deliver_req_free(&req);
    strbuf_free(&err);
    stream_free(&s);
}

static void smtp_pre_init(const char *service, char **argv)
{
    (void) service;
    (void) argv;
    /* Trust anchors, client keys and SASL plugins: before chroot. */
    smtp_tls_pre_init();
    smtp_sasl_pre_init();
    srandom((unsigned) (getpid() ^ time(NULL)));
}

int main(int argc, char **argv)
{
    static const SERVER_OPS ops = {
        .kind = SERVER_SINGLE,
        .pre_init = smtp_pre_init,
        .serve = smtp_serve,
        .idle = smtp_cache_idle,
        .pre_exit = smtp_cache_close,
    };

    server_main(argc, argv, &ops);
}
