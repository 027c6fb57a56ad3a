"""One raw HTTP/2 client connection (Connection) and what it saw of each
stream it opened (Stream).

Frames go out as bytes built by h2_wire and header blocks through hpack, not
through h2's connection state machine, which refuses to misbehave and is too
slow to outrun a C++ server. A Connection still answers what a peer must
(SETTINGS and PING acknowledgements, connection flow control), so the server
keeps it up however odd the rest of its traffic.
"""

import collections
import select
import socket
import struct
import time

import hpack

from h2_wire import (ACK, CONTINUATION, DATA, DEFAULT_WINDOW, END_HEADERS,
                     END_STREAM, FRAME_NAMES, GOAWAY, HEADERS, MAX_FRAME,
                     MAX_STREAM_ID, MAX_WINDOW, PADDED, PING, PREFACE,
                     PRIORITY, RST_STREAM, SETTINGS,
                     SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_NAMES,
                     WINDOW_UPDATE, frame, grpc_message, header_frames,
                     split_grpc_messages)


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
