"""postern queue: list (mailq / postqueue -p, postqueue -j) and show
(postcat -q), read in-process and through the showq service.

The expected listings are computed here from Postfix's own format strings
(src/postqueue/showq_compat.c and showq_json.c, long queue IDs), not from
the C code under test; the unit tests (test_showq.c, test_dsn_log.c) also
hold output captured from a real Postfix 3.7.11.  Queue files and defer
logs are written by hand here, record by record (postern-queue(5)), the
defer logs in the format Postfix's bounce service writes.
"""
import json
import os
import pwd
import threading
import time

import pytest

from conftest import wait_for

IS_ROOT = os.geteuid() == 0
ARRIVAL = 1795738946                    # Fri Nov 27 00:22:26 2026 UTC
REASON = "connect to 127.0.0.1[127.0.0.1]:9: Connection refused"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Listings show local time: make it UTC here and in every child."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- writing queue files -----------------------------------------------------

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


def chown_mail(inst, path):
    """Queue files belong to mail_owner, as cleanup would write them (to
    the instance's user in development mode)."""
    if IS_ROOT:
        pw = pwd.getpwnam(inst.run_as or inst.params["mail_owner"])
        os.chown(path, pw.pw_uid, pw.pw_gid)


def queue_file(inst, relpath, sender, rcpts, content, arrival=ARRIVAL,
               attrs=(), fullname=None, mode=0o700, size_record=True,
               warn=None):
    """Write queue/RELPATH; rcpts: [address or dict(address, done, orig,
    orcpt, notify)].  Returns {address: offset of its R/D record}."""
    path = os.path.join(inst.queue_dir, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    chown_mail(inst, os.path.dirname(path))
    head = len(rec("C", "x" * 63)) if size_record else 0
    body = rec("T", f"{arrival} 123456")
    if warn is not None:
        body += rec("W", "%15d" % warn)
    if fullname is not None:
        body += rec("F", fullname)
    body += rec("S", sender)
    for a in attrs:
        body += rec("A", a)
    offsets = {}
    for r in rcpts:
        r = r if isinstance(r, dict) else {"address": r}
        if r.get("orcpt"):
            body += rec("o", r["orcpt"])
        if r.get("notify"):
            body += rec("n", str(r["notify"]))
        body += rec("O", r.get("orig", r["address"]))
        offsets[r["address"]] = head + len(body)
        body += rec("D" if r.get("done") else "R", r["address"])
    content_offset = head + len(body)
    data = content.encode() if isinstance(content, str) else content
    body += rec("M") + rec("B", data) + rec("X") + rec("E")
    size = rec("C", "%15d %15d %15d %15d" % (len(data), content_offset,
                                             len(rcpts), 0))
    with open(path, "wb") as f:
        f.write((size if size_record else b"") + body)
    os.chmod(path, mode)
    chown_mail(inst, path)
    return offsets


def defer_log(inst, relpath, entries):
    """defer/RELPATH as Postfix's bounce service writes it: per entry a
    blank line, the old-style line, recipient=, offset=, status=, action=,
    reason=, a blank line."""
    path = os.path.join(inst.queue_dir, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    chown_mail(inst, os.path.dirname(path))
    with open(path, "a") as f:
        for rcpt, offset, reason in entries:
            f.write(f"\n<{rcpt}>: {reason}\nrecipient={rcpt}\n"
                    f"offset={offset}\nstatus=4.4.1\naction=delayed\n"
                    f"reason={reason}\n\n")
    chown_mail(inst, path)


# --- the expected output, from Postfix's format strings ------------------------

L_STRING = "%-17s %8s %-19s %s\n"
L_SENDER = "%-17s %8ld %19.19s %s\n"
L_HEADINGS = ("----Queue ID-----", "--Size--", "---Arrival Time----",
              "--Sender/Recipient------")


def mailq(msgs):
    """showq_compat.c: msgs = [(queue, id, size, arrival, sender,
    [(address, reason)])], sender already in printable quoted form."""
    out = []
    total = 0
    for i, (queue, qid, size, arrival, sender, rcpts) in enumerate(msgs):
        out.append("\n" if i else L_STRING % L_HEADINGS)
        mark = {"active": "*", "hold": "!"}.get(queue, "")
        out.append(L_SENDER % (qid + mark, size,
                               time.asctime(time.localtime(arrival)), sender))
        saved = ""
        for addr, why in rcpts:
            if why != saved:
                saved = why
                show = why or "reason unavailable"
                out.append("%*s(%s)\n" % (max(0, 76 - len(show)), "", show))
            out.append(L_STRING % ("", "", "", addr))
        total += size
    if not msgs:
        out.append("Mail queue is empty\n")
    else:
        out.append("\n-- %d Kbytes in %d Request%s.\n"
                   % (total // 1024, len(msgs), "" if len(msgs) == 1 else "s"))
    return "".join(out)


def postqueue_j(msgs):
    """showq_json.c: one object per line, ", " and ": " separators."""
    lines = []
    for queue, qid, size, arrival, sender, rcpts in msgs:
        obj = {"queue_name": queue, "queue_id": qid, "arrival_time": arrival,
               "message_size": size, "forced_expire": False,
               "sender": sender, "recipients": []}
        for addr, why in rcpts:
            r = {"address": addr}
            if why:
                r["delay_reason"] = why
            obj["recipients"].append(r)
        lines.append(json.dumps(obj, ensure_ascii=False,
                                separators=(", ", ": ")) + "\n")
    return "".join(lines)


# --- a queue with one message of each kind -------------------------------------

LONG_SENDER = "a-very-long-sender-address-that-goes-on@example.org"
LONG_RCPT = "another-very-long-recipient-address@subdomain.example.org"


def fill_queue(inst):
    """Messages in every queue, plus files that must not be listed.
    Returns the expected messages in listing order (see mailq())."""
    inst.postern("check")
    queue_file(inst, "maildrop/4jbDdp0000zB", "root", ["x@y.test"], "hi\n",
               arrival=ARRIVAL - 46, mode=0o744,
               attrs=["local_uid=0", "origin=sendmail"])
    queue_file(inst, "active/4jbDds6GYFz1bcVB", "john doe@example.org",
               ["a@b.test"], "x" * 3000, arrival=ARRIVAL + 14)
    queue_file(inst, "incoming/4jbDdt6GYFzBCDFGH", LONG_SENDER, [LONG_RCPT],
               "Subject: x\n\nbody\n", arrival=ARRIVAL + 24)
    offs = queue_file(inst, "deferred/4/4jbDdq6GYFz1bcV8", "alice@example.org",
                      ["carol@remote.test",
                       {"address": "dave@remote.test", "done": True},
                       "erin@remote.test"],
                      "Subject: hi\nFrom: alice\n\nbody line\n")
    defer_log(inst, "defer/4/4jbDdq6GYFz1bcV8",
              [("carol@remote.test", offs["carol@remote.test"], REASON),
               ("dave@remote.test", offs["dave@remote.test"], REASON)])
    queue_file(inst, "hold/4jbDdr6GYFz1bcV9", "", ["bob@x.test"],
               "Subject: bounce\n\nx\n", arrival=ARRIVAL + 4)
    # Not listed: not ready, a temporary name, a dot file.
    queue_file(inst, "incoming/4jbDdv6GYFz1bcVC", "s@x", ["r@x"], "x\n",
               mode=0o600)
    queue_file(inst, "maildrop/tmp.12345", "s@x", ["r@x"], "x\n",
               mode=0o744)
    queue_file(inst, "deferred/.4jbDdw6GYFz1bcVD", "s@x", ["r@x"], "x\n")
    return [
        ("maildrop", "4jbDdp0000zB", 3, ARRIVAL - 46, "root",
         [("x@y.test", "")]),
        ("active", "4jbDds6GYFz1bcVB", 3000, ARRIVAL + 14,
         '"john doe"@example.org', [("a@b.test", "")]),
        ("incoming", "4jbDdt6GYFzBCDFGH", 17, ARRIVAL + 24, LONG_SENDER,
         [(LONG_RCPT, "")]),
        ("deferred", "4jbDdq6GYFz1bcV8", 35, ARRIVAL, "alice@example.org",
         [("carol@remote.test", REASON), ("erin@remote.test", "")]),
        ("hold", "4jbDdr6GYFz1bcV9", 19, ARRIVAL + 4, "MAILER-DAEMON",
         [("bob@x.test", "")]),
    ]


def corrupt_file(inst):
    """A ready file cut short: reported on stderr, never listed."""
    path = os.path.join(inst.queue_dir, "incoming", "4jbDdx6GYFz1bcVF")
    queue_file(inst, "incoming/4jbDdx6GYFz1bcVF", "s@x", ["r@x"], "x\n")
    with open(path, "r+b") as f:
        f.truncate(40)


# --- listing --------------------------------------------------------------------

def test_empty_queue(instance):
    instance.postern("check")
    assert instance.postern("queue", "list").stdout == "Mail queue is empty\n"
    assert instance.postern("queue", "list", "--json").stdout == ""
    assert instance.postern("queue", "list", "-j").stdout == ""


def test_list_text_and_json(instance):
    msgs = fill_queue(instance)
    res = instance.postern("queue", "list")
    assert res.stdout == mailq(msgs)
    assert res.stderr == ""
    res = instance.postern("queue", "list", "--json")
    assert res.stdout == postqueue_j(msgs)
    for line in res.stdout.splitlines():
        json.loads(line)


def test_corrupt_file_is_reported_and_skipped(instance):
    msgs = fill_queue(instance)
    corrupt_file(instance)
    res = instance.postern("queue", "list")
    assert res.stdout == mailq(msgs)
    assert ("warning: 4jbDdx6GYFz1bcVF: corrupt queue file: truncated record"
            in res.stderr)


def test_owner_reads_the_queue_in_development(user_instance):
    """An instance run by an ordinary account: its owner reads the queue
    directly, no service needed."""
    msgs = fill_queue(user_instance)
    assert user_instance.postern("queue", "list").stdout == mailq(msgs)
    assert (user_instance.postern("queue", "list", "-j").stdout
            == postqueue_j(msgs))


def test_list_usage(instance):
    res = instance.postern("queue", "list", "--bogus", check=False)
    assert res.returncode == 2 and "usage:" in res.stderr
    res = instance.postern("queue", check=False)
    assert res.returncode == 2 and "usage:" in res.stderr


def test_live_queue_changes_during_listing(instance):
    """Files appear and vanish while the queue is read: every listing is
    well-formed, nothing is reported as corrupt."""
    instance.postern("check")
    stop = threading.Event()
    errors = []

    def churn():
        n = 0
        tmp = os.path.join(instance.queue_dir, "tmp")
        while not stop.is_set():
            n += 1
            name = f"4jbDdq6GYFz{n:05d}"
            # Written in tmp/, made ready, renamed: as cleanup does.
            queue_file(instance, f"tmp/{name}", "s@x", ["r@x"], "x\n")
            dest = "deferred" if n % 2 else "incoming"
            os.rename(os.path.join(tmp, name),
                      os.path.join(instance.queue_dir, dest, name))
            if n > 3:
                old = f"4jbDdq6GYFz{n - 3:05d}"
                try:
                    os.unlink(os.path.join(instance.queue_dir,
                                           "deferred" if (n - 3) % 2
                                           else "incoming", old))
                except OSError as e:
                    errors.append(e)

    t = threading.Thread(target=churn)
    t.start()
    try:
        for _ in range(40):
            res = instance.postern("queue", "list")
            assert res.stderr == ""
            out = res.stdout
            assert (out == "Mail queue is empty\n"
                    or (out.startswith(L_STRING % L_HEADINGS)
                        and " in " in out.splitlines()[-1]))
    finally:
        stop.set()
        t.join()
    assert not errors


def test_maildrop_file_from_sendmail(instance):
    """A message dropped by the real sendmail command (no pickup running)
    is listed from maildrop/ with its size and arrival time."""
    instance.postern("check")
    from conftest import bin_path
    import subprocess
    res = subprocess.run(
        [bin_path("sendmail"), "-C", instance.config_dir, "-f",
         "dropper@example.org", "to@example.org"],
        input=b"Subject: dropped\n\nbody\n", capture_output=True,
        env=instance.env(), timeout=30)
    assert res.returncode == 0, res.stderr
    names = os.listdir(os.path.join(instance.queue_dir, "maildrop"))
    assert len(names) == 1
    out = json.loads(instance.postern("queue", "list", "--json").stdout)
    assert out["queue_name"] == "maildrop"
    assert out["queue_id"] == names[0]
    assert out["sender"] == "dropper@example.org"
    assert out["recipients"] == [{"address": "to@example.org"}]
    assert abs(out["arrival_time"] - time.time()) < 60
    text = instance.postern("queue", "list").stdout
    assert f"\n{names[0]} " in "\n" + text
    assert text.endswith(" Kbytes in 1 Request.\n")


# --- show ----------------------------------------------------------------------

SHOW_ID = "4jbDdq6GYFz1bcV8"
SHOW_PATH = "deferred/4/" + SHOW_ID
SHOW_CONTENT = ("Received: by mx.example.test\n\tid 4jbDdq6GYFz1bcV8\n"
                "Subject: hi\nFrom: alice\n\nbody line\n\nlast\n")


def fill_show(inst):
    inst.postern("check")
    queue_file(inst, SHOW_PATH, "alice@example.org",
               [{"address": "carol@remote.test", "orcpt":
                 "rfc822;carol@remote.test", "notify": 8},
                {"address": "dave@remote.test", "done": True,
                 "orig": "Dave@Remote.test"}],
               SHOW_CONTENT, fullname="Alice", warn=ARRIVAL + 4 * 3600,
               attrs=["client_name=localhost", "origin=smtpd"])


def show(inst, *args, **kw):
    return inst.postern("queue", "show", *args, **kw)


ENVELOPE = (
    f"*** ENVELOPE RECORDS {SHOW_PATH} ***\n"
    "message_size:              91             267               2"
    "               0\n"
    "message_arrival_time: Fri Nov 27 00:22:26 2026\n"
    "warning_message_time: Fri Nov 27 04:22:26 2026\n"
    "sender_fullname: Alice\n"
    "sender: alice@example.org\n"
    "named_attribute: client_name=localhost\n"
    "named_attribute: origin=smtpd\n"
    "named_attribute: dsn_orig_rcpt=rfc822;carol@remote.test\n"
    "named_attribute: notify_flags=8\n"
    "original_recipient: carol@remote.test\n"
    "recipient: carol@remote.test\n"
    "original_recipient: Dave@Remote.test\n"
    "done_recipient: dave@remote.test\n")
HEADERS = ("Received: by mx.example.test\n\tid 4jbDdq6GYFz1bcV8\n"
           "Subject: hi\nFrom: alice\n")
BODY = "\nbody line\n\nlast\n"


def test_show_all(instance):
    fill_show(instance)
    assert len(SHOW_CONTENT) == 91
    res = show(instance, SHOW_ID)
    assert res.stdout == (
        ENVELOPE
        + f"*** MESSAGE CONTENTS {SHOW_PATH} ***\n" + HEADERS + BODY
        + f"*** HEADER EXTRACTED {SHOW_PATH} ***\n"
        + f"*** MESSAGE FILE END {SHOW_PATH} ***\n")
    assert res.stderr == ""


def test_show_sections(instance):
    """-e, -h, -b as postcat: markers only with the envelope, -b starts at
    the empty line that ends the headers."""
    fill_show(instance)
    markers = (f"*** MESSAGE CONTENTS {SHOW_PATH} ***\n"
               f"*** HEADER EXTRACTED {SHOW_PATH} ***\n"
               f"*** MESSAGE FILE END {SHOW_PATH} ***\n")
    assert show(instance, "-e", SHOW_ID).stdout == ENVELOPE + markers
    assert show(instance, "-h", SHOW_ID).stdout == HEADERS
    assert show(instance, "-b", SHOW_ID).stdout == BODY
    assert show(instance, "-hb", SHOW_ID).stdout == HEADERS + BODY
    assert show(instance, "-e", "-h", SHOW_ID).stdout == (
        ENVELOPE + f"*** MESSAGE CONTENTS {SHOW_PATH} ***\n" + HEADERS
        + f"*** HEADER EXTRACTED {SHOW_PATH} ***\n"
        + f"*** MESSAGE FILE END {SHOW_PATH} ***\n")


def test_show_finds_every_queue(instance):
    fill_queue(instance)
    for path in ("maildrop/4jbDdp0000zB", "active/4jbDds6GYFz1bcVB",
                 "incoming/4jbDdt6GYFzBCDFGH", "deferred/4/4jbDdq6GYFz1bcV8",
                 "hold/4jbDdr6GYFz1bcV9"):
        qid = path.rsplit("/", 1)[1]
        out = show(instance, "-e", qid).stdout
        assert out.startswith(f"*** ENVELOPE RECORDS {path} ***\n")
        assert out.endswith(f"*** MESSAGE FILE END {path} ***\n")
    # Several IDs in one call, in the order given.
    out = show(instance, "-e", "4jbDdr6GYFz1bcV9", "4jbDdp0000zB").stdout
    assert out.index("hold/4jbDdr6GYFz1bcV9") < out.index(
        "maildrop/4jbDdp0000zB")


def test_show_errors(instance):
    fill_show(instance)
    res = show(instance, "4jbDdq6GYFz9bcV9", check=False)
    assert res.returncode == 1
    assert res.stderr == ("postern: fatal: open queue file 4jbDdq6GYFz9bcV9: "
                          "No such file or directory\n")
    res = show(instance, "../etc/passwd", check=False)
    assert res.returncode == 1
    assert "fatal: bad mail queue ID: ../etc/passwd" in res.stderr
    res = show(instance, check=False)
    assert res.returncode == 2 and "usage:" in res.stderr
    # A file cut short: what is there, then an error.
    path = os.path.join(instance.queue_dir, SHOW_PATH)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 20)
    res = show(instance, SHOW_ID, check=False)
    assert res.returncode == 1
    assert res.stdout.startswith(ENVELOPE)
    assert "record read error" in res.stderr


# --- the showq service, for users who may not read the queue ----------------------

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (setpriv)")


@needs_root
def test_list_through_showq_as_nobody(instance):
    """nobody cannot read the queue; with the setgid group it reaches
    public/showq and gets the same bytes as root's in-process listing."""
    msgs = fill_queue(instance)
    corrupt_file(instance)
    instance.write_master_cf("showq unix n - n - - showq\n")
    instance.start()
    mine = instance.postern("queue", "list")
    assert mine.stdout == mailq(msgs)
    res = instance.postern_as("nobody", "queue", "list", group="postdrop")
    assert res.stdout == mine.stdout
    # The service's warning reaches the user too.
    assert ("warning: 4jbDdx6GYFz1bcVF: corrupt queue file: truncated record"
            in res.stderr)
    res = instance.postern_as("nobody", "queue", "list", "--json",
                              group="postdrop")
    assert res.stdout == postqueue_j(msgs)
    # It went through the service: nobody cannot read the queue itself.
    res = instance.postern_as("nobody", "queue", "show", "4jbDdp0000zB",
                              check=False)
    assert res.returncode == 1 and "Permission denied" in res.stderr
    assert "showq" in " ".join(
        open(f"/proc/{p}/cmdline").read().replace("\0", " ")
        for p in instance.children())
    # Without the group, public/ is closed: not "the system is down".
    res = instance.postern_as("nobody", "queue", "list", check=False)
    assert res.returncode == 70
    assert ("fatal: Connect to the Postern showq service: Permission denied"
            in res.stderr)


@needs_root
def test_showq_empty_and_down(instance):
    instance.write_master_cf("showq unix n - n - - showq\n")
    pid = instance.start()
    res = instance.postern_as("nobody", "queue", "list", group="postdrop")
    assert res.stdout == "Mail queue is empty\n"
    res = instance.postern_as("nobody", "queue", "list", "-j",
                              group="postdrop")
    assert res.stdout == ""
    instance.postern("stop")
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="master exit")
    res = instance.postern_as("nobody", "queue", "list", group="postdrop",
                              check=False)
    assert res.returncode == 69
    assert ("fatal: Queue report unavailable - mail system is down"
            in res.stderr)


@needs_root
def test_showq_refuses_bad_requests(instance):
    """The service reads one small, strict request; anything else gets an
    error record or a closed connection, never a listing."""
    import socket
    import struct
    instance.postern("check")
    instance.write_master_cf("showq unix n - n - - showq\n")
    instance.start()
    sock_path = os.path.join(instance.queue_dir, "public", "showq")

    def attr(name, value):
        name, value = name.encode(), value.encode()
        return (bytes([len(name)]) + name + struct.pack(">I", len(value))
                + value)

    def ask(payload):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(sock_path)
        s.sendall(struct.pack(">I", len(payload)) + payload)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return data

    ok = ask(attr("request", "list") + attr("format", "json"))
    assert ok.endswith(attr("status", "0"))
    for bad in (attr("request", "delete"),
                attr("request", "list") + attr("format", "xml"),
                attr("request", "list") + attr("extra", "1")):
        reply = ask(bad)
        assert attr("status", "1") in reply and b"data" not in reply
    # Oversized: the connection is closed without a reply.
    assert ask(attr("request", "list" + "x" * 5000)) == b""


@needs_root
def test_defer_reasons_from_the_queue_manager(instance):
    """End to end: sendmail -> pickup -> cleanup -> qmgr, which cannot
    deliver and writes the defer log with dsn_log; the listing shows its
    reason for each recipient, in-process and through showq alike."""
    from conftest import bin_path
    import subprocess
    instance.write_main_cf(relayhost="[127.0.0.1]:9")
    instance.mail_services("qmgr unix n - n 300 1 qmgr\n")
    instance.start()
    res = subprocess.run(
        [bin_path("sendmail"), "-C", instance.config_dir, "-f",
         "alice@example.org", "bob@remote.test", "carol@remote.test"],
        input=b"Subject: e2e\n\nhello\n", capture_output=True,
        env=instance.env(), timeout=30)
    assert res.returncode == 0, res.stderr

    def deferred():
        out = instance.postern("queue", "list", "--json").stdout
        msgs = [json.loads(line) for line in out.splitlines()]
        return (len(msgs) == 1 and msgs[0]["queue_name"] == "deferred"
                and all(r.get("delay_reason") for r in msgs[0]["recipients"])
                and msgs[0])

    msg = wait_for(deferred, timeout=30, what="a deferred message")
    assert msg["sender"] == "alice@example.org"
    assert [r["address"] for r in msg["recipients"]] == [
        "bob@remote.test", "carol@remote.test"]
    why = msg["recipients"][0]["delay_reason"]
    text = instance.postern("queue", "list").stdout
    assert text == mailq([("deferred", msg["queue_id"], msg["message_size"],
                           msg["arrival_time"], "alice@example.org",
                           [(r["address"], r["delay_reason"])
                            for r in msg["recipients"]])])
    assert f"({why})" in text
    res = instance.postern_as("nobody", "queue", "list", group="postdrop")
    assert res.stdout == text
