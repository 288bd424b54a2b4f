"""MX routing of the smtp delivery agent against a real DNS server.

NSD (Debian's nsd, started by the module's fixture on a free loopback port,
stopped by pid) serves the test zones below; every Postern instance points
its resolver at it with dns_servers = 127.0.0.1:PORT, so no question leaves
loopback.  The receiving mail servers are small threaded SMTP servers in
this file, one per loopback address 127.0.0.2..127.0.0.9 and ::1, all on
one free port P; the addresses 127.0.0.20..127.0.0.29 are "down" (nothing
listens there: connection refused).  transport_maps routes each test
domain as "smtp:DOMAIN:P" (MX lookup, then port P), so nothing needs port
25.

Covered: MX preference order (the best MX first, the next one when it is
down, relay= names the server that took the mail), equal preferences
shuffled (40 messages: both servers get some), no MX -> the domain's own
address (implicit MX), A/AAAA as inet_protocols allows, the null MX
(RFC 7505: bounced at once, 5.1.10), NXDOMAIN (bounced), SERVFAIL and an
silent or refusing name server (deferred and retried, never bounced;
delivered once the zone is fixed), a failed address lookup of one MX host
(skipped), a 421 greeting and a refused connection (the next MX takes the
mail), all MX hosts down (deferred with the last reason, every attempt
logged), smtp_mx_address_limit and smtp_mx_session_limit, an MX that
points back at Postern's own smtpd ("loops back to myself", 5.4.6), and MX
names that are CNAMEs (followed, as Postfix does) or have no address
records (skipped; none usable: a bounce and Postfix's warning).  Log lines
are checked against Postfix's wording.  When Postern is a backup MX and
the primary is down, the mail is deferred with the primary's failure as
the reason, as Postfix does (Postern finds itself by the greeting rather
than by its addresses).
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import free_port, wait_for
from test_delivery_common import (VDOMAIN, flush, lines_to, message,
                                  queue_ids, read_log, send, start_system,
                                  wait_delivery, wait_mail, wait_queue_empty)

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/sbin/nsd"),
                                reason="needs nsd (Debian package nsd)")

SENDER = f"alice@{VDOMAIN}"
SMTP_SERVICE = "smtp unix - - n - - smtp\n"

# --- the receiving servers ----------------------------------------------

ACCEPT = "accept"
GREET_421 = "greet-421"                 # 421 greeting, then hang up
RCPT_451 = "rcpt-451"                   # 451 to every RCPT

# Address -> behaviour.  Everything else in 127.0.0.20-29 is down.
PEERS = {
    "127.0.0.2": ACCEPT,
    "127.0.0.3": ACCEPT,
    "127.0.0.4": ACCEPT,
    "127.0.0.5": GREET_421,
    "127.0.0.6": RCPT_451,
    "127.0.0.7": RCPT_451,
    "127.0.0.8": RCPT_451,
    "127.0.0.9": ACCEPT,
    "::1": ACCEPT,
}


class Peers:
    """Small SMTP servers on the PEERS addresses, one port for all.
    connections[addr]: how many clients connected; messages: what was
    accepted, as dicts (addr, sender, rcpts, data)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = []
        self.socks = []
        for _ in range(20):
            self.port = free_port()
            try:
                for addr in PEERS:
                    self.socks.append(self.listen(addr, self.port))
                break
            except OSError:
                for s in self.socks:
                    s.close()
                self.socks = []
        else:
            raise RuntimeError("no port free on all peer addresses")
        self.reset()
        for s in self.socks:
            t = threading.Thread(target=self.accept_loop, args=(s,),
                                 daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def listen(addr, port):
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(32)
        s.settimeout(0.2)
        return s

    def reset(self):
        with self.lock:
            self.connections = {addr: 0 for addr in PEERS}
            self.messages = []

    def got(self, addr):
        """Messages that addr accepted."""
        with self.lock:
            return [m for m in self.messages if m["addr"] == addr]

    def rcpts(self, addr):
        return [r for m in self.got(addr) for r in m["rcpts"]]

    def conns(self, addr):
        with self.lock:
            return self.connections[addr]

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(2)
        for s in self.socks:
            s.close()

    def accept_loop(self, sock):
        addr = sock.getsockname()[0]
        while not self.stopping:
            try:
                conn, _ = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections[addr] += 1
            threading.Thread(target=self.session, args=(conn, addr),
                             daemon=True).start()

    def session(self, conn, addr):
        behaviour = PEERS[addr]
        name = f"peer-{addr.replace(':', '-')}.example.org"
        conn.settimeout(30)
        f = conn.makefile("rb")

        def say(text):
            conn.sendall(text.encode() + b"\r\n")
        try:
            if behaviour == GREET_421:
                say(f"421 4.3.2 {name} is too busy, try later")
                return
            say(f"220 {name} ESMTP test peer")
            sender, rcpts = None, []
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode("latin-1").rstrip("\r\n")
                verb = cmd[:4].upper()
                if verb == "EHLO":
                    say(f"250-{name}\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                        "250 SIZE 10240000")
                elif verb == "HELO":
                    say(f"250 {name}")
                elif verb == "MAIL":
                    sender = re.search(r"<([^>]*)>", cmd).group(1)
                    rcpts = []
                    say("250 2.1.0 Ok")
                elif verb == "RCPT":
                    rcpt = re.search(r"<([^>]*)>", cmd).group(1)
                    if behaviour == RCPT_451:
                        say(f"451 4.3.0 <{rcpt}>: temporary failure at "
                            f"{addr}")
                    else:
                        rcpts.append(rcpt)
                        say("250 2.1.5 Ok")
                elif verb == "DATA":
                    if not rcpts:
                        say("554 5.5.1 Error: no valid recipients")
                        continue
                    say("354 End data with <CR><LF>.<CR><LF>")
                    data = b""
                    while True:
                        chunk = f.readline()
                        if not chunk or chunk == b".\r\n":
                            break
                        data += chunk
                    with self.lock:
                        self.messages.append(dict(addr=addr, sender=sender,
                                                  rcpts=rcpts, data=data))
                    say(f"250 2.0.0 Ok: queued at {addr}")
                    sender, rcpts = None, []
                elif verb == "RSET":
                    sender, rcpts = None, []
                    say("250 2.0.0 Ok")
                elif verb == "NOOP":
                    say("250 2.0.0 Ok")
                elif verb == "QUIT":
                    say("221 2.0.0 Bye")
                    return
                else:
                    say("502 5.5.2 Error: command not recognized")
        except OSError:
            pass
        finally:
            f.close()
            conn.close()


# --- the DNS server -------------------------------------------------------

ZONE = "route.test"
DOMAINS = []                            # every test domain: transport_maps


def domain(label):
    name = f"{label}.{ZONE}"
    DOMAINS.append(name)
    return name


PREF = domain("pref")                   # 30 c, 10 a, 20 b (zone order)
BEST_DOWN = domain("bestdown")          # 10 dead, 20 b
EQUAL = domain("equal")                 # 10 a, 10 b
IMPLICIT = domain("implicit")           # no MX: its own A record
V6ONLY = domain("v6only")               # no MX, AAAA ::1 only
DUAL = domain("dual")                   # no MX, A .9 and AAAA ::1
NULLMX = domain("nullmx")               # MX 0 . (and an A record)
NXDOMAIN = domain("nx")                 # does not exist
GREET421 = domain("greet421")           # 10 the 421 server, 20 b
ALLDOWN = domain("alldown")             # 10 dead1, 20 dead2
ADDRLIMIT = domain("addrlimit")         # 10 two dead addresses, 20 a
SESSLIMIT = domain("sesslimit")         # 10/20/30 three 451 servers
LOOP = domain("loop")                   # MX: Postern's own smtpd
BACKUP = domain("backup")               # 10 dead, 20 Postern's own smtpd
CNAME = domain("cname")                 # MX host is a CNAME (in the zone)
NOADDR = domain("noaddr")               # 10 TXT only, 20 dangling CNAME, 30 c
NOADDR_ONLY = domain("noaddronly")      # 10 TXT only
MXTEMP = domain("mxtemp")               # 10 a host in the broken zone, 20 b
MXTEMP_ONLY = domain("mxtemponly")      # 10 a host in the broken zone
BROKEN = "servfail.broken.test"         # a zone NSD cannot load: SERVFAIL
REFUSED = "refused.example"             # a zone NSD does not serve
DOMAINS += [BROKEN, REFUSED]

ZONE_TEXT = f"""$ORIGIN {ZONE}.
$TTL 300
@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 300
@ IN NS ns
ns IN A 127.0.0.1
a IN A 127.0.0.2
b IN A 127.0.0.3
c IN A 127.0.0.4
busy IN A 127.0.0.5
t1 IN A 127.0.0.6
t2 IN A 127.0.0.7
t3 IN A 127.0.0.8
dead IN A 127.0.0.20
dead2 IN A 127.0.0.21
deadpair IN A 127.0.0.22
deadpair IN A 127.0.0.23
self IN A 127.0.0.1
txtonly IN TXT "no addresses here"
alias IN CNAME c
dangling IN CNAME nowhere.invalid.
pref IN MX 30 c
pref IN MX 10 a
pref IN MX 20 b
bestdown IN MX 10 dead
bestdown IN MX 20 b
equal IN MX 10 a
equal IN MX 10 b
implicit IN A 127.0.0.9
v6only IN AAAA ::1
dual IN A 127.0.0.9
dual IN AAAA ::1
nullmx IN MX 0 .
nullmx IN A 127.0.0.9
greet421 IN MX 10 busy
greet421 IN MX 20 b
alldown IN MX 10 dead
alldown IN MX 20 dead2
addrlimit IN MX 10 deadpair
addrlimit IN MX 20 a
sesslimit IN MX 10 t1
sesslimit IN MX 20 t2
sesslimit IN MX 30 t3
loop IN MX 10 self
backup IN MX 10 dead
backup IN MX 20 self
cname IN MX 10 alias
noaddr IN MX 10 txtonly
noaddr IN MX 20 dangling
noaddr IN MX 30 c
noaddronly IN MX 10 txtonly
mxtemp IN MX 10 mx.broken.test.
mxtemp IN MX 20 b
mxtemponly IN MX 10 mx.broken.test.
"""

BROKEN_ZONE_BAD = """$ORIGIN broken.test.
$TTL 300
@ IN SOA ns.broken.test. hostmaster.broken.test. 1 3600 600 86400 300
@ IN NS ns.route.test.
servfail IN MX 10 b.route.test.
mx IN A 127.0.0.3
oops IN NOSUCHTYPE 1.2.3.4
"""
BROKEN_ZONE_GOOD = BROKEN_ZONE_BAD.replace(
    "oops IN NOSUCHTYPE 1.2.3.4\n", "").replace(" 1 3600", " 2 3600")


def dns_query(port, name, qtype, timeout=0.3):
    """One UDP query to 127.0.0.1:port; (rcode, answer count) or None."""
    qid = os.getpid() & 0xffff
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(q, ("127.0.0.1", port))
            reply = s.recv(4096)
        except OSError:
            return None
    if len(reply) < 12:
        return None
    _, flags, _, ancount, _, _ = struct.unpack(">HHHHHH", reply[:12])
    return flags & 0xf, ancount


T_MX, T_SOA = 15, 6
RCODE_SERVFAIL = 2


class Nsd:
    """NSD in a temporary directory on a free port of 127.0.0.1."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="postern-nsd-")
        self.proc = None
        self.write("route.test.zone", ZONE_TEXT)
        self.write("broken.test.zone", BROKEN_ZONE_BAD)
        for _ in range(5):
            self.port = self.free_udp_tcp_port()
            self.write("nsd.conf", self.config())
            out = open(os.path.join(self.dir, "nsd.out"), "ab")
            self.proc = subprocess.Popen(
                ["/usr/sbin/nsd", "-d", "-c",
                 os.path.join(self.dir, "nsd.conf")],
                stdout=out, stderr=subprocess.STDOUT)
            out.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.answers(ZONE, T_SOA):
                    return
                time.sleep(0.05)
            self.stop()
        with open(os.path.join(self.dir, "nsd.out")) as f:
            raise RuntimeError("cannot start nsd:\n" + f.read())

    @staticmethod
    def free_udp_tcp_port():
        for _ in range(20):
            port = free_port()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue
        raise RuntimeError("no free port")

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def config(self):
        d = self.dir
        zones = "".join(
            f"zone:\n    name: \"{z}\"\n    zonefile: \"{d}/{z}.zone\"\n"
            for z in (ZONE, "broken.test"))
        return (f"server:\n"
                f"    ip-address: 127.0.0.1@{self.port}\n"
                f"    port: {self.port}\n"
                f"    username: \"\"\n"
                f"    chroot: \"\"\n"
                f"    database: \"\"\n"
                f"    zonesdir: \"{d}\"\n"
                f"    zonelistfile: \"{d}/zone.list\"\n"
                f"    xfrdfile: \"{d}/xfrd.state\"\n"
                f"    xfrdir: \"{d}\"\n"
                f"    pidfile: \"{d}/nsd.pid\"\n"
                f"    logfile: \"{d}/nsd.log\"\n"
                f"    server-count: 1\n"
                f"    do-ip4: yes\n"
                f"    do-ip6: no\n"
                f"    verbosity: 1\n"
                f"remote-control:\n"
                f"    control-enable: no\n" + zones)

    def answers(self, name, qtype):
        r = dns_query(self.port, name, qtype)
        return r is not None and r[0] == 0 and r[1] > 0

    def rcode(self, name, qtype):
        r = dns_query(self.port, name, qtype)
        return r and r[0]

    def set_broken_zone(self, good):
        """Rewrite broken.test's zone file and reload (SIGHUP); wait until
        NSD serves it (good) or fails it (not good)."""
        self.write("broken.test.zone",
                   BROKEN_ZONE_GOOD if good else BROKEN_ZONE_BAD)
        self.proc.send_signal(signal.SIGHUP)
        if good:
            wait_for(lambda: self.answers(BROKEN, T_MX), what="zone reload")
        else:
            wait_for(lambda: self.rcode(BROKEN, T_MX) == RCODE_SERVFAIL,
                     what="zone failure")

    @property
    def servers(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def nsd():
    server = Nsd()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def peers_all():
    p = Peers()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def peers(peers_all):
    peers_all.reset()
    return peers_all


# --- Postern ------------------------------------------------------------

def start(instance, nsd, peers, extra_transport=(), smtp_opts=None,
          **params):
    """A whole mail system whose smtp transport asks our NSD; every test
    domain is routed to port P of its MX hosts.  smtp_opts: "-o name=value"
    settings of the smtp service only (master.cf)."""
    entries = [f"{d} smtp:{d}:{peers.port}" for d in DOMAINS
               if d not in dict(extra_transport)]
    entries += [f"{d} {t}" for d, t in extra_transport]
    instance.write_file("etc/transport", "\n".join(entries) + "\n")
    settings = dict(dns_servers=nsd.servers,
                    transport_maps="texthash:"
                    + instance.path("etc/transport"),
                    smtp_connect_timeout="5s",
                    smtp_tls_security_level="none")
    settings.update(params)
    service = SMTP_SERVICE.rstrip("\n") + "".join(
        f" -o {k}={v}" for k, v in (smtp_opts or {}).items()) + "\n"
    return start_system(instance, master_extra=service, **settings)


def deliver(instance, rcpt, subject="test", n=0):
    return send(instance, SENDER, [rcpt],
                message(f"{subject} {n}", f"{subject}.{n}.{time.time()}@x",
                        to=rcpt))


def relay(peers, host, addr):
    """relay= as Postfix logs it: host[addr]:port."""
    return f"{host}[{addr}]:{peers.port}"


def smtp_log(instance, pattern):
    """Lines of the smtp agent that match pattern."""
    rx = re.compile(pattern)
    return [line for line in read_log(instance).splitlines()
            if "postern/smtp[" in line and rx.search(line)]


def no_bounce(instance, rcpt):
    assert not lines_to(instance, rcpt, status="bounced"), read_log(instance)


# --- MX preference --------------------------------------------------------

def test_best_mx_first(instance, nsd, peers):
    """Three MX hosts listed out of order: the lowest preference gets
    every message, the others are never contacted."""
    start(instance, nsd, peers)
    rcpt = f"bob@{PREF}"
    for n in range(3):
        deliver(instance, rcpt, "pref", n)
    lines = wait_delivery(instance, rcpt, count=3)
    assert {m["relay"] for m in lines} == {
        relay(peers, f"a.{ZONE}", "127.0.0.2")}
    assert all(m["dsn"] == "2.0.0" for m in lines)
    assert len(peers.got("127.0.0.2")) == 3
    assert peers.conns("127.0.0.3") == 0 and peers.conns("127.0.0.4") == 0


def test_best_mx_down_next_used(instance, nsd, peers):
    """The best MX refuses connections: the next one gets the mail, and
    the log says so in Postfix's words."""
    start(instance, nsd, peers)
    rcpt = f"bob@{BEST_DOWN}"
    qid = deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt)
    assert line["relay"] == relay(peers, f"b.{ZONE}", "127.0.0.3")
    assert line["qid"] == qid
    assert peers.rcpts("127.0.0.3") == [rcpt]
    # Postfix logs each failed connection attempt (smtp_connect.c).
    assert smtp_log(instance, r": connect to " + re.escape(
        relay(peers, f"dead.{ZONE}", "127.0.0.20"))
        + r": Connection refused$"), read_log(instance)


def test_equal_preference_shuffled(instance, nsd, peers):
    """Two MX hosts of equal preference: over 40 messages each gets some
    (with a fixed order one of them would get all 40; by chance that
    happens with probability 2 * 2**-40)."""
    # No connection reuse: each message makes its own choice.
    start(instance, nsd, peers, smtp_connection_cache_time_limit="0")
    rcpt = f"bob@{EQUAL}"
    for n in range(40):
        deliver(instance, rcpt, "equal", n)
    lines = wait_delivery(instance, rcpt, count=40, timeout=40)
    a = relay(peers, f"a.{ZONE}", "127.0.0.2")
    b = relay(peers, f"b.{ZONE}", "127.0.0.3")
    relays = [m["relay"] for m in lines]
    assert set(relays) == {a, b}, relays
    assert len(peers.got("127.0.0.2")) + len(peers.got("127.0.0.3")) == 40


# --- no MX: the domain's own addresses -----------------------------------

def test_no_mx_implicit_mx(instance, nsd, peers):
    """No MX record: the domain's A record is its mail server (RFC 5321
    5.1)."""
    start(instance, nsd, peers)
    rcpt = f"bob@{IMPLICIT}"
    deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt)
    assert line["relay"] == relay(peers, IMPLICIT, "127.0.0.9")
    assert peers.rcpts("127.0.0.9") == [rcpt]


@pytest.mark.parametrize("protocols, addr", [("all", "::1"),
                                             ("ipv6", "::1")])
def test_aaaa_only_with_ipv6(instance, nsd, peers, protocols, addr):
    """A domain with only an AAAA record is reached over IPv6 when
    inet_protocols allows it."""
    # Only for smtp: smtpd listens on 127.0.0.1.
    start(instance, nsd, peers, smtp_opts=dict(inet_protocols=protocols))
    rcpt = f"bob@{V6ONLY}"
    deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt)
    assert line["relay"] == relay(peers, V6ONLY, addr)
    assert peers.rcpts(addr) == [rcpt]


def test_aaaa_ignored_with_ipv4(instance, nsd, peers):
    """inet_protocols = ipv4: AAAA records are not used.  A dual-stack
    domain goes over IPv4; an IPv6-only one has no usable address and
    bounces as "not found", and ::1 never hears from us."""
    start(instance, nsd, peers, smtp_opts=dict(inet_protocols="ipv4"))
    dual, v6 = f"bob@{DUAL}", f"bob@{V6ONLY}"
    deliver(instance, dual)
    deliver(instance, v6)
    [line] = wait_delivery(instance, dual)
    assert line["relay"] == relay(peers, DUAL, "127.0.0.9")
    [line] = wait_delivery(instance, v6, status="bounced")
    assert line["dsn"].startswith("5.4.")
    assert "Host or domain name not found" in line["text"]
    assert f"name={V6ONLY}" in line["text"]
    assert peers.conns("::1") == 0


def test_ipv6_preferred_only_with_ipv6(instance, nsd, peers):
    """inet_protocols = ipv6: the dual-stack domain is reached at ::1,
    never at its IPv4 address."""
    start(instance, nsd, peers, smtp_opts=dict(inet_protocols="ipv6"))
    rcpt = f"bob@{DUAL}"
    deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt)
    assert line["relay"] == relay(peers, DUAL, "::1")
    assert peers.conns("127.0.0.9") == 0


# --- answers that say "no" ------------------------------------------------

def test_null_mx_bounces_at_once(instance, nsd, peers):
    """RFC 7505: "MX 0 ." bounces on the first attempt with 5.1.10, even
    though the domain has an A record; the sender gets a DSN that says
    why."""
    start(instance, nsd, peers)
    rcpt = f"bob@{NULLMX}"
    qid = deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt, status="bounced")
    assert line["qid"] == qid
    assert line["dsn"] == "5.1.10"
    assert line["relay"] == "none"
    assert line["text"] == f"Domain {NULLMX} does not accept mail (nullMX)"
    assert not lines_to(instance, rcpt, status="deferred")
    assert peers.conns("127.0.0.9") == 0
    [dsn] = wait_mail(instance, "alice", 1)
    assert b"5.1.10" in dsn and b"does not accept mail (nullMX)" in dsn
    wait_queue_empty(instance)


def test_nxdomain_bounces(instance, nsd, peers):
    """A domain that does not exist bounces at once: "Host or domain name
    not found"."""
    start(instance, nsd, peers)
    rcpt = f"bob@{NXDOMAIN}"
    deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt, status="bounced")
    assert line["dsn"] == "5.4.4"
    assert line["text"].startswith(
        f"Host or domain name not found. Name service error for "
        f"name={NXDOMAIN} type=")
    assert line["text"].endswith(": Host not found")
    assert not lines_to(instance, rcpt, status="deferred")
    wait_queue_empty(instance)


# --- answers that say "later" ----------------------------------------------

@pytest.fixture
def broken_zone(nsd):
    """broken.test fails to load (NSD answers SERVFAIL) for the test."""
    nsd.set_broken_zone(False)
    try:
        yield nsd
    finally:
        nsd.set_broken_zone(False)


def test_servfail_deferred_retried_then_delivered(instance, broken_zone,
                                                  peers):
    """SERVFAIL for the MX lookup: deferred (4.4.3, Postfix's "Host not
    found, try again"), retried, never bounced; once the zone loads, the
    next retry delivers."""
    nsd = broken_zone
    start(instance, nsd, peers)
    rcpt = f"bob@{BROKEN}"
    qid = deliver(instance, rcpt)
    lines = wait_delivery(instance, rcpt, status="deferred", count=2)
    for line in lines:
        assert line["qid"] == qid
        assert line["dsn"] == "4.4.3"
        assert line["relay"] == "none"
        assert line["text"] == (
            f"Host or domain name not found. Name service error for "
            f"name={BROKEN} type=MX: Host not found, try again")
    no_bounce(instance, rcpt)
    assert qid in queue_ids(instance)
    nsd.set_broken_zone(True)
    flush(instance)
    [line] = wait_delivery(instance, rcpt)
    assert line["relay"] == relay(peers, f"b.{ZONE}", "127.0.0.3")
    assert peers.rcpts("127.0.0.3") == [rcpt]
    no_bounce(instance, rcpt)
    wait_queue_empty(instance)


@pytest.fixture
def silent_dns():
    """A UDP port on 127.0.0.1 where nobody ever answers (bound, never
    read: no ICMP port unreachable either)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


@pytest.mark.parametrize("case", ["refused", "timeout"])
def test_dns_failure_deferred(instance, nsd, peers, silent_dns, case):
    """A zone the server refuses (REFUSED), and a name server that never
    answers (timeout): both are temporary, so the mail is deferred with
    4.4.3 and kept, not bounced."""
    if case == "refused":
        rcpt = f"bob@{REFUSED}"
        start(instance, nsd, peers)
    else:
        rcpt = f"bob@{PREF}"
        start(instance, nsd, peers, smtp_opts=dict(dns_servers=silent_dns))
    qid = deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt, status="deferred", timeout=30)
    assert line["dsn"] == "4.4.3"
    assert line["text"].endswith("type=MX: Host not found, try again")
    assert line["text"].startswith("Host or domain name not found.")
    no_bounce(instance, rcpt)
    assert qid in queue_ids(instance)
    assert not peers.messages


def test_mx_host_lookup_tempfail_skipped(instance, broken_zone, peers):
    """The best MX host's address lookup fails (SERVFAIL): the next MX
    host gets the mail.  When it was the only one, the mail is deferred,
    not bounced."""
    start(instance, broken_zone, peers)
    good, only = f"bob@{MXTEMP}", f"bob@{MXTEMP_ONLY}"
    deliver(instance, good)
    deliver(instance, only)
    [line] = wait_delivery(instance, good)
    assert line["relay"] == relay(peers, f"b.{ZONE}", "127.0.0.3")
    [line] = wait_delivery(instance, only, status="deferred")
    assert line["dsn"] == "4.4.3"
    assert line["text"] == (
        "Host or domain name not found. Name service error for "
        "name=mx.broken.test type=A: Host not found, try again")
    no_bounce(instance, only)


# --- servers that say no, or nothing ----------------------------------------

def test_421_greeting_next_mx(instance, nsd, peers):
    """The best MX greets with 421: the next MX host gets the mail."""
    start(instance, nsd, peers)
    rcpt = f"bob@{GREET421}"
    deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt)
    assert line["relay"] == relay(peers, f"b.{ZONE}", "127.0.0.3")
    assert peers.conns("127.0.0.5") == 1
    assert peers.rcpts("127.0.0.3") == [rcpt]
    assert not lines_to(instance, rcpt, status="deferred")


def test_all_mx_down_deferred_last_reason(instance, nsd, peers):
    """Every MX host refuses connections: deferred with the last reason,
    each attempt logged, retried later, never bounced."""
    start(instance, nsd, peers)
    rcpt = f"bob@{ALLDOWN}"
    deliver(instance, rcpt)
    lines = wait_delivery(instance, rcpt, status="deferred", count=2)
    dead1 = relay(peers, f"dead.{ZONE}", "127.0.0.20")
    dead2 = relay(peers, f"dead2.{ZONE}", "127.0.0.21")
    for line in lines:
        assert line["dsn"] == "4.4.1"
        assert line["relay"] == "none"
        assert line["text"] == f"connect to {dead2}: Connection refused"
    log = read_log(instance)
    assert re.search(r"postern/smtp\[\d+\]: connect to " + re.escape(dead1)
                     + r": Connection refused\n", log), log
    assert re.search(r"postern/smtp\[\d+\]: connect to " + re.escape(dead2)
                     + r": Connection refused\n", log), log
    # The better one is tried first.
    assert log.index(f"connect to {dead1}") < log.index(f"connect to {dead2}")
    no_bounce(instance, rcpt)


@pytest.mark.parametrize("limit, status", [(2, "deferred"), (3, "sent")])
def test_mx_address_limit(instance, nsd, peers, limit, status):
    """smtp_mx_address_limit counts addresses, not hosts: the best MX has
    two dead addresses, so with a limit of 2 the working second MX is never
    tried; with 3 it is."""
    start(instance, nsd, peers, smtp_mx_address_limit=str(limit),
          minimal_backoff_time="60s", maximal_backoff_time="120s")
    rcpt = f"bob@{ADDRLIMIT}"
    deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt, status=status)
    if status == "deferred":
        assert line["text"] == ("connect to " + relay(
            peers, f"deadpair.{ZONE}", "127.0.0.23") + ": Connection refused")
        assert peers.conns("127.0.0.2") == 0
    else:
        assert line["relay"] == relay(peers, f"a.{ZONE}", "127.0.0.2")
    assert len(smtp_log(instance, r": connect to deadpair\.")) == 2


@pytest.mark.parametrize("limit, tried", [(2, 2), (3, 3), (1, 1)])
def test_mx_session_limit(instance, nsd, peers, limit, tried):
    """smtp_mx_session_limit: three MX hosts that all answer 451 to RCPT;
    only the first `limit` of them get a session, and the mail is
    deferred with the last one's reply."""
    start(instance, nsd, peers, smtp_mx_session_limit=str(limit),
          minimal_backoff_time="60s", maximal_backoff_time="120s")
    rcpt = f"bob@{SESSLIMIT}"
    deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt, status="deferred")
    addrs = ["127.0.0.6", "127.0.0.7", "127.0.0.8"]
    assert [peers.conns(a) for a in addrs] == [1] * tried + [0] * (3 - tried)
    last = addrs[tried - 1]
    server = relay(peers, f"t{tried}.{ZONE}", last)
    assert line["dsn"] == "4.3.0"
    assert line["relay"] == server
    assert line["text"] == (
        f"host {server} said: 451 4.3.0 <{rcpt}>: temporary failure at "
        f"{last} (in reply to RCPT TO command)")
    no_bounce(instance, rcpt)


def test_mx_loops_back_to_myself(instance, nsd, peers):
    """The MX host is this very Postern (its smtpd greets with
    $myhostname): bounced with Postfix's "mail for X loops back to
    myself", 5.4.6, not deferred and not relayed to ourselves."""
    port = instance.port("smtp")
    start(instance, nsd, peers,
          extra_transport=[(LOOP, f"smtp:{LOOP}:{port}")])
    rcpt = f"bob@{LOOP}"
    qid = deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt, status="bounced")
    assert line["qid"] == qid
    assert line["dsn"] == "5.4.6"
    assert line["text"] == f"mail for {LOOP} loops back to myself"
    assert not lines_to(instance, rcpt, status="deferred")
    # The bounce reaches the sender; nothing else was queued.
    [dsn] = wait_mail(instance, "alice", 1)
    assert b"loops back to myself" in dsn
    wait_queue_empty(instance)


def test_backup_mx_is_myself_defers(instance, nsd, peers):
    """We are the backup MX (preference 20) and the primary is down.
    Postfix drops itself and every worse MX from the list and defers
    with the primary's failure; so does Postern, which recognises itself
    by the greeting.  No bounce just because the primary is down."""
    port = instance.port("smtp")
    start(instance, nsd, peers,
          extra_transport=[(BACKUP, f"smtp:{BACKUP}:{port}")])
    rcpt = f"bob@{BACKUP}"
    deliver(instance, rcpt)
    wait_for(lambda: lines_to(instance, rcpt), what="a delivery line")
    [line] = lines_to(instance, rcpt)
    assert line["status"] == "deferred", line.group(0)
    assert line["text"] == (f"connect to dead.{ZONE}[127.0.0.20]:{port}: "
                            "Connection refused")


# --- odd MX records ---------------------------------------------------------

def test_mx_host_is_cname(instance, nsd, peers):
    """An MX host that is a CNAME (RFC 2181 10.3 forbids it, but Postfix
    follows it): the alias's address is used, relay= shows the MX name."""
    start(instance, nsd, peers)
    rcpt = f"bob@{CNAME}"
    deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt)
    assert line["relay"] == relay(peers, f"alias.{ZONE}", "127.0.0.4")
    assert peers.rcpts("127.0.0.4") == [rcpt]


def test_mx_hosts_without_address_skipped(instance, nsd, peers):
    """MX hosts with no address record (only TXT; a CNAME to a name that
    does not resolve) are skipped: the third MX gets the mail, with no
    warning since one MX host was usable."""
    start(instance, nsd, peers)
    rcpt = f"bob@{NOADDR}"
    deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt)
    assert line["relay"] == relay(peers, f"c.{ZONE}", "127.0.0.4")
    assert not smtp_log(instance, "no MX host")


def test_no_mx_host_has_address(instance, nsd, peers):
    """No MX host has an address record: bounced (Postfix's default,
    smtp_defer_if_no_mx_address_found = no) and Postfix's warning."""
    start(instance, nsd, peers)
    rcpt = f"bob@{NOADDR_ONLY}"
    deliver(instance, rcpt)
    [line] = wait_delivery(instance, rcpt, status="bounced")
    assert line["dsn"] == "5.4.4"
    assert line["text"].startswith(
        f"Host or domain name not found. Name service error for "
        f"name=txtonly.{ZONE} type=")
    assert smtp_log(instance, r": warning: no MX host for "
                    + re.escape(NOADDR_ONLY)
                    + r" has a valid address record$"), read_log(instance)
