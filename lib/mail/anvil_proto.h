/*
 * anvil_proto - the protocol between smtpd (or any client) and the anvil
 * service (anvil(8); Postfix anvil(8) is the model).
 *
 * A client connects to private/anvil (relative to the queue directory)
 * and keeps the connection for as long as it wants its connections
 * counted: anvil forgets every connect a client connection registered
 * and did not unregister when that connection closes, so a crashed smtpd
 * leaves no counts behind.  (Rates are never given back: a connect or
 * an event happened, whoever asked.)  Requests and replies are
 * postern-ipc(7) records; several requests may follow on one
 * connection, each answered in order.
 *
 *   {req=connect, ident=TEXT}     -> {status=0, count=N, rate=M}
 *       count: simultaneous connections for ident, this one included;
 *       rate: connects (and events) for ident in the current
 *       anvil_rate_time_unit window, this one included.
 *   {req=disconnect, ident=TEXT}  -> {status=0}
 *       Undoes one connect for ident made on this client connection;
 *       one that was not made on it is ignored (still status=0).
 *   {req=event, ident=TEXT}       -> {status=0, rate=M}
 *       Something happened once for ident (smtpd: an AUTH command, a
 *       failed AUTH): it counts toward the rate like a connect, but
 *       opens nothing.  rate: connects and events for ident in the
 *       current window, this one included.  Events are not tied to the
 *       client connection: closing it takes none back, so a client
 *       cannot reset its rate by reconnecting, and they do not count
 *       toward ANVIL_CONN_PENDING_MAX.
 *   {req=lookup, ident=TEXT}      -> {status=0, count=N, rate=M}
 *       The current count and rate of ident (a rate whose window has
 *       ended reads 0); 0 and 0 for an ident anvil does not know.
 *       Changes nothing, so a client can check a limit without adding
 *       to what it checks (smtpd: refuse AUTH to a client that failed
 *       too often, before it tries again).
 *   {req=OTHER, ident=TEXT}       -> {status=-1}, with a warning logged
 *       (Postfix: "unrecognized request"), so that a newer client can
 *       probe an older anvil.
 *
 * Identifiers are opaque to anvil; smtpd uses "SERVICE:CLIENT_ADDRESS"
 * as Postfix does.  A record larger than ANVIL_RECORD_MAX, one that does
 * not decode, one with a missing or unexpected attribute, an empty ident
 * or one over ANVIL_IDENT_MAX bytes, or a client with more than
 * ANVIL_CONN_PENDING_MAX outstanding connects, or a record that has
 * not arrived complete within ANVIL_PARTIAL_TIMEOUT, makes anvil log a
 * warning and drop that client connection (which releases its counts).
 * A connection that is idle between records may stay open indefinitely.
 */
#ifndef POSTERN_ANVIL_PROTO_H
#define POSTERN_ANVIL_PROTO_H

#define ANVIL_CLASS             "private"
#define ANVIL_SERVICE           "anvil"

/* Attributes. */
#define ANVIL_ATTR_REQ          "req"
#define ANVIL_ATTR_IDENT        "ident"
#define ANVIL_ATTR_STATUS       "status"
#define ANVIL_ATTR_COUNT        "count"
#define ANVIL_ATTR_RATE         "rate"

/* Request names. */
#define ANVIL_REQ_CONNECT       "connect"
#define ANVIL_REQ_DISCONNECT    "disconnect"
#define ANVIL_REQ_EVENT         "event"
#define ANVIL_REQ_LOOKUP        "lookup"

/* Reply status. */
#define ANVIL_STAT_OK           0
#define ANVIL_STAT_FAIL         (-1)

/* Limits (bytes, except the last). */
#define ANVIL_IDENT_MAX         512     /* "smtp:" + an IPv6 address fits */
#define ANVIL_RECORD_MAX        1024    /* one request or reply record */
#define ANVIL_CONN_PENDING_MAX  64      /* outstanding connects per client */
#define ANVIL_PARTIAL_TIMEOUT   10      /* seconds for one record to arrive */

#endif
