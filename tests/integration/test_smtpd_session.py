"""smtpd: the SMTP dialogue -- greeting, HELO/EHLO, command replies and
enhanced status codes, command pipelining, error and resource limits,
timeouts, and the session log lines (postfix-compat.md sections 7, 8).

Tests marked "BUG" (in the docstring, or in a comment on a parameter)
fail because of a known defect and are meant to fail until it is fixed.
"""
import re
import smtplib
import subprocess

from conftest import wait_for
from test_smtpd_common import (HOSTNAME, MESSAGE, SMTPClient, assert_logged,
                               incoming, incoming_names, outside, queue_file,
                               queue_id_of, read_log, smtpd_messages_settled,
                               start_smtpd, wait_log)

CLIENT = "localhost[127.0.0.1]"


# --- greeting, HELO, EHLO ---------------------------------------------------

def test_greeting_default_banner(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        assert c.greeting.raw == [f"220 {HOSTNAME} ESMTP Postern"]


def test_greeting_uses_smtpd_banner(instance):
    port = start_smtpd(instance,
                       smtpd_banner="$myhostname ESMTP ready for $mail_name")
    with SMTPClient(port) as c:
        assert c.greeting.raw == [f"220 {HOSTNAME} ESMTP ready for Postern"]


def test_smtplib_sees_banner_and_helo(instance):
    port = start_smtpd(instance)
    s = smtplib.SMTP("127.0.0.1", port, timeout=10)
    try:
        code, text = s.helo("client.example.org")
        assert (code, text) == (250, HOSTNAME.encode())
        code, _ = s.noop()
        assert code == 250
    finally:
        s.quit()


EHLO_DEFAULT = [HOSTNAME, "PIPELINING", "SIZE 10240000",
                "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8",
                "CHUNKING"]


def test_ehlo_keywords(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        r = c.cmd("EHLO client.example.org")
        assert r.code == 250
        assert [line[:3] for line in r.raw] == ["250"] * len(r.raw)
        assert all(line[3] == "-" for line in r.raw[:-1]) and \
            r.raw[-1][3] == " ", r.raw
        assert r.lines == EHLO_DEFAULT
        assert "VRFY" not in r.lines            # disable_vrfy_command=yes


def test_ehlo_size_follows_message_size_limit(instance):
    port = start_smtpd(instance, message_size_limit="123456")
    with SMTPClient(port) as c:
        assert "SIZE 123456" in c.ehlo().lines


def test_ehlo_advertises_vrfy_when_enabled(instance):
    port = start_smtpd(instance, disable_vrfy_command="no")
    with SMTPClient(port) as c:
        lines = c.ehlo().lines
        assert "VRFY" in lines
        assert set(EHLO_DEFAULT) <= set(lines)


def test_ehlo_without_smtputf8(instance):
    port = start_smtpd(instance, smtputf8_enable="no")
    with SMTPClient(port) as c:
        assert "SMTPUTF8" not in c.ehlo().lines


def test_smtplib_ehlo_features(instance):
    port = start_smtpd(instance)
    s = smtplib.SMTP("127.0.0.1", port, timeout=10)
    try:
        s.ehlo("client.example.org")
        for kw in ("pipelining", "size", "enhancedstatuscodes", "8bitmime",
                   "dsn", "smtputf8", "chunking"):
            assert s.has_extn(kw), kw
        assert s.esmtp_features["size"] == "10240000"
        assert not s.has_extn("vrfy")
    finally:
        s.quit()


def test_helo_and_ehlo_need_a_hostname(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        assert c.cmd("HELO").line == "501 5.5.4 Syntax: HELO hostname"
        assert c.cmd("EHLO").line == "501 5.5.4 Syntax: EHLO hostname"
        assert c.cmd("HELO client.example.org").line == f"250 {HOSTNAME}"


def test_helo_not_required_by_default(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        assert c.cmd("MAIL FROM:<alice@example.org>").line == "250 2.1.0 Ok"


def test_helo_required(instance):
    port = start_smtpd(instance, smtpd_helo_required="yes")
    with SMTPClient(port) as c:
        assert c.cmd("MAIL FROM:<alice@example.org>").line == \
            "503 5.5.1 Error: send HELO/EHLO first"
        c.helo()
        assert c.cmd("MAIL FROM:<alice@example.org>").line == "250 2.1.0 Ok"


def test_ehlo_resets_the_transaction(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org>").code == 250
        c.ehlo()
        # No transaction any more: RCPT needs a new MAIL.
        assert c.cmd("RCPT TO:<bob@example.test>").line == \
            "503 5.5.1 Error: need MAIL command"


# --- simple commands ----------------------------------------------------------

def test_noop_rset_quit(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("NOOP").line == "250 2.0.0 Ok"
        assert c.cmd("MAIL FROM:<alice@example.org>").code == 250
        assert c.cmd("RSET").line == "250 2.0.0 Ok"
        # RSET ended the transaction: MAIL is allowed again.
        assert c.cmd("MAIL FROM:<alice@example.org>").line == "250 2.1.0 Ok"
        assert c.cmd("RSET extra").line == "501 5.5.4 Syntax: RSET"
        assert c.cmd("QUIT").line == "221 2.0.0 Bye"
        assert c.closed()


def test_commands_are_case_insensitive(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        assert c.cmd("ehlo client.example.org").code == 250
        assert c.cmd("mail from:<alice@example.org>").line == "250 2.1.0 Ok"
        assert c.cmd("rcpt to:<bob@example.test>").line == "250 2.1.5 Ok"
        assert c.cmd("noop").line == "250 2.0.0 Ok"
        assert c.cmd("quit").line == "221 2.0.0 Bye"


def test_help(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        r = c.cmd("HELP")
        assert r.code == 214 and r.lines[-1].startswith("2.0.0 "), r
        assert "VRFY" not in r.text


def test_vrfy_disabled_by_default(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("VRFY bob@example.test").line == \
            "502 5.5.1 VRFY command is disabled"


def test_vrfy_enabled(instance):
    port = start_smtpd(instance, disable_vrfy_command="no",
                       local_recipient_maps="inline:{ bob=x }")
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("VRFY bob@example.test").line == \
            "252 2.0.0 bob@example.test"
        assert c.cmd("VRFY <bob@example.test>").line == \
            "252 2.0.0 bob@example.test"
        assert c.cmd("VRFY nobody@example.test").line == (
            "550 5.1.1 <nobody@example.test>: Recipient address rejected: "
            "User unknown in local recipient table")
        assert c.cmd("VRFY").line == "501 5.5.4 Syntax: VRFY address"
        assert "VRFY" in c.cmd("HELP").text


# --- bad sequence and syntax ---------------------------------------------------

def test_bad_sequence_replies(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("RCPT TO:<bob@example.test>").line == \
            "503 5.5.1 Error: need MAIL command"
        r = c.cmd("DATA")
        # Postfix says "need RCPT command" here; both are 503 5.5.1.
        assert r.code == 503 and r.lines[-1].startswith("5.5.1 Error: need "), r
        assert c.cmd("MAIL FROM:<alice@example.org>").line == "250 2.1.0 Ok"
        assert c.cmd("MAIL FROM:<alice@example.org>").line == \
            "503 5.5.1 Error: nested MAIL command"
        # MAIL without any accepted recipient.
        assert c.cmd("DATA").line == "554 5.5.1 Error: no valid recipients"
        assert c.cmd("RSET").code == 250
        # The session is still usable.
        qid = c.transaction()
        assert qid in incoming_names(instance)


def test_syntax_errors(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("FROB").line == "500 5.5.2 Error: command not recognized"
        assert c.cmd("").line.startswith("500 5.5.2 ")
        assert c.cmd("MAIL TO:<alice@example.org>").line == \
            "501 5.5.4 Syntax: MAIL FROM:<address>"
        assert c.cmd("MAIL alice@example.org").line == \
            "501 5.5.4 Syntax: MAIL FROM:<address>"
        assert c.cmd("MAIL FROM:<alice example.org>").line == \
            "501 5.1.7 Bad sender address syntax"
        assert c.cmd("MAIL FROM:<alice@example.org").line == \
            "501 5.1.7 Bad sender address syntax"
        assert c.cmd("MAIL FROM:<alice@example.org> FOO=BAR").line == \
            "555 5.5.4 Unsupported option: FOO"
        assert c.cmd("MAIL FROM:<alice@example.org>").line == "250 2.1.0 Ok"
        assert c.cmd("RCPT bob@example.test").line == \
            "501 5.5.4 Syntax: RCPT TO:<address>"
        assert c.cmd("RCPT TO:<bob example.test>").line == \
            "501 5.1.3 Bad recipient address syntax"
        assert c.cmd("RCPT TO:<>").line == \
            "501 5.1.3 Bad recipient address syntax"
        assert c.cmd("RCPT TO:<bob@example.test> NOTIFY=SOMETIMES").line == \
            "501 5.5.4 Error: Bad NOTIFY parameter syntax"
        assert c.cmd("RCPT TO:<bob@example.test> ORCPT=bogus").line == \
            "501 5.5.4 Error: Bad ORCPT parameter syntax"
        assert c.cmd("DATA extra").line == "501 5.5.4 Syntax: DATA"
        # Nothing above was accepted: no recipient.
        assert c.cmd("DATA").line == "554 5.5.1 Error: no valid recipients"


def test_null_sender_and_brackets_optional(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<>").line == "250 2.1.0 Ok"
        assert c.cmd("RCPT TO:<bob@example.test>").line == "250 2.1.5 Ok"
        qid = queue_id_of(c.data(MESSAGE))
        assert queue_file(instance, qid).sender == ""
        # strict_rfc821_envelopes=no: no brackets, or a space, is fine.
        assert c.cmd("MAIL FROM: alice@example.org").line == "250 2.1.0 Ok"
        assert c.cmd("RCPT TO:bob@example.test").line == "250 2.1.5 Ok"


def test_strict_rfc821_envelopes(instance):
    port = start_smtpd(instance, strict_rfc821_envelopes="yes")
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:alice@example.org").line == \
            "501 5.1.7 Bad sender address syntax"
        assert c.cmd("MAIL FROM:<alice@example.org>").line == "250 2.1.0 Ok"


def test_too_long_command_line_refused(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        r = c.cmd("NOOP " + "x" * 5000)
        assert r.code == 500 and r.lines[-1].startswith("5.5.2 "), r
        # The rest of the long line was thrown away, not run as a command.
        assert c.nothing_pending()
        assert c.cmd("NOOP").line == "250 2.0.0 Ok"
        r = c.cmd("MAIL FROM:<" + "a" * 3000 + "@example.org>")
        assert r.code == 500, r
        assert c.cmd("MAIL FROM:<alice@example.org>").line == "250 2.1.0 Ok"


# --- pipelining -------------------------------------------------------------

def test_pipelined_transaction(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<alice@example.org>\r\n"
               b"RCPT TO:<bob@example.test>\r\n"
               b"RCPT TO:<carol@example.test>\r\n"
               b"DATA\r\n")
        replies = c.replies(4)
        assert [r.line for r in replies] == [
            "250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>"]
        c.send(MESSAGE + b".\r\n")
        qid = queue_id_of(c.reply())
        # A second transaction pipelined with RSET and QUIT.
        c.send(b"RSET\r\nMAIL FROM:<dave@example.org>\r\n"
               b"RCPT TO:<erin@example.test>\r\nDATA\r\n")
        assert [r.code for r in c.replies(4)] == [250, 250, 250, 354]
        c.send(MESSAGE + b".\r\n")
        qid2 = queue_id_of(c.reply())
        c.send(b"QUIT\r\n")
        assert c.reply().line == "221 2.0.0 Bye"
    qf = queue_file(instance, qid).check()
    assert qf.sender == "alice@example.org"
    assert qf.rcpt_addresses == ["bob@example.test", "carol@example.test"]
    assert queue_file(instance, qid2).rcpt_addresses == ["erin@example.test"]


def test_pipelined_rejects_keep_order(instance):
    port = start_smtpd(instance, **outside(instance))
    with SMTPClient(port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<alice@example.org>\r\n"
               b"RCPT TO:<x@remote.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\n"
               b"RCPT TO:<y@remote.test>\r\n"
               b"DATA\r\n")
        assert [r.line for r in c.replies(5)] == [
            "250 2.1.0 Ok",
            "454 4.7.1 <x@remote.test>: Relay access denied",
            "250 2.1.5 Ok",
            "454 4.7.1 <y@remote.test>: Relay access denied",
            "354 End data with <CR><LF>.<CR><LF>"]
        c.send(MESSAGE + b".\r\n")
        qid = queue_id_of(c.reply())
    assert queue_file(instance, qid).rcpt_addresses == ["bob@example.test"]


def test_smtplib_sendmail_pipelines(instance):
    port = start_smtpd(instance)
    s = smtplib.SMTP("127.0.0.1", port, timeout=10)
    try:
        refused = s.sendmail("alice@example.org",
                             ["bob@example.test", "carol@example.test"],
                             MESSAGE)
        assert refused == {}
    finally:
        s.quit()
    files = list(incoming(instance).values())
    assert len(files) == 1
    assert files[0].rcpt_addresses == ["bob@example.test",
                                       "carol@example.test"]


def test_swaks_pipelined_delivery(instance):
    port = start_smtpd(instance)
    res = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--helo", "swaks.example",
         "--from", "alice@example.org", "--to", "bob@example.test",
         "--pipeline", "--header", "Subject: via swaks"],
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    m = re.search(r"<-\s+250 2\.0\.0 Ok: queued as (\S+)", res.stdout)
    assert m, res.stdout
    qf = queue_file(instance, m.group(1)).check()
    assert qf.header("Subject") == "via swaks"
    assert qf.attrs["helo_name"] == "swaks.example"
    assert qf.attrs["protocol"] == "ESMTP"


def test_pipelining_before_greeting(instance):
    port = start_smtpd(instance)
    with SMTPClient(port, greet=False) as c:
        c.send(b"EHLO client.example.org\r\n")
        assert c.closed(10)
        assert c.buf.decode() == \
            "554 5.5.0 Error: SMTP protocol synchronization\r\n"
    wait_log(instance, r"improper command pipelining after CONNECT from "
             r"localhost\[127\.0\.0\.1\]:")
    assert not incoming_names(instance)


def test_pipelining_after_helo(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        assert c.cmd("HELO client.example.org").code == 250
        c.send(b"MAIL FROM:<alice@example.org>\r\n"
               b"RCPT TO:<bob@example.test>\r\n")
        assert c.closed(10)
        # Nothing but the refusal: the pipelined commands did not run.
        assert c.buf.decode() == \
            "554 5.5.0 Error: SMTP protocol synchronization\r\n"
    wait_log(instance, r"improper command pipelining after MAIL from "
             r"localhost\[127\.0\.0\.1\]: RCPT TO:<bob@example\.test>")
    msgs = smtpd_messages_settled(instance, 1)
    assert f"disconnect from {CLIENT} helo=1 mail=0/1 commands=1/2" in msgs


def test_pipelining_with_helo_command(instance):
    """HELO itself followed by commands in the same packet."""
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.send(b"HELO client.example.org\r\nMAIL FROM:<alice@example.org>\r\n")
        assert c.closed(10)
        assert c.buf.decode().endswith(
            "554 5.5.0 Error: SMTP protocol synchronization\r\n")
    wait_log(instance, r"improper command pipelining after HELO from "
             r"localhost\[127\.0\.0\.1\]: MAIL FROM:<alice@example\.org>")


def test_message_pipelined_with_data_command(instance):
    """The content sent before the 354 reply is a synchronization error
    (Postfix 3.9 smtpd_forbid_unauth_pipelining), and nothing is queued."""
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>"
               b"\r\nDATA\r\n" + MESSAGE + b".\r\n")
        assert [r.line for r in c.replies(3)] == [
            "250 2.1.0 Ok", "250 2.1.5 Ok",
            "554 5.5.0 Error: SMTP protocol synchronization"]
        assert c.closed(10)
    wait_log(instance, r"improper command pipelining after DATA from ")
    smtpd_messages_settled(instance, 1)
    assert incoming_names(instance) == []


def test_pipelining_allowed_when_not_forbidden(instance):
    port = start_smtpd(instance, smtpd_forbid_unauth_pipelining="no")
    with SMTPClient(port) as c:
        c.send(b"HELO client.example.org\r\nMAIL FROM:<alice@example.org>\r\n"
               b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
        assert [r.code for r in c.replies(4)] == [250, 250, 250, 354]
        c.send(MESSAGE + b".\r\n")
        queue_id_of(c.reply())


# --- limits -----------------------------------------------------------------

def test_recipient_limit(instance):
    port = start_smtpd(instance, smtpd_recipient_limit="3")
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        for n in range(3):
            assert c.cmd(f"RCPT TO:<u{n}@example.test>").line == \
                "250 2.1.5 Ok"
        for n in range(3, 5):
            assert c.cmd(f"RCPT TO:<u{n}@example.test>").line == \
                "452 4.5.3 Error: too many recipients"
        qid = queue_id_of(c.data(MESSAGE))
        # A new transaction counts from zero.
        c.cmd("MAIL FROM:<alice@example.org>")
        assert c.cmd("RCPT TO:<u9@example.test>").line == "250 2.1.5 Ok"
    assert queue_file(instance, qid).rcpt_addresses == [
        "u0@example.test", "u1@example.test", "u2@example.test"]


def test_hard_error_limit(instance):
    port = start_smtpd(instance, smtpd_hard_error_limit="3")
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("FROB").code == 500
        assert c.cmd("RCPT TO:<bob@example.test>").code == 503
        c.send(b"MAIL FROM:<broken\r\n")
        r = c.replies(2)
        assert r[0].line == "501 5.1.7 Bad sender address syntax"
        assert r[1].line == f"421 4.7.0 {HOSTNAME} Error: too many errors"
        assert c.closed(10)
    wait_log(instance, r"too many errors after MAIL from "
             r"localhost\[127\.0\.0\.1\]$")


def test_hard_error_limit_log_names_unknown_command(instance):
    """BUG: Postfix logs "too many errors after UNKNOWN" when the last
    command was not recognized; Postern names the previous command
    (checked against Debian's Postfix 3.7)."""
    port = start_smtpd(instance, smtpd_hard_error_limit="3")
    with SMTPClient(port) as c:
        assert c.cmd("FROB").code == 500
        assert c.cmd("FROB").code == 500
        c.send(b"FROB\r\n")
        assert c.closed(10)
        assert c.buf.decode().endswith(
            f"421 4.7.0 {HOSTNAME} Error: too many errors\r\n")
    msgs = smtpd_messages_settled(instance, 1)
    assert f"disconnect from {CLIENT} unknown=0/3 commands=0/3" in msgs
    assert_logged(instance, f"too many errors after UNKNOWN from {CLIENT}",
                  like="too many errors")


def test_connection_count_limit(instance):
    port = start_smtpd(instance, smtpd_client_connection_count_limit="2",
                       smtpd_client_event_limit_exceptions="")
    a = SMTPClient(port)
    b = SMTPClient(port)
    try:
        with SMTPClient(port, greet=False) as c:
            assert c.closed(10)
            assert c.buf.decode() == (
                f"421 4.7.0 {HOSTNAME} Error: too many connections from "
                "127.0.0.1\r\n")
        wait_log(instance, r"warning: Connection concurrency limit exceeded: "
                 r"3 from localhost\[127\.0\.0\.1\] for service ")
        # The first two are still served.
        assert a.cmd("NOOP").code == 250 and b.cmd("NOOP").code == 250
        assert a.cmd("QUIT").code == 221
        a.close()
        # A slot is free again once anvil has heard of the disconnect.
        def third():
            with SMTPClient(port, greet=False) as c:
                r = c.reply()
                if r.code == 220:
                    c.cmd("QUIT")
                    return True
                return False
        wait_for(third, timeout=10, what="a free connection slot")
    finally:
        a.close()
        b.close()


def test_connection_count_limit_exempts_mynetworks(instance):
    # smtpd_client_event_limit_exceptions defaults to $mynetworks, which
    # has 127.0.0.1.
    port = start_smtpd(instance, smtpd_client_connection_count_limit="1")
    clients = [SMTPClient(port) for _ in range(3)]
    try:
        assert [c.greeting.code for c in clients] == [220, 220, 220]
    finally:
        for c in clients:
            c.close()


def test_connection_rate_limit(instance):
    port = start_smtpd(instance, smtpd_client_connection_rate_limit="3",
                       smtpd_client_event_limit_exceptions="")
    for _ in range(3):
        with SMTPClient(port) as c:
            assert c.cmd("QUIT").code == 221
    with SMTPClient(port, greet=False) as c:
        assert c.closed(10)
        assert c.buf.decode() == (
            f"421 4.7.0 {HOSTNAME} Error: too many connections from "
            "127.0.0.1\r\n")
    wait_log(instance, r"warning: Connection rate limit exceeded: 4 from "
             r"localhost\[127\.0\.0\.1\] for service ")


# --- timeouts ---------------------------------------------------------------

def test_timeout_after_command_disconnects(instance):
    port = start_smtpd(instance, smtpd_timeout="2s")
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.closed(15), "not disconnected at smtpd_timeout"
    wait_log(instance, r"timeout after EHLO from localhost\[127\.0\.0\.1\]$")
    msgs = smtpd_messages_settled(instance, 1)
    assert f"disconnect from {CLIENT} ehlo=1 commands=1" in msgs


def test_timeout_after_command_sends_421(instance):
    """BUG: smtpd writes "421 4.4.2 ... Error: timeout exceeded" to a stream
    whose read just timed out; stream_flush() refuses to write to a stream
    with the error flag set, so the client never sees the reply (Postfix
    sends it).  Evidence: the log says "timeout after EHLO" and the client
    reads EOF with nothing before it."""
    port = start_smtpd(instance, smtpd_timeout="2s")
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.closed(15)
        assert c.buf.decode() == \
            f"421 4.4.2 {HOSTNAME} Error: timeout exceeded\r\n"


def test_timeout_in_data_disconnects_and_queues_nothing(instance):
    port = start_smtpd(instance, smtpd_timeout="2s")
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: slow\r\n\r\nhalf a message\r\n")
        assert c.closed(15), "not disconnected at smtpd_timeout"
    wait_log(instance, r"timeout after DATA \(\d+ bytes\) from "
             r"localhost\[127\.0\.0\.1\]$")
    smtpd_messages_settled(instance, 1)
    assert incoming_names(instance) == []


def test_timeout_in_data_sends_421(instance):
    """BUG: as test_timeout_after_command_sends_421, during DATA."""
    port = start_smtpd(instance, smtpd_timeout="2s")
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: slow\r\n")
        assert c.closed(15)
        assert c.buf.decode() == \
            f"421 4.4.2 {HOSTNAME} Error: timeout exceeded\r\n"


# --- the session log ---------------------------------------------------------

def test_session_log_lines(instance):
    port = start_smtpd(instance, **outside(instance))
    with SMTPClient(port) as c:
        c.ehlo("client.example.org")
        assert c.cmd("MAIL FROM:<alice@example.org>").code == 250
        assert c.cmd("RCPT TO:<x@remote.test>").code == 454
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.cmd("RCPT TO:<y@remote.test>").code == 454
        qid = queue_id_of(c.data(MESSAGE))
        assert c.cmd("FROB").code == 500
        assert c.cmd("QUIT").code == 221
    msgs = smtpd_messages_settled(instance, 1)
    tail = ("from=<alice@example.org> to=<{}> proto=ESMTP "
            "helo=<client.example.org>")
    assert msgs == [
        f"connect from {CLIENT}",
        f"NOQUEUE: reject: RCPT from {CLIENT}: 454 4.7.1 <x@remote.test>: "
        "Relay access denied; " + tail.format("x@remote.test"),
        f"{qid}: client={CLIENT}",
        f"{qid}: reject: RCPT from {CLIENT}: 454 4.7.1 <y@remote.test>: "
        "Relay access denied; " + tail.format("y@remote.test"),
        f"disconnect from {CLIENT} ehlo=1 mail=1 rcpt=1/3 data=1 quit=1 "
        "unknown=0/1 commands=5/8",
    ]


def test_log_line_prefix(instance):
    """Every line: "Mmm dd HH:MM:SS host postern/smtpd[pid]: ", as
    pflogsumm and fail2ban expect."""
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.transaction()
        c.cmd("QUIT")
    smtpd_messages_settled(instance, 1)
    lines = [l for l in read_log(instance).splitlines() if "/smtpd[" in l]
    assert len(lines) >= 3
    for line in lines:
        assert re.match(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ "
                        r"postern/smtpd\[\d+\]: \S", line), line


def test_syslog_name(instance):
    port = start_smtpd(instance, syslog_name="postern-in")
    with SMTPClient(port) as c:
        c.cmd("QUIT")
    wait_log(instance, r" postern-in/smtpd\[\d+\]: connect from "
             r"localhost\[127\.0\.0\.1\]$")


def test_disconnect_without_commands_log(instance):
    """BUG: with no commands Postfix logs "commands=0/0" (postfix-compat.md
    section 7; checked with Debian's Postfix 3.7); Postern logs
    "commands=0"."""
    port = start_smtpd(instance)
    with SMTPClient(port):
        pass
    msgs = smtpd_messages_settled(instance, 1)
    assert f"lost connection after CONNECT from {CLIENT}" in msgs
    assert_logged(instance, f"disconnect from {CLIENT} commands=0/0",
                  like="disconnect from")


def test_size_reject_log_line(instance):
    """BUG: Postfix's reject line for a too large SIZE has from=<sender>
    ("NOQUEUE: reject: MAIL from localhost[127.0.0.1]: 552 5.3.4 Message
    size exceeds fixed limit; from=<a@b.c> proto=ESMTP helo=<...>", checked
    with Debian's Postfix 3.7); Postern leaves from= out."""
    port = start_smtpd(instance, message_size_limit="1000")
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org> SIZE=1001").code == 552
    wait_log(instance, r"NOQUEUE: reject: MAIL from ")
    assert_logged(instance, f"NOQUEUE: reject: MAIL from {CLIENT}: 552 5.3.4 "
                  "Message size exceeds fixed limit; from=<alice@example.org> "
                  "proto=ESMTP helo=<client.example.org>")
