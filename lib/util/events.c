/*
 * events - poll(2)-based event loop with one-shot timers.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "util/events.h"
#include "util/msg.h"
#include "util/stream.h"
#include "util/xmalloc.h"

typedef struct EVENT_FD {
    int     mask;                       /* EVENT_READ | EVENT_WRITE */
    EVENT_FN fn;
    void   *context;
} EVENT_FD;

typedef struct EVENT_TIMER {
    long long when;
    EVENT_FN fn;
    void   *context;
    unsigned long long seq;             /* FIFO among equal due times */
    struct EVENT_TIMER *next;
} EVENT_TIMER;

static EVENT_FD *event_fds;
static int event_fd_slots;
static EVENT_TIMER *event_timers;       /* sorted by (when, seq) */
static unsigned long long event_seq;
static long long event_clock;

long long event_now(void)
{
    if (event_clock == 0)
        event_clock = stream_now_ms();
    return event_clock;
}

static void event_enable(int fd, int mask, EVENT_FN fn, void *context)
{
    if (fd < 0)
        msg_panic("event_enable: bad fd %d", fd);
    if (fd >= event_fd_slots) {
        int slots = fd + 16;

        event_fds = xreallocarray(event_fds, (size_t) slots, sizeof(EVENT_FD));
        memset(event_fds + event_fd_slots, 0,
               (size_t) (slots - event_fd_slots) * sizeof(EVENT_FD));
        event_fd_slots = slots;
    }
    /* One callback per fd, as in Postfix: read and write share it. */
    event_fds[fd].mask = mask;
    event_fds[fd].fn = fn;
    event_fds[fd].context = context;
}

void event_enable_read(int fd, EVENT_FN fn, void *context)
{
    event_enable(fd, EVENT_READ, fn, context);
}

void event_enable_write(int fd, EVENT_FN fn, void *context)
{
    event_enable(fd, EVENT_WRITE, fn, context);
}

void event_disable_readwrite(int fd)
{
    if (fd >= 0 && fd < event_fd_slots)
        event_fds[fd].mask = 0;
}

int event_cancel_timer(EVENT_FN fn, void *context)
{
    EVENT_TIMER **pp;
    EVENT_TIMER *t;

    for (pp = &event_timers; (t = *pp) != NULL; pp = &t->next) {
        if (t->fn == fn && t->context == context) {
            *pp = t->next;
            free(t);
            return 1;
        }
    }
    return 0;
}

long long event_request_timer(EVENT_FN fn, void *context, long long delay_ms)
{
    EVENT_TIMER *t;
    EVENT_TIMER **pp;

    if (delay_ms < 0)
        delay_ms = 0;
    (void) event_cancel_timer(fn, context);
    t = xmalloc(sizeof(*t));
    t->when = stream_now_ms() + delay_ms;
    t->fn = fn;
    t->context = context;
    t->seq = event_seq++;
    for (pp = &event_timers; *pp && (*pp)->when <= t->when; pp = &(*pp)->next)
        /* void */ ;
    t->next = *pp;
    *pp = t;
    return t->when;
}

void event_reset(void)
{
    EVENT_TIMER *t;

    while ((t = event_timers) != NULL) {
        event_timers = t->next;
        free(t);
    }
    free(event_fds);
    event_fds = NULL;
    event_fd_slots = 0;
}

void event_loop(long long max_ms)
{
    struct pollfd *pfds;
    int npfd = 0;
    long long wait = max_ms;
    unsigned long long seq_limit;
    int rc;

    pfds = xreallocarray(NULL, (size_t) (event_fd_slots ? event_fd_slots : 1),
                         sizeof(struct pollfd));
    for (int fd = 0; fd < event_fd_slots; fd++) {
        if (event_fds[fd].mask == 0)
            continue;
        pfds[npfd].fd = fd;
        pfds[npfd].events = (short) ((event_fds[fd].mask & EVENT_READ ? POLLIN
                                      : 0)
                                     | (event_fds[fd].mask & EVENT_WRITE
                                        ? POLLOUT : 0));
        pfds[npfd].revents = 0;
        npfd++;
    }
    if (event_timers) {
        long long due = event_timers->when - stream_now_ms();

        if (due < 0)
            due = 0;
        if (wait < 0 || due < wait)
            wait = due;
    }
    rc = poll(pfds, (nfds_t) npfd, wait < 0 ? -1
              : wait > 0x7fffffff ? 0x7fffffff : (int) wait);
    if (rc < 0 && errno != EINTR)
        msg_fatal("event_loop: poll: %m");
    event_clock = stream_now_ms();

    /*
     * Timers first: they are due regardless of I/O.  A timer requested by
     * a callback from here waits for the next call, even with delay 0:
     * otherwise one that re-arms itself runs until the clock ticks.  New
     * timers sort after every due one, so stopping at the first is right.
     */
    seq_limit = event_seq;
    while (event_timers && event_timers->when <= event_clock
           && event_timers->seq < seq_limit) {
        EVENT_TIMER *t = event_timers;
        EVENT_FN fn = t->fn;
        void *context = t->context;

        event_timers = t->next;
        free(t);
        fn(EVENT_TIME, context);
    }
    for (int i = 0; rc > 0 && i < npfd; i++) {
        int fd = pfds[i].fd;
        int ev = 0;
        int mask;

        if (pfds[i].revents == 0)
            continue;
        /*
         * A callback may have disabled or replaced this fd meanwhile:
         * deliver only what the fd is enabled for now.
         */
        if (fd >= event_fd_slots || (mask = event_fds[fd].mask) == 0)
            continue;
        if ((pfds[i].revents & POLLIN) && (mask & EVENT_READ))
            ev |= EVENT_READ;
        if ((pfds[i].revents & POLLOUT) && (mask & EVENT_WRITE))
            ev |= EVENT_WRITE;
        if (pfds[i].revents & (POLLERR | POLLHUP | POLLNVAL))
            ev |= EVENT_XCPT | (mask & EVENT_READ);
        if (ev == 0)
            continue;
        event_fds[fd].fn(ev, event_fds[fd].context);
    }
    free(pfds);
}
