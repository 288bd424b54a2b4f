/*
 * fuzz_queue_file - the queue file reader (lib/mail/queue_file.c) and the
 * record decoder (lib/mail/record.c).
 *
 * The input is a queue file: it is put in a memfd and read as the queue
 * manager reads it, envelope (qenv_read_fd) and, when that succeeds,
 * content (qfile_read_content); then every recipient is marked done and
 * the envelope read again.  The raw input is also walked with
 * rec_decode(), which must agree with the stream reader rec_get().
 * Properties checked (abort() on failure):
 *   - every failure comes with a reason;
 *   - an envelope that reads has a sender, a content offset inside the
 *     file, and recipient offsets that point at R or D records;
 *   - the content chunks handed to the callback are exactly the B records
 *     after the content record, as rec_decode() finds them;
 *   - after qfile_mark_done() on each recipient and qfile_set_warn() on
 *     the warning record, the envelope reads the same with every
 *     recipient done and the new warning time;
 *   - rec_decode() and rec_get() see the same records and the same end.
 * Garbage must be refused with an error: never a crash, leak or hang.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mail/queue_file.h"
#include "mail/record.h"
#include "util/msg.h"
#include "util/stream.h"
#include "util/xmalloc.h"

#define FUZZ_WARN_TIME  1234567890L

static int fuzz_fd = -1;

static void fuzz_quiet(const char *severity, const char *text)
{
    (void) severity;
    (void) text;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    msg_set_hook(fuzz_quiet);
    if ((fuzz_fd = memfd_create("fuzz-queue-file", MFD_CLOEXEC)) < 0)
        abort();
    return 0;
}

/* Replace the memfd's contents with the input. */
static void fuzz_load(const uint8_t *data, size_t size)
{
    size_t done = 0;

    if (ftruncate(fuzz_fd, 0) < 0)
        abort();
    while (done < size) {
        ssize_t n = pwrite(fuzz_fd, data + done, size - done, (off_t) done);

        if (n <= 0)
            abort();
        done += (size_t) n;
    }
    if (lseek(fuzz_fd, 0, SEEK_SET) != 0)
        abort();
}

/* The B records the content reader must deliver, in order. */
typedef struct FUZZ_CONTENT {
    const char *buf;
    size_t  len;
    size_t  pos;                        /* next record to compare */
    int     chunks;
} FUZZ_CONTENT;

/* The next record at ctx->pos: 1 B record, 0 anything else/end/error. */
static int fuzz_next_data(FUZZ_CONTENT *ctx, const char **data_r,
                          size_t *len_r)
{
    STRBUF *err = strbuf_alloc(32);
    size_t pos = ctx->pos;
    int type;
    int rc;

    rc = rec_decode(ctx->buf, ctx->len, &pos, &type, data_r, len_r,
                    REC_LEN_MAX, err);
    strbuf_free(&err);
    if (rc <= 0 || type != QREC_DATA)
        return 0;
    ctx->pos = pos;
    return 1;
}

static int fuzz_content(const char *data, size_t len, void *context)
{
    FUZZ_CONTENT *ctx = context;
    const char *want;
    size_t want_len;

    /* memcmp reads every byte of the chunk: ASan checks the bounds. */
    if (!fuzz_next_data(ctx, &want, &want_len) || want_len != len
        || memcmp(want, data, len) != 0)
        abort();
    ctx->chunks++;
    /* Exercise the consumer-failure path now and then. */
    return len == 6 && memcmp(data, "ABORT\n", 6) == 0 ? -1 : 0;
}

static void fuzz_check_env(const QENV *env, const uint8_t *data, size_t size)
{
    if (env->sender == NULL || env->attrs == NULL
        || env->content_offset < 0 || (size_t) env->content_offset >= size
        || data[env->content_offset] != QREC_CONTENT
        || env->file_size != (off_t) size)
        abort();
    for (size_t i = 0; i < env->nrcpt; i++) {
        const QENV_RCPT *r = &env->rcpts[i];

        if (r->address == NULL || r->offset < 0 || (size_t) r->offset >= size
            || data[r->offset] != (r->done ? QREC_DONE : QREC_RCPT)
            || r->notify < 0 || r->notify > 15)
            abort();
    }
    for (size_t i = 0; i < env->attrs->argc; i++) {
        const char *eq = strchr(env->attrs->argv[i], '=');
        STRBUF *name;

        if (eq == NULL)
            abort();
        name = strbuf_alloc(16);
        strbuf_append(name, env->attrs->argv[i],
                      (size_t) (eq - env->attrs->argv[i]));
        if (qenv_attr(env, name->data) == NULL)
            abort();
        strbuf_free(&name);
    }
    (void) qenv_attr(env, "log_ident");
}

static void fuzz_queue_file(const uint8_t *data, size_t size)
{
    STRBUF *err = strbuf_alloc(64);
    QENV *env = NULL;
    QENV *env2 = NULL;

    fuzz_load(data, size);
    if (qenv_read_fd(fuzz_fd, "FUZZQID", &env, err) < 0) {
        if (err->len == 0 || env != NULL)
            abort();
        goto done;
    }
    fuzz_check_env(env, data, size);
    {
        FUZZ_CONTENT ctx;
        const char *unused;
        size_t unused_len;
        int rc;

        memset(&ctx, 0, sizeof(ctx));
        ctx.buf = (const char *) data;
        ctx.len = size;
        /* Skip the content record itself (checked above: it is an M). */
        ctx.pos = (size_t) env->content_offset;
        {
            int type;
            STRBUF *why = strbuf_alloc(32);

            if (rec_decode(ctx.buf, ctx.len, &ctx.pos, &type, &unused,
                           &unused_len, REC_LEN_MAX, why) != 1)
                abort();
            strbuf_free(&why);
        }
        strbuf_reset(err);
        rc = qfile_read_content(fuzz_fd, env, fuzz_content, &ctx, err);
        if (rc < 0 && err->len == 0)
            abort();
        if (rc == 0) {
            /* The reader stopped at the X record right after the last B. */
            int type;
            STRBUF *why = strbuf_alloc(32);

            if (rec_decode(ctx.buf, ctx.len, &ctx.pos, &type, &unused,
                           &unused_len, REC_LEN_MAX, why) != 1
                || type != QREC_CONTENT_END)
                abort();
            strbuf_free(&why);
        }
    }
    /* Mark every recipient done; the envelope must read the same. */
    for (size_t i = 0; i < env->nrcpt; i++) {
        strbuf_reset(err);
        if (qfile_mark_done(fuzz_fd, env->rcpts[i].offset, err) < 0)
            abort();
    }
    if (env->warn_offset != 0) {
        strbuf_reset(err);
        if (data[env->warn_offset] != QREC_WARN
            || qfile_set_warn(fuzz_fd, env, FUZZ_WARN_TIME, err) < 0)
            abort();
    }
    if (lseek(fuzz_fd, 0, SEEK_SET) != 0)
        abort();
    strbuf_reset(err);
    if (qenv_read_fd(fuzz_fd, "FUZZQID", &env2, err) < 0
        || env2->nrcpt != env->nrcpt
        || strcmp(env2->sender, env->sender) != 0
        || env2->content_offset != env->content_offset
        || env2->warn_offset != env->warn_offset
        || (env->warn_offset && env2->warn_time != FUZZ_WARN_TIME))
        abort();
    for (size_t i = 0; i < env2->nrcpt; i++)
        if (!env2->rcpts[i].done
            || strcmp(env2->rcpts[i].address, env->rcpts[i].address) != 0
            || env2->rcpts[i].offset != env->rcpts[i].offset)
            abort();
done:
    qenv_free(&env);
    qenv_free(&env2);
    strbuf_free(&err);
}

/* rec_decode() over the raw bytes against rec_get() over the memfd. */
static void fuzz_records(const uint8_t *data, size_t size, size_t limit)
{
    STRBUF *err = strbuf_alloc(64);
    STRBUF *err2 = strbuf_alloc(64);
    STRBUF *rec = strbuf_alloc(256);
    STREAM *s;
    size_t pos = 0;

    if (lseek(fuzz_fd, 0, SEEK_SET) != 0)
        abort();
    s = stream_open(fuzz_fd, 0, 4096);
    for (;;) {
        const char *rdata = NULL;
        size_t rlen = 0;
        size_t before = pos;
        int type = -1;
        int type2 = -1;
        int rc;
        int rc2;

        strbuf_reset(err);
        strbuf_reset(err2);
        rc = rec_decode((const char *) data, size, &pos, &type, &rdata,
                        &rlen, limit, err);
        rc2 = rec_get(s, &type2, rec, limit, err2);
        if (rc != rc2)
            abort();
        if (rc < 0) {
            if (err->len == 0 || err2->len == 0 || pos != before)
                abort();
            break;
        }
        if (rc == 0) {
            if (pos != size)
                abort();
            break;
        }
        if (pos <= before || pos > size || rdata < (const char *) data
            || rdata + rlen != (const char *) data + pos || rlen > limit
            || type != type2 || type != data[before] || rec->len != rlen
            || memcmp(rec->data, rdata, rlen) != 0)
            abort();
    }
    stream_free(&s);
    strbuf_free(&err);
    strbuf_free(&err2);
    strbuf_free(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msg_set_hook(fuzz_quiet);
    fuzz_queue_file(data, size);
    fuzz_load(data, size);
    fuzz_records(data, size, REC_LEN_MAX);
    fuzz_records(data, size, 16);
    return 0;
}
