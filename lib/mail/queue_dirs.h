/*
 * queue_dirs - create and repair the queue directory tree.
 *
 * Used by master at start and by "postern check".  When run as root, the
 * tree belongs to mail_owner (maildrop/ and public/ to setgid_group too)
 * and the top directory to root; otherwise everything belongs to the
 * caller and no ownership is changed (development and tests).  Modes are
 * always enforced.  Each change is reported with msg_info().
 */
#ifndef POSTERN_QUEUE_DIRS_H
#define POSTERN_QUEUE_DIRS_H

#include "util/strbuf.h"

/* Returns the number of changes made, or -1 with err set. */
int     queue_dirs_setup(STRBUF *err);

#endif
