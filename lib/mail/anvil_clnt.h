/*
 * anvil_clnt - the client side of anvil(8): report client connections
 * and learn how many a client has open and how fast it opens them
 * (Postfix anvil_clnt); report other events and learn how often they
 * happen.  The protocol is in anvil_proto.h.
 *
 * smtpd opens one handle and, per client session, calls
 * anvil_clnt_connect() at the start and anvil_clnt_disconnect() at the
 * end, with ident "SERVICE:CLIENT_ADDRESS".  The counts are tied to the
 * handle's connection: when it closes (anvil_clnt_close(), or the process
 * dies), anvil forgets every connect it did not see disconnected.
 *
 * For things that happen rather than last (AUTH commands, failed AUTH
 * attempts) it calls anvil_clnt_event(), which counts toward the rate
 * only and is not tied to the connection, and anvil_clnt_lookup(), which
 * reads an ident's count and rate without changing them.  Use idents of
 * their own for these ("smtp-auth:CLIENT_ADDRESS", say): an ident has one
 * rate, however it was raised.
 *
 * Failure policy: anvil is an optimisation against abuse, not something
 * mail depends on.  When anvil cannot be reached, or fails to answer
 * within ANVIL_CLNT_TIMEOUT seconds, the calls return -1 with the reason
 * in err; the caller logs a warning and carries on without count or rate
 * limits for that session (Postfix smtpd does the same).  A handle whose
 * connection broke reconnects by itself on the next connect, event or
 * lookup request (anvil may have been restarted); such a request that
 * fails on a broken connection is retried once on a fresh one (not after
 * a timeout: one slow anvil must not delay a session twice).  A
 * disconnect that fails needs no retry: the broken connection already
 * released the counts.
 */
#ifndef POSTERN_ANVIL_CLNT_H
#define POSTERN_ANVIL_CLNT_H

#include "util/strbuf.h"

#define ANVIL_CLNT_TIMEOUT  10          /* seconds per request */

typedef struct ANVIL_CLNT ANVIL_CLNT;

/*
 * Connect to private/anvil relative to the current directory (a service
 * runs in the queue directory).  NULL with err set when anvil cannot be
 * reached.
 */
ANVIL_CLNT *anvil_clnt_open(STRBUF *err);

/*
 * Register a new connection for ident.  0 with *count_r (simultaneous
 * connections, this one included) and *rate_r (connects in the current
 * anvil_rate_time_unit, this one included), or -1 with err set.
 */
int     anvil_clnt_connect(ANVIL_CLNT *a, const char *ident, int *count_r,
                           int *rate_r, STRBUF *err);

/* Register the end of a connection for ident: 0, or -1 with err set. */
int     anvil_clnt_disconnect(ANVIL_CLNT *a, const char *ident, STRBUF *err);

/*
 * Register one event for ident.  0 with *rate_r (connects and events in
 * the current anvil_rate_time_unit, this one included), or -1 with err
 * set.  Nothing is undone when the handle closes.
 */
int     anvil_clnt_event(ANVIL_CLNT *a, const char *ident, int *rate_r,
                         STRBUF *err);

/*
 * The current count and rate of ident, changing nothing (0 and 0 when
 * anvil does not know ident).  0 with *count_r and *rate_r, or -1 with
 * err set.
 */
int     anvil_clnt_lookup(ANVIL_CLNT *a, const char *ident, int *count_r,
                          int *rate_r, STRBUF *err);

/*
 * The rate of the event "WHAT:SERVICE:ADDR" (service: this process's
 * master.cf service), counting one more when count is set; the handle
 * is opened on first use.  -1 with err set when anvil cannot be asked
 * (the caller then enforces nothing).  AUTH failure limits of smtpd
 * and pop3d use it.
 */
int     anvil_clnt_rate(ANVIL_CLNT **ap, const char *what, const char *addr,
                        int count, STRBUF *err);

/* Close the connection (anvil releases what it still counts) and free. */
void    anvil_clnt_close(ANVIL_CLNT **ap);

#endif
