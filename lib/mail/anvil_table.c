/*
 * anvil_table - per-ident connection counts and fixed-window rates of
 * connects and events.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mail/anvil_table.h"
#include "util/htable.h"
#include "util/msg.h"
#include "util/xmalloc.h"

typedef struct ANVIL_ENTRY {
    int     count;                      /* open connections */
    int     rate;                       /* connects+events this window */
    long long start;                    /* when this window began */
} ANVIL_ENTRY;

struct ANVIL_TABLE {
    HTABLE *entries;                    /* ident -> ANVIL_ENTRY */
    long long unit;                     /* window length, ms */
    ANVIL_STATS stats;
};

ANVIL_TABLE *anvil_table_alloc(long long unit_ms)
{
    ANVIL_TABLE *t;

    if (unit_ms <= 0)
        msg_panic("anvil_table_alloc: bad time unit %lld", unit_ms);
    t = xcalloc(1, sizeof(*t));
    t->entries = htable_alloc(256);
    t->unit = unit_ms;
    return t;
}

static void anvil_peak_clear(ANVIL_PEAK *p)
{
    xfree(&p->ident);
    p->value = 0;
    p->when = 0;
}

void anvil_table_free(ANVIL_TABLE **tp)
{
    ANVIL_TABLE *t = *tp;

    if (t == NULL)
        return;
    htable_free(&t->entries, free);
    anvil_peak_clear(&t->stats.count);
    anvil_peak_clear(&t->stats.rate);
    xfree(tp);
}

/* Has the entry's rate window ended at 'now'? */
static int anvil_window_over(const ANVIL_TABLE *t, const ANVIL_ENTRY *e,
                             long long now)
{
    return now - e->start >= t->unit;
}

/* Record value for ident if it beats the peak (ties keep the first). */
static void anvil_peak_update(ANVIL_PEAK *p, int value, const char *ident,
                              long long now)
{
    if (value <= p->value)
        return;
    p->value = value;
    if (p->ident == NULL || strcmp(p->ident, ident) != 0) {
        free(p->ident);
        p->ident = xstrdup(ident);
    }
    p->when = now;
}

/*
 * Find or create the entry of ident and count one more connect or event
 * in its rate window, starting a new window when the last one ended.
 * Connects and events share this so that they follow one window rule.
 */
static ANVIL_ENTRY *anvil_table_hit(ANVIL_TABLE *t, const char *ident,
                                    long long now)
{
    ANVIL_ENTRY *e = htable_find(t->entries, ident);

    if (e == NULL) {
        e = xcalloc(1, sizeof(*e));
        e->start = now;
        htable_enter(t->entries, ident, e);
        if (t->entries->used > t->stats.size) {
            t->stats.size = t->entries->used;
            t->stats.size_when = now;
        }
    } else if (anvil_window_over(t, e, now)) {
        e->rate = 0;
        e->start = now;
    }
    /* Saturate rather than wrap: a limit check must keep seeing "many". */
    if (e->rate < INT_MAX)
        e->rate++;
    anvil_peak_update(&t->stats.rate, e->rate, ident, now);
    return e;
}

void anvil_table_connect(ANVIL_TABLE *t, const char *ident, long long now,
                         int *count_r, int *rate_r)
{
    ANVIL_ENTRY *e = anvil_table_hit(t, ident, now);

    if (e->count < INT_MAX)
        e->count++;
    anvil_peak_update(&t->stats.count, e->count, ident, now);
    *count_r = e->count;
    *rate_r = e->rate;
}

/*
 * The count is left alone, so an entry that only sees events has count
 * 0 and anvil_table_expire() removes it once its window ends.
 */
void anvil_table_event(ANVIL_TABLE *t, const char *ident, long long now,
                       int *rate_r)
{
    *rate_r = anvil_table_hit(t, ident, now)->rate;
}

int anvil_table_disconnect(ANVIL_TABLE *t, const char *ident, long long now)
{
    ANVIL_ENTRY *e = htable_find(t->entries, ident);

    (void) now;
    if (e == NULL || e->count == 0)
        return -1;
    /* The entry stays until its window ends: its rate still counts. */
    return --e->count;
}

int anvil_table_lookup(const ANVIL_TABLE *t, const char *ident,
                       long long now, int *count_r, int *rate_r)
{
    const ANVIL_ENTRY *e = htable_find(t->entries, ident);

    *count_r = e ? e->count : 0;
    *rate_r = e && !anvil_window_over(t, e, now) ? e->rate : 0;
    return e != NULL;
}

size_t anvil_table_expire(ANVIL_TABLE *t, long long now)
{
    HTABLE_ENTRY *ent;
    HTABLE_ENTRY *next;
    size_t removed = 0;

    for (ent = t->entries->head; ent != NULL; ent = next) {
        ANVIL_ENTRY *e = ent->value;

        next = ent->list_next;
        if (e->count == 0 && anvil_window_over(t, e, now)) {
            htable_delete(t->entries, ent->key, free);
            removed++;
        }
    }
    return removed;
}

size_t anvil_table_size(const ANVIL_TABLE *t)
{
    return t->entries->used;
}

const ANVIL_STATS *anvil_table_stats(const ANVIL_TABLE *t)
{
    return &t->stats;
}

void anvil_table_stats_reset(ANVIL_TABLE *t)
{
    anvil_peak_clear(&t->stats.count);
    anvil_peak_clear(&t->stats.rate);
    t->stats.size = 0;
    t->stats.size_when = 0;
}
