/*
 * server - single-client and event-driven service skeletons.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/master_proto.h"
#include "mail/params.h"
#include "mail/server.h"
#include "util/argv.h"
#include "util/events.h"
#include "util/msg.h"
#include "util/stream.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

#define SERVER_TRIGGER_MAX  64

static const char *server_name = "";
static char **server_args;
static const SERVER_OPS *server_ops;
static int server_nsock;
static int server_status_ok;
static volatile sig_atomic_t server_stop_flag;
static int server_alone;
static const char *server_chroot_dir;      /* chroot after pre_init */

int server_standalone(void)
{
    return server_alone;
}

const char *server_service_name(void)
{
    return server_name;
}

int server_stopping(void)
{
    return server_stop_flag != 0;
}

static SERVER_KIND server_kind;

/*
 * SIGTERM: finish the current client, take no new one.  A single server
 * closes its listeners right here (close() is async-signal-safe), so that
 * while it finishes, its copy does not keep a retired port accepting
 * connections that nobody will serve.
 */
static void server_sigterm(int sig)
{
    (void) sig;
    server_stop_flag = 1;
    if (server_kind == SERVER_SINGLE)
        for (int i = 0; i < server_nsock; i++)
            (void) close(MASTER_LISTEN_FD + i);
}

void server_child_detach(void)
{
    struct sigaction sa;

    for (int i = 0; i < server_nsock; i++)
        (void) close(MASTER_LISTEN_FD + i);
    if (server_status_ok)
        (void) close(MASTER_STATUS_FD);
    server_nsock = 0;
    server_status_ok = 0;
    /* The parent finishes the session; a child just goes. */
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
}

/* Tell master we are busy or free; exit if master is gone. */
static void server_report(int status)
{
    MASTER_STATUS rec;

    if (!server_status_ok)
        return;
    memset(&rec, 0, sizeof(rec));
    rec.pid = getpid();
    rec.status = status;
    for (;;) {
        ssize_t n = write(MASTER_STATUS_FD, &rec, sizeof(rec));

        if (n == (ssize_t) sizeof(rec))
            return;
        if (n < 0 && errno == EINTR)
            continue;
        msg_info("master is gone: %s", n < 0 ? strerror(errno)
                 : "short write");
        exit(0);
    }
}

static void server_exit(void)
{
    if (server_ops->pre_exit)
        server_ops->pre_exit();
    exit(0);
}

int server_become(uid_t uid, gid_t gid, gid_t extra_gid, const char *root_dir)
{
    gid_t groups[2];
    size_t ngroups = 1;

    if (root_dir) {
        if (chroot(root_dir) < 0) {
            msg_warn("chroot %s: %m", root_dir);
            return -1;
        }
        if (chdir("/") < 0) {
            msg_warn("chdir / in chroot %s: %m", root_dir);
            return -1;
        }
    }
    groups[0] = gid;
    if (extra_gid != (gid_t) -1 && extra_gid != gid)
        groups[ngroups++] = extra_gid;
    if (setgroups(ngroups, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
        msg_warn("cannot become uid %ld gid %ld: %m", (long) uid, (long) gid);
        return -1;
    }
    /* Verify: no way back to root, and every id is the one we asked for. */
    if (getuid() != uid || geteuid() != uid || getgid() != gid
        || getegid() != gid || (uid != 0 && setuid(0) == 0)) {
        msg_warn("privilege switch to uid %ld gid %ld did not take effect",
                 (long) uid, (long) gid);
        return -1;
    }
    return 0;
}

void server_drop_privileges(const char *user, const char *root_dir)
{
    struct passwd *pw = NULL;

    if (user) {
        if ((pw = getpwnam(user)) == NULL)
            msg_fatal("unknown mail_owner user: %s", user);
        if (pw->pw_uid == 0)
            msg_fatal("mail_owner %s must not be a privileged account", user);
    }
    if (pw == NULL) {
        if (root_dir && (chroot(root_dir) < 0 || chdir("/") < 0))
            msg_fatal("chroot %s: %m", root_dir);
        return;
    }
    if (server_become(pw->pw_uid, pw->pw_gid, (gid_t) -1, root_dir) < 0)
        msg_fatal("cannot run as %s", user);
}

/* Numeric address and port of an inet socket address; else unchanged. */
static void server_format_addr(const struct sockaddr_storage *ss, char *addr,
                               size_t size, int *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) ss;

        inet_ntop(AF_INET, &sin->sin_addr, addr, (socklen_t) size);
        *port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) ss;

        inet_ntop(AF_INET6, &sin6->sin6_addr, addr, (socklen_t) size);
        *port = ntohs(sin6->sin6_port);
    }
}

static void server_fill_client(SERVER_CLIENT *client, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(client, 0, sizeof(*client));
    client->fd = fd;
    client->wfd = fd;
    strcpy(client->addr, "local");      /* fits */
    strcpy(client->local_addr, "local");
    if (getpeername(fd, (struct sockaddr *) &ss, &len) == 0) {
        client->family = ss.ss_family;
        server_format_addr(&ss, client->addr, sizeof(client->addr),
                           &client->port);
    }
    /*
     * Servers flush a reply only when no command waits (pipelining), and
     * then the client waits for it: Nagle would hold the last segment
     * back for the client's delayed ACK (40 ms after a TLS handshake's
     * ticket, after each POP3 RETR).
     */
    if (client->family == AF_INET || client->family == AF_INET6) {
        int on = 1;

        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    }
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *) &ss, &len) == 0)
        server_format_addr(&ss, client->local_addr, sizeof(client->local_addr),
                           &client->local_port);
}

/* Accept on a listener; -1 when another process was faster. */
static int server_accept(int listen_fd)
{
    int fd;

    do {
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0 && errno != EAGAIN && errno != EWOULDBLOCK
        && errno != ECONNABORTED)
        msg_warn("accept: %m");
    return fd;
}

/* --- single-client servers -------------------------------------------- */

static void server_single_loop(void)
{
    struct pollfd *pfds = xcalloc((size_t) server_nsock, sizeof(*pfds));
    int use_count = 0;

    for (int i = 0; i < server_nsock; i++) {
        pfds[i].fd = MASTER_LISTEN_FD + i;
        pfds[i].events = POLLIN;
    }
    long long idle_end = stream_now_ms() + var_max_idle * 1000LL;

    for (;;) {
        long long now;
        int wait;
        int rc;

        if (server_stop_flag)
            break;
        now = stream_now_ms();
        wait = (int) (idle_end > now ? idle_end - now : 0);
        if (server_ops->idle) {
            int want = server_ops->idle();

            if (want > 0 && want < wait)
                wait = want;
        }
        rc = poll(pfds, (nfds_t) server_nsock, wait);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            msg_fatal("poll: %m");
        }
        if (rc == 0) {
            if (stream_now_ms() < idle_end)
                continue;               /* the idle hook's turn */
            if (msg_verbose)
                msg_info("idle timeout -- exiting");
            break;
        }
        for (int i = 0; i < server_nsock && !server_stop_flag; i++) {
            SERVER_CLIENT client;
            int fd;

            if (!(pfds[i].revents & POLLIN))
                continue;
            if ((fd = server_accept(pfds[i].fd)) < 0)
                continue;
            server_report(MASTER_STAT_TAKEN);
            server_fill_client(&client, fd);
            server_ops->serve(&client, server_name, server_args);
            (void) close(fd);
            use_count++;
            if (use_count >= var_max_use) {
                if (msg_verbose)
                    msg_info("max_use reached -- exiting");
                free(pfds);
                server_exit();
            }
            server_report(MASTER_STAT_AVAIL);
            idle_end = stream_now_ms() + var_max_idle * 1000LL;
        }
    }
    free(pfds);
    server_exit();
}

/* --- event servers ---------------------------------------------------- */

typedef struct SERVER_TRIGGER {
    int     fd;
    char    buf[SERVER_TRIGGER_MAX];
    size_t  len;
} SERVER_TRIGGER;

static void server_trigger_done(SERVER_TRIGGER *tr)
{
    event_disable_readwrite(tr->fd);
    (void) close(tr->fd);
    if (tr->len > 0)
        server_ops->trigger(tr->buf, tr->len, server_name, server_args);
    free(tr);
}

static void server_trigger_timeout(int event, void *context)
{
    (void) event;
    server_trigger_done(context);
}

static void server_trigger_read(int event, void *context)
{
    SERVER_TRIGGER *tr = context;
    ssize_t n;

    (void) event;
    n = read(tr->fd, tr->buf + tr->len, sizeof(tr->buf) - tr->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n > 0)
        tr->len += (size_t) n;
    if (n <= 0 || tr->len == sizeof(tr->buf)) {
        event_cancel_timer(server_trigger_timeout, tr);
        server_trigger_done(tr);
    }
}

static void server_event_accept(int event, void *context);

/* Out of descriptors: stop accepting for a second instead of spinning. */
static void server_event_resume(int event, void *context)
{
    (void) event;
    event_enable_read((int) (long) context, server_event_accept, context);
}

static void server_event_accept(int event, void *context)
{
    int listen_fd = (int) (long) context;
    SERVER_CLIENT client;
    int fd;

    (void) event;
    if ((fd = server_accept(listen_fd)) < 0) {
        if (errno == EMFILE || errno == ENFILE) {
            event_disable_readwrite(listen_fd);
            event_request_timer(server_event_resume, context, 1000);
        }
        return;
    }
    if (server_ops->accept) {
        server_fill_client(&client, fd);
        server_ops->accept(&client, server_name, server_args);
    } else {
        /* A trigger: read what the poker sends, briefly, then act. */
        SERVER_TRIGGER *tr = xcalloc(1, sizeof(*tr));

        tr->fd = fd;
        event_enable_read(fd, server_trigger_read, tr);
        event_request_timer(server_trigger_timeout, tr, 1000);
    }
}

static void server_event_loop(void)
{
    for (int i = 0; i < server_nsock; i++)
        event_enable_read(MASTER_LISTEN_FD + i, server_event_accept,
                          (void *) (long) (MASTER_LISTEN_FD + i));
    server_report(MASTER_STAT_TAKEN);   /* one process serves everyone */
    while (!server_stop_flag)
        event_loop(1000);
    server_exit();
}

/* --- start-up --------------------------------------------------------- */

static void server_usage(const char *prog)
{
    msg_fatal("usage: %s -c config_dir [-m main.cf] -n service -t type "
              "-s count [-U] [-C] [-o name=value] [-v] [args]", prog);
}

const char *server_chroot(void)
{
    return server_chroot_dir;
}

void server_main(int argc, char **argv, const SERVER_OPS *ops)
{
    ARGV *overrides = argv_alloc(4);
    const char *config_dir = NULL;
    const char *type = "unix";
    int unprivileged = 0;
    int chrooted = 0;
    struct sigaction sa;
    long n;
    int ch;

    server_ops = ops;
    server_kind = ops->kind;
    msg_init(argv[0], MSG_STDERR);
    while ((ch = getopt(argc, argv, "+c:m:n:t:s:o:vUCS")) != -1) {
        switch (ch) {
        case 'c':
            config_dir = optarg;
            break;
        case 'm':
            params_set_maincf_file(optarg);
            break;
        case 'n':
            server_name = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 's':
            if (str_to_long(optarg, 0, 1000, &n) < 0)
                server_usage(argv[0]);
            server_nsock = (int) n;
            break;
        case 'o':
            argv_add(overrides, optarg);
            break;
        case 'v':
            msg_verbose++;
            break;
        case 'U':
            unprivileged = 1;
            break;
        case 'C':
            chrooted = 1;
            break;
        case 'S':
            server_alone = 1;
            break;
        default:
            server_usage(argv[0]);
        }
    }
    server_args = argv + optind;
    (void) type;

    /* Configuration, then logging as syslog_name/program. */
    {
        STRBUF *assign = strbuf_alloc(64);
        const char *error;

        strbuf_printf(assign, "process_name=%s", msg_progname());
        argv_add(overrides, assign->data);
        /* For master.cf's "-o syslog_name=postern/$service_name". */
        strbuf_printf(assign, "service_name=%s", server_name);
        argv_add(overrides, assign->data);
        strbuf_free(&assign);
        params_load(config_dir, overrides, 0);
        /* A user running -S may not write maillog_file: use syslog. */
        if (msg_open_log(var_syslog_name, var_maillog_file, &error) < 0
            && (!server_alone || msg_open_log(var_syslog_name, "", &error) < 0))
            msg_fatal("open %s: %s", var_maillog_file, error);
    }
    msg_stderr(isatty(STDERR_FILENO));
    argv_free(&overrides);

    server_status_ok = fcntl(MASTER_STATUS_FD, F_GETFD) >= 0;
    for (int i = 0; i < server_nsock; i++) {
        int fd = MASTER_LISTEN_FD + i;
        int fl = fcntl(fd, F_GETFL);

        if (fl < 0)
            msg_fatal("listener %d: %m", fd);
        /* Several processes poll one listener: only one wins accept(). */
        if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0
            || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
            msg_fatal("listener %d: %m", fd);
    }
    if (server_status_ok)
        (void) fcntl(MASTER_STATUS_FD, F_SETFD, FD_CLOEXEC);

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = server_sigterm;     /* no SA_RESTART: wake up poll */
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    if (server_alone) {
        SERVER_CLIENT client;

        /* The user's own session: no queue access, no privileges. */
        if (ops->kind != SERVER_SINGLE)
            msg_fatal("-S works with single-client services only");
        if (ops->pre_init)
            ops->pre_init(server_name, server_args);
        if (ops->post_init)
            ops->post_init(server_name, server_args);
        memset(&client, 0, sizeof(client));
        client.fd = STDIN_FILENO;
        client.wfd = STDOUT_FILENO;
        client.family = AF_INET;
        strcpy(client.addr, "127.0.0.1");   /* fits */
        strcpy(client.local_addr, "127.0.0.1");
        ops->serve(&client, server_name, server_args);
        server_exit();
    }
    if (chdir(var_queue_directory) < 0)
        msg_fatal("chdir %s: %m", var_queue_directory);
    if (chrooted && geteuid() == 0)
        server_chroot_dir = var_queue_directory;
    if (ops->pre_init)
        ops->pre_init(server_name, server_args);
    if (geteuid() == 0)
        server_drop_privileges(unprivileged ? var_mail_owner : NULL,
                               server_chroot_dir);
    if (unprivileged && (getuid() == 0 || geteuid() == 0))
        msg_fatal("refusing to run as root");
    if (ops->post_init)
        ops->post_init(server_name, server_args);

    if (ops->kind == SERVER_SINGLE) {
        if (ops->serve == NULL)
            msg_panic("server_main: single server without serve()");
        server_single_loop();
    } else {
        if (ops->accept == NULL && ops->trigger == NULL)
            msg_panic("server_main: event server without accept/trigger");
        server_event_loop();
    }
    /* NOTREACHED */
    exit(0);
}
