"""Start-up for bench.py: from exec to the first answered GetFeature.

The clock starts just before the server's exec and stops when the answer's
end of stream arrives. The call is made over a raw socket with python3-h2,
a request prepared before the exec, so that no client start-up (channel,
resolver, connection backoff) is counted: the socket retries connect()
every 0.2 ms until the server listens.

Every binary is timed from a copy written for the run: the same bytes
start about 0.3 ms sooner from a file just written than from one read
back from disk (docs/benchmarks.md, levers), and the binaries of one
build differ in that by when each was linked and what the machine did
since.
"""

import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

import h2.config
import h2.connection
import h2.events

from bench_measure import SERVERS, free_port, grpc_frame, point_proto

GET_FEATURE_PATH = "/routeguide.RouteGuide/GetFeature"
# A stored feature, so an empty answer would be a wrong one.
STORED_POINT = (409146138, -746188906)


def _connect(port, deadline):
    while True:
        sock = socket.socket()
        try:
            sock.connect(("127.0.0.1", port))
            return sock
        except OSError:
            sock.close()
            if time.perf_counter() > deadline:
                raise RuntimeError(f"nothing listens on port {port} within 10 s")
            time.sleep(0.0002)


def _first_answer(sock, deadline):
    """Sends one GetFeature over `sock`; returns the answer's bytes."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":scheme", "http"),
                          (":path", GET_FEATURE_PATH), (":authority", "bench"),
                          ("content-type", "application/grpc"),
                          ("te", "trailers")])
    conn.send_data(1, grpc_frame(point_proto(*STORED_POINT)), end_stream=True)
    sock.sendall(conn.data_to_send())
    answer = b""
    sock.settimeout(max(0.1, deadline - time.perf_counter()))
    while True:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("the server closed the connection unanswered")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                answer += event.data
            elif isinstance(event, h2.events.StreamEnded):
                return answer
            elif isinstance(event, h2.events.StreamReset):
                raise RuntimeError("the server reset the first call")
        sock.sendall(conn.data_to_send())


def first_call(port, deadline):
    """Connects to `port` as soon as it listens and makes the first
    GetFeature; returns the answer's bytes."""
    with _connect(port, deadline) as sock:
        return _first_answer(sock, deadline)


def check_first_answer(name, answer):
    """Raises unless `answer` is the stored feature asked for."""
    # The gRPC frame of a Feature named "Berkshire Valley ..."
    if len(answer) < 5 + 10 or b"Berkshire" not in answer:
        raise RuntimeError(f"{name}: wrong first answer {answer!r}")


def startup_once(build, name, cores="0", binary_path=None):
    """Milliseconds from exec to the first GetFeature's answer, of
    `binary_path` (by default the build's binary of server `name`)."""
    binary, flags = SERVERS[name]
    port = free_port()
    command = ["taskset", "-c", cores,
               binary_path or os.path.join(build, binary),
               f"--address=127.0.0.1:{port}", *flags]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = started + 10
        answer = first_call(port, deadline)
        elapsed = time.perf_counter() - started
        check_first_answer(name, answer)
        return elapsed * 1000
    finally:
        process.kill()
        process.wait()


def copy_binaries(build, servers, directory):
    """Copies each server's binary (once, if servers share one) into
    `directory`; returns server name -> the copy's path."""
    copies = {}
    for name in servers:
        binary = SERVERS[name][0]
        copy = os.path.join(directory, binary.replace("/", "_"))
        if not os.path.exists(copy):
            shutil.copy2(os.path.join(build, binary), copy)
        copies[name] = copy
    return copies


def measure_startup(build, servers, runs):
    """Per server, the median of `runs` start-ups, servers alternating."""
    times = {name: [] for name in servers}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as directory:
        copies = copy_binaries(build, servers, directory)
        for _ in range(runs):
            for name in servers:
                times[name].append(startup_once(build, name,
                                                binary_path=copies[name]))
    return {name: {"median_ms": statistics.median(t), "runs_ms": t}
            for name, t in times.items()}
