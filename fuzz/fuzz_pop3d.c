/*
 * fuzz_pop3d - the POP3 server's command reader and both states of a
 * session: AUTHORIZATION (pop3d_login(): CAPA, USER/PASS, AUTH with
 * libsasl2 against a real sasldb, STLS, QUIT) and, once a login
 * succeeds, TRANSACTION and UPDATE (pop3d_mail() on a small Maildir).
 *
 * pop3d/pop3d.c is compiled into this file (its main() renamed) for the
 * command reader it shares with the other pop3d sources, which are
 * linked as objects (see the Makefile's fuzz target).  The login and
 * mail halves run in this one process, one after the other, on the same
 * stream, as the login process's relay joins them in production; no
 * process is forked and no ids change.
 *
 * Each input is what one client sends: a helper thread writes it to one
 * end of a socketpair, shuts down its write side and reads the replies
 * until pop3d closes; the session runs on the other end.  The user
 * fuzz@fuzz.example has the password "fuzz-secret" (PLAIN and LOGIN are
 * offered), so "USER fuzz@fuzz.example" "PASS fuzz-secret" or
 * "AUTH PLAIN AGZ1enpAZnV6ei5leGFtcGxlAGZ1enotc2VjcmV0" gets into the
 * mailbox: four messages (dot lines, CRLF and LF line ends, a bare CR,
 * no final newline), restored before each input that needs them.
 *
 * An input whose first byte is below 0x20 uses that byte as options (the
 * byte is not sent):
 *   0x01  the client is 192.0.2.1 on 192.0.2.110 (not the server's own
 *         address): no plaintext login before TLS
 *   0x02  pop3d_tls_auth_only = no
 *   0x04  pop3d_error_limit = 3, pop3d_auth_failure_limit = 1
 *
 * Properties checked (abort() on failure): the first reply line is the
 * "+OK" greeting; every LF pop3d sends ends a CRLF; the replies end with
 * a complete line.  Nothing may crash, leak or hang.  The session runs
 * in /tmp/fuzz-pop3d.PID.XXXXXX (removed at exit, or by the next run
 * after a crash); libFuzzer's own paths stay relative to where it was
 * started.  FUZZ_POP3D_TRACE=1 in the environment prints pop3d's log and
 * replies to stderr.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* pop3d.c, without its main(). */
int     pop3d_main_unused(int argc, char **argv);

#define main pop3d_main_unused
#include "../pop3d/pop3d.c"
#undef main

#include "fuzz_common.h"
#include "sasl/xsasl.h"
#include "util/argv.h"
#include "util/xmalloc.h"

#define FUZZ_USER           "fuzz@fuzz.example"
#define FUZZ_PASSWORD       "fuzz-secret"

#define FUZZ_OPT_REMOTE     0x01
#define FUZZ_OPT_OPEN       0x02
#define FUZZ_OPT_STRICT     0x04

static struct {
    int     tls_auth_only;
    int     error_limit;
    int     auth_failure_limit;
} fuzz_defaults;

/* The mailbox: file names in cur/ and their text. */
static const struct {
    const char *name;
    const char *text;
} fuzz_msgs[] = {
    {"1700000000.M1P1Q1.fuzz,S=58:2,",
     "From: a@example.org\nSubject: one\n\n.dot\n..two\n.\nlast\n"},
    {"1700000000.M2P1Q1.fuzz,S=40:2,S",
     "Subject: crlf\r\n\r\nline one\r\nline two\r\n"},
    {"1700000000.M3P1Q1.fuzz:2,",
     "Subject: no final newline\n\nbare\rcr\nend"},
    {"1700000000.M4P1Q1.fuzz:2,", "Subject: only a header\n"},
};

/*
 * Cyrus SASL's LOGIN plugin (2.1.28) leaks the password buffer when the
 * user name it was given does not canonicalize (an empty one): not ours.
 */
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void)
{
    return "leak:liblogin.so\n";
}

/* --- setup ------------------------------------------------------------ */

/* Put back what an earlier input deleted (new/ stays empty). */
static void fuzz_restore_maildir(void)
{
    STRBUF *path = strbuf_alloc(128);
    struct stat st;

    for (size_t i = 0; i < sizeof(fuzz_msgs) / sizeof(fuzz_msgs[0]); i++) {
        strbuf_printf(path, "%s/mail/cur/%s", fuzz_dir, fuzz_msgs[i].name);
        if (stat(path->data, &st) < 0)
            fuzz_write_file(path->data, fuzz_msgs[i].text);
    }
    strbuf_free(&path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ARGV *overrides = argv_alloc(16);
    STRBUF *err = strbuf_alloc(128);
    STRBUF *setting = strbuf_alloc(128);

    fuzz_setup(argc, argv, "pop3d", fuzz_remove_tree);
    if (mkdir("mail", 0700) < 0 || mkdir("mail/cur", 0700) < 0
        || mkdir("mail/new", 0700) < 0 || mkdir("mail/tmp", 0700) < 0)
        fuzz_fail("mkdir", strerror(errno));
    fuzz_restore_maildir();

    argv_add(overrides, "myhostname=pop.fuzz.example");
    argv_add(overrides, "sasl_mech_list=PLAIN LOGIN");
    argv_add(overrides, "pop3d_tls_security_level=none");
    argv_add(overrides, "pop3d_auth_failure_delay=0");
    argv_add(overrides, "pop3d_timeout=5");
    strbuf_printf(setting, "sasl_db_path=%s/sasldb2", fuzz_dir);
    argv_add(overrides, setting->data);
    strbuf_printf(setting, "queue_directory=%s", fuzz_dir);
    argv_add(overrides, setting->data);
    strbuf_printf(setting, "config_directory=%s", fuzz_dir);
    argv_add(overrides, setting->data);
    /* No main.cf in the temporary directory: defaults and overrides. */
    if (params_load_r(fuzz_dir, overrides, PARAMS_FLAG_MISSING_OK, err) < 0)
        fuzz_fail("params_load", err->data);
    if (pop3d_login_pre_init() < 0)
        fuzz_fail("pop3d_login_pre_init", "configuration error");
    /* The password store, as postern user add makes it. */
    if (xsasl_user_set(FUZZ_USER, FUZZ_PASSWORD, err) < 0)
        fuzz_fail("xsasl_user_set", err->data);
    fuzz_defaults.tls_auth_only = var_pop3d_tls_auth_only;
    fuzz_defaults.error_limit = var_pop3d_error_limit;
    fuzz_defaults.auth_failure_limit = var_pop3d_auth_failure_limit;
    argv_free(&overrides);
    strbuf_free(&err);
    strbuf_free(&setting);
    fuzz_chdir_home();
    return 0;
}

/* --- the client side -------------------------------------------------- */

/*
 * Write the input (while reading replies, so that neither side blocks
 * the other), shut down the write side, then read until pop3d closes.
 */
static void *fuzz_helper(void *arg)
{
    FUZZ_PEER *p = arg;

    fuzz_peer_write(p);
    for (;;) {
        struct pollfd pfd;

        pfd.fd = p->fd;
        pfd.events = POLLIN | (p->rest_len ? POLLOUT : 0);
        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            fuzz_fail("poll", strerror(errno));
        }
        if (pfd.revents & POLLOUT)
            fuzz_peer_write(p);
        if ((pfd.revents & (POLLIN | POLLHUP | POLLERR))
            && !fuzz_peer_read(p))
            break;                      /* pop3d closed its end */
    }
    return NULL;
}

static void fuzz_check_replies(const STRBUF *r, int cut)
{
    if (r->len < 5 || memcmp(r->data, "+OK ", 4) != 0)
        fuzz_fail("reply", "no +OK greeting");
    for (size_t i = 0; i < r->len; i++)
        if (r->data[i] == '\n' && (i == 0 || r->data[i - 1] != '\r'))
            fuzz_fail("reply", "LF without CR");
    if (!cut && r->data[r->len - 1] != '\n')
        fuzz_fail("reply", "incomplete last line");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SERVER_CLIENT client;
    FUZZ_PEER peer;
    pthread_t helper;
    STREAM *s = NULL;
    STRBUF *user = strbuf_alloc(64);
    STRBUF *path = strbuf_alloc(128);
    int opts;
    int sv[2];

    msg_set_hook(fuzz_log);
    opts = fuzz_take_options(&data, &size);
    var_pop3d_tls_auth_only = (opts & FUZZ_OPT_OPEN)
        ? 0 : fuzz_defaults.tls_auth_only;
    var_pop3d_error_limit = (opts & FUZZ_OPT_STRICT)
        ? 3 : fuzz_defaults.error_limit;
    var_pop3d_auth_failure_limit = (opts & FUZZ_OPT_STRICT)
        ? 1 : fuzz_defaults.auth_failure_limit;
    fuzz_peer_open(&peer, sv, data, size);
    if (pthread_create(&helper, NULL, fuzz_helper, &peer) != 0)
        fuzz_fail("pthread_create", "failed");

    if (opts & FUZZ_OPT_REMOTE)
        fuzz_client_init(&client, sv[0], "192.0.2.1", "192.0.2.110", 110);
    else
        fuzz_client_init(&client, sv[0], "127.0.0.1", "127.0.0.1", 110);
    if (pop3d_login(&client, &s, user) == 1) {
        /* The mail process: in the Maildir, as login.c runs it. */
        fuzz_restore_maildir();
        strbuf_printf(path, "%s/mail", fuzz_dir);
        if (chdir(path->data) < 0)
            fuzz_fail("chdir", strerror(errno));
        pop3d_mail(s, user->data, client.addr);
        fuzz_chdir_home();
    }
    if (s) {
        (void) stream_flush(s);
        pop3d_logout(s);
        stream_free(&s);
    }
    close(sv[0]);                       /* the skeleton closes client->fd */
    if (pthread_join(helper, NULL) != 0)
        fuzz_fail("pthread_join", "failed");
    fuzz_peer_finish(&peer, fuzz_check_replies);
    strbuf_free(&user);
    strbuf_free(&path);
    return 0;
}
