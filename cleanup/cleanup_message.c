/*
 * cleanup_message - message content: headers (checks, missing headers,
 * loop detection) and body, streamed into the queue file.
 *
 * Headers are held until the end of the header section (at most
 * header_size_limit bytes), because a Received: header for local
 * submissions goes first; the body is passed through in chunks and never
 * held whole.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "mail/cleanup_proto.h"
#include "mail/params.h"
#include "mail/record.h"
#include "util/msg.h"
#include "util/xmalloc.h"

#define CLEANUP_FLUSH_SIZE  CLEANUP_CHUNK_MAX

void cleanup_content_init(CLEANUP_STATE *state)
{
    state->in_headers = 1;
    state->line = strbuf_alloc(256);
    state->header = strbuf_alloc(256);
    state->out = strbuf_alloc(CLEANUP_FLUSH_SIZE + 1024);
}

/* Queue content bytes for the file, within message_size_limit. */
static void cleanup_out(CLEANUP_STATE *state, const char *data, size_t len)
{
    if (state->too_big || state->fail.code)
        return;
    if (var_message_size_limit > 0
        && state->message_size + (long) len > var_message_size_limit) {
        state->too_big = 1;
        cleanup_failed(state, 552, "5.3.4", "Error: message file too big");
        return;
    }
    state->message_size += (long) len;
    strbuf_append(state->out, data, len);
    if (state->out->len >= CLEANUP_FLUSH_SIZE) {
        rec_put(qfile_stream(state->qfile), QREC_DATA, state->out->data,
                state->out->len);
        strbuf_reset(state->out);
    }
}

static void cleanup_out_str(CLEANUP_STATE *state, const char *str)
{
    cleanup_out(state, str, strlen(str));
}

/* "Name:" at the start of text: the length of Name, or 0. */
static size_t cleanup_header_name(const char *text, size_t len)
{
    size_t n = 0;

    while (n < len && text[n] > 32 && text[n] < 127 && text[n] != ':')
        n++;
    return n > 0 && n < len && text[n] == ':' ? n : 0;
}

static int cleanup_header_is(const char *header, const char *name)
{
    size_t n = strlen(name);

    return strncasecmp(header, name, n) == 0 && header[n] == ':';
}

/* The header value without leading space and the final newline. */
static void cleanup_header_value(const char *header, STRBUF *out)
{
    const char *cp = strchr(header, ':') + 1;

    while (*cp == ' ' || *cp == '\t')
        cp++;
    strbuf_set(out, cp);
    while (out->len && (out->data[out->len - 1] == '\n'))
        strbuf_truncate(out, out->len - 1);
}

/* Apply header_checks; returns 1 to keep the header, 0 to drop it. */
static int cleanup_header_check(CLEANUP_STATE *state, const char *header)
{
    STRBUF *key = strbuf_alloc(256);
    const char *value;
    const char *text;
    size_t word;
    int keep = 1;

    strbuf_set(key, header);
    while (key->len && key->data[key->len - 1] == '\n')
        strbuf_truncate(key, key->len - 1);
    switch (maps_find(cleanup_header_checks, key->data, &value)) {
    case DICT_ERROR:
        msg_warn("%s: %s", state->queue_id,
                 cleanup_header_checks->error->data);
        cleanup_failed(state, 451, "4.3.0", "Temporary lookup failure");
        goto done;
    case DICT_NOTFOUND:
        goto done;
    }
    word = strcspn(value, " \t");
    text = value + word + strspn(value + word, " \t");
    if (word == 6 && strncasecmp(value, "REJECT", 6) == 0) {
        cleanup_log_reject(state, "reject", key->data,
                           *text ? text : "message content rejected");
        cleanup_failed(state, 550, "5.7.1", "%s",
                       *text ? text : "message content rejected");
    } else if (word == 4 && strncasecmp(value, "HOLD", 4) == 0) {
        cleanup_log_reject(state, "hold", key->data, text);
        state->hold = 1;
    } else if (word == 7 && strncasecmp(value, "DISCARD", 7) == 0) {
        cleanup_log_reject(state, "discard", key->data, text);
        state->discard = 1;
    } else if (word == 4 && strncasecmp(value, "WARN", 4) == 0) {
        cleanup_log_reject(state, "warning", key->data, text);
    } else if (word == 4 && strncasecmp(value, "INFO", 4) == 0) {
        cleanup_log_reject(state, "info", key->data, text);
    } else if (word == 7 && strncasecmp(value, "PREPEND", 7) == 0) {
        if (cleanup_header_name(text, strlen(text)) == 0) {
            msg_warn("%s: header_checks: bad PREPEND header: %s",
                     state->queue_id, text);
        } else {
            cleanup_out_str(state, text);
            cleanup_out_str(state, "\n");
        }
    } else if (word == 7 && strncasecmp(value, "REPLACE", 7) == 0) {
        if (cleanup_header_name(text, strlen(text)) == 0) {
            msg_warn("%s: header_checks: bad REPLACE header: %s",
                     state->queue_id, text);
        } else {
            cleanup_out_str(state, text);
            cleanup_out_str(state, "\n");
            keep = 0;
        }
    } else if (word == 6 && strncasecmp(value, "IGNORE", 6) == 0) {
        keep = 0;
    } else if (!((word == 5 && strncasecmp(value, "DUNNO", 5) == 0)
                 || (word == 2 && strncasecmp(value, "OK", 2) == 0))) {
        msg_warn("%s: header_checks: unknown action \"%s\" -- ignored",
                 state->queue_id, value);
    }
done:
    strbuf_free(&key);
    return keep;
}

/* One complete header (with its continuation lines). */
static void cleanup_header_done(CLEANUP_STATE *state)
{
    STRBUF *value;
    const char *header = state->header->data;

    if (state->header->len == 0)
        return;
    value = strbuf_alloc(128);
    if (cleanup_header_is(header, "Received")) {
        if (++state->hop_count > var_hopcount_limit)
            cleanup_failed(state, 554, "5.4.6",
                           "Error: too many hops");
    } else if (cleanup_header_is(header, "Message-ID")) {
        cleanup_header_value(header, value);
        if (!state->seen_message_id)
            msg_info("%s: message-id=%s", state->queue_id, value->data);
        state->seen_message_id = 1;
    } else if (cleanup_header_is(header, "Date")) {
        state->seen_date = 1;
    } else if (cleanup_header_is(header, "From")) {
        state->seen_from = 1;
    }
    if (cleanup_header_checks->count == 0
        || cleanup_header_check(state, header))
        cleanup_out(state, header, state->header->len);
    strbuf_reset(state->header);
    strbuf_free(&value);
}

/* Headers a local submission lacks, as Postfix adds them. */
static void cleanup_missing_headers(CLEANUP_STATE *state)
{
    STRBUF *hdr = strbuf_alloc(256);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;

    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %e %b %Y %H:%M:%S %z", &tm);
    if (!state->seen_message_id) {
        strbuf_printf(hdr, "Message-Id: <%s@%s>\n", state->queue_id,
                      var_myhostname);
        cleanup_out_str(state, hdr->data);
        msg_info("%s: message-id=<%s@%s>", state->queue_id, state->queue_id,
                 var_myhostname);
    }
    if (!state->seen_date) {
        strbuf_printf(hdr, "Date: %s\n", date);
        cleanup_out_str(state, hdr->data);
    }
    if (!state->seen_from) {
        if (state->fullname && *state->fullname)
            strbuf_printf(hdr, "From: %s <%s>\n", state->fullname,
                          *state->sender ? state->sender : "MAILER-DAEMON");
        else
            strbuf_printf(hdr, "From: %s\n",
                          *state->sender ? state->sender : "MAILER-DAEMON");
        cleanup_out_str(state, hdr->data);
    }
    strbuf_free(&hdr);
}

/* End of the header section: write what is pending. */
static void cleanup_headers_done(CLEANUP_STATE *state, int add_blank)
{
    cleanup_header_done(state);
    if (strcmp(state->origin, CLEANUP_ORIGIN_PICKUP) == 0)
        cleanup_missing_headers(state);
    state->in_headers = 0;
    if (add_blank)
        cleanup_out_str(state, "\n");
}

/* The first header for local submissions: who handed the mail in. */
static void cleanup_received_local(CLEANUP_STATE *state)
{
    STRBUF *hdr = strbuf_alloc(256);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;

    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %e %b %Y %H:%M:%S %z (%Z)", &tm);
    strbuf_printf(hdr, "Received: by %s (%s, from userid %s)\n\tid %s; %s\n",
                  var_myhostname, var_mail_name,
                  state->local_uid ? state->local_uid : "unknown",
                  state->queue_id, date);
    cleanup_out_str(state, hdr->data);
    strbuf_free(&hdr);
}

/* One header-section line (with its newline, unless at end of data). */
static void cleanup_header_line(CLEANUP_STATE *state, const char *line,
                                size_t len)
{
    state->header_bytes += (long) len;
    if (len == 1 && line[0] == '\n') {
        cleanup_headers_done(state, 1);
        return;
    }
    if ((line[0] == ' ' || line[0] == '\t') && state->header->len > 0
        && state->header_bytes <= var_header_size_limit) {
        strbuf_append(state->header, line, len);
        return;
    }
    if (cleanup_header_name(line, len) > 0
        && state->header_bytes <= var_header_size_limit) {
        cleanup_header_done(state);
        strbuf_append(state->header, line, len);
        return;
    }
    /* Not a header: the body starts here, after an inserted blank line. */
    cleanup_headers_done(state, 1);
    cleanup_out(state, line, len);
}

void cleanup_content(CLEANUP_STATE *state, const char *data, size_t len)
{
    if (!state->in_content) {
        state->in_content = 1;
        state->content_offset = qfile_offset(state->qfile);
        rec_put(qfile_stream(state->qfile), QREC_CONTENT, "", 0);
        if (strcmp(state->origin, CLEANUP_ORIGIN_PICKUP) == 0)
            cleanup_received_local(state);
    }
    while (len > 0 && state->in_headers) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t) (nl - data) + 1 : len;

        strbuf_append(state->line, data, take);
        data += take;
        len -= take;
        if (nl) {
            cleanup_header_line(state, state->line->data, state->line->len);
            strbuf_reset(state->line);
        } else if ((long) state->line->len > var_header_size_limit) {
            /* A header line without end: it is body. */
            cleanup_headers_done(state, 1);
            cleanup_out(state, state->line->data, state->line->len);
            strbuf_reset(state->line);
        }
    }
    if (len > 0)
        cleanup_out(state, data, len);
}

void cleanup_content_end(CLEANUP_STATE *state)
{
    if (!state->in_content)
        cleanup_content(state, "", 0);
    if (state->in_headers) {
        if (state->line->len > 0) {
            /* Last line without a newline. */
            strbuf_addch(state->line, '\n');
            cleanup_header_line(state, state->line->data, state->line->len);
        }
        if (state->in_headers)
            cleanup_headers_done(state, 0);
    }
    if (state->out->len > 0 && !state->fail.code) {
        rec_put(qfile_stream(state->qfile), QREC_DATA, state->out->data,
                state->out->len);
        strbuf_reset(state->out);
    }
    rec_put(qfile_stream(state->qfile), QREC_CONTENT_END, "", 0);
}
