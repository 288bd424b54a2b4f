/*
 * postdrop - store a maildrop file for the pickup service (Postfix
 * postdrop(1)).  Installed set-gid $setgid_group in $daemon_directory and
 * run by sendmail(1); not for people.
 *
 *   postdrop [-c config_dir] [-v]     copy a maildrop file from stdin
 *   postdrop [-c config_dir] [-v] -q  wake up the queue manager
 *
 * postdrop is the privilege boundary of local submission: its input comes
 * from any local user.  Only two steps need the set-gid privilege:
 * creating the file in maildrop/ and renaming it there (plus reaching
 * public/ for the wakeup).  So the process that holds the privilege never
 * reads the input: it creates the file, then forks a child that drops the
 * group for good (real, effective and saved) and copies standard input
 * into the file, checking every record (lib/mail/maildrop.h).  Only when the
 * child exits 0 does the parent mark the file ready, rename it to its
 * queue ID, sync the directory, print the ID and poke pickup.
 *
 * A configuration directory other than the built-in one is used with the
 * privilege only when it and its main.cf belong to root and nobody else
 * can write them or any directory above them (sticky directories such as
 * /tmp are fine); otherwise postdrop drops the privilege first and works
 * only where the caller may write anyway (a development instance).
 *
 * Exit status: 0; EX_USAGE; EX_DATAERR (input refused, message too big);
 * EX_CONFIG; EX_TEMPFAIL (cannot write the queue).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "mail/maildrop.h"
#include "mail/params.h"
#include "mail/queue_file.h"
#include "mail/queue_id.h"
#include "mail/record.h"
#include "mail/trigger.h"
#include "util/msg.h"
#include "util/strbuf.h"
#include "util/xmalloc.h"

#ifdef __SANITIZE_ADDRESS__
#include <sys/auxv.h>

/*
 * LeakSanitizer traces its own process at exit, which a set-gid process
 * (not dumpable) cannot do: it would fail every sanitized set-gid run.
 */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return getauxval(AT_SECURE) ? "detect_leaks=0" : "";
}
#endif

/* The temporary file, for removal on a fatal error or a signal. */
static char postdrop_temp[64];

static void postdrop_cleanup(void)
{
    if (postdrop_temp[0])
        (void) unlink(postdrop_temp);
}

static void postdrop_sig(int sig)
{
    (void) sig;
    postdrop_cleanup();                 /* async-signal-safe */
    _exit(EX_TEMPFAIL);
}

static void postdrop_usage(void)
{
    msg_fatal_status(EX_USAGE, "usage: postdrop [-c config_dir] [-q] [-v]");
}

/* Make sure descriptors 0, 1 and 2 are open before we open anything. */
static void postdrop_std_fds(void)
{
    struct stat st;

    for (int fd = 0; fd < 3; fd++)
        if (fstat(fd, &st) < 0 && open("/dev/null", O_RDWR) != fd)
            msg_fatal_status(EX_OSERR, "open /dev/null: %m");
}

/* Give up the set-gid group for good (real, effective, saved). */
static void postdrop_drop_group(void)
{
    gid_t gid = getgid();
    gid_t r, e, s;

    if (setresgid(gid, gid, gid) < 0)
        msg_fatal_status(EX_OSERR, "setresgid %ld: %m", (long) gid);
    if (getresgid(&r, &e, &s) < 0 || r != gid || e != gid || s != gid)
        msg_fatal_status(EX_OSERR, "dropping the set-gid group failed");
}

/* One directory on the path: root's, and only root can change it. */
static int postdrop_safe_node(const char *path, int want_dir)
{
    struct stat st;

    if (lstat(path, &st) < 0 || st.st_uid != 0)
        return 0;
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return 0;
    return (st.st_mode & 022) == 0 || (want_dir && (st.st_mode & S_ISVTX));
}

/*
 * May a set-gid postdrop use this config directory?  resolved gets the
 * canonical path to read it from (no symlink can change under us).
 */
static int postdrop_config_trusted(const char *dir, STRBUF *resolved)
{
    char *real;
    STRBUF *part = strbuf_alloc(256);
    int ok = 1;

    strbuf_set(resolved, dir);
    if (strcmp(dir, DEF_CONFIG_DIR) == 0) {
        strbuf_free(&part);
        return 1;
    }
    if ((real = realpath(dir, NULL)) == NULL) {
        strbuf_free(&part);
        return 0;
    }
    strbuf_set(resolved, real);
    /* "/", then each prefix ending before a slash, then the whole path. */
    ok = postdrop_safe_node("/", 1);
    for (const char *cp = real + 1; ok && *cp; cp++) {
        if (cp[1] == '/' || cp[1] == 0) {
            strbuf_setn(part, real, (size_t) (cp - real) + 1);
            ok = postdrop_safe_node(part->data, 1);
        }
    }
    if (ok) {
        strbuf_printf(part, "%s/main.cf", real);
        ok = postdrop_safe_node(part->data, 0);
    }
    free(real);
    strbuf_free(&part);
    return ok;
}

/*
 * The child: copy and check standard input into fd, unprivileged.
 * Returns an exit status.
 */
static int postdrop_copy(int fd)
{
    STREAM *in = stream_open(STDIN_FILENO, 0, 4096);
    STREAM *out = stream_open(fd, 0, 4096);
    STRBUF *data = strbuf_alloc(MAILDROP_CHUNK_MAX + 1);
    STRBUF *err = strbuf_alloc(128);
    MAILDROP_CHECK mc;
    char size[MAILDROP_SIZE_LEN + 1];
    int status = EX_DATAERR;
    int type;
    int rc;
    off_t in_offset;

    maildrop_check_init(&mc, 0, var_message_size_limit, (long) getuid());
    while ((rc = maildrop_read(in, &type, data, &in_offset, err)) > 0) {
        off_t offset = (off_t) (out->bytes_out + out->wlen);

        if ((rc = maildrop_check(&mc, offset, type, data->data, data->len,
                                 err)) < 0)
            break;
        rec_put(out, type, data->data, data->len);
        if (stream_error(out)) {
            msg_warn("uid=%ld: write maildrop file: %m", (long) getuid());
            status = EX_TEMPFAIL;
            goto done;
        }
    }
    if (rc < 0) {
        msg_warn("uid=%ld: %s: %s", (long) getuid(),
                 rc == MAILDROP_TOO_BIG ? "message refused"
                 : "malformed input", err->data);
        goto done;
    }
    if (maildrop_check_end(&mc, err) < 0) {
        msg_warn("uid=%ld: malformed input: %s", (long) getuid(), err->data);
        goto done;
    }
    /* The size record, now that the file is known. */
    maildrop_size_format(size, mc.content_size, mc.content_offset, mc.nrcpt);
    status = EX_TEMPFAIL;
    if (stream_flush(out) < 0
        || pwrite(fd, size, MAILDROP_SIZE_LEN, MAILDROP_SIZE_OFFSET)
        != MAILDROP_SIZE_LEN || fsync(fd) < 0) {
        msg_warn("uid=%ld: write maildrop file: %m", (long) getuid());
        goto done;
    }
    status = 0;
done:
    stream_free(&in);
    stream_free(&out);
    strbuf_free(&data);
    strbuf_free(&err);
    return status;
}

/* Durable rename: sync the directory, or the file system when the
 * directory cannot be opened (maildrop/ is not readable by the group). */
static int postdrop_sync_dir(int fd)
{
    int dfd = open(MAILDROP_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (dfd < 0)
        return syncfs(fd);
    rc = fsync(dfd);
    close(dfd);
    return rc;
}

/* Run the child and, when it succeeded, publish the file. */
static int postdrop_store(int fd, const struct timeval *tv)
{
    STRBUF *id = strbuf_alloc(QUEUE_ID_MAX + 1);
    STRBUF *path = strbuf_alloc(64);
    struct stat st;
    pid_t pid;
    int wstatus;

    if ((pid = fork()) < 0)
        msg_fatal_status(EX_OSERR, "fork: %m");
    if (pid == 0) {
        msg_set_cleanup(NULL);
        postdrop_temp[0] = 0;
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        postdrop_drop_group();
        if (*var_maillog_file == 0)
            (void) msg_open_log(var_syslog_name, NULL, NULL);
        _exit(postdrop_copy(fd));
    }
    /* The privileged parent reads nothing the user wrote. */
    (void) close(STDIN_FILENO);
    while (waitpid(pid, &wstatus, 0) < 0)
        if (errno != EINTR)
            msg_fatal_status(EX_OSERR, "waitpid: %m");
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        postdrop_cleanup();
        strbuf_free(&id);
        strbuf_free(&path);
        return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : EX_TEMPFAIL;
    }
    if (fchmod(fd, MAILDROP_READY_MODE) < 0 || fstat(fd, &st) < 0)
        msg_fatal_status(EX_TEMPFAIL, "maildrop file: %m");
    queue_id_make(id, (long) tv->tv_sec, (long) tv->tv_usec, st.st_ino);
    strbuf_printf(path, MAILDROP_DIR "/%s", id->data);
    if (renameat2(AT_FDCWD, postdrop_temp, AT_FDCWD, path->data,
                  RENAME_NOREPLACE) < 0)
        msg_fatal_status(EX_TEMPFAIL, "rename %s to %s: %m", postdrop_temp,
                         path->data);
    postdrop_temp[0] = 0;
    if (postdrop_sync_dir(fd) < 0) {
        (void) unlink(path->data);
        msg_fatal_status(EX_TEMPFAIL, "sync %s: %m", MAILDROP_DIR);
    }
    printf("%s\n", id->data);
    if (fflush(stdout) != 0)
        msg_warn("write standard output: %m");
    if (trigger_send("public", "pickup", "W", 1) < 0 && msg_verbose)
        msg_info("cannot wake up the pickup service: %m");
    strbuf_free(&id);
    strbuf_free(&path);
    return 0;
}

/* Create the temporary file in maildrop/; needs the privilege. */
static int postdrop_create(struct timeval *tv)
{
    int fd = -1;

    gettimeofday(tv, NULL);
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(postdrop_temp, sizeof(postdrop_temp),
                 MAILDROP_DIR "/" MAILDROP_TEMP_PREFIX "%ld.%ld.%d",
                 (long) getpid(), (long) tv->tv_usec, attempt);
        fd = open(postdrop_temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
                  | O_CLOEXEC, MAILDROP_BUSY_MODE);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        int saved = errno;

        postdrop_temp[0] = 0;
        errno = saved;
        msg_fatal_status(EX_TEMPFAIL, "create file in %s/%s: %m",
                         var_queue_directory, MAILDROP_DIR);
    }
    /* Readable by pickup whatever the caller's umask. */
    if (fchmod(fd, MAILDROP_BUSY_MODE) < 0) {
        postdrop_cleanup();
        msg_fatal_status(EX_TEMPFAIL, "chmod %s: %m", postdrop_temp);
    }
    return fd;
}

int main(int argc, char **argv)
{
    const char *config_dir = NULL;
    STRBUF *resolved = strbuf_alloc(256);
    STRBUF *err = strbuf_alloc(256);
    struct timeval tv;
    int wakeup_qmgr = 0;
    int privileged;
    int ch;
    int fd;

    postdrop_std_fds();
    umask(022);
    msg_init("postdrop", MSG_STDERR);
    if (geteuid() != getuid())
        msg_fatal_status(EX_SOFTWARE, "postdrop must be installed set-gid, "
                         "not set-uid");
    privileged = getegid() != getgid();
    while ((ch = getopt(argc, argv, "+c:qv")) != -1) {
        switch (ch) {
        case 'c':
            config_dir = optarg;
            break;
        case 'q':
            wakeup_qmgr = 1;
            break;
        case 'v':
            msg_verbose++;
            break;
        default:
            postdrop_usage();
        }
    }
    if (optind != argc)
        postdrop_usage();
    config_dir = params_config_dir(config_dir);
    if (privileged && !postdrop_config_trusted(config_dir, resolved)) {
        if (msg_verbose)
            msg_info("%s is not a trusted configuration directory: "
                     "running without the set-gid privilege", config_dir);
        postdrop_drop_group();
        privileged = 0;
        strbuf_set(resolved, config_dir);
    } else if (!privileged) {
        strbuf_set(resolved, config_dir);
    }
    if (params_load_r(resolved->data, NULL, 0, err) < 0)
        msg_fatal_status(EX_CONFIG, "%s", err->data);
    strbuf_free(&resolved);
    strbuf_free(&err);
    if (chdir(var_queue_directory) < 0)
        msg_fatal_status(EX_TEMPFAIL, "chdir %s: %m", var_queue_directory);
    if (wakeup_qmgr) {
        if (trigger_send("public", "qmgr", "W", 1) < 0 && msg_verbose)
            msg_info("cannot wake up the queue manager: %m");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, postdrop_sig);
    signal(SIGTERM, postdrop_sig);
    signal(SIGHUP, postdrop_sig);
    msg_set_cleanup(postdrop_cleanup);
    fd = postdrop_create(&tv);
    return postdrop_store(fd, &tv);
}
