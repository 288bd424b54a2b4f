/*
 * local_command - delivery to |command (Postfix local(8) EXTERNAL
 * COMMAND DELIVERY).
 *
 * The command runs as "/bin/sh -c COMMAND" with the rights it was given
 * (the alias table owner or default_privs; never root), in its own
 * process group, with a small clean environment, the message on standard
 * input (From_ line, Return-Path:, X-Original-To:, Delivered-To:, the
 * content) and standard output and error captured for the reason.  It
 * may run for command_time_limit seconds (default 1000s), then its group
 * is killed.
 *
 * Exit status 0: delivered.  Output that starts with an enhanced status
 * code (4.X.X or 5.X.X) decides the outcome; otherwise the sysexits(3)
 * code does, as in Postfix: EX_TEMPFAIL (75) and EX_OSERR (71) are
 * temporary, other codes permanent.  A command killed by a signal is a
 * temporary failure; one that ran out of time a permanent one (5.3.0).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "local.h"
#include "mail/params.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

#define LOCAL_ENV_FILTER    "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyz" \
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* command_time_limit, in seconds. */
static int local_time_limit(void)
{
    return var_command_time_limit;
}

/* --- the environment -------------------------------------------------- */

static void local_env_add(ARGV *env, const char *name, const char *value)
{
    STRBUF *buf = strbuf_alloc(64);

    strbuf_printf(buf, "%s=", name);
    for (const char *cp = value ? value : ""; *cp; cp++)
        strbuf_addch(buf, strchr(LOCAL_ENV_FILTER, *cp) ? *cp : '_');
    argv_add(env, buf->data);
    strbuf_free(&buf);
}

static ARGV *local_command_env(const LOCAL_RCPT *lrc, const char *to,
                               const LOCAL_PRIV *priv)
{
    ARGV *env = argv_alloc(16);
    const char *at = strrchr(to, '@');
    STRBUF *local = strbuf_alloc(64);
    size_t cut;

    strbuf_setn(local, to, at ? (size_t) (at - to) : strlen(to));
    strbuf_lower(local);
    cut = *var_recipient_delimiter
        ? strcspn(local->data, var_recipient_delimiter) : local->len;
    if (cut == 0)
        cut = local->len;
    argv_add(env, "PATH=/usr/bin:/bin");
    local_env_add(env, "SENDER", lrc->lr->req->sender);
    local_env_add(env, "RECIPIENT", to);
    local_env_add(env, "ORIGINAL_RECIPIENT", lrc->orig);
    local_env_add(env, "LOCAL", local->data);
    local_env_add(env, "DOMAIN", at ? at + 1 : "");
    local_env_add(env, "EXTENSION", cut < local->len
                  ? local->data + cut + 1 : "");
    strbuf_truncate(local, cut);
    local_env_add(env, "USER", local->data);
    local_env_add(env, "LOGNAME", local->data);
    local_env_add(env, "HOME", priv->home);
    local_env_add(env, "SHELL", priv->shell);
    if (lrc->lr->req->client_address)
        local_env_add(env, "CLIENT_ADDRESS", lrc->lr->req->client_address);
    if (lrc->lr->req->client_name)
        local_env_add(env, "CLIENT_HOSTNAME", lrc->lr->req->client_name);
    strbuf_free(&local);
    return env;
}

/* --- feeding the command ---------------------------------------------- */

typedef struct LOCAL_PIPE {
    int     in;                         /* the command's stdin, or -1 */
    int     out;                        /* its stdout+stderr, or -1 */
    long long deadline;                 /* stream_now_ms() */
    STRBUF *output;                     /* the first LOCAL_OUTPUT_MAX bytes */
    int     last;                       /* the last content byte */
    int     timed_out;
    int     broken;                     /* it closed its stdin */
} LOCAL_PIPE;

static void local_pipe_read(LOCAL_PIPE *lp)
{
    char buf[4096];
    ssize_t n = read(lp->out, buf, sizeof(buf));

    if (n > 0) {
        size_t room = LOCAL_OUTPUT_MAX - lp->output->len;

        strbuf_append(lp->output, buf, (size_t) n < room ? (size_t) n : room);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(lp->out);
        lp->out = -1;
    }
}

/* Wait for the command: output to read, or room to write (want_write). */
static int local_pipe_wait(LOCAL_PIPE *lp, int want_write)
{
    struct pollfd pfd[2];
    nfds_t n = 0;
    long long left = lp->deadline - stream_now_ms();

    if (left <= 0) {
        lp->timed_out = 1;
        return -1;
    }
    if (want_write) {
        pfd[n].fd = lp->in;
        pfd[n++].events = POLLOUT;
    }
    if (lp->out >= 0) {
        pfd[n].fd = lp->out;
        pfd[n++].events = POLLIN;
    }
    if (n == 0)
        return 0;
    if (poll(pfd, n, (int) (left > 1000000 ? 1000000 : left)) < 0) {
        if (errno != EINTR) {
            msg_warn("poll: %m");
            lp->broken = 1;
            return -1;
        }
        return 0;
    }
    if (lp->out >= 0 && pfd[n - 1].fd == lp->out
        && (pfd[n - 1].revents & (POLLIN | POLLHUP | POLLERR)))
        local_pipe_read(lp);
    return 0;
}

static int local_pipe_write(LOCAL_PIPE *lp, const char *data, size_t len)
{
    while (len > 0 && !lp->broken && !lp->timed_out) {
        ssize_t n = write(lp->in, data, len);

        if (n > 0) {
            data += n;
            len -= (size_t) n;
        } else if (n < 0 && errno == EPIPE) {
            lp->broken = 1;             /* it did not want it all */
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            msg_warn("write to command: %m");
            lp->broken = 1;
        } else if (local_pipe_wait(lp, 1) < 0) {
            break;
        }
    }
    return lp->broken || lp->timed_out ? -1 : 0;
}

static int local_pipe_put(const char *data, size_t len, void *ctx)
{
    LOCAL_PIPE *lp = ctx;

    if (len > 0)
        lp->last = (unsigned char) data[len - 1];
    return local_pipe_write(lp, data, len);
}

/* --- the outcome ------------------------------------------------------ */

static const struct {
    int     code;
    const char *dsn;
} local_sysexits[] = {
    {EX_USAGE, "5.3.0"}, {EX_DATAERR, "5.6.0"}, {EX_NOINPUT, "5.3.0"},
    {EX_NOUSER, "5.1.1"}, {EX_NOHOST, "5.1.2"}, {EX_UNAVAILABLE, "5.3.0"},
    {EX_SOFTWARE, "5.3.0"}, {EX_OSERR, "4.3.0"}, {EX_OSFILE, "5.3.0"},
    {EX_CANTCREAT, "5.2.0"}, {EX_IOERR, "5.3.0"}, {EX_TEMPFAIL, "4.3.0"},
    {EX_PROTOCOL, "5.5.0"}, {EX_NOPERM, "5.7.0"}, {EX_CONFIG, "5.3.5"},
};

/* Output that starts with "4.X.X " or "5.X.X ": that code. */
static int local_output_dsn(const char *output, char *dsn, size_t size)
{
    size_t n = strcspn(output, " \t\r\n");
    char *code;
    int ok;

    if (n == 0 || n >= DELIVER_DSN_MAX || (*output != '4' && *output != '5'))
        return 0;
    code = xstrndup(output, n);
    if ((ok = deliver_dsn_valid(code)) != 0)
        snprintf(dsn, size, "%s", code);
    free(code);
    return ok;
}

/* Output as one printable line. */
static void local_clean_output(STRBUF *out)
{
    for (size_t i = 0; i < out->len; i++) {
        unsigned char ch = (unsigned char) out->data[i];

        if (ch == '\n' || ch == '\r' || ch == '\t')
            out->data[i] = ' ';
        else if (ch < 0x20 || ch == 0x7f)
            out->data[i] = '?';
    }
    strbuf_trim_right(out);
}

static void local_command_result(LOCAL_RCPT *lrc, const char *to,
                                 const char *command, LOCAL_PIPE *lp,
                                 int status)
{
    const char *dsn = "5.3.0";
    char code[DELIVER_DSN_MAX];
    const char *sep;

    local_clean_output(lp->output);
    sep = lp->output->len ? ". Command output: " : "";
    if (lp->timed_out) {
        local_branch(lrc, to, 550, "5.3.0", "Command time limit exceeded: "
                     "\"%s\"%s%s", command, sep, lp->output->data);
    } else if (WIFSIGNALED(status)) {
        local_branch(lrc, to, 450, "4.3.0", "Command died with signal %d: "
                     "\"%s\"%s%s", WTERMSIG(status), command, sep,
                     lp->output->data);
    } else if (WEXITSTATUS(status) == 0) {
        local_branch(lrc, to, 0, "2.0.0", "delivered to command: %s",
                     command);
    } else {
        if (local_output_dsn(lp->output->data, code, sizeof(code))) {
            dsn = code;
        } else {
            for (size_t i = 0; i < sizeof(local_sysexits)
                 / sizeof(local_sysexits[0]); i++)
                if (local_sysexits[i].code == WEXITSTATUS(status))
                    dsn = local_sysexits[i].dsn;
        }
        local_branch(lrc, to, *dsn == '4' ? 450 : 550, dsn, "Command died "
                     "with status %d: \"%s\"%s%s", WEXITSTATUS(status),
                     command, sep, lp->output->data);
    }
}

/* --- running it ------------------------------------------------------- */

static void local_command_child(const char *command, const LOCAL_PRIV *priv,
                                ARGV *env, int in, int out)
{
    char *args[] = {"sh", "-c", (char *) command, NULL};

    if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0
        || dup2(out, STDERR_FILENO) < 0)
        _exit(EX_OSERR);
    close_range(3, ~0U, 0);
    (void) setsid();
    (void) signal(SIGPIPE, SIG_DFL);
    if (geteuid() == 0) {
        gid_t gid = priv->gid;

        if (priv->uid == 0 || setgroups(1, &gid) < 0
            || setgid(priv->gid) < 0 || setuid(priv->uid) < 0
            || getuid() != priv->uid || setuid(0) == 0) {
            static const char why[] = "cannot switch to an unprivileged "
                "account\n";

            if (write(STDERR_FILENO, why, sizeof(why) - 1) < 0)
                _exit(EX_TEMPFAIL);
            _exit(EX_TEMPFAIL);
        }
    }
    umask(077);
    if ((priv->home == NULL || chdir(priv->home) < 0) && chdir("/") < 0)
        _exit(EX_OSERR);
    execve("/bin/sh", args, env->argv);
    _exit(EX_OSERR);
}

void local_deliver_command(LOCAL_RCPT *lrc, const char *to,
                           const char *command, const LOCAL_PRIV *priv)
{
    LOCAL_PIPE lp;
    STRBUF *head = strbuf_alloc(256);
    STRBUF *prepend = strbuf_alloc(256);
    STRBUF *err = strbuf_alloc(64);
    ARGV *env = local_command_env(lrc, to, priv);
    int in[2] = {-1, -1};
    int out[2] = {-1, -1};
    int status = 0;
    pid_t pid;

    memset(&lp, 0, sizeof(lp));
    lp.in = lp.out = -1;
    lp.output = strbuf_alloc(LOCAL_OUTPUT_MAX + 1);
    lp.last = '\n';
    if (geteuid() == 0 && priv->uid == 0) {
        msg_warn("%s: refusing to run \"%s\" as root", to, command);
        local_branch(lrc, to, 450, "4.3.5", "mail system configuration "
                     "error");
        goto done;
    }
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0
        || (pid = fork()) < 0) {
        msg_warn("%s: cannot run command: %m", to);
        local_branch(lrc, to, 450, "4.3.0", "cannot run command: %s",
                     strerror(errno));
        goto done;
    }
    if (pid == 0)
        local_command_child(command, priv, env, in[0], out[1]);
    close(in[0]);
    close(out[1]);
    lp.in = in[1];
    lp.out = out[0];
    in[0] = in[1] = out[0] = out[1] = -1;
    (void) fcntl(lp.in, F_SETFL, O_NONBLOCK);
    (void) fcntl(lp.out, F_SETFL, O_NONBLOCK);
    lp.deadline = stream_now_ms() + 1000LL * local_time_limit();

    /* The message, as Postfix pipes it: From_ line and our headers. */
    maildir_from_line(head, lrc->lr->req->sender, time(NULL));
    local_prepend(prepend, lrc);
    strbuf_cat(head, prepend->data);
    if (local_pipe_write(&lp, head->data, head->len) == 0
        && qfile_read_content(lrc->lr->qfd, lrc->lr->env, local_pipe_put,
                              &lp, err) == 0
        && lp.last != '\n')
        (void) local_pipe_write(&lp, "\n", 1);
    if (err->len && !lp.broken && !lp.timed_out)
        msg_warn("%s: %s", lrc->lr->req->queue_id, err->data);
    close(lp.in);
    lp.in = -1;

    /* Its output until it closes it, then its exit, within the time. */
    while (lp.out >= 0 && !lp.timed_out && local_pipe_wait(&lp, 0) == 0)
        /* void */ ;
    for (;;) {
        pid_t rc;

        if (!lp.timed_out && stream_now_ms() >= lp.deadline)
            lp.timed_out = 1;
        if (lp.timed_out) {
            (void) kill(-pid, SIGKILL);
            (void) kill(pid, SIGKILL);
        }
        rc = waitpid(pid, &status, lp.timed_out ? 0 : WNOHANG);
        if (rc == pid || (rc < 0 && errno != EINTR))
            break;
        if (rc == 0) {
            struct timespec ts = {0, 10 * 1000 * 1000};

            nanosleep(&ts, NULL);
        }
    }
    if (lp.timed_out)
        msg_warn("%s: command \"%s\" ran out of time", to, command);
    local_command_result(lrc, to, command, &lp, status);
done:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    if (lp.out >= 0)
        close(lp.out);
    argv_free(&env);
    strbuf_free(&lp.output);
    strbuf_free(&head);
    strbuf_free(&prepend);
    strbuf_free(&err);
}
