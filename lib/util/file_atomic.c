/*
 * file_atomic - write-temp, fsync, rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file_atomic.h"

int file_write_atomic(const char *path, const void *data, size_t len,
                      mode_t new_mode, STRBUF *err)
{
    STRBUF *tmp = strbuf_alloc(256);
    const char *cp = data;
    struct stat st;
    mode_t mode = new_mode;
    int fd;
    int saved;

    if (stat(path, &st) == 0)
        mode = st.st_mode & 07777;
    strbuf_printf(tmp, "%s.tmp.%ld", path, (long) getpid());
    /*
     * The name is predictable and the directory may belong to another
     * user (master writes into data_directory as root): remove what is
     * there and create our own file, never following a planted symlink.
     */
    (void) unlink(tmp->data);
    if ((fd = open(tmp->data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
                   | O_CLOEXEC, mode)) < 0) {
        strbuf_printf(err, "create %s: %s", tmp->data, strerror(errno));
        strbuf_free(&tmp);
        return -1;
    }
    while (len > 0) {
        ssize_t n = write(fd, cp, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            goto fail;
        }
        cp += n;
        len -= (size_t) n;
    }
    if (fchmod(fd, mode) < 0 || fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp->data, path) < 0)
        goto fail;
    strbuf_free(&tmp);
    return 0;

fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp->data);
    strbuf_printf(err, "write %s: %s", path, strerror(saved));
    strbuf_free(&tmp);
    errno = saved;
    return -1;
}
