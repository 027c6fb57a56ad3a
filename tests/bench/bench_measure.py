"""Measuring for bench.py: the servers under test (Server, pinned with
taskset, CPU time and memory read from /proc), runs of routeguide-client's
load generator and of h2load, and one measured point each for a scenario
round, idle streams and a large database (replicas and Redis:
bench_replicas.py).
"""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

# Our server as every variant of it runs: one poller, no reflection.
OURS = "server/routeguide-server"
OURS_FLAGS = ["--threads=1", "--reflection=false"]

SERVERS = {
    # name: (binary relative to the build dir, extra flags)
    "ours": (OURS, OURS_FLAGS),
    # Ours without the HTTP/2 guard's relay: what the guard costs or gains.
    "ours-noguard": (OURS, OURS_FLAGS + ["--http2_guard=false"]),
    # Ours with a guard that sleeps as soon as it is idle
    # (--http2_guard_spin=0): what its spin costs or gains.
    "ours-nospin": (OURS, OURS_FLAGS + ["--http2_guard_spin=0"]),
    # Ours without gRPC's bandwidth-delay-product probing
    # (--http2_bdp_probe=false): what the probe's pings cost on loopback.
    "ours-nobdp": (OURS, OURS_FLAGS + ["--http2_bdp_probe=false"]),
    "callback": ("tests/bench/callback-baseline-server", []),
    "sync": ("tests/bench/sync-baseline-server", []),
    # The least a completion-queue server on this gRPC does per call
    # (floor_server.cc): no guard, raw methods, no RouteChat. Not a peer
    # but a limit, so only on request (--servers ...,floor).
    "floor": ("tests/bench/cq-floor-server", []),
    # grpc-go (Debian's 1.33), built where Go is installed (go_baseline/).
    # GOMAXPROCS follows taskset's one core, as the C++ servers' threads do.
    "go": ("tests/bench/go-baseline-server", []),
}
# The servers bench.py compares when --servers is not given; "go" joins
# them when it is built.
DEFAULT_SERVERS = ["ours", "callback", "sync"]
OPTIONAL_SERVERS = ["go"]

# The rectangle that holds all 100 features of the built-in database.
ALL_FEATURES_RECT = "40,-75,42,-74"
ALL_FEATURES_RECT_E7 = (400000000, -750000000, 420000000, -740000000)


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def grpc_frame(message):
    return b"\x00" + struct.pack(">I", len(message)) + message


def point_proto(lat, lon, first_field=1):
    return (bytes([first_field << 3]) + varint(lat) +
            bytes([(first_field + 1) << 3]) + varint(lon))


def h2load_bodies(directory):
    """gRPC-framed requests: a stored feature's Point, the Rectangle of
    all 100 features, and a RecordRoute of 100 points across that
    rectangle, all in one body (h2load sends it as one DATA frame)."""
    get = grpc_frame(point_proto(409146138, -746188906))
    lo = point_proto(*ALL_FEATURES_RECT_E7[:2])
    hi = point_proto(*ALL_FEATURES_RECT_E7[2:])
    rect = b"\x0a" + varint(len(lo)) + lo + b"\x12" + varint(len(hi)) + hi
    route = b"".join(grpc_frame(point_proto(400000000 + i * 200000,
                                            -750000000 + i * 100000))
                     for i in range(100))
    paths = {}
    for name, body in (("GetFeature", get), ("ListFeatures", grpc_frame(rect)),
                       ("RecordRoute", route)):
        paths[name] = os.path.join(directory, name + ".bin")
        with open(paths[name], "wb") as f:
            f.write(body)
    return paths


def thread_context_switches(pid):
    """{thread id: its context switches, voluntary and not} for the
    process's threads now (/proc/PID/status counts only the first
    thread's)."""
    counts = {}
    task_dir = f"/proc/{pid}/task"
    for tid in os.listdir(task_dir):
        total = 0
        try:
            with open(os.path.join(task_dir, tid, "status")) as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("voluntary_ctxt_switches",
                               "nonvoluntary_ctxt_switches"):
                        total += int(value)
        except (FileNotFoundError, ProcessLookupError):
            continue  # The thread ended between the listing and the read.
        counts[int(tid)] = total
    return counts


def context_switches_between(before, after):
    """Switches made between two thread_context_switches() readings by the
    threads alive at the second: a thread started since counts whole, one
    that ended in between is lost (gRPC's sync server retires workers)."""
    return sum(count - before.get(tid, 0) for tid, count in after.items())


def process_cpu_seconds(pid):
    """utime + stime of the whole process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime, fields 14 and 15 of stat(5), counted after ')'.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_measuring_cpu(command, timeout):
    """Runs `command` to its end, its output captured as text. Returns the
    CompletedProcess, the CPU seconds (user + system) the process and its
    reaped children used, from wait4 (a reading no other process can add
    to), and its wall seconds. Killed after `timeout` seconds (returncode
    -9). The child is reaped here and only here: Popen's own wait or poll
    would take its exit, and its rusage with it."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        killed = False
        try:
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                if not killed and time.monotonic() - started > timeout:
                    # Not reaped yet, so the pid is still this child's.
                    os.kill(process.pid, signal.SIGKILL)
                    killed = True
                time.sleep(0.01)
        except BaseException:
            if not killed:
                os.kill(process.pid, signal.SIGKILL)
            os.waitpid(process.pid, 0)
            process.returncode = -signal.SIGKILL
            raise
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(command, process.returncode,
                                           out.read(), err.read())
    return done, usage.ru_utime + usage.ru_stime, wall


def stop_process(process, timeout=15):
    """SIGTERM, then SIGKILL if `process` has not exited within `timeout` s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process on core 0, listening on a free loopback port."""

    def __init__(self, build, name, workdir, cores="0", port=0, tag="",
                 extra=()):
        binary, flags = SERVERS[name]
        self.log_path = os.path.join(workdir, name + tag + ".log")
        self.log = open(self.log_path, "w")
        command = ["taskset", "-c", cores, os.path.join(build, binary),
                   f"--address=127.0.0.1:{port}", *flags, *extra]
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                m = re.search(r"listening on .* \(port (\d+)\)", f.read())
            if m:
                self.port = int(m.group(1))
                self.startup_seconds = time.monotonic() - self.started
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{name} did not start; see {self.log_path}")

    def cpu_seconds(self):
        return process_cpu_seconds(self.process.pid)

    def thread_context_switches(self):
        return thread_context_switches(self.process.pid)

    def status_kib(self, key):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def settled_rss_kib(self, timeout=20):
        """VmRSS once it changes by less than 256 KiB over half a second."""
        last = self.status_kib("VmRSS")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.status_kib("VmRSS")
            if abs(now - last) < 256:
                return now
            last = now
        return last

    def stop(self):
        stop_process(self.process)
        self.log.close()


def run_client(build, port, flags, seconds, json_path, cores="1", seed=1):
    """The client's JSON report, with the load generator's own CPU seconds
    and wall seconds over its whole run added as "load_cpu_seconds" and
    "load_wall_seconds". `port` may also be a comma list of IP:PORT
    targets."""
    # Fixed seeds make runs repeatable; the warm-up takes another one so
    # that its RouteChat notes do not land where the measured run posts.
    target = port if isinstance(port, str) else f"127.0.0.1:{port}"
    command = ["taskset", "-c", cores,
               os.path.join(build, "client/routeguide-client"), "load",
               f"--target={target}", f"--seed={seed}",
               f"--duration={seconds}s", f"--json={json_path}", *flags]
    result, cpu_seconds, wall_seconds = run_measuring_cpu(command,
                                                          timeout=seconds + 120)
    # Exit code 1: calls failed (a baseline past its limits in the open-loop
    # scenario, say). The report is whole and the failures are in it, so
    # the point is kept, with a word on stderr.
    if result.returncode == 1 and os.path.exists(json_path):
        said = [line for line in (result.stdout + result.stderr).splitlines()
                if line.startswith("error rate")] or ["calls failed"]
        print(f"note: {target}: {said[-1]}; the figures include the "
              "failed calls", file=sys.stderr)
    elif result.returncode != 0:
        raise RuntimeError(f"load client failed ({result.returncode}): "
                           f"{' '.join(command)}\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    with open(json_path) as f:
        report = json.load(f)
    report["load_cpu_seconds"] = cpu_seconds
    report["load_wall_seconds"] = wall_seconds
    return report


# h2load's unmeasured start (--warm-up-time).
H2LOAD_WARMUP_SECONDS = 1


def run_h2load(port, method, body, seconds, server_pid, cores="1"):
    """h2load on `cores`, one connection, 64 streams, for `seconds` after
    its warm-up. Returns its calls/s and the server's (`server_pid`'s)
    share of its core over h2load's measured seconds."""
    command = ["taskset", "-c", cores, "h2load", "-c", "1", "-m", "64",
               "-D", str(seconds), f"--warm-up-time={H2LOAD_WARMUP_SECONDS}",
               "-H", "content-type: application/grpc", "-H", "te: trailers",
               "-d", body, f"http://127.0.0.1:{port}/routeguide.RouteGuide/{method}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        # Read inside h2load's measured seconds, so that neither its
        # warm-up (which starts once it has connected) nor its teardown
        # counts: a tenth of the measured time in from each end.
        margin = seconds / 10
        time.sleep(H2LOAD_WARMUP_SECONDS + margin)
        wall_before = time.monotonic()
        cpu_before = process_cpu_seconds(server_pid)
        time.sleep(seconds - 2 * margin)
        cpu_after = process_cpu_seconds(server_pid)
        share = (cpu_after - cpu_before) / (time.monotonic() - wall_before)
        out, _ = process.communicate(timeout=seconds + 60)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return h2load_figures(out), share


def h2load_figures(out):
    """h2load's calls/s from its output. Raises unless every call h2load
    finished succeeded, and some did."""
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if not rate or not done or done.group(1) != done.group(2) or done.group(1) == "0":
        raise RuntimeError("h2load failed:\n" + out[-2000:])
    return float(rate.group(1))


def cpu_us_per_call(core_share, calls_per_second):
    """A server's CPU microseconds per call from its share of a core and
    its calls/s over the same seconds."""
    return core_share * 1e6 / calls_per_second


class IdleStreams:
    """`count` idle RouteChat streams (each has sent one note, so the
    server surely holds the call) held open against `port` by
    tests/bench/idle-chat-streams, on the load's core, until close()."""

    def __init__(self, build, port, count, workdir, channels):
        self.process = subprocess.Popen(
            ["taskset", "-c", "1", os.path.join(build, "tests/bench/idle-chat-streams"),
             f"--target=127.0.0.1:{port}", f"--streams={count}",
             f"--channels={channels}", "--send_note"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(os.path.join(workdir, "idle-chat-streams.log"), "a"),
            text=True)
        line = self.process.stdout.readline()
        if not line.startswith("open"):
            self.kill()
            raise RuntimeError(f"idle-chat-streams: {line!r}")

    def close(self):
        """Ends the streams cleanly; returns the tool's closing line."""
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        closed = self.process.stdout.readline()
        if self.process.wait(timeout=120) != 0 or not closed.startswith("closed"):
            raise RuntimeError(f"idle-chat-streams: {closed!r}")
        return closed

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def measure(build, server_name, flags, seconds, warmup, workdir, point,
            idle_streams=0):
    """One round: a fresh server, an unmeasured warm-up run, then the
    measured run with the server's CPU time read around it; with
    `idle_streams`, beside that many idle RouteChat streams."""
    server = Server(build, server_name, workdir)
    idle = None
    try:
        if idle_streams > 0:
            idle = IdleStreams(build, server.port, idle_streams, workdir,
                               channels=4)
        path = os.path.join(workdir, f"{point}-{server_name}.json")
        if warmup > 0:
            run_client(build, server.port, flags, warmup, path, seed=2)
        cpu_before = server.cpu_seconds()
        switches_before = server.thread_context_switches()
        report = run_client(build, server.port, flags, seconds, path)
        cpu = server.cpu_seconds() - cpu_before
        switches = context_switches_between(switches_before,
                                            server.thread_context_switches())
        total = report["total"]
        calls = total["completed"]
        if total["failed"] or total["wrong_answer"]:
            raise RuntimeError(f"{server_name} {point}: {total['failed']} failed, "
                               f"{total['wrong_answer']} wrong answers")
        secs = report["measured_seconds"]
        messages = sum(k["messages_sent_per_second"] +
                       k["messages_received_per_second"]
                       for k in report["kinds"].values())
        latency = total["latency_ns"]
        result = {
            "calls_per_second": calls / secs,
            "messages_per_second": messages,
            "p50_us": latency["p50"] / 1e3,
            "p99_us": latency["p99"] / 1e3,
            "p99_9_us": latency["p99_9"] / 1e3,
            "server_cpu_us_per_call": cpu * 1e6 / calls if calls else None,
            "server_cpu_share": cpu / secs,
            # Thread wake-ups and preemptions per call: what a hop between
            # threads costs, counted, where timings on a shared machine
            # spread too far to show it.
            "server_switches_per_call": switches / calls if calls else None,
            "server_peak_rss_kib": server.status_kib("VmHWM"),
            # The load generator's share of its core over its whole run
            # (start-up and the learning call are a few ms of CPU in each
            # whole second of it). Near 1, the load (not the server) may be
            # what limits the point: bench_report marks it, as its ratios
            # then understate the faster server.
            "load_cpu_share": report["load_cpu_seconds"] / report["load_wall_seconds"],
        }
        if idle is not None:
            idle.close()
        return result
    finally:
        if idle is not None:
            idle.kill()
        server.stop()


def measure_idle_streams(build, name, workdir, streams):
    """Server RSS with `streams` idle RouteChat streams open (each has sent
    one note, so the server surely holds the call) over 20 connections,
    and after they end. Ours checks every second whether to hand freed
    memory back (--memory_trim_interval; 10 s by default)."""
    extra = ["--memory_trim_interval=1s"] if name == "ours" else []
    server = Server(build, name, workdir, extra=extra)
    client = None
    try:
        before = server.settled_rss_kib()
        client = IdleStreams(build, server.port, streams, workdir, channels=20)
        time.sleep(1)
        open_rss = server.settled_rss_kib()
        client.close()
        time.sleep(3)  # Past ours' next trim check.
        after = server.settled_rss_kib()
        return {"rss_before_kib": before, "rss_open_kib": open_rss,
                "rss_after_kib": after,
                "kib_per_stream": (open_rss - before) / streams}
    finally:
        if client is not None:
            client.kill()
        server.stop()


# Small rectangles that hold a few features each: on the built-in
# database, and on the generated one (denser: 0.05 degrees a side).
BUILTIN_SMALL_RECT = "40.8,-74.4,41.1,-74.1"
LARGE_SMALL_RECT = "40.8,-74.4,40.85,-74.35"


def measure_large_db(build, workdir, count, seconds):
    """Our server on a generated database of `count` features against the
    built-in 100: start-up time, RSS, and ListFeatures latency for a small
    rectangle (one call in flight), so the spatial index's cost shows."""
    db = os.path.join(workdir, "large.json")
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__),
                                                 "gen_db.py"),
                    str(count), db], check=True, stdout=subprocess.DEVNULL)
    out = {"features": count}
    for key, extra, rect in (("builtin", [], BUILTIN_SMALL_RECT),
                             ("large", [f"--db={db}"], LARGE_SMALL_RECT)):
        server = Server(build, "ours", workdir, extra=extra, tag="-" + key)
        try:
            rss = server.settled_rss_kib()
            path = os.path.join(workdir, f"large-{key}.json")
            report = run_client(build, server.port,
                                ["--mix=list:1", f"--list_rect={rect}",
                                 "--concurrency=1", "--deadline=120s",
                                 # Learning a million features takes a while.
                                 "--learn_deadline=120s",
                                 f"--max_features_learnt={2 * count + 100}"],
                                seconds, path)
            kind = report["kinds"]["list"]
            out[key] = {
                "startup_seconds": round(server.startup_seconds, 3),
                "rss_kib": rss,
                "peak_rss_kib": server.status_kib("VmHWM"),
                "features_per_call": (kind["messages_received_per_second"] /
                                      kind["calls_per_second"]
                                      if kind["calls_per_second"] else 0),
                "p50_us": kind["latency_ns"]["p50"] / 1e3,
                "p99_us": kind["latency_ns"]["p99"] / 1e3,
            }
        finally:
            server.stop()
    return out


def median_index(values):
    """The index of the median value (of the upper of the middle two), so
    that a round's other figures can go with it."""
    return sorted(range(len(values)), key=lambda i: values[i])[len(values) // 2]


def median_round(rounds):
    """The round with the median calls/s, so a point's figures belong
    together."""
    chosen = dict(rounds[median_index([r["calls_per_second"] for r in rounds])])
    chosen["rounds_calls_per_second"] = [round(r["calls_per_second"], 1)
                                         for r in rounds]
    return chosen
