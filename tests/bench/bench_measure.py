"""Measuring for bench.py: the servers under test (Server, pinned with
taskset, CPU time and memory read from /proc), a redis-server for the notes
store (Redis), runs of routeguide-client's load generator and of h2load,
and one measured point each for a scenario round, replicas, RouteChat with
its notes in Redis, idle streams and a large database.
"""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

SERVERS = {
    # name: (binary relative to the build dir, extra flags)
    "ours": ("server/routeguide-server",
             ["--threads=1", "--reflection=false"]),
    "callback": ("tests/bench/callback-baseline-server", []),
    "sync": ("tests/bench/sync-baseline-server", []),
}

# The rectangle that holds all 100 features of the built-in database.
ALL_FEATURES_RECT = "40,-75,42,-74"
ALL_FEATURES_RECT_E7 = (400000000, -750000000, 420000000, -740000000)


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def grpc_frame(message):
    return b"\x00" + struct.pack(">I", len(message)) + message


def point_proto(lat, lon, first_field=1):
    return (bytes([first_field << 3]) + varint(lat) +
            bytes([(first_field + 1) << 3]) + varint(lon))


def h2load_bodies(directory):
    """gRPC-framed requests: a stored feature's Point, and the Rectangle of
    all 100 features."""
    get = grpc_frame(point_proto(409146138, -746188906))
    lo = point_proto(*ALL_FEATURES_RECT_E7[:2])
    hi = point_proto(*ALL_FEATURES_RECT_E7[2:])
    rect = b"\x0a" + varint(len(lo)) + lo + b"\x12" + varint(len(hi)) + hi
    paths = {}
    for name, body in (("GetFeature", get), ("ListFeatures", grpc_frame(rect))):
        paths[name] = os.path.join(directory, name + ".bin")
        with open(paths[name], "wb") as f:
            f.write(body)
    return paths


def process_cpu_seconds(pid):
    """utime + stime of the whole process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime, fields 14 and 15 of stat(5), counted after ')'.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_process(process, timeout=15):
    """SIGTERM, then SIGKILL if `process` has not exited within `timeout` s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process on core 0, listening on a free loopback port."""

    def __init__(self, build, name, workdir, cores="0", port=0, tag="",
                 extra=()):
        binary, flags = SERVERS[name]
        self.log_path = os.path.join(workdir, name + tag + ".log")
        self.log = open(self.log_path, "w")
        command = ["taskset", "-c", cores, os.path.join(build, binary),
                   f"--address=127.0.0.1:{port}", *flags, *extra]
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                m = re.search(r"listening on .* \(port (\d+)\)", f.read())
            if m:
                self.port = int(m.group(1))
                self.startup_seconds = time.monotonic() - self.started
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{name} did not start; see {self.log_path}")

    def cpu_seconds(self):
        return process_cpu_seconds(self.process.pid)

    def status_kib(self, key):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def settled_rss_kib(self, timeout=20):
        """VmRSS once it changes by less than 256 KiB over half a second."""
        last = self.status_kib("VmRSS")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.status_kib("VmRSS")
            if abs(now - last) < 256:
                return now
            last = now
        return last

    def stop(self):
        stop_process(self.process)
        self.log.close()


class Redis:
    """Debian's redis-server for the notes store: no persistence, loopback,
    a free port, its files in a directory of its own under workdir; pinned
    with taskset like the servers."""

    def __init__(self, workdir, cores, tag=""):
        self.directory = os.path.join(workdir, "redis" + tag)
        os.makedirs(self.directory, exist_ok=True)
        self.log_path = os.path.join(self.directory, "redis.log")
        for _ in range(3):  # The free port may be taken before Redis binds it.
            self.port = free_port()
            self.process = subprocess.Popen(
                ["taskset", "-c", cores, "redis-server", "--bind", "127.0.0.1",
                 "--port", str(self.port), "--save", "", "--appendonly", "no",
                 "--dir", self.directory, "--logfile", self.log_path,
                 "--daemonize", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if self.command("PING") == "+PONG":
                        return
                except OSError:
                    pass
                time.sleep(0.02)
            self.stop()
        raise RuntimeError(f"redis-server did not start; see {self.log_path}")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def command(self, *words):
        """Sends one command; returns the first line of the reply."""
        request = f"*{len(words)}\r\n".encode() + b"".join(
            f"${len(w)}\r\n{w}\r\n".encode() for w in words)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(request)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.decode().strip()

    def keys(self):
        return int(self.command("DBSIZE").lstrip(":"))

    def cpu_seconds(self):
        return process_cpu_seconds(self.process.pid)

    def stop(self):
        stop_process(self.process)


def run_client(build, port, flags, seconds, json_path, cores="1", seed=1):
    """`port` may also be a comma list of IP:PORT targets."""
    # Fixed seeds make runs repeatable; the warm-up takes another one so
    # that its RouteChat notes do not land where the measured run posts.
    target = port if isinstance(port, str) else f"127.0.0.1:{port}"
    command = ["taskset", "-c", cores,
               os.path.join(build, "client/routeguide-client"), "load",
               f"--target={target}", f"--seed={seed}",
               f"--duration={seconds}s", f"--json={json_path}", *flags]
    result = subprocess.run(command, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            timeout=seconds + 120)
    # Exit code 1: calls failed (a baseline past its limits in the open-loop
    # scenario, say). The report is whole and the failures are in it, so
    # the point is kept, with a word on stderr.
    if result.returncode == 1 and os.path.exists(json_path):
        said = [line for line in (result.stdout + result.stderr).splitlines()
                if line.startswith("error rate")] or ["calls failed"]
        print(f"note: {target}: {said[-1]}; the figures include the "
              "failed calls", file=sys.stderr)
    elif result.returncode != 0:
        raise RuntimeError(f"load client failed ({result.returncode}): "
                           f"{' '.join(command)}\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    with open(json_path) as f:
        return json.load(f)


def run_h2load(port, method, body, seconds, cores="1"):
    command = ["taskset", "-c", cores, "h2load", "-c", "1", "-m", "64",
               "-D", str(seconds), "--warm-up-time=1",
               "-H", "content-type: application/grpc", "-H", "te: trailers",
               "-d", body, f"http://127.0.0.1:{port}/routeguide.RouteGuide/{method}"]
    out = subprocess.run(command, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         timeout=seconds + 60).stdout
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if not rate or not done or done.group(1) != done.group(2):
        raise RuntimeError("h2load failed:\n" + out[-2000:])
    return float(rate.group(1))


def measure(build, server_name, flags, seconds, warmup, workdir, point):
    """One round: a fresh server, an unmeasured warm-up run, then the
    measured run with the server's CPU time read around it."""
    server = Server(build, server_name, workdir)
    try:
        path = os.path.join(workdir, f"{point}-{server_name}.json")
        if warmup > 0:
            run_client(build, server.port, flags, warmup, path, seed=2)
        cpu_before = server.cpu_seconds()
        report = run_client(build, server.port, flags, seconds, path)
        cpu = server.cpu_seconds() - cpu_before
        total = report["total"]
        calls = total["completed"]
        if total["failed"] or total["wrong_answer"]:
            raise RuntimeError(f"{server_name} {point}: {total['failed']} failed, "
                               f"{total['wrong_answer']} wrong answers")
        secs = report["measured_seconds"]
        messages = sum(k["messages_sent_per_second"] +
                       k["messages_received_per_second"]
                       for k in report["kinds"].values())
        latency = total["latency_ns"]
        return {
            "calls_per_second": calls / secs,
            "messages_per_second": messages,
            "p50_us": latency["p50"] / 1e3,
            "p99_us": latency["p99"] / 1e3,
            "p99_9_us": latency["p99_9"] / 1e3,
            "server_cpu_us_per_call": cpu * 1e6 / calls if calls else None,
            "server_cpu_share": cpu / secs,
            "server_peak_rss_kib": server.status_kib("VmHWM"),
        }
    finally:
        server.stop()


def measure_replicas(build, layout, seconds, warmup, workdir):
    """GetFeature closed loop (256 in flight over 8 connections, 2 client
    threads, client on any core) against our server as replicas:
      one:        one process on core 0;
      reuseport:  two processes on one port (--reuseport: SO_REUSEPORT,
                  the kernel spreads connections), cores 0 and 1;
      two_ports:  two processes on two ports, cores 0 and 1, the client
                  spreading calls round-robin over both.
    Returns calls/s and each replica's share of the server CPU."""
    flags = ["--mix=get:1", "--hit_ratio=1", "--concurrency=256",
             "--channels=8", "--threads=2"]
    replicas = []
    try:
        if layout == "one":
            replicas.append(Server(build, "ours", workdir, cores="0", tag="-r0"))
            target = f"{replicas[0].port}"
        elif layout == "reuseport":
            replicas.append(Server(build, "ours", workdir, cores="0", tag="-r0",
                                   extra=["--reuseport"]))
            replicas.append(Server(build, "ours", workdir, cores="1",
                                   port=replicas[0].port, tag="-r1",
                                   extra=["--reuseport"]))
            target = f"{replicas[0].port}"
        else:
            replicas.append(Server(build, "ours", workdir, cores="0", tag="-r0"))
            replicas.append(Server(build, "ours", workdir, cores="1", tag="-r1"))
            target = ",".join(f"127.0.0.1:{r.port}" for r in replicas)
        path = os.path.join(workdir, f"replicas-{layout}.json")
        port_or_list = target if "," in target else int(target)
        if warmup > 0:
            run_client(build, port_or_list, flags, warmup, path, cores="0,1",
                       seed=2)
        before = [r.cpu_seconds() for r in replicas]
        report = run_client(build, port_or_list, flags, seconds, path,
                            cores="0,1")
        cpu = [r.cpu_seconds() - b for r, b in zip(replicas, before)]
        total = report["total"]
        if total["failed"] or total["wrong_answer"]:
            raise RuntimeError(f"replicas {layout}: calls failed")
        return {
            "calls_per_second": total["completed"] / report["measured_seconds"],
            "replica_cpu_shares": [round(c / sum(cpu), 3) if sum(cpu) else 0
                                   for c in cpu],
        }
    finally:
        for r in replicas:
            r.stop()


# RouteChat of 100 notes over 10 locations (the chat_100 scenario's
# calls) at 16 streams.
REDIS_CHAT_FLAGS = ["--mix=chat:1", "--chat_notes=100", "--chat_locations=10",
                    "--concurrency=16"]


def measure_redis_chat(build, store, replicas, seconds, warmup, workdir):
    """RouteChat (REDIS_CHAT_FLAGS) against our server as `replicas` (1 or
    2) processes keeping notes in the process (store "memory") or in one
    fresh redis-server (store "redis", TCP on loopback).
      1 replica:  the server and Redis on core 0, the client on core 1;
      2 replicas: servers on cores 0 and 1, Redis and the client on either,
                  the client spreading calls round-robin over both.
    Each chat posts at locations of its own, so the answers are right with
    either store; Redis's keys are counted to show the notes went there.
    Returns the chat's figures, the servers' CPU per call (summed over the
    replicas) and Redis's own (utime + stime from /proc, all threads)."""
    flags = list(REDIS_CHAT_FLAGS)
    redis = None
    servers = []
    try:
        extra = []
        if store == "redis":
            redis = Redis(workdir, "0" if replicas == 1 else "0,1",
                          tag=f"-{replicas}")
            extra = [f"--notes_store={redis.url}"]
        for i in range(replicas):
            servers.append(Server(build, "ours", workdir, cores=str(i),
                                  tag=f"-{store}-{replicas}-r{i}", extra=extra))
        if replicas == 1:
            target, client_cores = servers[0].port, "1"
        else:
            target = ",".join(f"127.0.0.1:{s.port}" for s in servers)
            client_cores = "0,1"
            flags.append(f"--channels={replicas}")
        path = os.path.join(workdir, f"redis-chat-{store}-{replicas}.json")
        if warmup > 0:
            run_client(build, target, flags, warmup, path, cores=client_cores,
                       seed=2)
        before = [s.cpu_seconds() for s in servers]
        redis_before = redis.cpu_seconds() if redis else 0
        report = run_client(build, target, flags, seconds, path,
                            cores=client_cores)
        cpu = [s.cpu_seconds() - b for s, b in zip(servers, before)]
        redis_cpu = redis.cpu_seconds() - redis_before if redis else 0
        total = report["total"]
        if total["failed"] or total["wrong_answer"]:
            raise RuntimeError(f"RouteChat, {store} store, {replicas} replicas: "
                               f"{total['failed']} failed, "
                               f"{total['wrong_answer']} wrong answers")
        calls = total["completed"]
        secs = report["measured_seconds"]
        chat = report["kinds"]["chat"]
        reply = chat.get("reply_latency_ns", {})
        keys = redis.keys() if redis else None
        if keys == 0:
            raise RuntimeError("the servers were given Redis as their notes "
                               "store, but it holds no key")

        def per_call(seconds_used):
            return seconds_used * 1e6 / calls if calls else None
        return {
            "calls_per_second": calls / secs,
            "messages_per_second": (chat["messages_sent_per_second"] +
                                    chat["messages_received_per_second"]),
            "p50_us": total["latency_ns"]["p50"] / 1e3,
            "p99_us": total["latency_ns"]["p99"] / 1e3,
            "reply_p50_us": reply.get("p50", 0) / 1e3,
            "reply_p99_us": reply.get("p99", 0) / 1e3,
            "server_cpu_us_per_call": per_call(sum(cpu)),
            "redis_cpu_us_per_call": per_call(redis_cpu) if redis else None,
            "server_cpu_share": sum(cpu) / secs,
            "redis_cpu_share": redis_cpu / secs if redis else None,
            "redis_keys": keys,
        }
    finally:
        for s in servers:
            s.stop()
        if redis is not None:
            redis.stop()


def measure_idle_streams(build, name, workdir, streams):
    """Server RSS with `streams` idle RouteChat streams open (each has sent
    one note, so the server surely holds the call) over 20 connections,
    and after they end. Ours checks every second whether to hand freed
    memory back (--memory_trim_interval; 10 s by default)."""
    extra = ["--memory_trim_interval=1s"] if name == "ours" else []
    server = Server(build, name, workdir, extra=extra)
    client = None
    try:
        before = server.settled_rss_kib()
        client = subprocess.Popen(
            ["taskset", "-c", "1", os.path.join(build, "tests/bench/idle-chat-streams"),
             f"--target=127.0.0.1:{server.port}", f"--streams={streams}",
             "--channels=20", "--send_note"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(os.path.join(workdir, "idle-chat-streams.log"), "a"),
            text=True)
        line = client.stdout.readline()
        if not line.startswith("open"):
            raise RuntimeError(f"idle-chat-streams against {name}: {line!r}")
        time.sleep(1)
        open_rss = server.settled_rss_kib()
        client.stdin.write("\n")
        client.stdin.flush()
        closed = client.stdout.readline()
        if client.wait(timeout=120) != 0 or not closed.startswith("closed"):
            raise RuntimeError(f"idle-chat-streams against {name}: {closed!r}")
        time.sleep(3)  # Past ours' next trim check.
        after = server.settled_rss_kib()
        return {"rss_before_kib": before, "rss_open_kib": open_rss,
                "rss_after_kib": after,
                "kib_per_stream": (open_rss - before) / streams}
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait()
        server.stop()


# Small rectangles that hold a few features each: on the built-in
# database, and on the generated one (denser: 0.05 degrees a side).
BUILTIN_SMALL_RECT = "40.8,-74.4,41.1,-74.1"
LARGE_SMALL_RECT = "40.8,-74.4,40.85,-74.35"


def measure_large_db(build, workdir, count, seconds):
    """Our server on a generated database of `count` features against the
    built-in 100: start-up time, RSS, and ListFeatures latency for a small
    rectangle (one call in flight), so the spatial index's cost shows."""
    db = os.path.join(workdir, "large.json")
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__),
                                                 "gen_db.py"),
                    str(count), db], check=True, stdout=subprocess.DEVNULL)
    out = {"features": count}
    for key, extra, rect in (("builtin", [], BUILTIN_SMALL_RECT),
                             ("large", [f"--db={db}"], LARGE_SMALL_RECT)):
        server = Server(build, "ours", workdir, extra=extra, tag="-" + key)
        try:
            rss = server.settled_rss_kib()
            path = os.path.join(workdir, f"large-{key}.json")
            report = run_client(build, server.port,
                                ["--mix=list:1", f"--list_rect={rect}",
                                 "--concurrency=1", "--deadline=120s",
                                 # Learning a million features takes a while.
                                 "--learn_deadline=120s",
                                 f"--max_features_learnt={2 * count + 100}"],
                                seconds, path)
            kind = report["kinds"]["list"]
            out[key] = {
                "startup_seconds": round(server.startup_seconds, 3),
                "rss_kib": rss,
                "peak_rss_kib": server.status_kib("VmHWM"),
                "features_per_call": (kind["messages_received_per_second"] /
                                      kind["calls_per_second"]
                                      if kind["calls_per_second"] else 0),
                "p50_us": kind["latency_ns"]["p50"] / 1e3,
                "p99_us": kind["latency_ns"]["p99"] / 1e3,
            }
        finally:
            server.stop()
    return out


def median_round(rounds):
    """The round with the median calls/s, so a point's figures belong
    together."""
    ordered = sorted(rounds, key=lambda r: r["calls_per_second"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["rounds_calls_per_second"] = [round(r["calls_per_second"], 1)
                                         for r in rounds]
    return chosen
