/*
 * smtpd_data - message transfer: DATA (dot-stuffed text) and BDAT
 * (RFC 3030 chunks), streamed to the cleanup service as they arrive.
 *
 * The end of DATA is only <CR><LF>.<CR><LF>: a "." line counts only if it
 * and the line before it end in CRLF.  A bare LF still ends a line (and is
 * stored as one), and a bare CR is data, but neither can end a message,
 * so a message cannot be smuggled past a peer that disagrees on line ends
 * (the 2023 SMTP smuggling attacks).
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mail/cleanup_proto.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/queue_file.h"
#include "smtpd.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

/* --- the cleanup conversation ----------------------------------------- */

static int smtpd_cleanup_connect(SMTPD_STATE *state);

static int smtpd_cleanup_send(SMTPD_STATE *state, IPC_MSG *m)
{
    if (state->cleanup == NULL)
        return -1;
    if (ipc_write(state->cleanup, m) < 0) {
        msg_warn("%s: write to cleanup: %s",
                 state->queue_id ? state->queue_id : "NOQUEUE",
                 stream_timed_out(state->cleanup) ? "timeout"
                 : strerror(errno));
        stream_close(&state->cleanup);
        return -1;
    }
    return 0;
}

int smtpd_cleanup_open(SMTPD_STATE *state)
{
    if (server_standalone())
        return smtpd_postdrop_open(state);
    return smtpd_cleanup_connect(state);
}

static int smtpd_cleanup_connect(SMTPD_STATE *state)
{
    STRBUF *err = strbuf_alloc(128);
    IPC_MSG *m = ipc_msg_alloc();
    STRBUF *port = strbuf_alloc(16);
    const char *status = NULL;
    const char *qid = NULL;
    long code = -1;
    int fd;
    int rc = -1;

    if ((fd = ipc_connect(CLEANUP_CLASS, CLEANUP_SERVICE, err)) < 0) {
        msg_warn("%s", err->data);
        goto done;
    }
    state->cleanup = stream_open(fd, var_ipc_timeout, 4096);
    strbuf_printf(port, "%d", state->port);
    ipc_put_str(m, "req", "open");
    ipc_put_str(m, "origin", "smtpd");
    ipc_put_str(m, "sender", state->sender);
    ipc_put_str(m, "client_name", state->name);
    ipc_put_str(m, "client_address", state->addr);
    ipc_put_str(m, "client_port", port->data);
    if (state->helo)
        ipc_put_str(m, "helo_name", state->helo);
    ipc_put_str(m, "protocol", state->protocol);
    if (state->dsn_envid)
        ipc_put_str(m, "dsn_envid", state->dsn_envid);
    if (state->dsn_ret)
        ipc_put_str(m, "dsn_ret", state->dsn_ret);
    if (state->smtputf8)
        ipc_put_str(m, "smtputf8", "1");
    if (state->sasl_username) {
        ipc_put_str(m, "sasl_method", state->sasl_method);
        ipc_put_str(m, "sasl_username", state->sasl_username);
    }
    if (smtpd_cleanup_send(state, m) < 0)
        goto done;
    if (ipc_read(state->cleanup, m, CLEANUP_RECORD_MAX, err) <= 0) {
        msg_warn("read from cleanup: %s", err->len ? err->data
                 : "connection closed");
        stream_close(&state->cleanup);
        goto done;
    }
    if ((status = ipc_find(m, "status") ? ipc_find(m, "status")->value : NULL)
        == NULL || str_to_long(status, 0, 599, &code) < 0 || code != 0
        || ipc_find(m, "queue_id") == NULL) {
        msg_warn("cleanup refused the message: %s",
                 ipc_find(m, "reason") ? ipc_find(m, "reason")->value
                 : "no reason");
        stream_close(&state->cleanup);
        goto done;
    }
    qid = ipc_find(m, "queue_id")->value;
    state->queue_id = xstrdup(qid);
    if (state->sasl_username)
        msg_info("%s: client=%s, sasl_method=%s, sasl_username=%s",
                 state->queue_id, state->namaddr, state->sasl_method,
                 state->sasl_username);
    else
        msg_info("%s: client=%s", state->queue_id, state->namaddr);
    rc = 0;
done:
    ipc_msg_free(&m);
    strbuf_free(&err);
    strbuf_free(&port);
    return rc;
}

int smtpd_cleanup_rcpt(SMTPD_STATE *state, const char *rcpt,
                       const char *orcpt, int notify)
{
    IPC_MSG *m;
    int rc;

    if (state->cleanup == NULL && smtpd_cleanup_open(state) < 0)
        return -1;
    if (server_standalone()) {
        smtpd_postdrop_rcpt(state, rcpt, orcpt, notify);
        return 0;
    }
    m = ipc_msg_alloc();
    ipc_put_str(m, "req", "rcpt");
    ipc_put_str(m, "rcpt", rcpt);
    if (orcpt)
        ipc_put_str(m, "orcpt", orcpt);
    if (notify)
        ipc_put_long(m, "notify", notify);
    rc = smtpd_cleanup_send(state, m);
    ipc_msg_free(&m);
    return rc;
}

void smtpd_cleanup_abort(SMTPD_STATE *state)
{
    if (server_standalone()) {
        smtpd_postdrop_abort(state);
        return;
    }
    /* Closing before "end" makes cleanup throw the file away. */
    stream_close(&state->cleanup);
}

/* Pass buffered content to cleanup in bounded chunks. */
static void smtpd_cleanup_flush(SMTPD_STATE *state, int force)
{
    IPC_MSG *m;

    if (state->data_buf->len == 0
        || (!force && state->data_buf->len < CLEANUP_CHUNK_MAX))
        return;
    if (state->cleanup && !state->data_too_big && server_standalone()) {
        smtpd_postdrop_data(state, state->data_buf->data, state->data_buf->len);
    } else if (state->cleanup && !state->data_too_big) {
        m = ipc_msg_alloc();
        ipc_put_str(m, "req", "data");
        ipc_put_data(m, "data", state->data_buf->data, state->data_buf->len);
        (void) smtpd_cleanup_send(state, m);
        ipc_msg_free(&m);
    }
    strbuf_reset(state->data_buf);
}

/* Add message bytes, counting them against message_size_limit. */
static void smtpd_data_add(SMTPD_STATE *state, const char *data, size_t len)
{
    state->data_bytes += (long) len;
    if (var_message_size_limit > 0
        && state->data_bytes > var_message_size_limit) {
        state->data_too_big = 1;
        strbuf_reset(state->data_buf);
        return;
    }
    if (state->data_too_big)
        return;
    strbuf_append(state->data_buf, data, len);
    if (state->data_buf->len >= CLEANUP_CHUNK_MAX)
        smtpd_cleanup_flush(state, 1);
}

/* The Received: header that starts every message received by SMTP. */
static void smtpd_received(SMTPD_STATE *state)
{
    STRBUF *hdr;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;

    /* Local submissions (-S) get theirs from cleanup, naming the user. */
    if (server_standalone())
        return;
    hdr = strbuf_alloc(256);

    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %e %b %Y %H:%M:%S %z (%Z)", &tm);
    for (size_t i = 0; i < state->prepend->argc; i++)
        strbuf_printf_append(hdr, "%s\n", state->prepend->argv[i]);
    strbuf_printf_append(hdr, "Received: from %s (%s [%s])",
                         state->helo ? state->helo : state->name, state->name,
                         state->addr);
    smtpd_tls_received(state, hdr);
    if (state->sasl_username && var_smtpd_sasl_authenticated_header)
        strbuf_printf_append(hdr, "\n\t(Authenticated sender: %s)",
                             state->sasl_username);
    /* RFC 3848: ESMTPS, ESMTPA, ESMTPSA (UTF8SMTP... for RFC 6531). */
    strbuf_printf_append(hdr, "\n\tby %s (%s) with %s%s%s id %s",
                         var_myhostname, var_mail_name,
                         state->smtputf8 ? "UTF8SMTP" : state->protocol,
                         state->tls ? "S" : "",
                         state->sasl_username ? "A" : "", state->queue_id);
    if (state->rcpt_count == 1 && state->last_rcpt)
        strbuf_printf_append(hdr, "\n\tfor <%s>", state->last_rcpt);
    strbuf_printf_append(hdr, "; %s\n", date);
    smtpd_data_add(state, hdr->data, hdr->len);
    state->data_bytes -= (long) hdr->len;      /* not the client's bytes */
    strbuf_free(&hdr);
}

/* Send "end" and turn cleanup's answer into the SMTP reply. */
static int smtpd_data_done(SMTPD_STATE *state, const char *cmd)
{
    STRBUF *err = strbuf_alloc(128);
    IPC_MSG *m = ipc_msg_alloc();
    const IPC_ATTR *status;
    long code = -1;
    int rc = -1;

    if (state->data_too_big) {
        smtpd_cleanup_abort(state);
        const char *text = strcmp(cmd, "BDAT") == 0
            ? "Chunk exceeds message size limit"
            : "Error: message file too big";

        msg_info("%s: reject: %s from %s: 552 5.3.4 %s; from=<%s> proto=%s "
                 "helo=<%s>", state->queue_id ? state->queue_id : "NOQUEUE",
                 cmd, state->namaddr, text, state->sender, state->protocol,
                 state->helo ? state->helo : "");
        smtpd_reply_error(state, "552 5.3.4 %s", text);
        goto done;
    }
    smtpd_cleanup_flush(state, 1);
    if (server_standalone()) {
        STRBUF *id = strbuf_alloc(32);

        if (state->cleanup && smtpd_postdrop_end(state, id) == 0) {
            smtpd_reply(state, "250 2.0.0 Ok: queued as %s", id->data);
            rc = 0;
        } else {
            smtpd_reply_error(state, "451 4.3.0 Error: queue file write "
                              "error");
        }
        strbuf_free(&id);
        goto done;
    }
    ipc_put_str(m, "req", "end");
    if (state->hold)
        ipc_put_long(m, "hold", 1);
    if (state->discard)
        ipc_put_long(m, "discard", 1);
    if (smtpd_cleanup_send(state, m) < 0
        || ipc_read(state->cleanup, m, CLEANUP_RECORD_MAX, err) <= 0
        || (status = ipc_find(m, "status")) == NULL
        || str_to_long(status->value, 0, 599, &code) < 0) {
        if (err->len)
            msg_warn("%s: cleanup: %s", state->queue_id, err->data);
        smtpd_reply_error(state, "451 4.3.0 Error: queue file write error");
        goto done;
    }
    if (code == 0) {
        smtpd_reply(state, "250 2.0.0 Ok: queued as %s", state->queue_id);
        rc = 0;
    } else {
        const IPC_ATTR *dsn = ipc_find(m, "dsn");
        const IPC_ATTR *reason = ipc_find(m, "reason");

        smtpd_reply_error(state, "%ld %s %s", code,
                          dsn ? dsn->value : code < 500 ? "4.0.0" : "5.0.0",
                          reason ? reason->value : "Error: message refused");
    }
done:
    ipc_msg_free(&m);
    strbuf_free(&err);
    smtpd_transaction_reset(state);
    return rc;
}

/* --- DATA ------------------------------------------------------------- */

int smtpd_cmd_data(SMTPD_STATE *state, char *args)
{
    STRBUF *line = strbuf_alloc(1024);
    int prev_crlf = 1;                  /* the start counts as after CRLF */
    int at_line_start = 1;
    int pending_cr = 0;
    int rc = -1;

    if (*args) {
        smtpd_reply_error(state, "501 5.5.4 Syntax: DATA");
        goto out;
    }
    if (state->bdat_active) {
        smtpd_reply_error(state, "503 5.5.1 Error: DATA after BDAT");
        goto out;
    }
    if (state->sender == NULL) {
        smtpd_reply_error(state, "503 5.5.1 Error: need RCPT command");
        goto out;
    }
    if (state->rcpt_count == 0) {
        smtpd_reply_error(state, "554 5.5.1 Error: no valid recipients");
        goto out;
    }
    if (smtpd_check_data(state) == SMTPD_CHECK_REJECT) {
        smtpd_log_reject(state, "reject", NULL, &state->reply);
        smtpd_reply_error(state, "%d %s %s", state->reply.code,
                          state->reply.dsn, state->reply.text->data);
        smtpd_transaction_reset(state);
        goto out;
    }
    smtpd_received(state);
    smtpd_reply(state, "354 End data with <CR><LF>.<CR><LF>");
    if (smtpd_flush(state) < 0) {
        msg_info("lost connection after DATA from %s", state->namaddr);
        state->quit = 1;
        goto out;
    }
    for (;;) {
        ssize_t n = stream_get_line(state->client, line);
        const char *data = line->data;
        size_t len;
        int complete;
        int crlf;

        if (n <= 0) {
            if (stream_timed_out(state->client)) {
                msg_info("timeout after DATA (%ld bytes) from %s",
                         state->data_bytes, state->namaddr);
                stream_clear_flags(state->client);
                smtpd_reply(state, "421 4.4.2 %s Error: timeout exceeded",
                            var_myhostname);
            } else {
                msg_info("lost connection after DATA (%ld bytes) from %s",
                         state->data_bytes, state->namaddr);
            }
            smtpd_transaction_reset(state);
            state->quit = 1;
            goto out;
        }
        len = line->len;
        complete = data[len - 1] == '\n';
        /*
         * A piece of an over-long line may end in CR with its LF in the
         * next piece: hold the CR back until we know.
         */
        if (pending_cr) {
            pending_cr = 0;
            if (len == 1 && complete) {
                smtpd_data_add(state, "\n", 1);
                prev_crlf = 1;
                at_line_start = 1;
                continue;
            }
            smtpd_data_add(state, "\r", 1);
        }
        crlf = complete && len >= 2 && data[len - 2] == '\r';
        if (at_line_start && data[0] == '.') {
            if (len == 3 && crlf && prev_crlf)
                break;                  /* <CR><LF>.<CR><LF> */
            data++;                     /* dot-unstuffing */
            len--;
        }
        if (complete) {
            /* Store LF line ends: CRLF and a bare LF both become LF. */
            len -= crlf ? 2 : 1;
            smtpd_data_add(state, data, len);
            smtpd_data_add(state, "\n", 1);
            prev_crlf = crlf;
        } else {
            /* A piece of a line longer than line_length_limit. */
            if (len > 0 && data[len - 1] == '\r') {
                pending_cr = 1;
                len--;
            }
            smtpd_data_add(state, data, len);
            prev_crlf = 0;
        }
        at_line_start = complete;
    }
    rc = smtpd_data_done(state, "DATA");
out:
    strbuf_free(&line);
    return rc;
}

/* --- BDAT ------------------------------------------------------------- */

/* Add a chunk, turning CRLF (also across chunks) into LF. */
static void smtpd_bdat_add(SMTPD_STATE *state, const char *data, size_t len)
{
    size_t start = 0;

    if (state->data_cr) {
        /* The previous chunk ended in CR. */
        state->data_cr = 0;
        if (len > 0 && data[0] == '\n') {
            smtpd_data_add(state, "\n", 1);
            start = 1;
        } else {
            smtpd_data_add(state, "\r", 1);
        }
    }
    for (size_t i = start; i < len; i++) {
        if (data[i] != '\r')
            continue;
        if (i + 1 == len) {
            smtpd_data_add(state, data + start, i - start);
            state->data_cr = 1;
            return;
        }
        if (data[i + 1] == '\n') {
            smtpd_data_add(state, data + start, i - start);
            start = i + 1;              /* keep the LF */
            i++;
        }
    }
    smtpd_data_add(state, data + start, len - start);
}

int smtpd_cmd_bdat(SMTPD_STATE *state, char *args)
{
    ARGV *words = argv_split(args, " ");
    STRBUF *chunk = strbuf_alloc(8192);
    unsigned long size = 0;
    int last = 0;
    int rc = -1;
    const char *refusal = NULL;

    if (words->argc < 1 || words->argc > 2
        || str_to_ulong(words->argv[0], 0x7fffffffUL, &size) < 0
        || (words->argc == 2 && strcasecmp(words->argv[1], "LAST") != 0)) {
        /* Without a valid size the chunk cannot be skipped: give up. */
        smtpd_reply(state, "501 5.5.4 Syntax: BDAT count [LAST]");
        msg_info("bad BDAT syntax from %s", state->namaddr);
        state->quit = 1;
        goto out;
    }
    last = words->argc == 2;
    if (!state->esmtp)
        refusal = "503 5.5.1 Error: BDAT requires EHLO";
    else if (state->sender == NULL)
        refusal = "503 5.5.1 Error: need MAIL command";
    else if (state->rcpt_count == 0)
        refusal = "554 5.5.1 Error: no valid recipients";
    if (refusal == NULL && !state->bdat_active && !state->bdat_error) {
        if (smtpd_check_data(state) == SMTPD_CHECK_REJECT) {
            smtpd_log_reject(state, "reject", NULL, &state->reply);
            state->bdat_error = 1;
        } else {
            state->bdat_active = 1;
            smtpd_received(state);
        }
    }
    /* The chunk is read in every case: it is on the wire. */
    while (size > 0) {
        char buf[8192];
        ssize_t n = stream_read(state->client, buf, size < sizeof(buf)
                                ? size : sizeof(buf));

        if (n <= 0) {
            if (stream_timed_out(state->client)) {
                msg_info("timeout after BDAT (%ld bytes) from %s",
                         state->data_bytes, state->namaddr);
                smtpd_reply(state, "421 4.4.2 %s Error: timeout exceeded",
                            var_myhostname);
            } else {
                msg_info("lost connection after BDAT (%ld bytes) from %s",
                         state->data_bytes, state->namaddr);
            }
            smtpd_transaction_reset(state);
            state->quit = 1;
            goto out;
        }
        if (refusal == NULL && state->bdat_active)
            smtpd_bdat_add(state, buf, (size_t) n);
        size -= (unsigned long) n;
    }
    if (refusal) {
        smtpd_reply_error(state, "%s", refusal);
        goto out;
    }
    if (state->bdat_error) {
        smtpd_reply_error(state, "%d %s %s", state->reply.code,
                          state->reply.dsn, state->reply.text->data);
        if (last)
            smtpd_transaction_reset(state);
        goto out;
    }
    if (!last) {
        smtpd_reply(state, "250 2.0.0 Ok: %s bytes", words->argv[0]);
        rc = 0;
        goto out;
    }
    if (state->data_cr) {
        state->data_cr = 0;
        smtpd_data_add(state, "\r", 1);
    }
    rc = smtpd_data_done(state, "BDAT");
out:
    argv_free(&words);
    strbuf_free(&chunk);
    return rc;
}
