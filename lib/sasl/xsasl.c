/*
 * xsasl - Cyrus SASL server sessions; see xsasl.h.
 */
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "sasl/xsasl_int.h"
#include "util/argv.h"
#include "util/msg.h"
#include "util/xmalloc.h"

struct XSASL_SESS {
    sasl_conn_t *conn;
    char   *method;                     /* the exchange's mechanism */
    STRBUF *decoded;                    /* decoded client data */
    STRBUF *mechs;
};

/* What the callbacks answer; set once by xsasl_server_init(). */
static char *xsasl_db_path;
static char *xsasl_mech_list;
static char *xsasl_conf_dir;
static int xsasl_ready;

/* --- library callbacks ------------------------------------------------ */

static int xsasl_getopt(void *context, const char *plugin_name,
                        const char *option, const char **result,
                        unsigned *len)
{
    const char *value = NULL;

    (void) context;
    (void) plugin_name;
    if (strcmp(option, "sasldb_path") == 0)
        value = xsasl_db_path;
    else if (strcmp(option, "auxprop_plugin") == 0)
        value = "sasldb";
    else if (strcmp(option, "pwcheck_method") == 0)
        value = "auxprop";
    else if (strcmp(option, "mech_list") == 0)
        value = xsasl_mech_list;
    else if (strcmp(option, "log_level") == 0)
        value = "3";                    /* SASL_LOG_WARN */
    if (value == NULL)
        return SASL_FAIL;               /* the library's default */
    *result = value;
    if (len)
        *len = (unsigned) strlen(value);
    return SASL_OK;
}

static int xsasl_getconfpath(void *context, const char **path)
{
    (void) context;
    /* Never /etc/sasl2: only what the caller names. */
    *path = *xsasl_conf_dir ? xsasl_conf_dir : "/nonexistent";
    return SASL_OK;
}

/*
 * The library's own messages.  Its failure notices ("Password
 * verification failed") duplicate the caller's log line and go to the
 * verbose log only; it never passes a password here.
 */
int xsasl_log(void *context, int level, const char *message)
{
    (void) context;
    switch (level) {
    case SASL_LOG_ERR:
    case SASL_LOG_WARN:
        msg_warn("SASL: %s", message);
        break;
    case SASL_LOG_FAIL:
        if (msg_verbose)
            msg_info("SASL authentication failure: %s", message);
        break;
    default:
        if (msg_verbose)
            msg_info("SASL: %s", message);
        break;
    }
    return SASL_OK;
}


static sasl_callback_t xsasl_callbacks[] = {
    {SASL_CB_GETOPT, XSASL_CB(xsasl_getopt), NULL},
    {SASL_CB_GETCONFPATH, XSASL_CB(xsasl_getconfpath), NULL},
    {SASL_CB_LOG, XSASL_CB(xsasl_log), NULL},
    {SASL_CB_LIST_END, NULL, NULL},
};

int xsasl_server_init(const XSASL_CONF *conf, STRBUF *why)
{
    int rc;

    if (xsasl_ready)
        msg_panic("xsasl_server_init: called twice");
    xsasl_db_path = xstrdup(conf->db_path);
    xsasl_mech_list = xstrdup(conf->mech_list);
    xsasl_conf_dir = xstrdup(conf->conf_dir ? conf->conf_dir : "");
    if ((rc = sasl_server_init(xsasl_callbacks, conf->app_name)) != SASL_OK) {
        strbuf_printf(why, "cannot initialize Cyrus SASL: %s",
                      sasl_errstring(rc, NULL, NULL));
        return -1;
    }
    xsasl_ready = 1;
    return 0;
}

int xsasl_store_check(STRBUF *why)
{
    if (xsasl_db_path == NULL)
        return 0;
    if (access(xsasl_db_path, R_OK) < 0) {
        strbuf_printf(why, "password store %s: %s", xsasl_db_path,
                      strerror(errno));
        return -1;
    }
    return 0;
}

void xsasl_server_done(void)
{
    if (!xsasl_ready)
        return;
    sasl_server_done();
    xfree(&xsasl_db_path);
    xfree(&xsasl_mech_list);
    xfree(&xsasl_conf_dir);
    xsasl_ready = 0;
}

/* --- security options ------------------------------------------------- */

int xsasl_parse_sec_opts(const char *opts, unsigned *flags, STRBUF *why)
{
    static const struct {
        const char *name;
        unsigned flag;
    } words[] = {
        {"noplaintext", SASL_SEC_NOPLAINTEXT},
        {"noactive", SASL_SEC_NOACTIVE},
        {"nodictionary", SASL_SEC_NODICTIONARY},
        {"noanonymous", SASL_SEC_NOANONYMOUS},
        {"forward_secrecy", SASL_SEC_FORWARD_SECRECY},
        {"mutual_auth", SASL_SEC_MUTUAL_AUTH},
    };
    ARGV *list = argv_split(opts, ", \t\r\n");
    int rc = 0;

    *flags = 0;
    for (size_t i = 0; rc == 0 && i < list->argc; i++) {
        size_t w;

        for (w = 0; w < sizeof(words) / sizeof(words[0]); w++)
            if (strcasecmp(list->argv[i], words[w].name) == 0)
                break;
        if (w == sizeof(words) / sizeof(words[0])) {
            strbuf_printf(why, "unknown SASL security option \"%s\"",
                          list->argv[i]);
            rc = -1;
        } else
            *flags |= words[w].flag;
    }
    argv_free(&list);
    return rc;
}

static int xsasl_set_sec(XSASL_SESS *sess, const char *sec_opts, STRBUF *why)
{
    sasl_security_properties_t props;
    unsigned flags;

    if (xsasl_parse_sec_opts(sec_opts, &flags, why) < 0)
        return -1;
    memset(&props, 0, sizeof(props));
    /* No security layers: the protocol code does not speak them. */
    props.min_ssf = 0;
    props.max_ssf = 0;
    props.maxbufsize = 0;
    props.security_flags = flags;
    if (sasl_setprop(sess->conn, SASL_SEC_PROPS, &props) != SASL_OK) {
        strbuf_printf(why, "cannot set SASL security properties: %s",
                      sasl_errdetail(sess->conn));
        return -1;
    }
    return 0;
}

/* --- sessions --------------------------------------------------------- */

XSASL_SESS *xsasl_session_new(const char *service, const char *hostname,
                              const char *realm, const char *local_ipport,
                              const char *remote_ipport,
                              const char *sec_opts, STRBUF *why)
{
    XSASL_SESS *sess;
    int rc;

    if (!xsasl_ready)
        msg_panic("xsasl_session_new: no xsasl_server_init");
    sess = xcalloc(1, sizeof(*sess));
    if ((rc = sasl_server_new(service, hostname,
                              realm && *realm ? realm : NULL, local_ipport,
                              remote_ipport, NULL, 0, &sess->conn))
        != SASL_OK) {
        strbuf_printf(why, "cannot create a SASL session: %s",
                      sasl_errstring(rc, NULL, NULL));
        free(sess);
        return NULL;
    }
    sess->decoded = strbuf_alloc(256);
    sess->mechs = strbuf_alloc(64);
    if (xsasl_set_sec(sess, sec_opts, why) < 0) {
        xsasl_session_free(&sess);
        return NULL;
    }
    return sess;
}

void xsasl_session_free(XSASL_SESS **sessp)
{
    XSASL_SESS *sess = *sessp;

    if (sess == NULL)
        return;
    sasl_dispose(&sess->conn);
    free(sess->method);
    xsasl_wipe_free(&sess->decoded);
    strbuf_free(&sess->mechs);
    free(sess);
    *sessp = NULL;
}

/*
 * Over TLS the TLS security options replace the others, as in Postfix.
 * libsasl2 is not told about the TLS layer (SASL_SSF_EXTERNAL): with an
 * external SSF it drops "noplaintext" by itself, and the TLS options
 * could not keep PLAIN and LOGIN away.  No mechanism here uses the SSF.
 */
int xsasl_session_tls(XSASL_SESS *sess, int ssf, const char *sec_opts,
                      STRBUF *why)
{
    (void) ssf;
    return xsasl_set_sec(sess, sec_opts, why);
}

void xsasl_wipe_free(STRBUF **bufp)
{
    /* Decoded responses may hold a password: wipe before freeing. */
    if ((*bufp)->size)
        memset((*bufp)->data, 0, (*bufp)->size);
    strbuf_free(bufp);
}

const char *xsasl_session_mechs(XSASL_SESS *sess)
{
    const char *list;
    unsigned len;
    int count;

    if (sasl_listmech(sess->conn, NULL, "", " ", "", &list, &len, &count)
        != SASL_OK || count == 0)
        strbuf_set(sess->mechs, "");
    else
        strbuf_setn(sess->mechs, list, len);
    return sess->mechs->data;
}

/* Base64 text to bytes in out; -1 when it is not base64. */
int xsasl_decode64(const char *b64, STRBUF *out)
{
    size_t in_len = strlen(b64);
    unsigned out_len;

    strbuf_truncate(out, 0);
    if (in_len == 0)
        return 0;
    strbuf_reserve(out, in_len / 4 * 3 + 4);
    if (sasl_decode64(b64, (unsigned) in_len, out->data,
                      (unsigned) (in_len / 4 * 3 + 4), &out_len) != SASL_OK)
        return -1;
    out->len = out_len;
    out->data[out_len] = 0;
    return 0;
}

static int xsasl_decode(XSASL_SESS *sess, const char *b64)
{
    return xsasl_decode64(b64, sess->decoded);
}

void xsasl_encode64(const char *data, unsigned len, STRBUF *out)
{
    unsigned size = (len + 2) / 3 * 4 + 1;
    unsigned out_len;

    strbuf_truncate(out, 0);
    strbuf_reserve(out, size);
    if (sasl_encode64(data, len, out->data, size, &out_len) != SASL_OK)
        msg_panic("xsasl_encode64: buffer too small");
    out->len = out_len;
    out->data[out_len] = 0;
}

/* The library's answer to the caller's. */
static int xsasl_result(XSASL_SESS *sess, int rc, const char *data,
                        unsigned len, STRBUF *out, STRBUF *why)
{
    /* The client's data may hold a password: gone before anything else. */
    if (sess->decoded->size)
        memset(sess->decoded->data, 0, sess->decoded->size);
    strbuf_truncate(sess->decoded, 0);
    switch (rc) {
    case SASL_OK:
        return XSASL_DONE;
    case SASL_CONTINUE:
        xsasl_encode64(data ? data : "", data ? len : 0, out);
        return XSASL_MORE;
    case SASL_NOMECH:
    case SASL_TOOWEAK:
        strbuf_set(why, "Invalid authentication mechanism");
        return XSASL_NOMECH;
    case SASL_ENCRYPT:
        strbuf_set(why, "Encryption required for requested authentication "
                   "mechanism");
        return XSASL_ENCRYPT;
    case SASL_TRYAGAIN:
    case SASL_UNAVAIL:
        strbuf_set(why, sasl_errstring(rc, NULL, NULL));
        return XSASL_TEMP;
    case SASL_NOUSER:
        /* Privacy (Postfix too): an unknown user is a wrong password. */
        strbuf_set(why, sasl_errstring(SASL_BADAUTH, NULL, NULL));
        return XSASL_FAIL;
    default:
        strbuf_set(why, sasl_errstring(rc, NULL, NULL));
        return XSASL_FAIL;
    }
}

int xsasl_start(XSASL_SESS *sess, const char *mech, const char *init,
                STRBUF *out, STRBUF *why)
{
    const char *data = NULL;
    unsigned len = 0;
    int rc;

    free(sess->method);
    sess->method = xstrdup(mech);
    if (init) {
        if (strcmp(init, "=") != 0 && xsasl_decode(sess, init) < 0) {
            strbuf_set(why, "Invalid base64 data in initial response");
            return XSASL_BADB64;
        }
        if (strcmp(init, "=") == 0)
            strbuf_truncate(sess->decoded, 0);
    }
    rc = sasl_server_start(sess->conn, mech,
                           init ? sess->decoded->data : NULL,
                           init ? (unsigned) sess->decoded->len : 0,
                           &data, &len);
    return xsasl_result(sess, rc, data, len, out, why);
}

int xsasl_step(XSASL_SESS *sess, const char *response, STRBUF *out,
               STRBUF *why)
{
    const char *data = NULL;
    unsigned len = 0;
    int rc;

    if (xsasl_decode(sess, response) < 0) {
        strbuf_set(why, "Invalid base64 data in continued response");
        return XSASL_BADB64;
    }
    rc = sasl_server_step(sess->conn, sess->decoded->data,
                          (unsigned) sess->decoded->len, &data, &len);
    return xsasl_result(sess, rc, data, len, out, why);
}

const char *xsasl_username(XSASL_SESS *sess)
{
    const void *value = NULL;

    if (sasl_getprop(sess->conn, SASL_USERNAME, &value) != SASL_OK)
        return NULL;
    return value;
}

const char *xsasl_method(XSASL_SESS *sess)
{
    return sess->method;
}

const char *xsasl_attempted_user(XSASL_SESS *sess)
{
    return xsasl_username(sess);
}

int xsasl_checkpass(XSASL_SESS *sess, const char *user, const char *password,
                    STRBUF *why)
{
    int rc;

    free(sess->method);
    sess->method = xstrdup("PLAIN");
    rc = sasl_checkpass(sess->conn, user, (unsigned) strlen(user), password,
                        (unsigned) strlen(password));
    return xsasl_result(sess, rc, NULL, 0, NULL, why);
}

/* --- the password store ----------------------------------------------- */

static XSASL_SESS *xsasl_admin_session(STRBUF *why)
{
    return xsasl_session_new("postern", "localhost", NULL, NULL, NULL, "",
                             why);
}

int xsasl_user_set(const char *user, const char *password, STRBUF *why)
{
    XSASL_SESS *sess;
    int rc;

    if ((sess = xsasl_admin_session(why)) == NULL)
        return -1;
    rc = sasl_setpass(sess->conn, user, password, (unsigned) strlen(password),
                      NULL, 0, SASL_SET_CREATE);
    if (rc != SASL_OK)
        strbuf_printf(why, "cannot store the password of %s: %s", user,
                      sasl_errdetail(sess->conn));
    xsasl_session_free(&sess);
    return rc == SASL_OK ? 0 : -1;
}

int xsasl_user_delete(const char *user, STRBUF *why)
{
    XSASL_SESS *sess;
    int rc;

    if ((sess = xsasl_admin_session(why)) == NULL)
        return -1;
    rc = sasl_setpass(sess->conn, user, NULL, 0, NULL, 0, SASL_SET_DISABLE);
    if (rc != SASL_OK)
        strbuf_printf(why, "cannot delete the password of %s: %s", user,
                      sasl_errdetail(sess->conn));
    xsasl_session_free(&sess);
    return rc == SASL_OK ? 0 : -1;
}

int xsasl_user_exists(const char *user, STRBUF *why)
{
    XSASL_SESS *sess;
    int rc;

    if ((sess = xsasl_admin_session(why)) == NULL)
        return -1;
    rc = sasl_user_exists(sess->conn, NULL, NULL, user);
    if (rc != SASL_OK && rc != SASL_NOUSER)
        strbuf_printf(why, "cannot look up %s: %s", user,
                      sasl_errdetail(sess->conn));
    xsasl_session_free(&sess);
    return rc == SASL_OK ? 1 : rc == SASL_NOUSER ? 0 : -1;
}
