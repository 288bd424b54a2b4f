/*
 * showq - the mail queue listing service (public/showq), for users who
 * may not read the queue themselves: "postern queue list" asks it.
 *
 *   master.cf:  showq unix n - n - - showq
 *
 * One request per connection (see showq.h for the records): the listing
 * comes from lib/mail/showq.c, so it is the same as when the command
 * reads the queue itself.  The service runs as mail_owner; its port is
 * open to local users (the setgid group), so it reads a small, strictly
 * checked request under a deadline and takes nothing else from them.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail/ipc.h"
#include "mail/server.h"
#include "mail/showq.h"
#include "util/msg.h"
#include "util/stream.h"

#define SHOWQ_TIMEOUT   300             /* seconds per read or write */

typedef struct SHOWQ_CLIENT {
    STREAM *stream;
    IPC_MSG *msg;
    int     failed;                     /* the client went away */
} SHOWQ_CLIENT;

/* Send a chunk of the listing, in records of at most SHOWQ_CHUNK_MAX. */
static int showq_send_data(const char *data, size_t len, void *ctx)
{
    SHOWQ_CLIENT *c = ctx;

    while (len > 0 && !c->failed) {
        size_t n = len > SHOWQ_CHUNK_MAX ? SHOWQ_CHUNK_MAX : len;

        ipc_msg_reset(c->msg);
        ipc_put_data(c->msg, "data", data, n);
        if (ipc_write(c->stream, c->msg) < 0)
            c->failed = 1;
        data += n;
        len -= n;
    }
    return c->failed ? -1 : 0;
}

/* A skipped file: into our log, and to the user's stderr. */
static void showq_send_warning(const char *text, void *ctx)
{
    SHOWQ_CLIENT *c = ctx;

    msg_warn("%s", text);
    if (c->failed)
        return;
    ipc_msg_reset(c->msg);
    ipc_put_str(c->msg, "warning", text);
    if (ipc_write(c->stream, c->msg) < 0)
        c->failed = 1;
}

static void showq_reply(SHOWQ_CLIENT *c, int status, const char *reason)
{
    if (c->failed)
        return;
    ipc_msg_reset(c->msg);
    ipc_put_long(c->msg, "status", status);
    if (reason)
        ipc_put_str(c->msg, "reason", reason);
    if (ipc_write(c->stream, c->msg) < 0)
        c->failed = 1;
}

static void showq_serve(SERVER_CLIENT *client, const char *service,
                        char **argv)
{
    SHOWQ_CLIENT c = {stream_open(client->fd, SHOWQ_TIMEOUT, 1024),
                      ipc_msg_alloc(), 0};
    SHOWQ_OUTPUT out = {showq_send_data, showq_send_warning, &c};
    STRBUF *err = strbuf_alloc(128);
    const char *request = NULL;
    const char *format = NULL;
    IPC_SPEC spec[] = {
        {"request", IPC_STR, 1, &request},
        {"format", IPC_STR, 0, &format},
        IPC_SPEC_END,
    };
    int fmt = SHOWQ_TEXT;
    int rc;

    (void) service;
    (void) argv;
    if ((rc = ipc_read(c.stream, c.msg, SHOWQ_REQUEST_MAX, err)) <= 0) {
        if (rc < 0)
            msg_warn("read request: %s", err->data);
    } else if (ipc_scan(c.msg, spec, err) < 0) {
        msg_warn("bad request: %s", err->data);
        showq_reply(&c, 1, "bad request");
    } else if (strcmp(request, SHOWQ_REQ_LIST) != 0) {
        msg_warn("unknown request: %.100s", request);
        showq_reply(&c, 1, "unknown request");
    } else if (format && strcmp(format, "text") != 0
               && strcmp(format, "json") != 0) {
        msg_warn("unknown format: %.100s", format);
        showq_reply(&c, 1, "unknown format");
    } else {
        if (format && strcmp(format, "json") == 0)
            fmt = SHOWQ_JSON;
        if (showq_list(fmt, &out, err) < 0) {
            if (!c.failed)
                msg_warn("%s", err->data);
            showq_reply(&c, 1, err->data);
        } else {
            showq_reply(&c, 0, NULL);
        }
    }
    ipc_msg_free(&c.msg);
    stream_free(&c.stream);
    strbuf_free(&err);
}

static void showq_pre_init(const char *service, char **argv)
{
    (void) service;
    if (argv[0])
        msg_fatal("unexpected command-line argument: %s", argv[0]);
    /* The zone file must be read before a chroot hides it. */
    tzset();
}

int main(int argc, char **argv)
{
    static const SERVER_OPS ops = {
        .kind = SERVER_SINGLE,
        .pre_init = showq_pre_init,
        .serve = showq_serve,
    };

    server_main(argc, argv, &ops);
}
