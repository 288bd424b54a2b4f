/*
 * anvil_table - the connection count and rate bookkeeping of anvil(8),
 * kept apart from the service so that it can be tested with a fake clock.
 *
 * One entry per ident: how many connections are open now, and how many
 * connects (and events) arrived in the current rate window.  As in
 * Postfix, the window is fixed, not sliding: it starts at the first
 * connect or event after the previous window ended and lasts unit_ms;
 * the next one after that starts a new window with rate 1.  That is
 * cheaper than a moving average and answers a client that hammers the
 * server just as fast.
 *
 * An event (anvil_table_event()) is a connect without the connection:
 * it counts toward the rate only, for things that happen at a point in
 * time rather than last, such as AUTH commands or failed AUTH attempts.
 * The caller picks idents that do not collide with connection idents
 * (say "smtp-auth:ADDR" beside "smtp:ADDR"); an ident that gets both
 * has one rate for both.
 *
 * An entry with no open connection whose window has ended carries no
 * information; anvil_table_expire() removes those, so the table holds
 * only idents that are connected or were seen within the last two
 * units.  An ident that only ever had events never has an open
 * connection, so it always goes at the end of its window.  Times are
 * monotonic milliseconds supplied by the caller.
 *
 * The table also keeps the peaks since the last anvil_table_stats_reset()
 * (Postfix anvil's ANVIL_MAX): the highest count and rate (connects and
 * events alike), with the ident and time at which each was first
 * reached, and the largest table size.
 */
#ifndef POSTERN_ANVIL_TABLE_H
#define POSTERN_ANVIL_TABLE_H

#include <stddef.h>

typedef struct ANVIL_TABLE ANVIL_TABLE;

typedef struct ANVIL_PEAK {
    int     value;                      /* 0: nothing since the reset */
    char   *ident;                      /* NULL when value is 0 */
    long long when;                     /* caller's clock, ms */
} ANVIL_PEAK;

typedef struct ANVIL_STATS {
    ANVIL_PEAK count;                   /* simultaneous connections */
    ANVIL_PEAK rate;                    /* connects or events per unit */
    size_t  size;                       /* largest number of entries */
    long long size_when;
} ANVIL_STATS;

ANVIL_TABLE *anvil_table_alloc(long long unit_ms);
void    anvil_table_free(ANVIL_TABLE **tp);

/* Register a connect; the new count and rate include it. */
void    anvil_table_connect(ANVIL_TABLE *t, const char *ident, long long now,
                            int *count_r, int *rate_r);

/*
 * Register an event: like a connect for the rate (the new rate includes
 * it), but no connection is opened, so there is nothing to disconnect.
 */
void    anvil_table_event(ANVIL_TABLE *t, const char *ident, long long now,
                          int *rate_r);

/*
 * Register a disconnect: returns the remaining count, or -1 when ident
 * has no open connection (nothing is changed).
 */
int     anvil_table_disconnect(ANVIL_TABLE *t, const char *ident,
                               long long now);

/*
 * Current count and rate of ident (a rate whose window has ended reads
 * as 0); returns 0 when ident is unknown (both set to 0), else 1.
 * Changes nothing: neither the entry, nor its window, nor the stats.
 */
int     anvil_table_lookup(const ANVIL_TABLE *t, const char *ident,
                           long long now, int *count_r, int *rate_r);

/* Remove idle entries whose window has ended; returns how many. */
size_t  anvil_table_expire(ANVIL_TABLE *t, long long now);

size_t  anvil_table_size(const ANVIL_TABLE *t);

const ANVIL_STATS *anvil_table_stats(const ANVIL_TABLE *t);
void    anvil_table_stats_reset(ANVIL_TABLE *t);

#endif
