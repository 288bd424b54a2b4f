/*
 * pop3d_mail - the TRANSACTION and UPDATE states, in the mail process:
 * chrooted into the user's Maildir (the current directory) with its ids.
 *
 * The message list is the mailbox snapshot taken at login (mailbox.h):
 * mail delivered during the session appears in the next one.  Several
 * sessions on one mailbox may run at once; each sees a consistent list,
 * and a message another session removed meanwhile answers RETR with
 * -ERR and is skipped by QUIT.  Sizes are those of the CRLF form that
 * RETR sends (without dot-stuffing).  UIDLs are Dovecot's default
 * format, %08X of the UID then of the UIDVALIDITY: stable for the life
 * of the message and never reused, the same UIDs imapd reports.
 * Deletions happen at QUIT only; a dropped connection deletes nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/mailbox.h"
#include "mail/params.h"
#include "pop3d.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

typedef struct POP3D_MAIL {
    STREAM *s;
    MAILBOX *mb;
    unsigned char *deleted;             /* per message */
    const char *user;
    int     errors;
    /* For the logout line, as Dovecot logs it. */
    unsigned long top_count;
    off_t   top_bytes;
    unsigned long retr_count;
    off_t   retr_bytes;
    unsigned long del_count;
    off_t   total_size;                 /* of the mailbox at login */
} POP3D_MAIL;

const char *pop3d_fail_reply(int temporary)
{
    return temporary ? "-ERR [SYS/TEMP] Mailbox is not available; try again "
        "later.\r\n" : "-ERR [SYS/PERM] No mailbox for this user.\r\n";
}

static void pop3d_mreply(POP3D_MAIL *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void pop3d_mreply(POP3D_MAIL *st, const char *fmt, ...)
{
    STRBUF *buf = strbuf_alloc(128);
    va_list ap;

    va_start(ap, fmt);
    strbuf_vprintf_append(buf, fmt, ap);
    va_end(ap);
    strbuf_append(buf, "\r\n", 2);
    stream_write(st->s, buf->data, buf->len);
    strbuf_free(&buf);
    if (stream_pending(st->s) == 0)
        (void) stream_flush(st->s);
}

/*
 * A message number argument: the index, or -1 after the -ERR reply.
 * Deleted messages count as missing.
 */
static long pop3d_msgno(POP3D_MAIL *st, const char *arg)
{
    unsigned long n;

    if (*arg == 0 || strspn(arg, "0123456789") != strlen(arg)
        || str_to_ulong(arg, 0xffffffffUL, &n) < 0 || n == 0) {
        pop3d_mreply(st, "-ERR Invalid message number: %.40s", arg);
        return -1;
    }
    if (n > st->mb->count) {
        pop3d_mreply(st, "-ERR There's no message %lu.", n);
        return -1;
    }
    if (st->deleted[n - 1]) {
        pop3d_mreply(st, "-ERR Message is deleted.");
        return -1;
    }
    return (long) n - 1;
}

/* --- sending a message ------------------------------------------------ */

/*
 * The text of a message in its CRLF form, dot-stuffed; for TOP, the
 * header, the empty line and max_body lines of the body (max_body < 0:
 * all).  A byte-level state machine, so chunk borders do not matter.
 */
typedef struct POP3D_OUT {
    STREAM *s;
    int     at_start;                   /* the next byte starts a line */
    size_t  line_len;
    int     in_body;
    long    body_lines;
    long    max_body;
    int     done;
    off_t   sent;                       /* without the stuffed dots */
} POP3D_OUT;

static void pop3d_out(POP3D_OUT *out, const char *data, size_t len)
{
    const char *cp = data;
    const char *end = data + len;

    while (cp < end && !out->done) {
        const char *nl;
        size_t take;

        if (out->at_start) {
            if (out->in_body && out->max_body >= 0
                && out->body_lines >= out->max_body) {
                out->done = 1;
                return;
            }
            if (out->in_body)
                out->body_lines++;
            if (*cp == '.')
                stream_write(out->s, ".", 1);
            out->at_start = 0;
        }
        nl = memchr(cp, '\n', (size_t) (end - cp));
        take = nl ? (size_t) (nl - cp) + 1 : (size_t) (end - cp);
        stream_write(out->s, cp, take);
        out->sent += (off_t) take;
        out->line_len += take;
        cp += take;
        if (nl) {
            /* "\r\n" alone ends the header. */
            if (!out->in_body && out->line_len == 2)
                out->in_body = 1;
            out->at_start = 1;
            out->line_len = 0;
        }
    }
}

/* RETR (max_body < 0) or TOP; 0, or -1 (the reply is sent). */
static int pop3d_send(POP3D_MAIL *st, size_t i, long max_body, off_t *sent)
{
    MAILBOX_CRLF crlf = MAILBOX_CRLF_INIT;
    POP3D_OUT out;
    STRBUF *conv = strbuf_alloc(16384 * 2 + 2);
    char buf[16384];
    ssize_t n;
    int fd;

    if ((fd = mailbox_msg_open(st->mb, i)) < 0) {
        if (errno == ENOENT)
            pop3d_mreply(st, "-ERR Message was removed by another session.");
        else {
            msg_warn("user %s: open %s: %m", st->user, st->mb->msgs[i].file);
            pop3d_mreply(st, "-ERR [SYS/TEMP] Cannot read the message.");
        }
        strbuf_free(&conv);
        return -1;
    }
    /* The status line goes out with the text: one write, not two. */
    if (max_body < 0)
        stream_printf(st->s, "+OK %lld octets\r\n",
                      (long long) st->mb->msgs[i].vsize);
    else
        stream_puts(st->s, "+OK\r\n");
    memset(&out, 0, sizeof(out));
    out.s = st->s;
    out.at_start = 1;
    out.max_body = max_body;
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* The +OK is out: all we can do is drop the connection. */
            msg_warn("user %s: read %s: %m", st->user, st->mb->msgs[i].file);
            close(fd);
            strbuf_free(&conv);
            return -2;
        }
        strbuf_reset(conv);
        mailbox_crlf(&crlf, buf, (size_t) n, conv);
        pop3d_out(&out, conv->data, conv->len);
        if (out.done)
            break;
    }
    close(fd);
    if (!out.done) {
        strbuf_reset(conv);
        mailbox_crlf_end(&crlf, conv);
        pop3d_out(&out, conv->data, conv->len);
    }
    stream_write(st->s, ".\r\n", 3);
    if (stream_pending(st->s) == 0)
        (void) stream_flush(st->s);
    strbuf_free(&conv);
    *sent = out.sent;
    return 0;
}

/* --- commands --------------------------------------------------------- */

static void pop3d_stat(POP3D_MAIL *st)
{
    unsigned long count = 0;
    long long size = 0;

    for (size_t i = 0; i < st->mb->count; i++) {
        if (!st->deleted[i]) {
            count++;
            size += st->mb->msgs[i].vsize;
        }
    }
    pop3d_mreply(st, "+OK %lu %lld", count, size);
}

static void pop3d_list(POP3D_MAIL *st, const char *args, int uidl)
{
    long i;

    if (*args) {
        if ((i = pop3d_msgno(st, args)) < 0)
            return;
        if (uidl)
            pop3d_mreply(st, "+OK %ld %08X%08X", i + 1,
                         st->mb->msgs[i].uid, st->mb->uidvalidity);
        else
            pop3d_mreply(st, "+OK %ld %lld", i + 1,
                         (long long) st->mb->msgs[i].vsize);
        return;
    }
    stream_puts(st->s, "+OK\r\n");
    for (size_t k = 0; k < st->mb->count; k++) {
        if (st->deleted[k])
            continue;
        if (uidl)
            stream_printf(st->s, "%zu %08X%08X\r\n", k + 1,
                          st->mb->msgs[k].uid, st->mb->uidvalidity);
        else
            stream_printf(st->s, "%zu %lld\r\n", k + 1,
                          (long long) st->mb->msgs[k].vsize);
    }
    pop3d_mreply(st, ".");
}

/* TOP msg n: both arguments required (RFC 1939). */
static int pop3d_top(POP3D_MAIL *st, char *args)
{
    char *lines = strchr(args, ' ');
    unsigned long n;
    long i;
    off_t sent;
    int rc;

    if (lines == NULL) {
        pop3d_mreply(st, "-ERR Invalid arguments.");
        return 0;
    }
    *lines++ = 0;
    lines += strspn(lines, " ");
    if (*lines == 0 || strspn(lines, "0123456789") != strlen(lines)
        || str_to_ulong(lines, 0x7fffffffUL, &n) < 0) {
        pop3d_mreply(st, "-ERR Invalid number of lines: %.40s", lines);
        return 0;
    }
    if ((i = pop3d_msgno(st, args)) < 0)
        return 0;
    if ((rc = pop3d_send(st, (size_t) i, (long) n, &sent)) == 0) {
        st->top_count++;
        st->top_bytes += sent;
    }
    return rc;
}

static int pop3d_retr(POP3D_MAIL *st, const char *args)
{
    long i;
    off_t sent;
    int rc;

    if ((i = pop3d_msgno(st, args)) < 0)
        return 0;
    if ((rc = pop3d_send(st, (size_t) i, -1, &sent)) == 0) {
        st->retr_count++;
        st->retr_bytes += sent;
    }
    return rc;
}

/* UPDATE: remove what was marked; 0, or -1 after an -ERR. */
static int pop3d_update(POP3D_MAIL *st)
{
    size_t *which = xcalloc(st->mb->count + 1, sizeof(size_t));
    STRBUF *why = strbuf_alloc(64);
    size_t n = 0;
    int rc = 0;

    for (size_t i = 0; i < st->mb->count; i++)
        if (st->deleted[i])
            which[n++] = i;
    if (n > 0 && mailbox_expunge(st->mb, which, n, why) < 0) {
        msg_warn("user %s: %s", st->user, why->data);
        rc = -1;
    }
    st->del_count = n;
    free(which);
    strbuf_free(&why);
    return rc;
}

static void pop3d_capa_mail(POP3D_MAIL *st)
{
    stream_puts(st->s, "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
                "PIPELINING\r\nAUTH-RESP-CODE\r\nIMPLEMENTATION Postern\r\n");
    pop3d_mreply(st, ".");
}

void pop3d_mail(STREAM *s, const char *user, const char *client)
{
    POP3D_MAIL st;
    STRBUF *line = strbuf_alloc(256);
    STRBUF *why = strbuf_alloc(128);
    const char *how = "Disconnected";

    memset(&st, 0, sizeof(st));
    st.s = s;
    st.user = user;
    if ((st.mb = mailbox_open(".", why)) == NULL) {
        msg_warn("user %s: %s", user, why->data);
        pop3d_mreply(&st, "-ERR [SYS/TEMP] Mailbox is not available; try "
                     "again later.");
        goto done;
    }
    st.deleted = xcalloc(st.mb->count + 1, 1);
    for (size_t i = 0; i < st.mb->count; i++)
        st.total_size += st.mb->msgs[i].vsize;
    pop3d_mreply(&st, "+OK Logged in.");

    for (;;) {
        char *verb;
        char *args;
        const char *bad = NULL;
        int got = pop3d_get_command(s, line);

        if (got == 0) {
            how = stream_timed_out(s) ? "Disconnected: Inactivity"
                : "Disconnected";
            break;
        }
        if (got < 0 || line->len > POP3D_CMD_MAX - 2)
            bad = "-ERR Command too long.";
        else if (memchr(line->data, 0, line->len) != NULL)
            bad = "-ERR Invalid command.";      /* it would be cut short */
        if (bad) {
            verb = "";
            args = "";
        } else {
            verb = pop3d_split(line->data, &args);
        }
        if (bad) {
            pop3d_mreply(&st, "%s", bad);
        } else if (strcmp(verb, "STAT") == 0) {
            pop3d_stat(&st);
            continue;
        } else if (strcmp(verb, "LIST") == 0) {
            pop3d_list(&st, args, 0);
            continue;
        } else if (strcmp(verb, "UIDL") == 0) {
            pop3d_list(&st, args, 1);
            continue;
        } else if (strcmp(verb, "RETR") == 0) {
            if (pop3d_retr(&st, args) == -2)
                break;
            continue;
        } else if (strcmp(verb, "TOP") == 0) {
            if (pop3d_top(&st, args) == -2)
                break;
            continue;
        } else if (strcmp(verb, "DELE") == 0) {
            long i = pop3d_msgno(&st, args);

            if (i >= 0) {
                st.deleted[i] = 1;
                pop3d_mreply(&st, "+OK Marked to be deleted.");
            }
            continue;
        } else if (strcmp(verb, "RSET") == 0) {
            memset(st.deleted, 0, st.mb->count + 1);
            pop3d_mreply(&st, "+OK");
            continue;
        } else if (strcmp(verb, "NOOP") == 0) {
            pop3d_mreply(&st, "+OK");
            continue;
        } else if (strcmp(verb, "CAPA") == 0) {
            pop3d_capa_mail(&st);
            continue;
        } else if (strcmp(verb, "QUIT") == 0) {
            if (pop3d_update(&st) < 0) {
                pop3d_mreply(&st, "-ERR [SYS/TEMP] Some messages could not "
                             "be deleted.");
                how = "Logged out (deletion failed)";
            } else {
                pop3d_mreply(&st, "+OK Logging out.");
                how = "Logged out";
            }
            break;
        } else {
            pop3d_mreply(&st, "-ERR Unknown command: %.40s", verb);
        }
        if (++st.errors >= var_pop3d_error_limit) {
            pop3d_mreply(&st, "-ERR Too many invalid commands.");
            how = "Disconnected: Too many invalid commands";
            break;
        }
    }
    msg_info("%s: user=<%s>, rip=%s, top=%lu/%lld, retr=%lu/%lld, del=%lu/%zu, "
             "size=%lld", how, user, client, st.top_count,
             (long long) st.top_bytes, st.retr_count,
             (long long) st.retr_bytes, st.del_count, st.mb->count,
             (long long) st.total_size);
done:
    free(st.deleted);
    mailbox_close(&st.mb);
    strbuf_free(&line);
    strbuf_free(&why);
}
