"""Shared fixtures for Postern's integration tests.

Run with Debian's /usr/bin/python3 (make integration does).  Every test gets
its own instance in a temporary directory: a config directory with main.cf
and master.cf, a queue directory, a data directory and a mail store, and
free loopback ports for its services.  Later issues extend Instance with
starting and stopping master; processes a test starts are stopped by pid.
"""
import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("POSTERN_BUILD", os.path.join(ROOT, "build"))
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def bin_path(name):
    """Path of a built program: build/bin/NAME or build/libexec/NAME."""
    for sub in ("bin", "libexec"):
        path = os.path.join(BUILD, sub, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{name} is not built in {BUILD}")


def free_port(host="127.0.0.1"):
    """A TCP port that nothing listens on right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Poll predicate() until it is true; fail the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def child_pids(ppid):
    """Pids of the live children of ppid."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().split(")")[-1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == ppid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


class Instance:
    """A Postern instance confined to one temporary directory.

    run_as: None to run commands as the current user, or the name of an
    ordinary account (tests of the unprivileged development mode when the
    suite runs as root).
    """

    def __init__(self, root, run_as=None):
        self.root = root
        self.run_as = run_as
        self.config_dir = os.path.join(root, "etc")
        self.queue_dir = os.path.join(root, "queue")
        self.data_dir = os.path.join(root, "data")
        self.mail_dir = os.path.join(root, "mail")
        self.log_file = os.path.join(root, "maillog")
        for d in (self.config_dir, self.queue_dir, self.data_dir, self.mail_dir):
            os.makedirs(d, exist_ok=True)
        self.ports = {}
        self.pids = []
        self.seen_pids = set()
        # Programs master may run: the real ones and the test fixtures.
        self.daemon_dir = os.path.join(root, "libexec")
        os.makedirs(self.daemon_dir, exist_ok=True)
        for sub in ("libexec", os.path.join("tests", "libexec")):
            d = os.path.join(BUILD, sub)
            for name in os.listdir(d) if os.path.isdir(d) else ():
                os.symlink(os.path.join(d, name),
                           os.path.join(self.daemon_dir, name))
        self.params = {
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "daemon_directory": self.daemon_dir,
            "command_directory": os.path.join(BUILD, "bin"),
            "maillog_file": self.log_file,
            "myhostname": "mx.example.test",
            "mail_owner": "postern",
            "alias_maps": "",
            "service_throttle_time": "2s",
            "stop_grace_time": "3s",
        }
        self.write_main_cf()
        self.write_file("etc/master.cf", "")
        if run_as:
            pw = pwd.getpwnam(run_as)
            for dirpath, dirnames, filenames in os.walk(root):
                for name in [dirpath] + [os.path.join(dirpath, n)
                                         for n in dirnames + filenames]:
                    os.lchown(name, pw.pw_uid, pw.pw_gid)

    # --- files -------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write_file(self, relpath, text, mode=None):
        path = self.path(relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        if mode is not None:
            os.chmod(path, mode)
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        return path

    def write_main_cf(self, extra=None, **params):
        """(Re)write main.cf from self.params, updated with params."""
        self.params.update(params)
        lines = [f"{k} = {v}" for k, v in self.params.items()]
        if extra:
            lines.append(extra)
        return self.write_file("etc/main.cf", "\n".join(lines) + "\n")

    def port(self, service):
        """A free loopback port reserved for service in this instance."""
        if service not in self.ports:
            self.ports[service] = free_port()
        return self.ports[service]

    # --- commands ----------------------------------------------------
    def as_user(self, cmd):
        """Wrap cmd to run as self.run_as (if set)."""
        if not self.run_as:
            return cmd
        pw = pwd.getpwnam(self.run_as)
        return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                "--clear-groups", "--"] + cmd

    def env(self, extra=None):
        """The environment for programs of this instance.  Sanitizer
        reports (make asan) from any process go to files checked at the
        end of the test."""
        env = dict(os.environ)
        # A smaller quarantine than ASan's 256 MB: long-lived services
        # (qmgr) would otherwise fill it, and memory-bound tests measure
        # the program, not the sanitizer.
        env["ASAN_OPTIONS"] = (f"log_path={self.root}/sanitizer:"
                               "abort_on_error=0:quarantine_size_mb=16")
        env["UBSAN_OPTIONS"] = (f"log_path={self.root}/sanitizer:"
                                "print_stacktrace=1")
        env.update(extra or {})
        return env

    def sanitizer_reports(self):
        reports = []
        for name in sorted(os.listdir(self.root)):
            if name.startswith("sanitizer."):
                with open(os.path.join(self.root, name)) as f:
                    reports.append(f.read())
        return reports

    def postern(self, *args, check=True, input=None, env=None):
        """Run postern -c CONFIG ARGS; returns the CompletedProcess."""
        cmd = self.as_user([bin_path("postern"), "-c", self.config_dir, *args])
        res = subprocess.run(cmd, input=input, capture_output=True, text=True,
                             env=self.env(env), timeout=60)
        if check and res.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {res.returncode}\n"
                f"stdout: {res.stdout}\nstderr: {res.stderr}")
        return res

    def postern_as(self, user, *args, group=None, check=True, env=None):
        """Run postern -c CONFIG ARGS as the account user (the suite runs
        as root), with only the group group (a name) besides user's own:
        the rights a program setgid to that group has, without making the
        process unsafe for sanitizers.  Sanitizer reports go to a
        directory user may write and fail the call."""
        pw = pwd.getpwnam(user)
        groups = (["--groups", str(grp.getgrnam(group).gr_gid)] if group
                  else ["--clear-groups"])
        logs = self.path(f"sanitizer-{user}")
        os.makedirs(logs, exist_ok=True)
        os.chmod(logs, 0o1777)
        cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
               *groups, "--", bin_path("postern"), "-c", self.config_dir,
               *args]
        extra = {"ASAN_OPTIONS": f"log_path={logs}/sanitizer:abort_on_error=0",
                 "UBSAN_OPTIONS": f"log_path={logs}/sanitizer:"
                                  "print_stacktrace=1"}
        extra.update(env or {})
        res = subprocess.run(cmd, capture_output=True, text=True,
                             env=self.env(extra), timeout=60)
        reports = sorted(os.listdir(logs))
        assert not reports, f"sanitizer reports in {logs}: {reports}"
        if check and res.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {res.returncode}\n"
                f"stdout: {res.stdout}\nstderr: {res.stderr}")
        return res

    def log(self):
        try:
            with open(self.log_file) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # --- master ------------------------------------------------------
    def write_master_cf(self, text):
        return self.write_file("etc/master.cf", text)

    def mail_services(self, extra=""):
        """master.cf with the mail services: smtpd on a free loopback port
        (self.port("smtp")), cleanup, anvil, pickup, showq, plus extra."""
        port = self.port("smtp")
        return self.write_master_cf(
            f"127.0.0.1:{port} inet n - n - - smtpd\n"
            "pickup unix n - n 60 1 pickup\n"
            "cleanup unix n - n - 0 cleanup\n"
            "anvil unix - - n - 1 anvil\n"
            "showq unix n - n - - showq\n" + extra)

    def all_services(self, extra=""):
        """mail_services() plus qmgr and the local/virtual delivery agents:
        a whole mail system."""
        return self.mail_services("qmgr unix n - n 300 1 qmgr\n"
                                  "local unix - n n - - local\n"
                                  "virtual unix - n n - - local\n" + extra)

    def master_pid(self):
        """The running master's pid from its pid file, or None."""
        try:
            with open(os.path.join(self.data_dir, "master.pid")) as f:
                pid = int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid and pid_alive(pid) else None

    def start(self):
        """postern start; waits until the services listen."""
        self.postern("start")
        pid = wait_for(self.master_pid, what="master pid")
        self.track(pid)
        wait_for(lambda: "daemon started" in self.log(), what="master start")
        return pid

    def children(self):
        pid = self.master_pid()
        kids = child_pids(pid) if pid else []
        self.seen_pids.update(kids)
        return kids

    def stop_master(self):
        if self.master_pid():
            self.postern("stop")

    def connect(self, port, timeout=10):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        return s

    # --- processes ---------------------------------------------------
    def track(self, pid):
        self.pids.append(pid)
        self.seen_pids.add(pid)

    def stop(self):
        """Stop what this instance started: master first, then by pid."""
        try:
            if self.master_pid():
                subprocess.run(self.as_user([bin_path("postern"), "-c",
                                             self.config_dir, "stop"]),
                               capture_output=True, timeout=30)
        except (subprocess.TimeoutExpired, FileNotFoundError):
            pass
        self.children()
        for pid in list(self.pids) + list(self.seen_pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pids.clear()


@contextlib.contextmanager
def checked_instance():
    """An Instance in a new temporary directory.  When the block ends
    without an exception it is stopped and must have no sanitizer
    reports; in any case it is stopped and its directory removed."""
    root = tempfile.mkdtemp(prefix="postern-test-")
    os.chmod(root, 0o755)               # services run as mail_owner
    inst = Instance(root)
    try:
        yield inst
        inst.stop()
        reports = inst.sanitizer_reports()
        assert not reports, "sanitizer reports:\n" + "\n".join(reports)
    finally:
        inst.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def instance():
    with checked_instance() as inst:
        yield inst


@pytest.fixture
def user_instance():
    """An instance run entirely by the ordinary account "nobody"."""
    root = tempfile.mkdtemp(prefix="postern-test-")
    os.chmod(root, 0o755)
    inst = Instance(root, run_as="nobody" if os.geteuid() == 0 else None)
    try:
        yield inst
    finally:
        inst.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tmpdir_path():
    root = tempfile.mkdtemp(prefix="postern-tmp-")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
