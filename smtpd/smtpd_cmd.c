/*
 * smtpd_cmd - HELO, EHLO, XCLIENT, MAIL, RCPT, RSET, NOOP, VRFY, HELP,
 * QUIT.  Each handler sends its reply and returns 0 (success) or -1.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/params.h"
#include "mail/queue_file.h"
#include "mail/smtp_addr.h"
#include "smtpd.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

#define SMTPD_ENVID_MAX 100             /* RFC 3461 */

static int smtpd_helo_common(SMTPD_STATE *state, char *args, int esmtp)
{
    if (*args == 0) {
        smtpd_reply_error(state, "501 5.5.4 Syntax: %s hostname",
                          esmtp ? "EHLO" : "HELO");
        return -1;
    }
    /* The name is logged and put in Received: keep it printable. */
    for (unsigned char *cp = (unsigned char *) args; *cp; cp++)
        if (*cp < 0x21 || *cp == 0x7f)
            *cp = '?';
    smtpd_transaction_reset(state);
    free(state->helo);
    state->helo = xstrdup(args);
    state->esmtp = esmtp;
    state->protocol = esmtp ? "ESMTP" : "SMTP";
    if (!var_smtpd_delay_reject
        && smtpd_check_helo(state) == SMTPD_CHECK_REJECT) {
        smtpd_log_reject(state, "reject", NULL, &state->reply);
        smtpd_reply_error(state, "%d %s %s", state->reply.code,
                          state->reply.dsn, state->reply.text->data);
        xfree(&state->helo);
        return -1;
    }
    return 0;
}

int smtpd_cmd_helo(SMTPD_STATE *state, char *args)
{
    if (smtpd_helo_common(state, args, 0) < 0)
        return -1;
    smtpd_reply(state, "250 %s", var_myhostname);
    return 0;
}

int smtpd_cmd_ehlo(SMTPD_STATE *state, char *args)
{
    if (smtpd_helo_common(state, args, 1) < 0)
        return -1;
    /* Only what works is advertised. */
    smtpd_reply(state, "250-%s", var_myhostname);
    smtpd_reply(state, "250-PIPELINING");
    smtpd_reply(state, "250-SIZE %ld", var_message_size_limit);
    if (!var_disable_vrfy_command)
        smtpd_reply(state, "250-VRFY");
    if (smtpd_tls_offer(state))
        smtpd_reply(state, "250-STARTTLS");
    smtpd_sasl_ehlo(state);
    if (state->xclient_ok)
        smtpd_reply(state, "250-XCLIENT NAME ADDR PROTO HELO LOGIN");
    smtpd_reply(state, "250-ENHANCEDSTATUSCODES");
    smtpd_reply(state, "250-8BITMIME");
    smtpd_reply(state, "250-DSN");
    if (var_smtputf8_enable)
        smtpd_reply(state, "250-SMTPUTF8");
    smtpd_reply(state, "250 CHUNKING");
    return 0;
}

/*
 * XCLIENT (Postfix): an authorized client (a proxy, or a test) says who
 * the real client is.  The session starts over with that identity.
 */
int smtpd_cmd_xclient(SMTPD_STATE *state, char *args)
{
    ARGV *attrs;
    STRBUF *value = strbuf_alloc(64);
    char *name = xstrdup(state->name);
    char *addr = xstrdup(state->addr);
    char *helo = NULL;
    char *login = NULL;
    const char *proto = NULL;
    int rc = -1;

    if (!state->xclient_ok) {
        smtpd_reply_error(state, "550 5.7.0 Error: insufficient "
                          "authorization");
        goto done;
    }
    if (state->sender) {
        smtpd_reply_error(state, "503 5.5.1 Error: MAIL transaction in "
                          "progress");
        goto done;
    }
    attrs = argv_split(args, " ");
    for (size_t i = 0; i < attrs->argc; i++) {
        char *eq = strchr(attrs->argv[i], '=');

        if (eq == NULL || xtext_decode(eq + 1, value) < 0) {
            smtpd_reply_error(state, "501 5.5.4 Bad XCLIENT attribute");
            argv_free(&attrs);
            goto done;
        }
        *eq = 0;
        if (strcasecmp(value->data, "[UNAVAILABLE]") == 0
            || strcasecmp(value->data, "[TEMPUNAVAIL]") == 0)
            strbuf_set(value, strcasecmp(attrs->argv[i], "NAME") == 0
                       ? "unknown" : "");
        if (strcasecmp(attrs->argv[i], "ADDR") == 0) {
            const char *a = value->data;
            unsigned char bin[16];

            if (strncasecmp(a, "IPV6:", 5) == 0)
                a += 5;
            if (*a == 0)
                continue;               /* [UNAVAILABLE]: keep the address */
            /* It goes into logs and Received: only a real address will do. */
            if (inet_pton(strchr(a, ':') ? AF_INET6 : AF_INET, a, bin) != 1) {
                smtpd_reply_error(state, "501 5.5.4 Bad XCLIENT ADDR syntax");
                argv_free(&attrs);
                goto done;
            }
            free(addr);
            addr = xstrdup(a);
        } else if (strcasecmp(attrs->argv[i], "NAME") == 0) {
            free(name);
            name = xstrdup(value->len ? value->data : "unknown");
        } else if (strcasecmp(attrs->argv[i], "HELO") == 0) {
            free(helo);
            helo = value->len ? xstrdup(value->data) : NULL;
            for (unsigned char *cp = (unsigned char *) helo; cp && *cp; cp++)
                if (*cp < 0x21 || *cp == 0x7f)
                    *cp = '?';
        } else if (strcasecmp(attrs->argv[i], "PROTO") == 0) {
            proto = strcasecmp(value->data, "ESMTP") == 0 ? "ESMTP" : "SMTP";
        } else if (strcasecmp(attrs->argv[i], "LOGIN") == 0) {
            /* The proxy authenticated the client (Postfix XCLIENT). */
            free(login);
            login = xstrdup(value->data);
            for (unsigned char *cp = (unsigned char *) login; *cp; cp++)
                if (*cp < 0x21 || *cp == 0x7f)
                    *cp = '?';
        } else if (strcasecmp(attrs->argv[i], "PORT") != 0
                   && strcasecmp(attrs->argv[i], "DESTADDR") != 0
                   && strcasecmp(attrs->argv[i], "DESTPORT") != 0) {
            smtpd_reply_error(state, "501 5.5.4 Bad XCLIENT attribute name: "
                              "%s", attrs->argv[i]);
            argv_free(&attrs);
            goto done;
        }
    }
    argv_free(&attrs);
    for (const unsigned char *cp = (const unsigned char *) name; *cp; cp++)
        if (*cp < 0x21 || *cp == 0x7f || *cp == '[' || *cp == ']') {
            smtpd_reply_error(state, "501 5.5.4 Bad XCLIENT NAME");
            goto done;
        }
    smtpd_set_peer(state, name, addr);
    free(state->helo);
    state->helo = helo;
    helo = NULL;
    state->esmtp = 0;
    if (proto)
        state->protocol = proto;
    if (login) {
        xfree(&state->sasl_method);
        xfree(&state->sasl_username);
        if (*login) {
            state->sasl_method = xstrdup("XCLIENT");
            state->sasl_username = login;
            login = NULL;
        }
    }
    smtpd_reply(state, "220 %s", var_smtpd_banner);
    rc = 0;
done:
    free(name);
    free(addr);
    free(helo);
    free(login);
    strbuf_free(&value);
    return rc;
}

/* RFC 3461 ENVID and ORCPT: printable US-ASCII only. */
static int smtpd_printable(const char *text)
{
    for (const unsigned char *cp = (const unsigned char *) text; *cp; cp++)
        if (*cp < 0x20 || *cp > 0x7e)
            return 0;
    return 1;
}

/* Is this address acceptable as 8-bit? (SMTPUTF8 declared) */
static int smtpd_utf8_ok(SMTPD_STATE *state, const char *addr)
{
    if (!smtp_addr_8bit(addr) || state->smtputf8)
        return 1;
    smtpd_reply_error(state, "553 5.6.7 Must declare SMTPUTF8 to send "
                      "unicode address");
    return 0;
}

int smtpd_cmd_mail(SMTPD_STATE *state, char *args)
{
    STRBUF *addr = strbuf_alloc(128);
    STRBUF *tmp = strbuf_alloc(64);
    ARGV *params = argv_alloc(4);
    const char *why;
    int rc = -1;

    if (smtpd_tls_required(state)) {
        smtpd_reply_error(state, "530 5.7.0 Must issue a STARTTLS command "
                          "first");
        goto done;
    }
    if (state->helo == NULL && var_smtpd_helo_required) {
        smtpd_reply_error(state, "503 5.5.1 Error: send HELO/EHLO first");
        goto done;
    }
    if (state->sender) {
        smtpd_reply_error(state, "503 5.5.1 Error: nested MAIL command");
        goto done;
    }
    if (smtp_addr_parse(args, "FROM", var_strict_rfc821_envelopes, addr,
                        params, &why) < 0) {
        if (strcmp(why, "missing keyword") == 0 || *args == 0)
            smtpd_reply_error(state, "501 5.5.4 Syntax: MAIL FROM:<address>");
        else
            smtpd_reply_error(state, "501 5.1.7 Bad sender address syntax");
        goto done;
    }
    for (size_t i = 0; i < params->argc; i++) {
        char *p = params->argv[i];
        char *eq = strchr(p, '=');
        const char *value = eq ? eq + 1 : "";
        long n;

        if (eq)
            *eq = 0;
        if (!state->esmtp) {
            smtpd_reply_error(state, "555 5.5.4 Unsupported option: %s", p);
            goto done;
        }
        if (strcasecmp(p, "SIZE") == 0) {
            if (str_to_long(value, 0, 0x7fffffffffffffffL, &n) < 0) {
                smtpd_reply_error(state, "501 5.5.4 Bad message size "
                                  "syntax");
                goto done;
            }
            state->declared_size = n;
        } else if (strcasecmp(p, "BODY") == 0) {
            if (strcasecmp(value, "7BIT") != 0
                && strcasecmp(value, "8BITMIME") != 0) {
                smtpd_reply_error(state, "501 5.5.4 Unsupported BODY "
                                  "parameter");
                goto done;
            }
        } else if (strcasecmp(p, "SMTPUTF8") == 0 && !eq
                   && var_smtputf8_enable) {
            state->smtputf8 = 1;
        } else if (strcasecmp(p, "RET") == 0) {
            if (strcasecmp(value, "FULL") != 0
                && strcasecmp(value, "HDRS") != 0) {
                smtpd_reply_error(state, "501 5.5.4 Bad RET parameter "
                                  "syntax");
                goto done;
            }
            free(state->dsn_ret);
            state->dsn_ret = xstrdup(strcasecmp(value, "FULL") == 0
                                     ? "full" : "hdrs");
        } else if (strcasecmp(p, "ENVID") == 0) {
            if (xtext_decode(value, tmp) < 0 || tmp->len == 0
                || tmp->len > SMTPD_ENVID_MAX || !smtpd_printable(tmp->data)) {
                smtpd_reply_error(state, "501 5.5.4 Bad ENVID parameter "
                                  "syntax");
                goto done;
            }
            free(state->dsn_envid);
            state->dsn_envid = xstrdup(tmp->data);
        } else if (strcasecmp(p, "AUTH") == 0 && var_smtpd_sasl_auth_enable) {
            /* RFC 4954 5: the original submitter; checked, not trusted. */
            if (xtext_decode(value, tmp) < 0) {
                smtpd_reply_error(state, "501 5.5.4 Bad AUTH parameter "
                                  "syntax");
                goto done;
            }
        } else {
            smtpd_reply_error(state, "555 5.5.4 Unsupported option: %s", p);
            goto done;
        }
    }
    if (!smtpd_utf8_ok(state, addr->data))
        goto done;
    if (var_message_size_limit > 0
        && state->declared_size > var_message_size_limit) {
        state->reply.code = 552;
        strcpy(state->reply.dsn, "5.3.4");     /* fits */
        strbuf_set(state->reply.text, "Message size exceeds fixed limit");
        state->sender = addr->data;     /* for the log line only */
        smtpd_log_reject(state, "reject", NULL, &state->reply);
        state->sender = NULL;
        smtpd_reply_error(state, "552 5.3.4 Message size exceeds fixed "
                          "limit");
        goto done;
    }
    state->sender = xstrdup(addr->data);
    if (!var_smtpd_delay_reject
        && smtpd_check_mail(state) == SMTPD_CHECK_REJECT) {
        smtpd_log_reject(state, "reject", NULL, &state->reply);
        smtpd_reply_error(state, "%d %s %s", state->reply.code,
                          state->reply.dsn, state->reply.text->data);
        smtpd_transaction_reset(state);
        goto done;
    }
    smtpd_reply(state, "250 2.1.0 Ok");
    rc = 0;
done:
    if (rc < 0 && state->sender == NULL) {
        /* A refused MAIL leaves no half transaction behind. */
        xfree(&state->dsn_envid);
        xfree(&state->dsn_ret);
        state->smtputf8 = 0;
        state->declared_size = 0;
    }
    strbuf_free(&addr);
    strbuf_free(&tmp);
    argv_free(&params);
    return rc;
}

/* NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY; -1 if malformed. */
static int smtpd_parse_notify(const char *value)
{
    ARGV *words = argv_split(value, ",");
    int bits = 0;

    for (size_t i = 0; i < words->argc && bits >= 0; i++) {
        const char *w = words->argv[i];

        if (strcasecmp(w, "NEVER") == 0 && words->argc == 1)
            bits = DSN_NOTIFY_NEVER;
        else if (strcasecmp(w, "SUCCESS") == 0)
            bits |= DSN_NOTIFY_SUCCESS;
        else if (strcasecmp(w, "FAILURE") == 0)
            bits |= DSN_NOTIFY_FAILURE;
        else if (strcasecmp(w, "DELAY") == 0)
            bits |= DSN_NOTIFY_DELAY;
        else
            bits = -1;
    }
    if (words->argc == 0)
        bits = -1;
    argv_free(&words);
    return bits;
}

int smtpd_cmd_rcpt(SMTPD_STATE *state, char *args)
{
    STRBUF *addr = strbuf_alloc(128);
    STRBUF *orcpt = strbuf_alloc(128);
    STRBUF *tmp = strbuf_alloc(64);
    ARGV *params = argv_alloc(4);
    const char *why;
    int notify = 0;
    int rc = -1;

    if (state->sender == NULL) {
        smtpd_reply_error(state, "503 5.5.1 Error: need MAIL command");
        goto done;
    }
    if (state->bdat_active) {
        smtpd_reply_error(state, "503 5.5.1 Error: RCPT after BDAT");
        goto done;
    }
    if (smtp_addr_parse(args, "TO", var_strict_rfc821_envelopes, addr,
                        params, &why) < 0) {
        if (strcmp(why, "missing keyword") == 0 || *args == 0)
            smtpd_reply_error(state, "501 5.5.4 Syntax: RCPT TO:<address>");
        else
            smtpd_reply_error(state, "501 5.1.3 Bad recipient address "
                              "syntax");
        goto done;
    }
    if (addr->len == 0) {
        smtpd_reply_error(state, "501 5.1.3 Bad recipient address syntax");
        goto done;
    }
    for (size_t i = 0; i < params->argc; i++) {
        char *p = params->argv[i];
        char *eq = strchr(p, '=');
        const char *value = eq ? eq + 1 : "";

        if (eq)
            *eq = 0;
        if (state->esmtp && strcasecmp(p, "NOTIFY") == 0) {
            if ((notify = smtpd_parse_notify(value)) < 0) {
                smtpd_reply_error(state, "501 5.5.4 Error: Bad NOTIFY "
                                  "parameter syntax");
                goto done;
            }
        } else if (state->esmtp && strcasecmp(p, "ORCPT") == 0) {
            const char *semi = strchr(value, ';');

            if (semi == NULL || semi == value || xtext_decode(semi + 1, tmp)
                < 0 || tmp->len == 0 || tmp->len > SMTP_ADDR_MAX
                || strpbrk(tmp->data, "\r\n") != NULL) {
                smtpd_reply_error(state, "501 5.5.4 Error: Bad ORCPT "
                                  "parameter syntax");
                goto done;
            }
            strbuf_printf(orcpt, "%.*s;%s", (int) (semi - value), value,
                          tmp->data);
        } else {
            smtpd_reply_error(state, "555 5.5.4 Unsupported option: %s", p);
            goto done;
        }
    }
    if (!smtpd_utf8_ok(state, addr->data))
        goto done;
    if (state->rcpt_count >= var_smtpd_recipient_limit) {
        state->reply.code = 452;
        strcpy(state->reply.dsn, "4.5.3");     /* fits */
        strbuf_set(state->reply.text, "Error: too many recipients");
        smtpd_log_reject(state, "reject", addr->data, &state->reply);
        smtpd_reply(state, "452 4.5.3 Error: too many recipients");
        goto done;
    }
    free(state->last_rcpt);
    state->last_rcpt = xstrdup(addr->data);
    if (smtpd_check_rcpt(state, addr->data) == SMTPD_CHECK_REJECT) {
        smtpd_log_reject(state, "reject", addr->data, &state->reply);
        smtpd_reply_error(state, "%d %s %s", state->reply.code,
                          state->reply.dsn, state->reply.text->data);
        if (state->reply.disconnect)
            state->quit = 1;
        goto done;
    }
    if (smtpd_cleanup_rcpt(state, addr->data, orcpt->len ? orcpt->data : NULL,
                           notify) < 0) {
        smtpd_reply_error(state, "451 4.3.0 Error: queue file write error");
        goto done;
    }
    state->rcpt_count++;
    smtpd_reply(state, "250 2.1.5 Ok");
    rc = 0;
done:
    strbuf_free(&addr);
    strbuf_free(&orcpt);
    strbuf_free(&tmp);
    argv_free(&params);
    return rc;
}

int smtpd_cmd_rset(SMTPD_STATE *state, char *args)
{
    if (*args) {
        smtpd_reply_error(state, "501 5.5.4 Syntax: RSET");
        return -1;
    }
    smtpd_transaction_reset(state);
    smtpd_reply(state, "250 2.0.0 Ok");
    return 0;
}

int smtpd_cmd_noop(SMTPD_STATE *state, char *args)
{
    (void) args;
    smtpd_reply(state, "250 2.0.0 Ok");
    return 0;
}

int smtpd_cmd_quit(SMTPD_STATE *state, char *args)
{
    (void) args;
    smtpd_reply(state, "221 2.0.0 Bye");
    state->quit = 1;
    return 0;
}

int smtpd_cmd_help(SMTPD_STATE *state, char *args)
{
    (void) args;
    smtpd_reply(state, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT "
                "RSET NOOP QUIT%s", var_disable_vrfy_command ? "" : " VRFY");
    return 0;
}

int smtpd_cmd_vrfy(SMTPD_STATE *state, char *args)
{
    STRBUF *addr = strbuf_alloc(128);
    ARGV *params = argv_alloc(1);
    STRBUF *line = strbuf_alloc(128);
    const char *why;
    int rc = -1;

    if (var_disable_vrfy_command) {
        smtpd_reply_error(state, "502 5.5.1 VRFY command is disabled");
        goto done;
    }
    if (smtpd_tls_required(state)) {
        smtpd_reply_error(state, "530 5.7.0 Must issue a STARTTLS command "
                          "first");
        goto done;
    }
    strbuf_printf(line, "TO:%s", args);
    if (*args == 0 || smtp_addr_parse(line->data, "TO", 0, addr, params,
                                      &why) < 0 || addr->len == 0) {
        smtpd_reply_error(state, "501 5.5.4 Syntax: VRFY address");
        goto done;
    }
    if (smtpd_check_unlisted(state, addr->data) == SMTPD_CHECK_REJECT) {
        smtpd_reply_error(state, "%d %s %s", state->reply.code,
                          state->reply.dsn, state->reply.text->data);
        goto done;
    }
    /* RFC 5321: 252, cannot verify but will accept. */
    smtpd_reply(state, "252 2.0.0 %s", addr->data);
    rc = 0;
done:
    strbuf_free(&addr);
    strbuf_free(&line);
    argv_free(&params);
    return rc;
}
