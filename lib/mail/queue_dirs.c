/*
 * queue_dirs - the queue directory tree, its owners and modes.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/params.h"
#include "mail/queue_dirs.h"
#include "util/msg.h"

typedef enum { OWN_ROOT, OWN_MAIL, OWN_MAIL_SETGID } QUEUE_OWNER;

typedef struct QUEUE_DIR {
    const char *name;                   /* relative to queue_directory */
    mode_t  mode;
    QUEUE_OWNER owner;
} QUEUE_DIR;

/*
 * maildrop/ is writable by the setgid group (the sendmail command) and
 * sticky so that nobody removes another's file; public/ is searchable by
 * that group only; everything else is the mail system's alone.
 */
static const QUEUE_DIR queue_dirs[] = {
    {".", 0755, OWN_ROOT},
    {"pid", 0755, OWN_ROOT},
    {"maildrop", 01730, OWN_MAIL_SETGID},
    {"tmp", 0700, OWN_MAIL},
    {"incoming", 0700, OWN_MAIL},
    {"active", 0700, OWN_MAIL},
    {"deferred", 0700, OWN_MAIL},
    {"hold", 0700, OWN_MAIL},
    {"corrupt", 0700, OWN_MAIL},
    {"bounce", 0700, OWN_MAIL},
    {"defer", 0700, OWN_MAIL},
    {"trace", 0700, OWN_MAIL},
    {"private", 0700, OWN_MAIL},
    {"public", 0710, OWN_MAIL_SETGID},
};

/* Make one directory right; returns changes made or -1. */
static int queue_dir_fix(const char *path, mode_t mode, uid_t uid, gid_t gid,
                         int chown_ok, STRBUF *err)
{
    struct stat st;
    int changes = 0;

    if (lstat(path, &st) < 0) {
        if (errno != ENOENT) {
            strbuf_printf(err, "stat %s: %s", path, strerror(errno));
            return -1;
        }
        if (mkdir(path, mode & 0777) < 0) {
            strbuf_printf(err, "create directory %s: %s", path,
                          strerror(errno));
            return -1;
        }
        msg_info("created directory %s", path);
        changes++;
        if (lstat(path, &st) < 0) {
            strbuf_printf(err, "stat %s: %s", path, strerror(errno));
            return -1;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        strbuf_printf(err, "%s exists and is not a directory", path);
        return -1;
    }
    if (chown_ok && (st.st_uid != uid || st.st_gid != gid)) {
        if (chown(path, uid, gid) < 0) {
            strbuf_printf(err, "chown %s: %s", path, strerror(errno));
            return -1;
        }
        msg_info("changed owner of %s to %ld:%ld", path, (long) uid,
                 (long) gid);
        changes++;
    }
    if ((st.st_mode & 07777) != mode) {
        if (chmod(path, mode) < 0) {
            strbuf_printf(err, "chmod %s: %s", path, strerror(errno));
            return -1;
        }
        msg_info("changed mode of %s from %04o to %04o", path,
                 (unsigned) (st.st_mode & 07777), (unsigned) mode);
        changes++;
    }
    return changes;
}

int queue_dirs_setup(STRBUF *err)
{
    STRBUF *path = strbuf_alloc(256);
    int as_root = geteuid() == 0;
    uid_t mail_uid = geteuid();
    gid_t mail_gid = getegid();
    gid_t setgid_gid = getegid();
    int total = 0;
    int n;

    if (as_root) {
        struct passwd *pw = getpwnam(var_mail_owner);
        struct group *gr = getgrnam(var_setgid_group);

        if (pw == NULL) {
            strbuf_printf(err, "mail_owner: unknown user \"%s\"",
                          var_mail_owner);
            total = -1;
            goto done;
        }
        if (pw->pw_uid == 0) {
            strbuf_printf(err, "mail_owner \"%s\" must not be root",
                          var_mail_owner);
            total = -1;
            goto done;
        }
        if (gr == NULL) {
            strbuf_printf(err, "setgid_group: unknown group \"%s\"",
                          var_setgid_group);
            total = -1;
            goto done;
        }
        mail_uid = pw->pw_uid;
        mail_gid = pw->pw_gid;
        setgid_gid = gr->gr_gid;
    }
    for (size_t i = 0; i < sizeof(queue_dirs) / sizeof(queue_dirs[0]); i++) {
        const QUEUE_DIR *qd = &queue_dirs[i];
        uid_t uid = qd->owner == OWN_ROOT ? 0 : mail_uid;
        gid_t gid = qd->owner == OWN_ROOT ? 0
            : qd->owner == OWN_MAIL ? mail_gid : setgid_gid;

        if (strcmp(qd->name, ".") == 0)
            strbuf_set(path, var_queue_directory);
        else
            strbuf_printf(path, "%s/%s", var_queue_directory, qd->name);
        if ((n = queue_dir_fix(path->data, qd->mode, uid, gid, as_root,
                               err)) < 0) {
            total = -1;
            goto done;
        }
        total += n;
    }
    /* data_directory: master's lock and pid file, caches. */
    if ((n = queue_dir_fix(var_data_directory, 0700, mail_uid, mail_gid,
                           as_root, err)) < 0) {
        total = -1;
        goto done;
    }
    total += n;
done:
    strbuf_free(&path);
    return total;
}
