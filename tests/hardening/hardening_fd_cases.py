"""Hardening cases on connections and file descriptors: bursts of silent
connections past the soft and the hard RLIMIT_NOFILE (plaintext and TLS),
and the handshake timeout.
"""

import json
import os
import re
import subprocess
import time

import h2_attacks as attacks
from hardening_common import CHAT_POINT, HOST, WAIT_SECONDS, check, log


def silent_burst(port, count, connect_timeout=10.0):
    burst = attacks.SilentBurst(HOST, port, count, connect_timeout)
    report = burst.report()
    log("%d silent connections: %d connected in %.2f s, failures %s"
        % (count, report["connected"], report["connect_seconds"],
           report["connect_failures"]))
    return burst


def case_fd_burst_soft_limit(case):
    server = case.server(nofile=(1024, 8192))
    load = case.load(server, seconds=14)
    with silent_burst(server.port, 3000) as burst:
        burst.watch(3)
        fds = server.fd_count()
        log("server holds %d file descriptors with the burst open" % fds)
        # A client that connects now needs the server to accept past 1024.
        tutorial_code, _ = case.tutorial(server.port, 5)
        burst.watch(max(0.0, 10 - (time.monotonic() - burst.started)))
        report = burst.report()
    log("burst: %s" % json.dumps(report, sort_keys=True))
    figures = load.finish()

    load.check_clean(figures)
    case.expect(tutorial_code == 0,
                "a new client during the burst failed (exit code %s): the "
                "server stopped accepting at its soft limit" % tutorial_code)
    soft, hard = server.nofile_limits()
    log("server RLIMIT_NOFILE now: soft %d, hard %d" % (soft, hard))
    case.expect(soft == 8192, "the server kept soft RLIMIT_NOFILE %d, "
                "expected it raised to the hard limit 8192" % soft)
    case.expect(re.search(r"open files.*1024.*8192|open files.*8192.*1024",
                          server.text()),
                "no 'open files' line with 1024 and 8192 in the server log")
    case.expect(server.alive, "the server exited with %s"
                % server.process.returncode)


def case_fd_exhaustion_recovers(case):
    server = case.server(nofile=(1024, 1024))
    with attacks.RouteChat(HOST, server.port) as chat:
        chat.send(*CHAT_POINT, "before the burst")
        with silent_burst(server.port, 2000, connect_timeout=5) as burst:
            burst.watch(5)
            log("server holds %d file descriptors with the burst open"
                % server.fd_count())
            log("burst: %s" % json.dumps(burst.report(), sort_keys=True))
        log("burst closed")
        check(server.alive, "the server exited with %s during the burst"
              % server.process.returncode)
        # Connecting is all that may take up to 5 s; the calls follow.
        code, seconds = case.tutorial(server.port, 5 * case.slow)
        case.expect(code == 0, "no new client served within %.0f s of the "
                    "burst's end (tutorial exit code %s after %.1f s)"
                    % (5 * case.slow, code, seconds))

        chat.send(*CHAT_POINT, "after the burst")
        replies = chat.wait_replies(1, 5 * case.slow)
        log("RouteChat opened before the burst: replies %s, trouble %s"
            % (replies, chat.trouble()))
        case.expect(chat.trouble() is None,
                    "the RouteChat opened before the burst broke: %s"
                    % chat.trouble())
        case.expect(replies == [CHAT_POINT + ("before the burst",)],
                    "the RouteChat opened before the burst got %s, expected "
                    "the note sent before the burst" % replies)


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1 and localhost: (cert, key)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    done = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT_SECONDS)
    check(done.returncode == 0, "openssl req failed: %s"
          % done.stderr.decode("utf-8", "replace"))
    return cert, key


def case_fd_exhaustion_tls(case):
    cert, key = make_certificate(case.log_dir)
    grace = 2
    server = case.server("--tls_cert=" + cert, "--tls_key=" + key,
                         "--grace=%ds" % grace, nofile=(1024, 1024))
    code, _ = case.tutorial(server.port, 5, "--tls_ca=" + cert)
    check(code == 0, "the TLS server did not serve the tutorial client "
          "before the burst (exit code %s)" % code)
    with silent_burst(server.port, 2000, connect_timeout=5) as burst:
        opened = time.monotonic()
        limit = grace + 5 * case.slow
        code = server.exit_code(limit)
        took = time.monotonic() - opened
        log("burst: %s" % json.dumps(burst.report(), sort_keys=True))
    check(code is not None,
          "the TLS server still runs %.0f s after 2,000 connections "
          "exhausted its file descriptors (gRPC's listener is dead: it "
          "should exit with code 3)" % limit)
    log("the TLS server exited with %d %.2f s after the burst was open"
        % (code, took))
    case.expect(code == 3, "the TLS server exited with %d, expected 3" % code)
    case.expect(re.search(r"\[(error|critical)\].*listener", server.text()),
                "no error line containing 'listener' in the server log")


def expect_silent_closed_at_timeout(case, port, kind):
    """Three silent connections to `port` are closed by the server 1 s
    (the --handshake_timeout the server was given) after they opened."""
    with silent_burst(port, 3) as burst:
        burst.watch(3 * case.slow)
        report = burst.report()
    log("silent connections (%s): %s" % (kind, json.dumps(report, sort_keys=True)))
    check(report["closed_by_server"] == 3,
          "the %s server closed %d of 3 silent connections within %.0f s"
          % (kind, report["closed_by_server"], 3 * case.slow))
    closed = report["close_after_seconds"]
    case.expect(closed["min"] >= 0.8,
                "a silent %s connection was closed after %.2f s, before the "
                "1 s handshake timeout" % (kind, closed["min"]))
    case.expect(closed["max"] <= 1 + case.slow,
                "a silent %s connection was closed only after %.2f s (1 s "
                "timeout)" % (kind, closed["max"]))


def case_handshake_timeout(case):
    server = case.server("--handshake_timeout=1s")
    expect_silent_closed_at_timeout(case, server.port, "plaintext")
    # TLS: gRPC's own listener, with its server handshake timeout.
    cert, key = make_certificate(case.log_dir)
    tls = case.server("--handshake_timeout=1s", "--tls_cert=" + cert,
                      "--tls_key=" + key)
    expect_silent_closed_at_timeout(case, tls.port, "TLS")

    with attacks.Connection(HOST, server.port) as conn:
        conn.settle()
        conn.wait(lambda: not conn.usable, 3)
        alive = conn.usable and conn.ping()
        log("connection with preface and SETTINGS after 3 s: %s"
            % ("open" if alive else conn.closed or conn.goaway))
        case.expect(alive, "the server closed a connection that sent the "
                    "HTTP/2 preface and SETTINGS: %s"
                    % (conn.goaway or conn.closed or conn.write_error))
