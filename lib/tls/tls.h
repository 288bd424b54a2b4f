/*
 * tls - TLS (OpenSSL 3) slid underneath a STREAM, for every protocol.
 *
 * A service builds one TLS_SERVER from its settings in pre_init, while it
 * can still read the keys (root, before chroot).  Per connection,
 * tls_server_start() runs the handshake on the stream's descriptor within
 * the stream's timeout and, when it succeeds, installs itself as the
 * stream's transport (stream_set_io), so the protocol code keeps reading
 * lines and writing replies and never sees a difference.  Input buffered
 * before the handshake is thrown away first: nothing a client sent in
 * plaintext can be read as if it came through TLS (CVE-2011-0411).
 *
 * Session resumption uses stateless tickets.  Every process of every
 * service derives the same ticket keys from one secret file (created with
 * 32 random bytes when missing), per period of the session lifetime; a
 * ticket is accepted for up to two periods and reissued when its key is
 * the previous one, so keys rotate without any shared cache process.
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include "util/argv.h"
#include "util/strbuf.h"
#include "util/stream.h"

typedef struct TLS_SERVER TLS_SERVER;
typedef struct TLS_SESS TLS_SESS;

typedef struct TLS_SERVER_CONF {
    const char *origin;                 /* for messages: "smtpd" */
    const char *cert_file;              /* RSA or any; may be "" */
    const char *key_file;               /* "" = in cert_file */
    const char *eccert_file;            /* a second (ECDSA) certificate */
    const char *eckey_file;
    const char *chain_files;            /* list: key and certs, in order */
    const char *protocols;              /* Postfix syntax: ">=TLSv1.2" */
    const char *cipher_grade;           /* "high" or "medium" */
    const char *high_cipherlist;
    const char *medium_cipherlist;
    const char *exclude_ciphers;        /* list of cipher names/aliases */
    const char *groups;                 /* key-exchange groups */
    int     preempt_cipherlist;         /* the server's order wins */
    const char *ticket_secret_file;     /* "" = no resumption */
    int     session_timeout;            /* seconds a ticket lives */
    int     loglevel;                   /* 0..2, Postfix smtpd_tls_loglevel */
} TLS_SERVER_CONF;

/*
 * Build the server context: load every key and certificate and check
 * them.  Returns NULL with the reason in why (naming the file).
 */
TLS_SERVER *tls_server_create(const TLS_SERVER_CONF *conf, STRBUF *why);
void    tls_server_free(TLS_SERVER **srvp);

/*
 * Handshake on s->fd within timeout seconds (0: the stream's).  On success
 * the stream talks TLS from now on and the session is returned; on failure
 * NULL with the reason in why ("handshake timeout", OpenSSL's error text),
 * and the connection is unusable.
 */
TLS_SESS *tls_server_start(TLS_SERVER *srv, STREAM *s, int timeout,
                           STRBUF *why);

/* --- the client side ------------------------------------------------ */

typedef struct TLS_CLIENT TLS_CLIENT;

typedef struct TLS_CLIENT_CONF {
    const char *origin;                 /* for messages: "smtp" */
    const char *CAfile;                 /* trust anchors; may be "" */
    const char *CApath;
    const char *cert_file;              /* a client certificate; may be "" */
    const char *key_file;
    const char *protocols;
    const char *cipher_grade;
    const char *high_cipherlist;
    const char *medium_cipherlist;
    const char *exclude_ciphers;
    const char *groups;
    int     session_cache;              /* keep sessions for resumption */
} TLS_CLIENT_CONF;

TLS_CLIENT *tls_client_create(const TLS_CLIENT_CONF *conf, STRBUF *why);
void    tls_client_free(TLS_CLIENT **clntp);

/*
 * Handshake as a client on s->fd.  servername: for SNI (NULL: none);
 * match: names one of which the certificate must carry (NULL: no name
 * check; the chain is still checked and reported); cache_key: where a
 * session from an earlier connection may be resumed from (NULL: never).
 * The handshake succeeds whatever the certificate: the caller decides
 * with tls_session_trusted()/tls_session_verified() whether that is
 * good enough for its security level.
 */
TLS_SESS *tls_client_start(TLS_CLIENT *clnt, STREAM *s, int timeout,
                           const char *servername, const ARGV *match,
                           const char *cache_key, STRBUF *why);

/* Client: the chain verified against the trust anchors. */
int     tls_session_trusted(const TLS_SESS *sess);

/* Client: trusted, and the certificate matches one of the names. */
int     tls_session_verified(const TLS_SESS *sess);

/* Client: why the certificate was not verified ("" when it was). */
const char *tls_session_verify_error(const TLS_SESS *sess);

/* Client: the peer certificate's subject and issuer CN ("" if none). */
void    tls_session_peer_names(const TLS_SESS *sess, STRBUF *subject,
                               STRBUF *issuer);

/*
 * Send close_notify (without waiting for the peer's), detach from the
 * stream and free.  The descriptor stays open.
 */
void    tls_session_free(TLS_SESS **sessp, STREAM *s);

/* What was negotiated. */
const char *tls_session_version(const TLS_SESS *sess);   /* "TLSv1.3" */
const char *tls_session_cipher(const TLS_SESS *sess);
int     tls_session_cipher_bits(const TLS_SESS *sess, int *alg_bits);
int     tls_session_reused(const TLS_SESS *sess);

/*
 * Postfix's description of the connection, as in its log line and the
 * Received: header: "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384
 * (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits)
 * server-digest SHA256" (fields OpenSSL cannot tell are left out).
 */
void    tls_session_describe(const TLS_SESS *sess, STRBUF *out);

/*
 * Parse a protocol list in Postfix syntax (">=TLSv1.2", "<=TLSv1.2",
 * "!SSLv3, !TLSv1", "TLSv1.2 TLSv1.3") into a minimum and maximum version
 * (OpenSSL's TLS1_x_VERSION) and a mask of versions to leave out in
 * between.  Returns 0, or -1 with the reason in why.  For unit tests and
 * tls_server_create().
 */
int     tls_parse_protocols(const char *spec, int *min_version,
                            int *max_version, long *no_options, STRBUF *why);

#endif
