/*
 * login - the process model of the mail access servers (pop3d, later
 * imapd), Dovecot's split of login and mail processes in one skeleton.
 *
 * The service process stays root and never reads a client byte.  For
 * each client it forks:
 *
 *   the login process   as mail_owner: TLS and the protocol until a user
 *                       has authenticated (ops->login); it tells the
 *                       parent who, over a pipe, then relays bytes
 *                       between the client (through TLS) and the mail
 *                       process until either side closes;
 *   the mail process    forked by the parent once it knows the user:
 *                       chrooted into that user's Maildir (found with
 *                       virtual_mailbox_maps) with the mailbox's uid and
 *                       gid, it serves the rest of the session
 *                       (ops->mail) over a socket pair, in plaintext.
 *
 * So code that parses client input before authentication can read the
 * password store but no mailbox, and after it, only that user's mailbox.
 * When not started as root (development), nobody changes ids and the
 * mail process is not chrooted.
 */
#ifndef POSTERN_LOGIN_H
#define POSTERN_LOGIN_H

#include "mail/server.h"
#include "mail/vmailbox.h"
#include "util/strbuf.h"
#include "util/stream.h"

typedef struct LOGIN_OPS {
    /*
     * In the login process.  Speak to the client until someone logs in:
     * 1 with the user name in user and *client_stream the stream to relay
     * (TLS already layered under it); 0 when the client went away.  The
     * reply to the successful login is the mail process's to send.
     */
    int     (*login)(SERVER_CLIENT *client, STREAM **client_stream,
                     STRBUF *user);
    /* In the parent: the reply for a user whose mailbox cannot be used. */
    const char *(*fail_reply)(int temporary);
    /*
     * In the mail process, inside the Maildir ("." is the mailbox):
     * serve the session over the stream.  client: "host[addr]" for logs.
     */
    void    (*mail)(STREAM *s, const char *user, const char *client);
    /*
     * In the login process, when the session is over (the relay ended,
     * or login() returned 0), output flushed: end TLS cleanly.  May be
     * NULL.
     */
    void    (*logout)(STREAM *client_stream);
    int     timeout;                    /* seconds, for the relay */
} LOGIN_OPS;

/* Once, before privileges change: the tables and the mail_owner ids. */
void    login_init(void);

/* Serve one client (the SERVER_OPS serve function calls this). */
void    login_serve(SERVER_CLIENT *client, const LOGIN_OPS *ops);

/*
 * The relay of the login process, exposed for tests: bytes both ways
 * between a client stream (TLS or not) and a plain descriptor until one
 * side closes or nothing moves for timeout seconds.
 */
void    login_relay(STREAM *client, int fd, int timeout);

#endif
