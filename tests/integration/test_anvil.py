"""anvil: connection counts and rates across client processes; events
(rate only, not tied to a client connection) and read-only lookups.

Each Anvilc is one tests/fixtures/anvilc process standing in for an smtpd
process: it holds one connection to private/anvil through
lib/mail/anvil_clnt.  RawClient speaks the postern-ipc(7) records itself,
to send what no well-behaved client would.
"""
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import BUILD, pid_alive, wait_for

ANVILC = os.path.join(BUILD, "tests", "libexec", "anvilc")
MASTER_CF = "anvil unix - - n - 1 anvil\n"


class Anvilc:
    """One anvilc process (one "smtpd") with its anvil handle."""

    def __init__(self, inst):
        self.proc = subprocess.Popen(
            [ANVILC], cwd=inst.queue_dir, env=inst.env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            bufsize=1)
        inst.track(self.proc.pid)
        self.first = self.proc.stdout.readline().strip()

    def cmd(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def connect(self, ident):
        """(count, rate) of a connect; fails the test on an error."""
        reply = self.cmd(f"connect {ident}")
        assert reply.startswith("ok "), reply
        kv = dict(item.split("=") for item in reply.split()[1:])
        return int(kv["count"]), int(kv["rate"])

    def disconnect(self, ident):
        assert self.cmd(f"disconnect {ident}") == "ok"

    def event(self, ident):
        """The rate after an event; fails the test on an error."""
        reply = self.cmd(f"event {ident}")
        assert reply.startswith("ok rate="), reply
        return int(reply.split("=")[1])

    def lookup(self, ident):
        """(count, rate) of a lookup; fails the test on an error."""
        reply = self.cmd(f"lookup {ident}")
        assert reply.startswith("ok "), reply
        kv = dict(item.split("=") for item in reply.split()[1:])
        return int(kv["count"]), int(kv["rate"])

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def quit(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


def ipc_record(attrs):
    """Encode [(name, value), ...] as one postern-ipc(7) record."""
    payload = b""
    for name, value in attrs:
        name = name.encode() if isinstance(name, str) else name
        value = value.encode() if isinstance(value, str) else value
        payload += bytes([len(name)]) + name + struct.pack(">I", len(value))
        payload += value
    return struct.pack(">I", len(payload)) + payload


def ipc_parse(payload):
    attrs = {}
    while payload:
        n = payload[0]
        name = payload[1:1 + n].decode()
        (vlen,) = struct.unpack(">I", payload[1 + n:5 + n])
        attrs[name] = payload[5 + n:5 + n + vlen].decode()
        payload = payload[5 + n + vlen:]
    return attrs


class RawClient:
    def __init__(self, inst, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(os.path.join(inst.queue_dir, "private", "anvil"))

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def reply(self):
        head = self.recv_exact(4)
        assert head is not None, "anvil closed the connection"
        (n,) = struct.unpack(">I", head)
        return ipc_parse(self.recv_exact(n))

    def request(self, req, ident):
        self.send(ipc_record([("req", req), ("ident", ident)]))
        return self.reply()

    def closed_by_peer(self):
        """True when anvil closed the connection (EOF or reset)."""
        try:
            return self.sock.recv(100) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def start(instance, **params):
    instance.write_main_cf(**params)
    instance.write_master_cf(MASTER_CF)
    instance.start()


def anvil_pid(instance):
    for pid in instance.children():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if os.path.basename(f.read().split(b"\0")[0]) == b"anvil":
                    return pid
        except FileNotFoundError:
            pass
    return None


def count_becomes(client, ident, want):
    """A wait_for() predicate: does a connect by client see count want?

    anvil serves its connections in whatever order poll() reports them,
    so a close by one client may be seen after another's next request.
    Each probe connects and disconnects again (it does raise the rate).
    """
    def check():
        count, _ = client.connect(ident)
        client.disconnect(ident)
        return count == want
    return check


def test_counts_across_clients(instance):
    start(instance)
    a, b = Anvilc(instance), Anvilc(instance)
    assert a.first.startswith("ready") and b.first.startswith("ready")
    x, y = "smtp:192.0.2.1", "smtp:192.0.2.2"
    assert a.connect(x) == (1, 1)
    pid = anvil_pid(instance)
    assert pid
    assert b.connect(x) == (2, 2)
    assert a.connect(y) == (1, 1)
    a.disconnect(x)
    assert b.connect(x) == (2, 3)       # b twice; the rate keeps counting
    # A disconnect for what this client did not connect changes nothing.
    a.disconnect(x)
    a.disconnect("smtp:192.0.2.99")
    c = Anvilc(instance)
    assert c.connect(x) == (3, 4)
    # A handle closed in good order gives back its counts too.
    assert b.cmd("close") == "ok"
    wait_for(count_becomes(c, x, 2), what="b's counts released")
    assert c.connect(x)[0] == 2
    assert a.connect(y) == (2, 2)
    assert anvil_pid(instance) == pid  # one process served everyone
    for cl in (a, b, c):
        cl.quit()


def test_rate_window(instance):
    start(instance, anvil_rate_time_unit="2s")
    a = Anvilc(instance)
    ident = "smtp:198.51.100.7"
    for n in range(1, 4):
        assert a.connect(ident) == (1, n)
        a.disconnect(ident)
    time.sleep(2.5)
    # A new window: the rate starts over; other idents never shared it.
    assert a.connect(ident) == (1, 1)
    assert a.connect("smtp:198.51.100.8") == (1, 1)
    assert a.connect(ident) == (2, 2)
    a.quit()


def test_killed_client_releases_counts(instance):
    start(instance)
    ident = "smtp:203.0.113.5"
    a, b, c = Anvilc(instance), Anvilc(instance), Anvilc(instance)
    assert a.connect(ident) == (1, 1)
    assert a.connect("smtp:203.0.113.6") == (1, 1)
    assert b.connect(ident) == (2, 2)
    a.kill()                            # a "crashed smtpd"
    # b's and c's own: a's count is gone.
    wait_for(count_becomes(c, ident, 2), what="a's counts released")
    assert c.connect("smtp:203.0.113.6")[0] == 1
    b.kill()
    wait_for(count_becomes(c, ident, 1), what="b's counts released")
    c.quit()


def test_garbage_input_survives(instance):
    start(instance)
    good = Anvilc(instance)
    ident = "smtp:192.0.2.50"
    assert good.connect(ident) == (1, 1)
    pid = anvil_pid(instance)
    assert pid

    cases = [
        b"GET / HTTP/1.0\r\n\r\n",                      # huge length
        struct.pack(">I", 1025) + b"x" * 1025,           # over the limit
        struct.pack(">I", 3) + b"\x02A\x00",              # bad name
        struct.pack(">I", 10) + b"\x03req\xff\xff\xff\xff\x00\x00",
        ipc_record([("req", "connect")]),                 # no ident
        ipc_record([("req", "connect"), ("ident", ident),
                    ("extra", "1")]),                     # unexpected
        ipc_record([("req", "connect"), ("ident", "a\0b")]),
        ipc_record([("req", "connect"), ("ident", "")]),
        ipc_record([("req", "connect"), ("ident", "x" * 513)]),
        ipc_record([("req", "connect"), ("ident", ident),
                    ("req", "connect")]),                 # duplicate
    ]
    for data in cases:
        raw = RawClient(instance)
        raw.send(data)
        assert raw.closed_by_peer(), data
        raw.close()

    # Bytes, then end of file in the middle of a record.
    raw = RawClient(instance)
    raw.send(ipc_record([("req", "connect"), ("ident", ident)])[:9])
    raw.sock.shutdown(socket.SHUT_WR)
    assert raw.closed_by_peer()
    raw.close()

    # A client that stops connecting and disconnecting is cut off.
    raw = RawClient(instance)
    for i in range(64):
        assert raw.request("connect", f"smtp:10.0.0.{i}")["status"] == "0"
    raw.send(ipc_record([("req", "connect"), ("ident", "smtp:10.0.1.1")]))
    assert raw.closed_by_peer()
    raw.close()

    # Unknown requests are refused, and the connection stays usable.
    raw = RawClient(instance)
    assert raw.request("frobnicate", ident) == {"status": "-1"}
    # One byte at a time, then two requests in one write.
    rec = ipc_record([("req", "connect"), ("ident", ident)])
    for i in range(len(rec)):
        raw.send(rec[i:i + 1])
        time.sleep(0.005)
    assert raw.reply() == {"status": "0", "count": "2", "rate": "2"}
    raw.send(ipc_record([("req", "disconnect"), ("ident", ident)]) + rec)
    assert raw.reply() == {"status": "0"}
    assert raw.reply() == {"status": "0", "count": "2", "rate": "3"}
    raw.close()

    # Nothing above left a count behind (closing the raw client released
    # its connect; anvil may see that close after good's next request),
    # and it is the same process.
    wait_for(count_becomes(good, ident, 2), what="raw client's release")
    for i in range(64):
        assert good.connect(f"smtp:10.0.0.{i}")[0] == 1
        good.disconnect(f"smtp:10.0.0.{i}")
    assert anvil_pid(instance) == pid
    log = instance.log()
    assert "exceeds the limit of 1024" in log
    assert "malformed record" in log
    assert 'unexpected attribute "extra"' in log
    assert 'unrecognized request: "frobnicate"' in log
    assert "more than 64 connects without disconnect" in log
    assert "end of input inside a record" in log
    good.quit()


def test_stalled_partial_record_is_dropped(instance):
    start(instance)
    raw = RawClient(instance, timeout=30)
    raw.send(ipc_record([("req", "connect"), ("ident", "smtp:x")])[:7])
    t0 = time.monotonic()
    assert raw.closed_by_peer()
    assert 5 < time.monotonic() - t0 < 25
    raw.close()
    wait_for(lambda: "timeout while reading a request" in instance.log(),
             what="timeout warning")


def test_statistics_logged(instance):
    start(instance, anvil_status_update_time="1s")
    ident = "smtp:192.0.2.77"
    clients = [Anvilc(instance) for _ in range(3)]
    for n, cl in enumerate(clients, 1):
        assert cl.connect(ident) == (n, n)
    wait_for(lambda: f"statistics: max connection count 3 for ({ident}) at "
             in instance.log(), what="count statistics")
    log = instance.log()
    assert f"statistics: max connection rate 3/60s for ({ident}) at " in log
    assert "statistics: max cache size 1 at " in log
    for cl in clients:
        cl.quit()


def test_statistics_logged_at_exit(instance):
    start(instance)
    ident = "smtp:[2001:db8::1]"
    a = Anvilc(instance)
    assert a.connect(ident) == (1, 1)
    assert a.connect(ident) == (2, 2)
    pid = anvil_pid(instance)
    a.quit()
    instance.postern("stop")
    wait_for(lambda: not pid_alive(pid), what="anvil exit")
    log = instance.log()
    line = [ln for ln in log.splitlines()
            if "statistics: max connection count 2" in ln]
    assert line and f"anvil[{pid}]" in line[0] and f"({ident})" in line[0]
    assert f"max connection rate 2/60s for ({ident})" in log


def test_unreachable_anvil_is_an_error_not_a_hang(instance):
    instance.write_master_cf("")
    instance.start()
    a = Anvilc(instance)
    assert a.first.startswith("error anvil service unavailable"), a.first
    assert a.cmd("connect smtp:192.0.2.1") == "error no handle"
    a.quit()


def test_client_reconnects_after_anvil_restart(instance):
    start(instance)
    a = Anvilc(instance)
    assert a.connect("smtp:192.0.2.3") == (1, 1)
    pid = anvil_pid(instance)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), what="anvil death")
    # The next connect finds the connection broken and opens a new one to
    # the anvil that master starts on demand; the old counts died with
    # the old process.
    assert a.connect("smtp:192.0.2.3") == (1, 1)
    assert anvil_pid(instance) not in (None, pid)
    a.quit()


def test_events_and_lookups(instance):
    start(instance)
    a, b = Anvilc(instance), Anvilc(instance)
    x, y = "smtp-auth:192.0.2.1", "smtp-auth:192.0.2.2"
    assert a.lookup(x) == (0, 0)       # unknown: nothing is created
    assert a.event(x) == 1
    assert a.event(x) == 2
    assert b.event(x) == 3             # one rate across clients
    assert b.event(y) == 1
    # Lookups change nothing, however many.
    for _ in range(5):
        assert a.lookup(x) == (0, 3)
        assert b.lookup(y) == (0, 1)
    assert a.event(x) == 4
    # An ident has one rate for connects and events; only connects count.
    assert a.connect(x) == (1, 5)
    assert b.lookup(x) == (1, 5)
    assert b.event(x) == 6
    a.disconnect(x)
    assert b.lookup(x) == (0, 6)
    # Events hold nothing: a disconnect for an ident with only events
    # is ignored like any disconnect that was not connected here.
    b.disconnect(y)
    assert a.lookup(y) == (0, 1)
    for cl in (a, b):
        cl.quit()


def test_events_survive_client_close(instance):
    start(instance)
    a, b, c = Anvilc(instance), Anvilc(instance), Anvilc(instance)
    ident = "smtp-auth:203.0.113.9"
    # a's connect is what shows that anvil has seen a's connection close.
    assert a.connect(ident) == (1, 1)
    assert a.event(ident) == 2
    assert a.event(ident) == 3
    a.kill()                            # a "crashed smtpd"
    wait_for(lambda: c.lookup(ident)[0] == 0, what="a's close")
    assert c.lookup(ident) == (0, 3)
    # The same for a handle closed in good order, and for a raw client.
    assert b.event(ident) == 4
    assert b.cmd("close") == "ok"
    raw = RawClient(instance)
    assert raw.request("event", ident) == {"status": "0", "rate": "5"}
    raw.close()
    assert c.lookup(ident) == (0, 5)
    assert c.event(ident) == 6
    c.quit()


def test_event_rate_window(instance):
    start(instance, anvil_rate_time_unit="2s")
    a = Anvilc(instance)
    ident = "smtp-auth:198.51.100.7"
    for n in range(1, 4):
        assert a.event(ident) == n
    time.sleep(2.5)
    # The window ended: the rate reads 0 until the next event starts a
    # new one (the entry may by now have expired: the same to a client).
    assert a.lookup(ident) == (0, 0)
    assert a.event(ident) == 1
    assert a.lookup(ident) == (0, 1)
    a.quit()


def test_event_lookup_raw_protocol(instance):
    start(instance)
    ident = "smtp-auth:192.0.2.60"
    raw = RawClient(instance)
    # Events and lookups are not connects: no pending limit applies, and
    # the replies carry exactly what anvil_proto.h says.
    for n in range(1, 101):
        assert raw.request("event", ident) == {"status": "0",
                                               "rate": str(n)}
    for i in range(100):
        assert raw.request("lookup", f"smtp-auth:10.0.0.{i}") == {
            "status": "0", "count": "0", "rate": "0"}
    assert raw.request("lookup", ident) == {"status": "0", "count": "0",
                                            "rate": "100"}
    raw.close()

    # They get the same strict parsing as connects.
    pid = anvil_pid(instance)
    for req in ("event", "lookup"):
        for data in (ipc_record([("req", req)]),
                     ipc_record([("req", req), ("ident", "")]),
                     ipc_record([("req", req), ("ident", "x" * 513)]),
                     ipc_record([("req", req), ("ident", ident),
                                 ("extra", "1")])):
            raw = RawClient(instance)
            raw.send(data)
            assert raw.closed_by_peer(), data
            raw.close()
    assert anvil_pid(instance) == pid
    a = Anvilc(instance)
    assert a.lookup(ident) == (0, 100)
    a.quit()


def test_event_statistics(instance):
    start(instance, anvil_status_update_time="1s")
    a = Anvilc(instance)
    # Lookups first: if they created entries, a report would show a
    # cache size over 1 before the one with the events' rate.
    for i in range(20):
        assert a.lookup(f"smtp-auth:10.1.0.{i}") == (0, 0)
    ident = "smtp-auth:192.0.2.88"
    for n in range(1, 4):
        assert a.event(ident) == n
    wait_for(lambda: f"statistics: max connection rate 3/60s for ({ident})"
             in instance.log(), what="rate statistics")
    log = instance.log()
    sizes = [ln for ln in log.splitlines() if "max cache size" in ln]
    assert sizes and all("max cache size 1 at " in ln for ln in sizes), sizes
    # An event opens nothing: no count peak.
    assert "max connection count" not in log
    a.quit()


def test_event_lookup_reconnect_after_anvil_restart(instance):
    start(instance)
    a = Anvilc(instance)
    ident = "smtp-auth:192.0.2.4"
    assert a.event(ident) == 1
    pid = anvil_pid(instance)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), what="anvil death")
    # Like a connect, a lookup or event on the broken connection is
    # retried once on a fresh one; the new anvil starts from nothing.
    assert a.lookup(ident) == (0, 0)
    assert anvil_pid(instance) not in (None, pid)
    pid = anvil_pid(instance)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), what="anvil death")
    assert a.event(ident) == 1
    a.quit()
