/*
 * smtp_addr - parse the arguments of MAIL FROM and RCPT TO.
 *
 *   FROM:<path> [param ...]     TO:<path> [param ...]
 * A space after the colon is allowed, and, unless strict (Postfix's
 * strict_rfc821_envelopes), so is an address without "<>".  A source
 * route (<@a,@b:user@d>) is dropped.  The address is checked: printable
 * text, quotes balanced, no unquoted space, at most one unquoted "@", no
 * empty domain, at most SMTP_ADDR_MAX bytes; 8-bit bytes must be UTF-8
 * (whether they are allowed is the caller's decision: SMTPUTF8).
 * Parameters are "KEYWORD" or "KEYWORD=value", uppercase keywords.
 * This is the parser the fuzzer drives (fuzz/fuzz_smtp_addr.c).
 */
#ifndef POSTERN_SMTP_ADDR_H
#define POSTERN_SMTP_ADDR_H

#include "util/argv.h"
#include "util/strbuf.h"

#define SMTP_ADDR_MAX   512

/* 0 with addr and params set, or -1 with *why_r set. */
int     smtp_addr_parse(const char *args, const char *keyword, int strict,
                        STRBUF *addr, ARGV *params, const char **why_r);

/* Does the address contain bytes above 0x7f? */
int     smtp_addr_8bit(const char *addr);

/* Decode RFC 3461 xtext ("+2B" -> "+"); -1 if malformed. */
int     xtext_decode(const char *text, STRBUF *out);

/* Encode as xtext. */
void    xtext_encode(const char *text, STRBUF *out);

#endif
