/*
 * xsasl_client - SMTP AUTH as a client through Cyrus SASL (smtp to a
 * smarthost; Postfix xsasl_cyrus_client).  See xsasl.h.
 *
 * The user name and password come from the caller (a password table
 * lookup) through per-session callbacks; they are wiped when the session
 * is freed and never logged.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "sasl/xsasl_int.h"
#include "util/argv.h"
#include "util/msg.h"
#include "util/xmalloc.h"

struct XSASL_CLNT {
    sasl_conn_t *conn;
    char   *user;
    sasl_secret_t *secret;              /* the password, as libsasl2 wants */
    sasl_callback_t callbacks[4];
    STRBUF *decoded;
};

static int xsasl_client_ready;

int xsasl_client_init(STRBUF *why)
{
    static sasl_callback_t global[] = {
        {SASL_CB_LOG, XSASL_CB(xsasl_log), NULL},
        {SASL_CB_LIST_END, NULL, NULL},
    };
    int rc;

    if (xsasl_client_ready)
        return 0;
    if ((rc = sasl_client_init(global)) != SASL_OK) {
        strbuf_printf(why, "cannot initialize Cyrus SASL (client): %s",
                      sasl_errstring(rc, NULL, NULL));
        return -1;
    }
    xsasl_client_ready = 1;
    return 0;
}

/* SASL_CB_USER and SASL_CB_AUTHNAME: both are the login name. */
static int xsasl_client_user(void *context, int id, const char **result,
                             unsigned *len)
{
    XSASL_CLNT *clnt = context;

    if (id != SASL_CB_USER && id != SASL_CB_AUTHNAME)
        return SASL_FAIL;
    *result = clnt->user;
    if (len)
        *len = (unsigned) strlen(clnt->user);
    return SASL_OK;
}

static int xsasl_client_pass(sasl_conn_t *conn, void *context, int id,
                             sasl_secret_t **psecret)
{
    XSASL_CLNT *clnt = context;

    (void) conn;
    if (id != SASL_CB_PASS)
        return SASL_FAIL;
    *psecret = clnt->secret;
    return SASL_OK;
}

static int xsasl_client_sec(XSASL_CLNT *clnt, const char *sec_opts,
                            STRBUF *why)
{
    sasl_security_properties_t props;
    unsigned flags;

    if (xsasl_parse_sec_opts(sec_opts, &flags, why) < 0)
        return -1;
    memset(&props, 0, sizeof(props));
    props.security_flags = flags;
    if (sasl_setprop(clnt->conn, SASL_SEC_PROPS, &props) != SASL_OK) {
        strbuf_printf(why, "cannot set SASL security properties: %s",
                      sasl_errdetail(clnt->conn));
        return -1;
    }
    return 0;
}

XSASL_CLNT *xsasl_client_new(const char *service, const char *server_host,
                             const char *user, const char *password,
                             const char *sec_opts, STRBUF *why)
{
    XSASL_CLNT *clnt;
    size_t plen = strlen(password);
    int rc;

    if (!xsasl_client_ready)
        msg_panic("xsasl_client_new: no xsasl_client_init");
    clnt = xcalloc(1, sizeof(*clnt));
    clnt->user = xstrdup(user);
    clnt->secret = xmalloc(sizeof(sasl_secret_t) + plen + 1);
    clnt->secret->len = (unsigned long) plen;
    memcpy(clnt->secret->data, password, plen + 1);
    clnt->decoded = strbuf_alloc(128);
    clnt->callbacks[0] = (sasl_callback_t) {SASL_CB_USER,
        XSASL_CB(xsasl_client_user), clnt};
    clnt->callbacks[1] = (sasl_callback_t) {SASL_CB_AUTHNAME,
        XSASL_CB(xsasl_client_user), clnt};
    clnt->callbacks[2] = (sasl_callback_t) {SASL_CB_PASS,
        XSASL_CB(xsasl_client_pass), clnt};
    clnt->callbacks[3] = (sasl_callback_t) {SASL_CB_LIST_END, NULL, NULL};
    if ((rc = sasl_client_new(service, server_host, NULL, NULL,
                              clnt->callbacks, 0, &clnt->conn)) != SASL_OK) {
        strbuf_printf(why, "cannot create a SASL client session: %s",
                      sasl_errstring(rc, NULL, NULL));
        xsasl_client_free(&clnt);
        return NULL;
    }
    if (xsasl_client_sec(clnt, sec_opts, why) < 0) {
        xsasl_client_free(&clnt);
        return NULL;
    }
    return clnt;
}

void xsasl_client_free(XSASL_CLNT **clntp)
{
    XSASL_CLNT *clnt = *clntp;

    if (clnt == NULL)
        return;
    if (clnt->conn)
        sasl_dispose(&clnt->conn);
    if (clnt->secret) {
        memset(clnt->secret->data, 0, clnt->secret->len);
        free(clnt->secret);
    }
    free(clnt->user);
    xsasl_wipe_free(&clnt->decoded);
    free(clnt);
    *clntp = NULL;
}

/*
 * As on the server side (xsasl_session_tls()): the TLS options replace
 * the others, and libsasl2 is not told about the TLS layer, or it would
 * drop "noplaintext" by itself and choose PLAIN against the options.
 */
int xsasl_client_tls(XSASL_CLNT *clnt, int ssf, const char *sec_opts,
                     STRBUF *why)
{
    (void) ssf;
    return xsasl_client_sec(clnt, sec_opts, why);
}

/* The server's mechanisms that the filter lets through ("": all). */
static void xsasl_client_filter(const char *server_mechs, const char *filter,
                                STRBUF *out)
{
    ARGV *offered = argv_split(server_mechs, " \t");
    ARGV *wanted = argv_split(filter, ", \t");

    strbuf_set(out, "");
    for (size_t i = 0; i < offered->argc; i++) {
        int ok = wanted->argc == 0;

        for (size_t j = 0; j < wanted->argc && !ok; j++)
            ok = strcasecmp(offered->argv[i], wanted->argv[j]) == 0;
        if (ok)
            strbuf_printf_append(out, "%s%s", out->len ? " " : "",
                                 offered->argv[i]);
    }
    argv_free(&offered);
    argv_free(&wanted);
}

static int xsasl_client_result(int rc, const char *data, unsigned len,
                               STRBUF *out, STRBUF *why)
{
    switch (rc) {
    case SASL_OK:
    case SASL_CONTINUE:
        if (data == NULL)
            strbuf_set(out, "");
        else if (len == 0)
            strbuf_set(out, "=");
        else
            xsasl_encode64(data, len, out);
        return rc == SASL_OK ? XSASL_DONE : XSASL_MORE;
    case SASL_NOMECH:
    case SASL_TOOWEAK:
        strbuf_set(why, "no SASL mechanism acceptable to both sides");
        return XSASL_NOMECH;
    case SASL_ENCRYPT:
        strbuf_set(why, "the mechanism needs TLS");
        return XSASL_ENCRYPT;
    default:
        strbuf_set(why, sasl_errstring(rc, NULL, NULL));
        return XSASL_FAIL;
    }
}

int xsasl_client_start(XSASL_CLNT *clnt, const char *server_mechs,
                       const char *mech_filter, STRBUF *mech, STRBUF *init,
                       STRBUF *why)
{
    STRBUF *mechs = strbuf_alloc(64);
    const char *data = NULL;
    const char *chosen = NULL;
    unsigned len = 0;
    int rc;

    xsasl_client_filter(server_mechs, mech_filter, mechs);
    if (mechs->len == 0) {
        strbuf_printf(why, "none of the server's SASL mechanisms (%s) is "
                      "allowed", server_mechs);
        strbuf_free(&mechs);
        return XSASL_NOMECH;
    }
    rc = sasl_client_start(clnt->conn, mechs->data, NULL, &data, &len,
                           &chosen);
    strbuf_set(mech, chosen ? chosen : "");
    strbuf_free(&mechs);
    if (rc == SASL_NOMECH || rc == SASL_TOOWEAK) {
        strbuf_printf(why, "no SASL mechanism acceptable to both sides "
                      "(server offers %s)", server_mechs);
        return XSASL_NOMECH;
    }
    return xsasl_client_result(rc, data, len, init, why);
}

int xsasl_client_step(XSASL_CLNT *clnt, const char *challenge, STRBUF *out,
                      STRBUF *why)
{
    const char *data = NULL;
    unsigned len = 0;
    int rc;

    if (xsasl_decode64(challenge, clnt->decoded) < 0) {
        strbuf_set(why, "the server's challenge is not base64");
        return XSASL_BADB64;
    }
    rc = sasl_client_step(clnt->conn, clnt->decoded->data,
                          (unsigned) clnt->decoded->len, NULL, &data, &len);
    rc = xsasl_client_result(rc, data, len, out, why);
    /* "=" marks an empty initial response only; later ones are "". */
    if (rc >= 0 && strcmp(out->data, "=") == 0)
        strbuf_set(out, "");
    return rc;
}
