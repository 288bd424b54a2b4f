/*
 * login - login and mail processes of the mail access servers (see
 * login.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mail/login.h"
#include "mail/params.h"
#include "util/msg.h"

#define LOGIN_USER_MAX  1024            /* the longest user name passed on */
/*
 * The mail process times an idle client out itself (and logs it as
 * such); the relay's own limit, this much later, is only a backstop.
 */
#define LOGIN_RELAY_GRACE   10          /* seconds */

static VMAILBOX_MAPS login_maps;
static uid_t login_owner_uid;
static gid_t login_owner_gid;

void login_init(void)
{
    struct passwd *pw;

    vmailbox_maps_open(&login_maps);
    if (geteuid() != 0)
        return;
    if ((pw = getpwnam(var_mail_owner)) == NULL)
        msg_fatal("unknown mail_owner user: %s", var_mail_owner);
    if (pw->pw_uid == 0)
        msg_fatal("mail_owner %s must not be a privileged account",
                  var_mail_owner);
    login_owner_uid = pw->pw_uid;
    login_owner_gid = pw->pw_gid;
}

/*
 * In a child: the new ids (chrooted into root_dir, if given), then die
 * with the parent (after the switch: a change of credentials clears the
 * parent-death signal).  Not root: only a chdir to root_dir.
 */
static int login_child_become(uid_t uid, gid_t gid, const char *root_dir,
                              pid_t parent)
{
    server_child_detach();
    if (geteuid() == 0) {
        if (server_become(uid, gid, (gid_t) -1, root_dir) < 0)
            return -1;
    } else if (root_dir && chdir(root_dir) < 0) {
        msg_warn("chdir %s: %m", root_dir);
        return -1;
    }
    (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        return -1;
    return 0;
}

/* --- the relay -------------------------------------------------------- */

static int login_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

void login_relay(STREAM *client, int fd, int timeout)
{
    char buf[16384];
    struct pollfd pfd[2];

    for (;;) {
        int ready;

        if (stream_pending(client) > 0) {
            ready = 1;
            pfd[0].revents = POLLIN;
            pfd[1].revents = 0;
        } else {
            pfd[0].fd = client->fd;
            pfd[0].events = POLLIN;
            pfd[1].fd = fd;
            pfd[1].events = POLLIN;
            ready = poll(pfd, 2, timeout > 0 ? timeout * 1000 : -1);
            if (ready < 0 && errno == EINTR)
                continue;
            if (ready <= 0)
                return;                 /* error or nothing moved */
        }
        if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(fd, buf, sizeof(buf));

            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return;                 /* the mail process is done */
            stream_write(client, buf, (size_t) n);
            if (stream_flush(client) < 0)
                return;
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = stream_read(client, buf, sizeof(buf));

            if (n <= 0 || login_write_all(fd, buf, (size_t) n) < 0)
                return;                 /* the client is gone */
        }
    }
}

/* --- the session ------------------------------------------------------ */

static void login_child_login(SERVER_CLIENT *client, const LOGIN_OPS *ops,
                              int user_fd, int relay_fd, pid_t parent)
{
    STREAM *s = NULL;
    STRBUF *user = strbuf_alloc(64);

    if (login_child_become(login_owner_uid, login_owner_gid, NULL, parent) < 0)
        _exit(1);
    if (ops->login(client, &s, user) == 1 && user->len < LOGIN_USER_MAX
        && strlen(user->data) == user->len
        && login_write_all(user_fd, user->data, user->len + 1) == 0) {
        close(user_fd);
        login_relay(s, relay_fd, ops->timeout > 0 ?
                    ops->timeout + LOGIN_RELAY_GRACE : 0);
    }
    if (s) {
        (void) stream_flush(s);
        if (ops->logout)
            ops->logout(s);
    }
    _exit(0);
}

/* Make the Maildir, as its owner, so that it can be the chroot. */
static int login_make_maildir(const VMAILBOX *box)
{
    char *path = box->path->data;
    int rc = 0;

    if (geteuid() == 0 && (setegid(box->gid) < 0 || seteuid(box->uid) < 0)) {
        msg_warn("cannot become uid %ld: %m", (long) box->uid);
        return -1;
    }
    for (char *cp = path + 1; rc == 0; cp++) {
        if (*cp == '/' || *cp == 0) {
            char save = *cp;

            *cp = 0;
            if (mkdir(path, 0700) < 0 && errno != EEXIST) {
                msg_warn("create %s: %m", path);
                rc = -1;
            }
            *cp = save;
            if (save == 0)
                break;
        }
    }
    if (geteuid() != getuid() && (seteuid(0) < 0 || setegid(0) < 0))
        msg_fatal("cannot switch back to root: %m");
    return rc;
}

static void login_child_mail(const LOGIN_OPS *ops, int fd, const char *user,
                             const VMAILBOX *box, const char *clnt,
                             pid_t parent)
{
    STREAM *s;

    if (login_make_maildir(box) < 0
        || login_child_become(box->uid, box->gid, box->path->data,
                              parent) < 0) {
        const char *reply = ops->fail_reply(1);

        (void) login_write_all(fd, reply, strlen(reply));
        _exit(1);
    }
    s = stream_open(fd, ops->timeout, 8192);
    ops->mail(s, user, clnt);
    (void) stream_flush(s);
    _exit(0);
}

/* The user name the login process sends: up to a NUL; NULL if none. */
static char *login_read_user(int fd, STRBUF *user)
{
    char buf[256];
    ssize_t n;

    strbuf_reset(user);
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        char *nul;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if ((nul = memchr(buf, 0, (size_t) n)) != NULL) {
            strbuf_append(user, buf, (size_t) (nul - buf));
            return user->data;
        }
        strbuf_append(user, buf, (size_t) n);
        if (user->len >= LOGIN_USER_MAX)
            return NULL;
    }
    return NULL;
}

static void login_wait(pid_t pid, const char *what)
{
    int status;

    if (pid <= 0)
        return;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return;
    if (WIFSIGNALED(status))
        msg_warn("%s process %ld killed by signal %d", what, (long) pid,
                 WTERMSIG(status));
}

void login_serve(SERVER_CLIENT *client, const LOGIN_OPS *ops)
{
    int user_pipe[2];
    int relay[2];
    pid_t parent = getpid();
    pid_t login_pid;
    pid_t mail_pid = -1;
    STRBUF *user = strbuf_alloc(64);
    STRBUF *clnt = strbuf_alloc(64);
    VMAILBOX box;

    if (pipe2(user_pipe, O_CLOEXEC) < 0) {
        msg_warn("pipe: %m");
        strbuf_free(&user);
        strbuf_free(&clnt);
        return;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, relay) < 0) {
        msg_warn("socketpair: %m");
        close(user_pipe[0]);
        close(user_pipe[1]);
        strbuf_free(&user);
        strbuf_free(&clnt);
        return;
    }
    if ((login_pid = fork()) < 0) {
        msg_warn("fork: %m");
    } else if (login_pid == 0) {
        close(user_pipe[0]);
        close(relay[1]);
        login_child_login(client, ops, user_pipe[1], relay[0], parent);
    }
    close(user_pipe[1]);
    close(relay[0]);

    box.path = strbuf_alloc(128);
    strbuf_printf(clnt, "%s", client->addr);
    if (login_pid > 0 && login_read_user(user_pipe[0], user) != NULL) {
        int found = vmailbox_find(&login_maps, user->data, &box);

        if (found == VMAILBOX_FOUND && (box.path->len == 0
                           || box.path->data[box.path->len - 1] != '/')) {
            msg_warn("user %s: mailbox %s is not a Maildir (a path ending "
                     "in \"/\"): mbox files are not served", user->data,
                     box.path->data);
            found = VMAILBOX_CONFIG;
        }
        if (found != VMAILBOX_FOUND) {
            const char *reply = ops->fail_reply(found != VMAILBOX_NOTFOUND);

            if (found == VMAILBOX_NOTFOUND)
                msg_warn("user %s logged in but has no mailbox in "
                         "virtual_mailbox_maps", user->data);
            (void) login_write_all(relay[1], reply, strlen(reply));
        } else if ((mail_pid = fork()) < 0) {
            const char *reply = ops->fail_reply(1);

            msg_warn("fork: %m");
            (void) login_write_all(relay[1], reply, strlen(reply));
        } else if (mail_pid == 0) {
            close(user_pipe[0]);
            close(client->fd);
            login_child_mail(ops, relay[1], user->data, &box, clnt->data,
                             parent);
        }
    }
    close(user_pipe[0]);
    close(relay[1]);
    login_wait(mail_pid, "mail");
    login_wait(login_pid, "login");
    strbuf_free(&box.path);
    strbuf_free(&user);
    strbuf_free(&clnt);
}
