"""Measuring for bench.py, several server processes: a redis-server for
the notes store (Redis), and one measured point each for replicas and for
RouteChat with its notes in Redis.
"""

import os
import socket
import subprocess
import time

from bench_measure import (Server, free_port, process_cpu_seconds, run_client,
                           stop_process)


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
