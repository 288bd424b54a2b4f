/*
 * anvil_clnt - connect/disconnect and event/lookup requests to anvil(8).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mail/anvil_clnt.h"
#include "mail/anvil_proto.h"
#include "mail/ipc.h"
#include "mail/server.h"
#include "util/msg.h"
#include "util/stream.h"
#include "util/xmalloc.h"

struct ANVIL_CLNT {
    STREAM *stream;                     /* NULL after a failure */
    IPC_MSG *msg;
};

/* (Re)connect; 0 or -1 with err set. */
static int anvil_clnt_reopen(ANVIL_CLNT *a, STRBUF *err)
{
    STRBUF *why = strbuf_alloc(64);
    int fd;

    if ((fd = ipc_connect(ANVIL_CLASS, ANVIL_SERVICE, why)) < 0) {
        strbuf_printf(err, "anvil service unavailable: %s", why->data);
        strbuf_free(&why);
        return -1;
    }
    strbuf_free(&why);
    a->stream = stream_open(fd, ANVIL_CLNT_TIMEOUT, ANVIL_RECORD_MAX);
    return 0;
}

ANVIL_CLNT *anvil_clnt_open(STRBUF *err)
{
    ANVIL_CLNT *a = xcalloc(1, sizeof(*a));

    if (anvil_clnt_reopen(a, err) < 0) {
        free(a);
        return NULL;
    }
    a->msg = ipc_msg_alloc();
    return a;
}

void anvil_clnt_close(ANVIL_CLNT **ap)
{
    ANVIL_CLNT *a = *ap;

    if (a == NULL)
        return;
    if (a->stream)
        stream_close(&a->stream);
    ipc_msg_free(&a->msg);
    xfree(ap);
}

/* A number in [0, INT_MAX] that the reply must have. */
static int anvil_clnt_int(const IPC_MSG *reply, const char *name, long value,
                          int *value_r, STRBUF *err)
{
    if (ipc_find(reply, name) == NULL) {
        strbuf_printf(err, "anvil reply: missing attribute \"%s\"", name);
        return -1;
    }
    if (value < 0 || value > INT_MAX) {
        strbuf_printf(err, "anvil reply: bad %s %ld", name, value);
        return -1;
    }
    *value_r = (int) value;
    return 0;
}

/*
 * One request and its reply over the current connection.  Returns 0, or
 * -1 with err set; *broken_r says whether the connection is unusable (it
 * is then closed): ANVIL_CLNT_ST_BROKEN, or ANVIL_CLNT_ST_TIMEOUT when
 * anvil did not answer in time.  count_r and rate_r, when not NULL, name
 * the numbers the reply must carry (connect and lookup: both; event:
 * rate only; disconnect: none).
 */
#define ANVIL_CLNT_ST_BROKEN    1
#define ANVIL_CLNT_ST_TIMEOUT   2

static int anvil_clnt_request(ANVIL_CLNT *a, const char *req,
                              const char *ident, int *count_r, int *rate_r,
                              int *broken_r, STRBUF *err)
{
    long status = 0;
    long count = -1;
    long rate = -1;
    IPC_SPEC specs[] = {
        {ANVIL_ATTR_STATUS, IPC_LONG, 1, &status},
        /* Required by some requests, never in a refusal: see below. */
        {ANVIL_ATTR_COUNT, IPC_LONG, 0, &count},
        {ANVIL_ATTR_RATE, IPC_LONG, 0, &rate},
        IPC_SPEC_END,
    };
    STRBUF *why = strbuf_alloc(64);
    int rc = -1;

    *broken_r = ANVIL_CLNT_ST_BROKEN;
    ipc_msg_reset(a->msg);
    ipc_put_str(a->msg, ANVIL_ATTR_REQ, req);
    ipc_put_str(a->msg, ANVIL_ATTR_IDENT, ident);
    if (ipc_write(a->stream, a->msg) < 0) {
        strbuf_printf(err, "anvil %s request: %s", req,
                      stream_timed_out(a->stream) ? "timeout"
                      : "write error");
    } else if ((rc = ipc_read(a->stream, a->msg, ANVIL_RECORD_MAX,
                              why)) <= 0) {
        strbuf_printf(err, "anvil %s reply: %s", req,
                      rc == 0 ? "connection closed" : why->data);
        rc = -1;
    } else if (ipc_scan(a->msg, specs, why) < 0) {
        strbuf_printf(err, "anvil %s reply: %s", req, why->data);
        rc = -1;
    } else if (status != ANVIL_STAT_OK) {
        /* A well-formed refusal: the connection itself is fine. */
        *broken_r = 0;
        strbuf_printf(err, "anvil %s request failed: status %ld", req,
                      status);
        rc = -1;
    } else if ((count_r && anvil_clnt_int(a->msg, ANVIL_ATTR_COUNT, count,
                                          count_r, err) < 0)
               || (rate_r && anvil_clnt_int(a->msg, ANVIL_ATTR_RATE, rate,
                                            rate_r, err) < 0)) {
        rc = -1;
    } else {
        *broken_r = 0;
        rc = 0;
    }
    if (*broken_r) {
        if (stream_timed_out(a->stream))
            *broken_r = ANVIL_CLNT_ST_TIMEOUT;
        stream_close(&a->stream);
    }
    strbuf_free(&why);
    return rc;
}

/* anvil drops a client that sends a bad ident: check it here first. */
static int anvil_clnt_ident_ok(const char *ident, STRBUF *err)
{
    size_t len = strlen(ident);

    if (len == 0 || len > ANVIL_IDENT_MAX) {
        strbuf_printf(err, "anvil: ident of %zu bytes (allowed: 1..%d)", len,
                      ANVIL_IDENT_MAX);
        return 0;
    }
    return 1;
}

/*
 * A request that may open a new connection: connect, event and lookup.
 * 0, or -1 with err set.
 */
static int anvil_clnt_query(ANVIL_CLNT *a, const char *req,
                            const char *ident, int *count_r, int *rate_r,
                            STRBUF *err)
{
    int broken;

    if (!anvil_clnt_ident_ok(ident, err))
        return -1;

    /*
     * anvil may have been restarted since the last request: one retry on
     * a fresh connection.  The old connection's counts died with it.  An
     * anvil that is alive but too slow gets no second chance to delay
     * the SMTP session.  When a reply, not the request, was lost (a
     * garbled reply from an anvil that still runs), the retry counts a
     * connect or event twice: a rate one too high is a smaller harm than
     * a limit left unchecked.
     */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (a->stream == NULL && anvil_clnt_reopen(a, err) < 0)
            return -1;
        if (anvil_clnt_request(a, req, ident, count_r, rate_r, &broken,
                               err) == 0)
            return 0;
        if (broken != ANVIL_CLNT_ST_BROKEN)
            return -1;
        if (msg_verbose)
            msg_info("%s%s", err->data, attempt == 0 ? "; retrying" : "");
    }
    return -1;
}

int anvil_clnt_connect(ANVIL_CLNT *a, const char *ident, int *count_r,
                       int *rate_r, STRBUF *err)
{
    return anvil_clnt_query(a, ANVIL_REQ_CONNECT, ident, count_r, rate_r,
                            err);
}

int anvil_clnt_event(ANVIL_CLNT *a, const char *ident, int *rate_r,
                     STRBUF *err)
{
    return anvil_clnt_query(a, ANVIL_REQ_EVENT, ident, NULL, rate_r, err);
}

int anvil_clnt_lookup(ANVIL_CLNT *a, const char *ident, int *count_r,
                      int *rate_r, STRBUF *err)
{
    return anvil_clnt_query(a, ANVIL_REQ_LOOKUP, ident, count_r, rate_r,
                            err);
}

int anvil_clnt_disconnect(ANVIL_CLNT *a, const char *ident, STRBUF *err)
{
    int broken;

    if (!anvil_clnt_ident_ok(ident, err))
        return -1;
    /* No connection: the one that carried the connect released it. */
    if (a->stream == NULL) {
        strbuf_printf(err, "anvil disconnect: no connection to anvil");
        return -1;
    }
    return anvil_clnt_request(a, ANVIL_REQ_DISCONNECT, ident, NULL, NULL,
                              &broken, err);
}

int anvil_clnt_rate(ANVIL_CLNT **ap, const char *what, const char *addr,
                    int count, STRBUF *err)
{
    STRBUF *ident;
    int rate = -1;
    int n;

    if (*ap == NULL && (*ap = anvil_clnt_open(err)) == NULL)
        return -1;
    ident = strbuf_alloc(64);
    strbuf_printf(ident, "%s:%s:%s", what, server_service_name(), addr);
    if ((count ? anvil_clnt_event(*ap, ident->data, &rate, err)
         : anvil_clnt_lookup(*ap, ident->data, &n, &rate, err)) < 0)
        rate = -1;
    strbuf_free(&ident);
    return rate;
}
