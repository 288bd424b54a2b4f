/*
 * postern queue show [-e] [-h] [-b] ID ... - print queue files the way
 * Postfix's "postcat -q ID" does (src/postcat/postcat.c):
 *
 *   *** ENVELOPE RECORDS deferred/A/ID ***
 *   message_size:             279             346               2  (...)
 *   message_arrival_time: Fri Nov 27 00:22:26 2026
 *   sender: alice@example.org
 *   named_attribute: client_name=localhost
 *   named_attribute: dsn_orig_rcpt=rfc822;carol@remote.test
 *   original_recipient: carol@remote.test
 *   recipient: carol@remote.test           (done_recipient: when done)
 *   *** MESSAGE CONTENTS deferred/A/ID ***
 *   headers, the empty line, the body
 *   *** HEADER EXTRACTED deferred/A/ID ***
 *   *** MESSAGE FILE END deferred/A/ID ***
 *
 * -e shows the envelope (with all four markers), -h the headers, -b the
 * body from the empty line that ends the headers; the default is all
 * three.  The markers are printed only with the envelope.  Record values
 * are printed as they are in the file, as postcat does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "postern_queue.h"
#include "mail/queue_file.h"
#include "mail/record.h"
#include "mail/showq.h"
#include "util/msg.h"
#include "util/stream.h"

#define SHOW_ENV        (1 << 0)        /* -e */
#define SHOW_HEADER     (1 << 1)        /* -h */
#define SHOW_BODY       (1 << 2)        /* -b */
#define SHOW_TEXT       (SHOW_HEADER | SHOW_BODY)
#define SHOW_ALL        (SHOW_ENV | SHOW_TEXT)

/* Where postcat -q looks, in its order; corrupt/ too, for the admin. */
static const char *const show_queues[] = {
    "maildrop", "incoming", "active", "deferred", "hold", "corrupt", NULL,
};

/* The record types a queue file may start with. */
#define SHOW_ENVELOPE_TYPES "CTWFSAonORDME"

typedef enum { SHOW_IN_ENV, SHOW_IN_HEADER, SHOW_IN_BODY } SHOW_STATE;

typedef struct SHOW_CTX {
    int     flags;
    SHOW_STATE state;
    STRBUF *line;                       /* a header line being collected */
    int     at_bol;                     /* the last byte printed was \n */
} SHOW_CTX;

static void show_out(SHOW_CTX *ctx, const char *data, size_t len)
{
    if (len == 0)
        return;
    fwrite(data, 1, len, stdout);
    ctx->at_bol = data[len - 1] == '\n';
}

/*
 * Postfix is_header(): a name of printable ASCII without ':' or spaces,
 * optional blanks, then ':'.
 */
static int show_is_header(const char *line, size_t len)
{
    int in_name = 0;
    int blanks = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) line[i];

        if (c == ':')
            return in_name;
        if (c == ' ' || c == '\t') {
            if (!in_name)
                return 0;
            blanks = 1;
        } else if (c <= ' ' || c >= 0x7f || blanks) {
            return 0;
        } else {
            in_name = 1;
        }
    }
    return 0;
}

/*
 * One content line in the header state: a header or a folded line stays
 * there; anything else (first of all the empty line) starts the body.
 * This is wrong when the message starts with whitespace (postcat too).
 */
static void show_header_line(SHOW_CTX *ctx, const char *line, size_t len)
{
    size_t text_len = len && line[len - 1] == '\n' ? len - 1 : len;

    if (!(show_is_header(line, text_len)
          || (text_len > 0 && (line[0] == ' ' || line[0] == '\t'))))
        ctx->state = SHOW_IN_BODY;
    if (ctx->flags & (ctx->state == SHOW_IN_BODY ? SHOW_BODY : SHOW_HEADER))
        show_out(ctx, line, len);
}

static void show_content(SHOW_CTX *ctx, const char *data, size_t len)
{
    while (len > 0) {
        const char *nl;
        size_t n;

        if (ctx->state == SHOW_IN_BODY) {
            if (ctx->flags & SHOW_BODY)
                show_out(ctx, data, len);
            return;
        }
        if ((nl = memchr(data, '\n', len)) == NULL) {
            strbuf_append(ctx->line, data, len);
            return;
        }
        n = (size_t) (nl - data) + 1;
        strbuf_append(ctx->line, data, n);
        show_header_line(ctx, ctx->line->data, ctx->line->len);
        strbuf_reset(ctx->line);
        data += n;
        len -= n;
    }
}

/* End of content: an unfinished line is still a line. */
static void show_content_end(SHOW_CTX *ctx)
{
    if (ctx->line->len > 0) {
        show_header_line(ctx, ctx->line->data, ctx->line->len);
        strbuf_reset(ctx->line);
    }
    if (!ctx->at_bol)
        show_out(ctx, "\n", 1);
}

static void show_marker(const SHOW_CTX *ctx, const char *what,
                        const char *path)
{
    if (ctx->flags & SHOW_ENV)
        printf("*** %s %s ***\n", what, path);
}

static void show_value(const STRBUF *data)
{
    fwrite(data->data, 1, data->len, stdout);
    putchar('\n');
}

static void show_named(const char *name, const STRBUF *data)
{
    printf("%s: ", name);
    show_value(data);
}

/* An envelope or extracted record, as postcat names it. */
static void show_record(const char *path, int type, const STRBUF *data)
{
    const char *name;
    STRBUF *when;
    char *end;
    long t;

    switch (type) {
    case QREC_SIZE:
        show_named("message_size", data);
        break;
    case QREC_TIME:
    case QREC_WARN:
        /* "sec usec", "%15ld": the seconds as a date, like postcat. */
        name = type == QREC_TIME ? "message_arrival_time"
            : "warning_message_time";
        t = strtol(data->data, &end, 10);
        if (end == data->data || (*end != 0 && *end != ' ')) {
            show_named(name, data);
            break;
        }
        when = strbuf_alloc(32);
        showq_format_time(when, t);
        printf("%s: %s\n", name, when->data);
        strbuf_free(&when);
        break;
    case QREC_FULLNAME:
        show_named("sender_fullname", data);
        break;
    case QREC_SENDER:
        show_named("sender", data);
        break;
    case QREC_ATTR:
        if (strchr(data->data, '=') == NULL)
            msg_warn("%s: malformed attribute: missing '=': %.100s", path,
                     data->data);
        else
            show_named("named_attribute", data);
        break;
    case QREC_DSN_ORCPT:
        /* Postfix keeps these two in attribute records. */
        printf("named_attribute: dsn_orig_rcpt=");
        show_value(data);
        break;
    case QREC_DSN_NOTIFY:
        printf("named_attribute: notify_flags=");
        show_value(data);
        break;
    case QREC_ORIG_RCPT:
        show_named("original_recipient", data);
        break;
    case QREC_RCPT:
        show_named("recipient", data);
        break;
    case QREC_DONE:
        show_named("done_recipient", data);
        break;
    default:
        show_named("unknown_record_type", data);
        break;
    }
}

/* Print one open queue file; 0, or -1 when it is not readable to the end. */
static int show_file(int fd, const char *path, int flags)
{
    STREAM *s = stream_open(fd, 0, 8192);
    STRBUF *data = strbuf_alloc(8192);
    STRBUF *why = strbuf_alloc(64);
    SHOW_CTX ctx = {flags, SHOW_IN_ENV, strbuf_alloc(256), 1};
    int first = 1;
    int type;
    int rc;

    if (flags & SHOW_ENV)
        printf("*** ENVELOPE RECORDS %s ***\n", path);
    while ((rc = rec_get(s, &type, data, REC_LEN_MAX, why)) > 0) {
        if (first && strchr(SHOW_ENVELOPE_TYPES, type) == NULL) {
            msg_warn("%s: input is not a valid queue file", path);
            break;
        }
        first = 0;
        if (type == QREC_CONTENT) {
            if (ctx.state != SHOW_IN_ENV)
                msg_warn("%s: out-of-order message content marker", path);
            show_marker(&ctx, "MESSAGE CONTENTS", path);
            ctx.state = SHOW_IN_HEADER;
        } else if (type == QREC_DATA && ctx.state != SHOW_IN_ENV) {
            if (flags & SHOW_TEXT)
                show_content(&ctx, data->data, data->len);
        } else if (type == QREC_CONTENT_END) {
            if (ctx.state == SHOW_IN_ENV)
                msg_warn("%s: out-of-order extracted segment marker", path);
            show_content_end(&ctx);
            show_marker(&ctx, "HEADER EXTRACTED", path);
            ctx.state = SHOW_IN_ENV;
        } else if (type == QREC_END) {
            if (ctx.state != SHOW_IN_ENV)
                msg_warn("%s: out-of-order message end marker", path);
            show_marker(&ctx, "MESSAGE FILE END", path);
            break;
        } else if (ctx.state == SHOW_IN_ENV && (flags & SHOW_ENV)) {
            show_record(path, type, data);
        }
        fflush(stdout);
    }
    if (rc < 0) {
        fflush(stdout);
        msg_warn("%s: record read error: %s", path, why->data);
    }
    fflush(stdout);
    strbuf_free(&ctx.line);
    stream_free(&s);
    strbuf_free(&data);
    strbuf_free(&why);
    return rc < 0 ? -1 : 0;
}

/* Open ID in the first queue that has it; a file may move meanwhile. */
static int show_open(const char *id, STRBUF *path)
{
    int denied = 0;
    int fd;

    for (int tries = 0; tries < 2; tries++) {
        for (const char *const *qp = show_queues; *qp; qp++) {
            if (!showq_find(*qp, id, path)) {
                denied |= errno == EACCES;
                continue;
            }
            fd = open(path->data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW
                      | O_NONBLOCK);
            if (fd >= 0 || errno != ENOENT)
                return fd;
        }
    }
    errno = denied ? EACCES : ENOENT;
    return -1;
}

int postern_queue_show(int argc, char **argv)
{
    STRBUF *path = strbuf_alloc(64);
    int flags = 0;
    int status = 0;
    int ch;

    optind = 1;
    while ((ch = getopt(argc, argv, "ehb")) != -1) {
        switch (ch) {
        case 'e':
            flags |= SHOW_ENV;
            break;
        case 'h':
            flags |= SHOW_HEADER;
            break;
        case 'b':
            flags |= SHOW_BODY;
            break;
        default:
            fprintf(stderr, "usage: postern queue show [-e] [-h] [-b] "
                    "queue_id ...\n");
            exit(2);
        }
    }
    if (flags == 0)
        flags = SHOW_ALL;
    if (optind >= argc) {
        fprintf(stderr, "usage: postern queue show [-e] [-h] [-b] "
                "queue_id ...\n");
        exit(2);
    }
    for (; optind < argc; optind++) {
        const char *id = argv[optind];
        int fd;

        if (!showq_id_ok(id))
            msg_fatal("bad mail queue ID: %s", id);
        if ((fd = show_open(id, path)) < 0)
            msg_fatal("open queue file %s: %m", id);
        if (show_file(fd, path->data, flags) < 0)
            status = 1;
        close(fd);
    }
    strbuf_free(&path);
    return status;
}
