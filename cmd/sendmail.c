/*
 * sendmail - the Sendmail-compatible submission command (Postfix
 * sendmail(1)); also mailq when its name ends in "mailq".  See
 * sendmail(1).
 *
 * To submit, sendmail writes a maildrop file (lib/mail/maildrop.h) into a
 * pipe to the set-gid postdrop helper, which stores it in maildrop/ for
 * the pickup service.  sendmail itself needs no privilege and holds at
 * most the header section (-t) in memory: the body is streamed.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "mail/maildrop.h"
#include "mail/params.h"
#include "mail/queue_file.h"
#include "mail/record.h"
#include "sendmail.h"
#include "util/msg.h"
#include "util/xmalloc.h"

typedef enum {
    SM_ENQUEUE, SM_MAILQ, SM_SMTP, SM_FLUSH, SM_NOOP, SM_NEWALIASES,
} SM_MODE;

typedef struct SM_OPTS {
    SM_MODE mode;
    const char *config_dir;
    const char *sender;                 /* -f/-r, NULL: the login name */
    const char *full_name;              /* -F */
    const char *dsn_envid;              /* -V */
    const char *dsn_ret;                /* -R */
    int     dsn_notify;                 /* -N */
    int     extract;                    /* -t */
    int     dot_ends;                   /* no -i */
    char  **rcpt_args;
} SM_OPTS;

static void sm_usage(const char *prog)
{
    msg_fatal_status(EX_USAGE, "usage: %s [-i] [-t] [-f sender] [-F name] "
                     "[-N dsn] [-R ret] [-V envid] [-C config_dir] "
                     "[-bm | -bp | -bs | -q] [-v] [recipient ...]", prog);
}

/* -N: never, or a comma-separated list of success, delay, failure. */
static int sm_parse_notify(const char *text)
{
    static const struct {
        const char *name;
        int     bit;
    } words[] = {
        {"never", DSN_NOTIFY_NEVER}, {"success", DSN_NOTIFY_SUCCESS},
        {"delay", DSN_NOTIFY_DELAY}, {"failure", DSN_NOTIFY_FAILURE},
    };
    ARGV *list = argv_split(text, ", \t");
    int bits = 0;

    for (size_t i = 0; i < list->argc; i++) {
        int bit = 0;

        for (size_t j = 0; j < sizeof(words) / sizeof(words[0]); j++)
            if (strcasecmp(list->argv[i], words[j].name) == 0)
                bit = words[j].bit;
        if (bit == 0) {
            bits = -1;
            break;
        }
        bits |= bit;
    }
    argv_free(&list);
    return bits > 0 && maildrop_notify_ok(bits) ? bits : -1;
}

/* -C accepts the directory or its main.cf (as Postfix does). */
static const char *sm_config_arg(const char *arg)
{
    size_t len = strlen(arg);

    if (len >= 8 && strcmp(arg + len - 8, "/main.cf") == 0)
        return xstrndup(arg, len - 8 ? len - 8 : 1);
    return arg;
}

static void sm_option_b(SM_OPTS *o, const char *arg)
{
    if (strcmp(arg, "m") == 0)
        o->mode = SM_ENQUEUE;
    else if (strcmp(arg, "p") == 0)
        o->mode = SM_MAILQ;
    else if (strcmp(arg, "s") == 0)
        o->mode = SM_SMTP;
    else if (strcmp(arg, "i") == 0)
        o->mode = SM_NEWALIASES;
    else
        msg_fatal_status(EX_USAGE, "unsupported: -b%s", arg);
}

/* -q alone: wake up the queue manager; -qTIME: nothing (not a daemon). */
static void sm_option_q(SM_OPTS *o, const char *arg)
{
    if (arg == NULL)
        o->mode = SM_FLUSH;
    else if (*arg >= '0' && *arg <= '9')
        o->mode = SM_NOOP;
    else
        msg_fatal_status(EX_USAGE, "unsupported: -q%s", arg);
}

static void sm_option(SM_OPTS *o, int ch, const char *arg, const char *prog)
{
    switch (ch) {
    case 'b':
        sm_option_b(o, arg);
        break;
    case 'B':                           /* body type: checked, ignored */
        if (strcmp(arg, "8BITMIME") != 0 && strcmp(arg, "7BIT") != 0)
            msg_fatal_status(EX_USAGE, "-B option needs 8BITMIME or 7BIT");
        break;
    case 'C':
    case 'c':
        o->config_dir = sm_config_arg(arg);
        break;
    case 'F':
        o->full_name = arg;
        break;
    case 'f':
    case 'r':
        o->sender = arg;
        break;
    case 'i':
        o->dot_ends = 0;
        break;
    case 'N':
        if ((o->dsn_notify = sm_parse_notify(arg)) < 0)
            msg_fatal_status(EX_USAGE, "bad -N value: %s (never, or a list "
                             "of success, delay, failure)", arg);
        break;
    case 'o':                           /* sendmail -oX options */
        if (strcmp(arg, "i") == 0)
            o->dot_ends = 0;
        else if (msg_verbose)
            msg_info("-o%s option ignored", arg);
        break;
    case 'R':
        if (strcasecmp(arg, "full") != 0 && strcasecmp(arg, "hdrs") != 0)
            msg_fatal_status(EX_USAGE, "bad -R value: %s (full or hdrs)",
                             arg);
        o->dsn_ret = strcasecmp(arg, "full") == 0 ? "full" : "hdrs";
        break;
    case 't':
        o->extract = 1;
        break;
    case 'V':
        if (!maildrop_envid_ok(arg, strlen(arg)))
            msg_fatal_status(EX_USAGE, "bad -V value: at most %d printable "
                             "ASCII characters", MAILDROP_ENVID_MAX);
        o->dsn_envid = arg;
        break;
    case 'v':
        msg_verbose++;
        break;
    case 'A': case 'G': case 'h': case 'L': case 'm': case 'O':
    case 'U': case 'x': case 'e': case 'p':
        if (msg_verbose)
            msg_info("-%c option ignored", ch);
        break;
    default:
        sm_usage(prog);
    }
}

/* Parse the command line; "-q" alone is special (getopt would take an
 * argument for it). */
static void sm_parse_args(SM_OPTS *o, int argc, char **argv,
                          const char *prog)
{
    int ch;

    while (optind < argc) {
        if (strcmp(argv[optind], "-q") == 0) {
            sm_option_q(o, NULL);
            optind++;
            continue;
        }
        if ((ch = getopt(argc, argv, "+A:B:C:c:F:GL:N:O:R:UV:X:b:e:f:h:imo:"
                         "p:q:r:tvx")) == -1)
            break;
        if (ch == 'q')
            sm_option_q(o, optarg);
        else if (ch == 'X')
            msg_fatal_status(EX_USAGE, "unsupported: -X%s", optarg);
        else
            sm_option(o, ch, optarg, prog);
    }
    o->rcpt_args = argv + optind;
    if (o->extract && o->mode != SM_ENQUEUE)
        msg_fatal_status(EX_USAGE, "-t can be used only in delivery mode");
    if (o->mode != SM_ENQUEUE && *o->rcpt_args)
        msg_fatal_status(EX_USAGE, "%s mode requires no recipient",
                         o->mode == SM_MAILQ ? "display queue"
                         : o->mode == SM_SMTP ? "stand-alone"
                         : "flush queue");
}

/*
 * Replace this process with DIR/NAME [lead] -c CONFIG_DIR [-v...] [tail].
 * status_if_missing 0: a program that cannot run is no error.
 */
static void sm_exec(const char *dir, const char *name, const char *lead,
                    const char *config_dir, const char *tail1,
                    const char *tail2, int status_if_missing)
{
    ARGV *args = argv_alloc(8);
    STRBUF *path = strbuf_alloc(256);

    strbuf_printf(path, "%s/%s", dir, name);
    argv_add(args, path->data);
    if (lead)
        argv_add(args, lead);
    argv_add(args, "-c");
    argv_add(args, config_dir);
    for (int i = 0; i < msg_verbose; i++)
        argv_add(args, "-v");
    if (tail1)
        argv_add(args, tail1);
    if (tail2)
        argv_add(args, tail2);
    execv(args->argv[0], args->argv);
    if (status_if_missing == 0) {
        if (msg_verbose)
            msg_info("execute %s: %m", args->argv[0]);
        exit(0);
    }
    msg_fatal_status(status_if_missing, "execute %s: %m", args->argv[0]);
}

/* The sender's full name: -F, $NAME, or the passwd comment field. */
static char *sm_full_name(const char *opt, const struct passwd *pw)
{
    const char *env = getenv("NAME");
    STRBUF *name = strbuf_alloc(64);

    if (opt) {
        strbuf_set(name, opt);
    } else if (env && *env) {
        strbuf_set(name, env);
    } else if (pw && pw->pw_gecos) {
        /* Up to the first comma; "&" is the login name, capitalised. */
        for (const char *cp = pw->pw_gecos; *cp && *cp != ','; cp++) {
            if (*cp == '&') {
                strbuf_cat(name, pw->pw_name);
                if (name->len >= strlen(pw->pw_name) && *pw->pw_name)
                    name->data[name->len - strlen(pw->pw_name)] =
                        (char) toupper((unsigned char) *pw->pw_name);
            } else {
                strbuf_addch(name, *cp);
            }
        }
    }
    if (name->len == 0 || !maildrop_text_ok(name->data, name->len,
                                            MAILDROP_TEXT_MAX)) {
        if (opt && *opt)
            msg_fatal_status(EX_USAGE, "bad -F full name");
        strbuf_free(&name);
        return NULL;
    }
    return strbuf_export(&name);
}

/* The envelope sender: -f parsed as an address, else the login name. */
static char *sm_sender(const char *opt, const struct passwd *pw, uid_t uid)
{
    ARGV *addrs = argv_alloc(2);
    char *sender;

    if (opt == NULL) {
        if (pw == NULL)
            msg_fatal_status(EX_OSERR, "no login name found for user ID %lu",
                             (unsigned long) uid);
        argv_add(addrs, pw->pw_name);
    } else if (sm_addr_parse(opt, addrs, 1) == 0) {
        argv_add(addrs, "");            /* -f '' */
    } else if (addrs->argc > 1) {
        msg_warn("-f option specified malformed sender: %s", opt);
    }
    if (!maildrop_text_ok(addrs->argv[0], strlen(addrs->argv[0]),
                          MAILDROP_TEXT_MAX))
        msg_fatal_status(EX_USAGE, "bad sender address: %s", opt);
    sender = xstrdup(addrs->argv[0]);
    argv_free(&addrs);
    return sender;
}

static void sm_check_rcpt(const char *addr, const char *from)
{
    if (!maildrop_text_ok(addr, strlen(addr), MAILDROP_TEXT_MAX))
        msg_fatal_status(EX_USAGE, "bad recipient address in %s", from);
}

static int sm_enqueue(const SM_OPTS *o, const char *config_dir)
{
    uid_t uid = getuid();
    struct passwd *pw = getpwuid(uid);
    char *sender = sm_sender(o->sender, pw, uid);
    char *full_name = sm_full_name(o->full_name, pw);
    SM_INPUT *si = sm_input_open(STDIN_FILENO, o->dot_ends);
    SM_HEADERS *h = NULL;
    ARGV *rcpts = argv_alloc(8);
    STRBUF *err = strbuf_alloc(128);
    STRBUF *id = strbuf_alloc(32);
    STREAM *out;
    int in_fd, out_fd;
    pid_t pid;
    int status;

    for (char **cpp = o->rcpt_args; *cpp; cpp++)
        if (sm_addr_parse(*cpp, rcpts, 0) == 0)
            msg_fatal_status(EX_USAGE, "bad recipient address: %s", *cpp);
    if (o->extract) {
        h = sm_headers_read(si, (size_t) var_header_size_limit);
        sm_headers_extract(h, rcpts);
    }
    if (rcpts->argc == 0)
        msg_fatal_status(EX_USAGE, o->extract
                         ? "No recipient addresses found in message header"
                         : "Recipient addresses must be specified on the "
                         "command line or via the -t option");
    for (size_t i = 0; i < rcpts->argc; i++)
        sm_check_rcpt(rcpts->argv[i], o->extract ? "message header"
                      : "command line");
    if ((pid = maildrop_postdrop_start(config_dir, &in_fd, &out_fd, err))
        < 0)
        msg_fatal_status(EX_UNAVAILABLE, "%s", err->data);
    out = stream_open(in_fd, 0, 1);
    maildrop_write_envelope(out, sender, full_name, o->dsn_envid, o->dsn_ret);
    for (size_t i = 0; i < rcpts->argc; i++)
        maildrop_write_rcpt(out, rcpts->argv[i], NULL, o->dsn_notify);
    rec_put(out, QREC_CONTENT, "", 0);
    if (sm_content_copy(si, h, out) >= 0) {
        rec_put(out, QREC_CONTENT_END, "", 0);
        rec_put(out, QREC_END, "", 0);
        (void) stream_flush(out);
    }
    /* A write error means postdrop gave up; its status says why. */
    stream_free(&out);
    close(in_fd);
    status = maildrop_postdrop_wait(pid, out_fd, id);
    if (msg_verbose && id->len)
        msg_info("queued in %s as %s", MAILDROP_DIR, id->data);
    if (status != 0 && (status < EX__BASE || status > EX__MAX))
        status = EX_TEMPFAIL;
    if (status != 0)
        msg_warn("%s(%ld): message not queued", sender, (long) uid);
    sm_input_free(&si);
    sm_headers_free(&h);
    argv_free(&rcpts);
    strbuf_free(&err);
    strbuf_free(&id);
    free(sender);
    free(full_name);
    return status;
}

/* Make sure descriptors 0, 1 and 2 are open before we open anything. */
static void sm_std_fds(void)
{
    struct stat st;

    for (int fd = 0; fd < 3; fd++)
        if (fstat(fd, &st) < 0 && open("/dev/null", O_RDWR) != fd)
            msg_fatal_status(EX_OSERR, "open /dev/null: %m");
}

int main(int argc, char **argv)
{
    const char *slash = strrchr(argv[0], '/');
    const char *prog = slash ? slash + 1 : argv[0];
    size_t plen = strlen(prog);
    SM_OPTS o = {.mode = SM_ENQUEUE, .dot_ends = 1};
    STRBUF *err = strbuf_alloc(256);
    const char *config_dir;

    sm_std_fds();
    umask(022);
    msg_init(prog, MSG_STDERR);
    signal(SIGPIPE, SIG_IGN);
    if (plen >= 5 && strcmp(prog + plen - 5, "mailq") == 0)
        o.mode = SM_MAILQ;
    else if (plen >= 10 && strcmp(prog + plen - 10, "newaliases") == 0)
        o.mode = SM_NEWALIASES;
    sm_parse_args(&o, argc, argv, prog);
    config_dir = params_config_dir(o.config_dir);
    if (params_load_r(config_dir, NULL, 0, err) < 0)
        msg_fatal_status(EX_CONFIG, "%s", err->data);
    strbuf_free(&err);
    /* Log to syslog; a maillog_file belongs to the mail system. */
    if (*var_maillog_file == 0)
        (void) msg_open_log(var_syslog_name, NULL, NULL);

    switch (o.mode) {
    case SM_ENQUEUE:
        return sm_enqueue(&o, config_dir);
    case SM_MAILQ:                      /* postern queue list */
        sm_exec(var_command_directory, "postern", NULL, config_dir, "queue",
                "list", EX_UNAVAILABLE);
        break;
    case SM_SMTP:                       /* SMTP on stdin/stdout */
        sm_exec(var_daemon_directory, "smtpd", "-S", config_dir, NULL, NULL,
                EX_UNAVAILABLE);
        break;
    case SM_FLUSH:                      /* postdrop can reach public/qmgr */
        sm_exec(var_daemon_directory, "postdrop", NULL, config_dir, "-q",
                NULL, 0);
        break;
    case SM_NEWALIASES:                 /* postern map -a $alias_database */
        {
            ARGV *args = argv_alloc(8);
            ARGV *tables = argv_split(var_alias_database, ", \t\r\n");
            STRBUF *path = strbuf_alloc(256);

            strbuf_printf(path, "%s/postern", var_command_directory);
            argv_add(args, path->data);
            argv_add(args, "-c");
            argv_add(args, config_dir);
            argv_add(args, "map");
            argv_add(args, "-a");
            for (size_t i = 0; i < tables->argc; i++)
                argv_add(args, tables->argv[i]);
            if (tables->argc == 0)
                return 0;
            execv(args->argv[0], args->argv);
            msg_fatal_status(EX_UNAVAILABLE, "execute %s: %m", args->argv[0]);
        }
    case SM_NOOP:
        break;
    }
    return 0;
}
