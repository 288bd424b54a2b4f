/*
 * pop3d - the POP3 server: its daemon glue and the command reader both
 * halves of a session share.
 */
#include <ctype.h>
#include <string.h>

#include "mail/login.h"
#include "mail/params.h"
#include "mail/server.h"
#include "pop3d.h"
#include "util/msg.h"

int pop3d_get_command(STREAM *s, STRBUF *buf)
{
    ssize_t n = stream_get_line(s, buf);
    int too_long = 0;

    if (n <= 0)
        return 0;
    /* A line over the stream's limit comes in pieces: drop them all. */
    while (buf->len == 0 || buf->data[buf->len - 1] != '\n') {
        too_long = 1;
        if (stream_get_line(s, buf) <= 0)
            return 0;
    }
    if (too_long || buf->len > POP3D_LINE_LIMIT)
        return -1;
    strbuf_truncate(buf, buf->len - 1);
    if (buf->len > 0 && buf->data[buf->len - 1] == '\r')
        strbuf_truncate(buf, buf->len - 1);
    return 1;
}

char *pop3d_split(char *line, char **args)
{
    char *cp = line;

    while (*cp && *cp != ' ')
        *cp = (char) toupper((unsigned char) *cp), cp++;
    if (*cp)
        *cp++ = 0;
    while (*cp == ' ')
        cp++;
    *args = cp;
    return line;
}

static const LOGIN_OPS pop3d_login_ops = {
    .login = pop3d_login,
    .logout = pop3d_logout,
    .fail_reply = pop3d_fail_reply,
    .mail = pop3d_mail,
};

static void pop3d_serve(SERVER_CLIENT *client, const char *service,
                        char **argv)
{
    LOGIN_OPS ops = pop3d_login_ops;

    (void) service;
    (void) argv;
    ops.timeout = var_pop3d_timeout;
    login_serve(client, &ops);
}

static void pop3d_pre_init(const char *service, char **argv)
{
    (void) service;
    (void) argv;
    if (server_chroot() != NULL)
        msg_fatal("pop3d chroots each session into its mailbox itself: set "
                  "the chroot column of its master.cf entry to n");
    if (server_standalone())
        msg_fatal("pop3d has no stand-alone mode");
    if (pop3d_login_pre_init() < 0)
        msg_fatal("fix the configuration errors above");
    login_init();
}

int main(int argc, char **argv)
{
    static const SERVER_OPS ops = {
        .kind = SERVER_SINGLE,
        .pre_init = pop3d_pre_init,
        .serve = pop3d_serve,
    };

    server_main(argc, argv, &ops);
}
