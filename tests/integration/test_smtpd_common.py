"""Shared helpers of the smtpd tests (test_smtpd_*.py); no tests here.

SMTPClient is a raw line-level client: it sends exactly the bytes a test
gives it and parses replies, so that tests can pipeline, send bare CR/LF,
skip the greeting and so on.  smtplib, swaks and smtp-source are used by
the tests as the real-world clients.  Its protocol-free part, LineClient,
also serves test_pop3d.py.
"""
import contextlib
import os
import re
import select
import socket
import ssl
import time

from conftest import checked_instance, wait_for
from queuefile import QueueFile, list_files, queue_files

LOCAL = "example.test"                  # in mydestination
HOSTNAME = "mx.example.test"            # myhostname (conftest default)
REMOTE = "remote.test"                  # nobody's destination

# A complete message body, CRLF line ends (what a client sends).
MESSAGE = (b"From: alice@example.org\r\nTo: bob@example.test\r\n"
           b"Subject: test\r\nMessage-ID: <m1@example.org>\r\n\r\n"
           b"Hello.\r\n")


class Reply:
    """One SMTP reply: code, lines (text after "NNN-" / "NNN ")."""

    def __init__(self, raw_lines):
        self.raw = raw_lines
        if not raw_lines:
            self.code = None
            self.lines = []
        else:
            self.code = int(raw_lines[-1][:3])
            self.lines = [line[4:] for line in raw_lines]

    @property
    def line(self):
        """The last line as sent, e.g. "250 2.1.0 Ok"."""
        return self.raw[-1] if self.raw else ""

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return f"Reply({self.raw!r})"


class ConnectionClosed(Exception):
    pass


class LineClient:
    """A client socket, plain or TLS, and what it has read but not yet
    parsed (buf); subclasses parse lines and replies from it.

    source: the local address to connect from; wrap: an ssl context to
    start with TLS (wrapper mode).
    """

    def __init__(self, port, timeout=10, host="127.0.0.1", source=None,
                 wrap=None):
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        if wrap is not None:
            self.sock = wrap.wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.buf = b""
        self.eof = False

    @property
    def tls(self):
        return isinstance(self.sock, ssl.SSLSocket)

    # --- raw I/O ---------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
            raise ConnectionClosed(f"connection closed; pending {self.buf!r}")
        self.buf += chunk

    def _ready(self, wait):
        if self.tls and self.sock.pending():
            return True
        r, _, _ = select.select([self.sock], [], [], wait)
        return bool(r)

    def closed(self, timeout=5):
        """True if the server closes the connection within timeout
        (anything still unread is kept in self.buf)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0 or not self._ready(left):
                return False
            try:
                self._fill()
            except ConnectionClosed:
                return True
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SMTPClient(LineClient):
    def __init__(self, port, timeout=10, host="127.0.0.1", greet=True,
                 **kw):
        super().__init__(port, timeout=timeout, host=host, **kw)
        self.greeting = self.reply() if greet else None

    def readline(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "surrogateescape")

    def reply(self):
        """Read one (possibly multi-line) reply."""
        lines = []
        while True:
            line = self.readline()
            if not re.match(r"^\d\d\d[ -]", line) and line[3:] != "":
                raise AssertionError(f"malformed reply line {line!r}")
            lines.append(line)
            if len(line) < 4 or line[3] == " ":
                return Reply(lines)

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, line):
        """Send one command line (CRLF added) and read its reply."""
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        self.send(line + b"\r\n")
        return self.reply()

    def nothing_pending(self, wait=0.3):
        """True if the server sends nothing more within wait seconds."""
        if self.buf:
            return False
        r, _, _ = select.select([self.sock], [], [], wait)
        return not r

    # --- conveniences ----------------------------------------------------
    def ehlo(self, name="client.example.org"):
        r = self.cmd(f"EHLO {name}")
        assert r.code == 250, r
        return r

    def helo(self, name="client.example.org"):
        r = self.cmd(f"HELO {name}")
        assert r.code == 250, r
        return r

    def xclient(self, addr="192.0.2.7", name="outside.example"):
        r = self.cmd(f"XCLIENT ADDR={addr} NAME={name}")
        assert r.code == 220, r
        return r

    def data(self, content, expect=250):
        """DATA with content (bytes, already dot-stuffed, CRLF line ends,
        without the final "."); returns the final reply."""
        r = self.cmd("DATA")
        assert r.code == 354, r
        self.send(content + b".\r\n")
        r = self.reply()
        if expect is not None:
            assert r.code == expect, r
        return r

    def transaction(self, sender="alice@example.org",
                    rcpts=("bob@example.test",), content=MESSAGE):
        """A whole MAIL/RCPT/DATA transaction; returns the queue ID."""
        r = self.cmd(f"MAIL FROM:<{sender}>")
        assert r.line == "250 2.1.0 Ok", r
        for rcpt in rcpts:
            r = self.cmd(f"RCPT TO:<{rcpt}>")
            assert r.line == "250 2.1.5 Ok", r
        r = self.data(content)
        return queue_id_of(r)


def queue_id_of(reply):
    m = re.match(r"^250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)$", reply.line)
    assert m, f"not a queued reply: {reply!r}"
    return m.group(1)


# --- instances ------------------------------------------------------------

BASE_PARAMS = {
    "mydestination": f"{LOCAL}, $myhostname, localhost",
    "local_recipient_maps": "",
    "smtpd_error_sleep_time": "0",
}


def start_smtpd(instance, extra_master="", **params):
    """Write master.cf (mail services) and main.cf (BASE_PARAMS + params)
    and start master; returns the smtpd port once it listens."""
    merged = dict(BASE_PARAMS)
    merged.update(params)
    instance.mail_services(extra_master)
    instance.write_main_cf(**merged)
    instance.start()
    port = instance.port("smtp")
    wait_for(lambda: f"listening on 127.0.0.1:{port}" in read_log(instance),
             what="smtpd listener")
    return port


def outside(instance, **params):
    """Parameters that make 127.0.0.1 an untrusted (outside) client."""
    p = {"mynetworks": "10.0.0.0/8",
         "smtpd_client_event_limit_exceptions": ""}
    p.update(params)
    return p


def incoming(instance):
    return queue_files(os.path.join(instance.queue_dir, "incoming"))


def incoming_names(instance):
    return list_files(os.path.join(instance.queue_dir, "incoming"))


def queue_file(instance, qid, queue="incoming"):
    return QueueFile.read(os.path.join(instance.queue_dir, queue, qid))


def read_log(instance):
    """The whole log as text; bytes that are not UTF-8 (a program that
    logs garbage) come out as U+FFFD instead of failing the read."""
    try:
        with open(instance.log_file, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def wait_log(instance, pattern, timeout=10):
    """Wait for a log line matching the regular expression; returns the
    match object."""
    rx = re.compile(pattern, re.M)
    return wait_for(lambda: rx.search(read_log(instance)), timeout=timeout,
                    what=f"log line /{pattern}/")


# The syslog-like prefix pflogsumm needs: "Mmm dd HH:MM:SS host name[pid]: ".
LOG_LINE = re.compile(r"^(\w{3} [ \d]\d \d\d:\d\d:\d\d) (\S+) "
                      r"(postern/(\S+?)\[(\d+)\]): (.*)$")


def log_lines(instance, program="smtpd"):
    """The log lines of program, without the "time host " part."""
    out = []
    for line in read_log(instance).splitlines():
        m = LOG_LINE.match(line)
        if m and m.group(4) == program:
            out.append(f"{m.group(3)}: {m.group(6)}")
    return out


def messages(instance, program="smtpd"):
    """Log messages of program, without the prefix up to "]: "."""
    return [line.split("]: ", 1)[1] for line in log_lines(instance, program)]


def assert_logged(instance, text, like=None, program="smtpd"):
    """text is one of program's log messages (after "]: "); on failure
    show the messages that contain like (default: text's first 30
    characters)."""
    msgs = messages(instance, program)
    if text in msgs:
        return
    probe = like or text[:30]
    near = [m for m in msgs if probe in m]
    raise AssertionError(f"not logged: {text!r}\nsimilar: {near!r}")


def smtpd_messages_settled(instance, n_disconnects, timeout=10):
    """Wait until smtpd has logged n_disconnects "disconnect from" lines;
    returns messages(instance)."""
    wait_for(lambda: sum(1 for m in messages(instance)
                         if m.startswith("disconnect from ")) >= n_disconnects,
             timeout=timeout, what=f"{n_disconnects} disconnect log lines")
    return messages(instance)


@contextlib.contextmanager
def shared_instance(files=None, **params):
    """An instance for a whole module (tests that only read from a server
    configured once); stopped and checked for sanitizer reports at the
    end, like conftest's instance fixture.  files: {relative path: text}
    written under the instance root first; "{root}" in a parameter value
    is replaced by that root."""
    with checked_instance() as inst:
        for relpath, text in (files or {}).items():
            inst.write_file(relpath, text)
        params = {k: v.replace("{root}", inst.root)
                  for k, v in params.items()}
        inst.smtp_port = start_smtpd(inst, **params)
        yield inst


# A queue ID: Postern's long IDs (postern-queue(5)).
QUEUE_ID = r"[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{6,}z[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+"
