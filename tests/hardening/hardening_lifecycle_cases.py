"""Hardening cases on the server's life: a second server on a busy port
(and --reuseport), SIGHUP and SIGPIPE under load, and a second SIGTERM
while draining.
"""

import re
import signal
import subprocess
import time

import h2_attacks as attacks
from hardening_common import (CHAT_POINT, HOST, PORT_LINE, WAIT_SECONDS,
                              check, log, wait_until)


def served_calls(port, count):
    """`count` GetFeature calls, each on a connection of its own (so the
    kernel picks a listener for each)."""
    for i in range(count):
        with attacks.Connection(HOST, port) as conn:
            verdict, detail, name = attacks.get_feature(conn)
            check(verdict == "ok", "GetFeature %d on port %d: %s"
                  % (i, port, detail))


def case_reuseport(case):
    first = case.server()
    second = case.start("server-same-port",
                        [case.args.server,
                         "--address=%s:%d" % (HOST, first.port),
                         "--threads=2"])
    # Exits, or (what SO_REUSEPORT by default does) serves.
    deadline = time.monotonic() + WAIT_SECONDS
    while second.alive and time.monotonic() < deadline:
        check(not PORT_LINE.search(second.text()),
              "a second server started on port %d, which a running server "
              "holds (SO_REUSEPORT is on by default)" % first.port)
        time.sleep(0.05)
    code = second.exit_code(0)
    check(code is not None, "the second server neither served nor exited "
          "within %d s" % WAIT_SECONDS)
    message = second.text()
    log("second server on port %d: exit code %d: %s"
        % (first.port, code, message.strip()[-300:]))
    case.expect(code == 2, "the second server exited with %d, expected 2"
                % code)
    case.expect(str(first.port) in message and "in use" in message,
                "the second server's message names neither the port %d nor "
                "'in use': %r" % (first.port, message[-300:]))
    first.signal(signal.SIGTERM)
    check(first.exit_code(WAIT_SECONDS) is not None,
          "the first server still ran %d s after SIGTERM" % WAIT_SECONDS)

    a = case.server("--reuseport")
    b = case.server("--reuseport", address="%s:%d" % (HOST, a.port))
    served_calls(a.port, 40)
    accepted = [a.status()["accepted"], b.status()["accepted"]]
    log("40 connections on port %d: the servers accepted %s calls"
        % (a.port, accepted))
    case.expect(all(accepted) and sum(accepted) == 40,
                "with --reuseport the two servers accepted %s of 40 calls: "
                "both should have served some" % accepted)


def case_sighup(case):
    server = case.server()
    load = case.load(server, seconds=6)
    for _ in range(2):
        time.sleep(2)
        server.signal(signal.SIGHUP)
        # A reader that went away (a closed log pipe) must not kill it either.
        server.signal(signal.SIGPIPE)
    figures = load.finish()
    check(server.alive, "the server exited with %s on SIGHUP or SIGPIPE"
          % server.process.returncode)
    load.check_clean(figures)
    case.expect("SIGHUP" in server.text(), "no line with SIGHUP in the log")

    # The client whose reader went away (`| head -1`) is not killed by
    # SIGPIPE: its writes just fail.
    client = subprocess.Popen(
        [case.args.client, "tutorial", "--target=%s:%d" % (HOST, server.port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        # Closed before the client writes (it connects first), so each of
        # its writes meets a pipe without a reader.
        client.stdout.close()
        code = client.wait(timeout=WAIT_SECONDS)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    log("tutorial client with its reader gone: exit code %d" % code)
    case.expect(code != -signal.SIGPIPE, "the client was killed by SIGPIPE")


def case_second_sigterm(case):
    server = case.server("--grace=60s")
    with attacks.RouteChat(HOST, server.port) as chat:
        chat.send(*CHAT_POINT, "held open")
        wait_until(lambda: server.status()["in_flight"] >= 1, WAIT_SECONDS,
                   "the RouteChat in flight")
        server.signal(signal.SIGTERM)
        server.wait_for_line(re.compile(r"shutting down"))
        server.signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = server.exit_code(case.slow)
        check(code is not None, "the server still runs %.0f s after a "
              "second SIGTERM (it drains for --grace=60s)" % case.slow)
        log("the server exited with %d %.2f s after the second SIGTERM"
            % (code, time.monotonic() - signalled))
        case.expect(code != 0, "the server exited with 0 after a second "
                    "SIGTERM cut its drain short")
