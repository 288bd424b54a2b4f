/*
 * maildrop - the maildrop file: what sendmail(1) writes, postdrop checks
 * and stores in maildrop/, and pickup(8) checks again and hands to
 * cleanup.  The record format is postern-queue(5); which records a
 * maildrop file may hold, in which order and how large, is fixed here, so
 * that the writer and both readers agree:
 *
 *   C  size "%15ld %15ld %15ld %15ld": content bytes, offset of the M
 *      record, recipients, flags (0).  sendmail sends zeros; postdrop
 *      writes the real values; pickup insists that they match the file.
 *   T  arrival "sec usec"
 *   F  the sender's full name (optional)
 *   S  the envelope sender; empty for the null sender
 *   A  name=value, each name at most once: local_uid (required: the
 *      submitting user, equal to the file owner), origin=sendmail,
 *      dsn_envid (printable ASCII, at most 100 bytes), dsn_ret=full|hdrs
 *   then for each recipient (at least one): [o type;address] [n bits] R
 *   M  (empty) the content follows
 *   B  a chunk of content, 1..MAILDROP_CHUNK_MAX bytes, any bytes; the
 *      content ends in a newline
 *   X  (empty) end of content
 *   E  (empty) end of file; nothing may follow
 *
 * Envelope text is at most MAILDROP_TEXT_MAX bytes without control
 * characters (no NUL, CR or LF can reach a header or a log line).  The
 * file is untrusted input: a local user controls every byte postdrop
 * receives.
 *
 * The checker is shared by sendmail, postdrop and pickup; the writer side
 * (start postdrop, write the envelope) by sendmail and smtpd -S.
 */
#ifndef POSTERN_MAILDROP_H
#define POSTERN_MAILDROP_H

#include <stddef.h>
#include <sys/types.h>

#include "mail/cleanup_proto.h"
#include "util/strbuf.h"
#include "util/stream.h"

#define MAILDROP_DIR        "maildrop"
#define MAILDROP_TEMP_PREFIX "tmp."     /* never a valid queue ID */
#define MAILDROP_BUSY_MODE  0644        /* being written */
#define MAILDROP_READY_MODE 0744        /* owner execute bit: complete */
#define MAILDROP_STALE_SECS (24 * 3600) /* unfinished temp files expire */

#define MAILDROP_CHUNK_MAX  CLEANUP_CHUNK_MAX
#define MAILDROP_TEXT_MAX   4096        /* an envelope record */
#define MAILDROP_ENVID_MAX  100         /* RFC 3461 ENVID */
#define MAILDROP_RCPT_MAX   100000
#define MAILDROP_REC_MAX    MAILDROP_CHUNK_MAX  /* any record */

#define MAILDROP_SIZE_LEN   (15 * 4 + 3)
#define MAILDROP_SIZE_OFFSET 2          /* type byte + 1-byte length */
#define MAILDROP_ORIGIN     "sendmail"

/* Checker state: feed every record in file order. */
typedef struct MAILDROP_CHECK {
    int     flags;
    int     state;
    long    size_limit;                 /* content bytes, 0 = none */
    long    uid;                        /* required local_uid, -1 = any */
    long    size_rec[4];                /* values of the C record */
    long    content_size;
    long    nrcpt;
    off_t   content_offset;
    int     attrs_seen;
    int     last_byte;
} MAILDROP_CHECK;

/* The size record must describe the file (pickup, not postdrop). */
#define MAILDROP_CHECK_SIZE (1 << 0)

void    maildrop_check_init(MAILDROP_CHECK *mc, int flags, long size_limit,
                            long uid);

/*
 * Check one record that starts at offset in the file; 0, or -1 with err.
 * data must be NUL-terminated after len bytes, as rec_get() leaves it.
 * MAILDROP_TOO_BIG is returned (with err) when the content exceeds the
 * size limit, so that callers can say so.
 */
#define MAILDROP_TOO_BIG    (-2)
int     maildrop_check(MAILDROP_CHECK *mc, off_t offset, int type,
                       const char *data, size_t len, STRBUF *err);

/* At end of input: 0 if the end record was seen, else -1 with err. */
int     maildrop_check_end(MAILDROP_CHECK *mc, STRBUF *err);

/* Read one record and the offset where it starts; as rec_get(). */
int     maildrop_read(STREAM *s, int *type_r, STRBUF *data, off_t *offset_r,
                      STRBUF *err);

/* Format the size record data (MAILDROP_SIZE_LEN bytes + NUL). */
void    maildrop_size_format(char *buf, long size, off_t offset, long nrcpt);

/* Envelope text: at most max bytes, no control characters. */
int     maildrop_text_ok(const char *data, size_t len, size_t max);

/* RFC 3461 ENVID as sendmail -V takes it: 1..100 bytes of ASCII 0x21..0x7e. */
int     maildrop_envid_ok(const char *data, size_t len);

/* DSN NOTIFY bits: NEVER alone, or any of SUCCESS, DELAY, FAILURE. */
int     maildrop_notify_ok(long bits);

/* --- writing: the client side of postdrop ----------------------------- */

/*
 * Start $daemon_directory/postdrop -c config_dir with pipes on its stdin
 * (*in_r: write the file there) and stdout (*out_r: it prints the ID).
 * Returns the pid, or -1 with err.
 */
pid_t   maildrop_postdrop_start(const char *config_dir, int *in_r, int *out_r,
                                STRBUF *err);

/*
 * Wait for postdrop; id_r gets the maildrop ID it printed (or stays
 * empty).  Returns its exit status (a sysexits code; EX_TEMPFAIL if it
 * was killed).
 */
int     maildrop_postdrop_wait(pid_t pid, int out_fd, STRBUF *id_r);

/* The records before the recipients: C (zeros), T, [F], S, A... */
void    maildrop_write_envelope(STREAM *out, const char *sender,
                                const char *full_name, const char *envid,
                                const char *ret);

/* One recipient: [o] [n] R. */
void    maildrop_write_rcpt(STREAM *out, const char *rcpt, const char *orcpt,
                            int notify);

#endif
