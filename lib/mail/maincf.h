/*
 * maincf - read main.cf with Postfix's syntax.
 *
 * A logical line (cfline.h) is "name = value"; name is [A-Za-z0-9_]+;
 * spaces around "=" and at the end are dropped; there are no trailing
 * comments ("a = b # c" gives "b # c").  A repeated name: the last one
 * wins, with a warning.  Values are kept raw: typing and $name expansion
 * happen when a program reads the parameter (params.h).
 */
#ifndef POSTERN_MAINCF_H
#define POSTERN_MAINCF_H

#include <stddef.h>

#include "util/htable.h"
#include "util/strbuf.h"

typedef struct MAINCF_ENTRY {
    char   *name;
    char   *value;
    int     lineno;
} MAINCF_ENTRY;

typedef struct MAINCF {
    char   *path;                       /* for messages */
    HTABLE *entries;                    /* name -> MAINCF_ENTRY, file order */
} MAINCF;

MAINCF *maincf_alloc(const char *path);
void    maincf_free(MAINCF **cfp);

/* Parse text; -1 with err "PATH, line N: why" on a syntax error. */
int     maincf_parse(MAINCF *cf, const char *text, size_t len, STRBUF *err);

/* Read and parse cf->path; a missing file is an error too. */
int     maincf_read(MAINCF *cf, STRBUF *err);

const MAINCF_ENTRY *maincf_find(const MAINCF *cf, const char *name);

/*
 * Split one logical line "name = value" in place; returns 0 with name and
 * value pointing into line, or -1 with the reason in *why_r.
 */
int     maincf_split_line(char *line, char **name_r, char **value_r,
                          const char **why_r);

/* Is name a valid parameter name ([A-Za-z0-9_]+)? */
int     maincf_valid_name(const char *name, size_t len);

#endif
