/*
 * htable - string-keyed hash table (chained, grows with its load).
 *
 * Keys are copied; values are the caller's.  Iteration order is the order
 * of insertion, which keeps output and tests deterministic.
 */
#ifndef POSTERN_HTABLE_H
#define POSTERN_HTABLE_H

#include <stddef.h>

typedef struct HTABLE_ENTRY {
    char   *key;
    void   *value;
    struct HTABLE_ENTRY *next;          /* hash chain */
    struct HTABLE_ENTRY *list_next;     /* insertion order */
    struct HTABLE_ENTRY *list_prev;
} HTABLE_ENTRY;

typedef struct HTABLE {
    HTABLE_ENTRY **buckets;
    size_t  size;
    size_t  used;
    HTABLE_ENTRY *head;
    HTABLE_ENTRY *tail;
} HTABLE;

HTABLE *htable_alloc(size_t initial);

/* Free the table; free_fn (may be NULL) is called for each value. */
void    htable_free(HTABLE **tablep, void (*free_fn)(void *));

/* Insert; returns the entry, or NULL when the key exists (nothing done). */
HTABLE_ENTRY *htable_enter(HTABLE *table, const char *key, void *value);
void   *htable_find(const HTABLE *table, const char *key);
HTABLE_ENTRY *htable_locate(const HTABLE *table, const char *key);
void    htable_delete(HTABLE *table, const char *key, void (*free_fn)(void *));

#define HTABLE_FOREACH(table, ent) \
    for ((ent) = (table)->head; (ent); (ent) = (ent)->list_next)

#endif
