"""pop3d: the POP3 server (RFC 1939, 2449 CAPA, 2595 STLS, 5034 AUTH).

One whole mail system for the module (smtpd, qmgr, virtual delivery and
pop3d on five ports), each test on a mailbox of its own user:

  plain   port 110 style: STLS offered (pop3d_tls_security_level = may)
  ssl     port 995 style: pop3d_tls_wrappermode = yes
  slow    pop3d_auth_failure_delay = 1s, pop3d_auth_failure_limit = 2
  open    pop3d_tls_auth_only = no (plaintext logins from anywhere)
  short   pop3d_timeout = 2s
  guard   pop3d_client_auth_failure_limit = 2 for every address (anvil)

Plaintext logins are refused before TLS unless the client connects from
the server's own address (Dovecot counts that as secured too): tests
that need an outside client bind their socket to 127.0.0.2, the
services listen on 127.0.0.1.

Real clients: Python's poplib (plain, stls(), POP3_SSL), curl (pop3://,
pop3s://, --ssl-reqd), fetchmail (STLS and implicit TLS, certificate
checked against a test CA, keep and delete, through an MDA) and openssl
s_client -starttls pop3; a raw client (POPClient) for byte-exact
retrieval, pipelining, injection and malformed input.

Mail arrives through SMTP where the issue asks for it (byte-exact
retrieval); elsewhere files are put straight into new/ under delivered
names, owned by the mailbox uid, which is faster.  Concurrent sessions:
each works on the snapshot taken at its login; a message another
session removed answers RETR with -ERR (see pop3d_mail.c).
"""
import base64
import os
import poplib
import pwd
import re
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import checked_instance, child_pids, wait_for
from test_delivery_common import (IS_ROOT, VDOMAIN, maildir, message,
                                  read_log, send, service_pids,
                                  start_system, vids, wait_log)
from test_smtpd_common import ConnectionClosed, LineClient
from tls_common import certs, client_context, make_sasldb  # noqa: F401

HOSTNAME = "mx.example.test"
OUTSIDE = "127.0.0.2"                   # a client not on the server address
ERROR_LIMIT = 20                        # pop3d_error_limit
SERVICES = ("plain", "ssl", "slow", "open", "short", "guard")
# One mailbox per test (the module shares one instance).
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
         "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert",
         "sybil", "trent", "victor", "walter", "big", "fetch", "curl",
         "conc", "late", "proc", "restart", "garbage", "auth", "pm",
         "guard")
LOGGED_IN = "+OK Logged in."
NOT_SECURE = ("-ERR [AUTH] Plaintext authentication disallowed on "
              "non-secure (SSL/TLS) connections.")
AUTH_FAILED = "-ERR [AUTH] Authentication failed."


def addr(user):
    return f"{user}@{VDOMAIN}"


def password(user):
    return f"Pw-{user}-7Rq2x"


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def crlf(data):
    """What POP3 sends for a stored message: every LF not after a CR
    becomes CRLF; a text without a final LF gets CRLF added."""
    data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    if data and not data.endswith(b"\n"):
        data += b"\r\n"
    return data


# --- the instance -----------------------------------------------------------

class Env:
    def __init__(self, inst, ports, certs):
        self.inst = inst
        self.ports = ports
        self.certs = certs
        self.seq = 0

    def log(self):
        return read_log(self.inst)

    def maildir(self, user):
        return maildir(self.inst, user)

    def files(self, user):
        """{base name: path} of user's messages in new/ and cur/."""
        out = {}
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir(user), sub)
            for name in os.listdir(d) if os.path.isdir(d) else ():
                out[name.split(":")[0]] = os.path.join(d, name)
        return out

    def contents(self, user):
        """The stored bytes of user's messages, by base name order."""
        files = self.files(user)
        return [read(files[k]) for k in sorted(files)]

    def put(self, user, data):
        """Store a message straight into new/, named as local names a
        delivery (SEC.M<usec>P<pid>Q<n>.host,S=size), owned by the
        mailbox uid; names sort in the order of the calls."""
        uid, gid = vids()
        md = self.maildir(user)
        for d in (os.path.dirname(md), md, *(os.path.join(md, s)
                                             for s in ("cur", "new", "tmp"))):
            if not os.path.isdir(d):
                os.mkdir(d, 0o700)
                os.chown(d, uid, gid)
        self.seq += 1
        name = (f"{int(time.time())}.M{self.seq:06d}P{os.getpid()}Q1.test,"
                f"S={len(data)}")
        tmp = os.path.join(md, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.chown(tmp, uid, gid)
        os.rename(tmp, os.path.join(md, "new", name))
        return name

    def put_samples(self, user, n):
        """put() sample(0) to sample(n - 1)."""
        for i in range(n):
            self.put(user, sample(i))

    def deliver(self, user, content):
        """Send content to user through SMTP; wait until it is stored."""
        before = len(self.files(user))
        send(self.inst, "sender@example.org", [addr(user)], content)
        wait_for(lambda: len(self.files(user)) > before, timeout=20,
                 what=f"delivery to {user}")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def service_line(port, opts=""):
    return f"127.0.0.1:{port} inet n n n - - pop3d{opts}\n"


@pytest.fixture(scope="module")
def pop(certs):  # noqa: F811
    with checked_instance() as inst:
        db = make_sasldb(inst.path("sasldb2"),
                         {addr(u): password(u) for u in USERS})
        ports = {name: inst.port(f"pop3-{name}") for name in SERVICES}
        extra = (service_line(ports["plain"])
                 + service_line(ports["ssl"], " -o syslog_name=postern/pop3s"
                                " -o pop3d_tls_wrappermode=yes")
                 + service_line(ports["slow"], " -o pop3d_auth_failure_delay=1"
                                " -o pop3d_auth_failure_limit=2")
                 + service_line(ports["open"], " -o pop3d_tls_auth_only=no")
                 + service_line(ports["short"], " -o pop3d_timeout=2")
                 + service_line(ports["guard"],
                                " -o pop3d_client_auth_failure_limit=2"
                                " -o smtpd_client_event_limit_exceptions="))
        start_system(inst, users=USERS, master_extra=extra,
                     sasl_db_path=db,
                     pop3d_tls_security_level="may",
                     pop3d_tls_cert_file=certs.leaf_cert,
                     pop3d_tls_key_file=certs.leaf_key,
                     pop3d_auth_failure_delay="0",
                     pop3d_error_limit=str(ERROR_LIMIT))
        for port in ports.values():
            wait_log(inst, rf"listening on 127\.0\.0\.1:{port}$")
        yield Env(inst, ports, certs)


# --- a raw client -------------------------------------------------------------

class POPClient(LineClient):
    """A line-level POP3 client: sends exactly what a test gives it.

    POPClient(port)                     plaintext from 127.0.0.1
    POPClient(port, source=OUTSIDE)     from another loopback address
    POPClient(port, wrap=ctx)           TLS from the start (pop3s)
    """

    def __init__(self, port, source=None, wrap=None, timeout=10, greet=True):
        super().__init__(port, timeout=timeout, source=source, wrap=wrap)
        self.greeting = self.line() if greet else None

    def rawline(self):
        """One line without its CRLF; every line must end in CRLF."""
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        assert line.endswith(b"\r"), f"line without CRLF: {line!r}"
        return line[:-1]

    def line(self):
        return self.rawline().decode("latin-1")

    def cmd(self, text):
        """Send a command (CRLF added); its status line."""
        self.send(text.encode("latin-1") + b"\r\n"
                  if isinstance(text, str) else text + b"\r\n")
        return self.line()

    def body(self):
        """The rest of a multi-line response, dot-stuffing undone, each
        line with its CRLF: the octets the server means."""
        out = []
        while True:
            line = self.rawline()
            if line == b".":
                return b"".join(out)
            if line.startswith(b"."):
                line = line[1:]
            out.append(line + b"\r\n")

    def lines(self):
        return [x.decode("latin-1") for x in self.body().split(b"\r\n")[:-1]]

    def multi(self, text):
        """A command with a multi-line answer: (status line, lines)."""
        status = self.cmd(text)
        return status, self.lines() if status.startswith("+OK") else None

    def capa(self):
        status, lines = self.multi("CAPA")
        assert status == "+OK", status
        return lines

    def retr(self, n):
        status = self.cmd(f"RETR {n}")
        assert status.startswith("+OK"), status
        return status, self.body()

    def uidl(self):
        status, lines = self.multi("UIDL")
        assert status == "+OK", status
        return [x.split(" ", 1)[1] for x in lines]

    def list(self):
        status, lines = self.multi("LIST")
        assert status == "+OK", status
        return [int(x.split(" ", 1)[1]) for x in lines]

    def stat(self):
        status = self.cmd("STAT")
        m = re.fullmatch(r"\+OK (\d+) (\d+)", status)
        assert m, status
        return int(m[1]), int(m[2])

    def login(self, user, pw=None):
        r = self.cmd(f"USER {addr(user)}")
        assert r.startswith("+OK"), r
        r = self.cmd(f"PASS {pw or password(user)}")
        assert r == LOGGED_IN, r
        return r

    def stls(self, ctx=None):
        r = self.cmd("STLS")
        assert r == "+OK Begin TLS negotiation now.", r
        assert self.buf == b"", f"plaintext after +OK: {self.buf!r}"
        ctx = ctx or client_context()
        self.sock = ctx.wrap_socket(self.sock, server_hostname=HOSTNAME)

    def quit(self):
        r = self.cmd("QUIT")
        assert r == "+OK Logging out.", r
        assert self.closed()
        return r


def session(pop, user, service="plain", **kw):
    """A logged-in POPClient (from 127.0.0.1, plaintext)."""
    c = POPClient(pop.ports[service], **kw)
    c.login(user)
    return c


def session_uidls(pop, user):
    """The UIDL list a new session of user gives (then it QUITs)."""
    with session(pop, user) as c:
        out = c.uidl()
        c.quit()
    return out


def logout_line(pop, user, count=1):
    """The count-th "Logged out"/"Disconnected" line of user, parsed."""
    rx = (r"^.* postern/pop3d\[\d+\]: (?P<how>Logged out(?: \([^)]*\))?"
          r"|Disconnected(?:: [A-Za-z ]+)?): "
          rf"user=<{re.escape(addr(user))}>, rip=(?P<rip>[^,]+), "
          r"top=(?P<top>\d+)/(?P<top_bytes>\d+), "
          r"retr=(?P<retr>\d+)/(?P<retr_bytes>\d+), "
          r"del=(?P<dele>\d+)/(?P<msgs>\d+), size=(?P<size>\d+)$")
    return wait_log(pop.inst, rx, count=count)[count - 1]


def sample(i, extra=b""):
    return (f"From: sender@example.org\nTo: {i}@example.test\n"
            f"Subject: message {i}\nMessage-ID: <{i}@example.org>\n\n"
            f"Body of message {i}.\n").encode() + extra


# --- retrieval ------------------------------------------------------------------

# What SMTP can carry that POP3 must give back: dots at line starts (one,
# two, a line of only "."), 8-bit bytes, trailing white space, an empty
# body line, a long line, and a body that crosses pop3d's 16 kB chunks.
TRICKY_BODY = (".leading dot\n..two dots\n.\n...\n\n"
               "trailing spaces   \n\ttab\n8bit: \u00e9\u00e8\u00ff\n"
               + "x" * 900 + "\n" + ".x\n" * 6000 + "last line\n")


def test_smtp_delivery_retrieved_byte_exact(pop):
    """RETR gives the stored bytes with CRLF line ends (after the
    dot-stuffing is undone); the +OK octets, LIST and STAT give exactly
    that size."""
    pop.deliver("alice", message("tricky", "tricky@example.org",
                                 body=TRICKY_BODY))
    pop.deliver("alice", message("small", "small@example.org"))
    stored = pop.contents("alice")
    assert len(stored) == 2 and all(b"\r" not in x for x in stored)
    with session(pop, "alice") as c:
        sizes = c.list()
        assert len(sizes) == 2
        got = []
        for n in (1, 2):
            status, body = c.retr(n)
            assert status == f"+OK {len(body)} octets"
            assert c.cmd(f"LIST {n}") == f"+OK {n} {len(body)}"
            assert sizes[n - 1] == len(body)
            got.append(body)
        assert c.stat() == (2, sum(sizes))
        c.quit()
    assert sorted(got) == sorted(crlf(x) for x in stored)
    # The stuffed form really went over the wire (RFC 1939 3).
    assert any(b".leading dot" in x for x in got)


def test_odd_stored_messages(pop):
    """Files a delivery would not write: CRLF already, mixed line ends, a
    bare CR, no final newline, no body, empty.  Sizes still match."""
    texts = [b"Subject: crlf\r\n\r\nline\r\n.dot\r\n",
             b"Subject: mixed\n\r\nline\r\nnext\n",
             b"Subject: bare cr\n\nA\rB\n",
             b"Subject: no final newline\n\nlast",
             b"Subject: no body\n",
             b""]
    for t in texts:
        pop.put("bob", t)
    with session(pop, "bob") as c:
        sizes = c.list()
        for n, t in enumerate(texts, 1):
            status, body = c.retr(n)
            assert body == crlf(t), n
            assert status == f"+OK {len(body)} octets"
            assert sizes[n - 1] == len(body)
        assert c.stat() == (len(texts), sum(sizes))
        c.quit()


def test_top(pop):
    """TOP n m: the header, the empty line and m lines of the body."""
    body = "".join(f"line {i}\n" for i in range(1, 6)).replace(
        "line 2", ".line 2")
    text = sample("top", body.encode())
    pop.put("carol", text)
    pop.put("carol", b"Subject: only a header\n")
    header, rest = crlf(text).split(b"\r\n\r\n", 1)
    body_lines = rest.split(b"\r\n")[:-1]
    with session(pop, "carol") as c:
        for m in (0, 1, 2, 5, 6, 1000):
            status = c.cmd(f"TOP 1 {m}")
            assert status == "+OK", status
            want = header + b"\r\n\r\n" + b"".join(
                x + b"\r\n" for x in body_lines[:m])
            assert c.body() == want, m
        status = c.cmd("TOP 2 3")
        assert status == "+OK"
        assert c.body() == b"Subject: only a header\r\n"
        for bad in ("TOP 1", "TOP", "TOP x 1", "TOP 1 -1", "TOP 3 1",
                    "TOP 0 1"):
            assert c.cmd(bad).startswith("-ERR"), bad
        # TOP is no retrieval: the logout line counts it apart.
        c.quit()
    line = logout_line(pop, "carol")
    assert line["top"] == "7" and line["retr"] == "0"


def test_list_uidl_and_errors(pop):
    pop.put_samples("dave", 3)
    with session(pop, "dave") as c:
        uidls = c.uidl()
        assert len(uidls) == 3 and len(set(uidls)) == 3
        for n, u in enumerate(uidls, 1):
            assert re.fullmatch(r"[0-9A-F]{16}", u)
            assert c.cmd(f"UIDL {n}") == f"+OK {n} {u}"
        uids = [int(u[:8], 16) for u in uidls]
        assert uids == sorted(uids)
        assert len({u[8:] for u in uidls}) == 1          # one UIDVALIDITY
        for bad in ("LIST 0", "LIST 4", "LIST x", "LIST -1", "UIDL 4",
                    "RETR 4", "RETR", "DELE 0", "LIST 99999999999999999999",
                    "RETR 1x"):
            assert c.cmd(bad).startswith("-ERR"), bad
        assert c.cmd("NOOP") == "+OK"
        caps = c.capa()
        assert {"TOP", "UIDL", "PIPELINING", "RESP-CODES"} <= set(caps)
        assert "STLS" not in caps and "USER" not in caps
        c.quit()


def test_uidl_stable_across_sessions_and_new_mail(pop):
    pop.put_samples("erin", 3)
    first = session_uidls(pop, "erin")
    assert session_uidls(pop, "erin") == first
    pop.put("erin", sample(3))
    with session(pop, "erin") as c:
        now = c.uidl()
        assert now[:3] == first
        assert int(now[3][:8], 16) > max(int(u[:8], 16) for u in first)
        # Delete the newest: its UID is never handed out again.
        assert c.cmd("DELE 4").startswith("+OK")
        c.quit()
    pop.put("erin", sample(4))
    with session(pop, "erin") as c:
        again = c.uidl()
        assert again[:3] == first
        assert int(again[3][:8], 16) > int(now[3][:8], 16)
        c.quit()


# --- deletion ---------------------------------------------------------------------

def test_dele_quit_removes_the_file(pop):
    pop.put_samples("frank", 3)
    with session(pop, "frank") as c:
        uidls = c.uidl()
        _, second = c.retr(2)
        before = pop.files("frank")
        assert c.cmd("DELE 2") == "+OK Marked to be deleted."
        assert c.cmd("DELE 2").startswith("-ERR")       # already marked
        assert c.cmd("RETR 2").startswith("-ERR")
        assert c.cmd("LIST 2").startswith("-ERR")
        assert c.stat()[0] == 2
        assert [x.split()[0] for x in c.multi("LIST")[1]] == ["1", "3"]
        # Nothing is removed before QUIT.
        assert pop.files("frank") == before
        c.quit()
    after = pop.files("frank")
    assert len(after) == 2
    assert crlf(sample(1)) == second
    assert all(read(p) != sample(1) for p in after.values())
    line = logout_line(pop, "frank")
    assert line["how"] == "Logged out"
    assert (line["dele"], line["msgs"]) == ("1", "3")
    assert session_uidls(pop, "frank") == [uidls[0], uidls[2]]


def test_dele_then_dropped_connection_removes_nothing(pop):
    pop.put_samples("grace", 2)
    with session(pop, "grace") as c:
        assert c.cmd("DELE 1").startswith("+OK")
        assert c.cmd("DELE 2").startswith("+OK")
    line = logout_line(pop, "grace")
    assert line["how"] == "Disconnected" and line["dele"] == "0"
    assert len(pop.files("grace")) == 2
    with session(pop, "grace") as c:
        assert c.stat()[0] == 2
        c.quit()


def test_rset_unmarks(pop):
    pop.put_samples("heidi", 2)
    with session(pop, "heidi") as c:
        total = c.stat()
        assert c.cmd("DELE 1").startswith("+OK")
        assert c.stat()[0] == 1
        assert c.cmd("RSET") == "+OK"
        assert c.stat() == total
        assert c.retr(1)[1] == crlf(sample(0))
        c.quit()
    assert len(pop.files("heidi")) == 2
    assert logout_line(pop, "heidi")["dele"] == "0"


def test_concurrent_sessions(pop):
    """Both sessions see the same list; what one removes, the other
    reports as gone, and its own deletions still work."""
    pop.put_samples("conc", 3)
    a = session(pop, "conc")
    b = session(pop, "conc")
    with a, b:
        assert a.uidl() == b.uidl()
        assert a.list() == b.list()
        assert a.cmd("DELE 1").startswith("+OK")
        a.quit()
        assert len(pop.files("conc")) == 2
        # b's snapshot still lists it, and RETR says it is gone.
        assert b.stat()[0] == 3
        r = b.cmd("RETR 1")
        assert r == "-ERR Message was removed by another session.", r
        assert b.retr(2)[1] == crlf(sample(1))
        assert b.cmd("DELE 1").startswith("+OK")
        assert b.cmd("DELE 3").startswith("+OK")
        b.quit()
    assert len(pop.files("conc")) == 1
    with session(pop, "conc") as c:
        assert c.retr(1)[1] == crlf(sample(1))
        c.quit()


def test_mail_delivered_during_a_session(pop):
    """Mail that arrives while a session runs is left alone and shows up
    in the next session, with a higher UID."""
    pop.deliver("late", message("first", "first@example.org"))
    with session(pop, "late") as c:
        before = c.uidl()
        pop.deliver("late", message("second", "second@example.org"))
        assert c.stat()[0] == 1
        assert c.cmd("DELE 1").startswith("+OK")
        c.quit()
    with session(pop, "late") as c:
        after = c.uidl()
        assert len(after) == 1 and after[0] != before[0]
        assert int(after[0][:8], 16) > int(before[0][:8], 16)
        _, body = c.retr(1)
        assert b"Subject: second" in body
        c.quit()


def test_ten_thousand_messages(pop):
    """A 10,000-message mailbox lists and UIDLs correctly and keeps its
    UIDLs when messages in the middle go."""
    n = 10000
    texts = [sample(i, b"x" * (i % 97) + b"\n") for i in range(n)]
    for t in texts:
        pop.put("big", t)
    with session(pop, "big", timeout=60) as c:
        assert c.stat() == (n, sum(len(crlf(t)) for t in texts))
        assert c.list() == [len(crlf(t)) for t in texts]
        uidls = c.uidl()
        assert len(set(uidls)) == n
        uids = [int(u[:8], 16) for u in uidls]
        assert uids == sorted(uids)
        for k in (1, 5000, n):
            assert c.retr(k)[1] == crlf(texts[k - 1])
            assert c.cmd(f"UIDL {k}") == f"+OK {k} {uidls[k - 1]}"
        for k in (2, 5000, 9999):
            assert c.cmd(f"DELE {k}").startswith("+OK")
        c.quit()
    assert len(pop.files("big")) == n - 3
    with session(pop, "big", timeout=60) as c:
        left = [u for k, u in enumerate(uidls, 1) if k not in (2, 5000, 9999)]
        assert c.uidl() == left
        assert c.retr(4998)[1] == crlf(texts[4998])
        c.quit()


def test_uidl_survives_a_master_restart(pop):
    pop.put_samples("restart", 2)
    first = session_uidls(pop, "restart")
    inst = pop.inst
    port = pop.ports["plain"]
    listening = f"listening on 127.0.0.1:{port}"
    seen = read_log(inst).count(listening)
    inst.stop_master()
    wait_for(lambda: inst.master_pid() is None, what="master stopped")
    inst.start()
    wait_for(lambda: read_log(inst).count(listening) > seen,
             what="pop3d listening again")
    for p in pop.ports.values():
        wait_for(lambda: _accepts(p), what=f"port {p}")
    assert session_uidls(pop, "restart") == first


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# --- authentication ---------------------------------------------------------

def test_wrong_password_is_slowed_and_limited(pop):
    """-ERR [AUTH] after at least pop3d_auth_failure_delay; the second
    failure (pop3d_auth_failure_limit = 2) ends the session."""
    with POPClient(pop.ports["slow"]) as c:
        assert c.cmd(f"USER {addr('ivan')}").startswith("+OK")
        t0 = time.monotonic()
        assert c.cmd("PASS Wrong-pw-1") == AUTH_FAILED
        assert time.monotonic() - t0 >= 0.9
        # The session goes on: a correct login would still work.
        assert c.cmd(f"USER {addr('ivan')}").startswith("+OK")
        t0 = time.monotonic()
        r = c.cmd("PASS Wrong-pw-2")
        assert time.monotonic() - t0 >= 0.9
        assert r.startswith("-ERR [AUTH] Authentication failed."), r
        assert "disconnecting" in r
        assert c.closed()
    log = pop.log()
    assert f"authentication failed: user=<{addr('ivan')}>" in log
    assert "Wrong-pw" not in log
    # Without a delay configured (the default port here): still [AUTH].
    with POPClient(pop.ports["plain"]) as c:
        assert c.cmd(f"USER {addr('ivan')}").startswith("+OK")
        assert c.cmd("PASS Wrong-pw-3") == AUTH_FAILED
        assert c.cmd(f"USER {addr('nobody-here')}").startswith("+OK")
        assert c.cmd("PASS Wrong-pw-4") == AUTH_FAILED
        assert c.cmd("PASS x") == "-ERR No username given."
        c.login("ivan")
        c.quit()


def test_failed_logins_limited_per_address(pop):
    """Failed logins count per client address over sessions (anvil): past
    pop3d_client_auth_failure_limit, PASS and AUTH get -ERR [LOGIN-DELAY]
    and the session ends, even with the right password."""
    for n in (1, 2):
        with POPClient(pop.ports["guard"]) as c:
            assert c.cmd(f"USER {addr('guard')}").startswith("+OK")
            assert c.cmd(f"PASS Wrong-pw-{n}") == AUTH_FAILED
    for cmd in (f"PASS {password('guard')}", "AUTH PLAIN"):
        with POPClient(pop.ports["guard"]) as c:
            assert c.cmd(f"USER {addr('guard')}").startswith("+OK")
            r = c.cmd(cmd)
            assert r.startswith("-ERR [LOGIN-DELAY] "), r
            assert c.closed()
    assert "login failure limit exceeded: 2 from 127.0.0.1" in pop.log()
    # Other services count apart (the service is part of the key).
    with POPClient(pop.ports["plain"]) as c:
        c.login("guard")
        c.quit()


def test_plaintext_login_refused_before_stls(pop):
    """From another address: no USER, no SASL, no logging in before
    STLS; after it, STLS is gone and USER and SASL are there."""
    with POPClient(pop.ports["plain"], source=OUTSIDE) as c:
        caps = c.capa()
        assert "STLS" in caps and "USER" not in caps
        assert not any(x.startswith("SASL") for x in caps)
        assert c.cmd(f"USER {addr('judy')}") == NOT_SECURE
        assert c.cmd(f"PASS {password('judy')}") == NOT_SECURE
        assert c.cmd("AUTH PLAIN " + b64(
            f"\0{addr('judy')}\0{password('judy')}")) == NOT_SECURE
        assert c.cmd("AUTH PLAIN") == NOT_SECURE
        c.stls(client_context(pop.certs.ca_cert))
        caps = c.capa()
        assert "STLS" not in caps and "USER" in caps
        sasl = [x for x in caps if x.startswith("SASL ")]
        assert sasl and {"PLAIN", "LOGIN"} <= set(sasl[0].split()[1:])
        assert c.cmd("STLS") == "-ERR TLS is already active."
        c.login("judy")
        c.quit()
    assert re.search(rf"login: user=<{re.escape(addr('judy'))}>, "
                     r"method=PLAIN, rip=127\.0\.0\.2, lip=127\.0\.0\.1, TLS",
                     pop.log())


def test_local_client_may_log_in_without_tls(pop):
    """rip == lip counts as secured (Dovecot's rule); the capabilities
    say so."""
    with POPClient(pop.ports["plain"]) as c:
        caps = c.capa()
        assert "USER" in caps and "STLS" in caps
        assert any(x.startswith("SASL ") for x in caps)
        c.login("victor")
        c.quit()
    assert re.search(rf"login: user=<{re.escape(addr('victor'))}>, "
                     r"method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.1$",
                     pop.log(), re.M)


def test_pop3s_from_outside(pop):
    """Implicit TLS: logins at once, from anywhere; no STLS."""
    ctx = client_context(pop.certs.ca_cert)
    with POPClient(pop.ports["ssl"], source=OUTSIDE, wrap=ctx) as c:
        assert c.greeting.startswith("+OK ")
        caps = c.capa()
        assert "STLS" not in caps and "USER" in caps
        assert c.cmd("STLS") == "-ERR TLS is already active."
        c.login("victor")
        c.quit()


def test_tls_auth_only_no(pop):
    """pop3d_tls_auth_only = no: plaintext logins from anywhere."""
    with POPClient(pop.ports["open"], source=OUTSIDE) as c:
        assert "USER" in c.capa()
        c.login("judy")
        c.quit()


def test_stls_command_injection(pop):
    """Commands pipelined after STLS are discarded, not run after the
    handshake (RFC 2595 4, CVE-2011-0411)."""
    with POPClient(pop.ports["plain"], source=OUTSIDE) as c:
        c.send(b"STLS\r\nQUIT\r\n")
        assert c.line() == "+OK Begin TLS negotiation now."
        c.sock = client_context().wrap_socket(c.sock,
                                              server_hostname=HOSTNAME)
        # Had QUIT survived, this would read "+OK Logging out.".
        caps = c.capa()
        assert "USER" in caps
        c.login("judy")
        c.quit()
    with POPClient(pop.ports["plain"], source=OUTSIDE) as c:
        c.send(f"STLS\r\nUSER {addr('judy')}\r\n")
        assert c.line() == "+OK Begin TLS negotiation now."
        c.sock = client_context().wrap_socket(c.sock,
                                              server_hostname=HOSTNAME)
        assert c.cmd(f"PASS {password('judy')}") == "-ERR No username given."


def test_auth_plain_and_login(pop):
    user, pw = addr("auth"), password("auth")
    token = b64(f"\0{user}\0{pw}")
    # Initial response.
    with POPClient(pop.ports["plain"]) as c:
        assert c.cmd(f"AUTH PLAIN {token}") == LOGGED_IN
        c.quit()
    # Two steps.
    with POPClient(pop.ports["plain"]) as c:
        assert c.cmd("AUTH PLAIN") == "+ "
        assert c.cmd(token) == LOGGED_IN
        c.quit()
    # LOGIN, over TLS from outside.
    with POPClient(pop.ports["plain"], source=OUTSIDE) as c:
        c.stls()
        assert c.cmd("AUTH LOGIN") == "+ " + b64("Username:")
        assert c.cmd(b64(user)) == "+ " + b64("Password:")
        assert c.cmd(b64(pw)) == LOGGED_IN
        c.quit()
    # The list of mechanisms.
    with POPClient(pop.ports["plain"]) as c:
        status, mechs = c.multi("AUTH")
        assert status == "+OK" and {"PLAIN", "LOGIN"} <= set(mechs)
    log = pop.log()
    assert f"login: user=<{user}>, method=PLAIN" in log
    assert f"login: user=<{user}>, method=LOGIN" in log


def test_auth_failures(pop):
    user = addr("auth")
    wrong = b64(f"\0{user}\0Wrong-pw-5")
    with POPClient(pop.ports["plain"]) as c:
        # Cancelled by the client.
        assert c.cmd("AUTH PLAIN") == "+ "
        assert c.cmd("*") == "-ERR Authentication aborted by client."
        # Not base64, in the continuation and in the initial response.
        assert c.cmd("AUTH PLAIN") == "+ "
        assert c.cmd("!!!not base64!!!").startswith("-ERR")
        assert c.cmd("AUTH PLAIN %%%").startswith("-ERR")
        # A right response with a NUL and more: not cut short at the NUL.
        right = b64(f"\0{user}\0{password('auth')}")
        assert c.cmd("AUTH PLAIN") == "+ "
        assert c.cmd(right.encode() + b"\0junk") == \
            "-ERR Invalid base64 data in continued response."
        # Unknown mechanism, wrong password.
        assert c.cmd("AUTH NOSUCHMECH").startswith("-ERR")
        assert c.cmd(f"AUTH PLAIN {wrong}") == AUTH_FAILED
        # A LOGIN exchange cancelled half-way.
        assert c.cmd("AUTH LOGIN").startswith("+ ")
        assert c.cmd(b64(user)).startswith("+ ")
        assert c.cmd("*") == "-ERR Authentication aborted by client."
        # And the session still logs in.
        assert c.cmd(f"AUTH PLAIN {right}") == LOGGED_IN
        c.quit()
    assert "Wrong-pw-5" not in pop.log() and wrong not in pop.log()


# --- bad input ----------------------------------------------------------------

BAD_LINES = [b"garbage", b"\x00\x01\x02 \xff\xfe", b"NOOP\x00QUIT",
             b"A" * 300, b"USER " + b"a" * 300, b"B" * 9000, b"C" * 100000,
             b"", b"\x1b[2J"]


def test_garbage_before_login(pop):
    """-ERR for each, the session goes on; the error limit ends it."""
    with POPClient(pop.ports["plain"]) as c:
        for line in BAD_LINES:
            r = c.cmd(line)
            assert r.startswith("-ERR"), (line[:20], r)
        assert c.cmd("A" * 256) == "-ERR Command too long."
        assert c.cmd("C" * 100000) == "-ERR Command too long."
        assert "USER" in c.capa()
        assert len(BAD_LINES) + 2 < ERROR_LIMIT
        # The limit counts invalid commands: go on until it bites.
        for _ in range(ERROR_LIMIT):
            try:
                r = c.cmd("garbage")
            except ConnectionClosed:
                break
            if r == "-ERR Too many invalid commands.":
                break
            assert r.startswith("-ERR"), r
        else:
            raise AssertionError("no disconnect at pop3d_error_limit")
        assert c.closed()
    assert re.search(r"disconnect from 127\.0\.0\.1: too many invalid "
                     r"commands$", pop.log(), re.M)
    # pop3d lives on.
    with session(pop, "walter") as c:
        c.quit()


def test_error_limit_counts_exactly(pop):
    with POPClient(pop.ports["plain"]) as c:
        for _ in range(ERROR_LIMIT - 1):
            assert c.cmd("BOGUS") == "-ERR Unknown command."
        assert "USER" in c.capa()
        assert c.cmd("BOGUS") == "-ERR Unknown command."
        assert c.line() == "-ERR Too many invalid commands."
        assert c.closed()


def test_garbage_after_login(pop):
    pop.put("garbage", sample(1))
    with session(pop, "garbage") as c:
        for line in BAD_LINES:
            r = c.cmd(line)
            assert r.startswith("-ERR"), (line[:20], r)
        assert c.cmd("NOOP") == "+OK"
        assert c.retr(1)[1] == crlf(sample(1))
        for _ in range(ERROR_LIMIT - len(BAD_LINES) - 1):
            assert c.cmd("BOGUS").startswith("-ERR")
        assert c.cmd("NOOP") == "+OK"
        assert c.cmd("BOGUS").startswith("-ERR")
        assert c.line() == "-ERR Too many invalid commands."
        assert c.closed()
    line = logout_line(pop, "garbage")
    assert line["how"] == "Disconnected: Too many invalid commands"
    assert len(pop.files("garbage")) == 1
    log = pop.log()
    assert "killed by signal" not in log and "panic" not in log
    assert "fatal" not in log


def test_pipelining(pop):
    """Commands sent together are answered in order (RFC 2449 6.6),
    across the login and mail processes."""
    pop.put_samples("mallory", 2)
    with POPClient(pop.ports["plain"]) as c:
        c.send(f"CAPA\r\nUSER {addr('mallory')}\r\nPASS {password('mallory')}"
               "\r\nSTAT\r\nLIST\r\nRETR 2\r\nNOOP\r\nQUIT\r\n")
        assert c.line() == "+OK"
        assert "PIPELINING" in c.lines()
        assert c.line().startswith("+OK")
        assert c.line() == LOGGED_IN
        assert c.line().startswith("+OK 2 ")
        assert c.line() == "+OK"
        assert len(c.lines()) == 2
        assert c.line().startswith("+OK")
        assert c.body() == crlf(sample(1))
        assert c.line() == "+OK"
        assert c.line() == "+OK Logging out."
        assert c.closed()


def test_idle_timeout(pop):
    """pop3d_timeout ends an idle session, before and after login."""
    with POPClient(pop.ports["short"]) as c:
        t0 = time.monotonic()
        assert c.closed(timeout=15)
        assert time.monotonic() - t0 >= 1.5
    with session(pop, "niaj", service="short") as c:
        assert c.closed(timeout=15)
    assert logout_line(pop, "niaj")["how"] == "Disconnected: Inactivity"


# --- processes and logs --------------------------------------------------------

def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def pop3d_children(pop):
    """(pid, status, root) of the children of pop3d service processes."""
    out = []
    for parent in service_pids(pop.inst, "pop3d"):
        for pid in child_pids(parent):
            try:
                out.append((pid, proc_status(pid),
                            os.readlink(f"/proc/{pid}/root")))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return out


@pytest.mark.skipif(not IS_ROOT, reason="ids and chroot need root")
def test_login_and_mail_processes(pop):
    """Before login: one process, mail_owner, not chrooted.  After it:
    the mail process runs as the mailbox owner, chrooted into the
    Maildir; the login process (the relay) stays mail_owner."""
    owner = pwd.getpwnam(pop.inst.params["mail_owner"])
    uid, gid = vids()
    pop.put("proc", sample(1))
    with POPClient(pop.ports["plain"]) as c:
        # (Processes of earlier sessions may still be on their way out.)
        kids = wait_for(lambda: len(pop3d_children(pop)) == 1
                        and pop3d_children(pop), what="login process")
        _, st, root = kids[0]
        assert st["Uid"] == [str(owner.pw_uid)] * 4
        assert st["Gid"] == [str(owner.pw_gid)] * 4
        assert root == "/"
        c.login("proc")
        kids = wait_for(lambda: len(pop3d_children(pop)) == 2
                        and pop3d_children(pop), what="mail process")
        md = os.path.realpath(pop.maildir("proc"))
        mail = [k for k in kids if k[2] == md]
        login = [k for k in kids if k[2] == "/"]
        assert len(mail) == 1 and len(login) == 1, kids
        st = mail[0][1]
        assert st["Uid"] == [str(uid)] * 4 and st["Gid"] == [str(gid)] * 4
        assert st["Groups"] == [str(gid)]
        assert login[0][1]["Uid"] == [str(owner.pw_uid)] * 4
        assert c.retr(1)[1] == crlf(sample(1))
        c.quit()
    # The index belongs to the mailbox owner, nobody else may read it.
    for name in ("postern-index", "postern-index-lock"):
        s = os.stat(os.path.join(pop.maildir("proc"), name))
        assert (s.st_uid, s.st_gid) == (uid, gid)
        assert stat.S_IMODE(s.st_mode) == 0o600


def test_login_and_logout_log_lines(pop):
    texts = [sample(i) for i in range(3)]
    for t in texts:
        pop.put("olivia", t)
    with session(pop, "olivia") as c:
        sizes = c.list()
        c.retr(1)
        c.retr(3)
        assert c.cmd("TOP 2 0") == "+OK"
        top = c.body()
        assert c.cmd("DELE 1").startswith("+OK")
        c.quit()
    log = pop.log()
    assert re.search(rf"postern/pop3d\[\d+\]: login: user=<"
                     rf"{re.escape(addr('olivia'))}>, method=PLAIN, "
                     r"rip=127\.0\.0\.1, lip=127\.0\.0\.1$", log, re.M)
    line = logout_line(pop, "olivia")
    assert line["how"] == "Logged out" and line["rip"] == "127.0.0.1"
    assert (line["retr"], line["retr_bytes"]) == ("2",
                                                 str(sizes[0] + sizes[2]))
    assert (line["top"], line["top_bytes"]) == ("1", str(len(top)))
    assert (line["dele"], line["msgs"]) == ("1", "3")
    assert line["size"] == str(sum(sizes))


# --- real clients ---------------------------------------------------------------

class SourcePOP3(poplib.POP3):
    """poplib.POP3 from another loopback address."""

    def __init__(self, host, port, source, timeout=10):
        self.source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


def test_poplib_plain(pop):
    pop.put("peggy", sample(1))
    p = poplib.POP3("127.0.0.1", pop.ports["plain"], timeout=10)
    assert p.getwelcome().startswith(b"+OK")
    p.user(addr("peggy"))
    p.pass_(password("peggy"))
    assert p.stat() == (1, len(crlf(sample(1))))
    resp, lines, octets = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == crlf(sample(1))
    assert octets >= len(crlf(sample(1)))
    assert p.uidl()[1][0].split()[0] == b"1"
    p.quit()


def test_poplib_stls(pop):
    pop.put("rupert", sample(1))
    p = SourcePOP3("127.0.0.1", pop.ports["plain"], OUTSIDE)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.user(addr("rupert"))
    assert "STLS" in p.capa()
    p.stls(context=client_context(pop.certs.ca_cert))
    assert "STLS" not in p.capa() and "USER" in p.capa()
    p.user(addr("rupert"))
    p.pass_(password("rupert"))
    assert p.stat()[0] == 1
    p.dele(1)
    p.quit()
    assert pop.files("rupert") == {}


def test_poplib_pop3_ssl(pop):
    pop.put("sybil", sample(1))
    ctx = ssl.create_default_context(cafile=pop.certs.ca_cert)
    # POP3_SSL checks the name it connects to: 127.0.0.1 is in the SAN.
    p = poplib.POP3_SSL("127.0.0.1", pop.ports["ssl"], context=ctx,
                        timeout=10)
    assert p.getwelcome().startswith(b"+OK")
    assert "STLS" not in p.capa() and "USER" in p.capa()
    p.user(addr("sybil"))
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.pass_("Wrong-pw-6")
    p.user(addr("sybil"))
    p.pass_(password("sybil"))
    assert b"\r\n".join(p.retr(1)[1]) + b"\r\n" == crlf(sample(1))
    p.quit()
    assert re.search(r"postern/pop3s/pop3d\[\d+\]: login: user=<"
                     + re.escape(addr("sybil")) + ">.*, TLS$", pop.log(),
                     re.M)


def curl(*args, timeout=30):
    res = subprocess.run(["curl", "-sS", "--max-time", "20", *args],
                         capture_output=True, timeout=timeout)
    return res


def test_curl(pop):
    """curl pop3:// (plaintext from localhost, and with --ssl-reqd over
    STLS) and pop3s://, the server verified against the test CA."""
    pop.deliver("curl", message("curl one", "c1@example.org",
                                body=".dot\n..dots\nend\n"))
    pop.deliver("curl", message("curl two", "c2@example.org"))
    stored = [crlf(x) for x in pop.contents("curl")]
    user = f"{addr('curl')}:{password('curl')}"
    plain = f"pop3://127.0.0.1:{pop.ports['plain']}"
    tls = f"pop3s://127.0.0.1:{pop.ports['ssl']}"
    ca = pop.certs.ca_cert
    r = curl("--user", user, plain + "/1")
    assert r.returncode == 0, r.stderr
    first = r.stdout
    assert first in stored
    # --ssl-reqd: STLS or nothing.
    r = curl("--ssl-reqd", "--cacert", ca, "--user", user, plain + "/1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == first
    r = curl("--cacert", ca, "--user", user, tls + "/2")
    assert r.returncode == 0, r.stderr
    assert sorted([first, r.stdout]) == sorted(stored)
    # The list and the UIDLs (pop3s, -k this time).
    r = curl("-k", "--user", user, tls + "/")
    assert r.returncode == 0, r.stderr
    sizes = [int(x.split()[1]) for x in r.stdout.decode().splitlines()]
    assert sorted(sizes) == sorted(len(x) for x in stored)
    r = curl("-k", "--user", user, "-X", "UIDL", tls + "/")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.decode().splitlines()) == 2
    # Without the CA the certificate is not trusted.
    r = curl("--ssl-reqd", "--user", user, plain + "/1")
    assert r.returncode != 0
    # Wrong password: curl fails, nothing retrieved.
    r = curl("--user", f"{addr('curl')}:Wrong-pw-7", plain + "/1")
    assert r.returncode != 0 and r.stdout == b""
    # DELE through curl: -X DELE with -I (no transfer).
    r = curl("--user", user, "-X", "DELE", "-I", plain + "/1")
    assert r.returncode == 0, r.stderr
    assert len(pop.files("curl")) == 1


def fetchmail(pop, home, user, server_opts, user_opts, *args):
    """Run fetchmail with a private rc file and HOME; every message goes
    through an MDA into home/out/N.  Returns (exit code, output, [the
    messages it delivered, in order])."""
    out = os.path.join(home, "out")
    os.makedirs(out, exist_ok=True)
    mda = os.path.join(home, "mda.sh")
    with open(mda, "w") as f:
        f.write(f"#!/bin/sh\nn=$(ls {out} | wc -l)\n"
                f"cat > {out}/$(printf %04d $n)\n")
    os.chmod(mda, 0o755)
    rc = os.path.join(home, "fetchmailrc")
    with open(rc, "w") as f:
        f.write("set no bouncemail\n"
                f"poll {HOSTNAME} via 127.0.0.1 {server_opts}\n"
                f'  user "{addr(user)}" there with password '
                f'"{password(user)}" is "root" here\n'
                f'  mda "{mda}" {user_opts}\n')
    os.chmod(rc, 0o600)
    before = set(os.listdir(out))
    env = dict(os.environ, HOME=home)
    res = subprocess.run(["fetchmail", "-f", rc, "--nodetach", "-v",
                          "--pidfile", os.path.join(home, "pid"), *args],
                         capture_output=True, text=True, timeout=60,
                         env=env)
    new = sorted(set(os.listdir(out)) - before)
    return (res.returncode, res.stdout + res.stderr,
            [read(os.path.join(out, n)) for n in new])


def strip_fetchmail_received(data):
    """fetchmail adds one Received: header (with continuation lines) of
    its own; it says "with POP3 (fetchmail"."""
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"Received:") and (
                b"fetchmail" in line or b"fetchmail" in lines[i + 1]):
            j = i + 1
            while lines[j][:1] in (b" ", b"\t"):
                j += 1
            return b"\n".join(lines[:i] + lines[j:])
    raise AssertionError("no fetchmail Received: header")


def test_fetchmail(pop):
    """fetchmail over STLS (sslproto, certificate checked against the
    test CA), keeping; then over implicit TLS, deleting."""
    pop.deliver("fetch", message("fetch one", "f1@example.org",
                                 body=".dot\nbody\n"))
    pop.deliver("fetch", message("fetch two", "f2@example.org"))
    stored = pop.contents("fetch")
    home = tempfile.mkdtemp(prefix="postern-fetchmail-")
    try:
        ca = pop.certs.ca_cert
        tls = f'sslcertck sslcertfile "{ca}" sslcommonname "{HOSTNAME}"'
        stls = f"service {pop.ports['plain']} protocol pop3 uidl auth password"
        code, out, got = fetchmail(pop, home, "fetch", stls,
                                   f"sslproto 'tls1.2+' {tls}", "--keep")
        assert code == 0, out
        assert "STLS" in out and "upgrade to TLS succeeded" in out
        assert sorted(strip_fetchmail_received(x) for x in got) == \
            sorted(stored)
        assert len(pop.files("fetch")) == 2
        uidls = session_uidls(pop, "fetch")
        with open(os.path.join(home, ".fetchids")) as f:
            ids = [line.split()[1] for line in f if line.strip()]
        assert sorted(ids) == sorted(uidls)
        # Kept and seen: nothing new the second time (exit 1: no mail).
        code, out, got = fetchmail(pop, home, "fetch", stls,
                                   f"sslproto 'tls1.2+' {tls}", "--keep")
        assert code == 1 and got == [], out
        # Implicit TLS, all of it, deleting.
        pop3s = f"service {pop.ports['ssl']} protocol pop3 auth password"
        code, out, got = fetchmail(pop, home, "fetch", pop3s, f"ssl {tls}",
                                   "--all", "--nokeep")
        assert code == 0, out
        assert sorted(strip_fetchmail_received(x) for x in got) == \
            sorted(stored)
        assert pop.files("fetch") == {}
        # A certificate fetchmail cannot verify: it stops before logging in.
        code, out, got = fetchmail(pop, home, "fetch", pop3s, "ssl " + tls.replace(
            ca, pop.certs.rsa_cert), "--all")
        assert code not in (0, 1) and got == [], out
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_openssl_s_client_starttls(pop):
    pop.put("trent", sample(1))
    script = (f"CAPA\nUSER {addr('trent')}\nPASS {password('trent')}\n"
              "STAT\nQUIT\n")
    res = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{pop.ports['plain']}",
         "-starttls", "pop3", "-crlf", "-ign_eof", "-nocommands", "-CAfile",
         pop.certs.ca_cert, "-verify_hostname", HOSTNAME,
         "-verify_return_error"],
        input=script, capture_output=True, text=True, timeout=30)
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert "Verify return code: 0 (ok)" in out
    assert LOGGED_IN in out
    assert f"+OK 1 {len(crlf(sample(1)))}" in out
    assert "+OK Logging out." in out
    # After STLS the capabilities offer logging in, and no STLS.
    m = re.search(r"^\+OK\r?\nCAPA\r?\n(.*?)^\.\r?$", out, re.M | re.S)
    assert m, out
    caps = m.group(1).split()
    assert "USER" in caps and "STLS" not in caps


# --- last ----------------------------------------------------------------------

def test_no_password_in_the_log(pop):
    """Last of the module: no password or AUTH payload of any session."""
    log = pop.log()
    secrets = [password(u) for u in USERS]
    secrets += [b64(f"\0{addr(u)}\0{password(u)}") for u in USERS]
    secrets += [b64(password(u)) for u in USERS]
    leaked = [s for s in secrets if s in log]
    assert not leaked
    assert "Wrong-pw" not in log
