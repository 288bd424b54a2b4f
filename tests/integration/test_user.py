"""postern user: virtual users, their passwords in the Cyrus sasldb
(sasl_db_path) and their mailboxes in the text source of the first lmdb:
or texthash: table of virtual_mailbox_maps, kept in step.

Passwords are checked for real: with sasldblistusers2 (the store has the
user) and with SMTP AUTH over STARTTLS against an smtpd of the instance,
which reads the same sasldb (as mail_owner, so the file permissions
postern user sets are tested too).
"""
import contextlib
import os
import pwd
import select
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import termios
import time

import pytest

from conftest import bin_path, wait_for

DOMAIN = "example.test"
ALICE = "alice@example.test"
BOB = "bob@example.test"
PW = "Tr0ub4dor-and-3"
PW2 = "c0rrect-H0rse-b4ttery-st4ple"
HOSTNAME = "mx.example.test"


# --- set-up ---------------------------------------------------------------

@pytest.fixture(scope="module")
def cert():
    """A self-signed RSA certificate and key for the smtpd of the tests."""
    root = tempfile.mkdtemp(prefix="postern-user-cert-")
    os.chmod(root, 0o755)
    key, crt = os.path.join(root, "key.pem"), os.path.join(root, "cert.pem")
    try:
        res = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", key, "-out", crt, "-days", "30",
             "-subj", f"/CN={HOSTNAME}"],
            capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        os.chmod(key, 0o644)            # the test's smtpd reads it as root
        yield key, crt
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Users:
    """An instance set up for postern user: two virtual domains and an
    lmdb: (or texthash:) virtual_mailbox_maps in etc/vmailbox."""

    def __init__(self, inst, table="lmdb"):
        self.inst = inst
        self.source = os.path.join(inst.config_dir, "vmailbox")
        self.table = table
        self.db = os.path.join(inst.data_dir, "sasldb2")
        inst.write_main_cf(
            virtual_mailbox_domains="example.test, other.test",
            virtual_mailbox_maps=f"{table}:{self.source}",
            virtual_mailbox_base=inst.mail_dir)

    @property
    def spec(self):
        return f"{self.table}:{self.source}"

    def run(self, *args, input=None, check=True):
        return self.inst.postern("user", *args, input=input, check=check)

    def add(self, addr, password=PW, *mailbox, check=True):
        return self.run("add", addr, *mailbox, input=password + "\n",
                        check=check)

    def passwd(self, addr, password, check=True):
        return self.run("passwd", addr, input=password + "\n", check=check)

    def delete(self, addr, check=True):
        return self.run("del", addr, check=check)

    def list(self, *domain):
        return self.run("list", *domain).stdout

    def query(self, key, spec=None):
        """postern map -q KEY on the table; None when not found."""
        res = self.inst.postern("map", "-q", key, spec or self.spec,
                                check=False)
        if res.returncode != 0:
            assert res.returncode == 1 and res.stdout == "", res
            return None
        return res.stdout.rstrip("\n")

    def sasl_users(self):
        """The users in the sasldb, as sasldblistusers2 sees them."""
        if not os.path.exists(self.db):
            return set()
        res = subprocess.run(["sasldblistusers2", "-f", self.db],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        return {line.split(":")[0] for line in res.stdout.splitlines()
                if line.endswith(": userPassword")}

    def read_source(self):
        with open(self.source, "rb") as f:
            return f.read()

    def write_source(self, data):
        with open(self.source, "wb") as f:
            f.write(data)

    def snapshot(self):
        """Everything postern user may change: to prove nothing changed."""
        files = {}
        for path in (self.source, self.source + ".lmdb", self.db):
            try:
                with open(path, "rb") as f:
                    files[path] = f.read()
            except FileNotFoundError:
                files[path] = None
        return files, self.sasl_users()


@pytest.fixture
def users(instance):
    return Users(instance)


@pytest.fixture
def smtp(users, cert):
    """users, plus a running smtpd that offers AUTH after STARTTLS; the
    fixture is a function: smtp(user, password[, mech]) -> reply code."""
    key, crt = cert
    inst = users.inst
    inst.mail_services()
    inst.write_main_cf(
        mydestination="$myhostname, localhost",
        smtpd_tls_security_level="may",
        smtpd_tls_cert_file=crt, smtpd_tls_key_file=key,
        smtpd_sasl_auth_enable="yes",
        smtpd_sasl_failure_delay="0s",
        smtpd_error_sleep_time="0")
    inst.start()
    port = inst.port("smtp")
    wait_for(lambda: f"listening on 127.0.0.1:{port}" in inst.log(),
             what="smtpd listener")

    def auth(user, password, mech="PLAIN"):
        return smtp_auth(port, user, password, mech)

    auth.users = users
    return auth


def smtp_auth(port, user, password, mech="PLAIN"):
    """SMTP AUTH over STARTTLS with smtplib; returns the final reply code
    (235 accepted, 535 refused)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.example.org")
        s.starttls(context=ctx)
        s.ehlo("client.example.org")
        assert s.has_extn("auth"), s.esmtp_features
        assert mech in s.esmtp_features["auth"].split(), s.esmtp_features
        s.user, s.password = user, password
        method = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login,
                  "CRAM-MD5": s.auth_cram_md5}[mech]
        try:
            code, _ = s.auth(mech, method)
        except smtplib.SMTPAuthenticationError as e:
            code = e.smtp_code
        return code


def assert_no_secret(root, secret, allowed):
    """secret is in no file under root but the allowed paths."""
    needle = secret.encode()
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path in allowed or os.path.islink(path):
                continue
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            assert needle not in data, f"the password is in {path}"


# --- add ------------------------------------------------------------------

def test_add_password_works_for_real(smtp):
    users = smtp.users
    res = users.add(ALICE, PW)
    assert res.stdout == f"added {ALICE}, mailbox example.test/alice/\n"
    assert users.sasl_users() == {ALICE}
    assert smtp(ALICE, PW) == 235
    assert smtp(ALICE, PW, "LOGIN") == 235
    assert smtp(ALICE, PW2) == 535
    assert smtp(BOB, PW) == 535
    # The password is in the sasldb and nowhere else (the smtpd's log
    # included).
    assert_no_secret(users.inst.root, PW, {users.db})


def test_add_map_answers(users):
    users.add(ALICE)
    assert users.read_source() == b"alice@example.test\texample.test/alice/\n"
    assert users.query(ALICE) == "example.test/alice/"
    assert users.query("ALICE@EXAMPLE.TEST") == "example.test/alice/"
    assert users.query(BOB) is None
    users.add(BOB)
    assert users.query(BOB) == "example.test/bob/"
    assert users.query(ALICE) == "example.test/alice/"
    assert users.sasl_users() == {ALICE, BOB}


def test_add_other_domain_and_mixed_case(users):
    users.add("Carol@Other.Test")
    # The default mailbox is DOMAIN/USER/ in lower case.
    assert users.query("carol@other.test") == "other.test/carol/"


def test_add_explicit_mailbox(users):
    res = users.add(ALICE, PW, "shared/alice-box/")
    assert res.stdout == f"added {ALICE}, mailbox shared/alice-box/\n"
    assert users.query(ALICE) == "shared/alice-box/"
    users.add(BOB, PW, "mbox-file")     # a mailbox file, not a Maildir
    assert users.query(BOB) == "mbox-file"


@pytest.mark.parametrize("mailbox", [
    "/var/mail/alice/", "/", "../alice/", "example.test/../../etc/",
    "a/..", "", "two words/", "tab\there/", "new\nline/", "cr\r/"])
def test_add_mailbox_path_rules(users, mailbox):
    users.add(BOB)
    before = users.snapshot()
    res = users.add(ALICE, PW, mailbox, check=False)
    assert res.returncode == 2, res
    assert "the mailbox is a path under virtual_mailbox_base" in res.stderr
    assert users.snapshot() == before


def test_add_existing_user_refused(users):
    users.add(ALICE, PW)
    before = users.snapshot()
    for addr in (ALICE, "Alice@Example.TEST"):
        res = users.add(addr, PW2, check=False)
        assert res.returncode == 1, res
        assert "already exists" in res.stderr
        assert "postern user passwd" in res.stderr
        assert users.snapshot() == before


def test_add_user_with_password_but_no_mailbox_refused(users):
    users.add(ALICE, PW)
    # Somebody removed the map entry by hand: the password is still there.
    users.write_source(b"# nobody\n")
    before = users.snapshot()
    res = users.add(ALICE, PW2, check=False)
    assert res.returncode == 1, res
    assert f"{ALICE} already has a password in {users.db}" in res.stderr
    assert users.snapshot() == before


def test_add_domain_not_virtual(users):
    res = users.add("alice@elsewhere.test", check=False)
    assert res.returncode == 1, res
    assert "elsewhere.test is not a virtual mailbox domain" in res.stderr
    assert not os.path.exists(users.source)
    assert not os.path.exists(users.db)


@pytest.mark.parametrize("addr", [
    "alice", "alice@", "@example.test", "", "al ice@example.test",
    "alice@example.test ", " alice@example.test", "ali\tce@example.test",
    "alice:x@example.test", "a,b@example.test", "alice@example.test,",
    "al\x01ice@example.test", "al\x7fice@example.test",
    "alice\n@example.test"])
def test_add_bad_address(users, addr):
    for args in (["add", addr], ["passwd", addr], ["del", addr]):
        res = users.run(*args, input=PW + "\n", check=False)
        assert res.returncode == 2, (args, res)
        assert "fatal" in res.stderr
    assert not os.path.exists(users.source)
    assert not os.path.exists(users.db)


@pytest.mark.parametrize("stdin", ["", "\n", "\r\n"])
def test_add_empty_password_refused(users, stdin):
    res = users.run("add", ALICE, input=stdin, check=False)
    assert res.returncode == 1, res
    assert "empty password" in res.stderr
    assert users.sasl_users() == set()
    assert not os.path.exists(users.source)


def test_password_is_the_first_line(smtp):
    users = smtp.users
    users.run("add", ALICE, input=f"{PW}\n{PW2}\n")
    assert smtp(ALICE, PW) == 235
    assert smtp(ALICE, f"{PW}\n{PW2}") == 535
    assert smtp(ALICE, PW2) == 535
    # A last line without a newline counts too; CR LF is a line end.
    users.run("add", BOB, input=PW2)
    assert smtp(BOB, PW2) == 235
    users.run("passwd", BOB, input=PW + "\r\n")
    assert smtp(BOB, PW) == 235


def test_password_length_limit(users):
    ok = "p" * 1024
    users.add(ALICE, ok)
    assert users.sasl_users() == {ALICE}
    res = users.add(BOB, "p" * 1025, check=False)
    assert res.returncode == 1, res
    assert "password longer than 1024 bytes" in res.stderr
    assert users.sasl_users() == {ALICE}
    assert users.query(BOB) is None


def test_password_never_in_argv(users):
    """There is no way to give the password on the command line: an extra
    argument of passwd or del is a usage error, one of add is the
    mailbox, two are a usage error."""
    users.add(ALICE, PW)
    before = users.snapshot()
    for args in (["passwd", ALICE, PW2], ["add", BOB, "mbox/", PW2],
                 ["del", ALICE, PW2], ["list", DOMAIN, PW2]):
        res = users.run(*args, input=PW2 + "\n", check=False)
        assert res.returncode == 2, (args, res)
        assert "usage: postern user add USER@DOMAIN [MAILBOX]" in res.stderr
        assert users.snapshot() == before


def test_password_in_no_file_but_the_sasldb(users):
    users.add(ALICE, PW)
    users.add(BOB, PW2)
    users.passwd(ALICE, PW2 + "x")
    users.delete(BOB)
    for secret in (PW, PW2, PW2 + "x"):
        assert_no_secret(users.inst.root, secret, {users.db})


def test_usage(users):
    for args in ([], ["frobnicate"], ["add"], ["passwd"], ["del"],
                 ["list", DOMAIN, "more"]):
        res = users.run(*args, check=False)
        assert res.returncode == 2, (args, res)
        assert res.stderr.startswith("usage: postern user add"), res.stderr


# --- the terminal ---------------------------------------------------------

class Tty:
    """postern user on a pseudo-terminal (stdin, stdout and stderr)."""

    def __init__(self, users, *args):
        self.master, self.slave = os.openpty()
        self.out = b""
        self.echo_before = self.echo_on()
        inst = users.inst
        self.proc = subprocess.Popen(
            [bin_path("postern"), "-c", inst.config_dir, "user", *args],
            stdin=self.slave, stdout=self.slave, stderr=self.slave,
            env=inst.env(), start_new_session=True)

    def read_until(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.out:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} in {self.out!r}"
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    self.out += os.read(self.master, 4096)
                except OSError:
                    pass

    def type(self, line):
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout=20):
        rc = self.proc.wait(timeout=timeout)
        while True:
            r, _, _ = select.select([self.master], [], [], 0.2)
            if not r:
                break
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.out += chunk
        return rc

    def echo_on(self):
        return bool(termios.tcgetattr(self.slave)[3] & termios.ECHO)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@contextlib.contextmanager
def tty(users, *args):
    t = Tty(users, *args)
    try:
        yield t
    finally:
        t.close()


def test_tty_prompts_twice_without_echo(smtp):
    users = smtp.users
    with tty(users, "add", ALICE) as t:
        assert t.echo_before
        t.read_until("Password: ")
        assert not t.echo_on()
        t.type(PW)
        t.read_until("Retype password: ")
        assert not t.echo_on()
        t.type(PW)
        assert t.finish() == 0, t.out
        assert PW.encode() not in t.out, t.out
        assert b"added alice@example.test, mailbox example.test/alice/" \
            in t.out
        assert t.echo_on()              # the terminal as it was
    assert smtp(ALICE, PW) == 235
    # passwd asks the same way.
    with tty(users, "passwd", ALICE) as t:
        t.read_until("Password: ")
        t.type(PW2)
        t.read_until("Retype password: ")
        t.type(PW2)
        assert t.finish() == 0, t.out
        assert PW2.encode() not in t.out, t.out
        assert t.echo_on()
    assert smtp(ALICE, PW2) == 235
    assert smtp(ALICE, PW) == 535


def test_tty_passwords_differ(users):
    with tty(users, "add", ALICE) as t:
        t.read_until("Password: ")
        t.type(PW)
        t.read_until("Retype password: ")
        t.type(PW2)
        assert t.finish() == 1, t.out
        assert b"the passwords differ" in t.out
        assert PW.encode() not in t.out and PW2.encode() not in t.out
        assert t.echo_on()
    assert users.sasl_users() == set()
    assert not os.path.exists(users.source)


def test_tty_passwd_differ_keeps_old(smtp):
    users = smtp.users
    users.add(ALICE, PW)
    with tty(users, "passwd", ALICE) as t:
        t.read_until("Password: ")
        t.type(PW2)
        t.read_until("Retype password: ")
        t.type(PW2 + "x")
        assert t.finish() == 1, t.out
        assert b"the passwords differ" in t.out
    assert smtp(ALICE, PW) == 235
    assert smtp(ALICE, PW2) == 535


def test_tty_empty_password(users):
    with tty(users, "add", ALICE) as t:
        t.read_until("Password: ")
        t.type("")
        t.read_until("Retype password: ")
        t.type("")
        assert t.finish() == 1, t.out
        assert b"empty password" in t.out
        assert t.echo_on()
    assert users.sasl_users() == set()


# --- passwd ---------------------------------------------------------------

def test_passwd_changes_it(smtp):
    users = smtp.users
    users.add(ALICE, PW)
    users.add(BOB, PW)
    source = users.read_source()
    res = users.passwd(ALICE, PW2)
    assert res.stdout == f"changed the password of {ALICE}\n"
    assert smtp(ALICE, PW2) == 235
    assert smtp(ALICE, PW) == 535
    assert smtp(BOB, PW) == 235          # the others are untouched
    assert users.read_source() == source
    assert users.sasl_users() == {ALICE, BOB}


def test_passwd_unknown_user(users):
    users.add(ALICE)
    before = users.snapshot()
    res = users.passwd(BOB, PW2, check=False)
    assert res.returncode == 1, res
    assert f"{BOB}: no such user" in res.stderr
    assert users.snapshot() == before


def test_passwd_for_mailbox_without_password(smtp):
    users = smtp.users
    users.write_source(b"alice@example.test\texample.test/alice/\n")
    assert "(no password)" in users.list()
    users.passwd(ALICE, PW)
    assert smtp(ALICE, PW) == 235
    assert "(no password)" not in users.list()


def test_passwd_domain_not_virtual(users):
    res = users.passwd("alice@elsewhere.test", PW, check=False)
    assert res.returncode == 1, res
    assert "elsewhere.test is not a virtual mailbox domain" in res.stderr


# --- del ------------------------------------------------------------------

SOURCE = (b"# virtual mailboxes\n"
          b"@example.test          catchall/\n"
          b"carol@example.test     example.test/carol/\n"
          b"\n"
          b"alice@example.test     example.test/alice/\n"
          b"    # a comment inside alice's entry\n"
          b"\n"
          b"    more-of-alice\n"
          b"  # a comment after her, kept\n"
          b"dave@other.test        other.test/dave/\n"
          b"  continued\tvalue   \n"
          b"# the end, no newline")


def test_del_removes_both(smtp):
    users = smtp.users
    users.write_source(SOURCE)
    users.inst.postern("map", users.spec)
    users.add(BOB, PW)
    # alice has a password as well as her entry.
    users.passwd(ALICE, PW2)
    maildir = os.path.join(users.inst.mail_dir, "example.test", "alice",
                           "new")
    os.makedirs(maildir)
    with open(os.path.join(maildir, "1.msg"), "w") as f:
        f.write("Subject: kept\n\nmail\n")
    assert smtp(ALICE, PW2) == 235

    res = users.delete(ALICE)
    assert res.stdout == (f"removed {ALICE}, mailbox example.test/alice/ "
                          "more-of-alice (its mail is kept)\n")
    # Everything but alice's lines stays byte for byte, comments inside
    # her entry included.
    assert users.read_source() == SOURCE.replace(
        b"alice@example.test     example.test/alice/\n", b"").replace(
        b"    more-of-alice\n", b"") + b"\nbob@example.test\texample.test/bob/\n"
    assert users.sasl_users() == {BOB}
    assert smtp(ALICE, PW2) == 535
    assert smtp(BOB, PW) == 235
    # The table was rebuilt: alice is gone, the others answer as before.
    assert users.query(ALICE) is None
    assert users.query("carol@example.test") == "example.test/carol/"
    assert users.query("dave@other.test").split() == [
        "other.test/dave/", "continued", "value"]
    assert users.query("@example.test") == "catchall/"
    assert users.query(BOB) == "example.test/bob/"
    # Her mail stays.
    assert os.listdir(maildir) == ["1.msg"]


def test_del_last_entry_without_newline(users):
    users.write_source(b"carol@example.test example.test/carol/\n"
                       b"alice@example.test example.test/alice/")
    users.delete(ALICE)
    assert users.read_source() == b"carol@example.test example.test/carol/\n"
    assert users.query(ALICE) is None
    assert users.query("carol@example.test") == "example.test/carol/"


def test_del_continuation_does_not_join_the_entry_before(users):
    """A continuation line after a comment still belongs to the entry
    above it (as the table builder reads it): deleting that entry must not
    leave the line behind for the entry before to swallow."""
    users.write_source(b"carol@example.test example.test/carol/\n"
                       b"alice@example.test example.test/alice/\n"
                       b"# comment\n"
                       b"  extra\n")
    users.inst.postern("map", users.spec)
    assert users.query(ALICE).split() == ["example.test/alice/", "extra"]
    users.delete(ALICE)
    assert users.read_source() == (b"carol@example.test example.test/carol/\n"
                                   b"# comment\n")
    assert users.query("carol@example.test") == "example.test/carol/"


def test_del_duplicate_entries(users):
    users.write_source(b"alice@example.test first/\n"
                       b"carol@example.test example.test/carol/\n"
                       b"ALICE@example.test second/\n")
    users.delete(ALICE)
    assert users.read_source() == b"carol@example.test example.test/carol/\n"


def test_del_password_without_mailbox(users):
    users.add(ALICE, PW)
    users.add(BOB, PW)
    users.write_source(b"bob@example.test example.test/bob/\n")
    source = users.read_source()
    res = users.delete(ALICE)
    assert res.stdout == (f"removed the password of {ALICE} "
                          "(it had no mailbox)\n")
    assert users.sasl_users() == {BOB}
    assert users.read_source() == source


def test_del_mailbox_without_password(users):
    users.add(BOB, PW)
    users.write_source(users.read_source()
                       + b"alice@example.test example.test/alice/\n")
    users.delete(ALICE)
    assert users.read_source() == b"bob@example.test\texample.test/bob/\n"
    assert users.sasl_users() == {BOB}


def test_del_unknown_user(users):
    users.add(ALICE, PW)
    before = users.snapshot()
    res = users.delete(BOB, check=False)
    assert res.returncode == 1, res
    assert f"{BOB}: no such user" in res.stderr
    assert users.snapshot() == before


def test_del_then_add_again(smtp):
    users = smtp.users
    users.add(ALICE, PW)
    users.delete(ALICE)
    users.add(ALICE, PW2)
    assert smtp(ALICE, PW2) == 235
    assert smtp(ALICE, PW) == 535
    assert users.read_source() == b"alice@example.test\texample.test/alice/\n"


# --- list -----------------------------------------------------------------

def test_list(users):
    users.write_source(
        b"# users\n"
        b"@example.test catchall/\n"                # not a user
        b"carol@example.test example.test/carol/\n"  # no password
        b"someone@elsewhere.test x/\n"               # not a virtual domain
        b"eve@other.test\n  other.test/eve/\n")      # continued, no password
    users.add(ALICE, PW)
    users.add("dan@other.test", PW)
    out = users.list()
    assert out == (
        f"{'carol@example.test':<32} example.test/carol/  (no password)\n"
        f"{'eve@other.test':<32} other.test/eve/  (no password)\n"
        f"{ALICE:<32} example.test/alice/\n"
        f"{'dan@other.test':<32} other.test/dan/\n")
    assert users.list("other.test") == (
        f"{'eve@other.test':<32} other.test/eve/  (no password)\n"
        f"{'dan@other.test':<32} other.test/dan/\n")
    assert users.list("EXAMPLE.test") == (
        f"{'carol@example.test':<32} example.test/carol/  (no password)\n"
        f"{ALICE:<32} example.test/alice/\n")
    assert users.list("elsewhere.test") == ""
    assert users.list("nowhere.test") == ""


def test_list_empty(users):
    res = users.run("list")
    assert (res.returncode, res.stdout) == (0, "")


# --- the table --------------------------------------------------------------

def test_maps_without_editable_table(users):
    users.inst.write_main_cf(
        virtual_mailbox_maps="inline:{alice@example.test=example.test/alice/}")
    for args in (["add", ALICE], ["passwd", ALICE], ["del", ALICE],
                 ["list"]):
        res = users.run(*args, input=PW + "\n", check=False)
        assert res.returncode == 1, (args, res)
        assert ('virtual_mailbox_maps ("inline:{alice@example.test='
                'example.test/alice/}") has no lmdb: or texthash: table'
                in res.stderr), res.stderr
    assert not os.path.exists(users.db)


def test_first_editable_table_is_kept(users):
    other = os.path.join(users.inst.config_dir, "vmailbox2")
    with open(other, "w") as f:
        f.write("zed@example.test example.test/zed/\n")
    users.inst.write_main_cf(
        virtual_mailbox_maps=(f"inline:{{x@example.test=y}}, "
                              f"lmdb:{users.source}, lmdb:{other}"))
    users.add(ALICE)
    assert users.query(ALICE) == "example.test/alice/"
    with open(other) as f:
        assert f.read() == "zed@example.test example.test/zed/\n"
    assert not os.path.exists(other + ".lmdb")


def test_source_mode_and_trailing_newline_kept(users):
    users.write_source(b"carol@example.test example.test/carol/")
    os.chmod(users.source, 0o640)
    users.add(ALICE)
    assert users.read_source() == (b"carol@example.test example.test/carol/\n"
                                   b"alice@example.test\texample.test/alice/\n")
    assert os.stat(users.source).st_mode & 0o7777 == 0o640


def test_source_with_nul_byte(users):
    users.write_source(b"carol@example.test exa\0mple.test/carol/\n")
    before = users.snapshot()
    for args in (["add", ALICE], ["del", "carol@example.test"], ["list"]):
        try:
            res = users.run(*args, input=PW + "\n", check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"postern user {args[0]} hangs on a NUL byte")
        assert res.returncode == 1, res
        assert "NUL byte" in res.stderr
    assert users.snapshot() == before


def test_texthash_source(instance):
    users = Users(instance, table="texthash")
    users.add(ALICE, PW)
    users.add(BOB, PW, "bob-box/")
    assert users.read_source() == (b"alice@example.test\texample.test/alice/\n"
                                   b"bob@example.test\tbob-box/\n")
    assert not os.path.exists(users.source + ".lmdb")
    assert users.query(ALICE) == "example.test/alice/"
    assert users.query(BOB) == "bob-box/"
    users.delete(ALICE)
    assert users.query(ALICE) is None
    assert users.sasl_users() == {BOB}
    assert f"{BOB:<32} bob-box/\n" == users.list()


# --- the store's owner and mode ---------------------------------------------

def test_sasldb_owner_and_mode_as_root(users):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        owner = pwd.getpwnam("postern")
    except KeyError:
        pytest.skip("no postern account (make users)")
    users.add(ALICE)
    st = os.stat(users.db)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == \
        (0, owner.pw_gid, 0o640)
    # passwd puts them right again.
    os.chown(users.db, 0, 0)
    os.chmod(users.db, 0o644)
    users.passwd(ALICE, PW2)
    st = os.stat(users.db)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == \
        (0, owner.pw_gid, 0o640)
    # The map source and table are ordinary readable files.
    assert os.stat(users.source).st_mode & 0o7777 == 0o644


def test_sasldb_mode_unprivileged(user_instance):
    users = Users(user_instance)
    users.add(ALICE)
    st = os.stat(users.db)
    want_uid = (pwd.getpwnam(user_instance.run_as).pw_uid
                if user_instance.run_as else os.geteuid())
    assert (st.st_uid, st.st_mode & 0o7777) == (want_uid, 0o600)
    assert users.sasl_users() == {ALICE}


def test_sasl_db_path_parameter(users):
    db = os.path.join(users.inst.root, "elsewhere", "users.db")
    os.makedirs(os.path.dirname(db))
    users.inst.write_main_cf(sasl_db_path=db)
    users.add(ALICE)
    assert not os.path.exists(users.db)
    users.db = db
    assert users.sasl_users() == {ALICE}
