#!/usr/bin/env python3
"""Where a server's start-up goes, in instructions: exec to the first
answered GetFeature, under callgrind.

bench.py times start-up (bench_startup.py); on a shared machine the times
move by a millisecond between runs, and even with how the binary's file
came into the page cache. Instructions do not. Each server named starts
under `valgrind --tool=callgrind` with the flags bench.py gives it, gets
one GetFeature over a raw HTTP/2 connection (bench_startup.py's), and
its counters are dumped the moment the answer is in. The table splits
them into:

  loader       the dynamic loader at exec (`_dl_start`): mapping the
               shared libraries and relocating them;
  before main  the libraries' and the program's static constructors
               (protobuf's descriptors, flag registration, gRPC's plugin
               factories) and the C runtime: what no function below holds;
  main         everything `main` does on its thread until the answer;
  builder      of which gRPC's `ServerBuilder` constructor: it makes every
               plugin registered at static initialisation, and the
               reflection plugin's builds protobuf's descriptor.proto
               descriptors (`DescriptorPool::generated_pool`), whether the
               server then serves reflection or not;
  threads      every other thread (`start_thread`): gRPC's pollers,
               executors and timers, the server's own.

  tests/bench/startup_instructions.py [--build DIR] [--servers ours,callback,sync]

grpc-go is left out: the Go runtime does not run under valgrind. Exit 0
with the table, 2 when it cannot measure. Every server is started in a
session of its own and ended by its PID.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind_costs  # noqa: E402
from bench_measure import SERVERS, free_port  # noqa: E402
from bench_startup import check_first_answer, first_call  # noqa: E402
from callgrind_server import (CannotRun, control, dump_complete,  # noqa: E402
                              kill_and_reap, quiet_environment, require_tools)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BUILD = os.path.join(os.path.dirname(os.path.dirname(HERE)),
                             "build-release")
# Under valgrind a start-up takes a second or two, not milliseconds.
ANSWER_TIMEOUT_S = 120
BUILDER = "grpc::ServerBuilder::ServerBuilder()"


def profile_startup(build, name, workdir):
    """Runs server `name` under callgrind to its first answer; returns the
    parsed Profile of everything until then."""
    binary, flags = SERVERS[name]
    path = os.path.join(build, binary)
    if not os.path.exists(path):
        raise CannotRun(f"{path} is not built")
    out = os.path.join(workdir, f"{name}.callgrind")
    vgdb_prefix = os.path.join(workdir, f"{name}.vgdb")
    port = free_port()
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         f"--vgdb-prefix={vgdb_prefix}", path,
         f"--address=127.0.0.1:{port}", *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, env=quiet_environment(),
        start_new_session=True)
    try:
        deadline = time.perf_counter() + ANSWER_TIMEOUT_S
        try:
            check_first_answer(name, first_call(port, deadline))
        except (OSError, RuntimeError) as error:
            raise CannotRun(f"{name}: the first call failed: {error}")
        control(process.pid, vgdb_prefix, "--dump")
        dump_path = f"{out}.1"
        deadline = time.monotonic() + 60
        while not dump_complete(dump_path):
            if time.monotonic() > deadline:
                raise CannotRun(f"{name}: callgrind wrote no dump in 60 s")
            time.sleep(0.05)
    finally:
        kill_and_reap(process)
    return callgrind_costs.parse_file(dump_path)


def split(profile):
    """The table's columns from one start-up's profile."""
    total = profile.totals if profile.totals is not None else profile.total()
    parts = {
        "loader": profile.inclusive("_dl_start"),
        "main": profile.inclusive("main"),
        "builder": profile.inclusive(BUILDER),
        "threads": profile.inclusive("start_thread"),
    }
    if parts["loader"] == 0 or parts["main"] == 0:
        raise CannotRun("the profile has no _dl_start or main: "
                        "not a start-up, or symbols missing")
    parts["before main"] = total - parts["loader"] - parts["main"] - parts["threads"]
    parts["total"] = total
    return parts


COLUMNS = ["total", "loader", "before main", "main", "builder", "threads"]


def print_table(rows):
    width = max(len(name) for name in rows)
    print(f"{'server':<{width}}  " + "  ".join(f"{c:>11}" for c in COLUMNS))
    for name, parts in rows.items():
        print(f"{name:<{width}}  " +
              "  ".join(f"{parts[c] / 1e6:>10.2f}M" for c in COLUMNS))
    first = next(iter(rows))
    for name, parts in list(rows.items())[1:]:
        print(f"{first} over {name}: {rows[first]['total'] / parts['total']:.2f}x "
              f"the instructions ({(rows[first]['total'] - parts['total']) / 1e6:+.2f}M)")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=DEFAULT_BUILD)
    parser.add_argument("--servers", default="ours,callback,sync")
    args = parser.parse_args(argv)
    names = [n for n in args.servers.split(",") if n]
    unknown = [n for n in names if n not in SERVERS or n == "go"]
    if not names or unknown:
        print(f"--servers: unknown or not measurable: {','.join(unknown)} "
              f"(known: {','.join(n for n in SERVERS if n != 'go')})",
              file=sys.stderr)
        return 2
    try:
        require_tools()
        rows = {}
        with tempfile.TemporaryDirectory(prefix="startup-instructions-") as workdir:
            for name in names:
                rows[name] = split(profile_startup(args.build, name, workdir))
    except CannotRun as error:
        print(f"cannot measure: {error}", file=sys.stderr)
        return 2
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
