/*
 * smtp.h - the smtp and lmtp delivery agents: state and internal
 * interfaces.
 *
 *   smtp.c          the service: requests from qmgr, the results
 *   smtp_connect.c  next hops, DNS (MX, A, AAAA), connections, the cache
 *   smtp_proto.c    the SMTP/LMTP conversation
 *   smtp_tls.c      TLS policy (levels, policy maps, certificate checks)
 *   smtp_sasl.c     AUTH to a smarthost
 */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include <sys/types.h>

#include "mail/deliver_req.h"
#include "mail/queue_file.h"
#include "sasl/xsasl.h"
#include "tls/tls.h"
#include "util/argv.h"
#include "util/strbuf.h"
#include "util/stream.h"

/* --- where to deliver ---------------------------------------------------- */

/* The next hop, parsed: "domain", "[host]", "host:port", "unix:/path". */
typedef struct SMTP_DEST {
    char   *nexthop;                    /* as qmgr gave it */
    char   *host;                       /* domain or host name, or path */
    int     port;
    int     mx;                         /* look up MX records */
    int     unix_path;                  /* LMTP over a Unix socket */
} SMTP_DEST;

/* One address to connect to. */
typedef struct SMTP_ADDR {
    char   *host;                       /* the (MX) host name */
    char   *addr;                       /* numeric address, or the path */
    int     family;                     /* AF_INET, AF_INET6, AF_UNIX */
    int     port;
    int     pref;                       /* MX preference */
} SMTP_ADDR;

typedef struct SMTP_ADDR_LIST {
    SMTP_ADDR *addrs;
    size_t  count;
} SMTP_ADDR_LIST;

/* A failure that applies to all recipients still pending. */
typedef struct SMTP_FAIL {
    int     status;                     /* 0: none yet; 4NN or 5NN */
    char    dsn[16];
    STRBUF *reason;
    char   *relay;                      /* the server it happened with */
} SMTP_FAIL;

/* --- a connection to a server -------------------------------------------- */

#define SMTP_FEAT_ESMTP     (1 << 0)
#define SMTP_FEAT_PIPELINING (1 << 1)
#define SMTP_FEAT_SIZE      (1 << 2)
#define SMTP_FEAT_8BITMIME  (1 << 3)
#define SMTP_FEAT_SMTPUTF8  (1 << 4)
#define SMTP_FEAT_DSN       (1 << 5)
#define SMTP_FEAT_STARTTLS  (1 << 6)
#define SMTP_FEAT_AUTH      (1 << 7)

typedef struct SMTP_SESSION {
    STREAM *stream;
    char   *host;                       /* the server's name */
    char   *addr;                       /* its address (or socket path) */
    int     port;
    char   *namaddr;                    /* host[addr]:port, for relay= */
    char   *dest_key;                   /* transport/nexthop: reuse key */
    int     features;
    long    size_limit;                 /* SIZE n; 0: none given */
    char   *auth_mechs;
    TLS_SESS *tls;
    char   *tls_summary;                /* "TLSv1.3/CIPHER/Verified" */
    int     uses;                       /* deliveries on this connection */
    long long opened_ms;
    long long idle_ms;                  /* when it became idle */
} SMTP_SESSION;

/* --- one delivery request ------------------------------------------------- */

typedef struct SMTP_RCPT_STATE {
    int     status;                     /* 0: pending; 2NN/4NN/5NN: done */
    char    dsn[16];
    STRBUF *reason;
    char   *relay;                      /* where it was decided */
    char   *tls;                        /* the session's TLS, or NULL */
} SMTP_RCPT_STATE;

typedef struct SMTP_STATE {
    DELIVER_REQUEST *req;
    const char *transport;              /* service name: smtp, relay, lmtp */
    int     lmtp;
    int     fd;                         /* the queue file */
    QENV   *env;
    int     eight_bit;                  /* content has 8-bit bytes */
    SMTP_DEST dest;
    SMTP_RCPT_STATE *rcpts;
    size_t  pending;                    /* recipients not yet decided */
    SMTP_FAIL fail;                     /* the last failure of the try */
    SMTP_SESSION *session;              /* the one in use (or starting) */
    DELIVER_STATS stats;
    int     final_server;               /* no other server left to try */
    int     best_mx;                    /* this server has the best MX
                                         * preference (or no MX lookup) */
    int     stop;                       /* try no further servers */
    int     no_tls;                     /* this try: plaintext only */
    int     tls_fallback;               /* opportunistic TLS failed */
} SMTP_STATE;

/* smtp.c */
void    smtp_rcpt_done(SMTP_STATE *state, size_t i, int status,
                       const char *dsn, const char *reason, const char *relay);
void    smtp_fail(SMTP_STATE *state, int status, const char *dsn,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* smtp_connect.c */
int     smtp_dest_parse(SMTP_DEST *dest, const char *nexthop, int lmtp,
                        STRBUF *why);
void    smtp_dest_free(SMTP_DEST *dest);
int     smtp_dest_addrs(SMTP_STATE *state, SMTP_ADDR_LIST *list);
void    smtp_addr_list_free(SMTP_ADDR_LIST *list);
SMTP_SESSION *smtp_connect(SMTP_STATE *state, const SMTP_ADDR *addr);
void    smtp_session_free(SMTP_SESSION **sessp);
SMTP_SESSION *smtp_cache_take(const char *dest_key);
void    smtp_cache_put(SMTP_SESSION *sess);
int     smtp_cache_idle(void);
void    smtp_cache_close(void);

/* smtp_proto.c */
int     smtp_session_start(SMTP_STATE *state, SMTP_SESSION *sess);
int     smtp_transaction(SMTP_STATE *state, SMTP_SESSION *sess);
void    smtp_quit(SMTP_SESSION *sess);
int     smtp_session_reusable(SMTP_SESSION *sess);

/* smtp_tls.c */
#define SMTP_TLS_NONE       0
#define SMTP_TLS_MAY        1
#define SMTP_TLS_ENCRYPT    2
#define SMTP_TLS_VERIFY     3
#define SMTP_TLS_SECURE     4

typedef struct SMTP_TLS_POLICY {
    int     level;
    ARGV   *match;                      /* names to check (verify/secure) */
} SMTP_TLS_POLICY;

void    smtp_tls_pre_init(void);
int     smtp_tls_policy(SMTP_STATE *state, SMTP_TLS_POLICY *policy);
void    smtp_tls_policy_free(SMTP_TLS_POLICY *policy);
int     smtp_tls_start(SMTP_STATE *state, SMTP_SESSION *sess,
                       const SMTP_TLS_POLICY *policy);

/* smtp_sasl.c */
void    smtp_sasl_pre_init(void);
int     smtp_sasl_wanted(SMTP_STATE *state, SMTP_SESSION *sess,
                         STRBUF *user, STRBUF *password);
int     smtp_sasl_auth(SMTP_STATE *state, SMTP_SESSION *sess);

/* Reading replies (smtp_proto.c). */
typedef struct SMTP_REPLY {
    int     code;                       /* 0: lost connection / timeout */
    char    dsn[16];                    /* from the reply, or derived */
    STRBUF *text;                       /* all lines, joined by spaces */
    ARGV   *lines;                      /* each line's text after "NNN-" */
} SMTP_REPLY;

SMTP_REPLY *smtp_reply_alloc(void);
void    smtp_reply_free(SMTP_REPLY **rp);
int     smtp_reply_read(SMTP_SESSION *sess, SMTP_REPLY *r);
int     smtp_command(SMTP_SESSION *sess, int timeout, SMTP_REPLY *r,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void    smtp_lost(SMTP_STATE *state, SMTP_SESSION *sess, const char *when);

#endif
