/*
 * tls_client - the client side of TLS (the smtp and lmtp transports):
 * trust anchors, SNI, certificate name checks, and a per-process cache
 * of sessions to resume.  See tls.h.
 *
 * The handshake itself never fails over the certificate: OpenSSL checks
 * the chain and, when names are given, the host name (SSL_add1_host), and
 * the result is kept with the session.  The caller's security level then
 * decides: opportunistic TLS takes any certificate, "verify" and
 * "secure" need a verified one.  That way one handshake serves every
 * level and the log can say Untrusted, Trusted or Verified as Postfix's.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/tls_int.h"
#include "util/htable.h"
#include "util/msg.h"
#include "util/xmalloc.h"

#define TLS_CLIENT_CACHE_MAX    1000    /* sessions kept per process */

struct TLS_CLIENT {
    SSL_CTX *ctx;
    char   *origin;
    HTABLE *cache;                      /* cache key -> SSL_SESSION */
    size_t  cached;
};

static int tls_client_key_index = -1;   /* SSL ex_data: the cache key */

static void tls_client_session_free(void *value)
{
    SSL_SESSION_free(value);
}

/* A session ticket arrived (TLS 1.3: after the handshake): keep it. */
static int tls_client_new_session(SSL *ssl, SSL_SESSION *session)
{
    TLS_CLIENT *clnt = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    const char *key = SSL_get_ex_data(ssl, tls_client_key_index);

    if (key == NULL || clnt->cache == NULL)
        return 0;
    if (htable_find(clnt->cache, key)) {
        htable_delete(clnt->cache, key, tls_client_session_free);
        clnt->cached--;
    }
    if (clnt->cached >= TLS_CLIENT_CACHE_MAX)
        return 0;
    htable_enter(clnt->cache, key, session);
    clnt->cached++;
    return 1;                           /* we own the reference now */
}

/*
 * OpenSSL checks the names (SSL_add1_host) before the signatures and the
 * dates, and stops at the first error: a name mismatch would hide a
 * forged or expired chain, which tls_session_trusted() would then call
 * good.  Go on past a name mismatch: a later error replaces it.
 */
static int tls_client_verify_cb(int ok, X509_STORE_CTX *ctx)
{
    if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_HOSTNAME_MISMATCH)
        return 1;
    return ok;
}

TLS_CLIENT *tls_client_create(const TLS_CLIENT_CONF *conf, STRBUF *why)
{
    TLS_CLIENT *clnt = xcalloc(1, sizeof(*clnt));
    const char *cafile = conf->CAfile && *conf->CAfile ? conf->CAfile : NULL;
    const char *capath = conf->CApath && *conf->CApath ? conf->CApath : NULL;

    clnt->origin = xstrdup(conf->origin);
    if (tls_client_key_index < 0)
        tls_client_key_index = SSL_get_ex_new_index(0, NULL, NULL, NULL,
                                                    NULL);
    if ((clnt->ctx = tls_ctx_new(TLS_client_method(), conf->protocols,
                                 conf->cipher_grade, conf->high_cipherlist,
                                 conf->medium_cipherlist,
                                 conf->exclude_ciphers, conf->groups,
                                 conf->origin, why)) == NULL)
        goto fail;
    SSL_CTX_set_app_data(clnt->ctx, clnt);
    /* Check everything, refuse nothing: see the comment at the top. */
    SSL_CTX_set_verify(clnt->ctx, SSL_VERIFY_NONE, tls_client_verify_cb);
    if ((cafile || capath)
        && SSL_CTX_load_verify_locations(clnt->ctx, cafile, capath) != 1) {
        STRBUF *err = strbuf_alloc(128);

        tls_error_text(err, "cannot load");
        strbuf_printf(why, "trust anchors %s%s%s: %s", cafile ? cafile : "",
                      cafile && capath ? " and " : "", capath ? capath : "",
                      err->data);
        strbuf_free(&err);
        goto fail;
    }
    if (conf->cert_file && *conf->cert_file) {
        const char *key = conf->key_file && *conf->key_file ? conf->key_file
            : conf->cert_file;

        if (SSL_CTX_use_certificate_chain_file(clnt->ctx, conf->cert_file) != 1
            || SSL_CTX_use_PrivateKey_file(clnt->ctx, key,
                                           SSL_FILETYPE_PEM) != 1
            || SSL_CTX_check_private_key(clnt->ctx) != 1) {
            STRBUF *err = strbuf_alloc(128);

            tls_error_text(err, "cannot use");
            strbuf_printf(why, "client certificate %s: %s", conf->cert_file,
                          err->data);
            strbuf_free(&err);
            goto fail;
        }
    }
    if (conf->session_cache) {
        clnt->cache = htable_alloc(16);
        SSL_CTX_set_session_cache_mode(clnt->ctx, SSL_SESS_CACHE_CLIENT
                                       | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(clnt->ctx, tls_client_new_session);
    } else {
        SSL_CTX_set_session_cache_mode(clnt->ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(clnt->ctx, SSL_OP_NO_TICKET);
    }
    return clnt;

fail:
    tls_client_free(&clnt);
    return NULL;
}

void tls_client_free(TLS_CLIENT **clntp)
{
    TLS_CLIENT *clnt = *clntp;

    if (clnt == NULL)
        return;
    htable_free(&clnt->cache, tls_client_session_free);
    SSL_CTX_free(clnt->ctx);
    free(clnt->origin);
    free(clnt);
    *clntp = NULL;
}

TLS_SESS *tls_client_start(TLS_CLIENT *clnt, STREAM *s, int timeout,
                           const char *servername, const ARGV *match,
                           const char *cache_key, STRBUF *why)
{
    TLS_SESS *sess;
    SSL    *ssl;
    SSL_SESSION *cached = NULL;
    char   *key_copy = NULL;

    /*
     * What the server sent after its reply to STARTTLS came in plaintext,
     * maybe from a man in the middle: never read it as if it came through
     * TLS (the server side does the same, CVE-2011-0411).
     */
    stream_purge_input(s);
    ERR_clear_error();
    if ((ssl = SSL_new(clnt->ctx)) == NULL) {
        tls_error_text(why, "cannot create a TLS session");
        return NULL;
    }
    if (servername && *servername
        && SSL_set_tlsext_host_name(ssl, servername) != 1) {
        tls_error_text(why, "cannot set the server name");
        SSL_free(ssl);
        return NULL;
    }
    if (match && match->argc > 0) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        for (size_t i = 0; i < match->argc; i++) {
            if (SSL_add1_host(ssl, match->argv[i]) != 1) {
                tls_error_text(why, "cannot set a name to check");
                strbuf_printf_append(why, " (%s)", match->argv[i]);
                SSL_free(ssl);
                return NULL;
            }
        }
    }
    if (cache_key && clnt->cache) {
        key_copy = xstrdup(cache_key);
        SSL_set_ex_data(ssl, tls_client_key_index, key_copy);
        if ((cached = htable_find(clnt->cache, cache_key)) != NULL)
            (void) SSL_set_session(ssl, cached);
    }
    sess = tls_session_start(ssl, s, timeout, 0, why);
    if (sess == NULL) {
        /* A session that led to a failure is not offered again. */
        if (cached) {
            htable_delete(clnt->cache, cache_key, tls_client_session_free);
            clnt->cached--;
        }
        free(key_copy);
        return NULL;
    }
    sess->verify_result = (int) SSL_get_verify_result(ssl);
    sess->name_checked = match && match->argc > 0;
    sess->key_copy = key_copy;
    return sess;
}

int tls_session_trusted(const TLS_SESS *sess)
{
    /* A name mismatch is the only error: the chain itself is good. */
    return !sess->server && SSL_get0_peer_certificate(sess->ssl)
        && (sess->verify_result == X509_V_OK
            || sess->verify_result == X509_V_ERR_HOSTNAME_MISMATCH);
}

int tls_session_verified(const TLS_SESS *sess)
{
    return !sess->server && sess->name_checked
        && SSL_get0_peer_certificate(sess->ssl)
        && sess->verify_result == X509_V_OK;
}

const char *tls_session_verify_error(const TLS_SESS *sess)
{
    if (SSL_get0_peer_certificate(sess->ssl) == NULL)
        return "no certificate";
    if (sess->verify_result == X509_V_OK)
        return sess->name_checked ? "" : "no name to match";
    return X509_verify_cert_error_string(sess->verify_result);
}

static void tls_cn(const X509_NAME *name, STRBUF *out)
{
    char buf[256];

    strbuf_set(out, "");
    if (name && X509_NAME_get_text_by_NID((X509_NAME *) name, NID_commonName,
                                          buf, sizeof(buf)) > 0) {
        for (char *cp = buf; *cp; cp++)
            if ((unsigned char) *cp < 0x20 || *cp == 0x7f)
                *cp = '?';
        strbuf_set(out, buf);
    }
}

void tls_session_peer_names(const TLS_SESS *sess, STRBUF *subject,
                            STRBUF *issuer)
{
    X509 *peer = SSL_get0_peer_certificate(sess->ssl);

    tls_cn(peer ? X509_get_subject_name(peer) : NULL, subject);
    tls_cn(peer ? X509_get_issuer_name(peer) : NULL, issuer);
}
