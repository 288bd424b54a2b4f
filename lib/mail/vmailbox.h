/*
 * vmailbox - where a virtual mailbox user's mail lives, as local delivery,
 * pop3d and imapd all need to know it (Postfix virtual(8)): the
 * virtual_mailbox_maps result under virtual_mailbox_base, owned by the
 * virtual_uid_maps/virtual_gid_maps ids.  Every lookup uses the address
 * folded to lower case.
 */
#ifndef POSTERN_VMAILBOX_H
#define POSTERN_VMAILBOX_H

#include <sys/types.h>

#include "mail/maps.h"
#include "util/strbuf.h"

typedef struct VMAILBOX_MAPS {
    MAPS   *mailbox;                    /* virtual_mailbox_maps */
    MAPS   *uid;                        /* virtual_uid_maps */
    MAPS   *gid;                        /* virtual_gid_maps */
} VMAILBOX_MAPS;

void    vmailbox_maps_open(VMAILBOX_MAPS *vm);
void    vmailbox_maps_free(VMAILBOX_MAPS *vm);

typedef struct VMAILBOX {
    STRBUF *path;                       /* the Maildir (or mbox file) */
    uid_t   uid;
    gid_t   gid;
} VMAILBOX;

#define VMAILBOX_FOUND      1
#define VMAILBOX_NOTFOUND   0           /* no such user */
#define VMAILBOX_RETRY      (-1)        /* a table lookup failed */
#define VMAILBOX_CONFIG     (-2)        /* a bad path or id: warned */

/* Look up address; box->path must be allocated by the caller. */
int     vmailbox_find(VMAILBOX_MAPS *vm, const char *address, VMAILBOX *box);

#endif
