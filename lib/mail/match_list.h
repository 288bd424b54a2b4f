/*
 * match_list - Postfix's domain and network lists (mydestination,
 * relay_domains, mynetworks, ...).
 *
 * A list holds items separated by commas and/or whitespace, tried in
 * order; the first that matches decides:
 *   name         the domain itself; also its subdomains when the list's
 *                parameter is in parent_domain_matches_subdomains
 *   .name        subdomains of name
 *   a.b.c.d[/n], [v6][/n], v6/n
 *                addresses and networks (network lists)
 *   /path        items read from a file, one or more per line
 *   type:table   a lookup table: found means match (domain lists also
 *                look up parent domains, as ".parent" or "parent")
 *   !item        a match of item means "no match"
 * A table that fails makes the match fail (MATCH_ERROR), so that callers
 * answer 4xx instead of guessing.
 */
#ifndef POSTERN_MATCH_LIST_H
#define POSTERN_MATCH_LIST_H

#include "util/strbuf.h"

#define MATCH_NO        0
#define MATCH_YES       1
#define MATCH_ERROR     (-1)

typedef struct MATCH_LIST MATCH_LIST;

/*
 * Build a list from a parameter's (expanded) value.  name is the
 * parameter name, for messages and the parent-domain rule.  Bad items
 * (an unreadable file, a malformed network) are logged and make every
 * match fail with MATCH_ERROR.
 */
MATCH_LIST *match_list_domains(const char *name, const char *value);
MATCH_LIST *match_list_networks(const char *name, const char *value);
void    match_list_free(MATCH_LIST **listp);

/* Match a domain (case-insensitive) or a numeric address. */
int     match_list_domain(MATCH_LIST *list, const char *domain);
int     match_list_address(MATCH_LIST *list, const char *address);

/* Why the last match returned MATCH_ERROR. */
const char *match_list_error(const MATCH_LIST *list);

/* Does the parameter name appear in parent_domain_matches_subdomains? */
int     match_list_parent_style(const char *name);

#endif
