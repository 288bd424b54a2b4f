/*
 * maildir - the mail store shared by local, pop3d and imapd: delivery of
 * one message into a Maildir, or appended to an mbox file.
 *
 * Everything is done with the caller's effective ids: a root process
 * switches to the mailbox owner before it calls in here (local does so in
 * a child process), so that what is created belongs to the owner and disk
 * quotas apply.  Only with MAILDIR_FLAG_CHOWN does a root caller give
 * what it creates to msg->uid/gid instead.
 *
 * Maildir (qmail's maildir(5), as Dovecot reads it): the message is
 * written to tmp/ under a name no other delivery can use,
 *      SEC.M<usec>P<pid>Q<counter>.<host>
 * (host with "/" as "\057", ":" as "\072" and "," as "\054"), created with
 * O_EXCL, fsynced, then renamed without replacing anything into new/ as
 * NAME,S=<size> (the S= size lets POP3 and IMAP skip a stat), and new/ is
 * fsynced: only then is the message delivered.  The maildir and any
 * missing parent directories are created (mode 0700, each parent
 * fsynced).  Whatever fails, nothing is left in tmp/.
 *
 * mbox (Postfix local(8)): "From SENDER  DATE" line, the prepended
 * headers, the content with ">" before every line that starts with
 * "From ", a newline if the content lacks its last one, and an empty
 * line.  The file is opened without following a symbolic link, must be a
 * regular file with one link, and is locked with fcntl() and (with
 * MAILDIR_FLAG_DOTLOCK) a PATH.lock file; on any failure it is truncated
 * back to its old size.
 *
 * Both copy the content from a source callback in chunks, and check the
 * size limit while writing: a Maildir message file, or the whole mbox
 * file, may not grow past msg->size_limit bytes.
 *
 * Failures are classified as Postfix's mbox_dsn() does, except that a
 * full mailbox is temporary, not permanent:
 *   over the size limit, EDQUOT, EFBIG     4.2.2 (mailbox full)
 *   ENOSPC, EIO                            4.3.0 (disk full, I/O error)
 *   EACCES, EPERM, EROFS, lock timeout     4.2.0
 *   not a regular file, a symbolic link, more than one link, ENOTDIR,
 *   ELOOP, ENAMETOOLONG, EISDIR, an mbox whose directory is missing
 *   (without MAILDIR_FLAG_MKDIR)           5.2.0 (a bad path: permanent)
 *   a content source error                 4.3.0
 *   anything else                          4.3.0
 */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "util/strbuf.h"

/*
 * The content: the source calls put() for each chunk, in order, and
 * returns 0 at the end, or -1 (with err set) when it could not read the
 * message.  When put() returns -1 the source must stop and return -1; the
 * store knows why.  (qfile_read_content() is such a source.)
 */
typedef int (*MAILDIR_PUT_FN)(const char *data, size_t len, void *put_ctx);
typedef int (*MAILDIR_SOURCE_FN)(void *src_ctx, MAILDIR_PUT_FN put,
                                 void *put_ctx, STRBUF *err);

typedef struct MAILDIR_MSG {
    const char *sender;                 /* mbox From_ line; "" = null */
    const char *prepend;                /* header lines, each with "\n" */
    MAILDIR_SOURCE_FN source;
    void   *source_ctx;
    off_t   size_limit;                 /* bytes; 0 = no limit */
    int     flags;
    uid_t   uid;                        /* MAILDIR_FLAG_CHOWN */
    gid_t   gid;
} MAILDIR_MSG;

#define MAILDIR_FLAG_DOTLOCK    (1 << 0)    /* mbox: PATH.lock as well */
#define MAILDIR_FLAG_DOTLOCK_MAY_FAIL (1 << 1)  /* mbox: go on without it
                                             * when the directory is not
                                             * writable (files named in
                                             * aliases) */
#define MAILDIR_FLAG_OWNER_CHECK (1 << 2)   /* mbox: an existing file must
                                             * belong to the euid (Postfix
                                             * strict_mailbox_ownership) */
#define MAILDIR_FLAG_CHOWN      (1 << 3)    /* as root: give created files
                                             * and directories to uid/gid */
#define MAILDIR_FLAG_MKDIR      (1 << 4)    /* mbox: create missing parent
                                             * directories (virtual users) */

/* mbox locking: attempts, the wait between them, when a PATH.lock is stale. */
#define MAILDIR_LOCK_ATTEMPTS   40
#define MAILDIR_LOCK_DELAY_MS   250
#define MAILDIR_LOCK_STALE      500     /* seconds (Postfix stale_lock_time) */

#define MAILDIR_OK      0
#define MAILDIR_TEMP    4               /* try again later */
#define MAILDIR_PERM    5               /* will not work: bounce */

typedef struct MAILDIR_STATUS {
    int     code;                       /* MAILDIR_OK, _TEMP or _PERM */
    char    dsn[16];                    /* "2.0.0", "4.2.2", ... */
    STRBUF *why;                        /* the problem, without the path
                                         * of the mailbox itself */
    STRBUF *path;                       /* Maildir: the file in new/ */
} MAILDIR_STATUS;

MAILDIR_STATUS *maildir_status_alloc(void);
void    maildir_status_free(MAILDIR_STATUS **stp);

/*
 * Deliver into the Maildir dir (with or without a trailing "/").
 * Returns st->code.
 */
int     maildir_deliver(const char *dir, const MAILDIR_MSG *msg,
                        MAILDIR_STATUS *st);

/* Append to the mbox file path.  Returns st->code. */
int     maildir_mbox_append(const char *path, const MAILDIR_MSG *msg,
                            MAILDIR_STATUS *st);

/*
 * Create dir with tmp/, new/ and cur/ and missing parents (msg may be
 * NULL; only its flags, uid and gid are used).  Returns st->code.
 */
int     maildir_make(const char *dir, const MAILDIR_MSG *msg,
                     MAILDIR_STATUS *st);

/* A new file name for tmp/, without the ",S=" part. */
void    maildir_unique_name(STRBUF *out);

/* "From SENDER  Thu Nov 27 00:22:26 2026\n" (mbox, pipes to commands). */
void    maildir_from_line(STRBUF *out, const char *sender, time_t when);

#endif
