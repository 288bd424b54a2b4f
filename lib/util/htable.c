/*
 * htable - chained hash table with insertion-ordered iteration.
 */
#include <stdlib.h>
#include <string.h>

#include "util/htable.h"
#include "util/xmalloc.h"

/* FNV-1a: simple and good enough for configuration-sized tables. */
static size_t htable_hash(const char *key, size_t size)
{
    unsigned long long h = 14695981039346656037ULL;

    for (const unsigned char *cp = (const unsigned char *) key; *cp; cp++) {
        h ^= *cp;
        h *= 1099511628211ULL;
    }
    return (size_t) (h % size);
}

HTABLE *htable_alloc(size_t initial)
{
    HTABLE *t = xmalloc(sizeof(*t));

    t->size = initial < 13 ? 13 : initial | 1;
    t->buckets = xcalloc(t->size, sizeof(HTABLE_ENTRY *));
    t->used = 0;
    t->head = t->tail = NULL;
    return t;
}

void htable_free(HTABLE **tablep, void (*free_fn)(void *))
{
    HTABLE *t = *tablep;
    HTABLE_ENTRY *ent;
    HTABLE_ENTRY *next;

    if (t == NULL)
        return;
    for (ent = t->head; ent; ent = next) {
        next = ent->list_next;
        if (free_fn)
            free_fn(ent->value);
        free(ent->key);
        free(ent);
    }
    free(t->buckets);
    xfree(tablep);
}

static void htable_grow(HTABLE *t)
{
    size_t new_size = t->size * 2 + 1;
    HTABLE_ENTRY **nb = xcalloc(new_size, sizeof(HTABLE_ENTRY *));

    for (HTABLE_ENTRY *ent = t->head; ent; ent = ent->list_next) {
        size_t h = htable_hash(ent->key, new_size);

        ent->next = nb[h];
        nb[h] = ent;
    }
    free(t->buckets);
    t->buckets = nb;
    t->size = new_size;
}

HTABLE_ENTRY *htable_locate(const HTABLE *t, const char *key)
{
    for (HTABLE_ENTRY *ent = t->buckets[htable_hash(key, t->size)]; ent;
         ent = ent->next)
        if (strcmp(ent->key, key) == 0)
            return ent;
    return NULL;
}

void *htable_find(const HTABLE *t, const char *key)
{
    HTABLE_ENTRY *ent = htable_locate(t, key);

    return ent ? ent->value : NULL;
}

HTABLE_ENTRY *htable_enter(HTABLE *t, const char *key, void *value)
{
    HTABLE_ENTRY *ent;
    size_t h;

    if (htable_locate(t, key))
        return NULL;
    if (t->used >= t->size)
        htable_grow(t);
    h = htable_hash(key, t->size);
    ent = xmalloc(sizeof(*ent));
    ent->key = xstrdup(key);
    ent->value = value;
    ent->next = t->buckets[h];
    t->buckets[h] = ent;
    ent->list_next = NULL;
    ent->list_prev = t->tail;
    if (t->tail)
        t->tail->list_next = ent;
    else
        t->head = ent;
    t->tail = ent;
    t->used++;
    return ent;
}

void htable_delete(HTABLE *t, const char *key, void (*free_fn)(void *))
{
    size_t h = htable_hash(key, t->size);
    HTABLE_ENTRY **pp;
    HTABLE_ENTRY *ent;

    for (pp = &t->buckets[h]; (ent = *pp) != NULL; pp = &ent->next) {
        if (strcmp(ent->key, key) != 0)
            continue;
        *pp = ent->next;
        if (ent->list_prev)
            ent->list_prev->list_next = ent->list_next;
        else
            t->head = ent->list_next;
        if (ent->list_next)
            ent->list_next->list_prev = ent->list_prev;
        else
            t->tail = ent->list_prev;
        if (free_fn)
            free_fn(ent->value);
        free(ent->key);
        free(ent);
        t->used--;
        return;
    }
}
