/*
 * queue_id - queue IDs: unique, sortable by arrival, safe as file names.
 *
 * Postfix's long queue ID scheme: the arrival second in base 52 (6
 * digits), the microsecond in base 52 (4 digits), "z", then the queue
 * file's inode number in base 51 (no "z").  The alphabet has no vowels,
 * so no ID spells a word; the inode makes IDs of files that exist at the
 * same time unique, and the time makes them sort by arrival.
 */
#ifndef POSTERN_QUEUE_ID_H
#define POSTERN_QUEUE_ID_H

#include <sys/types.h>

#include "util/strbuf.h"

#define QUEUE_ID_MAX    32

void    queue_id_make(STRBUF *id, long sec, long usec, ino_t inode);

/* Is str a well-formed queue ID (and so a safe file name)? */
int     queue_id_valid(const char *str);

/* Arrival time encoded in an ID; -1 if malformed. */
long    queue_id_time(const char *str);

#endif
