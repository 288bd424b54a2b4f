/*
 * test_xsasl - lib/sasl: the server side and the client side of Cyrus
 * SASL driven against each other in one process, over a sasldb made by
 * saslpasswd2 in the test's temporary directory.
 *
 * For PLAIN, LOGIN, CRAM-MD5 and SCRAM-SHA-256: success, a wrong
 * password, an unknown user; which mechanisms each side offers or picks
 * under the security options, before and after TLS; base64 both ways
 * with bad input; a client facing mechanisms it lacks or may not use;
 * the password store functions; and no password in any log line.
 *
 * libsasl2 is set up once per process (xsasl_server_init() panics when
 * called twice), so the whole program shares one configuration.
 */
#include "unit.h"

#include "sasl/xsasl.h"
#include "sasl/xsasl_int.h"
#include "util/argv.h"

#define REALM           "example.test"
#define USER            "alice@" REALM
#define PASSWORD        "Tr0ub4dor&3-secret"
#define USER2           "bob@" REALM
#define PASSWORD2       "c0rrect-h0rse"
#define WRONG           "wrong-password-xyz"
#define MECHS           "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256"

static char db_path[256];

static int setup_sasl(void **state)
{
    STRBUF *why = strbuf_alloc(64);
    XSASL_CONF conf;
    char cmd[512];

    (void) state;
    snprintf(db_path, sizeof(db_path), "%s/sasldb2", unit_tmpdir());
    snprintf(cmd, sizeof(cmd), "printf '%%s' '" PASSWORD "' | saslpasswd2 "
             "-p -c -f '%s' -u " REALM " alice", db_path);
    if (system(cmd) != 0) {
        fprintf(stderr, "saslpasswd2 failed\n");
        return -1;
    }
    memset(&conf, 0, sizeof(conf));
    conf.app_name = "smtpd";
    conf.db_path = db_path;
    conf.mech_list = MECHS;
    conf.conf_dir = "";
    if (xsasl_server_init(&conf, why) < 0 || xsasl_client_init(why) < 0) {
        fprintf(stderr, "%s\n", why->data);
        return -1;
    }
    /* Twice is fine for the client. */
    if (xsasl_client_init(why) < 0)
        return -1;
    strbuf_free(&why);
    unit_log_reset();
    return 0;
}

static int teardown_sasl(void **state)
{
    (void) state;
    xsasl_server_done();
    xsasl_server_done();                /* twice is fine */
    return 0;
}

/* --- helpers ------------------------------------------------------------ */

static XSASL_SESS *server_new(const char *realm, const char *sec_opts)
{
    STRBUF *why = strbuf_alloc(64);
    XSASL_SESS *sess = xsasl_session_new("smtp", "mail.example.test", realm,
                                         "192.0.2.1;25", "198.51.100.7;4711",
                                         sec_opts, why);

    if (sess == NULL)
        fail_msg("xsasl_session_new: %s", why->data);
    strbuf_free(&why);
    return sess;
}

static XSASL_CLNT *client_new(const char *user, const char *password,
                              const char *sec_opts)
{
    STRBUF *why = strbuf_alloc(64);
    XSASL_CLNT *clnt = xsasl_client_new("smtp", "mail.example.test", user,
                                        password, sec_opts, why);

    if (clnt == NULL)
        fail_msg("xsasl_client_new: %s", why->data);
    strbuf_free(&why);
    return clnt;
}

/*
 * A test's peers: a server session and a client with the usual settings
 * (new_server() and new_client() replace them), and buffers for what
 * the calls write.
 */
typedef struct PEERS {
    XSASL_SESS *srv;
    XSASL_CLNT *clnt;
    STRBUF *mech;                       /* the client's pick */
    STRBUF *resp;                       /* the client's responses */
    STRBUF *out;                        /* the server's challenges */
    STRBUF *why;
} PEERS;

static void new_server(PEERS *p)
{
    xsasl_session_free(&p->srv);
    p->srv = server_new("", "noanonymous");
}

static void new_client(PEERS *p, const char *sec_opts)
{
    xsasl_client_free(&p->clnt);
    p->clnt = client_new(USER, PASSWORD, sec_opts);
}

static void peers_open(PEERS *p)
{
    memset(p, 0, sizeof(*p));
    new_server(p);
    new_client(p, "noanonymous");
    p->mech = strbuf_alloc(64);
    p->resp = strbuf_alloc(64);
    p->out = strbuf_alloc(64);
    p->why = strbuf_alloc(64);
}

static void peers_close(PEERS *p)
{
    xsasl_client_free(&p->clnt);
    xsasl_session_free(&p->srv);
    strbuf_free(&p->mech);
    strbuf_free(&p->resp);
    strbuf_free(&p->out);
    strbuf_free(&p->why);
}

/* Is word in the space-separated list? */
static int has_word(const char *list, const char *word)
{
    size_t len = strlen(word);

    for (const char *cp = list; (cp = strstr(cp, word)) != NULL; cp += len)
        if ((cp == list || cp[-1] == ' ') && (cp[len] == 0 || cp[len] == ' '))
            return 1;
    return 0;
}

typedef struct RUN {
    const char *filter;                 /* the client's mechanism filter */
    const char *server_mechs;           /* NULL: what the server offers */
    int     client_rc;                  /* xsasl_client_start() */
    int     server_rc;                  /* the server's last answer */
    int     rounds;                     /* challenges from the server */
    char    mech[64];
    char    username[128];
    char    why[256];
} RUN;

/*
 * A whole exchange as SMTP carries it: the client picks from the
 * server's list and makes the initial response, then challenges and
 * responses go back and forth, base64, until the server is done or
 * fails.
 */
static void exchange(XSASL_SESS *srv, XSASL_CLNT *clnt, RUN *r)
{
    STRBUF *mech = strbuf_alloc(64);
    STRBUF *init = strbuf_alloc(64);
    STRBUF *challenge = strbuf_alloc(64);
    STRBUF *response = strbuf_alloc(64);
    STRBUF *why = strbuf_alloc(64);
    const char *offered = r->server_mechs ? r->server_mechs
        : xsasl_session_mechs(srv);
    int rc;

    r->rounds = 0;
    r->server_rc = XSASL_FAIL;
    r->mech[0] = r->username[0] = r->why[0] = 0;
    r->client_rc = xsasl_client_start(clnt, offered, r->filter ? r->filter
                                      : "", mech, init, why);
    if (r->client_rc != XSASL_MORE && r->client_rc != XSASL_DONE) {
        snprintf(r->why, sizeof(r->why), "%s", why->data);
        goto done;
    }
    snprintf(r->mech, sizeof(r->mech), "%s", mech->data);
    rc = xsasl_start(srv, mech->data, init->len ? init->data : NULL,
                     challenge, why);
    while (rc == XSASL_MORE && r->rounds++ < 10) {
        if (xsasl_client_step(clnt, challenge->data, response, why) < 0)
            break;
        rc = xsasl_step(srv, response->data, challenge, why);
    }
    r->server_rc = rc;
    if (rc == XSASL_DONE) {
        const char *name = xsasl_username(srv);

        snprintf(r->username, sizeof(r->username), "%s", name ? name : "");
        assert_string_equal(xsasl_method(srv), mech->data);
    } else
        snprintf(r->why, sizeof(r->why), "%s", why->data);
done:
    strbuf_free(&mech);
    strbuf_free(&init);
    strbuf_free(&challenge);
    strbuf_free(&response);
    strbuf_free(&why);
}

/* One exchange with mechanism mech, fresh sessions on both sides. */
static void login(const char *mech, const char *realm, const char *user,
                  const char *password, RUN *r)
{
    XSASL_SESS *srv = server_new(realm, "noanonymous");
    XSASL_CLNT *clnt = client_new(user, password, "noanonymous");

    memset(r, 0, sizeof(*r));
    r->filter = mech;
    exchange(srv, clnt, r);
    xsasl_client_free(&clnt);
    xsasl_session_free(&srv);
}

/* --- base64 ------------------------------------------------------------- */

static void test_base64(void **state)
{
    static const struct {
        const char *plain;
        size_t  len;
        const char *b64;
    } good[] = {
        {"", 0, ""},
        {"a", 1, "YQ=="},
        {"ab", 2, "YWI="},
        {"abc", 3, "YWJj"},
        {"\0alice\0pw", 9, "AGFsaWNlAHB3"},
        {"\xff\xfe\xfd", 3, "//79"},
    };
    static const char *bad[] = {
        "Y", "YQ", "YQ=", "YQ===", "Y*==", "YQ==YQ==", "====", "=YQ=",
        "YW Jj", "YWJj\n", "\x80YWJj", "YWJj!", "-_8=",
    };
    STRBUF *out = strbuf_alloc(1);
    STRBUF *back = strbuf_alloc(1);
    STRBUF *big = strbuf_alloc(1);

    (void) state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        xsasl_encode64(good[i].plain, (unsigned) good[i].len, out);
        assert_string_equal(out->data, good[i].b64);
        assert_int_equal(out->len, strlen(good[i].b64));
        assert_int_equal(xsasl_decode64(good[i].b64, back), 0);
        assert_int_equal(back->len, good[i].len);
        assert_memory_equal(back->data, good[i].plain, good[i].len);
        assert_int_equal(back->data[back->len], 0);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (xsasl_decode64(bad[i], back) != -1)
            fail_msg("\"%s\" decoded as base64 (%zu bytes)", bad[i],
                     back->len);

    /* Big, every byte value, into a buffer that held something longer. */
    for (size_t i = 0; i < 70000; i++)
        strbuf_addch(big, (int) (i * 31 % 256));
    xsasl_encode64(big->data, (unsigned) big->len, out);
    assert_int_equal(out->len, (70000 + 2) / 3 * 4);
    assert_int_equal(xsasl_decode64(out->data, back), 0);
    assert_int_equal(back->len, big->len);
    assert_memory_equal(back->data, big->data, big->len);
    assert_int_equal(xsasl_decode64("YWJj", back), 0);
    assert_int_equal(back->len, 3);
    assert_string_equal(back->data, "abc");
    strbuf_free(&out);
    strbuf_free(&back);
    strbuf_free(&big);
}

/* Bad base64 from either peer is reported as such. */
static void test_bad_base64_exchange(void **state)
{
    PEERS p;

    (void) state;
    peers_open(&p);
    assert_int_equal(xsasl_start(p.srv, "PLAIN", "not base64!", p.out,
                                 p.why), XSASL_BADB64);
    assert_non_null(strstr(p.why->data, "base64"));
    assert_int_equal(xsasl_start(p.srv, "LOGIN", NULL, p.out, p.why),
                     XSASL_MORE);
    assert_int_equal(xsasl_step(p.srv, "YW*j", p.out, p.why), XSASL_BADB64);
    assert_non_null(strstr(p.why->data, "base64"));

    /* The client: a challenge that is not base64. */
    assert_int_equal(xsasl_client_start(p.clnt, "LOGIN", "", p.mech, p.resp,
                                        p.why), XSASL_MORE);
    assert_string_equal(p.mech->data, "LOGIN");
    assert_int_equal(xsasl_client_step(p.clnt, "VXNlcm5hbWU6?", p.resp,
                                       p.why), XSASL_BADB64);
    assert_non_null(strstr(p.why->data, "base64"));

    xsasl_client_free(&p.clnt);
    assert_null(p.clnt);
    xsasl_client_free(&p.clnt);
    xsasl_session_free(&p.srv);
    assert_null(p.srv);
    xsasl_session_free(&p.srv);
    peers_close(&p);
}

/* --- security options --------------------------------------------------- */

static void test_parse_sec_opts(void **state)
{
    STRBUF *why = strbuf_alloc(64);
    unsigned flags;

    (void) state;
    assert_int_equal(xsasl_parse_sec_opts("", &flags, why), 0);
    assert_int_equal(flags, 0);
    assert_int_equal(xsasl_parse_sec_opts("noplaintext, noanonymous", &flags,
                                          why), 0);
    assert_int_equal(flags, SASL_SEC_NOPLAINTEXT | SASL_SEC_NOANONYMOUS);
    assert_int_equal(xsasl_parse_sec_opts(" NoActive\tnodictionary ,"
                                          "forward_secrecy mutual_auth",
                                          &flags, why), 0);
    assert_int_equal(flags, SASL_SEC_NOACTIVE | SASL_SEC_NODICTIONARY
                     | SASL_SEC_FORWARD_SECRECY | SASL_SEC_MUTUAL_AUTH);
    assert_int_equal(xsasl_parse_sec_opts("noanonymous, noplain", &flags,
                                          why), -1);
    assert_non_null(strstr(why->data, "\"noplain\""));
    assert_int_equal(xsasl_parse_sec_opts("noanonymous:noplaintext", &flags,
                                          why), -1);
    assert_null(xsasl_session_new("smtp", "mail.example.test", "", NULL,
                                  NULL, "bogus", why));
    assert_non_null(strstr(why->data, "bogus"));
    assert_null(xsasl_client_new("smtp", "mail.example.test", USER,
                                 PASSWORD, "bogus2", why));
    assert_non_null(strstr(why->data, "bogus2"));
    strbuf_free(&why);
}

/* What the server offers, before and after TLS. */
static void test_server_mechs(void **state)
{
    static const struct {
        const char *opts;
        const char *tls_opts;           /* NULL: no TLS */
        const char *want;               /* in any order */
        const char *not;
    } cases[] = {
        {"noanonymous", NULL, MECHS, "ANONYMOUS DIGEST-MD5 NTLM"},
        {"", NULL, MECHS, "ANONYMOUS"},
        {"noplaintext, noanonymous", NULL, "CRAM-MD5 SCRAM-SHA-256",
         "PLAIN LOGIN"},
        {"noplaintext, noanonymous", "noanonymous", MECHS, ""},
        {"noplaintext, noanonymous", "noplaintext", "CRAM-MD5 SCRAM-SHA-256",
         "PLAIN LOGIN"},
        {"noanonymous", "noplaintext, noanonymous", "CRAM-MD5 SCRAM-SHA-256",
         "PLAIN LOGIN"},
        {"noanonymous", "mutual_auth", "SCRAM-SHA-256",
         "PLAIN LOGIN CRAM-MD5"},
        {"mutual_auth", NULL, "SCRAM-SHA-256", "PLAIN LOGIN CRAM-MD5"},
    };
    STRBUF *why = strbuf_alloc(64);

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        XSASL_SESS *srv = server_new("", cases[i].opts);
        ARGV *want = argv_split(cases[i].want, " ");
        ARGV *not = argv_split(cases[i].not, " ");
        const char *mechs;

        if (cases[i].tls_opts
            && xsasl_session_tls(srv, 256, cases[i].tls_opts, why) < 0)
            fail_msg("xsasl_session_tls: %s", why->data);
        mechs = xsasl_session_mechs(srv);
        for (size_t j = 0; j < want->argc; j++)
            if (!has_word(mechs, want->argv[j]))
                fail_msg("case %zu: %s missing from \"%s\"", i,
                         want->argv[j], mechs);
        for (size_t j = 0; j < not->argc; j++)
            if (has_word(mechs, not->argv[j]))
                fail_msg("case %zu: %s in \"%s\"", i, not->argv[j], mechs);
        /* What is not offered cannot be used either. */
        for (size_t j = 0; j < not->argc; j++) {
            STRBUF *out = strbuf_alloc(64);

            int rc = xsasl_start(srv, not->argv[j], NULL, out, why);

            /* 538 for a plaintext one refused without TLS, else 504. */
            if (rc != XSASL_NOMECH && rc != XSASL_ENCRYPT)
                fail_msg("case %zu: %s: %d", i, not->argv[j], rc);
            if (i == 2 && rc != XSASL_ENCRYPT)
                fail_msg("case %zu: %s: %d", i, not->argv[j], rc);
            assert_true(why->len > 0);
            strbuf_free(&out);
        }
        argv_free(&want);
        argv_free(&not);
        xsasl_session_free(&srv);
    }
    /* Bad TLS options: -1 with the word. */
    {
        XSASL_SESS *srv = server_new("", "noanonymous");

        assert_int_equal(xsasl_session_tls(srv, 256, "noplaintext, bad3",
                                           why), -1);
        assert_non_null(strstr(why->data, "bad3"));
        xsasl_session_free(&srv);
    }
    strbuf_free(&why);
}

/* What the client picks, before and after TLS. */
static void test_client_mechs(void **state)
{
    static const struct {
        const char *opts;
        const char *tls_opts;           /* NULL: no TLS */
        const char *offered;
        const char *want;               /* NULL: XSASL_NOMECH */
    } cases[] = {
        {"noanonymous", NULL, "PLAIN", "PLAIN"},
        {"noanonymous", NULL, "LOGIN", "LOGIN"},
        {"noplaintext, noanonymous", NULL, "PLAIN LOGIN", NULL},
        {"noplaintext, noanonymous", NULL, "PLAIN LOGIN CRAM-MD5", "CRAM-MD5"},
        {"noplaintext, noanonymous", "noanonymous", "PLAIN", "PLAIN"},
        {"noplaintext, noanonymous", "noplaintext", "LOGIN PLAIN", NULL},
        {"noanonymous", "mutual_auth", "PLAIN CRAM-MD5", NULL},
        {"noanonymous", "mutual_auth", "PLAIN SCRAM-SHA-256 CRAM-MD5",
         "SCRAM-SHA-256"},
        {"noanonymous", NULL, "ANONYMOUS", NULL},
        /* Nothing the client has. */
        {"", NULL, "X-UNKNOWN GSSAPI-NOT-HERE", NULL},
        {"", NULL, "", NULL},
        /* The server lists one the client lacks first: the next one. */
        {"noanonymous", NULL, "X-UNKNOWN PLAIN", "PLAIN"},
    };
    PEERS p;

    (void) state;
    peers_open(&p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;

        new_client(&p, cases[i].opts);
        if (cases[i].tls_opts
            && xsasl_client_tls(p.clnt, 256, cases[i].tls_opts, p.why) < 0)
            fail_msg("xsasl_client_tls: %s", p.why->data);
        strbuf_set(p.why, "");
        rc = xsasl_client_start(p.clnt, cases[i].offered, "", p.mech, p.resp,
                                p.why);
        if (cases[i].want == NULL) {
            if (rc != XSASL_NOMECH)
                fail_msg("case %zu: %d, mechanism %s", i, rc, p.mech->data);
            assert_true(p.why->len > 0);
        } else {
            if (rc != XSASL_MORE && rc != XSASL_DONE)
                fail_msg("case %zu: %d: %s", i, rc, p.why->data);
            assert_string_equal(p.mech->data, cases[i].want);
        }
    }
    peers_close(&p);
}

/* noplaintext is lifted by TLS only when the TLS options say so. */
static void test_client_tls(void **state)
{
    PEERS p;

    (void) state;
    peers_open(&p);
    new_client(&p, "noplaintext, noanonymous");
    assert_int_equal(xsasl_client_start(p.clnt, "PLAIN", "", p.mech, p.resp,
                                        p.why), XSASL_NOMECH);
    new_client(&p, "noplaintext, noanonymous");
    assert_int_equal(xsasl_client_tls(p.clnt, 256, "noanonymous", p.why), 0);
    assert_int_equal(xsasl_client_start(p.clnt, "PLAIN", "", p.mech, p.resp,
                                        p.why), XSASL_DONE);
    assert_string_equal(p.mech->data, "PLAIN");
    new_client(&p, "noanonymous");
    assert_int_equal(xsasl_client_tls(p.clnt, 256, "nosuch", p.why), -1);
    assert_non_null(strstr(p.why->data, "nosuch"));
    peers_close(&p);
}

/* The client's filter (smtp_sasl_mechanism_filter). */
static void test_client_filter(void **state)
{
    PEERS p;

    (void) state;
    peers_open(&p);
    assert_int_equal(xsasl_client_start(p.clnt, "PLAIN LOGIN", "cram-md5",
                                        p.mech, p.resp, p.why), XSASL_NOMECH);
    assert_string_equal(p.why->data, "none of the server's SASL mechanisms "
                        "(PLAIN LOGIN) is allowed");
    new_client(&p, "noanonymous");
    assert_int_equal(xsasl_client_start(p.clnt, MECHS, "login, plain",
                                        p.mech, p.resp, p.why), XSASL_DONE);
    assert_string_equal(p.mech->data, "PLAIN");
    new_client(&p, "noanonymous");
    assert_int_equal(xsasl_client_start(p.clnt, MECHS, "LOGIN", p.mech,
                                        p.resp, p.why), XSASL_MORE);
    assert_string_equal(p.mech->data, "LOGIN");
    assert_string_equal(p.resp->data, "");      /* LOGIN: no initial data */
    peers_close(&p);
}

/* --- exchanges ---------------------------------------------------------- */

static void test_exchanges(void **state)
{
    static const char *mechs[] = {"PLAIN", "LOGIN", "CRAM-MD5",
        "SCRAM-SHA-256"};
    RUN good;
    RUN wrong;
    RUN unknown;
    RUN r;

    (void) state;
    unit_log_reset();
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        login(mechs[i], "", USER, PASSWORD, &good);
        if (good.server_rc != XSASL_DONE)
            fail_msg("%s: %d: %s", mechs[i], good.server_rc, good.why);
        assert_string_equal(good.mech, mechs[i]);
        assert_string_equal(good.username, USER);

        login(mechs[i], "", USER, WRONG, &wrong);
        if (wrong.server_rc != XSASL_FAIL)
            fail_msg("%s, wrong password: %d: %s", mechs[i], wrong.server_rc,
                     wrong.why);
        assert_true(wrong.why[0] != 0);

        login(mechs[i], "", "mallory@" REALM, PASSWORD, &unknown);
        if (unknown.server_rc != XSASL_FAIL)
            fail_msg("%s, unknown user: %d: %s", mechs[i], unknown.server_rc,
                     unknown.why);
        /* Privacy: an unknown user looks like a wrong password. */
        assert_string_equal(unknown.why, wrong.why);

        /* The password of another user. */
        login(mechs[i], "", USER, PASSWORD2, &r);
        assert_int_equal(r.server_rc, XSASL_FAIL);
    }
    /* Challenges each mechanism needs. */
    login("PLAIN", "", USER, PASSWORD, &r);
    assert_int_equal(r.rounds, 0);
    login("LOGIN", "", USER, PASSWORD, &r);
    assert_int_equal(r.rounds, 2);
    login("CRAM-MD5", "", USER, PASSWORD, &r);
    assert_int_equal(r.rounds, 1);
    /* SCRAM: server-first, then server-final, answered empty. */
    login("SCRAM-SHA-256", "", USER, PASSWORD, &r);
    assert_int_equal(r.rounds, 2);

    /* A user name without the domain takes the session's realm. */
    login("PLAIN", REALM, "alice", PASSWORD, &r);
    assert_int_equal(r.server_rc, XSASL_DONE);
    assert_string_equal(r.username, USER);
    login("CRAM-MD5", REALM, "alice", PASSWORD, &r);
    assert_int_equal(r.server_rc, XSASL_DONE);
    login("PLAIN", "", "alice", PASSWORD, &r);
    assert_int_equal(r.server_rc, XSASL_FAIL);

    /* No line logged carries a password. */
    assert_false(unit_logged(PASSWORD));
    assert_false(unit_logged(WRONG));
}

/* Left to pick, the client takes the strongest mechanism offered. */
static void test_client_picks(void **state)
{
    PEERS p;
    RUN r;

    (void) state;
    peers_open(&p);
    memset(&r, 0, sizeof(r));
    exchange(p.srv, p.clnt, &r);
    assert_int_equal(r.server_rc, XSASL_DONE);
    assert_string_equal(r.mech, "SCRAM-SHA-256");

    /* The server's list names one it lacks: the exchange fails cleanly. */
    new_server(&p);
    new_client(&p, "noanonymous");
    memset(&r, 0, sizeof(r));
    r.server_mechs = "DIGEST-MD5";
    exchange(p.srv, p.clnt, &r);
    assert_string_equal(r.mech, "DIGEST-MD5");
    assert_int_equal(r.server_rc, XSASL_NOMECH);
    assert_non_null(strstr(r.why, "mechanism"));
    peers_close(&p);
}

/*
 * SCRAM authenticates the server too: a server-final message with a
 * wrong signature (a server that does not know the password) fails the
 * client, and so does a challenge out of order.
 */
static void test_scram_mutual(void **state)
{
    PEERS p;
    STRBUF *raw = strbuf_alloc(64);
    char *cp;

    (void) state;
    peers_open(&p);
    assert_int_equal(xsasl_client_start(p.clnt, "SCRAM-SHA-256", "", p.mech,
                                        p.resp, p.why), XSASL_MORE);
    assert_int_equal(xsasl_start(p.srv, "SCRAM-SHA-256", p.resp->data, p.out,
                                 p.why), XSASL_MORE);
    assert_int_equal(xsasl_client_step(p.clnt, p.out->data, p.resp, p.why),
                     XSASL_MORE);
    assert_int_equal(xsasl_step(p.srv, p.resp->data, p.out, p.why),
                     XSASL_MORE);
    /* out: base64 of "v=<signature>"; change one signature byte. */
    assert_int_equal(xsasl_decode64(p.out->data, raw), 0);
    assert_memory_equal(raw->data, "v=", 2);
    cp = raw->data + 2;
    *cp = *cp == 'A' ? 'B' : 'A';
    xsasl_encode64(raw->data, (unsigned) raw->len, p.out);
    assert_int_equal(xsasl_client_step(p.clnt, p.out->data, p.resp, p.why),
                     XSASL_FAIL);
    assert_true(p.why->len > 0);

    /* A server-first message that is not one. */
    new_client(&p, "noanonymous");
    assert_int_equal(xsasl_client_start(p.clnt, "SCRAM-SHA-256", "", p.mech,
                                        p.resp, p.why), XSASL_MORE);
    xsasl_encode64("v=AAAA", 6, p.out);
    assert_int_equal(xsasl_client_step(p.clnt, p.out->data, p.resp, p.why),
                     XSASL_FAIL);
    peers_close(&p);
    strbuf_free(&raw);
}

/* Protocol edge cases on the server side. */
static void test_server_exchange_edges(void **state)
{
    static const char plain[] = "\0" USER "\0" PASSWORD;
    static const char *mechs[] = {"PLAIN", "LOGIN", "CRAM-MD5",
        "SCRAM-SHA-256"};
    PEERS p;
    STRBUF *b64 = strbuf_alloc(64);
    RUN r;

    (void) state;
    peers_open(&p);
    xsasl_encode64(plain, sizeof(plain) - 1, b64);

    /* AUTH PLAIN without an initial response: an empty challenge. */
    assert_int_equal(xsasl_start(p.srv, "PLAIN", NULL, p.out, p.why),
                     XSASL_MORE);
    assert_string_equal(p.out->data, "");
    assert_int_equal(xsasl_step(p.srv, b64->data, p.out, p.why), XSASL_DONE);
    assert_string_equal(xsasl_username(p.srv), USER);
    assert_string_equal(xsasl_method(p.srv), "PLAIN");

    /* An empty initial response ("=") is no PLAIN response. */
    new_server(&p);
    assert_int_equal(xsasl_start(p.srv, "PLAIN", "=", p.out, p.why),
                     XSASL_FAIL);
    /* A failure, then a success on the same session (AUTH again). */
    assert_int_equal(xsasl_start(p.srv, "PLAIN", "AGFsaWNlAHg=", p.out,
                                 p.why), XSASL_FAIL);
    assert_int_equal(xsasl_start(p.srv, "PLAIN", b64->data, p.out, p.why),
                     XSASL_DONE);
    assert_string_equal(xsasl_username(p.srv), USER);

    /* Unknown mechanisms, in any case. */
    new_server(&p);
    assert_int_equal(xsasl_start(p.srv, "X-BOGUS", NULL, p.out, p.why),
                     XSASL_NOMECH);
    assert_int_equal(xsasl_start(p.srv, "DIGEST-MD5", NULL, p.out, p.why),
                     XSASL_NOMECH);
    assert_int_equal(xsasl_start(p.srv, "ANONYMOUS", "=", p.out, p.why),
                     XSASL_NOMECH);
    assert_null(xsasl_username(p.srv));
    /* plain is PLAIN (RFC 4422: names are case-insensitive). */
    assert_int_equal(xsasl_start(p.srv, "plain", b64->data, p.out, p.why),
                     XSASL_DONE);

    /* The user name tried, for the failure log. */
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        const char *tried;

        new_server(&p);
        xsasl_client_free(&p.clnt);
        p.clnt = client_new(USER, WRONG, "noanonymous");
        memset(&r, 0, sizeof(r));
        r.filter = mechs[i];
        exchange(p.srv, p.clnt, &r);
        assert_int_equal(r.server_rc, XSASL_FAIL);
        tried = xsasl_attempted_user(p.srv);
        if (tried == NULL || strcmp(tried, USER) != 0)
            fail_msg("%s: attempted user %s", mechs[i],
                     tried ? tried : "(none)");
    }
    peers_close(&p);
    strbuf_free(&b64);
}

/* --- passwords ---------------------------------------------------------- */

static void test_checkpass(void **state)
{
    PEERS p;

    (void) state;
    peers_open(&p);
    assert_int_equal(xsasl_checkpass(p.srv, USER, PASSWORD, p.why),
                     XSASL_DONE);
    assert_string_equal(xsasl_method(p.srv), "PLAIN");
    assert_int_equal(xsasl_checkpass(p.srv, USER, WRONG, p.why), XSASL_FAIL);
    assert_int_equal(xsasl_checkpass(p.srv, "nobody@" REALM, PASSWORD,
                                     p.why), XSASL_FAIL);
    assert_int_equal(xsasl_checkpass(p.srv, USER, "", p.why), XSASL_FAIL);
    peers_close(&p);
}

static void test_user_store(void **state)
{
    STRBUF *why = strbuf_alloc(64);
    RUN r;

    (void) state;
    assert_int_equal(xsasl_user_exists(USER, why), 1);
    assert_int_equal(xsasl_user_exists(USER2, why), 0);
    login("PLAIN", "", USER2, PASSWORD2, &r);
    assert_int_equal(r.server_rc, XSASL_FAIL);

    assert_int_equal(xsasl_user_set(USER2, PASSWORD2, why), 0);
    assert_int_equal(xsasl_user_exists(USER2, why), 1);
    login("PLAIN", "", USER2, PASSWORD2, &r);
    assert_int_equal(r.server_rc, XSASL_DONE);
    assert_string_equal(r.username, USER2);
    login("SCRAM-SHA-256", "", USER2, PASSWORD2, &r);
    assert_int_equal(r.server_rc, XSASL_DONE);
    login("CRAM-MD5", "", USER2, PASSWORD, &r);
    assert_int_equal(r.server_rc, XSASL_FAIL);

    /* A new password replaces the old one for every mechanism. */
    assert_int_equal(xsasl_user_set(USER2, "n3w-pass", why), 0);
    login("SCRAM-SHA-256", "", USER2, PASSWORD2, &r);
    assert_int_equal(r.server_rc, XSASL_FAIL);
    login("SCRAM-SHA-256", "", USER2, "n3w-pass", &r);
    assert_int_equal(r.server_rc, XSASL_DONE);
    login("LOGIN", "", USER2, "n3w-pass", &r);
    assert_int_equal(r.server_rc, XSASL_DONE);

    assert_int_equal(xsasl_user_delete(USER2, why), 0);
    assert_int_equal(xsasl_user_exists(USER2, why), 0);
    login("PLAIN", "", USER2, "n3w-pass", &r);
    assert_int_equal(r.server_rc, XSASL_FAIL);
    /* alice is still there. */
    login("PLAIN", "", USER, PASSWORD, &r);
    assert_int_equal(r.server_rc, XSASL_DONE);
    strbuf_free(&why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_bad_base64_exchange),
        cmocka_unit_test(test_parse_sec_opts),
        cmocka_unit_test(test_server_mechs),
        cmocka_unit_test(test_client_mechs),
        cmocka_unit_test(test_client_tls),
        cmocka_unit_test(test_client_filter),
        cmocka_unit_test(test_exchanges),
        cmocka_unit_test(test_client_picks),
        cmocka_unit_test(test_scram_mutual),
        cmocka_unit_test(test_server_exchange_edges),
        cmocka_unit_test(test_checkpass),
        cmocka_unit_test(test_user_store),
    };

    msg_init("test_xsasl", 0);
    return cmocka_run_group_tests(tests, setup_sasl, teardown_sasl);
}
