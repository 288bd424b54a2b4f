/*
 * tls_common - what the server and the client side of TLS share: error
 * text, protocol lists, the stream transport over a non-blocking
 * descriptor, the handshake loop, and what a session negotiated.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls/tls_int.h"
#include "util/argv.h"
#include "util/msg.h"
#include "util/xmalloc.h"

/* --- errors ----------------------------------------------------------- */

/* Append OpenSSL's queued errors (the innermost reason last) to why. */
void tls_error_text(STRBUF *why, const char *what)
{
    unsigned long err;
    char buf[256];
    int first = 1;

    strbuf_set(why, what);
    while ((err = ERR_get_error()) != 0) {
        ERR_error_string_n(err, buf, sizeof(buf));
        strbuf_printf_append(why, first ? ": %s" : "; %s", buf);
        first = 0;
    }
}

/* --- protocols -------------------------------------------------------- */

static const struct {
    const char *name;
    int     version;
    long    no_option;
} tls_versions[] = {
    {"SSLv2", 0, 0},                    /* accepted, never available */
    {"SSLv3", SSL3_VERSION, SSL_OP_NO_SSLv3},
    {"TLSv1", TLS1_VERSION, SSL_OP_NO_TLSv1},
    {"TLSv1.1", TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
    {"TLSv1.2", TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
    {"TLSv1.3", TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
};

#define TLS_NVERSIONS   (sizeof(tls_versions) / sizeof(tls_versions[0]))

static int tls_version_index(const char *name)
{
    for (size_t i = 0; i < TLS_NVERSIONS; i++)
        if (strcasecmp(name, tls_versions[i].name) == 0)
            return (int) i;
    return -1;
}

int tls_parse_protocols(const char *spec, int *min_version, int *max_version,
                        long *no_options, STRBUF *why)
{
    ARGV *words = argv_split(spec, ", \t\r\n:");
    int enabled[TLS_NVERSIONS];
    int explicit_list = 0;
    size_t lo = 0;
    size_t hi = TLS_NVERSIONS - 1;
    int rc = -1;
    int first = -1;
    int last = -1;

    for (size_t i = 0; i < TLS_NVERSIONS; i++)
        enabled[i] = 0;
    /* A plain name enables; without any, every version starts enabled. */
    for (size_t i = 0; i < words->argc; i++) {
        const char *w = words->argv[i];

        if (*w != '!' && *w != '>' && *w != '<')
            explicit_list = 1;
    }
    for (size_t i = 0; i < TLS_NVERSIONS; i++)
        enabled[i] = !explicit_list;
    for (size_t i = 0; i < words->argc; i++) {
        const char *w = words->argv[i];
        const char *name = w;
        int idx;

        if (strncmp(w, ">=", 2) == 0 || strncmp(w, "<=", 2) == 0)
            name = w + 2;
        else if (*w == '!')
            name = w + 1;
        if ((idx = tls_version_index(name)) < 0) {
            strbuf_printf(why, "unknown TLS protocol \"%s\" in \"%s\"", w,
                          spec);
            goto done;
        }
        if (strncmp(w, ">=", 2) == 0)
            lo = (size_t) idx > lo ? (size_t) idx : lo;
        else if (strncmp(w, "<=", 2) == 0)
            hi = (size_t) idx < hi ? (size_t) idx : hi;
        else if (*w == '!')
            enabled[idx] = -1;
        else if (enabled[idx] == 0)
            enabled[idx] = 1;
    }
    *no_options = 0;
    /* SSLv2 is gone from OpenSSL: never a candidate. */
    for (size_t i = 1; i < TLS_NVERSIONS; i++) {
        if (enabled[i] == 1 && i >= lo && i <= hi) {
            if (first < 0)
                first = (int) i;
            last = (int) i;
        }
    }
    if (first < 0) {
        strbuf_printf(why, "no TLS protocol left in \"%s\"", spec);
        goto done;
    }
    for (int i = first + 1; i < last; i++)
        if (enabled[i] != 1)
            *no_options |= tls_versions[i].no_option;
    *min_version = tls_versions[first].version;
    *max_version = tls_versions[last].version;
    rc = 0;
done:
    argv_free(&words);
    return rc;
}

/* --- contexts ------------------------------------------------------- */

static int tls_set_groups(SSL_CTX *ctx, const char *groups, const char *origin)
{
    ARGV *list = argv_split(groups, ", \t\r\n");
    STRBUF *ok = strbuf_alloc(64);
    int rc = 0;

    if (list->argc == 0)
        goto done;                      /* OpenSSL's defaults */
    /* Keep what this OpenSSL knows, as Postfix does. */
    for (size_t i = 0; i < list->argc; i++) {
        if (SSL_CTX_set1_groups_list(ctx, list->argv[i]) == 1)
            strbuf_printf_append(ok, "%s%s", ok->len ? ":" : "", list->argv[i]);
        else
            msg_warn("%s: ignoring unknown key-exchange group \"%s\"", origin,
                     list->argv[i]);
    }
    ERR_clear_error();
    if (ok->len == 0 || SSL_CTX_set1_groups_list(ctx, ok->data) != 1)
        rc = -1;
done:
    strbuf_free(&ok);
    argv_free(&list);
    return rc;
}

SSL_CTX *tls_ctx_new(const SSL_METHOD *method, const char *protocols,
                     const char *grade, const char *high, const char *medium,
                     const char *exclude_ciphers, const char *groups,
                     const char *origin, STRBUF *why)
{
    SSL_CTX *ctx = NULL;
    STRBUF *ciphers = strbuf_alloc(128);
    ARGV *exclude = NULL;
    int min_version;
    int max_version;
    long no_options;

    ERR_clear_error();
    if (tls_parse_protocols(protocols, &min_version, &max_version,
                            &no_options, why) < 0)
        goto fail;
    if ((ctx = SSL_CTX_new(method)) == NULL) {
        tls_error_text(why, "cannot create a TLS context");
        goto fail;
    }
    if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1
        || SSL_CTX_set_max_proto_version(ctx, max_version) != 1) {
        tls_error_text(why, "cannot set the TLS protocol range");
        goto fail;
    }
    SSL_CTX_set_options(ctx, no_options | SSL_OP_NO_COMPRESSION
                        | SSL_OP_NO_RENEGOTIATION
                        | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Idle sessions give their buffers back: memory per session. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS
                     | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    /* Ciphers (TLS 1.2 and older; TLS 1.3 suites keep OpenSSL's list). */
    if (strcasecmp(grade, "high") == 0)
        strbuf_set(ciphers, high);
    else if (strcasecmp(grade, "medium") == 0)
        strbuf_set(ciphers, medium);
    else {
        strbuf_printf(why, "unsupported cipher grade \"%s\" (use high or "
                      "medium)", grade);
        goto fail;
    }
    exclude = argv_split(exclude_ciphers, ", \t\r\n:");
    for (size_t i = 0; i < exclude->argc; i++)
        strbuf_printf_append(ciphers, ":!%s", exclude->argv[i]);
    if (SSL_CTX_set_cipher_list(ctx, ciphers->data) != 1) {
        STRBUF *err = strbuf_alloc(128);

        tls_error_text(err, "no usable cipher");
        strbuf_printf(why, "cipher list \"%s\": %s", ciphers->data, err->data);
        strbuf_free(&err);
        goto fail;
    }
    if (tls_set_groups(ctx, groups, origin) < 0) {
        strbuf_printf(why, "no usable key-exchange group in \"%s\"", groups);
        goto fail;
    }
    strbuf_free(&ciphers);
    argv_free(&exclude);
    return ctx;

fail:
    SSL_CTX_free(ctx);
    strbuf_free(&ciphers);
    argv_free(&exclude);
    return NULL;
}

/* --- I/O -------------------------------------------------------------- */

/*
 * After an OpenSSL call failed with ret: wait for what it wants until the
 * deadline.  Returns 1 to retry, 0 for a clean end of the connection, -1
 * with errno set (ETIMEDOUT, EPROTO with sess->error filled, or the
 * system's).
 */
static int tls_wait(TLS_SESS *sess, int ret, int fd, long long deadline)
{
    int err = SSL_get_error(sess->ssl, ret);
    struct pollfd pfd;
    int left;
    int rc;

    switch (err) {
    case SSL_ERROR_WANT_READ:
        pfd.events = POLLIN;
        break;
    case SSL_ERROR_WANT_WRITE:
        pfd.events = POLLOUT;
        break;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0)
            return 0;
        return -1;
    default:
        ERR_error_string_n(ERR_peek_last_error(), sess->error,
                           sizeof(sess->error));
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
    pfd.fd = fd;
    for (;;) {
        if (deadline < 0)
            left = -1;
        else if ((left = (int) (deadline - stream_now_ms())) <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        rc = poll(&pfd, 1, left);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

static long long tls_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : stream_now_ms() + timeout_ms;
}

static ssize_t tls_read(void *ctx, int fd, void *buf, size_t len,
                        int timeout_ms)
{
    TLS_SESS *sess = ctx;
    long long deadline = tls_deadline(timeout_ms);
    size_t got;
    int rc;

    for (;;) {
        ERR_clear_error();
        errno = 0;
        if (SSL_read_ex(sess->ssl, buf, len, &got) == 1)
            return (ssize_t) got;
        if ((rc = tls_wait(sess, 0, fd, deadline)) <= 0)
            return rc;
    }
}

static ssize_t tls_write(void *ctx, int fd, const void *buf, size_t len,
                         int timeout_ms)
{
    TLS_SESS *sess = ctx;
    long long deadline = tls_deadline(timeout_ms);
    size_t put;
    int rc;

    for (;;) {
        ERR_clear_error();
        errno = 0;
        if (SSL_write_ex(sess->ssl, buf, len, &put) == 1)
            return (ssize_t) put;
        if ((rc = tls_wait(sess, 0, fd, deadline)) <= 0) {
            if (rc == 0)
                errno = EPIPE;
            return -1;
        }
    }
}

static size_t tls_pending(void *ctx)
{
    TLS_SESS *sess = ctx;

    return (size_t) SSL_pending(sess->ssl);
}

const STREAM_IO tls_stream_io = {tls_read, tls_write, tls_pending};

/*
 * The handshake on an SSL prepared by the caller, within timeout seconds
 * (0: the stream's); on success the stream talks TLS from now on.
 */
TLS_SESS *tls_session_start(SSL *ssl, STREAM *s, int timeout, int server,
                            STRBUF *why)
{
    TLS_SESS *sess;
    long long deadline;
    int flags;
    int rc;

    sess = xcalloc(1, sizeof(*sess));
    sess->ssl = ssl;
    sess->server = server;
    if (SSL_set_fd(ssl, s->fd) != 1) {
        tls_error_text(why, "cannot create a TLS session");
        goto fail;
    }
    if ((flags = fcntl(s->fd, F_GETFL)) < 0
        || fcntl(s->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        strbuf_printf(why, "cannot make the connection non-blocking: %m");
        goto fail;
    }
    if (timeout <= 0)
        timeout = s->timeout;
    deadline = timeout > 0 ? stream_now_ms() + timeout * 1000LL : -1;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        if ((rc = server ? SSL_accept(ssl) : SSL_connect(ssl)) == 1)
            break;
        if ((rc = tls_wait(sess, rc, s->fd, deadline)) > 0)
            continue;
        if (rc == 0)
            strbuf_set(why, "lost connection during the handshake");
        else if (errno == ETIMEDOUT)
            strbuf_set(why, "handshake timeout");
        else if (errno == EPROTO)
            strbuf_set(why, sess->error);
        else
            strbuf_printf(why, "handshake: %m");
        goto fail;
    }
    stream_set_io(s, &tls_stream_io, sess);
    return sess;

fail:
    SSL_free(ssl);
    free(sess);
    return NULL;
}

void tls_session_free(TLS_SESS **sessp, STREAM *s)
{
    TLS_SESS *sess = *sessp;

    if (sess == NULL)
        return;
    /* One non-blocking close_notify; never wait for the peer's. */
    ERR_clear_error();
    if (!stream_error(s))
        (void) SSL_shutdown(sess->ssl);
    ERR_clear_error();
    if (s->io_ctx == sess)
        stream_set_io(s, NULL, NULL);
    SSL_free(sess->ssl);
    free(sess->key_copy);
    free(sess);
    *sessp = NULL;
}

/* --- what was negotiated ---------------------------------------------- */

const char *tls_session_version(const TLS_SESS *sess)
{
    return SSL_get_version(sess->ssl);
}

const char *tls_session_cipher(const TLS_SESS *sess)
{
    return SSL_CIPHER_get_name(SSL_get_current_cipher(sess->ssl));
}

int tls_session_cipher_bits(const TLS_SESS *sess, int *alg_bits)
{
    return SSL_CIPHER_get_bits(SSL_get_current_cipher(sess->ssl), alg_bits);
}

int tls_session_reused(const TLS_SESS *sess)
{
    return SSL_session_reused(sess->ssl);
}

void tls_session_describe(const TLS_SESS *sess, STRBUF *out)
{
    SSL *ssl = sess->ssl;
    EVP_PKEY *key;
    int alg_bits = 0;
    int bits = tls_session_cipher_bits(sess, &alg_bits);
    int nid;

    strbuf_printf(out, "%s with cipher %s (%d/%d bits)",
                  tls_session_version(sess), tls_session_cipher(sess), bits,
                  alg_bits);
    if ((nid = SSL_get_negotiated_group(ssl)) != NID_undef && nid != 0) {
        /* "X25519", "prime256v1": OpenSSL's short names, as Postfix. */
        const char *name = OBJ_nid2sn(nid);

        if (name == NULL)
            name = SSL_group_to_name(ssl, nid);

        if (name)
            strbuf_printf_append(out, " key-exchange %s", name);
    }
    /* The server's signature: ours, or the peer's when we are the client. */
    if (SSL_session_reused(ssl))
        return;
    if (sess->server)
        key = SSL_get_privatekey(ssl);
    else {
        X509 *peer = SSL_get0_peer_certificate(ssl);

        key = peer ? X509_get0_pubkey(peer) : NULL;
    }
    if (key == NULL)
        return;
    if ((sess->server ? SSL_get_signature_type_nid(ssl, &nid)
         : SSL_get_peer_signature_type_nid(ssl, &nid)) == 1) {
        if (nid == EVP_PKEY_RSA_PSS || nid == EVP_PKEY_RSA)
            strbuf_printf_append(out, " server-signature %s (%d bits)",
                                 nid == EVP_PKEY_RSA_PSS ? "RSA-PSS" : "RSA",
                                 EVP_PKEY_get_bits(key));
        else if (nid == EVP_PKEY_EC) {
            char group[64];
            const char *nist = NULL;

            if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                               group, sizeof(group), NULL))
                nist = EC_curve_nid2nist(OBJ_sn2nid(group));
            strbuf_printf_append(out, " server-signature ECDSA (%s)",
                                 nist ? nist : "unknown curve");
        } else
            strbuf_printf_append(out, " server-signature %s",
                                 OBJ_nid2sn(nid));
    }
    if ((sess->server ? SSL_get_signature_nid(ssl, &nid)
         : SSL_get_peer_signature_nid(ssl, &nid)) == 1 && nid != NID_undef)
        strbuf_printf_append(out, " server-digest %s", OBJ_nid2sn(nid));
}
