/*
 * smtpd_sasl - SMTP AUTH (RFC 4954) through Cyrus SASL (lib/sasl).
 *
 * AUTH is offered when smtpd_sasl_auth_enable is set and, with
 * smtpd_tls_auth_only (Postern's default), only once TLS is on; a client
 * that tries earlier gets 538 5.7.11.  A failed attempt is answered
 * after smtpd_sasl_failure_delay, counts as an error of the session, and
 * is counted per client address by anvil: past
 * smtpd_client_auth_failure_limit per anvil_rate_time_unit the client is
 * told 421 and dropped, on any connection, before its next try.
 *
 * Neither the AUTH arguments nor the responses are ever logged; the
 * failure log line is the one fail2ban knows:
 *   warning: host[addr]: SASL LOGIN authentication failed: why,
 *   sasl_username=user
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mail/anvil_clnt.h"
#include "mail/params.h"
#include "smtpd.h"
#include "util/msg.h"
#include "util/xmalloc.h"

static int smtpd_sasl_ready;            /* xsasl_server_init() worked */
static MATCH_LIST *smtpd_sasl_exceptions;
static MATCH_LIST *smtpd_sasl_limit_exceptions;

int smtpd_sasl_pre_init(void)
{
    XSASL_CONF conf;
    STRBUF *why;
    STRBUF *conf_dir;
    const char *db = var_sasl_db_path;
    const char *root = server_chroot();
    unsigned flags;
    int rc = 0;

    if (!var_smtpd_sasl_auth_enable || server_standalone())
        return 0;
    if (strcasecmp(var_smtpd_sasl_type, "cyrus") != 0) {
        msg_error("smtpd_sasl_type: unsupported SASL type \"%s\" (Postern "
                  "has cyrus)", var_smtpd_sasl_type);
        return -1;
    }
    why = strbuf_alloc(128);
    if (xsasl_parse_sec_opts(var_smtpd_sasl_security_options, &flags, why) < 0
        || xsasl_parse_sec_opts(var_smtpd_sasl_tls_security_options, &flags,
                                why) < 0) {
        msg_error("smtpd_sasl_security_options or "
                  "smtpd_sasl_tls_security_options: %s", why->data);
        strbuf_free(&why);
        return -1;
    }
    /* The store is opened by name at each check: from inside the chroot. */
    if (root) {
        size_t len = strlen(root);

        if (strncmp(db, root, len) == 0 && db[len] == '/')
            db += len;
        else
            msg_warn("sasl_db_path %s is outside the chroot %s: "
                     "authentication will fail (copy it in, or set chroot "
                     "to n for this service)", db, root);
    }
    conf_dir = strbuf_alloc(64);
    strbuf_printf(conf_dir, "%s/sasl", var_config_directory);
    memset(&conf, 0, sizeof(conf));
    conf.app_name = var_smtpd_sasl_path;
    conf.db_path = db;
    conf.mech_list = var_sasl_mech_list;
    conf.conf_dir = conf_dir->data;
    if (xsasl_server_init(&conf, why) < 0) {
        /* Mail still flows; AUTH is answered 454 until this is fixed. */
        msg_warn("SASL authentication is not available: %s", why->data);
    } else
        smtpd_sasl_ready = 1;
    smtpd_sasl_exceptions =
        match_list_networks("smtpd_sasl_exceptions_networks",
                            var_smtpd_sasl_exceptions_networks);
    smtpd_sasl_limit_exceptions =
        match_list_networks("smtpd_client_event_limit_exceptions",
                            var_smtpd_client_event_limit_exceptions);
    strbuf_free(&conf_dir);
    strbuf_free(&why);
    return rc;
}

/* As mail_owner: a store we cannot read would fail every login. */
void smtpd_sasl_post_init(void)
{
    STRBUF *why;

    if (!smtpd_sasl_ready)
        return;
    why = strbuf_alloc(64);
    if (xsasl_store_check(why) < 0)
        msg_warn("%s: every AUTH will fail (see sasl_db_path; postern user "
                 "add creates the store readable by mail_owner)", why->data);
    strbuf_free(&why);
}

/* A session per client; reset after STARTTLS. */
void smtpd_sasl_connect(SMTPD_STATE *state)
{
    STRBUF *why;
    STRBUF *local;
    STRBUF *remote;

    if (!smtpd_sasl_ready)
        return;
    why = strbuf_alloc(64);
    local = strbuf_alloc(64);
    remote = strbuf_alloc(64);
    strbuf_printf(local, "%s;%d", state->local_addr, state->local_port);
    strbuf_printf(remote, "%s;%d", state->addr, state->port);
    state->sasl = xsasl_session_new(var_smtpd_sasl_service, var_myhostname,
                                    var_smtpd_sasl_local_domain, local->data,
                                    remote->data,
                                    var_smtpd_sasl_security_options, why);
    if (state->sasl == NULL)
        msg_warn("%s: %s", state->namaddr, why->data);
    strbuf_free(&why);
    strbuf_free(&local);
    strbuf_free(&remote);
}

void smtpd_sasl_disconnect(SMTPD_STATE *state)
{
    xsasl_session_free(&state->sasl);
    xfree(&state->sasl_method);
    xfree(&state->sasl_username);
}

void smtpd_sasl_reset(SMTPD_STATE *state)
{
    smtpd_sasl_disconnect(state);
    smtpd_sasl_connect(state);
}

void smtpd_sasl_tls(SMTPD_STATE *state)
{
    STRBUF *why;
    int bits;

    if (state->sasl == NULL || state->tls == NULL)
        return;
    why = strbuf_alloc(64);
    bits = tls_session_cipher_bits(state->tls, NULL);
    if (xsasl_session_tls(state->sasl, bits, var_smtpd_sasl_tls_security_options,
                          why) < 0) {
        msg_warn("%s: %s", state->namaddr, why->data);
        xsasl_session_free(&state->sasl);
    }
    strbuf_free(&why);
}

/* May this client use AUTH now (over TLS, if that is required)? */
static int smtpd_sasl_allowed(const SMTPD_STATE *state)
{
    return var_smtpd_sasl_auth_enable && !server_standalone()
        && (state->tls || !var_smtpd_tls_auth_only);
}

void smtpd_sasl_ehlo(SMTPD_STATE *state)
{
    const char *mechs;

    if (state->sasl == NULL || !smtpd_sasl_allowed(state)
        || smtpd_tls_required(state)
        || match_list_address(smtpd_sasl_exceptions, state->addr)
        == MATCH_YES)
        return;
    if (*(mechs = xsasl_session_mechs(state->sasl)) == 0)
        return;
    smtpd_reply(state, "250-AUTH %s", mechs);
    if (var_broken_sasl_auth_clients)
        smtpd_reply(state, "250-AUTH=%s", mechs);
}

/* anvil: one more event for "WHAT:SERVICE:ADDR"; its rate, or -1. */
static int smtpd_sasl_anvil(SMTPD_STATE *state, const char *what, int count)
{
    STRBUF *err = strbuf_alloc(64);
    int rate = anvil_clnt_rate(&state->anvil, what, state->addr, count, err);

    if (rate < 0)
        msg_warn("AUTH limits not enforced: anvil: %s", err->data);
    strbuf_free(&err);
    return rate;
}

/* The per-client limits; 1 when AUTH must be refused (reply sent). */
static int smtpd_sasl_limited(SMTPD_STATE *state)
{
    int rate;

    if (match_list_address(smtpd_sasl_limit_exceptions, state->addr)
        == MATCH_YES)
        return 0;
    if (var_smtpd_client_auth_failure_limit > 0
        && (rate = smtpd_sasl_anvil(state, "authfail", 0))
        >= var_smtpd_client_auth_failure_limit) {
        msg_warn("AUTH failure limit exceeded: %d from %s for service %s",
                 rate, state->namaddr, server_service_name());
        smtpd_reply(state, "421 4.7.0 %s Error: too many failed "
                    "authentication attempts from %s", var_myhostname,
                    state->addr);
        state->quit = 1;
        return 1;
    }
    if (var_smtpd_client_auth_rate_limit > 0
        && (rate = smtpd_sasl_anvil(state, "auth", 1))
        > var_smtpd_client_auth_rate_limit) {
        msg_warn("AUTH command rate limit exceeded: %d from %s for service "
                 "%s", rate, state->namaddr, server_service_name());
        smtpd_reply_error(state, "450 4.7.1 Error: too many AUTH commands "
                          "from %s", state->addr);
        return 1;
    }
    return 0;
}

/*
 * Read one response line of an exchange.  NULL when the client is gone
 * or sent an over-long line (the reply is sent).
 */
static const char *smtpd_sasl_response(SMTPD_STATE *state, STRBUF *line)
{
    size_t limit = state->client->line_limit;
    ssize_t n;

    stream_set_line_limit(state->client, (size_t) var_smtpd_sasl_response_limit);
    n = stream_get_line(state->client, line);
    stream_set_line_limit(state->client, limit);
    if (n <= 0) {
        msg_info("%s after AUTH from %s", stream_timed_out(state->client)
                 ? "timeout" : "lost connection", state->namaddr);
        state->quit = 1;
        return NULL;
    }
    if (line->data[line->len - 1] != '\n') {
        smtpd_reply_error(state, "500 5.5.6 Authentication exchange line is "
                          "too long");
        state->quit = 1;                /* the rest would read as commands */
        return NULL;
    }
    strbuf_truncate(line, line->len - 1);
    if (line->len && line->data[line->len - 1] == '\r')
        strbuf_truncate(line, line->len - 1);
    return line->data;
}

static void smtpd_sasl_failed(SMTPD_STATE *state, const char *mech,
                              const char *why)
{
    const char *user = xsasl_attempted_user(state->sasl);

    msg_warn("%s: SASL %s authentication failed: %s%s%s", state->namaddr,
             mech, why, user ? ", sasl_username=" : "", user ? user : "");
    if (var_smtpd_client_auth_failure_limit > 0
        && match_list_address(smtpd_sasl_limit_exceptions, state->addr)
        != MATCH_YES)
        (void) smtpd_sasl_anvil(state, "authfail", 1);
    if (var_smtpd_sasl_failure_delay > 0) {
        smtpd_flush(state);
        sleep((unsigned) var_smtpd_sasl_failure_delay);
    }
    smtpd_reply_error(state, "535 5.7.8 Error: authentication failed: %s",
                      why);
}

int smtpd_cmd_auth(SMTPD_STATE *state, char *args)
{
    STRBUF *line;
    STRBUF *out;
    STRBUF *why;
    char *mech;
    char *init;
    int rc;

    if (!var_smtpd_sasl_auth_enable || server_standalone()) {
        smtpd_reply_error(state, "503 5.5.1 Error: authentication not "
                          "enabled");
        return -1;
    }
    if (smtpd_tls_required(state)) {
        smtpd_reply_error(state, "530 5.7.0 Must issue a STARTTLS command "
                          "first");
        return -1;
    }
    if (!smtpd_sasl_allowed(state)) {
        smtpd_reply_error(state, "538 5.7.11 Encryption required for "
                          "requested authentication mechanism");
        return -1;
    }
    if (state->helo == NULL || !state->esmtp) {
        smtpd_reply_error(state, "503 5.5.1 Error: send EHLO first");
        return -1;
    }
    if (state->sasl_username) {
        smtpd_reply_error(state, "503 5.5.1 Error: already authenticated");
        return -1;
    }
    if (state->sender) {
        smtpd_reply_error(state, "503 5.5.1 Error: MAIL transaction in "
                          "progress");
        return -1;
    }
    mech = args;
    init = mech + strcspn(mech, " ");
    if (*init)
        *init++ = 0;
    init += strspn(init, " ");
    if (*mech == 0 || strchr(init, ' ')) {
        smtpd_reply_error(state, "501 5.5.4 Syntax: AUTH mechanism "
                          "[initial-response]");
        return -1;
    }
    if (state->sasl == NULL) {
        smtpd_reply(state, "454 4.7.0 Temporary authentication failure: "
                    "server configuration problem");
        return -1;
    }
    if (smtpd_sasl_limited(state))
        return -1;

    line = strbuf_alloc(256);
    out = strbuf_alloc(256);
    why = strbuf_alloc(64);
    rc = xsasl_start(state->sasl, mech, *init ? init : NULL, out, why);
    while (rc == XSASL_MORE) {
        const char *response;

        smtpd_reply(state, "334 %s", out->data);
        if (smtpd_flush(state) < 0) {
            msg_info("lost connection after AUTH from %s", state->namaddr);
            state->quit = 1;
            goto done;
        }
        if ((response = smtpd_sasl_response(state, line)) == NULL)
            goto done;
        if (strcmp(response, "*") == 0) {
            smtpd_reply_error(state, "501 5.7.0 Authentication aborted");
            goto done;
        }
        rc = xsasl_step(state->sasl, response, out, why);
    }
    switch (rc) {
    case XSASL_DONE:
        state->sasl_method = xstrdup(xsasl_method(state->sasl));
        for (char *cp = state->sasl_method; *cp; cp++)
            *cp = (char) toupper((unsigned char) *cp);
        state->sasl_username = xstrdup(xsasl_username(state->sasl)
                                       ? xsasl_username(state->sasl) : "");
        smtpd_reply(state, "235 2.7.0 Authentication successful");
        break;
    case XSASL_BADB64:
        smtpd_reply_error(state, "501 5.5.2 Cannot decode response");
        break;
    case XSASL_NOMECH:
        smtpd_reply_error(state, "504 5.5.4 Unrecognized authentication "
                          "type");
        break;
    case XSASL_ENCRYPT:
        /* Already encrypted: the TLS security options exclude it. */
        if (state->tls)
            smtpd_reply_error(state, "504 5.5.4 Unrecognized "
                              "authentication type");
        else
            smtpd_reply_error(state, "538 5.7.11 Encryption required for "
                              "requested authentication mechanism");
        break;
    case XSASL_TEMP:
        msg_warn("%s: SASL %s authentication problem: %s", state->namaddr,
                 mech, why->data);
        smtpd_reply(state, "454 4.7.0 Temporary authentication failure: %s",
                    why->data);
        break;
    default:
        smtpd_sasl_failed(state, mech, why->data);
        break;
    }
done:
    /* The exchange may have carried a password. */
    if (line->size)
        memset(line->data, 0, line->size);
    strbuf_free(&line);
    strbuf_free(&out);
    strbuf_free(&why);
    return state->sasl_username ? 0 : -1;
}
