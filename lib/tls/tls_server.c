/*
 * tls_server - the server side of TLS: context, handshake, the stream
 * transport and stateless session tickets.  See tls.h.
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

#include "tls/tls.h"
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

struct TLS_SESS {
    SSL    *ssl;
    TLS_SERVER *srv;
    char    error[256];                 /* the last OpenSSL error */
};

/* --- errors ----------------------------------------------------------- */

/* Append OpenSSL's queued errors (the innermost reason last) to why. */
static void tls_error_text(STRBUF *why, const char *what)
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

TLS_SERVER *tls_server_create(const TLS_SERVER_CONF *conf, STRBUF *why)
{
    TLS_SERVER *srv = xcalloc(1, sizeof(*srv));
    STRBUF *ciphers = strbuf_alloc(128);
    ARGV *exclude = NULL;
    int min_version;
    int max_version;
    long no_options;
    int have_cert = 0;

    srv->origin = xstrdup(conf->origin);
    srv->loglevel = conf->loglevel;
    srv->session_timeout = conf->session_timeout > 0 ? conf->session_timeout
        : 3600;
    ERR_clear_error();
    if (tls_parse_protocols(conf->protocols, &min_version, &max_version,
                            &no_options, why) < 0)
        goto fail;
    if ((srv->ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        tls_error_text(why, "cannot create a TLS context");
        goto fail;
    }
    SSL_CTX_set_app_data(srv->ctx, srv);
    if (SSL_CTX_set_min_proto_version(srv->ctx, min_version) != 1
        || SSL_CTX_set_max_proto_version(srv->ctx, max_version) != 1) {
        tls_error_text(why, "cannot set the TLS protocol range");
        goto fail;
    }
    SSL_CTX_set_options(srv->ctx, no_options | SSL_OP_NO_COMPRESSION
                        | SSL_OP_NO_RENEGOTIATION
                        | SSL_OP_IGNORE_UNEXPECTED_EOF
                        | (conf->preempt_cipherlist
                           ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    /* Idle sessions give their buffers back: memory per session. */
    SSL_CTX_set_mode(srv->ctx, SSL_MODE_RELEASE_BUFFERS
                     | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    /* Ciphers (TLS 1.2 and older; TLS 1.3 suites keep OpenSSL's list). */
    if (strcasecmp(conf->cipher_grade, "high") == 0)
        strbuf_set(ciphers, conf->high_cipherlist);
    else if (strcasecmp(conf->cipher_grade, "medium") == 0)
        strbuf_set(ciphers, conf->medium_cipherlist);
    else {
        strbuf_printf(why, "unsupported cipher grade \"%s\" (use high or "
                      "medium)", conf->cipher_grade);
        goto fail;
    }
    exclude = argv_split(conf->exclude_ciphers, ", \t\r\n:");
    for (size_t i = 0; i < exclude->argc; i++)
        strbuf_printf_append(ciphers, ":!%s", exclude->argv[i]);
    if (SSL_CTX_set_cipher_list(srv->ctx, ciphers->data) != 1) {
        STRBUF *err = strbuf_alloc(128);

        tls_error_text(err, "no usable cipher");
        strbuf_printf(why, "cipher list \"%s\": %s", ciphers->data, err->data);
        strbuf_free(&err);
        goto fail;
    }
    if (tls_set_groups(srv->ctx, conf->groups, conf->origin) < 0) {
        strbuf_printf(why, "no usable key-exchange group in \"%s\"",
                      conf->groups);
        goto fail;
    }

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
    strbuf_free(&ciphers);
    argv_free(&exclude);
    return srv;

fail:
    strbuf_free(&ciphers);
    argv_free(&exclude);
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

static const STREAM_IO tls_stream_io = {tls_read, tls_write, tls_pending};

TLS_SESS *tls_server_start(TLS_SERVER *srv, STREAM *s, int timeout,
                           STRBUF *why)
{
    TLS_SESS *sess;
    long long deadline;
    int flags;
    int rc;

    if (s->wfd != s->fd) {
        strbuf_set(why, "TLS needs a network connection");
        return NULL;
    }
    /* Nothing sent before the handshake may be read as if sent after. */
    stream_purge_input(s);
    sess = xcalloc(1, sizeof(*sess));
    sess->srv = srv;
    ERR_clear_error();
    if ((sess->ssl = SSL_new(srv->ctx)) == NULL
        || SSL_set_fd(sess->ssl, s->fd) != 1) {
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
        if ((rc = SSL_accept(sess->ssl)) == 1)
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
    if (srv->loglevel >= 2)
        msg_info("%s: TLS handshake done%s", srv->origin,
                 SSL_session_reused(sess->ssl) ? " (session reused)" : "");
    return sess;

fail:
    SSL_free(sess->ssl);
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
    if (SSL_session_reused(ssl) || (key = SSL_get_privatekey(ssl)) == NULL)
        return;
    if (SSL_get_signature_type_nid(ssl, &nid) == 1) {
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
    if (SSL_get_signature_nid(ssl, &nid) == 1 && nid != NID_undef)
        strbuf_printf_append(out, " server-digest %s", OBJ_nid2sn(nid));
}
