/*
 * smtpd.h - the SMTP server's session state and internal interfaces.
 */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include "mail/anvil_clnt.h"
#include "mail/ipc.h"
#include "mail/maps.h"
#include "mail/match_list.h"
#include "mail/server.h"
#include "sasl/xsasl.h"
#include "tls/tls.h"
#include "util/argv.h"
#include "util/strbuf.h"
#include "util/stream.h"

/* Per-command counters for the "disconnect from" log line. */
typedef struct SMTPD_COUNT {
    int     ok;
    int     total;
} SMTPD_COUNT;

/* The reply a restriction chose (code 0: none). */
typedef struct SMTPD_REPLY {
    int     code;
    char    dsn[16];
    STRBUF *text;                       /* after "code dsn " */
    int     disconnect;                 /* 421/521 */
} SMTPD_REPLY;

typedef struct SMTPD_STATE {
    STREAM *client;
    char   *name;                       /* verified hostname or "unknown" */
    char   *addr;                       /* numeric address */
    char   *namaddr;                    /* name[addr] */
    int     port;
    char    local_addr[64];             /* where the client connected */
    int     local_port;
    char   *helo;                       /* NULL until HELO/EHLO */
    int     esmtp;
    const char *protocol;               /* SMTP or ESMTP */
    const char *where;                  /* current command, for logs */
    int     quit;                       /* end the session */
    int     error_count;
    int     sync_error;                 /* pipelined ahead of time */
    int     xclient_ok;                 /* may use XCLIENT */
    /* The transaction. */
    char   *sender;                     /* NULL: no MAIL yet */
    char   *dsn_envid;
    char   *dsn_ret;
    int     smtputf8;
    long    declared_size;
    int     rcpt_count;
    char   *last_rcpt;                  /* for logs and Received: */
    int     hold;                       /* access HOLD */
    int     discard;                    /* access DISCARD */
    ARGV   *prepend;                    /* access PREPEND headers */
    STREAM *cleanup;                    /* open from the first accepted RCPT */
    int     postdrop_pid;               /* -S: postdrop instead of cleanup */
    int     postdrop_out;               /* its stdout: the maildrop ID */
    int     postdrop_content;           /* the M record is written */
    char   *queue_id;
    int     bdat_active;                /* CHUNKING transaction open */
    int     bdat_error;                 /* a chunk was refused */
    long    data_bytes;                 /* message bytes received */
    int     data_too_big;
    int     data_cr;                    /* BDAT: a CR ended the last chunk */
    STRBUF *data_buf;                   /* content for cleanup */
    /* Restrictions. */
    SMTPD_REPLY reply;
    STRBUF *sticky;                     /* smtpd_delay_reject=no: the client
                                         * was refused at connect */
    int     check_depth;
    SMTPD_COUNT *counts;                /* indexed like the command table */
    ANVIL_CLNT *anvil;                  /* connection and AUTH limits */
    /* TLS (smtpd_tls.c) and SASL (smtpd_sasl.c). */
    TLS_SESS *tls;
    char   *tls_info;                   /* "TLSv1.3 with cipher ..." */
    XSASL_SESS *sasl;
    char   *sasl_method;                /* set by a successful AUTH */
    char   *sasl_username;
} SMTPD_STATE;

/* smtpd.c */
void    smtpd_reply(SMTPD_STATE *state, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void    smtpd_reply_error(SMTPD_STATE *state, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
int     smtpd_flush(SMTPD_STATE *state);
void    smtpd_transaction_reset(SMTPD_STATE *state);
void    smtpd_set_peer(SMTPD_STATE *state, const char *name, const char *addr);
void    smtpd_log_reject(SMTPD_STATE *state, const char *kind,
                         const char *rcpt, const SMTPD_REPLY *reply);

/* smtpd_cmd.c */
int     smtpd_cmd_helo(SMTPD_STATE *state, char *args);
int     smtpd_cmd_ehlo(SMTPD_STATE *state, char *args);
int     smtpd_cmd_mail(SMTPD_STATE *state, char *args);
int     smtpd_cmd_rcpt(SMTPD_STATE *state, char *args);
int     smtpd_cmd_rset(SMTPD_STATE *state, char *args);
int     smtpd_cmd_noop(SMTPD_STATE *state, char *args);
int     smtpd_cmd_quit(SMTPD_STATE *state, char *args);
int     smtpd_cmd_vrfy(SMTPD_STATE *state, char *args);
int     smtpd_cmd_help(SMTPD_STATE *state, char *args);
int     smtpd_cmd_xclient(SMTPD_STATE *state, char *args);

/* smtpd_data.c */
int     smtpd_cmd_data(SMTPD_STATE *state, char *args);
int     smtpd_cmd_bdat(SMTPD_STATE *state, char *args);
int     smtpd_cleanup_open(SMTPD_STATE *state);
int     smtpd_cleanup_rcpt(SMTPD_STATE *state, const char *rcpt,
                           const char *orcpt, int notify);
void    smtpd_cleanup_abort(SMTPD_STATE *state);

/* smtpd_postdrop.c: stand-alone mode (sendmail -bs) submits via postdrop */
int     smtpd_postdrop_open(SMTPD_STATE *state);
void    smtpd_postdrop_rcpt(SMTPD_STATE *state, const char *rcpt,
                            const char *orcpt, int notify);
void    smtpd_postdrop_data(SMTPD_STATE *state, const char *data, size_t len);
int     smtpd_postdrop_end(SMTPD_STATE *state, STRBUF *id);
void    smtpd_postdrop_abort(SMTPD_STATE *state);

/* smtpd_tls.c */
int     smtpd_tls_pre_init(void);
int     smtpd_tls_offer(const SMTPD_STATE *state);
int     smtpd_tls_required(const SMTPD_STATE *state);
int     smtpd_tls_wrapper_start(SMTPD_STATE *state);
int     smtpd_cmd_starttls(SMTPD_STATE *state, char *args);
void    smtpd_tls_received(const SMTPD_STATE *state, STRBUF *hdr);
void    smtpd_tls_disconnect(SMTPD_STATE *state);

/* smtpd_sasl.c */
int     smtpd_sasl_pre_init(void);
void    smtpd_sasl_post_init(void);
void    smtpd_sasl_connect(SMTPD_STATE *state);
void    smtpd_sasl_disconnect(SMTPD_STATE *state);
void    smtpd_sasl_reset(SMTPD_STATE *state);
void    smtpd_sasl_tls(SMTPD_STATE *state);
void    smtpd_sasl_ehlo(SMTPD_STATE *state);
int     smtpd_cmd_auth(SMTPD_STATE *state, char *args);

/* smtpd_check.c */
#define SMTPD_CHECK_DUNNO   0           /* no decision */
#define SMTPD_CHECK_OK      1           /* permit (this list) */
#define SMTPD_CHECK_REJECT  2           /* state->reply is set */

void    smtpd_check_init(void);
void    smtpd_check_config_broken(void);
int     smtpd_check_client(SMTPD_STATE *state);
int     smtpd_check_helo(SMTPD_STATE *state);
int     smtpd_check_mail(SMTPD_STATE *state);
int     smtpd_check_rcpt(SMTPD_STATE *state, const char *rcpt);
int     smtpd_check_data(SMTPD_STATE *state);
int     smtpd_check_unlisted(SMTPD_STATE *state, const char *rcpt);

#endif
