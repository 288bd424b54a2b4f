/*
 * unit.h - common includes for the cmocka unit tests.
 *
 * One test program per lib module: tests/unit/test_MODULE.c, built into
 * build/tests/test_MODULE and run by "make unit".  Tests that need files
 * make them under unit_tmpdir(), which is removed at exit.
 */
#ifndef POSTERN_UNIT_H
#define POSTERN_UNIT_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/msg.h"
#include "util/strbuf.h"

/* Messages logged through msg_*() since the last unit_log_reset(). */
static STRBUF *unit_log;

static void unit_log_hook(const char *severity, const char *text)
{
    if (unit_log == NULL)
        unit_log = strbuf_alloc(256);
    strbuf_printf_append(unit_log, "%s%s%s\n", severity, *severity ? ": " : "",
                         text);
}

static inline void unit_log_reset(void)
{
    if (unit_log == NULL)
        unit_log = strbuf_alloc(256);
    strbuf_reset(unit_log);
    msg_set_hook(unit_log_hook);
}

/* Has a message containing 'text' been logged since the last reset? */
static inline int unit_logged(const char *text)
{
    return unit_log != NULL && strstr(unit_log->data, text) != NULL;
}

static char unit_tmp[64];

static void unit_tmp_cleanup(void)
{
    if (unit_tmp[0]) {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", unit_tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", unit_tmp);
    }
}

/* A private temporary directory for this test program. */
static inline const char *unit_tmpdir(void)
{
    if (unit_tmp[0] == 0) {
        snprintf(unit_tmp, sizeof(unit_tmp), "/tmp/postern-unit-XXXXXX");
        if (mkdtemp(unit_tmp) == NULL) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(unit_tmp_cleanup);
    }
    return unit_tmp;
}

/* Write text to DIR/name and return the path (static storage, reused). */
static inline const char *unit_write_file(const char *name, const char *text)
{
    static char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", unit_tmpdir(), name);
    if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) < 0
        || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }
    return path;
}

/*
 * unit_fork - run fn(arg) in a child process and return its wait status,
 * for testing paths that exit or abort (msg_fatal, msg_panic).  The child
 * exits 0 when fn returns, dumps no core and does not remove the parent's
 * temporary directory on exit.  Its stderr is captured into 'err' (may be
 * NULL).  Under valgrind the child's exit runs a leak check of its own: fn
 * should keep what it allocates reachable (e.g. in a static).
 */
static STRBUF *volatile unit_fork_err;  /* reachable in the child */

static inline int unit_fork(void (*fn)(void *), void *arg, STRBUF *err)
{
    struct rlimit no_core = {0, 0};
    char chunk[512];
    ssize_t n;
    pid_t pid;
    int fds[2];
    int status;

    unit_fork_err = err;
    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) < 0 || (pid = fork()) < 0) {
        perror("unit_fork");
        exit(1);
    }
    if (pid == 0) {
        close(fds[0]);
        if (dup2(fds[1], STDERR_FILENO) < 0)
            _exit(126);
        close(fds[1]);
        unit_tmp[0] = 0;                /* the parent cleans up */
        (void) setrlimit(RLIMIT_CORE, &no_core);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    if (err)
        strbuf_reset(err);
    while ((n = read(fds[0], chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (err)
            strbuf_append(err, chunk, (size_t) n);
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            exit(1);
        }
    }
    return status;
}

#endif
