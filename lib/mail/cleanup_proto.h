/*
 * cleanup_proto - the conversation with the cleanup service
 * (public/cleanup), in postern-ipc(7) records.
 *
 * 1. client: {req=open, origin=smtpd|pickup|..., sender=ADDR,
 *             [sender_fullname], [client_name], [client_address],
 *             [client_port], [helo_name], [protocol], [sasl_method],
 *             [sasl_username], [dsn_envid], [dsn_ret=full|hdrs],
 *             [smtputf8=1], [local_uid], [log_ident]}
 *    cleanup: {status=0, queue_id=ID}  or  {status=451, dsn=4.3.0,
 *             reason=TEXT}.  The queue file exists from here on, so the
 *             client can log "ID: client=...".
 * 2. client: {req=rcpt, rcpt=ADDR, [orcpt=TYPE;ADDR], [notify=BITS]} per
 *    recipient, no reply.
 * 3. client: {req=data, data=BYTES} any number of times: the message
 *    content, headers first, LF line ends (a client converts CRLF), at
 *    most CLEANUP_CHUNK_MAX bytes per record; no reply.
 * 4. client: {req=end, [hold=1], [discard=1]} (hold/discard: an access
 *    table said so).  cleanup: {status=0, queue_id=ID} when the file
 *    is durable in incoming/ (or hold/), {status=0, queue_id=ID,
 *    discarded=1} when header checks discarded it, or {status=4NN|5NN,
 *    dsn=X.Y.Z, reason=TEXT}.
 * A client that closes the connection before step 4 aborts the message:
 * cleanup removes the file.  The client logs what it was told.
 */
#ifndef POSTERN_CLEANUP_PROTO_H
#define POSTERN_CLEANUP_PROTO_H

#define CLEANUP_SERVICE     "cleanup"
#define CLEANUP_CLASS       "public"      /* Postfix: cleanup unix n ... */
#define CLEANUP_CHUNK_MAX   (64 * 1024)
#define CLEANUP_RECORD_MAX  (CLEANUP_CHUNK_MAX + 4096)

/* Origins: decide which headers cleanup adds. */
#define CLEANUP_ORIGIN_SMTPD    "smtpd"
#define CLEANUP_ORIGIN_PICKUP   "pickup"
#define CLEANUP_ORIGIN_LOCAL    "local"     /* alias forwarding */
#define CLEANUP_ORIGIN_BOUNCE   "bounce"    /* qmgr's notices */

#endif
