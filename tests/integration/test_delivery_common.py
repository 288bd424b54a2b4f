"""Shared helpers of the delivery tests (test_delivery*.py); no tests here.

A delivery instance is a whole mail system: smtpd on a free loopback port,
cleanup, qmgr, and the local and virtual delivery agents.  Virtual domain
virt.test has Maildir users (alice, bob, carol, pm by default) under
vmail/, owned by one non-root uid when the suite runs as root (nobody), so
that file permissions apply to deliveries.  The local domain is
mx.example.test (myhostname) with an alias table; every other domain goes
to default_transport = smtp, which has no service in master.cf: those
recipients are deferred with "mail transport unavailable".  Backoffs and
the queue run delay are one second so that retries happen at once.
"""
import json
import os
import pwd
import re
import smtplib

from conftest import child_pids, wait_for

IS_ROOT = os.geteuid() == 0
HOST = "mx.example.test"                # myhostname, in mydestination
VDOMAIN = "virt.test"                   # virtual_mailbox_domains
REMOTE = "remote.example"               # nobody's: default_transport
USERS = ("alice", "bob", "carol", "pm")
QUEUES = ("incoming", "active", "deferred", "hold")

# Postfix's delay numbers: 2 significant digits below 10 s, no trailing 0.
D = r"(?:0|0\.0[1-9]|0\.[1-9][1-9]?|[1-9](?:\.[1-9])?|[1-9][0-9]+)"
DELIVERY = re.compile(
    r"^(?P<stamp>[A-Z][a-z]{2} [ 0-9]?\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"postern/(?:(?P<service>[a-z0-9-]+)/)?(?P<prog>[a-z]+)\[(?P<pid>\d+)\]: "
    r"(?P<qid>\w+): "
    r"to=<(?P<to>[^>]*)>, (?:orig_to=<(?P<orig>[^>]*)>, )?"
    r"relay=(?P<relay>[^,]+), (?:conn_use=(?P<conn_use>\d+), )?"
    r"delay=(?P<delay>" + D + r"), "
    r"delays=(?P<a>" + D + r")/(?P<b>" + D + r")/(?P<c>" + D + r")/(?P<d>"
    + D + r"), dsn=(?P<dsn>[245]\.\d{1,3}\.\d{1,3}), "
    r"status=(?P<status>sent|deferred|bounced|expired) \((?P<text>.*)\)"
    # The smtp client's TLS summary after the reason (Postern's own).
    r"(?: tls=(?P<tls>\S+))?$")
# What pflogsumm 1.1.5 matches (postfix-compat.md section 7).
PFLOGSUMM = re.compile(r"to=<[^>]*>, (orig_to=<[^>]*>, )?relay=[^,]+, "
                       r"(conn_use=[^,]+, )?delay=[^,]+, (delays=[^,]+, )?"
                       r"(dsn=[^,]+, )?status=")
QUEUED = re.compile(r"2\.0\.0 Ok: queued as (\w+)")


def vids():
    """The uid and gid of the virtual mailboxes: nobody's as root (a
    non-root owner, so that chmod stops deliveries), else our own."""
    if IS_ROOT:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    return os.getuid(), os.getgid()


AGENTS = ("local unix - n n - - local\n"
          "virtual unix - n n - - local\n")
QMGR = "qmgr unix n - n 300 1 qmgr\n"


def start_system(instance, users=USERS, aliases=None, master_extra="",
                 qmgr=True, agents=None, vbase=None, start=True,
                 tables="texthash", **params):
    """Write tables, main.cf and master.cf; start master (unless start is
    false) and wait for smtpd.  Returns the smtpd port.  agents replaces
    the master.cf lines of the local and virtual services; qmgr=False
    leaves qmgr out (nothing is delivered).  tables: "texthash" (files
    under etc/) or "inline" (the same entries as inline:{...} tables)."""
    uid, gid = vids()
    vbase = vbase or instance.path("vmail")
    os.makedirs(vbase, exist_ok=True)
    os.chown(vbase, uid, gid)
    vmailbox = [(f"{u}@{VDOMAIN}", f"{VDOMAIN}/{u}/") for u in users]
    if aliases is None:
        aliases = [("postmaster", f"pm@{VDOMAIN}"),
                   ("team", f"alice@{VDOMAIN}, carol@{VDOMAIN}")]
    if tables == "inline":
        vmailbox_map = inline(vmailbox)
        alias_map = inline(aliases)
    else:
        instance.write_file("etc/vmailbox", "".join(
            f"{k} {v}\n" for k, v in vmailbox))
        instance.write_file("etc/aliases", "".join(
            f"{k} {v}\n" for k, v in aliases))
        vmailbox_map = "texthash:" + instance.path("etc/vmailbox")
        alias_map = "texthash:" + instance.path("etc/aliases")
    settings = dict(
        mydestination=f"{HOST}, localhost",
        mynetworks="127.0.0.0/8",
        local_recipient_maps="",
        virtual_mailbox_domains=VDOMAIN,
        virtual_mailbox_base=vbase,
        virtual_mailbox_maps=vmailbox_map,
        virtual_uid_maps=f"static:{uid}",
        virtual_gid_maps=f"static:{gid}",
        recipient_delimiter="+",
        alias_maps=alias_map,
        default_transport="smtp",
        minimal_backoff_time="1s",
        maximal_backoff_time="2s",
        queue_run_delay="1s",
        smtpd_error_sleep_time="0",
    )
    settings.update(params)
    instance.write_main_cf(**settings)
    if qmgr and agents is None:
        instance.all_services(master_extra)
    else:
        instance.mail_services((QMGR if qmgr else "")
                               + (AGENTS if agents is None else agents)
                               + master_extra)
    port = instance.port("smtp")
    if start:
        instance.start()
        wait_for(lambda: f"listening on 127.0.0.1:{port}" in read_log(
            instance), what="smtpd listener")
    return port


def inline(entries):
    """inline:{...} with [(key, value)]; values with spaces in braces."""
    items = [f"{{ {k} = {v} }}" if (" " in v or "," in v) else f"{k}={v}"
             for k, v in entries]
    return "inline:{ " + ", ".join(items) + " }"


# --- sending -------------------------------------------------------------

def send(instance, sender, rcpts, content, mail_options=(),
         rcpt_options=None, timeout=30):
    """One SMTP transaction with smtplib; returns the queue ID.
    content has LF (or CRLF) line ends; what is queued has LF.
    rcpt_options: {recipient: [options]}."""
    if isinstance(content, str):
        content = content.encode()
    # smtplib sends bytes as they are: make the line ends CRLF.
    content = content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with smtplib.SMTP("127.0.0.1", instance.port("smtp"),
                      timeout=timeout) as s:
        s.ehlo("client.example.org")
        code, text = s.mail(sender, list(mail_options))
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r, list((rcpt_options or {}).get(r, ())))
            assert code == 250, (r, code, text)
        code, text = s.data(content)
        assert code == 250, (code, text)
        return QUEUED.search(text.decode()).group(1)


def message(subject, msgid, body="Hello.\n", sender=f"alice@{VDOMAIN}",
            to=f"bob@{VDOMAIN}"):
    return (f"From: {sender}\nTo: {to}\nSubject: {subject}\n"
            f"Message-ID: <{msgid}>\n\n{body}").encode()


# --- mailboxes -----------------------------------------------------------

def maildir(instance, user, vbase=None):
    return os.path.join(vbase or instance.path("vmail"), VDOMAIN, user)


def maildir_files(instance, user, vbase=None):
    """Files in new/ and cur/ of user's Maildir, sorted."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir(instance, user, vbase), sub)
        if os.path.isdir(d):
            out.extend(os.path.join(d, n) for n in os.listdir(d))
    return sorted(out)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def mailbox_bytes(instance, user, vbase=None):
    return [read(p) for p in maildir_files(instance, user, vbase)]


def wait_mail(instance, user, n, timeout=20, vbase=None):
    """Wait until user's Maildir holds n messages; returns their bytes."""
    wait_for(lambda: len(maildir_files(instance, user, vbase)) >= n,
             timeout=timeout, what=f"{n} message(s) for {user}")
    got = mailbox_bytes(instance, user, vbase)
    assert len(got) == n, f"{user}: {len(got)} messages, expected {n}"
    return got


# --- the queue -----------------------------------------------------------

def queue_ids(instance, queues=QUEUES):
    """{queue ID: queue name} of every file in the queues (hashed
    subdirectories included)."""
    out = {}
    for q in queues:
        top = os.path.join(instance.queue_dir, q)
        for dirpath, _, files in os.walk(top):
            for name in files:
                out[name] = q
    return out


def wait_queue_empty(instance, timeout=30, what="an empty queue"):
    wait_for(lambda: not queue_ids(instance), timeout=timeout, what=what)


def queue_list_json(instance):
    res = instance.postern("queue", "list", "-j")
    return [json.loads(line) for line in res.stdout.splitlines() if line]


def flush(instance):
    instance.postern("queue", "flush")


# --- the log -------------------------------------------------------------

def read_log(instance):
    try:
        with open(instance.log_file, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def wait_log(instance, pattern, timeout=20, count=1):
    """Wait until pattern (a regular expression) matches count times;
    returns the list of matches."""
    rx = re.compile(pattern, re.M)

    def found():
        ms = list(rx.finditer(read_log(instance)))
        return ms if len(ms) >= count else None
    return wait_for(found, timeout=timeout,
                    what=f"{count} log line(s) /{pattern}/")


def delivery_lines(instance, qid=None):
    """Parsed delivery lines (every one must parse, and be one that
    pflogsumm counts)."""
    out = []
    for line in read_log(instance).splitlines():
        if ": to=<" not in line:
            continue
        m = DELIVERY.match(line)
        assert m, f"not a Postfix delivery line: {line!r}"
        assert PFLOGSUMM.search(line), f"pflogsumm would miss: {line!r}"
        if qid is None or m["qid"] == qid:
            out.append(m)
    return out


def lines_to(instance, to, qid=None, status=None):
    return [m for m in delivery_lines(instance, qid)
            if m["to"] == to and (status is None or m["status"] == status)]


def wait_delivery(instance, to, status="sent", qid=None, count=1,
                  timeout=20):
    """Wait for count delivery lines to=<to> with status; returns them."""
    def found():
        ms = lines_to(instance, to, qid, status)
        return ms if len(ms) >= count else None
    return wait_for(found, timeout=timeout,
                    what=f"{count} line(s) to=<{to}> status={status}")


# --- processes -----------------------------------------------------------

def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return []


def service_pids(instance, program):
    """Pids of master's children that run program (argv[0] basename)."""
    master = instance.master_pid()
    if not master:
        return []
    out = []
    for pid in child_pids(master):
        argv = cmdline(pid)
        if argv and os.path.basename(argv[0].decode()) == program:
            out.append(pid)
    instance.seen_pids.update(out)
    return out


def vm_rss_kb(pid):
    """VmRSS of pid in kB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None
