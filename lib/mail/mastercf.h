/*
 * mastercf - read master.cf with Postfix's syntax.
 *
 * Same comment and continuation rules as main.cf.  Each entry has eight
 * whitespace-separated fields: service, type, private, unpriv, chroot,
 * wakeup, maxproc, command (the rest of the line).  "-" means the default.
 * In the command, "{ text with spaces }" is one argument, and among the
 * options before its first other argument, "-o name=value" or
 * "-o { name = value }" overrides a main.cf parameter for this service.
 * A repeated service/type pair: the last one wins.
 */
#ifndef POSTERN_MASTERCF_H
#define POSTERN_MASTERCF_H

#include <stddef.h>

#include "util/argv.h"
#include "util/strbuf.h"

typedef struct MASTER_ENT {
    char   *service;                    /* "smtp", "127.0.0.1:2525", "qmgr" */
    char   *type;                       /* inet, unix, unix-dgram, fifo, pass */
    char   *raw[5];                     /* private..maxproc as written */
    int     private_;                   /* 1 = private/NAME (default) */
    int     unpriv;                     /* 1 = run as mail_owner (default) */
    int     chroot;                     /* 1 = chroot to queue_directory */
    int     wakeup;                     /* seconds, 0 = none */
    int     wakeup_on_use;              /* "N?": not before first use */
    int     maxproc;                    /* -1 = $default_process_limit */
    ARGV   *args;                       /* command and its arguments, with
                                         * -o pairs kept as "-o" "name=value" */
    ARGV   *overrides;                  /* "name=value" from the -o pairs */
    int     lineno;
} MASTER_ENT;

typedef struct MASTERCF {
    char   *path;
    MASTER_ENT **entries;               /* file order */
    size_t  count;
} MASTERCF;

MASTERCF *mastercf_alloc(const char *path);
void    mastercf_free(MASTERCF **cfp);

/* Parse text; -1 with err "PATH, line N: why" on any bad entry. */
int     mastercf_parse(MASTERCF *cf, const char *text, size_t len,
                       STRBUF *err);
int     mastercf_read(MASTERCF *cf, STRBUF *err);

/* Find service/type (type NULL: the first entry with that service). */
MASTER_ENT *mastercf_find(const MASTERCF *cf, const char *service,
                          const char *type);

/* The command field as postconf -M prints it (one line). */
void    mastercf_format_command(const MASTER_ENT *ent, STRBUF *out);

/*
 * The entry as "postconf -M" prints it: fields in columns at 0, 11, 17,
 * 25, 33, 41, 49, 57, pushed right by one space when a field overflows.
 * fold != 0: the command wraps at 80 columns with 4-space continuations.
 */
void    mastercf_format_entry(const MASTER_ENT *ent, int fold, STRBUF *out);

#endif
