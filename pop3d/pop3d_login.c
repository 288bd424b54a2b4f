/*
 * pop3d_login - the AUTHORIZATION state, in the login process (mail_owner,
 * no mailbox access): CAPA, STLS, USER/PASS, AUTH (RFC 5034), QUIT.
 *
 * Before TLS, logging in (USER/PASS, AUTH) is refused unless
 * pop3d_tls_auth_only = no, or the client connects from the server's own
 * address.  Replies follow Dovecot's wording, with RFC 2449/3206 response codes:
 * [AUTH] for bad credentials or a login refused before TLS, [SYS/TEMP]
 * when the password store fails.  After pop3d_auth_failure_limit failed
 * logins the client is disconnected; each failure is answered only after
 * pop3d_auth_failure_delay.  After pop3d_error_limit invalid commands,
 * too.  Nothing here logs a password or an AUTH response.
 */
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mail/anvil_clnt.h"
#include "mail/match_list.h"
#include "mail/params.h"
#include "pop3d.h"
#include "sasl/xsasl.h"
#include "tls/tls.h"
#include "util/msg.h"
#include "util/xmalloc.h"

#define POP3D_TLS_NONE      0
#define POP3D_TLS_MAY       1
#define POP3D_TLS_ENCRYPT   2

static int pop3d_tls_level;
static TLS_SERVER *pop3d_tls_server;
static int pop3d_sasl_ready;
static MATCH_LIST *pop3d_limit_exceptions;
static TLS_SESS *pop3d_tls_sess;        /* the session's, for the logout */

typedef struct POP3D_LOGIN {
    SERVER_CLIENT *client;
    STREAM *s;
    TLS_SESS *tls;
    XSASL_SESS *sasl;
    char   *user;                       /* from USER */
    int     auth_failures;
    int     errors;
    ANVIL_CLNT *anvil;                  /* failed logins per client */
    STRBUF *line;
} POP3D_LOGIN;

/* --- set-up, as root -------------------------------------------------- */

static int pop3d_tls_pre_init(void)
{
    TLS_SERVER_CONF conf;
    STRBUF *why;

    if (strcasecmp(var_pop3d_tls_security_level, "none") == 0)
        pop3d_tls_level = POP3D_TLS_NONE;
    else if (strcasecmp(var_pop3d_tls_security_level, "may") == 0)
        pop3d_tls_level = POP3D_TLS_MAY;
    else if (strcasecmp(var_pop3d_tls_security_level, "encrypt") == 0)
        pop3d_tls_level = POP3D_TLS_ENCRYPT;
    else {
        msg_error("pop3d_tls_security_level: unknown level \"%s\" (use "
                  "none, may or encrypt)", var_pop3d_tls_security_level);
        return -1;
    }
    if (pop3d_tls_level == POP3D_TLS_NONE && !var_pop3d_tls_wrappermode)
        return 0;
    /* Mail clients: the mandatory (modern) protocols and ciphers. */
    memset(&conf, 0, sizeof(conf));
    conf.origin = "pop3d";
    conf.cert_file = var_pop3d_tls_cert_file;
    conf.key_file = var_pop3d_tls_key_file;
    conf.eccert_file = var_pop3d_tls_eccert_file;
    conf.eckey_file = var_pop3d_tls_eckey_file;
    conf.chain_files = var_pop3d_tls_chain_files;
    conf.protocols = var_smtpd_tls_mandatory_protocols;
    conf.cipher_grade = var_smtpd_tls_mandatory_ciphers;
    conf.high_cipherlist = var_tls_high_cipherlist;
    conf.medium_cipherlist = var_tls_medium_cipherlist;
    conf.exclude_ciphers = var_smtpd_tls_mandatory_exclude_ciphers;
    conf.groups = var_tls_eecdh_auto_curves;
    conf.preempt_cipherlist = var_tls_preempt_cipherlist;
    conf.ticket_secret_file = var_smtpd_tls_session_cache_timeout > 0
        ? var_tls_session_ticket_key_file : "";
    conf.session_timeout = var_smtpd_tls_session_cache_timeout;
    conf.loglevel = 1;
    why = strbuf_alloc(128);
    if ((pop3d_tls_server = tls_server_create(&conf, why)) == NULL)
        msg_warn("TLS is not available: %s (see pop3d_tls_cert_file, "
                 "pop3d_tls_key_file, pop3d_tls_chain_files)", why->data);
    strbuf_free(&why);
    return 0;
}

int pop3d_login_pre_init(void)
{
    XSASL_CONF conf;
    STRBUF *why = strbuf_alloc(128);
    STRBUF *conf_dir = strbuf_alloc(64);
    unsigned flags;
    int rc = 0;

    if (pop3d_tls_pre_init() < 0)
        rc = -1;
    pop3d_limit_exceptions =
        match_list_networks("smtpd_client_event_limit_exceptions",
                            var_smtpd_client_event_limit_exceptions);
    if (xsasl_parse_sec_opts(var_pop3d_sasl_security_options, &flags, why) < 0
        || xsasl_parse_sec_opts(var_pop3d_sasl_tls_security_options, &flags,
                                why) < 0) {
        msg_error("pop3d_sasl_security_options or "
                  "pop3d_sasl_tls_security_options: %s", why->data);
        rc = -1;
    }
    strbuf_printf(conf_dir, "%s/sasl", var_config_directory);
    memset(&conf, 0, sizeof(conf));
    conf.app_name = "pop3d";
    conf.db_path = var_sasl_db_path;
    conf.mech_list = var_sasl_mech_list;
    conf.conf_dir = conf_dir->data;
    if (rc == 0) {
        if (xsasl_server_init(&conf, why) < 0)
            /* Logins fail with [SYS/TEMP] until this is fixed. */
            msg_warn("SASL authentication is not available: %s", why->data);
        else
            pop3d_sasl_ready = 1;
    }
    strbuf_free(&why);
    strbuf_free(&conf_dir);
    return rc;
}

/* --- replies ---------------------------------------------------------- */

static void pop3d_reply(POP3D_LOGIN *st, const char *text)
{
    stream_puts(st->s, text);
    stream_puts(st->s, "\r\n");
    /* Pipelining (RFC 2449 6.6): flush when no command waits. */
    if (stream_pending(st->s) == 0)
        (void) stream_flush(st->s);
}

/* An invalid command: -ERR, and 0 when the client must go. */
static int pop3d_error(POP3D_LOGIN *st, const char *text)
{
    pop3d_reply(st, text);
    if (++st->errors >= var_pop3d_error_limit) {
        pop3d_reply(st, "-ERR Too many invalid commands.");
        msg_info("disconnect from %s: too many invalid commands",
                 st->client->addr);
        return 0;
    }
    return 1;
}

/*
 * May the client log in now?  Over TLS, or from the server's own address
 * (nobody else sees that traffic; Dovecot counts it as secured, too), or
 * when pop3d_tls_auth_only = no and TLS is not required.
 */
static int pop3d_plaintext_ok(const POP3D_LOGIN *st)
{
    return st->tls != NULL
        || strcmp(st->client->addr, st->client->local_addr) == 0
        || (!var_pop3d_tls_auth_only && pop3d_tls_level != POP3D_TLS_ENCRYPT);
}

/* --- SASL ------------------------------------------------------------- */

static void pop3d_sasl_new(POP3D_LOGIN *st)
{
    STRBUF *why = strbuf_alloc(64);
    STRBUF *local = strbuf_alloc(64);
    STRBUF *remote = strbuf_alloc(64);

    xsasl_session_free(&st->sasl);
    if (!pop3d_sasl_ready)
        goto done;
    strbuf_printf(local, "%s;%d", st->client->local_addr,
                  st->client->local_port);
    strbuf_printf(remote, "%s;%d", st->client->addr, st->client->port);
    st->sasl = xsasl_session_new("pop", var_myhostname, "", local->data,
                                 remote->data,
                                 var_pop3d_sasl_security_options, why);
    if (st->sasl == NULL)
        msg_warn("%s: %s", st->client->addr, why->data);
    else if (st->tls) {
        int alg_bits;
        int bits = tls_session_cipher_bits(st->tls, &alg_bits);

        if (xsasl_session_tls(st->sasl, bits,
                              var_pop3d_sasl_tls_security_options, why) < 0) {
            msg_warn("%s: %s", st->client->addr, why->data);
            xsasl_session_free(&st->sasl);
        }
    }
done:
    strbuf_free(&why);
    strbuf_free(&local);
    strbuf_free(&remote);
}

/* The SASL mechanisms to offer now ("" for none). */
static const char *pop3d_mechs(POP3D_LOGIN *st)
{
    if (st->sasl == NULL || !pop3d_plaintext_ok(st))
        return "";
    return xsasl_session_mechs(st->sasl);
}

static void pop3d_log_login(POP3D_LOGIN *st, const char *user,
                            const char *method)
{
    msg_info("login: user=<%s>, method=%s, rip=%s, lip=%s%s", user, method,
             st->client->addr, st->client->local_addr,
             st->tls ? ", TLS" : "");
}

/* Is the client exempt from the per-address failure limit? */
static int pop3d_limit_exempt(const POP3D_LOGIN *st)
{
    return var_pop3d_client_auth_failure_limit == 0
        || match_list_address(pop3d_limit_exceptions, st->client->addr)
        == MATCH_YES;
}

/*
 * The failed logins of the client's address (anvil, all sessions and
 * processes): 1 when it must wait, with the reply sent.
 */
static int pop3d_login_delayed(POP3D_LOGIN *st)
{
    STRBUF *err;
    int rate;

    if (pop3d_limit_exempt(st))
        return 0;
    err = strbuf_alloc(64);
    rate = anvil_clnt_rate(&st->anvil, "authfail", st->client->addr, 0, err);
    if (rate < 0)
        msg_warn("login failure limit not enforced: anvil: %s", err->data);
    strbuf_free(&err);
    if (rate < var_pop3d_client_auth_failure_limit)
        return 0;
    msg_warn("login failure limit exceeded: %d from %s for service %s", rate,
             st->client->addr, server_service_name());
    pop3d_reply(st, "-ERR [LOGIN-DELAY] Too many failed logins from your "
                "address; try again later.");
    return 1;
}

/* A failed login: log, wait, answer; 0 when the client must go. */
static int pop3d_auth_failed(POP3D_LOGIN *st, const char *user,
                             const char *method, int temporary,
                             const char *why)
{
    msg_warn("%s: %s authentication failed: user=<%s>%s%s", st->client->addr,
             method, user ? user : "", why && *why ? ", reason: " : "",
             why ? why : "");
    if (temporary) {
        pop3d_reply(st, "-ERR [SYS/TEMP] Temporary authentication failure.");
        return 1;
    }
    if (!pop3d_limit_exempt(st)) {
        STRBUF *err = strbuf_alloc(64);

        if (anvil_clnt_rate(&st->anvil, "authfail", st->client->addr, 1,
                            err) < 0)
            msg_warn("login failure limit not enforced: anvil: %s",
                     err->data);
        strbuf_free(&err);
    }
    (void) stream_flush(st->s);
    if (var_pop3d_auth_failure_delay > 0)
        sleep((unsigned) var_pop3d_auth_failure_delay);
    if (++st->auth_failures >= var_pop3d_auth_failure_limit) {
        pop3d_reply(st, "-ERR [AUTH] Authentication failed. Too many "
                    "failures, disconnecting.");
        return 0;
    }
    pop3d_reply(st, "-ERR [AUTH] Authentication failed.");
    return 1;
}

/*
 * AUTH mechanism [initial-response] (RFC 5034): 1 logged in (user set),
 * 0 the client must go, -1 go on.
 */
static int pop3d_auth(POP3D_LOGIN *st, char *args, STRBUF *user)
{
    STRBUF *out = strbuf_alloc(128);
    STRBUF *why = strbuf_alloc(128);
    char *mech = args;
    char *init = NULL;
    int rc;
    int result = -1;

    if ((init = strchr(args, ' ')) != NULL) {
        *init++ = 0;
        while (*init == ' ')
            init++;
        if (*init == 0)
            init = NULL;
    }
    if (*mech == 0) {
        /* The list of mechanisms (a common extension, Dovecot has it). */
        const char *mechs = pop3d_mechs(st);

        stream_puts(st->s, "+OK\r\n");
        for (const char *cp = mechs; *cp;) {
            size_t len = strcspn(cp, " ");

            stream_write(st->s, cp, len);
            stream_puts(st->s, "\r\n");
            cp += len;
            cp += strspn(cp, " ");
        }
        pop3d_reply(st, ".");
        goto done;
    }
    if (st->sasl == NULL) {
        pop3d_reply(st, pop3d_sasl_ready ? "-ERR [SYS/TEMP] Authentication "
                    "is not available." : "-ERR [SYS/TEMP] Temporary "
                    "authentication failure.");
        goto done;
    }
    if (!pop3d_plaintext_ok(st)) {
        pop3d_reply(st, "-ERR [AUTH] Plaintext authentication disallowed on "
                    "non-secure (SSL/TLS) connections.");
        goto done;
    }
    rc = xsasl_start(st->sasl, mech, init, out, why);
    while (rc == XSASL_MORE) {
        STRBUF *resp = strbuf_alloc(128);
        int got;

        stream_printf(st->s, "+ %s\r\n", out->data);
        (void) stream_flush(st->s);
        got = pop3d_get_command(st->s, resp);
        if (got == 0) {
            strbuf_free(&resp);
            result = 0;
            goto done;
        }
        if (got < 0 || strcmp(resp->data, "*") == 0) {
            strbuf_free(&resp);
            pop3d_reply(st, got < 0 ? "-ERR Response too long." :
                        "-ERR Authentication aborted by client.");
            pop3d_sasl_new(st);
            goto done;
        }
        /* Base64 has no NUL: the response must not be cut short there. */
        if (memchr(resp->data, 0, resp->len) != NULL) {
            memset(resp->data, 0, resp->len);
            strbuf_free(&resp);
            rc = XSASL_BADB64;
            break;
        }
        rc = xsasl_step(st->sasl, resp->data, out, why);
        memset(resp->data, 0, resp->len);
        strbuf_free(&resp);
    }
    switch (rc) {
    case XSASL_DONE:
        strbuf_set(user, xsasl_username(st->sasl));
        pop3d_log_login(st, user->data, xsasl_method(st->sasl));
        result = 1;
        break;
    case XSASL_NOMECH:
        pop3d_reply(st, "-ERR Unsupported authentication mechanism.");
        break;
    case XSASL_BADB64:
        pop3d_reply(st, "-ERR Invalid base64 data in continued response.");
        break;
    case XSASL_ENCRYPT:
        pop3d_reply(st, "-ERR [AUTH] Plaintext authentication disallowed on "
                    "non-secure (SSL/TLS) connections.");
        break;
    case XSASL_TEMP:
        (void) pop3d_auth_failed(st, xsasl_attempted_user(st->sasl), mech, 1,
                                 why->data);
        break;
    default:
        if (pop3d_auth_failed(st, xsasl_attempted_user(st->sasl), mech, 0,
                              why->data) == 0)
            result = 0;
        break;
    }
    /* A failed exchange leaves the session unusable for the next one. */
    if (result == -1)
        pop3d_sasl_new(st);
done:
    strbuf_free(&out);
    strbuf_free(&why);
    return result;
}

/* PASS: 1 logged in, 0 the client must go, -1 go on. */
static int pop3d_pass(POP3D_LOGIN *st, const char *password, STRBUF *user)
{
    STRBUF *why;
    int rc;

    if (st->user == NULL) {
        pop3d_reply(st, "-ERR No username given.");
        return -1;
    }
    if (st->sasl == NULL) {
        pop3d_reply(st, "-ERR [SYS/TEMP] Temporary authentication failure.");
        return -1;
    }
    why = strbuf_alloc(64);
    rc = xsasl_checkpass(st->sasl, st->user, password, why);
    if (rc == XSASL_DONE) {
        strbuf_set(user, st->user);
        pop3d_log_login(st, user->data, "PLAIN");
        strbuf_free(&why);
        return 1;
    }
    rc = pop3d_auth_failed(st, st->user, "USER/PASS", rc == XSASL_TEMP,
                           why->data) == 0 ? 0 : -1;
    xfree(&st->user);
    pop3d_sasl_new(st);
    strbuf_free(&why);
    return rc;
}

static void pop3d_capa(POP3D_LOGIN *st)
{
    const char *mechs = pop3d_mechs(st);

    stream_puts(st->s, "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
                "PIPELINING\r\nAUTH-RESP-CODE\r\n");
    if (pop3d_plaintext_ok(st))
        stream_puts(st->s, "USER\r\n");
    if (*mechs)
        stream_printf(st->s, "SASL %s\r\n", mechs);
    if (pop3d_tls_server && st->tls == NULL)
        stream_puts(st->s, "STLS\r\n");
    stream_puts(st->s, "IMPLEMENTATION Postern\r\n");
    pop3d_reply(st, ".");
}

/* STLS, or the implicit TLS of pop3s: 0, or -1 (the client is gone). */
static int pop3d_starttls(POP3D_LOGIN *st, const char *after)
{
    STRBUF *why = strbuf_alloc(128);
    STRBUF *info = strbuf_alloc(128);

    st->tls = tls_server_start(pop3d_tls_server, st->s, 0, why);
    if (st->tls == NULL) {
        msg_info("TLS handshake failed after %s from %s: %s", after,
                 st->client->addr, why->data);
        strbuf_free(&why);
        strbuf_free(&info);
        return -1;
    }
    tls_session_describe(st->tls, info);
    msg_info("TLS connection established from %s: %s%s", st->client->addr,
             info->data, tls_session_reused(st->tls) ? " (session reused)"
             : "");
    /* What was said in plaintext is forgotten (RFC 2595 4). */
    xfree(&st->user);
    pop3d_sasl_new(st);
    strbuf_free(&why);
    strbuf_free(&info);
    return 0;
}

int pop3d_login(SERVER_CLIENT *client, STREAM **sp, STRBUF *user)
{
    POP3D_LOGIN st;
    int result = 0;

    memset(&st, 0, sizeof(st));
    st.client = client;
    st.s = stream_open(client->fd, var_pop3d_timeout, POP3D_LINE_LIMIT);
    *sp = st.s;
    st.line = strbuf_alloc(256);
    msg_info("connect from %s", client->addr);
    if (pop3d_sasl_ready && xsasl_store_check(st.line) < 0)
        msg_warn("%s: every login will fail (see sasl_db_path)",
                 st.line->data);
    if (var_pop3d_tls_wrappermode) {
        if (pop3d_tls_server == NULL) {
            msg_warn("%s: TLS wrapper mode, but TLS is not available: "
                     "disconnecting", client->addr);
            goto done;
        }
        if (pop3d_starttls(&st, "CONNECT") < 0)
            goto done;
    } else {
        pop3d_sasl_new(&st);
    }
    stream_printf(st.s, "+OK %s\r\n", var_pop3d_banner);
    (void) stream_flush(st.s);

    for (;;) {
        char *verb;
        char *args;
        int got = pop3d_get_command(st.s, st.line);

        if (got == 0) {
            msg_info("disconnect from %s%s (no login)", client->addr,
                     stream_timed_out(st.s) ? ": timeout" : "");
            break;
        }
        if (got < 0 || st.line->len > POP3D_CMD_MAX - 2) {
            if (!pop3d_error(&st, "-ERR Command too long."))
                break;
            continue;
        }
        /* A NUL would cut the command short: no command has one. */
        if (memchr(st.line->data, 0, st.line->len) != NULL) {
            memset(st.line->data, 0, st.line->len);
            if (!pop3d_error(&st, "-ERR Invalid command."))
                break;
            continue;
        }
        verb = pop3d_split(st.line->data, &args);
        if (strcmp(verb, "CAPA") == 0) {
            pop3d_capa(&st);
        } else if (strcmp(verb, "QUIT") == 0) {
            pop3d_reply(&st, "+OK Logging out.");
            msg_info("disconnect from %s (no login)", client->addr);
            break;
        } else if (strcmp(verb, "STLS") == 0) {
            if (pop3d_tls_server == NULL || st.tls != NULL) {
                if (!pop3d_error(&st, st.tls ? "-ERR TLS is already active."
                                 : "-ERR TLS support isn't enabled."))
                    break;
                continue;
            }
            pop3d_reply(&st, "+OK Begin TLS negotiation now.");
            /* Sent even with commands pipelined after STLS (dropped). */
            if (stream_flush(st.s) < 0)
                break;
            if (stream_pending(st.s) > 0)
                msg_info("discarding %zu bytes sent ahead of the TLS "
                         "handshake by %s", stream_pending(st.s),
                         client->addr);
            if (pop3d_starttls(&st, "STLS") < 0)
                break;
        } else if (strcmp(verb, "USER") == 0) {
            if (!pop3d_plaintext_ok(&st)) {
                pop3d_reply(&st, "-ERR [AUTH] Plaintext authentication "
                            "disallowed on non-secure (SSL/TLS) connections.");
            } else if (*args == 0 || strlen(args) > 255) {
                if (!pop3d_error(&st, "-ERR Invalid user name."))
                    break;
            } else {
                free(st.user);
                st.user = xstrdup(args);
                pop3d_reply(&st, "+OK");
            }
        } else if (strcmp(verb, "PASS") == 0) {
            int rc;

            if (pop3d_login_delayed(&st)) {
                memset(st.line->data, 0, st.line->len);
                break;
            }
            if (!pop3d_plaintext_ok(&st)) {
                pop3d_reply(&st, "-ERR [AUTH] Plaintext authentication "
                            "disallowed on non-secure (SSL/TLS) connections.");
                memset(st.line->data, 0, st.line->len);
                continue;
            }
            /* The password is the rest of the line after one space,
             * leading spaces and all (Dovecot too). */
            if (st.line->len > 5)
                args = st.line->data + 5;
            rc = pop3d_pass(&st, args, user);
            memset(st.line->data, 0, st.line->len);
            if (rc >= 0) {
                result = rc;
                break;
            }
        } else if (strcmp(verb, "AUTH") == 0) {
            int rc;

            if (*args && pop3d_login_delayed(&st)) {
                memset(st.line->data, 0, st.line->len);
                break;
            }
            rc = pop3d_auth(&st, args, user);

            memset(st.line->data, 0, st.line->len);
            if (rc >= 0) {
                result = rc;
                break;
            }
        } else {
            if (!pop3d_error(&st, "-ERR Unknown command."))
                break;
        }
    }
done:
    (void) stream_flush(st.s);
    /* TLS stays up for the relay; pop3d_logout() ends it. */
    pop3d_tls_sess = st.tls;
    xsasl_session_free(&st.sasl);
    anvil_clnt_close(&st.anvil);
    free(st.user);
    strbuf_free(&st.line);
    return result;
}

void pop3d_logout(STREAM *s)
{
    tls_session_free(&pop3d_tls_sess, s);
}
