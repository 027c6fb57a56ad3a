"""Hardening tests: hostile clients against routeguide-server, one case a run.

  python3 hardening_test.py --server PATH --client PATH --case NAME [--asan]

  fd-burst-soft-limit     soft RLIMIT_NOFILE 1024, hard 8192: 3,000 silent
                          connections for 10 s under a 200/s GetFeature load;
                          no call fails, a new client is served meanwhile, the
                          server raised its soft limit and logged it.
  fd-exhaustion-recovers  soft = hard = 1024: 2,000 silent connections for
                          5 s; once they close a new client is served within
                          5 s, and a RouteChat opened before still works.
  fd-exhaustion-tls       the same on a TLS listener, which gRPC cannot
                          recover: the server logs a listener error and exits
                          with code 3 within --grace + 5 s.
  handshake-timeout       --handshake_timeout=1s closes a silent connection
                          after 1-2 s, not one that sent the HTTP/2 preface.
  reuseport               a second server on a busy port exits 2 naming it;
                          with --reuseport two servers share a port and both
                          serve.
  sighup                  SIGHUP under load: no call fails, the server goes on.
  second-sigterm          a second SIGTERM while draining (--grace=60s, a
                          RouteChat open) ends the server within 1 s, non-zero.
  rapid-reset             HEADERS + RST_STREAM from 4 connections for 10 s
                          under the load: no call fails, p99 < 400 ms, RSS
                          comes back within 64 MiB.
  header-flood            1 MiB of headers over CONTINUATION frames is refused
                          (50 times over, before and after the SETTINGS ack)
                          with RSS (under ASan, heap in use) growing at most
                          8 MiB; metadata just under 16 KiB is served,
                          32 KiB refused.

Memory cases: the server runs with --max_memory=256MiB and
--memory_trim_interval=1s, a GetFeature load alongside must see no failed
call, and RSS must peak at most 384 MiB (the quota + 128 MiB) and be back
within 64 MiB of where it started 15 s after the attacker left, by the
server's own periodic trim (no SIGUSR1 before that reading). Each prints
FIGURES|attack|before MiB|peak MiB|after MiB|honest client's errors.

  list-no-read            a 200,000-feature database; one connection with
                          INITIAL_WINDOW_SIZE 0 that never sends
                          WINDOW_UPDATE opens 1,000 ListFeatures over the
                          whole world, held 10 s.
  list-no-read-4          the same on 4 connections.
  reflection-no-read      4 connections like that open 1,000 server
                          reflection streams each, every request with a
                          4,000-byte host (each answer echoes it), held
                          10 s; 10 more a connection, over
                          --max_reflection_request_size, must each get
                          INVALID_ARGUMENT naming the limit.
  huge-message            GetFeature calls declaring a 0xFFFFFFF0-byte
                          message, then zeros as fast as flow control
                          allows, on 3 connections for 8 s; the server must
                          push back (a status, RST_STREAM or GOAWAY).
  huge-message-auth       the same against --auth_token_file.
  never-ack-settings      1,000 calls with 64 KiB of headers each on one
                          connection that never acks SETTINGS, against
                          --max_concurrent_streams=10: prints how many the
                          server held open and answered (gRPC 1.51 applies
                          the limit only after the ack); none may be served
                          (metadata over --max_metadata_size).
  half-message            100 connections x 100 GetFeature calls that send
                          11 of 100 declared bytes and stall, held 10 s;
                          then, with the same attack held again, SIGTERM
                          (--grace=30s) must end the server within 5 s,
                          logging 'stopped'.
  connection-waves        three waves of 5,000 connections that complete
                          the HTTP/2 handshake and idle 3 s; RSS 15 s after
                          the last within 64 MiB of the start, and no
                          ratchet: the heap in use after wave 3 at most 4
                          MiB above after wave 1, RSS 3 s after wave 3 at
                          most 48 MiB above 3 s after wave 1 (under ASan,
                          above 3 s after wave 2).

The server runs on 127.0.0.1:0 with --threads=2. Under AddressSanitizer
(--asan, or found by ldd) timing bounds are 3x looser and RSS is only
required to level off (and, in the memory cases, to come back down
somewhat), since ASan's quarantine and shadow memory make absolute RSS
bounds meaningless; where a case bounds growth, the heap in use (ASan's
count of live bytes) is held to that bound instead.

Every child is stopped by its PID on every path and every wait is bounded.
Exit code 0 when every check passed, 1 with the reasons otherwise.

The cases live in hardening_*_cases.py beside this file, on the children
and checks of hardening_processes.py, hardening_case.py and
hardening_common.py, and the clients of h2_attacks.py.
"""

import argparse
import os
import sys
import tempfile

# The modules beside this script, wherever it is run from.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hardening_case import ASAN_QUARANTINE, Case  # noqa: E402
from hardening_common import MiB, CheckFailed, check, log  # noqa: E402
from hardening_fd_cases import (  # noqa: E402
    case_fd_burst_soft_limit, case_fd_exhaustion_recovers,
    case_fd_exhaustion_tls, case_handshake_timeout)
from hardening_flood_cases import (  # noqa: E402
    case_header_flood, case_rapid_reset)
from hardening_lifecycle_cases import (  # noqa: E402
    case_reuseport, case_second_sigterm, case_sighup)
from hardening_memory_cases import (  # noqa: E402
    case_connection_waves, case_half_message, case_huge_message,
    case_list_no_read, case_never_ack_settings, case_reflection_no_read)

CASES = {
    "fd-burst-soft-limit": case_fd_burst_soft_limit,
    "fd-exhaustion-recovers": case_fd_exhaustion_recovers,
    "fd-exhaustion-tls": case_fd_exhaustion_tls,
    "handshake-timeout": case_handshake_timeout,
    "reuseport": case_reuseport,
    "sighup": case_sighup,
    "second-sigterm": case_second_sigterm,
    "rapid-reset": case_rapid_reset,
    "header-flood": case_header_flood,
    "list-no-read": case_list_no_read,
    "list-no-read-4": lambda case: case_list_no_read(case, connections=4),
    "reflection-no-read": case_reflection_no_read,
    "huge-message": case_huge_message,
    "huge-message-auth": lambda case: case_huge_message(case, auth=True),
    "never-ack-settings": case_never_ack_settings,
    "half-message": case_half_message,
    "connection-waves": case_connection_waves,
}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", required=True, choices=sorted(CASES))
    parser.add_argument("--server", required=True,
                        help="the routeguide-server binary")
    parser.add_argument("--client", required=True,
                        help="the routeguide-client binary")
    parser.add_argument("--asan", action="store_true",
                        help="the server is built with AddressSanitizer "
                        "(found by ldd when it links libasan dynamically)")
    args = parser.parse_args(argv)
    for path in (args.server, args.client):
        check(os.path.isfile(path), "missing: %s" % path)
    # Keep proxies out of a loopback test, for every child (gRPC reads
    # these when a channel is created).
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "grpc_proxy"):
        os.environ.pop(name, None)
    os.environ["no_grpc_proxy"] = "*"

    with tempfile.TemporaryDirectory(prefix="routeguide-hardening-") as logs:
        case = Case(args, logs)
        if case.asan:
            # ASan holds freed memory in a quarantine (256 MiB by default)
            # before reusing it, so RSS climbs that far whatever the server
            # does; with a small one, memory that is given back shows as a
            # level within a case. Appended: the last setting wins.
            os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [
                os.environ.get("ASAN_OPTIONS"),
                "quarantine_size_mb=%d" % (ASAN_QUARANTINE // MiB)]))
            log("the server is built with AddressSanitizer: timing bounds "
                "x%g, RSS must only level off (ASAN_OPTIONS=%s)"
                % (case.slow, os.environ["ASAN_OPTIONS"]))
        failed = True
        try:
            CASES[args.case](case)
            check(not case.failures, "%d checks failed:\n  %s"
                  % (len(case.failures), "\n  ".join(case.failures)))
            failed = False
        finally:
            case.cleanup(failed)
    log("PASS: %s" % args.case)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CheckFailed as failure:
        print("FAIL: %s" % failure, flush=True)
        sys.exit(1)
