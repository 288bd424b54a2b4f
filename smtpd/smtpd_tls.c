/*
 * smtpd_tls - STARTTLS (RFC 3207) and implicit TLS (RFC 8314) in smtpd.
 *
 * The TLS context is built in pre_init, as root and before chroot, from
 * the smtpd_tls_* parameters; the opportunistic or the mandatory
 * protocols and ciphers apply as the security level (or wrapper mode)
 * says.  A context that cannot be built (no certificate, a bad protocol
 * list) is logged once per process naming the cause, STARTTLS is not
 * offered, and with level encrypt the clients get 454 and 530 instead of
 * plaintext mail: never a silent downgrade.
 *
 * After the handshake, everything the client said before it is
 * forgotten (RFC 3207 4.2): the pipelined input is thrown away by the
 * TLS layer, the EHLO name and any authentication are dropped, and the
 * client must send EHLO again.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/params.h"
#include "smtpd.h"
#include "util/msg.h"
#include "util/xmalloc.h"

#define SMTPD_TLS_NONE      0
#define SMTPD_TLS_MAY       1
#define SMTPD_TLS_ENCRYPT   2

static int smtpd_tls_level;
static TLS_SERVER *smtpd_tls_server;

/* Parse smtpd_tls_security_level; -1 for a value smtpd cannot honour. */
static int smtpd_tls_parse_level(const char *value)
{
    if (*value == 0 || strcasecmp(value, "none") == 0)
        return SMTPD_TLS_NONE;
    if (strcasecmp(value, "may") == 0)
        return SMTPD_TLS_MAY;
    if (strcasecmp(value, "encrypt") == 0)
        return SMTPD_TLS_ENCRYPT;
    return -1;
}

int smtpd_tls_pre_init(void)
{
    TLS_SERVER_CONF conf;
    STRBUF *why;
    STRBUF *exclude;
    int mandatory;

    if ((smtpd_tls_level = smtpd_tls_parse_level(var_smtpd_tls_security_level))
        < 0) {
        msg_error("smtpd_tls_security_level: unknown level \"%s\" (use none, "
                  "may or encrypt)", var_smtpd_tls_security_level);
        return -1;
    }
    /* sendmail -bs runs as the user, who may not read the keys. */
    if ((smtpd_tls_level == SMTPD_TLS_NONE && !var_smtpd_tls_wrappermode)
        || server_standalone())
        return 0;
    mandatory = smtpd_tls_level == SMTPD_TLS_ENCRYPT
        || var_smtpd_tls_wrappermode;
    why = strbuf_alloc(128);
    exclude = strbuf_alloc(64);
    strbuf_printf(exclude, "%s %s", var_smtpd_tls_exclude_ciphers,
                  mandatory ? var_smtpd_tls_mandatory_exclude_ciphers : "");
    memset(&conf, 0, sizeof(conf));
    conf.origin = "smtpd";
    conf.cert_file = var_smtpd_tls_cert_file;
    conf.key_file = var_smtpd_tls_key_file;
    conf.eccert_file = var_smtpd_tls_eccert_file;
    conf.eckey_file = var_smtpd_tls_eckey_file;
    conf.chain_files = var_smtpd_tls_chain_files;
    conf.protocols = mandatory ? var_smtpd_tls_mandatory_protocols
        : var_smtpd_tls_protocols;
    conf.cipher_grade = mandatory ? var_smtpd_tls_mandatory_ciphers
        : var_smtpd_tls_ciphers;
    conf.high_cipherlist = var_tls_high_cipherlist;
    conf.medium_cipherlist = var_tls_medium_cipherlist;
    conf.exclude_ciphers = exclude->data;
    conf.groups = var_tls_eecdh_auto_curves;
    conf.preempt_cipherlist = var_tls_preempt_cipherlist;
    conf.ticket_secret_file = var_smtpd_tls_session_cache_timeout > 0
        ? var_tls_session_ticket_key_file : "";
    conf.session_timeout = var_smtpd_tls_session_cache_timeout;
    conf.loglevel = var_smtpd_tls_loglevel;
    if ((smtpd_tls_server = tls_server_create(&conf, why)) == NULL)
        msg_warn("TLS is not available: %s (see smtpd_tls_cert_file, "
                 "smtpd_tls_key_file, smtpd_tls_chain_files, "
                 "smtpd_tls_%sprotocols, smtpd_tls_%sciphers)", why->data,
                 mandatory ? "mandatory_" : "", mandatory ? "mandatory_" : "");
    strbuf_free(&why);
    strbuf_free(&exclude);
    return 0;
}

int smtpd_tls_offer(const SMTPD_STATE *state)
{
    return smtpd_tls_server != NULL && state->tls == NULL
        && !var_smtpd_tls_wrappermode && !server_standalone();
}

int smtpd_tls_required(const SMTPD_STATE *state)
{
    return smtpd_tls_level == SMTPD_TLS_ENCRYPT && state->tls == NULL
        && !server_standalone();
}

/* The handshake, on the stream as it is; 0 or -1 (the client is gone). */
static int smtpd_tls_handshake(SMTPD_STATE *state, const char *after)
{
    STRBUF *why = strbuf_alloc(128);
    STRBUF *info = strbuf_alloc(128);

    state->tls = tls_server_start(smtpd_tls_server, state->client,
                                  var_smtpd_starttls_timeout, why);
    if (state->tls == NULL) {
        msg_info("SSL_accept error from %s: %s", state->namaddr, why->data);
        msg_info("lost connection after %s from %s", after, state->namaddr);
        strbuf_free(&why);
        strbuf_free(&info);
        return -1;
    }
    tls_session_describe(state->tls, info);
    free(state->tls_info);
    state->tls_info = strbuf_export(&info);
    if (var_smtpd_tls_loglevel >= 1)
        msg_info("Anonymous TLS connection established from %s: %s%s",
                 state->namaddr, state->tls_info,
                 tls_session_reused(state->tls) ? " (session reused)" : "");
    strbuf_free(&why);
    return 0;
}

int smtpd_tls_wrapper_start(SMTPD_STATE *state)
{
    if (!var_smtpd_tls_wrappermode || server_standalone())
        return 0;
    if (smtpd_tls_server == NULL) {
        /* No plaintext fallback on a TLS port: the client expects TLS. */
        msg_warn("%s: TLS wrapper mode, but TLS is not available: "
                 "disconnecting", state->namaddr);
        return -1;
    }
    if (smtpd_tls_handshake(state, "CONNECT") < 0)
        return -1;
    smtpd_sasl_tls(state);
    return 0;
}

int smtpd_cmd_starttls(SMTPD_STATE *state, char *args)
{
    if (*args) {
        smtpd_reply_error(state, "501 5.5.4 Syntax: STARTTLS");
        return -1;
    }
    if (state->tls) {
        smtpd_reply_error(state, "554 5.5.1 Error: TLS already active");
        return -1;
    }
    if (smtpd_tls_level == SMTPD_TLS_NONE || var_smtpd_tls_wrappermode
        || server_standalone()) {
        smtpd_reply_error(state, "502 5.5.1 Error: command not implemented");
        return -1;
    }
    if (smtpd_tls_server == NULL) {
        smtpd_reply_error(state, "454 4.7.0 TLS not available due to local "
                          "problem");
        return -1;
    }
    if (state->sender) {
        smtpd_reply_error(state, "503 5.5.1 Error: MAIL transaction in "
                          "progress");
        return -1;
    }
    smtpd_reply(state, "220 2.0.0 Ready to start TLS");
    if (smtpd_flush(state) < 0) {
        msg_info("lost connection after STARTTLS from %s", state->namaddr);
        state->quit = 1;
        return -1;
    }
    if (stream_pending(state->client) > 0)
        msg_info("discarding %zu bytes sent ahead of the TLS handshake by %s",
                 stream_pending(state->client), state->namaddr);
    if (smtpd_tls_handshake(state, "STARTTLS") < 0) {
        state->quit = 1;
        return -1;
    }
    /* RFC 3207 4.2: start over, knowing only what TLS told us. */
    smtpd_transaction_reset(state);
    xfree(&state->helo);
    state->esmtp = 0;
    state->protocol = "SMTP";
    smtpd_sasl_reset(state);
    smtpd_sasl_tls(state);
    return 0;
}

/* "(using TLSv1.3 with cipher ... )" for the Received: header. */
void smtpd_tls_received(const SMTPD_STATE *state, STRBUF *hdr)
{
    const char *kx;

    if (state->tls == NULL || !var_smtpd_tls_received_header)
        return;
    /* Fold before key-exchange, as Postfix does. */
    if ((kx = strstr(state->tls_info, " key-exchange ")) != NULL)
        strbuf_printf_append(hdr, "\n\t(using %.*s\n\t %s)",
                             (int) (kx - state->tls_info), state->tls_info,
                             kx + 1);
    else
        strbuf_printf_append(hdr, "\n\t(using %s)", state->tls_info);
    strbuf_cat(hdr, "\n\t(No client certificate requested)");
}

void smtpd_tls_disconnect(SMTPD_STATE *state)
{
    tls_session_free(&state->tls, state->client);
    xfree(&state->tls_info);
}
