/*
 * master_spawn - fork and exec service processes, account for them, and
 * reap them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mail/master_proto.h"
#include "master.h"
#include "util/events.h"
#include "util/msg.h"
#include "util/xmalloc.h"

MASTER_PROC *master_procs;

int master_proc_count(void)
{
    int n = 0;

    for (MASTER_PROC *p = master_procs; p; p = p->next)
        n++;
    return n;
}

static MASTER_PROC *master_proc_find(pid_t pid)
{
    for (MASTER_PROC *p = master_procs; p; p = p->next)
        if (p->pid == pid)
            return p;
    return NULL;
}

/*
 * The environment of a service: only what it needs.  Sanitizer options
 * pass through so that the ASan build can be tested whole.
 */
static char **master_child_env(void)
{
    static const char *keep[] = {"TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS",
                                 "LSAN_OPTIONS", NULL};
    ARGV *env = argv_alloc(8);
    STRBUF *buf = strbuf_alloc(64);
    char **result;

    argv_add(env, "PATH=/usr/bin:/bin");
    argv_add(env, "LANG=C");
    for (int i = 0; keep[i]; i++) {
        const char *v = getenv(keep[i]);

        if (v) {
            strbuf_printf(buf, "%s=%s", keep[i], v);
            argv_add(env, buf->data);
        }
    }
    strbuf_free(&buf);
    result = env->argv;
    free(env);                          /* the child execs or exits */
    return result;
}

/* In the child: put the status pipe and listeners at their fixed fds. */
static void master_child_fds(MASTER_SERV *serv)
{
    int count = serv->listen_count + 1;
    int *tmp = xcalloc((size_t) count, sizeof(int));

    /* Move everything high first, so dup2() cannot clobber a source. */
    tmp[0] = fcntl(serv->status_fd[1], F_DUPFD_CLOEXEC, 64);
    for (int i = 0; i < serv->listen_count; i++)
        tmp[i + 1] = fcntl(serv->listen_fds[i], F_DUPFD_CLOEXEC, 64);
    for (int i = 0; i < count; i++) {
        if (tmp[i] < 0 || dup2(tmp[i], MASTER_STATUS_FD + i) < 0)
            msg_fatal("%s: set up descriptor %d: %m", serv->path,
                      MASTER_STATUS_FD + i);
        close(tmp[i]);
    }
    free(tmp);
}

void master_spawn(MASTER_SERV *serv)
{
    MASTER_PROC *proc;
    STRBUF *nsock = strbuf_alloc(16);
    pid_t pid;

    if (master_stopping || serv->retired)
        return;
    switch (pid = fork()) {
    case -1:
        msg_warn("fork: %m");
        master_throttle(serv);
        strbuf_free(&nsock);
        return;
    case 0:
        {
            ARGV *args = argv_copy(serv->args);
            sigset_t none;
            struct sigaction sa;

            /* A master that dies must not leave its children behind. */
            (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() == 1)
                _exit(0);
            memset(&sa, 0, sizeof(sa));
            sa.sa_handler = SIG_DFL;
            sigemptyset(&sa.sa_mask);
            for (int sig = 1; sig < NSIG; sig++)
                (void) sigaction(sig, &sa, NULL);
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            master_child_fds(serv);
            /* argv: program -s N ... (see master_proto.h). */
            strbuf_printf(nsock, "%d", serv->listen_count);
            argv_truncate(args, 1);
            argv_add(args, "-s");
            argv_add(args, nsock->data);
            for (size_t i = 1; i < serv->args->argc; i++)
                argv_add(args, serv->args->argv[i]);
            execve(serv->path, args->argv, master_child_env());
            msg_fatal("exec %s: %m", serv->path);
        }
    default:
        break;
    }
    strbuf_free(&nsock);
    proc = xcalloc(1, sizeof(*proc));
    proc->pid = pid;
    proc->serv = serv;
    proc->avail = 1;
    proc->next = master_procs;
    master_procs = proc;
    serv->total_proc++;
    serv->avail_proc++;
    serv->used = 1;
    if (msg_verbose)
        msg_info("service %s: started %s pid %ld", serv->key, serv->path,
                 (long) pid);
    master_avail_update(serv);
}

/* A child reported busy or free. */
void master_status_event(int event, void *context)
{
    MASTER_SERV *serv = context;
    MASTER_STATUS rec;
    ssize_t n;

    (void) event;
    while ((n = read(serv->status_fd[0], &rec, sizeof(rec))) > 0) {
        MASTER_PROC *proc;

        if (n != (ssize_t) sizeof(rec)) {
            msg_warn("service %s: short status record", serv->key);
            return;
        }
        if ((proc = master_proc_find(rec.pid)) == NULL
            || proc->serv != serv) {
            if (msg_verbose)
                msg_info("service %s: status from unknown pid %ld",
                         serv->key, (long) rec.pid);
            continue;
        }
        if (rec.status == MASTER_STAT_TAKEN && proc->avail) {
            proc->avail = 0;
            proc->use_count++;
            serv->avail_proc--;
        } else if (rec.status == MASTER_STAT_AVAIL && !proc->avail) {
            proc->avail = 1;
            serv->avail_proc++;
        }
        master_avail_update(serv);
    }
}

static void master_log_exit(MASTER_PROC *proc, int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        msg_warn("process %s pid %ld exit status %d", proc->serv->path,
                 (long) proc->pid, WEXITSTATUS(status));
    else if (WIFSIGNALED(status) && !master_stopping)
        msg_warn("process %s pid %ld killed by signal %d", proc->serv->path,
                 (long) proc->pid, WTERMSIG(status));
    else if (msg_verbose)
        msg_info("process %s pid %ld exited", proc->serv->path,
                 (long) proc->pid);
}

static int master_normal_exit(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void master_reap(void)
{
    pid_t pid;
    int status;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        MASTER_PROC **pp;
        MASTER_PROC *proc;
        MASTER_SERV *serv;

        for (pp = &master_procs; (proc = *pp) != NULL; pp = &proc->next)
            if (proc->pid == pid)
                break;
        if (proc == NULL)
            continue;
        *pp = proc->next;
        serv = proc->serv;
        master_log_exit(proc, status);
        serv->total_proc--;
        if (proc->avail)
            serv->avail_proc--;
        /*
         * Died before it ever took a client, and not because we asked:
         * the service is broken; do not fork it in a loop.
         */
        if (!master_normal_exit(status) && proc->use_count == 0
            && !serv->retired && !master_stopping)
            master_throttle(serv);
        free(proc);
        master_avail_update(serv);
    }
}

void master_kill_all(MASTER_SERV *list, int sig)
{
    for (MASTER_PROC *p = master_procs; p; p = p->next)
        if (list == NULL || p->serv == list)
            (void) kill(p->pid, sig);
}
