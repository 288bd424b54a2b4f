"""Remote peers for the tests of Postern's smtp and lmtp client
(test_smtp_client.py, and the DNS tests); no tests here.

- ScriptedSMTP: an SMTP (or LMTP) server in Python, on a free loopback
  port, whose replies a test chooses per command, per sender and per
  recipient (also: no greeting, a closed connection, STARTTLS that is
  broken).  It records every session: the command lines with the read
  that brought each one (to see pipelining), and each transaction's
  envelope and the DATA bytes exactly as they came over the wire.
- PostfixPeer: a private instance of Debian's Postfix (postfix -c DIR)
  with its own queue, data directory and log, smtpd listeners on free
  loopback ports (plain, TLS with a certificate from the test CA, AUTH
  through Cyrus SASL with a sasldb), delivering every user of peer.test
  into a Maildir under its directory.
- DovecotPeer: Dovecot's LMTP server (dovecot -F -c CONF) with a Unix
  socket and a loopback TCP listener, users in a passwd-file, Maildirs
  under its directory.
- BlackHole: a loopback port whose connect() hangs (connect timeouts).
- peer_certs: a session fixture with a certificate for peer.example.test
  (and 127.0.0.1) signed by tls_common's test CA, and another CA.
- deliveries() / wait_deliveries(): Postfix delivery lines, also those
  with the " tls=..." summary Postern appends after the reason.

PostfixPeer and DovecotPeer need root (they start as root and drop
privileges, as in production).

Every process is started here and stopped here, by its own stop command
and then by pid: never by name.
"""
import os
import pwd
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import child_pids, free_port, pid_alive, wait_for
from tls_common import _run

PEER_HOST = "peer.example.test"         # the peers' host name (greeting)
PEER_DOMAIN = "peer.test"               # PostfixPeer's mailbox domain
LMTP_DOMAIN = "lmtp.test"               # DovecotPeer's users' domain

CLOSE = object()                        # reply: close the connection
HANG = object()                         # reply: say nothing, keep it open
BROKEN = "broken"                       # ScriptedSMTP(starttls=BROKEN)

DEFAULT_EHLO = ("PIPELINING", "SIZE 10240000", "8BITMIME", "DSN",
                "SMTPUTF8", "ENHANCEDSTATUSCODES")

ADDR = re.compile(r"^(?:FROM|TO):\s*<([^>]*)>(.*)$", re.I | re.S)


# --- a scriptable SMTP/LMTP server ---------------------------------------

class Transaction:
    """One MAIL ... end of DATA, as the server saw it."""

    def __init__(self, arg):
        m = ADDR.match(arg)
        self.mail_arg = arg                     # after "MAIL "
        self.sender = m.group(1) if m else None
        self.mail_params = m.group(2).split() if m else []
        self.rcpts = []                         # every RCPT address
        self.rcpt_params = {}                   # address -> [params]
        self.accepted = []                      # those given a 2xx
        self.wire = None                        # DATA bytes, stuffed, CRLF
        self.replies = []                       # (command, reply) sent
        self.started = time.monotonic()         # MAIL came
        self.ended = None                       # the last reply went

    @property
    def content(self):
        """The message: the wire bytes without dot-stuffing."""
        if self.wire is None:
            return None
        lines = self.wire.split(b"\r\n")
        return b"\r\n".join(ln[1:] if ln.startswith(b".") else ln
                            for ln in lines)


class Session:
    """One connection to the server."""

    def __init__(self, server, sock, peer):
        self.server = server
        self.sock = sock
        self.peer = peer
        self.buf = b""
        self.batch = 0                          # reads so far
        self.lines = []                         # (read number, line)
        self.transactions = []
        self.txn = None
        self.helo = None                        # (verb, argument)
        self.tls = False
        self.closed = False

    # --- I/O ------------------------------------------------------------
    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (OSError, ssl.SSLError):
            chunk = b""
        if not chunk:
            raise EOFError
        self.batch += 1
        self.buf += chunk

    def read_line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def read_data(self):
        """Bytes up to the lone dot, wire form (dot-stuffed), CRLF ends."""
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            end = self.buf.find(b"\r\n.\r\n")
            if end >= 0:
                data = self.buf[:end + 2]
                self.buf = self.buf[end + 5:]
                return data
            self._fill()

    def send(self, reply):
        if reply is HANG:
            # Say nothing until the client gives up (or the test ends).
            while not self.server.stopping:
                r, _, _ = select.select([self.sock], [], [], 0.2)
                if r:
                    try:
                        if not self.sock.recv(65536):
                            break
                    except OSError:
                        break
            raise EOFError
        if reply is CLOSE:
            raise EOFError
        if isinstance(reply, (list, tuple)):
            reply = "\n".join(reply)
        data = "".join(line + "\r\n" for line in reply.split("\n"))
        self.sock.sendall(data.encode())

    # --- the conversation -------------------------------------------------
    def reply_for(self, name, default, *args):
        """The server's reply setting name: a string, CLOSE, HANG, or a
        callable(session, *args) returning one (None: the default)."""
        value = getattr(self.server, name)
        if callable(value):
            value = value(self, *args)
        return default if value is None else value

    def run(self):
        try:
            greeting = self.reply_for(
                "greeting", f"220 {PEER_HOST} ESMTP scripted")
            self.send(greeting)
            if not greeting.startswith("2"):
                # Like Postfix's smtpd in that state: wait for QUIT.
                while True:
                    line = self.read_line()
                    self.lines.append((self.batch, line))
                    if line.upper() == "QUIT":
                        self.send("221 2.0.0 Bye")
                        return
                    self.send("503 5.5.0 Error: go away")
            while True:
                line = self.read_line()
                self.lines.append((self.batch, line))
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                handler = getattr(self, "cmd_" + verb.lower(), None)
                if handler is None:
                    self.send("502 5.5.2 Error: command not recognized")
                    continue
                if handler(verb, arg) is False:
                    return
        except (EOFError, OSError, ssl.SSLError):
            pass
        finally:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def hello_reply(self, verb):
        ext = self.server.ehlo
        if callable(ext):
            ext = ext(self)
        ext = list(ext)
        if self.server.starttls and not self.tls:
            ext.append("STARTTLS")
        if self.server.auth and (self.tls or not self.server.auth_tls_only):
            ext.append("AUTH " + self.server.auth)
        lines = [PEER_HOST] + ext
        return "\n".join(f"250{'-' if i < len(lines) - 1 else ' '}{t}"
                         for i, t in enumerate(lines))

    def cmd_ehlo(self, verb, arg):
        if self.server.lmtp or self.server.ehlo is None:
            self.send("500 5.5.2 Error: command not recognized")
            return
        self.helo = (verb, arg)
        self.txn = None
        self.send(self.hello_reply(verb))

    def cmd_lhlo(self, verb, arg):
        if not self.server.lmtp:
            self.send("500 5.5.2 Error: command not recognized")
            return
        self.helo = (verb, arg)
        self.send(self.hello_reply(verb))

    def cmd_helo(self, verb, arg):
        if self.server.lmtp:
            self.send("500 5.5.2 Error: command not recognized")
            return
        self.helo = (verb, arg)
        self.txn = None
        self.send(f"250 {PEER_HOST}")

    def cmd_starttls(self, verb, arg):
        ctx = self.server.starttls
        if not ctx or self.tls:
            self.send("502 5.5.1 Error: command not implemented")
            return
        if ctx is BROKEN:
            self.send("220 2.0.0 Ready to start TLS")
            self.sock.sendall(b"this is not a TLS server hello\r\n" * 4)
            return False
        # What a man in the middle would add: plaintext after the 220.
        self.sock.sendall(b"220 2.0.0 Ready to start TLS\r\n"
                          + self.server.starttls_inject.encode())
        self.buf = b""
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.tls = True
        self.helo = None

    def cmd_auth(self, verb, arg):
        self.send("535 5.7.8 Error: authentication failed")

    def cmd_mail(self, verb, arg):
        if self.txn is not None:
            self.send("503 5.5.1 Error: nested MAIL command")
            return
        txn = Transaction(arg)
        self.transactions.append(txn)
        reply = self.reply_for("mail", "250 2.1.0 Ok", txn)
        txn.replies.append(("MAIL", reply))
        if isinstance(reply, str) and reply.startswith("2"):
            self.txn = txn
        self.send(reply)

    def cmd_rcpt(self, verb, arg):
        if self.txn is None:
            self.send("503 5.5.1 Error: need MAIL command")
            return
        m = ADDR.match(arg)
        addr = m.group(1) if m else arg
        self.txn.rcpts.append(addr)
        self.txn.rcpt_params[addr] = m.group(2).split() if m else []
        reply = self.server.rcpt_replies.get(addr)
        if reply is None:
            reply = self.reply_for("rcpt", "250 2.1.5 Ok", self.txn, addr)
        self.txn.replies.append(("RCPT " + addr, reply))
        if isinstance(reply, str) and reply.startswith("2"):
            self.txn.accepted.append(addr)
        self.send(reply)

    def cmd_data(self, verb, arg):
        txn = self.txn
        if txn is None:
            self.send("503 5.5.1 Error: need RCPT command")
            return
        if not txn.accepted:
            self.send("554 5.5.1 Error: no valid recipients")
            return
        reply = self.reply_for("data", "354 End data with <CR><LF>.<CR><LF>",
                               txn)
        txn.replies.append(("DATA", reply))
        self.send(reply)
        if not (isinstance(reply, str) and reply.startswith("354")):
            return
        txn.wire = self.read_data()
        self.txn = None
        if self.server.lmtp:
            for rcpt in txn.accepted:
                r = self.reply_for("eod", "250 2.0.0 <%s> Ok" % rcpt, txn,
                                   rcpt)
                txn.replies.append(("EOD " + rcpt, r))
                self.send(r)
        else:
            r = self.reply_for("eod", "250 2.0.0 Ok: queued as 4ScR1pTeD",
                               txn, None)
            txn.replies.append(("EOD", r))
            self.send(r)
        txn.ended = time.monotonic()

    def cmd_rset(self, verb, arg):
        self.txn = None
        self.send("250 2.0.0 Ok")

    def cmd_noop(self, verb, arg):
        self.send("250 2.0.0 Ok")

    def cmd_quit(self, verb, arg):
        self.send("221 2.0.0 Bye")
        return False


class ScriptedSMTP:
    """An SMTP server on 127.0.0.1:port whose replies the test sets.

    Reply settings (attributes, changeable while it runs): a reply string
    (lines separated by "\\n"), CLOSE, HANG, None for the default, or a
    callable(session, ...) returning one of those:
      greeting()                  "220 peer.example.test ESMTP scripted"
      mail(txn)                   "250 2.1.0 Ok"
      rcpt(txn, address)          "250 2.1.5 Ok" (rcpt_replies first:
                                  {address: reply})
      data(txn)                   "354 ..."
      eod(txn, rcpt)              "250 2.0.0 Ok: queued as 4ScR1pTeD";
                                  LMTP: once per accepted rcpt
    ehlo: the extensions after the first EHLO line (None: 500 to EHLO);
    starttls: an ssl.SSLContext, BROKEN (220, then garbage), or None;
    starttls_inject: plaintext sent with the 220 to STARTTLS (the
    response injection of a man in the middle);
    auth: mechanisms to advertise (every AUTH fails);
    lmtp: LHLO instead of EHLO/HELO, one reply per recipient after DATA.
    """

    def __init__(self, lmtp=False, ehlo=DEFAULT_EHLO, starttls=None,
                 starttls_inject="", auth=None, auth_tls_only=False,
                 **replies):
        self.lmtp = lmtp
        self.ehlo = ehlo
        self.starttls = starttls
        self.starttls_inject = starttls_inject
        self.auth = auth
        self.auth_tls_only = auth_tls_only
        self.greeting = self.mail = self.rcpt = self.data = self.eod = None
        self.rcpt_replies = {}
        for k, v in replies.items():
            if not hasattr(self, k):
                raise TypeError(f"ScriptedSMTP: unknown setting {k}")
            setattr(self, k, v)
        self.sessions = []
        self.stopping = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    @property
    def nexthop(self):
        return f"[127.0.0.1]:{self.port}"

    @property
    def namaddr(self):
        """How Postern names this server in logs: host[addr]:port."""
        return f"127.0.0.1[127.0.0.1]:{self.port}"

    def _accept(self):
        while not self.stopping:
            try:
                sock, peer = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            sock.settimeout(60)
            sess = Session(self, sock, peer)
            self.sessions.append(sess)
            t = threading.Thread(target=sess.run, daemon=True)
            self.threads.append(t)
            t.start()

    def transactions(self):
        return [t for s in list(self.sessions) for t in s.transactions]

    def delivered(self):
        """Transactions whose DATA came through."""
        return [t for t in self.transactions() if t.wire is not None]

    def wait_delivered(self, n=1, timeout=20):
        return wait_for(lambda: len(self.delivered()) >= n and
                        self.delivered(), timeout=timeout,
                        what=f"{n} message(s) at the scripted server")

    def kick(self, reply="421 4.4.2 peer.example.test Error: timeout "
             "exceeded"):
        """Say reply on every open connection and close it (a server
        ending idle sessions)."""
        for s in list(self.sessions):
            if s.closed:
                continue
            try:
                s.sock.sendall(reply.encode() + b"\r\n")
                s.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        wait_for(lambda: all(s.closed for s in list(self.sessions)),
                 what="the kicked sessions to end")

    def waiting(self):
        """Transactions whose content came in and whose final reply has
        not gone out yet."""
        return [t for t in self.transactions()
                if t.wire is not None and t.ended is None]

    def max_parallel(self):
        """The most transactions that were under way at one time (from
        MAIL to the reply to the final dot)."""
        events = []
        for t in self.delivered():
            events += [(t.started, 1), (t.ended or t.started, -1)]
        most = now = 0
        for _, step in sorted(events, key=lambda e: (e[0], e[1])):
            now += step
            most = max(most, now)
        return most

    def commands(self):
        """Every command line of every session, in order."""
        return [line for s in list(self.sessions) for _, line in s.lines]

    def stop(self):
        self.stopping = True
        try:
            self.listener.close()
        except OSError:
            pass
        for s in list(self.sessions):
            # shutdown() wakes a thread blocked in recv(); close() not.
            for end in (lambda: s.sock.shutdown(socket.SHUT_RDWR),
                        s.sock.close):
                try:
                    end()
                except OSError:
                    pass
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def server_context(cert, key):
    """An ssl server context for ScriptedSMTP(starttls=...)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class BlackHole:
    """A loopback port where connections are never accepted: a listener
    with a full backlog, so that the kernel drops further SYNs and
    connect() hangs until the client's own timeout."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []
        # The accept queue of listen(0) holds one connection; fill it
        # (and a spare) without blocking.
        for _ in range(3):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(s)
        time.sleep(0.1)

    def hangs(self, wait=0.5):
        """Does a new connect() hang (the precondition of the tests)?"""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(wait)
        try:
            s.connect(("127.0.0.1", self.port))
            return False
        except socket.timeout:
            return True
        except OSError:
            return False
        finally:
            s.close()

    def close(self):
        for s in self.fillers:
            s.close()
        self.listener.close()


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


# --- certificates for the peers --------------------------------------------

class PeerCerts:
    """peer.example.test (and IP 127.0.0.1) signed by the test CA; also
    the CA itself and a CA file of a different, unrelated CA."""


@pytest.fixture(scope="session")
def peer_certs(certs):
    root = tempfile.mkdtemp(prefix="postern-peer-certs-")
    os.chmod(root, 0o755)
    c = PeerCerts()
    c.root = root
    c.ca_cert = certs.ca_cert
    c.key = os.path.join(root, "peer.key")
    c.cert = os.path.join(root, "peer.crt")
    csr = os.path.join(root, "peer.csr")
    ext = os.path.join(root, "peer.ext")
    try:
        _run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes",
              "-keyout", c.key, "-out", csr, "-subj", f"/CN={PEER_HOST}"])
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{PEER_HOST},IP:127.0.0.1\n"
                    "basicConstraints=CA:FALSE\n")
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", certs.ca_cert,
              "-CAkey", certs.ca_key, "-CAcreateserial", "-CAserial",
              os.path.join(root, "ca.srl"), "-out", c.cert, "-days", "30",
              "-extfile", ext])
        os.chmod(c.key, 0o644)          # read by Postfix's smtpd user too
        # Another CA, which signed nothing here: "the wrong CA".
        c.other_ca_key = os.path.join(root, "other-ca.key")
        c.other_ca_cert = os.path.join(root, "other-ca.crt")
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
              "-keyout", c.other_ca_key, "-out", c.other_ca_cert, "-days",
              "30", "-subj", "/CN=Some Other CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- processes we start ----------------------------------------------------

def proc_start(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def descendants(pid):
    """{pid: start time} of the live descendants of pid."""
    out, stack = {}, [pid]
    while stack:
        for kid in child_pids(stack.pop()):
            out[kid] = proc_start(kid)
            stack.append(kid)
    return out


def kill_seen(seen):
    """SIGKILL the processes in {pid: start time} that are still the very
    ones we saw (same start time: the pid was not reused)."""
    for pid, start in seen.items():
        if start is not None and pid_alive(pid) and proc_start(pid) == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# --- a private Postfix ----------------------------------------------------

class PostfixPeer:
    """Debian's Postfix in root: config in etc/, queue in queue/, data
    in data/, log in maillog, mail for any user@peer.test in
    vmail/peer.test/USER/ (Maildir, owned by nobody).

    listeners: {name: {smtpd -o parameter: value}}: one smtpd on a free
    loopback port each (self.ports[name]).  sasl_users: {user: password}
    for a sasldb at sasldb2; conf files NAME.conf for Cyrus SASL (the
    listener's smtpd_sasl_path) come from sasl_confs {NAME: mech_list}.
    """

    def __init__(self, root, listeners, params=None, sasl_users=None,
                 sasl_confs=None):
        self.root = root
        self.config_dir = os.path.join(root, "etc")
        self.queue_dir = os.path.join(root, "queue")
        self.data_dir = os.path.join(root, "data")
        self.vmail = os.path.join(root, "vmail")
        self.sasl_dir = os.path.join(root, "sasl")
        self.log_file = os.path.join(root, "maillog")
        self.pid_file = os.path.join(self.queue_dir, "pid", "master.pid")
        for d in (self.config_dir, self.queue_dir, self.data_dir, self.vmail,
                  self.sasl_dir):
            os.makedirs(d, exist_ok=True)
        os.chmod(root, 0o755)
        pf = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        os.chown(self.data_dir, pf.pw_uid, pf.pw_gid)
        os.chown(self.vmail, nobody.pw_uid, nobody.pw_gid)
        self.seen = {}
        self.started = False
        self.ports = {name: free_port() for name in listeners}
        self.sasldb = os.path.join(self.sasl_dir, "sasldb2")
        for user, password in (sasl_users or {}).items():
            res = subprocess.run(["saslpasswd2", "-p", "-c", "-f",
                                  self.sasldb, "-u", PEER_HOST, user],
                                 input=password, text=True,
                                 capture_output=True, timeout=30)
            assert res.returncode == 0, res.stderr
        if sasl_users:
            os.chmod(self.sasldb, 0o644)
        # Debian's Postfix reads NAME.conf from $config_directory/sasl,
        # whatever cyrus_sasl_config_path says: put it in both.
        for name, mechs in (sasl_confs or {}).items():
            for d in ("sasl", "etc/sasl"):
                self.write(f"{d}/{name}.conf",
                           "pwcheck_method: auxprop\n"
                           "auxprop_plugin: sasldb\n"
                           f"sasldb_path: {self.sasldb}\n"
                           f"mech_list: {mechs}\n")
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "maillog_file": self.log_file,
            "maillog_file_prefixes": root,
            "syslog_name": "postfix-peer",
            "myhostname": PEER_HOST,
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "local_header_rewrite_clients": "",
            "virtual_mailbox_domains": PEER_DOMAIN,
            "virtual_mailbox_base": self.vmail,
            # One Maildir for all (virtual(8) takes no $1 from pcre:);
            # mail_files() tells the users apart by Delivered-To.
            "virtual_mailbox_maps": f"static:{PEER_DOMAIN}/",
            "default_transport": "error:the peer sends nothing out",
            "relay_transport": "error:the peer sends nothing out",
            "virtual_uid_maps": f"static:{nobody.pw_uid}",
            "virtual_gid_maps": f"static:{nobody.pw_gid}",
            "smtpd_tls_loglevel": "1",
            "cyrus_sasl_config_path": self.sasl_dir,
            "smtputf8_enable": "yes",
            "message_size_limit": "10240000",
        }
        main.update(params or {})
        self.write("etc/main.cf",
                   "".join(f"{k} = {v}\n" for k, v in main.items()))
        master = []
        for name, opts in listeners.items():
            o = "".join(f"\n  -o {k}={v}" for k, v in opts.items())
            master.append(f"127.0.0.1:{self.ports[name]} inet n - n - - "
                          f"smtpd{o}\n")
        master.append(
            "pickup unix n - n 60 1 pickup\n"
            "cleanup unix n - n - 0 cleanup\n"
            "qmgr unix n - n 300 1 qmgr\n"
            "tlsmgr unix - - n 1000? 1 tlsmgr\n"
            "rewrite unix - - n - - trivial-rewrite\n"
            "bounce unix - - n - 0 bounce\n"
            "defer unix - - n - 0 bounce\n"
            "trace unix - - n - 0 bounce\n"
            "verify unix - - n - 1 verify\n"
            "proxymap unix - - n - - proxymap\n"
            "anvil unix - - n - 1 anvil\n"
            "scache unix - - n - 1 scache\n"
            "showq unix n - n - - showq\n"
            "error unix - - n - - error\n"
            "retry unix - - n - - error\n"
            "discard unix - - n - - discard\n"
            "smtp unix - - n - - smtp\n"
            "relay unix - - n - - smtp\n"
            "virtual unix - n n - - virtual\n"
            "local unix - n n - - local\n"
            "postlog unix-dgram n - n - 1 postlogd\n")
        self.write("etc/master.cf", "".join(master))

    def write(self, relpath, text):
        path = os.path.join(self.root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def nexthop(self, name):
        return f"[127.0.0.1]:{self.ports[name]}"

    def namaddr(self, name):
        return f"127.0.0.1[127.0.0.1]:{self.ports[name]}"

    def master_pid(self):
        try:
            with open(self.pid_file) as f:
                pid = int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError, PermissionError):
            return None
        return pid if pid and pid_alive(pid) else None

    def postfix(self, *args, check=True):
        res = subprocess.run(["/usr/sbin/postfix", "-c", self.config_dir,
                              *args], capture_output=True, text=True,
                             timeout=60)
        if check and res.returncode != 0:
            raise AssertionError(f"postfix {' '.join(args)} exited "
                                 f"{res.returncode}: {res.stdout}"
                                 f"{res.stderr}\n{self.log()[-2000:]}")
        return res

    def start(self):
        self.started = True
        self.postfix("start")
        pid = wait_for(self.master_pid, what="Postfix master pid")
        self.seen[pid] = proc_start(pid)
        for port in self.ports.values():
            wait_for(lambda: port_listening(port), what=f"Postfix on {port}")
        return self

    def note(self):
        pid = self.master_pid()
        if pid:
            self.seen[pid] = proc_start(pid)
            self.seen.update(descendants(pid))

    def stop(self):
        if not self.started:
            return
        self.note()
        pid = self.master_pid()
        if pid:
            self.postfix("stop", check=False)
            try:
                wait_for(lambda: not pid_alive(pid), timeout=15,
                         what="Postfix master exit")
            except AssertionError:
                pass
        kill_seen(self.seen)
        self.seen.clear()
        self.started = False

    def log(self):
        return read_text(self.log_file)

    def mail_files(self, user):
        """The files in the Maildir delivered to user@peer.test."""
        out = []
        want = f"Delivered-To: {user}@{PEER_DOMAIN}\n".encode()
        for sub in ("new", "cur"):
            d = os.path.join(self.vmail, PEER_DOMAIN, sub)
            for n in os.listdir(d) if os.path.isdir(d) else ():
                path = os.path.join(d, n)
                with open(path, "rb") as f:
                    if want in f.read(4096):
                        out.append(path)
        return sorted(out)

    def wait_mail(self, user, n=1, timeout=20):
        self.note()
        wait_for(lambda: len(self.mail_files(user)) >= n, timeout=timeout,
                 what=f"{n} message(s) for {user}@{PEER_DOMAIN} at Postfix")
        files = self.mail_files(user)
        assert len(files) == n, files
        out = []
        for p in files:
            with open(p, "rb") as f:
                out.append(f.read())
        return out


def port_listening(port):
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                return True
    return False


# --- Dovecot's LMTP server --------------------------------------------------

class DovecotPeer:
    """dovecot -F -c ROOT/dovecot.conf: LMTP on the Unix socket
    ROOT/run/lmtp (self.socket) and on 127.0.0.1:self.port; users of
    users (names, any domain: the local part is the user) in a
    passwd-file, their Maildirs in ROOT/home/USER/Maildir owned by
    nobody; the log in ROOT/dovecot.log."""

    def __init__(self, root, users=("dave", "erin")):
        self.root = root
        self.base_dir = os.path.join(root, "run")
        self.socket = os.path.join(self.base_dir, "lmtp")
        self.log_file = os.path.join(root, "dovecot.log")
        self.home = os.path.join(root, "home")
        self.port = free_port()
        self.proc = None
        self.seen = {}
        nobody = pwd.getpwnam("nobody")
        os.makedirs(self.home, exist_ok=True)
        os.chmod(root, 0o755)
        with open(os.path.join(root, "users"), "w") as f:
            for u in users:
                h = os.path.join(self.home, u)
                os.makedirs(h, exist_ok=True)
                os.chown(h, nobody.pw_uid, nobody.pw_gid)
                f.write(f"{u}::{nobody.pw_uid}:{nobody.pw_gid}::{h}::\n")
        self.conf = os.path.join(root, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(f"""\
base_dir = {self.base_dir}
state_dir = {root}/state
instance_name = postern-test-{self.port}
log_path = {self.log_file}
protocols = lmtp
listen = 127.0.0.1
ssl = no
auth_username_format = %Ln
mail_location = maildir:~/Maildir
lmtp_rcpt_check_quota = no
passdb {{
  driver = passwd-file
  args = {root}/users
}}
userdb {{
  driver = passwd-file
  args = {root}/users
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
""")

    def start(self):
        with open(os.path.join(self.root, "dovecot.stderr"), "w") as err:
            self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf],
                                         stdout=subprocess.DEVNULL,
                                         stderr=err)
        self.seen[self.proc.pid] = proc_start(self.proc.pid)
        try:
            wait_for(lambda: os.path.exists(self.socket) and
                     port_listening(self.port), what="Dovecot LMTP")
        except AssertionError:
            raise AssertionError(
                "Dovecot did not start: "
                + read_text(os.path.join(self.root, "dovecot.stderr"))
                + read_text(self.log_file))
        return self

    def stop(self):
        if self.proc is None:
            return
        self.seen.update(descendants(self.proc.pid))
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        kill_seen(self.seen)
        self.proc = None

    def log(self):
        return read_text(self.log_file)

    def mail_files(self, user):
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.home, user, "Maildir", sub)
            if os.path.isdir(d):
                out.extend(os.path.join(d, n) for n in os.listdir(d))
        return sorted(out)


def deliveries(log_text, to=None, status=None, qid=None):
    """Parsed delivery lines of a Postern log (every one must parse, with
    or without Postern's " tls=..." after the reason, and be counted by
    pflogsumm); those to=<to> with status and queue ID qid if given."""
    from test_delivery_common import DELIVERY, PFLOGSUMM
    out = []
    for line in log_text.splitlines():
        if ": to=<" not in line:
            continue
        m = DELIVERY.match(line)
        assert m, f"not a Postfix delivery line: {line!r}"
        assert PFLOGSUMM.search(line), f"pflogsumm would miss: {line!r}"
        if ((to is None or m["to"] == to)
                and (status is None or m["status"] == status)
                and (qid is None or m["qid"] == qid)):
            out.append(m)
    return out


def wait_deliveries(instance, to, status="sent", qid=None, count=1,
                    timeout=20):
    """Wait for count delivery lines to=<to> with status; returns them."""
    from test_delivery_common import read_log

    def found():
        ms = deliveries(read_log(instance), to, status, qid)
        return ms if len(ms) >= count else None
    return wait_for(found, timeout=timeout,
                    what=f"{count} line(s) to=<{to}> status={status}")
