/*
 * sendmail_content - read the message from standard input and write it
 * as maildrop content records, in constant memory (headers for -t are
 * held up to header_size_limit; the body is streamed).
 */
#include <ctype.h>
#include <strings.h>
#include <string.h>
#include <sysexits.h>

#include "mail/maildrop.h"
#include "mail/queue_file.h"
#include "mail/record.h"
#include "sendmail.h"
#include "util/msg.h"
#include "util/xmalloc.h"

SM_INPUT *sm_input_open(int fd, int dot_ends)
{
    SM_INPUT *si = xcalloc(1, sizeof(*si));

    si->in = stream_open(fd, 0, SM_PIECE_MAX);
    si->raw = strbuf_alloc(SM_PIECE_MAX + 1);
    si->dot_ends = dot_ends;
    si->at_bol = 1;
    si->skip_from = 1;
    return si;
}

void sm_input_free(SM_INPUT **sip)
{
    SM_INPUT *si = *sip;

    if (si == NULL)
        return;
    stream_free(&si->in);
    strbuf_free(&si->raw);
    xfree(sip);
}

/* An mbox separator: "From " after any number of ">". */
static int sm_is_from_line(const STRBUF *line)
{
    const char *cp = line->data + strspn(line->data, ">");

    return strncmp(cp, "From ", 5) == 0;
}

/* Turn the raw piece into out: CRLF to LF, a CR split from its LF held. */
static void sm_input_convert(SM_INPUT *si, STRBUF *out)
{
    strbuf_reset(out);
    if (si->pending_cr) {
        si->pending_cr = 0;
        if (!(si->raw->len == 1 && si->raw->data[0] == '\n'))
            strbuf_addch(out, '\r');
    }
    strbuf_append(out, si->raw->data, si->raw->len);
    if (out->len >= 2 && out->data[out->len - 1] == '\n'
        && out->data[out->len - 2] == '\r') {
        out->data[out->len - 2] = '\n';
        strbuf_truncate(out, out->len - 1);
    } else if (out->len > 0 && out->data[out->len - 1] == '\r') {
        strbuf_truncate(out, out->len - 1);
        si->pending_cr = 1;
    }
}

int sm_input_get(SM_INPUT *si, STRBUF *out, int *bol_r)
{
    for (;;) {
        int bol = si->at_bol;
        ssize_t n;

        if (si->done)
            return 0;
        if ((n = stream_get_line(si->in, si->raw)) < 0)
            msg_fatal_status(EX_DATAERR, "error reading input: %m");
        if (n == 0) {
            /* End of input; finish an unterminated last line. */
            si->done = 1;
            if (bol || si->skipping)
                return 0;
            strbuf_set(out, "\n");
            *bol_r = 0;
            return 1;
        }
        sm_input_convert(si, out);
        si->at_bol = out->len > 0 && out->data[out->len - 1] == '\n';
        if (bol && si->skip_from) {
            if (sm_is_from_line(out))
                si->skipping = 1;
            else
                si->skip_from = 0;
        }
        if (si->skipping) {
            if (si->at_bol)
                si->skipping = 0;
            continue;
        }
        /*
         * A lone "." ends the input: ".\n", or "." without a newline,
         * which only the end of input can leave (a piece is cut short
         * only at SM_PIECE_MAX bytes).
         */
        if (bol && si->dot_ends && out->data[0] == '.'
            && (out->len == 1 || (out->len == 2 && out->data[1] == '\n'))) {
            si->done = 1;
            return 0;
        }
        if (out->len == 0)
            continue;
        *bol_r = bol;
        return 1;
    }
}

/* "Name:" with optional white space before the colon (RFC 5322 obs). */
static int sm_is_header(const STRBUF *line)
{
    const unsigned char *cp = (const unsigned char *) line->data;
    const unsigned char *name = cp;

    while (*cp > ' ' && *cp < 0x7f && *cp != ':')
        cp++;
    if (cp == name)
        return 0;
    while (*cp == ' ' || *cp == '\t')
        cp++;
    return *cp == ':';
}

SM_HEADERS *sm_headers_read(SM_INPUT *si, size_t limit)
{
    SM_HEADERS *h = xcalloc(1, sizeof(*h));
    STRBUF *piece = strbuf_alloc(SM_PIECE_MAX + 1);
    STRBUF *cur = strbuf_alloc(256);
    int bol;

    h->block = strbuf_alloc(4096);
    while (sm_input_get(si, piece, &bol)) {
        strbuf_append(cur, piece->data, piece->len);
        if (h->block->len + cur->len > limit)
            break;                      /* the rest is body */
        if (cur->data[cur->len - 1] != '\n')
            continue;
        if (cur->len == 1)
            break;                      /* the blank line */
        if (!((cur->data[0] == ' ' || cur->data[0] == '\t')
              && h->block->len > 0) && !sm_is_header(cur))
            break;                      /* not a header: body */
        strbuf_append(h->block, cur->data, cur->len);
        strbuf_reset(cur);
    }
    h->rest = cur;
    strbuf_free(&piece);
    return h;
}

void sm_headers_free(SM_HEADERS **hp)
{
    SM_HEADERS *h = *hp;

    if (h == NULL)
        return;
    strbuf_free(&h->block);
    strbuf_free(&h->rest);
    xfree(hp);
}

/* The end of the logical header that starts at pos (after its folds). */
static size_t sm_header_end(const STRBUF *block, size_t pos)
{
    for (;;) {
        const char *nl = memchr(block->data + pos, '\n', block->len - pos);

        pos = nl ? (size_t) (nl - block->data) + 1 : block->len;
        if (pos >= block->len || (block->data[pos] != ' '
                                  && block->data[pos] != '\t'))
            return pos;
    }
}

/* Which recipient header: 0 none, else 1 To/Cc, 2 Bcc (+4 if Resent-). */
static int sm_header_kind(const char *name, size_t len)
{
    int resent = 0;

    if (len > 7 && strncasecmp(name, "resent-", 7) == 0) {
        resent = 4;
        name += 7;
        len -= 7;
    }
    if (len == 2 && (strncasecmp(name, "to", 2) == 0
                     || strncasecmp(name, "cc", 2) == 0))
        return 1 | resent;
    if (len == 3 && strncasecmp(name, "bcc", 3) == 0)
        return 2 | resent;
    return 0;
}

void sm_headers_extract(SM_HEADERS *h, ARGV *rcpts)
{
    STRBUF *kept = strbuf_alloc(h->block->len + 1);
    ARGV *plain = argv_alloc(4);
    ARGV *resent = argv_alloc(4);
    int seen_resent = 0;
    size_t pos = 0;

    while (pos < h->block->len) {
        size_t end = sm_header_end(h->block, pos);
        const char *hdr = h->block->data + pos;
        size_t nlen = strcspn(hdr, ": \t");
        int kind = sm_header_kind(hdr, nlen);

        if (kind) {
            const char *colon = memchr(hdr, ':', end - pos);
            char *value = xstrndup(colon + 1, end - pos
                                   - (size_t) (colon + 1 - hdr));

            sm_addr_parse(value, kind & 4 ? resent : plain, 0);
            seen_resent |= kind & 4;
            free(value);
        }
        if (!(kind & 2))
            strbuf_append(kept, hdr, end - pos);
        pos = end;
    }
    for (size_t i = 0; i < (seen_resent ? resent : plain)->argc; i++)
        argv_add(rcpts, (seen_resent ? resent : plain)->argv[i]);
    strbuf_free(&h->block);
    h->block = kept;
    argv_free(&plain);
    argv_free(&resent);
}

/* Content output in B records of at most MAILDROP_CHUNK_MAX bytes. */
typedef struct SM_OUT {
    STREAM *s;
    STRBUF *chunk;
    long    size;
} SM_OUT;

static void sm_out_flush(SM_OUT *o)
{
    if (o->chunk->len > 0) {
        rec_put(o->s, QREC_DATA, o->chunk->data, o->chunk->len);
        strbuf_reset(o->chunk);
    }
}

static void sm_out_write(SM_OUT *o, const char *data, size_t len)
{
    o->size += (long) len;
    while (len > 0) {
        size_t room = MAILDROP_CHUNK_MAX - o->chunk->len;
        size_t take = len < room ? len : room;

        strbuf_append(o->chunk, data, take);
        data += take;
        len -= take;
        if (o->chunk->len == MAILDROP_CHUNK_MAX)
            sm_out_flush(o);
    }
}

long sm_content_copy(SM_INPUT *si, SM_HEADERS *h, STREAM *out)
{
    SM_OUT o = {out, strbuf_alloc(MAILDROP_CHUNK_MAX + 1), 0};
    STRBUF *piece = strbuf_alloc(SM_PIECE_MAX + 1);
    int bol;

    if (h) {
        sm_out_write(&o, h->block->data, h->block->len);
        sm_out_write(&o, h->rest->data, h->rest->len);
    }
    while (!stream_error(out) && sm_input_get(si, piece, &bol))
        sm_out_write(&o, piece->data, piece->len);
    sm_out_flush(&o);
    strbuf_free(&o.chunk);
    strbuf_free(&piece);
    return stream_error(out) ? -1 : o.size;
}
