"""The processes a hardening case starts and watches: any child (Child),
routeguide-server (Server) with its file descriptors, limits, status line
and memory from /proc, an RSS sampler thread (RssSampler), and the honest
routeguide-client load that runs beside an attack (Load).
"""

import json
import os
import re
import resource
import signal
import subprocess
import threading
import time

from hardening_common import (HOST, PORT_LINE, WAIT_SECONDS, CheckFailed,
                              check, log, mib, wait_until)

# After SIGKILL, how long reaping may take.
REAP_SECONDS = 10
# What SIGUSR1 makes the server log.
STATUS_LINE = re.compile(
    r"status: (\d+) calls in flight, (\d+) call objects, (\d+) accepted"
    r".*?, heap in use (\d+) KiB")


class Child:
    """A child process whose stdout and stderr go to files."""

    def __init__(self, name, argv, log_dir, nofile=None):
        self.name = name
        self.stdout_path = os.path.join(log_dir, name + ".stdout")
        self.stderr_path = os.path.join(log_dir, name + ".stderr")
        # The limit is set in the child between fork and exec, so only it
        # has it (and it may raise the soft limit up to this hard limit).
        limit = None
        if nofile is not None:
            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, nofile)
        log("$ %s%s" % (" ".join(argv),
                        "  (RLIMIT_NOFILE soft %d hard %d)" % nofile
                        if nofile else ""))
        with open(self.stdout_path, "wb") as out, \
                open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                preexec_fn=limit)
        self.pid = self.process.pid

    def text(self, stream="stderr"):
        path = self.stdout_path if stream == "stdout" else self.stderr_path
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()

    @property
    def alive(self):
        return self.process.poll() is None

    def wait_for_line(self, pattern, timeout=WAIT_SECONDS, stream="stderr"):
        """The first match of `pattern` in the child's output; fails if the
        child exits first or it does not come within `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            match = pattern.search(self.text(stream))
            if match:
                return match
            check(self.alive, "%s (pid %d) exited with %s before it logged "
                  "/%s/" % (self.name, self.pid, self.process.returncode,
                            pattern.pattern))
            check(time.monotonic() < deadline,
                  "%s (pid %d) did not log /%s/ within %.1f s"
                  % (self.name, self.pid, pattern.pattern, timeout))
            time.sleep(0.02)

    def exit_code(self, timeout):
        """The exit code, or None if still running after `timeout` s."""
        try:
            return self.process.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return None

    def signal(self, number):
        log("sending %s to %s (pid %d)"
            % (signal.Signals(number).name, self.name, self.pid))
        os.kill(self.pid, number)

    def kill(self):
        """Makes sure the child is gone and reaped."""
        if self.alive:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=REAP_SECONDS)
            except subprocess.TimeoutExpired:
                log("warning: %s (pid %d) not reaped" % (self.name, self.pid))

    def dump_logs(self, lines=60):
        for stream in ("stdout", "stderr"):
            text = self.text(stream).rstrip("\n").split("\n")
            if text != [""]:
                log("---- %s.%s (last %d lines) ----\n%s"
                    % (self.name, stream, min(lines, len(text)),
                       "\n".join(text[-lines:])))


class Server(Child):
    """routeguide-server."""

    port = None

    def wait_serving(self, timeout=WAIT_SECONDS):
        self.port = int(self.wait_for_line(PORT_LINE, timeout).group(1))
        log("%s (pid %d) serves on %s:%d" % (self.name, self.pid, HOST,
                                              self.port))
        return self

    def memory(self):
        """{"VmRSS": bytes, "VmHWM": bytes} from /proc/PID/status."""
        return proc_memory(self.pid)

    def reset_peak(self):
        """Restarts VmHWM from the current RSS (clear_refs "5", Linux 4.0),
        so that VmHWM read later is the peak since now, between samples
        too. False where /proc refuses."""
        try:
            with open("/proc/%d/clear_refs" % self.pid, "w") as f:
                f.write("5")
            return True
        except OSError as error:
            log("cannot reset VmHWM of pid %d (%s): the peak is sampled "
                "only" % (self.pid, error))
            return False

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def nofile_limits(self):
        """(soft, hard) RLIMIT_NOFILE as the process has it now."""
        with open("/proc/%d/limits" % self.pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    soft, hard = line.split()[3:5]
                    return int(soft), int(hard)
        raise CheckFailed("no 'Max open files' in /proc/%d/limits" % self.pid)

    def status(self):
        """SIGUSR1's status line as {"in_flight", "objects", "accepted",
        "heap_in_use"} (bytes the server holds from its allocator).

        The server hands freed memory back (malloc_trim) before it logs the
        line, so VmRSS read afterwards is memory in use, not what glibc
        keeps cached after a burst."""
        seen = len(STATUS_LINE.findall(self.text()))
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            lines = STATUS_LINE.findall(self.text())
            if len(lines) > seen:
                in_flight, objects, accepted, in_use_kib = map(int,
                                                               lines[-1])
                return {"in_flight": in_flight, "objects": objects,
                        "accepted": accepted,
                        "heap_in_use": in_use_kib * 1024}
            check(self.alive, "%s exited with %s (status line asked)"
                  % (self.name, self.process.returncode))
            check(time.monotonic() < deadline,
                  "%s logged no status line within %d s of SIGUSR1"
                  % (self.name, WAIT_SECONDS))
            time.sleep(0.02)

    def rss_in_use(self):
        return self.trimmed_memory()["VmRSS"]

    def trimmed_memory(self):
        """memory() after a SIGUSR1 trim, with the status line's
        "heap_in_use" added."""
        heap_in_use = self.status()["heap_in_use"]
        return dict(self.memory(), heap_in_use=heap_in_use)


def proc_memory(pid):
    values = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


class RssSampler:
    """VmRSS of a process every `interval` s in a thread: the peak, and the
    shape (does it level off?).

    Past `ceiling` bytes it calls `on_ceiling` once: a server that an attack
    makes balloon (gRPC 1.51 under rapid reset went past 7 GiB in 10 s)
    must not take the machine's other work down with it."""

    def __init__(self, pid, ceiling=None, on_ceiling=None, interval=0.1):
        self.pid = pid
        self.interval = interval
        self.ceiling = ceiling
        self.on_ceiling = on_ceiling
        self.tripped = None  # the sample that passed the ceiling
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=WAIT_SECONDS)

    def _run(self):
        while not self._stop.is_set():
            try:
                rss = proc_memory(self.pid)["VmRSS"]
            except (OSError, KeyError):  # the process is gone
                return
            self.samples.append(rss)
            if self.ceiling and rss > self.ceiling and self.tripped is None:
                self.tripped = rss
                log("RSS %s passed the ceiling %s" % (mib(rss),
                                                      mib(self.ceiling)))
                self.on_ceiling()
            self._stop.wait(self.interval)

    @property
    def peak(self):
        return max(self.samples, default=0)


class Load:
    """routeguide-client load: open loop, GetFeature only, JSON report."""

    def __init__(self, case, server, seconds, rps=200, flags=()):
        self.case = case
        self.seconds = seconds
        self.rps = rps
        self.json_path = os.path.join(case.log_dir, "load-%d.json"
                                      % len(case.children))
        fds = server.fd_count()
        self.child = case.start(
            "load", [case.args.client, "load",
                     "--target=%s:%d" % (HOST, server.port),
                     "--mix=get:100", "--rps=%d" % rps,
                     "--duration=%ds" % seconds, "--json=" + self.json_path]
            + list(flags))
        # Its connection accepted: the calls start now, not at some point
        # of the attack.
        wait_until(lambda: server.fd_count() > fds or not self.child.alive,
                   WAIT_SECONDS, "the load client's connection")

    def finish(self):
        """Waits for the run; returns its figures."""
        code = self.child.exit_code(self.seconds + WAIT_SECONDS)
        check(code is not None, "the load client still ran %d s after its "
              "%d s run" % (WAIT_SECONDS, self.seconds))
        check(os.path.isfile(self.json_path),
              "the load client exited with %d and wrote no report; "
              "stderr:\n%s" % (code, self.child.text()))
        with open(self.json_path) as f:
            report = json.load(f)
        total = report["total"]
        figures = {
            "exit_code": code,
            "started": total["started"],
            "ok": total["ok"],
            "failed": total["failed"],
            "wrong": total["wrong_answer"],
            "failed_by_code": total["failed_by_code"],
            "p50_ms": total["latency_ns"]["p50"] / 1e6,
            "p99_ms": total["latency_ns"]["p99"] / 1e6,
            "max_ms": total["latency_ns"]["max"] / 1e6,
        }
        log("load: %(started)d started, %(ok)d ok, %(failed)d failed "
            "%(failed_by_code)s, %(wrong)d wrong; p50 %(p50_ms).2f ms, "
            "p99 %(p99_ms).2f ms, max %(max_ms).2f ms" % figures)
        return figures

    @staticmethod
    def errors(figures):
        return figures["failed"] + figures["wrong"]

    def check_clean(self, figures, p99_ms=None):
        self.case.expect(
            figures["failed"] == 0 and figures["wrong"] == 0,
            "the honest client had %d failed calls %s and %d wrong answers"
            % (figures["failed"], figures["failed_by_code"],
               figures["wrong"]))
        self.case.expect(
            figures["started"] >= 0.9 * self.rps * self.seconds,
            "the honest client started %d calls, expected about %d"
            % (figures["started"], self.rps * self.seconds))
        if p99_ms is not None:
            self.case.expect(
                figures["p99_ms"] < p99_ms,
                "the honest client's p99 was %.2f ms, the bound is %.0f ms"
                % (figures["p99_ms"], p99_ms))
