# Sourced by demo.sh and cluster.sh: what both do around the server.

# step TITLE COMMAND...: runs COMMAND with its output appended to the file
# $setup_log, printing "TITLE... done"; on failure names that file and
# exits 1.
step() {
  local title=$1
  shift
  printf '%s... ' "$title" >&2
  if "$@" >>"$setup_log" 2>&1; then
    echo "done" >&2
  else
    echo "failed" >&2
    echo "error: $title failed; the full output is in $setup_log" >&2
    exit 1
  fi
}

# server_port LOG PID: waits up to 20 s for the line of LOG that names the
# port the server picked, then prints the port; prints nothing when the
# process PID ends first or the time runs out.
server_port() {
  local log=$1 pid=$2 port=
  for _ in $(seq 200); do
    port=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$log")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$port"
}
