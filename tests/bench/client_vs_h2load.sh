#!/usr/bin/env bash
# Is the load generator the bottleneck of its own measurement? Compares the
# GetFeature rate routeguide-client load gets from one server with what
# h2load (nghttp2, sending the same gRPC-framed request) gets from it, side
# by side in one run: server on core 0, load on core 1, one connection and
# 64 calls in flight each, runs alternated, medians compared.
#
#   tests/bench/client_vs_h2load.sh [ROUNDS=3] [SECONDS=10]
#
# Prints each run's calls/s and the ratio of the medians (ours / h2load).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
seconds=${2:-10}

scripts/install-deps.sh nghttp2-client util-linux
[ -f build/build.ninja ] || meson setup build
ninja -C build >/dev/null

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The request: a gRPC frame (uncompressed flag, big-endian length) around
# Point{latitude: 409146138, longitude: -746188906}, a stored feature.
python3 - "$work/body" <<'PY'
import struct, sys
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)
point = b"\x08" + varint(409146138) + b"\x10" + varint(-746188906)
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(point)) + point)
PY

taskset -c 0 build/server/routeguide-server --address=127.0.0.1:0 --threads=1 \
  --log_level=info 2>"$work/server.log" &
server_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$work/server.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/server.log"; echo "server did not start" >&2; exit 1; }

ours=()
theirs=()
for round in $(seq "$rounds"); do
  rate=$(taskset -c 1 build/client/routeguide-client load --target="127.0.0.1:$port" \
    --threads=1 --channels=1 --concurrency=64 --mix=get:1 --hit_ratio=1 \
    --warmup=2s --duration="${seconds}s" --json="$work/ours.json" >/dev/null &&
    python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["total"]["calls_per_second"]))' "$work/ours.json")
  ours+=("$rate")
  rate=$(taskset -c 1 h2load -c 1 -m 64 -t 1 --warm-up-time=2 -D "$seconds" \
    -H 'content-type: application/grpc' -H 'te: trailers' -d "$work/body" \
    "http://127.0.0.1:$port/routeguide.RouteGuide/GetFeature" |
    sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' | cut -d. -f1)
  theirs+=("$rate")
  echo "round $round: routeguide-client ${ours[-1]} calls/s, h2load ${theirs[-1]} req/s"
done

python3 - "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
ours = [float(x) for x in sys.argv[1].split()]
theirs = [float(x) for x in sys.argv[2].split()]
a, b = statistics.median(ours), statistics.median(theirs)
print(f"median: routeguide-client {a:.0f} calls/s, h2load {b:.0f} req/s, "
      f"ratio {a / b:.2f} (target >= 0.80)")
PY
