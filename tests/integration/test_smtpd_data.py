"""smtpd + cleanup: message transfer into the queue -- DATA transparency
(dot-stuffing, line ends, long lines), 8-bit and SMTPUTF8 mail, DSN
parameters, BDAT/CHUNKING, size limits, SMTP smuggling, bulk load with
smtp-source, and durability when cleanup dies or the disk fills up.

Every check reads the queue file itself (queuefile.py), not smtpd's word.
Tests marked "BUG" (in the docstring, or in a comment on a parameter)
fail because of a known defect and are meant to fail until it is fixed.
"""
import os
import re
import signal
import subprocess

import pytest

from conftest import wait_for
from queuefile import NOTIFY_DELAY, NOTIFY_FAILURE, NOTIFY_NEVER, \
    NOTIFY_SUCCESS, list_files
from test_smtpd_common import (HOSTNAME, MESSAGE, QUEUE_ID, SMTPClient,
                               ConnectionClosed, incoming, incoming_names,
                               messages, queue_file, queue_id_of, read_log,
                               smtpd_messages_settled, start_smtpd, wait_log)

IS_ROOT = os.geteuid() == 0


def send_data(c, content, sender="alice@example.org",
              rcpts=("bob@example.test",)):
    """MAIL, RCPT, DATA with content sent as is (dot-stuffed by the
    caller, ending in CRLF); returns the queue file."""
    assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>").code == 250
    return queue_id_of(c.data(content))


def stuff(content):
    """RFC 5321 dot-stuffing of CRLF text."""
    return re.sub(rb"(?m)^\.", b"..", content)


def body_of(instance, qid):
    qf = queue_file(instance, qid).check()
    return qf.body()


# --- DATA transparency --------------------------------------------------------

def test_message_stored_with_envelope_and_received(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo("client.example.org")
        qid = send_data(c, MESSAGE, rcpts=("bob@example.test",
                                           "carol@example.test"))
    qf = queue_file(instance, qid).check()
    assert qf.ready, oct(qf.mode)
    assert qf.sender == "alice@example.org"
    assert [(r.address, r.orig) for r in qf.recipients] == [
        ("bob@example.test", "bob@example.test"),
        ("carol@example.test", "carol@example.test")]
    assert qf.attrs["client_address"] == "127.0.0.1"
    assert qf.attrs["client_name"] == "localhost"
    assert qf.attrs["helo_name"] == "client.example.org"
    assert qf.attrs["protocol"] == "ESMTP"
    assert qf.arrival is not None
    # The content: Received: first, then the message with LF line ends.
    received = qf.headers()[0]
    assert received[0] == "Received"
    assert received[1].startswith(
        "from client.example.org (localhost [127.0.0.1])\n\tby "
        f"{HOSTNAME} (Postern) with ESMTP id {qid}")
    assert qf.content.endswith(MESSAGE.replace(b"\r\n", b"\n"))
    assert b"\r" not in qf.content


def test_dot_stuffing_round_trips(instance):
    port = start_smtpd(instance)
    body = (b".\r\n"
            b"..\r\n"
            b"...\r\n"
            b".leading dot\r\n"
            b"..two leading dots\r\n"
            b" .space first\r\n"
            b"middle . dot\r\n"
            b".\tdot tab\r\n"
            b"last line\r\n")
    original = b"Subject: dots\r\n\r\n" + body
    with SMTPClient(port) as c:
        c.ehlo()
        qid = send_data(c, stuff(original))
    assert body_of(instance, qid) == body.replace(b"\r\n", b"\n")


def test_dot_stuffing_with_smtplib(instance):
    import smtplib
    port = start_smtpd(instance)
    body = b".\r\n..\r\n.x\r\nend\r\n"
    s = smtplib.SMTP("127.0.0.1", port, timeout=10)
    try:
        s.sendmail("alice@example.org", ["bob@example.test"],
                   b"Subject: dots\r\n\r\n" + body)
    finally:
        s.quit()
    (qf,) = incoming(instance).values()
    assert qf.check().body() == body.replace(b"\r\n", b"\n")


def test_empty_body_and_no_final_newline_forms(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        qid1 = send_data(c, b"Subject: only headers\r\n")
        qid2 = send_data(c, b"")
    qf1 = queue_file(instance, qid1).check()
    assert qf1.header("Subject") == "only headers"
    assert qf1.body() == b""
    queue_file(instance, qid2).check()


def test_bare_lf_and_bare_cr(instance):
    """A bare LF ends a line (stored as LF); a bare CR is data."""
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        qid = send_data(c, b"Subject: bare\r\n\r\nlf\nonly\r\ncr\ronly\r\n")
    assert body_of(instance, qid) == b"lf\nonly\ncr\ronly\n"


def test_long_lines_kept_whole(instance):
    """Lines longer than line_length_limit are kept, byte for byte, and a
    "." at the start of a later piece of such a line is data."""
    port = start_smtpd(instance)
    body = (b"a" * 2048 + b".x\r\n"
            + b"b" * 5000 + b"\r\n"
            + b"c" * 4095 + b".\r\n"
            + b"end\r\n")
    with SMTPClient(port) as c:
        c.ehlo()
        qid = send_data(c, b"Subject: long\r\n\r\n" + body)
    assert body_of(instance, qid) == body.replace(b"\r\n", b"\n")


def test_crlf_split_at_line_length_limit(instance):
    """BUG: a line of exactly line_length_limit-1 bytes plus CRLF is read in
    two pieces, "...\\r" and "\\n"; smtpd stores the CR (content
    "ccc...c\\r\\nend" instead of "ccc...c\\nend") -- smtpd_data.c only
    strips CR when CR and LF arrive in the same piece."""
    port = start_smtpd(instance)
    body = b"c" * 2047 + b"\r\nend\r\n"
    with SMTPClient(port) as c:
        c.ehlo()
        qid = send_data(c, b"Subject: split\r\n\r\n" + body)
    assert body_of(instance, qid) == b"c" * 2047 + b"\nend\n"


def test_end_of_data_after_line_at_line_length_limit(instance):
    """BUG: when the CRLF before the final "." is split by the
    line_length_limit boundary, smtpd does not see <CR><LF>.<CR><LF>
    (prev_crlf is computed from the lone "\\n" piece), keeps reading, and
    the client waits for a reply until smtpd_timeout: the message is
    lost.  Log: "timeout after DATA (2065 bytes)"."""
    port = start_smtpd(instance, smtpd_timeout="5s")
    with SMTPClient(port, timeout=15) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: split\r\n\r\n" + b"d" * 2047 + b"\r\n.\r\n")
        try:
            r = c.reply()
        except (ConnectionClosed, OSError) as e:
            pytest.fail(f"no reply to the end of DATA: {e}")
        qid = queue_id_of(r)
    assert body_of(instance, qid) == b"d" * 2047 + b"\n"


def test_eight_bit_body_byte_exact(instance):
    port = start_smtpd(instance)
    body = bytes(b for b in range(256) if b not in (10, 13)) + b"\r\n" + \
        "Grüße, ça va? 日本語\r\n".encode() + b"\xff\xfe\x00\x80\r\n"
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org> BODY=8BITMIME").line == \
            "250 2.1.0 Ok"
        c.cmd("RCPT TO:<bob@example.test>")
        qid = queue_id_of(c.data(b"Subject: 8bit\r\n\r\n" + stuff(body)))
    assert body_of(instance, qid) == body.replace(b"\r\n", b"\n")


def test_body_parameter(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.org> BODY=7BIT").code == 250
        c.cmd("RSET")
        r = c.cmd("MAIL FROM:<a@example.org> BODY=BINARYMIME")
        assert r.code in (501, 555) and r.lines[-1].startswith("5.5.4 "), r


def test_smtputf8_message(instance):
    port = start_smtpd(instance)
    sender = "jörg@exämple.org"
    rcpt = "bü@example.test"
    content = ("From: Jörg <jörg@exämple.org>\r\nTo: bü@example.test\r\n"
               "Subject: Grüße 🌍\r\n\r\nÜnïcödé bödy\r\n").encode()
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{sender}> SMTPUTF8").line == "250 2.1.0 Ok"
        assert c.cmd(f"RCPT TO:<{rcpt}>").line == "250 2.1.5 Ok"
        qid = queue_id_of(c.data(content))
    qf = queue_file(instance, qid).check()
    assert qf.sender == sender
    assert qf.rcpt_addresses == [rcpt]
    assert qf.attrs.get("smtputf8") == "1"
    assert qf.content.endswith(content.replace(b"\r\n", b"\n"))
    assert "with UTF8SMTP id" in qf.headers()[0][1]


def test_utf8_address_needs_smtputf8(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<jörg@example.org>").line == \
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address"
        assert c.cmd("MAIL FROM:<alice@example.org>").line == "250 2.1.0 Ok"
        assert c.cmd("RCPT TO:<bü@example.test>").line == \
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address"
        assert c.cmd("DATA").line == "554 5.5.1 Error: no valid recipients"
    assert incoming_names(instance) == []


def test_smtputf8_disabled(instance):
    port = start_smtpd(instance, smtputf8_enable="no")
    with SMTPClient(port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<jörg@example.org> SMTPUTF8")
        assert r.code >= 500, r


def test_malformed_utf8_address_refused(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<j\xc3(rg@example.org> SMTPUTF8\r\n")
        assert c.reply().line == "501 5.1.7 Bad sender address syntax"


# --- DSN ---------------------------------------------------------------------

def test_dsn_parameters_stored(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org> RET=HDRS "
                     "ENVID=QQ314159+2Bx").line == "250 2.1.0 Ok"
        assert c.cmd("RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE "
                     "ORCPT=rfc822;bob+2Borig@example.test").line == \
            "250 2.1.5 Ok"
        assert c.cmd("RCPT TO:<carol@example.test> NOTIFY=NEVER").line == \
            "250 2.1.5 Ok"
        assert c.cmd("RCPT TO:<dave@example.test> NOTIFY=DELAY").line == \
            "250 2.1.5 Ok"
        assert c.cmd("RCPT TO:<erin@example.test>").line == "250 2.1.5 Ok"
        qid = queue_id_of(c.data(MESSAGE))
    qf = queue_file(instance, qid).check()
    assert qf.attrs["dsn_ret"] == "hdrs"
    assert qf.attrs["dsn_envid"] == "QQ314159+x"
    by = {r.address: r for r in qf.recipients}
    assert by["bob@example.test"].notify == NOTIFY_SUCCESS | NOTIFY_FAILURE
    assert by["bob@example.test"].orcpt == "rfc822;bob+orig@example.test"
    assert by["carol@example.test"].notify == NOTIFY_NEVER
    assert by["carol@example.test"].orcpt is None
    assert by["dave@example.test"].notify == NOTIFY_DELAY
    assert by["erin@example.test"].notify == 0
    # The o and n records come before the recipient they belong to.
    types = qf.types
    assert "onOR" in types and "nOR" in types


def test_dsn_ret_full_and_no_dsn(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org> RET=FULL")
        c.cmd("RCPT TO:<bob@example.test>")
        qid = queue_id_of(c.data(MESSAGE))
        qid2 = send_data(c, MESSAGE)
    assert queue_file(instance, qid).attrs["dsn_ret"] == "full"
    plain = queue_file(instance, qid2)
    assert "dsn_ret" not in plain.attrs and "dsn_envid" not in plain.attrs
    assert "o" not in plain.types and "n" not in plain.types


def test_dsn_syntax_errors(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.org> RET=SOME").line == \
            "501 5.5.4 Bad RET parameter syntax"
        assert c.cmd("MAIL FROM:<a@example.org> ENVID=bad+zz").line == \
            "501 5.5.4 Bad ENVID parameter syntax"
        assert c.cmd("MAIL FROM:<a@example.org> ENVID=" + "x" * 101).line == \
            "501 5.5.4 Bad ENVID parameter syntax"
        assert c.cmd("MAIL FROM:<a@example.org>").code == 250
        assert c.cmd("RCPT TO:<b@example.test> NOTIFY=NEVER,SUCCESS").line \
            == "501 5.5.4 Error: Bad NOTIFY parameter syntax"
        assert c.cmd("RCPT TO:<b@example.test> ORCPT=rfc822").line == \
            "501 5.5.4 Error: Bad ORCPT parameter syntax"


def test_dsn_parameters_need_ehlo(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.helo()
        r = c.cmd("MAIL FROM:<a@example.org> RET=FULL")
        assert r.line == "555 5.5.4 Unsupported option: RET", r


# --- BDAT / CHUNKING -----------------------------------------------------------

def test_bdat_chunks_with_crlf_split(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        chunks = [b"Subject: chunked\r", b"\n\r\n.first line\r\nsecond\r",
                  b"\nthird\r\n"]
        for chunk in chunks:
            c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
            assert c.reply().line == f"250 2.0.0 Ok: {len(chunk)} bytes"
        c.send(b"BDAT 0 LAST\r\n")
        qid = queue_id_of(c.reply())
    qf = queue_file(instance, qid).check()
    assert qf.header("Subject") == "chunked"
    # No dot-unstuffing in BDAT; CRLF (also across chunks) becomes LF.
    assert qf.body() == b".first line\nsecond\nthird\n"


def test_bdat_pipelined_and_last_with_data(instance):
    port = start_smtpd(instance)
    msg = b"Subject: one chunk\r\n\r\nbody \r bare CR\r\n.\r\nnot the end\r\n"
    with SMTPClient(port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>"
               b"\r\nBDAT 10\r\n" + msg[:10] +
               b"BDAT %d LAST\r\n" % (len(msg) - 10) + msg[10:])
        r = c.replies(4)
        assert [x.line for x in r[:3]] == ["250 2.1.0 Ok", "250 2.1.5 Ok",
                                           "250 2.0.0 Ok: 10 bytes"]
        qid = queue_id_of(r[3])
    assert body_of(instance, qid) == b"body \r bare CR\n.\nnot the end\n"


def test_bdat_without_mail(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        # The chunk is read and thrown away, not run as commands.
        c.send(b"BDAT 12\r\nNOOP\r\nNOOP\r\n")
        assert c.reply().line == "503 5.5.1 Error: need MAIL command"
        assert c.nothing_pending()
        assert c.cmd("NOOP").line == "250 2.0.0 Ok"
        c.cmd("MAIL FROM:<alice@example.org>")
        c.send(b"BDAT 6 LAST\r\nQUIT\r\n")
        assert c.reply().line == "554 5.5.1 Error: no valid recipients"
        assert c.nothing_pending()
        assert c.cmd("NOOP").line == "250 2.0.0 Ok"
    assert incoming_names(instance) == []


def test_bdat_needs_ehlo(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.helo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        r = c.cmd("BDAT 0 LAST")
        assert r.code == 503 and r.lines[-1].startswith("5.5.1"), r
    assert incoming_names(instance) == []


def test_data_after_bdat(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        chunk = b"Subject: x\r\n\r\nbody\r\n"
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
        assert c.reply().code == 250
        assert c.cmd("DATA").line == "503 5.5.1 Error: DATA after BDAT"
        assert c.cmd("RCPT TO:<carol@example.test>").code == 503
        c.send(b"BDAT 0 LAST\r\n")
        qid = queue_id_of(c.reply())
    qf = queue_file(instance, qid).check()
    assert qf.rcpt_addresses == ["bob@example.test"]
    assert qf.body() == b"body\n"


def test_bdat_bad_syntax_disconnects(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        c.send(b"BDAT lots\r\n")
        assert c.reply().line == "501 5.5.4 Syntax: BDAT count [LAST]"
        assert c.closed(10)
    assert incoming_names(instance) == []


def test_rset_aborts_bdat(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        c.send(b"BDAT 5\r\nhello")
        assert c.reply().code == 250
        assert c.cmd("RSET").code == 250
        qid = send_data(c, MESSAGE)
    assert incoming_names(instance) == [qid]


# --- size limits ---------------------------------------------------------------

def test_declared_size_over_limit(instance):
    port = start_smtpd(instance, message_size_limit="10000")
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org> SIZE=10001").line == \
            "552 5.3.4 Message size exceeds fixed limit"
        # No transaction was started.
        assert c.cmd("RCPT TO:<bob@example.test>").code == 503
        assert c.cmd("MAIL FROM:<alice@example.org> SIZE=10000").line == \
            "250 2.1.0 Ok"
        assert c.cmd("RSET").code == 250
        assert c.cmd("MAIL FROM:<alice@example.org> SIZE=x").code == 501
    wait_log(instance, r"NOQUEUE: reject: MAIL from localhost\[127\.0\.0\.1\]:"
             r" 552 5\.3\.4 Message size exceeds fixed limit;")


def test_actual_size_over_limit(instance):
    port = start_smtpd(instance, message_size_limit="10000")
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org> SIZE=500")
        c.cmd("RCPT TO:<bob@example.test>")
        r = c.data(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 20,
                   expect=None)
        assert r.line == "552 5.3.4 Error: message file too big"
        # The session goes on, and a small message still fits.
        qid = send_data(c, MESSAGE)
    assert incoming_names(instance) == [qid]
    wait_for(lambda: list_files(os.path.join(instance.queue_dir, "tmp")) == [],
             what="tmp/ emptied")


def test_bdat_size_over_limit(instance):
    port = start_smtpd(instance, message_size_limit="10000")
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        chunk = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 12
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.reply()
        assert r.code == 552 and r.lines[-1].startswith("5.3.4 "), r
        # The whole chunk was consumed: the session is in step.
        assert c.cmd("NOOP").line == "250 2.0.0 Ok"
    assert incoming_names(instance) == []


def test_message_under_size_limit_accepted(instance):
    port = start_smtpd(instance, message_size_limit="20000")
    with SMTPClient(port) as c:
        c.ehlo()
        qid = send_data(c, b"Subject: fits\r\n\r\n" +
                        (b"z" * 98 + b"\r\n") * 150)
    queue_file(instance, qid).check()


# --- SMTP smuggling -----------------------------------------------------------

SMUGGLED = (b"MAIL FROM:<evil@example.org>\r\n"
            b"RCPT TO:<victim@example.test>\r\n"
            b"DATA\r\n"
            b"From: evil@example.org\r\nSubject: smuggled\r\n\r\nevil\r\n")


@pytest.mark.parametrize("ending", [b"\n.\n", b"\r.\r", b"\n.\r\n",
                                    b"\r\n.\n", b"\r\n.\r", b"\r.\r\n",
                                    b"\n.\r"],
                         ids=["LF.LF", "CR.CR", "LF.CRLF", "CRLF.LF",
                              "CRLF.CR", "CR.CRLF", "LF.CR"])
def test_smuggling_payload_stays_in_one_message(instance, ending):
    port = start_smtpd(instance)
    content = (b"From: alice@example.org\r\nSubject: outer\r\n\r\nfirst part"
               + ending + SMUGGLED)
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        r = c.data(content)
        qid = queue_id_of(r)
        # Exactly one reply: nothing was run as a command.
        assert c.nothing_pending(0.5), c.buf
        assert c.cmd("QUIT").code == 221
    files = incoming(instance)
    assert list(files) == [qid]
    qf = files[qid].check()
    assert qf.sender == "alice@example.org"
    assert qf.rcpt_addresses == ["bob@example.test"]
    body = qf.body()
    assert body.startswith(b"first part")
    assert b"MAIL FROM:<evil@example.org>\n" in body
    assert b"RCPT TO:<victim@example.test>\n" in body
    assert body.endswith(b"Subject: smuggled\n\nevil\n")
    smtpd_messages_settled(instance, 1)
    assert sum(1 for m in messages(instance) if ": client=" in m) == 1


def test_smuggling_in_bdat_is_data(instance):
    port = start_smtpd(instance)
    content = (b"Subject: outer\r\n\r\nfirst\r\n.\r\n" + SMUGGLED)
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        c.send(b"BDAT %d LAST\r\n" % len(content) + content)
        qid = queue_id_of(c.reply())
        assert c.nothing_pending(0.5)
    assert list(incoming(instance)) == [qid]
    assert b"MAIL FROM:<evil@example.org>\n" in body_of(instance, qid)


# --- load ---------------------------------------------------------------------

def test_smtp_source_1000_messages(instance):
    port = start_smtpd(instance)
    res = subprocess.run(
        ["smtp-source", "-c", "-m", "1000", "-s", "20",
         "-f", "alice@example.org", "-t", "bob@example.test",
         f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    files = incoming(instance)
    assert len(files) == 1000
    for qf in files.values():
        qf.check()
        assert qf.sender == "alice@example.org"
        assert qf.rcpt_addresses == ["bob@example.test"]
    assert len(set(files)) == 1000
    smtpd_messages_settled(instance, 1000, timeout=60)
    clients = [m for m in messages(instance) if ": client=" in m]
    assert len(clients) == 1000


# --- clients that go away --------------------------------------------------------

def test_client_gone_mid_data(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: never finished\r\n\r\n" + b"x" * 100 + b"\r\n")
    wait_log(instance, r"lost connection after DATA \(\d+ bytes\) from "
             r"localhost\[127\.0\.0\.1\]$")
    smtpd_messages_settled(instance, 1)
    assert incoming_names(instance) == []
    wait_for(lambda: list_files(os.path.join(instance.queue_dir, "tmp")) == [],
             what="tmp/ emptied")


def test_client_gone_mid_bdat(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.test>")
        c.send(b"BDAT 100000 LAST\r\nSubject: cut\r\n\r\nshort\r\n")
    wait_log(instance, r"lost connection after BDAT \(\d+ bytes\) from "
             r"localhost\[127\.0\.0\.1\]$")
    smtpd_messages_settled(instance, 1)
    assert incoming_names(instance) == []


# --- durability -------------------------------------------------------------

def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def test_cleanup_killed_mid_data(instance):
    port = start_smtpd(instance)
    with SMTPClient(port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>")
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        # More than one 64 KB chunk: cleanup has already written some.
        c.send(b"Subject: half\r\n\r\n" + (b"h" * 998 + b"\r\n") * 150)
        cleanups = wait_for(
            lambda: [p for p in instance.children() if comm(p) == "cleanup"],
            what="a cleanup process")
        tmp = os.path.join(instance.queue_dir, "tmp")
        wait_for(lambda: list_files(tmp), what="cleanup's file in tmp/")
        for pid in cleanups:
            os.kill(pid, signal.SIGKILL)
        try:
            c.send((b"r" * 998 + b"\r\n") * 150 + b".\r\n")
            r = c.reply()
            assert 400 <= r.code < 500, r
        except (ConnectionClosed, OSError):
            pass                        # a dropped connection is fine too
    assert incoming_names(instance) == []
    assert list_files(os.path.join(instance.queue_dir, "hold")) == []
    # The next message goes through a fresh cleanup.
    with SMTPClient(port) as c:
        c.ehlo()
        qid = send_data(c, MESSAGE)
    assert incoming_names(instance) == [qid]
    queue_file(instance, qid).check()


@pytest.fixture
def small_queue(instance):
    """The instance's queue directory on a 2 MB tmpfs (root only)."""
    if not IS_ROOT:
        pytest.skip("needs root: mounts a 2 MB tmpfs as the queue directory")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=755",
                    "tmpfs", instance.queue_dir], check=True)
    try:
        yield instance
    finally:
        instance.stop()
        subprocess.run(["umount", "-l", instance.queue_dir], check=False)


def fill_queue(c, body, count):
    """Send count messages; [(reply line, qid or None)]."""
    results = []
    for _ in range(count):
        assert c.cmd("MAIL FROM:<alice@example.org>").code == 250
        r = c.cmd("RCPT TO:<bob@example.test>")
        if r.code != 250:
            results.append((r.line, None))
            c.cmd("RSET")
            continue
        r = c.data(body, expect=None)
        results.append((r.line, queue_id_of(r) if r.code == 250 else None))
    return results


def test_disk_full(small_queue):
    instance = small_queue
    port = start_smtpd(instance)
    body = b"Subject: fill\r\n\r\n" + (b"f" * 998 + b"\r\n") * 100
    with SMTPClient(port) as c:
        c.ehlo()
        results = fill_queue(c, body, 40)
    accepted = [qid for line, qid in results if qid]
    refused = [line for line, qid in results if not qid]
    assert accepted, results
    assert refused, "the 2 MB queue never filled up"
    for line in refused:
        assert line == "452 4.3.1 Insufficient system storage", results
    # Every 250 has its complete file, and nothing else is in incoming/.
    files = incoming(instance)
    assert sorted(files) == sorted(accepted)
    for qid in accepted:
        qf = files[qid].check()
        assert qf.ready
        assert qf.body() == body.split(b"\r\n\r\n", 1)[1].replace(b"\r\n",
                                                                  b"\n")
    # Refused messages left nothing behind in tmp/ either.
    wait_for(lambda: list_files(os.path.join(instance.queue_dir, "tmp")) == [],
             what="tmp/ emptied")
    # Room again: mail flows.
    os.unlink(os.path.join(instance.queue_dir, "incoming", accepted[0]))
    with SMTPClient(port) as c:
        c.ehlo()
        qid = send_data(c, MESSAGE)
    queue_file(instance, qid).check()


def test_disk_full_warning_names_queue_id(small_queue):
    """cleanup names the message in its write-error warning.  (Found by
    this test: cleanup_finish() used state->queue_id after qfile_commit()
    had freed it, logging "warning: UV\\xf3?RU: write queue file: No space
    left on device"; fixed in c60d68f.)"""
    instance = small_queue
    port = start_smtpd(instance)
    body = b"Subject: fill\r\n\r\n" + (b"f" * 998 + b"\r\n") * 100
    with SMTPClient(port) as c:
        c.ehlo()
        results = fill_queue(c, body, 40)
    assert any(qid is None for _, qid in results)
    warnings = re.findall(r"postern/cleanup\[\d+\]: warning: (.*)",
                          read_log(instance))
    full = [w for w in warnings if "No space left on device" in w]
    assert full, warnings
    for w in full:
        assert re.match(rf"^{QUEUE_ID}: ", w), w
