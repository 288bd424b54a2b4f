/*
 * showq - list the mail queue the way Postfix's mailq (postqueue -p) and
 * postqueue -j do, byte for byte, with Postfix's long-queue-ID layout.
 *
 * The same code runs in-process ("postern queue list" by root, by
 * mail_owner, or by the owner of a development instance) and in the showq
 * service (showq(8)) for everybody else, so both print the same bytes.
 * Everything works relative to the current directory, which must be the
 * queue directory (as in every service).
 *
 * What is listed (Postfix 3.x showq):
 *   - the queues maildrop, active, incoming, deferred, hold, in that order
 *     (active before incoming, so that a message moving from one to the
 *     other during the scan is more likely to be seen twice than not at
 *     all); within a queue, by queue ID, which for long IDs is arrival
 *     order.  Hashed subdirectories (deferred/A/ID, up to two levels) are
 *     read as well as flat ones;
 *   - only files that are ready (owner rwx); files that vanish during the
 *     scan are skipped silently, files that cannot be read or parsed are
 *     reported (warn) and skipped;
 *   - the size is the content size from the size record (the file size
 *     when there is none), the time the arrival time (the file's mtime
 *     when there is none);
 *   - recipients from the message's defer log (defer/ID, flat or hashed)
 *     first, with their reasons, then the queue file's other recipients
 *     that are not done; a defer log entry for a recipient that is done
 *     meanwhile is left out;
 *   - addresses in quoted form (quote_822_local); the null sender as
 *     MAILER-DAEMON.  Text output makes them printable ('?' for control
 *     characters and malformed UTF-8); JSON escapes control characters and
 *     turns malformed UTF-8 into '?', as postqueue -j does.
 *   - marks after the ID: '*' active, '!' hold, '#' forced to expire (the
 *     group execute bit, Postfix's MAIL_QUEUE_STAT_EXPIRE; nothing in
 *     Postern sets it yet).
 */
#ifndef POSTERN_SHOWQ_H
#define POSTERN_SHOWQ_H

#include <stddef.h>
#include <sys/stat.h>

#include "util/strbuf.h"

#define SHOWQ_TEXT      0               /* mailq, postqueue -p */
#define SHOWQ_JSON      1               /* postqueue -j */

#define SHOWQ_EMPTY_ADDR    "MAILER-DAEMON"
#define SHOWQ_STAT_EXPIRE   S_IXGRP
#define SHOWQ_HASH_DEPTH    2           /* deepest hashed subdirectory */

/*
 * The showq service (public/showq), in postern-ipc(7) records:
 *   client: {request=list, format=text|json}
 *   showq:  {data=BYTES} any number of times: the listing, to be copied
 *           to the output as it is;
 *           {warning=TEXT} for a file it skipped, to be shown on stderr;
 *           then {status=0}, or {status=1, reason=TEXT} when the queue
 *           could not be read.  A connection that ends before the status
 *           record is a failure.
 */
#define SHOWQ_CLASS         "public"
#define SHOWQ_SERVICE       "showq"
#define SHOWQ_REQ_LIST      "list"
#define SHOWQ_CHUNK_MAX     (64 * 1024)
#define SHOWQ_RECORD_MAX    (SHOWQ_CHUNK_MAX + 4096)
#define SHOWQ_REQUEST_MAX   1024

/* The queues listed, in order, NULL-terminated. */
extern const char *const showq_queues[];

/* Where a listing goes. */
typedef struct SHOWQ_OUTPUT {
    /* Output bytes; 0, or -1 to stop the listing (reader went away). */
    int     (*write)(const char *data, size_t len, void *ctx);
    /* A skipped file; NULL: msg_warn(). */
    void    (*warn)(const char *text, void *ctx);
    void   *ctx;
} SHOWQ_OUTPUT;

/*
 * showq_list - list the queue in format.  Returns 0, or -1 with err when a
 * queue directory cannot be read or the output failed.
 */
int     showq_list(int format, const SHOWQ_OUTPUT *out, STRBUF *err);

/* --- the parts, for tests and for "postern queue show" ----------------- */

typedef struct SHOWQ_RCPT {
    char   *address;                    /* quoted, not yet printable */
    char   *reason;                     /* "" when there is none */
} SHOWQ_RCPT;

typedef struct SHOWQ_MSG {
    char   *queue;
    char   *id;
    long    arrival_time;
    long    size;
    int     forced_expire;
    char   *sender;                     /* quoted; MAILER-DAEMON if null */
    SHOWQ_RCPT *rcpts;
    size_t  nrcpt;
    size_t  size_rcpts;
} SHOWQ_MSG;

/*
 * showq_read - read the envelope of the open queue file fd (st from
 * fstat) and merge in its defer log (defer_log: a path, or NULL for
 * none).  Lenient where Postfix's showq is (a bad size record means the
 * file size); -1 with err when the file is not a queue file.
 */
int     showq_read(int fd, const struct stat *st, const char *queue,
                   const char *id, const char *defer_log, SHOWQ_MSG **msg_r,
                   STRBUF *err);
void    showq_msg_free(SHOWQ_MSG **msgp);

/* Formatting state: messages and bytes so far. */
typedef struct SHOWQ_FMT {
    int     format;
    unsigned long count;
    unsigned long total;
} SHOWQ_FMT;

/* Append one message, then the trailer, to out. */
void    showq_format_msg(SHOWQ_FMT *fmt, const SHOWQ_MSG *msg, STRBUF *out);
void    showq_format_end(SHOWQ_FMT *fmt, STRBUF *out);

/* asctime(localtime(t)) without the newline, in English whatever the
 * locale: "Fri Nov 27 00:22:26 2026". */
void    showq_format_time(STRBUF *out, long t);

/* JSON string contents for text (see above); replaces out. */
void    showq_json_quote(STRBUF *out, const char *text);

/*
 * A queue ID is also a file name: letters, digits and '_' only, 1 to 64
 * characters (Postfix mail_queue_id_ok).
 */
int     showq_id_ok(const char *id);

/*
 * showq_find - the path of QUEUE/ID, flat or in a hashed subdirectory.
 * 1 with path_r, 0 when there is none (errno EACCES when the queue may
 * not be searched, else ENOENT).
 */
int     showq_find(const char *queue, const char *id, STRBUF *path_r);

#endif
