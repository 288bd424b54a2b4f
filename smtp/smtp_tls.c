/*
 * smtp_tls - outbound TLS: the security level for a next hop, STARTTLS,
 * and the certificate checks the level asks for.
 *
 *   none     never TLS
 *   may      TLS when the server offers it, any certificate; a failed
 *            handshake is retried once in plaintext (opportunistic TLS,
 *            the default: MX delivery cannot insist on TLS)
 *   encrypt  TLS required (mandatory protocols and ciphers), any
 *            certificate
 *   verify   and a certificate that chains to smtp_tls_CAfile/CApath and
 *            matches smtp_tls_verify_cert_match (the MX host name)
 *   secure   and matches smtp_tls_secure_cert_match (the next-hop domain
 *            and its subdomains), so that DNS cannot redirect the mail
 *
 * smtp_tls_policy_maps may set the level per next hop: the key is the
 * next hop as written ("[mx.example.com]:587", "example.com"), then each
 * parent domain as ".example.com"; the value is a level and optional
 * "match=name1:name2" (names, or hostname, nexthop, dot-nexthop).  Any
 * other attribute is refused (the mail waits) rather than ignored, since
 * ignoring it could weaken what the admin asked for.  DANE and MTA-STS
 * would be further sources of a policy here: a level and names to match.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/maps.h"
#include "mail/params.h"
#include "smtp.h"
#include "util/msg.h"
#include "util/xmalloc.h"

static TLS_CLIENT *smtp_tls_opportunistic;
static TLS_CLIENT *smtp_tls_mandatory;
static MAPS *smtp_tls_policy_maps;
static int smtp_tls_broken;             /* the contexts could not be made */

static int smtp_tls_level(const char *word)
{
    static const char *names[] = {"none", "may", "encrypt", "verify",
        "secure"};

    if (*word == 0)
        return SMTP_TLS_NONE;
    for (int i = 0; i < 5; i++)
        if (strcasecmp(word, names[i]) == 0)
            return i;
    /* Postfix's levels that Postern does not have (dane, fingerprint). */
    return -1;
}

static TLS_CLIENT *smtp_tls_client(int mandatory, STRBUF *why)
{
    TLS_CLIENT_CONF conf;
    STRBUF *exclude = strbuf_alloc(64);
    TLS_CLIENT *clnt;

    strbuf_printf(exclude, "%s %s", var_smtp_tls_exclude_ciphers,
                  mandatory ? var_smtp_tls_mandatory_exclude_ciphers : "");
    memset(&conf, 0, sizeof(conf));
    conf.origin = "smtp";
    conf.CAfile = var_smtp_tls_CAfile;
    conf.CApath = var_smtp_tls_CApath;
    conf.cert_file = var_smtp_tls_cert_file;
    conf.key_file = var_smtp_tls_key_file;
    conf.protocols = mandatory ? var_smtp_tls_mandatory_protocols
        : var_smtp_tls_protocols;
    conf.cipher_grade = mandatory ? var_smtp_tls_mandatory_ciphers
        : var_smtp_tls_ciphers;
    conf.high_cipherlist = var_tls_high_cipherlist;
    conf.medium_cipherlist = var_tls_medium_cipherlist;
    conf.exclude_ciphers = exclude->data;
    conf.groups = var_tls_eecdh_auto_curves;
    conf.session_cache = var_smtp_tls_session_cache_timeout > 0;
    clnt = tls_client_create(&conf, why);
    strbuf_free(&exclude);
    return clnt;
}

void smtp_tls_pre_init(void)
{
    STRBUF *why = strbuf_alloc(128);

    if (smtp_tls_level(var_smtp_tls_security_level) < 0)
        msg_warn("smtp_tls_security_level: unknown level \"%s\" (use none, "
                 "may, encrypt, verify or secure): mail waits until it is "
                 "fixed", var_smtp_tls_security_level);
    if ((smtp_tls_opportunistic = smtp_tls_client(0, why)) == NULL
        || (smtp_tls_mandatory = smtp_tls_client(1, why)) == NULL) {
        msg_warn("TLS is not available: %s (see smtp_tls_CAfile, "
                 "smtp_tls_CApath, smtp_tls_cert_file, smtp_tls_protocols, "
                 "smtp_tls_mandatory_protocols, smtp_tls_ciphers)",
                 why->data);
        smtp_tls_broken = 1;
    }
    smtp_tls_policy_maps = maps_open("smtp_tls_policy_maps",
                                     var_smtp_tls_policy_maps,
                                     DICT_FLAG_DEFAULT);
    strbuf_free(&why);
}

/* Names a certificate must match: hostname, nexthop, dot-nexthop, names. */
static void smtp_tls_match(SMTP_STATE *state, const char *spec,
                           SMTP_TLS_POLICY *policy)
{
    ARGV *words = argv_split(spec, ", \t:");

    policy->match = argv_alloc(4);
    for (size_t i = 0; i < words->argc; i++) {
        const char *w = words->argv[i];

        if (strcasecmp(w, "nexthop") == 0)
            argv_add(policy->match, state->dest.host);
        else if (strcasecmp(w, "dot-nexthop") == 0) {
            STRBUF *dot = strbuf_alloc(64);

            strbuf_printf(dot, ".%s", state->dest.host);
            argv_add(policy->match, dot->data);
            strbuf_free(&dot);
        } else if (strcasecmp(w, "hostname") == 0)
            argv_add(policy->match, "\001hostname");   /* per server */
        else
            argv_add(policy->match, w);
    }
    argv_free(&words);
}

int smtp_tls_policy(SMTP_STATE *state, SMTP_TLS_POLICY *policy)
{
    const char *value = NULL;
    const char *match = NULL;
    ARGV *words = NULL;
    int found = DICT_NOTFOUND;
    int rc = -1;

    memset(policy, 0, sizeof(*policy));
    if (state->no_tls) {
        policy->level = SMTP_TLS_NONE;
        return 0;
    }
    /* The next hop as written, then its parent domains. */
    if (smtp_tls_policy_maps->count > 0) {
        const char *key = state->dest.nexthop;

        found = maps_find(smtp_tls_policy_maps, key, &value);
        for (const char *dot = strchr(state->dest.host, '.');
             found == DICT_NOTFOUND && state->dest.mx && dot;
             dot = strchr(dot + 1, '.'))
            found = maps_find(smtp_tls_policy_maps, dot, &value);
        if (found == DICT_ERROR) {
            smtp_fail(state, 450, "4.3.0", "TLS policy lookup for %s "
                      "failed", state->dest.nexthop);
            return -1;
        }
    }
    if (found == DICT_FOUND) {
        words = argv_split(value, " \t");
        policy->level = words->argc ? smtp_tls_level(words->argv[0]) : -1;
        for (size_t i = 1; i < words->argc && policy->level >= 0; i++) {
            if (strncasecmp(words->argv[i], "match=", 6) == 0)
                match = words->argv[i] + 6;
            else {
                smtp_fail(state, 450, "4.7.5", "TLS policy for %s: "
                          "unsupported attribute \"%s\"", state->dest.nexthop,
                          words->argv[i]);
                goto done;
            }
        }
        if (policy->level < 0) {
            smtp_fail(state, 450, "4.7.5", "TLS policy for %s: unknown "
                      "security level \"%s\"", state->dest.nexthop, value);
            goto done;
        }
    } else if ((policy->level = smtp_tls_level(var_smtp_tls_security_level))
               < 0) {
        smtp_fail(state, 450, "4.7.5", "smtp_tls_security_level: unknown "
                  "level \"%s\"", var_smtp_tls_security_level);
        goto done;
    }
    if (policy->level == SMTP_TLS_VERIFY)
        smtp_tls_match(state, match ? match : var_smtp_tls_verify_cert_match,
                       policy);
    else if (policy->level == SMTP_TLS_SECURE)
        smtp_tls_match(state, match ? match : var_smtp_tls_secure_cert_match,
                       policy);
    rc = 0;
done:
    argv_free(&words);
    return rc;
}

void smtp_tls_policy_free(SMTP_TLS_POLICY *policy)
{
    argv_free(&policy->match);
}

static const char *smtp_tls_trust_word(const TLS_SESS *tls)
{
    return tls_session_verified(tls) ? "Verified"
        : tls_session_trusted(tls) ? "Trusted" : "Untrusted";
}

int smtp_tls_start(SMTP_STATE *state, SMTP_SESSION *sess,
                   const SMTP_TLS_POLICY *policy)
{
    SMTP_REPLY *r;
    STRBUF *why;
    STRBUF *info;
    STRBUF *key;
    ARGV *match = NULL;
    unsigned char bin[16];
    const char *sni;
    int mandatory = policy->level >= SMTP_TLS_ENCRYPT;
    int rc = -1;

    if (!(sess->features & SMTP_FEAT_STARTTLS)) {
        if (!mandatory)
            return 0;
        smtp_fail(state, 450, "4.7.4", "TLS is required, but was not offered "
                  "by host %s", sess->namaddr);
        return -1;
    }
    if (smtp_tls_broken) {
        if (!mandatory)
            return 0;
        smtp_fail(state, 450, "4.7.5", "TLS is required, but is not "
                  "available here (see the warning at start-up)");
        return -1;
    }
    r = smtp_reply_alloc();
    why = strbuf_alloc(128);
    info = strbuf_alloc(128);
    key = strbuf_alloc(64);
    if (smtp_command(sess, var_smtp_starttls_timeout, r, "STARTTLS") < 0) {
        smtp_lost(state, sess, "while sending STARTTLS");
        goto done;
    }
    if (r->code != 220) {
        if (!mandatory) {
            rc = 0;                     /* plaintext, as opportunistic TLS */
            goto done;
        }
        smtp_fail(state, 450, "4.7.4", "TLS is required, but host %s refused "
                  "to start TLS: %s", sess->namaddr, r->text->data);
        goto done;
    }
    if (policy->match) {
        match = argv_alloc(4);
        for (size_t i = 0; i < policy->match->argc; i++)
            argv_add(match, strcmp(policy->match->argv[i], "\001hostname")
                     == 0 ? sess->host : policy->match->argv[i]);
    }
    /* SNI: the server's name, never an address literal (RFC 6066 3). */
    sni = inet_pton(AF_INET, sess->host, bin) == 1
        || inet_pton(AF_INET6, sess->host, bin) == 1 ? NULL : sess->host;
    /*
     * A resumed session keeps the verdict of its first handshake, names
     * included: the names to match are part of the key.
     */
    strbuf_printf(key, "%s:%s:%d:%d", sess->host, sess->addr, sess->port,
                  policy->level);
    for (size_t i = 0; match && i < match->argc; i++)
        strbuf_printf_append(key, ":%s", match->argv[i]);
    sess->tls = tls_client_start(mandatory ? smtp_tls_mandatory
                                 : smtp_tls_opportunistic, sess->stream,
                                 var_smtp_starttls_timeout, sni, match,
                                 key->data, why);
    if (sess->tls == NULL) {
        msg_info("SSL_connect error to %s: %s", sess->namaddr, why->data);
        smtp_fail(state, 450, "4.7.5", "Cannot start TLS: handshake failure "
                  "(%s)", why->data);
        /* Opportunistic: the next try with this server is in plaintext. */
        if (!mandatory)
            state->tls_fallback = 1;
        goto done;
    }
    tls_session_describe(sess->tls, info);
    if (var_smtp_tls_loglevel >= 1)
        msg_info("%s TLS connection established to %s: %s%s",
                 smtp_tls_trust_word(sess->tls), sess->namaddr, info->data,
                 tls_session_reused(sess->tls) ? " (session reused)" : "");
    if (policy->level >= SMTP_TLS_VERIFY && !tls_session_verified(sess->tls)) {
        smtp_fail(state, 450, "4.7.5", "Server certificate not %s: %s",
                  tls_session_trusted(sess->tls) ? "verified" : "trusted",
                  tls_session_verify_error(sess->tls));
        goto done;
    }
    strbuf_printf(info, "%s/%s/%s", tls_session_version(sess->tls),
                  tls_session_cipher(sess->tls),
                  smtp_tls_trust_word(sess->tls));
    free(sess->tls_summary);
    sess->tls_summary = strbuf_export(&info);
    rc = 1;
done:
    argv_free(&match);
    strbuf_free(&info);
    strbuf_free(&why);
    strbuf_free(&key);
    smtp_reply_free(&r);
    return rc;
}
