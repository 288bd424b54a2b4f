/*
 * dict_source - parse the text source of an indexed table (postmap(1)
 * format), shared by "postern map" and texthash: tables.
 *
 * Each logical line (see cfline.h) is "key whitespace value"; key and value
 * are trimmed; a key that contains whitespace is written in double quotes
 * and the quotes stay part of the key (as in Postfix).  Keys are lowercased
 * with DICT_SOURCE_FOLD.  With DICT_SOURCE_ALIASES the line is aliases(5)
 * "name: value" instead (postalias): the key ends at the colon.  A line
 * without a value is an error naming file and
 * line; so is a NUL byte.  Postern refuses such a source instead of
 * skipping the line (postmap only warns): a half-read access table is a
 * policy hole.  Duplicate keys are warned about and the first one is kept,
 * as postmap does; the callback sees only first occurrences.
 */
#ifndef POSTERN_DICT_SOURCE_H
#define POSTERN_DICT_SOURCE_H

#include <stddef.h>

#include "util/strbuf.h"

/* Return 0 to go on, -1 to stop (with err set). */
typedef int (*DICT_SOURCE_FN)(const char *key, const char *value, int lineno,
                              void *ctx, STRBUF *err);

#define DICT_SOURCE_FOLD    (1 << 0)    /* lowercase keys */
#define DICT_SOURCE_ALIASES (1 << 1)    /* aliases(5): "name: value" */

int     dict_source_parse(const char *text, size_t len, const char *origin,
                          int flags, DICT_SOURCE_FN fn, void *ctx,
                          STRBUF *err);

/* The same for a file; err names the file when it cannot be read. */
int     dict_source_parse_file(const char *path, int flags,
                               DICT_SOURCE_FN fn, void *ctx, STRBUF *err);

#endif
