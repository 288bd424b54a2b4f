/*
 * deliver_req - both ends of deliver_proto.h: the request qmgr sends a
 * delivery agent, the agent's per-recipient replies, and the Postfix
 * delivery log line every agent writes.
 *
 * qmgr:   deliver_req_alloc(), fill in, deliver_req_add_rcpt() per
 *         recipient, deliver_req_write(); then deliver_reply_read() once
 *         per recipient, in request order.
 * agent:  deliver_req_read(); for each recipient deliver_log() and
 *         deliver_reply_write() (deliver_done() does both, after
 *         soft_bounce).
 *
 * Reading is strict (Postfix attr_scan ATTR_FLAG_STRICT): a missing,
 * unknown or malformed attribute, a count that does not match, a control
 * character in text, a queue ID or queue name that is not a safe file
 * name, a status and DSN code that disagree: the whole request or reply is
 * refused with the reason in err.  Both sides are Postern processes, so a
 * malformed record is a bug or an attack and ends the conversation.
 */
#ifndef POSTERN_DELIVER_REQ_H
#define POSTERN_DELIVER_REQ_H

#include <stddef.h>
#include <sys/time.h>

#include "mail/deliver_proto.h"
#include "mail/ipc.h"
#include "util/strbuf.h"
#include "util/stream.h"

typedef struct DELIVER_RCPT {
    char   *address;                    /* rcpt: the envelope recipient */
    long    offset;                     /* of its R record in the file */
    char   *orig;                       /* orig: before rewriting, or NULL */
    char   *orcpt;                      /* DSN ORCPT "type;addr", or NULL */
    int     notify;                     /* DSN_NOTIFY_* bits, 0 = unset */
} DELIVER_RCPT;

typedef struct DELIVER_REQUEST {
    char   *queue_name;                 /* "active" */
    char   *queue_id;
    char   *sender;                     /* "" = the null sender */
    char   *nexthop;
    struct timeval arrival;             /* message arrival (delays a) */
    struct timeval active;              /* entered the active queue (b) */
    char   *dsn_envid;                  /* or NULL */
    char   *dsn_ret;                    /* "full", "hdrs" or NULL */
    int     smtputf8;
    char   *client_name;                /* or NULL */
    char   *client_address;             /* or NULL */
    DELIVER_RCPT *rcpts;
    size_t  rcpt_count;
    size_t  rcpt_size;
} DELIVER_REQUEST;

/*
 * All strings of a request are owned by it (xstrdup them in) and freed by
 * deliver_req_free().
 */
DELIVER_REQUEST *deliver_req_alloc(void);
void    deliver_req_free(DELIVER_REQUEST **reqp);
void    deliver_req_add_rcpt(DELIVER_REQUEST *req, const char *address,
                             long offset, const char *orig,
                             const char *orcpt, int notify);

/*
 * Write the request record and one record per recipient, flushed: 0, or
 * -1 (stream error or timeout).  A request that would not pass
 * deliver_req_read() (no recipients, more than DELIVER_RCPT_MAX, a bad
 * queue ID...) is a bug in the caller: msg_panic.
 */
int     deliver_req_write(STREAM *s, const DELIVER_REQUEST *req);

/*
 * Read and validate one request: 1 with *req_r, 0 when the peer closed
 * the connection before sending anything, -1 with err.
 */
int     deliver_req_read(STREAM *s, DELIVER_REQUEST **req_r, STRBUF *err);

/* --- replies ---------------------------------------------------------- */

#define DELIVER_DSN_MAX     16          /* "X.YYY.ZZZ" and the NUL */

typedef struct DELIVER_REPLY {
    long    offset;
    int     status;                     /* 0, 4NN or 5NN */
    char    dsn[DELIVER_DSN_MAX];       /* "2.0.0" */
    STRBUF *reason;
    STRBUF *relay;                      /* "" when not given */
} DELIVER_REPLY;

DELIVER_REPLY *deliver_reply_alloc(void);
void    deliver_reply_free(DELIVER_REPLY **replyp);

/*
 * Write one reply: status 0 (dsn 2.X.X), 4NN (4.X.X) or 5NN (5.X.X);
 * relay may be NULL.  A status and DSN that disagree are a bug
 * (msg_panic).  Control characters in reason and relay become '?'.
 * 0, or -1 on a stream error.
 */
int     deliver_reply_write(STREAM *s, long offset, int status,
                            const char *dsn, const char *reason,
                            const char *relay);

/*
 * Read one reply for the recipient at expect_offset: 1, 0 when the agent
 * closed the connection before this reply (qmgr: a temporary failure of
 * this and the remaining recipients), -1 with err when the record is
 * malformed or is for another recipient.
 */
int     deliver_reply_read(STREAM *s, long expect_offset,
                           DELIVER_REPLY *reply, STRBUF *err);

/*
 * The same checks on a record already read (qmgr's event loop decodes
 * records itself with ipc_decode()): 0, or -1 with err.
 */
int     deliver_reply_scan(const IPC_MSG *m, long expect_offset,
                           DELIVER_REPLY *reply, STRBUF *err);

/* Is dsn a well-formed enhanced status code "C.S.D" (C = 2, 4 or 5)? */
int     deliver_dsn_valid(const char *dsn);

/* --- the delivery log line -------------------------------------------- */

/*
 * The agent's own times: when it received the request (handoff), when it
 * had a connection to the next hop (conn_setup; tv_sec 0 for agents that
 * make none, such as local), and when the delivery ended (done; tv_sec 0:
 * now).  delays= shows a/b/c/d = arrival..active, active..handoff,
 * handoff..conn_setup, conn_setup (or handoff)..done, as Postfix's
 * log_adhoc.c does; a negative interval shows as 0.
 */
typedef struct DELIVER_STATS {
    struct timeval handoff;
    struct timeval conn_setup;
    struct timeval done;
    int     conn_use;                   /* > 1: ", conn_use=N" after relay */
    const char *tls;                    /* " tls=..." after the reason */
} DELIVER_STATS;

/*
 * Format "ID: to=<to>[, orig_to=<orig_to>], relay=RELAY[, conn_use=N],
 * delay=D, delays=a/b/c/d, dsn=X.Y.Z, status=sent|deferred|bounced
 * (reason)[ tls=PROTOCOL/CIPHER/TRUST]" into
 * out (replacing it).  orig_to is shown only when it is non-empty and
 * differs from to other than in case (Postfix).  Status 0 is "sent",
 * 4NN "deferred", 5NN "bounced".
 */
void    deliver_log_format(STRBUF *out, const DELIVER_REQUEST *req,
                           const char *to, const char *orig_to,
                           const char *relay, const DELIVER_STATS *stats,
                           int status, const char *dsn, const char *reason);

/* deliver_log_format(), then msg_info(). */
void    deliver_log(const DELIVER_REQUEST *req, const char *to,
                    const char *orig_to, const char *relay,
                    const DELIVER_STATS *stats, int status, const char *dsn,
                    const char *reason);

/*
 * Append a time in Postfix's format_tv(3) style with 2 significant
 * digits and at most 2 decimals: 0, 0.01, 0.12, 1.2, 12, 123 (rounded
 * half up; trailing zeros dropped).
 */
void    deliver_format_delay(STRBUF *out, long sec, long usec);

/*
 * soft_bounce: turn a permanent failure into a temporary one, 5NN into
 * 4NN and a 5.X.X code into 4.X.X (dsn is rewritten in place).
 */
void    deliver_soft_bounce(int *status, char *dsn);

/*
 * The agent's one call per recipient: apply soft_bounce (when
 * var_soft_bounce), log the delivery line for rcpt (to=<address>,
 * orig_to=<orig>) and write the reply.  0, or -1 when the reply could not
 * be written (qmgr went away: stop delivering).
 */
int     deliver_done(STREAM *s, const DELIVER_REQUEST *req,
                     const DELIVER_RCPT *rcpt, const char *relay,
                     const DELIVER_STATS *stats, int status,
                     const char *dsn, const char *reason);

#endif
