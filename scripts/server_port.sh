# Sourced by the scripts that start routeguide-server on port 0.
#
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
