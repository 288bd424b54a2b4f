/*
 * ipc - the one record format spoken between Postern services.
 *
 * Every request and every reply over the Unix sockets under private/ and
 * public/ is a record of named attributes (see postern-ipc(7)):
 *
 *   record    = length payload          length: 4 bytes, big-endian
 *   payload   = *attribute
 *   attribute = namelen name valuelen value
 *               namelen: 1 byte (1..64), name: [a-z0-9_]
 *               valuelen: 4 bytes, big-endian; value: any bytes
 *
 * A reader gives the largest record it accepts and reads under the
 * stream's deadline, so a stuck or hostile peer can neither hold a service
 * nor make it allocate without bound.  Names are unique in a record.
 * ipc_scan() parses strictly: a missing required attribute, an unexpected
 * one, a number that is not a number, or a NUL inside a string is an
 * error (Postfix attr_scan ATTR_FLAG_STRICT).  A malformed record from a
 * sibling process is a bug or an attack; callers treat it as fatal for
 * that connection.
 */
#ifndef POSTERN_IPC_H
#define POSTERN_IPC_H

#include <stddef.h>

#include "util/strbuf.h"
#include "util/stream.h"

#define IPC_NAME_MAX    64
#define IPC_ATTR_MAX    256             /* attributes per record */
#define IPC_RECORD_MAX  (1024 * 1024)   /* default size limit */

typedef struct IPC_ATTR {
    char   *name;
    char   *value;                      /* NUL-terminated for convenience */
    size_t  len;
} IPC_ATTR;

typedef struct IPC_MSG {
    IPC_ATTR *attrs;
    size_t  count;
    size_t  size;
} IPC_MSG;

IPC_MSG *ipc_msg_alloc(void);
void    ipc_msg_free(IPC_MSG **mp);
void    ipc_msg_reset(IPC_MSG *m);

void    ipc_put_str(IPC_MSG *m, const char *name, const char *value);
void    ipc_put_long(IPC_MSG *m, const char *name, long value);
void    ipc_put_data(IPC_MSG *m, const char *name, const void *data,
                     size_t len);

const IPC_ATTR *ipc_find(const IPC_MSG *m, const char *name);

/* Encode m into buf (replacing it); for ipc_write() and for tests. */
void    ipc_encode(const IPC_MSG *m, STRBUF *buf);

/* Decode one record payload; -1 with err set when malformed. */
int     ipc_decode(IPC_MSG *m, const char *payload, size_t len, STRBUF *err);

/* Write and flush one record: 0, or -1 (see stream_error/timed_out). */
int     ipc_write(STREAM *s, const IPC_MSG *m);

/*
 * Read one record into m: 1, 0 at a clean end of file before a record,
 * -1 with err set on timeout, I/O error, a record over limit bytes, or a
 * malformed record.
 */
int     ipc_read(STREAM *s, IPC_MSG *m, size_t limit, STRBUF *err);

/* Strict typed scanning. */
typedef enum {
    IPC_STR,                            /* char ** into the message */
    IPC_LONG,                           /* long *, decimal text */
    IPC_DATA,                           /* const IPC_ATTR ** */
} IPC_TYPE;

typedef struct IPC_SPEC {
    const char *name;
    IPC_TYPE type;
    int     required;
    void   *dest;
} IPC_SPEC;

#define IPC_SPEC_END    {NULL, IPC_STR, 0, NULL}

/* Fill each dest; -1 with err on a missing, unknown or bad attribute. */
int     ipc_scan(const IPC_MSG *m, const IPC_SPEC *specs, STRBUF *err);

/*
 * Connect to the service socket CLASS/NAME ("private/cleanup") relative to
 * the current directory (every service runs in the queue directory).
 * Returns the fd, or -1 with err set.
 */
int     ipc_connect(const char *class, const char *name, STRBUF *err);

#endif
