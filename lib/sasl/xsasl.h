/*
 * xsasl - password checks through Cyrus SASL (libsasl2) for every
 * protocol: SMTP AUTH now, POP3 and IMAP later (Postfix xsasl_cyrus).
 *
 * The library is set up once per process with xsasl_server_init(),
 * before chroot (it loads its plugins then).  It is configured entirely
 * through callbacks: the password store is the sasldb file named by the
 * caller (auxprop "sasldb"), the mechanisms are the caller's list, and
 * no system-wide SASL configuration (/etc/sasl2) is consulted; Cyrus
 * options a site wants on top go into DIR/APPNAME.conf, with DIR given
 * by the caller.
 *
 * Per client, a session runs one exchange at a time: xsasl_start() with
 * the mechanism and the optional initial response, then xsasl_step()
 * with each client response until it returns XSASL_DONE or a failure.
 * Challenges and responses are base64 text as they travel on the wire;
 * the decoding is done here, and "*" (cancel) is the caller's business.
 * Nothing here logs a response or a password; authentication failures
 * reported by the library are logged without them.
 */
#ifndef POSTERN_XSASL_H
#define POSTERN_XSASL_H

#include "util/strbuf.h"

typedef struct XSASL_CONF {
    const char *app_name;               /* Cyrus application: "smtpd" */
    const char *db_path;                /* the sasldb */
    const char *mech_list;              /* mechanisms to load and offer */
    const char *conf_dir;               /* for APP_NAME.conf; may be "" */
} XSASL_CONF;

/* Once per process, before chroot; -1 with the reason in why. */
int     xsasl_server_init(const XSASL_CONF *conf, STRBUF *why);
void    xsasl_server_done(void);

/*
 * Can this process read the password store (after the switch to
 * mail_owner)?  Without it every login fails as a wrong password, so
 * daemons check once and warn.  0, or -1 with the reason in why.
 */
int     xsasl_store_check(STRBUF *why);

typedef struct XSASL_SESS XSASL_SESS;

/*
 * A session for one client.  service: "smtp", "pop", "imap"; realm: the
 * realm of user names without "@domain" ("" for none); addresses as
 * "ip;port" (may be NULL); sec_opts: Postfix security options
 * ("noanonymous, noplaintext").  NULL with the reason in why.
 */
XSASL_SESS *xsasl_session_new(const char *service, const char *hostname,
                              const char *realm, const char *local_ipport,
                              const char *remote_ipport,
                              const char *sec_opts, STRBUF *why);
void    xsasl_session_free(XSASL_SESS **sessp);

/*
 * TLS is now on with this many bits: from now on the (TLS) security
 * options given apply instead of the session's; without "noplaintext"
 * there, plaintext mechanisms are allowed.  -1 when the options are bad.
 */
int     xsasl_session_tls(XSASL_SESS *sess, int ssf, const char *sec_opts,
                          STRBUF *why);

/* The mechanisms the client may use now, space-separated ("" if none). */
const char *xsasl_session_mechs(XSASL_SESS *sess);

/* Parse security options; -1 naming the bad word.  Exposed for tests. */
int     xsasl_parse_sec_opts(const char *opts, unsigned *flags, STRBUF *why);

#define XSASL_DONE      0               /* authenticated */
#define XSASL_MORE      1               /* out holds the next challenge */
#define XSASL_FAIL      (-1)            /* bad credentials; why says why */
#define XSASL_BADB64    (-2)            /* the response is not base64 */
#define XSASL_NOMECH    (-3)            /* unknown or unavailable mechanism */
#define XSASL_ENCRYPT   (-4)            /* the mechanism needs TLS */
#define XSASL_TEMP      (-5)            /* the store failed: try later */

/*
 * Begin an exchange.  init: the initial response in base64 ("=" for an
 * empty one), or NULL when the client sent none.  On XSASL_MORE, out
 * holds the challenge in base64 (possibly empty).
 */
int     xsasl_start(XSASL_SESS *sess, const char *mech, const char *init,
                    STRBUF *out, STRBUF *why);
int     xsasl_step(XSASL_SESS *sess, const char *response, STRBUF *out,
                   STRBUF *why);

/* After XSASL_DONE: who logged in ("alice@example.test"), and how. */
const char *xsasl_username(XSASL_SESS *sess);
const char *xsasl_method(XSASL_SESS *sess);

/*
 * The user name tried in the current or last exchange, when the
 * mechanism revealed it (for "authentication failed" logs); NULL if not.
 */
const char *xsasl_attempted_user(XSASL_SESS *sess);

/* A plain user/password check (POP3 USER/PASS, IMAP LOGIN). */
int     xsasl_checkpass(XSASL_SESS *sess, const char *user,
                        const char *password, STRBUF *why);

/*
 * The password store, for postern user.  Each needs xsasl_server_init()
 * and opens its own session.  user is "local@domain"; 0, or -1 with why
 * (xsasl_user_exists: 1 yes, 0 no, -1 error).
 */
int     xsasl_user_set(const char *user, const char *password, STRBUF *why);
int     xsasl_user_delete(const char *user, STRBUF *why);
int     xsasl_user_exists(const char *user, STRBUF *why);

/* --- the client side (smtp to a smarthost) ---------------------------- */

typedef struct XSASL_CLNT XSASL_CLNT;

/* Once per process, before chroot; -1 with the reason in why. */
int     xsasl_client_init(STRBUF *why);

/*
 * A client session to server_host for service ("smtp") with a user name
 * and password; sec_opts as for the server side.  NULL with why.
 */
XSASL_CLNT *xsasl_client_new(const char *service, const char *server_host,
                             const char *user, const char *password,
                             const char *sec_opts, STRBUF *why);
void    xsasl_client_free(XSASL_CLNT **clntp);

/* TLS is on: under these (TLS) security options; -1 when they are bad. */
int     xsasl_client_tls(XSASL_CLNT *clnt, int ssf, const char *sec_opts,
                         STRBUF *why);

/*
 * Choose a mechanism from the server's list (filtered by mech_filter,
 * space-separated, "" for any) and make the initial response.  On
 * XSASL_DONE or XSASL_MORE: mech is set, and init holds the initial
 * response in base64 ("=" for an empty one) or is empty when there is
 * none to send.  XSASL_NOMECH when no mechanism is acceptable.
 */
int     xsasl_client_start(XSASL_CLNT *clnt, const char *server_mechs,
                           const char *mech_filter, STRBUF *mech,
                           STRBUF *init, STRBUF *why);

/* Answer a base64 challenge: XSASL_MORE/DONE with out, or a failure. */
int     xsasl_client_step(XSASL_CLNT *clnt, const char *challenge,
                          STRBUF *out, STRBUF *why);

#endif
