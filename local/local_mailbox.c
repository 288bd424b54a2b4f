/*
 * local_mailbox - deliveries into mailboxes and files, each made with the
 * effective ids of the owner (when we are root), and the accounts those
 * deliveries run as.
 *
 * As Postfix's local(8): groups, egid and euid switched for the delivery
 * and back to root after it, verified both ways.  Everything the
 * delivery creates or opens is checked against the owner's rights and
 * charged to the owner's quota.  (It used to be a child process that
 * gave up root for good; that cost about 8 ms of CPU per message, more
 * than the rest of a delivery, see bench/smtp-deliver.)
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"
#include "mail/server.h"
#include "mail/params.h"
#include "util/msg.h"
#include "util/xmalloc.h"

/* --- accounts --------------------------------------------------------- */

static LOCAL_PRIV *local_priv_from_pw(const struct passwd *pw)
{
    LOCAL_PRIV *priv = xcalloc(1, sizeof(*priv));

    priv->uid = pw->pw_uid;
    priv->gid = pw->pw_gid;
    priv->extra_gid = (gid_t) -1;
    priv->name = xstrdup(pw->pw_name);
    priv->home = xstrdup(pw->pw_dir ? pw->pw_dir : "/");
    priv->shell = xstrdup(pw->pw_shell ? pw->pw_shell : "");
    return priv;
}

LOCAL_PRIV *local_priv_user(const char *user)
{
    struct passwd *pw;

    errno = 0;
    if ((pw = getpwnam(user)) == NULL)
        return NULL;
    return local_priv_from_pw(pw);
}

LOCAL_PRIV *local_priv_uid(uid_t uid)
{
    struct passwd *pw = getpwuid(uid);

    return pw ? local_priv_from_pw(pw) : NULL;
}

/* default_privs: never root. */
LOCAL_PRIV *local_priv_default(void)
{
    struct passwd *pw = getpwnam(var_default_privs);

    if (pw == NULL || pw->pw_uid == 0)
        return NULL;
    return local_priv_from_pw(pw);
}

void local_priv_free(LOCAL_PRIV **privp)
{
    if (*privp == NULL)
        return;
    free((*privp)->name);
    free((*privp)->home);
    free((*privp)->shell);
    xfree(privp);
}

/*
 * Effective ids of the mailbox owner, as Postfix's local(8) switches
 * them: groups, egid, euid; local_eids_restore() goes back to root.
 */
typedef struct LOCAL_EIDS {
    gid_t   groups[NGROUPS_MAX];
    int     ngroups;
    gid_t   egid;
} LOCAL_EIDS;

static int local_eids_switch(const LOCAL_PRIV *priv, LOCAL_EIDS *saved)
{
    gid_t groups[2];
    size_t ngroups = 1;

    if ((saved->ngroups = getgroups(NGROUPS_MAX, saved->groups)) < 0)
        msg_fatal("getgroups: %m");
    saved->egid = getegid();
    groups[0] = priv->gid;
    if (priv->extra_gid != (gid_t) -1 && priv->extra_gid != priv->gid)
        groups[ngroups++] = priv->extra_gid;
    if (setgroups(ngroups, groups) < 0 || setegid(priv->gid) < 0
        || seteuid(priv->uid) < 0) {
        msg_warn("cannot switch to uid %ld gid %ld: %m", (long) priv->uid,
                 (long) priv->gid);
        if (seteuid(0) < 0 || setegid(saved->egid) < 0
            || setgroups((size_t) saved->ngroups, saved->groups) < 0)
            msg_fatal("switch back to root: %m");
        return -1;
    }
    return 0;
}

static void local_eids_restore(const LOCAL_EIDS *saved)
{
    if (seteuid(0) < 0 || setegid(saved->egid) < 0
        || setgroups((size_t) saved->ngroups, saved->groups) < 0)
        msg_fatal("switch back to root: %m");
}

/*
 * Open a file with priv's rights (:include: files): a temporary switch
 * of the effective ids, back to root right after the open(2).
 */
int local_priv_open(const LOCAL_PRIV *priv, const char *path, int flags)
{
    LOCAL_EIDS saved;
    int fd;
    int err;

    if (geteuid() != 0)
        return open(path, flags | O_CLOEXEC);
    if (local_eids_switch(priv, &saved) < 0) {
        errno = EPERM;
        return -1;
    }
    fd = open(path, flags | O_CLOEXEC);
    err = errno;
    local_eids_restore(&saved);
    errno = err;
    return fd;
}

/* --- running a delivery as someone ------------------------------------ */

typedef void (*LOCAL_AS_FN)(void *ctx, LOCAL_RESULT *res);

/*
 * Run fn with priv's rights: the effective ids of the owner for the
 * delivery, root again after it (Postfix's local(8) does the same), so
 * that what is created belongs to the owner and the owner's permissions
 * and quotas apply.  Not root: right here as ourselves.  (A child
 * process per delivery, as before, cost about 8 ms of CPU per message
 * on bench/smtp-deliver, more than the rest of the delivery.)
 */
static void local_run_as(const LOCAL_PRIV *priv, LOCAL_AS_FN fn, void *ctx,
                         LOCAL_RESULT *res)
{
    LOCAL_EIDS saved;
    mode_t mask;

    if (geteuid() != 0) {
        fn(ctx, res);
        return;
    }
    if (local_eids_switch(priv, &saved) < 0) {
        local_result_set(res, 450, "4.3.0", "cannot switch to the rights "
                         "of uid %ld", (long) priv->uid);
        return;
    }
    mask = umask(077);
    fn(ctx, res);
    umask(mask);
    local_eids_restore(&saved);
}

/* --- mailboxes and files ---------------------------------------------- */

typedef struct LOCAL_STORE {
    LOCAL_RCPT *lrc;
    const char *path;
    const char *user;
    off_t   limit;
    int     flags;
    const char *what;                   /* mailbox, virtual, file */
} LOCAL_STORE;

static void local_store_child(void *ctx, LOCAL_RESULT *res)
{
    LOCAL_STORE *ls = ctx;
    MAILDIR_STATUS *st = maildir_status_alloc();
    STRBUF *prepend = strbuf_alloc(256);
    MAILDIR_MSG msg;
    size_t len = strlen(ls->path);
    int maildir = len > 0 && ls->path[len - 1] == '/';

    local_prepend(prepend, ls->lrc);
    memset(&msg, 0, sizeof(msg));
    msg.sender = ls->lrc->lr->req->sender;
    msg.prepend = prepend->data;
    msg.source = local_content;
    msg.source_ctx = ls->lrc->lr;
    msg.size_limit = ls->limit;
    msg.flags = ls->flags;
    if (maildir)
        maildir_deliver(ls->path, &msg, st);
    else
        maildir_mbox_append(ls->path, &msg, st);
    if (st->code == MAILDIR_OK) {
        if (maildir)
            local_result_set(res, 0, "2.0.0", "delivered to maildir");
        else if (strcmp(ls->what, "file") == 0)
            local_result_set(res, 0, "2.0.0", "delivered to file: %s",
                             ls->path);
        else
            local_result_set(res, 0, "2.0.0", "delivered to mailbox");
    } else {
        int status = st->code == MAILDIR_TEMP ? 450 : 550;

        if (maildir)
            local_result_set(res, status, st->dsn, "maildir delivery "
                             "failed: %s", st->why->data);
        else if (strcmp(ls->what, "file") == 0)
            local_result_set(res, status, st->dsn, "cannot append message "
                             "to file %s: %s", ls->path, st->why->data);
        else if (strcmp(ls->what, "virtual") == 0)
            local_result_set(res, status, st->dsn, "delivery failed to "
                             "mailbox %s: %s", ls->path, st->why->data);
        else
            local_result_set(res, status, st->dsn, "cannot update mailbox "
                             "%s for user %s. %s", ls->path, ls->user,
                             st->why->data);
    }
    strbuf_free(&prepend);
    maildir_status_free(&st);
}

void local_deliver_store(LOCAL_RCPT *lrc, const char *to, const char *path,
                         const LOCAL_PRIV *priv, off_t limit, int flags,
                         const char *what)
{
    LOCAL_STORE ls;
    LOCAL_RESULT res;

    ls.lrc = lrc;
    ls.path = path;
    ls.user = priv->name ? priv->name : "";
    ls.limit = limit;
    ls.flags = flags;
    ls.what = what;
    res.reason = strbuf_alloc(128);
    local_result_set(&res, 450, "4.3.0", "delivery not attempted");
    local_run_as(priv, local_store_child, &ls, &res);
    local_branch_done(lrc, to, &res);
    strbuf_free(&res.reason);
}

/*
 * A system user's mailbox: home_mailbox in the home directory (ending
 * in "/": a Maildir), else mail_spool_directory/USER.  The spool is often
 * group-writable only (Debian: root:mail 2775); then the delivery process
 * also gets that group, to create the file and its .lock there.
 */
void local_deliver_user(LOCAL_RCPT *lrc, const char *to, const char *user)
{
    STRBUF *path = strbuf_alloc(128);
    LOCAL_PRIV *priv;
    struct stat sb;

    errno = 0;
    if ((priv = local_priv_user(user)) == NULL) {
        if (errno == EIO || errno == ENOMEM || errno == EMFILE
            || errno == ENFILE || errno == EAGAIN || errno == EINTR) {
            msg_warn("%s: passwd lookup of \"%s\": %m", to, user);
            local_branch(lrc, to, 450, "4.3.0", "user lookup failure");
        } else {
            local_branch(lrc, to, 550, "5.1.1", "unknown user: \"%s\"", user);
        }
        goto done;
    }
    if (*var_home_mailbox) {
        strbuf_printf(path, "%s/%s", strcmp(priv->home, "/") == 0 ? ""
                      : priv->home, var_home_mailbox);
    } else {
        strbuf_printf(path, "%s/%s", var_mail_spool_directory, priv->name);
        if (stat(var_mail_spool_directory, &sb) == 0
            && !(sb.st_mode & S_IWOTH) && (sb.st_mode & S_IWGRP))
            priv->extra_gid = sb.st_gid;
    }
    if (local_mark_done(lrc, "mailbox", path->data))
        local_deliver_store(lrc, to, path->data, priv, var_mailbox_size_limit,
                            MAILDIR_FLAG_DOTLOCK | MAILDIR_FLAG_OWNER_CHECK,
                            "mailbox");
done:
    local_priv_free(&priv);
    strbuf_free(&path);
}

/* A /file destination of an alias (a Maildir when it ends in "/"). */
void local_deliver_file(LOCAL_RCPT *lrc, const char *to, const char *path,
                        const LOCAL_PRIV *priv)
{
    if (strcmp(path, "/dev/null") == 0) {
        local_branch(lrc, to, 0, "2.0.0", "delivered to file: /dev/null");
        return;
    }
    local_deliver_store(lrc, to, path, priv, var_mailbox_size_limit,
                        MAILDIR_FLAG_DOTLOCK | MAILDIR_FLAG_DOTLOCK_MAY_FAIL,
                        "file");
}
