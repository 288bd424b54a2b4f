/*
 * cleanup - the single writer of new queue files.
 *
 * smtpd and pickup hand each message to cleanup over public/cleanup (see
 * cleanup_proto.h): envelope, recipients, content.  cleanup rewrites
 * addresses (canonical form, canonical maps, virtual aliases), checks
 * headers, adds missing headers to local submissions, writes the queue
 * file and makes it durable in incoming/ (or hold/) before it answers, and
 * then pokes qmgr.  Any failure answers 4xx and leaves no file behind.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "mail/cleanup_proto.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/record.h"
#include "mail/server.h"
#include "mail/trigger.h"
#include "util/msg.h"
#include "util/xmalloc.h"

MAPS   *cleanup_virtual_maps;
MAPS   *cleanup_canonical_maps;
MAPS   *cleanup_sender_canonical_maps;
MAPS   *cleanup_rcpt_canonical_maps;
MAPS   *cleanup_header_checks;
MATCH_LIST *cleanup_mydestination;

void cleanup_failed(CLEANUP_STATE *state, int code, const char *dsn,
                    const char *fmt, ...)
{
    va_list ap;

    if (state->fail.code)
        return;                         /* the first problem is the answer */
    state->fail.code = code;
    snprintf(state->fail.dsn, sizeof(state->fail.dsn), "%s", dsn);
    strbuf_reset(state->fail.text);
    va_start(ap, fmt);
    strbuf_vprintf_append(state->fail.text, fmt, ap);
    va_end(ap);
}

/* "ID: reject: header H from client; from=<s> to=<r> proto=P helo=<h>: T" */
void cleanup_log_reject(CLEANUP_STATE *state, const char *action,
                        const char *what, const char *text)
{
    STRBUF *line = strbuf_alloc(256);

    strbuf_printf(line, "%s: %s: header %.200s from ", state->queue_id,
                  action, what);
    if (state->client_name || state->client_addr)
        strbuf_printf_append(line, "%s[%s]",
                             state->client_name ? state->client_name
                             : "unknown",
                             state->client_addr ? state->client_addr : "");
    else
        strbuf_cat(line, "local");
    strbuf_printf_append(line, "; from=<%s>", state->sender);
    if (state->log_rcpts->argc)
        strbuf_printf_append(line, " to=<%s>", state->log_rcpts->argv[0]);
    if (state->protocol)
        strbuf_printf_append(line, " proto=%s", state->protocol);
    if (state->helo)
        strbuf_printf_append(line, " helo=<%s>", state->helo);
    if (*text)
        strbuf_printf_append(line, ": %s%s",
                             strcmp(action, "reject") == 0 ? "5.7.1 " : "",
                             text);
    if (strcmp(action, "warning") == 0)
        msg_warn("%s", line->data + strlen(state->queue_id) + 2
                 + strlen("warning: "));
    else
        msg_info("%s", line->data);
    strbuf_free(&line);
}

static void cleanup_reply(STREAM *s, CLEANUP_STATE *state, int discarded)
{
    IPC_MSG *m = ipc_msg_alloc();

    if (state->fail.code) {
        ipc_put_long(m, "status", state->fail.code);
        ipc_put_str(m, "dsn", state->fail.dsn);
        ipc_put_str(m, "reason", state->fail.text->data);
    } else {
        ipc_put_long(m, "status", 0);
        ipc_put_str(m, "queue_id", state->queue_id);
        if (discarded)
            ipc_put_long(m, "discarded", 1);
    }
    (void) ipc_write(s, m);
    ipc_msg_free(&m);
}

/* Envelope text must not carry line breaks into the file or the logs. */
static int cleanup_bad_text(const char *text)
{
    for (const unsigned char *cp = (const unsigned char *) text; *cp; cp++)
        if (*cp < 0x20 || *cp == 0x7f)
            return 1;
    return 0;
}

static void cleanup_attr(CLEANUP_STATE *state, const char *name,
                         const char *value)
{
    if (value && *value)
        rec_fprintf(qfile_stream(state->qfile), QREC_ATTR, "%s=%s", name,
                    value);
}

static int cleanup_open(CLEANUP_STATE *state, IPC_MSG *req, STRBUF *err)
{
    const char *r = NULL, *origin = NULL, *sender = NULL, *fullname = NULL;
    const char *cname = NULL, *caddr = NULL, *cport = NULL, *helo = NULL;
    const char *proto = NULL, *sasl_method = NULL, *sasl_user = NULL;
    const char *envid = NULL, *ret = NULL, *utf8 = NULL, *uid = NULL;
    const char *ident = NULL;
    IPC_SPEC spec[] = {
        {"req", IPC_STR, 1, &r}, {"origin", IPC_STR, 1, &origin},
        {"sender", IPC_STR, 1, &sender},
        {"sender_fullname", IPC_STR, 0, &fullname},
        {"client_name", IPC_STR, 0, &cname},
        {"client_address", IPC_STR, 0, &caddr},
        {"client_port", IPC_STR, 0, &cport},
        {"helo_name", IPC_STR, 0, &helo}, {"protocol", IPC_STR, 0, &proto},
        {"sasl_method", IPC_STR, 0, &sasl_method},
        {"sasl_username", IPC_STR, 0, &sasl_user},
        {"dsn_envid", IPC_STR, 0, &envid}, {"dsn_ret", IPC_STR, 0, &ret},
        {"smtputf8", IPC_STR, 0, &utf8}, {"local_uid", IPC_STR, 0, &uid},
        {"log_ident", IPC_STR, 0, &ident},
        IPC_SPEC_END,
    };
    STRBUF *canon = strbuf_alloc(128);
    STRBUF *rewritten = strbuf_alloc(128);

    if (ipc_scan(req, spec, err) < 0 || strcmp(r, "open") != 0) {
        if (!err->len)
            strbuf_set(err, "expected an open request");
        goto bad;
    }
    {
        const char *check[] = {origin, sender, fullname, cname, caddr, cport,
                               helo, proto, sasl_method, sasl_user, envid,
                               ret, utf8, uid, ident};

        for (size_t i = 0; i < sizeof(check) / sizeof(check[0]); i++) {
            if (check[i] && cleanup_bad_text(check[i])) {
                strbuf_set(err, "control character in envelope text");
                goto bad;
            }
        }
    }
    state->origin = xstrdup(origin);
    state->client_name = cname ? xstrdup(cname) : NULL;
    state->client_addr = caddr ? xstrdup(caddr) : NULL;
    state->helo = helo ? xstrdup(helo) : NULL;
    state->protocol = proto ? xstrdup(proto) : NULL;
    state->local_uid = uid ? xstrdup(uid) : NULL;
    state->fullname = fullname ? xstrdup(fullname) : NULL;
    if ((state->qfile = qfile_create(err)) == NULL) {
        msg_warn("%s", err->data);
        cleanup_failed(state, 451, "4.3.0", "Error: queue file write error");
        strbuf_reset(err);
        goto out;
    }
    snprintf(state->queue_id, sizeof(state->queue_id), "%s",
             qfile_id(state->qfile));
    cleanup_canon_addr(sender, canon);
    if (cleanup_rewrite(state, cleanup_sender_canonical_maps,
                        cleanup_canonical_maps, canon->data, rewritten) < 0)
        strbuf_set(rewritten, canon->data);
    state->sender = xstrdup(rewritten->data);
    if (fullname)
        rec_puts(qfile_stream(state->qfile), QREC_FULLNAME, fullname);
    rec_puts(qfile_stream(state->qfile), QREC_SENDER, state->sender);
    cleanup_attr(state, "origin", origin);
    cleanup_attr(state, "client_name", cname);
    cleanup_attr(state, "client_address", caddr);
    cleanup_attr(state, "client_port", cport);
    cleanup_attr(state, "helo_name", helo);
    cleanup_attr(state, "protocol", proto);
    cleanup_attr(state, "sasl_method", sasl_method);
    cleanup_attr(state, "sasl_username", sasl_user);
    cleanup_attr(state, "dsn_envid", envid);
    cleanup_attr(state, "dsn_ret", ret);
    cleanup_attr(state, "smtputf8", utf8);
    cleanup_attr(state, "local_uid", uid);
    cleanup_attr(state, "log_ident", ident);
out:
    strbuf_free(&canon);
    strbuf_free(&rewritten);
    return 0;
bad:
    strbuf_free(&canon);
    strbuf_free(&rewritten);
    return -1;
}

static int cleanup_rcpt(CLEANUP_STATE *state, IPC_MSG *req, STRBUF *err)
{
    const char *r = NULL, *rcpt = NULL, *orcpt = NULL;
    long notify = 0;
    IPC_SPEC spec[] = {
        {"req", IPC_STR, 1, &r}, {"rcpt", IPC_STR, 1, &rcpt},
        {"orcpt", IPC_STR, 0, &orcpt}, {"notify", IPC_LONG, 0, &notify},
        IPC_SPEC_END,
    };
    STRBUF *canon;
    STRBUF *rewritten;
    ARGV *expanded;

    if (ipc_scan(req, spec, err) < 0)
        return -1;
    if (state->in_content || cleanup_bad_text(rcpt)
        || (orcpt && cleanup_bad_text(orcpt)) || notify < 0 || notify > 15
        || *rcpt == 0) {
        strbuf_set(err, "bad recipient request");
        return -1;
    }
    if (state->qfile == NULL || state->fail.code)
        return 0;
    canon = strbuf_alloc(128);
    rewritten = strbuf_alloc(128);
    expanded = argv_alloc(4);
    cleanup_canon_addr(rcpt, canon);
    if (state->log_rcpts->argc == 0)
        argv_add(state->log_rcpts, canon->data);
    if (cleanup_rewrite(state, cleanup_rcpt_canonical_maps,
                        cleanup_canonical_maps, canon->data, rewritten) == 0
        && cleanup_expand_virtual(state, rewritten->data, expanded) == 0) {
        STREAM *s = qfile_stream(state->qfile);

        for (size_t i = 0; i < expanded->argc; i++) {
            STRBUF *key = strbuf_alloc(128);

            /* Drop duplicates of the same original recipient. */
            strbuf_printf(key, "%s\n%s", rcpt, expanded->argv[i]);
            strbuf_lower(key);
            if (htable_enter(state->rcpt_seen, key->data, NULL) != NULL) {
                if (orcpt)
                    rec_puts(s, QREC_DSN_ORCPT, orcpt);
                if (notify)
                    rec_fprintf(s, QREC_DSN_NOTIFY, "%ld", notify);
                rec_puts(s, QREC_ORIG_RCPT, rcpt);
                rec_puts(s, QREC_RCPT, expanded->argv[i]);
                state->rcpt_count++;
            }
            strbuf_free(&key);
        }
    }
    argv_free(&expanded);
    strbuf_free(&canon);
    strbuf_free(&rewritten);
    return 0;
}

static void cleanup_finish(STREAM *s, CLEANUP_STATE *state)
{
    STRBUF *err = strbuf_alloc(128);
    int discarded = 0;

    if (state->qfile && !state->fail.code) {
        cleanup_content_end(state);
        if (state->rcpt_count == 0 && !state->fail.code)
            cleanup_failed(state, 554, "5.5.1", "Error: no valid recipients");
    }
    if (state->qfile && !state->fail.code && state->discard) {
        qfile_abort(&state->qfile);
        discarded = 1;
    } else if (state->qfile && !state->fail.code) {
        qfile_set_size(state->qfile, state->message_size,
                       state->content_offset, state->rcpt_count,
                       state->hold ? QFLAG_HOLD : 0);
        if (qfile_commit(&state->qfile, state->hold ? "hold" : "incoming",
                         err) < 0) {
            int full = errno == ENOSPC || errno == EDQUOT;

            msg_warn("%s: %s", state->queue_id, err->data);
            if (full)
                cleanup_failed(state, 452, "4.3.1",
                               "Insufficient system storage");
            else
                cleanup_failed(state, 451, "4.3.0",
                               "Error: queue file write error");
        } else if (!state->hold) {
            char t = TRIGGER_SCAN_INCOMING;

            (void) trigger_send("public", "qmgr", &t, 1);
        }
    }
    cleanup_reply(s, state, discarded);
    strbuf_free(&err);
}

static void cleanup_state_free(CLEANUP_STATE *state)
{
    qfile_abort(&state->qfile);
    free(state->origin);
    free(state->sender);
    free(state->client_name);
    free(state->client_addr);
    free(state->helo);
    free(state->protocol);
    free(state->local_uid);
    free(state->fullname);
    argv_free(&state->log_rcpts);
    htable_free(&state->rcpt_seen, NULL);
    strbuf_free(&state->fail.text);
    strbuf_free(&state->line);
    strbuf_free(&state->header);
    strbuf_free(&state->out);
}

static void cleanup_serve(SERVER_CLIENT *client, const char *service,
                          char **argv)
{
    STREAM *s = stream_open(client->fd, var_ipc_timeout, 4096);
    IPC_MSG *req = ipc_msg_alloc();
    STRBUF *err = strbuf_alloc(128);
    CLEANUP_STATE state;
    const IPC_ATTR *what;
    int rc;

    (void) service;
    (void) argv;
    memset(&state, 0, sizeof(state));
    strcpy(state.queue_id, "NOQUEUE");  /* fits */
    state.log_rcpts = argv_alloc(1);
    state.rcpt_seen = htable_alloc(16);
    state.fail.text = strbuf_alloc(64);
    cleanup_content_init(&state);

    if ((rc = ipc_read(s, req, CLEANUP_RECORD_MAX, err)) <= 0
        || cleanup_open(&state, req, err) < 0) {
        if (rc < 0 || err->len)
            msg_warn("%s: %s", client->addr, err->len ? err->data
                     : "no request");
        goto done;
    }
    /* The queue ID, or why there is none. */
    cleanup_reply(s, &state, 0);
    if (state.qfile == NULL)
        goto done;
    for (;;) {
        if ((rc = ipc_read(s, req, CLEANUP_RECORD_MAX, err)) <= 0) {
            /* The client went away: abort the message. */
            if (rc < 0)
                msg_warn("%s: %s", state.queue_id, err->data);
            goto done;
        }
        if ((what = ipc_find(req, "req")) == NULL) {
            msg_warn("%s: request without req attribute", state.queue_id);
            goto done;
        }
        if (strcmp(what->value, "rcpt") == 0) {
            if (cleanup_rcpt(&state, req, err) < 0) {
                msg_warn("%s: %s", state.queue_id, err->data);
                goto done;
            }
        } else if (strcmp(what->value, "data") == 0) {
            const IPC_ATTR *data = NULL;
            const char *r = NULL;
            IPC_SPEC spec[] = {
                {"req", IPC_STR, 1, &r}, {"data", IPC_DATA, 1, &data},
                IPC_SPEC_END,
            };

            if (ipc_scan(req, spec, err) < 0) {
                msg_warn("%s: %s", state.queue_id, err->data);
                goto done;
            }
            if (!state.fail.code)
                cleanup_content(&state, data->value, data->len);
        } else if (strcmp(what->value, "end") == 0) {
            const char *r = NULL;
            long hold = 0;
            long discard = 0;
            IPC_SPEC spec[] = {
                {"req", IPC_STR, 1, &r}, {"hold", IPC_LONG, 0, &hold},
                {"discard", IPC_LONG, 0, &discard},
                IPC_SPEC_END,
            };

            if (ipc_scan(req, spec, err) < 0) {
                msg_warn("%s: %s", state.queue_id, err->data);
                goto done;
            }
            /* smtpd's access tables can ask for these too. */
            state.hold |= hold != 0;
            state.discard |= discard != 0;
            cleanup_finish(s, &state);
            goto done;
        } else {
            msg_warn("%s: unexpected request \"%s\"", state.queue_id,
                     what->value);
            goto done;
        }
    }
done:
    cleanup_state_free(&state);
    ipc_msg_free(&req);
    strbuf_free(&err);
    stream_free(&s);
}

/* Tables are opened before chroot, while their files are reachable. */
static void cleanup_pre_init(const char *service, char **argv)
{
    (void) service;
    (void) argv;
    cleanup_virtual_maps = maps_open("virtual_alias_maps",
                                     var_virtual_alias_maps,
                                     DICT_FLAG_DEFAULT);
    cleanup_canonical_maps = maps_open("canonical_maps", var_canonical_maps,
                                       DICT_FLAG_DEFAULT);
    cleanup_sender_canonical_maps = maps_open("sender_canonical_maps",
                                              var_sender_canonical_maps,
                                              DICT_FLAG_DEFAULT);
    cleanup_rcpt_canonical_maps = maps_open("recipient_canonical_maps",
                                            var_recipient_canonical_maps,
                                            DICT_FLAG_DEFAULT);
    cleanup_header_checks = maps_open("header_checks", var_header_checks,
                                      DICT_FLAG_DEFAULT);
    cleanup_mydestination = match_list_domains("mydestination",
                                               var_mydestination);
}

int main(int argc, char **argv)
{
    static const SERVER_OPS ops = {
        .kind = SERVER_SINGLE,
        .pre_init = cleanup_pre_init,
        .serve = cleanup_serve,
    };

    server_main(argc, argv, &ops);
}
