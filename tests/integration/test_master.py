"""master: process supervision, limits, reload, stop, privileges."""
import os
import pwd
import signal
import socket
import subprocess
import time

import pytest

from conftest import bin_path, child_pids, pid_alive, wait_for

IS_ROOT = os.geteuid() == 0


class Client:
    """A line-oriented client of the testsvc fixture."""

    def __init__(self, inst, port, timeout=10):
        self.sock = inst.connect(port, timeout=timeout)
        self.f = self.sock.makefile("rwb")

    def readable(self, timeout):
        """Is there something to read within timeout seconds?"""
        import select
        return bool(select.select([self.sock], [], [], timeout)[0])

    def hello(self):
        line = self.f.readline().decode()
        assert line.startswith("hello "), line
        return dict(kv.split("=", 1) for kv in line.split()[1:])

    def cmd(self, text):
        self.f.write(text.encode() + b"\r\n")
        self.f.flush()
        return self.f.readline().decode().strip()

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


def service_line(port, maxproc="-", args="", chroot="n", extra=""):
    return (f"127.0.0.1:{port} inet n - {chroot} - {maxproc} testsvc"
            f"{' ' + extra if extra else ''}{' ' + args if args else ''}\n")


def test_start_status_stop_leaves_nothing(instance):
    port = instance.port("svc")
    instance.write_master_cf(service_line(port))
    pid = instance.start()
    res = instance.postern("status")
    assert f"is running: PID: {pid}" in res.stderr
    c = Client(instance, port)
    child = int(c.hello()["pid"])
    assert child in instance.children()
    c.close()
    instance.postern("stop")
    wait_for(lambda: not pid_alive(pid), what="master exit")
    wait_for(lambda: not pid_alive(child), what="child exit")
    res = instance.postern("status", check=False)
    assert res.returncode == 1 and "not running" in res.stderr
    assert not os.path.exists(os.path.join(instance.data_dir, "master.pid"))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_second_master_refused(instance):
    port = instance.port("svc")
    instance.write_master_cf(service_line(port))
    pid = instance.start()
    res = instance.postern("start", check=False)
    assert res.returncode != 0 and "already running" in res.stderr
    # The master binary itself refuses too (lock, not just the command).
    res = subprocess.run([bin_path("master"), "-c", instance.config_dir],
                         env=instance.env(),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and "already running" in res.stderr
    assert f"pid {pid}" in res.stderr
    assert instance.master_pid() == pid


def test_killed_child_is_replaced(instance):
    port = instance.port("svc")
    instance.write_master_cf(service_line(port))
    instance.start()
    c = Client(instance, port)
    first = int(c.hello()["pid"])
    os.kill(first, signal.SIGKILL)
    c.close()
    wait_for(lambda: "killed by signal 9" in instance.log(), what="reap log")
    c = Client(instance, port)
    second = int(c.hello()["pid"])
    assert second != first
    assert c.cmd("echo again") == "again"
    c.close()


def test_crash_looping_service_is_throttled(instance):
    port = instance.port("svc")
    instance.write_master_cf(service_line(port, args="crash-at-start"))
    pid = instance.start()
    # Each connection attempt would fork; throttling stops the loop.
    for _ in range(5):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.settimeout(0.5)
            try:
                s.recv(100)
            except OSError:
                pass
            s.close()
        except OSError:
            pass
    wait_for(lambda: "bad command startup -- throttling" in instance.log(),
             what="throttle warning")
    time.sleep(1)
    starts = instance.log().count("crash-at-start requested")
    # Throttle time is 2s: a tight loop would have forked many times.
    assert 1 <= starts <= 3, starts
    assert instance.master_pid() == pid
    assert instance.postern("status").returncode == 0


def test_maxproc_limits_and_queues(instance):
    port = instance.port("svc")
    instance.write_master_cf(service_line(port, maxproc="2"))
    instance.start()
    a, b = Client(instance, port), Client(instance, port)
    pa, pb = a.hello()["pid"], b.hello()["pid"]
    assert pa != pb
    c = Client(instance, port)
    assert not c.readable(1.5)          # waits in the backlog
    assert len(instance.children()) == 2
    a.cmd("quit")
    a.close()
    assert c.hello()["pid"] == pa       # the freed process serves it
    b.close()
    c.close()


def test_max_use_recycles(instance):
    port = instance.port("svc")
    instance.write_master_cf(service_line(port, maxproc="1",
                                          extra="-o max_use=2"))
    instance.start()
    pids = []
    for _ in range(3):
        c = Client(instance, port)
        pids.append(c.hello()["pid"])
        c.cmd("quit")
        c.close()
        time.sleep(0.2)
    assert pids[0] == pids[1] != pids[2]


def test_max_idle_exits(instance):
    port = instance.port("svc")
    instance.write_master_cf(service_line(port, extra="-o max_idle=1s"))
    instance.start()
    c = Client(instance, port)
    pid = int(c.hello()["pid"])
    c.cmd("quit")
    c.close()
    wait_for(lambda: not pid_alive(pid), timeout=10, what="idle exit")
    c = Client(instance, port)
    assert int(c.hello()["pid"]) != pid
    c.close()


def test_reload_changes_listener_and_keeps_sessions(instance):
    old_port, new_port = instance.port("old"), instance.port("new")
    instance.write_master_cf(service_line(old_port))
    instance.start()
    session = Client(instance, old_port)
    old_pid = int(session.hello()["pid"])
    instance.write_master_cf(service_line(new_port))
    instance.postern("reload")
    wait_for(lambda: "reload" in instance.log(), what="reload")
    c = wait_for(lambda: _try_client(instance, new_port), what="new port")
    assert int(c.hello()["pid"]) != old_pid
    c.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", old_port), timeout=2)
    # The session on the old process finishes normally.
    assert session.cmd("echo still here") == "still here"
    session.cmd("quit")
    session.close()
    wait_for(lambda: not pid_alive(old_pid), what="old process exit")


def _try_client(inst, port):
    try:
        return Client(inst, port)
    except OSError:
        return None


def test_reload_with_broken_config_is_refused(instance):
    port = instance.port("svc")
    instance.write_master_cf(service_line(port))
    pid = instance.start()
    instance.write_master_cf("broken inet n - n - - \n")
    res = instance.postern("reload", check=False)
    assert res.returncode != 0 and "master.cf, line 1" in res.stderr
    # Even a SIGHUP straight to master does not take a broken config.
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: "reload refused" in instance.log(), what="refusal")
    instance.write_main_cf(max_idle="ten seconds")
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: instance.log().count("reload refused") == 2,
             what="second refusal")
    assert "max_idle" in instance.log()
    # New processes still get the configuration that was accepted.
    c = Client(instance, port)
    c.hello()
    assert c.cmd("echo ok") == "ok"
    c.close()
    assert instance.master_pid() == pid


def test_start_with_broken_config_fails_clearly(instance):
    instance.write_main_cf(max_use="lots")
    res = instance.postern("start", check=False)
    assert res.returncode != 0
    assert "main.cf, line" in res.stderr and "max_use" in res.stderr
    assert instance.master_pid() is None


def test_stop_waits_for_sessions_then_kills(instance):
    port = instance.port("svc")
    instance.write_master_cf(service_line(port))
    instance.write_main_cf(stop_grace_time="1s")
    pid = instance.start()
    c = Client(instance, port)
    child = int(c.hello()["pid"])
    c.f.write(b"sleep 60\r\n")
    c.f.flush()
    time.sleep(0.3)
    started = time.monotonic()
    instance.postern("stop")
    assert time.monotonic() - started < 15
    # The lock goes a moment before the process.
    wait_for(lambda: not pid_alive(pid) and not pid_alive(child),
             what="master and child exit")
    assert "still running after" in instance.log()
    c.close()


def test_wakeup_triggers_event_service(instance):
    instance.write_master_cf("ticker unix n - n 1 1 testsvc event\n")
    instance.start()
    path = os.path.join(instance.queue_dir, "trace", "testsvc.triggers")
    wait_for(lambda: os.path.exists(path) and
             open(path).read().count("W") >= 2, timeout=10,
             what="two wakeups")
    assert len(instance.children()) == 1


def test_check_creates_queue_tree(instance):
    res = instance.postern("check")
    assert "created directory" in res.stderr
    modes = {"maildrop": 0o1730, "incoming": 0o700, "public": 0o710,
             "private": 0o700, "deferred": 0o700, "hold": 0o700}
    for name, mode in modes.items():
        st = os.stat(os.path.join(instance.queue_dir, name))
        assert st.st_mode & 0o7777 == mode, name
        if IS_ROOT:
            assert st.st_uid == pwd.getpwnam("postern").pw_uid
    os.chmod(os.path.join(instance.queue_dir, "incoming"), 0o777)
    res = instance.postern("check")
    assert "changed mode" in res.stderr
    res = instance.postern("check")
    assert "changed" not in res.stderr and "created" not in res.stderr


def test_privileges_and_chroot(instance):
    port, croot = instance.port("plain"), instance.port("chroot")
    instance.write_master_cf(service_line(port) +
                             service_line(croot, chroot="y"))
    instance.start()
    plain = Client(instance, port).hello()
    jailed = Client(instance, croot).hello()
    if IS_ROOT:
        pw = pwd.getpwnam("postern")
        for info in (plain, jailed):
            assert int(info["uid"]) == pw.pw_uid
            assert int(info["gid"]) == pw.pw_gid
        assert os.readlink(f"/proc/{jailed['pid']}/root") == instance.queue_dir
        assert os.readlink(f"/proc/{plain['pid']}/root") == "/"
        with open(f"/proc/{jailed['pid']}/status") as f:
            groups = [l for l in f if l.startswith("Groups:")][0].split()[1:]
        assert groups == [str(pw.pw_gid)]
    else:
        assert int(plain["uid"]) == os.getuid()
        assert jailed["root"] == "/"


def test_ordinary_user_runs_everything(user_instance):
    """The development mode: no chroot, no user change, same supervision."""
    inst = user_instance
    port = inst.port("svc")
    inst.write_master_cf(service_line(port, chroot="y"))
    pid = inst.start()
    c = Client(inst, port)
    info = c.hello()
    expected = pwd.getpwnam(inst.run_as).pw_uid if inst.run_as else os.getuid()
    assert int(info["uid"]) == expected
    assert os.readlink(f"/proc/{info['pid']}/root") == "/"
    os.kill(int(info["pid"]), signal.SIGKILL)
    c.close()
    c = wait_for(lambda: _try_client(inst, port), what="replacement")
    assert int(c.hello()["pid"]) != int(info["pid"])
    c.close()
    inst.postern("stop")
    wait_for(lambda: not pid_alive(pid), what="master exit")
