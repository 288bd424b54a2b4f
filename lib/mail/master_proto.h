/*
 * master_proto - how master and its children talk.
 *
 * A child inherits, at fixed descriptors:
 *   MASTER_STATUS_FD     the write end of its service's status pipe;
 *   MASTER_LISTEN_FD...  its service's listening sockets (count: -s N).
 * It writes a MASTER_STATUS record whenever it starts serving a client
 * (TAKEN) and when it is free again (AVAIL); records are smaller than
 * PIPE_BUF, so writes from many children never interleave.  master forks
 * a new child only when no child of the service is available.  A write
 * that fails means master is gone: the child exits.
 *
 * master runs a child as:
 *   PROGRAM -s NSOCK -c CONFIG_DIR -m MAIN_CF -n SERVICE -t TYPE [-U] [-C]
 *           [-o name=value ...] [-v] [-- args ...]
 * -m: the copy of main.cf that master validated (read it, not the one in
 * CONFIG_DIR, which may hold unchecked edits); -U: switch to mail_owner;
 * -C: chroot to the queue directory.
 * SIGTERM asks a child to finish its current client and exit.
 */
#ifndef POSTERN_MASTER_PROTO_H
#define POSTERN_MASTER_PROTO_H

#include <sys/types.h>

#define MASTER_STATUS_FD    3
#define MASTER_LISTEN_FD    4

#define MASTER_STAT_TAKEN   0
#define MASTER_STAT_AVAIL   1

typedef struct MASTER_STATUS {
    pid_t   pid;
    int     status;                     /* MASTER_STAT_* */
} MASTER_STATUS;

/* master pokes services with a wakeup time with TRIGGER_WAKEUP (trigger.h). */

#endif
