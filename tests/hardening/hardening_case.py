"""What a hardening case works with (Case): the binaries, a log directory,
the children it started, the failures found so far, how slow the server is
(AddressSanitizer), and the memory checks around an attack (MemoryWatch,
with the bounds every memory case shares).
"""

import json
import os
import subprocess
import sys
import time

from hardening_common import (HERE, HOST, MiB, WAIT_SECONDS, CheckFailed,
                              check, log, mib)
from hardening_processes import Child, Load, RssSampler, Server

ATTACKS = os.path.join(HERE, "h2_attacks.py")

# The memory cases: the quota they give the server, how far past it RSS may
# peak (gRPC's quota bounds its buffers, not the process), and how close to
# its start RSS must be SETTLE_SECONDS after the attacker left.
MAX_MEMORY = 256 * MiB
MEMORY_FLAGS = ("--max_memory=%dMiB" % (MAX_MEMORY // MiB),
                "--memory_trim_interval=1s")
PEAK_ALLOWANCE = 128 * MiB
SETTLE_SECONDS = 15
RETURN_ALLOWANCE = 64 * MiB
# The quarantine hardening_test gives an AddressSanitizer server: the freed
# memory ASan holds back before reusing it, resident all the while, so RSS
# can swing by this much whatever the server does.
ASAN_QUARANTINE = 16 * MiB


def links_asan(binary):
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True,
                             timeout=WAIT_SECONDS).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "libasan" in out


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
              RSS after a SIGUSR1 trim is read next, for the log, with the
              heap in use from the status line that trim logs.
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
        self.heap_in_use = None  # the status line's, after `trimmed`

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
        trimmed = self.server.trimmed_memory()
        self.trimmed = trimmed["VmRSS"]
        self.heap_in_use = trimmed["heap_in_use"]

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

    def check_memory(self, what, before, after, limit, levels, heap=None):
        """Growth from `before` to `after` at most `limit` bytes. Under ASan,
        whose allocator keeps RSS that the server gave back, instead: the
        heap in use (`heap`, its before and after, when given; ASan counts
        live bytes exactly) grows at most `limit`, and RSS (`levels`, readings
        in order) levels off: the last third rises at most `limit`, the
        quarantine or a tenth, whichever is most, over the middle third's
        peak."""
        log("%s: RSS in use before %s, after %s (growth %s, bound %s)"
            % (what, mib(before), mib(after), mib(after - before),
               mib(limit)))
        if not self.asan:
            self.expect(after - before <= limit,
                        "%s: RSS in use grew %s (%s -> %s), bound %s"
                        % (what, mib(after - before), mib(before), mib(after),
                           mib(limit)))
            return
        if heap is not None:
            heap_before, heap_after = heap
            log("%s (ASan): heap in use before %s, after %s"
                % (what, mib(heap_before), mib(heap_after)))
            self.expect(heap_after - heap_before <= limit,
                        "%s (ASan): heap in use grew %s (%s -> %s), bound %s"
                        % (what, mib(heap_after - heap_before),
                           mib(heap_before), mib(heap_after), mib(limit)))
        self.check_levels_off(what, levels, max(limit, ASAN_QUARANTINE))

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
