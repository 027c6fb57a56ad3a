#!/usr/bin/env bash
# What do idle RouteChat streams cost a server in memory? For routeguide-server
# and both baselines in turn: starts the server (one poller thread for ours),
# reads its VmRSS, opens STREAMS idle streams with idle-chat-streams, reads
# VmRSS once it has settled, closes the streams and reads VmRSS again.
#
#   tests/bench/idle_streams_memory.sh [STREAMS=10000] [CHANNELS=20] [idle-chat-streams flags...]
#
# Prints one line per server: RSS before, with the streams open, after
# closing (KiB), and the cost per open stream. For routeguide-server it also
# checks, through its metrics, that the server holds every call.
set -euo pipefail
cd "$(dirname "$0")/../.."
streams=${1:-10000}
channels=${2:-20}
shift $(( $# < 2 ? $# : 2 ))
client_args=("$@")

ninja -C build server/routeguide-server tests/bench/idle-chat-streams \
  tests/bench/sync-baseline-server tests/bench/callback-baseline-server >/dev/null

work=$(mktemp -d)
server_pid=
client_pid=
cleanup() {
  [ -n "$client_pid" ] && kill -KILL "$client_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
threads_of() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }

# Waits until the RSS of $1 changes by less than 256 KiB over half a second
# (at most 20 s); prints it.
settled_rss() {
  local last now
  last=$(rss_kib "$1")
  for _ in $(seq 40); do
    sleep 0.5
    now=$(rss_kib "$1")
    if (( now - last < 256 && last - now < 256 )); then break; fi
    last=$now
  done
  echo "$now"
}

# Waits for a line matching $2 in file $1 (at most $3 tenths of a second).
wait_for_line() {
  for _ in $(seq "$3"); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# routeguide_calls_in_flight from the metrics at port $1.
calls_in_flight() {
  curl -s "http://127.0.0.1:$1/metrics" |
    awk '/^routeguide_calls_in_flight/ {print int($2)}'
}

measure() {
  local name=$1
  shift
  "$@" 2>"$work/server.log" &
  server_pid=$!
  wait_for_line "$work/server.log" 'listening on' 100 ||
    { cat "$work/server.log"; echo "$name did not start" >&2; exit 1; }
  local port metrics_port
  port=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$work/server.log")
  metrics_port=$(sed -n 's/.*metrics at .* (port \([0-9]*\)).*/\1/p' "$work/server.log")
  local before open after
  before=$(settled_rss "$server_pid")

  rm -f "$work/hold" "$work/client.out"
  mkfifo "$work/hold"
  build/tests/bench/idle-chat-streams --target="127.0.0.1:$port" \
    --streams="$streams" --channels="$channels" "${client_args[@]}" \
    <"$work/hold" >"$work/client.out" 2>"$work/client.log" &
  client_pid=$!
  exec 3>"$work/hold"  # Holds the streams until fd 3 gets a line.
  if ! wait_for_line "$work/client.out" '^open ' 1200; then
    cat "$work/client.log" >&2
    echo "$name: streams did not open" >&2
    exit 1
  fi
  local in_flight=n/a
  if [ -n "$metrics_port" ]; then
    for _ in $(seq 100); do
      in_flight=$(calls_in_flight "$metrics_port")
      (( in_flight >= streams )) && break
      sleep 0.1
    done
  fi
  open=$(settled_rss "$server_pid")
  local threads_open
  threads_open=$(threads_of "$server_pid")

  echo >&3
  exec 3>&-
  local client_rc=0
  wait "$client_pid" || client_rc=$?
  client_pid=
  after=$(settled_rss "$server_pid")
  printf '%-24s before %7d KiB  open %8d KiB  after %8d KiB  %5.1f KiB/stream  threads(open) %5d  calls(open) %s  client: %s(exit %d)\n' \
    "$name" "$before" "$open" "$after" \
    "$(awk -v a="$open" -v b="$before" -v n="$streams" 'BEGIN {print (a - b) / n}')" "$threads_open" "$in_flight" \
    "$(tr '\n' ' ' <"$work/client.out")" "$client_rc"
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=
}

measure routeguide-server build/server/routeguide-server \
  --address=127.0.0.1:0 --threads=1 --reflection=false \
  --metrics_address=127.0.0.1:0
measure sync-baseline-server build/tests/bench/sync-baseline-server \
  --address=127.0.0.1:0
measure callback-baseline-server build/tests/bench/callback-baseline-server \
  --address=127.0.0.1:0
