/*
 * qmgr.h - the queue manager's structures.
 *
 * A message in active/ is a QMGR_MESSAGE; its recipients are split into
 * QMGR_JOBs, one per (transport, next hop) and at most the transport's
 * recipient limit each.  Jobs wait in their QMGR_DEST until the
 * destination's and the transport's concurrency allow a delivery agent
 * connection (QMGR_CONN).
 */
#ifndef POSTERN_QMGR_H
#define POSTERN_QMGR_H

#include <sys/types.h>

#include "mail/queue_file.h"
#include "util/htable.h"
#include "util/strbuf.h"

typedef struct QMGR_MESSAGE QMGR_MESSAGE;
typedef struct QMGR_JOB QMGR_JOB;
typedef struct QMGR_DEST QMGR_DEST;
typedef struct QMGR_TRANSPORT QMGR_TRANSPORT;

struct QMGR_MESSAGE {
    char   *id;
    int     fd;                         /* active/ID, for done marks */
    QENV   *env;
    long    active_sec;                 /* when it entered active/ */
    long    active_usec;
    int     jobs_pending;
    int     deferred;                   /* a recipient failed temporarily */
    int     bounced;                    /* entries in bounce/ID */
    int     loading;                    /* jobs are still being made */
    int     discard_logged;             /* the double-bounce warning */
    QMGR_MESSAGE *prev;
    QMGR_MESSAGE *next;
};

struct QMGR_JOB {
    QMGR_MESSAGE *message;
    QMGR_DEST *dest;
    size_t *rcpts;                      /* indexes into env->rcpts */
    size_t  nrcpt;
    QMGR_JOB *next;
};

struct QMGR_DEST {
    char   *name;                       /* next hop */
    QMGR_TRANSPORT *transport;
    int     active;
    int     limit;
    QMGR_JOB *head;
    QMGR_JOB *tail;
    QMGR_DEST *next_ready;              /* in transport's round robin */
};

struct QMGR_TRANSPORT {
    char   *name;
    int     active;                     /* agent connections */
    int     limit;                      /* most connections */
    int     rcpt_limit;
    int     dest_limit;
    long long retry_at;                 /* agent unavailable until (ms) */
    HTABLE *dests;
};

/* qmgr.c */
extern int qmgr_active_count;
void    qmgr_scan_request(void);

/* qmgr_message.c */
void    qmgr_message_activate(const char *from_dir, const char *id);
void    qmgr_message_job_done(QMGR_MESSAGE *msg);
void    qmgr_rcpt_done(QMGR_MESSAGE *msg, size_t idx);
void    qmgr_rcpt_defer(QMGR_MESSAGE *msg, size_t idx, const char *dsn,
                        const char *reason, const char *relay);
void    qmgr_rcpt_bounce(QMGR_MESSAGE *msg, size_t idx, const char *dsn,
                         const char *reason, const char *relay);
void    qmgr_log_delivery(QMGR_MESSAGE *msg, size_t idx, const char *relay,
                          const char *dsn, const char *status,
                          const char *reason);

/* qmgr_deliver.c */
void    qmgr_deliver_init(void);
QMGR_TRANSPORT *qmgr_transport(const char *name);
void    qmgr_job_add(QMGR_MESSAGE *msg, QMGR_TRANSPORT *t,
                     const char *nexthop, size_t idx);
void    qmgr_job_close(QMGR_MESSAGE *msg);
void    qmgr_schedule(void);

/* qmgr_bounce.c */
int     qmgr_bounce_send(QMGR_MESSAGE *msg, const char *log_dir,
                         const char *action, STRBUF *err);

#endif
