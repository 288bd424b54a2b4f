"""The local delivery agent (local and virtual services), driven directly.

Until qmgr hands it mail, these tests play qmgr: they write a queue file
into active/ by hand (postern-queue(5), record by record), connect to
private/local or private/virtual and speak deliver_proto.h in
postern-ipc(7) records, then check the replies, the mailboxes, the
forwarded queue files and the log lines.

Covered: virtual Maildir and mbox users (+tags, ownership, Python's
mailbox.Maildir reads the result), unknown users, Delivered-To: loops, a
read-only Maildir (deferred, tmp/ left empty), aliases to remote addresses
(one new message through cleanup), |commands (environment, exit codes,
enhanced status codes in the output, the time limit), /files, :include:,
nested aliases and loops, allow_mail_to_* restrictions, system users with
home_mailbox = Maildir/ and mbox in mail_spool_directory (root only: a
throwaway account; also a Debian-style root:mail 2775 spool), several
recipients in one request, soft_bounce, malformed requests, the log line
format that pflogsumm reads, and, once qmgr is built, one message from
smtpd through cleanup and qmgr into local and virtual.
"""
import grp
import itertools
import mailbox
import os
import pwd
import re
import smtplib
import socket
import stat
import struct
import subprocess
import time

import pytest

from conftest import BUILD, wait_for
from queuefile import QueueFile

IS_ROOT = os.geteuid() == 0
HOST = "mx.example.test"                # myhostname, in mydestination
VDOMAIN = "virt.test"                   # virtual_mailbox_domains
VUID = 5000                             # virtual_uid_maps / _gid_maps
SENDER = "alice@example.org"
ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"

CONTENT = (b"From: Alice <alice@example.org>\nTo: bob@virt.test\n"
           b"Subject: hello\nMessage-ID: <t1@example.org>\n\n"
           b"Body line 1\nFrom the start of a line (no quoting in Maildir)\n"
           b".\n\xc3\xa9t\xc3\xa9 in 8 bits\n" + b"x" * 5000 + b"\nlast\n")

# Postfix's delay numbers: 2 significant digits below 10 s, no trailing 0.
D = r"(?:0|0\.0[1-9]|0\.[1-9][1-9]?|[1-9](?:\.[1-9])?|[1-9][0-9]+)"
LINE = re.compile(
    r"^(?P<stamp>[A-Z][a-z]{2} [ 0-9]?\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"postern/(?P<prog>local|virtual)\[(?P<pid>\d+)\]: (?P<qid>\w+): "
    r"to=<(?P<to>[^>]*)>, (?:orig_to=<(?P<orig>[^>]*)>, )?"
    r"relay=(?P<relay>[^,]+), delay=(?P<delay>" + D + r"), "
    r"delays=(?P<a>" + D + r")/(?P<b>" + D + r")/(?P<c>" + D + r")/(?P<d>"
    + D + r"), dsn=(?P<dsn>[245]\.\d{1,3}\.\d{1,3}), "
    r"status=(?P<status>sent|deferred|bounced) \((?P<text>.*)\)$")
# What pflogsumm 1.1.5 matches (postfix-compat.md section 7).
PFLOGSUMM = re.compile(r"to=<[^>]*>, (orig_to=<[^>]*>, )?relay=[^,]+, "
                       r"(conn_use=[^,]+, )?delay=[^,]+, (delays=[^,]+, )?"
                       r"(dsn=[^,]+, )?status=")


# --- queue files (postern-queue(5)) -----------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def rec(rtype, data=b""):
    if isinstance(data, str):
        data = data.encode()
    return rtype.encode() + varint(len(data)) + data


_serial = itertools.count(1)


def new_queue_id():
    """A long queue ID (queue_id.h): seconds, microseconds, z, a serial."""
    t = time.time()
    sec, usec = int(t), int((t - int(t)) * 1e6)

    def digits(n, base, width=0):
        out = ""
        while n or len(out) < max(width, 1):
            out = ALPHABET[n % base] + out
            n //= base
        return out
    return (digits(sec, 52, 6) + digits(usec, 52, 4) + "z"
            + digits(os.getpid() * 1000 + next(_serial), 51))


def write_queue_file(inst, rcpts, content=CONTENT, sender=SENDER,
                     queue="active"):
    """queue/QUEUE/ID with rcpts [(address, orig)]; returns the ID and
    the offset of each R record."""
    qid = new_queue_id()
    body = rec("T", f"{int(time.time())} 0") + rec("W", "%15d" % 0)
    body += rec("S", sender) + rec("A", "origin=smtpd")
    head_len = len(rec("C", "x" * 63))
    offsets = []
    for address, orig in rcpts:
        body += rec("O", orig or address)
        offsets.append(head_len + len(body))
        body += rec("R", address)
    content_offset = head_len + len(body)
    body += rec("M")
    for i in range(0, len(content), 4096):
        body += rec("B", content[i:i + 4096])
    body += rec("X") + rec("E")
    size = rec("C", "%15d %15d %15d %15d" % (len(content), content_offset,
                                              len(rcpts), 0))
    assert len(size) == head_len
    path = os.path.join(inst.queue_dir, queue, qid)
    with open(path, "wb") as f:
        f.write(size + body)
    os.chmod(path, 0o700)
    if IS_ROOT:
        pw = pwd.getpwnam(inst.params["mail_owner"])
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return qid, offsets


# --- the delivery protocol (deliver_proto.h, postern-ipc(7)) ----------------

def ipc_record(attrs):
    payload = b""
    for name, value in attrs:
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str):
            value = value.encode()
        payload += (bytes([len(name)]) + name.encode()
                    + struct.pack(">I", len(value)) + value)
    return struct.pack(">I", len(payload)) + payload


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def ipc_read(sock):
    """One record as {name: str}, or None at end of file."""
    head = recv_exact(sock, 4)
    if head is None:
        return None
    payload = recv_exact(sock, struct.unpack(">I", head)[0])
    attrs, pos = {}, 0
    while pos < len(payload):
        nlen = payload[pos]
        name = payload[pos + 1:pos + 1 + nlen].decode()
        pos += 1 + nlen
        vlen = struct.unpack(">I", payload[pos:pos + 4])[0]
        attrs[name] = payload[pos + 4:pos + 4 + vlen].decode("utf-8",
                                                             "replace")
        pos += 4 + vlen
    return attrs


def stamp(t):
    return "%d.%06d" % (int(t), int(round((t - int(t)) * 1e6)) % 1000000)


def connect(inst, service):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(os.path.join(inst.queue_dir, "private", service))
    return sock


def deliver(inst, qid, rcpts, service="local", sender=SENDER,
            arrival=None, active=None, queue="active"):
    """Ask the agent to deliver; rcpts [(address, offset, orig)].
    Returns one reply dict per recipient (fewer if it hung up)."""
    now = time.time()
    arrival = now - 1.234 if arrival is None else arrival
    active = arrival + 0.5 if active is None else active
    sock = connect(inst, service)
    try:
        data = ipc_record([("req", "deliver"), ("queue_id", qid),
                           ("queue_name", queue), ("sender", sender),
                           ("nexthop", HOST), ("arrival", stamp(arrival)),
                           ("active", stamp(active)),
                           ("rcpt_count", len(rcpts))])
        for address, offset, orig in rcpts:
            attrs = [("rcpt", address), ("offset", offset)]
            if orig:
                attrs.append(("orig", orig))
            data += ipc_record(attrs)
        sock.sendall(data)
        replies = []
        for _ in rcpts:
            reply = ipc_read(sock)
            if reply is None:
                break
            replies.append(reply)
        return replies
    finally:
        sock.close()


def deliver_one(inst, address, content=CONTENT, service="local", orig=None,
                sender=SENDER):
    qid, offsets = write_queue_file(inst, [(address, orig)], content,
                                    sender)
    replies = deliver(inst, qid, [(address, offsets[0], orig)], service,
                      sender)
    assert len(replies) == 1, replies
    assert replies[0]["offset"] == str(offsets[0])
    return qid, replies[0]


# --- checks ------------------------------------------------------------------

def delivery_lines(inst, qid=None):
    """Parsed delivery lines of the log (all must parse)."""
    out = []
    for line in inst.log().splitlines():
        if ": to=<" not in line:
            continue
        m = LINE.match(line)
        assert m, f"not a Postfix delivery line: {line!r}"
        assert PFLOGSUMM.search(line), f"pflogsumm would miss: {line!r}"
        if qid is None or m["qid"] == qid:
            out.append(m)
    return out


def one_line(inst, qid, to):
    lines = [m for m in delivery_lines(inst, qid) if m["to"] == to]
    assert len(lines) == 1, f"{qid} to={to}: {[m.group(0) for m in lines]}"
    return lines[0]


def prepended(rcpt, orig=None, sender=SENDER):
    return (f"Return-Path: <{sender}>\nX-Original-To: {orig or rcpt}\n"
            f"Delivered-To: {rcpt}\n").encode()


def maildir_files(path):
    newdir = os.path.join(path, "new")
    if not os.path.isdir(newdir):
        return []
    return sorted(os.path.join(newdir, n) for n in os.listdir(newdir))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def check_maildir_name(path, data):
    name = os.path.basename(path)
    assert re.match(r"^\d+\.M\d+P\d+Q\d+\.[^/:,]+,S=%d$" % len(data), name), \
        name


FROM_LINE = re.compile(rb"^From (\S+)  [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d "
                       rb"\d\d:\d\d:\d\d \d{4}\n")


# --- the instance -------------------------------------------------------------

MASTER_CF = ("cleanup unix n - n - 0 cleanup\n"
             "local unix - n n - - local\n"
             "virtual unix - n n - - local\n")


def start_agent(inst, aliases="", master_extra="", **params):
    """Virtual domain virt.test (bob: Maildir, carol: mbox), aliases, a
    spool directory, an output directory everybody may write."""
    vbase = inst.path("vmail")
    os.makedirs(vbase)
    if IS_ROOT:
        os.chown(vbase, VUID, VUID)
    inst.write_file("etc/vmailbox", f"bob@{VDOMAIN} {VDOMAIN}/bob/\n"
                    f"carol@{VDOMAIN} {VDOMAIN}/carol\n")
    inst.write_file("etc/aliases", aliases or "postmaster root\n")
    out = inst.path("out")
    os.makedirs(out)
    os.chmod(out, 0o1777)
    spool = inst.path("spool")
    os.makedirs(spool)
    os.chmod(spool, 0o1777)
    settings = dict(
        mydestination=f"{HOST}, localhost",
        virtual_mailbox_domains=VDOMAIN,
        virtual_mailbox_base=vbase,
        virtual_mailbox_maps="texthash:" + inst.path("etc/vmailbox"),
        virtual_uid_maps=f"static:{VUID}",
        virtual_gid_maps=f"static:{VUID}",
        recipient_delimiter="+",
        alias_maps="texthash:" + inst.path("etc/aliases"),
        mail_spool_directory=spool,
        home_mailbox="")
    settings.update(params)
    inst.write_main_cf(**settings)
    inst.write_master_cf(MASTER_CF + master_extra)
    inst.start()
    wait_for(lambda: os.path.exists(os.path.join(inst.queue_dir, "private",
                                                 "local")), what="socket")
    return out


# --- virtual mailboxes -----------------------------------------------------------

def test_virtual_maildir_and_tags(instance):
    start_agent(instance)
    rcpts = [(f"bob@{VDOMAIN}", None), (f"bob+news@{VDOMAIN}", None),
             (f"bob@{VDOMAIN}", f"Bob.Alias@{VDOMAIN}")]
    qid, offsets = write_queue_file(instance, rcpts)
    replies = deliver(instance, qid, [(a, o, orig) for (a, orig), o
                                      in zip(rcpts, offsets)], "virtual")
    assert [r["status"] for r in replies] == ["0", "0", "0"]
    for r, off in zip(replies, offsets):
        assert r["offset"] == str(off)
        assert r["dsn"] == "2.0.0"
        assert r["reason"] == "delivered to maildir"

    mdir = instance.path("vmail", VDOMAIN, "bob")
    files = maildir_files(mdir)
    assert len(files) == 3, files       # exactly once each
    assert os.listdir(os.path.join(mdir, "tmp")) == []
    got = sorted(read(f) for f in files)
    want = sorted([prepended(f"bob@{VDOMAIN}") + CONTENT,
                   prepended(f"bob+news@{VDOMAIN}") + CONTENT,
                   prepended(f"bob@{VDOMAIN}", f"Bob.Alias@{VDOMAIN}")
                   + CONTENT])
    assert got == want
    for f in files:
        check_maildir_name(f, read(f))
        st = os.stat(f)
        assert stat.S_IMODE(st.st_mode) == 0o600
        if IS_ROOT:
            assert (st.st_uid, st.st_gid) == (VUID, VUID)
    if IS_ROOT:
        assert os.stat(mdir).st_uid == VUID

    # Standard tools read it.
    box = mailbox.Maildir(mdir, factory=None, create=False)
    msgs = [box.get_bytes(k) for k in box.keys()]
    assert len(msgs) == 3
    for key in box.keys():
        m = box[key]
        assert m["Subject"] == "hello"
        assert m["Return-Path"] == f"<{SENDER}>"
        assert m["Delivered-To"].startswith("bob")
        assert m.get_payload(decode=True).endswith(b"last\n")

    # One log line per recipient, from postern/virtual, relay=virtual.
    lines = delivery_lines(instance, qid)
    assert len(lines) == 3
    for m in lines:
        assert m["prog"] == "virtual" and m["relay"] == "virtual"
        assert m["status"] == "sent" and m["dsn"] == "2.0.0"
        assert m["text"] == "delivered to maildir"
        assert m["a"] == "0.5" and m["c"] == "0"
        assert float(m["delay"]) >= 1.2
    tagged = one_line(instance, qid, f"bob+news@{VDOMAIN}")
    assert tagged["orig"] is None
    aliased = [m for m in lines if m["orig"]]
    assert [m["orig"] for m in aliased] == [f"Bob.Alias@{VDOMAIN}"]


def test_virtual_mbox_unknown_and_loop(instance):
    start_agent(instance)
    qid, reply = deliver_one(instance, f"carol@{VDOMAIN}", service="virtual")
    assert (reply["status"], reply["dsn"]) == ("0", "2.0.0")
    assert reply["reason"] == "delivered to mailbox"
    data = read(instance.path("vmail", VDOMAIN, "carol"))
    m = FROM_LINE.match(data)
    assert m and m.group(1) == SENDER.encode()
    quoted = CONTENT.replace(b"\nFrom the start", b"\n>From the start")
    assert data[m.end():] == prepended(f"carol@{VDOMAIN}") + quoted + b"\n"
    if IS_ROOT:
        assert os.stat(instance.path("vmail", VDOMAIN, "carol")).st_uid == VUID

    qid, reply = deliver_one(instance, f"dave@{VDOMAIN}", service="virtual")
    assert (reply["status"], reply["dsn"]) == ("550", "5.1.1")
    assert reply["reason"] == f'unknown user: "dave@{VDOMAIN}"'
    line = one_line(instance, qid, f"dave@{VDOMAIN}")
    assert line["status"] == "bounced"
    assert line["text"] == f'unknown user: "dave@{VDOMAIN}"'

    # Already delivered here once: a forwarding loop (any case).
    looped = b"Delivered-To: BOB@Virt.Test\n" + CONTENT
    qid, reply = deliver_one(instance, f"bob@{VDOMAIN}", looped,
                             service="virtual")
    assert (reply["status"], reply["dsn"]) == ("550", "5.4.6")
    assert reply["reason"] == f"mail forwarding loop for bob@{VDOMAIN}"
    assert maildir_files(instance.path("vmail", VDOMAIN, "bob")) == []
    # A Delivered-To: in the body is no loop.
    body_only = CONTENT + b"Delivered-To: bob@virt.test\n"
    qid, reply = deliver_one(instance, f"bob@{VDOMAIN}", body_only,
                             service="virtual")
    assert reply["status"] == "0"


def test_readonly_maildir_defers(instance):
    start_agent(instance)
    mdir = instance.path("vmail", VDOMAIN, "bob")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(mdir, sub))
    if IS_ROOT:
        for d in (instance.path("vmail", VDOMAIN), mdir) + tuple(
                os.path.join(mdir, s) for s in ("tmp", "new", "cur")):
            os.chown(d, VUID, VUID)
    os.chmod(os.path.join(mdir, "new"), 0o500)
    qid, reply = deliver_one(instance, f"bob@{VDOMAIN}", service="virtual")
    assert (reply["status"], reply["dsn"]) == ("450", "4.2.0")
    assert reply["reason"].startswith("maildir delivery failed: rename to ")
    assert "Permission denied" in reply["reason"]
    assert os.listdir(os.path.join(mdir, "tmp")) == []
    assert os.listdir(os.path.join(mdir, "new")) == []
    line = one_line(instance, qid, f"bob@{VDOMAIN}")
    assert line["status"] == "deferred" and line["dsn"] == "4.2.0"

    # Fixed: the next attempt delivers once.
    os.chmod(os.path.join(mdir, "new"), 0o700)
    qid, reply = deliver_one(instance, f"bob@{VDOMAIN}", service="virtual")
    assert reply["status"] == "0"
    assert len(maildir_files(mdir)) == 1


def test_virtual_size_limit(instance):
    start_agent(instance, virtual_mailbox_limit=str(len(CONTENT) + 50))
    qid, reply = deliver_one(instance, f"bob@{VDOMAIN}", service="virtual")
    assert (reply["status"], reply["dsn"]) == ("450", "4.2.2")
    assert "mailbox full" in reply["reason"]
    mdir = instance.path("vmail", VDOMAIN, "bob")
    assert maildir_files(mdir) == [] and os.listdir(mdir + "/tmp") == []


def test_mixed_recipients_and_soft_bounce(instance):
    start_agent(instance, soft_bounce="yes")
    rcpts = [(f"bob@{VDOMAIN}", None), (f"dave@{VDOMAIN}", None),
             (f"carol@{VDOMAIN}", None)]
    qid, offsets = write_queue_file(instance, rcpts)
    replies = deliver(instance, qid, [(a, o, orig) for (a, orig), o
                                      in zip(rcpts, offsets)], "virtual")
    # One reply per recipient, in request order.
    assert [r["offset"] for r in replies] == [str(o) for o in offsets]
    assert [(r["status"], r["dsn"]) for r in replies] == [
        ("0", "2.0.0"), ("450", "4.1.1"), ("0", "2.0.0")]
    line = one_line(instance, qid, f"dave@{VDOMAIN}")
    assert (line["status"], line["dsn"]) == ("deferred", "4.1.1")
    assert len(maildir_files(instance.path("vmail", VDOMAIN, "bob"))) == 1


# --- aliases -----------------------------------------------------------------

def test_aliases(instance):
    out = instance.path("out")
    inc = instance.write_file("etc/list.inc",
                              "# members\n"
                              f"bob@{VDOMAIN}\n"
                              "\n"
                              "friend@elsewhere.test, team\n")
    os.chmod(inc, 0o644)
    aliases = (
        "fwd remote@elsewhere.test, Other@Elsewhere.TEST, "
        "remote@elsewhere.test\n"
        f'cmd "|cat > {out}/cmd.out; env > {out}/cmd.env; id -u > '
        f'{out}/cmd.uid"\n'
        f"tofile {out}/file.mbox\n"
        f"tomaildir {out}/box/\n"
        f"nested cmd, tofile, team\n"
        f"team vbob\n"
        f"vbob bob@{VDOMAIN}\n"
        f"inc :include:{inc}\n"
        "null /dev/null\n")
    start_agent(instance, aliases=aliases)

    # Addresses elsewhere: one new message through cleanup.
    qid, reply = deliver_one(instance, f"fwd@{HOST}")
    assert reply["status"] == "0", reply
    m = re.match(r"^forwarded as (\w+)$", reply["reason"])
    assert m, reply
    newid = m.group(1)
    qf = QueueFile.read(os.path.join(instance.queue_dir, "incoming", newid))
    qf.check()
    assert qf.sender == SENDER
    assert qf.rcpt_addresses == ["remote@elsewhere.test",
                                 "Other@Elsewhere.TEST"]
    assert qf.content == f"Delivered-To: fwd@{HOST}\n".encode() + CONTENT
    for to in ("remote@elsewhere.test", "Other@Elsewhere.TEST"):
        line = one_line(instance, qid, to)
        assert line["orig"] == f"fwd@{HOST}"
        assert line["relay"] == "local" and line["prog"] == "local"
        assert line["text"] == f"forwarded as {newid}"

    # |command as default_privs, with Postfix's environment.
    qid, reply = deliver_one(instance, f"cmd+ext@{HOST}")
    assert reply["status"] == "0", reply
    assert reply["reason"] == (f"delivered to command: cat > {out}/cmd.out; "
                               f"env > {out}/cmd.env; id -u > {out}/cmd.uid")
    got = read(os.path.join(out, "cmd.out"))
    m = FROM_LINE.match(got)
    assert m and m.group(1) == SENDER.encode()
    assert got[m.end():] == prepended(f"cmd+ext@{HOST}") + CONTENT
    env = dict(line.split("=", 1) for line in
               read(os.path.join(out, "cmd.env")).decode().splitlines()
               if "=" in line)
    assert env["SENDER"] == SENDER
    assert env["RECIPIENT"] == f"cmd+ext@{HOST}"
    assert env["ORIGINAL_RECIPIENT"] == f"cmd+ext@{HOST}"
    assert env["USER"] == "cmd" and env["LOGNAME"] == "cmd"
    assert env["EXTENSION"] == "ext" and env["LOCAL"] == "cmd+ext"
    assert env["DOMAIN"] == HOST
    assert env["PATH"] == "/usr/bin:/bin"
    if IS_ROOT:
        assert read(os.path.join(out, "cmd.uid")).strip() == \
            str(pwd.getpwnam("nobody").pw_uid).encode()
        assert env["HOME"] == pwd.getpwnam("nobody").pw_dir
    line = one_line(instance, qid, f"cmd+ext@{HOST}")
    assert line["orig"] is None and line["status"] == "sent"

    # /file: mbox style; a name ending in / is a Maildir; /dev/null.
    qid, reply = deliver_one(instance, f"tofile@{HOST}")
    assert reply["reason"] == f"delivered to file: {out}/file.mbox"
    data = read(os.path.join(out, "file.mbox"))
    m = FROM_LINE.match(data)
    quoted = CONTENT.replace(b"\nFrom the start", b"\n>From the start")
    assert data[m.end():] == prepended(f"tofile@{HOST}") + quoted + b"\n"
    if IS_ROOT:
        assert os.stat(os.path.join(out, "file.mbox")).st_uid == \
            pwd.getpwnam("nobody").pw_uid
    qid, reply = deliver_one(instance, f"tomaildir@{HOST}")
    assert reply["reason"] == "delivered to maildir"
    assert [read(f) for f in maildir_files(os.path.join(out, "box"))] == \
        [prepended(f"tomaildir@{HOST}") + CONTENT]
    qid, reply = deliver_one(instance, f"null@{HOST}")
    assert reply["reason"] == "delivered to file: /dev/null"

    # Aliases of aliases: each final destination logged once, with the
    # expanded address in to= and the recipient in orig_to=.
    os.unlink(os.path.join(out, "cmd.out"))
    qid, reply = deliver_one(instance, f"nested@{HOST}")
    assert reply["status"] == "0", reply
    lines = delivery_lines(instance, qid)
    assert sorted((m["to"], re.sub(r"(forwarded as|:).*", r"\1", m["text"]))
                  for m in lines) == [
        (f"bob@{VDOMAIN}", "forwarded as"),
        (f"cmd@{HOST}", "delivered to command:"),
        (f"tofile@{HOST}", "delivered to file:"),
    ]
    for m in lines:
        assert m["orig"] == f"nested@{HOST}"
    assert os.path.exists(os.path.join(out, "cmd.out"))

    # :include: files: addresses from them are fine.
    qid, reply = deliver_one(instance, f"inc@{HOST}")
    assert reply["status"] == "0", reply
    newid = reply["reason"].split()[-1]
    qf = QueueFile.read(os.path.join(instance.queue_dir, "incoming", newid))
    assert sorted(qf.rcpt_addresses) == sorted([f"bob@{VDOMAIN}",
                                                "friend@elsewhere.test"])


def test_alias_loops_and_restrictions(instance):
    out = instance.path("out")
    inc = instance.write_file("etc/cmds.inc", f"|echo hi > {out}/inc.out\n"
                              f"{out}/inc.mbox\n")
    os.chmod(inc, 0o644)
    aliases = ("loopa loopb\n"
               "loopb loopa\n"
               "selfish selfish, remote@elsewhere.test\n"
               f"restricted :include:{inc}\n"
               f"missing :include:{out}/no-such-file\n"
               "deep d1\n" + "".join(f"d{i} d{i + 1}\n" for i in range(1, 130)))
    start_agent(instance, aliases=aliases)

    # a -> b -> a: a is not expanded again; it is nobody's mailbox.
    qid, reply = deliver_one(instance, f"loopa@{HOST}")
    assert (reply["status"], reply["dsn"]) == ("550", "5.1.1")
    assert reply["reason"] == 'unknown user: "loopa"'
    line = one_line(instance, qid, f"loopa@{HOST}")
    assert line["orig"] is None and line["status"] == "bounced"

    # An alias that names itself: the user (none here) plus the others.
    qid, reply = deliver_one(instance, f"selfish@{HOST}")
    assert (reply["status"], reply["dsn"]) == ("550", "5.1.1")
    lines = delivery_lines(instance, qid)
    assert sorted(m["status"] for m in lines) == ["bounced", "sent"]

    # allow_mail_to_commands/files exclude :include: files by default.
    qid, reply = deliver_one(instance, f"restricted@{HOST}")
    assert (reply["status"], reply["dsn"]) == ("550", "5.7.1")
    texts = sorted(m["text"] for m in delivery_lines(instance, qid))
    assert texts == ["mail to command is restricted",
                     "mail to file is restricted"]
    assert not os.path.exists(os.path.join(out, "inc.out"))

    qid, reply = deliver_one(instance, f"missing@{HOST}")
    assert (reply["status"], reply["dsn"]) == ("550", "5.3.0")
    assert "cannot open include file" in instance.log()

    qid, reply = deliver_one(instance, f"deep@{HOST}")
    assert (reply["status"], reply["dsn"]) == ("550", "5.4.6")
    assert reply["reason"].startswith("alias database loop for ")


def test_alias_include_allowed(instance):
    out = instance.path("out")
    inc = instance.write_file("etc/cmds.inc", f"|echo hi > {out}/inc.out\n"
                              f"{out}/inc.mbox\n")
    os.chmod(inc, 0o644)
    start_agent(instance, aliases=f"list :include:{inc}\n",
          allow_mail_to_commands="alias, forward, include",
          allow_mail_to_files="alias, forward, include")
    qid, reply = deliver_one(instance, f"list@{HOST}")
    assert reply["status"] == "0", reply
    assert read(os.path.join(out, "inc.out")) == b"hi\n"
    assert FROM_LINE.match(read(os.path.join(out, "inc.mbox")))


def test_command_outcomes(instance):
    aliases = ('tempfail "|exit 75"\n'
               'dsn "|echo 5.2.1 mailbox disabled; exit 1"\n'
               'plain "|echo no such thing >&2; exit 67"\n'
               'slow "|sleep 30"\n'
               'noread "|exit 0"\n'
               'killed "|kill -9 $$"\n')
    start_agent(instance, aliases=aliases, command_time_limit="2s")
    qid, reply = deliver_one(instance, f"tempfail@{HOST}")
    assert (reply["status"], reply["dsn"]) == ("450", "4.3.0")
    assert reply["reason"] == 'Command died with status 75: "exit 75"'
    assert one_line(instance, qid, f"tempfail@{HOST}")["status"] == \
        "deferred"

    qid, reply = deliver_one(instance, f"dsn@{HOST}")
    assert (reply["status"], reply["dsn"]) == ("550", "5.2.1")
    assert reply["reason"] == ('Command died with status 1: "echo 5.2.1 '
                               'mailbox disabled; exit 1". Command output: '
                               '5.2.1 mailbox disabled')

    qid, reply = deliver_one(instance, f"plain@{HOST}")
    assert (reply["status"], reply["dsn"]) == ("550", "5.1.1")
    assert reply["reason"].endswith("Command output: no such thing")

    # It does not read its input: fine, the exit status counts.
    big = CONTENT + b"y" * 1000000 + b"\n"
    qid, reply = deliver_one(instance, f"noread@{HOST}", big)
    assert reply["status"] == "0", reply

    qid, reply = deliver_one(instance, f"killed@{HOST}")
    assert (reply["status"], reply["dsn"]) == ("450", "4.3.0")
    assert reply["reason"].startswith("Command died with signal 9")

    start = time.monotonic()
    qid, reply = deliver_one(instance, f"slow@{HOST}")
    assert time.monotonic() - start < 15
    assert (reply["status"], reply["dsn"]) == ("550", "5.3.0")
    assert reply["reason"] == 'Command time limit exceeded: "sleep 30"'


def test_unknown_local_user(instance):
    start_agent(instance)
    qid, reply = deliver_one(instance, f"nosuchuser+x@{HOST}")
    assert (reply["status"], reply["dsn"]) == ("550", "5.1.1")
    assert reply["reason"] == 'unknown user: "nosuchuser"'
    line = one_line(instance, qid, f"nosuchuser+x@{HOST}")
    assert line["status"] == "bounced" and line["relay"] == "local"
    assert line["text"] == 'unknown user: "nosuchuser"'


# --- system users (root: a throwaway account) --------------------------------

@pytest.fixture
def system_user(instance):
    if not IS_ROOT:
        pytest.skip("needs root to create an account")
    name = f"pt{os.getpid() % 100000}{next(_serial)}"
    home = instance.path("home", name)
    os.makedirs(instance.path("home"), exist_ok=True)
    subprocess.run(["useradd", "-m", "-d", home, "-s", "/bin/sh", name],
                   check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True)


def test_system_user_maildir(instance, system_user):
    user = system_user.pw_name
    out = instance.path("out")
    start_agent(instance, home_mailbox="Maildir/",
          aliases=f"{user}alias {user}\n"
                  f"{user} {user}, {out}/copy.mbox\n")
    qid, reply = deliver_one(instance, f"{user}+tag@{HOST}")
    assert reply["status"] == "0", reply
    # The alias named the user itself: the mailbox, and the file.
    lines = delivery_lines(instance, qid)
    assert sorted(m["text"] for m in lines) == [
        "delivered to file: " + out + "/copy.mbox", "delivered to maildir"]
    mdir = os.path.join(system_user.pw_dir, "Maildir")
    files = maildir_files(mdir)
    assert [read(f) for f in files] == [prepended(f"{user}+tag@{HOST}")
                                        + CONTENT]
    for path in files + [mdir, os.path.join(mdir, "new")]:
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (system_user.pw_uid,
                                          system_user.pw_gid)
    box = mailbox.Maildir(mdir, factory=None, create=False)
    assert [box[k]["Subject"] for k in box.keys()] == ["hello"]

    # Through another alias: to= the user, orig_to= the alias.
    qid, reply = deliver_one(instance, f"{user}alias@{HOST}")
    assert reply["status"] == "0", reply
    line = [m for m in delivery_lines(instance, qid)
            if m["text"] == "delivered to maildir"][0]
    assert (line["to"], line["orig"]) == (f"{user}@{HOST}",
                                          f"{user}alias@{HOST}")
    assert len(maildir_files(mdir)) == 2


def test_system_user_spool_mbox(instance, system_user):
    user = system_user.pw_name
    start_agent(instance)
    qid, reply = deliver_one(instance, f"{user}@{HOST}", sender="")
    assert (reply["status"], reply["reason"]) == ("0", "delivered to mailbox")
    path = instance.path("spool", user)
    st = os.stat(path)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (system_user.pw_uid,
                                                     0o600)
    data = read(path)
    m = FROM_LINE.match(data)
    assert m and m.group(1) == b"MAILER-DAEMON"
    assert data[m.end():].startswith(b"Return-Path: <>\n")
    assert not os.path.exists(path + ".lock")
    mbox = mailbox.mbox(path, create=False)
    assert [msg["Subject"] for msg in mbox] == ["hello"]

    # Debian's spool: root:mail 2775.  The delivery gets group mail.
    os.unlink(path)
    spool = instance.path("spool")
    os.chown(spool, 0, grp.getgrnam("mail").gr_gid)
    os.chmod(spool, 0o2775)
    qid, reply = deliver_one(instance, f"{user}@{HOST}")
    assert reply["status"] == "0", reply
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (system_user.pw_uid,
                                      grp.getgrnam("mail").gr_gid)
    assert not os.path.exists(path + ".lock")


def test_alias_table_owner_runs_commands(instance, system_user):
    out = instance.path("out")
    start_agent(instance)
    own = instance.write_file("etc/useraliases",
                              f'whoami "|id -u > {out}/owner.uid"\n')
    os.chown(own, system_user.pw_uid, system_user.pw_gid)
    instance.write_main_cf(alias_maps="texthash:" + own)
    instance.postern("reload")
    time.sleep(1)
    qid, reply = deliver_one(instance, f"whoami@{HOST}")
    assert reply["status"] == "0", reply
    assert read(os.path.join(out, "owner.uid")).strip() == \
        str(system_user.pw_uid).encode()


# --- the protocol ----------------------------------------------------------------

def test_bad_requests(instance):
    start_agent(instance)
    # Garbage: the agent hangs up without a reply and says why.
    sock = connect(instance, "local")
    sock.sendall(ipc_record([("req", "deliver"), ("queue_id", "../../x")]))
    assert ipc_read(sock) is None
    sock.close()
    wait_for(lambda: "bad delivery request: " in instance.log(),
             what="warning")

    # No such queue file: every recipient waits.
    qid = new_queue_id()
    replies = deliver(instance, qid, [(f"bob@{VDOMAIN}", 100, None),
                                      (f"carol@{VDOMAIN}", 200, None)],
                      "virtual")
    assert [(r["status"], r["dsn"]) for r in replies] == [("450", "4.3.0")] * 2
    assert replies[0]["reason"].startswith("queue file unavailable")
    assert len(delivery_lines(instance, qid)) == 2

    # A recipient that is not where qmgr says it is.
    qid, offsets = write_queue_file(instance, [(f"bob@{VDOMAIN}", None)])
    replies = deliver(instance, qid, [(f"bob@{VDOMAIN}", offsets[0] + 1,
                                       None)], "virtual")
    assert (replies[0]["status"], replies[0]["reason"]) == \
        ("450", "queue file mismatch")
    assert maildir_files(instance.path("vmail", VDOMAIN, "bob")) == []


def test_pflogsumm_counts_deliveries(instance):
    start_agent(instance)
    for _ in range(2):
        deliver_one(instance, f"bob@{VDOMAIN}", service="virtual")
    deliver_one(instance, f"nobody-here@{VDOMAIN}", service="virtual")
    res = subprocess.run(["pflogsumm", "--syslog-name=postern",
                          instance.log_file], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert re.search(r"^\s*2\s+delivered", res.stdout, re.M), res.stdout
    assert re.search(r"^\s*1\s+bounced", res.stdout, re.M), res.stdout


def test_end_to_end_through_qmgr(instance):
    """smtpd -> cleanup -> qmgr -> local/virtual, now that qmgr exists."""
    if not os.path.exists(os.path.join(BUILD, "libexec", "qmgr")):
        pytest.skip("qmgr is not built")
    start_agent(instance, aliases=f"fwd bob@{VDOMAIN}\n",
                mynetworks="127.0.0.0/8",
                master_extra=f"127.0.0.1:{instance.port('smtp')} inet n - n - "
                "- smtpd\nqmgr unix n - n 300 1 qmgr\n")
    with smtplib.SMTP("127.0.0.1", instance.port("smtp"), timeout=10) as s:
        s.sendmail(SENDER, [f"bob@{VDOMAIN}", f"fwd@{HOST}"],
                   b"Subject: e2e\r\n\r\nhello\r\nFrom here\r\n")
    mdir = instance.path("vmail", VDOMAIN, "bob")
    wait_for(lambda: len(maildir_files(mdir)) == 2, timeout=20,
             what="two deliveries")
    contents = sorted(read(f) for f in maildir_files(mdir))
    for data in contents:
        assert data.startswith(b"Return-Path: <alice@example.org>\n")
        assert data.endswith(b"\n\nhello\nFrom here\n")
    assert sum(b"\nDelivered-To: fwd@" + HOST.encode() + b"\n" in d
               for d in contents) == 1
    wait_for(lambda: instance.log().count(": removed") == 2, timeout=20,
             what="queue files removed")
    texts = sorted(m["text"].split(" ")[0] + " " + m["prog"]
                   for m in delivery_lines(instance))
    assert texts == ["delivered virtual", "delivered virtual",
                     "forwarded local"]
