/*
 * maps - a list of lookup tables from one parameter, searched in order,
 * and the address lookup orders of Postfix's tables.
 *
 * A parameter such as "virtual_alias_maps = lmdb:/a, pcre:/b" names
 * several tables; the first that has the key wins.  A table that fails
 * (cannot be opened or read) stops the search with DICT_ERROR, so that a
 * caller answers 4xx instead of guessing (Postfix maps_find).
 */
#ifndef POSTERN_MAPS_H
#define POSTERN_MAPS_H

#include "mail/dict.h"
#include "util/argv.h"
#include "util/strbuf.h"

typedef struct MAPS {
    char   *title;                      /* the parameter name, for logs */
    DICT  **dicts;
    size_t  count;
    STRBUF *error;                      /* why the last search failed */
} MAPS;

/*
 * maps_open - open every table of a list separated by commas and/or
 * whitespace.  Never fails: a table that cannot be opened becomes a
 * surrogate whose lookups fail (and a warning is logged).
 */
MAPS   *maps_open(const char *title, const char *list, int flags);
void    maps_free(MAPS **mapsp);

/* First table with key: DICT_FOUND, DICT_NOTFOUND or DICT_ERROR. */
int     maps_find(MAPS *maps, const char *key, const char **value_r);

/*
 * The lookup orders (user "u", extension "e", domain "d"):
 *   MAPS_ADDR_VIRTUAL   u+e@d, u@d, u+e, u (u+e and u only when the
 *                       domain is local), @d            (virtual(5))
 *   MAPS_ADDR_MAILBOX   u+e@d, u@d, @d                  (virtual_mailbox_maps)
 *   MAPS_ADDR_ACCESS    u+e@d, u@d, d and its parents, u+e@, u@  (access(5))
 *   MAPS_ADDR_ALIAS     u+e, u                          (aliases(5))
 *   MAPS_ADDR_TRANSPORT u+e@d, u@d, d, .parent..., *    (transport(5))
 * Each key is tried in every table before the next key; pattern tables
 * (pcre:) see only the whole address.  The extension is split at the
 * first character of recipient_delimiter.  For MAPS_ADDR_ACCESS, parents
 * are tried as "parent" when parent_style is set (Postfix's
 * parent_domain_matches_subdomains lists the table), else as ".parent".
 * The null address is looked up as "<>" in access tables.
 */
typedef enum {
    MAPS_ADDR_VIRTUAL, MAPS_ADDR_MAILBOX, MAPS_ADDR_ACCESS, MAPS_ADDR_ALIAS,
    MAPS_ADDR_TRANSPORT,
} MAPS_ADDR_KIND;

#define MAPS_ADDR_FLAG_LOCAL    (1 << 0)    /* the domain is ours */
#define MAPS_ADDR_FLAG_PARENT   (1 << 1)    /* access: "parent" style */

/*
 * Look up address in the given order.  On DICT_FOUND, *value_r is the
 * result and *key_r (if not NULL) the key that matched (valid until the
 * next call on maps).
 */
int     maps_find_addr(MAPS *maps, const char *address, MAPS_ADDR_KIND kind,
                       int flags, const char **value_r, const char **key_r);

/* Split an address into the candidate keys of a kind (for tests, logs). */
void    maps_addr_keys(const char *address, MAPS_ADDR_KIND kind, int flags,
                       const char *delimiters, ARGV *keys);

#endif
