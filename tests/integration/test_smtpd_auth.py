"""smtpd: SMTP AUTH (RFC 4954) through Cyrus SASL.

The server side is the real libsasl2 with a sasldb made by saslpasswd2
(or by postern user in the end-to-end test).  Clients: Python's smtplib
(PLAIN, LOGIN, CRAM-MD5), swaks (--auth PLAIN/LOGIN/CRAM-MD5 with --tls
and --tlsc), a SCRAM-SHA-256 client written here from RFC 5802/7677 that
also checks the server's signature, and raw lines (tls_common.TLSClient)
for the protocol edge cases.

Most tests share one instance (the module fixture "server") with one
smtpd service per configuration, each on its own loopback port with -o
overrides; the AUTH limits count per service in anvil, so each limit test
has a service of its own.  Covered: advertising (only over TLS with
smtpd_tls_auth_only, the mechanism list, the security options without and
with TLS), every mechanism, initial response and 334 challenges, cancel,
bad base64, the 5xx replies (not enabled, not over TLS, twice, in a
transaction, unknown mechanism, before EHLO), the delay before 535, the
per-client failure and AUTH rate limits and the hard error limit, the log
lines (client= with sasl_method/sasl_username, the fail2ban warning) and
that no password or AUTH payload ever reaches the log, even when pipelined
improperly; permit_sasl_authenticated relaying, reject_sender_login_mismatch,
XCLIENT LOGIN, STARTTLS forgetting a login, and an end-to-end submission
through the default master.cf's submission and smtps services into a
Maildir.
"""
import base64
import hashlib
import hmac
import os
import re
import secrets
import shutil
import smtplib
import tempfile
import time

import pytest

from conftest import ROOT, Instance, wait_for
from test_delivery_common import VDOMAIN, maildir_files, start_system, \
    wait_mail
from test_smtpd_common import (MESSAGE, assert_logged, log_lines,
                               queue_file, read_log, start_smtpd, wait_log)
from tls_common import (PASSWORD, PASSWORD2, USER, USER2, WRONG_PASSWORD,
                        Secrets, TLSClient, b64, certs,  # noqa: F401
                        client_context, make_sasldb, plain_token, service,
                        swaks, tls_params, wait_listening)

CLIENT = "localhost[127.0.0.1]"
MECHS = {"PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"}
REMOTE_RCPT = "carol@remote.test"       # relaying needs AUTH
OK = "235 2.7.0 Authentication successful"
FAILED = "535 5.7.8 Error: authentication failed: authentication failure"
ENCRYPT = ("538 5.7.11 Encryption required for requested authentication "
           "mechanism")
ABORTED = "501 5.7.0 Authentication aborted"
BAD_B64 = "501 5.5.2 Cannot decode response"
NO_MECH = "504 5.5.4 Unrecognized authentication type"
TWICE = "503 5.5.1 Error: already authenticated"
IN_MAIL = "503 5.5.1 Error: MAIL transaction in progress"
RELAY_DENIED = f"554 5.7.1 <{REMOTE_RCPT}>: Relay access denied"
SYNC = "554 5.5.0 Error: SMTP protocol synchronization"
FAILURE_DELAY = 1                       # smtpd_sasl_failure_delay of "slow"

# Every password and AUTH payload the tests send; none may be logged.
SECRETS = Secrets()
for _s in (b64(USER), b64(USER2)):
    SECRETS.add(_s)


# --- clients --------------------------------------------------------------

def secret(line):
    """line, recorded as a secret unless too short to mean anything ("=",
    "*", "!!")."""
    return SECRETS.add(line) if len(line) >= 8 else line


class AuthClient(TLSClient):
    """TLSClient that records what it sends in AUTH exchanges as secrets."""

    def auth(self, mech, initial=None):
        """AUTH mech [initial]; returns the reply (a 334 or the end)."""
        if initial is None:
            return self.cmd(f"AUTH {mech}")
        return self.cmd(f"AUTH {mech} {secret(initial)}")

    def respond(self, line):
        """One response line of an exchange (base64, "*" or "")."""
        return self.cmd(secret(line))

    def plain(self, user=USER, password=PASSWORD):
        return self.auth("PLAIN", plain_token(user, password))


def connect(port, tls=True, ehlo="client.example.org"):
    """An AuthClient, after STARTTLS (unless tls is false) and EHLO."""
    c = AuthClient(port)
    if tls:
        c.ehlo(ehlo or "client.example.org")
        c.starttls()
    if ehlo:
        c.ehlo(ehlo)
    return c


def auth_keyword(ehlo_reply):
    """The mechanisms of the EHLO AUTH keyword, or None without one."""
    for line in ehlo_reply.lines[1:]:
        if line.split()[0].upper() == "AUTH":
            return set(line.split()[1:])
    return None


def ehlo_mechs(c):
    return auth_keyword(c.ehlo())


class Scram:
    """The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677)."""

    def __init__(self, user, password):
        self.password = password.encode()
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.first_bare = f"n={name},r={self.nonce}"

    def first(self):
        return b64("n,," + self.first_bare)

    def final(self, challenge):
        """The client-final message (base64) for the server-first
        challenge (base64)."""
        server_first = base64.b64decode(challenge).decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        assert attrs["r"].startswith(self.nonce), server_first
        salted = hashlib.pbkdf2_hmac("sha256", self.password,
                                     base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        without_proof = f"c={b64('n,,')},r={attrs['r']}"
        auth_message = ",".join((self.first_bare, server_first,
                                 without_proof)).encode()
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        signature = hmac.digest(stored_key, auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.server_signature = hmac.digest(server_key, auth_message,
                                            "sha256")
        return b64(f"{without_proof},p={b64(proof)}")

    def verify(self, challenge):
        """True if the server-final message proves the server knows the
        password (mutual authentication)."""
        server_final = base64.b64decode(challenge).decode()
        return server_final == f"v={b64(self.server_signature)}"


def scram_auth(c, user=USER, password=PASSWORD, initial=False):
    """A SCRAM-SHA-256 exchange; returns (final reply, whether the server
    signature was verified)."""
    s = Scram(user, password)
    if initial:
        r = c.auth("SCRAM-SHA-256", s.first())
    else:
        r = c.auth("SCRAM-SHA-256")
        assert r.line == "334 ", r          # an empty challenge first
        r = c.respond(s.first())
    assert r.code == 334, r
    r = c.respond(s.final(r.lines[0]))
    if r.code != 334:
        return r, False
    verified = s.verify(r.lines[0])
    return c.respond(""), verified


def smtplib_session(port):
    """smtplib after STARTTLS and EHLO."""
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo("client.example.org")
    s.starttls(context=client_context())
    s.ehlo("client.example.org")
    return s


# --- the shared instance ----------------------------------------------------

# Services besides the main one, with their -o overrides.  Main (the
# instance's "smtp" port): STARTTLS may, AUTH only over TLS (the default),
# no failure delay, relaying for mynetworks (not 127.0.0.1) and
# authenticated clients.
SERVICES = {
    "plain": {"smtpd_tls_auth_only": "no"},
    "noplain": {"smtpd_tls_auth_only": "no",
                "smtpd_sasl_security_options": "noanonymous,noplaintext",
                "smtpd_sasl_tls_security_options": "noanonymous"},
    "tlsnoplain": {"smtpd_sasl_tls_security_options":
                   "noanonymous,noplaintext"},
    "noauth": {"smtpd_sasl_auth_enable": "no"},
    # A new process for each client: it starts late enough to see what a
    # client sends before the greeting.
    "early": {"smtpd_tls_auth_only": "no", "max_use": "1"},
    "slow": {"smtpd_sasl_failure_delay": f"{FAILURE_DELAY}s"},
    "errors": {"smtpd_hard_error_limit": "3"},
    "faillimit": {"smtpd_client_auth_failure_limit": "2",
                  "smtpd_client_event_limit_exceptions": "192.0.2.0/24"},
    "failexempt": {"smtpd_client_auth_failure_limit": "1",
                   "smtpd_client_event_limit_exceptions": "127.0.0.0/8"},
    "authrate": {"smtpd_client_auth_rate_limit": "2",
                 "smtpd_client_event_limit_exceptions": "192.0.2.0/24"},
    "xclient": {"smtpd_authorized_xclient_hosts": "127.0.0.0/8"},
    "loginmaps": {"smtpd_sender_restrictions":
                  "reject_sender_login_mismatch",
                  "smtpd_sender_login_maps": "texthash:{root}/etc/logins"},
}
LOGINS = (f"{USER} {USER}\n"
          f"{USER2} {USER2}\n"
          f"shared@example.test {USER}, {USER2}\n")


@pytest.fixture(scope="module")
def server(certs):  # noqa: F811 (the fixture of tls_common)
    """One instance for the module: inst.ports[NAME] for each service of
    SERVICES and inst.port("smtp") for the main one.  At the end, no
    secret may be in its log, and no sanitizer may have reported."""
    root = tempfile.mkdtemp(prefix="postern-test-")
    os.chmod(root, 0o755)
    inst = Instance(root)
    try:
        inst.write_file("etc/logins", LOGINS)
        db = make_sasldb(inst.path("sasldb2"), {USER: PASSWORD,
                                                USER2: PASSWORD2})
        extra = ""
        for name, opts in SERVICES.items():
            _, line = service(inst, name, **{
                k: v.replace("{root}", root) for k, v in opts.items()})
            extra += line
        start_smtpd(inst, extra_master=extra, **tls_params(
            certs, smtpd_sasl_auth_enable="yes", sasl_db_path=db,
            smtpd_sasl_failure_delay="0s", mynetworks="10.0.0.0/8",
            smtpd_client_event_limit_exceptions="127.0.0.0/8",
            smtpd_relay_restrictions="permit_mynetworks, "
            "permit_sasl_authenticated, reject_unauth_destination"))
        wait_listening(inst, *(inst.ports[n] for n in SERVICES))
        yield inst
        inst.stop()
        SECRETS.check(inst)
        reports = inst.sanitizer_reports()
        assert not reports, "sanitizer reports:\n" + "\n".join(reports)
    finally:
        inst.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def port(server):
    return server.port("smtp")


# --- advertising ------------------------------------------------------------

def test_auth_offered_only_after_starttls(server, port):
    with AuthClient(port) as c:
        assert auth_keyword(c.ehlo()) is None
        c.starttls()
        assert ehlo_mechs(c) == MECHS


def test_auth_offered_in_plaintext_when_tls_is_not_required(server):
    with connect(server.ports["plain"], tls=False, ehlo=None) as c:
        r = c.ehlo()
        assert auth_keyword(r) == MECHS
        assert "STARTTLS" in r.lines
        assert c.plain().line == OK


def test_auth_not_enabled(server):
    with connect(server.ports["noauth"]) as c:
        assert auth_keyword(c.ehlo()) is None
        assert c.plain().line == "503 5.5.1 Error: authentication not enabled"


def test_security_options_hide_plaintext_mechanisms(server):
    """noplaintext without TLS, noanonymous with it: PLAIN and LOGIN only
    after STARTTLS; challenge-response mechanisms both ways."""
    with connect(server.ports["noplain"], tls=False, ehlo=None) as c:
        assert ehlo_mechs(c) == {"CRAM-MD5", "SCRAM-SHA-256"}
        # RFC 4954 6: the mechanism may be used only under TLS.
        assert c.plain().line == ENCRYPT
        assert c.auth("LOGIN").line == ENCRYPT
        r, verified = scram_auth(c)
        assert r.line == OK and verified
    with connect(server.ports["noplain"]) as c:
        assert ehlo_mechs(c) == MECHS
        assert c.plain().line == OK


def test_tls_security_options(server):
    """smtpd_sasl_tls_security_options applies over TLS."""
    with connect(server.ports["tlsnoplain"]) as c:
        assert ehlo_mechs(c) == {"CRAM-MD5", "SCRAM-SHA-256"}
        assert c.plain().line == NO_MECH
        r = c.auth("CRAM-MD5")
        assert r.code == 334
        assert c.respond("*").line == ABORTED


# --- each mechanism -----------------------------------------------------------

@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_smtplib_login(server, port, mech):
    with smtplib_session(port) as s:
        assert set(s.esmtp_features["auth"].split()) == MECHS
        s.user, s.password = USER, PASSWORD
        method = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login,
                  "CRAM-MD5": s.auth_cram_md5}[mech]
        assert s.auth(mech, method) == (235, b"2.7.0 Authentication "
                                        b"successful")
        # Authenticated: may relay.
        assert s.sendmail("alice@example.test", [REMOTE_RCPT], MESSAGE) == {}


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_smtplib_wrong_password(server, port, mech):
    with smtplib_session(port) as s:
        s.user, s.password = USER, WRONG_PASSWORD
        method = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login,
                  "CRAM-MD5": s.auth_cram_md5}[mech]
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.auth(mech, method)
        assert (e.value.smtp_code, e.value.smtp_error) == \
            (535, FAILED[4:].encode())
        # Not authenticated: no relaying.
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("alice@example.test", [REMOTE_RCPT], MESSAGE)
        assert e.value.recipients[REMOTE_RCPT] == \
            (554, RELAY_DENIED[4:].encode())


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks(server, port, mech):
    res = swaks(port, "--tls", "--auth", mech, "--auth-user", USER,
                "--auth-password", PASSWORD, "--from", USER,
                "--to", REMOTE_RCPT)
    assert res.returncode == 0, res.out
    assert re.search(r"<~  235 2\.7\.0 Authentication successful", res.out)
    assert re.search(r"<~  250 2\.0\.0 Ok: queued as", res.out), res.out


def test_swaks_wrong_password(server, port):
    res = swaks(port, "--tls", "--auth", "LOGIN", "--auth-user", USER,
                "--auth-password", WRONG_PASSWORD, "--from", USER,
                "--to", REMOTE_RCPT)
    assert res.returncode != 0
    assert f"<~* {FAILED}" in res.out, res.out


def test_scram_sha_256(server, port):
    """SCRAM with a 334 first and as an initial response; the server's
    final message proves it knows the password."""
    with connect(port) as c:
        r, verified = scram_auth(c)
        assert r.line == OK and verified
    with connect(port) as c:
        r, verified = scram_auth(c, USER2, PASSWORD2, initial=True)
        assert r.line == OK and verified
        assert c.cmd(f"MAIL FROM:<{USER2}>").code == 250
        assert c.cmd(f"RCPT TO:<{REMOTE_RCPT}>").code == 250


def test_scram_sha_256_wrong_password(server, port):
    with connect(port) as c:
        r, verified = scram_auth(c, password=WRONG_PASSWORD)
        assert r.code == 535 and not verified, r
        assert r.line.startswith("535 5.7.8 Error: authentication failed: ")


def test_unknown_user_is_a_wrong_password(server, port):
    """An unknown user gets the reply of a wrong password, so that
    clients cannot probe for accounts (Postfix does the same)."""
    with connect(port) as c:
        assert c.plain("nobody@example.test", PASSWORD).line == FAILED
        assert c.auth("LOGIN", b64("nobody@example.test")).code == 334
        assert c.respond(b64(PASSWORD)).line == FAILED
        assert c.plain(USER, PASSWORD2).line == FAILED   # bob's password
        assert c.plain().line == OK
    assert_logged(server, f"warning: {CLIENT}: SASL LOGIN authentication "
                  "failed: authentication failure, "
                  "sasl_username=nobody@example.test")


def test_plain_authzid(server, port):
    """An authorization identity other than the login is refused (no
    proxy authorization); the login's own is fine."""
    with connect(port) as c:
        r = c.auth("PLAIN", plain_token(USER, PASSWORD, authzid=USER2))
        assert r.code == 535, r
        assert c.auth("PLAIN", plain_token(USER, PASSWORD,
                                           authzid=USER)).line == OK


# --- the exchange -------------------------------------------------------------

def test_initial_response_and_challenges(server, port):
    with connect(port) as c:
        # PLAIN: an empty challenge, then the response.
        assert c.auth("PLAIN").line == "334 "
        assert c.respond(plain_token()).line == OK
    with connect(port) as c:
        # LOGIN: the classic prompts, base64.
        assert c.auth("login").line == "334 VXNlcm5hbWU6"      # Username:
        assert c.respond(b64(USER)).line == "334 UGFzc3dvcmQ6"  # Password:
        assert c.respond(b64(PASSWORD)).line == OK
    with connect(port) as c:
        # LOGIN with the user name as initial response.
        assert c.auth("LOGIN", b64(USER)).line == "334 UGFzc3dvcmQ6"
        assert c.respond(b64(PASSWORD)).line == OK
    with connect(port) as c:
        # CRAM-MD5: the challenge is a message ID of this server.
        r = c.auth("CRAM-MD5")
        assert r.code == 334
        challenge = base64.b64decode(r.lines[0])
        assert re.fullmatch(rb"<[^@<>]+@mx\.example\.test>", challenge), r
        digest = hmac.new(PASSWORD.encode(), challenge, "md5").hexdigest()
        assert c.respond(b64(f"{USER} {digest}")).line == OK


def test_empty_initial_response(server, port):
    """"=" is an empty initial response (RFC 4954 4): PLAIN fails."""
    with connect(port) as c:
        assert c.auth("PLAIN", "=").code == 535
        assert c.plain().line == OK


def test_cancel(server, port):
    with connect(port) as c:
        assert c.auth("PLAIN").line == "334 "
        assert c.respond("*").line == ABORTED
        assert c.auth("LOGIN").code == 334
        assert c.respond(b64(USER)).code == 334
        assert c.respond("*").line == ABORTED
        # Not logged in, but may try again.
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd(f"RCPT TO:<{REMOTE_RCPT}>").line == RELAY_DENIED
        assert c.cmd("RSET").code == 250
        assert c.plain().line == OK


def test_bad_base64(server, port):
    with connect(port) as c:
        assert c.auth("PLAIN", "not*base64!").line == BAD_B64
        assert c.auth("PLAIN").code == 334
        assert c.respond("%%%%").line == BAD_B64
        assert c.auth("LOGIN").code == 334
        assert c.respond(b64(USER)).code == 334
        assert c.respond("@@@@").line == BAD_B64
        assert c.plain().line == OK


def test_auth_twice(server, port):
    with connect(port) as c:
        assert c.plain().line == OK
        assert c.plain().line == TWICE
        assert c.auth("LOGIN").line == TWICE


def test_auth_in_mail_transaction(server, port):
    with connect(port) as c:
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.plain().line == IN_MAIL
        assert c.cmd(f"RCPT TO:<{REMOTE_RCPT}>").line == RELAY_DENIED
        assert c.cmd("RSET").code == 250
        assert c.plain().line == OK


def test_unknown_mechanism(server, port):
    with connect(port) as c:
        assert c.auth("FOO-BAR").line == NO_MECH
        assert c.auth("DIGEST-MD5").line == NO_MECH    # not in the list
        assert c.auth("ANONYMOUS", b64("x")).line == NO_MECH
        assert c.plain().line == OK


def test_syntax_and_order(server, port):
    syntax = "501 5.5.4 Syntax: AUTH mechanism [initial-response]"
    with connect(port, ehlo=None) as c:
        c.helo()
        assert c.plain().line == "503 5.5.1 Error: send EHLO first"
        c.ehlo()
        assert c.cmd("AUTH").line == syntax
        assert c.cmd(f"AUTH PLAIN {plain_token()} x").line == syntax
        assert c.plain().line == OK


def test_auth_before_tls_when_required(server, port):
    """smtpd_tls_auth_only: 538 5.7.11 before STARTTLS (RFC 4954 6), with
    or without an initial response, for every mechanism."""
    with connect(port, tls=False) as c:
        assert c.plain().line == ENCRYPT
        assert c.auth("LOGIN").line == ENCRYPT
        assert c.auth("SCRAM-SHA-256").line == ENCRYPT
        assert c.auth("CRAM-MD5").line == ENCRYPT
        c.starttls()
        c.ehlo()
        assert c.plain().line == OK


def test_starttls_forgets_the_login(server):
    """Logged in without TLS, then STARTTLS: the session starts over."""
    with connect(server.ports["plain"], tls=False) as c:
        assert c.plain().line == OK
        c.starttls()
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd(f"RCPT TO:<{REMOTE_RCPT}>").line == RELAY_DENIED
        assert c.cmd("RSET").code == 250
        assert c.plain(USER2, PASSWORD2).line == OK


def test_response_line_too_long(server, port):
    with connect(port) as c:
        assert c.auth("PLAIN").code == 334
        c.send(SECRETS.add("QUFB" * 4000) + "\r\n")
        assert c.reply().line == \
            "500 5.5.6 Authentication exchange line is too long"
        assert c.closed()


def test_mail_auth_parameter(server, port):
    """RFC 4954 5: MAIL FROM AUTH=<> and AUTH=addr are accepted."""
    with connect(port) as c:
        assert c.plain().line == OK
        assert c.cmd(f"MAIL FROM:<{USER}> AUTH={USER}").code == 250
        assert c.cmd("RSET").code == 250
        assert c.cmd(f"MAIL FROM:<{USER}> AUTH=<>").code == 250
        assert c.cmd("RSET").code == 250
        assert c.cmd(f"MAIL FROM:<{USER}> AUTH=a+zz").line == \
            "501 5.5.4 Bad AUTH parameter syntax"


# --- delays and limits --------------------------------------------------------

def test_failure_is_delayed(server):
    """535 comes no sooner than smtpd_sasl_failure_delay after the
    response that failed, with or without a 334 before."""
    with connect(server.ports["slow"]) as c:
        assert c.auth("LOGIN", b64(USER)).code == 334
        start = time.monotonic()
        assert c.respond(b64(WRONG_PASSWORD)).line == FAILED
        assert time.monotonic() - start >= FAILURE_DELAY
        start = time.monotonic()
        assert c.plain(USER, WRONG_PASSWORD).line == FAILED
        assert time.monotonic() - start >= FAILURE_DELAY
        assert c.plain().line == OK


def test_hard_error_limit(server):
    """Failed AUTHs are errors: at smtpd_hard_error_limit, 421 and
    disconnect."""
    with connect(server.ports["errors"]) as c:
        assert c.plain(USER, WRONG_PASSWORD).line == FAILED
        assert c.auth("PLAIN", "!!").line == BAD_B64
        c.send(f"AUTH PLAIN {plain_token(USER, WRONG_PASSWORD)}\r\n")
        assert c.reply().line == FAILED
        assert c.reply().line == \
            "421 4.7.0 mx.example.test Error: too many errors"
        assert c.closed()
    wait_log(server, rf"too many errors after AUTH from {re.escape(CLIENT)}$")


def test_failure_limit_per_client(server):
    """After smtpd_client_auth_failure_limit failures, AUTH is answered
    421 and the client dropped, on this and on new connections."""
    port = server.ports["faillimit"]
    refused = ("421 4.7.0 mx.example.test Error: too many failed "
               "authentication attempts from 127.0.0.1")
    with connect(port) as c:
        assert c.plain(USER, WRONG_PASSWORD).line == FAILED
        assert c.auth("LOGIN", b64(USER)).code == 334
        assert c.respond(b64(WRONG_PASSWORD)).line == FAILED
        assert c.plain().line == refused
        assert c.closed()
    with connect(port) as c:
        # Everything else still works; AUTH does not, even right.
        assert c.cmd("NOOP").code == 250
        assert c.plain().line == refused
        assert c.closed()
    wait_log(server, r"warning: AUTH failure limit exceeded: 2 from "
             rf"{re.escape(CLIENT)} for service \S+$")


def test_failure_limit_exceptions(server):
    """smtpd_client_event_limit_exceptions are not limited."""
    with connect(server.ports["failexempt"]) as c:
        for _ in range(3):
            assert c.plain(USER, WRONG_PASSWORD).line == FAILED
        assert c.plain().line == OK


def test_auth_rate_limit(server):
    """smtpd_client_auth_rate_limit counts every AUTH command."""
    with connect(server.ports["authrate"]) as c:
        assert c.auth("PLAIN", "!!").line == BAD_B64
        assert c.auth("PLAIN", "!!").line == BAD_B64
        assert c.plain().line == \
            "450 4.7.1 Error: too many AUTH commands from 127.0.0.1"
        assert c.cmd("NOOP").code == 250        # still connected
    with connect(server.ports["authrate"]) as c:
        assert c.plain().code == 450
    wait_log(server, r"warning: AUTH command rate limit exceeded: 3 from "
             rf"{re.escape(CLIENT)} for service \S+$")


# --- logs -------------------------------------------------------------------

def session_messages(instance, qid):
    """The smtpd log messages of the session that queued qid, from its
    "connect from" to its "disconnect from" (waited for)."""
    def find():
        lines = [line.split("]: ", 1) for line in log_lines(instance)]
        pids = [p for p, m in lines if m.startswith(f"{qid}: client=")]
        if not pids:
            return None
        # That process's messages (it serves one client at a time).
        msgs = [m for p, m in lines if p == pids[0]]
        at = [i for i, m in enumerate(msgs) if m.startswith(f"{qid}: ")][0]
        start = max(i for i in range(at)
                    if msgs[i].startswith("connect from "))
        ends = [i for i in range(at, len(msgs))
                if msgs[i].startswith("disconnect from ")]
        return msgs[start:ends[0] + 1] if ends else None
    return wait_for(find, what=f"the smtpd session of {qid}")


def test_log_lines(server, port):
    """client= with sasl_method and sasl_username on the queue line, the
    login in the queue file, the fail2ban warning, and auth= in the
    disconnect line; the Received: header says ESMTPSA but, without
    smtpd_sasl_authenticated_header, not who logged in."""
    with connect(port, ehlo="logtest.example") as c:
        assert c.auth("LOGIN", b64(USER2)).code == 334
        assert c.respond(b64(WRONG_PASSWORD)).line == FAILED
        assert c.plain(USER2, PASSWORD2).line == OK
        qid = c.transaction(USER2, [REMOTE_RCPT])
        assert c.cmd("QUIT").code == 221
    qf = queue_file(server, qid).check()
    assert qf.attrs["sasl_method"] == "PLAIN"
    assert qf.attrs["sasl_username"] == USER2
    rcvd = qf.header("Received")
    assert f"with ESMTPSA id {qid}" in rcvd and USER2 not in rcvd, rcvd
    assert session_messages(server, qid) == [
        f"connect from {CLIENT}",
        f"warning: {CLIENT}: SASL LOGIN authentication failed: "
        f"authentication failure, sasl_username={USER2}",
        f"{qid}: client={CLIENT}, sasl_method=PLAIN, "
        f"sasl_username={USER2}",
        f"disconnect from {CLIENT} ehlo=2 starttls=1 auth=1/2 mail=1 "
        "rcpt=1 data=1 quit=1 commands=8/9"]


def test_log_unauthenticated_client_line(server, port):
    """Without AUTH, the queue line has no sasl_ fields."""
    with connect(port) as c:
        qid = c.transaction("x@example.org", ["bob@example.test"])
    assert_logged(server, f"{qid}: client={CLIENT}")
    assert "sasl_username" not in queue_file(server, qid).attrs


def test_log_has_no_secrets(server, port):
    """Every exchange above plus failures of each mechanism: no password
    and no payload in the log (the module fixture checks once more at
    the end)."""
    with connect(port) as c:
        assert c.plain(USER, WRONG_PASSWORD).code == 535
        assert c.auth("LOGIN").code == 334
        assert c.respond(b64(USER)).code == 334
        assert c.respond(b64(WRONG_PASSWORD)).code == 535
        assert c.auth("CRAM-MD5").code == 334
        assert c.respond(b64(f"{USER} {'0' * 32}")).code == 535
        r, _ = scram_auth(c, password=WRONG_PASSWORD)
        assert r.code == 535
        # Garbage that is base64 but not what the mechanism wants.
        assert c.auth("SCRAM-SHA-256", b64("garbage-" + PASSWORD)).code \
            == 535
        assert c.auth("PLAIN", b64(PASSWORD)).code == 535
    # Each failure is logged before its 535 is sent.
    SECRETS.check(server)


def pipelined_secret(c, data):
    """Send data in one packet; expect the synchronization error."""
    c.send(data)
    r = c.reply()
    while r.code != 554:
        r = c.reply()
    assert r.line == SYNC, r
    assert c.closed()


def test_pipelined_auth_is_not_logged(server, port):
    """A client that pipelines AUTH with its payload past EHLO (or a
    HELO client past AUTH) is logged only up to the mechanism name."""
    token = SECRETS.add(plain_token(USER2, PASSWORD2))
    login = SECRETS.add(b64(PASSWORD2 + "-login"))
    with connect(port, ehlo=None) as c:
        pipelined_secret(c, f"EHLO a.example\r\nAUTH PLAIN {token}\r\n")
    with connect(port, ehlo=None) as c:
        pipelined_secret(c, f"EHLO b.example\r\n  auth   login  "
                            f"{b64(USER2)}\r\n{login}\r\nQUIT\r\n")
    with connect(port, ehlo=None) as c:
        c.helo()
        c.send(f"AUTH PLAIN\r\n{token}\r\n")
        assert c.reply().line == SYNC
        assert c.closed()
    with connect(server.ports["plain"], tls=False, ehlo=None) as c:
        # Plaintext: the pipelined data is peeked from the socket.
        pipelined_secret(c, f"NOOP\r\nAUTH LOGIN {b64(USER2)}\r\n"
                            f"{login}\r\n")
    wait_log(server, r"improper command pipelining after EHLO from "
             rf"{re.escape(CLIENT)}: AUTH PLAIN \[redacted\]$")
    wait_log(server, r"improper command pipelining after EHLO from "
             rf"{re.escape(CLIENT)}:   auth   login \[redacted\]$")
    wait_log(server, r"improper command pipelining after AUTH from "
             rf"{re.escape(CLIENT)}: \[redacted\]$")
    wait_log(server, r"improper command pipelining after NOOP from "
             rf"{re.escape(CLIENT)}: AUTH LOGIN \[redacted\]$")
    SECRETS.check(server)


def test_auth_before_greeting_is_not_logged(server):
    """Talking before the greeting: what smtpd peeks at is redacted.  If
    the data arrives only after smtpd looked (a race that a new process
    per client makes unlikely), the violation is the one after EHLO: try
    again."""
    token = SECRETS.add(plain_token(USER, PASSWORD + "-early"))
    for _ in range(5):
        with AuthClient(server.ports["early"], greet=False) as c:
            c.send(f"EHLO early.example\r\nAUTH PLAIN {token}\r\n")
            assert c.closed()
            if c.buf.decode() == SYNC + "\r\n":
                break
            assert c.buf.decode().endswith(SYNC + "\r\n"), c.buf
    else:
        pytest.fail("smtpd never saw the data before its greeting")
    wait_log(server, r"improper command pipelining after CONNECT from "
             rf"{re.escape(CLIENT)}: EHLO early\.example\?\?AUTH PLAIN "
             r"\[redacted\]$")
    SECRETS.check(server)


def test_pipelined_exchange_is_not_a_violation(server, port):
    """AUTH may be pipelined with its own responses (AUTH does not end a
    group); they are read as the exchange, not as commands or logs."""
    with connect(port) as c:
        c.send(f"AUTH LOGIN\r\n{b64(USER)}\r\n"
               f"{SECRETS.add(b64(PASSWORD))}\r\nNOOP\r\n")
        assert [r.line for r in c.replies(4)] == [
            "334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", OK, "250 2.0.0 Ok"]
    SECRETS.check(server)


# --- restrictions -----------------------------------------------------------

def test_relay_needs_authentication(server, port):
    with connect(port, ehlo="relay.example") as c:
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd(f"RCPT TO:<{REMOTE_RCPT}>").line == RELAY_DENIED
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250  # local
        assert c.cmd("RSET").code == 250
        assert c.plain().line == OK
        qid = c.transaction(USER, [REMOTE_RCPT])
    assert queue_file(server, qid).rcpt_addresses == [REMOTE_RCPT]
    assert_logged(server, f"NOQUEUE: reject: RCPT from {CLIENT}: "
                  f"{RELAY_DENIED}; from=<alice@example.test> "
                  f"to=<{REMOTE_RCPT}> proto=ESMTP helo=<relay.example>")


def test_sender_login_mismatch(server):
    """reject_sender_login_mismatch with smtpd_sender_login_maps (checked
    at RCPT: smtpd_delay_reject)."""
    port = server.ports["loginmaps"]

    def sender(c, addr):
        assert c.cmd(f"MAIL FROM:<{addr}>").code == 250
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert c.cmd("RSET").code == 250
        return r.line

    with connect(port) as c:
        # Not logged in: owned addresses are refused, others are not.
        assert sender(c, USER) == (f"553 5.7.1 <{USER}>: Sender address "
                                   "rejected: not logged in")
        assert sender(c, "someone@example.org").startswith("250")
        assert c.plain().line == OK
        assert sender(c, USER).startswith("250")
        assert sender(c, "shared@example.test").startswith("250")
        assert sender(c, "").startswith("250")
        assert sender(c, USER2) == (f"553 5.7.1 <{USER2}>: Sender address "
                                    f"rejected: not owned by user {USER}")
        # Addresses nobody owns are not the login's either.
        assert sender(c, "someone@example.org").startswith("553 5.7.1 ")
    wait_log(server, rf"NOQUEUE: reject: RCPT from {re.escape(CLIENT)}: "
             rf"553 5\.7\.1 <{re.escape(USER2)}>: Sender address rejected: "
             rf"not owned by user {re.escape(USER)}; from=<{re.escape(USER2)}>"
             r" to=<bob@example\.test> proto=ESMTP helo=<client\.example\.org>$")


def test_xclient_login(server):
    """XCLIENT LOGIN= from an authorized proxy makes the client
    authenticated (sasl_method XCLIENT, as Postfix); [UNAVAILABLE] not."""
    port = server.ports["xclient"]
    with connect(port, tls=False) as c:
        assert "XCLIENT NAME ADDR PROTO HELO LOGIN" in c.ehlo().lines
        assert c.cmd(f"XCLIENT ADDR=192.0.2.7 NAME=proxied.example "
                     f"LOGIN={USER}").code == 220
        c.ehlo()
        qid = c.transaction(USER, [REMOTE_RCPT])
        assert c.cmd("XCLIENT LOGIN=[UNAVAILABLE]").code == 220
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{USER}>").code == 250
        assert c.cmd(f"RCPT TO:<{REMOTE_RCPT}>").line == RELAY_DENIED
    assert_logged(server, f"{qid}: client=proxied.example[192.0.2.7], "
                  f"sasl_method=XCLIENT, sasl_username={USER}")
    assert queue_file(server, qid).attrs["sasl_username"] == USER


# --- end to end: the default master.cf's submission and smtps -----------------

def master_cf_entry(name, port):
    """The entry of the default master.cf (conf/master.cf) for service
    name, with its -o lines, listening on 127.0.0.1:port instead."""
    with open(os.path.join(ROOT, "conf", "master.cf")) as f:
        text = f.read()
    m = re.search(rf"^{name}\s.*\n(?:[ \t]+-o .*\n)*", text, re.M)
    assert m, f"no {name} service in conf/master.cf"
    return f"127.0.0.1:{port}" + m.group(0)[len(name):]


def test_submission_end_to_end(instance, certs):  # noqa: F811
    """A mail client logs in on the submission service (STARTTLS
    required) and on smtps (TLS from the start), as set up by the default
    master.cf, with a password set by postern user; its mail to a
    virtual mailbox user lands in the Maildir with a Received: header
    naming the TLS session and the login; an unauthenticated client may
    send nothing there, and an authenticated one may relay."""
    user, password = f"alice@{VDOMAIN}", SECRETS.add("S3cret-for-alice")
    sub, smtps = instance.port("submission"), instance.port("smtps")
    start_system(instance, start=False, mynetworks="10.0.0.0/8",
                 master_extra=master_cf_entry("submission", sub)
                 + master_cf_entry("smtps", smtps),
                 smtpd_sasl_authenticated_header="yes",
                 smtpd_tls_received_header="yes", **tls_params(certs))
    instance.postern("user", "passwd", user, input=password + "\n")
    instance.start()
    wait_listening(instance, sub, smtps)

    # Nothing without TLS and AUTH.
    with AuthClient(sub) as c:
        r = c.ehlo()
        assert auth_keyword(r) is None and "STARTTLS" in r.lines
        # TLS is required for everything here: 530 (RFC 3207), not 538.
        must = "530 5.7.0 Must issue a STARTTLS command first"
        assert c.cmd(f"MAIL FROM:<{user}>").line == must
        assert c.auth("PLAIN", plain_token(user, password)).line == must
        c.starttls()
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{user}>").code == 250
        assert c.cmd(f"RCPT TO:<bob@{VDOMAIN}>").line.startswith(
            "554 5.7.1 ")

    # smtplib: STARTTLS, login() (which prefers CRAM-MD5), a local and a
    # remote recipient.
    msg = (f"From: {user}\r\nTo: bob@{VDOMAIN}\r\nSubject: submitted\r\n"
           f"Message-ID: <sub1@{VDOMAIN}>\r\n\r\nHello Bob.\r\n").encode()
    with smtplib.SMTP("127.0.0.1", sub, timeout=20) as s:
        s.starttls(context=client_context(cafile=certs.rsa_cert))
        s.login(user, password)
        assert s.sendmail(user, [f"bob@{VDOMAIN}", REMOTE_RCPT], msg) == {}
    # swaks over smtps (port 465 style) with AUTH LOGIN.
    res = swaks(smtps, "--tlsc", "--auth", "LOGIN", "--auth-user", user,
                "--auth-password", password, "--from", user,
                "--to", f"carol@{VDOMAIN}", "--header",
                "Subject: via smtps")
    assert res.returncode == 0, res.out

    [bob] = wait_mail(instance, "bob", 1)
    [carol] = wait_mail(instance, "carol", 1)
    for got in (bob, carol):
        headers = got.split(b"\n\n", 1)[0].decode()
        rcvd = re.search(r"^Received: .*(?:\n\t.*)*", headers, re.M).group(0)
        assert re.search(r"\n\t\(using TLSv1\.[23] with cipher \S+ "
                         r"\(\d+/\d+ bits\)", rcvd), rcvd
        assert f"\n\t(Authenticated sender: {user})\n\tby mx.example.test " \
               "(Postern) with ESMTPSA id " in rcvd, rcvd
    assert b"Subject: submitted" in bob and b"Hello Bob." in bob
    assert b"Subject: via smtps" in carol
    assert not maildir_files(instance, "alice")
    # The remote recipient was queued for relay (no smtp service here).
    wait_log(instance, rf"to=<{re.escape(REMOTE_RCPT)}>, relay=none, .*"
             r"status=deferred \(mail transport unavailable\)$")
    # The submission services log under their syslog_name.
    log = read_log(instance)
    for svc, mech in (("submission", "CRAM-MD5"), ("smtps", "LOGIN")):
        assert re.search(rf"postern/{svc}/smtpd\[\d+\]: \w+: client="
                         rf"localhost\[127\.0\.0\.1\], sasl_method={mech}, "
                         rf"sasl_username={re.escape(user)}$", log, re.M), svc
    SECRETS.check(instance)
