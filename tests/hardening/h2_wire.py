"""HTTP/2 and gRPC on the wire, for the hostile clients of h2_attacks.py.

Frame constants and frame building (RFC 9113), HPACK header blocks through
python3-h2's hpack, gRPC's length-prefixed messages, and the few RouteGuide
protocol buffers (Point, Rectangle, Feature, RouteNote) encoded and decoded
by hand: nothing here keeps state, so any connection can share it.
"""

import collections
import struct

import hpack
from h2.errors import ErrorCodes

GET_FEATURE = "/routeguide.RouteGuide/GetFeature"
LIST_FEATURES = "/routeguide.RouteGuide/ListFeatures"
ROUTE_CHAT = "/routeguide.RouteGuide/RouteChat"
REFLECTION_INFO = ("/grpc.reflection.v1alpha.ServerReflection/"
                   "ServerReflectionInfo")

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


def encode_reflection_request(host, symbol):
    """ServerReflectionRequest{1: host, 4: file_containing_symbol}"""
    host, symbol = host.encode(), symbol.encode()
    return (b"\x0a" + _varint(len(host)) + host
            + b"\x22" + _varint(len(symbol)) + symbol)


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
