/*
 * pop3d - the POP3 server (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS,
 * RFC 5034 SASL) over the Maildir store.
 *
 * The login process (pop3d_login.c) speaks the AUTHORIZATION state; the
 * mail process (pop3d_mail.c), chrooted into the user's Maildir, the
 * TRANSACTION and UPDATE states.  lib/mail/login.c runs both.
 */
#ifndef POSTERN_POP3D_H
#define POSTERN_POP3D_H

#include "mail/server.h"
#include "util/strbuf.h"
#include "util/stream.h"

/* The longest command line RFC 2449 allows: 255 octets with CRLF. */
#define POP3D_CMD_MAX       255
/* SASL responses may be longer (RFC 5034 4: no limit; this is ours). */
#define POP3D_LINE_LIMIT    8192

/* pop3d_login.c */
int     pop3d_login_pre_init(void);
int     pop3d_login(SERVER_CLIENT *client, STREAM **sp, STRBUF *user);
/* In the login process at the end: close_notify to a TLS client. */
void    pop3d_logout(STREAM *s);

/* pop3d_mail.c */
void    pop3d_mail(STREAM *s, const char *user, const char *client);
const char *pop3d_fail_reply(int temporary);

/*
 * Read a command line: 1 with the line (CRLF removed) in buf, 0 when the
 * client is gone or timed out, -1 when the line was too long (the rest
 * of it has been read and thrown away).
 */
int     pop3d_get_command(STREAM *s, STRBUF *buf);

/* Split "VERB args": the verb upper-cased in place; args after spaces. */
char   *pop3d_split(char *line, char **args);

#endif
