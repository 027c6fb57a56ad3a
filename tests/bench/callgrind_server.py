"""routeguide-server under callgrind, and the load client that drives it,
for instructions.py.

One server process serves every workload: callgrind's counters are zeroed
(`callgrind_control -z`) and dumped (`-d`, which also zeroes) around each
measured client run, so start-up and shutdown never count and the
server's state (its heap, gRPC's pools) carries over as it would in
production. Between runs the server is left to go idle (its CPU time stops
moving) so that one run's tail (closing the connection, freeing calls)
lands in that run and not the next.

The server and the client share one CPU. Valgrind runs one of the
server's threads at a time, but on two CPUs which of them runs next, and
how the client's bytes arrive, depend on timing, and so does how often
gRPC's poller and the HTTP/2 guard's thread wake for the same bytes: with
other work on the machine GetFeature's count spread 1.4-2.9% and
RecordRoute's 1.9%. With the server alone on a CPU, RecordRoute's still
spread 1.1% (the guard's wake-ups follow the client's writes); with the
client on the same CPU, 0.1%.

Every process here is started in a session of its own (a Ctrl-C on the
terminal reaches only the script, which then ends them by PID).
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import time


class CannotRun(Exception):
    """The measurement cannot be made (exit code 2)."""


def quiet_environment():
    """The environment for the server and the client, less what changes
    how much work they do: meson test sets MALLOC_PERTURB_, which has glibc
    fill every allocation (GetFeature costs half as much again), and gRPC
    reads GRPC_* (tracing, experiments)."""
    return {name: value for name, value in os.environ.items()
            if not name.startswith(("MALLOC_", "GRPC_"))
            and name not in ("GLIBC_TUNABLES", "LD_PRELOAD")}


def process_cpu_ticks(pid):
    """utime + stime of process `pid` (all its threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def kill_and_reap(process):
    """SIGKILL `process` (a Popen) by its PID if it still runs, and reap it."""
    if process.poll() is None:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def require_tools():
    for tool, package in (("valgrind", "valgrind"),
                          ("callgrind_control", "valgrind"), ("nm", "binutils")):
        if shutil.which(tool) is None:
            raise CannotRun(f"{tool} not found (apt-get install {package})")


def valgrind_version():
    out = subprocess.run(["valgrind", "--version"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=30)
    return out.stdout.strip()


class CallgrindServer:
    """routeguide-server under `valgrind --tool=callgrind` on 127.0.0.1:0.

    Use as a context manager: leaving it kills the server by its PID."""

    def __init__(self, binary, flags, workdir, start_timeout=90):
        require_tools()
        self.workdir = workdir
        self.vgdb_prefix = os.path.join(workdir, "vgdb")
        self.out_prefix = os.path.join(workdir, "callgrind.out")
        self.log_path = os.path.join(workdir, "server.log")
        command = ["valgrind", "--tool=callgrind",
                   f"--callgrind-out-file={self.out_prefix}.%p",
                   f"--vgdb-prefix={self.vgdb_prefix}",
                   # Mangled names match `nm`, which says which functions
                   # are generated code (instructions.py).
                   "--demangle=no",
                   binary, "--address=127.0.0.1:0", *flags]
        self.command = command
        # The last CPU this script may use (bench.py puts its servers on
        # the first); run_client puts the client there too.
        self.cpu = max(os.sched_getaffinity(0))
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=quiet_environment(),
            start_new_session=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {self.cpu}))
        self.port = None
        try:
            self._wait_for_port(start_timeout)
        except BaseException:
            self.close()
            raise

    def _wait_for_port(self, timeout):
        """Waits for the log line that names the port the server serves on."""
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"listening on .* \(port (\d+)\)")
        while time.monotonic() < deadline:
            with open(self.log_path, errors="replace") as f:
                found = pattern.search(f.read())
            if found:
                self.port = int(found.group(1))
                return
            if self.process.poll() is not None:
                raise CannotRun("the server exited while starting "
                                f"(code {self.process.returncode}):\n"
                                + self.log_tail())
            time.sleep(0.05)
        raise CannotRun(f"the server did not log its port within {timeout} s:\n"
                        + self.log_tail())

    def mapped_objects(self):
        """(start, end, path) of the files mapped executable in the server,
        to name the object of code callgrind could not (PLT stubs)."""
        out = []
        with open(f"/proc/{self.process.pid}/maps") as f:
            for line in f:
                words = line.split()
                if len(words) >= 6 and "x" in words[1]:
                    start, end = (int(x, 16) for x in words[0].split("-"))
                    out.append((start, end, words[5]))
        return out

    def log_tail(self, chars=3000):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-chars:]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        kill_and_reap(self.process)
        self._log.close()

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    def _control(self, option):
        self.check_running()
        control(self.process.pid, self.vgdb_prefix, option)

    def check_running(self):
        if self.process.poll() is not None:
            raise CannotRun(f"the server exited (code {self.process.returncode}):\n"
                            + self.log_tail())

    def wait_idle(self, quiet=0.3, timeout=60):
        """Waits until the server's CPU time has not moved for `quiet` s:
        idle, it uses none at all (its timers cost a few thousand
        instructions a second, far below a clock tick)."""
        deadline = time.monotonic() + timeout
        last = process_cpu_ticks(self.process.pid)
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            self.check_running()
            now = process_cpu_ticks(self.process.pid)
            if now != last:
                last, still_since = now, time.monotonic()
            elif time.monotonic() - still_since >= quiet:
                return
        raise CannotRun(f"the server did not go idle within {timeout} s")

    def zero(self):
        self.wait_idle()
        self._control("--zero")

    def dump(self, timeout=60):
        """Dumps the counters since the last zero or dump (and zeroes them);
        returns the new file's path."""
        self.wait_idle()
        before = set(glob.glob(self.out_prefix + ".*.*"))
        self._control("--dump")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = sorted(set(glob.glob(self.out_prefix + ".*.*")) - before)
            if new and dump_complete(new[0]):
                return new[0]
            time.sleep(0.05)
        raise CannotRun(f"callgrind wrote no dump within {timeout} s")


def control(pid, vgdb_prefix, option):
    """`callgrind_control OPTION` (--zero, --dump) to the valgrind process
    `pid` started with `--vgdb-prefix=vgdb_prefix`."""
    try:
        result = subprocess.run(
            ["callgrind_control", f"--vgdb-prefix={vgdb_prefix}", option,
             str(pid)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL, timeout=60, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise CannotRun(f"callgrind_control {option} did not answer in 60 s")
    if result.returncode != 0 or "OK" not in result.stdout:
        raise CannotRun(f"callgrind_control {option} failed:\n{result.stdout}")


def dump_complete(path):
    """Whether a dump has been written whole: its last line is `totals:`."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 200))
            return b"\ntotals:" in f.read()
    except OSError:
        return False


def run_client(client, target, flags, json_path, cpu, timeout=600):
    """One `routeguide-client load` run on CPU `cpu`; returns its JSON
    report. Every call must succeed with the right answer."""
    command = [client, "load", f"--target={target}", f"--json={json_path}",
               "--duration=0s", *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL, env=quiet_environment(),
                               start_new_session=True,
                               preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CannotRun(f"the load client took over {timeout} s: "
                        + " ".join(command))
    finally:
        kill_and_reap(process)
    if process.returncode != 0 or not os.path.exists(json_path):
        raise CannotRun(f"the load client failed (code {process.returncode}): "
                        f"{' '.join(command)}\n{output[-3000:]}")
    with open(json_path) as f:
        report = json.load(f)
    total = report["total"]
    if total["failed"] or total["wrong_answer"]:
        raise CannotRun(f"{' '.join(command)}: {total['failed']} calls failed, "
                        f"{total['wrong_answer']} wrong answers")
    return report
