/*
 * msg - diagnostics in Postfix's format.
 *
 * Severity follows Postfix msg(3): info is an ordinary event; warn means
 * something is wrong but we carry on; error is a warning that is counted;
 * fatal means we cannot go on (exit 1, master restarts us); panic means a
 * bug (abort, leave a core).  Debug output sits behind "if (msg_verbose)".
 *
 * Destinations, any combination:
 *   - stderr in command style "postern: warning: text" (interactive tools);
 *   - syslog, facility mail, ident "SYSLOG_NAME/PROGRAM" with the pid;
 *   - a file (maillog_file) or /dev/stdout, /dev/stderr, one line per
 *     write(2) in syslog's layout: "Mmm dd HH:MM:SS host name/prog[pid]: text".
 * Every line is cleaned of control characters so that network input cannot
 * forge log lines.  Nothing here allocates memory: msg_fatal() must work
 * when memory has run out.
 */
#ifndef POSTERN_MSG_H
#define POSTERN_MSG_H

#include <stdarg.h>

extern int msg_verbose;

/* msg_init - set the program name; flags select the initial destinations. */
#define MSG_STDERR      (1 << 0)        /* "prog: text" on stderr */
void    msg_init(const char *progname, int flags);

/*
 * msg_open_log - log as SYSLOG_NAME/PROGRAM[PID] to syslog (path empty or
 * NULL) or to the named file.  Returns 0, or -1 with *error_r set when the
 * file cannot be opened (messages then still go to stderr if enabled).
 */
int     msg_open_log(const char *syslog_name, const char *path,
                     const char **error_r);
void    msg_close_log(void);
void    msg_stderr(int on);
const char *msg_progname(void);

/* Test hook: receives the severity ("", "warning", ...) and text. */
typedef void (*MSG_HOOK)(const char *severity, const char *text);
void    msg_set_hook(MSG_HOOK hook);

/* Called once before msg_fatal() exits, e.g. to remove temporary files. */
void    msg_set_cleanup(void (*fn)(void));

void    msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void    msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void    msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void    msg_fatal(const char *fmt, ...)
        __attribute__((format(printf, 1, 2), noreturn));
void    msg_fatal_status(int status, const char *fmt, ...)
        __attribute__((format(printf, 2, 3), noreturn));
void    msg_panic(const char *fmt, ...)
        __attribute__((format(printf, 1, 2), noreturn));
void    msg_vlog(int level, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

#define MSG_INFO    0
#define MSG_WARN    1
#define MSG_ERROR   2
#define MSG_FATAL   3
#define MSG_PANIC   4

#endif
