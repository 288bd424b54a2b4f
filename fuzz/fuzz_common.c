/*
 * fuzz_common - see fuzz_common.h.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "util/msg.h"
#include "util/xmalloc.h"

char    fuzz_dir[64];
int     fuzz_home_fd = -1;
int     fuzz_trace;
int     fuzz_config_errors;

static const char *fuzz_name = "fuzz";
static void (*fuzz_remove)(const char *dir);
static char **fuzz_argv;                /* argv with absolute artifacts */

void    fuzz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_%s: %s: %s\n", fuzz_name, what, detail);
    abort();
}

void    fuzz_log(const char *severity, const char *text)
{
    if (strcmp(severity, "error") == 0)
        fuzz_config_errors++;
    if (fuzz_trace)
        fprintf(stderr, "log: %s%s%s\n", severity, *severity ? ": " : "",
                text);
}

/* --- the temporary directory ------------------------------------------ */

static int fuzz_rm(const char *path, const struct stat *st, int type,
                   struct FTW *ftw)
{
    (void) st;
    (void) ftw;
    if (type == FTW_DP)
        (void) rmdir(path);
    else
        (void) unlink(path);
    return 0;
}

void    fuzz_remove_tree(const char *dir)
{
    (void) nftw(dir, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void fuzz_remove_dir(void)
{
    if (fuzz_dir[0])
        fuzz_remove(fuzz_dir);
}

/*
 * A crash ends the process without atexit(): the directory of a fuzzer
 * that is gone (its pid is in the name) is removed by the next one.
 */
static void fuzz_remove_stale_dirs(void)
{
    DIR    *dp = opendir("/tmp");
    struct dirent *de;
    STRBUF *prefix = strbuf_alloc(32);
    STRBUF *path = strbuf_alloc(64);

    if (dp == NULL)
        goto done;
    strbuf_printf(prefix, "fuzz-%s.", fuzz_name);
    while ((de = readdir(dp)) != NULL) {
        const char *digits = de->d_name + prefix->len;
        long    pid;
        char   *end;

        if (strncmp(de->d_name, prefix->data, prefix->len) != 0)
            continue;
        pid = strtol(digits, &end, 10);
        if (end == digits || *end != '.' || pid <= 0
            || kill((pid_t) pid, 0) == 0 || errno != ESRCH)
            continue;
        strbuf_printf(path, "/tmp/%s", de->d_name);
        fuzz_remove(path->data);
    }
    closedir(dp);
done:
    strbuf_free(&prefix);
    strbuf_free(&path);
}

/*
 * Crash artifacts are written by libFuzzer's handlers while the session
 * runs in the temporary directory: make their location absolute.
 */
static void fuzz_fix_artifact_args(int *argc, char ***argv)
{
    static const char *const flags[] = {
        "-artifact_prefix=", "-exact_artifact_path=",
    };
    char   *cwd = getcwd(NULL, 0);
    int     have_prefix = 0;
    int     n = 0;

    if (cwd == NULL)
        fuzz_fail("getcwd", strerror(errno));
    fuzz_argv = xcalloc((size_t) *argc + 2, sizeof(char *));
    for (int i = 0; i < *argc; i++) {
        const char *arg = (*argv)[i];

        fuzz_argv[n] = (*argv)[i];
        for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
            size_t  len = strlen(flags[f]);

            if (strncmp(arg, flags[f], len) != 0)
                continue;
            have_prefix |= f == 0;
            if (arg[len] != '/') {
                STRBUF *abs = strbuf_alloc(256);

                strbuf_printf(abs, "%.*s%s/%s", (int) len, arg, cwd,
                              arg + len);
                fuzz_argv[n] = strbuf_export(&abs);
            }
        }
        n++;
    }
    if (!have_prefix) {
        STRBUF *abs = strbuf_alloc(256);

        strbuf_printf(abs, "-artifact_prefix=%s/", cwd);
        fuzz_argv[n++] = strbuf_export(&abs);
    }
    fuzz_argv[n] = NULL;
    *argc = n;
    *argv = fuzz_argv;
    free(cwd);
}

void    fuzz_setup(int *argc, char ***argv, const char *name,
                   void (*remove)(const char *dir))
{
    STRBUF *var = strbuf_alloc(32);

    fuzz_name = name;
    fuzz_remove = remove;
    strbuf_printf(var, "FUZZ_%s_TRACE", name);
    for (size_t i = 0; i < var->len; i++)
        var->data[i] = (char) toupper((unsigned char) var->data[i]);
    fuzz_trace = getenv(var->data) != NULL;
    strbuf_free(&var);
    msg_set_hook(fuzz_log);
    signal(SIGPIPE, SIG_IGN);
    fuzz_fix_artifact_args(argc, argv);
    if ((fuzz_home_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        fuzz_fail("open .", strerror(errno));
    fuzz_remove_stale_dirs();
    snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/fuzz-%s.%ld.XXXXXX", name,
             (long) getpid());
    if (mkdtemp(fuzz_dir) == NULL || chdir(fuzz_dir) < 0)
        fuzz_fail("temporary directory", strerror(errno));
    atexit(fuzz_remove_dir);
}

void    fuzz_write_file(const char *name, const char *text)
{
    int     fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t  len = strlen(text);

    if (fd < 0 || write(fd, text, len) != (ssize_t) len || close(fd) < 0)
        fuzz_fail("write", name);
}

void    fuzz_chdir_home(void)
{
    if (fchdir(fuzz_home_fd) < 0)
        fuzz_fail("fchdir", strerror(errno));
}

int     fuzz_take_options(const uint8_t **data, size_t *size)
{
    int     opts = 0;

    if (*size > 0 && (*data)[0] < 0x20) {
        opts = (*data)[0];
        (*data)++;
        (*size)--;
    }
    return opts;
}

/* --- the client side -------------------------------------------------- */

void    fuzz_peer_open(FUZZ_PEER *p, int sv[2], const uint8_t *data,
                       size_t size)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        fuzz_fail("socketpair", strerror(errno));
    memset(p, 0, sizeof(*p));
    p->fd = sv[1];
    p->rest = data;
    p->rest_len = size;
    p->replies = strbuf_alloc(1024);
}

void    fuzz_peer_write(FUZZ_PEER *p)
{
    while (p->rest_len > 0) {
        ssize_t n = send(p->fd, p->rest, p->rest_len,
                         MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            p->rest_len = 0;            /* the server hung up */
            break;
        }
        p->rest += n;
        p->rest_len -= (size_t) n;
    }
    (void) shutdown(p->fd, SHUT_WR);
}

int     fuzz_peer_read(FUZZ_PEER *p)
{
    char    buf[8192];
    ssize_t got = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (got > 0) {
        if (!p->cut && p->replies->len + (size_t) got <= FUZZ_REPLY_MAX)
            strbuf_append(p->replies, buf, (size_t) got);
        else
            p->cut = 1;
        return 1;
    }
    return got < 0 && (errno == EAGAIN || errno == EINTR);
}

void    fuzz_peer_finish(FUZZ_PEER *p,
                         void (*check)(const STRBUF *replies, int cut))
{
    close(p->fd);
    if (fuzz_trace)
        fprintf(stderr, "replies:\n%.*s", (int) p->replies->len,
                p->replies->data);
    check(p->replies, p->cut);
    strbuf_free(&p->replies);
}

void    fuzz_client_init(SERVER_CLIENT *client, int fd, const char *addr,
                         const char *local_addr, int local_port)
{
    memset(client, 0, sizeof(*client));
    client->fd = fd;
    client->wfd = fd;                   /* replies go back on the socket */
    client->family = AF_INET;
    snprintf(client->addr, sizeof(client->addr), "%s", addr);
    client->port = 54321;
    snprintf(client->local_addr, sizeof(client->local_addr), "%s",
             local_addr);
    client->local_port = local_port;
}
