#!/usr/bin/env python3
"""What does a large feature database cost routeguide-server?

    tests/bench/large_db_bench.py [--count 1000000] [--rounds 3] [--duration 5s]

Generates a database of --count features with gen_db.py in a temporary
directory (deleted at the end), then, in --rounds rounds that alternate the
two databases, starts routeguide-server (one poller thread, pinned to CPU 0
when there are two CPUs) and measures:

  * start-up: time from exec to the "listening" log line;
  * VmRSS once it has settled after start (and VmHWM, the peak);
  * ListFeatures latency from `routeguide-client load --mix=list:1` (pinned
    to CPU 1, --concurrency calls in flight) for one small rectangle, chosen so that both databases answer
    with a few features: 0.05 x 0.05 degrees on the large one, 0.3 x 0.3
    degrees on the built-in 100 features;
  * the client's own overhead before measuring: it first lists the whole
    world to learn every feature (to check answers), which on a large
    database takes a while; reported as the client's wall time minus the
    measured duration.

Prints one line per run and the medians. Build first: ninja -C build.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVER = os.path.join(ROOT, "build", "server", "routeguide-server")
CLIENT = os.path.join(ROOT, "build", "client", "routeguide-client")
GEN_DB = os.path.join(ROOT, "tests", "bench", "gen_db.py")

# Rectangles (LO_LAT,LO_LON,HI_LAT,HI_LON) with a few features each: on the
# built-in database 3 features; on gen_db.py's default bounds (1000
# features per square degree at a million) about 2.5 on average, and 3 for
# the default seed and count.
BUILTIN_RECT = "40.8,-74.4,41.1,-74.1"
LARGE_RECT = "40.8,-74.4,40.85,-74.35"

LISTENING = re.compile(r"listening on .* \(port (\d+)\)")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def settled_rss(pid, timeout=20.0):
    """VmRSS once it changes by less than 256 KiB over half a second."""
    last = status_kib(pid, "VmRSS")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        time.sleep(0.5)
        now = status_kib(pid, "VmRSS")
        if abs(now - last) < 256:
            return now
        last = now
    return last


def pin(cpu):
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


class Server:
    """routeguide-server on a free port; its stderr is drained by a thread."""

    def __init__(self, db_path, timeout=300.0):
        args = pin(0) + [SERVER, "--address=127.0.0.1:0", "--threads=1",
                         "--reflection=false"]
        if db_path:
            args.append(f"--db={db_path}")
        self.log = []
        self.port = None
        listening = threading.Event()
        start = time.perf_counter()
        self.process = subprocess.Popen(args, stderr=subprocess.PIPE,
                                        text=True)

        def drain():
            for line in self.process.stderr:
                self.log.append(line)
                match = LISTENING.search(line)
                if match and self.port is None:
                    self.startup = time.perf_counter() - start
                    self.port = int(match.group(1))
                    listening.set()
            listening.set()  # Ended without listening.

        self.thread = threading.Thread(target=drain, daemon=True)
        self.thread.start()
        if not listening.wait(timeout) or self.port is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.log))

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.thread.join(5)


def run_load(port, rect, duration, concurrency, report_path):
    args = pin(1) + [CLIENT, "load", f"--target=127.0.0.1:{port}",
                     "--mix=list:1", f"--list_rect={rect}",
                     f"--concurrency={concurrency}",
                     f"--duration={duration}", f"--json={report_path}",
                     "--seed=1"]
    start = time.perf_counter()
    result = subprocess.run(args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"load client failed ({result.returncode}):\n"
                           + result.stdout + result.stderr)
    with open(report_path) as report_file:
        report = json.load(report_file)
    kind = report["kinds"]["list"]
    return {
        "known": report["features_known"],
        "per_call": kind["messages_received"] / max(kind["ok"], 1),
        "calls_per_second": kind["calls_per_second"],
        "p50_us": kind["latency_ns"]["p50"] / 1000,
        "p99_us": kind["latency_ns"]["p99"] / 1000,
        "wrong": kind["wrong_answer"] + kind["failed"],
        "overhead_s": wall - report["measured_seconds"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", default="5s")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="calls the load client keeps in flight; at 64 "
                             "p50 is mostly queueing, 1 shows a call's own "
                             "latency")
    args = parser.parse_args()
    for path in (SERVER, CLIENT):
        if not os.access(path, os.X_OK):
            sys.exit(f"large_db_bench.py: error: {path} is missing; "
                     "build first (ninja -C build)")

    work = tempfile.mkdtemp(prefix="routeguide-large-db-")
    try:
        db_path = os.path.join(work, "db.json")
        start = time.perf_counter()
        subprocess.run([sys.executable, GEN_DB, str(args.count), db_path,
                        "--seed", str(args.seed)], check=True)
        print(f"gen_db.py {args.count} features: "
              f"{time.perf_counter() - start:.2f}s, "
              f"{os.path.getsize(db_path) / 2**20:.1f} MiB", flush=True)

        cases = [("built-in 100", None, BUILTIN_RECT),
                 (f"generated {args.count}", db_path, LARGE_RECT)]
        results = {name: [] for name, _, _ in cases}
        for round_index in range(args.rounds):
            for name, path, rect in cases:
                server = Server(path)
                try:
                    rss = settled_rss(server.process.pid)
                    hwm = status_kib(server.process.pid, "VmHWM")
                    load = run_load(server.port, rect, args.duration,
                                    args.concurrency,
                                    os.path.join(work, "report.json"))
                finally:
                    server.stop()
                row = dict(load, startup_s=server.startup, rss_kib=rss,
                           hwm_kib=hwm)
                results[name].append(row)
                print(f"round {round_index + 1} {name:>18}: "
                      f"start {row['startup_s']:6.3f}s  "
                      f"RSS {rss / 1024:7.1f} MiB (peak {hwm / 1024:7.1f})  "
                      f"rect {rect} -> {row['per_call']:.1f} features  "
                      f"{row['calls_per_second']:8.0f} calls/s  "
                      f"p50 {row['p50_us']:8.1f}us  p99 {row['p99_us']:8.1f}us  "
                      f"wrong+failed {row['wrong']}  "
                      f"client learns {row['known']} features, "
                      f"overhead {row['overhead_s']:.2f}s", flush=True)

        print("\nmedians:")
        for name, rows in results.items():
            def median(key):
                return statistics.median(row[key] for row in rows)
            print(f"  {name:>18}: start {median('startup_s'):.3f}s  "
                  f"RSS {median('rss_kib') / 1024:.1f} MiB "
                  f"(peak {median('hwm_kib') / 1024:.1f})  "
                  f"p50 {median('p50_us'):.1f}us  p99 {median('p99_us'):.1f}us  "
                  f"{median('calls_per_second'):.0f} calls/s  "
                  f"client overhead {median('overhead_s'):.2f}s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
