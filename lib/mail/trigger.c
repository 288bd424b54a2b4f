/*
 * trigger - non-blocking service pokes.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/trigger.h"

int trigger_send(const char *class, const char *name, const char *buf,
                 size_t len)
{
    struct sockaddr_un sun;
    int fd;
    int rc = -1;
    int n;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", class, name);
    if (n < 0 || (size_t) n >= sizeof(sun.sun_path))
        return -1;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                     0)) < 0)
        return -1;
    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) == 0
        && send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t) len)
        rc = 0;
    close(fd);
    return rc;
}
