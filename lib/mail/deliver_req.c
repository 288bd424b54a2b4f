/*
 * deliver_req - delivery requests, replies and the delivery log line
 * (see deliver_req.h and deliver_proto.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "mail/deliver_req.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/queue_file.h"
#include "mail/queue_id.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

#define DELIVER_QUEUE_NAME_MAX  32
#define DELIVER_USEC_DIGITS     6

/* --- the request structure -------------------------------------------- */

DELIVER_REQUEST *deliver_req_alloc(void)
{
    return xcalloc(1, sizeof(DELIVER_REQUEST));
}

void deliver_req_free(DELIVER_REQUEST **reqp)
{
    DELIVER_REQUEST *req = *reqp;

    if (req == NULL)
        return;
    for (size_t i = 0; i < req->rcpt_count; i++) {
        free(req->rcpts[i].address);
        free(req->rcpts[i].orig);
        free(req->rcpts[i].orcpt);
    }
    free(req->rcpts);
    free(req->queue_name);
    free(req->queue_id);
    free(req->sender);
    free(req->nexthop);
    free(req->dsn_envid);
    free(req->dsn_ret);
    free(req->client_name);
    free(req->client_address);
    xfree(reqp);
}

void deliver_req_add_rcpt(DELIVER_REQUEST *req, const char *address,
                          long offset, const char *orig, const char *orcpt,
                          int notify)
{
    DELIVER_RCPT *r;

    if (req->rcpt_count == req->rcpt_size) {
        req->rcpt_size = req->rcpt_size ? req->rcpt_size * 2 : 4;
        req->rcpts = xreallocarray(req->rcpts, req->rcpt_size,
                                   sizeof(DELIVER_RCPT));
    }
    r = &req->rcpts[req->rcpt_count++];
    r->address = xstrdup(address);
    r->offset = offset;
    r->orig = orig ? xstrdup(orig) : NULL;
    r->orcpt = orcpt ? xstrdup(orcpt) : NULL;
    r->notify = notify;
}

/* --- validation shared by both directions ----------------------------- */

/* Text that may reach a log line or a file: no control characters. */
static int deliver_text_ok(const char *text)
{
    for (const unsigned char *cp = (const unsigned char *) text; *cp; cp++)
        if (*cp < 0x20 || *cp == 0x7f)
            return 0;
    return 1;
}

/* A queue directory name: a plain file name of letters and digits. */
static int deliver_queue_name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > DELIVER_QUEUE_NAME_MAX)
        return 0;
    for (const char *cp = name; *cp; cp++)
        if (!((*cp >= 'a' && *cp <= 'z') || (*cp >= '0' && *cp <= '9')))
            return 0;
    return 1;
}

static int deliver_digits(const char *cp, size_t min, size_t max)
{
    size_t n = strspn(cp, "0123456789");

    return n >= min && n <= max ? (int) n : -1;
}

int deliver_dsn_valid(const char *dsn)
{
    const char *cp = dsn;
    int n;

    if (*cp != '2' && *cp != '4' && *cp != '5')
        return 0;
    cp++;
    if (*cp++ != '.' || (n = deliver_digits(cp, 1, 3)) < 0)
        return 0;
    cp += n;
    if (*cp++ != '.' || (n = deliver_digits(cp, 1, 3)) < 0)
        return 0;
    return cp[n] == 0;
}

/* Do status (0, 4NN, 5NN) and the class of dsn agree? */
static int deliver_status_ok(long status, const char *dsn)
{
    if (!deliver_dsn_valid(dsn))
        return 0;
    if (status == 0)
        return dsn[0] == '2';
    if (status >= 400 && status <= 499)
        return dsn[0] == '4';
    if (status >= 500 && status <= 599)
        return dsn[0] == '5';
    return 0;
}

/* "SEC.USEC" with exactly six digits of microseconds. */
static int deliver_parse_time(const char *text, struct timeval *tv)
{
    unsigned long sec;
    unsigned long usec;
    int n;

    if ((n = deliver_digits(text, 1, 19)) < 0 || text[n] != '.'
        || str_to_ulong_n(text, (size_t) n, LONG_MAX, &sec) < 0)
        return -1;
    text += n + 1;
    if (deliver_digits(text, DELIVER_USEC_DIGITS, DELIVER_USEC_DIGITS) < 0
        || text[DELIVER_USEC_DIGITS] != 0
        || str_to_ulong_n(text, DELIVER_USEC_DIGITS, 999999, &usec) < 0)
        return -1;
    tv->tv_sec = (time_t) sec;
    tv->tv_usec = (suseconds_t) usec;
    return 0;
}

static void deliver_put_time(IPC_MSG *m, const char *name,
                             const struct timeval *tv)
{
    STRBUF *buf = strbuf_alloc(32);

    strbuf_printf(buf, "%ld.%06ld", (long) tv->tv_sec, (long) tv->tv_usec);
    ipc_put_str(m, name, buf->data);
    strbuf_free(&buf);
}

/* --- writing the request (qmgr) --------------------------------------- */

static void deliver_put_opt(IPC_MSG *m, const char *name, const char *value)
{
    if (value)
        ipc_put_str(m, name, value);
}

int deliver_req_write(STREAM *s, const DELIVER_REQUEST *req)
{
    IPC_MSG *m = ipc_msg_alloc();
    int rc = 0;

    /* Our own request: refuse to send what the agent would refuse. */
    if (req->rcpt_count == 0 || req->rcpt_count > DELIVER_RCPT_MAX
        || !queue_id_valid(req->queue_id)
        || !deliver_queue_name_ok(req->queue_name))
        msg_panic("deliver_req_write: bad request for %s/%s (%zu recipients)",
                  req->queue_name, req->queue_id, req->rcpt_count);
    ipc_put_str(m, "req", "deliver");
    ipc_put_str(m, "queue_id", req->queue_id);
    ipc_put_str(m, "queue_name", req->queue_name);
    ipc_put_str(m, "sender", req->sender ? req->sender : "");
    ipc_put_str(m, "nexthop", req->nexthop ? req->nexthop : "");
    deliver_put_time(m, "arrival", &req->arrival);
    deliver_put_time(m, "active", &req->active);
    deliver_put_opt(m, "dsn_envid", req->dsn_envid);
    deliver_put_opt(m, "dsn_ret", req->dsn_ret);
    if (req->smtputf8)
        ipc_put_long(m, "smtputf8", 1);
    deliver_put_opt(m, "client_name", req->client_name);
    deliver_put_opt(m, "client_address", req->client_address);
    ipc_put_long(m, "rcpt_count", (long) req->rcpt_count);
    if (ipc_write(s, m) < 0)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < req->rcpt_count; i++) {
        const DELIVER_RCPT *r = &req->rcpts[i];

        ipc_msg_reset(m);
        ipc_put_str(m, "rcpt", r->address);
        ipc_put_long(m, "offset", r->offset);
        deliver_put_opt(m, "orig", r->orig);
        deliver_put_opt(m, "orcpt", r->orcpt);
        if (r->notify)
            ipc_put_long(m, "notify", r->notify);
        if (ipc_write(s, m) < 0)
            rc = -1;
    }
    ipc_msg_free(&m);
    return rc;
}

/* --- reading the request (agent) -------------------------------------- */

static int deliver_bad(STRBUF *err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int deliver_bad(STRBUF *err, const char *fmt, ...)
{
    va_list ap;

    strbuf_reset(err);
    va_start(ap, fmt);
    strbuf_vprintf_append(err, fmt, ap);
    va_end(ap);
    return -1;
}

/* Check the optional texts of a scanned record: NULL or clean. */
static int deliver_check_texts(const char *const *names,
                               const char *const *values, size_t n,
                               STRBUF *err)
{
    for (size_t i = 0; i < n; i++)
        if (values[i] && !deliver_text_ok(values[i]))
            return deliver_bad(err, "attribute \"%s\": control character "
                               "in text", names[i]);
    return 0;
}

static char *deliver_dup_opt(const char *value)
{
    return value ? xstrdup(value) : NULL;
}

static int deliver_req_scan_head(const IPC_MSG *m, DELIVER_REQUEST *req,
                                 long *count, STRBUF *err)
{
    const char *r = NULL, *id = NULL, *qname = NULL, *sender = NULL;
    const char *nexthop = NULL, *arrival = NULL, *active = NULL;
    const char *envid = NULL, *ret = NULL, *cname = NULL, *caddr = NULL;
    long utf8 = 0;
    IPC_SPEC spec[] = {
        {"req", IPC_STR, 1, &r}, {"queue_id", IPC_STR, 1, &id},
        {"queue_name", IPC_STR, 1, &qname}, {"sender", IPC_STR, 1, &sender},
        {"nexthop", IPC_STR, 1, &nexthop}, {"arrival", IPC_STR, 1, &arrival},
        {"active", IPC_STR, 1, &active}, {"dsn_envid", IPC_STR, 0, &envid},
        {"dsn_ret", IPC_STR, 0, &ret}, {"smtputf8", IPC_LONG, 0, &utf8},
        {"client_name", IPC_STR, 0, &cname},
        {"client_address", IPC_STR, 0, &caddr},
        {"rcpt_count", IPC_LONG, 1, count},
        IPC_SPEC_END,
    };
    const char *names[] = {"sender", "nexthop", "dsn_envid", "client_name",
                           "client_address"};
    const char *values[5];

    if (ipc_scan(m, spec, err) < 0)
        return -1;
    values[0] = sender;
    values[1] = nexthop;
    values[2] = envid;
    values[3] = cname;
    values[4] = caddr;
    if (strcmp(r, "deliver") != 0)
        return deliver_bad(err, "unexpected request \"%.100s\"", r);
    if (!queue_id_valid(id))
        return deliver_bad(err, "bad queue_id \"%.100s\"", id);
    if (!deliver_queue_name_ok(qname))
        return deliver_bad(err, "bad queue_name \"%.100s\"", qname);
    if (deliver_check_texts(names, values, 5, err) < 0)
        return -1;
    if (deliver_parse_time(arrival, &req->arrival) < 0)
        return deliver_bad(err, "bad arrival time \"%.100s\"", arrival);
    if (deliver_parse_time(active, &req->active) < 0)
        return deliver_bad(err, "bad active time \"%.100s\"", active);
    if (ret && strcmp(ret, "full") != 0 && strcmp(ret, "hdrs") != 0)
        return deliver_bad(err, "bad dsn_ret \"%.100s\"", ret);
    if (utf8 != 0 && utf8 != 1)
        return deliver_bad(err, "bad smtputf8 value");
    if (*count < 1 || *count > DELIVER_RCPT_MAX)
        return deliver_bad(err, "bad rcpt_count");
    req->queue_id = xstrdup(id);
    req->queue_name = xstrdup(qname);
    req->sender = xstrdup(sender);
    req->nexthop = xstrdup(nexthop);
    req->dsn_envid = deliver_dup_opt(envid);
    req->dsn_ret = deliver_dup_opt(ret);
    req->smtputf8 = (int) utf8;
    req->client_name = deliver_dup_opt(cname);
    req->client_address = deliver_dup_opt(caddr);
    return 0;
}

static int deliver_req_scan_rcpt(const IPC_MSG *m, DELIVER_REQUEST *req,
                                 STRBUF *err)
{
    const char *rcpt = NULL, *orig = NULL, *orcpt = NULL;
    long offset = 0;
    long notify = 0;
    IPC_SPEC spec[] = {
        {"rcpt", IPC_STR, 1, &rcpt}, {"offset", IPC_LONG, 1, &offset},
        {"orig", IPC_STR, 0, &orig}, {"orcpt", IPC_STR, 0, &orcpt},
        {"notify", IPC_LONG, 0, &notify},
        IPC_SPEC_END,
    };
    const char *names[] = {"rcpt", "orig", "orcpt"};
    const char *values[3];

    if (ipc_scan(m, spec, err) < 0)
        return -1;
    values[0] = rcpt;
    values[1] = orig;
    values[2] = orcpt;
    if (deliver_check_texts(names, values, 3, err) < 0)
        return -1;
    if (*rcpt == 0)
        return deliver_bad(err, "empty recipient");
    if (offset <= 0)
        return deliver_bad(err, "bad recipient offset");
    if (orcpt && strchr(orcpt, ';') == NULL)
        return deliver_bad(err, "bad orcpt \"%.100s\"", orcpt);
    if (notify < 0 || notify > (DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS
                                | DSN_NOTIFY_DELAY | DSN_NOTIFY_FAILURE))
        return deliver_bad(err, "bad notify value");
    for (size_t i = 0; i < req->rcpt_count; i++)
        if (req->rcpts[i].offset == offset)
            return deliver_bad(err, "duplicate recipient offset");
    deliver_req_add_rcpt(req, rcpt, offset, orig, orcpt, (int) notify);
    return 0;
}

int deliver_req_read(STREAM *s, DELIVER_REQUEST **req_r, STRBUF *err)
{
    DELIVER_REQUEST *req = deliver_req_alloc();
    IPC_MSG *m = ipc_msg_alloc();
    long count = 0;
    int rc;

    if ((rc = ipc_read(s, m, DELIVER_RECORD_MAX, err)) <= 0)
        goto done;
    rc = -1;
    if (deliver_req_scan_head(m, req, &count, err) < 0)
        goto done;
    for (long i = 0; i < count; i++) {
        int n = ipc_read(s, m, DELIVER_RECORD_MAX, err);

        if (n <= 0) {
            if (n == 0)
                strbuf_printf(err, "end of input after %ld of %ld "
                              "recipients", i, count);
            goto done;
        }
        if (deliver_req_scan_rcpt(m, req, err) < 0)
            goto done;
    }
    rc = 1;
done:
    ipc_msg_free(&m);
    if (rc == 1)
        *req_r = req;
    else
        deliver_req_free(&req);
    return rc;
}

/* --- replies ---------------------------------------------------------- */

DELIVER_REPLY *deliver_reply_alloc(void)
{
    DELIVER_REPLY *reply = xcalloc(1, sizeof(*reply));

    reply->reason = strbuf_alloc(128);
    reply->relay = strbuf_alloc(32);
    return reply;
}

void deliver_reply_free(DELIVER_REPLY **replyp)
{
    if (*replyp == NULL)
        return;
    strbuf_free(&(*replyp)->reason);
    strbuf_free(&(*replyp)->relay);
    xfree(replyp);
}

/* Replace control characters: replies end up in logs and bounces. */
static void deliver_clean(STRBUF *out, const char *text)
{
    strbuf_set(out, text);
    for (size_t i = 0; i < out->len; i++) {
        unsigned char ch = (unsigned char) out->data[i];

        if (ch < 0x20 || ch == 0x7f)
            out->data[i] = '?';
    }
}

int deliver_reply_write(STREAM *s, long offset, int status, const char *dsn,
                        const char *reason, const char *relay)
{
    IPC_MSG *m;
    STRBUF *buf;
    int rc;

    if (!deliver_status_ok(status, dsn))
        msg_panic("deliver_reply_write: status %d with dsn \"%s\"", status,
                  dsn);
    m = ipc_msg_alloc();
    buf = strbuf_alloc(128);
    ipc_put_long(m, "offset", offset);
    ipc_put_long(m, "status", status);
    ipc_put_str(m, "dsn", dsn);
    deliver_clean(buf, reason);
    ipc_put_str(m, "reason", buf->data);
    if (relay) {
        deliver_clean(buf, relay);
        ipc_put_str(m, "relay", buf->data);
    }
    rc = ipc_write(s, m);
    strbuf_free(&buf);
    ipc_msg_free(&m);
    return rc;
}

int deliver_reply_scan(const IPC_MSG *m, long expect_offset,
                       DELIVER_REPLY *reply, STRBUF *err)
{
    const char *dsn = NULL, *reason = NULL, *relay = NULL;
    long offset = 0;
    long status = -1;
    IPC_SPEC spec[] = {
        {"offset", IPC_LONG, 1, &offset}, {"status", IPC_LONG, 1, &status},
        {"dsn", IPC_STR, 1, &dsn}, {"reason", IPC_STR, 1, &reason},
        {"relay", IPC_STR, 0, &relay},
        IPC_SPEC_END,
    };

    if (ipc_scan(m, spec, err) < 0)
        return -1;
    if (offset != expect_offset) {
        strbuf_printf(err, "reply for offset %ld, expected %ld", offset,
                      expect_offset);
        return -1;
    }
    if (!deliver_status_ok(status, dsn)) {
        strbuf_printf(err, "bad status %ld with dsn \"%.20s\"", status, dsn);
        return -1;
    }
    if (!deliver_text_ok(reason) || (relay && !deliver_text_ok(relay))) {
        strbuf_set(err, "control character in reply text");
        return -1;
    }
    reply->offset = offset;
    reply->status = (int) status;
    snprintf(reply->dsn, sizeof(reply->dsn), "%s", dsn);
    strbuf_set(reply->reason, reason);
    strbuf_set(reply->relay, relay ? relay : "");
    return 0;
}

int deliver_reply_read(STREAM *s, long expect_offset, DELIVER_REPLY *reply,
                       STRBUF *err)
{
    IPC_MSG *m = ipc_msg_alloc();
    int rc;

    if ((rc = ipc_read(s, m, DELIVER_RECORD_MAX, err)) > 0)
        rc = deliver_reply_scan(m, expect_offset, reply, err) < 0 ? -1 : 1;
    ipc_msg_free(&m);
    return rc;
}

/* --- the delivery log line -------------------------------------------- */

#define MILLION     1000000L
#define SIG_DIGITS  2               /* significant digits below 1 s */
#define MAX_DECIMALS 2              /* Postfix delay_logging_resolution_limit */

/*
 * Postfix format_tv(): the resolution starts at 10^-MAX_DECIMALS and is
 * coarsened so that at most SIG_DIGITS significant digits are shown; the
 * value is rounded half up at that resolution and trailing zeros are
 * dropped.
 */
void deliver_format_delay(STRBUF *out, long sec, long usec)
{
    static const long pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    long ures = MILLION / pow10[MAX_DECIMALS];
    long wid = pow10[SIG_DIGITS];

    if (sec < 0 || usec < 0 || usec >= MILLION)
        sec = usec = 0;
    if (sec > 0) {
        long n;

        for (n = 1; sec >= n && n <= wid / 10; n *= 10)
            /* void */ ;
        ures = (MILLION / wid) * n;
    } else {
        while (usec >= wid * ures)
            ures *= 10;
    }
    if (ures > 1) {
        usec += ures / 2;
        if (usec >= MILLION) {
            sec += 1;
            usec -= MILLION;
        }
    }
    strbuf_printf_append(out, "%ld", sec);
    if (usec >= ures) {
        long rem = usec;

        strbuf_addch(out, '.');
        for (long n = MILLION / 10; rem >= ures && n > 0; n /= 10) {
            strbuf_addch(out, "0123456789"[rem / n]);
            rem %= n;
        }
    }
}

/* later - earlier, clamped at zero, into sec/usec. */
static void deliver_delta(const struct timeval *later,
                          const struct timeval *earlier, long *sec,
                          long *usec)
{
    long s = (long) later->tv_sec - (long) earlier->tv_sec;
    long u = (long) later->tv_usec - (long) earlier->tv_usec;

    while (u < 0) {
        u += MILLION;
        s -= 1;
    }
    while (u >= MILLION) {
        u -= MILLION;
        s += 1;
    }
    if (s < 0)
        s = u = 0;
    *sec = s;
    *usec = u;
}

static void deliver_put_delay(STRBUF *out, const char *label,
                              const struct timeval *later,
                              const struct timeval *earlier)
{
    long sec;
    long usec;

    deliver_delta(later, earlier, &sec, &usec);
    strbuf_cat(out, label);
    deliver_format_delay(out, sec, usec);
}

static const char *deliver_status_word(int status)
{
    return status == 0 ? "sent" : status < 500 ? "deferred" : "bounced";
}

void deliver_log_format(STRBUF *out, const DELIVER_REQUEST *req,
                        const char *to, const char *orig_to,
                        const char *relay, const DELIVER_STATS *stats,
                        int status, const char *dsn, const char *reason)
{
    struct timeval now;
    const struct timeval *xfer_start;

    if (stats->done.tv_sec > 0)
        now = stats->done;
    else
        gettimeofday(&now, NULL);
    strbuf_printf(out, "%s: to=<%s>", req->queue_id, to);
    if (orig_to && *orig_to && strcasecmp(orig_to, to) != 0)
        strbuf_printf_append(out, ", orig_to=<%s>", orig_to);
    strbuf_printf_append(out, ", relay=%s", relay);
    if (stats->conn_use > 1)
        strbuf_printf_append(out, ", conn_use=%d", stats->conn_use);
    deliver_put_delay(out, ", delay=", &now, &req->arrival);
    deliver_put_delay(out, ", delays=", &req->active, &req->arrival);
    deliver_put_delay(out, "/", &stats->handoff, &req->active);
    if (stats->conn_setup.tv_sec > 0) {
        deliver_put_delay(out, "/", &stats->conn_setup, &stats->handoff);
        xfer_start = &stats->conn_setup;
    } else {
        strbuf_cat(out, "/0");
        xfer_start = &stats->handoff;
    }
    deliver_put_delay(out, "/", &now, xfer_start);
    strbuf_printf_append(out, ", dsn=%s, status=%s (%s)", dsn,
                         deliver_status_word(status), reason);
    /* After the reason: log readers (pflogsumm) match up to status=. */
    if (stats->tls && *stats->tls)
        strbuf_printf_append(out, " tls=%s", stats->tls);
}

void deliver_log(const DELIVER_REQUEST *req, const char *to,
                 const char *orig_to, const char *relay,
                 const DELIVER_STATS *stats, int status, const char *dsn,
                 const char *reason)
{
    STRBUF *line = strbuf_alloc(256);

    deliver_log_format(line, req, to, orig_to, relay, stats, status, dsn,
                       reason);
    msg_info("%s", line->data);
    strbuf_free(&line);
}

void deliver_soft_bounce(int *status, char *dsn)
{
    if (*status >= 500 && *status <= 599) {
        *status -= 100;
        if (dsn[0] == '5')
            dsn[0] = '4';
    }
}

int deliver_done(STREAM *s, const DELIVER_REQUEST *req,
                 const DELIVER_RCPT *rcpt, const char *relay,
                 const DELIVER_STATS *stats, int status, const char *dsn,
                 const char *reason)
{
    char code[DELIVER_DSN_MAX];

    snprintf(code, sizeof(code), "%s", dsn);
    if (var_soft_bounce)
        deliver_soft_bounce(&status, code);
    deliver_log(req, rcpt->address, rcpt->orig, relay, stats, status, code,
                reason);
    return deliver_reply_write(s, rcpt->offset, status, code, reason, relay);
}
