/*
 * trigger - poke a service: connect to its socket, write a few bytes,
 * close, without ever blocking the caller (a missing or busy service is
 * fine: its wakeup timer covers for the lost poke).
 */
#ifndef POSTERN_TRIGGER_H
#define POSTERN_TRIGGER_H

#include <stddef.h>

/* Wake-up requests understood by trigger services. */
#define TRIGGER_WAKEUP      'W'         /* periodic work (master's timer) */
#define TRIGGER_SCAN_INCOMING 'A'       /* qmgr: new mail in incoming/ */
#define TRIGGER_FLUSH       'F'         /* qmgr: retry deferred mail now */

/* class/name relative to the cwd (the queue directory); 0 or -1. */
int     trigger_send(const char *class, const char *name, const char *buf,
                     size_t len);

#endif
