/*
 * record - the record format of queue files and maildrop files.
 *
 * A record is a type byte, the data length as a varint (7 bits per byte,
 * least significant group first, high bit set on all but the last byte;
 * at most 5 bytes), then the data.  Postfix's queue files have the same
 * shape.  See postern-queue(5) for the record types.
 */
#ifndef POSTERN_RECORD_H
#define POSTERN_RECORD_H

#include <stddef.h>
#include <sys/types.h>

#include "util/strbuf.h"
#include "util/stream.h"

#define REC_LEN_MAX     (64 * 1024 * 1024)  /* no record is larger */

/* Append one record to buf. */
void    rec_encode(STRBUF *buf, int type, const void *data, size_t len);

/* Write one record to a stream (buffered; see stream_flush()). */
void    rec_put(STREAM *s, int type, const void *data, size_t len);
void    rec_puts(STREAM *s, int type, const char *str);
void    rec_fprintf(STREAM *s, int type, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/*
 * Read one record: 1 with *type_r and data (replaced), 0 at a clean end
 * of input, -1 with err set on truncation, an oversized length (limit) or
 * an I/O error.
 */
int     rec_get(STREAM *s, int *type_r, STRBUF *data, size_t limit,
                STRBUF *err);

/* Decode one record from memory at *pos; the same results as rec_get(). */
int     rec_decode(const char *buf, size_t len, size_t *pos, int *type_r,
                   const char **data_r, size_t *data_len_r, size_t limit,
                   STRBUF *err);

#endif
