"""Many connections at once (Fleet), a stream's fate in words
(stream_outcome), and the well-behaved calls the hardening tests make
(call, get_feature, RouteChat), all on h2_connection's Connection.
"""

import collections
import select
import time

from h2_connection import Connection
from h2_wire import (GET_FEATURE, KNOWN_FEATURE, ROUTE_CHAT, decode_feature,
                     decode_route_note, encode_headers, encode_point,
                     encode_route_note, error_name, grpc_request_headers)


class Fleet:
    """Many connections pumped together, one poll() for all, so that one
    thread can hold thousands of them open (answering SETTINGS and PINGs)
    and tell what the server did to each."""

    def __init__(self):
        self.conns = []
        self._poller = select.poll()
        self._polled = {}  # fd -> connection, while it is open

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add(self, conn):
        self.conns.append(conn)
        self._polled[conn.sock.fileno()] = conn
        self._poller.register(conn.sock, select.POLLIN)
        return conn

    def close(self):
        for conn in self.conns:
            conn.close()
        self._polled.clear()

    def pump(self, timeout=0.0):
        """Writes what each connection has queued, then waits up to
        `timeout` s for the sockets and reads (and answers) what came."""
        for conn in self._polled.values():
            if conn.outbuf:
                conn._flush()
        for fd, _ in self._poller.poll(max(0.0, timeout) * 1000):
            conn = self._polled.get(fd)
            if conn is None:
                continue
            conn._read()
            conn._flush()
            if conn.closed is not None:
                self._poller.unregister(fd)
                del self._polled[fd]

    def wait(self, predicate, timeout):
        """Pumps until predicate() holds or `timeout` s pass; returns it."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.pump(min(left, 0.05))
        return predicate()

    def hold(self, seconds):
        self.wait(lambda: False, seconds)

    def settled(self, timeout):
        """Waits until every connection acknowledged the server's SETTINGS
        and had its own acknowledged (or ended); returns how many did."""
        def done(conn):
            return conn.closed is not None or (
                conn.acked_settings and conn.settings_acked_by_server)
        self.wait(lambda: all(done(c) for c in self.conns), timeout)
        return sum(c.closed is None and c.acked_settings
                   and c.settings_acked_by_server for c in self.conns)

    def sync(self, timeout):
        """Sends everything queued and a PING on every open connection;
        returns how many answered within `timeout` s: those the server has
        read everything sent so far on (gRPC handles frames in order)."""
        self.wait(lambda: not any(c.outbuf for c in self._polled.values()),
                  timeout)
        pings = [(conn, conn.send_ping()) for conn in self.conns
                 if conn.usable]
        self.wait(lambda: all(conn.pinged(p) or conn.closed is not None
                              for conn, p in pings), timeout)
        return sum(conn.pinged(p) for conn, p in pings)

    def report(self):
        """What the server did to the connections and their streams."""
        outcomes = collections.Counter()
        for conn in self.conns:
            outcomes.update(stream_outcome(s) for s in conn.streams.values())
        return {
            "connections": len(self.conns),
            "streams": sum(len(c.streams) for c in self.conns),
            "outcomes": dict(outcomes),
            "goaways": dict(collections.Counter(
                "%s %s" % (error_name(c.goaway[0]), c.goaway[2])
                for c in self.conns if c.goaway is not None)),
            "closed_by_server": sum(
                c.closed is not None and c.closed != "closed by the client"
                for c in self.conns),
            "data_bytes_received": sum(len(s.data) for c in self.conns
                                       for s in c.streams.values()),
            "frames_received": dict(sum(
                (c.frames_received for c in self.conns),
                collections.Counter())),
        }


def stream_outcome(stream):
    """One stream's fate in a word or three, for tallies."""
    status = stream.grpc_status
    if status is not None:
        if status[0] == "0":
            return "status 0"
        # Messages name sizes and limits, so there are few distinct ones.
        return "status %s %s" % (status[0], status[1][:80])
    if stream.reset is not None:
        return "RST_STREAM %s" % error_name(stream.reset)
    if stream.ended:
        return "ended without a status"
    if stream.header_blocks:
        return "response headers only"
    return "open, no answer"


# --- Calls ------------------------------------------------------------------


def call(conn, block, request, timeout):
    """A unary call with a ready header block; returns (verdict, detail,
    stream). verdict: "ok", "refused" (RST_STREAM, a non-OK status, or the
    connection ended) or "no answer" within `timeout` s."""
    stream_id = conn.open_stream(block)
    stream = conn.streams[stream_id]
    conn.send_message(stream_id, request, end_stream=True)
    conn.wait(lambda: stream.done, timeout)
    # A status first: a server may reset a stream it has answered in full
    # (RST_STREAM NO_ERROR: stop sending), which is no refusal.
    status = stream.grpc_status
    if status is not None:
        if status[0] == "0":
            return "ok", "status 0", stream
        return "refused", "status %s (%s)" % status, stream
    if stream.reset is not None:
        return "refused", "RST_STREAM %s" % error_name(stream.reset), stream
    if conn.goaway is not None:
        return "refused", "GOAWAY %s %s" % (error_name(conn.goaway[0]),
                                            conn.goaway[2]), stream
    if conn.closed is not None or conn.write_error is not None:
        return "refused", conn.closed or conn.write_error, stream
    return "no answer", "nothing within %.1f s" % timeout, stream


def get_feature(conn, point=KNOWN_FEATURE, extra_headers=(), timeout=5.0):
    """GetFeature; (verdict, detail, feature name or None)."""
    block = encode_headers(grpc_request_headers(conn.authority, GET_FEATURE,
                                                extra_headers))
    verdict, detail, stream = call(conn, block, encode_point(*point),
                                   timeout)
    messages = stream.messages()
    name = decode_feature(messages[0])[0] if messages else None
    return verdict, detail, name


class RouteChat:
    """A RouteChat call held open on a connection of its own: notes go out
    one at a time, replies collect as they come."""

    def __init__(self, host, port, timeout=5.0):
        self.conn = Connection(host, port, timeout=timeout)
        try:
            self.conn.settle(timeout)
            self.stream_id = self.conn.open_stream(encode_headers(
                grpc_request_headers(self.conn.authority, ROUTE_CHAT)))
        except BaseException:
            self.conn.close()
            raise
        self.stream = self.conn.streams[self.stream_id]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.conn.close()

    def send(self, latitude, longitude, message):
        self.conn.send_message(self.stream_id, encode_route_note(
            latitude, longitude, message))

    def replies(self):
        """[(latitude, longitude, message), ...] so far."""
        return [decode_route_note(m) for m in self.stream.messages()]

    def wait_replies(self, count, timeout):
        self.conn.wait(lambda: (len(self.stream.messages()) >= count
                                or self.trouble() is not None), timeout)
        return self.replies()

    def trouble(self):
        """Why the call can no longer work, or None."""
        if self.stream.reset is not None:
            return "RST_STREAM %s" % error_name(self.stream.reset)
        if self.stream.ended:
            return "the server ended the call: %s" % (self.stream.grpc_status,)
        if self.conn.goaway is not None:
            return "GOAWAY %s" % error_name(self.conn.goaway[0])
        return self.conn.closed or self.conn.write_error
