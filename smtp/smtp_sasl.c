/*
 * smtp_sasl - SMTP AUTH to a smarthost (Postfix smtp_sasl_*).
 *
 * The login comes from smtp_sasl_password_maps, looked up by the next
 * hop as written ("[smtp.example.com]:587"), then the server's host
 * name, then the destination domain; the value is "user:password".  No
 * entry: no AUTH.  Plaintext mechanisms need TLS unless
 * smtp_sasl_security_options allows them; a failed login defers the mail
 * and the next server is tried.  The password is never logged.
 */
#include <stdlib.h>
#include <string.h>

#include "mail/maps.h"
#include "mail/params.h"
#include "smtp.h"
#include "util/msg.h"
#include "util/xmalloc.h"

static MAPS *smtp_sasl_passwd;
static int smtp_sasl_ready;

void smtp_sasl_pre_init(void)
{
    STRBUF *why;

    if (!var_smtp_sasl_auth_enable)
        return;
    why = strbuf_alloc(64);
    if (xsasl_client_init(why) < 0)
        msg_warn("SASL authentication is not available: %s", why->data);
    else
        smtp_sasl_ready = 1;
    smtp_sasl_passwd = maps_open("smtp_sasl_password_maps",
                                 var_smtp_sasl_password_maps,
                                 DICT_FLAG_DEFAULT);
    strbuf_free(&why);
}

/*
 * Is there a login for this server?  1 with user and password, 0 when
 * not, -1 when the table failed (the failure is set).
 */
int smtp_sasl_wanted(SMTP_STATE *state, SMTP_SESSION *sess, STRBUF *user,
                     STRBUF *password)
{
    const char *keys[3];
    const char *value = NULL;
    const char *colon;
    int found = DICT_NOTFOUND;

    if (!var_smtp_sasl_auth_enable || smtp_sasl_passwd->count == 0)
        return 0;
    keys[0] = state->dest.nexthop;
    keys[1] = sess->host;
    keys[2] = state->dest.host;
    for (size_t i = 0; i < 3 && found == DICT_NOTFOUND; i++)
        found = maps_find(smtp_sasl_passwd, keys[i], &value);
    if (found == DICT_ERROR) {
        smtp_fail(state, 450, "4.3.0", "smtp_sasl_password_maps lookup "
                  "failed");
        return -1;
    }
    if (found == DICT_NOTFOUND)
        return 0;
    if ((colon = strchr(value, ':')) == NULL) {
        msg_warn("smtp_sasl_password_maps: the entry for %s is not "
                 "user:password; no AUTH", state->dest.nexthop);
        return 0;
    }
    strbuf_setn(user, value, (size_t) (colon - value));
    strbuf_set(password, colon + 1);
    return 1;
}

int smtp_sasl_auth(SMTP_STATE *state, SMTP_SESSION *sess)
{
    STRBUF *user = strbuf_alloc(64);
    STRBUF *password = strbuf_alloc(64);
    STRBUF *mech = strbuf_alloc(32);
    STRBUF *out = strbuf_alloc(128);
    STRBUF *why = strbuf_alloc(64);
    SMTP_REPLY *r = smtp_reply_alloc();
    XSASL_CLNT *clnt = NULL;
    int rc = -1;
    int step;

    switch (smtp_sasl_wanted(state, sess, user, password)) {
    case -1:
        goto done;
    case 0:
        rc = 0;
        goto done;
    }
    /* A server without AUTH gets the mail without it; it may refuse. */
    if (!(sess->features & SMTP_FEAT_AUTH) || sess->auth_mechs == NULL) {
        rc = 0;
        goto done;
    }
    if (!smtp_sasl_ready) {
        smtp_fail(state, 450, "4.7.0", "SASL authentication is not available "
                  "here (see the warning at start-up)");
        goto done;
    }
    if ((clnt = xsasl_client_new("smtp", sess->host, user->data,
                                 password->data,
                                 var_smtp_sasl_security_options, why)) == NULL
        || (sess->tls
            && xsasl_client_tls(clnt, tls_session_cipher_bits(sess->tls, NULL),
                                var_smtp_sasl_tls_security_options, why) < 0)) {
        smtp_fail(state, 450, "4.7.0", "SASL authentication failed; %s",
                  why->data);
        goto done;
    }
    step = xsasl_client_start(clnt, sess->auth_mechs,
                              var_smtp_sasl_mechanism_filter, mech, out, why);
    if (step != XSASL_DONE && step != XSASL_MORE) {
        smtp_fail(state, 450, "4.7.0", "SASL authentication failed; cannot "
                  "authenticate to server %s: %s", sess->namaddr, why->data);
        goto done;
    }
    if (smtp_command(sess, var_smtp_helo_timeout, r, "AUTH %s%s%s", mech->data,
                     out->len ? " " : "", out->data) < 0) {
        smtp_lost(state, sess, "while authenticating");
        goto done;
    }
    while (r->code == 334) {
        const char *challenge = r->lines->argv[0];

        step = xsasl_client_step(clnt, challenge, out, why);
        if (step != XSASL_DONE && step != XSASL_MORE) {
            (void) smtp_command(sess, var_smtp_helo_timeout, r, "*");
            smtp_fail(state, 450, "4.7.0", "SASL authentication failed; "
                      "cannot authenticate to server %s: %s", sess->namaddr,
                      why->data);
            goto done;
        }
        if (smtp_command(sess, var_smtp_helo_timeout, r, "%s", out->data) < 0) {
            smtp_lost(state, sess, "while authenticating");
            goto done;
        }
    }
    if (r->code / 100 != 2) {
        smtp_fail(state, 450, "4.7.0", "SASL authentication failed; server "
                  "%s said: %s", sess->namaddr, r->text->data);
        goto done;
    }
    rc = 0;
done:
    xsasl_client_free(&clnt);
    if (password->size)
        memset(password->data, 0, password->size);
    if (out->size)
        memset(out->data, 0, out->size);
    strbuf_free(&user);
    strbuf_free(&password);
    strbuf_free(&mech);
    strbuf_free(&out);
    strbuf_free(&why);
    smtp_reply_free(&r);
    return rc;
}
