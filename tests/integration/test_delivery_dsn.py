"""Delivery status notifications (RFC 3464), expiry, bounces and delay
warnings, end to end.

The sender is a virtual user (alice@virt.test), so every notice lands in
her Maildir, where Python's email parser must read it as a valid
multipart/report.  Remote recipients have no transport (default_transport
= smtp, no smtp service): they are deferred until they expire after
maximal_queue_lifetime (1 second here; 0: tried once).  Covered: the
report's structure and fields (Final-Recipient, Original-Recipient from
ORCPT, Original-Envelope-Id from ENVID, Status, Action, Diagnostic-Code),
RET=HDRS and bounce_size_limit (text/rfc822-headers) and the full message
otherwise, NOTIFY=NEVER (no notice) and NOTIFY without DELAY (no delay
warning), permanent failures bouncing at once (an unknown local user, a
virtual user the delivery agent does not know), a bounce that cannot be
recorded (the recipient must stay queued), soft_bounce, notices about
notices to postmaster (2bounce_notice_recipient) and their end when
postmaster cannot be reached, and one delay warning per message after
delay_warning_time, even across a qmgr killed in between.
"""
import email
import email.policy
import os
import re
import signal
import time

from conftest import wait_for
from test_delivery_common import (HOST, REMOTE, VDOMAIN, delivery_lines,
                                  flush, lines_to, mailbox_bytes, message,
                                  queue_ids, queue_list_json, read_log, send,
                                  service_pids, start_system, wait_delivery,
                                  wait_log, wait_mail, wait_queue_empty)

ALICE = f"alice@{VDOMAIN}"
BOB = f"bob@{VDOMAIN}"
EXPIRE = dict(maximal_queue_lifetime="1s", bounce_queue_lifetime="1s")
NO_RETRY = dict(minimal_backoff_time="300s", maximal_backoff_time="300s",
                queue_run_delay="300s")


def report(data, sender=""):
    """Parse a delivered notice and check the multipart/report shape
    (sender: its envelope sender); returns (message, [per-message
    fields, per-recipient fields...], third part)."""
    # The strict parser must find nothing wrong anywhere.
    strict = email.message_from_bytes(data, policy=email.policy.default)
    for part in strict.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", msg["Content-Type"]
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Return-Path"] == f"<{sender}>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Message-Id"] and msg["Date"]
    assert msg["From"].startswith(f"MAILER-DAEMON@{HOST}")
    parts = msg.get_payload()
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    assert len(blocks) >= 2, blocks
    assert blocks[0]["Reporting-MTA"] == f"dns; {HOST}"
    assert blocks[0]["Arrival-Date"]
    for b in blocks[1:]:
        assert b["Final-Recipient"] and b["Action"] and b["Status"]
        assert re.match(r"^[245]\.\d{1,3}\.\d{1,3}$", b["Status"]), b["Status"]
    return msg, blocks, parts[2]


def by_rcpt(blocks):
    return {b["Final-Recipient"]: b for b in blocks[1:]}


def original_message_id(third):
    """The Message-ID of the returned message or headers."""
    if third.get_content_type() == "message/rfc822":
        return third.get_payload()[0]["Message-ID"]
    text = third.get_payload(decode=True).decode()
    m = re.search(r"^Message-ID: (\S+)$", text, re.M | re.I)
    return m.group(1) if m else None


def notices(instance, user):
    """{original Message-ID: (msg, blocks, third part)} of user's Maildir
    (every message there must be a notice)."""
    out = {}
    for data in mailbox_bytes(instance, user):
        r = report(data)
        mid = original_message_id(r[2])
        assert mid not in out, f"two notices about {mid}"
        out[mid] = r
    return out


# --- expiry ------------------------------------------------------------------

def test_expired_mail_returns_dsn(instance):
    start_system(instance, **EXPIRE)
    # RET=HDRS, ENVID, and two recipients, one with ORCPT.
    q1 = send(instance, ALICE, [f"x@{REMOTE}", f"y@{REMOTE}"],
              message("expire one", "exp1@example.org",
                      body="secret body text\n"),
              mail_options=["RET=HDRS", "ENVID=env-42"],
              rcpt_options={f"x@{REMOTE}": [
                  "NOTIFY=FAILURE", "ORCPT=rfc822;Orig.X@Remote.Example"]})
    # No DSN options: the full message comes back.
    q2 = send(instance, ALICE, [f"z@{REMOTE}"],
              message("expire two", "exp2@example.org",
                      body="the whole message\n"))
    # NOTIFY=NEVER: expires silently.
    q3 = send(instance, ALICE, [f"n@{REMOTE}"],
              message("expire never", "exp3@example.org"),
              rcpt_options={f"n@{REMOTE}": ["NOTIFY=NEVER"]})

    for qid in (q1, q2, q3):
        wait_log(instance, rf"qmgr\[\d+\]: {qid}: from=<{ALICE}>, "
                 r"status=expired, returned to sender$")
    wait_mail(instance, "alice", 2)
    wait_queue_empty(instance)
    got = notices(instance, "alice")
    assert set(got) == {"<exp1@example.org>", "<exp2@example.org>"}

    msg, blocks, third = got["<exp1@example.org>"]
    assert msg["To"] == ALICE
    assert "Undelivered Mail" in msg["Subject"]
    assert blocks[0]["Original-Envelope-Id"] == "env-42"
    rcpts = by_rcpt(blocks)
    assert set(rcpts) == {f"rfc822; x@{REMOTE}", f"rfc822; y@{REMOTE}"}
    x, y = rcpts[f"rfc822; x@{REMOTE}"], rcpts[f"rfc822; y@{REMOTE}"]
    assert x["Original-Recipient"] == "rfc822; Orig.X@Remote.Example"
    assert y["Original-Recipient"] is None
    for b in (x, y):
        assert b["Action"] == "failed"
        assert re.match(r"^[45]\.3\.0$", b["Status"]), b["Status"]
        assert "mail transport unavailable" in b["Diagnostic-Code"]
    assert third.get_content_type() == "text/rfc822-headers"
    headers = third.get_payload(decode=True).decode()
    assert "Subject: expire one" in headers
    assert "secret body text" not in headers
    text = msg.get_payload()[0].get_payload(decode=True).decode()
    assert f"<x@{REMOTE}>: mail transport unavailable" in text

    msg, blocks, third = got["<exp2@example.org>"]
    assert blocks[0]["Original-Envelope-Id"] is None
    (z,) = blocks[1:]
    assert z["Final-Recipient"] == f"rfc822; z@{REMOTE}"
    assert third.get_content_type() == "message/rfc822"
    returned = third.get_payload()[0]
    assert returned["Subject"] == "expire two"
    assert returned.get_payload() == "the whole message\n"

    # Each notice was logged and delivered like any message.
    for qid in (q1, q2):
        m = wait_log(instance, rf"qmgr\[\d+\]: {qid}: sender non-delivery "
                     r"notification: (\w+)$")[0]
        wait_delivery(instance, ALICE, qid=m.group(1))
    assert not re.search(rf"{q3}: sender non-delivery", read_log(instance))
    for qid in (q1, q2, q3):
        wait_log(instance, rf": {qid}: removed$")


def test_zero_lifetime_tries_once(instance):
    """maximal_queue_lifetime = 0: one attempt, then returned."""
    start_system(instance, maximal_queue_lifetime="0")
    qid = send(instance, ALICE, [f"once@{REMOTE}"],
               message("once", "once@example.org"))
    wait_log(instance, rf"{qid}: from=<{ALICE}>, status=expired, "
             r"returned to sender$")
    wait_mail(instance, "alice", 1)
    wait_queue_empty(instance)
    assert len(lines_to(instance, f"once@{REMOTE}", qid, "deferred")) == 1
    (msg, blocks, third), = notices(instance, "alice").values()
    assert blocks[1]["Final-Recipient"] == f"rfc822; once@{REMOTE}"
    assert blocks[1]["Action"] == "failed"


def test_permanent_failures_bounce_at_once(instance):
    """An unknown local user and a virtual user that smtpd accepts but the
    delivery agent does not know bounce on the first attempt: one notice
    for both, while the good recipient is delivered once.  A message over
    bounce_size_limit comes back as headers only."""
    agent_table = instance.write_file(
        "etc/vmailbox-agent", "".join(
            f"{u}@{VDOMAIN} {VDOMAIN}/{u}/\n" for u in ("alice", "bob")))
    start_system(instance, users=("alice", "bob", "ghost"),
                 agents=("local unix - n n - - local\n"
                         "virtual unix - n n - - local -o "
                         f"virtual_mailbox_maps=texthash:{agent_table}\n"),
                 bounce_size_limit="3000", **NO_RETRY)
    qid = send(instance, ALICE, [f"nosuch@{HOST}", f"ghost@{VDOMAIN}", BOB,
                                 f"quiet@{HOST}"],
               message("perm", "perm1@example.org"),
               rcpt_options={f"quiet@{HOST}": ["NOTIFY=NEVER"]})
    (line,) = wait_delivery(instance, f"nosuch@{HOST}", status="bounced",
                            qid=qid)
    assert (line["prog"], line["relay"], line["dsn"]) == ("local", "local",
                                                          "5.1.1")
    assert line["text"] == 'unknown user: "nosuch"'
    (line,) = wait_delivery(instance, f"ghost@{VDOMAIN}", status="bounced",
                            qid=qid)
    assert (line["prog"], line["dsn"]) == ("virtual", "5.1.1")
    assert "unknown user" in line["text"]
    wait_delivery(instance, f"quiet@{HOST}", status="bounced", qid=qid)
    wait_delivery(instance, BOB, qid=qid)

    (data,) = wait_mail(instance, "alice", 1)
    wait_log(instance, rf": {qid}: removed$")
    wait_queue_empty(instance)
    msg, blocks, third = report(data)
    rcpts = by_rcpt(blocks)
    assert set(rcpts) == {f"rfc822; nosuch@{HOST}", f"rfc822; ghost@{VDOMAIN}"}
    for b in rcpts.values():
        assert (b["Action"], b["Status"]) == ("failed", "5.1.1")
        assert "unknown user" in b["Diagnostic-Code"]
    assert third.get_content_type() == "message/rfc822"
    assert third.get_payload()[0]["Message-ID"] == "<perm1@example.org>"
    assert len(mailbox_bytes(instance, "bob")) == 1
    m = wait_log(instance, rf"{qid}: sender non-delivery notification: "
                 r"(\w+)$")[0]
    wait_delivery(instance, ALICE, qid=m.group(1))

    # Too big to return whole: the headers only.
    big = send(instance, ALICE, [f"nosuch@{HOST}"],
               message("big", "big1@example.org", body="b" * 5000 + "\n"))
    wait_delivery(instance, f"nosuch@{HOST}", status="bounced", qid=big)
    wait_mail(instance, "alice", 2)
    wait_queue_empty(instance)
    msg, blocks, third = notices(instance, "alice")["<big1@example.org>"]
    assert third.get_content_type() == "text/rfc822-headers"
    assert "Subject: big" in third.get_payload(decode=True).decode()
    assert "bbbb" not in third.get_payload(decode=True).decode()


def test_bounce_that_cannot_be_recorded_keeps_the_recipient(instance):
    """A recipient is marked done only once its bounce is durable
    (DESIGN.md): when bounce/ID cannot be written, the recipient must stay
    queued (deferred) and bounce once the fault is gone, not vanish
    without a notice."""
    start_system(instance, **NO_RETRY)
    bounce_dir = os.path.join(instance.queue_dir, "bounce")
    os.chmod(bounce_dir, 0o500)
    try:
        qid = send(instance, ALICE, [f"nosuch@{HOST}", BOB],
                   message("lost?", "lost1@example.org"))
        wait_delivery(instance, f"nosuch@{HOST}", status="bounced", qid=qid)
        wait_delivery(instance, BOB, qid=qid)
        # qmgr is done with it: deferred (right) or removed (wrong).
        wait_for(lambda: queue_ids(instance).get(qid) == "deferred"
                 or re.search(rf": {qid}: removed$", read_log(instance),
                              re.M), what="qmgr done with the message")
        log = read_log(instance)
        assert queue_ids(instance).get(qid) == "deferred", (
            f"{qid} is gone without a notice: "
            + "\n".join(line for line in log.splitlines() if qid in line))
    finally:
        os.chmod(bounce_dir, 0o700)
    flush(instance)
    (data,) = wait_mail(instance, "alice", 1)
    msg, blocks, third = report(data)
    assert blocks[1]["Final-Recipient"] == f"rfc822; nosuch@{HOST}"
    wait_log(instance, rf": {qid}: removed$")
    assert len(mailbox_bytes(instance, "bob")) == 1


def test_soft_bounce_defers_instead(instance):
    start_system(instance, soft_bounce="yes")
    qid = send(instance, ALICE, [f"nosuch@{HOST}"],
               message("soft", "soft1@example.org"))
    lines = wait_delivery(instance, f"nosuch@{HOST}", status="deferred",
                          qid=qid, count=2, timeout=30)
    for line in lines:
        assert line["dsn"] == "4.1.1", line.group(0)
        assert line["text"] == 'unknown user: "nosuch"'
    assert lines_to(instance, f"nosuch@{HOST}", qid, "bounced") == []
    assert queue_ids(instance).get(qid) in ("deferred", "active")
    obj = wait_for(lambda: [o for o in queue_list_json(instance)
                            if o["queue_id"] == qid and
                            o["recipients"][0].get("delay_reason")],
                   what="a listed reason")[0]
    assert "unknown user" in obj["recipients"][0]["delay_reason"]
    assert mailbox_bytes(instance, "alice") == []
    assert "non-delivery notification" not in read_log(instance)


# --- notices about notices ---------------------------------------------------

def test_bounce_of_bounce_goes_to_postmaster(instance):
    """A null-sender message that bounces: the notice goes to postmaster
    (2bounce_notice_recipient, an alias of pm@virt.test) from
    double-bounce, and nothing else happens."""
    start_system(instance, **NO_RETRY)
    qid = send(instance, "", [f"nosuch@{HOST}"],
               message("from the null sender", "null1@example.org",
                       sender="MAILER-DAEMON@elsewhere.example"))
    wait_delivery(instance, f"nosuch@{HOST}", status="bounced", qid=qid)
    m = wait_log(instance, rf"qmgr\[\d+\]: {qid}: postmaster non-delivery "
                 r"notification: (\w+)$")[0]
    notice = m.group(1)
    wait_log(instance, rf"qmgr\[\d+\]: {notice}: from=<double-bounce@{HOST}>")
    (data,) = wait_mail(instance, "pm", 1)
    wait_queue_empty(instance)
    msg, blocks, third = report(data, sender=f"double-bounce@{HOST}")
    assert "Postmaster Copy" in msg["Subject"]
    (b,) = blocks[1:]
    assert b["Final-Recipient"] == f"rfc822; nosuch@{HOST}"
    assert (b["Action"], b["Status"]) == ("failed", "5.1.1")
    assert original_message_id(third) == "<null1@example.org>"
    assert mailbox_bytes(instance, "alice") == []

    # The usual way: a notice to a sender that does not exist.
    qid = send(instance, f"ghost@{VDOMAIN}", [f"nosuch@{HOST}"],
               message("from a ghost", "ghost1@example.org",
                       sender=f"ghost@{VDOMAIN}"))
    m = wait_log(instance, rf"{qid}: sender non-delivery notification: "
                 r"(\w+)$")[0]
    first = m.group(1)
    wait_delivery(instance, f"ghost@{VDOMAIN}", status="bounced", qid=first)
    wait_log(instance, rf"{first}: postmaster non-delivery notification: ")
    wait_mail(instance, "pm", 2)
    wait_queue_empty(instance)
    data = [d for d in mailbox_bytes(instance, "pm")
            if b"null1@example.org" not in d]
    assert len(data) == 1
    msg, blocks, third = report(data[0], sender=f"double-bounce@{HOST}")
    assert blocks[1]["Final-Recipient"] == f"rfc822; ghost@{VDOMAIN}"


def test_undeliverable_postmaster_notice_is_discarded(instance):
    """When the notice to postmaster cannot be delivered either, it is
    dropped with a log line; no notice about it, no loop, an empty queue."""
    start_system(instance, **{"2bounce_notice_recipient":
                              f"ghost@{VDOMAIN}"}, **NO_RETRY)
    qid = send(instance, "", [f"nosuch@{HOST}"],
               message("null again", "null2@example.org",
                       sender="MAILER-DAEMON@elsewhere.example"))
    wait_delivery(instance, f"nosuch@{HOST}", status="bounced", qid=qid)
    m = wait_log(instance, rf"{qid}: postmaster non-delivery "
                 r"notification: (\w+)$")[0]
    notice = m.group(1)
    wait_delivery(instance, f"ghost@{VDOMAIN}", status="bounced", qid=notice)
    wait_log(instance, rf": {notice}: removed$")
    wait_queue_empty(instance)
    # Settle, then check that nothing more happened.
    time.sleep(2)
    log = read_log(instance)
    assert queue_ids(instance) == {}
    active = re.findall(r"qmgr\[\d+\]: (\w+): from=<", log)
    assert sorted(set(active)) == sorted({qid, notice}), active
    assert log.count("non-delivery notification") == 1
    assert all(mailbox_bytes(instance, u) == [] for u in
               ("alice", "bob", "carol", "pm"))
    # The discard is logged (Postfix: "warning: ID: undeliverable
    # postmaster notification discarded").
    assert re.search(rf"{notice}: .*discard", log, re.I), \
        "\n".join(line for line in log.splitlines() if notice in line)


# --- delay warnings ----------------------------------------------------------

def test_delay_warning_sent_once(instance):
    start_system(instance, delay_warning_time="1s",
                 maximal_queue_lifetime="1h")
    qid = send(instance, ALICE, [f"slow@{REMOTE}"],
               message("slow", "slow1@example.org", body="still waiting\n"),
               rcpt_options={f"slow@{REMOTE}": [
                   "NOTIFY=DELAY,FAILURE",
                   "ORCPT=rfc822;slow@remote.example"]})
    # NOTIFY without DELAY: no warning for this one.
    q2 = send(instance, ALICE, [f"fail-only@{REMOTE}"],
              message("fail only", "slow2@example.org"),
              rcpt_options={f"fail-only@{REMOTE}": ["NOTIFY=FAILURE"]})
    m = wait_log(instance, rf"qmgr\[\d+\]: {qid}: sender delay "
                 r"notification: (\w+)$")[0]
    (data,) = wait_mail(instance, "alice", 1)
    # The notice itself done (a qmgr killed between its delivery and its
    # done mark would deliver it again: the at-least-once window, not a
    # second warning).
    wait_log(instance, rf"qmgr\[\d+\]: {m[1]}: removed$")
    # Several more retries, and a qmgr killed in between: still one.
    qmgr = service_pids(instance, "qmgr")
    for pid in qmgr:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: service_pids(instance, "qmgr") not in ([], qmgr) or
             flush(instance), timeout=20, interval=0.5, what="a new qmgr")
    n = len(lines_to(instance, f"slow@{REMOTE}", qid, "deferred"))
    wait_delivery(instance, f"slow@{REMOTE}", status="deferred", qid=qid,
                  count=n + 3, timeout=30)
    wait_delivery(instance, f"fail-only@{REMOTE}", status="deferred", qid=q2,
                  count=3, timeout=30)
    assert len(mailbox_bytes(instance, "alice")) == 1
    log = read_log(instance)
    assert len(re.findall(rf"{qid}: sender delay notification", log)) == 1
    assert not re.search(rf"{q2}: sender delay notification", log)

    msg, blocks, third = report(data)
    assert "Delayed Mail" in msg["Subject"]
    (b,) = blocks[1:]
    assert b["Final-Recipient"] == f"rfc822; slow@{REMOTE}"
    assert b["Original-Recipient"] == "rfc822; slow@remote.example"
    assert b["Action"] == "delayed"
    assert b["Status"] == "4.3.0"
    assert "mail transport unavailable" in b["Diagnostic-Code"]
    assert third.get_content_type() == "text/rfc822-headers"
    assert "Subject: slow" in third.get_payload(decode=True).decode()
    assert "still waiting" not in third.get_payload(decode=True).decode()
    wait_delivery(instance, ALICE, qid=m.group(1))
    # Still queued; the warning changed nothing about that.
    assert qid in queue_ids(instance) and q2 in queue_ids(instance)
    assert "status=expired" not in log
    assert not delivery_lines(instance) or all(
        m["status"] != "bounced" for m in delivery_lines(instance))
