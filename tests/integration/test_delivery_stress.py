"""Delivery under stress: crash safety and a big queue.

test_kill_qmgr_and_local_under_load: Python senders with unique
Message-IDs feed virtual mailboxes while qmgr and local processes are
killed with SIGKILL at random moments; master restarts them.  After
recovery every message that got a 250 reply is in its Maildir (none
missing); duplicates (possible only between a delivery and its done mark)
are counted, reported and must stay few.

test_ten_thousand_messages: 10,000 messages queued by smtp-source while
master.cf has no qmgr, then qmgr is added and master reloaded: all are
delivered exactly once, while qmgr's VmRSS stays bounded and active/ never
holds more than qmgr_message_active_limit files.

Both print their numbers to the terminal (even under -q).
"""
import collections
import os
import random
import re
import signal
import smtplib
import subprocess
import threading
import time

from conftest import wait_for
from test_delivery_common import (VDOMAIN, flush, maildir_files, queue_ids,
                                  read, read_log, service_pids, start_system,
                                  vm_rss_kb)

MSGID = re.compile(rb"^Message-ID: <([^>]+)>", re.M | re.I)


def say(capsys, text):
    """Print to the terminal, past pytest's capture."""
    with capsys.disabled():
        print("\n" + text, flush=True)


class Sender(threading.Thread):
    """Sends messages with unique Message-IDs over one SMTP connection at a
    time; records the IDs that got 250 (and to whom)."""

    def __init__(self, port, name, users, stop):
        super().__init__(daemon=True)
        self.port = port
        self.tag = name
        self.users = users
        self.stop = stop
        self.acked = {}                 # Message-ID -> user
        self.failed = 0
        self.errors = []

    def run(self):
        n = 0
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", self.port, timeout=60)
                    conn.ehlo("client.example.org")
                user = self.users[n % len(self.users)]
                mid = f"crash-{self.tag}-{n}@test.example"
                body = (f"From: load@{VDOMAIN}\r\nTo: {user}@{VDOMAIN}\r\n"
                        f"Subject: load {n}\r\nMessage-ID: <{mid}>\r\n\r\n"
                        f"message {n} of {self.tag}\r\n" + "x" * 300
                        + "\r\n").encode()
                n += 1
                conn.mail(f"load@{VDOMAIN}")
                code, _ = conn.rcpt(f"{user}@{VDOMAIN}")
                if code != 250:
                    self.failed += 1
                    conn.rset()
                    continue
                code, _ = conn.data(body)
                if code == 250:
                    self.acked[mid] = user
                else:
                    self.failed += 1
            except (smtplib.SMTPException, OSError) as e:
                self.failed += 1
                self.errors.append(repr(e))
                try:
                    conn.close()
                except Exception:
                    pass
                conn = None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass


def delivered_ids(instance, users):
    """Counter of Message-IDs over the users' Maildirs."""
    count = collections.Counter()
    for user in users:
        for path in maildir_files(instance, user):
            try:
                data = read(path)
            except FileNotFoundError:
                continue
            head = data.split(b"\n\n", 1)[0]
            m = MSGID.search(head)
            count[m.group(1).decode() if m else f"?{path}"] += 1
    return count


def test_kill_qmgr_and_local_under_load(instance, capsys):
    users = ("u0", "u1", "u2", "u3", "u4")
    conc = 10
    port = start_system(instance, users=users,
                        minimal_backoff_time="1s", maximal_backoff_time="1s",
                        queue_run_delay="1s",
                        default_destination_concurrency_limit=str(conc))
    stop = threading.Event()
    senders = [Sender(port, f"s{i}", users, stop) for i in range(4)]
    for s in senders:
        s.start()
    rng = random.Random(os.getpid())
    kills = collections.Counter()
    deadline = time.monotonic() + 20
    try:
        # Let work build up, then kill at random moments.
        time.sleep(1.5)
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.4, 1.6))
            which = rng.choice(("qmgr", "local", "local"))
            if kills["qmgr"] < 2 and time.monotonic() > deadline - 8:
                which = "qmgr"          # at least two of each
            if kills["local"] < 2 and time.monotonic() > deadline - 5:
                which = "local"
            pids = service_pids(instance, which)
            if not pids:
                continue
            pid = rng.choice(pids)
            try:
                os.kill(pid, signal.SIGKILL)
                kills[which] += 1
            except ProcessLookupError:
                pass
    finally:
        stop.set()
        for s in senders:
            s.join(timeout=90)
    acked = {}
    for s in senders:
        acked.update(s.acked)
    failed = sum(s.failed for s in senders)
    assert kills["qmgr"] >= 2 and kills["local"] >= 2, kills
    assert len(acked) > 200, (len(acked), [s.errors[:3] for s in senders])

    # Recovery: master restarts what died; flush until all is delivered.
    def recovered():
        if not queue_ids(instance):
            ids = delivered_ids(instance, users)
            if all(mid in ids for mid in acked):
                return ids
        flush(instance)
        return None
    ids = wait_for(recovered, timeout=180, interval=2,
                   what="every acknowledged message delivered, queue empty")
    missing = sorted(mid for mid in acked if mid not in ids)
    dups = {mid: n for mid, n in ids.items() if n > 1}
    extra = sum(n - 1 for n in dups.values())
    unacked = sorted(mid for mid in ids if mid not in acked)
    log = read_log(instance)
    say(capsys, f"crash safety: kills qmgr={kills['qmgr']} "
        f"local={kills['local']}; acknowledged={len(acked)} "
        f"(not acknowledged: {failed}); delivered distinct={len(ids)} "
        f"files={sum(ids.values())}; missing={len(missing)}; "
        f"duplicated messages={len(dups)} extra copies={extra}; "
        f"delivered without 250={len(unacked)}")
    assert not missing, missing[:20]
    # Each in the right mailbox.
    for user in users:
        for path in maildir_files(instance, user):
            m = MSGID.search(read(path).split(b"\n\n", 1)[0])
            if m and m.group(1).decode() in acked:
                assert acked[m.group(1).decode()] == user, path
    # A duplicate needs a kill between a delivery and its done mark: at
    # most the deliveries in flight at each kill.
    limit = conc * kills["qmgr"] + 2 * kills["local"]
    assert extra <= limit, (extra, limit, sorted(dups)[:20])
    assert "panic:" not in log
    assert not [f for f in os.listdir(os.path.join(instance.queue_dir,
                                                   "corrupt"))]


QUEUE_FILE = re.compile(r"/queue/(?:incoming|active|deferred|hold)/\w+$")


def queue_fds(pid):
    """How many queue files pid has open."""
    n = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for fd in fds:
        try:
            if QUEUE_FILE.search(os.readlink(f"/proc/{pid}/fd/{fd}")):
                n += 1
        except OSError:
            pass
    return n


def test_ten_thousand_messages(instance, capsys):
    total = 10000
    limit = 1000
    port = start_system(instance, qmgr=False,
                        qmgr_message_active_limit=str(limit))
    t0 = time.monotonic()
    res = subprocess.run(
        ["smtp-source", "-s", "20", "-m", str(total), "-l", "200",
         "-f", f"alice@{VDOMAIN}", "-t", f"bob@{VDOMAIN}",
         "-M", "client.example.org", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    queued = time.monotonic() - t0
    wait_for(lambda: len(queue_ids(instance)) == total, timeout=30,
             what=f"{total} queue files")
    assert maildir_files(instance, "bob") == []
    assert queue_ids(instance, ("incoming",)).keys() == \
        queue_ids(instance).keys()

    # Delivery starts: qmgr joins master.cf.
    instance.all_services()
    t1 = time.monotonic()
    instance.postern("reload")
    peak_rss = 0
    peak_active = 0
    peak_fds = 0
    samples = 0
    pids = set()
    active_dir = os.path.join(instance.queue_dir, "active")
    while True:
        for pid in service_pids(instance, "qmgr"):
            pids.add(pid)
            rss = vm_rss_kb(pid)
            if rss:
                peak_rss = max(peak_rss, rss)
                samples += 1
        peak_active = max(peak_active, len(os.listdir(active_dir)))
        for pid in pids:
            peak_fds = max(peak_fds, queue_fds(pid))
        delivered = len(maildir_files(instance, "bob"))
        if delivered >= total and not queue_ids(instance):
            break
        assert time.monotonic() - t1 < 600, \
            f"only {delivered} of {total} delivered after 600 s"
        time.sleep(0.1)
    took = time.monotonic() - t1
    say(capsys, f"10,000 messages: queued in {queued:.1f} s, delivered in "
        f"{took:.1f} s; qmgr peak VmRSS {peak_rss} kB ({samples} samples); "
        f"at most {peak_fds} queue files open in qmgr, {peak_active} files "
        f"seen in active/ (qmgr_message_active_limit {limit})")
    assert samples > 0
    assert len(pids) == 1, f"qmgr restarted: {sorted(pids)}"
    assert peak_rss < 200 * 1024, peak_rss
    # One open file per message in memory.  A directory listing made while
    # files are renamed in and out may see a few twice: some slack there.
    assert 0 < peak_fds <= limit, peak_fds
    assert peak_active <= limit * 1.05, peak_active

    # Exactly once each: one "sent" line per queue ID, 10,000 files.
    assert len(maildir_files(instance, "bob")) == total
    sent = collections.Counter(re.findall(
        r"postern/virtual\[\d+\]: (\w+): to=<bob@virt\.test>, .*"
        r"status=sent", read_log(instance)))
    assert len(sent) == total and set(sent.values()) == {1}
    removed = re.findall(r"postern/qmgr\[\d+\]: (\w+): removed$",
                         read_log(instance), re.M)
    assert len(set(removed)) == total == len(removed)
