"""Local submission: sendmail, the set-gid postdrop helper, and pickup.

Until the real cleanup service is wired in, sendmail+postdrop are checked by
reading the maildrop file (a small reader of the postern-queue(5) record
format below), and pickup is checked against the fakecleanup fixture, which
records what it was sent under trace/fakecleanup/ in the queue directory.
"""
import glob
import hashlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import time

import pytest

from conftest import BUILD, bin_path, wait_for

IS_ROOT = os.geteuid() == 0
EX_USAGE, EX_DATAERR, EX_TEMPFAIL = 64, 65, 75
QUEUE_ID = re.compile(r"^[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}z"
                      r"[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+$")
CHUNK_MAX = 64 * 1024


# --- the record format ------------------------------------------------------
def encode(rtype, data=b""):
    if isinstance(data, str):
        data = data.encode()
    n, out = len(data), bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            break
    return rtype.encode() + bytes(out) + data


def records(blob):
    """[(type, data, offset)] of a record stream."""
    out, pos = [], 0
    while pos < len(blob):
        start, rtype = pos, chr(blob[pos])
        pos += 1
        n = shift = 0
        while True:
            b = blob[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append((rtype, blob[pos:pos + n], start))
        pos += n
    assert pos == len(blob), "truncated record"
    return out


def read_maildrop(path):
    """The maildrop file as a dict; asserts the record order and the size
    record, the way pickup checks them."""
    with open(path, "rb") as f:
        blob = f.read()
    recs = records(blob)
    types = "".join(r[0] for r in recs)
    assert re.fullmatch(r"CTF?SA+([on]*R)+MB*XE", types), types
    md = {"attrs": {}, "rcpts": [], "fullname": None, "types": types}
    content = bytearray()
    pending = {}
    for rtype, data, offset in recs:
        if rtype == "C":
            md["size"] = [int(x) for x in data.split()]
            assert len(data) == 63
        elif rtype == "T":
            md["time"] = [int(x) for x in data.split()]
        elif rtype == "F":
            md["fullname"] = data.decode(errors="surrogateescape")
        elif rtype == "S":
            md["sender"] = data.decode(errors="surrogateescape")
        elif rtype == "A":
            k, v = data.decode(errors="surrogateescape").split("=", 1)
            md["attrs"][k] = v
        elif rtype in "on":
            pending[rtype] = data.decode(errors="surrogateescape")
        elif rtype == "R":
            md["rcpts"].append(data.decode(errors="surrogateescape"))
            md.setdefault("dsn", []).append(dict(pending))
            pending = {}
        elif rtype == "M":
            md["content_offset"] = offset
        elif rtype == "B":
            assert 0 < len(data) <= CHUNK_MAX
            content += data
    md["content"] = bytes(content)
    assert md["size"] == [len(content), md["content_offset"],
                          len(md["rcpts"]), 0]
    return md


def maildrop_file(sender="alice@example.org", rcpts=("bob@example.net",),
                  content=b"Subject: x\n\nbody\n", uid=0, attrs=(),
                  fullname=None, size=None, dsn=None, extra=b""):
    """A maildrop file as postdrop would store it (or, with the arguments,
    a broken one)."""
    head = b"".join([encode("T", "1795738946 1")]
                    + ([encode("F", fullname)] if fullname else [])
                    + [encode("S", sender), encode("A", f"local_uid={uid}"),
                       encode("A", "origin=sendmail")]
                    + [encode("A", a) for a in attrs])
    rrecs = b""
    for i, r in enumerate(rcpts):
        for k, v in (dsn[i] if dsn else {}).items():
            rrecs += encode(k, v)
        rrecs += encode("R", r)
    offset = 2 + 63 + len(head) + len(rrecs)
    body = b"".join(encode("B", content[i:i + CHUNK_MAX])
                    for i in range(0, len(content), CHUNK_MAX))
    sizes = size or (len(content), offset, len(rcpts), 0)
    size_rec = " ".join("%15d" % v for v in sizes)
    return (encode("C", size_rec) + head + rrecs + encode("M") + body
            + encode("X") + encode("E") + extra)


# --- helpers ------------------------------------------------------------------
def sendmail(inst, *args, input=b"", user=None, env=None, prog="sendmail"):
    cmd = [bin_path("sendmail"), "-C", inst.config_dir, *args]
    if prog != "sendmail":
        link = os.path.join(inst.root, prog)
        if not os.path.exists(link):
            os.symlink(bin_path("sendmail"), link)
        cmd[0] = link
    if user:
        pw = pwd.getpwnam(user)
        cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
               "--clear-groups", "--"] + cmd
    return subprocess.run(cmd, input=input, capture_output=True,
                          env=inst.env(env), timeout=120)


def maildrop(inst):
    d = os.path.join(inst.queue_dir, "maildrop")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def corrupt(inst):
    return sorted(os.listdir(os.path.join(inst.queue_dir, "corrupt")))


def only_maildrop_file(inst):
    names = maildrop(inst)
    assert len(names) == 1, names
    assert QUEUE_ID.match(names[0]), names
    path = os.path.join(inst.queue_dir, "maildrop", names[0])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o744
    return read_maildrop(path)


def fc_dir(inst):
    return os.path.join(inst.queue_dir, "trace", "fakecleanup")


def fc_messages(inst):
    """{queue_id: (env lines, data bytes)} that fakecleanup accepted."""
    out = {}
    for env in glob.glob(os.path.join(fc_dir(inst), "*.env")):
        qid = os.path.basename(env)[:-4]
        with open(env) as f:
            lines = f.read().splitlines()
        with open(env[:-4] + ".data", "rb") as f:
            out[qid] = (lines, f.read())
    return out


def fc_wait(inst, count=1, timeout=20):
    return wait_for(lambda: len(fc_messages(inst)) >= count and
                    fc_messages(inst), timeout=timeout,
                    what=f"{count} message(s) at fakecleanup")


def fc_errors(inst):
    try:
        with open(os.path.join(inst.queue_dir, "trace",
                               "fakecleanup.errors")) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def fc_mode(inst, text):
    path = os.path.join(inst.queue_dir, "trace", "fakecleanup.mode")
    if text is None:
        if os.path.exists(path):
            os.unlink(path)
        return
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o644)


def setup_queue(inst, **params):
    if params:
        inst.write_main_cf(**params)
    inst.postern("check")


def start_pickup(inst, wakeup=60, **params):
    if params:
        inst.write_main_cf(**params)
    inst.write_master_cf(f"pickup unix n - n {wakeup} 1 pickup\n"
                         "cleanup unix n - n - 0 fakecleanup\n")
    inst.start()


def pickup_pid(inst):
    for pid in inst.children():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"pickup" in f.read().split(b"\0")[0]:
                    return pid
        except FileNotFoundError:
            pass
    return None


MESSAGE = (b"From: Alice <alice@example.org>\n"
           b"To: Bob <bob@example.net>\n"
           b"Subject: hello\n"
           b"\n"
           b"Hello Bob.\n")


# --- sendmail + postdrop: the maildrop file ------------------------------------
def test_recipients_from_arguments(instance):
    setup_queue(instance)
    res = sendmail(instance, "-f", "alice@example.org", "bob@example.net",
                   "Carol <carol@example.com>, dave", input=MESSAGE)
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"" and res.stderr == b""
    md = only_maildrop_file(instance)
    assert md["sender"] == "alice@example.org"
    assert md["rcpts"] == ["bob@example.net", "carol@example.com", "dave"]
    assert md["attrs"] == {"local_uid": str(os.getuid()),
                           "origin": "sendmail"}
    assert md["content"] == MESSAGE
    assert abs(md["time"][0] - time.time()) < 60


def test_t_extracts_recipients_and_removes_bcc(instance):
    setup_queue(instance)
    msg = (b"From: alice@example.org\n"
           b"To: Bob <bob@example.net>, \"Smith, C\" <carol@example.com>\n"
           b"Cc: undisclosed-recipients:;\n"
           b"cc: team: dave@example.com, erin@example.com;\n"
           b"Bcc: frank@example.com,\n"
           b"\tgrace@example.com (Grace)\n"
           b"Subject: -t\n"
           b"\n"
           b"To: not-a-header@example.com\n")
    res = sendmail(instance, "-t", "extra@example.org", input=msg)
    assert res.returncode == 0, res.stderr
    md = only_maildrop_file(instance)
    assert md["rcpts"] == ["extra@example.org", "bob@example.net",
                           "carol@example.com", "dave@example.com",
                           "erin@example.com", "frank@example.com",
                           "grace@example.com"]
    assert b"Bcc" not in md["content"] and b"grace" not in md["content"]
    assert md["content"] == msg.replace(
        b"Bcc: frank@example.com,\n\tgrace@example.com (Grace)\n", b"")


def test_t_prefers_resent_headers(instance):
    setup_queue(instance)
    msg = (b"To: old@example.net\n"
           b"Resent-To: new@example.net\n"
           b"Resent-Bcc: hidden@example.net\n"
           b"\nbody\n")
    res = sendmail(instance, "-t", input=msg)
    assert res.returncode == 0, res.stderr
    md = only_maildrop_file(instance)
    assert md["rcpts"] == ["new@example.net", "hidden@example.net"]
    assert b"hidden" not in md["content"]


def test_t_without_recipients_is_refused(instance):
    setup_queue(instance)
    res = sendmail(instance, "-t", input=b"Subject: none\n\nbody\n")
    assert res.returncode == EX_USAGE
    assert b"No recipient addresses found in message header" in res.stderr
    assert maildrop(instance) == []


def test_sender_and_full_name(instance):
    setup_queue(instance)
    login = pwd.getpwuid(os.getuid()).pw_name
    cases = [
        (["-f", ""], "", None),
        (["-f", "<>"], "", None),
        (["-r", "Joe Q <joe@example.org>"], "joe@example.org", None),
        (["-f", "joe@example.org", "-F", "Joe Q. User"], "joe@example.org",
         "Joe Q. User"),
        ([], login, None),
    ]
    for args, sender, fullname in cases:
        res = sendmail(instance, *args, "bob@example.net", input=MESSAGE,
                       env={"NAME": ""})
        assert res.returncode == 0, res.stderr
        md = only_maildrop_file(instance)
        assert md["sender"] == sender, args
        if fullname:
            assert md["fullname"] == fullname
        os.unlink(os.path.join(instance.queue_dir, "maildrop",
                               maildrop(instance)[0]))


def test_full_name_control_characters_refused(instance):
    setup_queue(instance)
    res = sendmail(instance, "-F", "Evil\nBcc: x@example.com", "bob@x",
                   input=MESSAGE)
    assert res.returncode == EX_USAGE
    assert maildrop(instance) == []


def test_dsn_options(instance):
    setup_queue(instance)
    res = sendmail(instance, "-N", "success,delay", "-R", "hdrs", "-V",
                   "env-id-1", "bob@example.net", "carol@example.net",
                   input=MESSAGE)
    assert res.returncode == 0, res.stderr
    md = only_maildrop_file(instance)
    assert md["attrs"]["dsn_envid"] == "env-id-1"
    assert md["attrs"]["dsn_ret"] == "hdrs"
    assert md["dsn"] == [{"n": "6"}, {"n": "6"}]


def test_lone_dot(instance):
    setup_queue(instance)
    text = b"Subject: dots\n\nline 1\n..stays\n.\nafter the dot\n"
    for args, content in (([], b"Subject: dots\n\nline 1\n..stays\n"),
                          (["-i"], text), (["-oi"], text)):
        res = sendmail(instance, *args, "bob@example.net", input=text)
        assert res.returncode == 0, res.stderr
        assert only_maildrop_file(instance)["content"] == content, args
        os.unlink(os.path.join(instance.queue_dir, "maildrop",
                               maildrop(instance)[0]))
    # ".\r\n" and a final "." without a newline end input too.
    for text in (b"a\r\n.\r\nb\r\n", b"a\n."):
        res = sendmail(instance, "bob@example.net", input=text)
        assert res.returncode == 0, res.stderr
        assert only_maildrop_file(instance)["content"] == b"a\n"
        os.unlink(os.path.join(instance.queue_dir, "maildrop",
                               maildrop(instance)[0]))


def test_crlf_8bit_and_line_ends(instance):
    setup_queue(instance)
    eight = bytes(range(0x80, 0x100))
    raw = (b"From alice@example.org Fri Nov 27 00:22:26 2026\n"
           b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
           b"\r\n"
           b"caf\xc3\xa9 \xe2\x82\xac\r\n"
           b"bare\rcarriage return\n"
           + eight + b"\r\n"
           b"no newline at the end")
    res = sendmail(instance, "-i", "bob@example.net", input=raw)
    assert res.returncode == 0, res.stderr
    assert only_maildrop_file(instance)["content"] == (
        b"Subject: =?utf-8?q?caf=C3=A9?=\n"
        b"\n"
        b"caf\xc3\xa9 \xe2\x82\xac\n"
        b"bare\rcarriage return\n"
        + eight + b"\n"
        b"no newline at the end\n")


def test_long_lines_and_split_crlf(instance):
    """Lines longer than sendmail's read size, with CRLF right at a cut."""
    setup_queue(instance)
    cut = 16384
    raw = (b"Subject: long\r\n\r\n" + b"x" * (cut - 1) + b"\r\n"
           + b"y" * (3 * cut + 5) + b"\r\n" + b"z\r\r\n")
    res = sendmail(instance, "bob@example.net", input=raw)
    assert res.returncode == 0, res.stderr
    assert only_maildrop_file(instance)["content"] == raw.replace(
        b"\r\n", b"\n")


def test_usage_errors(instance):
    setup_queue(instance)
    for args, text in ((["-Z", "bob@x"], b"usage:"),
                       (["-bv", "bob@x"], b"unsupported: -bv"),
                       (["-N", "sometimes", "bob@x"], b"bad -N value"),
                       (["-R", "most", "bob@x"], b"bad -R value"),
                       (["-V", "bad id", "bob@x"], b"bad -V value"),
                       (["-XV", "bob@x"], b"unsupported: -XV"),
                       (["-qRexample.com"], b"unsupported: -qR"),
                       (["-bp", "bob@x"], b"requires no recipient"),
                       (["-bs", "-t"], b"only in delivery mode"),
                       ([], b"Recipient addresses must be specified")):
        res = sendmail(instance, *args, input=MESSAGE)
        assert res.returncode == EX_USAGE, (args, res.stderr)
        assert text in res.stderr, (args, res.stderr)
    assert maildrop(instance) == []


def test_ignored_options(instance):
    setup_queue(instance)
    res = sendmail(instance, "-oem", "-odb", "-om", "-B", "8BITMIME", "-U",
                   "-h", "10", "-q30m", input=MESSAGE)
    assert res.returncode == 0, res.stderr
    res = sendmail(instance, "-oem", "-m", "-U", "-G", "bob@example.net",
                   input=MESSAGE)
    assert res.returncode == 0, res.stderr
    assert only_maildrop_file(instance)["rcpts"] == ["bob@example.net"]


def test_message_size_limit(instance):
    setup_queue(instance, message_size_limit="1000")
    res = sendmail(instance, "bob@example.net",
                   input=b"Subject: big\n\n" + b"x" * 2000 + b"\n")
    assert res.returncode == EX_DATAERR, res.stderr
    assert b"message file too big" in res.stderr
    assert maildrop(instance) == []


def test_missing_maildrop_is_a_temporary_failure(instance):
    res = sendmail(instance, "bob@example.net", input=MESSAGE)
    assert res.returncode == EX_TEMPFAIL
    assert b"maildrop" in res.stderr


def run_postdrop(inst, blob, user=None):
    cmd = [bin_path("postdrop"), "-c", inst.config_dir]
    if user:
        pw = pwd.getpwnam(user)
        cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
               "--clear-groups", "--"] + cmd
    return subprocess.run(cmd, input=blob, capture_output=True,
                          env=inst.env(), timeout=60)


def test_postdrop_refuses_hostile_input(instance):
    setup_queue(instance)
    uid = os.getuid()
    good = maildrop_file(uid=uid)
    res = run_postdrop(instance, good)
    assert res.returncode == 0, res.stderr
    qid = res.stdout.decode().strip()
    assert QUEUE_ID.match(qid) and maildrop(instance) == [qid]
    os.unlink(os.path.join(instance.queue_dir, "maildrop", qid))
    bad = {
        "garbage": b"\x00\xff" * 100,
        "empty": b"",
        "truncated": good[:-5],
        "no end": good[:-2],
        "after end": good + encode("E"),
        "wrong uid": maildrop_file(uid=uid + 1),
        "unknown attribute": maildrop_file(uid=uid, attrs=["rewrite=x"]),
        "repeated attribute": maildrop_file(uid=uid, attrs=["origin=sendmail"]),
        "control in sender": maildrop_file(uid=uid, sender="a\nb@x"),
        "NUL in recipient": maildrop_file(uid=uid, rcpts=["a\0b@x"]),
        "no recipient": maildrop_file(uid=uid, rcpts=()),
        "empty recipient": maildrop_file(uid=uid, rcpts=[""]),
        "bad notify": maildrop_file(uid=uid, dsn=[{"n": "9"}]),
        "bad orcpt": maildrop_file(uid=uid, dsn=[{"o": "no-semicolon"}]),
        "no newline at end": maildrop_file(uid=uid, content=b"x"),
        "huge length": encode("C", " " * 63)[:1] + b"\xff\xff\xff\xff\x0f",
        "long envelope": maildrop_file(uid=uid, sender="a" * 5000),
        "bad time": maildrop_file(uid=uid).replace(
            encode("T", "1795738946 1"), encode("T", "17957 -1 x")),
        "unknown type": maildrop_file(uid=uid).replace(
            encode("M"), encode("Q", "x") + encode("M")),
    }
    for what, blob in bad.items():
        res = run_postdrop(instance, blob)
        assert res.returncode == EX_DATAERR, (what, res.stderr)
        assert res.stdout == b"", what
        assert maildrop(instance) == [], what


# --- pickup -----------------------------------------------------------------------
def test_pickup_hands_message_to_cleanup(instance):
    start_pickup(instance)
    res = sendmail(instance, "-f", "alice@example.org", "-F", "Alice A.",
                   "-N", "failure", "-R", "full", "-V", "id42",
                   "bob@example.net", "carol@example.net", input=MESSAGE)
    assert res.returncode == 0, res.stderr
    msgs = fc_wait(instance)
    [(qid, (env, data))] = msgs.items()
    assert data == MESSAGE
    assert env == ["origin=pickup", "sender=alice@example.org",
                   "sender_fullname=Alice A.", "dsn_envid=id42",
                   "dsn_ret=full", f"local_uid={os.getuid()}",
                   "rcpt=bob@example.net notify=8",
                   "rcpt=carol@example.net notify=8",
                   f"chunks=1 max_chunk={len(MESSAGE)} size={len(MESSAGE)}"]
    wait_for(lambda: maildrop(instance) == [], what="maildrop empty")
    wait_for(lambda: "pickup[" in instance.log() and
             f": {qid}: uid={os.getuid()} from=<alice@example.org>"
             in instance.log(), what="pickup log line")
    assert fc_errors(instance) == ""


def test_pickup_forwards_orcpt_and_null_sender(instance):
    start_pickup(instance, wakeup=1)
    path = os.path.join(instance.queue_dir, "maildrop", "tmp.crafted")
    with open(path, "wb") as f:
        f.write(maildrop_file(sender="", uid=os.getuid(),
                              rcpts=["bob@example.net", "carol@example.net"],
                              dsn=[{"o": "rfc822;Bob@Example.NET", "n": "1"},
                                   {}]))
    os.chmod(path, 0o744)
    os.rename(path, os.path.join(instance.queue_dir, "maildrop",
                                 "4jbDdq6GYFz1bcV8"))
    [(env, data)] = fc_wait(instance).values()
    assert "sender=" in env
    assert "rcpt=bob@example.net orcpt=rfc822;Bob@Example.NET notify=1" in env
    assert "rcpt=carol@example.net" in env


def test_mail_waits_while_master_is_down(instance):
    setup_queue(instance)
    res = sendmail(instance, "-f", "alice@example.org", "bob@example.net",
                   input=MESSAGE)
    assert res.returncode == 0, res.stderr
    assert len(maildrop(instance)) == 1
    start_pickup(instance)
    [(env, data)] = fc_wait(instance).values()
    assert data == MESSAGE
    wait_for(lambda: maildrop(instance) == [], what="maildrop empty")


def test_corrupt_files_go_to_corrupt(instance):
    start_pickup(instance, wakeup=1)
    wait_for(lambda: pickup_pid(instance), what="pickup process")
    pid = pickup_pid(instance)
    uid = os.getuid()
    bad = {
        "4jbDdq6GYFz1bcV1": b"\x00garbage",
        "4jbDdq6GYFz1bcV2": maildrop_file(uid=uid, size=(1, 2, 3, 0)),
        "4jbDdq6GYFz1bcV3": maildrop_file(uid=uid)[:-1],
        "4jbDdq6GYFz1bcV4": maildrop_file(uid=uid + 1),
        "junk-name": maildrop_file(uid=uid),
    }
    for name, blob in bad.items():
        path = os.path.join(instance.queue_dir, "maildrop", name)
        with open(path, "wb") as f:
            f.write(blob)
        os.chmod(path, 0o744)
    res = sendmail(instance, "bob@example.net", input=MESSAGE)
    assert res.returncode == 0, res.stderr
    fc_wait(instance)
    wait_for(lambda: corrupt(instance) == sorted(bad), what="corrupt files")
    assert maildrop(instance) == []
    log = instance.log()
    for name in bad:
        if name != "junk-name":
            assert f"maildrop/{name}: uid={uid}: corrupt maildrop file" in log
    assert "size record does not match" in log
    assert "local_uid does not name the submitting user" in log
    assert pickup_pid(instance) == pid
    assert "fatal" not in log and "panic" not in log


def test_tempfail_keeps_file_and_reject_moves_it(instance):
    start_pickup(instance, wakeup=1)
    fc_mode(instance, "end 451")
    res = sendmail(instance, "bob@example.net", input=MESSAGE)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: "will try again" in instance.log(), what="deferral")
    assert len(maildrop(instance)) == 1 and fc_messages(instance) == {}
    fc_mode(instance, None)
    fc_wait(instance)
    wait_for(lambda: maildrop(instance) == [], what="maildrop empty")

    fc_mode(instance, "open 554")
    res = sendmail(instance, "-f", "carol@example.org", "bob@example.net",
                   input=MESSAGE)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: len(corrupt(instance)) == 1, what="rejected file")
    assert maildrop(instance) == []
    assert "from=<carol@example.org>: message rejected: 554" in instance.log()


def test_success_without_queue_id_is_not_retried(instance):
    """Once cleanup said 0 at the end the message is queued: a malformed
    reply earns a warning, not a second copy."""
    start_pickup(instance, wakeup=1)
    fc_mode(instance, "noid")
    res = sendmail(instance, "bob@example.net", input=MESSAGE)
    assert res.returncode == 0, res.stderr
    fc_wait(instance)
    wait_for(lambda: maildrop(instance) == [], what="maildrop empty")
    assert "bad queue_id in cleanup reply to end" in instance.log()
    time.sleep(2.5)
    assert len(fc_messages(instance)) == 1


def test_cleanup_down_keeps_file(instance):
    instance.write_master_cf("pickup unix n - n 1 1 pickup\n")
    instance.start()
    res = sendmail(instance, "bob@example.net", input=MESSAGE)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: "cannot hand the message to cleanup" in instance.log(),
             what="warning")
    assert len(maildrop(instance)) == 1


def vm_hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def run_measured(inst, payload, *args):
    """Run sendmail on payload; its peak RSS just before end of input."""
    proc = subprocess.Popen([bin_path("sendmail"), "-C", inst.config_dir,
                             *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=inst.env())
    view = memoryview(payload)
    for i in range(0, len(view), 1 << 20):
        proc.stdin.write(view[i:i + (1 << 20)])
    proc.stdin.flush()
    time.sleep(0.2)
    hwm = vm_hwm(proc.pid)
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    return hwm


def test_20mb_message_is_streamed(instance):
    start_pickup(instance, message_size_limit="0")
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\n"
    body = line * (20 * 1024 * 1024 // len(line))
    payload = b"Subject: big\n\n" + body
    base = run_measured(instance, b"Subject: small\n\nx\n", "bob@x")
    fc_wait(instance)
    hwm = run_measured(instance, payload, "bob@x")
    sanitized = "asan" in BUILD
    assert hwm < base + 8 * 1024 * 1024, (base, hwm)
    if not sanitized:
        assert hwm < 20 * 1024 * 1024, hwm
    msgs = fc_wait(instance, 2, timeout=60)
    big = [m for m in msgs.values() if len(m[1]) > 1000]
    [(env, data)] = big
    assert hashlib.sha256(data).digest() == hashlib.sha256(payload).digest()
    assert f"max_chunk={CHUNK_MAX}" in env[-1]


# --- modes that run other programs ---------------------------------------------------
def fake_program(dirname, name):
    os.makedirs(dirname, exist_ok=True)
    path = os.path.join(dirname, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho \"$0 $*\"\n")
    os.chmod(path, 0o755)
    return path


def test_mailq_bp_and_bs_run_their_programs(instance):
    fakes = os.path.join(instance.root, "fakes")
    postern = fake_program(fakes, "postern")
    smtpd = fake_program(fakes, "smtpd")
    instance.write_main_cf(command_directory=fakes, daemon_directory=fakes)
    cfg = instance.config_dir
    for prog, args in (("sendmail", ["-bp"]), ("mailq", []),
                       ("mailq", ["-v"])):
        res = sendmail(instance, *args, prog=prog)
        assert res.returncode == 0, res.stderr
        want = f"{postern} -c {cfg}{' -v' if '-v' in args else ''} queue list"
        assert res.stdout.decode().strip() == want
    res = sendmail(instance, "-bs")
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().strip() == f"{smtpd} -S -c {cfg}"


def test_q_wakes_the_queue_manager(instance):
    instance.write_master_cf("qmgr unix n - n - 1 testsvc event\n")
    instance.start()
    res = sendmail(instance, "-q")
    assert res.returncode == 0, res.stderr
    trace = os.path.join(instance.queue_dir, "trace", "testsvc.triggers")
    wait_for(lambda: os.path.exists(trace) and "W" in open(trace).read(),
             what="qmgr trigger")


# --- an unprivileged user and the set-gid postdrop ------------------------------------
@pytest.mark.skipif(not IS_ROOT, reason="needs root to set up set-gid postdrop")
def test_nobody_submits_through_setgid_postdrop(instance):
    start_pickup(instance)
    # A real set-gid copy of postdrop in the instance's daemon_directory.
    target = os.path.join(instance.daemon_dir, "postdrop")
    os.unlink(target)
    shutil.copy(bin_path("postdrop"), target)
    os.chown(target, 0, pwd.getpwnam("root").pw_gid)
    shutil.chown(target, group="postdrop")
    os.chmod(target, 0o2755)
    res = sendmail(instance, "bob@example.net", input=MESSAGE, user="nobody")
    assert res.returncode == 0, res.stderr
    [(env, data)] = fc_wait(instance).values()
    assert "sender=nobody" in env and "local_uid=65534" in env
    assert data == MESSAGE
    wait_for(lambda: "uid=65534 from=<nobody>" in instance.log(),
             what="pickup log line")

    # Without the set-gid bit nobody cannot write maildrop/.
    os.chmod(target, 0o755)
    res = sendmail(instance, "bob@example.net", input=MESSAGE, user="nobody")
    assert res.returncode == EX_TEMPFAIL
    assert b"Permission denied" in res.stderr

    # A configuration directory nobody controls earns no privilege.
    os.chmod(target, 0o2755)
    shutil.chown(target, group="postdrop")
    os.chmod(target, 0o2755)
    own = os.path.join(instance.root, "nobody-etc")
    shutil.copytree(instance.config_dir, own)
    for name in [own] + [os.path.join(own, n) for n in os.listdir(own)]:
        os.chown(name, 65534, 65534)
    res = sendmail(instance, "-C", own, "-v", "bob@example.net",
                   input=MESSAGE, user="nobody")
    assert res.returncode == EX_TEMPFAIL, res.stderr
    assert b"not a trusted configuration directory" in res.stderr
    assert len(fc_messages(instance)) == 1
    assert [n for n in maildrop(instance) if not n.startswith("tmp.")] == []
