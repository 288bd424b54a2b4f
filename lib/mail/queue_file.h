/*
 * queue_file - write and read queue files (see postern-queue(5)).
 *
 * A queue file is written in tmp/ under a temporary name, fsynced, marked
 * ready (owner execute bit), renamed into its queue directory under its
 * queue ID without replacing anything, and the directory is fsynced: only
 * then is the message accepted.  A writer that dies leaves nothing in
 * incoming/, only a stale file in tmp/ that "postern check" removes.
 */
#ifndef POSTERN_QUEUE_FILE_H
#define POSTERN_QUEUE_FILE_H

#include <sys/types.h>
#include <time.h>

#include "util/argv.h"
#include "util/strbuf.h"
#include "util/stream.h"

/* Record types. */
#define QREC_SIZE       'C'     /* "%15ld %15ld %15ld %15ld": message size,
                                 * content offset, recipients, flags */
#define QREC_TIME       'T'     /* arrival "sec usec" */
#define QREC_WARN       'W'     /* "%15ld": when to send the delay warning
                                 * (0: not yet scheduled, -1: sent);
                                 * rewritten in place by qmgr */
#define QREC_FULLNAME   'F'     /* sender full name */
#define QREC_SENDER     'S'     /* envelope sender, empty = null sender */
#define QREC_ATTR       'A'     /* "name=value" */
#define QREC_DSN_ORCPT  'o'     /* next recipient's ORCPT "type;addr" */
#define QREC_DSN_NOTIFY 'n'     /* next recipient's NOTIFY bits, decimal */
#define QREC_ORIG_RCPT  'O'     /* next recipient before rewriting */
#define QREC_RCPT       'R'     /* a recipient to deliver to */
#define QREC_DONE       'D'     /* a delivered recipient (R overwritten) */
#define QREC_CONTENT    'M'     /* content follows */
#define QREC_DATA       'B'     /* a chunk of content, LF line ends */
#define QREC_CONTENT_END 'X'    /* end of content */
#define QREC_END        'E'     /* end of file */

/* Flags in the size record. */
#define QFLAG_HOLD      (1 << 0)

/* DSN NOTIFY bits (RFC 3461). */
#define DSN_NOTIFY_NEVER    (1 << 0)
#define DSN_NOTIFY_SUCCESS  (1 << 1)
#define DSN_NOTIFY_DELAY    (1 << 2)
#define DSN_NOTIFY_FAILURE  (1 << 3)

#define QFILE_READY_MODE    0700
#define QFILE_BUSY_MODE     0600

/* --- writing ---------------------------------------------------------- */

typedef struct QFILE QFILE;

/*
 * Create a new file in tmp/ (relative to the queue directory, the cwd of
 * every service) and give it its queue ID.  The size record is written
 * first with zeros; qfile_set_size() fills it in at commit.
 */
QFILE  *qfile_create(STRBUF *err);
const char *qfile_id(const QFILE *q);
STREAM *qfile_stream(QFILE *q);

/* Bytes written so far: the offset the next record will have. */
off_t   qfile_offset(QFILE *q);

void    qfile_set_size(QFILE *q, long message_size, off_t content_offset,
                       long rcpt_count, long flags);

/*
 * Flush, fsync, mark ready, rename to DEST_DIR/ID, fsync DEST_DIR.
 * 0 on success; -1 with err (the file is removed).  Frees *qp either way.
 */
int     qfile_commit(QFILE **qp, const char *dest_dir, STRBUF *err);

/* Throw the file away. */
void    qfile_abort(QFILE **qp);

/* --- reading ---------------------------------------------------------- */

typedef struct QENV_RCPT {
    char   *address;
    char   *orig;                       /* original_recipient, or NULL */
    char   *orcpt;                      /* DSN ORCPT, or NULL */
    int     notify;                     /* DSN_NOTIFY_* bits, 0 = unset */
    int     done;
    off_t   offset;                     /* of its R/D record */
} QENV_RCPT;

typedef struct QENV {
    char   *id;
    long    message_size;
    off_t   content_offset;
    long    flags;
    long    arrival_sec;
    long    arrival_usec;
    long    warn_time;
    off_t   warn_offset;                /* of the W record, 0 if none */
    char   *sender;
    char   *fullname;
    ARGV   *attrs;                      /* "name=value" */
    QENV_RCPT *rcpts;
    size_t  nrcpt;
    off_t   file_size;
} QENV;

/*
 * Read the envelope of an open queue file (up to its content record).
 * Returns 0, or -1 with err when the file is not a well-formed queue file
 * (callers move it to corrupt/).
 */
int     qenv_read_fd(int fd, const char *id, QENV **env_r, STRBUF *err);
int     qenv_read(const char *path, QENV **env_r, STRBUF *err);
void    qenv_free(QENV **envp);

/* The value of attribute name, or NULL. */
const char *qenv_attr(const QENV *env, const char *name);

/*
 * Copy the content (from the content record to its end) to a callback,
 * chunk by chunk.  -1 with err if the file is truncated or malformed.
 */
typedef int (*QFILE_CONTENT_FN)(const char *data, size_t len, void *ctx);
int     qfile_read_content(int fd, const QENV *env, QFILE_CONTENT_FN fn,
                           void *ctx, STRBUF *err);

/* Rewrite the W record in place (no fsync: a lost update only repeats
 * or delays a warning). */
int     qfile_set_warn(int fd, const QENV *env, long when, STRBUF *err);

/* Mark the recipient at offset done (R -> D), and fsync. */
int     qfile_mark_done(int fd, off_t offset, STRBUF *err);

/*
 * The same, fsynced only when sync is set.  For the last recipient of a
 * file that is removed next, the fsync buys nothing: a crash before the
 * removal repeats that one delivery either way.
 */
int     qfile_mark(int fd, off_t offset, int sync, STRBUF *err);

#endif
