"""The outbound SMTP/LMTP client (the smtp and lmtp transports), against
real peers on loopback.

1. A scriptable Python SMTP server (smtp_peers.ScriptedSMTP) answers
   what each test chooses: per-recipient results (one message, three
   recipients: delivered, deferred with the remote reply in the queue
   listing, bounced with a DSN that quotes it, then delivered by the
   retry after the backoff), 4xx/5xx to MAIL, DATA and the end of DATA
   with and without PIPELINING (and how the commands travel), 421/554
   greetings, a greeting with our own name, a server without EHLO,
   SIZE, 8BITMIME, SMTPUTF8, DSN parameters passed on or left out,
   dot-stuffing and CRLF on the wire, connection reuse (conn_use=) and
   stale cached connections, Postfix's delivery line (and pflogsumm),
   per-destination concurrency, replies of the wrong kind (3xx, a 2xx to
   DATA), multi-line and huge replies, connection refused, connect and
   greeting timeouts, lost connections, opportunistic TLS falling back
   to plaintext (and mandatory TLS never doing so), plaintext injected
   after STARTTLS, LMTP with a reply per recipient after DATA.
2. Debian's Postfix as the peer (smtp_peers.PostfixPeer, one instance
   for the module with four listeners): byte-exact relaying, TLS levels
   may/encrypt/verify/secure (right CA, wrong CA, wrong name), the TLS
   policy table over the main.cf level, SMTP AUTH with Cyrus SASL
   (sasldb) over TLS with each mechanism, refused over plaintext unless
   configured, a wrong password, a server that insists on AUTH.
3. Dovecot's LMTP server (smtp_peers.DovecotPeer) over a Unix socket and
   TCP: per-recipient replies, delivery into its Maildirs.

Every Postern here is the delivery instance of test_delivery_common
(start_system) with an smtp (and lmtp) service in master.cf; remote mail
goes to the peers by relayhost or transport_maps.
"""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import bin_path, free_port, wait_for
from smtp_peers import (BROKEN, CLOSE, HANG, LMTP_DOMAIN, PEER_DOMAIN,
                        PEER_HOST, BlackHole, DovecotPeer, PostfixPeer,
                        ScriptedSMTP, peer_certs,
                        server_context, wait_deliveries)
from test_delivery_common import (VDOMAIN, mailbox_bytes,
                                  maildir_files, message, queue_ids,
                                  read_log, send, start_system, wait_log,
                                  wait_mail, wait_queue_empty)
from test_delivery_dsn import report
from tls_common import certs

assert certs and peer_certs             # fixtures, used by name

ALICE = f"alice@{VDOMAIN}"
SMTP = "smtp unix - - n - - smtp\n"
LMTP = "lmtp unix - - n - - lmtp\n"
# Deferred mail is not retried while the test looks at it.
NO_RETRY = dict(minimal_backoff_time="300s", maximal_backoff_time="300s",
                queue_run_delay="300s")


@pytest.fixture
def servers():
    """ScriptedSMTP servers made by the test (servers(**settings)), all
    stopped at the end."""
    made = []

    def make(**settings):
        srv = ScriptedSMTP(**settings)
        made.append(srv)
        return srv
    yield make
    for srv in made:
        srv.stop()


def relay_system(instance, nexthop=None, transports=None, master_extra=SMTP,
                 **params):
    """start_system with an smtp service; mail for other domains goes to
    nexthop (relayhost) or by transport_maps entries {domain: value}."""
    if nexthop:
        params["relayhost"] = nexthop
    if transports:
        path = instance.write_file("etc/transport", "".join(
            f"{k} {v}\n" for k, v in transports.items()))
        params["transport_maps"] = "texthash:" + path
    return start_system(instance, master_extra=master_extra, **params)


def log_lines(instance, pattern):
    return re.findall(pattern, read_log(instance), re.M)


def queue_listing(instance):
    return instance.postern("queue", "list").stdout


def notices(instance, user):
    """The parsed notices (reports) in user's Maildir."""
    return [report(data) for data in mailbox_bytes(instance, user)]


def by_rcpt(blocks):
    """{Final-Recipient: per-recipient fields} of a report."""
    return {str(b["Final-Recipient"]): b for b in blocks[1:]}


def qmgr_size(instance, qid):
    """The message size qmgr logged for qid."""
    m = wait_log(instance, rf"{qid}: from=<[^>]*>, size=(\d+), ")[0]
    return int(m.group(1))


def batches(session):
    """The commands of a session grouped by the read that brought them."""
    out = []
    last = None
    for batch, line in session.lines:
        if batch != last:
            out.append([])
            last = batch
        out[-1].append(line.split(" ")[0].split(":")[0].upper())
    return out


# --- 1. a scripted server --------------------------------------------------

def test_per_recipient_results_defer_bounce_and_retry(instance, servers):
    """One message, three recipients answered 250/450/550 at RCPT: one
    delivered, one deferred (in deferred/, the remote reply in the queue
    listing), one bounced with a DSN quoting the remote reply; the retry
    after the backoff, once the server turns to 250, delivers the last
    one."""
    ok, later, gone = ("ok@remote.example", "later@remote.example",
                       "gone@remote.example")
    srv = servers(rcpt_replies={
        later: f"450 4.2.1 <{later}>: Recipient address rejected: "
               "mailbox busy",
        gone: f"550 5.1.1 <{gone}>: Recipient address rejected: "
              "User unknown"})
    # A backoff long enough to look at the deferred message.
    relay_system(instance, srv.nexthop, minimal_backoff_time="5s",
                 maximal_backoff_time="5s", queue_run_delay="1s")
    qid = send(instance, ALICE, [ok, later, gone],
               message("three", "three@example.test"))

    sent = wait_deliveries(instance, ok, "sent", qid)[0]
    deferred = wait_deliveries(instance, later, "deferred", qid)[0]
    bounced = wait_deliveries(instance, gone, "bounced", qid)[0]
    said = f"host {srv.namaddr} said: "
    assert sent["relay"] == srv.namaddr and sent["dsn"] == "2.0.0"
    assert sent["text"] == "250 2.0.0 Ok: queued as 4ScR1pTeD"
    assert deferred["dsn"] == "4.2.1" and deferred["relay"] == srv.namaddr
    assert deferred["text"] == (said + srv.rcpt_replies[later]
                                + " (in reply to RCPT TO command)")
    assert bounced["dsn"] == "5.1.1"
    assert bounced["text"] == (said + srv.rcpt_replies[gone]
                               + " (in reply to RCPT TO command)")
    # The server got the message once, for the one it accepted.
    got = srv.delivered()
    assert len(got) == 1 and got[0].accepted == [ok]
    assert got[0].rcpts == [ok, later, gone]

    # The message waits in deferred/ for the one recipient left.
    wait_for(lambda: queue_ids(instance).get(qid) == "deferred",
             what="the message in deferred/")
    listing = queue_listing(instance)
    assert f"({said}{srv.rcpt_replies[later]} (in reply to RCPT TO " \
           "command))" in listing, listing
    entry = listing[listing.index(qid):]
    assert later in entry and ok not in entry and gone not in entry, listing

    # The sender's DSN quotes the remote reply for the bounced one only.
    wait_mail(instance, "alice", 1)
    msg, blocks, _ = notices(instance, "alice")[0]
    rcpts = by_rcpt(blocks)
    assert list(rcpts) == [f"rfc822; {gone}"], list(rcpts)
    b = rcpts[f"rfc822; {gone}"]
    assert b["Action"] == "failed" and b["Status"] == "5.1.1"
    assert srv.rcpt_replies[gone] in " ".join(b["Diagnostic-Code"].split())
    text = msg.get_payload()[0].get_payload(decode=True).decode()
    assert f"<{gone}>: {said}{srv.rcpt_replies[gone]}" in \
        " ".join(text.split()), text

    # The server changes its mind: the retry after the backoff delivers.
    srv.rcpt_replies[later] = None
    wait_deliveries(instance, later, "sent", qid, timeout=15)
    wait_queue_empty(instance)
    assert [t.accepted for t in srv.delivered()] == [[ok], [later]]


# Replies per sender (the local part names the case): what the server says
# to MAIL, DATA or the end of DATA, and what Postern must make of it.
WHOLE_MESSAGE = {
    "mail4": ("mail", "451 4.3.0 Error: MAIL busy, try later", "deferred",
              "MAIL FROM"),
    "mail5": ("mail", "553 5.7.1 <mail5@virt.test>: Sender address "
              "rejected: not welcome", "bounced", "MAIL FROM"),
    "data4": ("data", "451 4.3.0 Error: DATA busy", "deferred", "DATA"),
    "data5": ("data", "554 5.5.1 Error: DATA refused", "bounced", "DATA"),
    "eod4": ("eod", "452 4.3.1 Insufficient system storage", "deferred",
             "end of DATA"),
    "eod5": ("eod", "552 5.3.4 Message too big for this site", "bounced",
             "end of DATA"),
}


@pytest.mark.parametrize("pipelining", [True, False],
                         ids=["pipelining", "no-pipelining"])
def test_whole_message_failures(instance, servers, pipelining):
    """4xx/5xx to MAIL, DATA and after the final dot: every recipient of
    the message deferred or bounced with the reply quoted, the bounces
    in a DSN to the sender; with PIPELINING MAIL, RCPTs and DATA come in
    one batch, without it one command at a time."""
    def pick(stage):
        def reply(session, txn, *rest):
            case = WHOLE_MESSAGE.get(txn.sender.split("@")[0])
            return case[1] if case and case[0] == stage else None
        return reply
    ext = ("SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES")
    if pipelining:
        ext = ("PIPELINING",) + ext
    srv = servers(ehlo=ext, mail=pick("mail"), data=pick("data"),
                  eod=pick("eod"))
    relay_system(instance, srv.nexthop, users=("alice",) + tuple(
        WHOLE_MESSAGE), **NO_RETRY)
    qids = {}
    for user in WHOLE_MESSAGE:
        qids[user] = send(instance, f"{user}@{VDOMAIN}",
                          [f"r1-{user}@remote.example",
                           f"r2-{user}@remote.example"],
                          message(user, f"{user}@example.test",
                                  sender=f"{user}@{VDOMAIN}"))
    for user, (_, reply, status, command) in WHOLE_MESSAGE.items():
        for r in ("r1", "r2"):
            m = wait_deliveries(instance, f"{r}-{user}@remote.example",
                                status, qids[user])[0]
            assert m["text"] == (f"host {srv.namaddr} said: {reply} "
                                 f"(in reply to {command} command)"), m[0]
            assert m["dsn"] == reply.split()[1]
            assert m["relay"] == srv.namaddr
    # Nothing was delivered, and no DATA content went out after a refusal
    # of MAIL or DATA.
    for t in srv.transactions():
        stage = WHOLE_MESSAGE[t.sender.split("@")[0]][0]
        assert (t.wire is not None) == (stage == "eod"), t.replies
    # Bounces reach the senders, quoting the reply.
    for user, (_, reply, status, command) in WHOLE_MESSAGE.items():
        if status != "bounced":
            continue
        wait_mail(instance, user, 1)
        msg, blocks, _ = notices(instance, user)[0]
        rcpts = by_rcpt(blocks)
        assert sorted(rcpts) == [f"rfc822; r1-{user}@remote.example",
                                 f"rfc822; r2-{user}@remote.example"]
        for b in rcpts.values():
            assert b["Status"] == reply.split()[1]
            assert reply in " ".join(b["Diagnostic-Code"].split())
    for user in WHOLE_MESSAGE:
        if WHOLE_MESSAGE[user][2] == "deferred":
            assert queue_ids(instance).get(qids[user]) in ("deferred",
                                                           "active")
            assert not maildir_files(instance, user)
    # How the commands travelled.
    for s in srv.sessions:
        groups = [g for g in batches(s) if g[0] != "QUIT"]
        mails = [g for g in groups if "MAIL" in g]
        assert mails, groups
        for g in mails:
            if pipelining:
                assert g[0] == "MAIL" and g.count("RCPT") == 2, groups
                assert g[-1] == "DATA", groups
            else:
                assert g == ["MAIL"], groups
        if not pipelining:
            assert all(len(g) == 1 for g in groups), groups


@pytest.mark.parametrize("greeting, params, status, dsn", [
    ("421 4.3.2 peer.example.test Service not available", {}, "deferred",
     "4.3.2"),
    ("554 5.7.1 peer.example.test No SMTP service here", {}, "deferred",
     "4.7.1"),
    ("554 5.7.1 peer.example.test No SMTP service here",
     {"smtp_skip_5xx_greeting": "no"}, "bounced", "5.7.1"),
], ids=["421", "554-skip", "554-noskip"])
def test_greeting_refusal(instance, servers, greeting, params, status, dsn):
    """A 421 greeting defers; a 5xx greeting defers too (the next server
    might take it: smtp_skip_5xx_greeting=yes, the enhanced code made
    4.X.X as Postfix does) or bounces with smtp_skip_5xx_greeting=no."""
    srv = servers(greeting=greeting)
    relay_system(instance, srv.nexthop, **NO_RETRY, **params)
    qid = send(instance, ALICE, ["rcpt@remote.example"],
               message("greeting", "greeting@example.test"))
    m = wait_deliveries(instance, "rcpt@remote.example", status, qid)[0]
    assert m["text"] == (f"host {srv.namaddr} refused to talk to me: "
                         f"{greeting}"), m[0]
    assert m["dsn"] == dsn and m["relay"] == srv.namaddr
    # Nothing but a polite QUIT, if anything.
    assert set(srv.commands()) <= {"QUIT"}, srv.commands()


def test_helo_fallback_without_esmtp(instance, servers):
    """A server that answers 500 to EHLO gets HELO, and then no ESMTP:
    no SIZE=, BODY=, no pipelining; the mail is delivered."""
    srv = servers(ehlo=None, greeting="220 peer.example.test SMTP old")
    relay_system(instance, srv.nexthop)
    qid = send(instance, ALICE, ["a@remote.example", "b@remote.example"],
               message("old", "old@example.test", body="Caf\xe9 8-bit.\n"))
    wait_deliveries(instance, "a@remote.example", "sent", qid)
    wait_deliveries(instance, "b@remote.example", "sent", qid)
    s = srv.sessions[0]
    assert [line for _, line in s.lines][:3] == [
        "EHLO mx.example.test", "HELO mx.example.test",
        "MAIL FROM:<alice@virt.test>"]
    assert s.transactions[0].mail_params == []
    assert all(len(g) == 1 for g in batches(s)), batches(s)


def test_size_limit_bounces_without_sending(instance, servers):
    """SIZE 100 advertised, a bigger message: bounced (5.3.4) without a
    MAIL command; the DSN says why.  A server with room gets SIZE= with
    the message size."""
    small = servers(ehlo=("PIPELINING", "SIZE 100", "8BITMIME"))
    big = servers()
    relay_system(instance, transports={
        "small.example": f"smtp:{small.nexthop}",
        "big.example": f"smtp:{big.nexthop}"})
    qid = send(instance, ALICE, ["r@small.example", "r@big.example"],
               message("size", "size@example.test", body="x" * 200 + "\n"))
    size = qmgr_size(instance, qid)
    assert size > 100
    m = wait_deliveries(instance, "r@small.example", "bounced", qid)[0]
    assert m["dsn"] == "5.3.4"
    why = (f"message size {size} exceeds size limit 100 of server "
           f"{small.namaddr}")
    assert m["text"] == why, m[0]
    assert [c.split()[0] for c in small.commands()] in (["EHLO"],
                                                        ["EHLO", "QUIT"])
    wait_deliveries(instance, "r@big.example", "sent", qid)
    assert f"SIZE={size}" in big.delivered()[0].mail_params
    wait_mail(instance, "alice", 1)
    _, blocks, _ = notices(instance, "alice")[0]
    b = by_rcpt(blocks)["rfc822; r@small.example"]
    assert b["Status"] == "5.3.4" and why in b["Diagnostic-Code"]


def test_8bit_body_with_and_without_8bitmime(instance, servers):
    """An 8-bit body goes with BODY=8BITMIME to a server that offers
    8BITMIME, and unchanged without the parameter to one that does not
    (as Postfix does unless the content is declared 8bit MIME and
    conversion is enabled); a 7-bit body never gets BODY=."""
    eight = servers()
    seven = servers(ehlo=("PIPELINING", "SIZE 10240000"))
    relay_system(instance, transports={
        "eight.example": f"smtp:{eight.nexthop}",
        "seven.example": f"smtp:{seven.nexthop}"})
    body = "Gr\xfc\xdfe aus K\xf6ln, \u20ac 5.\n"
    qid = send(instance, ALICE, ["r@eight.example", "r@seven.example"],
               message("8bit", "8bit@example.test", body=body))
    wait_deliveries(instance, "r@eight.example", "sent", qid)
    wait_deliveries(instance, "r@seven.example", "sent", qid)
    e, s = eight.delivered()[0], seven.delivered()[0]
    assert "BODY=8BITMIME" in e.mail_params
    assert not any(p.upper().startswith("BODY=") for p in s.mail_params)
    assert body.replace("\n", "\r\n").encode() in e.content
    assert e.content == s.content
    qid2 = send(instance, ALICE, ["r@eight.example"],
                message("7bit", "7bit@example.test"))
    wait_deliveries(instance, "r@eight.example", "sent", qid2)
    assert not any(p.upper().startswith("BODY=")
                   for p in eight.delivered()[1].mail_params)


def test_smtputf8_required_bounces_when_not_offered(instance, servers):
    """A UTF-8 recipient (SMTPUTF8 declared at submission) goes to a
    server offering SMTPUTF8 with MAIL ... SMTPUTF8, and bounces (5.6.7)
    without a MAIL command at one that does not; an ASCII-only message
    that declared SMTPUTF8 still goes to that server, without the
    parameter."""
    utf8 = servers()
    ascii_only = servers(ehlo=("PIPELINING", "8BITMIME", "SIZE 1000000"))
    relay_system(instance, transports={
        "utf8.example": f"smtp:{utf8.nexthop}",
        "ascii.example": f"smtp:{ascii_only.nexthop}"})
    good, bad = "j\xf6rg@utf8.example", "j\xf6rg@ascii.example"
    q1 = send(instance, ALICE, [good], message("u1", "u1@example.test"),
              mail_options=["SMTPUTF8"])
    q2 = send(instance, ALICE, [bad], message("u2", "u2@example.test"),
              mail_options=["SMTPUTF8"])
    wait_deliveries(instance, good, "sent", q1)
    t = utf8.delivered()[0]
    assert "SMTPUTF8" in t.mail_params and t.rcpts == [good]
    m = wait_deliveries(instance, bad, "bounced", q2)[0]
    assert m["dsn"] == "5.6.7"
    assert m["text"] == ("SMTPUTF8 is required, but was not offered by "
                         f"host {ascii_only.namaddr}"), m[0]
    assert not ascii_only.transactions()
    q3 = send(instance, ALICE, ["plain@ascii.example"],
              message("u3", "u3@example.test"), mail_options=["SMTPUTF8"])
    wait_deliveries(instance, "plain@ascii.example", "sent", q3)
    assert "SMTPUTF8" not in ascii_only.delivered()[0].mail_params
    # The DSN (the report has the UTF-8 address raw: compat32 would
    # mangle it, so look at the bytes).
    data = wait_mail(instance, "alice", 1)[0].decode()
    assert re.search(rf"^Final-Recipient: \S+; {bad}\nAction: failed\n"
                     r"Status: 5\.6\.7$", data, re.M), data


def test_dsn_parameters_passed_on_only_to_dsn_servers(instance, servers):
    """NOTIFY and ORCPT on RCPT, RET and ENVID on MAIL (xtext kept) go to
    a server that offers DSN, and none of them to one that does not."""
    dsn = servers()
    nodsn = servers(ehlo=("PIPELINING", "8BITMIME", "SIZE 1000000"))
    relay_system(instance, transports={
        "dsn.example": f"smtp:{dsn.nexthop}",
        "nodsn.example": f"smtp:{nodsn.nexthop}"})
    rcpts = ["a@dsn.example", "b@dsn.example", "a@nodsn.example"]
    opts = {"a@dsn.example": ["NOTIFY=SUCCESS,FAILURE",
                              "ORCPT=rfc822;orig+2Ba@dsn.example"],
            "b@dsn.example": ["NOTIFY=NEVER"],
            "a@nodsn.example": ["NOTIFY=FAILURE,DELAY",
                                "ORCPT=rfc822;orig@nodsn.example"]}
    qid = send(instance, ALICE, rcpts, message("dsn", "dsn@example.test"),
               mail_options=["RET=HDRS", "ENVID=env+2Bid.42"],
               rcpt_options=opts)
    for r in rcpts:
        wait_deliveries(instance, r, "sent", qid)
    t = dsn.delivered()[0]
    assert sorted(t.mail_params) == sorted(["SIZE=%d" % qmgr_size(
        instance, qid), "RET=HDRS", "ENVID=env+2Bid.42"]), t.mail_params
    assert t.rcpt_params["a@dsn.example"] == [
        "NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;orig+2Ba@dsn.example"]
    assert t.rcpt_params["b@dsn.example"] == ["NOTIFY=NEVER"]
    n = nodsn.delivered()[0]
    assert n.mail_params == ["SIZE=%d" % qmgr_size(instance, qid)]
    assert n.rcpt_params["a@nodsn.example"] == []


def test_dot_stuffing_and_crlf_on_the_wire(instance, servers):
    """Lines starting with a dot are doubled on the wire, a lone dot
    inside the message cannot end it, and every line ends in CRLF,
    including those that came in with a bare LF (sendmail)."""
    srv = servers()
    relay_system(instance, srv.nexthop)
    body = (b"From: alice@virt.test\nTo: r@remote.example\n"
            b"Subject: dots\nMessage-ID: <dots@example.test>\n\n"
            b".leading dot\n..two dots\n.\nafter a lone dot\n"
            b"trailing blanks   \n\ttab\n. dot space\nlast line\n")
    res = subprocess.run([bin_path("sendmail"), "-C", instance.config_dir,
                          "-i", "-f", ALICE, "r@remote.example"],
                         input=body, capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr
    wait_deliveries(instance, "r@remote.example", "sent")
    t = srv.delivered()[0]
    wire = t.wire
    assert wire.endswith(b"\r\n")
    assert b"\n" not in wire.replace(b"\r\n", b""), wire
    assert b"\r" not in wire.replace(b"\r\n", b""), wire
    lines = wire.split(b"\r\n")
    tail = lines[lines.index(b"..leading dot"):]
    assert tail == [b"..leading dot", b"...two dots", b"..",
                    b"after a lone dot", b"trailing blanks   ", b"\ttab",
                    b".. dot space", b"last line", b""], tail
    # Unstuffed, it is what sendmail was given (and Postern's headers).
    content = t.content.replace(b"\r\n", b"\n")
    head, sep, rest = body.partition(b"\n\n")
    assert content.endswith(sep + rest), content
    for h in head.split(b"\n"):
        assert h + b"\n" in content


def test_connection_reuse_and_log_line(instance, servers):
    """A second message to the same next hop reuses the connection
    (conn_use=2, one session, no second EHLO); the delivery lines are
    Postfix's, with the server's reply as the text."""
    srv = servers()
    # Room for a slow machine between the two messages.
    relay_system(instance, srv.nexthop,
                 smtp_connection_cache_time_limit="20s")
    q1 = send(instance, ALICE, ["a@remote.example"],
              message("one", "one@example.test"))
    first = wait_deliveries(instance, "a@remote.example", "sent", q1)[0]
    q2 = send(instance, ALICE, ["b@remote.example"],
              message("two", "two@example.test"))
    second = wait_deliveries(instance, "b@remote.example", "sent", q2)[0]
    assert first["conn_use"] is None and second["conn_use"] == "2"
    assert first["pid"] == second["pid"]
    assert len(srv.sessions) == 1 and len(srv.delivered()) == 2
    assert [line for _, line in srv.sessions[0].lines].count(
        "EHLO mx.example.test") == 1
    for m in (first, second):
        assert m["prog"] == "smtp" and m["relay"] == srv.namaddr
        assert m["dsn"] == "2.0.0" and m["tls"] is None
        assert m["text"] == "250 2.0.0 Ok: queued as 4ScR1pTeD"
        # delay covers the four parts (each rounded).
        parts = [float(m[k]) for k in "abcd"]
        assert sum(parts) <= float(m["delay"]) + 0.05, m[0]
    line = re.escape(q2) + (
        r": to=<b@remote\.example>, relay=" + re.escape(srv.namaddr)
        + r", conn_use=2, delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/"
        r"[0-9.]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as "
        r"4ScR1pTeD\)$")
    assert re.search(line, read_log(instance), re.M), read_log(instance)
    # A connection the server closed while it was idle is not used: the
    # third message opens a new one.
    srv.kick()
    q3 = send(instance, ALICE, ["c@remote.example"],
              message("three", "three@example.test"))
    third = wait_deliveries(instance, "c@remote.example", "sent", q3)[0]
    assert third["conn_use"] is None
    assert len(srv.sessions) == 2 and len(srv.delivered()) == 3
    assert srv.sessions[1].lines[0][1] == "EHLO mx.example.test"
    # pflogsumm counts them all.
    res = subprocess.run(["pflogsumm", "--syslog-name=postern",
                          instance.log_file], capture_output=True,
                         text=True, timeout=60)
    assert re.search(r"^\s*3\s+delivered$", res.stdout, re.M), res.stdout


@pytest.mark.parametrize("limit", [1, 3])
def test_destination_concurrency_limit(instance, servers, limit):
    """smtp_destination_concurrency_limit: with six messages waiting and
    a server that holds on to each one at the final dot, exactly that
    many deliveries to the next hop run at once."""
    gate = threading.Event()
    srv = servers(eod=lambda session, txn, rcpt: gate.wait(20) and None)
    relay_system(instance, srv.nexthop,
                 smtp_destination_concurrency_limit=str(limit))
    try:
        qids = [send(instance, ALICE, [f"c{i}@remote.example"],
                     message(f"c{i}", f"c{i}@example.test"))
                for i in range(6)]
        wait_for(lambda: len(srv.waiting()) >= limit,
                 what=f"{limit} deliveries at the final dot")
        time.sleep(1)
        assert len(srv.waiting()) == limit
    finally:
        gate.set()
    for i, qid in enumerate(qids):
        wait_deliveries(instance, f"c{i}@remote.example", "sent", qid)
    assert srv.max_parallel() == limit, srv.max_parallel()


def test_odd_replies_are_protocol_errors(instance, servers):
    """Replies of the wrong kind bounce as protocol errors (5.5.0, as in
    Postfix) instead of crashing the client or counting as delivered: a
    3xx to RCPT, to MAIL and after the final dot, a 2xx to DATA.  A
    multi-line reply is quoted line by line as Postfix does, and a huge
    one is cut."""
    odd = {
        "rcpt3": dict(rcpt="354 go on"),
        "mail3": dict(mail="334 what"),
        "data2": dict(data="250 2.0.0 fine, no data needed"),
        "eod3": dict(eod="354 more please"),
        "multi": dict(rcpt="550-5.1.1 first line\n550-5.1.1 second line\n"
                      "550 5.1.1 third line"),
        "huge": dict(rcpt="\n".join(["550-5.7.1 " + "x" * 100] * 900
                                    + ["550 5.7.1 end"])),
    }
    srvs = {k: servers(**v) for k, v in odd.items()}
    relay_system(instance, transports={
        f"{k}.example": f"smtp:{v.nexthop}" for k, v in srvs.items()},
        **NO_RETRY)
    qid = send(instance, ALICE, [f"r@{k}.example" for k in odd],
               message("odd", "odd@example.test"))
    got = {k: wait_deliveries(instance, f"r@{k}.example", "bounced",
                              qid)[0] for k in odd}
    for k, command in (("rcpt3", "RCPT TO"), ("mail3", "MAIL FROM"),
                       ("data2", "DATA"), ("eod3", "end of DATA")):
        reply = next(iter(odd[k].values()))
        assert got[k]["dsn"] == "5.5.0", got[k][0]
        assert got[k]["text"] == (f"host {srvs[k].namaddr} said: {reply} "
                                  f"(in reply to {command} command)")
    assert not srvs["data2"].delivered()
    assert got["multi"]["text"] == (
        f"host {srvs['multi'].namaddr} said: 550-5.1.1 first line "
        "550-5.1.1 second line 550 5.1.1 third line (in reply to RCPT TO "
        "command)")
    assert got["multi"]["dsn"] == "5.1.1"
    huge = got["huge"]["text"]
    assert huge.startswith(f"host {srvs['huge'].namaddr} said: 550-5.7.1 "
                           "xxx") and huge.endswith("(in reply to RCPT TO "
                                                    "command)")
    assert 2048 <= len(huge) < 2048 + 300, len(huge)
    assert not log_lines(instance, r"(panic|fatal):|killed by signal")
    wait_mail(instance, "alice", 1)


def test_mail_loop_to_myself_bounces(instance, servers):
    """A server that greets with our own name is ourselves: 5.4.6."""
    srv = servers(greeting="220 mx.example.test ESMTP Postern")
    relay_system(instance, srv.nexthop, **NO_RETRY)
    qid = send(instance, ALICE, ["r@remote.example"],
               message("loop", "loop@example.test"))
    m = wait_deliveries(instance, "r@remote.example", "bounced", qid)[0]
    assert m["dsn"] == "5.4.6" and "loops back to myself" in m["text"], m[0]
    assert not srv.transactions()


def test_connect_failures_and_timeouts(instance, servers):
    """Connection refused, a connect timeout (smtp_connect_timeout), a
    server that never greets (smtp_helo_timeout), one that drops the
    connection after RCPT and one that never answers the final dot
    (smtp_data_done_timeout): all deferred, with Postfix's reasons."""
    closed = free_port()
    hole = BlackHole()
    try:
        assert hole.hangs(), "the black hole port answers"
        mute = servers(greeting=HANG)
        drop = servers(rcpt=CLOSE)
        slow = servers(eod=HANG)
        relay_system(instance, transports={
            "refused.example": f"smtp:[127.0.0.1]:{closed}",
            "hole.example": f"smtp:[127.0.0.1]:{hole.port}",
            "mute.example": f"smtp:{mute.nexthop}",
            "drop.example": f"smtp:{drop.nexthop}",
            "slow.example": f"smtp:{slow.nexthop}"},
            smtp_connect_timeout="1s", smtp_helo_timeout="1s",
            smtp_data_done_timeout="1s", **NO_RETRY)
        rcpts = ["r@refused.example", "r@hole.example", "r@mute.example",
                 "r@drop.example", "r@slow.example"]
        qid = send(instance, ALICE, rcpts,
                   message("fail", "fail@example.test"))
        got = {r: wait_deliveries(instance, r, "deferred", qid)[0]
               for r in rcpts}
        want = {
            "r@refused.example": ("none", "4.4.1", f"connect to 127.0.0.1"
                                  f"[127.0.0.1]:{closed}: Connection "
                                  "refused"),
            "r@hole.example": ("none", "4.4.1", "connect to 127.0.0.1"
                               f"[127.0.0.1]:{hole.port}: Connection "
                               "timed out"),
            # Once connected, relay= names the server (Postfix).
            "r@mute.example": (mute.namaddr, "4.4.2", f"conversation with "
                               f"{mute.namaddr} timed out while receiving "
                               "the initial server greeting"),
            "r@drop.example": (drop.namaddr, "4.4.2", "lost connection "
                               f"with {drop.namaddr} while sending RCPT "
                               "TO"),
            "r@slow.example": (slow.namaddr, "4.4.2", f"conversation with "
                               f"{slow.namaddr} timed out while sending "
                               "end of data -- message may be sent more "
                               "than once"),
        }
        for r, (relay, dsn, text) in want.items():
            m = got[r]
            assert (m["relay"], m["dsn"], m["text"]) == (relay, dsn, text), \
                m[0]
        wait_for(lambda: queue_ids(instance).get(qid) == "deferred",
                 what="the message in deferred/")
        listing = queue_listing(instance)
        for relay, dsn, text in want.values():
            assert f"({text})" in listing, listing
    finally:
        hole.close()


def test_opportunistic_tls_falls_back_to_plaintext(instance, servers,
                                                   peer_certs):
    """security level may: a server whose STARTTLS is broken gets the
    mail in plaintext on a second connection; one with working TLS gets
    it encrypted (the TLS summary after the delivery line's reason)."""
    broken = servers(starttls=BROKEN)
    mandatory = servers(starttls=BROKEN)
    good = servers(starttls=server_context(peer_certs.cert,
                                           peer_certs.key))
    relay_system(instance, transports={
        "broken.example": f"smtp:{broken.nexthop}",
        "mandatory.example": f"smtp:{mandatory.nexthop}",
        "good.example": f"smtp:{good.nexthop}"},
        smtp_tls_security_level="may", smtp_tls_policy_maps="inline:{ "
        f"{mandatory.nexthop}=encrypt }}", **NO_RETRY)
    qid = send(instance, ALICE, ["r@broken.example", "r@good.example",
                                 "r@mandatory.example"],
               message("may", "may@example.test"))
    # encrypt: the failed handshake defers; no second try in plaintext.
    e = wait_deliveries(instance, "r@mandatory.example", "deferred", qid)[0]
    assert e["dsn"] == "4.7.5" and e["text"].startswith(
        "Cannot start TLS: handshake failure"), e[0]
    assert len(mandatory.sessions) == 1 and not mandatory.transactions()
    m = wait_deliveries(instance, "r@broken.example", "sent", qid)[0]
    assert m["tls"] is None
    assert len(broken.sessions) == 2, [s.lines for s in broken.sessions]
    first, second = broken.sessions
    assert "STARTTLS" in [line for _, line in first.lines]
    assert not first.transactions
    assert "STARTTLS" not in [line for _, line in second.lines]
    assert second.transactions[0].wire is not None
    wait_log(instance, rf"SSL_connect error to {re.escape(broken.namaddr)}")
    g = wait_deliveries(instance, "r@good.example", "sent", qid)[0]
    assert re.fullmatch(r"TLSv1\.[23]/\S+/Untrusted", g["tls"] or ""), g[0]
    assert good.sessions[0].tls and good.delivered()
    wait_log(instance, r"Untrusted TLS connection established to "
             + re.escape(good.namaddr) + r": TLSv1\.[23] with cipher ")


def test_plaintext_after_starttls_is_never_read(instance, servers,
                                               peer_certs):
    """Replies a man in the middle slips in after the server's 220 to
    STARTTLS (in plaintext, the same packet) are thrown away, not read
    as the server's answers through TLS (CVE-2011-0411, client side)."""
    inject = ("250-INJECTED.example\r\n250 AUTH PLAIN\r\n"
              "250 2.1.0 INJECTED\r\n" * 3)
    srv = servers(starttls=server_context(peer_certs.cert, peer_certs.key),
                  starttls_inject=inject)
    relay_system(instance, srv.nexthop, **NO_RETRY)
    qid = send(instance, ALICE, ["r@remote.example"],
               message("inject", "inject@example.test"))
    m = wait_deliveries(instance, "r@remote.example", "sent", qid)[0]
    assert m["text"] == "250 2.0.0 Ok: queued as 4ScR1pTeD", m[0]
    assert m["tls"], m[0]
    assert "INJECTED" not in read_log(instance)
    s = srv.sessions[0]
    assert s.tls and [line for _, line in s.lines][:4] == [
        "EHLO mx.example.test", "STARTTLS", "EHLO mx.example.test",
        "MAIL FROM:<alice@virt.test> SIZE=%d" % qmgr_size(instance, qid)]


def test_lmtp_replies_per_recipient_after_data(instance, servers):
    """LMTP: LHLO, and after the final dot one reply per accepted
    recipient: 250 sent, 452 deferred, 552 bounced, each with the reply
    quoted; a RCPT refusal bounces as with SMTP."""
    per_rcpt = {"ok@lmtp.example": "250 2.0.0 <ok@lmtp.example> Saved",
                "full@lmtp.example": "452 4.2.2 <full@lmtp.example> "
                                     "Mailbox full, try later",
                "over@lmtp.example": "552 5.2.2 <over@lmtp.example> "
                                     "Quota exceeded"}
    srv = servers(lmtp=True, ehlo=("PIPELINING", "ENHANCEDSTATUSCODES",
                                   "8BITMIME"),
                  eod=lambda s, txn, rcpt: per_rcpt[rcpt],
                  rcpt_replies={"nobody@lmtp.example":
                                "550 5.1.1 <nobody@lmtp.example> User "
                                "doesn't exist"})
    relay_system(instance, transports={
        "lmtp.example": f"lmtp:{srv.nexthop}"}, master_extra=SMTP + LMTP,
        **NO_RETRY)
    rcpts = list(per_rcpt) + ["nobody@lmtp.example"]
    qid = send(instance, ALICE, rcpts, message("lmtp", "lmtp@example.test"))
    said = f"host {srv.namaddr} said: "
    ok = wait_deliveries(instance, "ok@lmtp.example", "sent", qid)[0]
    assert ok["text"] == per_rcpt["ok@lmtp.example"] and ok["prog"] == "lmtp"
    full = wait_deliveries(instance, "full@lmtp.example", "deferred", qid)[0]
    assert full["text"] == (said + per_rcpt["full@lmtp.example"]
                            + " (in reply to end of DATA command)")
    assert full["dsn"] == "4.2.2"
    over = wait_deliveries(instance, "over@lmtp.example", "bounced", qid)[0]
    assert over["text"] == (said + per_rcpt["over@lmtp.example"]
                            + " (in reply to end of DATA command)")
    nobody = wait_deliveries(instance, "nobody@lmtp.example", "bounced",
                             qid)[0]
    assert nobody["text"] == (said + srv.rcpt_replies["nobody@lmtp.example"]
                              + " (in reply to RCPT TO command)")
    s = srv.sessions[0]
    assert s.lines[0][1] == "LHLO mx.example.test"
    assert srv.delivered()[0].accepted == list(per_rcpt)


# --- 2. Postfix as the peer -----------------------------------------------

RELAY_USER = "relayuser"
RELAY_PASSWORD = "Rel4y-Pa55w0rd"


@pytest.fixture(scope="module")
def postfix(peer_certs):
    """One private Postfix for the module, with four smtpd listeners:
    plain (no TLS), tls (STARTTLS with the CA-signed peer certificate),
    auth (TLS, and AUTH only after STARTTLS, required to send mail) and
    authplain (AUTH PLAIN/LOGIN without TLS, required too)."""
    if os.geteuid() != 0:
        pytest.skip("a private Postfix needs root")
    root = tempfile.mkdtemp(prefix="postern-postfix-peer-")
    tls = {"smtpd_tls_security_level": "may",
           "smtpd_tls_cert_file": peer_certs.cert,
           "smtpd_tls_key_file": peer_certs.key}
    must_auth = {"smtpd_sasl_auth_enable": "yes",
                 "smtpd_sasl_security_options": "noanonymous",
                 "smtpd_client_restrictions": "permit_sasl_authenticated,"
                                              "reject",
                 "smtpd_relay_restrictions": "permit_sasl_authenticated,"
                                             "reject"}
    peer = PostfixPeer(root, {
        "plain": {"smtpd_tls_security_level": "none"},
        "tls": dict(tls),
        "auth": dict(tls, smtpd_tls_auth_only="yes", smtpd_sasl_path="smtpd",
                     **must_auth),
        "authplain": dict(must_auth, smtpd_tls_security_level="none",
                          smtpd_sasl_path="plainonly"),
    }, params={"smtpd_sasl_local_domain": PEER_HOST},
        sasl_users={RELAY_USER: RELAY_PASSWORD},
        sasl_confs={"smtpd": "PLAIN LOGIN CRAM-MD5",
                    "plainonly": "PLAIN LOGIN"})
    try:
        peer.start()
        yield peer
    finally:
        peer.stop()
        shutil.rmtree(root, ignore_errors=True)


def to_peer(instance, postfix, listener, master_extra=SMTP, **params):
    """A Postern that relays peer.test to one Postfix listener."""
    return relay_system(instance, transports={
        PEER_DOMAIN: f"smtp:{postfix.nexthop(listener)}"},
        master_extra=master_extra, **params)


def strip_top(data, names):
    """data without the header fields named in names at its very top
    (continuation lines included), each removed once at most."""
    names = {n.lower() for n in names}
    lines = data.split(b"\n")
    i = 0
    while i < len(lines):
        name = lines[i].split(b":", 1)[0].decode(errors="replace").lower()
        if name not in names:
            break
        names.discard(name)
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\n".join(lines[i:])


def test_postfix_receives_byte_exact(instance, postfix):
    """Relayed through Postern into Postfix's Maildir, a message with
    dot lines, long lines and an 8-bit body is byte for byte the copy
    Postern delivered locally, apart from the fields each delivery agent
    puts on top (and Postfix's Received)."""
    to_peer(instance, postfix, "plain")
    long_line = "L" * 990
    body = (".leading dot\n..two\n.\nlone dot above\n"
            + long_line + "\n" + "word " * 300 + "\n"
            + "8-bit: Gr\xfc\xdfe, \u20ac, \u00e9t\u00e9\n"
            "trailing blanks  \n\n\nend\n")
    content = (f"From: Alice <{ALICE}>\nTo: exact@{PEER_DOMAIN}\n"
               "Subject: byte exact\nMessage-ID: <exact@example.test>\n"
               "Date: Fri, 27 Nov 2026 07:00:00 +0000\n"
               "MIME-Version: 1.0\n"
               "Content-Type: text/plain; charset=utf-8\n"
               "Content-Transfer-Encoding: 8bit\n"
               "X-Folded: one\n\ttwo\n\n" + body).encode()
    qid = send(instance, ALICE, [f"exact@{PEER_DOMAIN}", ALICE], content)
    m = wait_deliveries(instance, f"exact@{PEER_DOMAIN}", "sent", qid)[0]
    # smtp_tls_security_level=may (Postern's default), no STARTTLS offered.
    assert m["tls"] is None and m["relay"] == postfix.namaddr("plain")
    assert re.fullmatch(r"250 2\.0\.0 Ok: queued as [0-9A-F]+", m["text"])
    theirs = postfix.wait_mail("exact")[0]
    ours = wait_mail(instance, "alice", 1)[0]
    ours = strip_top(ours, ["Return-Path", "X-Original-To", "Delivered-To"])
    theirs = strip_top(theirs, ["Return-Path", "X-Original-To",
                                "Delivered-To", "Received"])
    assert theirs == ours
    assert body.encode() in theirs and theirs.startswith(b"Received: ")
    log = postfix.log()
    assert re.search(r"postfix-peer/smtpd\[\d+\]: \w+: client=localhost"
                     r"\[127\.0\.0\.1\]", log), log[-2000:]
    assert re.search(rf"postfix-peer/virtual\[\d+\]: \w+: to=<exact@"
                     rf"{re.escape(PEER_DOMAIN)}>.*status=sent", log)


@pytest.mark.parametrize("how", ["main", "policy", "secure"])
def test_postfix_verified_tls(instance, postfix, peer_certs, how):
    """smtp_tls_security_level=verify with the CA as smtp_tls_CAfile (in
    main.cf, or as the TLS policy table's entry for the next hop with the
    certificate's name to match, or level secure there):
    "Verified TLS connection established", the delivery succeeds, and
    Postfix logged the TLS connection."""
    if how == "main":
        params = dict(smtp_tls_security_level="verify",
                      smtp_tls_CAfile=peer_certs.ca_cert)
    else:
        level = "verify" if how == "policy" else "secure"
        path = instance.write_file("etc/tls_policy", (
            f"{postfix.nexthop('tls')} {level} match={PEER_HOST}\n"))
        params = dict(smtp_tls_security_level="none",
                      smtp_tls_CAfile=peer_certs.ca_cert,
                      smtp_tls_policy_maps="texthash:" + path)
    to_peer(instance, postfix, "tls", **params)
    user = f"verified-{how}"
    qid = send(instance, ALICE, [f"{user}@{PEER_DOMAIN}"],
               message("verified", f"{user}@example.test"))
    m = wait_deliveries(instance, f"{user}@{PEER_DOMAIN}", "sent", qid)[0]
    assert re.fullmatch(r"TLSv1\.3/\S+/Verified", m["tls"] or ""), m[0]
    assert m["relay"] == postfix.namaddr("tls")
    wait_log(instance, r"postern/smtp\[\d+\]: Verified TLS connection "
             rf"established to {re.escape(postfix.namaddr('tls'))}: "
             r"TLSv1\.3 with cipher \S+")
    postfix.wait_mail(user)
    assert re.search(r"postfix-peer/smtpd\[\d+\]: \w+ TLS connection "
                     r"established from localhost\[127\.0\.0\.1\]: TLSv1\.3",
                     postfix.log()), postfix.log()[-2000:]


@pytest.mark.parametrize("case", ["wrong-ca", "wrong-name"])
def test_postfix_unverified_tls_defers(instance, postfix, peer_certs, case):
    """verify with a CA that did not sign the server's certificate, or a
    name it does not carry: deferred with the reason, and not a byte of
    the message goes out, in plaintext or otherwise."""
    if case == "wrong-ca":
        params = dict(smtp_tls_CAfile=peer_certs.other_ca_cert)
        reason = ("Server certificate not trusted: unable to get local "
                  "issuer certificate")
    else:
        params = dict(smtp_tls_CAfile=peer_certs.ca_cert,
                      smtp_tls_verify_cert_match="other.example.test")
        reason = "Server certificate not verified: "
    before = postfix.log().count("client=localhost[127.0.0.1]")
    to_peer(instance, postfix, "tls", smtp_tls_security_level="verify",
            **params, **NO_RETRY)
    user = f"unverified-{case}"
    qid = send(instance, ALICE, [f"{user}@{PEER_DOMAIN}"],
               message("unverified", f"{user}@example.test"))
    m = wait_deliveries(instance, f"{user}@{PEER_DOMAIN}", "deferred",
                        qid)[0]
    assert m["dsn"] == "4.7.5" and m["text"].startswith(reason), m[0]
    wait_for(lambda: queue_ids(instance).get(qid) == "deferred",
             what="the message in deferred/")
    assert reason in queue_listing(instance)
    time.sleep(0.5)
    assert postfix.log().count("client=localhost[127.0.0.1]") == before
    assert not postfix.mail_files(user)
    assert len(log_lines(instance, r"TLS connection established to")) == 1
    assert not log_lines(instance, rf"{qid}: to=<{user}@.*status=sent")


def test_postfix_tls_policy_table_overrides_level(instance, postfix):
    """The TLS policy table beats smtp_tls_security_level per next hop:
    main.cf says encrypt, the table says may for the listener without
    STARTTLS (delivered in plaintext); the TLS listener, not in the
    table, gets encrypt (TLS, any certificate: Untrusted)."""
    plain, tls = postfix.nexthop("plain"), postfix.nexthop("tls")
    policy = instance.write_file("etc/tls_policy", f"{plain} may\n")
    relay_system(instance, transports={
        f"pol-plain@{PEER_DOMAIN}": f"smtp:{plain}",
        f"pol-tls@{PEER_DOMAIN}": f"smtp:{tls}"},
        smtp_tls_security_level="encrypt",
        smtp_tls_policy_maps="texthash:" + policy, **NO_RETRY)
    qid = send(instance, ALICE, [f"pol-plain@{PEER_DOMAIN}",
                                 f"pol-tls@{PEER_DOMAIN}"],
               message("policy", "policy@example.test"))
    m = wait_deliveries(instance, f"pol-tls@{PEER_DOMAIN}", "sent", qid)[0]
    assert re.fullmatch(r"TLSv1\.[23]/\S+/Untrusted", m["tls"] or ""), m[0]
    assert m["relay"] == postfix.namaddr("tls")
    n = wait_deliveries(instance, f"pol-plain@{PEER_DOMAIN}", "sent",
                        qid)[0]
    assert n["tls"] is None and n["relay"] == postfix.namaddr("plain")
    assert len(log_lines(instance, r"TLS connection established to")) == 1
    wait_log(instance, r"Untrusted TLS connection established to "
             + re.escape(postfix.namaddr("tls")))
    postfix.wait_mail("pol-plain")
    postfix.wait_mail("pol-tls")


@pytest.mark.parametrize("how", ["main", "policy"])
def test_postfix_encrypt_without_starttls_defers(instance, postfix, how):
    """encrypt (in main.cf, or the policy table's entry for the next
    hop), and the server offers no STARTTLS: deferred, nothing sent."""
    params = dict(smtp_tls_security_level="encrypt")
    if how == "policy":
        params = dict(smtp_tls_security_level="may", smtp_tls_policy_maps=(
            "inline:{ " + f"{postfix.nexthop('plain')}=encrypt" + " }"))
    before = postfix.log().count("client=localhost[127.0.0.1]")
    to_peer(instance, postfix, "plain", **params, **NO_RETRY)
    user = f"encrypt-{how}"
    qid = send(instance, ALICE, [f"{user}@{PEER_DOMAIN}"],
               message("encrypt", f"{user}@example.test"))
    m = wait_deliveries(instance, f"{user}@{PEER_DOMAIN}", "deferred",
                        qid)[0]
    assert m["dsn"] == "4.7.4" and m["relay"] == postfix.namaddr("plain")
    assert m["text"] == ("TLS is required, but was not offered by host "
                         f"{postfix.namaddr('plain')}"), m[0]
    time.sleep(0.5)
    assert postfix.log().count("client=localhost[127.0.0.1]") == before
    assert not postfix.mail_files(user)


def sasl_map(postfix, listener, password=RELAY_PASSWORD):
    return ("inline:{ " + f"{postfix.nexthop(listener)}="
            f"{RELAY_USER}:{password}" + " }")


@pytest.mark.parametrize("case", ["any", "plain", "login",
                                  "plain-refused"])
def test_postfix_auth_over_tls(instance, postfix, case):
    """AUTH to a submission server that requires it (offered only after
    STARTTLS): with the password table the relayed mail is accepted and
    Postfix logs the login (any mechanism; PLAIN or LOGIN through
    smtp_sasl_mechanism_filter, which smtp_sasl_tls_security_options
    allows over TLS by default, and refuses with noplaintext: deferred,
    no AUTH sent); the password never shows in our log."""
    params = dict(smtp_sasl_auth_enable="yes",
                  smtp_sasl_password_maps=sasl_map(postfix, "auth"))
    if case != "any":
        params["smtp_sasl_mechanism_filter"] = case.split("-")[0]
    if case == "plain-refused":
        params["smtp_sasl_tls_security_options"] = "noplaintext,noanonymous"
    start = len(postfix.log())
    to_peer(instance, postfix, "auth", **params, **NO_RETRY)
    user = f"authed-{case}"
    qid = send(instance, ALICE, [f"{user}@{PEER_DOMAIN}"],
               message("auth", f"{user}@example.test"))
    if case == "plain-refused":
        m = wait_deliveries(instance, f"{user}@{PEER_DOMAIN}", "deferred",
                            qid)[0]
        assert m["text"].startswith(
            "SASL authentication failed; cannot authenticate to server "
            f"{postfix.namaddr('auth')}"), m[0]
        time.sleep(0.5)
        log = postfix.log()[start:]
        assert "TLS connection established" in log, log
        assert not re.search(r"authentication failed|auth=|client=", log)
        return
    m = wait_deliveries(instance, f"{user}@{PEER_DOMAIN}", "sent", qid)[0]
    assert m["tls"], m[0]
    postfix.wait_mail(user)
    method = r"\S+" if case == "any" else case.upper()
    assert re.search(r"client=localhost\[127\.0\.0\.1\], sasl_method="
                     rf"{method}, sasl_username={RELAY_USER}\b",
                     postfix.log()[start:]), postfix.log()[start:]
    assert RELAY_PASSWORD not in read_log(instance)


@pytest.mark.parametrize("case", ["wrong-password", "no-auth"])
def test_postfix_auth_failures(instance, postfix, case):
    """A wrong password: deferred with the server's reply; no AUTH at
    all: the server refuses the recipient (the peer really insists)."""
    params = {}
    if case == "wrong-password":
        params = dict(smtp_sasl_auth_enable="yes", smtp_sasl_password_maps=(
            sasl_map(postfix, "auth", "Wr0ng-Pa55")))
    to_peer(instance, postfix, "auth", **params, **NO_RETRY)
    user = f"fail-{case}"
    qid = send(instance, ALICE, [f"{user}@{PEER_DOMAIN}"],
               message("authfail", f"{user}@example.test"))
    said = f"server {postfix.namaddr('auth')} said: 535 5.7.8 Error: " \
           "authentication failed"
    if case == "wrong-password":
        m = wait_deliveries(instance, f"{user}@{PEER_DOMAIN}", "deferred",
                            qid)[0]
        assert m["text"].startswith("SASL authentication failed; " + said), \
            m[0]
        assert m["dsn"].startswith("4.")
        assert "Wr0ng-Pa55" not in read_log(instance)
    else:
        m = wait_deliveries(instance, f"{user}@{PEER_DOMAIN}", "bounced",
                            qid)[0]
        assert re.search(r"said: 554 5\.7\.1 .*(Client host rejected|Relay "
                         r"access denied)", m["text"]), m[0]
    assert not postfix.mail_files(user)


@pytest.mark.parametrize("allow", [False, True],
                         ids=["refused", "configured"])
def test_postfix_auth_plaintext_only_when_configured(instance, postfix,
                                                     allow):
    """A server offering only PLAIN and LOGIN without TLS: no AUTH with
    the default smtp_sasl_security_options (deferred, the password never
    sent); with smtp_sasl_security_options=noanonymous it logs in."""
    params = dict(smtp_sasl_auth_enable="yes",
                  smtp_sasl_password_maps=sasl_map(postfix, "authplain"))
    if allow:
        params["smtp_sasl_security_options"] = "noanonymous"
    start = len(postfix.log())
    to_peer(instance, postfix, "authplain", **params, **NO_RETRY)
    user = f"plainauth-{'yes' if allow else 'no'}"
    qid = send(instance, ALICE, [f"{user}@{PEER_DOMAIN}"],
               message("plainauth", f"{user}@example.test"))
    if allow:
        wait_deliveries(instance, f"{user}@{PEER_DOMAIN}", "sent", qid)
        postfix.wait_mail(user)
        return
    m = wait_deliveries(instance, f"{user}@{PEER_DOMAIN}", "deferred",
                        qid)[0]
    assert m["text"].startswith("SASL authentication failed; cannot "
                                "authenticate to server "
                                f"{postfix.namaddr('authplain')}"), m[0]
    assert m["dsn"].startswith("4.")
    # Postfix saw no AUTH command (and no MAIL) from us.
    time.sleep(0.5)
    log = postfix.log()[start:]
    assert re.search(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 "
                     r"(quit=1 )?commands=\d+$", log, re.M), log
    assert not re.search(r"authentication failed|auth=|client=", log), log
    assert not postfix.mail_files(user)


# --- 3. Dovecot LMTP --------------------------------------------------------

@pytest.fixture
def dovecot():
    if os.geteuid() != 0:
        pytest.skip("Dovecot as a test peer needs root")
    root = tempfile.mkdtemp(prefix="postern-dovecot-")
    peer = DovecotPeer(root)
    try:
        peer.start()
        yield peer
    finally:
        peer.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_lmtp_into_dovecot(instance, dovecot):
    """lmtp:unix:/path and lmtp:inet:127.0.0.1:port into Dovecot: two
    users delivered into their Maildirs with one reply each after DATA,
    an unknown user bounced with Dovecot's reply."""
    relay_system(instance, transports={
        LMTP_DOMAIN: f"lmtp:unix:{dovecot.socket}",
        f"inet.{LMTP_DOMAIN}": f"lmtp:inet:127.0.0.1:{dovecot.port}"},
        master_extra=SMTP + LMTP, **NO_RETRY)
    rcpts = [f"dave@{LMTP_DOMAIN}", f"erin@{LMTP_DOMAIN}",
             f"nosuch@{LMTP_DOMAIN}", f"erin@inet.{LMTP_DOMAIN}"]
    body = "Through LMTP.\n.dot line\n"
    qid = send(instance, ALICE, rcpts,
               message("lmtp", "lmtp-dovecot@example.test", body=body))
    unix_relay = f"mx.example.test[{dovecot.socket}]"
    for r in (rcpts[0], rcpts[1]):
        m = wait_deliveries(instance, r, "sent", qid)[0]
        assert m["prog"] == "lmtp" and m["relay"] == unix_relay, m[0]
        assert re.fullmatch(rf"250 2\.0\.0 <{re.escape(r)}> \S+ Saved",
                            m["text"]), m[0]
    m = wait_deliveries(instance, rcpts[3], "sent", qid)[0]
    assert m["relay"] == f"127.0.0.1[127.0.0.1]:{dovecot.port}", m[0]
    b = wait_deliveries(instance, rcpts[2], "bounced", qid)[0]
    assert b["dsn"] == "5.1.1"
    assert re.fullmatch(rf"host {re.escape(unix_relay)} said: 550 5\.1\.1 "
                        rf"<{re.escape(rcpts[2])}> User doesn't exist: "
                        r"\S+ \(in reply to RCPT TO command\)", b["text"]), \
        b[0]
    wait_for(lambda: len(dovecot.mail_files("dave")) == 1 and
             len(dovecot.mail_files("erin")) == 2, what="Dovecot Maildirs")
    for path in dovecot.mail_files("dave") + dovecot.mail_files("erin"):
        data = open(path, "rb").read()
        assert data.endswith(body.encode()), data
        assert b"Message-ID: <lmtp-dovecot@example.test>" in data
    wait_mail(instance, "alice", 1)
    _, blocks, _ = notices(instance, "alice")[0]
    assert list(by_rcpt(blocks)) == [f"rfc822; {rcpts[2]}"]
