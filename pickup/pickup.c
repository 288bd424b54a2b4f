/*
 * pickup - move local submissions from maildrop/ into cleanup (Postfix
 * pickup(8)).  See pickup(8).
 *
 * A trigger service: each poke (postdrop after a submission, master's
 * wakeup timer) makes it scan maildrop/.  Every maildrop file is
 * untrusted input written through postdrop by any local user, so a file
 * is read twice: first it is checked from end to end (lib/mail/maildrop.h),
 * then, only if it is sound, sent to cleanup.  A file that fails the
 * check goes to corrupt/; a file is removed only after cleanup said that
 * its queue file is durable.  The submitting user is the file owner, not
 * anything the file says.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mail/cleanup_proto.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/queue_file.h"
#include "mail/queue_id.h"
#include "mail/server.h"
#include "mail/maildrop.h"
#include "util/argv.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

#define PICKUP_SCAN_MAX     10000       /* files per directory pass */
#define PICKUP_CORRUPT_DIR  "corrupt"

/* One maildrop file and what its envelope says. */
typedef struct PICKUP_FILE {
    const char *name;
    int     fd;
    struct stat st;
    STRBUF *sender;
    STRBUF *fullname;
    int     have_fullname;
    STRBUF *envid;
    STRBUF *ret;
    STRBUF *why;                        /* what went wrong */
} PICKUP_FILE;

/* Outcome of handing a file to cleanup. */
typedef enum {
    PICKUP_DONE,                        /* queued: remove the file */
    PICKUP_RETRY,                       /* cleanup trouble: try later */
    PICKUP_REJECTED,                    /* 5xx: the file cannot be queued */
} PICKUP_RESULT;

/* Called for each record in pass 2; -1 stops the walk. */
typedef int (*PICKUP_REC_FN)(void *ctx, int type, const STRBUF *data);

/*
 * Read the whole file and check it; call fn (if any) for every record.
 * 0 when the file is sound, -1 with pf->why when it is not, -2 when fn
 * stopped the walk.
 */
static int pickup_walk(PICKUP_FILE *pf, PICKUP_REC_FN fn, void *ctx)
{
    STREAM *s;
    STRBUF *data = strbuf_alloc(MAILDROP_CHUNK_MAX + 1);
    MAILDROP_CHECK mc;
    off_t offset;
    int type;
    int rc;
    int stopped = 0;

    if (lseek(pf->fd, 0, SEEK_SET) < 0) {
        strbuf_printf(pf->why, "seek: %s", strerror(errno));
        strbuf_free(&data);
        return -1;
    }
    s = stream_open(pf->fd, 0, 4096);
    maildrop_check_init(&mc, MAILDROP_CHECK_SIZE, 0, (long) pf->st.st_uid);
    while ((rc = maildrop_read(s, &type, data, &offset, pf->why)) > 0) {
        if (maildrop_check(&mc, offset, type, data->data, data->len,
                           pf->why) != 0) {
            rc = -1;
            break;
        }
        if (fn && fn(ctx, type, data) < 0) {
            stopped = 1;
            break;
        }
    }
    if (stopped)
        rc = -2;
    else if (rc == 0)
        rc = maildrop_check_end(&mc, pf->why);
    else
        rc = -1;
    if (rc == 0 && (off_t) (s->bytes_in - (s->rend - s->rpos))
        != pf->st.st_size) {
        strbuf_set(pf->why, "file changed while it was read");
        rc = -1;
    }
    stream_free(&s);
    strbuf_free(&data);
    return rc;
}

/* Pass 1: collect the envelope fields cleanup's open request needs. */
static int pickup_collect(void *ctx, int type, const STRBUF *data)
{
    PICKUP_FILE *pf = ctx;

    switch (type) {
    case QREC_SENDER:
        strbuf_setn(pf->sender, data->data, data->len);
        break;
    case QREC_FULLNAME:
        strbuf_setn(pf->fullname, data->data, data->len);
        pf->have_fullname = 1;
        break;
    case QREC_ATTR:
        if (strncmp(data->data, "dsn_envid=", 10) == 0)
            strbuf_set(pf->envid, data->data + 10);
        else if (strncmp(data->data, "dsn_ret=", 8) == 0)
            strbuf_set(pf->ret, data->data + 8);
        break;
    }
    return 0;
}

/* The conversation with cleanup, pass 2. */
typedef struct PICKUP_SEND {
    STREAM *s;
    IPC_MSG *m;
    STRBUF *orcpt;
    long    notify;
} PICKUP_SEND;

static int pickup_send_record(void *ctx, int type, const STRBUF *data)
{
    PICKUP_SEND *ps = ctx;

    switch (type) {
    case QREC_DSN_ORCPT:
        strbuf_setn(ps->orcpt, data->data, data->len);
        return 0;
    case QREC_DSN_NOTIFY:
        return str_to_long(data->data, 1, 15, &ps->notify);
    case QREC_RCPT:
        ipc_msg_reset(ps->m);
        ipc_put_str(ps->m, "req", "rcpt");
        ipc_put_str(ps->m, "rcpt", data->data);
        if (ps->orcpt->len)
            ipc_put_str(ps->m, "orcpt", ps->orcpt->data);
        if (ps->notify)
            ipc_put_long(ps->m, "notify", ps->notify);
        strbuf_reset(ps->orcpt);
        ps->notify = 0;
        break;
    case QREC_DATA:
        ipc_msg_reset(ps->m);
        ipc_put_str(ps->m, "req", "data");
        ipc_put_data(ps->m, "data", data->data, data->len);
        break;
    default:
        return 0;
    }
    return ipc_write(ps->s, ps->m);
}

/*
 * Read cleanup's reply: its status (0, 4NN, 5NN), or -1 with why.  A
 * success must name a valid queue ID, except with lenient (the reply to
 * "end": the message is durable then, and retrying would queue it twice,
 * so a bad ID only earns a warning).
 */
static long pickup_reply(PICKUP_SEND *ps, STRBUF *queue_id, int lenient,
                         STRBUF *why)
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
    int rc;

    ipc_msg_reset(ps->m);
    if ((rc = ipc_read(ps->s, ps->m, CLEANUP_RECORD_MAX, why)) <= 0) {
        if (rc == 0)
            strbuf_set(why, "cleanup closed the connection");
        return -1;
    }
    if (ipc_scan(ps->m, spec, why) < 0)
        return -1;
    if (status == 0 && (id == NULL || !queue_id_valid(id))) {
        if (!lenient) {
            strbuf_set(why, "bad queue_id in cleanup reply");
            return -1;
        }
        msg_warn("%s: bad queue_id in cleanup reply to end", queue_id->data);
        return 0;
    }
    if (status != 0 && (status < 400 || status > 599)) {
        strbuf_printf(why, "bad status %ld in cleanup reply", status);
        return -1;
    }
    if (status == 0)
        strbuf_set(queue_id, id);
    else
        strbuf_printf(why, "%ld %s %s", status, dsn ? dsn : "",
                      reason ? reason : "");
    return status;
}

static void pickup_open_request(PICKUP_FILE *pf, IPC_MSG *m)
{
    ipc_msg_reset(m);
    ipc_put_str(m, "req", "open");
    ipc_put_str(m, "origin", CLEANUP_ORIGIN_PICKUP);
    ipc_put_str(m, "sender", pf->sender->data);
    if (pf->have_fullname)
        ipc_put_str(m, "sender_fullname", pf->fullname->data);
    if (pf->envid->len)
        ipc_put_str(m, "dsn_envid", pf->envid->data);
    if (pf->ret->len)
        ipc_put_str(m, "dsn_ret", pf->ret->data);
    ipc_put_long(m, "local_uid", (long) pf->st.st_uid);
}

/* Classify a reply status. */
static PICKUP_RESULT pickup_status(long status)
{
    return status == 0 ? PICKUP_DONE : status >= 500 ? PICKUP_REJECTED
        : PICKUP_RETRY;
}

/* Pass 2: hand the (checked) file to cleanup. */
static PICKUP_RESULT pickup_send(PICKUP_FILE *pf)
{
    PICKUP_SEND ps;
    STRBUF *queue_id = strbuf_alloc(QUEUE_ID_MAX + 1);
    PICKUP_RESULT result = PICKUP_RETRY;
    long status;
    int fd;
    int rc;

    if ((fd = ipc_connect(CLEANUP_CLASS, CLEANUP_SERVICE, pf->why)) < 0) {
        strbuf_free(&queue_id);
        return PICKUP_RETRY;
    }
    ps.s = stream_open(fd, var_ipc_timeout, 4096);
    ps.m = ipc_msg_alloc();
    ps.orcpt = strbuf_alloc(64);
    ps.notify = 0;
    pickup_open_request(pf, ps.m);
    if (ipc_write(ps.s, ps.m) < 0) {
        strbuf_printf(pf->why, "write to cleanup: %s", strerror(errno));
        goto done;
    }
    if ((status = pickup_reply(&ps, queue_id, 0, pf->why)) != 0) {
        result = status < 0 ? PICKUP_RETRY : pickup_status(status);
        goto done;
    }
    msg_info("%s: uid=%ld from=<%s>", queue_id->data, (long) pf->st.st_uid,
             pf->sender->data);
    if ((rc = pickup_walk(pf, pickup_send_record, &ps)) != 0) {
        /* Closing before "end" makes cleanup drop its file. */
        if (rc == -2)
            strbuf_printf(pf->why, "write to cleanup: %s", strerror(errno));
        result = PICKUP_RETRY;
        goto done;
    }
    ipc_msg_reset(ps.m);
    ipc_put_str(ps.m, "req", "end");
    if (ipc_write(ps.s, ps.m) < 0) {
        strbuf_printf(pf->why, "write to cleanup: %s", strerror(errno));
        goto done;
    }
    status = pickup_reply(&ps, queue_id, 1, pf->why);
    result = status < 0 ? PICKUP_RETRY : pickup_status(status);
done:
    stream_close(&ps.s);
    ipc_msg_free(&ps.m);
    strbuf_free(&ps.orcpt);
    strbuf_free(&queue_id);
    return result;
}

/* Move a file out of the way into corrupt/ under a name not yet used. */
static int pickup_to_corrupt(const char *name)
{
    STRBUF *from = strbuf_alloc(64);
    STRBUF *to = strbuf_alloc(64);
    int rc = -1;

    strbuf_printf(from, MAILDROP_DIR "/%s", name);
    for (int n = 0; n < 100 && rc < 0; n++) {
        if (n == 0)
            strbuf_printf(to, PICKUP_CORRUPT_DIR "/%s", name);
        else
            strbuf_printf(to, PICKUP_CORRUPT_DIR "/%s.%d", name, n);
        rc = renameat2(AT_FDCWD, from->data, AT_FDCWD, to->data,
                       RENAME_NOREPLACE);
        if (rc < 0 && errno != EEXIST)
            break;
    }
    if (rc < 0)
        msg_warn("%s: cannot move to %s/: %m", from->data, PICKUP_CORRUPT_DIR);
    strbuf_free(&from);
    strbuf_free(&to);
    return rc;
}

/* Remove a queued file; a failure would queue the message again. */
static int pickup_remove(const char *name)
{
    STRBUF *path = strbuf_alloc(64);
    int rc = 0;

    strbuf_printf(path, MAILDROP_DIR "/%s", name);
    if (unlink(path->data) < 0 && errno != ENOENT) {
        msg_error("remove %s: %m (the message is queued already)",
                  path->data);
        rc = -1;
    }
    strbuf_free(&path);
    return rc;
}

/*
 * Open a file named like a queue ID; 1 with pf->fd locked and checked,
 * 0 to skip it for now, -1 when it is no maildrop file at all.
 */
static int pickup_open(PICKUP_FILE *pf)
{
    STRBUF *path = strbuf_alloc(64);

    strbuf_printf(path, MAILDROP_DIR "/%s", pf->name);
    pf->fd = open(path->data, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    strbuf_free(&path);
    if (pf->fd < 0) {
        if (errno != ENOENT)
            msg_warn("open %s/%s: %m", MAILDROP_DIR, pf->name);
        return 0;
    }
    if (fstat(pf->fd, &pf->st) < 0 || !S_ISREG(pf->st.st_mode)
        || pf->st.st_nlink != 1) {
        strbuf_set(pf->why, "not a regular file with one link");
        return -1;
    }
    /* postdrop renames only finished files; the ready bit says so too. */
    if ((pf->st.st_mode & S_IRWXU) != S_IRWXU)
        return 0;
    if (flock(pf->fd, LOCK_EX | LOCK_NB) < 0)
        return 0;                       /* another pickup has it */
    return 1;
}

/*
 * Handle one file named like a queue ID: 1 when it left maildrop/, 0 when
 * it stays for now, -1 when cleanup is in trouble (stop the pass).
 */
static int pickup_one(const char *name)
{
    PICKUP_FILE pf = {.name = name, .fd = -1};
    int result = 0;
    int rc;

    pf.sender = strbuf_alloc(64);
    pf.fullname = strbuf_alloc(64);
    pf.envid = strbuf_alloc(16);
    pf.ret = strbuf_alloc(8);
    pf.why = strbuf_alloc(128);
    if ((rc = pickup_open(&pf)) > 0
        && (rc = pickup_walk(&pf, pickup_collect, &pf)) == 0) {
        switch (pickup_send(&pf)) {
        case PICKUP_DONE:
            result = pickup_remove(name) < 0 ? -1 : 1;
            break;
        case PICKUP_RETRY:
            msg_warn("%s/%s: uid=%ld: cannot hand the message to cleanup: "
                     "%s; will try again", MAILDROP_DIR, name,
                     (long) pf.st.st_uid, pf.why->data);
            result = -1;
            break;
        case PICKUP_REJECTED:
            /* XXX A bounce to the sender belongs here once bounces exist. */
            msg_warn("%s/%s: uid=%ld from=<%s>: message rejected: %s; "
                     "moved to %s/", MAILDROP_DIR, name, (long) pf.st.st_uid,
                     pf.sender->data, pf.why->data, PICKUP_CORRUPT_DIR);
            result = pickup_to_corrupt(name) == 0;
            break;
        }
    } else if (rc < 0) {
        msg_warn("%s/%s: uid=%ld: corrupt maildrop file: %s; moved to %s/",
                 MAILDROP_DIR, name, (long) pf.st.st_uid, pf.why->data,
                 PICKUP_CORRUPT_DIR);
        result = pickup_to_corrupt(name) == 0;
    }
    if (pf.fd >= 0)
        close(pf.fd);
    strbuf_free(&pf.sender);
    strbuf_free(&pf.fullname);
    strbuf_free(&pf.envid);
    strbuf_free(&pf.ret);
    strbuf_free(&pf.why);
    return result;
}

/*
 * A name that is no queue ID: a temporary file of a running postdrop
 * (removed once stale: its writer is gone), or something that does not
 * belong here.
 */
static void pickup_other(const char *name)
{
    STRBUF *path = strbuf_alloc(64);
    struct stat st;

    strbuf_printf(path, MAILDROP_DIR "/%s", name);
    if (lstat(path->data, &st) == 0) {
        if (strncmp(name, MAILDROP_TEMP_PREFIX,
                    strlen(MAILDROP_TEMP_PREFIX)) == 0) {
            if (st.st_mtime < time(NULL) - MAILDROP_STALE_SECS) {
                msg_warn("%s: removing stale temporary file", path->data);
                if (unlink(path->data) < 0)
                    msg_warn("remove %s: %m", path->data);
            }
        } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
            msg_warn("%s: unexpected file name; moved to %s/", path->data,
                     PICKUP_CORRUPT_DIR);
            (void) pickup_to_corrupt(name);
        }
    }
    strbuf_free(&path);
}

/* One pass over maildrop/: the number of files that left it, or -1
 * when cleanup is in trouble (the rest waits for the next wakeup). */
static int pickup_pass(void)
{
    ARGV *names = argv_alloc(16);
    DIR *dir;
    struct dirent *de;
    int done = 0;
    int rc;

    if ((dir = opendir(MAILDROP_DIR)) == NULL) {
        msg_warn("open directory %s: %m", MAILDROP_DIR);
        argv_free(&names);
        return -1;
    }
    /* Names first: the directory changes while we work. */
    while ((de = readdir(dir)) != NULL && names->argc < PICKUP_SCAN_MAX)
        if (de->d_name[0] != '.')
            argv_add(names, de->d_name);
    closedir(dir);
    for (size_t i = 0; i < names->argc && !server_stopping(); i++) {
        if (!queue_id_valid(names->argv[i])) {
            pickup_other(names->argv[i]);
        } else if ((rc = pickup_one(names->argv[i])) < 0) {
            done = -1;
            break;
        } else {
            done += rc;
        }
    }
    argv_free(&names);
    return done;
}

static void pickup_trigger(const char *buf, size_t len, const char *service,
                           char **argv)
{
    (void) buf;
    (void) len;
    (void) service;
    (void) argv;
    /* Again while files keep arriving during a pass. */
    while (!server_stopping() && pickup_pass() > 0)
         /* void */ ;
}

int main(int argc, char **argv)
{
    static const SERVER_OPS ops = {
        .kind = SERVER_EVENT,
        .trigger = pickup_trigger,
    };

    server_main(argc, argv, &ops);
}
