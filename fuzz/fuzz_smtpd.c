/*
 * fuzz_smtpd - the SMTP server's command parser and session state
 * machine (the smtpd/ sources).
 *
 * smtpd/smtpd.c is compiled into this file (its main() renamed) so that
 * the session runs exactly as smtpd_serve() runs it for a client of the
 * server skeleton; the other smtpd sources are linked as objects (see the
 * Makefile's fuzz target).  Each input is what one client sends: it is
 * written to one end of a socketpair, followed by a shutdown of the write
 * side, and smtpd_serve() runs on the other end.  A helper thread (one
 * for the process) reads the replies and plays the cleanup service on
 * public/cleanup, so that DATA and BDAT get as far as they do in
 * production.
 *
 * An input whose first byte is below 0x20 uses that byte as options for
 * the session (the byte is not sent):
 *   0x01  smtpd_forbid_unauth_pipelining = yes
 *   0x02  strict_rfc821_envelopes = yes, smtpd_helo_required = yes
 *   0x04  smtpd_delay_reject = no
 *   0x08  small limits: message_size_limit = 300, smtpd_recipient_limit
 *         = 2, smtputf8_enable = no
 *   0x10  the client is 192.0.2.1 (not in mynetworks, no XCLIENT)
 *         instead of 127.0.0.1
 *
 * Properties checked (abort() on failure):
 *   - every reply line is "DDD text" or "DDD-text" ending in CRLF, with
 *     no other CR, LF or NUL;
 *   - smtpd speaks the cleanup protocol in order (open, rcpt..., data...,
 *     end), never sends a malformed record or a chunk over
 *     CLEANUP_CHUNK_MAX, and never passes an address with control
 *     characters, nor a client name, address, HELO name or DSN value
 *     with a line break (they end up in headers and log lines).
 * Nothing may crash, leak or hang.  While a session runs, the working
 * directory is an empty temporary directory, /tmp/fuzz-smtpd.PID.XXXXXX
 * (removed at exit, or by the next run after a crash), so nothing
 * outside it is touched; libFuzzer's own paths stay relative to where it
 * was started (a relative or missing -artifact_prefix is made absolute).
 *
 * FUZZ_SMTPD_TRACE=1 in the environment prints smtpd's log and replies
 * to stderr (to see what a seed or a crash input does).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* smtpd.c, without its main(). */
int     smtpd_main_unused(int argc, char **argv);

#define main smtpd_main_unused
#include "../smtpd/smtpd.c"
#undef main

#include "fuzz_common.h"
#include "mail/cleanup_proto.h"
#include "mail/ipc.h"

#define FUZZ_CLIENT_ADDR        "127.0.0.1"
#define FUZZ_REMOTE_ADDR        "192.0.2.1"
#define FUZZ_CONN_MAX           8               /* cleanup connections */

#define FUZZ_OPT_PIPELINING     0x01
#define FUZZ_OPT_STRICT         0x02
#define FUZZ_OPT_NO_DELAY       0x04
#define FUZZ_OPT_SMALL          0x08
#define FUZZ_OPT_REMOTE         0x10

static int fuzz_listen_fd = -1;

/* The configuration each input starts from (after params_load). */
static struct {
    int     forbid_pipelining;
    int     strict;
    int     helo_required;
    int     delay_reject;
    long    size_limit;
    int     rcpt_limit;
    int     smtputf8;
} fuzz_defaults;

/* --- setup ------------------------------------------------------------ */

/* Remove a directory made by LLVMFuzzerInitialize: only what it made. */
static void fuzz_remove_files(const char *dir)
{
    static const char *const files[] = {
        "public/cleanup", "rcpt_access.pcre", "helo_access.pcre",
    };
    STRBUF *path = strbuf_alloc(128);

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        strbuf_printf(path, "%s/%s", dir, files[i]);
        (void) unlink(path->data);
    }
    strbuf_printf(path, "%s/public", dir);
    (void) rmdir(path->data);
    (void) rmdir(dir);
    strbuf_free(&path);
}

static void fuzz_helper_init(void);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const settings[] = {
        "myhostname=mx.example.com",
        "mydomain=example.com",
        "myorigin=example.com",
        "mydestination=$myhostname, localhost.$mydomain, localhost, "
            "example.com",
        "mynetworks=127.0.0.0/8, [::1]/128",
        "relay_domains=relay.example",
        "virtual_alias_domains=valias.example",
        "virtual_alias_maps=inline:{alias@valias.example=bob@example.com, "
            "@example.net=bob@example.com}",
        "virtual_mailbox_domains=vmbox.example, broken.example",
        "virtual_mailbox_maps=inline:{box@vmbox.example=box/}",
        "local_recipient_maps=inline:{bob=1, alice=1, postmaster=1, "
            "root=1, hold=1, discard=1, prepend=1, warn=1, tempfail=1, "
            "reject=1}",
        "smtpd_client_restrictions=check_client_access "
            "inline:{192.0.2.66=REJECT, 192.0.2.67=DEFER, "
            "192.0.2.68=HOLD, {192.0.2.69=PREPEND X-Client: 69}, "
            "192.0.2.70=reject_unauth_pipelining, 198.51.100=OK, "
            "{10=554 5.7.1 net ten}}",
        "smtpd_helo_restrictions="
            "check_helo_access pcre:$queue_directory/helo_access.pcre, "
            "reject_invalid_helo_hostname, "
            "warn_if_reject reject_non_fqdn_helo_hostname",
        "smtpd_sender_restrictions=warn_if_reject reject_non_fqdn_sender, "
            "check_sender_access inline:{spammer@example.org=REJECT, "
            "hold@example.org=HOLD, discard@example.org=DISCARD, "
            "{prepend@example.org=PREPEND X-Sender: checked}, "
            "{info@example.org=INFO sender noted}, "
            "{nested@example.org=reject_non_fqdn_sender permit}, "
            "example.org=DUNNO, {spam.example=550 5.7.0 go away}, "
            "{bad.example=bogus_action}, <>=OK}",
        "smtpd_relay_restrictions=permit_mynetworks, "
            "permit_sasl_authenticated, reject_unauth_destination",
        "smtpd_recipient_restrictions=reject_non_fqdn_recipient, "
            "check_recipient_access pcre:$queue_directory/rcpt_access.pcre, "
            "reject_unlisted_recipient",
        /* Not reject_unauth_pipelining: every input arrives at once. */
        "smtpd_data_restrictions=check_client_access "
            "inline:{{192.0.2.71=REJECT no data}}, permit",
        "smtpd_authorized_xclient_hosts=127.0.0.0/8",
        "smtpd_client_connection_count_limit=0",
        "smtpd_client_connection_rate_limit=0",
        "smtpd_peername_lookup=no",
        "smtpd_timeout=1",
        "smtpd_error_sleep_time=0",
        "smtpd_soft_error_limit=3",
        "smtpd_hard_error_limit=8",
        "smtpd_forbid_unauth_pipelining=no",
        "line_length_limit=256",
        "message_size_limit=1000000",
        "ipc_timeout=5",
        "recipient_delimiter=+",
    };
    ARGV *overrides = argv_alloc(64);
    STRBUF *err = strbuf_alloc(128);
    struct sockaddr_un sun;

    fuzz_setup(argc, argv, "smtpd", fuzz_remove_files);
    fuzz_write_file("helo_access.pcre",
                    "/^bad\\.helo\\.example$/ REJECT bad helo\n"
                    "/^(.+)\\.dyn\\.example$/ 450 4.7.1 dynamic host $1\n"
                    "/^\\[/ DUNNO\n"
                    "/^localhost$/ reject_invalid_helo_hostname\n"
                    "/^trusted\\./ OK\n");
    fuzz_write_file("rcpt_access.pcre",
                    "/^reject@/ REJECT\n"
                    "/^defer@/ DEFER try later\n"
                    "/^hold@/ HOLD\n"
                    "/^discard@/ DISCARD\n"
                    "/^prepend@(.*)$/ PREPEND X-Rcpt: $1\n"
                    "/^warn@/ WARN watch it\n"
                    "/^(421|521)@/ $1 4.7.0 go away\n"
                    "/^nested@/ check_recipient_access inline:{nested@"
                    "example.com=REJECT}\n"
                    "/^loop@/ check_recipient_access pcre:rcpt_access.pcre\n"
                    "/^pipe@/ reject_unauth_pipelining\n"
                    "/^ok@/ OK\n");
    if (mkdir("public", 0700) < 0)
        fuzz_fail("mkdir public", strerror(errno));
    if ((fuzz_listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC
                                 | SOCK_NONBLOCK, 0)) < 0)
        fuzz_fail("socket", strerror(errno));
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", CLEANUP_CLASS,
             CLEANUP_SERVICE);
    if (bind(fuzz_listen_fd, (struct sockaddr *) &sun, sizeof(sun)) < 0
        || listen(fuzz_listen_fd, 16) < 0)
        fuzz_fail("cleanup socket", strerror(errno));

    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        argv_add(overrides, settings[i]);
    {
        STRBUF *q = strbuf_alloc(64);

        strbuf_printf(q, "queue_directory=%s", fuzz_dir);
        argv_add(overrides, q->data);
        strbuf_free(&q);
    }
    /* No main.cf in the temporary directory: defaults and overrides. */
    if (params_load_r(fuzz_dir, overrides, PARAMS_FLAG_MISSING_OK, err) < 0)
        fuzz_fail("params_load", err->data);
    argv_free(&overrides);
    strbuf_free(&err);
    smtpd_pre_init("smtp", NULL);
    /* A configuration error makes every check answer 451: none, then. */
    if (fuzz_config_errors > 0)
        fuzz_fail("smtpd_pre_init", "configuration error");
    fuzz_defaults.forbid_pipelining = var_smtpd_forbid_unauth_pipelining;
    fuzz_defaults.strict = var_strict_rfc821_envelopes;
    fuzz_defaults.helo_required = var_smtpd_helo_required;
    fuzz_defaults.delay_reject = var_smtpd_delay_reject;
    fuzz_defaults.size_limit = var_message_size_limit;
    fuzz_defaults.rcpt_limit = var_smtpd_recipient_limit;
    fuzz_defaults.smtputf8 = var_smtputf8_enable;
    fuzz_helper_init();
    fuzz_chdir_home();
    return 0;
}

static void fuzz_set_options(int opts)
{
    var_smtpd_forbid_unauth_pipelining = (opts & FUZZ_OPT_PIPELINING)
        ? 1 : fuzz_defaults.forbid_pipelining;
    var_strict_rfc821_envelopes = (opts & FUZZ_OPT_STRICT)
        ? 1 : fuzz_defaults.strict;
    var_smtpd_helo_required = (opts & FUZZ_OPT_STRICT)
        ? 1 : fuzz_defaults.helo_required;
    var_smtpd_delay_reject = (opts & FUZZ_OPT_NO_DELAY)
        ? 0 : fuzz_defaults.delay_reject;
    var_message_size_limit = (opts & FUZZ_OPT_SMALL)
        ? 300 : fuzz_defaults.size_limit;
    var_smtpd_recipient_limit = (opts & FUZZ_OPT_SMALL)
        ? 2 : fuzz_defaults.rcpt_limit;
    var_smtputf8_enable = (opts & FUZZ_OPT_SMALL)
        ? 0 : fuzz_defaults.smtputf8;
}

/* --- the fake cleanup service ----------------------------------------- */

typedef struct FUZZ_CONN {
    STREAM *stream;
    int     state;                      /* 0 new, 1 open, 2 data, 3 end */
    int     rcpts;
    char   *sender;
} FUZZ_CONN;

/* No control characters at all (addresses). */
static void fuzz_check_addr(const char *what, const IPC_ATTR *a)
{
    if (a == NULL)
        return;
    if (strlen(a->value) != a->len)
        fuzz_fail(what, "NUL byte");
    for (size_t i = 0; i < a->len; i++) {
        unsigned char ch = (unsigned char) a->value[i];

        if (ch < 0x20 || ch == 0x7f)
            fuzz_fail(what, "control character");
    }
}

/* No line breaks (text that reaches headers and logs). */
static void fuzz_check_text(const char *what, const IPC_ATTR *a)
{
    if (a == NULL)
        return;
    if (strlen(a->value) != a->len)
        fuzz_fail(what, "NUL byte");
    if (strpbrk(a->value, "\r\n") != NULL)
        fuzz_fail(what, "line break");
}

static void fuzz_cleanup_reply(FUZZ_CONN *c, long status)
{
    IPC_MSG *m = ipc_msg_alloc();

    ipc_put_long(m, "status", status);
    if (status == 0) {
        ipc_put_str(m, "queue_id", "4FUZZQUEUEID");
    } else {
        ipc_put_str(m, "dsn", status >= 500 ? "5.7.1" : "4.3.0");
        ipc_put_str(m, "reason", status >= 500 ? "Rejected by fuzz cleanup"
                    : "Try again later");
    }
    (void) ipc_write(c->stream, m);
    ipc_msg_free(&m);
}

/* One request; 0 to keep the connection, -1 to close it. */
static int fuzz_cleanup_request(FUZZ_CONN *c)
{
    IPC_MSG *m = ipc_msg_alloc();
    STRBUF *err = strbuf_alloc(64);
    const IPC_ATTR *req;
    int rc = 0;
    int n;

    n = ipc_read(c->stream, m, CLEANUP_RECORD_MAX, err);
    if (n < 0)
        fuzz_fail("cleanup request", err->data);
    if (n <= 0) {
        /* A close before "end" aborts the message: always allowed. */
        rc = -1;
        goto done;
    }
    if ((req = ipc_find(m, "req")) == NULL)
        fuzz_fail("cleanup request", "no req");
    if (strcmp(req->value, "open") == 0) {
        const IPC_ATTR *sender = ipc_find(m, "sender");
        static const char *const texts[] = {
            "client_name", "client_address", "client_port", "helo_name",
            "protocol", "dsn_envid", "dsn_ret", "origin",
        };

        if (c->state != 0 || sender == NULL)
            fuzz_fail("cleanup open", "out of order or no sender");
        fuzz_check_addr("open sender", sender);
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
            fuzz_check_text(texts[i], ipc_find(m, texts[i]));
        c->sender = xstrdup(sender->value);
        c->state = 1;
        if (strncmp(c->sender, "tempfail", 8) == 0) {
            fuzz_cleanup_reply(c, 451);
            c->state = 3;
        } else {
            fuzz_cleanup_reply(c, 0);
        }
    } else if (strcmp(req->value, "rcpt") == 0) {
        const IPC_ATTR *rcpt = ipc_find(m, "rcpt");

        if (c->state != 1 || rcpt == NULL || rcpt->len == 0)
            fuzz_fail("cleanup rcpt", "out of order or empty");
        fuzz_check_addr("rcpt", rcpt);
        fuzz_check_text("orcpt", ipc_find(m, "orcpt"));
        c->rcpts++;
    } else if (strcmp(req->value, "data") == 0) {
        const IPC_ATTR *chunk = ipc_find(m, "data");

        if (c->state < 1 || c->state > 2 || c->rcpts == 0 || chunk == NULL
            || chunk->len == 0 || chunk->len > CLEANUP_CHUNK_MAX)
            fuzz_fail("cleanup data", "out of order, empty or too large");
        c->state = 2;
    } else if (strcmp(req->value, "end") == 0) {
        if (c->state < 1 || c->state > 2 || c->rcpts == 0)
            fuzz_fail("cleanup end", "out of order");
        c->state = 3;
        fuzz_cleanup_reply(c, strncmp(c->sender, "reject", 6) == 0
                           ? 554 : 0);
    } else {
        fuzz_fail("cleanup request", req->value);
    }
done:
    ipc_msg_free(&m);
    strbuf_free(&err);
    return rc;
}

static void fuzz_conn_close(FUZZ_CONN *c)
{
    stream_close(&c->stream);
    xfree(&c->sender);
    memset(c, 0, sizeof(*c));
}

/* --- the client side -------------------------------------------------- */

static void fuzz_helper_session(FUZZ_PEER *p)
{
    FUZZ_CONN conns[FUZZ_CONN_MAX];

    memset(conns, 0, sizeof(conns));
    for (;;) {
        struct pollfd pfd[2 + FUZZ_CONN_MAX];
        nfds_t n = 0;
        int client_done = 0;

        pfd[n].fd = p->fd;
        pfd[n++].events = POLLIN | (p->rest_len ? POLLOUT : 0);
        pfd[n].fd = fuzz_listen_fd;
        pfd[n++].events = POLLIN;
        for (int i = 0; i < FUZZ_CONN_MAX; i++) {
            pfd[n].fd = conns[i].stream ? conns[i].stream->fd : -1;
            pfd[n++].events = POLLIN;
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            fuzz_fail("poll", strerror(errno));
        }
        if (pfd[0].revents & POLLOUT)
            fuzz_peer_write(p);
        if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
            && !fuzz_peer_read(p))
            client_done = 1;            /* smtpd closed its end */
        if (pfd[1].revents & POLLIN) {
            int fd = accept4(fuzz_listen_fd, NULL, NULL, SOCK_CLOEXEC);

            if (fd >= 0) {
                int slot = -1;

                for (int i = 0; i < FUZZ_CONN_MAX && slot < 0; i++)
                    if (conns[i].stream == NULL)
                        slot = i;
                if (slot < 0)
                    fuzz_fail("cleanup", "too many connections at once");
                conns[slot].stream = stream_open(fd, 5, 4096);
            }
        }
        for (int i = 0; i < FUZZ_CONN_MAX; i++) {
            if (conns[i].stream == NULL
                || !(pfd[2 + i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            /* Records already buffered get no second poll() event. */
            do {
                if (fuzz_cleanup_request(&conns[i]) < 0) {
                    fuzz_conn_close(&conns[i]);
                    break;
                }
            } while (stream_pending(conns[i].stream) > 0);
        }
        if (client_done)
            break;
    }
    /* The session is over: drop what is left for the next input. */
    for (int i = 0; i < FUZZ_CONN_MAX; i++)
        if (conns[i].stream)
            fuzz_conn_close(&conns[i]);
    for (;;) {
        int fd = accept4(fuzz_listen_fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0)
            break;
        close(fd);
    }
}

/*
 * The helper thread lives as long as the process (a thread per input
 * costs more than the session under ASan).  For each input it gets the
 * peer through fuzz_start[] and answers on fuzz_done[] when all its work
 * for that input, and all its memory, is finished.
 */
static int fuzz_start[2] = {-1, -1};
static int fuzz_done[2] = {-1, -1};

/* One small message over a pipe; libFuzzer's SIGALRM may interrupt. */
static void fuzz_pipe_read(int fd, void *buf, size_t len)
{
    ssize_t n;

    while ((n = read(fd, buf, len)) < 0 && errno == EINTR)
         /* void */ ;
    if (n != (ssize_t) len)
        fuzz_fail("pipe read", n < 0 ? strerror(errno) : "short read");
}

static void fuzz_pipe_write(int fd, const void *buf, size_t len)
{
    ssize_t n;

    while ((n = write(fd, buf, len)) < 0 && errno == EINTR)
         /* void */ ;
    if (n != (ssize_t) len)
        fuzz_fail("pipe write", n < 0 ? strerror(errno) : "short write");
}

static void *fuzz_helper(void *arg)
{
    FUZZ_PEER *p;

    (void) arg;
    for (;;) {
        fuzz_pipe_read(fuzz_start[0], &p, sizeof(p));
        fuzz_helper_session(p);
        fuzz_pipe_write(fuzz_done[1], "", 1);
    }
    return NULL;
}

static void fuzz_helper_init(void)
{
    pthread_t helper;

    if (pipe2(fuzz_start, O_CLOEXEC) < 0 || pipe2(fuzz_done, O_CLOEXEC) < 0)
        fuzz_fail("pipe", strerror(errno));
    if (pthread_create(&helper, NULL, fuzz_helper, NULL) != 0
        || pthread_detach(helper) != 0)
        fuzz_fail("pthread_create", "failed");
}

/*
 * Every reply line: DDD, then SP or "-" and text, then CRLF.  When the
 * replies were cut at FUZZ_REPLY_MAX, the last line may be incomplete.
 */
static void fuzz_check_replies(const STRBUF *r, int cut)
{
    size_t pos = 0;

    if (memchr(r->data, 0, r->len) != NULL)
        fuzz_fail("reply", "NUL byte");
    while (pos < r->len) {
        const char *line = r->data + pos;
        const char *nl = memchr(line, '\n', r->len - pos);
        size_t len;

        if (nl == NULL) {
            if (cut)
                break;
            fuzz_fail("reply", "not terminated");
        }
        len = (size_t) (nl - line) + 1;
        if (len < 5 || line[len - 2] != '\r'
            || memchr(line, '\r', len - 2) != NULL
            || line[0] < '2' || line[0] > '5'
            || line[1] < '0' || line[1] > '9'
            || line[2] < '0' || line[2] > '9'
            || (len > 5 && line[3] != ' ' && line[3] != '-'))
            fuzz_fail("reply", "malformed line");
        pos += len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SERVER_CLIENT client;
    FUZZ_PEER peer;
    FUZZ_PEER *pp = &peer;
    char done;
    int opts;
    int sv[2];
    int bufsize = 1 << 20;

    msg_set_hook(fuzz_log);
    if (chdir(fuzz_dir) < 0)
        fuzz_fail("chdir", strerror(errno));
    opts = fuzz_take_options(&data, &size);
    fuzz_set_options(opts);
    fuzz_peer_open(&peer, sv, data, size);
    (void) setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bufsize,
                      sizeof(bufsize));
    /*
     * Send all of it before the session starts, so that what smtpd sees
     * as pipelined does not depend on thread timing; only an input larger
     * than the socket buffer is finished by the helper.
     */
    fuzz_peer_write(&peer);
    fuzz_pipe_write(fuzz_start[1], &pp, sizeof(pp));

    fuzz_client_init(&client, sv[0], (opts & FUZZ_OPT_REMOTE)
                     ? FUZZ_REMOTE_ADDR : FUZZ_CLIENT_ADDR, "192.0.2.25", 25);
    smtpd_serve(&client, "smtp", NULL);
    close(sv[0]);                       /* the skeleton closes client->fd */

    fuzz_pipe_read(fuzz_done[0], &done, 1);
    fuzz_peer_finish(&peer, fuzz_check_replies);
    fuzz_chdir_home();
    return 0;
}
