/*
 * fuzz_common - what the session harnesses (fuzz_smtpd, fuzz_pop3d)
 * share: the temporary directory a session runs in, libFuzzer's argv,
 * the log hook, and the client that writes one input to a socketpair and
 * collects the server's replies.  Linked into the harnesses that need it
 * (see the Makefile's fuzz target); not a fuzzer of its own.
 */
#ifndef POSTERN_FUZZ_COMMON_H
#define POSTERN_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "mail/server.h"
#include "util/strbuf.h"

#define FUZZ_REPLY_MAX      (1024 * 1024)       /* replies kept to check */

extern char fuzz_dir[64];               /* /tmp/fuzz-NAME.PID.XXXXXX */
extern int fuzz_home_fd;                /* where libFuzzer was started */
extern int fuzz_trace;                  /* FUZZ_NAME_TRACE is set */
extern int fuzz_config_errors;          /* msg_error()s so far */

/* Report a broken property or set-up step, then abort(). */
void    fuzz_fail(const char *what, const char *detail)
        __attribute__((noreturn));

/* The msg_set_hook() hook: silent unless tracing; counts errors. */
void    fuzz_log(const char *severity, const char *text);

/*
 * For LLVMFuzzerInitialize(): set the log hook, ignore SIGPIPE, make
 * libFuzzer's artifact paths absolute, remove the directories of dead
 * runs with remove(), then make fuzz_dir and chdir() into it (remove()
 * cleans it up at exit).  name is the harness ("smtpd").
 */
void    fuzz_setup(int *argc, char ***argv, const char *name,
                   void (*remove)(const char *dir));

/* A remove() for fuzz_setup(): the whole tree. */
void    fuzz_remove_tree(const char *dir);

void    fuzz_write_file(const char *name, const char *text);

/* Back to where libFuzzer was started. */
void    fuzz_chdir_home(void);

/* An input's first byte, if below 0x20, is options: take it off. */
int     fuzz_take_options(const uint8_t **data, size_t *size);

/* --- the client side -------------------------------------------------- */

typedef struct FUZZ_PEER {
    int     fd;                         /* the client's end */
    const uint8_t *rest;                /* input not yet written */
    size_t  rest_len;
    STRBUF *replies;                    /* what the server said, up to a cut */
    int     cut;                        /* replies stopped at the limit */
} FUZZ_PEER;

/* A socketpair: sv[0] for the server, sv[1] the peer's, with the input. */
void    fuzz_peer_open(FUZZ_PEER *p, int sv[2], const uint8_t *data,
                       size_t size);

/* Write what the socket takes now; shut down the write side when done. */
void    fuzz_peer_write(FUZZ_PEER *p);

/* Read what is there into the replies; 0 once the server closed. */
int     fuzz_peer_read(FUZZ_PEER *p);

/* After the session: close the peer's end, check and free the replies. */
void    fuzz_peer_finish(FUZZ_PEER *p,
                         void (*check)(const STRBUF *replies, int cut));

/* The server skeleton's view of the connection on fd. */
void    fuzz_client_init(SERVER_CLIENT *client, int fd, const char *addr,
                         const char *local_addr, int local_port);

#endif
