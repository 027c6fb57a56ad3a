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
  h2_attacks.py reflection-no-read --port N [--connections 4]
                             [--streams 1000] [--hold 10]
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
reflection-no-read
              server reflection streams on connections that never read,
              each request with a 4,000-byte host (answers echo it), and
              10 a connection over the server's request bound.
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

The library lives in modules beside this file, re-exported here:
h2_wire (frames, HPACK, gRPC framing, protocol buffers by hand),
h2_connection (one client connection), h2_clients (many connections, and
well-behaved calls), h2_flood_attacks (rapid reset, header flood, huge
message) and h2_hold_attacks (silent, list-no-read, reflection-no-read, never-ack-settings,
half-message, connection-wave).
"""

import argparse
import ipaddress
import json
import socket
import sys

from h2_clients import Fleet, RouteChat, call, get_feature, stream_outcome
from h2_connection import Connection, Stream
from h2_flood_attacks import header_flood, huge_message, rapid_reset
from h2_hold_attacks import (HalfMessages, SilentBurst, connection_wave,
                             list_no_read, never_ack_settings,
                             raise_nofile_limit, reflection_no_read, silent)
from h2_wire import (GET_FEATURE, KNOWN_FEATURE, LIST_FEATURES, ROUTE_CHAT,
                     encode_headers, encode_point, error_name,
                     grpc_request_headers, header_list_size, padding_headers)

# The library's names, for `import h2_attacks as attacks`.
__all__ = [
    "Connection", "Fleet", "GET_FEATURE", "HalfMessages", "KNOWN_FEATURE",
    "LIST_FEATURES", "ROUTE_CHAT", "RouteChat", "SilentBurst", "Stream",
    "call", "check_loopback", "connection_wave", "encode_headers",
    "encode_point", "error_name", "get_feature", "grpc_request_headers",
    "header_flood", "header_list_size", "huge_message", "list_no_read",
    "never_ack_settings", "padding_headers", "raise_nofile_limit",
    "rapid_reset", "reflection_no_read", "silent", "stream_outcome",
]


def check_loopback(host):
    """These are attacks: refuse to aim them anywhere but this machine."""
    try:
        address = ipaddress.ip_address(
            socket.getaddrinfo(host, None)[0][4][0])
    except (OSError, ValueError) as error:
        raise ValueError("cannot resolve %r: %s" % (host, error))
    if not address.is_loopback:
        raise ValueError("%s is not a loopback address" % host)


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
    sub = command("reflection-no-read",
                  "server reflection streams that are never read")
    sub.add_argument("--connections", type=int, default=4)
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
    elif args.command == "reflection-no-read":
        report = reflection_no_read(args.host, args.port, args.connections,
                                    args.streams, hold=args.hold)
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
