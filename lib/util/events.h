/*
 * events - a single-threaded event loop: file descriptor readiness and
 * timers (Postfix events.c).  Used by master and by event-driven services.
 *
 * Callbacks run from event_loop(); they may enable or disable any event,
 * including their own.  A timer is identified by its (callback, context)
 * pair: requesting it again moves it instead of adding a second one.
 */
#ifndef POSTERN_EVENTS_H
#define POSTERN_EVENTS_H

#define EVENT_READ      (1 << 0)
#define EVENT_WRITE     (1 << 1)
#define EVENT_XCPT      (1 << 2)        /* error or hangup on the fd */
#define EVENT_TIME      (1 << 3)

typedef void (*EVENT_FN)(int event, void *context);

void    event_enable_read(int fd, EVENT_FN fn, void *context);
void    event_enable_write(int fd, EVENT_FN fn, void *context);
void    event_disable_readwrite(int fd);

/* Run fn(EVENT_TIME, context) once, delay_ms from now; replaces a pending
 * timer with the same fn and context.  Returns the due time. */
long long event_request_timer(EVENT_FN fn, void *context, long long delay_ms);
int     event_cancel_timer(EVENT_FN fn, void *context);    /* 1 if it was set */

/* Wait up to max_ms (-1: until something happens) and dispatch. */
void    event_loop(long long max_ms);

/* Monotonic milliseconds, refreshed by each event_loop() call. */
long long event_now(void);

/* Forget every fd and timer (a child after fork). */
void    event_reset(void);

#endif
