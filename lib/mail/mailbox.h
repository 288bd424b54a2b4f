/*
 * mailbox - the read side of the mail store: one Maildir with its index,
 * as pop3d (and later imapd) see it.  Delivery is maildir.h's business.
 *
 * A Maildir message is known by its base name: the file name up to the
 * ':' of the info part ("NAME:2,FLAGS"), which never changes while the
 * message lives, even when its flags (and so its file name) do.  The
 * index, an LMDB file MAILDIR/postern-index (and its lock file
 * postern-index-lock), maps each base name to a UID, assigned in
 * ascending order when a message is first seen and never reused (IMAP
 * UIDs, RFC 3501 2.3.1.1), under one UIDVALIDITY chosen when the index is
 * created.  The index also caches each message's size with CRLF line
 * ends (what POP3 and IMAP send).  When the index is lost it is rebuilt
 * with a new UIDVALIDITY, so clients that cached UIDs start over rather
 * than see wrong ones.
 *
 * mailbox_open() synchronizes: messages in new/ move to cur/ (with ":2,"
 * added), every file in cur/ gets its UID, and index entries whose file
 * is gone are dropped.  LMDB's single writer serializes concurrent
 * sessions, so two of them never assign different UIDs to one message.
 * The list a session works on is a snapshot taken then, sorted by UID;
 * mail delivered later appears at the next mailbox_open().
 */
#ifndef POSTERN_MAILBOX_H
#define POSTERN_MAILBOX_H

#include <stdint.h>
#include <sys/types.h>

#include "util/strbuf.h"

typedef struct MAILBOX_MSG {
    uint32_t uid;
    char   *file;                       /* "cur/NAME:2,FLAGS" */
    off_t   size;                       /* bytes in the file */
    off_t   vsize;                      /* with CRLF line ends */
} MAILBOX_MSG;

typedef struct MAILBOX {
    char   *path;                       /* the Maildir */
    uint32_t uidvalidity;
    uint32_t uidnext;
    MAILBOX_MSG *msgs;                  /* the snapshot, by UID */
    size_t  count;
    void   *index;                      /* private */
} MAILBOX;

/*
 * Open and synchronize the Maildir at path (created when missing, mode
 * 0700).  NULL with the reason in why.
 */
MAILBOX *mailbox_open(const char *path, STRBUF *why);
void    mailbox_close(MAILBOX **mbp);

/*
 * Open message i of the snapshot for reading: a file descriptor, or -1
 * with errno set (ENOENT: the message was removed meanwhile).  A file
 * renamed since the snapshot (new flags) is found again by base name.
 */
int     mailbox_msg_open(MAILBOX *mb, size_t i);

/*
 * Remove the n messages listed by index in which: their files, then
 * their index entries, in one index transaction.  A message that is
 * already gone counts as removed.  0, or -1 with why.
 */
int     mailbox_expunge(MAILBOX *mb, const size_t *which, size_t n,
                        STRBUF *why);

/*
 * A message text with CRLF line ends, as POP3 and IMAP send it: an LF not
 * preceded by CR becomes CRLF, and a text that does not end in LF gets
 * CRLF added.  Feed the text chunk by chunk to mailbox_crlf(), then call
 * mailbox_crlf_end(); each appends to out.  The vsize of a message is
 * the length of exactly this, so senders must use it.
 */
typedef struct MAILBOX_CRLF {
    int     last;                       /* the previous byte, or -1 */
} MAILBOX_CRLF;

#define MAILBOX_CRLF_INIT   { -1 }

void    mailbox_crlf(MAILBOX_CRLF *st, const char *data, size_t len,
                     STRBUF *out);
void    mailbox_crlf_end(MAILBOX_CRLF *st, STRBUF *out);

#endif
