/*
 * dsn_log - per-message delivery status logs: defer/ID and bounce/ID.
 *
 * Postfix's bounce-log format (src/global/bounce_log.c and
 * src/bounce/bounce_append_service.c), so that tools that read Postfix's
 * logs read ours: plain text, one entry per recipient attempt, each entry
 * a group of lines between blank lines:
 *
 *      (blank line)
 *      <user@example.org>: connect to mx.example.org: Connection refused
 *      recipient=user@example.org
 *      original_recipient=User@Example.ORG
 *      offset=172
 *      dsn_orig_rcpt=rfc822;User@Example.ORG
 *      notify_flags=8
 *      status=4.4.1
 *      action=delayed
 *      reason=connect to mx.example.org: Connection refused
 *      (blank line)
 *
 * The "<rcpt>: reason" line is Postfix's old format, still written because
 * backwards_bounce_logfile_compatibility is on by default there; a reader
 * takes either form, and "name=value" lines win over it.  Addresses are
 * stored in printable quoted form (RFC 5322 quoting of the local part,
 * control characters and malformed UTF-8 as '?'); the null address is "<>".
 * Values never contain a newline.
 *
 * Reading never trusts the file: unknown names and malformed lines are
 * warned about (msg_warn, naming the file and line) and skipped, missing
 * fields get Postfix's place holders.  A last line without its newline is
 * ignored, and so is a last entry without its closing blank line unless
 * it has its reason (written last): what a crash or a writer at work
 * leaves behind is not mistaken for an entry.
 */
#ifndef POSTERN_DSN_LOG_H
#define POSTERN_DSN_LOG_H

#include <stddef.h>

#include "util/strbuf.h"

typedef struct DSN_LOG_ENTRY {
    char   *recipient;                  /* printable quoted form */
    char   *orig_rcpt;                  /* original_recipient, or "" */
    long    offset;                     /* of the R record; 0 = unknown */
    char   *dsn_orcpt;                  /* "type;address", or "" */
    int     notify;                     /* DSN_NOTIFY_* bits, 0 = unset */
    char   *status;                     /* "4.4.1"; "" when absent */
    char   *action;                     /* "delayed", "failed"; or "" */
    char   *diag_type;                  /* "smtp", or "" */
    char   *diag_text;                  /* the remote reply, or "" */
    char   *mta_type;                   /* "dns", or "" */
    char   *mta_name;                   /* the remote MTA, or "" */
    char   *reason;                     /* human-readable text */
} DSN_LOG_ENTRY;

typedef struct DSN_LOG {
    DSN_LOG_ENTRY *entries;
    size_t  count;
    size_t  size;
} DSN_LOG;

/* Place holders for fields an entry lacks (Postfix's words). */
#define DSN_LOG_NO_RECIPIENT    "(recipient address unavailable)"
#define DSN_LOG_NO_REASON       "(description unavailable)"

/*
 * dsn_log_read - read every entry of the log at path, in file order.
 * Returns 1 with *log_r, 0 when the file does not exist (no log: *log_r
 * is NULL), or -1 with err on any other error.  Files larger than
 * DSN_LOG_MAX are refused.
 */
#define DSN_LOG_MAX     (256 * 1024 * 1024)
int     dsn_log_read(const char *path, DSN_LOG **log_r, STRBUF *err);

/*
 * dsn_log_parse - the same from memory (buf need not be NUL-terminated);
 * name labels warnings.  Never fails: bad lines are skipped with a
 * warning.  The entry point of the fuzz harness.
 */
DSN_LOG *dsn_log_parse(const char *buf, size_t len, const char *name);

void    dsn_log_free(DSN_LOG **logp);

/*
 * dsn_log_append - append one entry to the log at path (created 0600 if
 * missing, its directory fsynced then), under an exclusive flock(), in one
 * write(2), then fsync.  Returns 0, or -1 with err; on failure the file is
 * truncated back to its old length, so a reader never sees half an entry.
 *
 * Give the recipient and original recipient as raw envelope addresses (as
 * in the queue file): the writer quotes them and makes them printable, and
 * writes original_recipient only when it differs from the recipient other
 * than in case (Postfix).  Every other value is made printable.  Fields
 * that are NULL or "" (0 for offset and notify) are left out; reason is
 * always written.
 */
int     dsn_log_append(const char *path, const DSN_LOG_ENTRY *entry,
                       STRBUF *err);

/*
 * The forms the log stores, for callers that compare with it.
 *
 * dsn_log_printable - Postfix printable(): control characters (also DEL)
 * and bytes that are not part of well-formed UTF-8 become '?'.
 *
 * dsn_log_quote_address - Postfix quote_822_local(): the local part is
 * put in double quotes (with \ before " and \) when it is not an RFC 822
 * dot-string; 8-bit bytes are left alone.
 *
 * dsn_log_utf8_clean - only malformed UTF-8 becomes '?' (for encoders
 * such as JSON that escape control characters themselves).
 *
 * All three replace out.
 */
void    dsn_log_printable(STRBUF *out, const char *text, size_t len);
void    dsn_log_utf8_clean(STRBUF *out, const char *text, size_t len);
void    dsn_log_quote_address(STRBUF *out, const char *addr);

#endif
