"""Shared helpers of the TLS and AUTH tests (test_smtpd_tls.py,
test_smtpd_auth.py); no tests here.

- certs: a session-scoped fixture with self-signed RSA and ECDSA server
  certificates for mx.example.test (and 127.0.0.1), a small CA with a
  leaf certificate it signed, and smtpd_tls_chain_files style files
  (each key followed by its chain).
- make_sasldb(): a Cyrus sasldb with users and passwords (saslpasswd2).
- TLSClient: test_smtpd_common.SMTPClient that can STARTTLS, or start
  with TLS (wrapper mode, port 465 style), over Python's ssl module.
- openssl(): runs `openssl s_client` against a port and returns its
  output, for what Python's ssl cannot do (signature algorithms, session
  files, old protocol versions).
- Secrets: strings that must never show up in the log (passwords and
  the base64 AUTH payloads that carry them).
"""
import base64
import os
import re
import select
import shutil
import ssl
import subprocess
import tempfile
import time

import pytest

from test_smtpd_common import HOSTNAME, SMTPClient, read_log, wait_log

DOMAIN = "example.test"
USER = "alice@example.test"
PASSWORD = "c0rrect-H0rse-b4ttery"
WRONG_PASSWORD = "Wr0ng-Guess-77"
USER2 = "bob@example.test"
PASSWORD2 = "s3cond-Us3r-pw"


# --- certificates -------------------------------------------------------

class Certs:
    """Paths of the test keys and certificates (PEM).

    rsa_key, rsa_cert          self-signed RSA 2048 for mx.example.test
    ec_key, ec_cert            self-signed ECDSA P-256, same names
    rsa_chain, ec_chain        key followed by its certificate (one file)
    ca_cert                    a CA ("Postern Test CA")
    leaf_key, leaf_cert        an RSA certificate for mx.example.test
                               signed by that CA
    leaf_chain                 leaf key, leaf certificate, CA certificate
    """

    def __init__(self, root):
        self.root = root

    def path(self, name):
        return os.path.join(self.root, name)


def _run(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{cmd}: {res.stdout}{res.stderr}"
    return res


def _self_signed(certs, name, newkey):
    key, cert = certs.path(f"{name}.key"), certs.path(f"{name}.crt")
    _run(["openssl", "req", "-x509", "-newkey", newkey[0], *newkey[1:],
          "-nodes", "-keyout", key, "-out", cert, "-days", "30",
          "-subj", f"/CN={HOSTNAME}",
          "-addext", f"subjectAltName=DNS:{HOSTNAME},IP:127.0.0.1"])
    return key, cert


def _cat(out, *files):
    with open(out, "w") as f:
        for name in files:
            with open(name) as g:
                f.write(g.read())
    return out


@pytest.fixture(scope="session")
def certs():
    root = tempfile.mkdtemp(prefix="postern-certs-")
    os.chmod(root, 0o755)
    c = Certs(root)
    try:
        c.rsa_key, c.rsa_cert = _self_signed(c, "rsa", ["rsa:2048"])
        c.ec_key, c.ec_cert = _self_signed(
            c, "ec", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
        c.rsa_chain = _cat(c.path("rsa-chain.pem"), c.rsa_key, c.rsa_cert)
        c.ec_chain = _cat(c.path("ec-chain.pem"), c.ec_key, c.ec_cert)
        # A CA and a leaf it signed: a real chain of two.
        c.ca_key, c.ca_cert = c.path("ca.key"), c.path("ca.crt")
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
              "-keyout", c.ca_key, "-out", c.ca_cert, "-days", "30",
              "-subj", "/CN=Postern Test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        c.leaf_key, csr = c.path("leaf.key"), c.path("leaf.csr")
        c.leaf_cert = c.path("leaf.crt")
        _run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes",
              "-keyout", c.leaf_key, "-out", csr, "-subj", f"/CN={HOSTNAME}"])
        ext = c.path("leaf.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{HOSTNAME},IP:127.0.0.1\n"
                    "basicConstraints=CA:FALSE\n")
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", c.ca_cert,
              "-CAkey", c.ca_key, "-CAcreateserial", "-out", c.leaf_cert,
              "-days", "30", "-extfile", ext])
        c.leaf_chain = _cat(c.path("leaf-chain.pem"), c.leaf_key,
                            c.leaf_cert, c.ca_cert)
        yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


def tls_params(certs, **params):
    """smtpd parameters for opportunistic TLS with the RSA certificate."""
    p = {"smtpd_tls_security_level": "may",
         "smtpd_tls_cert_file": certs.rsa_cert,
         "smtpd_tls_key_file": certs.rsa_key}
    p.update(params)
    return p


def client_context(cafile=None, minimum=None, maximum=None):
    """A client SSLContext: verifies the server against cafile (hostname
    mx.example.test) when given, else verifies nothing."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = True
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


# --- services -------------------------------------------------------------

def service(instance, name, **opts):
    """(port, master.cf line) of one more smtpd on a free loopback port,
    with -o NAME=VALUE overrides (values without spaces)."""
    port = instance.port(name)
    o = "".join(f" -o {k}={v}" for k, v in opts.items())
    return port, f"127.0.0.1:{port} inet n - n - - smtpd{o}\n"


def wait_listening(instance, *ports):
    for port in ports:
        wait_log(instance, rf"listening on 127\.0\.0\.1:{port}$")


# --- SASL ---------------------------------------------------------------

def make_sasldb(path, users=None):
    """A sasldb at path with {user@domain: password}; readable by the
    mail_owner, as smtpd looks passwords up after dropping privileges."""
    users = users if users is not None else {USER: PASSWORD}
    for user, password in users.items():
        name, realm = user.split("@", 1)
        res = subprocess.run(["saslpasswd2", "-p", "-c", "-f", path, "-u",
                              realm, name], input=password, text=True,
                             capture_output=True, timeout=30)
        assert res.returncode == 0, res.stderr
    os.chmod(path, 0o644)
    return path


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain_token(user=USER, password=PASSWORD, authzid=""):
    """The AUTH PLAIN initial response (RFC 4616), base64."""
    return b64(f"{authzid}\0{user}\0{password}")


class Secrets:
    """Strings that must not appear in the log: passwords and the base64
    payloads sent with AUTH (registered by the tests that use them)."""

    def __init__(self):
        self.items = set()
        for pw in (PASSWORD, WRONG_PASSWORD, PASSWORD2):
            self.add(pw)
            self.add(b64(pw))
        for user, pw in ((USER, PASSWORD), (USER, WRONG_PASSWORD),
                         (USER2, PASSWORD2)):
            self.add(plain_token(user, pw))

    def add(self, text):
        if text:
            self.items.add(text)
        return text

    def check(self, instance):
        log = read_log(instance)
        leaked = sorted(s for s in self.items if s in log)
        assert not leaked, f"secrets in the log: {leaked}"


# --- clients --------------------------------------------------------------

class TLSClient(SMTPClient):
    """SMTPClient over a socket that can become TLS.

    TLSClient(port)                  plaintext, call starttls() later
    TLSClient(port, wrap=ctx)        TLS from the start (wrapper mode)
    """

    def __init__(self, port, timeout=10, wrap=None, greet=True):
        self.ctx = wrap
        super().__init__(port, timeout=timeout, greet=greet, wrap=wrap)

    def handshake(self, ctx=None):
        """Turn the connection into TLS (after a 220 to STARTTLS).
        Anything already read past the 220 is a failure: a server must
        not send plaintext after it."""
        assert self.buf == b"", f"plaintext after 220: {self.buf!r}"
        self.ctx = ctx or self.ctx or client_context()
        self.sock = self.ctx.wrap_socket(self.sock, server_hostname=HOSTNAME)

    def starttls(self, ctx=None):
        r = self.cmd("STARTTLS")
        assert r.line == "220 2.0.0 Ready to start TLS", r
        self.handshake(ctx)
        return r

    def nothing_pending(self, wait=0.3):
        """True if the server sends nothing (no application data) within
        wait seconds; TLS records without data (session tickets) do not
        count."""
        if self.buf:
            return False
        if not self._ready(wait):
            return True
        if not self.tls:
            return False
        # A TLS record arrived: it may be a ticket, not data.
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(65536)
        except ssl.SSLWantReadError:
            return True
        except (ssl.SSLError, OSError):
            data = b""
        finally:
            self.sock.setblocking(True)
            self.sock.settimeout(10)
        if data:
            self.buf += data
            return False
        self.eof = True
        return True

    def cipher(self):
        return self.sock.cipher()

    def version(self):
        return self.sock.version()


def auth_plain(c, user=USER, password=PASSWORD):
    """AUTH PLAIN with an initial response; returns the reply."""
    return c.cmd(f"AUTH PLAIN {plain_token(user, password)}")


# --- openssl s_client -------------------------------------------------------

class OpenSSLClient:
    """An interactive `openssl s_client` against 127.0.0.1:port, with
    -starttls smtp unless starttls is false (wrapper mode).  Lines sent
    get CRLF (-crlf); the client stays until the server closes the
    connection (-ign_eof).  Output (stdout and stderr) accumulates in
    .out; expect() waits for a pattern in what was not yet matched."""

    def __init__(self, port, *args, starttls=True):
        cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
               "-servername", HOSTNAME, "-crlf", "-ign_eof"]
        if starttls:
            cmd += ["-starttls", "smtp", "-name", "client.example.org"]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.out = ""
        self.pos = 0
        self.eof = False

    def _read(self, deadline):
        left = deadline - time.monotonic()
        if self.eof or left <= 0:
            return False
        r, _, _ = select.select([self.proc.stdout], [], [], left)
        if not r:
            return False
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            self.eof = True
            return False
        self.out += chunk.decode("utf-8", "replace")
        return True

    def expect(self, pattern, timeout=10):
        """The match of pattern (multi-line regex) in the output after
        the previous match, waiting up to timeout; None if it does not
        come (or openssl exits first)."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.out, self.pos)
            if m:
                self.pos = m.end()
                return m
            if not self._read(deadline):
                return None

    def send(self, line):
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def cmd(self, line, timeout=10):
        """Send a command line; returns the last line of the reply (a
        "NNN text" line), or None."""
        self.send(line)
        m = self.expect(r"^\d{3} .*$", timeout)
        return m.group(0).rstrip("\r") if m else None

    def finish(self, timeout=15):
        """Close our end and wait for openssl to exit; its exit code."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        try:
            return self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


# What s_client prints once the handshake is done ("New, TLSv1.3, Cipher
# is ..." or "Reused, ..."), or its error when it failed.
HANDSHAKE = r"^(?:New|Reused), |:error:"


def openssl(port, *args, starttls=True, timeout=15):
    """One s_client session: handshake, wait for the greeting in wrapper
    mode, QUIT, then wait for the server to close.  Returns (exit code,
    output)."""
    with OpenSSLClient(port, *args, starttls=starttls) as o:
        m = o.expect(HANDSHAKE, timeout)
        if m and m.group(0) != ":error:":
            if not starttls:
                o.expect(r"^220 ", timeout)
            o.send("QUIT")
        return o.finish(timeout), o.out


def swaks(port, *args, timeout=60):
    """Run swaks against 127.0.0.1:port; returns the CompletedProcess
    (stdout and stderr merged into .out)."""
    cmd = ["swaks", "--server", f"127.0.0.1:{port}", "--helo",
           "swaks.example", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    res.out = res.stdout + res.stderr
    return res
