/*
 * addr_canon - canonical envelope addresses.
 */
#include <string.h>

#include "mail/addr_canon.h"
#include "mail/params.h"

const char *addr_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at ? at + 1 : "";
}

void addr_canon(const char *addr, MATCH_LIST *local_domains, STRBUF *out)
{
    const char *at;
    const char *bang;

    strbuf_set(out, addr);
    if (*addr == 0)
        return;
    at = strrchr(out->data, '@');
    if (at == NULL && var_swap_bangpath
        && (bang = strchr(out->data, '!')) != NULL && bang > out->data
        && bang[1]) {
        STRBUF *tmp = strbuf_alloc(out->len + 2);

        strbuf_printf(tmp, "%s@%.*s", bang + 1, (int) (bang - out->data),
                      out->data);
        strbuf_set(out, tmp->data);
        strbuf_free(&tmp);
        at = strrchr(out->data, '@');
    }
    if (at == NULL) {
        /* user%remote gets @myorigin, and then the percent hack below. */
        strbuf_addch(out, '@');
        strbuf_cat(out, var_myorigin);
        at = strrchr(out->data, '@');
    }
    /* user%domain@ours: repeatedly, as user%a%b@ours names a route too. */
    while (var_allow_percent_hack && local_domains
           && match_list_domain(local_domains, at + 1) == MATCH_YES) {
        char *pct = memrchr(out->data, '%', (size_t) (at - out->data));

        if (pct == NULL || pct == out->data)
            break;
        strbuf_truncate(out, (size_t) (at - out->data));
        *pct = '@';
        at = strrchr(out->data, '@');
    }
}
