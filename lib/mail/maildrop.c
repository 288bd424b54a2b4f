/*
 * maildrop - strict checks of maildrop files (see maildrop.h).
 *
 * The checker is a state machine over the record sequence; it keeps no
 * copy of the data, so a reader can check a file of any size in constant
 * memory while it copies or forwards it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "mail/queue_file.h"
#include "mail/record.h"
#include "mail/maildrop.h"
#include "mail/params.h"
#include "util/argv.h"
#include "util/msg.h"
#include "util/strnum.h"

/* What may come next. */
enum {
    MD_WANT_SIZE,                       /* C */
    MD_WANT_TIME,                       /* T */
    MD_WANT_SENDER,                     /* F or S */
    MD_WANT_S,                          /* S (after F) */
    MD_ENVELOPE,                        /* A, o, n, R */
    MD_RCPT_O,                          /* after o: n or R */
    MD_RCPT_N,                          /* after n: R */
    MD_AFTER_RCPT,                      /* o, n, R or M */
    MD_CONTENT,                         /* B or X */
    MD_WANT_END,                        /* E */
    MD_DONE,                            /* nothing */
};

#define MD_ATTR_UID     (1 << 0)
#define MD_ATTR_ORIGIN  (1 << 1)
#define MD_ATTR_ENVID   (1 << 2)
#define MD_ATTR_RET     (1 << 3)

void maildrop_check_init(MAILDROP_CHECK *mc, int flags, long size_limit,
                         long uid)
{
    memset(mc, 0, sizeof(*mc));
    mc->flags = flags;
    mc->state = MD_WANT_SIZE;
    mc->size_limit = size_limit;
    mc->uid = uid;
    mc->last_byte = '\n';
}

int maildrop_text_ok(const char *data, size_t len, size_t max)
{
    if (len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) data[i];

        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

int maildrop_envid_ok(const char *data, size_t len)
{
    if (len == 0 || len > MAILDROP_ENVID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) data[i] < 0x21 || (unsigned char) data[i] > 0x7e)
            return 0;
    return 1;
}

int maildrop_notify_ok(long bits)
{
    if (bits == DSN_NOTIFY_NEVER)
        return 1;
    return bits > 0 && (bits & ~(long) (DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY
                                        | DSN_NOTIFY_FAILURE)) == 0;
}

void maildrop_size_format(char *buf, long size, off_t offset, long nrcpt)
{
    snprintf(buf, MAILDROP_SIZE_LEN + 1, "%15ld %15ld %15ld %15ld", size,
             (long) offset, nrcpt, 0L);
}

/* Exactly four right-aligned numbers in 15 columns, one space apart. */
static int maildrop_parse_size(const char *data, size_t len, long *v)
{
    if (len != MAILDROP_SIZE_LEN)
        return -1;
    for (int i = 0; i < 4; i++) {
        const char *field = data + i * 16;
        size_t skip = 0;
        unsigned long n;

        if (i < 3 && field[15] != ' ')
            return -1;
        while (skip < 14 && field[skip] == ' ')
            skip++;
        if (strspn(field + skip, "0123456789") < 15 - skip
            || str_to_ulong_n(field + skip, 15 - skip, 0x7fffffffffffffffUL,
                              &n) < 0)
            return -1;
        v[i] = (long) n;
    }
    return 0;
}

/* "sec usec": two decimal numbers. */
static int maildrop_parse_time(const char *data, size_t len)
{
    const char *digits = "0123456789";
    size_t n1 = strspn(data, digits);
    size_t n2;
    unsigned long v;

    if (n1 == 0 || n1 >= len || data[n1] != ' ')
        return -1;
    n2 = strspn(data + n1 + 1, digits);
    if (n2 == 0 || n1 + 1 + n2 != len
        || str_to_ulong_n(data, n1, 0x7fffffffffffffffUL, &v) < 0
        || str_to_ulong_n(data + n1 + 1, n2, 999999, &v) < 0)
        return -1;
    return 0;
}

/* One A record: a known name, once, with a valid value. */
static int maildrop_check_attr(MAILDROP_CHECK *mc, const char *data,
                               size_t len, STRBUF *err)
{
    const char *eq = memchr(data, '=', len);
    const char *value = eq ? eq + 1 : NULL;
    size_t vlen = eq ? len - (size_t) (eq - data) - 1 : 0;
    size_t nlen = eq ? (size_t) (eq - data) : len;
    int bit;

#define ATTR_IS(n) (nlen == sizeof(n) - 1 && memcmp(data, n, nlen) == 0)
    if (eq == NULL) {
        strbuf_set(err, "attribute without value");
        return -1;
    }
    if (ATTR_IS("local_uid")) {
        unsigned long uid;

        bit = MD_ATTR_UID;
        if (vlen == 0 || strspn(value, "0123456789") < vlen
            || str_to_ulong_n(value, vlen, 0xffffffffUL, &uid) < 0
            || (mc->uid >= 0 && (long) uid != mc->uid)) {
            strbuf_set(err, "local_uid does not name the submitting user");
            return -1;
        }
    } else if (ATTR_IS("origin")) {
        bit = MD_ATTR_ORIGIN;
        if (vlen != strlen(MAILDROP_ORIGIN)
            || memcmp(value, MAILDROP_ORIGIN, vlen) != 0) {
            strbuf_set(err, "bad origin attribute");
            return -1;
        }
    } else if (ATTR_IS("dsn_envid")) {
        bit = MD_ATTR_ENVID;
        if (!maildrop_envid_ok(value, vlen)) {
            strbuf_set(err, "bad dsn_envid attribute");
            return -1;
        }
    } else if (ATTR_IS("dsn_ret")) {
        bit = MD_ATTR_RET;
        if (!((vlen == 4 && memcmp(value, "full", 4) == 0)
              || (vlen == 4 && memcmp(value, "hdrs", 4) == 0))) {
            strbuf_set(err, "bad dsn_ret attribute");
            return -1;
        }
    } else {
        strbuf_set(err, "unknown attribute");
        return -1;
    }
#undef ATTR_IS
    if (mc->attrs_seen & bit) {
        strbuf_set(err, "repeated attribute");
        return -1;
    }
    mc->attrs_seen |= bit;
    return 0;
}

/* "type;address": an atom, a semicolon, envelope text. */
static int maildrop_orcpt_ok(const char *data, size_t len)
{
    const char *semi = memchr(data, ';', len);
    size_t tlen = semi ? (size_t) (semi - data) : 0;
    const char *type_chars = "abcdefghijklmnopqrstuvwxyz"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";

    if (semi == NULL || tlen == 0 || tlen > 20 || semi + 1 == data + len)
        return 0;
    for (size_t i = 0; i < tlen; i++)
        if (strchr(type_chars, data[i]) == NULL)
            return 0;
    return 1;
}

static int maildrop_bad(STRBUF *err, const char *why)
{
    strbuf_set(err, why);
    return -1;
}

/* The envelope records: F S A o n R. */
static int maildrop_check_envelope(MAILDROP_CHECK *mc, int type,
                                   const char *data, size_t len, STRBUF *err)
{
    long bits;

    switch (type) {
    case QREC_FULLNAME:
        if (mc->state != MD_WANT_SENDER)
            return maildrop_bad(err, "misplaced full name record");
        mc->state = MD_WANT_S;
        return 0;
    case QREC_SENDER:
        if (mc->state != MD_WANT_SENDER && mc->state != MD_WANT_S)
            return maildrop_bad(err, "misplaced sender record");
        mc->state = MD_ENVELOPE;
        return 0;
    case QREC_ATTR:
        if (mc->state != MD_ENVELOPE)
            return maildrop_bad(err, "misplaced attribute record");
        return maildrop_check_attr(mc, data, len, err);
    case QREC_DSN_ORCPT:
        if (mc->state != MD_ENVELOPE && mc->state != MD_AFTER_RCPT)
            return maildrop_bad(err, "misplaced ORCPT record");
        if (!maildrop_orcpt_ok(data, len))
            return maildrop_bad(err, "bad ORCPT record");
        mc->state = MD_RCPT_O;
        return 0;
    case QREC_DSN_NOTIFY:
        if (mc->state != MD_ENVELOPE && mc->state != MD_AFTER_RCPT
            && mc->state != MD_RCPT_O)
            return maildrop_bad(err, "misplaced NOTIFY record");
        if (len == 0 || len > 2 || strspn(data, "0123456789") != len
            || str_to_long(data, 1, 15, &bits) < 0
            || !maildrop_notify_ok(bits))
            return maildrop_bad(err, "bad NOTIFY record");
        mc->state = MD_RCPT_N;
        return 0;
    case QREC_RCPT:
        if (mc->state < MD_ENVELOPE || mc->state > MD_AFTER_RCPT)
            return maildrop_bad(err, "misplaced recipient record");
        if (len == 0)
            return maildrop_bad(err, "empty recipient");
        if (++mc->nrcpt > MAILDROP_RCPT_MAX)
            return maildrop_bad(err, "too many recipients");
        mc->state = MD_AFTER_RCPT;
        return 0;
    default:
        return maildrop_bad(err, "unexpected record type");
    }
}

/* The content and trailer records: M B X E. */
static int maildrop_check_content(MAILDROP_CHECK *mc, off_t offset, int type,
                                  const char *data, size_t len, STRBUF *err)
{
    switch (type) {
    case QREC_CONTENT:
        if (mc->state != MD_AFTER_RCPT)
            return maildrop_bad(err, mc->nrcpt ? "misplaced content record"
                                : "no recipients");
        if (!(mc->attrs_seen & MD_ATTR_UID))
            return maildrop_bad(err, "no local_uid attribute");
        mc->content_offset = offset;
        mc->state = MD_CONTENT;
        break;
    case QREC_DATA:
        if (mc->state != MD_CONTENT)
            return maildrop_bad(err, "misplaced data record");
        if (len == 0)
            return maildrop_bad(err, "empty data record");
        mc->content_size += (long) len;
        mc->last_byte = (unsigned char) data[len - 1];
        if (mc->size_limit > 0 && mc->content_size > mc->size_limit) {
            strbuf_set(err, "message file too big");
            return MAILDROP_TOO_BIG;
        }
        break;
    case QREC_CONTENT_END:
        if (mc->state != MD_CONTENT)
            return maildrop_bad(err, "misplaced end of content record");
        if (mc->last_byte != '\n')
            return maildrop_bad(err, "content does not end in a newline");
        mc->state = MD_WANT_END;
        break;
    case QREC_END:
        if (mc->state != MD_WANT_END)
            return maildrop_bad(err, "misplaced end record");
        if ((mc->flags & MAILDROP_CHECK_SIZE)
            && (mc->size_rec[0] != mc->content_size
                || mc->size_rec[1] != (long) mc->content_offset
                || mc->size_rec[2] != mc->nrcpt || mc->size_rec[3] != 0))
            return maildrop_bad(err, "size record does not match the file");
        mc->state = MD_DONE;
        break;
    default:
        return maildrop_bad(err, "unexpected record type");
    }
    return 0;
}

int maildrop_check(MAILDROP_CHECK *mc, off_t offset, int type,
                   const char *data, size_t len, STRBUF *err)
{
    if (len > (type == QREC_DATA ? MAILDROP_CHUNK_MAX : MAILDROP_TEXT_MAX))
        return maildrop_bad(err, "record too long");
    if (mc->state == MD_DONE)
        return maildrop_bad(err, "data after the end record");
    switch (type) {
    case QREC_SIZE:
        if (mc->state != MD_WANT_SIZE || offset != 0
            || maildrop_parse_size(data, len, mc->size_rec) < 0)
            return maildrop_bad(err, "bad size record");
        mc->state = MD_WANT_TIME;
        return 0;
    case QREC_TIME:
        if (mc->state != MD_WANT_TIME || maildrop_parse_time(data, len) < 0)
            return maildrop_bad(err, "bad time record");
        mc->state = MD_WANT_SENDER;
        return 0;
    case QREC_CONTENT:
    case QREC_DATA:
    case QREC_CONTENT_END:
    case QREC_END:
        if (type != QREC_DATA && len != 0)
            return maildrop_bad(err, "non-empty marker record");
        return maildrop_check_content(mc, offset, type, data, len, err);
    default:
        if (mc->state < MD_WANT_SENDER)
            return maildrop_bad(err, "envelope before size and time records");
        if (!maildrop_text_ok(data, len, MAILDROP_TEXT_MAX))
            return maildrop_bad(err, "control character in envelope record");
        return maildrop_check_envelope(mc, type, data, len, err);
    }
}

int maildrop_check_end(MAILDROP_CHECK *mc, STRBUF *err)
{
    if (mc->state != MD_DONE)
        return maildrop_bad(err, "premature end of file");
    return 0;
}

int maildrop_read(STREAM *s, int *type_r, STRBUF *data, off_t *offset_r,
                  STRBUF *err)
{
    *offset_r = (off_t) (s->bytes_in - (s->rend - s->rpos));
    return rec_get(s, type_r, data, MAILDROP_REC_MAX, err);
}

/* --- writing ---------------------------------------------------------- */

pid_t maildrop_postdrop_start(const char *config_dir, int *in_r, int *out_r,
                              STRBUF *err)
{
    ARGV *args = argv_alloc(8);
    STRBUF *path = strbuf_alloc(256);
    int to[2], from[2];
    pid_t pid = -1;

    strbuf_printf(path, "%s/postdrop", var_daemon_directory);
    argv_add(args, path->data);
    argv_add(args, "-c");
    argv_add(args, config_dir);
    for (int i = 0; i < msg_verbose; i++)
        argv_add(args, "-v");
    if (access(path->data, X_OK) < 0) {
        strbuf_printf(err, "cannot execute %s: %s", path->data,
                      strerror(errno));
        goto done;
    }
    if (pipe2(to, O_CLOEXEC) < 0) {
        strbuf_printf(err, "pipe: %s", strerror(errno));
        goto done;
    }
    if (pipe2(from, O_CLOEXEC) < 0) {
        strbuf_printf(err, "pipe: %s", strerror(errno));
        close(to[0]);
        close(to[1]);
        goto done;
    }
    if ((pid = fork()) < 0) {
        strbuf_printf(err, "fork: %s", strerror(errno));
        close(to[0]);
        close(to[1]);
        close(from[0]);
        close(from[1]);
        goto done;
    }
    if (pid == 0) {
        if (dup2(to[0], STDIN_FILENO) < 0 || dup2(from[1], STDOUT_FILENO) < 0)
            _exit(EX_OSERR);
        execv(args->argv[0], args->argv);
        msg_warn("execute %s: %m", args->argv[0]);
        _exit(EX_UNAVAILABLE);
    }
    close(to[0]);
    close(from[1]);
    *in_r = to[1];
    *out_r = from[0];
done:
    argv_free(&args);
    strbuf_free(&path);
    return pid;
}

int maildrop_postdrop_wait(pid_t pid, int out_fd, STRBUF *id_r)
{
    STREAM *s = stream_open(out_fd, 0, 256);
    int status;

    strbuf_reset(id_r);
    if (stream_get_line(s, id_r) > 0)
        strbuf_trim_right(id_r);
    stream_free(&s);
    close(out_fd);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return EX_OSERR;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    msg_warn("postdrop was killed by signal %d", WTERMSIG(status));
    return EX_TEMPFAIL;
}

void maildrop_write_envelope(STREAM *out, const char *sender,
                             const char *full_name, const char *envid,
                             const char *ret)
{
    char size[MAILDROP_SIZE_LEN + 1];
    struct timeval tv;

    maildrop_size_format(size, 0, 0, 0);
    rec_put(out, QREC_SIZE, size, MAILDROP_SIZE_LEN);
    gettimeofday(&tv, NULL);
    rec_fprintf(out, QREC_TIME, "%ld %ld", (long) tv.tv_sec,
                (long) tv.tv_usec);
    if (full_name)
        rec_puts(out, QREC_FULLNAME, full_name);
    rec_puts(out, QREC_SENDER, sender);
    rec_fprintf(out, QREC_ATTR, "local_uid=%ld", (long) getuid());
    rec_puts(out, QREC_ATTR, "origin=" MAILDROP_ORIGIN);
    if (envid)
        rec_fprintf(out, QREC_ATTR, "dsn_envid=%s", envid);
    if (ret)
        rec_fprintf(out, QREC_ATTR, "dsn_ret=%s", ret);
}

void maildrop_write_rcpt(STREAM *out, const char *rcpt, const char *orcpt,
                         int notify)
{
    if (orcpt)
        rec_puts(out, QREC_DSN_ORCPT, orcpt);
    if (notify)
        rec_fprintf(out, QREC_DSN_NOTIFY, "%d", notify);
    rec_puts(out, QREC_RCPT, rcpt);
}
