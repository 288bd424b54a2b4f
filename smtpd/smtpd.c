/*
 * smtpd - the SMTP server (RFC 5321) for port 25 and its siblings.
 *
 * One client per process (the server skeleton does the rest): greeting,
 * then read a command line, look it up in the command table, run its
 * handler.  Replies are buffered and flushed when the client has nothing
 * more pipelined (RFC 2920), before any pause, and before DATA content.
 * Restrictions are in smtpd_check.c, message transfer in smtpd_data.c,
 * the envelope commands in smtpd_cmd.c.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mail/anvil_clnt.h"
#include "mail/params.h"
#include "smtpd.h"
#include "util/msg.h"
#include "util/xmalloc.h"

#define SMTPD_CMD_GROUP_END (1 << 0)    /* must end a pipelined group */
#define SMTPD_CMD_NO_COUNT  (1 << 1)

typedef struct SMTPD_CMD {
    const char *name;
    int     (*action)(SMTPD_STATE *state, char *args);
    int     flags;
} SMTPD_CMD;

/* In Postfix's order, which is also the order of the disconnect log. */
static const SMTPD_CMD smtpd_cmds[] = {
    {"HELO", smtpd_cmd_helo, SMTPD_CMD_GROUP_END},
    {"EHLO", smtpd_cmd_ehlo, SMTPD_CMD_GROUP_END},
    {"XCLIENT", smtpd_cmd_xclient, SMTPD_CMD_GROUP_END},
    {"STARTTLS", smtpd_cmd_starttls, SMTPD_CMD_GROUP_END},
    {"AUTH", smtpd_cmd_auth, 0},
    {"MAIL", smtpd_cmd_mail, 0},
    {"RCPT", smtpd_cmd_rcpt, 0},
    {"DATA", smtpd_cmd_data, SMTPD_CMD_GROUP_END},
    {"BDAT", smtpd_cmd_bdat, 0},
    {"RSET", smtpd_cmd_rset, 0},
    {"NOOP", smtpd_cmd_noop, SMTPD_CMD_GROUP_END},
    {"VRFY", smtpd_cmd_vrfy, SMTPD_CMD_GROUP_END},
    {"HELP", smtpd_cmd_help, SMTPD_CMD_GROUP_END},
    {"QUIT", smtpd_cmd_quit, SMTPD_CMD_GROUP_END},
};

#define SMTPD_NCMDS     (sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0]))
#define SMTPD_UNKNOWN   SMTPD_NCMDS     /* its counter slot */

/* --- replies ---------------------------------------------------------- */

void smtpd_reply(SMTPD_STATE *state, const char *fmt, ...)
{
    va_list ap;
    STRBUF *line = strbuf_alloc(128);

    va_start(ap, fmt);
    strbuf_vprintf_append(line, fmt, ap);
    va_end(ap);
    /* Never let a reply carry a line break from anywhere. */
    for (size_t i = 0; i < line->len; i++)
        if (line->data[i] == '\r' || line->data[i] == '\n')
            line->data[i] = ' ';
    strbuf_cat(line, "\r\n");
    stream_write(state->client, line->data, line->len);
    strbuf_free(&line);
}

/*
 * An error reply: counted, and delayed once the client has made
 * smtpd_soft_error_limit errors (Postfix tarpitting).
 */
void smtpd_reply_error(SMTPD_STATE *state, const char *fmt, ...)
{
    va_list ap;
    STRBUF *line = strbuf_alloc(128);

    state->error_count++;
    if (state->error_count > var_smtpd_soft_error_limit
        && var_smtpd_error_sleep_time > 0) {
        smtpd_flush(state);
        sleep((unsigned) var_smtpd_error_sleep_time);
    }
    va_start(ap, fmt);
    strbuf_vprintf_append(line, fmt, ap);
    va_end(ap);
    smtpd_reply(state, "%s", line->data);
    strbuf_free(&line);
}

int smtpd_flush(SMTPD_STATE *state)
{
    return stream_flush(state->client);
}

/* "NOQUEUE: reject: RCPT from c[a]: 554 5.7.1 ...; from=<s> to=<r> ..." */
void smtpd_log_reject(SMTPD_STATE *state, const char *kind, const char *rcpt,
                      const SMTPD_REPLY *reply)
{
    STRBUF *line = strbuf_alloc(256);

    strbuf_printf(line, "%s: %s: %s from %s: %d %s %s;",
                  state->queue_id ? state->queue_id : "NOQUEUE", kind,
                  state->where, state->namaddr, reply->code, reply->dsn,
                  reply->text->data);
    if (state->sender)
        strbuf_printf_append(line, " from=<%s>", state->sender);
    if (rcpt)
        strbuf_printf_append(line, " to=<%s>", rcpt);
    strbuf_printf_append(line, " proto=%s", state->protocol);
    if (state->helo)
        strbuf_printf_append(line, " helo=<%s>", state->helo);
    msg_info("%s", line->data);
    strbuf_free(&line);
}

/* --- session ---------------------------------------------------------- */

void smtpd_transaction_reset(SMTPD_STATE *state)
{
    smtpd_cleanup_abort(state);
    xfree(&state->sender);
    xfree(&state->dsn_envid);
    xfree(&state->dsn_ret);
    xfree(&state->last_rcpt);
    xfree(&state->queue_id);
    state->smtputf8 = 0;
    state->declared_size = 0;
    state->rcpt_count = 0;
    state->hold = 0;
    state->discard = 0;
    argv_truncate(state->prepend, 0);
    state->bdat_active = 0;
    state->bdat_error = 0;
    state->data_bytes = 0;
    state->data_too_big = 0;
    state->data_cr = 0;
}

/* The client's name, confirmed forward, or "unknown" (Postfix). */
static char *smtpd_peer_name(const SERVER_CLIENT *client)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[NI_MAXHOST];
    struct addrinfo hints;
    struct addrinfo *res;
    char *name = NULL;

    if (!var_smtpd_peername_lookup
        || getpeername(client->fd, (struct sockaddr *) &ss, &len) < 0
        || getnameinfo((struct sockaddr *) &ss, len, host, sizeof(host), NULL,
                       0, NI_NAMEREQD) != 0)
        return xstrdup("unknown");
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = ss.ss_family;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) == 0) {
        for (struct addrinfo *ai = res; ai && !name; ai = ai->ai_next) {
            char num[INET6_ADDRSTRLEN];

            if (getnameinfo(ai->ai_addr, ai->ai_addrlen, num, sizeof(num),
                            NULL, 0, NI_NUMERICHOST) == 0
                && strcmp(num, client->addr) == 0)
                name = xstrdup(host);
        }
        freeaddrinfo(res);
    }
    return name ? name : xstrdup("unknown");
}

void smtpd_set_peer(SMTPD_STATE *state, const char *name, const char *addr)
{
    STRBUF *buf = strbuf_alloc(64);

    free(state->name);
    free(state->addr);
    free(state->namaddr);
    state->name = xstrdup(name);
    state->addr = xstrdup(addr);
    strbuf_printf(buf, "%s[%s]", name, addr);
    state->namaddr = strbuf_export(&buf);
}

static void smtpd_log_disconnect(SMTPD_STATE *state)
{
    STRBUF *line = strbuf_alloc(256);
    int ok = 0;
    int total = 0;

    strbuf_printf(line, "disconnect from %s", state->namaddr);
    for (size_t i = 0; i <= SMTPD_NCMDS; i++) {
        const SMTPD_COUNT *c = &state->counts[i];
        STRBUF *name;

        if (c->total == 0)
            continue;
        name = strbuf_alloc(16);
        strbuf_set(name, i == SMTPD_UNKNOWN ? "unknown" : smtpd_cmds[i].name);
        strbuf_lower(name);
        if (c->ok == c->total)
            strbuf_printf_append(line, " %s=%d", name->data, c->ok);
        else
            strbuf_printf_append(line, " %s=%d/%d", name->data, c->ok,
                                 c->total);
        ok += c->ok;
        total += c->total;
        strbuf_free(&name);
    }
    if (ok == total && total > 0)
        strbuf_printf_append(line, " commands=%d", ok);
    else
        strbuf_printf_append(line, " commands=%d/%d", ok, total);
    msg_info("%s", line->data);
    strbuf_free(&line);
}

/*
 * What a client pipelined may hold an AUTH with its credentials: log
 * everything up to the first AUTH mechanism name, and nothing after it.
 */
static void smtpd_redact_auth(STRBUF *peek)
{
    for (size_t pos = 0; pos < peek->len;) {
        const char *line = peek->data + pos;
        size_t len = strcspn(line, "\n");
        /* Leading spaces, as the command parser skips them. */
        size_t verb = strspn(line, " ");

        if (strncasecmp(line + verb, "AUTH ", 5) == 0) {
            size_t keep = verb + 5 + strspn(line + verb + 5, " ");

            keep += strcspn(line + keep, " \r\n");
            strbuf_truncate(peek, pos + keep);
            strbuf_cat(peek, " [redacted]");
            return;
        }
        /* Past the newline, or a NUL byte (the log stops there). */
        pos += len + 1;
    }
}

/* Input the client sent ahead of time: a protocol synchronization error. */
static int smtpd_sync_violation(SMTPD_STATE *state, const char *after)
{
    STRBUF *peek;
    size_t n;

    /* sendmail -bs input is a script from a local user: no check. */
    if (!var_smtpd_forbid_unauth_pipelining || server_standalone()
        || stream_wait_input(state->client, 0) <= 0)
        return 0;
    peek = strbuf_alloc(128);
    n = state->client->rend - state->client->rpos;
    if (n > 0) {
        strbuf_append(peek, state->client->rbuf + state->client->rpos,
                      n > 100 ? 100 : n);
    } else if (state->tls == NULL) {
        /* Nothing read yet: look at what waits in the socket. */
        char buf[100];
        ssize_t got = recv(state->client->fd, buf, sizeof(buf),
                           MSG_PEEK | MSG_DONTWAIT);

        if (got > 0)
            strbuf_append(peek, buf, (size_t) got);
    }
    /* After AUTH itself, what follows is the exchange: all of it. */
    if (strcmp(after, "AUTH") == 0)
        strbuf_set(peek, "[redacted]");
    else
        smtpd_redact_auth(peek);
    msg_info("improper command pipelining after %s from %s: %s", after,
             state->namaddr, peek->data);
    strbuf_free(&peek);
    smtpd_reply(state, "554 5.5.0 Error: SMTP protocol synchronization");
    state->sync_error = 1;
    return 1;
}

/* Read and throw away the rest of an over-long line. */
static int smtpd_skip_line(SMTPD_STATE *state, STRBUF *buf)
{
    ssize_t n;

    do {
        if ((n = stream_get_line(state->client, buf)) <= 0)
            return -1;
    } while (buf->data[buf->len - 1] != '\n');
    return 0;
}

static void smtpd_session(SMTPD_STATE *state)
{
    STRBUF *line = strbuf_alloc(256);
    STRBUF *banner = strbuf_alloc(128);

    if (smtpd_sync_violation(state, "CONNECT"))
        goto done;
    if (!var_smtpd_delay_reject
        && smtpd_check_client(state) == SMTPD_CHECK_REJECT) {
        /* Postfix still greets, and refuses every command after. */
        smtpd_log_reject(state, "reject", NULL, &state->reply);
        state->sticky = strbuf_alloc(128);
        strbuf_printf(state->sticky, "%d %s %s", state->reply.code,
                      state->reply.dsn, state->reply.text->data);
    }
    smtpd_reply(state, "220 %s", var_smtpd_banner);
    for (;;) {
        const SMTPD_CMD *cmd = NULL;
        size_t slot = SMTPD_UNKNOWN;
        ssize_t n;
        char *verb;
        char *args;

        if (state->quit || state->sync_error)
            break;
        if (stream_pending(state->client) == 0 && smtpd_flush(state) < 0) {
            msg_info("lost connection after %s from %s", state->where,
                     state->namaddr);
            break;
        }
        if ((n = stream_get_line(state->client, line)) <= 0) {
            if (stream_timed_out(state->client)) {
                msg_info("timeout after %s from %s", state->where,
                         state->namaddr);
                /* The read failed, the connection can still take this. */
                stream_clear_flags(state->client);
                smtpd_reply(state, "421 4.4.2 %s Error: timeout exceeded",
                            var_myhostname);
                smtpd_flush(state);
            } else {
                msg_info("lost connection after %s from %s", state->where,
                         state->namaddr);
            }
            break;
        }
        if (line->data[line->len - 1] != '\n') {
            if (smtpd_skip_line(state, line) < 0)
                break;
            state->counts[SMTPD_UNKNOWN].total++;
            smtpd_reply_error(state, "500 5.5.2 Error: line too long");
            goto check_errors;
        }
        strbuf_truncate(line, line->len - 1);
        if (line->len && line->data[line->len - 1] == '\r')
            strbuf_truncate(line, line->len - 1);
        verb = line->data + strspn(line->data, " ");
        args = verb + strcspn(verb, " ");
        if (*args)
            *args++ = 0;
        args += strspn(args, " ");
        for (size_t i = 0; i < SMTPD_NCMDS; i++) {
            if (strcasecmp(verb, smtpd_cmds[i].name) == 0) {
                cmd = &smtpd_cmds[i];
                slot = i;
                break;
            }
        }
        state->counts[slot].total++;
        if (cmd == NULL) {
            state->where = "UNKNOWN";
            smtpd_reply_error(state, *verb ? "500 5.5.2 Error: command not "
                              "recognized" : "500 5.5.2 Error: bad syntax");
            goto check_errors;
        }
        state->where = cmd->name;
        /* RFC 2920: only an EHLO client may pipeline, and not past these. */
        if (((cmd->flags & SMTPD_CMD_GROUP_END) || !state->esmtp)
            && smtpd_sync_violation(state, cmd->name))
            break;
        if (state->sticky && cmd->action != smtpd_cmd_quit
            && cmd->action != smtpd_cmd_noop && cmd->action != smtpd_cmd_rset)
            smtpd_reply_error(state, "%s", state->sticky->data);
        else if (cmd->action(state, args) == 0)
            state->counts[slot].ok++;
check_errors:
        if (state->error_count >= var_smtpd_hard_error_limit) {
            msg_info("too many errors after %s from %s", state->where,
                     state->namaddr);
            smtpd_reply(state, "421 4.7.0 %s Error: too many errors",
                        var_myhostname);
            break;
        }
    }
done:
    smtpd_flush(state);
    strbuf_free(&line);
    strbuf_free(&banner);
}

static MATCH_LIST *smtpd_xclient_hosts;
static MATCH_LIST *smtpd_limit_exceptions;

/*
 * Per-client connection limits through anvil; 1 when over a limit.
 * *counted: a connect was registered and needs its disconnect.
 */
static int smtpd_client_limits(SMTPD_STATE *state, int *counted)
{
    STRBUF *err = strbuf_alloc(64);
    STRBUF *ident = strbuf_alloc(64);
    int count = 0;
    int rate = 0;
    int over = 0;

    *counted = 0;
    if (server_standalone()
        || (var_smtpd_client_connection_count_limit == 0
            && var_smtpd_client_connection_rate_limit == 0)
        || match_list_address(smtpd_limit_exceptions, state->addr)
        == MATCH_YES)
        goto done;
    strbuf_printf(ident, "smtp:%s", state->addr);
    if ((state->anvil = anvil_clnt_open(err)) == NULL
        || anvil_clnt_connect(state->anvil, ident->data, &count, &rate,
                              err) < 0) {
        msg_warn("connection limits not enforced: anvil: %s", err->data);
        anvil_clnt_close(&state->anvil);
        goto done;
    }
    *counted = 1;
    if (var_smtpd_client_connection_count_limit > 0
        && count > var_smtpd_client_connection_count_limit) {
        msg_warn("Connection concurrency limit exceeded: %d from %s for "
                 "service %s", count, state->namaddr, server_service_name());
        over = 1;
    } else if (var_smtpd_client_connection_rate_limit > 0
               && rate > var_smtpd_client_connection_rate_limit) {
        msg_warn("Connection rate limit exceeded: %d from %s for service %s",
                 rate, state->namaddr, server_service_name());
        over = 1;
    }
    /* On the TLS port the client expects TLS: no plaintext 421. */
    if (over && !var_smtpd_tls_wrappermode) {
        smtpd_reply(state, "421 4.7.0 %s Error: too many connections from %s",
                    var_myhostname, state->addr);
        smtpd_flush(state);
    }
done:
    strbuf_free(&err);
    strbuf_free(&ident);
    return over;
}

static void smtpd_serve(SERVER_CLIENT *client, const char *service,
                        char **argv)
{
    SMTPD_STATE state;
    int counted = 0;
    char *name;

    (void) service;
    (void) argv;
    memset(&state, 0, sizeof(state));
    state.client = stream_open(client->fd, var_smtpd_timeout,
                               (size_t) var_line_length_limit);
    stream_set_write_fd(state.client, client->wfd);
    state.port = client->port;
    snprintf(state.local_addr, sizeof(state.local_addr), "%s",
             client->local_addr);
    state.local_port = client->local_port;
    state.protocol = "SMTP";
    state.where = "CONNECT";
    state.reply.text = strbuf_alloc(128);
    state.prepend = argv_alloc(2);
    state.data_buf = strbuf_alloc(8192);
    state.counts = xcalloc(SMTPD_NCMDS + 1, sizeof(SMTPD_COUNT));
    name = server_standalone() ? xstrdup("localhost") : smtpd_peer_name(client);
    smtpd_set_peer(&state, name, client->addr);
    free(name);
    state.xclient_ok = match_list_address(smtpd_xclient_hosts, state.addr)
        == MATCH_YES;
    msg_info("connect from %s", state.namaddr);

    if (!smtpd_client_limits(&state, &counted)) {
        smtpd_sasl_connect(&state);
        if (smtpd_tls_wrapper_start(&state) == 0)
            smtpd_session(&state);
    }

    smtpd_transaction_reset(&state);
    smtpd_log_disconnect(&state);
    smtpd_sasl_disconnect(&state);
    smtpd_tls_disconnect(&state);
    if (state.anvil) {
        STRBUF *err = strbuf_alloc(64);
        STRBUF *ident = strbuf_alloc(64);

        strbuf_printf(ident, "smtp:%s", client->addr);
        if (counted)
            (void) anvil_clnt_disconnect(state.anvil, ident->data, err);
        anvil_clnt_close(&state.anvil);
        strbuf_free(&err);
        strbuf_free(&ident);
    }
    free(state.name);
    free(state.addr);
    free(state.namaddr);
    free(state.helo);
    free(state.counts);
    strbuf_free(&state.sticky);
    strbuf_free(&state.reply.text);
    strbuf_free(&state.data_buf);
    argv_free(&state.prepend);
    stream_free(&state.client);
}

static void smtpd_pre_init(const char *service, char **argv)
{
    (void) service;
    (void) argv;
    smtpd_check_init();
    /* Keys and the SASL plugins: now, as root and before chroot. */
    if (smtpd_tls_pre_init() < 0 || smtpd_sasl_pre_init() < 0)
        smtpd_check_config_broken();
    smtpd_xclient_hosts = match_list_networks("smtpd_authorized_xclient_hosts",
                                              var_smtpd_authorized_xclient_hosts);
    smtpd_limit_exceptions =
        match_list_networks("smtpd_client_event_limit_exceptions",
                            var_smtpd_client_event_limit_exceptions);
}

static void smtpd_post_init(const char *service, char **argv)
{
    (void) service;
    (void) argv;
    smtpd_sasl_post_init();
}

int main(int argc, char **argv)
{
    static const SERVER_OPS ops = {
        .kind = SERVER_SINGLE,
        .pre_init = smtpd_pre_init,
        .post_init = smtpd_post_init,
        .serve = smtpd_serve,
    };

    server_main(argc, argv, &ops);
}
