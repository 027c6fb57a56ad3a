"""Hardening tests: hostile clients against routeguide-server, one case a run.

  python3 hardening_test.py --server PATH --client PATH --case NAME [--asan]

  fd-burst-soft-limit     soft RLIMIT_NOFILE 1024, hard 8192: 3,000 silent
                          connections for 10 s under a 200/s GetFeature load;
                          no call fails, a new client is served meanwhile, the
                          server raised its soft limit and logged it.
  fd-exhaustion-recovers  soft = hard = 1024: 2,000 silent connections for
                          5 s; once they close a new client is served within
                          5 s, and a RouteChat opened before still works.
  fd-exhaustion-tls       the same on a TLS listener, which gRPC cannot
                          recover: the server logs a listener error and exits
                          with code 3 within --grace + 5 s.
  handshake-timeout       --handshake_timeout=1s closes a silent connection
                          after 1-2 s, not one that sent the HTTP/2 preface.
  reuseport               a second server on a busy port exits 2 naming it;
                          with --reuseport two servers share a port and both
                          serve.
  sighup                  SIGHUP under load: no call fails, the server goes on.
  second-sigterm          a second SIGTERM while draining (--grace=60s, a
                          RouteChat open) ends the server within 1 s, non-zero.
  rapid-reset             HEADERS + RST_STREAM from 4 connections for 10 s
                          under the load: no call fails, p99 < 50 ms, RSS
                          comes back within 64 MiB.
  header-flood            1 MiB of headers over CONTINUATION frames is refused
                          (50 times over, before and after the SETTINGS ack)
                          with RSS growing at most 8 MiB; metadata just under
                          16 KiB is served, 32 KiB refused.

Memory cases: the server runs with --max_memory=256MiB and
--memory_trim_interval=1s, a GetFeature load alongside must see no failed
call, and RSS must peak at most 384 MiB (the quota + 128 MiB) and be back
within 64 MiB of where it started 15 s after the attacker left, by the
server's own periodic trim (no SIGUSR1 before that reading). Each prints
FIGURES|attack|before MiB|peak MiB|after MiB|honest client's errors.

  list-no-read            a 200,000-feature database; one connection with
                          INITIAL_WINDOW_SIZE 0 that never sends
                          WINDOW_UPDATE opens 1,000 ListFeatures over the
                          whole world, held 10 s.
  list-no-read-4          the same on 4 connections.
  huge-message            GetFeature calls declaring a 0xFFFFFFF0-byte
                          message, then zeros as fast as flow control
                          allows, on 3 connections for 8 s; the server must
                          push back (a status, RST_STREAM or GOAWAY).
  huge-message-auth       the same against --auth_token_file.
  never-ack-settings      1,000 calls with 64 KiB of headers each on one
                          connection that never acks SETTINGS, against
                          --max_concurrent_streams=10: prints how many the
                          server held open and answered (gRPC 1.51 applies
                          the limit only after the ack); none may be served
                          (metadata over --max_metadata_size).
  half-message            100 connections x 100 GetFeature calls that send
                          11 of 100 declared bytes and stall, held 10 s;
                          then, with the same attack held again, SIGTERM
                          (--grace=30s) must end the server within 5 s,
                          logging 'stopped'.
  connection-waves        three waves of 5,000 connections that complete
                          the HTTP/2 handshake and idle 3 s; RSS 15 s after
                          the last within 64 MiB of the start, and no
                          ratchet: 3 s after wave 3 at most 16 MiB above
                          3 s after wave 1.

The server runs on 127.0.0.1:0 with --threads=2. Under AddressSanitizer
(--asan, or found by ldd) timing bounds are 3x looser and memory is only
required to level off (and, in the memory cases, to come back down
somewhat), since ASan's quarantine and shadow memory make absolute RSS
bounds meaningless.

Every child is stopped by its PID on every path and every wait is bounded.
Exit code 0 when every check passed, 1 with the reasons otherwise.
"""

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import h2_attacks as attacks  # noqa: E402

ATTACKS = os.path.join(HERE, "h2_attacks.py")
GEN_DB = os.path.join(HERE, os.pardir, "bench", "gen_db.py")
HOST = "127.0.0.1"
MiB = 1 << 20
# Bounds every wait not given by the case itself.
WAIT_SECONDS = 20
# After SIGKILL, how long reaping may take.
REAP_SECONDS = 10

PORT_LINE = re.compile(
    r"RouteGuide server listening on 127\.0\.0\.1:\d+ \(port (\d+)\)")
STATUS_LINE = re.compile(
    r"status: (\d+) calls in flight, (\d+) call objects, (\d+) accepted")
# A point no other test writes notes at.
CHAT_POINT = (123456789, 987654321)
# The server's default --max_metadata_size, and a call's headers that stay
# just under it (the sizes SETTINGS_MAX_HEADER_LIST_SIZE counts).
METADATA_LIMIT = 16 * 1024
METADATA_UNDER = METADATA_LIMIT - 512

# The memory cases: the quota they give the server, how far past it RSS may
# peak (gRPC's quota bounds its buffers, not the process), and how close to
# its start RSS must be SETTLE_SECONDS after the attacker left.
MAX_MEMORY = 256 * MiB
MEMORY_FLAGS = ("--max_memory=%dMiB" % (MAX_MEMORY // MiB),
                "--memory_trim_interval=1s")
PEAK_ALLOWANCE = 128 * MiB
SETTLE_SECONDS = 15
RETURN_ALLOWANCE = 64 * MiB
# How long the server may take to load a 200,000-feature database: 28 s
# on the 2-core development machine (6 s for 100,000: the loader parses with
# a callback, which nlohmann/json 3.11.2 makes quadratic in the features).
BIG_DB_LOAD_SECONDS = 90
# Server CPU per ListFeatures over the whole world of that database (it
# walks every feature before it starts its cursor), measured about 2 ms:
# what the attacker's calls add to its own duration, per 1,000 calls.
LIST_WORLD_SECONDS_PER_1000 = 2


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def log(message):
    print(message, flush=True)


def mib(size):
    return "%.1f MiB" % (size / MiB)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        check(time.monotonic() < deadline,
              "%s: not within %.1f s" % (what, timeout))
        time.sleep(0.05)


def links_asan(binary):
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True,
                             timeout=WAIT_SECONDS).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "libasan" in out


# --- Children ---------------------------------------------------------------


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
        """SIGUSR1's status line as {"in_flight", "objects", "accepted"}.

        The server hands freed memory back (malloc_trim) before it logs the
        line, so VmRSS read afterwards is memory in use, not what glibc
        keeps cached after a burst."""
        seen = len(STATUS_LINE.findall(self.text()))
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            lines = STATUS_LINE.findall(self.text())
            if len(lines) > seen:
                in_flight, objects, accepted = map(int, lines[-1])
                return {"in_flight": in_flight, "objects": objects,
                        "accepted": accepted}
            check(self.alive, "%s exited with %s (status line asked)"
                  % (self.name, self.process.returncode))
            check(time.monotonic() < deadline,
                  "%s logged no status line within %d s of SIGUSR1"
                  % (self.name, WAIT_SECONDS))
            time.sleep(0.02)

    def rss_in_use(self):
        self.status()
        return self.memory()["VmRSS"]


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


class MemoryWatch:
    """The server's memory around one attack of a memory case.

      before  VmRSS as the attack starts (the server trimmed after its
              start-up already);
      peak    VmRSS sampled every 100 ms until the attacker left, and
              VmHWM, restarted as the attack starts where /proc allows, so
              that a spike between two samples counts too;
      after   VmRSS SETTLE_SECONDS after the attacker left, with no SIGUSR1
              before it: only the server's own periodic trim
              (--memory_trim_interval) can have handed memory back. The
              RSS after a SIGUSR1 trim is read next, for the log only.
    """

    def __init__(self, case, server):
        self.case = case
        self.server = server
        self.before = server.memory()["VmRSS"]
        self.hwm_reset = server.reset_peak()
        self.sampler = case.sampler(server)
        self.left_at = None
        self.during = []  # samples until the attacker left
        self.hwm = 0
        self.after = None
        self.trimmed = None

    def __enter__(self):
        self.sampler.__enter__()
        return self

    def __exit__(self, *exc):
        self.sampler.__exit__(*exc)

    def attacker_left(self):
        """Call once the attacker's connections are closed."""
        self.left_at = time.monotonic()
        self.during = list(self.sampler.samples)
        self.case.check_alive(self.server, self.sampler, "during the attack")
        if self.hwm_reset:
            self.hwm = self.server.memory()["VmHWM"]

    @property
    def peak(self):
        return max(self.during + [self.hwm, self.before])

    def settle(self):
        """Waits until SETTLE_SECONDS after the attacker left, then reads
        `after` and `trimmed`."""
        time.sleep(max(0.0, self.left_at + SETTLE_SECONDS - time.monotonic()))
        self.case.check_alive(self.server, self.sampler,
                              "after the attack")
        self.after = self.server.memory()["VmRSS"]
        self.trimmed = self.server.rss_in_use()

    def check(self, attack, errors):
        """Prints the FIGURES line, then checks the bounds."""
        log("%s: server RSS before %s; peak %s (sampled %s, VmHWM %s); "
            "%d s after the attacker left %s; after a SIGUSR1 trim %s"
            % (attack, mib(self.before), mib(self.peak),
               mib(max(self.during, default=0)),
               mib(self.hwm) if self.hwm_reset else "not reset",
               SETTLE_SECONDS, mib(self.after), mib(self.trimmed)))
        log("FIGURES|%s|%.1f|%.1f|%.1f|%d" % (
            attack, self.before / MiB, self.peak / MiB, self.after / MiB,
            errors))
        if self.case.asan:
            # ASan's allocator keeps what is freed (its quarantine, which
            # malloc_trim does not reach), so RSS cannot be seen coming back
            # down: it must level off while the attack lasts (when the attack
            # lasted long enough to sample) and not grow once it is over.
            if len(self.during) >= 3:
                self.case.check_levels_off(attack, self.during, RETURN_ALLOWANCE)
            self.case.expect(
                self.after <= self.peak + RETURN_ALLOWANCE,
                "%s (ASan): RSS grew after the attacker left: peak %s (from "
                "%s), %s %d s later"
                % (attack, mib(self.peak), mib(self.before), mib(self.after),
                   SETTLE_SECONDS))
            return
        bound = MAX_MEMORY + PEAK_ALLOWANCE
        self.case.expect(self.peak <= bound,
                         "%s: RSS peaked at %s, over --max_memory + %s = %s"
                         % (attack, mib(self.peak), mib(PEAK_ALLOWANCE),
                            mib(bound)))
        # Tell "kept" from "free but not handed back" in the message.
        why = ("; a SIGUSR1 trim then brought it to %s: the memory was free, "
               "the server's periodic trim did not hand it back"
               % mib(self.trimmed)
               if self.trimmed - self.before <= RETURN_ALLOWANCE else "")
        self.case.expect(
            self.after - self.before <= RETURN_ALLOWANCE,
            "%s: RSS %s %d s after the attacker left, %s over the %s it "
            "started at (bound %s)%s"
            % (attack, mib(self.after), SETTLE_SECONDS,
               mib(self.after - self.before), mib(self.before),
               mib(RETURN_ALLOWANCE), why))


# --- The case at hand -------------------------------------------------------


class Case:
    """What a case works with: the binaries, a log directory, the children
    it started (all killed by PID on the way out), the failures found so
    far, and how slow the server is."""

    def __init__(self, args, log_dir):
        self.args = args
        self.log_dir = log_dir
        self.asan = args.asan or links_asan(args.server)
        # Timing bounds that depend on the server's speed stretch under ASan.
        self.slow = 3.0 if self.asan else 1.0
        # Where an attacked server is stopped, whatever a case measures.
        self.rss_ceiling = (4 if self.asan else 2) * 1024 * MiB
        self.children = []
        self.failures = []

    def expect(self, condition, message):
        """A check the case goes on after, so one run reports every
        failure (use check() when nothing after it could make sense)."""
        if not condition:
            log("FAILED CHECK: " + message)
            self.failures.append(message)

    def start(self, name, argv, nofile=None, kind=Child):
        child = kind("%s-%d" % (name, len(self.children)), argv,
                     self.log_dir, nofile)
        self.children.append(child)
        return child

    def server(self, *flags, address=HOST + ":0", nofile=None,
               startup_seconds=WAIT_SECONDS):
        return self.start("server", [self.args.server, "--address=" + address,
                                     "--threads=2"] + list(flags),
                          nofile=nofile, kind=Server).wait_serving(
                              startup_seconds)

    def load(self, server, seconds, *flags):
        return Load(self, server, seconds, flags=flags)

    def memory_watch(self, server):
        return MemoryWatch(self, server)

    def run_client(self, *flags, timeout=WAIT_SECONDS):
        """routeguide-client to its end: (exit code, seconds, output)."""
        argv = [self.args.client] + list(flags)
        log("$ " + " ".join(argv))
        started = time.monotonic()
        try:
            # subprocess.run kills the child (by its PID) on timeout.
            done = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - started, "(killed after %d s)" \
                % timeout
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        return done.returncode, time.monotonic() - started, output

    def tutorial(self, port, connect_timeout, *flags):
        code, seconds, output = self.run_client(
            "tutorial", "--target=%s:%d" % (HOST, port),
            "--connect_timeout=%gs" % connect_timeout, *flags)
        log("tutorial client: exit code %s after %.2f s" % (code, seconds))
        if code != 0:
            log(output[-2000:])
        return code, seconds

    def attack(self, command, port, *options, timeout):
        """Runs h2_attacks.py in a child of its own (its own GIL, its own
        file descriptors); returns its JSON report."""
        child = self.start("attack-" + command,
                           [sys.executable, ATTACKS, command,
                            "--port=%d" % port] + list(options))
        code = child.exit_code(timeout)
        check(code is not None, "%s still ran after %.0f s" % (command,
                                                                timeout))
        check(code == 0, "%s exited with %d: %s" % (command, code,
                                                    child.text()[-2000:]))
        report = json.loads(child.text("stdout"))
        log("%s: %s" % (command, json.dumps(report, sort_keys=True)))
        return report

    def cleanup(self, failed):
        for child in reversed(self.children):
            child.kill()
            if failed:
                child.dump_logs()

    def sampler(self, server):
        """An RssSampler that kills `server` at the ceiling."""
        return RssSampler(server.pid, self.rss_ceiling, server.kill)

    def check_alive(self, server, sampler, during):
        if sampler.tripped is not None:
            raise CheckFailed(
                "the server's RSS reached %s %s; it was killed at the "
                "ceiling of %s" % (mib(sampler.tripped), during,
                                   mib(sampler.ceiling)))
        check(server.alive, "the server exited with %s %s"
              % (server.process.returncode, during))

    def check_memory(self, what, before, after, limit, levels):
        """Growth from `before` to `after` at most `limit` bytes; under ASan
        only that memory levels off over `levels` (RSS readings in order):
        the last third of them rises at most `limit`, or a tenth, over the
        peak of the middle third."""
        log("%s: RSS in use before %s, after %s (growth %s, bound %s)"
            % (what, mib(before), mib(after), mib(after - before),
               mib(limit)))
        if not self.asan:
            self.expect(after - before <= limit,
                        "%s: RSS in use grew %s (%s -> %s), bound %s"
                        % (what, mib(after - before), mib(before), mib(after),
                           mib(limit)))
            return
        self.check_levels_off(what, levels, limit)

    def check_levels_off(self, what, levels, limit):
        """RSS readings in order level off: the last third rises at most
        `limit`, or a tenth, over the peak of the middle third."""
        n = len(levels)
        check(n >= 3, "%s: %d RSS readings, too few to see a trend" % (what,
                                                                        n))
        middle = max(levels[n // 3:2 * n // 3])
        last = max(levels[2 * n // 3:])
        log("%s (ASan): RSS peak %s in the middle third, %s in the last"
            % (what, mib(middle), mib(last)))
        self.expect(last - middle <= max(limit, middle // 10),
                    "%s (ASan): RSS still rising: %s in the middle third, "
                    "%s in the last" % (what, mib(middle), mib(last)))


def silent_burst(port, count, connect_timeout=10.0):
    burst = attacks.SilentBurst(HOST, port, count, connect_timeout)
    report = burst.report()
    log("%d silent connections: %d connected in %.2f s, failures %s"
        % (count, report["connected"], report["connect_seconds"],
           report["connect_failures"]))
    return burst


# --- Cases ------------------------------------------------------------------


def case_fd_burst_soft_limit(case):
    server = case.server(nofile=(1024, 8192))
    load = case.load(server, seconds=14)
    with silent_burst(server.port, 3000) as burst:
        burst.watch(3)
        fds = server.fd_count()
        log("server holds %d file descriptors with the burst open" % fds)
        # A client that connects now needs the server to accept past 1024.
        tutorial_code, _ = case.tutorial(server.port, 5)
        burst.watch(max(0.0, 10 - (time.monotonic() - burst.started)))
        report = burst.report()
    log("burst: %s" % json.dumps(report, sort_keys=True))
    figures = load.finish()

    load.check_clean(figures)
    case.expect(tutorial_code == 0,
                "a new client during the burst failed (exit code %s): the "
                "server stopped accepting at its soft limit" % tutorial_code)
    soft, hard = server.nofile_limits()
    log("server RLIMIT_NOFILE now: soft %d, hard %d" % (soft, hard))
    case.expect(soft == 8192, "the server kept soft RLIMIT_NOFILE %d, "
                "expected it raised to the hard limit 8192" % soft)
    case.expect(re.search(r"open files.*1024.*8192|open files.*8192.*1024",
                          server.text()),
                "no 'open files' line with 1024 and 8192 in the server log")
    case.expect(server.alive, "the server exited with %s"
                % server.process.returncode)


def case_fd_exhaustion_recovers(case):
    server = case.server(nofile=(1024, 1024))
    with attacks.RouteChat(HOST, server.port) as chat:
        chat.send(*CHAT_POINT, "before the burst")
        with silent_burst(server.port, 2000, connect_timeout=5) as burst:
            burst.watch(5)
            log("server holds %d file descriptors with the burst open"
                % server.fd_count())
            log("burst: %s" % json.dumps(burst.report(), sort_keys=True))
        log("burst closed")
        check(server.alive, "the server exited with %s during the burst"
              % server.process.returncode)
        # Connecting is all that may take up to 5 s; the calls follow.
        code, seconds = case.tutorial(server.port, 5 * case.slow)
        case.expect(code == 0, "no new client served within %.0f s of the "
                    "burst's end (tutorial exit code %s after %.1f s)"
                    % (5 * case.slow, code, seconds))

        chat.send(*CHAT_POINT, "after the burst")
        replies = chat.wait_replies(1, 5 * case.slow)
        log("RouteChat opened before the burst: replies %s, trouble %s"
            % (replies, chat.trouble()))
        case.expect(chat.trouble() is None,
                    "the RouteChat opened before the burst broke: %s"
                    % chat.trouble())
        case.expect(replies == [CHAT_POINT + ("before the burst",)],
                    "the RouteChat opened before the burst got %s, expected "
                    "the note sent before the burst" % replies)


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1 and localhost: (cert, key)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    done = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT_SECONDS)
    check(done.returncode == 0, "openssl req failed: %s"
          % done.stderr.decode("utf-8", "replace"))
    return cert, key


def case_fd_exhaustion_tls(case):
    cert, key = make_certificate(case.log_dir)
    grace = 2
    server = case.server("--tls_cert=" + cert, "--tls_key=" + key,
                         "--grace=%ds" % grace, nofile=(1024, 1024))
    code, _ = case.tutorial(server.port, 5, "--tls_ca=" + cert)
    check(code == 0, "the TLS server did not serve the tutorial client "
          "before the burst (exit code %s)" % code)
    with silent_burst(server.port, 2000, connect_timeout=5) as burst:
        opened = time.monotonic()
        limit = grace + 5 * case.slow
        code = server.exit_code(limit)
        took = time.monotonic() - opened
        log("burst: %s" % json.dumps(burst.report(), sort_keys=True))
    check(code is not None,
          "the TLS server still runs %.0f s after 2,000 connections "
          "exhausted its file descriptors (gRPC's listener is dead: it "
          "should exit with code 3)" % limit)
    log("the TLS server exited with %d %.2f s after the burst was open"
        % (code, took))
    case.expect(code == 3, "the TLS server exited with %d, expected 3" % code)
    case.expect(re.search(r"\[(error|critical)\].*listener", server.text()),
                "no error line containing 'listener' in the server log")


def expect_silent_closed_at_timeout(case, port, kind):
    """Three silent connections to `port` are closed by the server 1 s
    (the --handshake_timeout the server was given) after they opened."""
    with silent_burst(port, 3) as burst:
        burst.watch(3 * case.slow)
        report = burst.report()
    log("silent connections (%s): %s" % (kind, json.dumps(report, sort_keys=True)))
    check(report["closed_by_server"] == 3,
          "the %s server closed %d of 3 silent connections within %.0f s"
          % (kind, report["closed_by_server"], 3 * case.slow))
    closed = report["close_after_seconds"]
    case.expect(closed["min"] >= 0.8,
                "a silent %s connection was closed after %.2f s, before the "
                "1 s handshake timeout" % (kind, closed["min"]))
    case.expect(closed["max"] <= 1 + case.slow,
                "a silent %s connection was closed only after %.2f s (1 s "
                "timeout)" % (kind, closed["max"]))


def case_handshake_timeout(case):
    server = case.server("--handshake_timeout=1s")
    expect_silent_closed_at_timeout(case, server.port, "plaintext")
    # TLS: gRPC's own listener, with its server handshake timeout.
    cert, key = make_certificate(case.log_dir)
    tls = case.server("--handshake_timeout=1s", "--tls_cert=" + cert,
                      "--tls_key=" + key)
    expect_silent_closed_at_timeout(case, tls.port, "TLS")

    with attacks.Connection(HOST, server.port) as conn:
        conn.settle()
        conn.wait(lambda: not conn.usable, 3)
        alive = conn.usable and conn.ping()
        log("connection with preface and SETTINGS after 3 s: %s"
            % ("open" if alive else conn.closed or conn.goaway))
        case.expect(alive, "the server closed a connection that sent the "
                    "HTTP/2 preface and SETTINGS: %s"
                    % (conn.goaway or conn.closed or conn.write_error))


def served_calls(port, count):
    """`count` GetFeature calls, each on a connection of its own (so the
    kernel picks a listener for each)."""
    for i in range(count):
        with attacks.Connection(HOST, port) as conn:
            verdict, detail, name = attacks.get_feature(conn)
            check(verdict == "ok", "GetFeature %d on port %d: %s"
                  % (i, port, detail))


def case_reuseport(case):
    first = case.server()
    second = case.start("server-same-port",
                        [case.args.server,
                         "--address=%s:%d" % (HOST, first.port),
                         "--threads=2"])
    # Exits, or (what SO_REUSEPORT by default does) serves.
    deadline = time.monotonic() + WAIT_SECONDS
    while second.alive and time.monotonic() < deadline:
        check(not PORT_LINE.search(second.text()),
              "a second server started on port %d, which a running server "
              "holds (SO_REUSEPORT is on by default)" % first.port)
        time.sleep(0.05)
    code = second.exit_code(0)
    check(code is not None, "the second server neither served nor exited "
          "within %d s" % WAIT_SECONDS)
    message = second.text()
    log("second server on port %d: exit code %d: %s"
        % (first.port, code, message.strip()[-300:]))
    case.expect(code == 2, "the second server exited with %d, expected 2"
                % code)
    case.expect(str(first.port) in message and "in use" in message,
                "the second server's message names neither the port %d nor "
                "'in use': %r" % (first.port, message[-300:]))
    first.signal(signal.SIGTERM)
    check(first.exit_code(WAIT_SECONDS) is not None,
          "the first server still ran %d s after SIGTERM" % WAIT_SECONDS)

    a = case.server("--reuseport")
    b = case.server("--reuseport", address="%s:%d" % (HOST, a.port))
    served_calls(a.port, 40)
    accepted = [a.status()["accepted"], b.status()["accepted"]]
    log("40 connections on port %d: the servers accepted %s calls"
        % (a.port, accepted))
    case.expect(all(accepted) and sum(accepted) == 40,
                "with --reuseport the two servers accepted %s of 40 calls: "
                "both should have served some" % accepted)


def case_sighup(case):
    server = case.server()
    load = case.load(server, seconds=6)
    for _ in range(2):
        time.sleep(2)
        server.signal(signal.SIGHUP)
        # A reader that went away (a closed log pipe) must not kill it either.
        server.signal(signal.SIGPIPE)
    figures = load.finish()
    check(server.alive, "the server exited with %s on SIGHUP or SIGPIPE"
          % server.process.returncode)
    load.check_clean(figures)
    case.expect("SIGHUP" in server.text(), "no line with SIGHUP in the log")

    # The client whose reader went away (`| head -1`) is not killed by
    # SIGPIPE: its writes just fail.
    client = subprocess.Popen(
        [case.args.client, "tutorial", "--target=%s:%d" % (HOST, server.port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        # Closed before the client writes (it connects first), so each of
        # its writes meets a pipe without a reader.
        client.stdout.close()
        code = client.wait(timeout=WAIT_SECONDS)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    log("tutorial client with its reader gone: exit code %d" % code)
    case.expect(code != -signal.SIGPIPE, "the client was killed by SIGPIPE")


def case_second_sigterm(case):
    server = case.server("--grace=60s")
    with attacks.RouteChat(HOST, server.port) as chat:
        chat.send(*CHAT_POINT, "held open")
        wait_until(lambda: server.status()["in_flight"] >= 1, WAIT_SECONDS,
                   "the RouteChat in flight")
        server.signal(signal.SIGTERM)
        server.wait_for_line(re.compile(r"shutting down"))
        server.signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = server.exit_code(case.slow)
        check(code is not None, "the server still runs %.0f s after a "
              "second SIGTERM (it drains for --grace=60s)" % case.slow)
        log("the server exited with %d %.2f s after the second SIGTERM"
            % (code, time.monotonic() - signalled))
        case.expect(code != 0, "the server exited with 0 after a second "
                    "SIGTERM cut its drain short")


def case_rapid_reset(case):
    server = case.server()
    before = server.rss_in_use()
    seconds = 10
    load = case.load(server, seconds=seconds + 2)
    with case.sampler(server) as sampler:
        report = case.attack("rapid-reset", server.port, "--connections=4",
                             "--seconds=%d" % seconds,
                             timeout=seconds + WAIT_SECONDS)
        figures = load.finish()
    log("rapid reset: %d streams opened and reset, %d per second; server "
        "RSS peak %s (sampled)" % (report["streams_opened"],
                                   report["streams_per_second"],
                                   mib(sampler.peak)))
    case.check_alive(server, sampler, "during the attack")
    untrimmed = server.memory()
    after = server.rss_in_use()
    log("server RSS right after the attack %s, VmHWM %s"
        % (mib(untrimmed["VmRSS"]), mib(untrimmed["VmHWM"])))
    load.check_clean(figures, p99_ms=50 * case.slow)
    case.check_memory("rapid reset", before, after, 64 * MiB,
                      sampler.samples)


def metadata_call(port, size):
    """GetFeature whose headers add up to `size` (RFC 7541 sizes), on a
    connection that acknowledged the server's SETTINGS first."""
    with attacks.Connection(HOST, port) as conn:
        conn.settle()
        base = attacks.grpc_request_headers(conn.authority,
                                            attacks.GET_FEATURE)
        padding = attacks.padding_headers(
            size - attacks.header_list_size(base))
        verdict, detail, _ = attacks.get_feature(conn, extra_headers=padding)
        log("GetFeature with %d bytes of headers: %s (%s)"
            % (attacks.header_list_size(base + padding), verdict, detail))
        return verdict, detail


def case_header_flood(case):
    server = case.server()
    port = server.port
    before = server.rss_in_use()

    def flood(**options):
        report = attacks.header_flood(HOST, port, 1 * MiB, **options)
        log("header flood %s: %s" % (options, json.dumps(report,
                                                         sort_keys=True)))
        case.expect(report["verdicts"] == {"refused": report["calls"]},
                    "1 MiB of headers %s: %s, expected every call refused"
                    % (options, report["outcomes"]))

    # After the SETTINGS ack, as a normal client orders it, and before it,
    # while gRPC still parses headers under its defaults.
    with case.sampler(server) as sampler:
        flood()
        flood(ack_first=False)
        levels = [server.rss_in_use()]
        # 50 more: each round five fresh connections that flood before the
        # ack, and five floods in a row on one acknowledged connection.
        for _ in range(5):
            flood(connections=5, ack_first=False)
            flood(streams=5)
            levels.append(server.rss_in_use())
    after = levels[-1]
    log("header flood: server RSS in use after each round %s, peak %s "
        "(sampled)" % ([mib(level) for level in levels], mib(sampler.peak)))
    case.check_alive(server, sampler, "during the floods")
    case.check_memory("header flood", before, after, 8 * MiB, levels)

    with attacks.Connection(HOST, port) as conn:
        verdict, detail, name = attacks.get_feature(conn)
    case.expect(verdict == "ok" and name, "a normal GetFeature after the "
                "floods: %s, feature %r" % (detail, name))
    verdict, detail = metadata_call(port, METADATA_UNDER)
    case.expect(verdict == "ok", "%d bytes of metadata (limit %d): %s"
                % (METADATA_UNDER, METADATA_LIMIT, detail))
    verdict, detail = metadata_call(port, 2 * METADATA_LIMIT)
    case.expect(verdict == "refused", "%d bytes of metadata (limit %d): %s, "
                "expected a refusal" % (2 * METADATA_LIMIT, METADATA_LIMIT,
                                        detail))


def make_db(case, count):
    """A database of `count` features (tests/bench/gen_db.py) in the log
    directory; its path."""
    path = os.path.join(case.log_dir, "db-%d.json" % count)
    done = subprocess.run([sys.executable, GEN_DB, str(count), path],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=WAIT_SECONDS)
    check(done.returncode == 0, "gen_db.py %d failed: %s"
          % (count, done.stderr.decode("utf-8", "replace")))
    return path


def case_list_no_read(case, connections=1):
    attack = "list-no-read" + ("-%d" % connections if connections > 1
                               else "")
    streams, hold = 1000, 10
    server = case.server("--db=" + make_db(case, 200000), *MEMORY_FLAGS,
                         startup_seconds=BIG_DB_LOAD_SECONDS * case.slow)
    with case.memory_watch(server) as watch:
        load = case.load(server, hold + 1 + connections * streams
                         * LIST_WORLD_SECONDS_PER_1000 // 1000)
        report = attacks.list_no_read(HOST, server.port, connections,
                                      streams, hold)
        watch.attacker_left()
        log("list-no-read: %s" % json.dumps(report, sort_keys=True))
        figures = load.finish()
        watch.settle()
    held = report["outcomes"].get("response headers only", 0)
    log("list-no-read: %d of %d ListFeatures over 200,000 features held "
        "with response headers sent and no window; %d DATA bytes reached "
        "the client" % (held, connections * streams,
                        report["data_bytes_received"]))
    case.expect(report["synced"] == connections,
                "%d of %d attacking connections answered a PING after their "
                "calls: the attack was not all received"
                % (report["synced"], connections))
    load.check_clean(figures)
    watch.check(attack, load.errors(figures))


def case_huge_message(case, auth=False):
    attack = "huge-message" + ("-auth" if auth else "")
    flags = list(MEMORY_FLAGS)
    client_flags = []
    if auth:
        token = os.path.join(case.log_dir, "token")
        with open(token, "w") as f:
            f.write("hardening-test-token\n")
        flags.append("--auth_token_file=" + token)
        client_flags.append("--auth_token_file=" + token)
    server = case.server(*flags)
    seconds = 8
    with case.memory_watch(server) as watch:
        load = case.load(server, seconds + 1, *client_flags)
        report = case.attack("huge-message", server.port,
                             "--connections=3", "--seconds=%d" % seconds,
                             timeout=seconds + WAIT_SECONDS)
        watch.attacker_left()
        figures = load.finish()
        watch.settle()
    log("huge message: %d calls, %s of zeros sent (%s/s); the server's "
        "answers %s, GOAWAY %s, closes %s"
        % (report["streams_opened"], mib(report["data_bytes"]),
           mib(report["data_bytes_per_second"]), report["outcomes"],
           report["goaways"], report["closes"]))
    # The calls still open when the attacker stopped are not answers.
    answers = [outcome for outcome in report["outcomes"]
               if not outcome.startswith("open")]
    case.expect(answers or report["goaways"] or report["closes"],
                "the server neither ended a call nor the connection while "
                "it read %s of a 4 GiB message" % mib(report["data_bytes"]))
    case.expect("status 0" not in report["outcomes"],
                "a call whose message was zeros was answered with status 0")
    load.check_clean(figures)
    watch.check(attack, load.errors(figures))


def case_never_ack_settings(case):
    streams, header_bytes, hold = 1000, 64 * 1024, 5
    server = case.server("--max_concurrent_streams=10", *MEMORY_FLAGS)
    with case.memory_watch(server) as watch:
        load = case.load(server, hold + 3)
        report = attacks.never_ack_settings(HOST, server.port, streams,
                                            header_bytes, hold)
        watch.attacker_left()
        log("never-ack-settings: %s" % json.dumps(report, sort_keys=True))
        figures = load.finish()
        watch.settle()
    after_headers = report["after_headers"]
    answers = report["after_requests"]
    refused = sum(n for outcome, n in after_headers.items()
                  if outcome.startswith("RST_STREAM"))
    log("never-ack-settings: the server advertised MAX_CONCURRENT_STREAMS "
        "%s and got no SETTINGS ack; of %d calls with %d bytes of headers "
        "it held %d open and reset %d (stream limit %s), then answered "
        "%s; served (status 0): %d"
        % (report["server_settings"].get("MAX_CONCURRENT_STREAMS"),
           report["streams"], report["header_list_size"],
           after_headers.get("open, no answer", 0), refused,
           "held" if report["streams"] - refused <= 10 else "not held",
           answers, answers.get("status 0", 0)))
    case.expect(not answers.get("status 0"),
                "%d calls with %d bytes of headers were served (limit %d)"
                % (answers.get("status 0", 0), report["header_list_size"],
                   METADATA_LIMIT))
    load.check_clean(figures)
    watch.check("never-ack-settings", load.errors(figures))


def case_half_message(case):
    connections, streams, hold = 100, 100, 10
    server = case.server("--grace=30s", *MEMORY_FLAGS)
    with case.memory_watch(server) as watch:
        load = case.load(server, hold + 1)
        with attacks.HalfMessages(HOST, server.port, connections,
                                  streams) as attack:
            attack.hold(hold)
            report = attack.report()
        watch.attacker_left()
        log("half-message: %s" % json.dumps(report, sort_keys=True))
        figures = load.finish()
        watch.settle()
    case.expect(report["synced"] == connections,
                "%d of %d attacking connections answered a PING after their "
                "calls: the attack was not all received"
                % (report["synced"], connections))
    load.check_clean(figures)
    watch.check("half-message", load.errors(figures))

    # The same calls stalled again: a stop must not wait --grace for them.
    with attacks.HalfMessages(HOST, server.port, connections,
                              streams) as attack:
        log("half-message: %d calls stalled again; stopping the server"
            % (connections * streams))
        server.signal(signal.SIGTERM)
        signalled = time.monotonic()
        limit = 5 * case.slow
        # The attacker keeps answering PINGs meanwhile.
        while server.alive and time.monotonic() - signalled < limit:
            attack.hold(0.05)
        code = server.exit_code(0)
        took = time.monotonic() - signalled
        log("half-message at SIGTERM: %s"
            % json.dumps(attack.report()["outcomes"], sort_keys=True))
    check(code is not None, "the server still ran %.1f s after SIGTERM "
          "with %d stalled calls (--grace=30s)" % (limit,
                                                   connections * streams))
    log("the server exited with %d %.2f s after SIGTERM" % (code, took))
    case.expect(code == 0, "the server exited with %d after SIGTERM, "
                "expected 0 (a clean stop)" % code)
    case.expect(re.search(r"\bstopped\b", server.text()),
                "no 'stopped' line in the server log")


def case_connection_waves(case):
    waves, count, hold = 3, 5000, 3
    # Between waves, and after the last, RSS is read this long after the
    # wave closed: the same delay each time, so the readings compare.
    gap = 3
    # How much higher the last reading may be than the first.
    ratchet_bound = 16 * MiB
    server = case.server(*MEMORY_FLAGS)
    levels = []  # RSS `gap` s after each wave closed
    with case.memory_watch(server) as watch:
        # A wave takes about a second to connect and shake hands, then
        # `hold`, then `gap`.
        load = case.load(server, waves * (1 + hold + gap))
        for wave in range(waves):
            report = attacks.connection_wave(HOST, server.port, count, hold)
            closed = time.monotonic()
            log("wave %d: %s" % (wave + 1, json.dumps(report,
                                                      sort_keys=True)))
            case.expect(report["handshaken"] >= 0.9 * count,
                        "wave %d: only %d of %d connections completed the "
                        "handshake: the figures do not measure %d idle "
                        "connections" % (wave + 1, report["handshaken"],
                                         count, count))
            if wave == waves - 1:
                watch.attacker_left()
            check(server.alive, "the server exited with %s after wave %d"
                  % (server.process.returncode, wave + 1))
            time.sleep(max(0.0, closed + gap - time.monotonic()))
            levels.append(server.memory()["VmRSS"])
            log("RSS %d s after wave %d closed: %s"
                % (gap, wave + 1, mib(levels[-1])))
        figures = load.finish()
        watch.settle()
    load.check_clean(figures)
    log("connection waves: RSS %d s after each wave %s"
        % (gap, [mib(level) for level in levels]))
    ratchet = levels[-1] - levels[0]
    if case.asan:
        # ASan's allocator grows its quarantine and per-size caches in
        # steps that shrink wave by wave (measured: +25, then +12 MiB over
        # about 300); a leak of what 5,000 connections hold (about 85 MiB a
        # wave) would still be far past a fifth.
        case.expect(ratchet <= max(ratchet_bound, levels[0] // 5),
                    "connection waves (ASan): RSS after wave %d is %s above "
                    "after wave 1" % (waves, mib(ratchet)))
    else:
        case.expect(ratchet <= ratchet_bound,
                    "connection waves: RSS %d s after wave %d is %s above "
                    "the same reading after wave 1 (bound %s): each wave "
                    "keeps memory" % (gap, waves, mib(ratchet),
                                      mib(ratchet_bound)))
    watch.check("connection-waves", load.errors(figures))


CASES = {
    "fd-burst-soft-limit": case_fd_burst_soft_limit,
    "fd-exhaustion-recovers": case_fd_exhaustion_recovers,
    "fd-exhaustion-tls": case_fd_exhaustion_tls,
    "handshake-timeout": case_handshake_timeout,
    "reuseport": case_reuseport,
    "sighup": case_sighup,
    "second-sigterm": case_second_sigterm,
    "rapid-reset": case_rapid_reset,
    "header-flood": case_header_flood,
    "list-no-read": case_list_no_read,
    "list-no-read-4": lambda case: case_list_no_read(case, connections=4),
    "huge-message": case_huge_message,
    "huge-message-auth": lambda case: case_huge_message(case, auth=True),
    "never-ack-settings": case_never_ack_settings,
    "half-message": case_half_message,
    "connection-waves": case_connection_waves,
}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", required=True, choices=sorted(CASES))
    parser.add_argument("--server", required=True,
                        help="the routeguide-server binary")
    parser.add_argument("--client", required=True,
                        help="the routeguide-client binary")
    parser.add_argument("--asan", action="store_true",
                        help="the server is built with AddressSanitizer "
                        "(found by ldd when it links libasan dynamically)")
    args = parser.parse_args(argv)
    for path in (args.server, args.client):
        check(os.path.isfile(path), "missing: %s" % path)
    # Keep proxies out of a loopback test, for every child (gRPC reads
    # these when a channel is created).
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "grpc_proxy"):
        os.environ.pop(name, None)
    os.environ["no_grpc_proxy"] = "*"

    with tempfile.TemporaryDirectory(prefix="routeguide-hardening-") as logs:
        case = Case(args, logs)
        if case.asan:
            # ASan holds freed memory in a quarantine (256 MiB by default)
            # before reusing it, so RSS climbs that far whatever the server
            # does; with a small one, memory that is given back shows as a
            # level within a case. Appended: the last setting wins.
            os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [
                os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=16"]))
            log("the server is built with AddressSanitizer: timing bounds "
                "x%g, memory must only level off (ASAN_OPTIONS=%s)"
                % (case.slow, os.environ["ASAN_OPTIONS"]))
        failed = True
        try:
            CASES[args.case](case)
            check(not case.failures, "%d checks failed:\n  %s"
                  % (len(case.failures), "\n  ".join(case.failures)))
            failed = False
        finally:
            case.cleanup(failed)
    log("PASS: %s" % args.case)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CheckFailed as failure:
        print("FAIL: %s" % failure, flush=True)
        sys.exit(1)
