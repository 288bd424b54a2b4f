/*
 * postern queue flush|delete|hold|release|requeue - change the queue
 * (postqueue -f, postsuper -d/-h/-H/-r).
 *
 * Every change is a rename or an unlink of one file, so each is atomic and
 * safe while master runs: a message qmgr is working on finishes its
 * current delivery attempt, and qmgr copes with the file having moved.
 * Reports go to stderr as "postern: ID: removed" and a total line, as
 * postsuper does, and each change is logged.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "mail/params.h"
#include "mail/queue_id.h"
#include "mail/showq.h"
#include "mail/trigger.h"
#include "postern_queue.h"
#include "util/argv.h"
#include "util/msg.h"
#include "util/stream.h"
#include "util/xmalloc.h"

typedef enum { ADMIN_DELETE, ADMIN_HOLD, ADMIN_RELEASE, ADMIN_REQUEUE }
ADMIN_OP;

/* The queues each operation looks in, and the words it reports with. */
static const struct {
    const char *name;
    const char *queues[6];
    const char *done;                   /* "removed" */
    const char *total;                  /* "Deleted" */
} admin_ops[] = {
    {"delete", {"maildrop", "incoming", "active", "deferred", "hold", NULL},
     "removed", "Deleted"},
    {"hold", {"incoming", "active", "deferred", NULL}, "placed on hold",
     "Placed on hold"},
    {"release", {"hold", NULL}, "released from hold", "Released from hold"},
    {"requeue", {"incoming", "active", "deferred", "hold", NULL}, "requeued",
     "Requeued"},
};

static void admin_usage(void)
{
    fprintf(stderr,
            "usage: postern queue flush\n"
            "       postern queue delete|hold|release|requeue ID|ALL|- "
            "[queue]\n");
    exit(2);
}

/* Remove the per-message logs that belong to a removed message. */
static void admin_remove_logs(const char *id)
{
    static const char *logs[] = {"defer", "bounce", "trace", NULL};
    STRBUF *path = strbuf_alloc(64);

    for (int i = 0; logs[i]; i++) {
        strbuf_printf(path, "%s/%s", logs[i], id);
        (void) unlink(path->data);
    }
    strbuf_free(&path);
}

/* Apply op to QUEUE/ID; 1 done, 0 not there, -1 error. */
static int admin_one(ADMIN_OP op, const char *queue, const char *id)
{
    STRBUF *path = strbuf_alloc(64);
    STRBUF *dest = strbuf_alloc(64);
    int rc = 0;

    if (showq_find(queue, id, path) <= 0)
        goto done;
    switch (op) {
    case ADMIN_DELETE:
        if (unlink(path->data) < 0) {
            rc = errno == ENOENT ? 0 : -1;
            goto done;
        }
        if (strcmp(queue, "maildrop") != 0)
            admin_remove_logs(id);
        break;
    case ADMIN_HOLD:
        strbuf_printf(dest, "hold/%s", id);
        if (rename(path->data, dest->data) < 0) {
            rc = errno == ENOENT ? 0 : -1;
            goto done;
        }
        break;
    case ADMIN_RELEASE:
        /* Back to deferred/, due now: qmgr retries it at once. */
        strbuf_printf(dest, "deferred/%s", id);
        if (rename(path->data, dest->data) < 0) {
            rc = errno == ENOENT ? 0 : -1;
            goto done;
        }
        (void) utimes(dest->data, NULL);
        break;
    case ADMIN_REQUEUE:
        /* incoming/: qmgr resolves every recipient again. */
        strbuf_printf(dest, "incoming/%s", id);
        if (strcmp(queue, "incoming") != 0
            && rename(path->data, dest->data) < 0) {
            rc = errno == ENOENT ? 0 : -1;
            goto done;
        }
        break;
    }
    rc = 1;
done:
    if (rc < 0)
        msg_warn("%s: %s: %m", id, admin_ops[op].name);
    strbuf_free(&path);
    strbuf_free(&dest);
    return rc;
}

/* Every ID in the queues op works on (or in the one queue named). */
static void admin_all(ADMIN_OP op, const char *only, ARGV *ids, ARGV *queues)
{
    for (int q = 0; admin_ops[op].queues[q]; q++) {
        const char *queue = admin_ops[op].queues[q];
        DIR *dp;
        struct dirent *de;

        if (only && strcmp(only, queue) != 0)
            continue;
        if ((dp = opendir(queue)) == NULL)
            continue;
        while ((de = readdir(dp)) != NULL) {
            if (!queue_id_valid(de->d_name))
                continue;
            argv_add(ids, de->d_name);
            argv_add(queues, queue);
        }
        closedir(dp);
    }
}

static int admin_run(ADMIN_OP op, int argc, char **argv)
{
    const char *only = argc > 2 ? argv[2] : NULL;
    ARGV *ids = argv_alloc(8);
    ARGV *queues = argv_alloc(8);
    long count = 0;
    int quiet;
    int status = 0;

    if (argc < 2 || argc > 3)
        admin_usage();
    if (only) {
        int ok = 0;

        for (int q = 0; admin_ops[op].queues[q]; q++)
            ok |= strcmp(only, admin_ops[op].queues[q]) == 0;
        if (!ok)
            msg_fatal_status(2, "%s: no such queue for %s", only,
                             admin_ops[op].name);
    }
    /* ALL (upper case, as postsuper wants), "-" for IDs on stdin. */
    quiet = strcmp(argv[1], "ALL") == 0;
    if (quiet) {
        admin_all(op, only, ids, queues);
    } else if (strcmp(argv[1], "-") == 0) {
        STREAM *in = stream_open(STDIN_FILENO, 0, 256);
        STRBUF *line = strbuf_alloc(64);

        while (stream_get_line(in, line) > 0) {
            strbuf_truncate(line, strcspn(line->data, " \t\r\n"));
            if (line->len)
                argv_add(ids, line->data);
        }
        strbuf_free(&line);
        stream_free(&in);
    } else {
        argv_add(ids, argv[1]);
    }
    for (size_t i = 0; i < ids->argc; i++) {
        const char *id = ids->argv[i];
        int rc = 0;

        if (!queue_id_valid(id)) {
            msg_warn("%s: not a queue ID", id);
            status = 1;
            continue;
        }
        if (quiet) {
            rc = admin_one(op, queues->argv[i], id);
        } else {
            for (int q = 0; admin_ops[op].queues[q] && rc == 0; q++)
                if (!only || strcmp(only, admin_ops[op].queues[q]) == 0)
                    rc = admin_one(op, admin_ops[op].queues[q], id);
        }
        if (rc > 0) {
            count++;
            if (!quiet)
                msg_info("%s: %s", id, admin_ops[op].done);
        } else if (rc < 0) {
            status = 1;
        }
    }
    if (count > 0 || !quiet)
        msg_info("%s: %ld message%s", admin_ops[op].total, count,
                 count == 1 ? "" : "s");
    if (count > 0 && op != ADMIN_DELETE && op != ADMIN_HOLD) {
        char t = op == ADMIN_RELEASE ? TRIGGER_FLUSH : TRIGGER_SCAN_INCOMING;

        (void) trigger_send("public", "qmgr", &t, 1);
    }
    argv_free(&ids);
    argv_free(&queues);
    return status;
}

int postern_queue_admin(int argc, char **argv)
{
    const char *error;
    char t = TRIGGER_FLUSH;

    if (msg_open_log(var_syslog_name, var_maillog_file, &error) < 0)
        msg_warn("open %s: %s", var_maillog_file, error);
    if (strcmp(argv[0], "flush") == 0) {
        if (argc != 1)
            admin_usage();
        /* Silent, as postqueue -f; a qmgr that is down finds it later. */
        (void) trigger_send("public", "qmgr", &t, 1);
        return 0;
    }
    for (size_t op = 0; op < sizeof(admin_ops) / sizeof(admin_ops[0]); op++)
        if (strcmp(argv[0], admin_ops[op].name) == 0)
            return admin_run((ADMIN_OP) op, argc, argv);
    admin_usage();
    return 2;
}
