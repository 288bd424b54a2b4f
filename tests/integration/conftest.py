"""Shared fixtures for Postern's integration tests.

Run with Debian's /usr/bin/python3 (make integration does).  Every test gets
its own instance in a temporary directory: a config directory with main.cf
and master.cf, a queue directory, a data directory and a mail store, and
free loopback ports for its services.  Later issues extend Instance with
starting and stopping master; processes a test starts are stopped by pid.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile

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


class Instance:
    """A Postern instance confined to one temporary directory."""

    def __init__(self, root):
        self.root = root
        self.config_dir = os.path.join(root, "etc")
        self.queue_dir = os.path.join(root, "queue")
        self.data_dir = os.path.join(root, "data")
        self.mail_dir = os.path.join(root, "mail")
        self.log_file = os.path.join(root, "maillog")
        for d in (self.config_dir, self.queue_dir, self.data_dir, self.mail_dir):
            os.makedirs(d, exist_ok=True)
        self.ports = {}
        self.pids = []
        self.params = {
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "daemon_directory": os.path.join(BUILD, "libexec"),
            "command_directory": os.path.join(BUILD, "bin"),
            "maillog_file": self.log_file,
            "myhostname": "mx.example.test",
        }
        self.write_main_cf()
        self.write_file("etc/master.cf", "")

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
    def postern(self, *args, check=True, input=None, env=None):
        """Run postern -c CONFIG ARGS; returns the CompletedProcess."""
        cmd = [bin_path("postern"), "-c", self.config_dir, *args]
        res = subprocess.run(cmd, input=input, capture_output=True, text=True,
                             env=env, timeout=60)
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

    # --- processes ---------------------------------------------------
    def track(self, pid):
        self.pids.append(pid)

    def stop(self):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pids.clear()


@pytest.fixture
def instance():
    root = tempfile.mkdtemp(prefix="postern-test-")
    inst = Instance(root)
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
