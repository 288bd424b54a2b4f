"""smtpd: STARTTLS (RFC 3207) and implicit TLS (RFC 8314 wrapper mode).

Real clients: Python's ssl/smtplib, swaks, openssl s_client, and raw
sockets (tls_common.TLSClient) for the protocol edge cases: command
injection before the handshake, plaintext after 220, silent clients.
Covered: advertising and the STARTTLS replies, security levels may and
encrypt (no silent downgrade when TLS is broken), the Received: header
and the TLS log line, protocol versions (old ones refused by default),
cipher exclusion and preference, RSA and ECDSA certificates side by side
and as smtpd_tls_chain_files, configuration errors that disable TLS with
a warning naming the cause, session resumption with tickets across smtpd
processes and restarts, and the handshake timeout.  AUTH is in
test_smtpd_auth.py.
"""
import os
import re
import smtplib
import ssl
import subprocess

import pytest

from test_smtpd_common import (HOSTNAME, MESSAGE, SMTPClient, assert_logged,
                               incoming_names, log_lines, messages,
                               queue_file, queue_id_of, read_log,
                               smtpd_messages_settled, start_smtpd, wait_log)
from tls_common import (HANDSHAKE, OpenSSLClient, TLSClient, certs,  # noqa
                        client_context, openssl, service, swaks, tls_params,
                        wait_listening)

CLIENT = "localhost[127.0.0.1]"
READY = "220 2.0.0 Ready to start TLS"
NOT_AVAILABLE = "454 4.7.0 TLS not available due to local problem"
ESTABLISHED = re.compile(
    r"^Anonymous TLS connection established from localhost\[127\.0\.0\.1\]: "
    r"(?P<version>TLSv1(?:\.[0-3])?) with cipher (?P<cipher>\S+) "
    r"\((?P<bits>\d+)/(?P<alg_bits>\d+) bits\)"
    r"(?: key-exchange (?P<kx>\S+))?"
    r"(?: server-signature (?P<sig>RSA-PSS|RSA|ECDSA) \((?P<key>[^)]*)\))?"
    r"(?: server-digest (?P<digest>\S+))?(?P<reused> \(session reused\))?$")


def keywords(c, name="client.example.org"):
    """The EHLO keywords (without the greeting line)."""
    return c.ehlo(name).lines[1:]


def smtpd_pids(instance):
    """The pids in smtpd's log lines, in order of first appearance."""
    pids = []
    for line in log_lines(instance):
        pid = int(re.search(r"\[(\d+)\]:", line).group(1))
        if pid not in pids:
            pids.append(pid)
    return pids


def established(instance):
    """Matches of the loglevel 1 "TLS connection established" lines."""
    return [m for m in (ESTABLISHED.match(x) for x in messages(instance))
            if m]


def received(qf):
    """The first Received: header (folding kept)."""
    return qf.header("Received")


# --- advertising and replies ------------------------------------------------

def test_no_starttls_when_tls_is_off(instance, certs):
    """Level none: a certificate alone does not turn TLS on."""
    port = start_smtpd(instance, **tls_params(
        certs, smtpd_tls_security_level="none"))
    with SMTPClient(port) as c:
        assert "STARTTLS" not in keywords(c)
        assert c.cmd("STARTTLS").line == \
            "502 5.5.1 Error: command not implemented"
        # Mail still flows in plaintext.
        c.transaction()


def test_starttls_advertised_and_replies(instance, certs):
    port = start_smtpd(instance, **tls_params(certs))
    with TLSClient(port) as c:
        assert "STARTTLS" in keywords(c)
        assert c.cmd("STARTTLS now").line == "501 5.5.4 Syntax: STARTTLS"
        assert c.cmd("MAIL FROM:<alice@example.org>").code == 250
        assert c.cmd("STARTTLS").line == \
            "503 5.5.1 Error: MAIL transaction in progress"
        assert c.cmd("RSET").code == 250
        c.starttls(client_context(cafile=certs.rsa_cert))
        assert c.version() in ("TLSv1.2", "TLSv1.3")
        kw = keywords(c)
        assert "STARTTLS" not in kw and "PIPELINING" in kw
        assert c.cmd("STARTTLS").line == \
            "554 5.5.1 Error: TLS already active"
        assert c.cmd("NOOP").line == "250 2.0.0 Ok"
        assert c.cmd("QUIT").line == "221 2.0.0 Bye"
    msgs = smtpd_messages_settled(instance, 1)
    assert (f"disconnect from {CLIENT} ehlo=2 starttls=1/4 mail=1 rset=1 "
            "noop=1 quit=1 commands=7/10") in msgs


def test_smtplib_starttls_verified_delivery(instance, certs):
    """smtplib verifies the certificate (name mx.example.test) and sends;
    Received: says ESMTPS, without details unless asked for."""
    port = start_smtpd(instance, **tls_params(certs))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.example.org")
        assert s.has_extn("starttls")
        code, text = s.starttls(context=client_context(cafile=certs.rsa_cert))
        assert (code, text) == (220, b"2.0.0 Ready to start TLS")
        s.ehlo("client.example.org")
        assert not s.has_extn("starttls")
        assert s.sendmail("alice@example.org", ["bob@example.test"],
                          MESSAGE) == {}
    [qid] = incoming_names(instance)
    qf = queue_file(instance, qid).check()
    rcvd = received(qf)
    assert f"by {HOSTNAME} (Postern) with ESMTPS id {qid}" in rcvd
    assert "(using" not in rcvd and "client certificate" not in rcvd
    assert "sasl_username" not in qf.attrs


def test_received_header_with_tls_details(instance, certs):
    port = start_smtpd(instance, **tls_params(
        certs, smtpd_tls_received_header="yes"))
    with TLSClient(port) as c:
        c.ehlo()
        c.starttls()
        cipher, version, bits = c.cipher()
        c.ehlo("after-tls.example.org")
        qid = c.transaction()
    rcvd = received(queue_file(instance, qid))
    lines = rcvd.split("\n")
    assert lines[0] == "from after-tls.example.org (localhost [127.0.0.1])"
    assert lines[1] == (f"\t(using {version} with cipher {cipher} "
                        f"({bits}/{bits} bits)")
    assert re.match(r"^\t key-exchange \S+ server-signature RSA(-PSS)? "
                    r"\(2048 bits\) server-digest SHA\d+\)$", lines[2]), rcvd
    assert lines[3] == "\t(No client certificate requested)"
    assert lines[4] == f"\tby {HOSTNAME} (Postern) with ESMTPS id {qid}"


def test_tls_loglevel(instance, certs):
    quiet, line = service(instance, "quiet", smtpd_tls_loglevel="0")
    port = start_smtpd(instance, extra_master=line, **tls_params(
        certs, smtpd_tls_loglevel="1"))
    wait_listening(instance, quiet)
    with TLSClient(port) as c:
        c.starttls()
        cipher, version, _ = c.cipher()
        c.cmd("QUIT")
    with TLSClient(quiet) as c:
        c.starttls()
        c.cmd("QUIT")
    smtpd_messages_settled(instance, 2)
    [m] = established(instance)
    assert m["version"] == version and m["cipher"] == cipher
    assert m["sig"] in ("RSA-PSS", "RSA") and m["key"] == "2048 bits", m[0]
    assert m["kx"] and m["digest"], m[0]
    assert m["reused"] is None


def test_starttls_forgets_the_helo(instance, certs):
    """RFC 3207 4.2: after the handshake the client starts over."""
    port = start_smtpd(instance, smtpd_helo_required="yes",
                       **tls_params(certs))
    with TLSClient(port) as c:
        c.ehlo("before.example.org")
        c.starttls()
        assert c.cmd("MAIL FROM:<alice@example.org>").line == \
            "503 5.5.1 Error: send HELO/EHLO first"
        c.ehlo("after.example.org")
        qid = c.transaction()
    qf = queue_file(instance, qid)
    assert qf.attrs["helo_name"] == "after.example.org"
    assert received(qf).startswith("from after.example.org ")


# --- command injection and broken clients --------------------------------------

def test_starttls_injection_is_a_sync_error(instance, certs):
    """STARTTLS and RSET in one packet: with smtpd_forbid_unauth_pipelining
    (the default) that is a synchronization error, and neither command
    gets an answer of its own."""
    port = start_smtpd(instance, **tls_params(certs))
    with SMTPClient(port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nRSET\r\n")
        assert c.closed(10)
        assert c.buf == b"554 5.5.0 Error: SMTP protocol synchronization\r\n"
    wait_log(instance, r"improper command pipelining after STARTTLS from "
             r"localhost\[127\.0\.0\.1\]: RSET")


def test_starttls_injection_is_discarded(instance, certs):
    """Pipelining allowed: STARTTLS is answered, and what came with it in
    the same packet is thrown away (CVE-2011-0411): no reply to it in
    plaintext or over TLS, and the injected MAIL never happened."""
    port = start_smtpd(instance, smtpd_forbid_unauth_pipelining="no",
                       **tls_params(certs))
    with TLSClient(port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n")
        assert c.reply().line == READY
        # Nothing after the 220 in plaintext (handshake() checks), and
        # nothing over TLS until we speak.
        c.handshake()
        assert c.nothing_pending(0.5)
        r = c.cmd("EHLO client.example.org")
        assert r.raw[0] == f"250-{HOSTNAME}", r
        assert c.cmd("RCPT TO:<bob@example.test>").line == \
            "503 5.5.1 Error: need MAIL command"
        assert c.cmd("QUIT").code == 221
    msgs = smtpd_messages_settled(instance, 1)
    assert (f"discarding 36 bytes sent ahead of the TLS handshake by "
            f"{CLIENT}") in msgs
    assert (f"disconnect from {CLIENT} ehlo=2 starttls=1 rcpt=0/1 quit=1 "
            "commands=4/5") in msgs


def test_plaintext_after_starttls_is_dropped(instance, certs):
    """A client that keeps talking plaintext after 220 is logged and
    dropped; the smtpd process lives on and serves the next client."""
    port = start_smtpd(instance, **tls_params(certs))
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("STARTTLS").line == READY
        c.send(b"EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\n")
        assert c.closed(10)
        assert c.buf == b""                     # not a byte in plaintext
    wait_log(instance, r"SSL_accept error from localhost\[127\.0\.0\.1\]: "
             r".*wrong version number")
    with TLSClient(port) as c:
        c.starttls()
        c.ehlo()
        c.transaction()
        c.cmd("QUIT")
    msgs = smtpd_messages_settled(instance, 2)
    assert f"lost connection after STARTTLS from {CLIENT}" in msgs
    # One process: it survived the broken handshake.
    assert len(smtpd_pids(instance)) == 1, log_lines(instance)


def test_starttls_handshake_timeout(instance, certs):
    """A client that never starts the handshake is dropped after
    smtpd_starttls_timeout, not the (long) smtpd_timeout."""
    port = start_smtpd(instance, smtpd_starttls_timeout="2s",
                       smtpd_timeout="60s", **tls_params(certs))
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("STARTTLS").line == READY
        assert c.closed(20), "still connected long after the TLS timeout"
        assert c.buf == b""
    wait_log(instance, r"SSL_accept error from localhost\[127\.0\.0\.1\]: "
             r"handshake timeout$")


# --- security level encrypt ---------------------------------------------------

def test_encrypt_level_requires_starttls(instance, certs):
    port = start_smtpd(instance, disable_vrfy_command="no",
                       smtpd_sasl_auth_enable="yes", **tls_params(
                           certs, smtpd_tls_security_level="encrypt"))
    must = "530 5.7.0 Must issue a STARTTLS command first"
    with TLSClient(port) as c:
        kw = keywords(c)
        assert "STARTTLS" in kw
        assert not [k for k in kw if k.startswith("AUTH")]
        assert c.cmd("MAIL FROM:<alice@example.org>").line == must
        assert c.cmd("VRFY bob@example.test").line == must
        assert c.cmd("AUTH PLAIN").line == must
        assert c.cmd("RCPT TO:<bob@example.test>").line == \
            "503 5.5.1 Error: need MAIL command"
        assert c.cmd("NOOP").code == 250
        c.starttls()
        c.ehlo()
        assert c.cmd("VRFY bob@example.test").code == 252
        qid = c.transaction()
    assert qid in incoming_names(instance)


def test_encrypt_level_smtplib_without_tls_refused(instance, certs):
    port = start_smtpd(instance, **tls_params(
        certs, smtpd_tls_security_level="encrypt"))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("alice@example.org", ["bob@example.test"], MESSAGE)
        assert e.value.smtp_code == 530
    assert incoming_names(instance) == []


def test_encrypt_level_with_broken_tls_never_downgrades(instance, certs):
    """Level encrypt but no usable certificate: no STARTTLS, 454 to it,
    and mail is refused rather than accepted in plaintext."""
    port = start_smtpd(instance, **tls_params(
        certs, smtpd_tls_security_level="encrypt",
        smtpd_tls_cert_file="/nonexistent/cert.pem",
        smtpd_tls_key_file="/nonexistent/key.pem"))
    with SMTPClient(port) as c:
        assert "STARTTLS" not in keywords(c)
        assert c.cmd("STARTTLS").line == NOT_AVAILABLE
        assert c.cmd("MAIL FROM:<alice@example.org>").line == \
            "530 5.7.0 Must issue a STARTTLS command first"
    assert incoming_names(instance) == []
    wait_log(instance, r"warning: TLS is not available: "
             r"/nonexistent/cert\.pem: ")


# --- configuration errors: TLS off, with a warning naming the cause ------------

BROKEN = {
    "missing-cert": (dict(smtpd_tls_cert_file="/nonexistent/cert.pem"),
                     r"/nonexistent/cert\.pem: cannot open"),
    "key-mismatch": (dict(smtpd_tls_key_file="{ec_key}"),
                     r"{rsa_cert}: key and certificate do not match"),
    "bad-protocol": (dict(smtpd_tls_protocols="TLSv9"),
                     r'unknown TLS protocol "TLSv9"'),
    "no-protocol": (dict(smtpd_tls_protocols=">=TLSv1.3, <=TLSv1.2"),
                    r'no TLS protocol left in ">=TLSv1\.3, <=TLSv1\.2"'),
    "bad-grade": (dict(smtpd_tls_ciphers="ultra"),
                  r'unsupported cipher grade "ultra"'),
    "cert-first": (dict(smtpd_tls_chain_files="{rsa_cert}, {rsa_key}"),
                   r"{rsa_cert}: a certificate before its private key"),
    "no-cert": (dict(smtpd_tls_cert_file="", smtpd_tls_key_file=""),
                r"no server certificate and key are configured"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_tls_settings_disable_starttls(instance, certs, case):
    params, warning = BROKEN[case]
    paths = {"ec_key": certs.ec_key, "rsa_key": certs.rsa_key,
             "rsa_cert": certs.rsa_cert}
    params = {k: v.format(**paths) for k, v in params.items()}
    warning = warning.format(**{k: re.escape(v) for k, v in paths.items()})
    port = start_smtpd(instance, **tls_params(certs, **params))
    with SMTPClient(port) as c:
        assert "STARTTLS" not in keywords(c)
        assert c.cmd("STARTTLS").line == NOT_AVAILABLE
        # Opportunistic TLS: plaintext mail still flows.
        c.transaction()
    wait_log(instance, r"postern/smtpd\[\d+\]: warning: TLS is not "
             r"available: .*" + warning)


# --- wrapper mode (smtps, port 465) -------------------------------------------

def wrapper_instance(instance, certs, **params):
    """The main smtpd with STARTTLS, and a wrapper-mode one; returns
    (starttls port, wrapper port)."""
    wport, line = service(instance, "smtps", smtpd_tls_wrappermode="yes")
    port = start_smtpd(instance, extra_master=line,
                       **tls_params(certs, **params))
    wait_listening(instance, wport)
    return port, wport


def test_wrapper_mode(instance, certs):
    _, wport = wrapper_instance(instance, certs)
    with TLSClient(wport, wrap=client_context(cafile=certs.rsa_cert)) as c:
        assert c.greeting.line == f"220 {HOSTNAME} ESMTP Postern"
        assert "STARTTLS" not in keywords(c)
        assert c.cmd("STARTTLS").line == \
            "554 5.5.1 Error: TLS already active"
        qid = c.transaction()
    assert f"with ESMTPS id {qid}" in received(queue_file(instance, qid))
    # smtplib's SMTP_SSL, verifying.
    with smtplib.SMTP_SSL("127.0.0.1", wport, timeout=10,
                          context=client_context(cafile=certs.rsa_cert)) as s:
        assert s.sendmail("alice@example.org", ["carol@example.test"],
                          MESSAGE) == {}
    assert len(incoming_names(instance)) == 2


def test_wrapper_mode_openssl_and_swaks(instance, certs):
    _, wport = wrapper_instance(instance, certs)
    rc, out = openssl(wport, "-CAfile", certs.rsa_cert, starttls=False)
    assert rc == 0, out
    assert f"220 {HOSTNAME} ESMTP Postern" in out
    assert "221 2.0.0 Bye" in out
    assert "Verify return code: 0 (ok)" in out
    res = swaks(wport, "--tlsc", "--quit-after", "EHLO")
    assert res.returncode == 0, res.out
    assert "=== TLS started with cipher" in res.out
    assert "<~  221 2.0.0 Bye" in res.out


def test_wrapper_mode_silent_client_timeout(instance, certs):
    """A client that connects to the TLS port and says nothing is dropped
    after smtpd_starttls_timeout, without a plaintext greeting."""
    _, wport = wrapper_instance(instance, certs, smtpd_starttls_timeout="2s",
                                smtpd_timeout="60s")
    with SMTPClient(wport, greet=False) as c:
        assert c.closed(20), "still connected long after the TLS timeout"
        assert c.buf == b""
    wait_log(instance, r"SSL_accept error from localhost\[127\.0\.0\.1\]: "
             r"handshake timeout$")
    msgs = smtpd_messages_settled(instance, 1)
    assert f"lost connection after CONNECT from {CLIENT}" in msgs


def test_wrapper_mode_plaintext_client(instance, certs):
    _, wport = wrapper_instance(instance, certs)
    with SMTPClient(wport, greet=False) as c:
        c.send(b"EHLO client.example.org\r\n")
        assert c.closed(10)
        assert b"220" not in c.buf and b"250" not in c.buf
    wait_log(instance, r"SSL_accept error from localhost\[127\.0\.0\.1\]: "
             r".*wrong version number")


def test_wrapper_mode_without_certificate(instance, certs):
    """No plaintext fallback on the TLS port."""
    _, wport = wrapper_instance(instance, certs,
                                smtpd_tls_cert_file="/nonexistent/cert.pem")
    with SMTPClient(wport, greet=False) as c:
        assert c.closed(10)
        assert c.buf == b""
    wait_log(instance, r"warning: localhost\[127\.0\.0\.1\]: TLS wrapper "
             r"mode, but TLS is not available: disconnecting")


# --- other real clients ---------------------------------------------------------

def test_swaks_starttls_transaction(instance, certs):
    port = start_smtpd(instance, **tls_params(certs))
    res = swaks(port, "--tls", "--from", "alice@example.org", "--to",
                "bob@example.test", "--header", "Subject: over TLS")
    assert res.returncode == 0, res.out
    assert " -> STARTTLS" in res.out
    assert "<-  220 2.0.0 Ready to start TLS" in res.out
    m = re.search(r"<~  250 2\.0\.0 Ok: queued as (\S+)", res.out)
    assert m, res.out
    qf = queue_file(instance, m.group(1)).check()
    assert qf.header("Subject") == "over TLS"
    assert "with ESMTPS id" in received(qf)


def test_openssl_starttls_transaction(instance, certs):
    port = start_smtpd(instance, **tls_params(certs))
    with OpenSSLClient(port, "-CAfile", certs.rsa_cert) as o:
        assert o.expect(HANDSHAKE).group(0) != ":error:", o.out
        # (s_client prints the last line of the first EHLO reply again
        # after the handshake: look for the new reply from its start.)
        o.send("EHLO openssl.example.org")
        assert o.expect(rf"^250-{HOSTNAME}\r?$"), o.out
        assert o.expect(r"^250 CHUNKING\r?$"), o.out
        assert o.cmd("MAIL FROM:<alice@example.org>") == "250 2.1.0 Ok"
        assert o.cmd("RCPT TO:<bob@example.test>") == "250 2.1.5 Ok"
        assert o.cmd("DATA").startswith("354 ")
        for line in MESSAGE.decode().split("\r\n")[:-1]:
            o.send(line)
        r = o.cmd(".")
        o.send("QUIT")
        assert o.finish() == 0, o.out
    m = re.match(r"^250 2\.0\.0 Ok: queued as (\S+)$", r or "")
    assert m, o.out
    qf = queue_file(instance, m.group(1)).check()
    assert qf.attrs["helo_name"] == "openssl.example.org"
    assert qf.header("Subject") == "test"


# --- protocols and ciphers ------------------------------------------------------

def test_old_protocols_refused_by_default(instance, certs):
    """TLS 1.0 and 1.1 are refused by default.  The server's cipher
    security level is lowered (SECLEVEL=0) on two extra services, so that
    it is the protocol setting that refuses: with >=TLSv1 the same old
    handshakes succeed."""
    old, line1 = service(instance, "old",
                         tls_medium_cipherlist="DEFAULT@SECLEVEL=0")
    allowed, line2 = service(instance, "allowed",
                             tls_medium_cipherlist="DEFAULT@SECLEVEL=0",
                             smtpd_tls_protocols=">=TLSv1")
    port = start_smtpd(instance, extra_master=line1 + line2,
                       **tls_params(certs))
    wait_listening(instance, old, allowed)
    weak = ("-cipher", "DEFAULT@SECLEVEL=0")
    for p in (port, old):
        for version in ("-tls1", "-tls1_1"):
            rc, out = openssl(p, version, *weak)
            assert rc != 0 and "221 2.0.0 Bye" not in out, out
            assert "alert protocol version" in out, out
    for version, name in (("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1")):
        rc, out = openssl(allowed, version, *weak)
        assert rc == 0, out
        assert re.search(rf"^\s*Protocol\s*: {re.escape(name)}$", out, re.M)
        assert "221 2.0.0 Bye" in out
    assert sum("unsupported protocol" in m for m in messages(instance)) == 4
    # Python's default client: TLS 1.3; limited to 1.2, it gets 1.2.
    for maximum, want in ((None, "TLSv1.3"),
                          (ssl.TLSVersion.TLSv1_2, "TLSv1.2")):
        with TLSClient(port) as c:
            c.starttls(client_context(maximum=maximum))
            assert c.version() == want
            c.cmd("QUIT")


def test_protocol_upper_bound(instance, certs):
    excl, line1 = service(instance, "excl", smtpd_tls_protocols="!TLSv1.3")
    # Level encrypt uses the mandatory list, not smtpd_tls_protocols.
    mand, line2 = service(instance, "mand", smtpd_tls_security_level="encrypt",
                          smtpd_tls_mandatory_protocols="<=TLSv1.2",
                          smtpd_tls_protocols="TLSv1.3")
    port = start_smtpd(instance, extra_master=line1 + line2, **tls_params(
        certs, smtpd_tls_protocols="<=TLSv1.2"))
    wait_listening(instance, excl, mand)
    for p in (port, excl, mand):
        with TLSClient(p) as c:
            c.starttls()
            assert c.version() == "TLSv1.2", p
            c.ehlo()
            c.transaction()
    rc, out = openssl(port, "-tls1_3")
    assert rc != 0 and "221 2.0.0 Bye" not in out, out


def test_cipher_exclusion_and_preference(instance, certs):
    """TLS 1.2 ciphers: the client's order wins unless
    tls_preempt_cipherlist; smtpd_tls_exclude_ciphers removes some."""
    excl, line1 = service(instance, "excl", smtpd_tls_exclude_ciphers="AES256")
    pref, line2 = service(instance, "pref", tls_preempt_cipherlist="yes")
    port = start_smtpd(instance, extra_master=line1 + line2,
                       **tls_params(certs))
    wait_listening(instance, excl, pref)

    def cipher(p, order):
        ctx = client_context(maximum=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(order)
        with TLSClient(p) as c:
            c.starttls(ctx)
            c.cmd("QUIT")
            return c.cipher()[0]
    a128 = "ECDHE-RSA-AES128-GCM-SHA256"
    a256 = "ECDHE-RSA-AES256-GCM-SHA384"
    assert cipher(port, f"{a256}:{a128}") == a256
    assert cipher(port, f"{a128}:{a256}") == a128
    assert cipher(excl, f"{a256}:{a128}") == a128
    assert cipher(pref, f"{a128}:{a256}") == a256     # @STRENGTH order
    # Nothing left in common: no handshake.
    with TLSClient(excl) as c:
        assert c.cmd("STARTTLS").line == READY
        ctx = client_context(maximum=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(a256)
        with pytest.raises(ssl.SSLError):
            c.handshake(ctx)


# --- certificates -------------------------------------------------------------

def sigtype(port, *args):
    rc, out = openssl(port, *args)
    m = re.search(r"^Peer signature type: (\S+)$", out, re.M)
    return rc, (m.group(1) if m else None), out


def test_rsa_and_ecdsa_certificates(instance, certs):
    rsa_only, line = service(instance, "rsa", smtpd_tls_eccert_file="")
    port = start_smtpd(instance, extra_master=line, **tls_params(
        certs, smtpd_tls_eccert_file=certs.ec_cert,
        smtpd_tls_eckey_file=certs.ec_key, smtpd_tls_loglevel="1"))
    wait_listening(instance, rsa_only)
    rc, kind, out = sigtype(port, "-sigalgs", "ECDSA+SHA256", "-tls1_2")
    assert (rc, kind) == (0, "ECDSA"), out
    rc, kind, out = sigtype(port, "-sigalgs", "RSA-PSS+SHA256")
    assert (rc, kind) == (0, "RSA-PSS"), out
    # The ECDSA certificate verifies against itself, the RSA one not.
    ecdsa_tls12 = client_context(cafile=certs.ec_cert,
                                 maximum=ssl.TLSVersion.TLSv1_2)
    ecdsa_tls12.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with TLSClient(port) as c:
        c.starttls(ecdsa_tls12)
        c.cmd("QUIT")
    rsa_tls12 = client_context(cafile=certs.ec_cert,
                               maximum=ssl.TLSVersion.TLSv1_2)
    rsa_tls12.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    with TLSClient(port) as c:
        assert c.cmd("STARTTLS").line == READY
        with pytest.raises(ssl.SSLCertVerificationError):
            c.handshake(rsa_tls12)
    # Without the ECDSA certificate an ECDSA-only client gets nowhere.
    rc, kind, out = sigtype(rsa_only, "-sigalgs", "ECDSA+SHA256", "-tls1_2")
    assert rc != 0 and kind is None, out
    sigs = [(m["sig"], m["key"]) for m in established(instance)]
    assert ("ECDSA", "P-256") in sigs and ("RSA-PSS", "2048 bits") in sigs


def test_chain_files(instance, certs):
    """smtpd_tls_chain_files: keys and chains, several files; a key and
    its certificate may also be in separate files (key first)."""
    leaf, line1 = service(instance, "leaf",
                          smtpd_tls_chain_files=certs.leaf_chain)
    split, line2 = service(instance, "split", smtpd_tls_chain_files=(
        f"{certs.ec_key},{certs.ec_cert}"))
    port = start_smtpd(instance, extra_master=line1 + line2, **tls_params(
        certs, smtpd_tls_cert_file="", smtpd_tls_key_file="",
        smtpd_tls_chain_files=f"{certs.rsa_chain}, {certs.ec_chain}"))
    wait_listening(instance, leaf, split)
    rc, kind, out = sigtype(port, "-sigalgs", "ECDSA+SHA256", "-tls1_2")
    assert (rc, kind) == (0, "ECDSA"), out
    rc, kind, out = sigtype(port, "-sigalgs", "RSA-PSS+SHA256")
    assert (rc, kind) == (0, "RSA-PSS"), out
    # The leaf and the CA certificate are both sent; the chain verifies.
    rc, out = openssl(leaf, "-showcerts", "-CAfile", certs.ca_cert)
    assert rc == 0, out
    chain = re.findall(r"^ (\d) s:(.*)$", out, re.M)
    assert chain == [("0", f"CN = {HOSTNAME}"), ("1", "CN = Postern Test CA")]
    assert "Verify return code: 0 (ok)" in out
    with TLSClient(leaf) as c:
        c.starttls(client_context(cafile=certs.ca_cert))
        c.cmd("QUIT")
    rc, kind, out = sigtype(split, "-sigalgs", "ECDSA+SHA256", "-tls1_2")
    assert (rc, kind) == (0, "ECDSA"), out


# --- session resumption -------------------------------------------------------

def resumed(port, sess, *args, starttls=True, save=False):
    """Connect with the session in file sess (-sess_in), or save a new one
    (-sess_out); True if the server resumed it."""
    flag = "-sess_out" if save else "-sess_in"
    rc, out = openssl(port, flag, sess, *args, starttls=starttls)
    assert rc == 0, out
    m = re.search(r"^(New|Reused), TLSv1\.[23]", out, re.M)
    assert m, out
    return m.group(1) == "Reused"


def test_session_resumption_across_processes_and_restarts(instance, certs):
    """Tickets: a session made with one smtpd is resumed by another
    process (the wrapper-mode service) and after a restart, as long as
    tls_session_ticket_key_file stays; a new secret ends that."""
    port, wport = wrapper_instance(instance, certs, smtpd_tls_loglevel="1")
    sess = instance.path("session.pem")
    assert not resumed(port, sess, save=True)
    assert resumed(port, sess)
    assert resumed(wport, sess, starttls=False)
    # TLS 1.2 tickets as well.
    sess12 = instance.path("session12.pem")
    assert not resumed(wport, sess12, "-tls1_2", starttls=False, save=True)
    assert resumed(port, sess12, "-tls1_2")
    secret = os.path.join(instance.data_dir, "tls_ticket_secret")
    st = os.stat(secret)
    assert st.st_size == 32 and st.st_mode & 0o777 == 0o600
    smtpd_messages_settled(instance, 5)
    assert len(smtpd_pids(instance)) == 2
    reused = [m for m in established(instance) if m["reused"]]
    assert len(reused) == 3
    assert reused[0]["sig"] is None         # no signature in a resumption
    # A restart keeps the secret: the session still resumes.
    instance.stop_master()
    instance.start()
    wait_listening(instance, port)
    assert resumed(port, sess)
    # A new secret: the old tickets are worthless.
    instance.stop_master()
    with open(secret, "wb") as f:
        f.write(os.urandom(32))
    instance.start()
    wait_listening(instance, port)
    assert not resumed(port, sess)


def test_session_resumption_off(instance, certs):
    port = start_smtpd(instance, **tls_params(
        certs, smtpd_tls_session_cache_timeout="0"))
    sess = instance.path("session.pem")
    # No ticket, and no session cache (no session ID): nothing that a
    # client could keep for later.
    for args in ((), ("-tls1_2",)):
        assert not resumed(port, sess, *args, save=True)
        assert not os.path.exists(sess)
    assert not os.path.exists(os.path.join(instance.data_dir,
                                           "tls_ticket_secret"))


def test_session_ticket_key_file(instance, certs):
    keyfile = instance.path("data/my-ticket-key")
    port = start_smtpd(instance, **tls_params(
        certs, tls_session_ticket_key_file=keyfile))
    sess = instance.path("session.pem")
    assert not resumed(port, sess, save=True)
    assert resumed(port, sess)
    assert os.path.getsize(keyfile) == 32
    assert not os.path.exists(os.path.join(instance.data_dir,
                                           "tls_ticket_secret"))
