/*
 * local - the local and virtual delivery agent (Postfix local(8) and
 * virtual(8) in one program).  See local(8) and local.h.
 *
 * The process runs as root (master.cf unpriv "n") and reads the queue
 * file itself; every mailbox, file and command is written or run by a
 * child process that has become the owner first (local_mailbox.c,
 * local_command.c), so that no mailbox is ever written as root.  Run by
 * an ordinary user (development, tests), it delivers as itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "local.h"
#include "mail/addr_canon.h"
#include "mail/dsn_log.h"
#include "mail/params.h"
#include "mail/server.h"
#include "util/msg.h"
#include "util/xmalloc.h"

LOCAL_TABLES local_tables;

/* --- results ---------------------------------------------------------- */

void local_result_set(LOCAL_RESULT *res, int status, const char *dsn,
                      const char *fmt, ...)
{
    va_list ap;

    res->status = status;
    snprintf(res->dsn, sizeof(res->dsn), "%s", dsn);
    strbuf_reset(res->reason);
    va_start(ap, fmt);
    strbuf_vprintf_append(res->reason, fmt, ap);
    va_end(ap);
}

/*
 * One final delivery of a recipient is over: log it (to= the address it
 * was made for, orig_to= what qmgr asked for) and fold it into the reply:
 * any temporary failure makes the recipient wait for a retry, else any
 * permanent failure bounces it, else it was delivered.
 */
void local_branch_done(LOCAL_RCPT *lrc, const char *to,
                       const LOCAL_RESULT *res)
{
    LOCAL_RESULT *total = &lrc->total;
    int status = res->status;
    char dsn[DELIVER_DSN_MAX];

    snprintf(dsn, sizeof(dsn), "%s", res->dsn);
    if (var_soft_bounce)
        deliver_soft_bounce(&status, dsn);
    deliver_log(lrc->lr->req, to, lrc->orig, lrc->lr->relay,
                &lrc->lr->stats, status, dsn, res->reason->data);
    if (lrc->branches++ == 0
        || (status >= 400 && status < 500 && !(total->status >= 400
                                                && total->status < 500))
        || (status >= 500 && total->status == 0)) {
        total->status = status;
        snprintf(total->dsn, sizeof(total->dsn), "%s", dsn);
        strbuf_set(total->reason, res->reason->data);
    }
}

void local_branch(LOCAL_RCPT *lrc, const char *to, int status,
                  const char *dsn, const char *fmt, ...)
{
    LOCAL_RESULT res;
    va_list ap;

    res.status = status;
    snprintf(res.dsn, sizeof(res.dsn), "%s", dsn);
    res.reason = strbuf_alloc(128);
    va_start(ap, fmt);
    strbuf_vprintf_append(res.reason, fmt, ap);
    va_end(ap);
    local_branch_done(lrc, to, &res);
    strbuf_free(&res.reason);
}

/* --- message content -------------------------------------------------- */

/* Return-Path:, X-Original-To:, Delivered-To: (Postfix's order). */
void local_prepend(STRBUF *out, const LOCAL_RCPT *lrc)
{
    STRBUF *q = strbuf_alloc(128);
    const char *sender = lrc->lr->req->sender;

    strbuf_reset(out);
    if (*sender)
        dsn_log_quote_address(q, sender);
    else
        strbuf_reset(q);
    strbuf_printf_append(out, "Return-Path: <%s>\n", q->data);
    dsn_log_quote_address(q, lrc->orig);
    strbuf_printf_append(out, "X-Original-To: %s\n", q->data);
    dsn_log_quote_address(q, lrc->rcpt->address);
    strbuf_printf_append(out, "Delivered-To: %s\n", q->data);
    strbuf_free(&q);
}

/* The MAILDIR_SOURCE_FN over the queue file; ctx is the LOCAL_REQ. */
int local_content(void *ctx, MAILDIR_PUT_FN put, void *put_ctx, STRBUF *err)
{
    LOCAL_REQ *lr = ctx;

    return qfile_read_content(lr->qfd, lr->env, put, put_ctx, err);
}

int local_is_mydestination(const char *domain, LOCAL_RESULT *res)
{
    int rc = match_list_domain(local_tables.mydestination, domain);

    if (rc == MATCH_ERROR) {
        msg_warn("mydestination lookup for %s: %s", domain,
                 match_list_error(local_tables.mydestination));
        local_result_set(res, 450, "4.3.0", "mydestination lookup failure");
    }
    return rc;
}

/* --- Delivered-To: headers -------------------------------------------- */

typedef struct LOCAL_HDR_SCAN {
    LOCAL_REQ *lr;
    STRBUF *line;                       /* the current physical line */
    STRBUF *header;                     /* a Delivered-To: being unfolded */
    long    bytes;
    int     in_delivered;
    int     finished;
} LOCAL_HDR_SCAN;

static void local_hdr_flush(LOCAL_HDR_SCAN *hs)
{
    if (hs->in_delivered) {
        const char *cp = hs->header->data;
        STRBUF *value = strbuf_alloc(64);

        cp += strspn(cp, " \t\n");
        strbuf_set(value, cp);
        /* Unfold, and trim the end. */
        for (size_t i = 0; i < value->len; i++)
            if (value->data[i] == '\n')
                value->data[i] = ' ';
        strbuf_trim_right(value);
        strbuf_lower(value);
        if (value->len)
            htable_enter(hs->lr->delivered, value->data, NULL);
        strbuf_free(&value);
    }
    hs->in_delivered = 0;
    strbuf_reset(hs->header);
}

/* One header line (with its newline): 0, or -1 at the end of headers. */
static int local_hdr_line(LOCAL_HDR_SCAN *hs, const char *line, size_t len)
{
    if ((line[0] == ' ' || line[0] == '\t') && len > 1) {
        if (hs->in_delivered)
            strbuf_append(hs->header, line, len);
        return 0;
    }
    local_hdr_flush(hs);
    if (len == 1 || memchr(line, ':', len) == NULL)
        return -1;                      /* blank line or body */
    if (len > 13 && strncasecmp(line, "Delivered-To:", 13) == 0) {
        hs->in_delivered = 1;
        strbuf_append(hs->header, line + 13, len - 13);
    }
    return 0;
}

static int local_hdr_put(const char *data, size_t len, void *ctx)
{
    LOCAL_HDR_SCAN *hs = ctx;

    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t) (nl - data) + 1 : len;

        strbuf_append(hs->line, data, take);
        data += take;
        len -= take;
        hs->bytes += (long) take;
        if (nl && local_hdr_line(hs, hs->line->data, hs->line->len) < 0) {
            hs->finished = 1;
            return -1;
        }
        if (nl)
            strbuf_reset(hs->line);
        if (hs->bytes > var_header_size_limit) {
            hs->finished = 1;
            return -1;
        }
    }
    return 0;
}

/* Collect the Delivered-To: values of the primary header section. */
static int local_read_delivered(LOCAL_REQ *lr, STRBUF *err)
{
    LOCAL_HDR_SCAN hs;
    int rc;

    memset(&hs, 0, sizeof(hs));
    hs.lr = lr;
    hs.line = strbuf_alloc(256);
    hs.header = strbuf_alloc(64);
    rc = qfile_read_content(lr->qfd, lr->env, local_hdr_put, &hs, err);
    if (hs.finished)
        rc = 0;
    else if (rc == 0)
        local_hdr_flush(&hs);
    strbuf_free(&hs.line);
    strbuf_free(&hs.header);
    return rc;
}

/* --- one request ------------------------------------------------------ */

/* Open and read the queue file: 0, or -1 with the reason in res. */
static int local_open_queue_file(LOCAL_REQ *lr, LOCAL_RESULT *res)
{
    STRBUF *path = strbuf_alloc(64);
    STRBUF *err = strbuf_alloc(64);
    int rc = -1;

    strbuf_printf(path, "%s/%s", lr->req->queue_name, lr->req->queue_id);
    if ((lr->qfd = open(path->data, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        msg_warn("%s: open queue file %s: %m", lr->req->queue_id,
                 path->data);
        local_result_set(res, 450, "4.3.0", "queue file unavailable: %s",
                         strerror(errno));
    } else if (qenv_read_fd(lr->qfd, lr->req->queue_id, &lr->env, err) < 0
               || local_read_delivered(lr, err) < 0) {
        msg_warn("%s", err->data);
        local_result_set(res, 450, "4.3.0", "corrupt queue file");
    } else {
        rc = 0;
    }
    strbuf_free(&path);
    strbuf_free(&err);
    return rc;
}

/* Is the recipient in the queue file where qmgr says it is? */
static int local_rcpt_in_file(const LOCAL_REQ *lr, const DELIVER_RCPT *rcpt)
{
    for (size_t i = 0; i < lr->env->nrcpt; i++)
        if (lr->env->rcpts[i].offset == (off_t) rcpt->offset)
            return strcasecmp(lr->env->rcpts[i].address, rcpt->address) == 0;
    return 0;
}

static void local_deliver_rcpt(LOCAL_RCPT *lrc)
{
    const char *address = lrc->rcpt->address;
    const char *domain = addr_domain(address);
    LOCAL_RESULT res;
    ARGV *chain = argv_alloc(4);
    int mine;

    res.reason = strbuf_alloc(64);
    if (!local_rcpt_in_file(lrc->lr, lrc->rcpt)) {
        msg_warn("%s: no recipient <%s> at offset %ld of the queue file",
                 lrc->lr->req->queue_id, address, lrc->rcpt->offset);
        local_branch(lrc, address, 450, "4.3.0", "queue file mismatch");
    } else if (*domain == 0
               || (mine = local_is_mydestination(domain, &res)) == MATCH_YES) {
        local_deliver_address(lrc, address, 0, chain);
    } else if (mine == MATCH_ERROR) {
        local_branch_done(lrc, address, &res);
    } else {
        switch (match_list_domain(local_tables.vmailbox_domains, domain)) {
        case MATCH_YES:
            local_deliver_virtual(lrc, address);
            break;
        case MATCH_ERROR:
            msg_warn("virtual_mailbox_domains lookup for %s: %s", domain,
                     match_list_error(local_tables.vmailbox_domains));
            local_branch(lrc, address, 450, "4.3.0",
                         "virtual_mailbox_domains lookup failure");
            break;
        default:
            /* Routed here by transport_maps: the local part decides. */
            local_deliver_address(lrc, address, 0, chain);
            break;
        }
    }
    local_forward_flush(lrc);
    /* An alias whose :include: file lists nobody, say. */
    if (lrc->branches == 0)
        local_branch(lrc, address, 0, "2.0.0", "alias expanded to nothing");
    argv_free(&chain);
    strbuf_free(&res.reason);
}

static void local_serve(SERVER_CLIENT *client, const char *service,
                        char **argv)
{
    STREAM *s = stream_open(client->fd, var_ipc_timeout, 4096);
    STRBUF *err = strbuf_alloc(128);
    LOCAL_REQ lr;
    LOCAL_RESULT fail;
    int rc;

    (void) argv;
    memset(&lr, 0, sizeof(lr));
    lr.qfd = -1;
    lr.relay = service;
    fail.reason = strbuf_alloc(64);
    gettimeofday(&lr.stats.handoff, NULL);
    if ((rc = deliver_req_read(s, &lr.req, err)) <= 0) {
        if (rc < 0)
            msg_warn("bad delivery request: %s", err->data);
        goto done;
    }
    lr.delivered = htable_alloc(8);
    if (local_open_queue_file(&lr, &fail) < 0) {
        /* Nothing can be delivered: every recipient waits. */
        for (size_t i = 0; i < lr.req->rcpt_count; i++)
            if (deliver_done(s, lr.req, &lr.req->rcpts[i], lr.relay,
                             &lr.stats, fail.status, fail.dsn,
                             fail.reason->data) < 0)
                break;
        goto done;
    }
    for (size_t i = 0; i < lr.req->rcpt_count; i++) {
        LOCAL_RCPT lrc;
        const DELIVER_RCPT *rcpt = &lr.req->rcpts[i];

        memset(&lrc, 0, sizeof(lrc));
        lrc.lr = &lr;
        lrc.rcpt = rcpt;
        lrc.orig = rcpt->orig && *rcpt->orig ? rcpt->orig : rcpt->address;
        lrc.done = htable_alloc(8);
        lrc.forward = argv_alloc(4);
        lrc.total.reason = strbuf_alloc(64);
        local_deliver_rcpt(&lrc);
        rc = deliver_reply_write(s, rcpt->offset, lrc.total.status,
                                 lrc.total.dsn, lrc.total.reason->data,
                                 lr.relay);
        htable_free(&lrc.done, NULL);
        argv_free(&lrc.forward);
        strbuf_free(&lrc.total.reason);
        if (rc < 0) {
            msg_warn("%s: lost connection to the queue manager",
                     lr.req->queue_id);
            break;
        }
    }
done:
    if (lr.qfd >= 0)
        close(lr.qfd);
    qenv_free(&lr.env);
    htable_free(&lr.delivered, NULL);
    deliver_req_free(&lr.req);
    strbuf_free(&fail.reason);
    strbuf_free(&err);
    stream_free(&s);
}

/*
 * Tables are opened as root, before anything else; the process stays
 * root.  The "virtual" service logs as postern/virtual, as Postfix's
 * virtual(8) does.
 */
static void local_pre_init(const char *service, char **argv)
{
    (void) argv;
    if (strcmp(service, "virtual") == 0) {
        const char *error;

        msg_init("virtual", 0);
        msg_stderr(isatty(STDERR_FILENO));
        if (msg_open_log(var_syslog_name, var_maillog_file, &error) < 0)
            msg_fatal("open %s: %s", var_maillog_file, error);
    }
    local_tables.alias_maps = maps_open("alias_maps", var_alias_maps,
                                        DICT_FLAG_DEFAULT);
    vmailbox_maps_open(&local_tables.vmailbox);
    local_tables.mydestination = match_list_domains("mydestination",
                                                    var_mydestination);
    local_tables.vmailbox_domains =
        match_list_domains("virtual_mailbox_domains",
                           var_virtual_mailbox_domains);
}

static void local_pre_exit(void)
{
    maps_free(&local_tables.alias_maps);
    vmailbox_maps_free(&local_tables.vmailbox);
    match_list_free(&local_tables.mydestination);
    match_list_free(&local_tables.vmailbox_domains);
}

int main(int argc, char **argv)
{
    static const SERVER_OPS ops = {
        .kind = SERVER_SINGLE,
        .pre_init = local_pre_init,
        .serve = local_serve,
        .pre_exit = local_pre_exit,
    };

    server_main(argc, argv, &ops);
}
