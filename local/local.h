/*
 * local - the local and virtual delivery agent (see local(8)).
 *
 * One request from qmgr (deliver_req.h) per connection.  Each recipient
 * is resolved here: virtual_mailbox_domains to a virtual mailbox,
 * everything else to aliases, then to a system user's mailbox.  Aliases
 * may name addresses (local ones are expanded again, others are forwarded
 * through cleanup as a new message), |commands, /files and :include:
 * files.  Each final delivery logs one Postfix delivery line; qmgr gets
 * one reply per recipient that sums up its deliveries.
 */
#ifndef POSTERN_LOCAL_H
#define POSTERN_LOCAL_H

#include <sys/types.h>

#include "mail/deliver_req.h"
#include "mail/maildir.h"
#include "mail/maps.h"
#include "mail/match_list.h"
#include "mail/queue_file.h"
#include "mail/vmailbox.h"
#include "util/argv.h"
#include "util/htable.h"
#include "util/strbuf.h"
#include "util/stream.h"

#define LOCAL_EXPAND_DEPTH      100     /* nested aliases and includes */
#define LOCAL_INCLUDE_MAX       (4 * 1024 * 1024)   /* bytes per file */
#define LOCAL_OUTPUT_MAX        1024    /* command output in reasons */

/* Tables and lists, opened once (pre_init, as root). */
typedef struct LOCAL_TABLES {
    MAPS   *alias_maps;
    VMAILBOX_MAPS vmailbox;             /* virtual_mailbox/uid/gid_maps */
    MATCH_LIST *mydestination;
    MATCH_LIST *vmailbox_domains;
} LOCAL_TABLES;

extern LOCAL_TABLES local_tables;

/* Whose rights a delivery runs with. */
typedef struct LOCAL_PRIV {
    uid_t   uid;
    gid_t   gid;
    gid_t   extra_gid;                  /* (gid_t) -1: none */
    char   *name;                       /* for messages */
    char   *home;
    char   *shell;
} LOCAL_PRIV;

/* The outcome of one delivery. */
typedef struct LOCAL_RESULT {
    int     status;                     /* 0, 4NN or 5NN */
    char    dsn[DELIVER_DSN_MAX];
    STRBUF *reason;
} LOCAL_RESULT;

/* One request. */
typedef struct LOCAL_REQ {
    DELIVER_REQUEST *req;
    const char *relay;                  /* the service name: local, virtual */
    int     qfd;                        /* the queue file, read only */
    QENV   *env;
    HTABLE *delivered;                  /* Delivered-To: values, lowercase */
    DELIVER_STATS stats;
} LOCAL_REQ;

/* One recipient of the request and everything it expands to. */
typedef struct LOCAL_RCPT {
    LOCAL_REQ *lr;
    const DELIVER_RCPT *rcpt;
    const char *orig;                   /* orig_to= and X-Original-To: */
    HTABLE *done;                       /* destinations delivered to */
    ARGV   *forward;                    /* addresses to forward */
    LOCAL_RESULT total;                 /* the reply to qmgr */
    int     branches;
} LOCAL_RCPT;

/* local.c */
void    local_result_set(LOCAL_RESULT *res, int status, const char *dsn,
                         const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void    local_branch_done(LOCAL_RCPT *lrc, const char *to,
                          const LOCAL_RESULT *res);
void    local_branch(LOCAL_RCPT *lrc, const char *to, int status,
                     const char *dsn, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
void    local_prepend(STRBUF *out, const LOCAL_RCPT *lrc);
int     local_content(void *ctx, MAILDIR_PUT_FN put, void *put_ctx,
                      STRBUF *err);
int     local_is_mydestination(const char *domain, LOCAL_RESULT *res);

/* local_resolve.c */
int     local_loop_check(LOCAL_RCPT *lrc, const char *address);
void    local_deliver_address(LOCAL_RCPT *lrc, const char *address,
                              int depth, ARGV *chain);
void    local_deliver_bare(LOCAL_RCPT *lrc, const char *address);
void    local_deliver_virtual(LOCAL_RCPT *lrc, const char *address);

/* local_alias.c */
int     local_alias(LOCAL_RCPT *lrc, const char *address,
                    const char *localpart, int depth, ARGV *chain);
int     local_mark_done(LOCAL_RCPT *lrc, const char *kind, const char *what);
void    local_expand(LOCAL_RCPT *lrc, const char *owner, const char *value,
                     int depth, ARGV *chain, const char *class,
                     const LOCAL_PRIV *priv);
void    local_split_values(const char *value, ARGV *items);

/* local_mailbox.c */
LOCAL_PRIV *local_priv_user(const char *user);
LOCAL_PRIV *local_priv_uid(uid_t uid);
LOCAL_PRIV *local_priv_default(void);
void    local_priv_free(LOCAL_PRIV **privp);
int     local_priv_open(const LOCAL_PRIV *priv, const char *path, int flags);
void    local_deliver_user(LOCAL_RCPT *lrc, const char *to,
                           const char *user);
void    local_deliver_file(LOCAL_RCPT *lrc, const char *to,
                           const char *path, const LOCAL_PRIV *priv);
void    local_deliver_store(LOCAL_RCPT *lrc, const char *to,
                            const char *path, const LOCAL_PRIV *priv,
                            off_t limit, int flags, const char *what);

/* local_command.c */
void    local_deliver_command(LOCAL_RCPT *lrc, const char *to,
                              const char *command, const LOCAL_PRIV *priv);

/* local_forward.c */
void    local_forward_flush(LOCAL_RCPT *lrc);

#endif
