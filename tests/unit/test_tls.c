/*
 * test_tls - lib/tls: protocol lists, loading keys and certificates, and
 * real handshakes between the server and the client side over a
 * socketpair, each with its STREAM: data both ways (lines longer than a
 * TLS record), the client's verdict on the certificate (untrusted,
 * trusted, verified), SNI, protocol ranges that do not meet, resumption
 * through the client's cache and the server's tickets, peers that close
 * or talk plaintext in the middle of the handshake, and what
 * tls_session_free() leaves behind.
 *
 * The certificates are made at start-up with the openssl command into the
 * test's temporary directory: a CA, an RSA server certificate with two
 * DNS names it signed, an ECDSA one, a self-signed one, a second
 * unrelated CA, and a forgery: a CA with the same name as ours but
 * another key, and a certificate it signed without key identifiers.
 *
 * The server runs in a thread; cmocka's asserts stay in the main thread,
 * the thread only records what happened.  alarm() turns a hang into a
 * failure.
 */
#include "unit.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/ssl.h>

#include "tls/tls.h"
#include "tls/tls_int.h"
#include "util/argv.h"
#include "util/stream.h"

#define TIMEOUT         10              /* seconds per stream call */
#define LINE_LIMIT      300000
#define HANG_ALARM      60              /* valgrind is slow */
#define LINGER          10000           /* ms a raw peer stays at most */

static char dir[128];

/* DIR/name in one of a few rotating buffers. */
static const char *path(const char *name)
{
    static char bufs[8][256];
    static int next;
    char *buf = bufs[next++ % 8];

    snprintf(buf, sizeof(bufs[0]), "%s/%s", dir, name);
    return buf;
}

/* --- certificates ------------------------------------------------------- */

static const char gen_script[] =
    "set -e\n"
    "exec >gen.log 2>&1\n"
    "ca() {\n"
    "  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \\\n"
    "    -nodes -keyout $1.key -out $1.pem -subj \"/CN=$2\" -days 30 \\\n"
    "    -addext basicConstraints=critical,CA:TRUE \\\n"
    "    -addext keyUsage=critical,keyCertSign,cRLSign\n"
    "}\n"
    "leaf() {\n"
    "  openssl req -new -newkey $2 -nodes -keyout $1.key -out $1.csr \\\n"
    "    -subj \"/CN=$5\"\n"
    "  printf 'basicConstraints=CA:FALSE\\nsubjectAltName=%s\\n%s\\n' \\\n"
    "    \"$4\" \"$6\" > $1.ext\n"
    "  openssl x509 -req -in $1.csr -CA $3.pem -CAkey $3.key \\\n"
    "    -CAcreateserial -days 30 -extfile $1.ext -out $1.pem\n"
    "}\n"
    "ca ca 'Test CA'\n"
    "ca other 'Other CA'\n"
    "ca evil 'Test CA'\n"
    "leaf server rsa:2048 ca DNS:mail.example.test,DNS:mx.example.test \\\n"
    "  mail.example.test ''\n"
    "leaf ecdsa 'ec -pkeyopt ec_paramgen_curve:prime256v1' ca \\\n"
    "  DNS:mail.example.test ec.example.test ''\n"
    "leaf forged rsa:2048 evil DNS:evil.example.test evil.example.test \\\n"
    "  'authorityKeyIdentifier=none\nsubjectKeyIdentifier=none'\n"
    "openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key \\\n"
    "  -out self.pem -subj /CN=mail.example.test -days 30 \\\n"
    "  -addext subjectAltName=DNS:mail.example.test\n"
    /* Key first, then its chain (smtpd_tls_chain_files). */
    "cat ecdsa.key ecdsa.pem ca.pem > ecchain.pem\n"
    "cat server.pem ca.pem > badchain.pem\n"
    "cat server.key server.pem > combined.pem\n";

static int setup_certs(void **state)
{
    char cmd[512];

    (void) state;
    snprintf(dir, sizeof(dir), "%s", unit_tmpdir());
    (void) unit_write_file("gen.sh", gen_script);
    snprintf(cmd, sizeof(cmd), "cd '%s' && sh gen.sh || cat gen.log", dir);
    if (system(cmd) != 0 || access(path("self.pem"), R_OK) != 0) {
        fprintf(stderr, "cannot make the test certificates\n");
        return -1;
    }
    return 0;
}

/* --- configurations ----------------------------------------------------- */

static void server_conf(TLS_SERVER_CONF *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->origin = "test";
    conf->cert_file = path("server.pem");
    conf->key_file = path("server.key");
    conf->eccert_file = "";
    conf->eckey_file = "";
    conf->chain_files = "";
    conf->protocols = ">=TLSv1.2";
    conf->cipher_grade = "medium";
    conf->high_cipherlist = "aNULL:-aNULL:HIGH:@STRENGTH";
    conf->medium_cipherlist = "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH";
    conf->exclude_ciphers = "";
    conf->groups = "X25519 X448 prime256v1 secp521r1 secp384r1";
    conf->ticket_secret_file = "";
    conf->session_timeout = 3600;
}

static void client_conf(TLS_CLIENT_CONF *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->origin = "test";
    conf->CAfile = path("ca.pem");
    conf->CApath = "";
    conf->cert_file = "";
    conf->key_file = "";
    conf->protocols = ">=TLSv1";
    conf->cipher_grade = "medium";
    conf->high_cipherlist = "aNULL:-aNULL:HIGH:@STRENGTH";
    conf->medium_cipherlist = "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH";
    conf->exclude_ciphers = "";
    conf->groups = "X25519 prime256v1";
    conf->session_cache = 1;
}

static TLS_SERVER *make_server(const TLS_SERVER_CONF *conf)
{
    STRBUF *why = strbuf_alloc(64);
    TLS_SERVER *srv = tls_server_create(conf, why);

    if (srv == NULL)
        fail_msg("tls_server_create: %s", why->data);
    strbuf_free(&why);
    return srv;
}

static TLS_CLIENT *make_client(const TLS_CLIENT_CONF *conf)
{
    STRBUF *why = strbuf_alloc(64);
    TLS_CLIENT *clnt = tls_client_create(conf, why);

    if (clnt == NULL)
        fail_msg("tls_client_create: %s", why->data);
    strbuf_free(&why);
    return clnt;
}

/* --- connections -------------------------------------------------------- */

/*
 * A socketpair under the alarm: our end (sv[0]) as a STREAM, the other
 * end for a peer thread, which closes it, or with conn_open_both() as a
 * STREAM of the test's own too.
 */
typedef struct CONN {
    int     sv[2];                      /* ours, the peer's */
    STREAM *s;                          /* on sv[0] */
    STREAM *ss;                         /* NULL, or on sv[1] */
    pthread_t tid;                      /* the peer thread */
    int     running;                    /* ... not joined yet */
} CONN;

static void conn_open(CONN *c)
{
    memset(c, 0, sizeof(*c));
    alarm(HANG_ALARM);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, c->sv), 0);
    c->s = stream_open(c->sv[0], TIMEOUT, LINE_LIMIT);
}

static void conn_open_both(CONN *c)
{
    conn_open(c);
    c->ss = stream_open(c->sv[1], TIMEOUT, LINE_LIMIT);
}

static void conn_peer(CONN *c, void *(*peer_main) (void *), void *arg)
{
    assert_int_equal(pthread_create(&c->tid, NULL, peer_main, arg), 0);
    c->running = 1;
}

static void conn_join(CONN *c)
{
    if (c->running)
        assert_int_equal(pthread_join(c->tid, NULL), 0);
    c->running = 0;
}

/* Close our end (the peer sees EOF), wait for the peer, disarm. */
static void conn_close(CONN *c)
{
    stream_close(&c->s);
    conn_join(c);
    stream_close(&c->ss);
    alarm(0);
}

/* --- the server thread -------------------------------------------------- */

/*
 * The server: handshake, then an echo protocol until EOF or "QUIT":
 * "BIN n" reads n bytes and sends them back, any other line comes back
 * as "echo: LINE".
 */
typedef struct SERVER_RUN {
    TLS_SERVER *srv;
    int     fd;
    int     timeout;                    /* for tls_server_start */
    STREAM *s;                          /* set: the caller's, left open */
    int     ok;                         /* handshake done */
    int     reused;
    char    why[512];
    char    sni[256];
    char    describe[512];
    char    first[64];                  /* the first line after handshake */
    size_t  lines;                      /* lines received */
    size_t  longest;
    int     eof;                        /* the client's close came */
} SERVER_RUN;

static void server_echo(SERVER_RUN *r, STREAM *s)
{
    STRBUF *line = strbuf_alloc(256);
    STRBUF *bin = strbuf_alloc(256);
    ssize_t n;
    size_t count;

    while ((n = stream_get_line(s, line)) > 0) {
        if (r->lines++ == 0)
            snprintf(r->first, sizeof(r->first), "%s", line->data);
        if (line->len > r->longest)
            r->longest = line->len;
        if (strcmp(line->data, "QUIT\r\n") == 0)
            break;
        if (sscanf(line->data, "BIN %zu", &count) == 1) {
            strbuf_reset(bin);
            if (stream_read_exact(s, bin, count) < 0)
                break;
            stream_write(s, bin->data, bin->len);
        } else {
            stream_puts(s, "echo: ");
            stream_write(s, line->data, line->len);
        }
        if (stream_flush(s) < 0)
            break;
    }
    r->eof = n == 0;
    strbuf_free(&line);
    strbuf_free(&bin);
}

static void *server_main(void *arg)
{
    SERVER_RUN *r = arg;
    STREAM *s = r->s ? r->s : stream_open(r->fd, TIMEOUT, LINE_LIMIT);
    STRBUF *why = strbuf_alloc(64);
    STRBUF *desc = strbuf_alloc(64);
    TLS_SESS *sess;
    const char *sni;

    if ((sess = tls_server_start(r->srv, s, r->timeout, why)) == NULL) {
        snprintf(r->why, sizeof(r->why), "%s", why->data);
    } else {
        r->ok = 1;
        r->reused = tls_session_reused(sess);
        sni = SSL_get_servername(sess->ssl, TLSEXT_NAMETYPE_host_name);
        snprintf(r->sni, sizeof(r->sni), "%s", sni ? sni : "");
        tls_session_describe(sess, desc);
        snprintf(r->describe, sizeof(r->describe), "%s", desc->data);
        server_echo(r, s);
        tls_session_free(&sess, s);
    }
    strbuf_free(&why);
    strbuf_free(&desc);
    if (r->s == NULL) {
        stream_free(&s);
        close(r->fd);
    }
    return NULL;
}

/* The server on c's other end, on c->ss as it is when that is set. */
static void server_start(SERVER_RUN *r, TLS_SERVER *srv, CONN *c)
{
    memset(r, 0, sizeof(*r));
    r->srv = srv;
    r->fd = c->sv[1];
    r->s = c->ss;
    conn_peer(c, server_main, r);
}

/* --- the client side ---------------------------------------------------- */

typedef struct CLIENT_RUN {
    const char *servername;
    const char *match;                  /* names, space-separated */
    const char *cache_key;
    int     ok;
    int     reused;
    int     trusted;
    int     verified;
    char    verify_error[256];
    char    why[512];
    char    version[32];
    char    describe[512];
    char    subject[256];
    char    issuer[256];
    char    echo[64];                   /* the answer to "hello" */
} CLIENT_RUN;

/*
 * One connection: handshake, one line there and back (TLS 1.3 tickets
 * arrive with it), QUIT.  The server's results are in *sr afterwards.
 */
static void run_pair(TLS_SERVER *srv, TLS_CLIENT *clnt, CLIENT_RUN *cr,
                     SERVER_RUN *sr)
{
    ARGV *match = cr->match ? argv_split(cr->match, " ") : NULL;
    STRBUF *why = strbuf_alloc(64);
    STRBUF *buf = strbuf_alloc(64);
    STRBUF *issuer = strbuf_alloc(64);
    TLS_SESS *sess;
    CONN c;

    conn_open(&c);
    server_start(sr, srv, &c);
    sess = tls_client_start(clnt, c.s, 0, cr->servername, match,
                            cr->cache_key, why);
    if (sess == NULL) {
        cr->ok = 0;
        snprintf(cr->why, sizeof(cr->why), "%s", why->data);
    } else {
        cr->ok = 1;
        cr->reused = tls_session_reused(sess);
        cr->trusted = tls_session_trusted(sess);
        cr->verified = tls_session_verified(sess);
        snprintf(cr->verify_error, sizeof(cr->verify_error), "%s",
                 tls_session_verify_error(sess));
        snprintf(cr->version, sizeof(cr->version), "%s",
                 tls_session_version(sess));
        tls_session_describe(sess, buf);
        snprintf(cr->describe, sizeof(cr->describe), "%s", buf->data);
        tls_session_peer_names(sess, buf, issuer);
        snprintf(cr->subject, sizeof(cr->subject), "%s", buf->data);
        snprintf(cr->issuer, sizeof(cr->issuer), "%s", issuer->data);
        stream_puts(c.s, "hello\r\n");
        if (stream_flush(c.s) == 0 && stream_get_line(c.s, buf) > 0)
            snprintf(cr->echo, sizeof(cr->echo), "%s", buf->data);
        stream_puts(c.s, "QUIT\r\n");
        (void) stream_flush(c.s);
        tls_session_free(&sess, c.s);
    }
    conn_close(&c);
    argv_free(&match);
    strbuf_free(&why);
    strbuf_free(&buf);
    strbuf_free(&issuer);
}

/* --- fixtures ----------------------------------------------------------- */

/*
 * A test's server and client, made by pair_make() from configurations
 * that pair_conf() fills and the test may change in between, and the
 * results of the last pair_run().
 */
typedef struct PAIR {
    TLS_SERVER_CONF sconf;
    TLS_CLIENT_CONF cconf;
    TLS_SERVER *srv;
    TLS_CLIENT *clnt;
    SERVER_RUN sr;
    CLIENT_RUN cr;
} PAIR;

static void pair_conf(PAIR *p)
{
    memset(p, 0, sizeof(*p));
    server_conf(&p->sconf);
    client_conf(&p->cconf);
}

static void pair_make(PAIR *p)
{
    p->srv = make_server(&p->sconf);
    p->clnt = make_client(&p->cconf);
}

/* The default server and client. */
static void pair_init(PAIR *p)
{
    pair_conf(p);
    pair_make(p);
}

static void pair_free(PAIR *p)
{
    tls_client_free(&p->clnt);
    tls_server_free(&p->srv);
}

/* run_pair() with the client asking for these names (NULL: none). */
static void pair_run(PAIR *p, const char *servername, const char *match,
                     const char *cache_key)
{
    memset(&p->cr, 0, sizeof(p->cr));
    p->cr.servername = servername;
    p->cr.match = match;
    p->cr.cache_key = cache_key;
    run_pair(p->srv, p->clnt, &p->cr, &p->sr);
}

/* Our client's handshake on c, which must succeed. */
static TLS_SESS *client_start(TLS_CLIENT *clnt, CONN *c,
                              const char *servername)
{
    STRBUF *why = strbuf_alloc(64);
    TLS_SESS *sess = tls_client_start(clnt, c->s, 0, servername, NULL, NULL,
                                      why);

    if (sess == NULL)
        fail_msg("tls_client_start: %s", why->data);
    strbuf_free(&why);
    return sess;
}

/* --- protocol lists ----------------------------------------------------- */

static void test_parse_protocols(void **state)
{
    static const struct {
        const char *spec;
        int     min;
        int     max;
        long    no;
    } good[] = {
        {">=TLSv1.2", TLS1_2_VERSION, TLS1_3_VERSION, 0},
        {">=TLSv1.3", TLS1_3_VERSION, TLS1_3_VERSION, 0},
        {"<=TLSv1.2", SSL3_VERSION, TLS1_2_VERSION, 0},
        {">=TLSv1 <=TLSv1.2", TLS1_VERSION, TLS1_2_VERSION, 0},
        {"!SSLv2, !SSLv3", TLS1_VERSION, TLS1_3_VERSION, 0},
        {"!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", TLS1_2_VERSION, TLS1_3_VERSION, 0},
        {"!TLSv1.3", SSL3_VERSION, TLS1_2_VERSION, 0},
        {"TLSv1.2 TLSv1.3", TLS1_2_VERSION, TLS1_3_VERSION, 0},
        {"tlsv1.2", TLS1_2_VERSION, TLS1_2_VERSION, 0},
        /* A hole in the middle becomes an option. */
        {"TLSv1 TLSv1.3", TLS1_VERSION, TLS1_3_VERSION,
         SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2},
        {"!SSLv3 !TLSv1.2", TLS1_VERSION, TLS1_3_VERSION, SSL_OP_NO_TLSv1_2},
        {"TLSv1.2 TLSv1.3 !TLSv1.3", TLS1_2_VERSION, TLS1_2_VERSION, 0},
        {"", SSL3_VERSION, TLS1_3_VERSION, 0},
    };
    static const char *bad[] = {
        "TLSv9", ">=TLSv1.4", "!TLSv1.0", ">TLSv1.2", ">=TLSv1.3 <=TLSv1.2",
        "SSLv2", "!SSLv3 !TLSv1 !TLSv1.1 !TLSv1.2 !TLSv1.3",
    };
    STRBUF *why = strbuf_alloc(64);
    int min;
    int max;
    long no;

    (void) state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        strbuf_reset(why);
        if (tls_parse_protocols(good[i].spec, &min, &max, &no, why) != 0)
            fail_msg("\"%s\": %s", good[i].spec, why->data);
        if (min != good[i].min || max != good[i].max || no != good[i].no)
            fail_msg("\"%s\": min %#x max %#x no %#lx", good[i].spec, min,
                     max, no);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strbuf_reset(why);
        if (tls_parse_protocols(bad[i], &min, &max, &no, why) != -1)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_non_null(strstr(why->data, bad[i]));
    }
    strbuf_free(&why);
}

/* --- building contexts -------------------------------------------------- */

static void expect_server_error(const TLS_SERVER_CONF *conf, const char *text)
{
    STRBUF *why = strbuf_alloc(64);
    TLS_SERVER *srv = tls_server_create(conf, why);

    if (srv != NULL)
        fail_msg("tls_server_create succeeded; expected \"%s\"", text);
    if (strstr(why->data, text) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", why->data, text);
    strbuf_free(&why);
}

static void test_server_create(void **state)
{
    TLS_SERVER_CONF conf;
    TLS_SERVER *srv;
    char missing[256];

    (void) state;
    /* Good: RSA, RSA+ECDSA, a combined file, a chain file. */
    server_conf(&conf);
    srv = make_server(&conf);
    tls_server_free(&srv);
    assert_null(srv);
    tls_server_free(&srv);              /* NULL is fine */
    conf.eccert_file = path("ecdsa.pem");
    conf.eckey_file = path("ecdsa.key");
    srv = make_server(&conf);
    tls_server_free(&srv);
    server_conf(&conf);
    conf.cert_file = path("combined.pem");
    conf.key_file = "";
    srv = make_server(&conf);
    tls_server_free(&srv);
    server_conf(&conf);
    conf.chain_files = path("ecchain.pem");
    srv = make_server(&conf);
    tls_server_free(&srv);

    /* Bad. */
    snprintf(missing, sizeof(missing), "%s", path("missing.pem"));
    server_conf(&conf);
    conf.cert_file = missing;
    expect_server_error(&conf, missing);
    server_conf(&conf);
    conf.key_file = path("ecdsa.key");  /* not this certificate's key */
    expect_server_error(&conf, "do not match");
    server_conf(&conf);
    conf.key_file = path("ca.pem");     /* no key at all */
    expect_server_error(&conf, "without a private key");
    server_conf(&conf);
    conf.cert_file = "";
    expect_server_error(&conf, "no server certificate");
    server_conf(&conf);
    conf.chain_files = path("badchain.pem");
    expect_server_error(&conf, "before its private key");
    server_conf(&conf);
    conf.protocols = ">=TLSv1.9";
    expect_server_error(&conf, "TLSv1.9");
    server_conf(&conf);
    conf.cipher_grade = "export";
    expect_server_error(&conf, "export");
    server_conf(&conf);
    conf.high_cipherlist = "NOSUCHCIPHER";
    conf.cipher_grade = "high";
    expect_server_error(&conf, "NOSUCHCIPHER");
    server_conf(&conf);
    unit_log_reset();
    conf.groups = "nosuchgroup";
    expect_server_error(&conf, "nosuchgroup");
    assert_true(unit_logged("nosuchgroup"));
    server_conf(&conf);
    conf.groups = "nosuchgroup X25519";
    srv = make_server(&conf);
    tls_server_free(&srv);
}

static void test_client_create(void **state)
{
    TLS_CLIENT_CONF conf;
    TLS_CLIENT *clnt;
    STRBUF *why = strbuf_alloc(64);
    char missing[256];

    (void) state;
    client_conf(&conf);
    clnt = make_client(&conf);
    tls_client_free(&clnt);
    assert_null(clnt);
    tls_client_free(&clnt);
    conf.CAfile = "";                   /* no trust anchors: fine */
    conf.session_cache = 0;
    clnt = make_client(&conf);
    tls_client_free(&clnt);

    snprintf(missing, sizeof(missing), "%s", path("missing-ca.pem"));
    client_conf(&conf);
    conf.CAfile = missing;
    assert_null(tls_client_create(&conf, why));
    assert_non_null(strstr(why->data, missing));
    client_conf(&conf);
    conf.protocols = "SSLv2";
    assert_null(tls_client_create(&conf, why));
    assert_non_null(strstr(why->data, "SSLv2"));
    client_conf(&conf);
    conf.cert_file = path("server.pem");
    conf.key_file = path("ecdsa.key");
    assert_null(tls_client_create(&conf, why));
    assert_non_null(strstr(why->data, "server.pem"));
    strbuf_free(&why);
}

/* --- handshakes and data ------------------------------------------------ */

static void test_handshake_data(void **state)
{
    PAIR p;
    CONN c;
    TLS_SESS *sess;
    STREAM *s;
    STRBUF *big = strbuf_alloc(100000);
    STRBUF *got = strbuf_alloc(100000);

    (void) state;
    pair_init(&p);
    conn_open(&c);
    server_start(&p.sr, p.srv, &c);
    sess = client_start(p.clnt, &c, "mail.example.test");
    s = c.s;
    assert_ptr_equal(s->io, &tls_stream_io);
    assert_string_equal(tls_session_version(sess), "TLSv1.3");
    assert_int_equal(tls_session_reused(sess), 0);

    /* A short line, then one of 100000 bytes: many records each way. */
    stream_puts(s, "hello\r\n");
    assert_int_equal(stream_flush(s), 0);
    assert_int_equal(stream_get_line(s, got), 13);
    assert_string_equal(got->data, "echo: hello\r\n");
    for (size_t i = 0; i < 99998; i++)
        strbuf_addch(big, 'a' + (int) (i % 26));
    strbuf_cat(big, "\r\n");
    stream_write(s, big->data, big->len);
    assert_int_equal(stream_flush(s), 0);
    assert_int_equal(stream_get_line(s, got), 100006);
    assert_memory_equal(got->data, "echo: ", 6);
    assert_memory_equal(got->data + 6, big->data, big->len);

    /* Binary bytes, NULs included, in one write larger than a record. */
    strbuf_reset(big);
    for (size_t i = 0; i < 40000; i++)
        strbuf_addch(big, (int) ((i * 7) & 0xff));
    stream_printf(s, "BIN %zu\r\n", big->len);
    stream_write(s, big->data, big->len);
    assert_int_equal(stream_flush(s), 0);
    strbuf_reset(got);
    assert_int_equal(stream_read_exact(s, got, big->len), 0);
    assert_memory_equal(got->data, big->data, big->len);
    assert_int_equal(stream_pending(s), 0);

    /* Our close_notify ends the server's loop with EOF. */
    tls_session_free(&sess, s);
    assert_null(sess);
    conn_close(&c);
    assert_true(p.sr.ok);
    assert_int_equal(p.sr.lines, 3);
    assert_int_equal(p.sr.longest, 100000);
    assert_true(p.sr.eof);
    assert_string_equal(p.sr.sni, "mail.example.test");

    pair_free(&p);
    strbuf_free(&big);
    strbuf_free(&got);
}

/* What each side says about the session. */
static void test_describe(void **state)
{
    PAIR p;

    (void) state;
    pair_init(&p);
    pair_run(&p, NULL, NULL, NULL);
    assert_true(p.cr.ok);
    assert_true(p.sr.ok);
    assert_string_equal(p.cr.echo, "echo: hello\r\n");
    assert_string_equal(p.cr.version, "TLSv1.3");
    assert_non_null(strstr(p.cr.describe, "TLSv1.3 with cipher TLS_"));
    assert_non_null(strstr(p.cr.describe, "key-exchange X25519"));
    assert_non_null(strstr(p.cr.describe,
                           "server-signature RSA-PSS (2048 bits)"));
    assert_non_null(strstr(p.cr.describe, "server-digest SHA256"));
    assert_non_null(strstr(p.sr.describe, "TLSv1.3 with cipher TLS_"));
    assert_non_null(strstr(p.sr.describe,
                           "server-signature RSA-PSS (2048 bits)"));
    assert_string_equal(p.cr.subject, "mail.example.test");
    assert_string_equal(p.cr.issuer, "Test CA");
    tls_server_free(&p.srv);

    /* ECDSA only; both; ECDSA with TLS 1.2. */
    p.sconf.cert_file = "";
    p.sconf.eccert_file = path("ecdsa.pem");
    p.sconf.eckey_file = path("ecdsa.key");
    p.srv = make_server(&p.sconf);
    pair_run(&p, NULL, NULL, NULL);
    assert_true(p.cr.ok);
    assert_non_null(strstr(p.cr.describe, "server-signature ECDSA (P-256)"));
    assert_non_null(strstr(p.sr.describe, "server-signature ECDSA (P-256)"));
    assert_string_equal(p.cr.subject, "ec.example.test");
    tls_server_free(&p.srv);

    /* RSA and ECDSA together: either may serve. */
    p.sconf.cert_file = path("server.pem");
    p.sconf.key_file = path("server.key");
    p.srv = make_server(&p.sconf);
    pair_run(&p, NULL, NULL, NULL);
    assert_true(p.cr.ok);
    assert_non_null(strstr(p.cr.describe, "server-signature "));
    assert_string_equal(p.cr.echo, "echo: hello\r\n");
    tls_server_free(&p.srv);

    p.sconf.cert_file = "";
    p.sconf.protocols = "<=TLSv1.2";
    p.srv = make_server(&p.sconf);
    pair_run(&p, NULL, NULL, NULL);
    assert_true(p.cr.ok);
    assert_string_equal(p.cr.version, "TLSv1.2");
    assert_non_null(strstr(p.cr.describe,
                           "TLSv1.2 with cipher ECDHE-ECDSA-"));
    assert_string_equal(p.cr.echo, "echo: hello\r\n");
    pair_free(&p);
}

/* --- the client's verdict ----------------------------------------------- */

typedef struct VERIFY_CASE {
    const char *cert;                   /* the server's */
    const char *ca;                     /* the client's trust anchors */
    const char *match;
    int     trusted;
    int     verified;
    const char *error;                  /* part of verify_error */
} VERIFY_CASE;

static void test_verify(void **state)
{
    static const VERIFY_CASE cases[] = {
        {"server", "ca.pem", "mail.example.test", 1, 1, ""},
        {"server", "ca.pem", "mx.example.test", 1, 1, ""},
        {"server", "ca.pem", "other.test MX.EXAMPLE.TEST", 1, 1, ""},
        {"server", "ca.pem", "other.example.test", 1, 0, "hostname mismatch"},
        {"server", "ca.pem", "example.test", 1, 0, "hostname mismatch"},
        {"server", "ca.pem", NULL, 1, 0, "no name to match"},
        {"server", "other.pem", "mail.example.test", 0, 0, "issuer"},
        {"server", "other.pem", "wrong.example.test", 0, 0, "issuer"},
        {"server", "", "mail.example.test", 0, 0, "issuer"},
        {"self", "ca.pem", "mail.example.test", 0, 0, "self-signed"},
        {"ecdsa", "ca.pem", "mail.example.test", 1, 1, ""},
        /* Our CA's name, another key: a name mismatch must not hide it. */
        {"forged", "ca.pem", "mail.example.test", 0, 0, "signature"},
        {"forged", "ca.pem", "evil.example.test", 0, 0, "signature"},
        {"forged", "ca.pem", NULL, 0, 0, "signature"},
    };
    PAIR p;
    char cert[256];
    char key[256];

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const VERIFY_CASE *c = cases + i;

        pair_conf(&p);
        snprintf(cert, sizeof(cert), "%s/%s.pem", dir, c->cert);
        snprintf(key, sizeof(key), "%s/%s.key", dir, c->cert);
        if (strcmp(c->cert, "ecdsa") == 0) {
            p.sconf.cert_file = "";
            p.sconf.eccert_file = cert;
            p.sconf.eckey_file = key;
        } else {
            p.sconf.cert_file = cert;
            p.sconf.key_file = key;
        }
        p.cconf.CAfile = *c->ca ? path(c->ca) : "";
        pair_make(&p);
        pair_run(&p, "mail.example.test", c->match, NULL);
        /* The handshake never fails over the certificate. */
        if (!p.cr.ok || !p.sr.ok)
            fail_msg("case %zu: handshake: %s / %s", i, p.cr.why, p.sr.why);
        if (p.cr.trusted != c->trusted || p.cr.verified != c->verified
            || strstr(p.cr.verify_error, c->error) == NULL
            || (*c->error == 0 && *p.cr.verify_error != 0))
            fail_msg("case %zu (%s, %s, %s): trusted %d verified %d "
                     "error \"%s\"", i, c->cert, c->ca,
                     c->match ? c->match : "(none)", p.cr.trusted,
                     p.cr.verified, p.cr.verify_error);
        assert_string_equal(p.cr.echo, "echo: hello\r\n");
        pair_free(&p);
    }
}

/* SNI: sent when asked for, not otherwise. */
static void test_sni(void **state)
{
    PAIR p;

    (void) state;
    pair_init(&p);
    pair_run(&p, "mx.example.test", NULL, NULL);
    assert_true(p.cr.ok);
    assert_string_equal(p.sr.sni, "mx.example.test");
    pair_run(&p, NULL, NULL, NULL);
    assert_true(p.cr.ok);
    assert_string_equal(p.sr.sni, "");
    pair_run(&p, "", NULL, NULL);
    assert_true(p.cr.ok);
    assert_string_equal(p.sr.sni, "");
    pair_free(&p);
}

/* --- protocol ranges ---------------------------------------------------- */

static void test_protocol_mismatch(void **state)
{
    static const struct {
        const char *server;
        const char *client;
        const char *version;            /* NULL: must fail */
    } cases[] = {
        {">=TLSv1.3", "<=TLSv1.2", NULL},
        {"<=TLSv1.2", ">=TLSv1.3", NULL},
        {"TLSv1.2", "!TLSv1.2", NULL},
        {">=TLSv1.2", "<=TLSv1.2", "TLSv1.2"},
        {">=TLSv1.2", "TLSv1.2", "TLSv1.2"},
        {">=TLSv1.2", ">=TLSv1", "TLSv1.3"},
    };
    PAIR p;

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *want = cases[i].version;

        pair_conf(&p);
        p.sconf.protocols = cases[i].server;
        p.cconf.protocols = cases[i].client;
        pair_make(&p);
        pair_run(&p, NULL, NULL, NULL);
        if (want == NULL) {
            if (p.cr.ok || p.sr.ok)
                fail_msg("case %zu: %s vs %s: handshake succeeded", i,
                         cases[i].server, cases[i].client);
            /* Both sides say why, OpenSSL's words. */
            if (*p.cr.why == 0 || *p.sr.why == 0)
                fail_msg("case %zu: no reason: \"%s\" / \"%s\"", i,
                         p.cr.why, p.sr.why);
            assert_non_null(strstr(p.sr.why, "protocol"));
        } else {
            if (!p.cr.ok || !p.sr.ok)
                fail_msg("case %zu: %s / %s", i, p.cr.why, p.sr.why);
            assert_string_equal(p.cr.version, want);
        }
        pair_free(&p);
    }
}

/* --- resumption --------------------------------------------------------- */

/* Two connections with the same key: the second is reused on both sides. */
static void expect_reuse(TLS_SERVER *srv1, TLS_SERVER *srv2, TLS_CLIENT *clnt,
                         const char *key1, const char *key2, int reused)
{
    SERVER_RUN sr;
    CLIENT_RUN cr;

    memset(&cr, 0, sizeof(cr));
    cr.cache_key = key1;
    cr.match = "mail.example.test";
    run_pair(srv1, clnt, &cr, &sr);
    assert_true(cr.ok);
    assert_false(cr.reused);
    assert_false(sr.reused);
    assert_true(cr.verified);
    memset(&cr, 0, sizeof(cr));
    cr.cache_key = key2;
    cr.match = "mail.example.test";
    run_pair(srv2, clnt, &cr, &sr);
    assert_true(cr.ok);
    if (cr.reused != reused || sr.reused != reused)
        fail_msg("expected reused %d, client %d server %d", reused,
                 cr.reused, sr.reused);
    /* A resumed session keeps its verdict. */
    assert_true(cr.verified);
    assert_string_equal(cr.echo, "echo: hello\r\n");
}

static void test_resumption(void **state)
{
    TLS_SERVER_CONF sconf;
    TLS_CLIENT_CONF cconf;
    TLS_SERVER *srv;
    TLS_SERVER *srv2;
    TLS_CLIENT *clnt;
    struct stat st;
    char secret[256];
    char secret2[256];

    (void) state;
    snprintf(secret, sizeof(secret), "%s", path("ticket.key"));
    snprintf(secret2, sizeof(secret2), "%s", path("ticket2.key"));
    server_conf(&sconf);
    sconf.ticket_secret_file = secret;
    client_conf(&cconf);
    srv = make_server(&sconf);
    /* The secret is made when missing: 32 bytes, private. */
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* TLS 1.3, the same key: reused; another key: not. */
    clnt = make_client(&cconf);
    expect_reuse(srv, srv, clnt, "mx1", "mx1", 1);
    expect_reuse(srv, srv, clnt, "mx2", "mx3", 0);
    /* Reused again and again (each time with a fresh ticket). */
    expect_reuse(srv, srv, clnt, "mx1", "mx1", 1);
    tls_client_free(&clnt);

    /* Another server process with the same secret takes the ticket. */
    srv2 = make_server(&sconf);
    clnt = make_client(&cconf);
    expect_reuse(srv, srv2, clnt, "mx1", "mx1", 1);
    tls_server_free(&srv2);

    /* Another secret: a full handshake, no failure. */
    sconf.ticket_secret_file = secret2;
    srv2 = make_server(&sconf);
    expect_reuse(srv, srv2, clnt, "mx4", "mx4", 0);
    tls_server_free(&srv2);

    /* No secret: no tickets. */
    sconf.ticket_secret_file = "";
    srv2 = make_server(&sconf);
    expect_reuse(srv2, srv2, clnt, "mx5", "mx5", 0);
    tls_server_free(&srv2);
    tls_client_free(&clnt);

    /* No client cache: never reused. */
    cconf.session_cache = 0;
    clnt = make_client(&cconf);
    expect_reuse(srv, srv, clnt, "mx1", "mx1", 0);
    expect_reuse(srv, srv, clnt, NULL, NULL, 0);
    tls_client_free(&clnt);
    cconf.session_cache = 1;
    clnt = make_client(&cconf);
    expect_reuse(srv, srv, clnt, NULL, NULL, 0);
    tls_client_free(&clnt);
    tls_server_free(&srv);

    /* TLS 1.2 tickets. */
    sconf.ticket_secret_file = secret;
    sconf.protocols = "<=TLSv1.2";
    srv = make_server(&sconf);
    clnt = make_client(&cconf);
    expect_reuse(srv, srv, clnt, "mx1", "mx1", 1);
    expect_reuse(srv, srv, clnt, "mx2", "mx3", 0);
    tls_client_free(&clnt);
    tls_server_free(&srv);
}

/*
 * Ticket keys change every session_timeout seconds; a ticket made with
 * the previous period's key is still taken (and renewed), an older one
 * not.  With a timeout of 2 s: a ticket made in the last second of a
 * period and used 1.2 s later, in the next period, is resumed.
 */
static void test_ticket_periods(void **state)
{
    PAIR p;
    time_t now;

    (void) state;
    pair_conf(&p);
    p.sconf.ticket_secret_file = path("ticket.key");
    p.sconf.session_timeout = 2;
    pair_make(&p);
    /* Wait for the start of an odd second: the last of a period. */
    now = time(NULL);
    while (time(NULL) == now || time(NULL) % 2 == 0)
        poll(NULL, 0, 10);
    pair_run(&p, NULL, NULL, "k");
    assert_true(p.cr.ok);
    poll(NULL, 0, 1200);
    pair_run(&p, NULL, NULL, "k");
    assert_true(p.cr.ok);
    assert_true(p.sr.ok);
    if (!p.cr.reused || !p.sr.reused)
        fail_msg("a ticket of the previous period was not resumed");

    /* Three seconds later the ticket is too old. */
    sleep(3);
    pair_run(&p, NULL, NULL, "k");
    assert_true(p.cr.ok);
    assert_true(p.sr.ok);
    assert_false(p.cr.reused);
    assert_false(p.sr.reused);
    pair_free(&p);
}

static void test_ticket_secret_bad(void **state)
{
    TLS_SERVER_CONF sconf;
    STRBUF *why = strbuf_alloc(64);
    char name[256];

    (void) state;
    server_conf(&sconf);
    snprintf(name, sizeof(name), "%s", unit_write_file("short.key", "short"));
    sconf.ticket_secret_file = name;
    assert_null(tls_server_create(&sconf, why));
    assert_non_null(strstr(why->data, "expected 32 bytes"));
    snprintf(name, sizeof(name), "%s", path("nodir/ticket.key"));
    assert_null(tls_server_create(&sconf, why));
    assert_non_null(strstr(why->data, "nodir"));
    strbuf_free(&why);
}

/* --- misbehaving peers -------------------------------------------------- */

/*
 * A raw peer: reads up to 'want' bytes (0: none) into got, writes send,
 * stays until our side closes or linger_ms, then closes.
 */
typedef struct RAW_PEER {
    int     fd;
    size_t  want;
    const char *send;
    size_t  send_len;
    int     linger_ms;                  /* most to wait before closing */
    STRBUF *got;
} RAW_PEER;

static void *raw_peer_main(void *arg)
{
    RAW_PEER *p = arg;
    char chunk[4096];

    while (p->got->len < p->want) {
        ssize_t n = read(p->fd, chunk, sizeof(chunk));

        if (n <= 0)
            break;
        strbuf_append(p->got, chunk, (size_t) n);
    }
    if (p->send_len)
        (void) send(p->fd, p->send, p->send_len, MSG_NOSIGNAL);
    /* Stay (reading whatever comes) until our side closes, or linger_ms. */
    if (p->linger_ms) {
        long long end = stream_now_ms() + p->linger_ms;
        struct pollfd pfd = {p->fd, POLLIN, 0};

        while (stream_now_ms() < end
               && poll(&pfd, 1, (int) (end - stream_now_ms())) > 0
               && read(p->fd, chunk, sizeof(chunk)) > 0)
            ;
    }
    close(p->fd);
    return NULL;
}

/*
 * Our server (clnt NULL) or our client against a raw peer on c's other
 * end: the handshake fails and leaves the stream on its plain transport.
 * Returns how long the handshake took.
 */
static long long vs_raw(TLS_SERVER *srv, TLS_CLIENT *clnt,
                        const char *cache_key, RAW_PEER *peer, int timeout,
                        STRBUF *why)
{
    TLS_SESS *sess;
    long long start;
    CONN c;

    conn_open(&c);
    peer->fd = c.sv[1];
    strbuf_reset(peer->got);
    conn_peer(&c, raw_peer_main, peer);
    start = stream_now_ms();
    if (clnt == NULL)
        sess = tls_server_start(srv, c.s, timeout, why);
    else
        sess = tls_client_start(clnt, c.s, timeout, "mail.example.test",
                                NULL, cache_key, why);
    start = stream_now_ms() - start;
    assert_null(sess);
    assert_true(why->len > 0);
    assert_ptr_not_equal(c.s->io, &tls_stream_io);
    if (clnt == NULL)
        assert_null(c.s->io_ctx);
    conn_close(&c);
    return start;
}

/* Our server against a raw peer that sends data. */
static long long server_vs_raw(TLS_SERVER *srv, const char *data, size_t len,
                               int linger_ms, int timeout, STRBUF *why)
{
    STRBUF *got = strbuf_alloc(64);
    RAW_PEER peer = {.send = data, .send_len = len, .linger_ms = linger_ms,
        .got = got};
    long long ms = vs_raw(srv, NULL, NULL, &peer, timeout, why);

    strbuf_free(&got);
    return ms;
}

/* Our client against a raw peer that reads 'want' bytes first. */
static long long client_vs_raw(TLS_CLIENT *clnt, const char *cache_key,
                               size_t want, const char *data, size_t len,
                               int linger_ms, int timeout, STRBUF *why,
                               STRBUF *got)
{
    RAW_PEER peer = {.want = want, .send = data, .send_len = len,
        .linger_ms = linger_ms, .got = got};

    return vs_raw(NULL, clnt, cache_key, &peer, timeout, why);
}

static void test_bad_peers(void **state)
{
    static const char smtp[] = "220 mail.example.test ESMTP\r\n";
    static const char ehlo[] = "EHLO client.example.test\r\n";
    PAIR p;
    TLS_SERVER *srv;
    TLS_CLIENT *clnt;
    STRBUF *why = strbuf_alloc(64);
    STRBUF *hello = strbuf_alloc(64);
    long long ms;

    (void) state;
    pair_init(&p);
    srv = p.srv;
    clnt = p.clnt;

    /* Server: the peer closes at once. */
    ms = server_vs_raw(srv, NULL, 0, 0, 0, why);
    assert_string_equal(why->data, "lost connection during the handshake");
    assert_true(ms < 5000);
    /* Server: plaintext instead of a ClientHello. */
    ms = server_vs_raw(srv, ehlo, strlen(ehlo), 0, 0, why);
    assert_true(ms < 5000);
    assert_string_not_equal(why->data, "lost connection during the handshake");
    /* ... and the peer stays: still an error, not a wait. */
    ms = server_vs_raw(srv, ehlo, strlen(ehlo), LINGER, 0, why);
    assert_true(ms < 5000);
    /* Server: silence ends with the handshake timeout (1 s). */
    ms = server_vs_raw(srv, NULL, 0, LINGER, 1, why);
    assert_string_equal(why->data, "handshake timeout");
    assert_true(ms >= 900 && ms < 5000);

    /* Client: the peer reads the ClientHello and closes. */
    ms = client_vs_raw(clnt, "raw", 1, NULL, 0, 0, 0, why, hello);
    assert_string_equal(why->data, "lost connection during the handshake");
    assert_true(hello->len > 5);
    assert_int_equal((unsigned char) hello->data[0], 0x16);
    /* Client: a plaintext greeting. */
    ms = client_vs_raw(clnt, "raw", 1, smtp, strlen(smtp), LINGER, 0, why,
                       hello);
    assert_true(ms < 5000);
    assert_string_not_equal(why->data, "lost connection during the handshake");
    /* Client: silence. */
    ms = client_vs_raw(clnt, "raw", 1, NULL, 0, LINGER, 1, why, hello);
    assert_string_equal(why->data, "handshake timeout");
    assert_true(ms >= 900 && ms < 5000);

    /* Server: half a ClientHello, then the close. */
    ms = server_vs_raw(srv, hello->data, hello->len / 2, 0, 0, why);
    assert_string_equal(why->data, "lost connection during the handshake");
    /* Half a ClientHello, then silence. */
    ms = server_vs_raw(srv, hello->data, hello->len / 2, LINGER, 1, why);
    assert_string_equal(why->data, "handshake timeout");
    /* A ClientHello with its body garbled. */
    for (size_t i = 60; i < hello->len; i++)
        hello->data[i] = (char) 0xa5;
    ms = server_vs_raw(srv, hello->data, hello->len, LINGER, 0, why);
    assert_true(ms < 5000);

    pair_free(&p);
    strbuf_free(&why);
    strbuf_free(&hello);
}

/* A cached session whose handshake failed is not offered again. */
static void test_failed_session_forgotten(void **state)
{
    PAIR p;
    STRBUF *why = strbuf_alloc(64);
    STRBUF *hello = strbuf_alloc(64);

    (void) state;
    pair_conf(&p);
    p.sconf.ticket_secret_file = path("ticket.key");
    pair_make(&p);
    expect_reuse(p.srv, p.srv, p.clnt, "k", "k", 1);
    (void) client_vs_raw(p.clnt, "k", 1, NULL, 0, 0, 0, why, hello);
    assert_string_equal(why->data, "lost connection during the handshake");
    pair_run(&p, NULL, NULL, "k");
    assert_true(p.cr.ok);
    assert_false(p.cr.reused);
    pair_free(&p);
    strbuf_free(&why);
    strbuf_free(&hello);
}

/* A server that goes away after the handshake: EOF or error, no hang. */
static void test_peer_gone_after_handshake(void **state)
{
    PAIR p;
    CONN c;
    TLS_SESS *sess;
    STRBUF *line = strbuf_alloc(64);

    (void) state;
    pair_init(&p);
    conn_open(&c);
    server_start(&p.sr, p.srv, &c);
    sess = client_start(p.clnt, &c, NULL);
    stream_puts(c.s, "QUIT\r\n");
    assert_int_equal(stream_flush(c.s), 0);
    /* The server frees its session (close_notify) and closes. */
    assert_true(stream_get_line(c.s, line) <= 0);
    assert_false(stream_timed_out(c.s));
    conn_join(&c);
    /* Writing into the closed connection fails cleanly (no SIGPIPE). */
    for (int i = 0; i < 4; i++)
        stream_puts(c.s, "more\r\n");
    (void) stream_flush(c.s);
    tls_session_free(&sess, c.s);
    conn_close(&c);
    pair_free(&p);
    strbuf_free(&line);
}

/* --- STARTTLS ----------------------------------------------------------- */

/*
 * STARTTLS on streams that already carried plaintext: a server thread
 * starts TLS on c->ss, we on c->s; one line there and back, then we free
 * our session.  Nothing here asserts while the thread runs.  Returns
 * whether the client got a reply (in reply); the server's results are in
 * p->sr.
 */
static int starttls_exchange(PAIR *p, CONN *c, STRBUF *reply)
{
    STRBUF *why = strbuf_alloc(64);
    STREAM *s = c->s;
    TLS_SESS *sess;
    int ok = 0;

    strbuf_reset(reply);
    server_start(&p->sr, p->srv, c);
    sess = tls_client_start(p->clnt, s, 0, NULL, NULL, NULL, why);
    if (sess != NULL) {
        stream_puts(s, "hello\r\n");
        ok = stream_flush(s) == 0 && stream_get_line(s, reply) > 0;
        tls_session_free(&sess, s);
    } else
        (void) shutdown(s->fd, SHUT_RDWR);
    conn_join(c);
    strbuf_free(&why);
    return ok;
}

/*
 * Plaintext pipelined after STARTTLS is thrown away (CVE-2011-0411), and
 * after tls_session_free() the stream talks plaintext again over the
 * same descriptor, which stays open.
 */
static void test_starttls_and_free(void **state)
{
    PAIR p;
    CONN c;
    TLS_SESS *sess = NULL;
    STRBUF *why = strbuf_alloc(64);
    STRBUF *line = strbuf_alloc(64);

    (void) state;
    pair_init(&p);
    conn_open_both(&c);
    stream_puts(c.s, "STARTTLS\r\nRCPT TO:<injected@example.test>\r\n");
    assert_int_equal(stream_flush(c.s), 0);
    assert_true(stream_get_line(c.ss, line) > 0);
    assert_string_equal(line->data, "STARTTLS\r\n");
    assert_true(stream_pending(c.ss) > 0);      /* the injection */

    /* The server starts TLS on its stream as it is. */
    assert_true(starttls_exchange(&p, &c, line));
    assert_string_equal(line->data, "echo: hello\r\n");
    assert_ptr_not_equal(c.s->io, &tls_stream_io);
    assert_null(c.s->io_ctx);
    assert_true(p.sr.ok);
    assert_string_equal(p.sr.first, "hello\r\n");
    assert_true(p.sr.eof);
    assert_ptr_not_equal(c.ss->io, &tls_stream_io);

    /* Both descriptors are open; plaintext flows again. */
    assert_true(fcntl(c.sv[0], F_GETFD) >= 0);
    assert_true(fcntl(c.sv[1], F_GETFD) >= 0);
    stream_clear_flags(c.ss);
    stream_puts(c.s, "plain again\r\n");
    assert_int_equal(stream_flush(c.s), 0);
    assert_true(stream_get_line(c.ss, line) > 0);
    assert_string_equal(line->data, "plain again\r\n");
    conn_close(&c);

    /*
     * The client side too: a "220" reply to STARTTLS with a forged reply
     * pipelined behind it in plaintext (a man in the middle) must not be
     * read as the first reply over TLS.
     */
    conn_open_both(&c);
    stream_puts(c.ss, "220 go ahead\r\n250 injected\r\n");
    assert_int_equal(stream_flush(c.ss), 0);
    assert_true(stream_get_line(c.s, line) > 0);
    assert_string_equal(line->data, "220 go ahead\r\n");
    assert_true(starttls_exchange(&p, &c, line));
    assert_string_equal(line->data, "echo: hello\r\n");
    assert_true(p.sr.ok);
    conn_close(&c);

    /* A stream that writes elsewhere cannot do TLS. */
    conn_open(&c);
    stream_set_write_fd(c.s, c.sv[1]);
    assert_null(tls_server_start(p.srv, c.s, 0, why));
    assert_non_null(strstr(why->data, "network connection"));
    conn_close(&c);
    close(c.sv[1]);

    /* Freeing nothing is fine. */
    tls_session_free(&sess, NULL);
    pair_free(&p);
    strbuf_free(&why);
    strbuf_free(&line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_protocols),
        cmocka_unit_test(test_server_create),
        cmocka_unit_test(test_client_create),
        cmocka_unit_test(test_handshake_data),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_sni),
        cmocka_unit_test(test_protocol_mismatch),
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_ticket_periods),
        cmocka_unit_test(test_ticket_secret_bad),
        cmocka_unit_test(test_bad_peers),
        cmocka_unit_test(test_failed_session_forgotten),
        cmocka_unit_test(test_peer_gone_after_handshake),
        cmocka_unit_test(test_starttls_and_free),
    };

    msg_init("test_tls", 0);
    unit_log_reset();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup_certs, NULL);
}
