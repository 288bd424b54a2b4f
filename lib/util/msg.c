/*
 * msg - diagnostics to stderr, syslog or a log file, in Postfix's format.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/msg.h"

int     msg_verbose;

static const char *msg_prog = "postern";
static int msg_to_stderr;
static int msg_to_syslog;
static int msg_log_fd = -1;
static char msg_ident[256];             /* "postern/smtpd" */
static char msg_host[256];
static MSG_HOOK msg_hook;
static void (*msg_cleanup)(void);
static int msg_exiting;

static const char *msg_severity[] = {"", "warning", "error", "fatal", "panic"};
static const int msg_syslog_pri[] = {LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT,
                                     LOG_CRIT};

void msg_init(const char *progname, int flags)
{
    const char *slash = strrchr(progname, '/');

    msg_prog = slash ? slash + 1 : progname;
    msg_to_stderr = (flags & MSG_STDERR) != 0;
}

const char *msg_progname(void)
{
    return msg_prog;
}

void msg_stderr(int on)
{
    msg_to_stderr = on;
}

void msg_set_hook(MSG_HOOK hook)
{
    msg_hook = hook;
}

void msg_set_cleanup(void (*fn)(void))
{
    msg_cleanup = fn;
}

int msg_open_log(const char *syslog_name, const char *path,
                 const char **error_r)
{
    char *dot;
    int fd;

    msg_close_log();
    snprintf(msg_ident, sizeof(msg_ident), "%s/%s",
             syslog_name && *syslog_name ? syslog_name : "postern", msg_prog);
    if (path == NULL || *path == 0) {
        openlog(msg_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
        msg_to_syslog = 1;
        return 0;
    }
    if (strcmp(path, "/dev/stderr") == 0) {
        fd = dup(STDERR_FILENO);
    } else if (strcmp(path, "/dev/stdout") == 0) {
        fd = dup(STDOUT_FILENO);
    } else {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
                  0640);
    }
    if (fd < 0) {
        if (error_r)
            *error_r = strerror(errno);
        return -1;
    }
    (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
    msg_log_fd = fd;
    if (gethostname(msg_host, sizeof(msg_host) - 1) < 0)
        strcpy(msg_host, "localhost");  /* fits: sizeof(msg_host) > 10 */
    msg_host[sizeof(msg_host) - 1] = 0;
    if ((dot = strchr(msg_host, '.')) != NULL)
        *dot = 0;
    return 0;
}

void msg_close_log(void)
{
    if (msg_to_syslog)
        closelog();
    msg_to_syslog = 0;
    if (msg_log_fd >= 0)
        close(msg_log_fd);
    msg_log_fd = -1;
}

/* Replace control characters so that input cannot forge log lines. */
static void msg_clean(char *text)
{
    for (unsigned char *cp = (unsigned char *) text; *cp; cp++)
        if (*cp < 0x20 || *cp == 0x7f)
            *cp = '?';
}

static void msg_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t) n;
    }
}

void msg_vlog(int level, const char *fmt, va_list ap)
{
    int saved_errno = errno;
    char text[4096];
    char line[4096 + 600];
    const char *sev;
    const char *sep;
    int n;

    if (level < MSG_INFO || level > MSG_PANIC)
        level = MSG_PANIC;
    sev = msg_severity[level];
    sep = *sev ? ": " : "";
    errno = saved_errno;                /* for %m */
    vsnprintf(text, sizeof(text), fmt, ap);
    msg_clean(text);

    if (msg_hook)
        msg_hook(sev, text);
    if (msg_to_stderr) {
        n = snprintf(line, sizeof(line), "%s: %s%s%s\n", msg_prog, sev, sep,
                     text);
        if (n > 0)
            msg_write_all(STDERR_FILENO, line,
                          (size_t) n < sizeof(line) ? (size_t) n
                          : sizeof(line) - 1);
    }
    if (msg_to_syslog)
        syslog(msg_syslog_pri[level], "%s%s%s", sev, sep, text);
    if (msg_log_fd >= 0) {
        time_t now = time(NULL);
        struct tm tm;
        char stamp[64];

        if (localtime_r(&now, &tm) == NULL
            || strftime(stamp, sizeof(stamp), "%b %d %H:%M:%S", &tm) == 0)
            strcpy(stamp, "Jan 01 00:00:00");   /* fits */
        n = snprintf(line, sizeof(line), "%s %s %s[%ld]: %s%s%s\n", stamp,
                     msg_host, msg_ident, (long) getpid(), sev, sep, text);
        if (n > 0) {
            if ((size_t) n >= sizeof(line)) {
                n = sizeof(line) - 1;
                line[n - 1] = '\n';
            }
            msg_write_all(msg_log_fd, line, (size_t) n);
        }
    }
    errno = saved_errno;
}

#define MSG_BODY(level) do { \
        va_list ap; \
        va_start(ap, fmt); \
        msg_vlog(level, fmt, ap); \
        va_end(ap); \
    } while (0)

void msg_info(const char *fmt, ...)
{
    MSG_BODY(MSG_INFO);
}

void msg_warn(const char *fmt, ...)
{
    MSG_BODY(MSG_WARN);
}

void msg_error(const char *fmt, ...)
{
    MSG_BODY(MSG_ERROR);
}

static void msg_exit(int status) __attribute__((noreturn));
static void msg_exit(int status)
{
    if (msg_exiting++ == 0 && msg_cleanup)
        msg_cleanup();
    exit(status);
}

void msg_fatal(const char *fmt, ...)
{
    MSG_BODY(MSG_FATAL);
    msg_exit(1);
}

void msg_fatal_status(int status, const char *fmt, ...)
{
    MSG_BODY(MSG_FATAL);
    msg_exit(status);
}

void msg_panic(const char *fmt, ...)
{
    MSG_BODY(MSG_PANIC);
    abort();
}
