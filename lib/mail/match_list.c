/*
 * match_list - domain and network lists.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/dict.h"
#include "mail/match_list.h"
#include "mail/params.h"
#include "util/argv.h"
#include "util/cfline.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/token.h"
#include "util/xmalloc.h"

#define MATCH_DELIM ", \t\r\n"

typedef enum { ITEM_DOMAIN, ITEM_SUBDOMAIN, ITEM_NET, ITEM_TABLE } ITEM_KIND;

typedef struct MATCH_ITEM {
    ITEM_KIND kind;
    int     negate;
    char   *text;                       /* domain, lowercased */
    DICT   *dict;
    int     family;
    unsigned char addr[16];
    int     bits;
} MATCH_ITEM;

struct MATCH_LIST {
    char   *name;
    int     networks;
    int     parent_style;
    MATCH_ITEM *items;
    size_t  count;
    STRBUF *error;
    int     broken;                     /* a bad item: always MATCH_ERROR */
};

int match_list_parent_style(const char *name)
{
    ARGV *names = argv_split(var_parent_domain_matches_subdomains
                             ? var_parent_domain_matches_subdomains : "",
                             MATCH_DELIM);
    int found = 0;

    for (size_t i = 0; i < names->argc; i++)
        found |= strcmp(names->argv[i], name) == 0;
    argv_free(&names);
    return found;
}

static MATCH_ITEM *match_add(MATCH_LIST *list)
{
    list->items = xreallocarray(list->items, list->count + 1,
                                sizeof(MATCH_ITEM));
    memset(&list->items[list->count], 0, sizeof(MATCH_ITEM));
    return &list->items[list->count++];
}

/* Parse "a.b.c.d[/n]", "[v6][/n]" or "v6/n"; 0 or -1. */
static int match_parse_net(const char *text, MATCH_ITEM *item)
{
    char *copy = xstrdup(text);
    char *host = copy;
    char *slash;
    long bits = -1;
    int rc = -1;

    if ((slash = strrchr(host, '/')) != NULL) {
        *slash = 0;
        if (str_to_long(slash + 1, 0, 128, &bits) < 0)
            goto done;
    }
    if (*host == '[') {
        size_t len = strlen(host);

        if (len < 2 || host[len - 1] != ']')
            goto done;
        host[len - 1] = 0;
        host++;
    }
    if (inet_pton(AF_INET, host, item->addr) == 1) {
        item->family = AF_INET;
        if (bits > 32)
            goto done;
        item->bits = bits < 0 ? 32 : (int) bits;
    } else if (inet_pton(AF_INET6, host, item->addr) == 1) {
        item->family = AF_INET6;
        item->bits = bits < 0 ? 128 : (int) bits;
    } else {
        goto done;
    }
    rc = 0;
done:
    free(copy);
    return rc;
}

static void match_parse(MATCH_LIST *list, const char *value, int depth);

/*
 * "type:name" is a table.  Domains never contain ":", so in a domain list
 * any such item is one (an unknown type then fails loudly); in a network
 * list only known types are, since "fe80::1" also has a colon.
 */
static int match_is_table(const char *tok, int networks)
{
    size_t n = strspn(tok, "abcdefghijklmnopqrstuvwxyz0123456789");
    char *type;
    int known;

    if (n == 0 || tok[n] != ':')
        return 0;
    if (!networks)
        return 1;
    type = xstrndup(tok, n);
    known = dict_type_known(type);
    free(type);
    return known;
}

static void match_parse_item(MATCH_LIST *list, const char *tok, int depth)
{
    MATCH_ITEM *item;
    int negate = 0;

    while (*tok == '!') {
        negate = !negate;
        tok++;
    }
    if (*tok == 0)
        return;
    if (*tok == '/') {
        STRBUF *text = strbuf_alloc(1024);

        if (depth > 5 || cfline_read_file(tok, text) < 0) {
            msg_warn("%s: cannot read %s: %s", list->name, tok,
                     depth > 5 ? "files nested too deep" : strerror(errno));
            strbuf_printf(list->error, "%s: cannot read %s", list->name, tok);
            list->broken = 1;
        } else if (memchr(text->data, 0, text->len) != NULL) {
            /* It would silently hide the items that follow it. */
            msg_warn("%s: NUL byte in %s", list->name, tok);
            strbuf_printf(list->error, "%s: NUL byte in %s", list->name, tok);
            list->broken = 1;
        } else {
            /* Comments in list files: drop "#..." to the end of line. */
            for (char *cp = text->data; (cp = strchr(cp, '#')) != NULL;)
                while (*cp && *cp != '\n')
                    *cp++ = ' ';
            match_parse(list, text->data, depth + 1);
        }
        strbuf_free(&text);
        return;
    }
    item = match_add(list);
    item->negate = negate;
    if (match_is_table(tok, list->networks)) {
        item->kind = ITEM_TABLE;
        item->text = xstrdup(tok);
        item->dict = dict_open_surrogate(tok, DICT_FLAG_DEFAULT);
        return;
    }
    if (list->networks) {
        item->kind = ITEM_NET;
        item->text = xstrdup(tok);
        if (match_parse_net(tok, item) < 0) {
            msg_warn("%s: bad network or address: \"%s\"", list->name, tok);
            strbuf_printf(list->error, "%s: bad network or address: \"%s\"",
                          list->name, tok);
            list->broken = 1;
        }
        return;
    }
    item->kind = *tok == '.' ? ITEM_SUBDOMAIN : ITEM_DOMAIN;
    item->text = xstrdup(*tok == '.' ? tok + 1 : tok);
    for (char *cp = item->text; *cp; cp++)
        *cp = (char) tolower((unsigned char) *cp);
}

static void match_parse(MATCH_LIST *list, const char *value, int depth)
{
    TOKEN_CURSOR cur;
    const char *tok;
    const char *error;
    size_t len;
    int rc;

    token_init(&cur, value);
    while ((rc = token_next_grouped(&cur, MATCH_DELIM, &tok, &len,
                                    &error)) > 0) {
        char *item = xstrndup(tok, len);

        match_parse_item(list, item, depth);
        free(item);
    }
    if (rc < 0) {
        msg_warn("%s: %s", list->name, error);
        strbuf_printf(list->error, "%s: %s", list->name, error);
        list->broken = 1;
    }
}

static MATCH_LIST *match_list_alloc(const char *name, const char *value,
                                    int networks)
{
    MATCH_LIST *list = xcalloc(1, sizeof(*list));

    list->name = xstrdup(name);
    list->networks = networks;
    list->parent_style = match_list_parent_style(name);
    list->error = strbuf_alloc(64);
    match_parse(list, value, 0);
    return list;
}

MATCH_LIST *match_list_domains(const char *name, const char *value)
{
    return match_list_alloc(name, value, 0);
}

MATCH_LIST *match_list_networks(const char *name, const char *value)
{
    return match_list_alloc(name, value, 1);
}

void match_list_free(MATCH_LIST **listp)
{
    MATCH_LIST *list = *listp;

    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].text);
        dict_close(&list->items[i].dict);
    }
    free(list->items);
    free(list->name);
    strbuf_free(&list->error);
    xfree(listp);
}

const char *match_list_error(const MATCH_LIST *list)
{
    return list->error->data;
}

/* Is domain equal to parent or below it? */
static int match_is_sub(const char *domain, const char *parent, int or_equal)
{
    size_t dl = strlen(domain);
    size_t pl = strlen(parent);

    if (dl == pl)
        return or_equal && strcasecmp(domain, parent) == 0;
    return dl > pl && domain[dl - pl - 1] == '.'
        && strcasecmp(domain + dl - pl, parent) == 0;
}

static int match_table(MATCH_LIST *list, MATCH_ITEM *item, const char *key)
{
    const char *value;

    switch (dict_lookup(item->dict, key, &value)) {
    case DICT_FOUND:
        return MATCH_YES;
    case DICT_ERROR:
        strbuf_printf(list->error, "%s: %s: %s", list->name, item->text,
                      item->dict->error->data);
        return MATCH_ERROR;
    }
    return MATCH_NO;
}

static int match_domain_table(MATCH_LIST *list, MATCH_ITEM *item,
                              const char *domain)
{
    const char *cp = domain;
    int rc;

    if ((rc = match_table(list, item, domain)) != MATCH_NO
        || (item->dict->flags & DICT_FLAG_PATTERN))
        return rc;
    while ((cp = strchr(cp, '.')) != NULL) {
        rc = match_table(list, item, list->parent_style ? cp + 1 : cp);
        if (rc != MATCH_NO)
            return rc;
        cp++;
    }
    return MATCH_NO;
}

int match_list_domain(MATCH_LIST *list, const char *domain)
{
    if (list->broken)
        return MATCH_ERROR;
    for (size_t i = 0; i < list->count; i++) {
        MATCH_ITEM *item = &list->items[i];
        int rc = MATCH_NO;

        switch (item->kind) {
        case ITEM_DOMAIN:
            rc = match_is_sub(domain, item->text, 1)
                && (list->parent_style || strcasecmp(domain, item->text) == 0);
            break;
        case ITEM_SUBDOMAIN:
            rc = match_is_sub(domain, item->text, 0);
            break;
        case ITEM_TABLE:
            rc = match_domain_table(list, item, domain);
            break;
        case ITEM_NET:
            break;
        }
        if (rc == MATCH_ERROR)
            return MATCH_ERROR;
        if (rc == MATCH_YES)
            return item->negate ? MATCH_NO : MATCH_YES;
    }
    return MATCH_NO;
}

static int match_net(const MATCH_ITEM *item, int family,
                     const unsigned char *addr)
{
    int bits = item->bits;

    if (family != item->family)
        return 0;
    for (int i = 0; bits > 0; i++, bits -= 8) {
        unsigned char mask = (unsigned char) (bits >= 8 ? 0xff
                                              : 0xff << (8 - bits));

        if ((addr[i] & mask) != (item->addr[i] & mask))
            return 0;
    }
    return 1;
}

int match_list_address(MATCH_LIST *list, const char *address)
{
    unsigned char addr[16];
    int family;

    if (list->broken)
        return MATCH_ERROR;
    if (inet_pton(AF_INET, address, addr) == 1) {
        family = AF_INET;
    } else if (inet_pton(AF_INET6, address, addr) == 1) {
        family = AF_INET6;
        /* An IPv4-mapped IPv6 address matches as IPv4. */
        if (memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
            memmove(addr, addr + 12, 4);
            family = AF_INET;
        }
    } else {
        return MATCH_NO;
    }
    for (size_t i = 0; i < list->count; i++) {
        MATCH_ITEM *item = &list->items[i];
        int rc = MATCH_NO;

        if (item->kind == ITEM_NET)
            rc = match_net(item, family, addr);
        else if (item->kind == ITEM_TABLE)
            rc = match_table(list, item, address);
        if (rc == MATCH_ERROR)
            return MATCH_ERROR;
        if (rc == MATCH_YES)
            return item->negate ? MATCH_NO : MATCH_YES;
    }
    return MATCH_NO;
}
