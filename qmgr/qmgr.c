/*
 * qmgr - the queue manager: one event-driven process that moves mail from
 * incoming/ (and, when due, deferred/) into active/, hands each recipient
 * to its delivery agent, and defers, bounces or removes each message.
 *
 * Triggers on public/qmgr: "A" new mail in incoming/ (from cleanup), "W"
 * master's wakeup, "F" retry all deferred mail now (postern queue flush).
 * deferred/ is scanned every queue_run_delay; a file is due when its
 * modification time (set to the next retry time when it was deferred) has
 * passed.  At start, files left in active/ by a crash go back to
 * incoming/.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mail/params.h"
#include "mail/queue_file.h"
#include "mail/queue_id.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "mail/trigger.h"
#include "qmgr.h"
#include "util/events.h"
#include "util/msg.h"
#include "util/xmalloc.h"

int     qmgr_active_count;

/*
 * Scan one queue directory; flush: every deferred file, due or not.
 * Returns 1 when it stopped at the active limit.
 */
static int qmgr_scan(const char *dir, int due_only)
{
    DIR *dp;
    struct dirent *de;
    time_t now = time(NULL);
    int full = 0;

    if ((dp = opendir(dir)) == NULL) {
        msg_warn("open %s: %m", dir);
        return 0;
    }
    while ((de = readdir(dp)) != NULL) {
        STRBUF *path;
        struct stat st;

        if (!queue_id_valid(de->d_name))
            continue;
        if (qmgr_active_count >= var_qmgr_message_active_limit) {
            full = 1;
            break;
        }
        path = strbuf_alloc(64);
        strbuf_printf(path, "%s/%s", dir, de->d_name);
        /* Only complete files; only due ones from deferred/. */
        if (lstat(path->data, &st) == 0 && S_ISREG(st.st_mode)
            && (st.st_mode & S_IXUSR)
            && (!due_only || st.st_mtime <= now))
            qmgr_message_activate(dir, de->d_name);
        strbuf_free(&path);
    }
    closedir(dp);
    return full;
}

static void qmgr_scan_incoming(int event, void *context)
{
    (void) event;
    (void) context;
    if (qmgr_scan("incoming", 0))
        event_request_timer(qmgr_scan_incoming, NULL, 1000);
}

static void qmgr_scan_deferred(int event, void *context)
{
    (void) event;
    (void) context;
    (void) qmgr_scan("deferred", 1);
    event_request_timer(qmgr_scan_deferred, NULL,
                        (long long) var_queue_run_delay * 1000);
}

static void qmgr_flush_deferred(int event, void *context)
{
    (void) event;
    (void) context;
    if (qmgr_scan("deferred", 0))
        event_request_timer(qmgr_flush_deferred, NULL, 1000);
}

void qmgr_scan_request(void)
{
    event_request_timer(qmgr_scan_incoming, NULL, 0);
}

static void qmgr_trigger(const char *buf, size_t len, const char *service,
                         char **argv)
{
    (void) service;
    (void) argv;
    for (size_t i = 0; i < len; i++) {
        switch (buf[i]) {
        case TRIGGER_SCAN_INCOMING:
        case TRIGGER_WAKEUP:
            event_request_timer(qmgr_scan_incoming, NULL, 0);
            break;
        case TRIGGER_FLUSH:
            event_request_timer(qmgr_flush_deferred, NULL, 0);
            event_request_timer(qmgr_scan_incoming, NULL, 0);
            break;
        }
    }
}

/* After a crash, what was active starts over from incoming/. */
static void qmgr_recover(void)
{
    DIR *dp;
    struct dirent *de;

    if ((dp = opendir("active")) == NULL)
        return;
    while ((de = readdir(dp)) != NULL) {
        STRBUF *from;
        STRBUF *to;

        if (!queue_id_valid(de->d_name))
            continue;
        from = strbuf_alloc(64);
        to = strbuf_alloc(64);
        strbuf_printf(from, "active/%s", de->d_name);
        strbuf_printf(to, "incoming/%s", de->d_name);
        if (rename(from->data, to->data) < 0)
            msg_warn("%s: recover: %m", de->d_name);
        strbuf_free(&from);
        strbuf_free(&to);
    }
    closedir(dp);
}

static void qmgr_pre_init(const char *service, char **argv)
{
    (void) service;
    (void) argv;
    resolve_init();
    qmgr_deliver_init();
}

static void qmgr_post_init(const char *service, char **argv)
{
    (void) service;
    (void) argv;
    qmgr_recover();
    event_request_timer(qmgr_scan_incoming, NULL, 0);
    event_request_timer(qmgr_scan_deferred, NULL, 0);
}

int main(int argc, char **argv)
{
    static const SERVER_OPS ops = {
        .kind = SERVER_EVENT,
        .pre_init = qmgr_pre_init,
        .post_init = qmgr_post_init,
        .trigger = qmgr_trigger,
    };

    server_main(argc, argv, &ops);
}
