/*
 * deliver_proto - the conversation between qmgr and a delivery agent
 * (local, virtual, smtp...) over private/TRANSPORT, in postern-ipc(7)
 * records.  One request per connection.
 *
 * qmgr:  {req=deliver, queue_id=ID, queue_name=active, sender=ADDR,
 *         nexthop=TEXT, arrival=SEC.USEC, active=SEC.USEC, [dsn_envid],
 *         [dsn_ret=full|hdrs], [smtputf8=1], [client_name],
 *         [client_address], rcpt_count=N}
 *        then N records {rcpt=ADDR, offset=N, [orig=ADDR], [orcpt=TYPE;ADDR],
 *         [notify=BITS]}
 * agent: N records, one per recipient, in request order:
 *        {offset=N, status=0|4NN|5NN, dsn=X.Y.Z, reason=TEXT,
 *         [relay=TEXT]}
 *
 * The agent reads the message from QUEUE_NAME/QUEUE_ID (relative to the
 * queue directory, its cwd) and never writes the queue file: qmgr marks a
 * recipient done when the agent reported status 0 (the agent answers only
 * after the delivery is durable, e.g. the Maildir file renamed into new/
 * and the directory fsynced) or a permanent failure (after qmgr recorded
 * it for the bounce).  The agent logs each recipient's delivery line in
 * Postfix's format ("ID: to=<...>, relay=..., delay=..., delays=a/b/c/d,
 * dsn=..., status=sent|deferred|bounced (...)"); arrival and active give
 * it delays a and b.  A connection that drops before all replies counts
 * as a temporary failure of the missing recipients.
 */
#ifndef POSTERN_DELIVER_PROTO_H
#define POSTERN_DELIVER_PROTO_H

#define DELIVER_CLASS       "private"
#define DELIVER_RECORD_MAX  (64 * 1024)
#define DELIVER_RCPT_MAX    1000        /* recipients per request */

#endif
