/*
 * local_forward - mail for aliases that name other domains leaves as a
 * new message through cleanup (Postfix forward.c): the original sender,
 * the addresses as recipients (with the original recipient's DSN ORCPT
 * and NOTIFY), a Delivered-To: header for the recipient we delivered to,
 * then the original content.  One message for all the addresses one
 * recipient expanded to; each address is logged "forwarded as NEWID".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local.h"
#include "mail/cleanup_proto.h"
#include "mail/dsn_log.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/queue_id.h"
#include "util/msg.h"
#include "util/xmalloc.h"

typedef struct LOCAL_FWD {
    STREAM *s;
    IPC_MSG *m;
} LOCAL_FWD;

/* Content chunks, at most CLEANUP_CHUNK_MAX bytes per record. */
static int local_forward_put(const char *data, size_t len, void *ctx)
{
    LOCAL_FWD *fw = ctx;

    while (len > 0) {
        size_t n = len > CLEANUP_CHUNK_MAX ? CLEANUP_CHUNK_MAX : len;

        ipc_msg_reset(fw->m);
        ipc_put_str(fw->m, "req", "data");
        ipc_put_data(fw->m, "data", data, n);
        if (ipc_write(fw->s, fw->m) < 0)
            return -1;
        data += n;
        len -= n;
    }
    return 0;
}

/*
 * cleanup's answer: 0 with the queue ID, or the failure in res (its own
 * 4NN/5NN answer, or 4.3.0 when the conversation failed).
 */
static int local_forward_reply(LOCAL_FWD *fw, STRBUF *queue_id,
                               LOCAL_RESULT *res)
{
    const char *id = NULL, *dsn = NULL, *reason = NULL;
    long status = -1;
    long discarded = 0;
    IPC_SPEC spec[] = {
        {"status", IPC_LONG, 1, &status}, {"queue_id", IPC_STR, 0, &id},
        {"dsn", IPC_STR, 0, &dsn}, {"reason", IPC_STR, 0, &reason},
        {"discarded", IPC_LONG, 0, &discarded},
        IPC_SPEC_END,
    };
    STRBUF *err = strbuf_alloc(64);
    int rc = -1;
    int n;

    if ((n = ipc_read(fw->s, fw->m, CLEANUP_RECORD_MAX, err)) <= 0
        || ipc_scan(fw->m, spec, err) < 0) {
        msg_warn("cleanup service: %s", n == 0 ? "connection closed"
                 : err->data);
        local_result_set(res, 450, "4.3.0", "mail forwarding failed: "
                         "cleanup service unavailable");
    } else if (status == 0 && id && queue_id_valid(id)) {
        strbuf_set(queue_id, id);
        rc = 0;
    } else if (status >= 400 && status <= 599 && dsn
               && deliver_dsn_valid(dsn) && *dsn == '0' + status / 100) {
        local_result_set(res, (int) status, dsn, "mail forwarding failed: "
                         "%s", reason ? reason : "rejected by cleanup");
    } else {
        msg_warn("cleanup service: bad reply (status %ld)", status);
        local_result_set(res, 450, "4.3.0", "mail forwarding failed: "
                         "cleanup service error");
    }
    strbuf_free(&err);
    return rc;
}

static int local_forward_send(LOCAL_RCPT *lrc, STRBUF *queue_id,
                              LOCAL_RESULT *res)
{
    const DELIVER_REQUEST *req = lrc->lr->req;
    const DELIVER_RCPT *rcpt = lrc->rcpt;
    STRBUF *err = strbuf_alloc(64);
    STRBUF *hdr = strbuf_alloc(128);
    LOCAL_FWD fw;
    int fd;
    int rc = -1;

    memset(&fw, 0, sizeof(fw));
    if ((fd = ipc_connect(CLEANUP_CLASS, CLEANUP_SERVICE, err)) < 0) {
        msg_warn("%s", err->data);
        local_result_set(res, 450, "4.3.0", "mail forwarding failed: "
                         "cleanup service unavailable");
        goto done;
    }
    fw.s = stream_open(fd, var_ipc_timeout, 4096);
    fw.m = ipc_msg_alloc();
    ipc_put_str(fw.m, "req", "open");
    ipc_put_str(fw.m, "origin", CLEANUP_ORIGIN_LOCAL);
    ipc_put_str(fw.m, "sender", req->sender);
    if (req->dsn_envid)
        ipc_put_str(fw.m, "dsn_envid", req->dsn_envid);
    if (req->dsn_ret)
        ipc_put_str(fw.m, "dsn_ret", req->dsn_ret);
    if (req->smtputf8)
        ipc_put_str(fw.m, "smtputf8", "1");
    if (ipc_write(fw.s, fw.m) < 0) {
        local_result_set(res, 450, "4.3.0", "mail forwarding failed: "
                         "cleanup service unavailable");
        goto done;
    }
    if (local_forward_reply(&fw, queue_id, res) < 0)
        goto done;
    for (size_t i = 0; i < lrc->forward->argc; i++) {
        ipc_msg_reset(fw.m);
        ipc_put_str(fw.m, "req", "rcpt");
        ipc_put_str(fw.m, "rcpt", lrc->forward->argv[i]);
        if (rcpt->orcpt)
            ipc_put_str(fw.m, "orcpt", rcpt->orcpt);
        if (rcpt->notify)
            ipc_put_long(fw.m, "notify", rcpt->notify);
        if (ipc_write(fw.s, fw.m) < 0)
            break;
    }
    dsn_log_quote_address(hdr, rcpt->address);
    strbuf_printf(err, "Delivered-To: %s\n", hdr->data);
    if (local_forward_put(err->data, err->len, &fw) < 0
        || qfile_read_content(lrc->lr->qfd, lrc->lr->env, local_forward_put,
                              &fw, err) < 0) {
        local_result_set(res, 450, "4.3.0", "mail forwarding failed: %s",
                         stream_error(fw.s) || stream_timed_out(fw.s)
                         ? "cannot write to the cleanup service"
                         : "error reading message");
        goto done;                      /* closing aborts the message */
    }
    ipc_msg_reset(fw.m);
    ipc_put_str(fw.m, "req", "end");
    if (ipc_write(fw.s, fw.m) < 0) {
        local_result_set(res, 450, "4.3.0", "mail forwarding failed: "
                         "cleanup service unavailable");
        goto done;
    }
    rc = local_forward_reply(&fw, queue_id, res);
done:
    if (fw.s)
        stream_close(&fw.s);
    ipc_msg_free(&fw.m);
    strbuf_free(&err);
    strbuf_free(&hdr);
    return rc;
}

void local_forward_flush(LOCAL_RCPT *lrc)
{
    STRBUF *queue_id = strbuf_alloc(QUEUE_ID_MAX + 1);
    LOCAL_RESULT res;

    if (lrc->forward->argc == 0) {
        strbuf_free(&queue_id);
        return;
    }
    res.reason = strbuf_alloc(64);
    if (local_forward_send(lrc, queue_id, &res) == 0)
        local_result_set(&res, 0, "2.0.0", "forwarded as %s",
                         queue_id->data);
    for (size_t i = 0; i < lrc->forward->argc; i++)
        local_branch_done(lrc, lrc->forward->argv[i], &res);
    argv_truncate(lrc->forward, 0);
    strbuf_free(&res.reason);
    strbuf_free(&queue_id);
}
