#!/usr/bin/env bash
# A local cluster in one command: one Redis (Debian's redis-server, no
# persistence, loopback, a free port, a scratch directory), N
# routeguide-server replicas on ports of their own that all keep their
# RouteChat notes in it, then:
#   1. the tutorial client through the first replica and again through the
#      last, which must get back the notes the first run stored (shared);
#   2. routeguide-client load over all replicas, round robin, every answer
#      checked (RouteChat's included), its report printed. With
#      --generators=N, N load clients started one after another with the
#      same --start_at (a few seconds ahead), so that they measure the same
#      seconds, each writing --json (and --hgrm) to the report directory;
#      then `routeguide-client report merge` makes one report of them
#      (a refusal to merge is a failure).
# Everything is stopped by PID at the end and the scratch directory removed.
# Exit code 0 when both steps were right; 1 when an answer was wrong, a call
# failed or a process did not start or stop cleanly; 2 for bad arguments
# (the script's, or a LOAD FLAG the client refused).
#
#   scripts/cluster.sh [--replicas=3] [--duration=10s] [--generators=1]
#                      [--report_dir=DIR] [--build=DIR] [LOAD FLAG...]
#
# LOAD FLAGs go to `routeguide-client load` after the script's own
# (--mix=..., --concurrency=64, --chat_notes=20, ...); --target is the
# script's, and so are --start_at, --json, --html and --hgrm with
# --generators=2 or more. --report_dir keeps each generator's load-I.json, load-I.txt (its
# table) and load-I.*.hgrm, and merged.json (default: the scratch
# directory, removed at the end). --build defaults to build/, configured
# and built like scripts/demo.sh does when needed (only the two binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/script_lib.sh

usage() {
  echo "usage: scripts/cluster.sh [--replicas=N] [--duration=D] [--generators=N] [--report_dir=DIR] [--build=DIR] [LOAD FLAG...]" >&2
  echo "error: $1" >&2
  exit 2
}

replicas=3
duration=10s
generators=1
report_dir=
build=build
load_flags=()
for arg in "$@"; do
  case $arg in
    --replicas=*) replicas=${arg#*=} ;;
    --duration=*) duration=${arg#*=} ;;
    --build=*) build=${arg#*=} ;;
    --generators=*) generators=${arg#*=} ;;
    --report_dir=*) report_dir=${arg#*=} ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    --target=* | --target) usage "--target is set by the script (the replicas)" ;;
    --replicas | --duration | --build | --generators | --report_dir) usage "$arg takes a value: $arg=VALUE" ;;
    --*) load_flags+=("$arg") ;;
    *) usage "unexpected argument '$arg'" ;;
  esac
done
if ! [[ $replicas =~ ^[0-9]+$ ]] || [ "$replicas" -lt 1 ] || [ "$replicas" -gt 32 ]; then
  usage "--replicas must be 1 to 32, got '$replicas'"
fi
[ -n "$duration" ] || usage "--duration is empty"
if ! [[ $generators =~ ^[0-9]+$ ]] || [ "$generators" -lt 1 ] || [ "$generators" -gt 8 ]; then
  usage "--generators must be 1 to 8, got '$generators'"
fi
if [ "$generators" -gt 1 ]; then
  for flag in "${load_flags[@]}"; do
    case $flag in
      --start_at* | --start-at* | --json* | --hgrm* | --html*)
        usage "${flag%%=*} is set by the script with --generators=$generators" ;;
    esac
  done
fi
if [ -n "$report_dir" ]; then
  mkdir -p "$report_dir" || usage "cannot create --report_dir=$report_dir"
fi
[ -n "$build" ] || usage "--build is empty"

# Installing and building print a line per step; their output goes to a
# log that is named when a step fails.
setup_log=$(mktemp -t routeguide-cluster-setup.XXXXXX.log)
step "Installing missing packages" scripts/install-deps.sh
if [ ! -f "$build/build.ninja" ]; then
  step "Configuring $build/" meson setup "$build"
fi
step "Building" ninja -C "$build" server/routeguide-server client/routeguide-client
rm -f "$setup_log"
server_bin=$build/server/routeguide-server
client_bin=$build/client/routeguide-client

scratch=$(mktemp -d -t routeguide-cluster.XXXXXX)
redis_pid=
replica_pids=()
# Whatever is still running when the script ends early (a failure,
# Ctrl-C): SIGTERM, up to 3 s to stop, then SIGKILL; by PID only.
# shellcheck disable=SC2317  # Called by the EXIT trap.
cleanup() {
  local pid alive
  local pids=("${replica_pids[@]}" ${redis_pid:+"$redis_pid"})
  [ ${#pids[@]} -gt 0 ] || { rm -rf "$scratch"; return; }
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    alive=false
    for pid in "${pids[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then alive=true; fi
    done
    $alive || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the end of a log whose process went wrong (the scratch directory
# goes away at exit).
show_log() {
  echo "--- $1 (last 20 lines) ---" >&2
  tail -n 20 "$1" >&2 || true
}

# Redis and the replicas run in sessions of their own (setsid, which execs
# them: $! is theirs), so Ctrl-C reaches the load client alone, which ends
# its run early and prints its report; then the script stops them.

# --- Redis: no persistence, loopback only, in the scratch directory. The
# bound on what it holds is its own maxmemory with an eviction policy
# (every notes key has a TTL, so volatile-lru evicts notes, least recently
# used locations first), plus the servers' --notes_ttl.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
redis_port=
for attempt in 1 2 3; do
  port=$(free_port)
  setsid redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$scratch" --logfile "$scratch/redis.log" --daemonize no \
    --maxmemory 256mb --maxmemory-policy volatile-lru &
  redis_pid=$!
  for _ in $(seq 100); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
      redis_port=$port
      break
    fi
    kill -0 "$redis_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$redis_port" ] && break
  # Lost the port to another process between choosing and binding it, or
  # did not start: try again on another port.
  kill -KILL "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=
  echo "redis-server did not answer PING on port $port (attempt $attempt)" >&2
  [ "$attempt" -lt 3 ] || { show_log "$scratch/redis.log"; exit 1; }
done
store=redis://127.0.0.1:$redis_port
echo "redis-server pid $redis_pid on 127.0.0.1:$redis_port (no persistence, maxmemory 256mb, volatile-lru)" >&2

# --- The replicas: port 0, each logs the port it got. One poller thread
# each, since they share this machine's cores.
for i in $(seq "$replicas"); do
  setsid "$server_bin" --address=127.0.0.1:0 --threads=1 --notes_store="$store" \
    2>"$scratch/replica-$i.log" &
  replica_pids+=("$!")
done
ports=()
for i in $(seq "$replicas"); do
  pid=${replica_pids[$((i - 1))]}
  log=$scratch/replica-$i.log
  port=$(server_port "$log" "$pid")
  if [ -z "$port" ]; then
    echo "error: replica $i did not start" >&2
    show_log "$log"
    exit 1
  fi
  ports+=("$port")
  echo "replica $i pid $pid on 127.0.0.1:$port, --notes_store=$store" >&2
done
targets=$(printf '127.0.0.1:%s,' "${ports[@]}")
targets=${targets%,}

status=0
usage_error=false

# --- Shared notes: the tutorial's RouteChat sends 5 notes at 3 points.
# Through replica 1 on an empty store it gets 2 back; through the last
# replica afterwards it must also get every note the first run stored at
# those points: 11 in all.
chat_replies() {
  "$client_bin" tutorial --target="127.0.0.1:$1" >"$scratch/tutorial-$2.txt" 2>&1 ||
    { show_log "$scratch/tutorial-$2.txt"; return 1; }
  grep -c '^Received message' "$scratch/tutorial-$2.txt" || true
}
first=$(chat_replies "${ports[0]}" first) || status=1
last=$(chat_replies "${ports[$((replicas - 1))]}" last) || status=1
if [ "$status" -eq 0 ]; then
  if [ "$first" = 2 ] && [ "$last" = 11 ]; then
    verdict=right
  else
    verdict="WRONG (expected 2 and 11)"
    status=1
  fi
  echo "shared notes: the tutorial's RouteChat through replica 1 got $first notes back," \
    "then through replica $replicas $last: $verdict"
fi

# --- The load, round robin over the replicas, every answer checked.
# Chat weighs more than in the default mix: it is what the store serves.
reports=${report_dir:-$scratch}
load_args=(load --target="$targets" --duration="$duration"
  "--mix=get:55,list:10,record:10,chat:25" --channels="$replicas")

# check_load TABLE CODE NAME: judges one load client's run from its printed
# table and exit code; sets status=1 or usage_error=true.
check_load() {
  local table=$1 code=$2 name=$3 wrong='' failed=''
  # The report's "all" row: kind started ok wrong failed ...
  read -r wrong failed < <(awk '$1 == "all" { print $4, $5 }' "$table") || true
  if [ -z "$wrong" ]; then
    if [ "$code" -eq 2 ]; then
      usage_error=true  # The client refused a LOAD FLAG and said why.
    elif [ "$code" -eq 3 ]; then
      echo "$name was interrupted before it measured anything" >&2
    else
      echo "error: $name printed no totals (exit code $code)" >&2
      status=1
    fi
  elif [ "$wrong" != 0 ] || [ "$failed" != 0 ]; then
    echo "error: $name: $wrong wrong answers, $failed failed calls" >&2
    status=1
  elif [ "$code" -eq 3 ]; then
    echo "$name was interrupted; its report covers the time it ran"
  elif [ "$code" -ne 0 ]; then
    echo "error: $name exited with code $code" >&2
    status=1
  fi
}

echo
if [ "$generators" -eq 1 ]; then
  # On Ctrl-C the client prints its report so far; tee ignores the signal
  # so that the report still reaches the terminal.
  one_json=()
  [ -z "$report_dir" ] || one_json=(--json="$reports/load-1.json" --hgrm="$reports/load-1")
  client_status=0
  "$client_bin" "${load_args[@]}" "${one_json[@]}" "${load_flags[@]}" |
    (trap '' INT && exec tee "$reports/load-1.txt") ||
    client_status=${PIPESTATUS[0]}
  check_load "$reports/load-1.txt" "$client_status" "the load client"
else
  # Several generators, as several machines would run them: each connects
  # and learns the features first, then waits for the same wall-clock
  # time, so their measured seconds coincide and their reports can be
  # merged. A second per generator leaves time to connect.
  start_at=$(date -u -d "+$((2 + generators)) seconds" +%Y-%m-%dT%H:%M:%SZ)
  echo "$generators load generators, each measuring from $start_at (--start_at)"
  generator_pids=()
  for g in $(seq "$generators"); do
    "$client_bin" "${load_args[@]}" --start_at="$start_at" \
      --json="$reports/load-$g.json" --hgrm="$reports/load-$g" "${load_flags[@]}" \
      >"$reports/load-$g.txt" 2>"$reports/load-$g.err" &
    generator_pids+=("$!")
  done
  # Ctrl-C reaches every generator (they end early and still write their
  # reports); the script waits for them instead of leaving at once.
  trap '' INT
  codes=()
  for pid in "${generator_pids[@]}"; do
    code=0
    wait "$pid" || code=$?
    codes+=("$code")
  done
  trap 'exit 130' INT
  jsons=()
  for g in $(seq "$generators"); do
    echo "--- load generator $g (exit code ${codes[$((g - 1))]}) ---"
    cat "$reports/load-$g.txt"
    grep -v '^routeguide-client: waiting' "$reports/load-$g.err" >&2 || true
    check_load "$reports/load-$g.txt" "${codes[$((g - 1))]}" "load generator $g"
    [ ! -s "$reports/load-$g.json" ] || jsons+=("$reports/load-$g.json")
  done
  echo
  if [ ${#jsons[@]} -lt 2 ]; then
    echo "error: merge skipped: fewer than two generators wrote a report" >&2
    status=1
  else
    echo "--- merged report of ${#jsons[@]} generators ---"
    # No --force: the generators share every setting, so a refusal means
    # something went wrong.
    if ! "$client_bin" report merge "${jsons[@]}" --json="$reports/merged.json"; then
      echo "error: routeguide-client report merge failed" >&2
      status=1
    fi
  fi
fi

keys=$(timeout 10 redis-cli -h 127.0.0.1 -p "$redis_port" --scan \
  --pattern 'routeguide:notes:*' | wc -l) || keys='?'
memory=$(timeout 10 redis-cli -h 127.0.0.1 -p "$redis_port" info memory |
  sed -n 's/^used_memory_human:\([^[:space:]]*\).*/\1/p') || memory='?'
[ -n "$memory" ] || memory='?'

echo
echo "redis: $keys locations with notes, $memory used"

# --- Stop: SIGTERM to every replica at once (each drains within its
# --grace), then Redis. Each must exit 0.
for pid in "${replica_pids[@]}"; do
  kill -TERM "$pid" 2>/dev/null || true
done
for i in $(seq "$replicas"); do
  pid=${replica_pids[$((i - 1))]}
  # Each drains within its --grace (5 s); one that hangs is killed.
  for _ in $(seq 70); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "error: replica $i did not stop within 7 s of SIGTERM; killed" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  code=0
  wait "$pid" || code=$?
  if [ "$code" -ne 0 ]; then
    echo "error: replica $i exited with code $code" >&2
    show_log "$scratch/replica-$i.log"
    status=1
  fi
  if [ "$status" -ne 0 ] && grep -q -i 'warn\|error' "$scratch/replica-$i.log"; then
    echo "replica $i logged:" >&2
    grep -i 'warn\|error' "$scratch/replica-$i.log" | tail -n 5 >&2
  fi
done
replica_pids=()
kill -TERM "$redis_pid" 2>/dev/null || true
for _ in $(seq 50); do
  kill -0 "$redis_pid" 2>/dev/null || break
  sleep 0.1
done
kill -KILL "$redis_pid" 2>/dev/null || true
wait "$redis_pid" 2>/dev/null || true
redis_pid=
echo "stopped $replicas replicas and redis-server" >&2
[ -z "$report_dir" ] || echo "reports in $report_dir" >&2
if [ "$status" -eq 0 ] && $usage_error; then
  exit 2
fi
exit "$status"
