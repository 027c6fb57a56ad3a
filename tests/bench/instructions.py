#!/usr/bin/env python3
"""Server instructions per call, checked against a committed baseline.

Timings on a shared machine are noise; instruction counts are not. This
runs build/server/routeguide-server under callgrind, drives a fixed
workload per call kind with the project's load generator, and reports the
server's instructions per call of each kind (start-up, shutdown and each
client's connection set-up excluded: see measure_kind) and where they go,
by library. Against tests/bench/instructions.json it exits

  0  no kind more than --tolerance % (3) over the baseline (lower is fine;
     past the tolerance it says so and suggests --update),
  1  some kind costs more than the tolerance allows (a regression),
  2  it cannot measure: no valgrind, binaries missing, the server does not
     start, calls fail, no baseline, or one made with other workloads.

  tests/bench/instructions.py [--build DIR] [--update] [--baseline FILE]
      [--tolerance 3] [--json OUT] [--server-arg=--flag=value ...] [--floor]

--server-arg adds server flags for A/B experiments: it then only prints,
unless --baseline names a file to compare with (or, with --update, to
write: --update never writes the committed baseline with extra flags).
--floor also measures tests/bench/cq-floor-server, the least a server on
gRPC's completion-queue API does (every kind but RouteChat), and prints
ours over it: how much of a call is ours to cut. See docs/instructions.md.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind_costs  # noqa: E402
from instruction_groups import (GROUPS, Grouping, generated_functions,  # noqa: E402
                                own_functions, static_library_functions)
from callgrind_server import (CallgrindServer, CannotRun,  # noqa: E402
                              require_tools, run_client, valgrind_version)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BASELINE = os.path.join(HERE, "instructions.json")
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))

# The guard's spin polls by the clock, not a fixed number of instructions.
SERVER_FLAGS = ["--threads=1", "--reflection=false", "--http2_guard_spin=0"]

# ListFeatures of the rectangle holding all 100 built-in features.
LIST_ALL_FLAGS = ["--mix=list:1", "--list_rect=40,-75,42,-74"]
# Per kind: the measured calls, the calls kept in flight, the client flags.
# Each kind's run is preceded by a short one of `fixed_cost_requests` calls
# whose cost is subtracted (see measure_kind).
WORKLOADS = {
    "GetFeature": {"requests": 2000, "concurrency": 8,
                   "flags": ["--mix=get:1", "--hit_ratio=1"]},
    "ListFeatures": {"requests": 200, "concurrency": 4, "flags": LIST_ALL_FLAGS},
    "RecordRoute": {"requests": 200, "concurrency": 4,
                    "flags": ["--mix=record:1", "--route_points=100"]},
    "RouteChat": {"requests": 100, "concurrency": 4,
                  "flags": ["--mix=chat:1", "--chat_notes=100",
                            "--chat_locations=10"]},
    # ListFeatures again at the benchmark's concurrency: what every call
    # pays for each other call pending on its queue (Debian's gRPC scans
    # them all at each completion) shows here, and hardly at 4.
    "ListFeatures@64": {"requests": 400, "concurrency": 64,
                        "flags": LIST_ALL_FLAGS},
}
KINDS = tuple(WORKLOADS)
# The printed tables' kind column: the longest name and a space.
KIND_WIDTH = max(len(kind) for kind in KINDS) + 1
# Seeds: the measured run takes 1; the short runs others, so that their
# RouteChat notes never land at the measured run's locations.
MEASURED_SEED, FIXED_COST_SEED, WARMUP_SEED = 1, 2, 3


def fixed_cost_requests(workload):
    """The short run: one call per slot in flight."""
    return workload["concurrency"]


def workload_settings():
    """What a baseline must have been made with to be compared."""
    kinds = {}
    for kind, w in WORKLOADS.items():
        kinds[kind] = {"requests": w["requests"], "concurrency": w["concurrency"],
                       "fixed_cost_requests": fixed_cost_requests(w),
                       "client_flags": list(w["flags"]),
                       "seed": MEASURED_SEED}
    return {"server_flags": list(SERVER_FLAGS), "kinds": kinds}


def ldd(binary):
    """ldd's list of the shared libraries `binary` loads ("" if it fails)."""
    try:
        return subprocess.run(["ldd", binary], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def grpc_version(profile, server_binary):
    """gRPC's version as loaded by the server: libgrpc++.so.X.Y.Z's name,
    or, linked in, what the server's --version says."""
    for obj in profile.by_object():
        found = re.search(r"libgrpc\+\+\.so\.(\d+\.\d+\.\d+)", obj)
        if found:
            return found.group(1)
    try:
        out = subprocess.run([server_binary, "--version"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    found = re.search(r"^gRPC (\d+\.\d+\.\d+)", out, re.M)
    return found.group(1) if found else "unknown"


def measure_kind(server, client, kind, workdir, grouping):
    """Server instructions per call of one kind, and their split by group.

    Each client run costs the server more than its calls: accepting the
    connection, the client's ListFeatures over the world (it learns the
    features first), closing. So the kind runs three times: a warm-up
    (first-use costs, not measured), a short run of one call per slot, and
    the measured run; per call is (measured - short) / (calls - short
    calls), which cancels the per-connection costs."""
    w = WORKLOADS[kind]
    flags = [*w["flags"], f"--concurrency={w['concurrency']}"]
    short = fixed_cost_requests(w)

    def run(requests, seed, name):
        path = os.path.join(workdir, f"{kind}-{name}.json")
        report = run_client(client, server.target,
                            [*flags, f"--requests={requests}", f"--seed={seed}"],
                            path, cpu=server.cpu)
        if report["total"]["completed"] != requests:
            raise CannotRun(f"{kind}: {report['total']['completed']} calls "
                            f"completed of {requests}")

    run(short, WARMUP_SEED, "warmup")
    server.zero()
    run(short, FIXED_COST_SEED, "short")
    short_profile = callgrind_costs.parse_file(server.dump())
    run(w["requests"], MEASURED_SEED, "measured")
    measured_profile = callgrind_costs.parse_file(server.dump())
    for profile in (short_profile, measured_profile):
        if profile.totals is not None and profile.total() != profile.totals:
            raise CannotRun(f"{kind}: the callgrind file's costs add up to "
                            f"{profile.total()}, its totals say {profile.totals}")
    calls = w["requests"] - short
    per_call = (measured_profile.total() - short_profile.total()) / calls
    if per_call <= 0:
        raise CannotRun(f"{kind}: the measured run cost no more than the short "
                        "one: calls were not counted")
    short_groups = grouping.costs(short_profile)
    measured_groups = grouping.costs(measured_profile)
    groups = {g: (measured_groups[g] - short_groups[g]) / calls for g in GROUPS}
    return {"instructions_per_call": round(per_call),
            "by_group_per_call": {g: round(v) for g, v in groups.items()},
            "short_run_instructions": short_profile.total(),
            "measured_run_instructions": measured_profile.total()}, measured_profile


# The floor server (floor_server.cc, --floor): its binary in the build,
# and the kinds it serves (not RouteChat).
FLOOR_BINARY = os.path.join("tests", "bench", "cq-floor-server")
FLOOR_KINDS = tuple(k for k in KINDS if k != "RouteChat")


def measure(build, server_args, server_binary=None, kinds=KINDS,
            server_flags=SERVER_FLAGS):
    """Every kind against one server under callgrind: ours, unless
    `server_binary` names another (which takes `server_flags`)."""
    server_binary = server_binary or os.path.join(build, "server",
                                                  "routeguide-server")
    client = os.path.join(build, "client", "routeguide-client")
    for path in (server_binary, client):
        if not os.access(path, os.X_OK):
            raise CannotRun(f"{path} is missing: build it first (ninja -C {build} "
                            f"{os.path.relpath(path, build)})")
    require_tools()
    generated = generated_functions(build)
    # A static_grpc build has the libraries inside the server binary.
    static = (static_library_functions()
              if not re.search(r"libgrpc\+\+\.so", ldd(server_binary)) else {})
    results = {}
    version = "unknown"
    with tempfile.TemporaryDirectory(prefix="instructions-") as workdir:
        with CallgrindServer(server_binary, [*server_flags, *server_args],
                             workdir) as server:
            grouping = Grouping(server_binary, generated, server.mapped_objects(),
                                ours=own_functions(build), static=static)
            for kind in kinds:
                results[kind], profile = measure_kind(server, client, kind,
                                                      workdir, grouping)
                version = grpc_version(profile, server_binary)
    return results, {"valgrind": valgrind_version(), "grpc": version}


def compare(baseline, now, tolerance):
    """Rows (kind, baseline, now, change %, verdict) and the exit code: 1
    when a kind costs more than `tolerance` % over its baseline."""
    rows = []
    for kind in KINDS:
        base, current = baseline[kind], now[kind]
        change = (current - base) * 100.0 / base
        if change > tolerance:
            verdict = "REGRESSION"
        elif change < -tolerance:
            verdict = "lower (--update?)"
        else:
            verdict = "ok"
        rows.append((kind, base, current, change, verdict))
    return rows, 1 if any(r[4] == "REGRESSION" for r in rows) else 0


def load_baseline(path):
    """The baseline's per-call counts; CannotRun when there is none or it
    was made with other workloads."""
    try:
        with open(path) as f:
            baseline = json.load(f)
    except FileNotFoundError:
        raise CannotRun(f"no baseline at {path}: make one with --update")
    except (OSError, ValueError) as e:
        raise CannotRun(f"cannot read the baseline {path}: {e}")
    if baseline.get("workload") != workload_settings():
        raise CannotRun(f"the baseline {path} was made with other workload "
                        "settings than this script's: make a new one with --update")
    counts = baseline.get("instructions_per_call", {})
    if sorted(counts) != sorted(KINDS) or not all(
            isinstance(v, (int, float)) and v > 0 for v in counts.values()):
        raise CannotRun(f"the baseline {path} lacks counts for {', '.join(KINDS)}")
    return baseline


def write_json(path, data):
    try:
        with open(path, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
    except OSError as e:
        raise CannotRun(f"cannot write {path}: {e}")


def print_counts(results):
    print(f"{'kind':<{KIND_WIDTH}}{'instructions/call':>19}")
    for kind in KINDS:
        print(f"{kind:<{KIND_WIDTH}}{results[kind]['instructions_per_call']:>19,}")


def print_shares(results):
    """Each group's share of the server's instructions per call."""
    print("\nshare of the server's instructions per call, by library")
    print(f"{'':<28}" + "".join(f"{k:>{KIND_WIDTH}}" for k in KINDS))
    for group in GROUPS:
        cells = []
        for kind in KINDS:
            r = results[kind]
            share = r["by_group_per_call"][group] * 100.0 / r["instructions_per_call"]
            cells.append(f"{share:>{KIND_WIDTH - 1}.1f}%")
        print(f"{group:<28}" + "".join(cells))


def print_comparison(rows, tolerance):
    print(f"\n{'kind':<{KIND_WIDTH}}{'baseline':>12}{'now':>12}{'change':>10}")
    for kind, base, current, change, verdict in rows:
        mark = "" if verdict == "ok" else f"  {verdict}"
        print(f"{kind:<{KIND_WIDTH}}{base:>12,}{current:>12,}{change:>+9.2f}%{mark}")
    if any(r[4] == "REGRESSION" for r in rows):
        print(f"\nregression: instructions per call rose more than {tolerance}% "
              "over the baseline")
    elif any(r[4] != "ok" for r in rows):
        print(f"\nfewer instructions than the baseline (more than {tolerance}%): "
              "if that is meant, record it with --update")


def print_floor(ours, floor):
    """Ours against the floor server, kind by kind."""
    print("\nours against the floor server (tests/bench/floor_server.cc: the "
          "least a\ncompletion-queue server does), instructions per call")
    print(f"{'kind':<{KIND_WIDTH}}{'ours':>12}{'floor':>12}{'ours/floor':>12}")
    for kind in FLOOR_KINDS:
        a = ours[kind]["instructions_per_call"]
        b = floor[kind]["instructions_per_call"]
        print(f"{kind:<{KIND_WIDTH}}{a:>12,}{b:>12,}{a / b:>11.3f}x")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Server instructions per call under callgrind, "
                    "checked against a baseline (docs/instructions.md).")
    parser.add_argument("--build", default=os.path.join(SOURCE_ROOT, "build"),
                        help="build directory (default: build/)")
    parser.add_argument("--update", action="store_true",
                        help="write the baseline from this run")
    parser.add_argument("--baseline", help="baseline file (default: "
                        "tests/bench/instructions.json)")
    parser.add_argument("--tolerance", type=float, default=3.0,
                        help="percent over the baseline still accepted (3)")
    parser.add_argument("--json", help="write this run's figures here")
    parser.add_argument("--server-arg", action="append", default=[],
                        metavar="FLAG", help="extra server flag (--server-arg=--x=y)")
    parser.add_argument("--floor", action="store_true",
                        help="also measure the floor server (the least a "
                        "completion-queue server does) and print ours over "
                        "it; compares with no baseline (--tolerance unused)")
    args = parser.parse_args(argv)
    if args.floor and (args.update or args.baseline):
        parser.error("--floor only prints: not with --update or --baseline")
    return args


def interrupted(signum, frame):
    raise KeyboardInterrupt


def main(argv):
    args = parse_args(argv)
    # meson test ends a test that runs too long with SIGTERM: unwind as on
    # Ctrl-C (handled even where the shell started us ignoring SIGINT), so
    # that every process started is ended by its PID.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupted)
    started = time.monotonic()
    baseline_path = args.baseline or DEFAULT_BASELINE
    compare_wanted = not args.update and not args.floor and (
        args.baseline or not args.server_arg)
    try:
        if args.update and args.server_arg and not args.baseline:
            raise CannotRun("--update with --server-arg writes only a --baseline "
                            "file named for it, never the committed baseline")
        baseline = load_baseline(baseline_path) if compare_wanted else None
        build = os.path.abspath(args.build)
        results, made_with = measure(build, args.server_arg)
        floor = None
        if args.floor:
            floor, _ = measure(build, [], os.path.join(build, FLOOR_BINARY),
                               FLOOR_KINDS, server_flags=[])
    except CannotRun as e:
        print(f"instructions: cannot measure: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("instructions: interrupted", file=sys.stderr)
        return 2
    seconds = time.monotonic() - started
    if args.server_arg:
        print("extra server flags: " + " ".join(args.server_arg))
    print_counts(results)
    print_shares(results)
    if floor is not None:
        print_floor(results, floor)
    print(f"\n{made_with['valgrind']}, gRPC {made_with['grpc']}, {seconds:.0f} s")
    counts = {k: results[k]["instructions_per_call"] for k in KINDS}
    try:
        if args.json:
            write_json(args.json, {
                "instructions_per_call": counts, "kinds": results,
                "made_with": made_with, "server_args": args.server_arg,
                "workload": workload_settings(), "seconds": round(seconds, 1),
                **({"floor_kinds": floor} if floor is not None else {})})
        if args.update:
            write_json(baseline_path, {
                "about": "Server instructions per call; made by "
                         "tests/bench/instructions.py --update (docs/instructions.md)",
                "instructions_per_call": counts, "made_with": made_with,
                "server_args": args.server_arg, "workload": workload_settings()})
            print(f"wrote {baseline_path}")
            return 0
    except CannotRun as e:
        print(f"instructions: {e}", file=sys.stderr)
        return 2
    if baseline is None:
        return 0
    if baseline.get("made_with") != made_with:
        print(f"note: the baseline was made with {baseline.get('made_with')}, "
              f"this run with {made_with}")
    if baseline.get("server_args", []) != args.server_arg:
        print(f"note: the baseline's extra server flags were "
              f"{baseline.get('server_args', [])}, this run's {args.server_arg}")
    rows, code = compare(baseline["instructions_per_call"], counts, args.tolerance)
    print_comparison(rows, args.tolerance)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
