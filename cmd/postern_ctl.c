/*
 * postern start|start-fg|stop|abort|reload|status|check - control the mail
 * system, like postfix(1).
 *
 * master holds an exclusive fcntl() lock on data_directory/master.pid;
 * the lock (not the file's contents) says whether it runs and with which
 * pid, so a stale pid file after a crash misleads nobody.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mail/master_conf.h"
#include "mail/params.h"
#include "mail/queue_dirs.h"
#include "postern.h"
#include "util/msg.h"
#include "util/xmalloc.h"

#define CTL_WAIT_SECONDS    30

/* The pid of the running master, 0 if none. */
static pid_t ctl_master_pid(void)
{
    STRBUF *path = strbuf_alloc(256);
    struct flock fl;
    pid_t pid = 0;
    int fd;

    strbuf_printf(path, "%s/master.pid", var_data_directory);
    if ((fd = open(path->data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
            pid = fl.l_pid;
        close(fd);
    }
    strbuf_free(&path);
    return pid;
}

static void ctl_load(const char *config_dir)
{
    STRBUF *err = strbuf_alloc(256);

    if (master_conf_check(config_dir, NULL, err) < 0)
        msg_fatal("%s", err->data);
    params_load(config_dir, NULL, 0);
    strbuf_free(&err);
}

static void ctl_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    (void) nanosleep(&ts, NULL);
}

static int ctl_check(const char *config_dir)
{
    STRBUF *err = strbuf_alloc(256);
    STRBUF *path = strbuf_alloc(256);
    MASTERCF *cf = NULL;
    int changes;

    if (master_conf_check(config_dir, &cf, err) < 0)
        msg_fatal("%s", err->data);
    params_load(config_dir, NULL, 0);
    if ((changes = queue_dirs_setup(err)) < 0)
        msg_fatal("%s", err->data);
    for (size_t i = 0; i < cf->count; i++) {
        strbuf_printf(path, "%s/%s", var_daemon_directory,
                      cf->entries[i]->args->argv[0]);
        if (access(path->data, X_OK) < 0)
            msg_warn("%s, line %d: service %s: program %s: %m", cf->path,
                     cf->entries[i]->lineno, cf->entries[i]->service,
                     path->data);
    }
    mastercf_free(&cf);
    strbuf_free(&err);
    strbuf_free(&path);
    if (changes > 0)
        msg_info("fixed %d problem(s) in the queue directory", changes);
    return 0;
}

static void ctl_exec_master(const char *config_dir)
{
    STRBUF *path = strbuf_alloc(256);
    char *args[5];

    strbuf_printf(path, "%s/master", var_daemon_directory);
    args[0] = path->data;
    args[1] = "-c";
    args[2] = (char *) config_dir;
    args[3] = msg_verbose ? "-v" : NULL;
    args[4] = NULL;
    execv(path->data, args);
    msg_fatal("exec %s: %m", path->data);
}

static int ctl_start(const char *config_dir, int foreground)
{
    pid_t pid;
    int status;

    ctl_load(config_dir);
    if ((pid = ctl_master_pid()) != 0)
        msg_fatal("the Postern mail system is already running (pid %ld)",
                  (long) pid);
    if (foreground)
        ctl_exec_master(config_dir);
    msg_info("starting the Postern mail system");
    switch (pid = fork()) {
    case -1:
        msg_fatal("fork: %m");
    case 0:
        {
            int fd = open("/dev/null", O_RDWR);

            if (fd < 0 || setsid() < 0)
                msg_fatal("detach: %m");
            /*
             * The configuration was checked above; whatever master still
             * has to say goes to the mail log.  Keeping our stderr would
             * hold the caller's pipe open for master's lifetime.
             */
            dup2(fd, STDIN_FILENO);
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            if (fd > STDERR_FILENO)
                close(fd);
            ctl_exec_master(config_dir);
        }
    default:
        break;
    }
    /* Wait until master holds its lock, or died trying. */
    for (int i = 0; i < CTL_WAIT_SECONDS * 10; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            msg_fatal("master failed to start (%s %d); see the mail log",
                      WIFEXITED(status) ? "exit status" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status)
                      : WTERMSIG(status));
        if (ctl_master_pid() == pid)
            return 0;
        ctl_sleep_ms(100);
    }
    msg_fatal("master did not start within %d seconds", CTL_WAIT_SECONDS);
}

static int ctl_signal(int sig, const char *what, int wait)
{
    pid_t pid = ctl_master_pid();
    int limit = (var_stop_grace_time + CTL_WAIT_SECONDS) * 10;

    if (pid == 0)
        msg_fatal("the Postern mail system is not running");
    if (kill(pid, sig) < 0)
        msg_fatal("signal master pid %ld: %m", (long) pid);
    msg_info("%s", what);
    if (!wait)
        return 0;
    for (int i = 0; i < limit; i++) {
        if (ctl_master_pid() != pid)
            return 0;
        ctl_sleep_ms(100);
    }
    msg_fatal("master pid %ld did not stop", (long) pid);
}

int postern_ctl_main(int argc, char **argv, const char *config_dir)
{
    const char *cmd = argv[0];
    pid_t pid;

    if (argc != 1)
        msg_fatal_status(2, "usage: postern %s", cmd);
    config_dir = params_config_dir(config_dir);
    if (strcmp(cmd, "check") == 0)
        return ctl_check(config_dir);
    if (strcmp(cmd, "start") == 0)
        return ctl_start(config_dir, 0);
    if (strcmp(cmd, "start-fg") == 0)
        return ctl_start(config_dir, 1);
    params_load(config_dir, NULL, PARAMS_FLAG_MISSING_OK);
    if (strcmp(cmd, "status") == 0) {
        if ((pid = ctl_master_pid()) == 0) {
            msg_info("the Postern mail system is not running");
            return 1;
        }
        msg_info("the Postern mail system is running: PID: %ld", (long) pid);
        return 0;
    }
    if (strcmp(cmd, "stop") == 0)
        return ctl_signal(SIGTERM, "stopping the Postern mail system", 1);
    if (strcmp(cmd, "abort") == 0)
        return ctl_signal(SIGQUIT, "aborting the Postern mail system", 1);
    if (strcmp(cmd, "reload") == 0) {
        ctl_load(config_dir);
        return ctl_signal(SIGHUP, "refreshing the Postern mail system", 0);
    }
    msg_fatal_status(2, "unknown command: %s", cmd);
}
