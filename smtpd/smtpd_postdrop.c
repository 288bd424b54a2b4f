/*
 * smtpd_postdrop - stand-alone mode (smtpd -S, run by sendmail -bs as the
 * invoking user): the user cannot reach public/cleanup, so each message is
 * written in maildrop format to the setgid postdrop helper, exactly as
 * sendmail does, and pickup takes it from there.
 */
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "mail/maildrop.h"
#include "mail/params.h"
#include "mail/queue_file.h"
#include "mail/record.h"
#include "smtpd.h"
#include "util/msg.h"

int smtpd_postdrop_open(SMTPD_STATE *state)
{
    STRBUF *err = strbuf_alloc(128);
    int in_fd;
    int out_fd;
    pid_t pid;

    if ((pid = maildrop_postdrop_start(var_config_directory, &in_fd, &out_fd,
                                       err)) < 0) {
        msg_warn("%s", err->data);
        strbuf_free(&err);
        return -1;
    }
    state->postdrop_pid = (int) pid;
    state->postdrop_out = out_fd;
    state->postdrop_content = 0;
    state->cleanup = stream_open(in_fd, 0, 1);
    maildrop_write_envelope(state->cleanup, state->sender, NULL,
                            state->dsn_envid, state->dsn_ret);
    strbuf_free(&err);
    return 0;
}

void smtpd_postdrop_rcpt(SMTPD_STATE *state, const char *rcpt,
                         const char *orcpt, int notify)
{
    maildrop_write_rcpt(state->cleanup, rcpt, orcpt, notify);
}

void smtpd_postdrop_data(SMTPD_STATE *state, const char *data, size_t len)
{
    if (!state->postdrop_content) {
        rec_put(state->cleanup, QREC_CONTENT, "", 0);
        state->postdrop_content = 1;
    }
    /* B records are 1..MAILDROP_CHUNK_MAX bytes. */
    while (len > 0) {
        size_t n = len > MAILDROP_CHUNK_MAX ? MAILDROP_CHUNK_MAX : len;

        rec_put(state->cleanup, QREC_DATA, data, n);
        data += n;
        len -= n;
    }
}

/* 0 with the maildrop ID, or -1: the message was not queued. */
int smtpd_postdrop_end(SMTPD_STATE *state, STRBUF *id)
{
    int status;

    if (!state->postdrop_content) {
        rec_put(state->cleanup, QREC_CONTENT, "", 0);
        state->postdrop_content = 1;
    }
    rec_put(state->cleanup, QREC_CONTENT_END, "", 0);
    rec_put(state->cleanup, QREC_END, "", 0);
    (void) stream_flush(state->cleanup);
    stream_close(&state->cleanup);
    status = maildrop_postdrop_wait(state->postdrop_pid, state->postdrop_out,
                                    id);
    state->postdrop_pid = 0;
    if (status != 0) {
        msg_warn("postdrop failed with status %d", status);
        return -1;
    }
    return 0;
}

void smtpd_postdrop_abort(SMTPD_STATE *state)
{
    STRBUF *id;

    if (state->postdrop_pid == 0)
        return;
    /* An incomplete file: postdrop refuses it and removes its temp file. */
    stream_close(&state->cleanup);
    id = strbuf_alloc(32);
    (void) maildrop_postdrop_wait(state->postdrop_pid, state->postdrop_out,
                                  id);
    state->postdrop_pid = 0;
    strbuf_free(&id);
}
