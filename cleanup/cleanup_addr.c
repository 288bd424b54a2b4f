/*
 * cleanup_addr - envelope address rewriting: canonical form, canonical
 * maps, virtual alias expansion.
 */
#include <string.h>

#include "cleanup.h"
#include "mail/addr_canon.h"
#include "mail/params.h"
#include "util/msg.h"
#include "util/token.h"
#include "util/xmalloc.h"

/* Is the domain of addr one of ours (mydestination)? */
static int cleanup_local_domain(const char *domain)
{
    return *domain && match_list_domain(cleanup_mydestination, domain)
        == MATCH_YES;
}

void cleanup_canon_addr(const char *addr, STRBUF *out)
{
    addr_canon(addr, cleanup_mydestination, out);
}

/* Rewrite with the first table of two that has the address. */
int cleanup_rewrite(CLEANUP_STATE *state, MAPS *first, MAPS *second,
                    const char *addr, STRBUF *out)
{
    MAPS *tables[2] = {first, second};
    const char *at = strrchr(addr, '@');
    int flags = at && cleanup_local_domain(at + 1) ? MAPS_ADDR_FLAG_LOCAL : 0;

    strbuf_set(out, addr);
    if (*addr == 0)
        return 0;
    for (int i = 0; i < 2; i++) {
        const char *value;

        if (tables[i] == NULL || tables[i]->count == 0)
            continue;
        switch (maps_find_addr(tables[i], addr, MAPS_ADDR_VIRTUAL, flags,
                               &value, NULL)) {
        case DICT_FOUND:
            cleanup_canon_addr(value, out);
            return 0;
        case DICT_ERROR:
            msg_warn("%s: %s", state->queue_id, tables[i]->error->data);
            cleanup_failed(state, 451, "4.3.0", "Temporary lookup failure");
            return -1;
        }
    }
    return 0;
}

/* One level of virtual alias expansion, recursively. */
static int cleanup_expand(CLEANUP_STATE *state, const char *addr, int depth,
                          ARGV *result)
{
    STRBUF *canon = strbuf_alloc(128);
    const char *at = strrchr(addr, '@');
    int flags = at && cleanup_local_domain(at + 1) ? MAPS_ADDR_FLAG_LOCAL : 0;
    const char *value;
    int rc = 0;

    if (depth > var_virtual_alias_recursion_limit) {
        msg_warn("%s: virtual alias expansion of %s: recursion limit %d "
                 "exceeded", state->queue_id, addr,
                 var_virtual_alias_recursion_limit);
        cleanup_failed(state, 451, "4.6.0", "Alias expansion error");
        strbuf_free(&canon);
        return -1;
    }
    switch (maps_find_addr(cleanup_virtual_maps, addr, MAPS_ADDR_VIRTUAL,
                           flags, &value, NULL)) {
    case DICT_ERROR:
        msg_warn("%s: %s", state->queue_id,
                 cleanup_virtual_maps->error->data);
        cleanup_failed(state, 451, "4.3.0", "Temporary lookup failure");
        rc = -1;
        break;
    case DICT_NOTFOUND:
        argv_add(result, addr);
        break;
    case DICT_FOUND:
        {
            /* The value is a list; the table may be reused by recursion. */
            char *copy = xstrdup(value);
            TOKEN_CURSOR cur;
            const char *tok;
            size_t len;

            token_init(&cur, copy);
            while (rc == 0 && token_next(&cur, ", \t\r\n", &tok, &len)) {
                char *item = xstrndup(tok, len);

                cleanup_canon_addr(item, canon);
                free(item);
                if (strcasecmp(canon->data, addr) == 0)
                    argv_add(result, canon->data);      /* a -> a, b */
                else
                    rc = cleanup_expand(state, canon->data, depth + 1,
                                        result);
                if (rc == 0 && (long) result->argc
                    > var_virtual_alias_expansion_limit) {
                    msg_warn("%s: virtual alias expansion of %s: more than "
                             "%d addresses", state->queue_id, addr,
                             var_virtual_alias_expansion_limit);
                    cleanup_failed(state, 451, "4.6.0",
                                   "Alias expansion error");
                    rc = -1;
                }
            }
            free(copy);
        }
        break;
    }
    strbuf_free(&canon);
    return rc;
}

int cleanup_expand_virtual(CLEANUP_STATE *state, const char *addr,
                           ARGV *result)
{
    if (cleanup_virtual_maps->count == 0 || *addr == 0) {
        argv_add(result, addr);
        return 0;
    }
    return cleanup_expand(state, addr, 0, result);
}
