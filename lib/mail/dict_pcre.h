/*
 * dict_pcre - pcre:/path tables in Postfix pcre_table(5) syntax.
 *
 * Each logical line (see cfline.h) is one of
 *
 *      /pattern/flags result       the result when pattern matches
 *      !/pattern/flags result      the result when pattern does not match
 *      if /pattern/flags           the lines up to the matching endif apply
 *      if !/pattern/flags          only when the pattern (does not) match
 *      endif
 *
 * The delimiter is whatever non-blank character starts the pattern; a
 * backslash hides the next character.  Flags toggle PCRE2 options: i
 * (caseless, on by default), m, s (dotall, on by default), x, A, E, U;
 * X is accepted and does nothing (PCRE2 always rejects unknown escapes).
 * A result may use $n, ${n} or $(n) for group n (a group that did not
 * take part in the match gives the empty string) and $$ for "$".  Rules
 * are tried in order; the first that applies wins.  Keys are matched as
 * given (pattern tables are not case-folded) and as bytes, so 8-bit text
 * that is not UTF-8 matches like any other.
 *
 * Postern refuses the whole table on any error that Postfix reports and
 * skips (bad pattern or flag, missing result, $n out of range or in a
 * negated rule, if/endif out of balance, a line that starts with
 * whitespace): a half-loaded header_checks or access table is a policy
 * hole.  A lookup that hits the matching limits fails (DICT_ERROR) rather
 * than answering "not found", and so does a result that expands to the
 * empty string (Postfix maps_find() treats that as a lookup error too).
 */
#ifndef POSTERN_DICT_PCRE_H
#define POSTERN_DICT_PCRE_H

#include <stddef.h>

#include "mail/dict.h"

/*
 * dict_pcre_open_text - parse and compile the table text[0..len), which
 * need not be NUL-terminated.  origin names the table in the DICT and in
 * errors ("ORIGIN, line N: reason").  Returns NULL with err set on any
 * error.  dict_pcre_open() (dict.h) reads a file and calls this.
 */
DICT   *dict_pcre_open_text(const char *origin, const char *text, size_t len,
                            int flags, STRBUF *err);

#endif
