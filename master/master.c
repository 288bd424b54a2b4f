/*
 * master - the Postern supervisor.
 *
 * Reads main.cf and master.cf, creates the queue tree, opens every
 * listener, and forks services on demand (see master_service.c and
 * master_spawn.c).  Signals:
 *   SIGHUP           reload: re-read both files; a broken configuration
 *                    is refused and the running one stays; every service
 *                    gets new processes while old ones finish their
 *                    clients;
 *   SIGTERM, SIGINT  stop: children are asked to finish (SIGTERM), and
 *                    killed after stop_grace_time;
 *   SIGQUIT          abort: children are killed at once.
 * Only one master runs per data_directory: it holds an exclusive lock on
 * data_directory/master.pid, which also holds its pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/master_conf.h"
#include "mail/params.h"
#include "mail/queue_dirs.h"
#include "master.h"
#include "util/cfline.h"
#include "util/events.h"
#include "util/file_atomic.h"
#include "util/msg.h"
#include "util/xmalloc.h"

const char *master_config_dir;
int     master_stopping;

char   *master_running_cf;              /* the main.cf children read */
static int master_have_config;
static int master_sig_pipe[2];
static int master_lock_fd = -1;
static char *master_pid_path;

/* Signal handlers only write the signal number to a pipe. */
static void master_sig_handler(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char) sig;

    /* A full pipe already holds a wakeup; nothing else to do here. */
    if (write(master_sig_pipe[1], &b, 1) < 0)
        errno = saved;
    errno = saved;
}

static void master_lock(void)
{
    STRBUF *path = strbuf_alloc(256);
    STRBUF *pid = strbuf_alloc(32);
    struct flock fl;

    strbuf_printf(path, "%s/master.pid", var_data_directory);
    master_pid_path = xstrdup(path->data);
    /*
     * data_directory belongs to mail_owner: never follow a link planted
     * there, and never write into anything but our own plain file.
     */
    if ((master_lock_fd = open(path->data, O_RDWR | O_CREAT | O_CLOEXEC
                               | O_NOFOLLOW, 0644)) < 0)
        msg_fatal("open %s: %m", path->data);
    {
        struct stat st;

        if (fstat(master_lock_fd, &st) < 0)
            msg_fatal("fstat %s: %m", path->data);
        if (!S_ISREG(st.st_mode) || st.st_nlink != 1
            || (st.st_uid != geteuid() && st.st_uid != 0))
            msg_fatal("%s: not a plain file of ours -- refusing to use it",
                      path->data);
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(master_lock_fd, F_SETLK, &fl) < 0) {
        if (errno == EAGAIN || errno == EACCES) {
            memset(&fl, 0, sizeof(fl));
            fl.l_type = F_WRLCK;
            (void) fcntl(master_lock_fd, F_GETLK, &fl);
            msg_fatal("the Postern mail system is already running "
                      "(pid %ld, lock %s)", (long) fl.l_pid, path->data);
        }
        msg_fatal("lock %s: %m", path->data);
    }
    strbuf_printf(pid, "%ld\n", (long) getpid());
    if (ftruncate(master_lock_fd, 0) < 0
        || pwrite(master_lock_fd, pid->data, pid->len, 0)
        != (ssize_t) pid->len)
        msg_fatal("write %s: %m", path->data);
    strbuf_free(&path);
    strbuf_free(&pid);
}

static void master_unlock(void)
{
    if (master_lock_fd >= 0) {
        (void) unlink(master_pid_path);
        (void) close(master_lock_fd);
        master_lock_fd = -1;
    }
}

/*
 * Take the configuration: copy main.cf to a file of our own, check that
 * copy with master.cf, and only then make it the one children read (-m).
 * An edit of main.cf with an error thus reaches no process until a reload
 * has accepted it; a refused reload leaves everything as it was.
 */
static int master_take_config(MASTERCF **cf_r, STRBUF *err)
{
    STRBUF *src = strbuf_alloc(256);
    STRBUF *text = strbuf_alloc(8192);
    STRBUF *fresh = strbuf_alloc(256);
    int rc = -1;

    strbuf_printf(src, "%s/main.cf", master_config_dir);
    strbuf_printf(fresh, "%s.new", master_running_cf);
    if (cfline_read_file(src->data, text) < 0) {
        strbuf_printf(err, "open %s: %s", src->data, strerror(errno));
        goto done;
    }
    if (file_write_atomic(fresh->data, text->data, text->len, 0600, err) < 0)
        goto done;
    params_set_maincf_file(fresh->data);
    if (master_conf_check(master_config_dir, cf_r, err) < 0) {
        /* Error messages name main.cf, not our copy of it. */
        STRBUF *fixed = strbuf_alloc(256);
        const char *hit = strstr(err->data, fresh->data);

        if (hit) {
            strbuf_append(fixed, err->data, (size_t) (hit - err->data));
            strbuf_cat(fixed, src->data);
            strbuf_cat(fixed, hit + fresh->len);
            strbuf_set(err, fixed->data);
        }
        strbuf_free(&fixed);
        (void) unlink(fresh->data);
        params_set_maincf_file(master_have_config ? master_running_cf : NULL);
        goto done;
    }
    if (rename(fresh->data, master_running_cf) < 0) {
        strbuf_printf(err, "rename %s: %s", fresh->data, strerror(errno));
        (void) unlink(fresh->data);
        goto done;
    }
    params_set_maincf_file(master_running_cf);
    params_load(master_config_dir, NULL, 0);
    master_have_config = 1;
    rc = 0;
done:
    strbuf_free(&src);
    strbuf_free(&text);
    strbuf_free(&fresh);
    return rc;
}

static int master_load(MASTER_SERV *old, MASTER_SERV **list_r, STRBUF *err)
{
    MASTERCF *cf = NULL;
    int rc;

    if (master_take_config(&cf, err) < 0)
        return -1;
    rc = master_services_build(cf, list_r, old, err);
    mastercf_free(&cf);
    return rc;
}

static void master_reload(void)
{
    STRBUF *err = strbuf_alloc(256);
    MASTER_SERV *fresh;
    MASTER_SERV *serv;
    MASTER_SERV *next;

    msg_info("reload -- version %s, configuration %s", POSTERN_VERSION,
             master_config_dir);
    if (master_load(master_services, &fresh, err) < 0) {
        msg_error("reload refused, configuration unchanged: %s", err->data);
        strbuf_free(&err);
        return;
    }
    /* Old processes finish their clients; new ones serve from now on. */
    for (serv = master_services; serv; serv = next) {
        next = serv->next;
        master_service_retire(serv);
        master_kill_all(serv, SIGTERM);
        serv->next = master_retired;
        master_retired = serv;
    }
    master_services = fresh;
    for (serv = master_services; serv; serv = serv->next)
        master_service_start(serv);
    strbuf_free(&err);
}

/* Free retired services whose last process has gone. */
static void master_retired_cleanup(void)
{
    MASTER_SERV **pp = &master_retired;
    MASTER_SERV *serv;

    while ((serv = *pp) != NULL) {
        if (serv->total_proc == 0) {
            *pp = serv->next;
            master_service_free(serv);
        } else {
            pp = &serv->next;
        }
    }
}

static void master_exit(void)
{
    MASTER_SERV *serv;

    while ((serv = master_services) != NULL) {
        master_services = serv->next;
        master_service_free(serv);
    }
    while ((serv = master_retired) != NULL) {
        master_retired = serv->next;
        master_service_free(serv);
    }
    master_unlock();
    msg_info("stopped");
    exit(0);
}

static void master_grace_expired(int event, void *context)
{
    (void) event;
    (void) context;
    if (master_procs)
        msg_warn("stop: %d process(es) still running after %ds -- killing",
                 master_proc_count(), var_stop_grace_time);
    master_kill_all(NULL, SIGKILL);
}

static void master_stop(int sig, int abrupt)
{
    MASTER_SERV *serv;

    if (master_stopping && !abrupt)
        return;
    msg_info("terminating on signal %d", sig);
    master_stopping = 1;
    for (serv = master_services; serv; serv = serv->next)
        master_service_retire(serv);
    if (abrupt || var_stop_grace_time == 0) {
        master_kill_all(NULL, SIGKILL);
    } else {
        master_kill_all(NULL, SIGTERM);
        event_request_timer(master_grace_expired, NULL,
                            (long long) var_stop_grace_time * 1000);
    }
}

static void master_signal_event(int event, void *context)
{
    unsigned char sigs[64];
    ssize_t n;

    (void) event;
    (void) context;
    while ((n = read(master_sig_pipe[0], sigs, sizeof(sigs))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            switch (sigs[i]) {
            case SIGCHLD:
                master_reap();
                master_retired_cleanup();
                break;
            case SIGHUP:
                if (!master_stopping)
                    master_reload();
                break;
            case SIGTERM:
            case SIGINT:
                master_stop(sigs[i], 0);
                break;
            case SIGQUIT:
                master_stop(sigs[i], 1);
                break;
            }
        }
    }
}

static void master_signals(void)
{
    static const int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT};
    struct sigaction sa;

    if (pipe2(master_sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        msg_fatal("pipe: %m");
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = master_sig_handler;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    event_enable_read(master_sig_pipe[0], master_signal_event, NULL);
}

static void master_usage(const char *prog)
{
    msg_fatal("usage: %s [-c config_dir] [-v]", prog);
}

int main(int argc, char **argv)
{
    STRBUF *err = strbuf_alloc(256);
    const char *error;
    int ch;

    msg_init(argv[0], MSG_STDERR);
    while ((ch = getopt(argc, argv, "c:v")) != -1) {
        switch (ch) {
        case 'c':
            master_config_dir = optarg;
            break;
        case 'v':
            msg_verbose++;
            break;
        default:
            master_usage(argv[0]);
        }
    }
    master_config_dir = xstrdup(params_config_dir(master_config_dir));
    if (master_conf_check(master_config_dir, NULL, err) < 0)
        msg_fatal("%s", err->data);
    params_load(master_config_dir, NULL, 0);
    if (msg_open_log(var_syslog_name, var_maillog_file, &error) < 0)
        msg_fatal("open %s: %s", var_maillog_file, error);
    /*
     * Errors at start-up also go to stderr, for whoever started us; once
     * running, only to the log.  Never twice when the log is stderr.
     */
    msg_stderr(strcmp(var_maillog_file, "/dev/stderr") != 0);
    if (queue_dirs_setup(err) < 0)
        msg_fatal("%s", err->data);
    master_lock();
    {
        STRBUF *path = strbuf_alloc(256);

        /* In pid/, which only root can write when we run as root. */
        strbuf_printf(path, "%s/pid/main.cf.running", var_queue_directory);
        master_running_cf = xstrdup(path->data);
        strbuf_free(&path);
    }
    if (chdir(var_queue_directory) < 0)
        msg_fatal("chdir %s: %m", var_queue_directory);
    master_signals();
    if (master_load(NULL, &master_services, err) < 0)
        msg_fatal("%s", err->data);
    msg_info("daemon started -- version %s, configuration %s",
             POSTERN_VERSION, master_config_dir);
    for (MASTER_SERV *serv = master_services; serv; serv = serv->next)
        master_service_start(serv);
    msg_stderr(0);

    for (;;) {
        event_loop(-1);
        if (master_stopping && master_procs == NULL)
            master_exit();
    }
}
