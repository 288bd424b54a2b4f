"""benchlib - what the benchmarks in bench/ share.

Instances of Postern and Postfix in temporary directories on free
loopback ports (each started and stopped with its own command, whatever
is left then killed by pid, and only the very processes we saw), the CPU
accounting of an instance, notes on the machine, and the profilers (perf
record, perf trace of fsync, strace -f of a fresh instance).

Used by the scripts in bench/; not a program.  The scripts import it
with sys.dont_write_bytecode set, so that no __pycache__ appears in the
tree.
"""
import datetime
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Processes the scripts started themselves (smtp-source, perf, strace):
# killed by pid on exit.
CHILDREN = []


def log(text):
    print(text, file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=15.0, what="condition", interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def proc_read(pid, name):
    """The text of /proc/PID/NAME, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/{name}", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name, or None."""
    text = proc_read(pid, "stat")
    return text.rsplit(")", 1)[1].split() if text and ")" in text else None


def pid_alive(pid):
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def proc_start(pid):
    """The start time of a process (clock ticks since boot), or None: a
    pid with the same start time is the same process."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def _all_ppids():
    """{pid: (ppid, state)} of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields:
                out[int(entry)] = (int(fields[1]), fields[0])
    return out


def child_pids(ppid):
    return [p for p, (pp, st) in _all_ppids().items()
            if pp == ppid and st != "Z"]


def descendant_pids(pid):
    """The live descendants of pid (children, grandchildren, ...), as
    {pid: parent pid}."""
    table = _all_ppids()
    kids = {}
    for p, (pp, st) in table.items():
        if st != "Z":
            kids.setdefault(pp, []).append(p)
    out, stack = {}, [pid]
    while stack:
        parent = stack.pop()
        for k in kids.get(parent, ()):
            out[k] = parent
            stack.append(k)
    return out


def port_listening(port):
    """Whether something listens on 127.0.0.1:port (from /proc, without
    connecting, so that no server process is woken up)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                return True
    return False


def run(cmd, check=True, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                         **kw)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {res.returncode}:\n"
                           f"{res.stdout}{res.stderr}")
    return res


def finish(proc, timeout):
    """Wait up to timeout seconds for proc to exit, then kill it."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def kill_children():
    """Kill what the script started itself (by pid, never by name)."""
    for p in list(CHILDREN):
        if p.poll() is None:
            p.kill()
            p.wait()
        CHILDREN.remove(p)


# --- instances -------------------------------------------------------------

class Server:
    """What both instances share: a root directory, a port, a queue."""

    name = "?"

    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.config_dir = os.path.join(root, "etc")
        self.queue_dir = os.path.join(root, "queue")
        self.data_dir = os.path.join(root, "data")
        self.log_file = os.path.join(root, "maillog")
        for d in (self.config_dir, self.queue_dir, self.data_dir):
            os.makedirs(d, exist_ok=True)
        self.started = False
        self.seen_pids = {}             # pid -> start time

    def write(self, relpath, text):
        path = os.path.join(self.root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def write_main_cf(self, params):
        self.params = dict(params)
        self.write("etc/main.cf",
                   "".join(f"{k} = {v}\n" for k, v in params.items()))

    def reconfigure(self, changes):
        """Stop, change main.cf settings, start again."""
        self.stop()
        self.write_main_cf({**self.params, **changes})
        self.start()

    def incoming(self):
        return os.path.join(self.queue_dir, "incoming")

    def queue_files(self, subdir="incoming", complete=True):
        """Files in a queue directory; complete: only those with the
        owner-execute bit (both mark a finished file so, as Postfix
        does)."""
        count = 0
        try:
            with os.scandir(os.path.join(self.queue_dir, subdir)) as it:
                for e in it:
                    st = e.stat(follow_symlinks=False)
                    if e.is_file(follow_symlinks=False) and \
                            (not complete or st.st_mode & 0o100):
                        count += 1
        except FileNotFoundError:
            pass
        return count

    def queued(self, subdirs=("maildrop", "incoming", "active",
                              "deferred", "hold")):
        """{subdir: number of files} for the queue directories that hold
        any (Postfix's queue has subdirectories by hash level; both use
        flat directories with the default hash_queue_depth here)."""
        out = {}
        for d in subdirs:
            n = 0
            for _, _, files in os.walk(os.path.join(self.queue_dir, d)):
                n += len(files)
            if n:
                out[d] = n
        return out

    def clear_queue(self):
        """Move the queue files out of incoming/ (into a directory next
        to the queue, removed at the end).  Moving, not deleting: on an
        ext4 without a journal, every new inode skips the ones deleted in
        the last minutes (ext4's recently_deleted()), which would make
        each run slower than the one before."""
        self.archived = getattr(self, "archived", 0) + 1
        dest = os.path.join(self.root, "done", str(self.archived))
        os.makedirs(dest, exist_ok=True)
        with os.scandir(self.incoming()) as it:
            for e in it:
                if e.is_file(follow_symlinks=False):
                    os.rename(e.path, os.path.join(dest, e.name))

    def log_text(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=15):
        """The last warnings, errors and deferrals of the log (else its
        last lines), for a failure message."""
        text = self.log_text().splitlines()
        interesting = [t for t in text if "warning" in t or "error" in t
                       or "fatal" in t or "panic" in t
                       or "status=deferred" in t or "status=bounced" in t]
        return "\n".join((interesting or text)[-lines:])

    def queue_drained(self, timeout):
        """Wait until the queue is empty (qmgr removes a message after
        the agent's last reply, so it trails the delivery a little); fail
        on mail left behind, which could still be delivered a second
        time."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.queued()
            if not left:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: mail left in the queue: "
                                   f"{left}\n{self.log_tail()}")
            time.sleep(0.02)

    def master_pid(self):
        try:
            with open(self.pid_file) as f:
                pid = int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid and pid_alive(pid) else None

    def note_children(self):
        pid = self.master_pid()
        if pid:
            for child in child_pids(pid):
                self.seen_pids[child] = proc_start(child)

    def start(self):
        self.started = True
        res = run(self.start_cmd(), check=False)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(self.start_cmd())} exited "
                               f"{res.returncode}: {res.stdout}{res.stderr}"
                               f"\n{self.log_text()[-1500:]}")
        pid = wait_for(self.master_pid, what=f"{self.name} master pid")
        self.seen_pids[pid] = proc_start(pid)
        wait_for(lambda: port_listening(self.port),
                 what=f"{self.name} listening on {self.port}")
        return pid

    def stop(self):
        """Stop with the instance's own command; then by pid whatever of
        ours is left (master and children we saw)."""
        if not self.started:
            return
        self.note_children()
        pid = self.master_pid()
        if pid:
            try:
                run(self.stop_cmd(), check=False)
                wait_for(lambda: not pid_alive(pid), timeout=15,
                         what=f"{self.name} master exit")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        # Only processes that are still the very ones we saw (same pid and
        # start time): a pid may have been reused by now.
        for p, start in sorted(self.seen_pids.items()):
            if start is not None and pid_alive(p) and proc_start(p) == start:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.seen_pids.clear()
        self.started = False


def copy_build(src, dst, tries=30):
    """Copy the programs of a build directory that nobody is writing:
    wait until no file changed for 3 seconds, copy, and check that
    nothing changed during the copy and every program is executable."""
    def snapshot():
        return {e.name: (e.stat().st_mtime_ns, e.stat().st_size,
                         e.stat().st_mode)
                for e in os.scandir(src) if e.is_file()}
    for _ in range(tries):
        before = snapshot()
        newest = max((v[0] for v in before.values()), default=0)
        if time.time() - newest / 1e9 < 3 or \
                any(not v[2] & 0o100 for v in before.values()):
            time.sleep(2)
            continue
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        if snapshot() == before:
            return
        time.sleep(2)
    raise RuntimeError(f"{src} keeps changing (someone is building): "
                       "try again later")


NOFSYNC_C = """
/* --no-fsync: fsync and fdatasync do nothing (analysis only) */
int fsync(int fd) { (void) fd; return 0; }
int fdatasync(int fd) { (void) fd; return 0; }
"""


def build_nofsync(top):
    """A preload library that turns fsync into a no-op, to measure how
    much of the time the syncs take.  Never durable: analysis only."""
    src = os.path.join(top, "nofsync.c")
    lib = os.path.join(top, "nofsync.so")
    with open(src, "w") as f:
        f.write(NOFSYNC_C)
    run(["cc", "-O2", "-shared", "-fPIC", "-o", lib, src])
    os.chmod(top, 0o755)
    return lib


class Postern(Server):
    """A Postern instance running copies of the programs of a build.

    params: main.cf settings on top of the instance's directories;
    master_cf(port): the whole master.cf, given the instance's free
    loopback port for smtpd; nofsync: the preload library, and
    nofsync_wrap the programs to run with it (master passes no
    LD_PRELOAD on, so each is wrapped in a script)."""

    name = "postern"

    def __init__(self, root, build, params, master_cf, nofsync=None,
                 nofsync_wrap=("cleanup",)):
        super().__init__(root)
        self.build = build
        self.pid_file = os.path.join(self.data_dir, "master.pid")
        # Copies, so that someone's make during the run cannot pull a
        # binary away under us.
        self.daemon_dir = os.path.join(root, "libexec")
        self.bin_dir = os.path.join(root, "bin")
        copy_build(os.path.join(build, "libexec"), self.daemon_dir)
        copy_build(os.path.join(build, "bin"), self.bin_dir)
        if nofsync:
            for prog in nofsync_wrap:
                real = os.path.join(self.daemon_dir, prog + ".real")
                os.rename(os.path.join(self.daemon_dir, prog), real)
                self.write(f"libexec/{prog}",
                           "#!/bin/bash\n"
                           f"LD_PRELOAD={nofsync} exec -a {prog} {real} "
                           "\"$@\"\n")
                os.chmod(os.path.join(self.daemon_dir, prog), 0o755)
        base = {
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "daemon_directory": self.daemon_dir,
            "command_directory": self.bin_dir,
            "maillog_file": self.log_file,
            "mail_owner": "postern",
        }
        base.update(params)
        self.write_main_cf(base)
        self.write("etc/master.cf", master_cf(self.port))

    def start_cmd(self):
        return [os.path.join(self.bin_dir, "postern"), "-c", self.config_dir,
                "start"]

    def stop_cmd(self):
        return [os.path.join(self.bin_dir, "postern"), "-c", self.config_dir,
                "stop"]

    def start(self):
        # This start's line, not that of an earlier start (reconfigure).
        before = self.log_text().count("daemon started")
        pid = super().start()
        wait_for(lambda: self.log_text().count("daemon started") > before,
                 what="postern master start")
        return pid


class Postfix(Server):
    """A Postfix instance of Debian's programs with its own config,
    queue and data directories; params and master_cf as for Postern."""

    name = "postfix"

    def __init__(self, root, params, master_cf, nofsync=None):
        super().__init__(root)
        self.pid_file = os.path.join(self.queue_dir, "pid", "master.pid")
        pw = pwd.getpwnam("postfix")
        os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
        base = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "maillog_file": self.log_file,
            "maillog_file_prefixes": root,
            "syslog_name": "postfix-bench",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
        }
        base.update(params)
        if nofsync:
            base["import_environment"] = (
                "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C "
                f"POSTLOG_SERVICE POSTLOG_HOSTNAME LD_PRELOAD={nofsync}")
        self.write_main_cf(base)
        self.write("etc/master.cf", master_cf(self.port))

    def start_cmd(self):
        return ["/usr/sbin/postfix", "-c", self.config_dir, "start"]

    def stop_cmd(self):
        return ["/usr/sbin/postfix", "-c", self.config_dir, "stop"]


# --- CPU accounting ----------------------------------------------------------

def pids_cpu(pids):
    """CPU seconds used so far by the live processes pids (schedstat)."""
    total = 0.0
    for pid in pids:
        text = proc_read(pid, "schedstat")
        total += int(text.split()[0]) / 1e9 if text else 0.0
    return total


def instance_cpu(master):
    """CPU seconds used so far by an instance: master itself and its live
    children (precise, from schedstat, plus what those children reaped
    of their own children: the delivery processes a local agent forks)
    plus the children master has reaped (cutime + cstime).  A process
    alive at one reading and reaped at the next moves from one sum to
    another, so differences between two readings are right."""
    def reaped(fields):
        return (int(fields[13]) + int(fields[14])) / CLK_TCK

    fields = _stat_fields(master)
    if not fields:
        return 0.0
    total = pids_cpu((master,)) + reaped(fields)
    for kid in child_pids(master):
        kf = _stat_fields(kid)
        if kf:
            total += pids_cpu((kid,)) + reaped(kf)
    return total


def busy_cpu():
    """CPU seconds the whole machine has been busy (all CPUs)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def children_cpu():
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Meter:
    """The CPU an instance uses during a run, and how much of the machine
    the other processes kept busy meanwhile (all CPU time minus the
    instance's, that of the children this script reaped, such as
    smtp-source, and that of helpers: the pids of its children that run
    throughout, such as smtp-sink)."""

    def __init__(self, master, helpers=()):
        self.master = master
        self.helpers = helpers
        self.cpu0 = instance_cpu(master)
        self.busy0, self.kids0 = busy_cpu(), children_cpu()
        self.help0 = pids_cpu(helpers)
        self.t0 = time.monotonic()

    def stop(self):
        """(instance CPU seconds, CPUs the others used on average); the
        helpers' CPU seconds in self.helper_cpu."""
        secs = time.monotonic() - self.t0
        cpu = instance_cpu(self.master) - self.cpu0
        self.helper_cpu = pids_cpu(self.helpers) - self.help0
        others = (busy_cpu() - self.busy0) - cpu \
            - (children_cpu() - self.kids0) - self.helper_cpu
        return cpu, max(others, 0.0) / secs


# --- memory ------------------------------------------------------------------

def proc_kb(pid, name="status", fields=("VmRSS", "VmHWM", "RssAnon")):
    """{field: kB} from /proc/PID/NAME, a file of "Field: N kB" lines
    (status, smaps_rollup); {} when the process is gone."""
    out = {}
    for line in (proc_read(pid, name) or "").splitlines():
        key, _, value = line.partition(":")
        if key in fields:
            out[key] = int(value.split()[0])
    return out


def proc_smaps(pid):
    """{Rss, Pss, Private: kB} of a process from /proc/PID/smaps_rollup
    (Private: the pages no other process maps; {} when it is gone)."""
    out = proc_kb(pid, "smaps_rollup", ("Rss", "Pss", "Private_Clean",
                                        "Private_Dirty"))
    if out:
        out["Private"] = out.pop("Private_Clean", 0) + \
            out.pop("Private_Dirty", 0)
    return out


def proc_comm(pid):
    text = proc_read(pid, "comm")
    return text.strip() if text is not None else None


def instance_procs(server, comm):
    """The pids of the instance's processes named comm (or comm.real,
    a program that --no-fsync wraps)."""
    master = server.master_pid()
    if not master:
        return []
    return [p for p in descendant_pids(master)
            if proc_comm(p) in (comm, comm + ".real")]


# --- the machine -------------------------------------------------------------

def machine_notes(path=None):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    fs = "?"
    try:
        fs = " ".join(run(["df", "--output=fstype,source",
                           path or tempfile.gettempdir()],
                          check=False).stdout.split("\n")[1].split())
    except (IndexError, OSError):
        pass
    pf = run(["postconf", "-h", "-d", "mail_version"], check=False).stdout
    return (f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), "
            f"Linux {platform.release()}, temp dir on {fs}, "
            f"Postfix {pf.strip()}")


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_idle(limit, timeout):
    """Wait (up to timeout seconds) until the 1-minute load average is
    below limit: other work on the machine skews every number."""
    deadline = time.monotonic() + timeout
    while loadavg() > limit and time.monotonic() < deadline:
        time.sleep(5)
    return loadavg()


def now_stamp():
    return f"{datetime.datetime.now():%Y-%m-%d %H:%M}"


def check_root_and_tools(prog, build):
    if os.geteuid() != 0:
        sys.exit(f"{prog}: run as root (both servers start as root and "
                 "drop privileges)")
    if not os.access(SMTP_SOURCE, os.X_OK):
        sys.exit(f"{prog}: {SMTP_SOURCE} is missing "
                 "(apt-get install postfix)")
    if not os.path.exists(os.path.join(build, "libexec", "smtpd")):
        sys.exit(f"{prog}: no Postern build in {build} (make)")


# --- profiling ---------------------------------------------------------------

class PidPoller:
    """Collect the pids of an instance's processes while a run goes on
    (master's children come and go with max_use)."""

    def __init__(self, server, descendants=False):
        self.server = server
        self.descendants = descendants
        self.pids = set()
        self.parent = {}                # pid -> parent pid (descendants)
        self.comm = {}                  # pid -> its name, once seen
        self.stop_flag = False
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop_flag:
            m = self.server.master_pid()
            if m:
                self.pids.add(m)
                if self.descendants:
                    found = descendant_pids(m)
                    self.parent.update(found)
                    self.pids.update(found)
                else:
                    self.pids.update(child_pids(m))
                # Again while a new child has not yet run its exec.
                for p in [p for p in self.pids if p != m and
                          self.comm.get(p, "master") == "master"]:
                    self.comm[p] = proc_comm(p)     # None: gone, no retry
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag = True
        self.thread.join()


PERF_FREQ = 4000


def under(wrap, go):
    """Run go() while the profiler command prefix wrap runs: wrap starts
    a stand-in shell that says "ready" once the profiler has set up, and
    ends when go() is done, so that the profile covers all of go() (a
    delivery goes on after smtp-source has exited).  Returns go()'s
    result."""
    gate = subprocess.Popen(wrap + ["/bin/sh", "-c", "echo ready; read x"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    CHILDREN.append(gate)
    try:
        if gate.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{' '.join(wrap)} did not start")
        return go()
    finally:
        try:
            gate.stdin.write("\n")
            gate.stdin.close()
        except OSError:
            pass
        finish(gate, 300)
        CHILDREN.remove(gate)


def profile_perf(server, tag, count, outdir, go):
    """Where the instance's CPU goes during one run (go(None) sends count
    messages and returns (seconds, CPU ms per message)): a system-wide perf record with call chains (software
    cpu-clock event: no hardware counters needed), kept to the instance's
    own processes (master's descendants, from the poller and from perf's
    own fork events, so that short-lived grandchildren count too), summed
    by process, by user space (per binary or library) and by the system
    call the kernel was working for.  A process that forked without exec
    is shown as "NAME(fork)".  Returns (seconds, CPU ms per message from
    /proc, {process: ms}, {where: ms}) per message."""
    data = os.path.join(outdir, f"perf-{server.name}-{tag}.data")
    wrap = ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(PERF_FREQ),
            "-a", "-g", "-o", data, "--"]
    with PidPoller(server, descendants=True) as poller:
        secs, cpu = under(wrap, lambda: go(None))
    pids = set(poller.pids)
    forked = set()                      # pids that forked without exec
    script = subprocess.Popen(["perf", "script", "-i", data,
                               "--show-task-events", "-F",
                               "comm,pid,ip,sym,dso"],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              errors="replace")
    by_comm, by_where, by_leaf, by_comm_where = {}, {}, {}, {}
    head = None
    frames = []
    fork_re = re.compile(r"PERF_RECORD_FORK\((\d+):(\d+)\):\((\d+):(\d+)\)")
    comm_re = re.compile(r"PERF_RECORD_COMM(?: exec)?: .*:(\d+)/(\d+)")

    def flush():
        if head is None:
            return
        comm, pid = head
        if pid not in pids:
            return
        if pid in forked:
            comm += "(fork)"
        by_comm[comm] = by_comm.get(comm, 0) + 1
        if frames:
            leaf = f"{comm}: {frames[0][0]} ({os.path.basename(frames[0][1])})"
            by_leaf[leaf] = by_leaf.get(leaf, 0) + 1
        where = None
        if frames and "kernel" not in frames[0][1]:
            dso = os.path.basename(frames[0][1])
            where = f"user {dso}"
        else:
            for sym, _ in frames:
                m = re.match(r"__(?:x64|ia32)_sys_(\w+)", sym)
                if m:
                    where = f"sys {m.group(1)}"
                    break
            if where is None:
                syms = {f[0] for f in frames}
                if "asm_exc_page_fault" in syms:
                    where = "kernel page faults"
                elif "ret_from_fork" in syms or "ret_from_fork_asm" in syms:
                    where = "kernel fork/exec return"
                else:
                    where = "kernel other (irq, scheduling)"
        by_where[where] = by_where.get(where, 0) + 1
        key = (comm, where)
        by_comm_where[key] = by_comm_where.get(key, 0) + 1

    for line in script.stdout:
        if not line.strip():
            continue
        if "PERF_RECORD_" in line:
            flush()
            head = None
            m = fork_re.search(line)
            # A new process (not a thread) of one of ours is ours too.
            if m and m.group(1) != m.group(3) and int(m.group(3)) in pids:
                pids.add(int(m.group(1)))
                forked.add(int(m.group(1)))
            m = comm_re.search(line)
            if m:
                forked.discard(int(m.group(1)))     # it ran exec
            continue
        if line[0] not in " \t":
            flush()
            m = re.match(r"(.*?)\s+(\d+)\s*$", line)
            head = (m.group(1).strip(), int(m.group(2))) if m else None
            frames = []
        else:
            m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
            if m:
                frames.append((re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)),
                               m.group(2)))
    flush()
    script.wait()
    to_ms = 1000.0 / PERF_FREQ / count
    with open(os.path.join(outdir, f"perf-{server.name}-{tag}-leaf.txt"),
              "w") as f:
        f.write(f"# {server.name} {tag}: CPU ms per message by the "
                f"function that was running (pids {sorted(pids)})\n")
        for k, v in sorted(by_leaf.items(), key=lambda kv: -kv[1])[:200]:
            f.write(f"{v * to_ms:8.4f}  {k}\n")
    with open(os.path.join(outdir, f"perf-{server.name}-{tag}-where.txt"),
              "w") as f:
        f.write(f"# {server.name} {tag}: CPU ms per message by process "
                "and by where (system call, user-space object)\n")
        for (c, w), v in sorted(by_comm_where.items(),
                                key=lambda kv: (kv[0][0], -kv[1])):
            f.write(f"{v * to_ms:8.4f}  {c:16} {w}\n")
    return (secs, cpu,
            {k: v * to_ms for k, v in by_comm.items()},
            {k: v * to_ms for k, v in by_where.items()})


def profile_fsync(server, tag, count, outdir, go):
    """Latency of each fsync the instance makes during one run, from
    perf trace (cheap: only fsync and fdatasync are traced).  Returns
    (seconds, total calls, {position: [ms, ...]}, {process: [ms, ...]})
    where position is the call's place among a process's calls for one
    message (0: first, 1: second) and a process is named as perf names
    it, plus "(fork)" for a child that did not exec."""
    out = os.path.join(outdir, f"fsync-{server.name}-{tag}.txt")
    # clone too: delivery processes that a local agent forks live for a
    # few milliseconds, too short for the poller.
    wrap = ["perf", "trace", "-a", "-e", "fsync,fdatasync,clone,clone3",
            "-o", out, "--"]
    with PidPoller(server, descendants=True) as poller:
        secs, _ = under(wrap, lambda: go(None))
    pids = set(poller.pids)
    master = server.master_pid()
    # "T ( D ms): comm/pid fsync(fd: N) = 0", or, when calls overlap, a
    # start line without D and a "comm/pid  ... [continued]: fsync())
    # = 0" line with it.  Clone lines name the child; they may come
    # after the child's own calls (per-CPU buffers), so first collect
    # who forked whom.
    line_re = re.compile(r"\(\s*([\d.]+) ms\): (.*?)/(\d+)\s+"
                         r"(?:\.\.\. \[continued\]: )?(fsync|fdatasync)\(")
    clone_re = re.compile(r"/(\d+)\s+(?:\.\.\. \[continued\]: )?"
                          r"clone3?\(.*=\s+(\d+)")
    kids = {}
    with open(out, errors="replace") as f:
        for line in f:
            m = clone_re.search(line)
            if m and int(m.group(2)) > 0:
                kids.setdefault(int(m.group(1)), []).append(int(m.group(2)))
    # Forked by something other than master: a delivery process.
    forked = {p for p, pp in poller.parent.items() if pp != master}
    parent_of = dict(poller.parent)
    for p, ks in kids.items():
        for k in ks:
            parent_of.setdefault(k, p)
    stack = list(pids)
    while stack:
        p = stack.pop()
        for k in kids.get(p, ()):
            if k not in pids:
                pids.add(k)
                stack.append(k)
                if p != master:
                    forked.add(k)
    per_pid = {}
    comm_of = {}
    with open(out, errors="replace") as f:
        for line in f:
            m = line_re.search(line)
            if not m or float(m.group(1)) >= 60000:
                continue
            pid, comm = int(m.group(3)), m.group(2).strip()
            if pid in pids:
                per_pid.setdefault(pid, []).append(float(m.group(1)))
                # perf trace keeps the name a process had when first
                # seen: "master" for a service master has just started.
                comm = poller.comm.get(pid) or comm
                if comm.startswith(":"):        # perf trace did not know it
                    comm = poller.comm.get(parent_of.get(pid)) or "?"
                comm_of[pid] = comm + ("(fork)" if pid in forked else "")
    total = sum(len(v) for v in per_pid.values())
    per_msg = max(1, round(total / count))
    by_pos = {"all": [ms for v in per_pid.values() for ms in v]}
    by_comm = {}
    for pid, calls in per_pid.items():
        by_comm.setdefault(comm_of[pid], []).extend(calls)
    if per_msg > 1:
        # The n-th call of each message, from the processes whose calls
        # all came through (a lost event would shift the positions).
        for calls in per_pid.values():
            if len(calls) % per_msg == 0:
                for i, ms in enumerate(calls):
                    by_pos.setdefault(i % per_msg, []).append(ms)
    return secs, total, by_pos, by_comm


def strace_instance(server, count, outdir, go, warm=0, tag=""):
    """Run a fresh instance of server entirely under strace -f (every
    syscall of master and all its descendants, one file per process),
    send count messages (go(count) -> (seconds, CPU ms per message)), and
    summarise the syscalls made during the run only.  Returns (seconds,
    {syscall: calls}, {what: (calls, seconds)} for fsync and rename
    with what was synced (a file or a directory, from strace -y),
    {trace files of processes active during the run}, {program:
    {syscall: calls}}).  A program is the basename of the process's last
    exec, or its parent's program + "(fork)" when it did not exec.
    warm: messages to send first, untimed and not counted, so that the
    fresh instance has its processes running; tag: a suffix for the
    directory of trace files in outdir."""
    server.stop()
    prefix = os.path.join(outdir, f"strace-{server.name}{tag}", "trace")
    shutil.rmtree(os.path.dirname(prefix), ignore_errors=True)
    os.makedirs(os.path.dirname(prefix))
    tr = subprocess.Popen(["strace", "-f", "-ff", "-ttt", "-T", "-y",
                           "-o", prefix] + server.start_cmd(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    CHILDREN.append(tr)
    server.started = True
    wait_for(server.master_pid, timeout=60, what=f"{server.name} under strace")
    wait_for(lambda: port_listening(server.port), timeout=60,
             what=f"{server.name} listening under strace")
    if hasattr(server, "after_start"):
        server.after_start()
    if warm:
        go(warm)
    time.sleep(1)
    t0 = time.time()
    secs, _ = go(count)
    t1 = time.time()
    server.stop()
    finish(tr, 60)
    CHILDREN.remove(tr)
    calls = {}
    lat = {}
    procs = set()
    by_prog = {}
    line_re = re.compile(r"(\d+\.\d+) (\w+)\((.*)\) += (-?\w+).*<([\d.]+)>$")
    exec_re = re.compile(r"\d+\.\d+ execve\(\"([^\"]*)\".*\) = 0")
    clone_re = re.compile(r"\d+\.\d+ (?:clone3?|fork|vfork)\(.*\) = (\d+)")
    tdir = os.path.dirname(prefix)
    parent, prog = {}, {}
    for name in os.listdir(tdir):
        pid = int(name.rsplit(".", 1)[1])
        with open(os.path.join(tdir, name), errors="replace") as f:
            for line in f:
                m = exec_re.match(line)
                if m:
                    prog[pid] = os.path.basename(m.group(1))
                m = clone_re.match(line)
                if m:
                    parent[int(m.group(1))] = pid

    def program(pid, depth=0):
        if pid in prog:
            return prog[pid]
        if pid in parent and depth < 20:
            p = program(parent[pid], depth + 1)
            return p if p.endswith("(fork)") else p + "(fork)"
        return "?"

    for name in os.listdir(tdir):
        pid = int(name.rsplit(".", 1)[1])
        label = program(pid)
        with open(os.path.join(tdir, name), errors="replace") as f:
            for line in f:
                m = line_re.match(line)
                if not m or not t0 <= float(m.group(1)) <= t1:
                    continue
                call = m.group(2)
                calls[call] = calls.get(call, 0) + 1
                pc = by_prog.setdefault(label, {})
                pc[call] = pc.get(call, 0) + 1
                procs.add(name)
                if call in ("fsync", "fdatasync"):
                    target = re.search(r"<([^>]*)>", m.group(3))
                    path = target.group(1) if target else "?"
                    if os.path.isdir(path):
                        key = f"{call} dir {os.path.basename(path)}/"
                    else:
                        parent_dir = os.path.basename(os.path.dirname(path))
                        key = f"{call} file in {parent_dir}/"
                elif call in ("rename", "renameat", "renameat2"):
                    key = call
                else:
                    continue
                for k in (key, f"{label}: {key}"):
                    n, total = lat.get(k, (0, 0.0))
                    lat[k] = (n + 1, total + float(m.group(5)))
    return secs, calls, lat, procs, by_prog


def print_perf(secs, cpu, by_comm, by_where, count, unit="message"):
    rate = "msg/s" if unit == "message" else f"{unit}s/s"
    print(f"perf record: {count / secs:.0f} {rate} under perf "
          f"({secs * 1000 / count:.2f} ms wall per {unit}); "
          f"instance CPU {cpu:.3f} ms per {unit} (/proc), "
          f"{sum(by_comm.values()):.3f} ms (perf samples)")
    print(f"  CPU ms per {unit} by process: " + ", ".join(
        f"{c} {v:.3f}" for c, v in
        sorted(by_comm.items(), key=lambda kv: -kv[1])[:10]))
    user = sum(v for k, v in by_where.items() if k.startswith("user"))
    kern = sum(by_where.values()) - user
    print(f"  user space {user:.3f} ms, kernel {kern:.3f} ms; top items:")
    for k, v in sorted(by_where.items(), key=lambda kv: -kv[1])[:16]:
        print(f"    {k:34} {v:6.3f} ms")


def _lat(v):
    return (f"median {statistics.median(v):.3f} ms, mean "
            f"{statistics.mean(v):.3f} ms, "
            f"90% {sorted(v)[int(len(v) * 0.9)]:.3f} ms")


def print_fsync(secs, total, by_pos, count, by_comm=None):
    """The profile_fsync() summary: by position within each message
    (smtp-accept), or by_comm: by process."""
    print(f"perf trace: {total / count:.2f} fsync per message "
          f"({count / secs:.0f} msg/s under perf trace)")
    if by_comm:
        for comm, v in sorted(by_comm.items(), key=lambda kv: -len(kv[1])):
            print(f"  {comm:16} {len(v) / count:5.2f} per message: "
                  + _lat(v))
        print(f"  {'all':16} {total / count:5.2f} per message: "
              + _lat(by_pos["all"]))
        return
    for pos in sorted(by_pos, key=str):
        v = by_pos[pos]
        what = "" if pos == "all" else f" #{pos + 1} of each message"
        print(f"  fsync{what}: " + _lat(v))


def print_strace(secs, calls, lat, procs, n, by_prog=None):
    total = sum(calls.values())
    print(f"strace -f ({n} messages, {n / secs:.0f} msg/s under "
          f"strace): {total / n:.0f} syscalls per message in "
          f"{len(procs)} processes")
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:16]
    print("  per message: " + ", ".join(
        f"{c} {k / n:.1f}" for c, k in top))
    for c in ("clone", "clone3", "fork", "execve"):
        if c in calls:
            print(f"  {c}: {calls[c]} during the run")
    for key in sorted(k for k in lat if ": " not in k):
        k, t = lat[key]
        print(f"  {key:28} {k / n:5.2f} per message, mean "
              f"{t / k * 1000:.3f} ms (under strace)")
    if by_prog:
        print("  by program (syscalls per message; the busiest calls):")
        for label, pc in sorted(by_prog.items(),
                                key=lambda kv: -sum(kv[1].values())):
            tot = sum(pc.values())
            if tot / n < 0.05:
                continue
            top = sorted(pc.items(), key=lambda kv: -kv[1])[:8]
            print(f"    {label:16} {tot / n:6.1f}: " + ", ".join(
                f"{c} {k / n:.2f}" for c, k in top))
        for key in sorted(k for k in lat if ": " in k):
            k, t = lat[key]
            print(f"    {key:44} {k / n:5.2f} per message, mean "
                  f"{t / k * 1000:.3f} ms")


# --- syscall counts ----------------------------------------------------------

COUNT_EVENTS = ("fsync", "fdatasync", "clone", "clone3", "fork", "vfork",
                "execve")


class SyscallCount:
    """Count syscalls of an instance while a run goes on: a `perf stat`
    of the syscall tracepoints attached to each of master's live
    descendants (and one to master), counting in the kernel, so nearly
    free.  perf's counters are inherited: a process's count includes
    the processes it forks during the run (a delivery agent's children;
    for master, every service process it starts during the run).

        with SyscallCount(server) as sc:
            ... one run ...
        sc.total   {event: calls}: "all" for every syscall, and each of
                   COUNT_EVENTS
        sc.by_comm {process name: {event: calls}}
    """

    def __init__(self, server, events=COUNT_EVENTS):
        self.server = server
        self.events = ["raw_syscalls:sys_enter"] + \
            [f"syscalls:sys_enter_{e}" for e in events]
        self.names = ["all"] + list(events)
        self.procs = []                 # (pid, comm, perf process, out file)
        self.dir = tempfile.mkdtemp(prefix="syscount-")
        self.total, self.by_comm = {}, {}

    def __enter__(self):
        master = self.server.master_pid()
        pids = [master] + sorted(descendant_pids(master))
        for pid in pids:
            comm = "master" if pid == master else proc_comm(pid)
            if comm is None:
                continue
            out = os.path.join(self.dir, f"{pid}.csv")
            perf = subprocess.Popen(
                ["perf", "stat", "-x", ",", "-o", out,
                 "-e", ",".join(self.events), "-p", str(pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            CHILDREN.append(perf)
            self.procs.append((pid, comm.removesuffix(".real"), perf, out))

        def attached():
            n = 0
            for _, _, perf, _ in self.procs:
                try:
                    n += sum(1 for fd in os.listdir(f"/proc/{perf.pid}/fd")
                             if os.readlink(f"/proc/{perf.pid}/fd/{fd}")
                             == "anon_inode:[perf_event]")
                except OSError:
                    pass
            return n >= len(self.procs) * len(self.events)
        wait_for(attached, timeout=30, what="perf stat attached")
        return self

    def __exit__(self, *exc):
        for _, _, perf, _ in self.procs:
            if perf.poll() is None:
                perf.send_signal(signal.SIGINT)
        for pid, comm, perf, out in self.procs:
            finish(perf, 30)
            CHILDREN.remove(perf)
            counts = self.by_comm.setdefault(comm, {})
            try:
                with open(out) as f:
                    for line in f:
                        fields = line.strip().split(",")
                        if len(fields) < 3 or fields[2] not in self.events:
                            continue
                        name = self.names[self.events.index(fields[2])]
                        n = int(fields[0]) if fields[0].isdigit() else 0
                        counts[name] = counts.get(name, 0) + n
                        self.total[name] = self.total.get(name, 0) + n
            except FileNotFoundError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def per(self, event, count):
        return self.total.get(event, 0) / count

    def forks(self):
        return sum(self.total.get(e, 0)
                   for e in ("clone", "clone3", "fork", "vfork"))


# --- tables ------------------------------------------------------------------

def print_grid(names, rows, columns, each):
    """A table of medians: one line per (label, key) of rows; for each
    column (title, {(server name, key): [values]}, width, cell(value) ->
    str, ratio) the median of each server, and with two servers the
    ratio of the first to the second where ratio is true; last, the
    values of each run of the first column ("each" of each run)."""
    med = statistics.median
    two = len(names) == 2
    lw = max([9] + [len(label) + 1 for label, _ in rows])
    head = " " * lw
    for title, _, width, _, ratio in columns:
        head += "".join(f"{n[:7] + ' ' + title:>{width}}" for n in names)
        if two and ratio:
            head += f"{'ratio':>7}"
    print(head + f"   {each} of each run")
    for label, key in rows:
        line = f"{label:<{lw}}"
        for _, data, width, cell, ratio in columns:
            vals = [med(data[(n, key)]) for n in names]
            line += "".join(f"{cell(v):>{width}}" for v in vals)
            if two and ratio:
                line += f"{vals[0] / vals[1]:7.2f}" if vals[1] else " " * 7
        data = columns[0][1]
        line += "   " + " | ".join(
            " ".join(f"{v:.0f}" for v in data[(n, key)]) for n in names)
        print(line)


def load_before(prog):
    """The load average now, with a warning when it is high."""
    load0 = loadavg()
    if load0 > (os.cpu_count() or 1) / 2:
        log(f"{prog}: warning: load average {load0:.1f}: other work on "
            "this machine will skew the numbers")
    return load0


def print_machine(load0, others, path=None):
    print(machine_notes(path))
    print(f"load average {load0:.1f} before; during the runs other "
          f"processes kept {statistics.median(others):.2f} of "
          f"{os.cpu_count() or 1} CPUs busy (median; max "
          f"{max(others):.2f})")


# --- profiling, the common part of the scripts ---------------------------------

def profile_one(server, label, count, outdir, go, strace_messages,
                by_comm=False, **strace_kw):
    """perf record, perf trace of fsync and strace -f of one server
    (each what is installed), printing the summaries; label names the
    output files.  go(wrap, n=count)
    sends n messages and returns (seconds, CPU ms per message).  The
    strace run starts a fresh instance and leaves it stopped."""
    if shutil.which("perf"):
        secs, cpu, comm, where = profile_perf(server, label, count, outdir,
                                              lambda wrap: go(wrap))
        print_perf(secs, cpu, comm, where, count)
        secs, total, by_pos, comm = profile_fsync(
            server, label, count, outdir, lambda wrap: go(wrap))
        print_fsync(secs, total, by_pos, count, comm if by_comm else None)
    if shutil.which("strace") and strace_messages > 0:
        n = min(count, strace_messages)
        secs, calls, lat, procs, by_prog = strace_instance(
            server, n, outdir, lambda n: go(None, n), **strace_kw)
        print_strace(secs, calls, lat, procs, n,
                     by_prog if by_comm else None)
    sys.stdout.flush()


def profile_dir(prog, args):
    outdir = args.profile_dir or tempfile.mkdtemp(prefix=f"{prog}-prof-")
    os.makedirs(outdir, exist_ok=True)
    return outdir


def prune_profile_dir(outdir, args):
    """Without --profile-dir keep the text summaries only, not the
    bulky raw data (perf data, strace files: tens of MB)."""
    if not args.profile_dir:
        for name in os.listdir(outdir):
            path = os.path.join(outdir, name)
            if name.endswith(".data") or name.startswith("strace-"):
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
        print(f"\nsummaries kept in {outdir} (--profile-dir DIR keeps the "
              "raw perf and strace data too)")
    sys.stdout.flush()


# --- command line and main ---------------------------------------------------

def add_instance_args(ap):
    """The options of every script: which servers, the build, a quiet
    machine, keeping the directories."""
    ap.add_argument("--only", choices=("postern", "postfix"),
                    help="benchmark one server only")
    ap.add_argument("--wait-idle", type=float, metavar="LOAD",
                    help="first wait (up to 10 minutes) until the load "
                    "average is below LOAD")
    ap.add_argument("--build", default=os.environ.get(
        "POSTERN_BUILD", os.path.join(ROOT, "build")),
                    help="Postern build directory (default $POSTERN_BUILD "
                    "or build/)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the instances' directories (logs) on exit")


def add_source_args(ap, messages, messages_s1, concurrency, quick, long,
                    profile_sessions, profile_messages, strace_messages):
    """The options of the scripts that send mail with smtp-source
    (smtp-accept, smtp-deliver), with their own defaults; quick and long
    are (runs, messages, messages at -s 1)."""
    ap.add_argument("--runs", type=int, default=3,
                    help="runs per server and concurrency (default 3)")
    ap.add_argument("--messages", type=int, default=messages,
                    help="messages per run at -s 2 and more (default "
                    f"{messages})")
    ap.add_argument("--messages-s1", type=int, default=messages_s1,
                    help=f"messages per run at -s 1 (default {messages_s1})")
    ap.add_argument("--size", type=int, default=2048,
                    help="message body bytes (smtp-source -l; default 2048)")
    ap.add_argument("-s", "--concurrency", default=concurrency,
                    help="comma-separated session counts (default "
                    f"{concurrency})")
    ap.add_argument("--keepalive", action="store_true",
                    help="send all of a session's messages over one "
                    "connection (smtp-source -d); default: one connection "
                    "per message")
    ap.add_argument("--quick", action="store_true",
                    help=f"{quick[0]} run, {quick[1]} messages ({quick[2]} "
                    "at -s 1): a smoke test")
    ap.add_argument("--long", action="store_true",
                    help=f"{long[0]} runs, {long[1]} messages ({long[2]} "
                    "at -s 1)")
    ap.add_argument("--profile", action="store_true",
                    help="after the benchmark, profile one run per server "
                    "and concurrency (perf record, perf trace of fsync, "
                    "strace -f)")
    ap.add_argument("--profile-only", action="store_true",
                    help="profile without the benchmark")
    ap.add_argument("--profile-sessions", default=profile_sessions,
                    help="concurrencies to profile (default "
                    f"{profile_sessions})")
    ap.add_argument("--profile-messages", type=int, default=profile_messages,
                    help="messages per profiled run (default "
                    f"{profile_messages})")
    ap.add_argument("--strace-messages", type=int, default=strace_messages,
                    help="messages per run under strace (default "
                    f"{strace_messages})")
    ap.add_argument("--profile-dir",
                    help="keep all perf/strace output here (default: only "
                    "the text summaries, in a temp dir that is kept)")
    ap.add_argument("--no-fsync", action="store_true",
                    help="analysis only, NOT durable: both servers' fsync "
                    "calls do nothing (a preloaded library), to show how "
                    "much of the time the syncs take")
    add_instance_args(ap)

    def parse():
        args = ap.parse_args()
        if args.quick:
            args.runs, args.messages, args.messages_s1 = quick
        if args.long:
            args.runs, args.messages, args.messages_s1 = long
        args.concurrency = [int(c) for c in args.concurrency.split(",")
                            if c]
        args.profile_sessions = [int(c) for c in
                                 args.profile_sessions.split(",") if c]
        return args
    return parse


def bench_main(prog, args, make_servers, body):
    """What each script's main() does around its work: checks (root,
    smtp-source, a build), a temporary directory, the servers that
    make_servers(top, nofsync) makes, started; with --wait-idle a quiet
    machine; then body(servers).  On the way out, also on Ctrl-C,
    SIGTERM or a failure (RuntimeError, OSError), the servers are stopped with
    their own commands and what the script started is killed by pid; the
    directory is removed unless --keep or a failure.  The exit status."""
    check_root_and_tools(prog, args.build)
    top = tempfile.mkdtemp(prefix=f"{prog}-")
    os.chmod(top, 0o755)                # the servers' users look inside
    servers = []

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    rc = 0
    try:
        nofsync = None
        if getattr(args, "no_fsync", False):
            nofsync = build_nofsync(top)
            log(f"{prog}: --no-fsync: NOT DURABLE, for analysis only")
        servers.extend(make_servers(top, nofsync))
        for s in servers:
            s.start()
            log(f"{s.name}: listening on 127.0.0.1:{s.port} ({s.root})")
        if args.wait_idle:
            load = wait_idle(args.wait_idle, 600)
            log(f"load average {load:.1f}")
        body(servers)
    except KeyboardInterrupt:
        log(f"{prog}: interrupted")
        rc = 130
    except (RuntimeError, OSError) as e:
        log(f"{prog}: FAILED: {type(e).__name__}: {e}")
        rc = 1
    finally:
        # Clean up even when a second Ctrl-C comes.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kill_children()
        for s in servers:
            s.stop()
        if args.keep or rc == 1:
            log(f"{prog}: kept {top}")
        else:
            shutil.rmtree(top, ignore_errors=True)
    return rc
