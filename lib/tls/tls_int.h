/*
 * tls_int - what tls_common.c shares with tls_server.c and tls_client.c.
 * Not for the protocol code: that uses tls.h only.
 */
#ifndef POSTERN_TLS_INT_H
#define POSTERN_TLS_INT_H

#include <openssl/ssl.h>

#include "tls/tls.h"

struct TLS_SESS {
    SSL    *ssl;
    int     server;                     /* our side */
    int     verify_result;              /* client: X509_V_OK... */
    int     name_checked;               /* client: names were given */
    char   *key_copy;                   /* client: the session cache key */
    char    error[256];                 /* the last OpenSSL error */
};

/* why = what, then OpenSSL's queued errors. */
void    tls_error_text(STRBUF *why, const char *what);

/*
 * A context with the protocol range, options, cipher list (grade
 * "high"/"medium" plus exclusions) and key-exchange groups; NULL with
 * why.
 */
SSL_CTX *tls_ctx_new(const SSL_METHOD *method, const char *protocols,
                     const char *grade, const char *high, const char *medium,
                     const char *exclude_ciphers, const char *groups,
                     const char *origin, STRBUF *why);

/* The handshake on a prepared SSL (freed on failure); see tls_common.c. */
TLS_SESS *tls_session_start(SSL *ssl, STREAM *s, int timeout, int server,
                            STRBUF *why);

extern const STREAM_IO tls_stream_io;

#endif
