/*
 * smtpd_check - the restriction lists (Postfix smtpd_*_restrictions).
 *
 * Each list is evaluated left to right; a restriction answers permit
 * (ends its own list), reject/defer (ends everything, with a reply) or
 * no decision.  With smtpd_delay_reject (the default) the client, HELO
 * and sender lists are evaluated at RCPT, before the relay and recipient
 * lists, so that rejects are logged with the recipient.  A table that
 * fails gives a 4xx, never a permit and never a 5xx.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/addr_canon.h"
#include "mail/dns.h"
#include "mail/params.h"
#include "smtpd.h"
#include "util/msg.h"
#include "util/token.h"
#include "util/xmalloc.h"

#define CHECK_DEPTH_MAX 50              /* restrictions in access results */

typedef struct CHECK_ITEM {
    char   *name;
    MAPS   *maps;                       /* check_*_access */
} CHECK_ITEM;

typedef struct CHECK_LIST {
    const char *param;
    CHECK_ITEM *items;
    size_t  count;
} CHECK_LIST;

static CHECK_LIST check_client;
static CHECK_LIST check_helo;
static CHECK_LIST check_sender;
static CHECK_LIST check_relay;
static CHECK_LIST check_rcpt;
static CHECK_LIST check_data;
static int check_config_error;

static MATCH_LIST *check_mynetworks;
static MATCH_LIST *check_mydestination;
static MATCH_LIST *check_relay_domains;
static MATCH_LIST *check_valias_domains;
static MATCH_LIST *check_vmailbox_domains;
static MAPS *check_local_rcpt_maps;
static MAPS *check_valias_maps;
static MAPS *check_vmailbox_maps;
static MAPS *check_sender_login_maps;
static int check_access_parent;

/* Restrictions that take a table argument. */
static const char *check_table_names[] = {
    "check_client_access", "check_helo_access", "check_sender_access",
    "check_recipient_access", NULL,
};

/* Restrictions without an argument. */
static const char *check_simple_names[] = {
    "permit", "reject", "defer", "dunno", "warn_if_reject",
    "permit_mynetworks", "permit_sasl_authenticated",
    "reject_unauth_destination", "defer_unauth_destination",
    "reject_unknown_recipient_domain", "reject_unlisted_recipient",
    "reject_non_fqdn_helo_hostname", "reject_invalid_helo_hostname",
    "reject_non_fqdn_sender", "reject_non_fqdn_recipient",
    "reject_unauth_pipelining", "reject_sender_login_mismatch",
    "reject_authenticated_sender_login_mismatch",
    "reject_known_sender_login_mismatch",
    "reject_unauthenticated_sender_login_mismatch", NULL,
};

/* The sender login restrictions, which need smtpd_sender_login_maps. */
static const char *check_login_names[] = {
    "reject_sender_login_mismatch",
    "reject_authenticated_sender_login_mismatch",
    "reject_known_sender_login_mismatch",
    "reject_unauthenticated_sender_login_mismatch", NULL,
};

static int check_in(const char **names, const char *word)
{
    for (int i = 0; names[i]; i++)
        if (strcasecmp(names[i], word) == 0)
            return 1;
    return 0;
}

/* Parse a restriction list; unknown names are a configuration error. */
static void check_list_init(CHECK_LIST *list, const char *param,
                            const char *value)
{
    TOKEN_CURSOR cur;
    const char *tok;
    const char *error;
    size_t len;
    int rc;

    list->param = param;
    token_init(&cur, value);
    while ((rc = token_next_grouped(&cur, ", \t\r\n", &tok, &len,
                                    &error)) > 0) {
        char *word = xstrndup(tok, len);
        CHECK_ITEM *item;

        list->items = xreallocarray(list->items, list->count + 1,
                                    sizeof(CHECK_ITEM));
        item = &list->items[list->count++];
        item->name = word;
        item->maps = NULL;
        if (check_in(check_table_names, word)) {
            if (token_next_grouped(&cur, ", \t\r\n", &tok, &len, &error) <= 0) {
                msg_error("%s: %s needs a table argument", param, word);
                check_config_error = 1;
                break;
            }
            {
                char *table = xstrndup(tok, len);

                item->maps = maps_open(param, table, DICT_FLAG_DEFAULT);
                free(table);
            }
        } else if (!check_in(check_simple_names, word)) {
            msg_error("%s: unknown restriction \"%s\"", param, word);
            check_config_error = 1;
        }
    }
    if (rc < 0) {
        msg_error("%s: %s", param, error);
        check_config_error = 1;
    }
}

static int check_list_has(const CHECK_LIST *list, const char **names)
{
    for (size_t i = 0; i < list->count; i++)
        if (check_in(names, list->items[i].name))
            return 1;
    return 0;
}

void smtpd_check_init(void)
{
    static const char *relay_guards[] = {
        "reject_unauth_destination", "defer_unauth_destination", "reject",
        "defer", NULL,
    };

    check_list_init(&check_client, "smtpd_client_restrictions",
                    var_smtpd_client_restrictions);
    check_list_init(&check_helo, "smtpd_helo_restrictions",
                    var_smtpd_helo_restrictions);
    check_list_init(&check_sender, "smtpd_sender_restrictions",
                    var_smtpd_sender_restrictions);
    check_list_init(&check_relay, "smtpd_relay_restrictions",
                    var_smtpd_relay_restrictions);
    check_list_init(&check_rcpt, "smtpd_recipient_restrictions",
                    var_smtpd_recipient_restrictions);
    check_list_init(&check_data, "smtpd_data_restrictions",
                    var_smtpd_data_restrictions);
    /* The default must never be an open relay (Postfix refuses too). */
    if (!check_list_has(&check_relay, relay_guards)
        && !check_list_has(&check_rcpt, relay_guards)) {
        msg_error("in smtpd_relay_restrictions or "
                  "smtpd_recipient_restrictions, specify at least one of "
                  "reject_unauth_destination, defer_unauth_destination, "
                  "reject or defer");
        check_config_error = 1;
    }
    check_mynetworks = match_list_networks("mynetworks", var_mynetworks);
    check_mydestination = match_list_domains("mydestination",
                                             var_mydestination);
    check_relay_domains = match_list_domains("relay_domains",
                                             var_relay_domains);
    check_valias_domains = match_list_domains("virtual_alias_domains",
                                              var_virtual_alias_domains);
    check_vmailbox_domains = match_list_domains("virtual_mailbox_domains",
                                                var_virtual_mailbox_domains);
    check_local_rcpt_maps = maps_open("local_recipient_maps",
                                      var_local_recipient_maps,
                                      DICT_FLAG_DEFAULT);
    check_valias_maps = maps_open("virtual_alias_maps", var_virtual_alias_maps,
                                  DICT_FLAG_DEFAULT);
    check_vmailbox_maps = maps_open("virtual_mailbox_maps",
                                    var_virtual_mailbox_maps,
                                    DICT_FLAG_DEFAULT);
    check_access_parent = match_list_parent_style("smtpd_access_maps");
    check_sender_login_maps = maps_open("smtpd_sender_login_maps",
                                        var_smtpd_sender_login_maps,
                                        DICT_FLAG_DEFAULT);
    /* Postfix ignores the restriction with a warning; a hole, not here. */
    if (check_sender_login_maps->count == 0) {
        const CHECK_LIST *lists[] = {&check_client, &check_helo,
            &check_sender, &check_relay, &check_rcpt, &check_data};

        for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
            if (check_list_has(lists[i], check_login_names)) {
                msg_error("%s: sender login restrictions need "
                          "smtpd_sender_login_maps", lists[i]->param);
                check_config_error = 1;
            }
        }
    }
}

/* Another part of smtpd found an error in main.cf: refuse mail with 451. */
void smtpd_check_config_broken(void)
{
    check_config_error = 1;
}

/* --- replies ---------------------------------------------------------- */

static int check_reject(SMTPD_STATE *state, int code, const char *dsn,
                        const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int check_reject(SMTPD_STATE *state, int code, const char *dsn,
                        const char *fmt, ...)
{
    va_list ap;

    state->reply.code = code;
    /* The enhanced code's class follows the reply code. */
    snprintf(state->reply.dsn, sizeof(state->reply.dsn), "%c%s",
             code >= 500 ? '5' : '4', dsn + 1);
    strbuf_reset(state->reply.text);
    va_start(ap, fmt);
    strbuf_vprintf_append(state->reply.text, fmt, ap);
    va_end(ap);
    state->reply.disconnect = code == 421 || code == 521;
    return SMTPD_CHECK_REJECT;
}

static int check_tempfail(SMTPD_STATE *state, const char *what)
{
    return check_reject(state, 451, "4.3.0", "<%s>: Temporary lookup failure",
                        what);
}

static int check_config_fail(SMTPD_STATE *state)
{
    return check_reject(state, 451, "4.3.5", "Server configuration error");
}

/* --- the context of one evaluation ------------------------------------ */

typedef struct CHECK_CTX {
    const char *rcpt;                   /* NULL before RCPT */
    const char *class;                  /* "Client host", ... */
    const char *what;                   /* the <name> in replies */
    int     warn_only;                  /* warn_if_reject */
} CHECK_CTX;

static int check_items(SMTPD_STATE *state, CHECK_CTX *ctx,
                       const CHECK_ITEM *items, size_t count);

/* --- the restrictions ------------------------------------------------- */

static int check_valid_hostname(const char *name)
{
    size_t label = 0;
    size_t len = strlen(name);

    if (len == 0 || len > 255)
        return 0;
    for (const char *cp = name; *cp; cp++) {
        if (*cp == '.') {
            if (label == 0 || cp[-1] == '-')
                return 0;
            label = 0;
        } else if (isalnum((unsigned char) *cp) || *cp == '_'
                   || (*cp == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return name[len - 1] != '-';
}

static int check_address_literal(const char *name)
{
    size_t len = strlen(name);
    char buf[64];
    unsigned char addr[16];

    if (len < 3 || name[0] != '[' || name[len - 1] != ']' || len - 2
        >= sizeof(buf))
        return 0;
    memcpy(buf, name + 1, len - 2);
    buf[len - 2] = 0;
    if (strncasecmp(buf, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, buf + 5, addr) == 1;
    return inet_pton(AF_INET, buf, addr) == 1;
}

static int check_fqdn(const char *domain)
{
    char *copy = xstrdup(domain);
    size_t len = strlen(copy);
    int ok;

    if (len > 1 && copy[len - 1] == '.')
        copy[len - 1] = 0;
    ok = check_address_literal(copy)
        || (strchr(copy, '.') != NULL && check_valid_hostname(copy));
    free(copy);
    return ok;
}

/* Is the canonical recipient's domain one we accept mail for? */
static int check_our_destination(SMTPD_STATE *state, const char *rcpt,
                                 int *ours_r)
{
    STRBUF *canon = strbuf_alloc(128);
    MATCH_LIST *lists[] = {check_mydestination, check_valias_domains,
                           check_vmailbox_domains, check_relay_domains};
    const char *domain;
    int rc = 0;

    addr_canon(rcpt, check_mydestination, canon);
    domain = addr_domain(canon->data);
    *ours_r = 0;
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        int m = match_list_domain(lists[i], domain);

        if (m == MATCH_ERROR) {
            msg_warn("%s", match_list_error(lists[i]));
            rc = -1;
            break;
        }
        if (m == MATCH_YES) {
            *ours_r = 1;
            break;
        }
    }
    (void) state;
    strbuf_free(&canon);
    return rc;
}

static int check_unauth_destination(SMTPD_STATE *state, CHECK_CTX *ctx,
                                    int defer)
{
    int ours;

    if (ctx->rcpt == NULL)
        return SMTPD_CHECK_DUNNO;
    if (check_our_destination(state, ctx->rcpt, &ours) < 0)
        return check_tempfail(state, ctx->rcpt);
    if (ours)
        return SMTPD_CHECK_DUNNO;
    if (defer)
        return check_reject(state, 454, "4.7.1", "<%s>: Relay access denied",
                            ctx->rcpt);
    return check_reject(state, var_relay_domains_reject_code, "5.7.1",
                        "<%s>: Relay access denied", ctx->rcpt);
}

/* Find the recipient in a table; DICT_* result. */
static int check_find_rcpt(MAPS *maps, const char *addr, MAPS_ADDR_KIND kind,
                           int local)
{
    const char *value;

    if (maps->count == 0)
        return DICT_NOTFOUND;
    return maps_find_addr(maps, addr, kind, local ? MAPS_ADDR_FLAG_LOCAL : 0,
                          &value, NULL);
}

int smtpd_check_unlisted(SMTPD_STATE *state, const char *rcpt)
{
    STRBUF *canon = strbuf_alloc(128);
    const char *domain;
    const char *table = NULL;
    int code = 0;
    int rc = SMTPD_CHECK_DUNNO;
    int m;

    addr_canon(rcpt, check_mydestination, canon);
    domain = addr_domain(canon->data);
    /* Virtual aliases cover every class. */
    switch (check_find_rcpt(check_valias_maps, canon->data, MAPS_ADDR_VIRTUAL,
                            match_list_domain(check_mydestination, domain)
                            == MATCH_YES)) {
    case DICT_FOUND:
        goto done;
    case DICT_ERROR:
        msg_warn("%s", check_valias_maps->error->data);
        rc = check_tempfail(state, rcpt);
        goto done;
    }
    if ((m = match_list_domain(check_mydestination, domain)) == MATCH_YES) {
        if (check_local_rcpt_maps->count == 0)
            goto done;                  /* local_recipient_maps empty */
        switch (check_find_rcpt(check_local_rcpt_maps, canon->data,
                                MAPS_ADDR_VIRTUAL, 1)) {
        case DICT_FOUND:
            goto done;
        case DICT_ERROR:
            msg_warn("%s", check_local_rcpt_maps->error->data);
            rc = check_tempfail(state, rcpt);
            goto done;
        }
        table = "local recipient table";
        code = var_unknown_local_recipient_reject_code;
    } else if (m == MATCH_ERROR) {
        rc = check_tempfail(state, rcpt);
        goto done;
    } else if ((m = match_list_domain(check_valias_domains, domain))
               == MATCH_YES) {
        table = "virtual alias table";
        code = var_unknown_virtual_alias_reject_code;
    } else if (m == MATCH_ERROR) {
        rc = check_tempfail(state, rcpt);
        goto done;
    } else if ((m = match_list_domain(check_vmailbox_domains, domain))
               == MATCH_YES) {
        switch (check_find_rcpt(check_vmailbox_maps, canon->data,
                                MAPS_ADDR_MAILBOX, 0)) {
        case DICT_FOUND:
            goto done;
        case DICT_ERROR:
            msg_warn("%s", check_vmailbox_maps->error->data);
            rc = check_tempfail(state, rcpt);
            goto done;
        }
        table = "virtual mailbox table";
        code = var_unknown_virtual_mailbox_reject_code;
    } else if (m == MATCH_ERROR) {
        rc = check_tempfail(state, rcpt);
        goto done;
    }
    if (table)
        rc = check_reject(state, code, "5.1.1", "<%s>: Recipient address "
                          "rejected: User unknown in %s", rcpt, table);
done:
    strbuf_free(&canon);
    return rc;
}

static int check_unknown_rcpt_domain(SMTPD_STATE *state, CHECK_CTX *ctx)
{
    STRBUF *canon;
    int ours;
    int rc = SMTPD_CHECK_DUNNO;

    if (ctx->rcpt == NULL)
        return SMTPD_CHECK_DUNNO;
    if (check_our_destination(state, ctx->rcpt, &ours) < 0)
        return check_tempfail(state, ctx->rcpt);
    if (ours)
        return SMTPD_CHECK_DUNNO;
    canon = strbuf_alloc(128);
    addr_canon(ctx->rcpt, check_mydestination, canon);
    switch (dns_domain_exists(addr_domain(canon->data))) {
    case DNS_NOTFOUND:
        rc = check_reject(state, var_unknown_address_reject_code, "4.1.2",
                          "<%s>: Recipient address rejected: Domain not "
                          "found", ctx->rcpt);
        break;
    case DNS_RETRY:
        rc = check_reject(state, 450, "4.1.2", "<%s>: Recipient address "
                          "rejected: Domain not found", ctx->rcpt);
        break;
    }
    strbuf_free(&canon);
    return rc;
}

/* --- access tables ---------------------------------------------------- */

/*
 * "ID: hold: RCPT from c[a]: <x>: Class triggers HOLD action[: text];
 *  from=<s> to=<r> proto=P helo=<h>", as Postfix logs it.
 */
static void check_log_action(SMTPD_STATE *state, CHECK_CTX *ctx,
                             const char *kind, const char *action,
                             const char *text)
{
    STRBUF *line = strbuf_alloc(256);

    strbuf_printf(line, "%s: %s: %s from %s: <%s>: %s triggers %s action",
                  state->queue_id ? state->queue_id : "NOQUEUE", kind,
                  state->where, state->namaddr, ctx->what, ctx->class,
                  action);
    if (*text)
        strbuf_printf_append(line, ": %s", text);
    strbuf_cat(line, ";");
    if (state->sender)
        strbuf_printf_append(line, " from=<%s>", state->sender);
    if (ctx->rcpt)
        strbuf_printf_append(line, " to=<%s>", ctx->rcpt);
    strbuf_printf_append(line, " proto=%s", state->protocol);
    if (state->helo)
        strbuf_printf_append(line, " helo=<%s>", state->helo);
    msg_info("%s", line->data);
    strbuf_free(&line);
}

static int check_access_result(SMTPD_STATE *state, CHECK_CTX *ctx,
                               const char *value, const char *table)
{
    size_t word = strcspn(value, " \t");
    const char *text = value + word + strspn(value + word, " \t");
    int rc = SMTPD_CHECK_DUNNO;

    if ((word == 2 && strncasecmp(value, "OK", 2) == 0)
        || (word > 0 && strspn(value, "0123456789") == word && !value[word]))
        return SMTPD_CHECK_OK;
    if (word == 5 && strncasecmp(value, "DUNNO", 5) == 0)
        return SMTPD_CHECK_DUNNO;
    if (word == 6 && strncasecmp(value, "REJECT", 6) == 0)
        return check_reject(state, var_access_map_reject_code, "5.7.1",
                            "<%s>: %s rejected: %s", ctx->what, ctx->class,
                            *text ? text : "Access denied");
    if (word == 5 && strncasecmp(value, "DEFER", 5) == 0)
        return check_reject(state, var_access_map_defer_code, "4.7.1",
                            "<%s>: %s rejected: %s", ctx->what, ctx->class,
                            *text ? text : "Access denied");
    if (word == 3 && (value[0] == '4' || value[0] == '5')
        && isdigit((unsigned char) value[1])
        && isdigit((unsigned char) value[2])) {
        const char *dsn = value[0] == '4' ? "4.7.1" : "5.7.1";
        const char *rest = text;
        char given[16];
        size_t dlen = strcspn(text, " \t");

        /* An enhanced code may follow the reply code. */
        if (dlen >= 5 && dlen < sizeof(given) && text[1] == '.'
            && (text[0] == '4' || text[0] == '5')) {
            memcpy(given, text, dlen);
            given[dlen] = 0;
            dsn = given;
            rest = text + dlen + strspn(text + dlen, " \t");
        }
        return check_reject(state, (value[0] - '0') * 100
                            + (value[1] - '0') * 10 + (value[2] - '0'), dsn,
                            "<%s>: %s rejected: %s",
                            ctx->what, ctx->class,
                            *rest ? rest : "Access denied");
    }
    if (word == 4 && strncasecmp(value, "HOLD", 4) == 0) {
        check_log_action(state, ctx, "hold", "HOLD", text);
        state->hold = 1;
        return SMTPD_CHECK_DUNNO;
    }
    if (word == 7 && strncasecmp(value, "DISCARD", 7) == 0) {
        check_log_action(state, ctx, "discard", "DISCARD", text);
        state->discard = 1;
        return SMTPD_CHECK_OK;
    }
    if (word == 7 && strncasecmp(value, "PREPEND", 7) == 0) {
        if (strchr(text, ':') && !strpbrk(text, "\r\n"))
            argv_add(state->prepend, text);
        else
            msg_warn("%s: bad PREPEND header: \"%s\"", table, text);
        return SMTPD_CHECK_DUNNO;
    }
    if (word == 4 && strncasecmp(value, "WARN", 4) == 0) {
        msg_info("%s: warn: %s from %s: %s; from=<%s> proto=%s helo=<%s>",
                 state->queue_id ? state->queue_id : "NOQUEUE", state->where,
                 state->namaddr, text, state->sender ? state->sender : "",
                 state->protocol, state->helo ? state->helo : "");
        return SMTPD_CHECK_DUNNO;
    }
    if (word == 4 && strncasecmp(value, "INFO", 4) == 0) {
        msg_info("%s: info: %s from %s: %s",
                 state->queue_id ? state->queue_id : "NOQUEUE", state->where,
                 state->namaddr, text);
        return SMTPD_CHECK_DUNNO;
    }
    /* A restriction list as the result. */
    {
        char *copy = xstrndup(value, word);
        int known = check_in(check_simple_names, copy)
            || check_in(check_table_names, copy);

        free(copy);
        if (known) {
            CHECK_LIST list;

            memset(&list, 0, sizeof(list));
            if (++state->check_depth > CHECK_DEPTH_MAX) {
                msg_warn("%s: restriction nesting too deep", table);
                rc = check_config_fail(state);
            } else {
                int saved = check_config_error;

                check_config_error = 0;
                check_list_init(&list, table, value);
                rc = check_config_error ? check_config_fail(state)
                    : check_items(state, ctx, list.items, list.count);
                check_config_error = saved;
            }
            state->check_depth--;
            for (size_t i = 0; i < list.count; i++) {
                free(list.items[i].name);
                maps_free(&list.items[i].maps);
            }
            free(list.items);
            return rc;
        }
    }
    msg_warn("%s: unknown access action \"%s\"", table, value);
    return check_config_fail(state);
}

static int check_access_key(SMTPD_STATE *state, CHECK_CTX *ctx, MAPS *maps,
                            const char *key, int first, int *found_r)
{
    const char *value;

    *found_r = 0;
    for (size_t i = 0; i < maps->count; i++) {
        DICT *d = maps->dicts[i];

        if ((d->flags & DICT_FLAG_PATTERN) && !first)
            continue;
        switch (dict_lookup(d, key, &value)) {
        case DICT_FOUND:
            {
                char *copy = xstrdup(value);
                int rc;

                *found_r = 1;
                rc = check_access_result(state, ctx, copy, maps->title);
                free(copy);
                return rc;
            }
        case DICT_ERROR:
            msg_warn("%s: %s:%s: %s", maps->title, d->type, d->name,
                     d->error->data);
            *found_r = 1;
            return check_tempfail(state, ctx->what);
        }
    }
    return SMTPD_CHECK_DUNNO;
}

/* A domain and its parents ("parent" or ".parent" style). */
static int check_access_domain(SMTPD_STATE *state, CHECK_CTX *ctx,
                               MAPS *maps, const char *domain, int first,
                               int *found_r)
{
    const char *cp = domain;
    int rc;

    if ((rc = check_access_key(state, ctx, maps, domain, first, found_r))
        != SMTPD_CHECK_DUNNO || *found_r)
        return rc;
    while ((cp = strchr(cp, '.')) != NULL && cp[1]) {
        rc = check_access_key(state, ctx, maps,
                              check_access_parent ? cp + 1 : cp, 0, found_r);
        if (rc != SMTPD_CHECK_DUNNO || *found_r)
            return rc;
        cp++;
    }
    return SMTPD_CHECK_DUNNO;
}

static int check_client_access(SMTPD_STATE *state, CHECK_CTX *ctx,
                               MAPS *maps)
{
    STRBUF *key = strbuf_alloc(64);
    int found = 0;
    int first = 1;
    int rc = SMTPD_CHECK_DUNNO;

    if (strcmp(state->name, "unknown") != 0) {
        rc = check_access_domain(state, ctx, maps, state->name, 1, &found);
        first = 0;
    }
    /* The address, then its shorter IPv4 prefixes. */
    strbuf_set(key, state->addr);
    while (!found && rc == SMTPD_CHECK_DUNNO) {
        char *dot;

        rc = check_access_key(state, ctx, maps, key->data, first, &found);
        first = 0;
        if (strchr(key->data, ':') || (dot = strrchr(key->data, '.')) == NULL)
            break;
        strbuf_truncate(key, (size_t) (dot - key->data));
    }
    strbuf_free(&key);
    return rc;
}

static int check_addr_access(SMTPD_STATE *state, CHECK_CTX *ctx, MAPS *maps,
                             const char *addr)
{
    ARGV *keys = argv_alloc(8);
    int found = 0;
    int rc = SMTPD_CHECK_DUNNO;

    maps_addr_keys(addr, MAPS_ADDR_ACCESS,
                   check_access_parent ? MAPS_ADDR_FLAG_PARENT : 0,
                   var_recipient_delimiter, keys);
    if (*addr == 0) {
        argv_truncate(keys, 0);
        argv_add(keys, var_smtpd_null_access_lookup_key);
    }
    for (size_t i = 0; i < keys->argc && !found
         && rc == SMTPD_CHECK_DUNNO; i++)
        rc = check_access_key(state, ctx, maps, keys->argv[i], i == 0, &found);
    argv_free(&keys);
    return rc;
}

/* --- evaluation ------------------------------------------------------- */

/*
 * reject_*_sender_login_mismatch: the sender address must belong to the
 * SASL login (smtpd_sender_login_maps lists the logins that own it).
 * An authenticated client using an address it does not own, or an
 * unauthenticated one using an address that has an owner, is refused;
 * the variants check only one of the two cases.  Never the null sender.
 */
#define CHECK_LOGIN_AUTH    (1 << 0)    /* check authenticated clients */
#define CHECK_LOGIN_UNAUTH  (1 << 1)    /* check unauthenticated ones */
#define CHECK_LOGIN_KNOWN   (1 << 2)    /* only listed senders */

static int check_sender_login(SMTPD_STATE *state, int how)
{
    const char *owners = NULL;
    int found;
    int owned = 0;

    if (state->sender == NULL || *state->sender == 0)
        return SMTPD_CHECK_DUNNO;
    found = maps_find_addr(check_sender_login_maps, state->sender,
                           MAPS_ADDR_VIRTUAL, 0, &owners, NULL);
    if (found == DICT_ERROR)
        return check_tempfail(state, state->sender);
    if (found == DICT_NOTFOUND && (how & CHECK_LOGIN_KNOWN))
        return SMTPD_CHECK_DUNNO;
    if (state->sasl_username) {
        if (!(how & CHECK_LOGIN_AUTH))
            return SMTPD_CHECK_DUNNO;
        if (found == DICT_FOUND) {
            ARGV *list = argv_split(owners, ", \t\r\n");

            for (size_t i = 0; i < list->argc && !owned; i++)
                owned = strcasecmp(list->argv[i], state->sasl_username) == 0;
            argv_free(&list);
        }
        if (!owned)
            return check_reject(state, 553, "5.7.1", "<%s>: Sender address "
                                "rejected: not owned by user %s",
                                state->sender, state->sasl_username);
        return SMTPD_CHECK_DUNNO;
    }
    if ((how & CHECK_LOGIN_UNAUTH) && found == DICT_FOUND)
        return check_reject(state, 553, "5.7.1", "<%s>: Sender address "
                            "rejected: not logged in", state->sender);
    return SMTPD_CHECK_DUNNO;
}

static int check_one(SMTPD_STATE *state, CHECK_CTX *ctx,
                     const CHECK_ITEM *item)
{
    const char *n = item->name;
    CHECK_CTX sub = *ctx;
    int found;

    if (strcasecmp(n, "permit") == 0)
        return SMTPD_CHECK_OK;
    if (strcasecmp(n, "dunno") == 0)
        return SMTPD_CHECK_DUNNO;
    if (strcasecmp(n, "reject") == 0)
        return check_reject(state, var_reject_code, "5.7.1",
                            "<%s>: %s rejected: Access denied", ctx->what,
                            ctx->class);
    if (strcasecmp(n, "defer") == 0)
        return check_reject(state, var_defer_code, "4.7.1",
                            "<%s>: %s rejected: Access denied", ctx->what,
                            ctx->class);
    if (strcasecmp(n, "permit_mynetworks") == 0) {
        switch (match_list_address(check_mynetworks, state->addr)) {
        case MATCH_YES:
            return SMTPD_CHECK_OK;
        case MATCH_ERROR:
            msg_warn("%s", match_list_error(check_mynetworks));
            return check_tempfail(state, state->namaddr);
        }
        return SMTPD_CHECK_DUNNO;
    }
    if (strcasecmp(n, "permit_sasl_authenticated") == 0)
        return state->sasl_username ? SMTPD_CHECK_OK : SMTPD_CHECK_DUNNO;
    if (strcasecmp(n, "reject_sender_login_mismatch") == 0)
        return check_sender_login(state, CHECK_LOGIN_AUTH | CHECK_LOGIN_UNAUTH);
    if (strcasecmp(n, "reject_authenticated_sender_login_mismatch") == 0)
        return check_sender_login(state, CHECK_LOGIN_AUTH);
    if (strcasecmp(n, "reject_known_sender_login_mismatch") == 0)
        return check_sender_login(state, CHECK_LOGIN_AUTH | CHECK_LOGIN_UNAUTH
                                  | CHECK_LOGIN_KNOWN);
    if (strcasecmp(n, "reject_unauthenticated_sender_login_mismatch") == 0)
        return check_sender_login(state, CHECK_LOGIN_UNAUTH);
    if (strcasecmp(n, "reject_unauth_destination") == 0)
        return check_unauth_destination(state, ctx, 0);
    if (strcasecmp(n, "defer_unauth_destination") == 0)
        return check_unauth_destination(state, ctx, 1);
    if (strcasecmp(n, "reject_unlisted_recipient") == 0)
        return ctx->rcpt ? smtpd_check_unlisted(state, ctx->rcpt)
            : SMTPD_CHECK_DUNNO;
    if (strcasecmp(n, "reject_unknown_recipient_domain") == 0)
        return check_unknown_rcpt_domain(state, ctx);
    if (strcasecmp(n, "reject_invalid_helo_hostname") == 0) {
        if (state->helo == NULL || check_address_literal(state->helo)
            || check_valid_hostname(state->helo))
            return SMTPD_CHECK_DUNNO;
        return check_reject(state, var_invalid_hostname_reject_code, "5.5.2",
                            "<%s>: Helo command rejected: Invalid name",
                            state->helo);
    }
    if (strcasecmp(n, "reject_non_fqdn_helo_hostname") == 0) {
        if (state->helo == NULL || check_fqdn(state->helo))
            return SMTPD_CHECK_DUNNO;
        return check_reject(state, var_non_fqdn_reject_code, "5.5.2",
                            "<%s>: Helo command rejected: need fully-"
                            "qualified hostname", state->helo);
    }
    if (strcasecmp(n, "reject_non_fqdn_sender") == 0) {
        if (state->sender == NULL || *state->sender == 0
            || (strchr(state->sender, '@')
                && check_fqdn(addr_domain(state->sender))))
            return SMTPD_CHECK_DUNNO;
        return check_reject(state, var_non_fqdn_reject_code, "5.5.2",
                            "<%s>: Sender address rejected: need fully-"
                            "qualified address", state->sender);
    }
    if (strcasecmp(n, "reject_non_fqdn_recipient") == 0) {
        if (ctx->rcpt == NULL || (strchr(ctx->rcpt, '@')
                                  && check_fqdn(addr_domain(ctx->rcpt))))
            return SMTPD_CHECK_DUNNO;
        return check_reject(state, var_non_fqdn_reject_code, "5.5.2",
                            "<%s>: Recipient address rejected: need fully-"
                            "qualified address", ctx->rcpt);
    }
    if (strcasecmp(n, "reject_unauth_pipelining") == 0) {
        if (stream_pending(state->client) == 0)
            return SMTPD_CHECK_DUNNO;
        return check_reject(state, 554, "5.5.0",
                            "Error: SMTP protocol synchronization");
    }
    if (strcasecmp(n, "check_client_access") == 0) {
        sub.class = "Client host";
        sub.what = state->namaddr;
        return check_client_access(state, &sub, item->maps);
    }
    if (strcasecmp(n, "check_helo_access") == 0) {
        if (state->helo == NULL)
            return SMTPD_CHECK_DUNNO;
        sub.class = "Helo command";
        sub.what = state->helo;
        return check_access_domain(state, &sub, item->maps, state->helo, 1,
                                   &found);
    }
    if (strcasecmp(n, "check_sender_access") == 0) {
        if (state->sender == NULL)
            return SMTPD_CHECK_DUNNO;
        sub.class = "Sender address";
        sub.what = state->sender;
        return check_addr_access(state, &sub, item->maps, state->sender);
    }
    if (strcasecmp(n, "check_recipient_access") == 0) {
        if (ctx->rcpt == NULL)
            return SMTPD_CHECK_DUNNO;
        sub.class = "Recipient address";
        sub.what = ctx->rcpt;
        return check_addr_access(state, &sub, item->maps, ctx->rcpt);
    }
    msg_warn("unknown restriction \"%s\"", n);
    return check_config_fail(state);
}

static int check_items(SMTPD_STATE *state, CHECK_CTX *ctx,
                       const CHECK_ITEM *items, size_t count)
{
    int warn_only = 0;

    for (size_t i = 0; i < count; i++) {
        int rc;

        if (strcasecmp(items[i].name, "warn_if_reject") == 0) {
            warn_only = 1;
            continue;
        }
        rc = check_one(state, ctx, &items[i]);
        if (warn_only && rc == SMTPD_CHECK_REJECT) {
            smtpd_log_reject(state, "reject_warning", ctx->rcpt,
                             &state->reply);
            state->reply.code = 0;
            rc = SMTPD_CHECK_DUNNO;
        }
        warn_only = 0;
        if (rc != SMTPD_CHECK_DUNNO)
            return rc;
    }
    return SMTPD_CHECK_DUNNO;
}

/* One list: a permit ends only this list. */
static int check_list(SMTPD_STATE *state, const CHECK_LIST *list,
                      const char *rcpt, const char *class, const char *what)
{
    CHECK_CTX ctx;
    int rc;

    ctx.rcpt = rcpt;
    ctx.class = class;
    ctx.what = what;
    ctx.warn_only = 0;
    state->check_depth = 0;
    rc = check_items(state, &ctx, list->items, list->count);
    return rc == SMTPD_CHECK_REJECT ? SMTPD_CHECK_REJECT : SMTPD_CHECK_DUNNO;
}

int smtpd_check_client(SMTPD_STATE *state)
{
    if (check_config_error)
        return check_config_fail(state);
    return check_list(state, &check_client, NULL, "Client host",
                      state->namaddr);
}

int smtpd_check_helo(SMTPD_STATE *state)
{
    if (check_config_error)
        return check_config_fail(state);
    return check_list(state, &check_helo, NULL, "Helo command",
                      state->helo ? state->helo : "");
}

int smtpd_check_mail(SMTPD_STATE *state)
{
    if (check_config_error)
        return check_config_fail(state);
    return check_list(state, &check_sender, NULL, "Sender address",
                      state->sender ? state->sender : "");
}

int smtpd_check_rcpt(SMTPD_STATE *state, const char *rcpt)
{
    if (check_config_error)
        return check_config_fail(state);
    if (var_smtpd_delay_reject
        && (check_list(state, &check_client, rcpt, "Client host",
                       state->namaddr) == SMTPD_CHECK_REJECT
            || check_list(state, &check_helo, rcpt, "Helo command",
                          state->helo ? state->helo : "")
            == SMTPD_CHECK_REJECT
            || check_list(state, &check_sender, rcpt, "Sender address",
                          state->sender) == SMTPD_CHECK_REJECT))
        return SMTPD_CHECK_REJECT;
    if (check_list(state, &check_relay, rcpt, "Recipient address", rcpt)
        == SMTPD_CHECK_REJECT
        || check_list(state, &check_rcpt, rcpt, "Recipient address", rcpt)
        == SMTPD_CHECK_REJECT)
        return SMTPD_CHECK_REJECT;
    if (var_smtpd_reject_unlisted_recipient)
        return smtpd_check_unlisted(state, rcpt);
    return SMTPD_CHECK_DUNNO;
}

int smtpd_check_data(SMTPD_STATE *state)
{
    if (check_config_error)
        return check_config_fail(state);
    return check_list(state, &check_data, NULL, "Data command", "DATA");
}
