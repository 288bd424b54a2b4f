/*
 * smtp_proto - the SMTP (RFC 5321) and LMTP (RFC 2033) client
 * conversation: greeting, EHLO/HELO/LHLO, STARTTLS, AUTH, then one mail
 * transaction per delivery request.
 *
 * With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one
 * write and the replies are read in order.  Each recipient gets its own
 * result: 2xx accepted, 5xx bounced with the server's reply quoted, 4xx
 * deferred, or, when another server may still be tried, left for that
 * server.  A failure that concerns the whole message (MAIL, DATA, the end
 * of DATA) applies to every recipient still open; a lost connection or a
 * timeout leaves them open for the next server, as Postfix does.  After
 * the end of DATA an SMTP server answers once for all accepted
 * recipients, an LMTP server once for each.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/params.h"
#include "mail/smtp_addr.h"
#include "smtp.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

#define SMTP_REPLY_LINES_MAX    1000    /* lines of one multi-line reply */

/* --- replies ---------------------------------------------------------- */

SMTP_REPLY *smtp_reply_alloc(void)
{
    SMTP_REPLY *r = xcalloc(1, sizeof(*r));

    r->text = strbuf_alloc(128);
    r->lines = argv_alloc(4);
    return r;
}

void smtp_reply_free(SMTP_REPLY **rp)
{
    SMTP_REPLY *r = *rp;

    if (r == NULL)
        return;
    strbuf_free(&r->text);
    argv_free(&r->lines);
    free(r);
    *rp = NULL;
}

/* An enhanced status code at the start of text, of the reply's class. */
static size_t smtp_reply_dsn(const char *text, int code, char *dsn)
{
    size_t n = 0;
    int dots = 0;

    if (text[0] != '0' + code / 100 || text[1] != '.')
        return 0;
    for (n = 0; text[n] && text[n] != ' '; n++) {
        if (text[n] == '.')
            dots++;
        else if (text[n] < '0' || text[n] > '9')
            return 0;
    }
    if (dots != 2 || n >= 16 || text[n - 1] == '.')
        return 0;
    memcpy(dsn, text, n);
    dsn[n] = 0;
    return n;
}

/*
 * Read one (multi-line) reply.  0 with r->code set, or -1: the connection
 * is gone or timed out (r->code 0), or the reply is malformed (r->code 0,
 * r->text says so).
 */
int smtp_reply_read(SMTP_SESSION *sess, SMTP_REPLY *r)
{
    STRBUF *line = strbuf_alloc(256);
    int rc = -1;

    r->code = 0;
    strcpy(r->dsn, "4.4.2");
    strbuf_reset(r->text);
    argv_truncate(r->lines, 0);
    for (;;) {
        ssize_t n = stream_get_line(sess->stream, line);
        const char *text;
        long code;
        int more;

        if (n <= 0)
            goto done;
        /* An over-long line: keep what fits, drop the rest. */
        if (line->data[line->len - 1] != '\n') {
            STRBUF *skip = strbuf_alloc(256);

            do {
                if (stream_get_line(sess->stream, skip) <= 0) {
                    strbuf_free(&skip);
                    goto done;
                }
            } while (skip->data[skip->len - 1] != '\n');
            strbuf_free(&skip);
        } else {
            strbuf_truncate(line, line->len - 1);
        }
        if (line->len && line->data[line->len - 1] == '\r')
            strbuf_truncate(line, line->len - 1);
        for (size_t i = 0; i < line->len; i++)
            if ((unsigned char) line->data[i] < 0x20)
                line->data[i] = ' ';
        {
            char digits[4];

            memcpy(digits, line->data, 3);
            digits[3] = 0;
            if (line->len < 3 || str_to_long(digits, 200, 599, &code) < 0
                || (line->len > 3 && line->data[3] != ' '
                    && line->data[3] != '-')) {
                strbuf_set(r->text, "malformed reply: ");
                strbuf_append(r->text, line->data,
                              line->len > 100 ? 100 : line->len);
                r->code = 0;
                goto done;
            }
        }
        more = line->len > 3 && line->data[3] == '-';
        text = line->len > 4 ? line->data + 4 : "";
        if (r->lines->argc == 0)
            r->code = (int) code;
        argv_add(r->lines, text);
        /*
         * The lines as they came, joined by spaces, as Postfix logs them
         * ("550-5.1.1 first 550 5.1.1 second"); a long reply is cut
         * after $line_length_limit, which keeps the reason within what
         * qmgr, the logs and a DSN take.
         */
        if (r->lines->argc == 1)
            strbuf_set(r->text, line->data);
        else if (r->text->len < (size_t) var_line_length_limit)
            strbuf_printf_append(r->text, " %s", line->data);
        if (!more)
            break;
        if (r->lines->argc >= SMTP_REPLY_LINES_MAX) {
            strbuf_set(r->text, "malformed reply: too many lines");
            r->code = 0;
            goto done;
        }
    }
    /* No enhanced code: X.0.0; a 3xx has none: a protocol error. */
    if (r->code / 100 == 3)
        strcpy(r->dsn, "5.5.0");
    else if (!smtp_reply_dsn(r->lines->argv[0], r->code, r->dsn))
        snprintf(r->dsn, sizeof(r->dsn), "%d.0.0", r->code / 100);
    rc = 0;
done:
    strbuf_free(&line);
    return rc;
}

static void smtp_vwrite(SMTP_SESSION *sess, const char *fmt, va_list ap)
{
    STRBUF *line = strbuf_alloc(128);

    strbuf_vprintf_append(line, fmt, ap);
    strbuf_cat(line, "\r\n");
    stream_write(sess->stream, line->data, line->len);
    strbuf_free(&line);
}

static void smtp_write(SMTP_SESSION *sess, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void smtp_write(SMTP_SESSION *sess, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    smtp_vwrite(sess, fmt, ap);
    va_end(ap);
}

int smtp_command(SMTP_SESSION *sess, int timeout, SMTP_REPLY *r,
                 const char *fmt, ...)
{
    va_list ap;

    stream_set_timeout(sess->stream, timeout);
    va_start(ap, fmt);
    smtp_vwrite(sess, fmt, ap);
    va_end(ap);
    if (stream_flush(sess->stream) < 0) {
        r->code = 0;
        strbuf_reset(r->text);
        return -1;
    }
    return smtp_reply_read(sess, r);
}

/* The connection failed: a temporary failure of what is still open. */
void smtp_lost(SMTP_STATE *state, SMTP_SESSION *sess, const char *when)
{
    if (stream_timed_out(sess->stream))
        smtp_fail(state, 450, "4.4.2", "conversation with %s timed out %s",
                  sess->namaddr, when);
    else
        smtp_fail(state, 450, "4.4.2", "lost connection with %s %s",
                  sess->namaddr, when);
}

/* A reply that went wrong: "host X said: 550 ... (in reply to Y command)". */
static void smtp_said(STRBUF *out, SMTP_SESSION *sess, const SMTP_REPLY *r,
                      const char *command)
{
    strbuf_printf(out, "host %s said: %s (in reply to %s command)",
                  sess->namaddr, r->text->data, command);
}

/* --- the session -------------------------------------------------------- */

static void smtp_features(SMTP_SESSION *sess, const SMTP_REPLY *r)
{
    sess->features = SMTP_FEAT_ESMTP;
    sess->size_limit = 0;
    xfree(&sess->auth_mechs);
    for (size_t i = 1; i < r->lines->argc; i++) {
        const char *l = r->lines->argv[i];
        const char *arg = l + strcspn(l, " =");

        if (*arg)
            arg++;
        if (strcasecmp(l, "PIPELINING") == 0)
            sess->features |= SMTP_FEAT_PIPELINING;
        else if (strncasecmp(l, "SIZE", 4) == 0 && (l[4] == 0 || l[4] == ' ')) {
            long n;

            sess->features |= SMTP_FEAT_SIZE;
            if (*arg && str_to_long(arg, 0, 0x7fffffffffffffffL, &n) == 0)
                sess->size_limit = n;
        } else if (strcasecmp(l, "8BITMIME") == 0)
            sess->features |= SMTP_FEAT_8BITMIME;
        else if (strcasecmp(l, "SMTPUTF8") == 0)
            sess->features |= SMTP_FEAT_SMTPUTF8;
        else if (strcasecmp(l, "DSN") == 0)
            sess->features |= SMTP_FEAT_DSN;
        else if (strcasecmp(l, "STARTTLS") == 0)
            sess->features |= SMTP_FEAT_STARTTLS;
        else if (strncasecmp(l, "AUTH", 4) == 0 && (l[4] == ' ' || l[4] == '=')
                 && sess->auth_mechs == NULL) {
            sess->features |= SMTP_FEAT_AUTH;
            sess->auth_mechs = xstrdup(arg);
        }
    }
}

/* EHLO (or LHLO), falling back to HELO; 0, or -1 with the failure set. */
static int smtp_hello(SMTP_STATE *state, SMTP_SESSION *sess, SMTP_REPLY *r,
                      int esmtp)
{
    const char *verb = state->lmtp ? "LHLO" : esmtp ? "EHLO" : "HELO";

    if (smtp_command(sess, var_smtp_helo_timeout, r, "%s %s", verb,
                     var_smtp_helo_name) < 0) {
        if (r->code == 0 && r->text->len)
            smtp_fail(state, 450, "4.4.0", "%s: %s", sess->namaddr,
                      r->text->data);
        else
            smtp_lost(state, sess, esmtp ? "while performing the EHLO "
                      "handshake" : "while performing the HELO handshake");
        return -1;
    }
    if (r->code / 100 == 2) {
        if (esmtp || state->lmtp)
            smtp_features(sess, r);
        else
            sess->features = 0;
        return 0;
    }
    /* A 5xx to EHLO: an old server that wants HELO. */
    if (esmtp && !state->lmtp && r->code / 100 == 5)
        return smtp_hello(state, sess, r, 0);
    smtp_fail(state, r->code / 100 == 4 ? 450 : 550, r->dsn,
              "host %s refused to talk to me: %s", sess->namaddr,
              r->text->data);
    return -1;
}

int smtp_session_start(SMTP_STATE *state, SMTP_SESSION *sess)
{
    SMTP_REPLY *r = smtp_reply_alloc();
    SMTP_TLS_POLICY policy;
    int esmtp;
    int rc = -1;

    memset(&policy, 0, sizeof(policy));
    stream_set_timeout(sess->stream, var_smtp_helo_timeout);
    if (smtp_reply_read(sess, r) < 0) {
        if (r->text->len)
            smtp_fail(state, 450, "4.4.0", "%s: %s", sess->namaddr,
                      r->text->data);
        else
            smtp_lost(state, sess, "while receiving the initial server "
                      "greeting");
        goto done;
    }
    if (r->code / 100 != 2) {
        /* smtp_skip_5xx_greeting: another server may do better. */
        int permanent = r->code / 100 == 5 && !var_smtp_skip_5xx_greeting;

        /* The server's enhanced code, made 4.X.X when not final. */
        if (!permanent)
            r->dsn[0] = '4';
        smtp_fail(state, permanent ? 550 : 450, r->dsn,
                  "host %s refused to talk to me: %s", sess->namaddr,
                  r->text->data);
        goto done;
    }
    /* The greeting names the server: our own name means a mail loop. */
    if (!state->lmtp) {
        const char *g = r->lines->argv[0];
        size_t len = strcspn(g, " ");

        if (len == strlen(var_myhostname)
            && strncasecmp(g, var_myhostname, len) == 0) {
            /*
             * As Postfix: when we are the best MX, the mail has nowhere
             * to go; when a better MX is down and we are a backup, it
             * waits for that one.  Worse MX hosts are not tried.
             */
            if (state->best_mx)
                smtp_fail(state, 550, "5.4.6", "mail for %s loops back to "
                          "myself", state->dest.host);
            else if (state->fail.status == 0)
                smtp_fail(state, 450, "4.4.6", "mail for %s loops back to "
                          "myself", state->dest.host);
            /* else the better MX's failure is the reason (Postfix). */
            state->stop = 1;
            goto done;
        }
    }
    esmtp = !var_smtp_never_send_ehlo
        && (var_smtp_always_send_ehlo || strstr(r->lines->argv[0], "ESMTP"));
    if (smtp_hello(state, sess, r, esmtp) < 0)
        goto done;

    /* TLS, as the policy for this next hop says. */
    if (smtp_tls_policy(state, &policy) < 0)
        goto done;
    if (policy.level > SMTP_TLS_NONE) {
        int tls = smtp_tls_start(state, sess, &policy);

        if (tls < 0)
            goto done;
        if (tls > 0 && smtp_hello(state, sess, r, 1) < 0)
            goto done;
    }
    if (smtp_sasl_auth(state, sess) < 0)
        goto done;
    rc = 0;
done:
    smtp_tls_policy_free(&policy);
    smtp_reply_free(&r);
    return rc;
}

/*
 * QUIT without waiting for the reply (Postfix's default,
 * smtp_skip_quit_response = yes): nothing depends on it, and a process
 * that moves on to another server should not spend a round trip here.
 */
void smtp_quit(SMTP_SESSION *sess)
{
    stream_set_timeout(sess->stream, var_smtp_quit_timeout < 10
                       ? var_smtp_quit_timeout : 10);
    smtp_write(sess, "QUIT");
    (void) stream_flush(sess->stream);
}

/* --- the content --------------------------------------------------------- */

typedef struct SMTP_DATA {
    SMTP_SESSION *sess;
    int     bol;                        /* at the beginning of a line */
} SMTP_DATA;

/* LF to CRLF and dot-stuffing (RFC 5321 4.5.2), across chunk ends. */
static int smtp_data_chunk(const char *data, size_t len, void *ctx)
{
    SMTP_DATA *d = ctx;
    STREAM *s = d->sess->stream;
    size_t start = 0;

    for (size_t i = 0; i < len; i++) {
        if (d->bol && data[i] == '.') {
            stream_write(s, data + start, i - start);
            stream_write(s, ".", 1);
            start = i;
        }
        d->bol = 0;
        if (data[i] == '\n') {
            stream_write(s, data + start, i - start);
            stream_write(s, "\r\n", 2);
            start = i + 1;
            d->bol = 1;
        }
    }
    stream_write(s, data + start, len - start);
    return stream_error(s) ? -1 : 0;
}

/* --- the transaction ----------------------------------------------------- */

/* Does the envelope need SMTPUTF8 (non-ASCII addresses)? */
static int smtp_needs_utf8(const SMTP_STATE *state)
{
    if (!state->req->smtputf8)
        return 0;
    if (smtp_addr_8bit(state->req->sender))
        return 1;
    for (size_t i = 0; i < state->req->rcpt_count; i++)
        if (state->rcpts[i].status == 0
            && smtp_addr_8bit(state->req->rcpts[i].address))
            return 1;
    return 0;
}

/* Every open recipient gets this result. */
static void smtp_mesg_done(SMTP_STATE *state, const size_t *which,
                           size_t count, int status, const char *dsn,
                           const char *reason, const char *relay)
{
    for (size_t k = 0; k < count; k++)
        if (state->rcpts[which[k]].status == 0)
            smtp_rcpt_done(state, which[k], status, dsn, reason, relay);
}

static void smtp_mail_params(SMTP_STATE *state, SMTP_SESSION *sess,
                             STRBUF *cmd)
{
    const DELIVER_REQUEST *req = state->req;

    strbuf_printf(cmd, "MAIL FROM:<%s>", req->sender);
    if (sess->features & SMTP_FEAT_SIZE)
        strbuf_printf_append(cmd, " SIZE=%ld", state->env->message_size);
    if ((sess->features & SMTP_FEAT_8BITMIME) && state->eight_bit)
        strbuf_cat(cmd, " BODY=8BITMIME");
    if ((sess->features & SMTP_FEAT_SMTPUTF8) && req->smtputf8)
        strbuf_cat(cmd, " SMTPUTF8");
    if (sess->features & SMTP_FEAT_DSN) {
        if (req->dsn_ret)
            strbuf_printf_append(cmd, " RET=%s",
                                 strcmp(req->dsn_ret, "full") == 0 ? "FULL"
                                 : "HDRS");
        if (req->dsn_envid) {
            STRBUF *x = strbuf_alloc(64);

            xtext_encode(req->dsn_envid, x);
            strbuf_printf_append(cmd, " ENVID=%s", x->data);
            strbuf_free(&x);
        }
    }
}

static void smtp_rcpt_params(SMTP_SESSION *sess, const DELIVER_RCPT *rcpt,
                             STRBUF *cmd)
{
    strbuf_printf(cmd, "RCPT TO:<%s>", rcpt->address);
    if (!(sess->features & SMTP_FEAT_DSN))
        return;
    if (rcpt->notify) {
        static const struct {
            int     bit;
            const char *name;
        } words[] = {
            {DSN_NOTIFY_NEVER, "NEVER"}, {DSN_NOTIFY_SUCCESS, "SUCCESS"},
            {DSN_NOTIFY_FAILURE, "FAILURE"}, {DSN_NOTIFY_DELAY, "DELAY"},
        };
        int first = 1;

        strbuf_cat(cmd, " NOTIFY=");
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
            if (rcpt->notify & words[i].bit) {
                strbuf_printf_append(cmd, "%s%s", first ? "" : ",",
                                     words[i].name);
                first = 0;
            }
        }
    }
    if (rcpt->orcpt) {
        const char *semi = strchr(rcpt->orcpt, ';');

        if (semi) {
            STRBUF *x = strbuf_alloc(64);

            xtext_encode(semi + 1, x);
            strbuf_printf_append(cmd, " ORCPT=%.*s;%s",
                                 (int) (semi - rcpt->orcpt), rcpt->orcpt,
                                 x->data);
            strbuf_free(&x);
        }
    }
}

/*
 * The status of a reply that failed a command: 4NN and 5NN as they are;
 * any other (a 2xx to DATA, a 3xx to RCPT) is the server's protocol
 * error, a permanent failure as in Postfix (never "sent", and never a
 * status that the delivery protocol cannot carry).
 */
static int smtp_fail_status(SMTP_REPLY *r)
{
    if (r->code / 100 == 4 || r->code / 100 == 5)
        return r->code;
    strcpy(r->dsn, "5.5.0");
    return 550;
}

/*
 * A reply to a recipient-specific or message command that is not 2xx.
 * 5xx: final.  4xx: final on the last server, else left open for the
 * next one (state->fail remembers why).
 */
static void smtp_rcpt_reply(SMTP_STATE *state, SMTP_SESSION *sess, size_t i,
                            SMTP_REPLY *r, const char *command)
{
    STRBUF *why = strbuf_alloc(128);
    int status = smtp_fail_status(r);

    smtp_said(why, sess, r, command);
    if (status / 100 == 5 || state->final_server)
        smtp_rcpt_done(state, i, status, r->dsn, why->data, sess->namaddr);
    else
        smtp_fail(state, status, r->dsn, "%s", why->data);
    strbuf_free(&why);
}

int smtp_transaction(SMTP_STATE *state, SMTP_SESSION *sess)
{
    const DELIVER_REQUEST *req = state->req;
    SMTP_REPLY *r = smtp_reply_alloc();
    STRBUF *cmd = strbuf_alloc(256);
    STRBUF *why = strbuf_alloc(128);
    size_t *sent = xcalloc(req->rcpt_count, sizeof(size_t));
    size_t *accepted = xcalloc(req->rcpt_count, sizeof(size_t));
    size_t nsent = 0;
    size_t naccepted = 0;
    int pipelining = (sess->features & SMTP_FEAT_PIPELINING) != 0;
    int mail_ok;
    int rc = -1;                        /* -1: the session is unusable */

    /* What this server cannot take at all. */
    if (smtp_needs_utf8(state) && !(sess->features & SMTP_FEAT_SMTPUTF8)) {
        for (size_t i = 0; i < req->rcpt_count; i++)
            sent[nsent++] = i;
        strbuf_printf(why, "SMTPUTF8 is required, but was not offered by "
                      "host %s", sess->namaddr);
        smtp_mesg_done(state, sent, nsent, 554, "5.6.7", why->data,
                       sess->namaddr);
        rc = 0;
        goto done;
    }
    if (sess->size_limit > 0 && state->env->message_size > sess->size_limit) {
        for (size_t i = 0; i < req->rcpt_count; i++)
            sent[nsent++] = i;
        strbuf_printf(why, "message size %ld exceeds size limit %ld of "
                      "server %s", state->env->message_size,
                      sess->size_limit, sess->namaddr);
        smtp_mesg_done(state, sent, nsent, 552, "5.3.4", why->data,
                       sess->namaddr);
        rc = 0;
        goto done;
    }

    /* MAIL, RCPT..., DATA: in one go with PIPELINING. */
    smtp_mail_params(state, sess, cmd);
    stream_set_timeout(sess->stream, var_smtp_mail_timeout);
    smtp_write(sess, "%s", cmd->data);
    if (!pipelining) {
        if (stream_flush(sess->stream) < 0 || smtp_reply_read(sess, r) < 0) {
            smtp_lost(state, sess, "while sending MAIL FROM");
            goto done;
        }
    }
    for (size_t i = 0; i < req->rcpt_count; i++) {
        if (state->rcpts[i].status != 0)
            continue;
        sent[nsent++] = i;              /* else: below, if MAIL is ok */
        if (pipelining) {
            smtp_rcpt_params(sess, &req->rcpts[i], cmd);
            smtp_write(sess, "%s", cmd->data);
        }
    }
    if (pipelining) {
        smtp_write(sess, "DATA");
        if (stream_flush(sess->stream) < 0 || smtp_reply_read(sess, r) < 0) {
            smtp_lost(state, sess, "while sending MAIL FROM");
            goto done;
        }
    }
    /* The MAIL reply is in r. */
    mail_ok = r->code / 100 == 2;
    if (!mail_ok) {
        int status = smtp_fail_status(r);

        smtp_said(why, sess, r, "MAIL FROM");
        if (status / 100 == 5 || state->final_server)
            smtp_mesg_done(state, sent, nsent, status, r->dsn, why->data,
                           sess->namaddr);
        else
            smtp_fail(state, status, r->dsn, "%s", why->data);
    }
    /* The RCPT replies. */
    for (size_t k = 0; k < nsent; k++) {
        size_t i = sent[k];

        if (!pipelining && !mail_ok)
            break;                      /* MAIL failed: no RCPT */
        stream_set_timeout(sess->stream, var_smtp_rcpt_timeout);
        if (!pipelining) {
            smtp_rcpt_params(sess, &req->rcpts[i], cmd);
            smtp_write(sess, "%s", cmd->data);
            if (stream_flush(sess->stream) < 0) {
                smtp_lost(state, sess, "while sending RCPT TO");
                goto done;
            }
        }
        if (smtp_reply_read(sess, r) < 0) {
            smtp_lost(state, sess, "while sending RCPT TO");
            goto done;
        }
        if (!mail_ok)
            continue;
        if (r->code / 100 == 2)
            accepted[naccepted++] = i;
        else
            smtp_rcpt_reply(state, sess, i, r, "RCPT TO");
    }
    if (!pipelining && mail_ok && naccepted > 0) {
        stream_set_timeout(sess->stream, var_smtp_data_init_timeout);
        smtp_write(sess, "DATA");
        if (stream_flush(sess->stream) < 0) {
            smtp_lost(state, sess, "while sending DATA command");
            goto done;
        }
    }
    if (pipelining || (mail_ok && naccepted > 0)) {
        stream_set_timeout(sess->stream, var_smtp_data_init_timeout);
        if (smtp_reply_read(sess, r) < 0) {
            smtp_lost(state, sess, "while sending DATA command");
            goto done;
        }
    } else {
        r->code = 0;
    }
    if (!mail_ok || naccepted == 0) {
        /* Nothing to send; a pipelined DATA was refused (or must be). */
        if (r->code == 354) {
            stream_set_timeout(sess->stream, var_smtp_data_xfer_timeout);
            smtp_write(sess, ".");
            if (stream_flush(sess->stream) < 0
                || smtp_reply_read(sess, r) < 0)
                goto done;
        }
        if (smtp_command(sess, var_smtp_rset_timeout, r, "RSET") < 0
            || r->code / 100 != 2)
            goto done;
        rc = 0;
        goto done;
    }
    if (r->code != 354) {
        int status = smtp_fail_status(r);

        smtp_said(why, sess, r, "DATA");
        if (status / 100 == 5 || state->final_server)
            smtp_mesg_done(state, accepted, naccepted, status, r->dsn,
                           why->data, sess->namaddr);
        else
            smtp_fail(state, status, r->dsn, "%s", why->data);
        if (smtp_command(sess, var_smtp_rset_timeout, r, "RSET") == 0
            && r->code / 100 == 2)
            rc = 0;
        goto done;
    }

    /* The content. */
    {
        SMTP_DATA d = {sess, 1};
        STRBUF *err = strbuf_alloc(64);

        stream_set_timeout(sess->stream, var_smtp_data_xfer_timeout);
        if (qfile_read_content(state->fd, state->env, smtp_data_chunk, &d,
                               err) < 0) {
            if (stream_error(sess->stream)) {
                strbuf_free(&err);
                smtp_lost(state, sess, "while sending message body");
                goto done;
            }
            /* The queue file is bad: nothing may reach the server. */
            msg_warn("%s: %s", req->queue_id, err->data);
            strbuf_free(&err);
            smtp_fail(state, 450, "4.3.0", "error reading the queue file");
            goto done;                  /* the half-sent DATA dies here */
        }
        strbuf_free(&err);
        if (!d.bol)
            stream_write(sess->stream, "\r\n", 2);
        smtp_write(sess, ".");
        if (stream_flush(sess->stream) < 0) {
            smtp_lost(state, sess, "while sending message body");
            goto done;
        }
    }
    stream_set_timeout(sess->stream, var_smtp_data_done_timeout);
    for (size_t k = 0; k < (state->lmtp ? naccepted : 1); k++) {
        if (smtp_reply_read(sess, r) < 0) {
            smtp_lost(state, sess, "while sending end of data -- message "
                      "may be sent more than once");
            goto done;
        }
        if (r->code / 100 == 2) {
            strbuf_printf(why, "%s", r->text->data);
            if (state->lmtp)
                smtp_rcpt_done(state, accepted[k], 0, r->dsn, why->data,
                               sess->namaddr);
            else
                smtp_mesg_done(state, accepted, naccepted, 0, r->dsn,
                               why->data, sess->namaddr);
        } else {
            int status = smtp_fail_status(r);

            smtp_said(why, sess, r, "end of DATA");
            /* After the data no other server is tried: no duplicates. */
            if (state->lmtp)
                smtp_rcpt_done(state, accepted[k], status, r->dsn,
                               why->data, sess->namaddr);
            else
                smtp_mesg_done(state, accepted, naccepted, status, r->dsn,
                               why->data, sess->namaddr);
        }
    }
    rc = 0;
done:
    free(sent);
    free(accepted);
    strbuf_free(&why);
    strbuf_free(&cmd);
    smtp_reply_free(&r);
    return rc;
}
