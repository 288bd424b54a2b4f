/*
 * sendmail - the parts of the sendmail(1) command.
 */
#ifndef POSTERN_SENDMAIL_H
#define POSTERN_SENDMAIL_H

#include <stddef.h>

#include "util/argv.h"
#include "util/strbuf.h"
#include "util/stream.h"

/* Input is read in pieces of at most this many bytes (long lines split). */
#define SM_PIECE_MAX    16384

/*
 * sendmail_addr.c - addresses in RFC 5322 address lists ("a@b, Name
 * <c@d>, group: e@f;"), as in To: headers and command-line recipients.
 * Comments, display names, group names and source routes are dropped;
 * quoted strings and domain literals are kept as written.  Each address
 * is appended to out; with keep_empty, "<>" yields an empty address (the
 * null sender).  Returns the number of addresses appended.
 */
size_t  sm_addr_parse(const char *text, ARGV *out, int keep_empty);

/*
 * sendmail_content.c - the message on standard input.
 *
 * The reader returns the input in pieces of at most SM_PIECE_MAX bytes,
 * each a whole line or part of a long one, with CRLF turned into LF, a
 * newline added to an unterminated last line, leading "From " lines
 * (mbox separators) skipped, and, unless -i, input ended by a line with
 * a single ".".  Nothing else is changed: 8-bit data passes byte for byte.
 */
typedef struct SM_INPUT {
    STREAM *in;
    STRBUF *raw;
    int     dot_ends;                   /* a lone "." ends input */
    int     at_bol;                     /* the next piece starts a line */
    int     pending_cr;                 /* CR held at the end of a piece */
    int     skip_from;                  /* before the first real line */
    int     skipping;                   /* inside a skipped From_ line */
    int     done;
} SM_INPUT;

SM_INPUT *sm_input_open(int fd, int dot_ends);
void    sm_input_free(SM_INPUT **sip);

/* The next piece: 1 with *bol_r (it starts a line), or 0 at the end. */
int     sm_input_get(SM_INPUT *si, STRBUF *piece, int *bol_r);

/*
 * The header section, for -t: read up to limit bytes of header lines;
 * what follows them (the blank line, a line that is no header, or the
 * line that would exceed the limit) is kept in rest.
 */
typedef struct SM_HEADERS {
    STRBUF *block;                      /* header lines, as read */
    STRBUF *rest;                       /* the start of the body */
} SM_HEADERS;

SM_HEADERS *sm_headers_read(SM_INPUT *si, size_t limit);
void    sm_headers_free(SM_HEADERS **hp);

/*
 * Add the recipients of To:, Cc: and Bcc: (or of Resent-To:, Resent-Cc:
 * and Resent-Bcc: when there is any Resent- recipient header) to rcpts,
 * and remove Bcc: and Resent-Bcc: from the header block.
 */
void    sm_headers_extract(SM_HEADERS *h, ARGV *rcpts);

/*
 * Write the content as B records of at most MAILDROP_CHUNK_MAX bytes:
 * the headers and their rest (if h), then the remaining input.
 * Returns the content size, or -1 when writing to out failed.
 */
long    sm_content_copy(SM_INPUT *si, SM_HEADERS *h, STREAM *out);

#endif
