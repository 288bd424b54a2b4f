"""Delivering mail, end to end: smtpd -> cleanup -> qmgr -> local/virtual.

Covered here: swaks and smtplib into virtual Maildirs (byte-exact content,
Return-Path/X-Original-To/Delivered-To prepended, Python's mailbox.Maildir
reads the result), texthash: and inline: tables, +tags, aliases to
virtual users (forwarded as a new message), several recipients across
virtual, local and unknown domains in one message (each delivered once;
the remote one stays deferred with "mail transport unavailable"), a 1.5 MB
message and 120 recipients in one message, Postfix delivery log lines and
"removed";
temporary failures (a read-only Maildir; a full file system on a tiny
tmpfs, as root) deferred with the reason in "postern queue list" and
delivered once by "postern queue flush" after the fault is gone; the admin
commands hold/release/delete/requeue while master runs; and corrupt queue
files moved to corrupt/ while qmgr keeps running.

DSNs, expiry and delay warnings: test_delivery_dsn.py.  Crash safety and
10,000 messages: test_delivery_stress.py.
"""
import mailbox
import os
import re
import subprocess
import time

import pytest

from conftest import wait_for
from test_delivery_common import (HOST, IS_ROOT, REMOTE, VDOMAIN,
                                  delivery_lines, flush, lines_to,
                                  mailbox_bytes, maildir, maildir_files,
                                  message, queue_ids, queue_list_json, read,
                                  read_log, send, service_pids, start_system,
                                  vids, wait_delivery, wait_log, wait_mail,
                                  wait_queue_empty)

ALICE = f"alice@{VDOMAIN}"
BOB = f"bob@{VDOMAIN}"
CAROL = f"carol@{VDOMAIN}"

# Retries only when a test asks for them (postern queue flush/requeue).
NO_RETRY = dict(minimal_backoff_time="300s", maximal_backoff_time="300s",
                queue_run_delay="300s")

RECEIVED = re.compile(rb"\AReceived: [^\n]*\n(?:[ \t][^\n]*\n)*")


def prepended(rcpt, orig=None, sender=ALICE):
    return (f"Return-Path: <{sender}>\nX-Original-To: {orig or rcpt}\n"
            f"Delivered-To: {rcpt}\n").encode()


def split_delivered(data, rcpt, orig=None, sender=ALICE):
    """Check the prepended headers and smtpd's Received: header; return
    the rest, which must be the message as the client sent it."""
    head = prepended(rcpt, orig, sender)
    assert data.startswith(head), data[:300]
    rest = data[len(head):]
    m = RECEIVED.match(rest)
    assert m, rest[:300]
    return rest[m.end():]


def by_delivered_to(files):
    """{first Delivered-To: value: bytes}; each value once."""
    out = {}
    for data in files:
        m = re.search(rb"^Delivered-To: (.*)$", data, re.M)
        key = m.group(1).decode()
        assert key not in out, f"two messages delivered to {key}"
        out[key] = data
    return out


def make_readonly(instance, user):
    """user's Maildir exists but its owner may not write it."""
    uid, gid = vids()
    mdir = maildir(instance, user)
    for d in (os.path.dirname(mdir), mdir):
        os.makedirs(d, exist_ok=True)
        os.chown(d, uid, gid)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(mdir, sub), exist_ok=True)
        os.chown(os.path.join(mdir, sub), uid, gid)
        os.chmod(os.path.join(mdir, sub), 0o500)
    return mdir


def make_writable(instance, user):
    mdir = maildir(instance, user)
    for sub in ("tmp", "new", "cur"):
        os.chmod(os.path.join(mdir, sub), 0o700)


def queue_list(instance):
    return instance.postern("queue", "list").stdout


def entry(instance, qid):
    """The postern queue list -j object of qid, or None."""
    for obj in queue_list_json(instance):
        if obj["queue_id"] == qid:
            return obj
    return None


# --- end to end --------------------------------------------------------------

def test_swaks_to_virtual_user_byte_exact(instance):
    start_system(instance)
    body = (b"From: Alice <alice@virt.test>\r\nTo: bob@virt.test\r\n"
            b"Subject: byte exact\r\nMessage-ID: <swaks1@example.org>\r\n"
            b"\r\nfirst line\r\nFrom the start of a line\r\n.\r\n"
            b"..two dots\r\n\xc3\xa9t\xc3\xa9 8-bit\r\n \r\n"
            + b"y" * 3000 + b"\r\nlast line\r\n")
    data_file = instance.write_file("swaks.eml", "")
    with open(data_file, "wb") as f:
        f.write(body[:-2])              # swaks adds CRLF "." CRLF itself
    res = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{instance.port('smtp')}",
         "--helo", "client.example.org", "--from", ALICE, "--to", BOB,
         "--data", "@" + data_file],
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    qid = re.search(r"Ok: queued as (\w+)", res.stdout).group(1)

    (data,) = wait_mail(instance, "bob", 1)
    expected = body.replace(b"\r\n", b"\n")
    assert split_delivered(data, BOB) == expected

    # The file name is a Maildir name with the size; mailbox.Maildir reads it.
    (path,) = maildir_files(instance, "bob")
    assert re.search(r",S=%d$" % len(data), path), path
    box = mailbox.Maildir(maildir(instance, "bob"), factory=None,
                          create=False)
    msgs = list(box)
    assert len(msgs) == 1
    assert msgs[0]["Message-ID"] == "<swaks1@example.org>"
    assert msgs[0]["Delivered-To"] == BOB
    assert msgs[0]["Return-Path"] == f"<{ALICE}>"
    assert msgs[0].get_payload(decode=True).endswith(b"last line\n")

    (line,) = wait_delivery(instance, BOB, qid=qid)
    assert (line["prog"], line["relay"], line["dsn"], line["text"]) == (
        "virtual", "virtual", "2.0.0", "delivered to maildir")
    wait_log(instance, rf"postern/qmgr\[\d+\]: {qid}: removed$")
    wait_queue_empty(instance)
    # Nothing is left in tmp/, nothing was delivered twice.
    assert os.listdir(os.path.join(maildir(instance, "bob"), "tmp")) == []
    assert len(maildir_files(instance, "bob")) == 1


def test_smtplib_many_recipients_aliases_tags_and_remote(instance):
    start_system(instance, tables="inline")
    assert instance.params["alias_maps"].startswith("inline:{")
    content = message("many", "many1@example.org",
                      body="one message, five recipients\n")
    rcpts = [BOB, f"bob+news@{VDOMAIN}", f"team@{HOST}", f"x@{REMOTE}",
             f"Carol+Lists@{VDOMAIN}"]
    qid = send(instance, ALICE, rcpts, content)

    # bob: his address and his +tag, one copy each.
    bob = by_delivered_to(wait_mail(instance, "bob", 2))
    assert set(bob) == {BOB, f"bob+news@{VDOMAIN}"}
    for rcpt, data in bob.items():
        assert split_delivered(data, rcpt) == content
    # carol: the alias team and her own +tag (the case is kept).
    carol = by_delivered_to(wait_mail(instance, "carol", 2))
    assert set(carol) == {CAROL, f"Carol+Lists@{VDOMAIN}"}
    assert split_delivered(carol[f"Carol+Lists@{VDOMAIN}"],
                           f"Carol+Lists@{VDOMAIN}") == content
    # alice: the alias team only; the alias forwarded one new message.
    (a,) = wait_mail(instance, "alice", 1)
    assert f"Delivered-To: team@{HOST}\n".encode() in a
    assert a.endswith(content)

    # The log: one line per recipient, in Postfix's format.
    for rcpt in (BOB, f"bob+news@{VDOMAIN}", f"Carol+Lists@{VDOMAIN}"):
        (line,) = wait_delivery(instance, rcpt, qid=qid)
        assert (line["relay"], line["dsn"]) == ("virtual", "2.0.0")
    fwd = wait_delivery(instance, ALICE, qid=qid)[0]
    assert fwd["orig"] == f"team@{HOST}" and fwd["relay"] == "local"
    new_id = re.match(r"forwarded as (\w+)$", fwd["text"]).group(1)
    (line,) = wait_delivery(instance, ALICE, qid=new_id)
    assert line["prog"] == "virtual"
    wait_log(instance, rf": {new_id}: removed$")

    # The remote recipient waits: "mail transport unavailable".
    (line,) = wait_delivery(instance, f"x@{REMOTE}", status="deferred",
                            qid=qid)[:1]
    assert (line["prog"], line["relay"], line["dsn"]) == ("qmgr", "none",
                                                          "4.3.0")
    assert line["text"] == "mail transport unavailable"
    obj = wait_for(lambda: entry(instance, qid), what=f"{qid} listed")
    assert [r["address"] for r in obj["recipients"]] == [f"x@{REMOTE}"]
    text = queue_list(instance)
    assert qid in text and "(mail transport unavailable)" in text
    assert BOB not in text

    # Retries deliver nobody twice.
    n = len(lines_to(instance, f"x@{REMOTE}", qid, "deferred"))
    flush(instance)
    wait_delivery(instance, f"x@{REMOTE}", status="deferred", qid=qid,
                  count=n + 1)
    assert len(maildir_files(instance, "bob")) == 2
    assert len(maildir_files(instance, "carol")) == 2
    assert len(maildir_files(instance, "alice")) == 1
    assert [m["to"] for m in delivery_lines(instance, qid)
            if m["status"] == "sent"] .count(BOB) == 1
    assert f"{qid}: removed" not in read_log(instance)

    # Python's mailbox module reads every Maildir.
    for user, n in (("alice", 1), ("bob", 2), ("carol", 2)):
        box = mailbox.Maildir(maildir(instance, user), factory=None,
                              create=False)
        ids = [m["Message-ID"] for m in box]
        assert ids == ["<many1@example.org>"] * n


def test_big_message_and_many_recipients(instance):
    """A 1.5 MB message arrives byte for byte; 120 recipients in one message
    (more than a delivery request takes) each get one copy."""
    start_system(instance)
    lines = []
    for i in range(40000):
        lines.append(("." if i % 97 == 0 else "From " if i % 89 == 0
                      else "") + f"line {i} " + "abcdefghij" * (i % 7))
    body = "\n".join(lines) + "\n"
    content = message("big", "big@example.org", body=body)
    assert len(content) > 1_500_000
    qid = send(instance, ALICE, [CAROL], content)
    (data,) = wait_mail(instance, "carol", 1, timeout=60)
    assert split_delivered(data, CAROL) == content
    wait_log(instance, rf": {qid}: removed$")

    rcpts = [f"bob+{i}@{VDOMAIN}" for i in range(120)]
    qid = send(instance, ALICE, rcpts, message("many", "120@example.org"))
    got = by_delivered_to(wait_mail(instance, "bob", 120, timeout=60))
    assert set(got) == set(rcpts)
    wait_log(instance, rf": {qid}: removed$")
    wait_queue_empty(instance)
    sent = [m["to"] for m in delivery_lines(instance, qid)]
    assert sorted(sent) == sorted(rcpts)


def test_unknown_recipients_rejected_at_smtp(instance):
    """Unknown virtual users and relaying elsewhere are refused in the
    SMTP dialogue when the client is not in mynetworks; nothing is
    queued for them."""
    start_system(instance, mynetworks="10.0.0.0/8")
    import smtplib
    with smtplib.SMTP("127.0.0.1", instance.port("smtp"), timeout=30) as s:
        s.ehlo("client.example.org")
        assert s.mail(ALICE)[0] == 250
        code, text = s.rcpt(f"nobody-here@{VDOMAIN}")
        assert code == 550 and b"5.1.1" in text, text
        code, text = s.rcpt(f"x@{REMOTE}")
        assert code in (454, 554) and b"Relay access denied" in text, text
        assert s.rcpt(BOB)[0] == 250
        code, text = s.data(message("reject", "rej1@example.org"))
        assert code == 250
    wait_mail(instance, "bob", 1)
    wait_queue_empty(instance)


# --- temporary failures ------------------------------------------------------

def test_readonly_maildir_defers_then_flush_delivers(instance):
    start_system(instance, **NO_RETRY)
    mdir = make_readonly(instance, "bob")
    content = message("read-only", "ro1@example.org")
    qid = send(instance, ALICE, [BOB], content)

    (line,) = wait_delivery(instance, BOB, status="deferred", qid=qid)
    assert (line["prog"], line["dsn"]) == ("virtual", "4.2.0")
    assert "Permission denied" in line["text"], line["text"]
    assert line["text"].startswith("maildir delivery failed: ")
    wait_for(lambda: queue_ids(instance).get(qid) == "deferred",
             what="deferred/ID")
    obj = entry(instance, qid)
    assert obj and obj["queue_name"] == "deferred"
    assert "Permission denied" in obj["recipients"][0]["delay_reason"]
    assert "Permission denied" in queue_list(instance)
    assert maildir_files(instance, "bob") == []
    assert os.listdir(os.path.join(mdir, "tmp")) == []

    # A flush while it is still broken: deferred again, nothing delivered.
    flush(instance)
    wait_delivery(instance, BOB, status="deferred", qid=qid, count=2)
    assert maildir_files(instance, "bob") == []

    make_writable(instance, "bob")
    flush(instance)
    (data,) = wait_mail(instance, "bob", 1)
    assert split_delivered(data, BOB) == content
    wait_log(instance, rf": {qid}: removed$")
    wait_queue_empty(instance)
    # Once: another flush and another message do not repeat it.
    flush(instance)
    send(instance, ALICE, [CAROL], message("barrier", "b1@example.org"))
    wait_mail(instance, "carol", 1)
    assert len(maildir_files(instance, "bob")) == 1
    assert len(lines_to(instance, BOB, qid, "sent")) == 1


@pytest.fixture
def tiny_tmpfs(instance):
    """A 1 MB tmpfs as virtual_mailbox_base (root only)."""
    if not IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    mnt = instance.path("vmail-tmpfs")
    os.makedirs(mnt)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755",
                          "tmpfs", mnt], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        instance.stop()
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def fill(path):
    """Write zeros to path until the file system is full."""
    chunk = b"\0" * 4096
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0")
        except OSError:
            pass


def test_full_file_system_defers_then_delivers(instance, tiny_tmpfs):
    start_system(instance, vbase=tiny_tmpfs, **NO_RETRY)
    uid, gid = vids()
    mdir = maildir(instance, "bob", tiny_tmpfs)
    for d in (os.path.dirname(mdir), mdir) + tuple(
            os.path.join(mdir, s) for s in ("tmp", "new", "cur")):
        os.makedirs(d, exist_ok=True)
        os.chown(d, uid, gid)
    filler = os.path.join(tiny_tmpfs, "filler")
    fill(filler)
    content = message("disk full", "full1@example.org",
                      body="z" * 20000 + "\n")
    qid = send(instance, ALICE, [BOB], content)

    (line,) = wait_delivery(instance, BOB, status="deferred", qid=qid)
    assert line["dsn"] == "4.3.0", line.group(0)
    assert "No space left on device" in line["text"], line["text"]
    wait_for(lambda: queue_ids(instance).get(qid) == "deferred",
             what="deferred/ID")
    obj = entry(instance, qid)
    assert "No space left on device" in obj["recipients"][0]["delay_reason"]
    assert maildir_files(instance, "bob", tiny_tmpfs) == []
    assert os.listdir(os.path.join(mdir, "tmp")) == []

    os.unlink(filler)
    flush(instance)
    (data,) = wait_mail(instance, "bob", 1, vbase=tiny_tmpfs)
    assert split_delivered(data, BOB) == content
    wait_log(instance, rf": {qid}: removed$")
    wait_queue_empty(instance)
    assert len(lines_to(instance, BOB, qid, "sent")) == 1


# --- admin commands ----------------------------------------------------------

def admin(instance, *args):
    """postern queue ARGS; returns its stderr lines (without "postern: ")."""
    res = instance.postern("queue", *args)
    return [re.sub(r"^postern: ", "", line)
            for line in res.stderr.splitlines()]


def activations(instance, qid):
    return len(re.findall(rf"qmgr\[\d+\]: {qid}: from=<", read_log(instance)))


def test_hold_release_delete_requeue_while_running(instance):
    start_system(instance, **NO_RETRY)
    qmgr_pid = wait_for(lambda: service_pids(instance, "qmgr"),
                        what="qmgr")[0]
    make_readonly(instance, "bob")
    held = send(instance, ALICE, [BOB], message("held", "h1@example.org"))
    wait_delivery(instance, BOB, status="deferred", qid=held)
    wait_for(lambda: queue_ids(instance).get(held) == "deferred",
             what="deferred")

    # hold: out of every queue run, marked "!" in the listing.
    assert admin(instance, "hold", held) == [
        f"{held}: placed on hold", "Placed on hold: 1 message"]
    assert queue_ids(instance).get(held) == "hold"
    wait_log(instance, rf"postern/postern\[\d+\]: {held}: placed on hold$")
    assert re.search(rf"^{held}!", queue_list(instance), re.M)
    assert entry(instance, held)["queue_name"] == "hold"

    # Fixed, flushed twice: still held, never delivered.
    make_writable(instance, "bob")
    before = activations(instance, held)
    flush(instance)
    flush(instance)
    barrier = send(instance, ALICE, [CAROL], message("b", "b1@example.org"))
    wait_mail(instance, "carol", 1)
    wait_log(instance, rf": {barrier}: removed$")
    time.sleep(1.5)                     # a flush scan would have run by now
    assert activations(instance, held) == before
    assert queue_ids(instance).get(held) == "hold"
    assert maildir_files(instance, "bob") == []

    # release: delivered (once).
    assert admin(instance, "release", held) == [
        f"{held}: released from hold", "Released from hold: 1 message"]
    wait_log(instance, rf"postern/postern\[\d+\]: {held}: released from "
             r"hold$")
    wait_mail(instance, "bob", 1)
    wait_log(instance, rf": {held}: removed$")
    assert len(lines_to(instance, BOB, held, "sent")) == 1

    # requeue: a deferred message goes through qmgr again at once.
    make_readonly(instance, "bob")
    again = send(instance, ALICE, [BOB], message("rq", "rq1@example.org"))
    wait_delivery(instance, BOB, status="deferred", qid=again)
    wait_for(lambda: queue_ids(instance).get(again) == "deferred",
             what="deferred")
    make_writable(instance, "bob")
    assert admin(instance, "requeue", again) == [
        f"{again}: requeued", "Requeued: 1 message"]
    wait_log(instance, rf"postern/postern\[\d+\]: {again}: requeued$")
    wait_delivery(instance, BOB, qid=again)
    wait_log(instance, rf": {again}: removed$")
    assert len(maildir_files(instance, "bob")) == 2

    # delete ID: the file and its defer log go.
    rem = [send(instance, ALICE, [f"r{i}@{REMOTE}"],
                message("del", f"d{i}@example.org")) for i in range(3)]
    for qid in rem:
        wait_delivery(instance, f"r{rem.index(qid)}@{REMOTE}",
                      status="deferred", qid=qid)
    wait_for(lambda: all(queue_ids(instance).get(q) == "deferred"
                         for q in rem), what="three deferred")
    assert admin(instance, "delete", rem[0]) == [
        f"{rem[0]}: removed", "Deleted: 1 message"]
    assert rem[0] not in queue_ids(instance)
    assert not os.path.exists(os.path.join(instance.queue_dir, "defer",
                                           rem[0]))
    wait_log(instance, rf": {rem[0]}: removed$")
    # An ID that is not there: nothing done, said so.
    assert admin(instance, "delete", rem[0]) == ["Deleted: 0 messages"]

    # hold one, then delete ALL: every queue, only the total.
    admin(instance, "hold", rem[1])
    assert admin(instance, "delete", "ALL") == ["Deleted: 2 messages"]
    wait_log(instance, r"postern/postern\[\d+\]: Deleted: 2 messages$")
    assert queue_ids(instance) == {}
    assert queue_list(instance).strip() == "Mail queue is empty"

    # qmgr lived through all of it.
    assert service_pids(instance, "qmgr") == [qmgr_pid]
    send(instance, ALICE, [CAROL], message("after", "after@example.org"))
    wait_mail(instance, "carol", 2)


def test_hold_of_message_never_delivered_across_flushes_and_time(instance):
    """A held message does not expire and is not retried, even with a
    short lifetime and queue runs every second."""
    start_system(instance, maximal_queue_lifetime="1s")
    qid = send(instance, ALICE, [f"x@{REMOTE}"], message("h", "h@x.org"))
    wait_delivery(instance, f"x@{REMOTE}", status="deferred", qid=qid)
    wait_for(lambda: admin(instance, "hold", qid)[0]
             == f"{qid}: placed on hold", what="hold")
    before = activations(instance, qid)
    flush(instance)
    time.sleep(3)
    flush(instance)
    time.sleep(1.5)
    assert activations(instance, qid) == before
    assert queue_ids(instance) == {qid: "hold"}
    assert "status=expired" not in read_log(instance)
    assert mailbox_bytes(instance, "alice") == []


# --- corrupt queue files -----------------------------------------------------

ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"


def fake_queue_id(serial):
    t = time.time()
    sec, usec = int(t), int((t - int(t)) * 1e6)

    def digits(n, base, width=1):
        out = ""
        while n or len(out) < width:
            out = ALPHABET[n % base] + out
            n //= base
        return out
    return (digits(sec, 52, 6) + digits(usec, 52, 4) + "z"
            + digits(900000 + serial, 51))


def drop(instance, name, data):
    path = os.path.join(instance.queue_dir, "incoming", name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o700)
    if IS_ROOT:
        import pwd
        pw = pwd.getpwnam(instance.params["mail_owner"])
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


def test_corrupt_queue_files_go_to_corrupt(instance):
    start_system(instance)
    qmgr_pid = wait_for(lambda: service_pids(instance, "qmgr"),
                        what="qmgr")[0]
    # A real file to truncate: a message that stays deferred.
    real = send(instance, ALICE, [f"x@{REMOTE}"], message("r", "r@x.org"))
    wait_for(lambda: queue_ids(instance).get(real) == "deferred",
             what="deferred")
    (path,) = [os.path.join(d, f) for d, _, fs in
               os.walk(os.path.join(instance.queue_dir, "deferred"))
               for f in fs if f == real]
    truncated = read(path)[:60]

    garbage = fake_queue_id(1)
    trunc = fake_queue_id(2)
    unready = fake_queue_id(3)
    drop(instance, garbage, b"this is not a queue file\n" * 20)
    drop(instance, trunc, truncated)
    # Not ready (mode 0600: cleanup is still writing it): left alone.
    os.chmod(drop(instance, unready, b"half written"), 0o600)
    flush(instance)
    for qid in (garbage, trunc):
        wait_for(lambda: os.path.exists(os.path.join(
            instance.queue_dir, "corrupt", qid)), what=f"corrupt/{qid}")
        wait_log(instance, rf"qmgr\[\d+\]: warning: {qid}: .*corrupt")
        st = os.stat(os.path.join(instance.queue_dir, "corrupt", qid))
        assert st.st_mode & 0o777 == 0o400, oct(st.st_mode)
        assert qid not in queue_ids(instance)

    assert queue_ids(instance).get(unready) == "incoming"
    assert unready not in read_log(instance)

    # qmgr is the same process and still delivers.
    assert service_pids(instance, "qmgr") == [qmgr_pid]
    qid = send(instance, ALICE, [BOB], message("ok", "ok@example.org"))
    wait_mail(instance, "bob", 1)
    wait_log(instance, rf": {qid}: removed$")
    assert service_pids(instance, "qmgr") == [qmgr_pid]
    assert "panic" not in read_log(instance)
