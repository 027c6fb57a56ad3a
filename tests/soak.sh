#!/usr/bin/env bash
# Soak: routeguide-server under a chaos mix for N minutes, on loopback only.
# Rounds of load generators that are interrupted, killed mid-stream (a
# disconnect), or run with deadlines too short to meet, against one server.
# Prints the server's RSS and calls in flight at the start and the end (from
# its SIGUSR1 status line) and fails if calls are left in flight or RSS grew
# by more than the allowed factor.
#
#   tests/soak.sh [MINUTES=2] [MAX_RSS_GROWTH=3]   (SOAK_SECONDS=N for a shorter run)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-2}
max_growth=${2:-3}

[ -f build/build.ninja ] || meson setup build
ninja -C build >/dev/null
server_bin=build/server/routeguide-server
client_bin=build/client/routeguide-client

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$server_bin" --address=127.0.0.1:0 --threads=2 --max_notes=20000 \
  --stream_idle_timeout=5s 2>"$work/server.log" &
server=$!
pids+=("$server")
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$work/server.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/server.log"; exit 1; }
target=127.0.0.1:$port

status() {  # Prints the server's latest status line.
  kill -USR1 "$server"
  for _ in $(seq 50); do
    line=$(grep 'status:' "$work/server.log" | tail -n 1)
    [ "$(grep -c 'status:' "$work/server.log")" -ge "$1" ] && { echo "$line"; return; }
    sleep 0.1
  done
  echo "no status line" >&2
  exit 1
}
field() { sed -n "s/.* \([0-9-]*\) $1.*/\1/p"; }
rss() { sed -n 's/.*RSS \([0-9-]*\) KiB.*/\1/p'; }

# Warm up once so the baseline includes gRPC's own buffers.
"$client_bin" load --target="$target" --duration=3s --concurrency=32 >/dev/null || true
start=$(status 1)
echo "start: ${start#*status: }"

end_time=$(( $(date +%s) + ${SOAK_SECONDS:-$(( minutes * 60 ))} ))
round=0
statuses=1
while [ "$(date +%s)" -lt "$end_time" ]; do
  round=$((round + 1))
  # Disconnects: long streams whose client is killed mid-flight.
  "$client_bin" load --target="$target" --duration=1h --concurrency=64 \
    --mix=chat:1,record:1,list:1,get:1 --chat_notes=1000 --route_points=1000 \
    >/dev/null 2>&1 &
  killed=$!
  pids+=("$killed")
  # Deadlines: calls that mostly cannot finish in time.
  "$client_bin" load --target="$target" --duration=3s --concurrency=64 \
    --deadline=2ms --max_error_rate=1 >/dev/null 2>&1 || true
  # Cancels: a run interrupted by Ctrl-C, in-flight calls abandoned.
  "$client_bin" load --target="$target" --duration=1h --concurrency=64 \
    >/dev/null 2>&1 &
  interrupted=$!
  pids+=("$interrupted")
  sleep 2
  kill -KILL "$killed" 2>/dev/null || true
  kill -INT "$interrupted" 2>/dev/null || true
  wait "$killed" 2>/dev/null || true
  wait "$interrupted" 2>/dev/null || true
done

# Let the server see every disconnect and free the calls.
sleep 2
statuses=2
end=$(status 2)
echo "end after $round rounds: ${end#*status: }"

kill -TERM "$server"
wait "$server" || { echo "server exited with $?" >&2; exit 1; }

in_flight=$(echo "$end" | field "calls in flight")
start_rss=$(echo "$start" | rss)
end_rss=$(echo "$end" | rss)
echo "calls in flight at the end: $in_flight; RSS $start_rss KiB -> $end_rss KiB"
[ "$in_flight" = 0 ] || { echo "FAIL: calls left in flight" >&2; exit 1; }
if [ "$end_rss" -gt $(( start_rss * max_growth )) ]; then
  echo "FAIL: RSS grew more than ${max_growth}x" >&2
  exit 1
fi
echo "PASS"
