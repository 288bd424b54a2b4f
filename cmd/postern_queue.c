/*
 * postern queue - look at the mail queue.
 *
 *   postern queue list [-j|--json]     mailq / postqueue -p (-j: postqueue -j)
 *   postern queue show [-ehb] ID ...   postcat -q ID
 *
 * "list" reads the queue itself when it may (root, mail_owner, or the
 * owner of a development instance) and asks the showq service
 * (public/showq) otherwise; both print the same bytes (lib/mail/showq.c).
 * "show" reads queue files and needs the rights to.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "postern.h"
#include "postern_queue.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/showq.h"
#include "util/msg.h"
#include "util/stream.h"

#define QUEUE_SHOWQ_TIMEOUT 600         /* seconds per read from showq */

static void queue_usage(void)
{
    fprintf(stderr,
            "usage: postern queue list [-j|--json]\n"
            "       postern queue show [-e] [-h] [-b] queue_id ...\n"
            "       postern queue flush\n"
            "       postern queue delete|hold|release|requeue ID|ALL|- "
            "[queue]\n");
    exit(2);
}

/* Write all of data to stdout; -1 when the reader went away. */
static int queue_write_stdout(const char *data, size_t len, void *ctx)
{
    (void) ctx;
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

/*
 * May we read the queue ourselves?  Every directory the listing reads
 * must open; one that does not exist is fine (an empty queue).
 */
static int queue_readable(void)
{
    static const char *const extra[] = {"defer", NULL};
    const char *const *lists[] = {showq_queues, extra};

    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        for (const char *const *qp = lists[l]; *qp; qp++) {
            DIR *d = opendir(*qp);

            if (d != NULL)
                closedir(d);
            else if (errno != ENOENT)
                return 0;
        }
    }
    return 1;
}

/* Ask public/showq; its records are checked strictly. */
static int queue_list_showq(int format)
{
    STRBUF *err = strbuf_alloc(128);
    IPC_MSG *m = ipc_msg_alloc();
    STREAM *s;
    int fd;
    int rc;

    /*
     * As postqueue: no permission is not "the mail system is down" (the
     * command lacks the setgid_group that public/ is open to).
     */
    if ((fd = ipc_connect(SHOWQ_CLASS, SHOWQ_SERVICE, err)) < 0) {
        if (errno == EACCES || errno == EPERM)
            msg_fatal_status(EX_SOFTWARE, "Connect to the %s %s service: %m",
                             var_mail_name, SHOWQ_SERVICE);
        if (msg_verbose)
            msg_info("%s", err->data);
        msg_fatal_status(EX_UNAVAILABLE,
                         "Queue report unavailable - mail system is down");
    }
    s = stream_open(fd, QUEUE_SHOWQ_TIMEOUT, 1024);    /* reads no lines */
    ipc_put_str(m, "request", SHOWQ_REQ_LIST);
    ipc_put_str(m, "format", format == SHOWQ_JSON ? "json" : "text");
    if (ipc_write(s, m) < 0)
        msg_fatal_status(EX_UNAVAILABLE, "Queue report unavailable - "
                         "mail system is down (write to %s/%s: %m)",
                         SHOWQ_CLASS, SHOWQ_SERVICE);
    for (;;) {
        const IPC_ATTR *data = NULL;
        const char *warning = NULL;
        const char *reason = NULL;
        long status = -1;
        IPC_SPEC spec[] = {
            {"data", IPC_DATA, 0, &data},
            {"warning", IPC_STR, 0, &warning},
            {"status", IPC_LONG, 0, &status},
            {"reason", IPC_STR, 0, &reason},
            IPC_SPEC_END,
        };

        if ((rc = ipc_read(s, m, SHOWQ_RECORD_MAX, err)) <= 0)
            msg_fatal_status(EX_SOFTWARE, "showq service: %s",
                             rc < 0 ? err->data : "connection lost");
        if (ipc_scan(m, spec, err) < 0 || m->count != 1 + (reason != NULL))
            msg_fatal_status(EX_SOFTWARE, "malformed showq server response");
        if (data != NULL) {
            if (queue_write_stdout(data->value, data->len, NULL) < 0)
                break;                  /* like postqueue: EPIPE is fine */
        } else if (warning != NULL) {
            msg_warn("%s", warning);
        } else if (status == 0 && reason == NULL) {
            break;
        } else if (status > 0) {
            msg_fatal_status(EX_SOFTWARE, "showq service: %s",
                             reason ? reason : "failed");
        } else {
            msg_fatal_status(EX_SOFTWARE, "malformed showq server response");
        }
    }
    stream_close(&s);
    ipc_msg_free(&m);
    strbuf_free(&err);
    return 0;
}

static int queue_list(int argc, char **argv)
{
    SHOWQ_OUTPUT out = {queue_write_stdout, NULL, NULL};
    STRBUF *err;
    int format = SHOWQ_TEXT;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-j") == 0 || strcmp(argv[i], "--json") == 0)
            format = SHOWQ_JSON;
        else
            queue_usage();
    }
    if (!queue_readable())
        return queue_list_showq(format);
    err = strbuf_alloc(128);
    if ((rc = showq_list(format, &out, err)) < 0
        && strcmp(err->data, "output write error") != 0)
        msg_fatal_status(EX_SOFTWARE, "%s", err->data);
    strbuf_free(&err);
    return 0;
}

int postern_queue_main(int argc, char **argv, const char *config_dir)
{
    if (argc < 2)
        queue_usage();
    params_load(config_dir, NULL, 0);
    if (chdir(var_queue_directory) < 0)
        msg_fatal("chdir %s: %m", var_queue_directory);
    /* A closed pipe ends the output quietly, as with postqueue. */
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[1], "list") == 0)
        return queue_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0)
        return postern_queue_show(argc - 1, argv + 1);
    if (strcmp(argv[1], "flush") == 0 || strcmp(argv[1], "delete") == 0
        || strcmp(argv[1], "hold") == 0 || strcmp(argv[1], "release") == 0
        || strcmp(argv[1], "requeue") == 0)
        return postern_queue_admin(argc - 1, argv + 1);
    queue_usage();
    return 2;
}
