/*
 * tls_server - the server side of TLS: keys and certificates, the
 * context, stateless session tickets, the server handshake.  See tls.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "tls/tls_int.h"
#include "util/argv.h"
#include "util/msg.h"
#include "util/token.h"
#include "util/xmalloc.h"

#define TLS_TICKET_SECRET_LEN   32

struct TLS_SERVER {
    SSL_CTX *ctx;
    char   *origin;
    int     loglevel;
    int     session_timeout;
    int     tickets;                    /* the secret was loaded */
    unsigned char secret[TLS_TICKET_SECRET_LEN];
};

/* --- keys and certificates -------------------------------------------- */

/*
 * One key with its certificate chain, as loaded from PEM files with
 * OSSL_STORE (any mix of keys and certificates per file).
 */
typedef struct TLS_PAIR {
    EVP_PKEY *key;
    X509   *cert;
    STACK_OF(X509) *chain;
    char   *where;                      /* the file that gave the key */
} TLS_PAIR;

static void tls_pair_clear(TLS_PAIR *p)
{
    EVP_PKEY_free(p->key);
    X509_free(p->cert);
    sk_X509_pop_free(p->chain, X509_free);
    free(p->where);
    memset(p, 0, sizeof(*p));
}

static int tls_pair_add_cert(TLS_PAIR *p, X509 *cert)
{
    if (p->cert == NULL) {
        p->cert = cert;
        return 0;
    }
    if (p->chain == NULL && (p->chain = sk_X509_new_null()) == NULL)
        return -1;
    return sk_X509_push(p->chain, cert) > 0 ? 0 : -1;
}

/* Install a complete pair; the key must match the certificate. */
static int tls_pair_use(SSL_CTX *ctx, TLS_PAIR *p, STRBUF *why)
{
    if (p->key == NULL || p->cert == NULL) {
        strbuf_printf(why, "%s: %s without %s", p->where,
                      p->key ? "private key" : "certificate",
                      p->key ? "a certificate after it" : "a private key");
        return -1;
    }
    if (SSL_CTX_use_cert_and_key(ctx, p->cert, p->key, p->chain, 1) != 1) {
        STRBUF *err = strbuf_alloc(128);

        tls_error_text(err, "key and certificate do not match or are "
                       "unusable");
        strbuf_printf(why, "%s: %s", p->where, err->data);
        strbuf_free(&err);
        return -1;
    }
    tls_pair_clear(p);
    return 0;
}

typedef int (*TLS_OBJECT_FN)(void *ctx, const char *file, OSSL_STORE_INFO *info,
                             STRBUF *why);

/* Feed every key and certificate in file to fn, in file order. */
static int tls_load_file(const char *file, TLS_OBJECT_FN fn, void *ctx,
                         STRBUF *why)
{
    OSSL_STORE_CTX *store;
    OSSL_STORE_INFO *info;
    int count = 0;
    int rc = 0;

    ERR_clear_error();
    if ((store = OSSL_STORE_open(file, NULL, NULL, NULL, NULL)) == NULL) {
        STRBUF *err = strbuf_alloc(128);

        tls_error_text(err, "cannot open");
        strbuf_printf(why, "%s: %s", file, err->data);
        strbuf_free(&err);
        return -1;
    }
    while (rc == 0 && !OSSL_STORE_eof(store)) {
        if ((info = OSSL_STORE_load(store)) == NULL) {
            /* The last load may "fail" at the end of the file. */
            if (OSSL_STORE_error(store) && !OSSL_STORE_eof(store)) {
                STRBUF *err = strbuf_alloc(128);

                tls_error_text(err, "cannot read");
                strbuf_printf(why, "%s: %s", file, err->data);
                strbuf_free(&err);
                rc = -1;
            }
            continue;
        }
        count++;
        rc = fn(ctx, file, info, why);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    if (rc == 0 && count == 0) {
        strbuf_printf(why, "%s: no key or certificate in the file", file);
        rc = -1;
    }
    return rc;
}

/* smtpd_tls_chain_files: each key directly followed by its chain. */
typedef struct TLS_CHAIN_STATE {
    SSL_CTX *ctx;
    TLS_PAIR pair;
} TLS_CHAIN_STATE;

static int tls_chain_object(void *ctx, const char *file, OSSL_STORE_INFO *info,
                            STRBUF *why)
{
    TLS_CHAIN_STATE *st = ctx;

    switch (OSSL_STORE_INFO_get_type(info)) {
    case OSSL_STORE_INFO_PKEY:
        if (st->pair.key && tls_pair_use(st->ctx, &st->pair, why) < 0)
            return -1;
        st->pair.key = OSSL_STORE_INFO_get1_PKEY(info);
        st->pair.where = xstrdup(file);
        return 0;
    case OSSL_STORE_INFO_CERT:
        if (st->pair.key == NULL) {
            strbuf_printf(why, "%s: a certificate before its private key "
                          "(each key must come first, then its chain)", file);
            return -1;
        }
        return tls_pair_add_cert(&st->pair, OSSL_STORE_INFO_get1_CERT(info));
    default:
        return 0;                       /* parameters, CRLs: not ours */
    }
}

static int tls_load_chain_files(SSL_CTX *ctx, const char *files, STRBUF *why)
{
    ARGV *list = argv_split(files, ", \t\r\n");
    TLS_CHAIN_STATE st;
    int rc = 0;

    memset(&st, 0, sizeof(st));
    st.ctx = ctx;
    for (size_t i = 0; rc == 0 && i < list->argc; i++)
        rc = tls_load_file(list->argv[i], tls_chain_object, &st, why);
    if (rc == 0 && st.pair.key)
        rc = tls_pair_use(ctx, &st.pair, why);
    tls_pair_clear(&st.pair);
    argv_free(&list);
    return rc;
}

/* cert_file + key_file: the key may be in either file, in any order. */
static int tls_cert_object(void *ctx, const char *file, OSSL_STORE_INFO *info,
                           STRBUF *why)
{
    TLS_PAIR *p = ctx;

    switch (OSSL_STORE_INFO_get_type(info)) {
    case OSSL_STORE_INFO_PKEY:
        if (p->key == NULL) {
            p->key = OSSL_STORE_INFO_get1_PKEY(info);
            free(p->where);
            p->where = xstrdup(file);
        }
        return 0;
    case OSSL_STORE_INFO_CERT:
        if (p->where == NULL)
            p->where = xstrdup(file);
        if (tls_pair_add_cert(p, OSSL_STORE_INFO_get1_CERT(info)) < 0) {
            strbuf_printf(why, "%s: out of memory", file);
            return -1;
        }
        return 0;
    default:
        return 0;
    }
}

static int tls_load_pair(SSL_CTX *ctx, const char *cert_file,
                         const char *key_file, STRBUF *why)
{
    TLS_PAIR pair;
    int rc;

    memset(&pair, 0, sizeof(pair));
    rc = tls_load_file(cert_file, tls_cert_object, &pair, why);
    if (rc == 0 && *key_file && strcmp(key_file, cert_file) != 0) {
        X509 *cert = pair.cert;
        STACK_OF(X509) *chain = pair.chain;

        /* Only keys count from the key file. */
        pair.cert = NULL;
        pair.chain = NULL;
        rc = tls_load_file(key_file, tls_cert_object, &pair, why);
        X509_free(pair.cert);
        sk_X509_pop_free(pair.chain, X509_free);
        pair.cert = cert;
        pair.chain = chain;
    }
    if (rc == 0) {
        free(pair.where);
        pair.where = xstrdup(cert_file);
        rc = tls_pair_use(ctx, &pair, why);
    }
    tls_pair_clear(&pair);
    return rc;
}

/* --- session tickets -------------------------------------------------- */

/* Read the secret, creating it with fresh random bytes when missing. */
static int tls_ticket_secret(const char *path, unsigned char *secret,
                             STRBUF *why)
{
    int fd;
    ssize_t n;

    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0
        && errno == ENOENT) {
        STRBUF *tmp = strbuf_alloc(128);
        unsigned char fresh[TLS_TICKET_SECRET_LEN];
        int tfd;

        strbuf_printf(tmp, "%s.%ld", path, (long) getpid());
        if (RAND_priv_bytes(fresh, sizeof(fresh)) != 1) {
            strbuf_printf(why, "%s: no random bytes for a new secret", path);
            strbuf_free(&tmp);
            return -1;
        }
        (void) unlink(tmp->data);
        if ((tfd = open(tmp->data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                        0600)) < 0
            || write(tfd, fresh, sizeof(fresh)) != (ssize_t) sizeof(fresh)
            || fsync(tfd) < 0) {
            strbuf_printf(why, "create %s: %m", tmp->data);
            if (tfd >= 0)
                close(tfd);
            (void) unlink(tmp->data);
            strbuf_free(&tmp);
            OPENSSL_cleanse(fresh, sizeof(fresh));
            return -1;
        }
        close(tfd);
        OPENSSL_cleanse(fresh, sizeof(fresh));
        /* link(2): whoever comes first wins, everybody reads the winner. */
        if (link(tmp->data, path) < 0 && errno != EEXIST) {
            strbuf_printf(why, "link %s to %s: %m", tmp->data, path);
            (void) unlink(tmp->data);
            strbuf_free(&tmp);
            return -1;
        }
        (void) unlink(tmp->data);
        strbuf_free(&tmp);
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        strbuf_printf(why, "open %s: %m", path);
        return -1;
    }
    n = read(fd, secret, TLS_TICKET_SECRET_LEN);
    close(fd);
    if (n != TLS_TICKET_SECRET_LEN) {
        strbuf_printf(why, "%s: expected %d bytes of secret, got %ld", path,
                      TLS_TICKET_SECRET_LEN, (long) n);
        return -1;
    }
    return 0;
}

typedef struct TLS_TICKET_KEY {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char mac[32];
} TLS_TICKET_KEY;

/* The keys of one period: HMAC-SHA256(secret, label || period). */
static void tls_ticket_key(const TLS_SERVER *srv, uint64_t period,
                           TLS_TICKET_KEY *key)
{
    static const char *labels[] = {"postern ticket name",
        "postern ticket aes", "postern ticket mac"};
    unsigned char *out[] = {key->name, key->aes, key->mac};
    size_t out_len[] = {sizeof(key->name), sizeof(key->aes),
        sizeof(key->mac)};
    unsigned char msg[64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len;

    for (size_t i = 0; i < 3; i++) {
        size_t len = strlen(labels[i]);

        memcpy(msg, labels[i], len);
        for (int b = 0; b < 8; b++)
            msg[len + (size_t) b] = (unsigned char) (period >> (56 - 8 * b));
        HMAC(EVP_sha256(), srv->secret, sizeof(srv->secret), msg, len + 8, md,
             &md_len);
        memcpy(out[i], md, out_len[i]);
    }
    OPENSSL_cleanse(md, sizeof(md));
}

static int tls_ticket_mac_init(EVP_MAC_CTX *hctx, TLS_TICKET_KEY *key)
{
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                                  key->mac, sizeof(key->mac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

static int tls_ticket_cb(SSL *ssl, unsigned char key_name[16],
                         unsigned char *iv, EVP_CIPHER_CTX *cctx,
                         EVP_MAC_CTX *hctx, int enc)
{
    TLS_SERVER *srv = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    uint64_t period = (uint64_t) time(NULL) / (uint64_t) srv->session_timeout;
    TLS_TICKET_KEY key;
    int rc = 0;

    if (enc) {
        tls_ticket_key(srv, period, &key);
        memcpy(key_name, key.name, sizeof(key.name));
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) == 1
            && EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes,
                                  iv) == 1
            && tls_ticket_mac_init(hctx, &key) == 1)
            rc = 1;
        else
            rc = -1;
    } else {
        /* This period's key, or the previous one (then issue a new one). */
        for (int age = 0; age < 2 && rc == 0; age++) {
            tls_ticket_key(srv, period - (uint64_t) age, &key);
            if (memcmp(key_name, key.name, sizeof(key.name)) != 0)
                continue;
            if (tls_ticket_mac_init(hctx, &key) != 1
                || EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes,
                                      iv) != 1)
                rc = -1;
            else
                rc = age == 0 ? 1 : 2;
        }
    }
    OPENSSL_cleanse(&key, sizeof(key));
    return rc;
}

/* --- the context ------------------------------------------------------ */

TLS_SERVER *tls_server_create(const TLS_SERVER_CONF *conf, STRBUF *why)
{
    TLS_SERVER *srv = xcalloc(1, sizeof(*srv));
    int have_cert = 0;

    srv->origin = xstrdup(conf->origin);
    srv->loglevel = conf->loglevel;
    srv->session_timeout = conf->session_timeout > 0 ? conf->session_timeout
        : 3600;
    if ((srv->ctx = tls_ctx_new(TLS_server_method(), conf->protocols,
                                conf->cipher_grade, conf->high_cipherlist,
                                conf->medium_cipherlist,
                                conf->exclude_ciphers, conf->groups,
                                conf->origin, why)) == NULL)
        goto fail;
    SSL_CTX_set_app_data(srv->ctx, srv);
    if (conf->preempt_cipherlist)
        SSL_CTX_set_options(srv->ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);

    /* Keys and certificates. */
    if (*conf->chain_files) {
        if (tls_load_chain_files(srv->ctx, conf->chain_files, why) < 0)
            goto fail;
        have_cert = 1;
    } else {
        if (*conf->cert_file) {
            if (tls_load_pair(srv->ctx, conf->cert_file, conf->key_file,
                              why) < 0)
                goto fail;
            have_cert = 1;
        }
        if (*conf->eccert_file) {
            if (tls_load_pair(srv->ctx, conf->eccert_file, conf->eckey_file,
                              why) < 0)
                goto fail;
            have_cert = 1;
        }
    }
    if (!have_cert) {
        strbuf_set(why, "no server certificate and key are configured");
        goto fail;
    }

    /* Resumption: stateless tickets only, no per-process cache. */
    SSL_CTX_set_session_cache_mode(srv->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_timeout(srv->ctx, (long) srv->session_timeout);
    if (conf->ticket_secret_file && *conf->ticket_secret_file) {
        if (tls_ticket_secret(conf->ticket_secret_file, srv->secret, why) < 0)
            goto fail;
        srv->tickets = 1;
        SSL_CTX_set_session_id_context(srv->ctx,
                                       (const unsigned char *) srv->origin,
                                       (unsigned int) strlen(srv->origin));
        SSL_CTX_set_num_tickets(srv->ctx, 1);
        if (SSL_CTX_set_tlsext_ticket_key_evp_cb(srv->ctx,
                                                 tls_ticket_cb) != 1) {
            tls_error_text(why, "cannot install the session ticket keys");
            goto fail;
        }
    } else {
        SSL_CTX_set_options(srv->ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(srv->ctx, 0);
    }
    return srv;

fail:
    tls_server_free(&srv);
    return NULL;
}

void tls_server_free(TLS_SERVER **srvp)
{
    TLS_SERVER *srv = *srvp;

    if (srv == NULL)
        return;
    SSL_CTX_free(srv->ctx);
    OPENSSL_cleanse(srv->secret, sizeof(srv->secret));
    free(srv->origin);
    free(srv);
    *srvp = NULL;
}

TLS_SESS *tls_server_start(TLS_SERVER *srv, STREAM *s, int timeout,
                           STRBUF *why)
{
    TLS_SESS *sess;
    SSL    *ssl;

    if (s->wfd != s->fd) {
        strbuf_set(why, "TLS needs a network connection");
        return NULL;
    }
    /* Nothing sent before the handshake may be read as if sent after. */
    stream_purge_input(s);
    ERR_clear_error();
    if ((ssl = SSL_new(srv->ctx)) == NULL) {
        tls_error_text(why, "cannot create a TLS session");
        return NULL;
    }
    if ((sess = tls_session_start(ssl, s, timeout, 1, why)) != NULL
        && srv->loglevel >= 2)
        msg_info("%s: TLS handshake done%s", srv->origin,
                 SSL_session_reused(sess->ssl) ? " (session reused)" : "");
    return sess;
}
