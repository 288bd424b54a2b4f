/*
 * cfline - logical lines of Postfix-style configuration text.
 *
 * Used by main.cf, master.cf, table sources and pcre tables alike:
 *   - blank lines and lines whose first non-blank character is "#" are
 *     skipped, and do not end a logical line;
 *   - a line that starts with whitespace continues the previous one: the
 *     newline goes, the indentation stays;
 *   - trailing whitespace (and a CR before the newline) is removed.
 * Input is a buffer, not a file, so that fuzzers and tests can drive the
 * parsers directly.  A NUL byte in the input is reported as an error.
 */
#ifndef POSTERN_CFLINE_H
#define POSTERN_CFLINE_H

#include <stddef.h>

#include "util/strbuf.h"

typedef struct CFLINE {
    const char *text;
    size_t  len;
    size_t  pos;
    int     lineno;                     /* physical line of pos */
} CFLINE;

void    cfline_init(CFLINE *cf, const char *text, size_t len);

/*
 * cfline_next - the next logical line into buf; *lineno_r gets the number
 * of its first physical line.  Returns 1, 0 at the end, or -1 when the
 * text holds a NUL byte (*lineno_r names the line).  A logical line that
 * starts with whitespace (nothing to continue) is returned as is, and
 * *leading_ws_r (if not NULL) is set so the caller can warn.
 */
int     cfline_next(CFLINE *cf, STRBUF *buf, int *lineno_r, int *leading_ws_r);

/* Read a whole file into buf; -1 with errno set on failure. */
int     cfline_read_file(const char *path, STRBUF *buf);

/*
 * Read path and hand its text to parse(); a file that cannot be read is
 * "open PATH: reason" in err, with errno kept for the caller (ENOENT).
 */
typedef int (*CFLINE_PARSE_FN)(void *ctx, const char *text, size_t len,
                               STRBUF *err);
int     cfline_parse_file(const char *path, CFLINE_PARSE_FN parse, void *ctx,
                          STRBUF *err);

#endif
