#!/usr/bin/env python3
"""Side-by-side benchmark: our completion-queue server against the same
service on gRPC's synchronous and callback APIs (tests/bench/*-baseline-
server), every figure measured in one run on one machine.

Each server is held to one core (taskset -c 0), the load to the other
(taskset -c 1). Every (scenario, server) point runs --rounds times after an
unmeasured warm-up, servers alternating round by round so drift hits them
alike, and the median round is reported. Per point: calls/s, messages/s
(both directions), p50/p99/p99.9 latency, server CPU microseconds per call
(from the process's own utime+stime), server peak RSS (VmHWM), and ratios
to each baseline.

    tests/bench/bench.py [--build build-release] [--rounds 3] [--seconds 10]
                         [--only get_64,list_100] [--json out.json]

Loopback only; every process started is killed by its PID at the end.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

SERVERS = {
    # name: (binary relative to the build dir, extra flags)
    "ours": ("server/routeguide-server",
             ["--threads=1", "--reflection=false"]),
    "callback": ("tests/bench/callback-baseline-server", []),
    "sync": ("tests/bench/sync-baseline-server", []),
}
BASELINES = ["callback", "sync"]

# The rectangle that holds all 100 features of the built-in database.
ALL_FEATURES_RECT = "40,-75,42,-74"
ALL_FEATURES_RECT_E7 = (400000000, -750000000, 420000000, -740000000)

# Scenario: load-client flags. "rps_of" makes it open loop at a share of
# the rate our server reached in another scenario.
SCENARIOS = [
    ("get_1", "GetFeature, 1 in flight",
     ["--mix=get:1", "--hit_ratio=1", "--concurrency=1"]),
    ("get_64", "GetFeature, 64 in flight",
     ["--mix=get:1", "--hit_ratio=1", "--concurrency=64"]),
    ("get_1024", "GetFeature, 1024 in flight over 4 connections",
     ["--mix=get:1", "--hit_ratio=1", "--concurrency=1024", "--channels=4"]),
    ("list_100", "ListFeatures of the 100-feature rectangle, 64 in flight",
     ["--mix=list:1", "--list_rect=" + ALL_FEATURES_RECT, "--concurrency=64"]),
    ("record_100", "RecordRoute of 100 points, 64 in flight",
     ["--mix=record:1", "--route_points=100", "--concurrency=64"]),
    ("chat_100", "RouteChat of 100 notes over 10 locations, 64 in flight",
     ["--mix=chat:1", "--chat_notes=100", "--chat_locations=10",
      "--concurrency=64"]),
    ("mixed", "the load generator's default mix, 64 in flight",
     ["--concurrency=64"]),
    ("open_50", "default mix, open loop (Poisson) at 50% of our mixed max",
     ["--arrival=poisson"]),
]
H2LOAD_SCENARIOS = {"get_64": "GetFeature", "list_100": "ListFeatures"}


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
    """gRPC-framed requests: a stored feature's Point, and the Rectangle of
    all 100 features."""
    get = grpc_frame(point_proto(409146138, -746188906))
    lo = point_proto(*ALL_FEATURES_RECT_E7[:2])
    hi = point_proto(*ALL_FEATURES_RECT_E7[2:])
    rect = b"\x0a" + varint(len(lo)) + lo + b"\x12" + varint(len(hi)) + hi
    paths = {}
    for name, body in (("GetFeature", get), ("ListFeatures", grpc_frame(rect))):
        paths[name] = os.path.join(directory, name + ".bin")
        with open(paths[name], "wb") as f:
            f.write(body)
    return paths


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
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime and stime, fields 14 and 15 of stat(5), counted after ')'.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def run_client(build, port, flags, seconds, json_path, cores="1", seed=1):
    """`port` may also be a comma list of IP:PORT targets."""
    # Fixed seeds make runs repeatable; the warm-up takes another one so
    # that its RouteChat notes do not land where the measured run posts.
    target = port if isinstance(port, str) else f"127.0.0.1:{port}"
    command = ["taskset", "-c", cores,
               os.path.join(build, "client/routeguide-client"), "load",
               f"--target={target}", f"--seed={seed}",
               f"--duration={seconds}s", f"--json={json_path}", *flags]
    result = subprocess.run(command, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            timeout=seconds + 120)
    if result.returncode != 0:
        raise RuntimeError(f"load client failed ({result.returncode}): "
                           f"{' '.join(command)}\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    with open(json_path) as f:
        return json.load(f)


def run_h2load(port, method, body, seconds, cores="1"):
    command = ["taskset", "-c", cores, "h2load", "-c", "1", "-m", "64",
               "-D", str(seconds), "--warm-up-time=1",
               "-H", "content-type: application/grpc", "-H", "te: trailers",
               "-d", body, f"http://127.0.0.1:{port}/routeguide.RouteGuide/{method}"]
    out = subprocess.run(command, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         timeout=seconds + 60).stdout
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if not rate or not done or done.group(1) != done.group(2):
        raise RuntimeError("h2load failed:\n" + out[-2000:])
    return float(rate.group(1))


def measure(build, server_name, flags, seconds, warmup, workdir, point):
    """One round: a fresh server, an unmeasured warm-up run, then the
    measured run with the server's CPU time read around it."""
    server = Server(build, server_name, workdir)
    try:
        path = os.path.join(workdir, f"{point}-{server_name}.json")
        if warmup > 0:
            run_client(build, server.port, flags, warmup, path, seed=2)
        cpu_before = server.cpu_seconds()
        report = run_client(build, server.port, flags, seconds, path)
        cpu = server.cpu_seconds() - cpu_before
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
        return {
            "calls_per_second": calls / secs,
            "messages_per_second": messages,
            "p50_us": latency["p50"] / 1e3,
            "p99_us": latency["p99"] / 1e3,
            "p99_9_us": latency["p99_9"] / 1e3,
            "server_cpu_us_per_call": cpu * 1e6 / calls if calls else None,
            "server_cpu_share": cpu / secs,
            "server_peak_rss_kib": server.status_kib("VmHWM"),
        }
    finally:
        server.stop()


def measure_replicas(build, layout, seconds, warmup, workdir):
    """GetFeature closed loop (256 in flight over 8 connections, 2 client
    threads, client on any core) against our server as replicas:
      one:        one process on core 0;
      reuseport:  two processes on one port (--reuseport: SO_REUSEPORT,
                  the kernel spreads connections), cores 0 and 1;
      two_ports:  two processes on two ports, cores 0 and 1, the client
                  spreading calls round-robin over both.
    Returns calls/s and each replica's share of the server CPU."""
    flags = ["--mix=get:1", "--hit_ratio=1", "--concurrency=256",
             "--channels=8", "--threads=2"]
    replicas = []
    try:
        if layout == "one":
            replicas.append(Server(build, "ours", workdir, cores="0", tag="-r0"))
            target = f"{replicas[0].port}"
        elif layout == "reuseport":
            replicas.append(Server(build, "ours", workdir, cores="0", tag="-r0",
                                   extra=["--reuseport"]))
            replicas.append(Server(build, "ours", workdir, cores="1",
                                   port=replicas[0].port, tag="-r1",
                                   extra=["--reuseport"]))
            target = f"{replicas[0].port}"
        else:
            replicas.append(Server(build, "ours", workdir, cores="0", tag="-r0"))
            replicas.append(Server(build, "ours", workdir, cores="1", tag="-r1"))
            target = ",".join(f"127.0.0.1:{r.port}" for r in replicas)
        path = os.path.join(workdir, f"replicas-{layout}.json")
        port_or_list = target if "," in target else int(target)
        if warmup > 0:
            run_client(build, port_or_list, flags, warmup, path, cores="0,1",
                       seed=2)
        before = [r.cpu_seconds() for r in replicas]
        report = run_client(build, port_or_list, flags, seconds, path,
                            cores="0,1")
        cpu = [r.cpu_seconds() - b for r, b in zip(replicas, before)]
        total = report["total"]
        if total["failed"] or total["wrong_answer"]:
            raise RuntimeError(f"replicas {layout}: calls failed")
        return {
            "calls_per_second": total["completed"] / report["measured_seconds"],
            "replica_cpu_shares": [round(c / sum(cpu), 3) if sum(cpu) else 0
                                   for c in cpu],
        }
    finally:
        for r in replicas:
            r.stop()


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
        client = subprocess.Popen(
            ["taskset", "-c", "1", os.path.join(build, "tests/bench/idle-chat-streams"),
             f"--target=127.0.0.1:{server.port}", f"--streams={streams}",
             "--channels=20", "--send_note"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(os.path.join(workdir, "idle-chat-streams.log"), "a"),
            text=True)
        line = client.stdout.readline()
        if not line.startswith("open"):
            raise RuntimeError(f"idle-chat-streams against {name}: {line!r}")
        time.sleep(1)
        open_rss = server.settled_rss_kib()
        client.stdin.write("\n")
        client.stdin.flush()
        closed = client.stdout.readline()
        if client.wait(timeout=120) != 0 or not closed.startswith("closed"):
            raise RuntimeError(f"idle-chat-streams against {name}: {closed!r}")
        time.sleep(3)  # Past ours' next trim check.
        after = server.settled_rss_kib()
        return {"rss_before_kib": before, "rss_open_kib": open_rss,
                "rss_after_kib": after,
                "kib_per_stream": (open_rss - before) / streams}
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait()
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
                                 "--concurrency=1", "--deadline=120s"],
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


def median_round(rounds):
    """The round with the median calls/s, so a point's figures belong
    together."""
    ordered = sorted(rounds, key=lambda r: r["calls_per_second"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["rounds_calls_per_second"] = [round(r["calls_per_second"], 1)
                                         for r in rounds]
    return chosen


def fmt_rate(x):
    return f"{x:,.0f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="build-release")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--only", default="",
                        help="comma list of scenarios (default: all)")
    parser.add_argument("--servers", default="ours,callback,sync")
    parser.add_argument("--no-h2load", action="store_true")
    parser.add_argument("--replicas", action="store_true",
                        help="also measure our server as 1 and 2 processes")
    parser.add_argument("--idle-streams", type=int, default=10000,
                        help="idle RouteChat streams for the memory phase "
                        "(0: skip it)")
    parser.add_argument("--large-db", type=int, default=1000000,
                        help="features in the generated database (0: skip)")
    parser.add_argument("--json", default="")
    parser.add_argument("--markdown", default="",
                        help="also write the tables as Markdown to this file")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--rounds >= 1, --seconds > 0, --warmup >= 0")
    servers = args.servers.split(",")
    for name in servers:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r}")
    wanted = set(args.only.split(",")) if args.only else None
    scenarios = [s for s in SCENARIOS if wanted is None or s[0] in wanted]
    if wanted and len(scenarios) != len(wanted):
        parser.error("unknown scenario in --only; known: " +
                     ",".join(s[0] for s in SCENARIOS))
    if os.cpu_count() < 2:
        print("warning: fewer than 2 cores; server and load share one",
              file=sys.stderr)
    needed = [SERVERS[name][0] for name in servers] + [
        "client/routeguide-client", "tests/bench/idle-chat-streams"]
    missing = [n for n in needed if not os.path.exists(os.path.join(args.build, n))]
    if missing:
        parser.error(f"{', '.join(missing)} not in {args.build}: build first, e.g. "
                     f"meson setup {args.build} --buildtype=release && "
                     f"ninja -C {args.build}")
    if not shutil.which("taskset"):
        parser.error("taskset (util-linux) is needed to pin server and load")
    use_h2load = not args.no_h2load and shutil.which("h2load")
    if not args.no_h2load and not use_h2load:
        print("note: h2load not found (Debian package nghttp2-client); "
              "its column is left out", file=sys.stderr)

    results = {"schema": "routeguide.bench.v1",
               "machine": machine_facts(),
               "settings": vars(args), "scenarios": {}}
    workdir = tempfile.mkdtemp(prefix="routeguide-bench-")
    bodies = h2load_bodies(workdir)
    try:
        for key, title, flags in scenarios:
            if key == "open_50":
                basis = results["scenarios"].get("mixed", {}).get("ours")
                if basis is None:
                    basis = median_round([measure(
                        args.build, "ours", ["--concurrency=64"], args.seconds,
                        args.warmup, workdir, "open_basis")])
                rps = round(basis["calls_per_second"] / 2)
                flags = flags + [f"--rps={rps}"]
                title += f" ({rps} calls/s)"
            rounds = {name: [] for name in servers}
            for _ in range(args.rounds):
                for name in servers:
                    rounds[name].append(measure(args.build, name, flags,
                                                args.seconds, args.warmup,
                                                workdir, key))
            point = {"title": title, "client_flags": flags}
            for name in servers:
                point[name] = median_round(rounds[name])
            if use_h2load and key in H2LOAD_SCENARIOS:
                method = H2LOAD_SCENARIOS[key]
                for name in servers:
                    rates = []
                    for _ in range(args.rounds):
                        server = Server(args.build, name, workdir)
                        try:
                            rates.append(run_h2load(server.port, method,
                                                    bodies[method],
                                                    int(args.seconds)))
                        finally:
                            server.stop()
                    point[name]["h2load_calls_per_second"] = statistics.median(rates)
            add_ratios(point, servers)
            results["scenarios"][key] = point
            print_point(key, point, servers)
            sys.stdout.flush()
        if args.idle_streams > 0:
            results["idle_streams"] = {"streams": args.idle_streams}
            print(f"\nidle streams: server RSS with {args.idle_streams:,} idle "
                  "RouteChat streams open, and after they end")
            for name in servers:
                r = measure_idle_streams(args.build, name, workdir,
                                         args.idle_streams)
                results["idle_streams"][name] = r
                print(f"  {name:<9} before {r['rss_before_kib'] / 1024:7.1f} MiB"
                      f"  open {r['rss_open_kib'] / 1024:7.1f} MiB"
                      f"  after {r['rss_after_kib'] / 1024:7.1f} MiB"
                      f"  {r['kib_per_stream']:5.1f} KiB/stream")
        if args.large_db > 0:
            r = measure_large_db(args.build, workdir, args.large_db,
                                 min(args.seconds, 5))
            results["large_db"] = r
            print(f"\nlarge database: ours with {args.large_db:,} generated "
                  "features against the built-in 100")
            for key in ("builtin", "large"):
                x = r[key]
                print(f"  {key:<8} start-up {x['startup_seconds']:6.2f} s"
                      f"  RSS {x['rss_kib'] / 1024:7.1f} MiB"
                      f" (peak {x['peak_rss_kib'] / 1024:7.1f})"
                      f"  small-rectangle ListFeatures"
                      f" ({x['features_per_call']:.1f} features):"
                      f" p50 {x['p50_us']:.0f} us, p99 {x['p99_us']:.0f} us")
        if args.replicas:
            results["replicas"] = {}
            print("\nreplicas: GetFeature, 256 in flight over 8 connections, "
                  "client on both cores")
            for layout in ("one", "reuseport", "two_ports"):
                point = median_round([
                    measure_replicas(args.build, layout, args.seconds,
                                     args.warmup, workdir)
                    for _ in range(args.rounds)])
                results["replicas"][layout] = point
                print(f"  {layout:<10}{fmt_rate(point['calls_per_second']):>10} "
                      f"calls/s, replica CPU shares {point['replica_cpu_shares']}")
            one = results["replicas"]["one"]["calls_per_second"]
            for layout in ("reuseport", "two_ports"):
                r = results["replicas"][layout]["calls_per_second"] / one
                results["replicas"][layout]["ratio_to_one"] = r
                print(f"  {layout} / one: {r:.2f}x")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print_table(results, servers)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(format_markdown(results, servers))
        print(f"Markdown written to {args.markdown}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"\nJSON written to {args.json}")


def add_ratios(point, servers):
    if "ours" not in servers:
        return
    ours = point["ours"]
    for base in BASELINES:
        if base not in servers:
            continue
        other = point[base]
        ratios = {
            "calls_per_second": ours["calls_per_second"] / other["calls_per_second"],
            "messages_per_second": ours["messages_per_second"] / other["messages_per_second"],
            "p99": ours["p99_us"] / other["p99_us"],
        }
        if ours["server_cpu_us_per_call"] and other["server_cpu_us_per_call"]:
            ratios["server_cpu_per_call"] = (ours["server_cpu_us_per_call"] /
                                             other["server_cpu_us_per_call"])
        if "h2load_calls_per_second" in ours and "h2load_calls_per_second" in other:
            ratios["h2load_calls_per_second"] = (ours["h2load_calls_per_second"] /
                                                 other["h2load_calls_per_second"])
        ours.setdefault("ratio_to", {})[base] = ratios


def print_point(key, point, servers):
    print(f"\n{key}: {point['title']}")
    print(f"  {'server':<9}{'calls/s':>10}{'msgs/s':>11}{'p50 us':>9}"
          f"{'p99 us':>9}{'p99.9 us':>10}{'CPU us/call':>12}{'peak RSS':>10}"
          f"{'h2load/s':>10}")
    for name in servers:
        r = point[name]
        cpu = r["server_cpu_us_per_call"]
        print(f"  {name:<9}{fmt_rate(r['calls_per_second']):>10}"
              f"{fmt_rate(r['messages_per_second']):>11}{r['p50_us']:>9.0f}"
              f"{r['p99_us']:>9.0f}{r['p99_9_us']:>10.0f}"
              f"{(f'{cpu:.1f}' if cpu else '-'):>12}"
              f"{r['server_peak_rss_kib'] / 1024:>8.1f}Mi"
              f"{fmt_rate(r['h2load_calls_per_second']) if 'h2load_calls_per_second' in r else '-':>10}")
    for base, ratios in point.get("ours", {}).get("ratio_to", {}).items():
        parts = [f"calls {ratios['calls_per_second']:.2f}x",
                 f"msgs {ratios['messages_per_second']:.2f}x",
                 f"p99 {ratios['p99']:.2f}x"]
        if "server_cpu_per_call" in ratios:
            parts.append(f"CPU/call {ratios['server_cpu_per_call']:.2f}x")
        if "h2load_calls_per_second" in ratios:
            parts.append(f"h2load {ratios['h2load_calls_per_second']:.2f}x")
        print(f"  ours / {base}: " + ", ".join(parts))


def print_table(results, servers):
    """The summary: one line per scenario, ours against each baseline."""
    bases = [b for b in BASELINES if b in servers]
    if "ours" not in servers or not bases:
        return
    header = f"{'scenario':<11}{'ours calls/s':>13}{'ours msgs/s':>13}"
    for b in bases:
        header += f"{'x ' + b + ' msgs':>16}{'x ' + b + ' CPU':>15}{'x ' + b + ' p99':>15}"
    print(header)
    for key, point in results["scenarios"].items():
        ours = point["ours"]
        line = (f"{key:<11}{fmt_rate(ours['calls_per_second']):>13}"
                f"{fmt_rate(ours['messages_per_second']):>13}")
        for b in bases:
            r = ours["ratio_to"][b]
            cpu = r.get("server_cpu_per_call")
            line += (f"{r['messages_per_second']:>15.2f}x"
                     f"{(f'{cpu:.2f}x' if cpu else '-'):>15}"
                     f"{r['p99']:>14.2f}x")
        print(line)


def format_markdown(results, servers):
    """The results as Markdown tables, for docs/benchmarks.md."""
    out = []
    m = results["machine"]
    a = results["settings"]
    out.append(f"Machine: {m.get('cpu', '?')}, {m['cores']} cores, kernel "
               f"{m['kernel']}, gRPC {m.get('grpc', '?')}. Command: "
               f"`tests/bench/bench.py --build {a['build']} --rounds {a['rounds']} "
               f"--seconds {a['seconds']:g} --warmup {a['warmup']:g}"
               f"{' --replicas' if a['replicas'] else ''}`.\n")
    out.append("| scenario | server | calls/s | msgs/s | p50 µs | p99 µs | "
               "p99.9 µs | CPU µs/call | peak RSS MiB | h2load calls/s |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key, point in results["scenarios"].items():
        for name in servers:
            r = point[name]
            cpu = r["server_cpu_us_per_call"]
            h2 = r.get("h2load_calls_per_second")
            out.append(
                f"| {key} | {name} | {r['calls_per_second']:,.0f} | "
                f"{r['messages_per_second']:,.0f} | {r['p50_us']:,.0f} | "
                f"{r['p99_us']:,.0f} | {r['p99_9_us']:,.0f} | "
                f"{cpu:.1f} | {r['server_peak_rss_kib'] / 1024:.1f} | "
                f"{f'{h2:,.0f}' if h2 else '-'} |")
    if "ours" in servers:
        out.append("")
        out.append("Ours as a multiple of each baseline (messages/s and h2load: "
                   "higher is better; CPU per call and p99: lower is better):\n")
        out.append("| scenario | baseline | msgs/s | h2load | CPU/call | p99 |")
        out.append("| --- | --- | ---: | ---: | ---: | ---: |")
        for key, point in results["scenarios"].items():
            for base, r in point["ours"].get("ratio_to", {}).items():
                h2 = r.get("h2load_calls_per_second")
                cpu = r.get("server_cpu_per_call")
                out.append(f"| {key} | {base} | {r['messages_per_second']:.2f}x | "
                           f"{f'{h2:.2f}x' if h2 else '-'} | "
                           f"{f'{cpu:.2f}x' if cpu else '-'} | {r['p99']:.2f}x |")
    if "idle_streams" in results:
        idle = results["idle_streams"]
        out.append("")
        out.append(f"Idle RouteChat streams ({idle['streams']:,}, 20 connections), "
                   "server RSS in MiB:\n")
        out.append("| server | before | open | after | KiB per stream |")
        out.append("| --- | ---: | ---: | ---: | ---: |")
        for name in servers:
            r = idle[name]
            out.append(f"| {name} | {r['rss_before_kib'] / 1024:.1f} | "
                       f"{r['rss_open_kib'] / 1024:.1f} | "
                       f"{r['rss_after_kib'] / 1024:.1f} | "
                       f"{r['kib_per_stream']:.1f} |")
    if "large_db" in results:
        large = results["large_db"]
        out.append("")
        out.append(f"Our server on a generated database of {large['features']:,} "
                   "features against the built-in 100 (ListFeatures of a small "
                   "rectangle, one call in flight):\n")
        out.append("| database | start-up s | RSS MiB | peak RSS MiB | features "
                   "per call | p50 µs | p99 µs |")
        out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for key in ("builtin", "large"):
            x = large[key]
            out.append(f"| {key} | {x['startup_seconds']:.2f} | "
                       f"{x['rss_kib'] / 1024:.1f} | {x['peak_rss_kib'] / 1024:.1f} | "
                       f"{x['features_per_call']:.1f} | {x['p50_us']:.0f} | "
                       f"{x['p99_us']:.0f} |")
    if "replicas" in results:
        out.append("")
        out.append("Replicas (GetFeature, 256 in flight over 8 connections, the "
                   "client on both cores):\n")
        out.append("| layout | calls/s | vs one | replica CPU shares |")
        out.append("| --- | ---: | ---: | --- |")
        for layout, r in results["replicas"].items():
            ratio = r.get("ratio_to_one")
            out.append(f"| {layout} | {r['calls_per_second']:,.0f} | "
                       f"{f'{ratio:.2f}x' if ratio else '-'} | "
                       f"{r['replica_cpu_shares']} |")
    return "\n".join(out) + "\n"


def machine_facts():
    facts = {"cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            facts["cpu"] = m.group(1) if m else "unknown"
    except OSError:
        pass
    facts["kernel"] = os.uname().release
    try:
        facts["grpc"] = subprocess.run(
            ["pkg-config", "--modversion", "grpc++"], stdout=subprocess.PIPE,
            text=True).stdout.strip()
    except OSError:
        pass
    return facts


if __name__ == "__main__":
    main()
