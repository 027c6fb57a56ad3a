#!/usr/bin/env python3
"""Side-by-side benchmark: our completion-queue server against the same
service on gRPC's synchronous and callback APIs (tests/bench/*-baseline-
server) and, where it is built, on grpc-go (tests/bench/go_baseline/),
every figure measured in one run on one machine.

Each server is held to one core (taskset -c 0), the load to the other
(taskset -c 1). Every (scenario, server) point runs --rounds times after an
unmeasured warm-up, servers alternating round by round so drift hits them
alike, and the median round is reported. Per point: calls/s, messages/s
(both directions), p50/p99/p99.9 latency, server CPU microseconds per call
(from the process's own utime+stime), server peak RSS (VmHWM), and ratios
to each baseline.

    tests/bench/bench.py [--build build-release] [--rounds 3] [--seconds 10]
                         [--only get_64,list_100] [--replicas] [--redis]
                         [--json out.json]

--startup N times each server from exec to its first answered GetFeature
(bench_startup.py), N times, servers alternating.

--redis adds RouteChat with its notes in Redis (Debian's redis-server,
started fresh for each round) against the in-process store, with one
replica and with two.

Loopback only; every process started is killed by its PID at the end.

Measuring is in bench_measure.py, reporting in bench_report.py, beside
this file.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

from bench_measure import (ALL_FEATURES_RECT, DEFAULT_SERVERS,
                           OPTIONAL_SERVERS, SERVERS, Server, h2load_bodies,
                           cpu_us_per_call, measure, measure_idle_streams,
                           measure_large_db, median_index, median_round,
                           run_h2load)
from bench_replicas import (REDIS_CHAT_FLAGS, measure_redis_chat,
                            measure_replicas)
from bench_report import (add_ratios, add_redis_ratios, fmt_rate,
                          format_markdown, machine_facts, name_width, print_point,
                          print_redis_chat, print_table)
from bench_startup import measure_startup

# Scenario: load-client flags. "rps_of" makes it open loop at a share of
# the rate our server reached in another scenario.
SCENARIOS = [
    ("get_1", "GetFeature, 1 in flight",
     ["--mix=get:1", "--hit_ratio=1", "--concurrency=1"]),
    ("get_64", "GetFeature, 64 in flight",
     ["--mix=get:1", "--hit_ratio=1", "--concurrency=64"]),
    ("get_64_idle", "GetFeature, 64 in flight, beside 2,000 idle RouteChat "
     "streams", ["--mix=get:1", "--hit_ratio=1", "--concurrency=64"]),
    ("get_1024", "GetFeature, 1024 in flight over 4 connections",
     ["--mix=get:1", "--hit_ratio=1", "--concurrency=1024", "--channels=4"]),
    ("list_100", "ListFeatures of the 100-feature rectangle, 64 in flight",
     ["--mix=list:1", "--list_rect=" + ALL_FEATURES_RECT, "--concurrency=64"]),
    ("record_100", "RecordRoute of 100 points, 64 in flight",
     ["--mix=record:1", "--route_points=100", "--concurrency=64"]),
    # The same with the points gathered into a few sends by the client
    # (gRPC's buffer hint): a tenth of the load generator's system calls.
    ("record_100_batched", "RecordRoute of 100 points, 64 in flight, "
     "written with buffer hints (--batch_writes)",
     ["--mix=record:1", "--route_points=100", "--concurrency=64",
      "--batch_writes"]),
    ("chat_100", "RouteChat of 100 notes over 10 locations, 64 in flight",
     ["--mix=chat:1", "--chat_notes=100", "--chat_locations=10",
      "--concurrency=64"]),
    ("mixed", "the load generator's default mix, 64 in flight",
     ["--concurrency=64"]),
    ("open_50", "default mix, open loop (Poisson) at 50% of our mixed max",
     ["--arrival=poisson"]),
]
H2LOAD_SCENARIOS = {"get_64": "GetFeature", "list_100": "ListFeatures",
                    "record_100": "RecordRoute"}
# Scenarios run beside idle RouteChat streams, opened before the warm-up and
# held through the measured run (bench_measure.IdleStreams). Each is a
# pending operation on the server's queues that every other call passes by.
BACKGROUND_IDLE_STREAMS = {"get_64_idle": 2000}
# What the floor server can run: it does not serve RouteChat, which the
# other scenarios (and the idle-stream phase) use.
FLOOR_SCENARIOS = ("get_1", "get_64", "get_1024", "list_100", "record_100",
                   "record_100_batched")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="build-release")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--only", default="",
                        help="comma list of scenarios (default: all)")
    parser.add_argument("--servers", default="",
                        help="comma list of: " + ", ".join(SERVERS) +
                        " (default: " + ",".join(DEFAULT_SERVERS) +
                        ", and " + ",".join(OPTIONAL_SERVERS) + " if built)")
    parser.add_argument("--no-h2load", action="store_true")
    parser.add_argument("--replicas", action="store_true",
                        help="also measure our server as 1 and 2 processes")
    parser.add_argument("--redis", action="store_true",
                        help="also measure RouteChat with the notes in Redis "
                        "against the in-process store, 1 and 2 replicas")
    parser.add_argument("--idle-streams", type=int, default=10000,
                        help="idle RouteChat streams for the memory phase "
                        "(0: skip it)")
    parser.add_argument("--large-db", type=int, default=1000000,
                        help="features in the generated database (0: skip)")
    parser.add_argument("--startup", type=int, default=7,
                        help="start-ups per server, exec to the first "
                        "answered GetFeature (0: skip)")
    parser.add_argument("--json", default="")
    parser.add_argument("--markdown", default="",
                        help="also write the tables as Markdown to this file")
    args = parser.parse_args()
    if (args.rounds < 1 or args.seconds <= 0 or args.warmup < 0 or
            args.startup < 0):
        parser.error("--rounds >= 1, --seconds > 0, --warmup >= 0, "
                     "--startup >= 0")
    if not args.servers:
        args.servers = ",".join(DEFAULT_SERVERS + [
            name for name in OPTIONAL_SERVERS
            if os.path.exists(os.path.join(args.build, SERVERS[name][0]))])
    servers = args.servers.split(",")
    for name in servers:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r}")
    width = name_width(servers)
    wanted = set(args.only.split(",")) if args.only else None
    scenarios = [s for s in SCENARIOS if wanted is None or s[0] in wanted]
    if wanted and len(scenarios) != len(wanted):
        parser.error("unknown scenario in --only; known: " +
                     ",".join(s[0] for s in SCENARIOS))
    if "floor" in servers:
        chat = [s[0] for s in scenarios if s[0] not in FLOOR_SCENARIOS]
        if chat or args.idle_streams > 0:
            parser.error("the floor server does not serve RouteChat: give it "
                         "--only from " + ",".join(FLOOR_SCENARIOS) +
                         " and --idle-streams 0" +
                         (f" (not {','.join(chat)})" if chat else ""))
    if os.cpu_count() < 2:
        print("warning: fewer than 2 cores; server and load share one",
              file=sys.stderr)
    needed = [SERVERS[name][0] for name in servers] + [
        "client/routeguide-client"]
    if args.idle_streams > 0 or any(s[0] in BACKGROUND_IDLE_STREAMS
                                    for s in scenarios):
        needed.append("tests/bench/idle-chat-streams")
    if (args.redis or args.replicas or args.large_db > 0) and "ours" not in servers:
        needed.append(SERVERS["ours"][0])
    missing = [n for n in needed if not os.path.exists(os.path.join(args.build, n))]
    if missing:
        parser.error(f"{', '.join(missing)} not in {args.build}: build first, e.g. "
                     f"meson setup {args.build} --buildtype=release && "
                     f"ninja -C {args.build}")
    if args.redis and not shutil.which("redis-server"):
        parser.error("--redis needs redis-server (scripts/install-deps.sh "
                     "installs it)")
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
                    rounds[name].append(measure(
                        args.build, name, flags, args.seconds, args.warmup,
                        workdir, key,
                        idle_streams=BACKGROUND_IDLE_STREAMS.get(key, 0)))
            point = {"title": title, "client_flags": flags}
            for name in servers:
                point[name] = median_round(rounds[name])
            if use_h2load and key in H2LOAD_SCENARIOS:
                # Servers alternate round by round here too, so that the
                # rounds pair up (bench_report.paired_ratios).
                method = H2LOAD_SCENARIOS[key]
                rates = {name: [] for name in servers}
                shares = {name: [] for name in servers}
                for _ in range(args.rounds):
                    for name in servers:
                        server = Server(args.build, name, workdir)
                        try:
                            rate, share = run_h2load(server.port, method,
                                                     bodies[method],
                                                     int(args.seconds),
                                                     server.process.pid)
                        finally:
                            server.stop()
                        rates[name].append(rate)
                        shares[name].append(share)
                for name in servers:
                    # The round with the median rate, its figures together.
                    median = median_index(rates[name])
                    r = point[name]
                    r["h2load_calls_per_second"] = rates[name][median]
                    r["h2load_rounds"] = rates[name]
                    r["h2load_server_cpu_share"] = shares[name][median]
                    r["h2load_server_cpu_us_per_call"] = cpu_us_per_call(
                        shares[name][median], rates[name][median])
            add_ratios(point, servers)
            results["scenarios"][key] = point
            print_point(key, point, servers)
            sys.stdout.flush()
        if args.startup > 0:
            results["startup"] = measure_startup(args.build, servers,
                                                 args.startup)
            print(f"\nstart-up: exec to the first answered GetFeature, "
                  f"median of {args.startup}")
            for name in servers:
                r = results["startup"][name]
                print(f"  {name:<{width}} {r['median_ms']:6.1f} ms  (runs: " +
                      " ".join(f"{t:.1f}" for t in r["runs_ms"]) + ")")
        if args.idle_streams > 0:
            results["idle_streams"] = {"streams": args.idle_streams}
            print(f"\nidle streams: server RSS with {args.idle_streams:,} idle "
                  "RouteChat streams open, and after they end")
            for name in servers:
                r = measure_idle_streams(args.build, name, workdir,
                                         args.idle_streams)
                results["idle_streams"][name] = r
                print(f"  {name:<{width}} before {r['rss_before_kib'] / 1024:7.1f} MiB"
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
        if args.redis:
            results["redis_chat"] = {"client_flags": REDIS_CHAT_FLAGS}
            print("\nredis: RouteChat of 100 notes over 10 locations, 16 "
                  "streams; notes in the process (memory) or in one Redis on "
                  "loopback")
            for replicas in (1, 2):
                rounds = {"memory": [], "redis": []}
                for _ in range(args.rounds):
                    for store in rounds:
                        rounds[store].append(measure_redis_chat(
                            args.build, store, replicas, args.seconds,
                            args.warmup, workdir))
                for store in rounds:
                    results["redis_chat"][f"{store}_{replicas}"] = \
                        median_round(rounds[store])
            add_redis_ratios(results["redis_chat"])
            print_redis_chat(results["redis_chat"])
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


if __name__ == "__main__":
    main()
