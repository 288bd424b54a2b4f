/*
 * dict - lookup tables behind one interface, named "type:name".
 *
 * Types: lmdb (built by "postern map"), pcre (pcre_table(5) syntax),
 * texthash (a source file read into memory), inline:{ k=v, ... },
 * static:value, unix:passwd.byname and unix:group.byname (the system
 * databases), and proxy:TYPE:NAME, which Postfix configurations use and
 * which opens TYPE:NAME directly.  Every lookup answers one of three
 * things, and callers must keep them apart: found, not found, or failed
 * (a table that cannot be read, a corrupt file).  A failure lets smtpd
 * answer 4xx instead of rejecting or accepting mail on a broken table
 * (Postfix dict->error).
 *
 * Tables are shared by "type:name" within a process with a reference
 * count, because LMDB forbids opening one file twice in a process.
 */
#ifndef POSTERN_DICT_H
#define POSTERN_DICT_H

#include "util/strbuf.h"

#define DICT_FOUND      1
#define DICT_NOTFOUND   0
#define DICT_ERROR      (-1)

/* Flags given to dict_open() and kept in dict->flags. */
#define DICT_FLAG_FOLD_FIX  (1 << 0)    /* lowercase keys of fixed-key tables */
#define DICT_FLAG_FIXED     (1 << 1)    /* set by the type: exact keys */
#define DICT_FLAG_PATTERN   (1 << 2)    /* set by the type: regular expressions */
#define DICT_FLAG_SURROGATE (1 << 3)    /* set for a table that failed to open */
#define DICT_FLAG_ALIASES   (1 << 4)    /* building: aliases(5) source syntax */

#define DICT_FLAG_DEFAULT   DICT_FLAG_FOLD_FIX

typedef struct DICT DICT;

struct DICT {
    char   *type;                       /* "lmdb" */
    char   *name;                       /* "/etc/postern/access" */
    int     flags;
    int     refcount;                   /* dict.c */
    STRBUF *error;                      /* why the last call failed */

    /*
     * lookup: DICT_FOUND with *value_r pointing into storage owned by the
     * table (valid until the next call on it), DICT_NOTFOUND, or
     * DICT_ERROR with d->error set.  The key is already case-folded when
     * the table has DICT_FLAG_FIXED and DICT_FLAG_FOLD_FIX.
     */
    int     (*lookup)(DICT *d, const char *key, const char **value_r);

    /*
     * sequence: walk all entries (postern map -s): first != 0 restarts.
     * Returns DICT_FOUND, DICT_NOTFOUND at the end, or DICT_ERROR.  NULL
     * when the type cannot list its contents (pcre, static).
     */
    int     (*sequence)(DICT *d, int first, const char **key_r,
                        const char **value_r);

    void    (*close)(DICT *d);          /* free type-specific state and d */
};

/*
 * dict_open - open "type:name".  Returns NULL with the reason in err when
 * the type is unknown or the table cannot be opened.
 */
DICT   *dict_open(const char *spec, int flags, STRBUF *err);

/*
 * dict_open_surrogate - like dict_open(), but never NULL: a table that
 * fails to open becomes one whose every lookup returns DICT_ERROR with the
 * reason, and a warning is logged once.  Daemons use this, so that one bad
 * table defers mail instead of killing the service.
 */
DICT   *dict_open_surrogate(const char *spec, int flags);

void    dict_close(DICT **dp);

/* dict_lookup - fold the key as the table wants, then look it up. */
int     dict_lookup(DICT *d, const char *key, const char **value_r);

/* For table implementations. */
DICT   *dict_alloc(const char *type, const char *name, size_t size, int flags);
void    dict_free(DICT *d);
int     dict_fail(DICT *d, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Per-type constructors: return NULL with err set on failure. */
typedef DICT *(*DICT_OPEN_FN)(const char *name, int flags, STRBUF *err);
DICT   *dict_lmdb_open(const char *name, int flags, STRBUF *err);
DICT   *dict_pcre_open(const char *name, int flags, STRBUF *err);
DICT   *dict_texthash_open(const char *name, int flags, STRBUF *err);
DICT   *dict_inline_open(const char *name, int flags, STRBUF *err);
DICT   *dict_static_open(const char *name, int flags, STRBUF *err);
DICT   *dict_unix_open(const char *name, int flags, STRBUF *err);
/* proxy:TYPE:NAME opens TYPE:NAME here: Postern has no proxymap(8). */
DICT   *dict_proxy_open(const char *name, int flags, STRBUF *err);

/* Is "type" a table type this build knows? */
int     dict_type_known(const char *type);

#endif
