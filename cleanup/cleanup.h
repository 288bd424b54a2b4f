/*
 * cleanup.h - the cleanup service's per-message state.
 */
#ifndef POSTERN_CLEANUP_H
#define POSTERN_CLEANUP_H

#include "mail/maps.h"
#include "mail/match_list.h"
#include "mail/queue_file.h"
#include "mail/queue_id.h"
#include "util/argv.h"
#include "util/htable.h"
#include "util/strbuf.h"

/* Why a message cannot be accepted (first problem wins). */
typedef struct CLEANUP_FAIL {
    int     code;                       /* 0 = none, 4xx, 5xx */
    char    dsn[16];
    STRBUF *text;
} CLEANUP_FAIL;

typedef struct CLEANUP_STATE {
    QFILE  *qfile;
    char    queue_id[QUEUE_ID_MAX + 1]; /* a copy: the QFILE goes away */
    char   *origin;                     /* smtpd, pickup */
    char   *sender;                     /* after rewriting */
    char   *client_name;
    char   *client_addr;
    char   *helo;
    char   *protocol;
    char   *local_uid;
    char   *fullname;
    ARGV   *log_rcpts;                  /* for reject logs: first recipient */
    HTABLE *rcpt_seen;                  /* duplicate elimination */
    long    rcpt_count;
    int     in_content;
    off_t   content_offset;
    long    message_size;               /* content bytes accepted */
    int     too_big;
    int     hold;
    int     discard;
    CLEANUP_FAIL fail;
    /* Content parsing. */
    int     in_headers;
    STRBUF *line;                       /* the line being assembled */
    STRBUF *header;                     /* the header being assembled */
    long    header_bytes;
    int     hop_count;
    int     seen_message_id;
    int     seen_date;
    int     seen_from;
    int     seen_received_by_us;
    STRBUF *out;                        /* content waiting to be written */
} CLEANUP_STATE;

/* Tables, opened once per process (cleanup.c). */
extern MAPS *cleanup_virtual_maps;
extern MAPS *cleanup_canonical_maps;
extern MAPS *cleanup_sender_canonical_maps;
extern MAPS *cleanup_rcpt_canonical_maps;
extern MAPS *cleanup_header_checks;
extern MATCH_LIST *cleanup_mydestination;

/* cleanup.c */
void    cleanup_failed(CLEANUP_STATE *state, int code, const char *dsn,
                       const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void    cleanup_log_reject(CLEANUP_STATE *state, const char *action,
                           const char *what, const char *text);

/* cleanup_addr.c */
void    cleanup_canon_addr(const char *addr, STRBUF *out);
int     cleanup_rewrite(CLEANUP_STATE *state, MAPS *first, MAPS *second,
                        const char *addr, STRBUF *out);
int     cleanup_expand_virtual(CLEANUP_STATE *state, const char *addr,
                               ARGV *result);

/* cleanup_message.c */
void    cleanup_content_init(CLEANUP_STATE *state);
void    cleanup_content(CLEANUP_STATE *state, const char *data, size_t len);
void    cleanup_content_end(CLEANUP_STATE *state);

#endif
