#!/usr/bin/env bash
# The main job: install what is missing, build, start routeguide-server on
# its built-in data, run the tutorial client against it, stop the server.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/script_lib.sh

# Installing and building print a line per step; their output goes to a
# log that is named when a step fails, so the walkthrough below is what
# shows.
setup_log=$(mktemp -t routeguide-demo-setup.XXXXXX.log)
step "Installing missing packages" scripts/install-deps.sh
if [ ! -f build/build.ninja ]; then
  step "Configuring build/" meson setup build
fi
step "Building" ninja -C build
rm -f "$setup_log"

log=$(mktemp)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -f "$log"
}
trap cleanup EXIT

# Port 0: the server picks a free port and logs it.
build/server/routeguide-server --address="127.0.0.1:${PORT:-0}" 2>"$log" &
server_pid=$!
port=$(server_port "$log" "$server_pid")
cat "$log" >&2
[ -n "$port" ] || { echo "error: the server did not start" >&2; exit 1; }

build/client/routeguide-client tutorial --target="127.0.0.1:$port"

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
sed -n '2,$p' "$log" >&2
exit "$status"
