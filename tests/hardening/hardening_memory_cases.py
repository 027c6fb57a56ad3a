"""The memory cases: attacks that make the server hold memory (calls
never read, a 4 GiB message, SETTINGS never acknowledged, messages stopped
halfway, waves of idle connections), each under --max_memory with an
honest load beside it and the server's RSS checked by a MemoryWatch.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import h2_attacks as attacks
from hardening_case import MEMORY_FLAGS
from hardening_common import (HERE, HOST, METADATA_LIMIT, MiB, WAIT_SECONDS,
                              check, log, mib)

GEN_DB = os.path.join(HERE, os.pardir, "bench", "gen_db.py")

# How long the server may take to load a 200,000-feature database: 28 s
# on the 2-core development machine (6 s for 100,000: the loader parses with
# a callback, which nlohmann/json 3.11.2 makes quadratic in the features).
BIG_DB_LOAD_SECONDS = 90
# Server CPU per ListFeatures over the whole world of that database (it
# walks every feature before it starts its cursor), measured about 2 ms:
# what the attacker's calls add to its own duration, per 1,000 calls.
LIST_WORLD_SECONDS_PER_1000 = 2


def make_db(case, count):
    """A database of `count` features (tests/bench/gen_db.py) in the log
    directory; its path."""
    path = os.path.join(case.log_dir, "db-%d.json" % count)
    done = subprocess.run([sys.executable, GEN_DB, str(count), path],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=WAIT_SECONDS)
    check(done.returncode == 0, "gen_db.py %d failed: %s"
          % (count, done.stderr.decode("utf-8", "replace")))
    return path


def case_list_no_read(case, connections=1):
    attack = "list-no-read" + ("-%d" % connections if connections > 1
                               else "")
    streams, hold = 1000, 10
    server = case.server("--db=" + make_db(case, 200000), *MEMORY_FLAGS,
                         startup_seconds=BIG_DB_LOAD_SECONDS * case.slow)
    with case.memory_watch(server) as watch:
        load = case.load(server, hold + 1 + connections * streams
                         * LIST_WORLD_SECONDS_PER_1000 // 1000)
        report = attacks.list_no_read(HOST, server.port, connections,
                                      streams, hold)
        watch.attacker_left()
        log("list-no-read: %s" % json.dumps(report, sort_keys=True))
        figures = load.finish()
        watch.settle()
    held = report["outcomes"].get("response headers only", 0)
    log("list-no-read: %d of %d ListFeatures over 200,000 features held "
        "with response headers sent and no window; %d DATA bytes reached "
        "the client" % (held, connections * streams,
                        report["data_bytes_received"]))
    case.expect(report["synced"] == connections,
                "%d of %d attacking connections answered a PING after their "
                "calls: the attack was not all received"
                % (report["synced"], connections))
    load.check_clean(figures)
    watch.check(attack, load.errors(figures))


def case_reflection_no_read(case):
    connections, streams, oversized, hold = 4, 1000, 10, 10
    server = case.server(*MEMORY_FLAGS)
    with case.memory_watch(server) as watch:
        load = case.load(server, hold + 2)
        report = attacks.reflection_no_read(HOST, server.port, connections,
                                            streams, oversized=oversized,
                                            hold=hold)
        watch.attacker_left()
        log("reflection-no-read: %s" % json.dumps(report, sort_keys=True))
        figures = load.finish()
        watch.settle()
    outcomes = report["outcomes"]
    held = outcomes.get("response headers only", 0)
    refused = sum(n for outcome, n in outcomes.items()
                  if outcome.startswith("status 3 ") and "limit" in outcome)
    log("reflection-no-read: %d of %d reflection streams held with their "
        "answer unsent; %d of %d oversized requests refused"
        % (held, connections * streams, refused, connections * oversized))
    case.expect(report["synced"] == connections,
                "%d of %d attacking connections answered a PING after their "
                "calls: the attack was not all received"
                % (report["synced"], connections))
    case.expect(refused == connections * oversized,
                "%d of %d reflection requests over the bound were refused "
                "with INVALID_ARGUMENT naming the limit (outcomes: %s)"
                % (refused, connections * oversized, outcomes))
    load.check_clean(figures)
    watch.check("reflection-no-read", load.errors(figures))


def case_huge_message(case, auth=False):
    attack = "huge-message" + ("-auth" if auth else "")
    flags = list(MEMORY_FLAGS)
    client_flags = []
    if auth:
        token = os.path.join(case.log_dir, "token")
        with open(token, "w") as f:
            f.write("hardening-test-token\n")
        flags.append("--auth_token_file=" + token)
        client_flags.append("--auth_token_file=" + token)
    server = case.server(*flags)
    seconds = 8
    with case.memory_watch(server) as watch:
        load = case.load(server, seconds + 1, *client_flags)
        report = case.attack("huge-message", server.port,
                             "--connections=3", "--seconds=%d" % seconds,
                             timeout=seconds + WAIT_SECONDS)
        watch.attacker_left()
        figures = load.finish()
        watch.settle()
    log("huge message: %d calls, %s of zeros sent (%s/s); the server's "
        "answers %s, GOAWAY %s, closes %s"
        % (report["streams_opened"], mib(report["data_bytes"]),
           mib(report["data_bytes_per_second"]), report["outcomes"],
           report["goaways"], report["closes"]))
    # The calls still open when the attacker stopped are not answers.
    answers = [outcome for outcome in report["outcomes"]
               if not outcome.startswith("open")]
    case.expect(answers or report["goaways"] or report["closes"],
                "the server neither ended a call nor the connection while "
                "it read %s of a 4 GiB message" % mib(report["data_bytes"]))
    case.expect("status 0" not in report["outcomes"],
                "a call whose message was zeros was answered with status 0")
    load.check_clean(figures)
    watch.check(attack, load.errors(figures))


def case_never_ack_settings(case):
    streams, header_bytes, hold = 1000, 64 * 1024, 5
    server = case.server("--max_concurrent_streams=10", *MEMORY_FLAGS)
    with case.memory_watch(server) as watch:
        load = case.load(server, hold + 3)
        report = attacks.never_ack_settings(HOST, server.port, streams,
                                            header_bytes, hold)
        watch.attacker_left()
        log("never-ack-settings: %s" % json.dumps(report, sort_keys=True))
        figures = load.finish()
        watch.settle()
    after_headers = report["after_headers"]
    answers = report["after_requests"]
    refused = sum(n for outcome, n in after_headers.items()
                  if outcome.startswith("RST_STREAM"))
    log("never-ack-settings: the server advertised MAX_CONCURRENT_STREAMS "
        "%s and got no SETTINGS ack; of %d calls with %d bytes of headers "
        "it held %d open and reset %d (stream limit %s), then answered "
        "%s; served (status 0): %d"
        % (report["server_settings"].get("MAX_CONCURRENT_STREAMS"),
           report["streams"], report["header_list_size"],
           after_headers.get("open, no answer", 0), refused,
           "held" if report["streams"] - refused <= 10 else "not held",
           answers, answers.get("status 0", 0)))
    case.expect(not answers.get("status 0"),
                "%d calls with %d bytes of headers were served (limit %d)"
                % (answers.get("status 0", 0), report["header_list_size"],
                   METADATA_LIMIT))
    load.check_clean(figures)
    watch.check("never-ack-settings", load.errors(figures))


def case_half_message(case):
    connections, streams, hold = 100, 100, 10
    server = case.server("--grace=30s", *MEMORY_FLAGS)
    with case.memory_watch(server) as watch:
        load = case.load(server, hold + 1)
        with attacks.HalfMessages(HOST, server.port, connections,
                                  streams) as attack:
            attack.hold(hold)
            report = attack.report()
        watch.attacker_left()
        log("half-message: %s" % json.dumps(report, sort_keys=True))
        figures = load.finish()
        watch.settle()
    case.expect(report["synced"] == connections,
                "%d of %d attacking connections answered a PING after their "
                "calls: the attack was not all received"
                % (report["synced"], connections))
    load.check_clean(figures)
    watch.check("half-message", load.errors(figures))

    # The same calls stalled again: a stop must not wait --grace for them.
    with attacks.HalfMessages(HOST, server.port, connections,
                              streams) as attack:
        log("half-message: %d calls stalled again; stopping the server"
            % (connections * streams))
        server.signal(signal.SIGTERM)
        signalled = time.monotonic()
        limit = 5 * case.slow
        # The attacker keeps answering PINGs meanwhile.
        while server.alive and time.monotonic() - signalled < limit:
            attack.hold(0.05)
        code = server.exit_code(0)
        took = time.monotonic() - signalled
        log("half-message at SIGTERM: %s"
            % json.dumps(attack.report()["outcomes"], sort_keys=True))
    check(code is not None, "the server still ran %.1f s after SIGTERM "
          "with %d stalled calls (--grace=30s)" % (limit,
                                                   connections * streams))
    log("the server exited with %d %.2f s after SIGTERM" % (code, took))
    case.expect(code == 0, "the server exited with %d after SIGTERM, "
                "expected 0 (a clean stop)" % code)
    case.expect(re.search(r"\bstopped\b", server.text()),
                "no 'stopped' line in the server log")


def case_connection_waves(case):
    waves, count, hold = 3, 5000, 3
    # Between waves, and after the last, RSS is read this long after the
    # wave closed: the same delay each time, so the readings compare.
    gap = 3
    # How much more the server may hold from its allocator after the last
    # wave than after the first. A connection holds about 18 KiB while it
    # is open (90 MiB for a wave), so this is under 420 bytes for each of
    # the 10,000 later connections.
    in_use_bound = 4 * MiB
    # RSS must not ratchet either, but live chunks pin the pages they land
    # on: with the same 2-3 MiB in use after each wave, RSS after the
    # server's trims measured anywhere from 34 to 66 MiB. A wave kept would
    # add about 90 MiB.
    ratchet_bound = 48 * MiB
    server = case.server(*MEMORY_FLAGS)
    levels = []  # RSS `gap` s after each wave closed
    in_use = []  # heap in use after each wave (status line)
    with case.memory_watch(server) as watch:
        # A wave takes about a second to connect and shake hands, then
        # `hold`, then `gap`.
        load = case.load(server, waves * (1 + hold + gap))
        for wave in range(waves):
            report = attacks.connection_wave(HOST, server.port, count, hold)
            closed = time.monotonic()
            log("wave %d: %s" % (wave + 1, json.dumps(report,
                                                      sort_keys=True)))
            case.expect(report["handshaken"] >= 0.9 * count,
                        "wave %d: only %d of %d connections completed the "
                        "handshake: the figures do not measure %d idle "
                        "connections" % (wave + 1, report["handshaken"],
                                         count, count))
            if wave == waves - 1:
                watch.attacker_left()
            check(server.alive, "the server exited with %s after wave %d"
                  % (server.process.returncode, wave + 1))
            time.sleep(max(0.0, closed + gap - time.monotonic()))
            levels.append(server.memory()["VmRSS"])
            log("RSS %d s after wave %d closed: %s"
                % (gap, wave + 1, mib(levels[-1])))
            # The status line (SIGUSR1 trims first) is read after the RSS;
            # after the last wave the watch reads it once the RSS 15 s
            # later was read, so that only the server's own trims act
            # before that reading.
            if wave < waves - 1:
                in_use.append(server.status()["heap_in_use"])
        figures = load.finish()
        watch.settle()
    in_use.append(watch.heap_in_use)
    load.check_clean(figures)
    log("connection waves: RSS %d s after each wave %s; heap in use after "
        "each %s" % (gap, [mib(level) for level in levels],
                     [mib(size) for size in in_use]))
    case.expect(in_use[-1] - in_use[0] <= in_use_bound,
                "connection waves: the server holds %s from its allocator "
                "after wave %d, %s more than after wave 1 (bound %s): each "
                "wave keeps memory" % (mib(in_use[-1]), waves,
                                       mib(in_use[-1] - in_use[0]),
                                       mib(in_use_bound)))
    ratchet = levels[-1] - levels[0]
    if case.asan:
        # ASan's allocator grows its quarantine and per-size caches over
        # the first waves, by how much depends on timing: in six runs the
        # reading after wave 1 was anywhere from 151 to 227 MiB, and after
        # wave 3 always 264-266 MiB, with the heap in use the same 2.7-2.8
        # MiB. So under ASan only the last wave must add little; a leak of
        # what 5,000 connections hold (about 85 MiB a wave) would show in
        # every wave, the last included.
        last_step = levels[-1] - levels[-2]
        case.expect(last_step <= ratchet_bound,
                    "connection waves (ASan): RSS after wave %d is %s above "
                    "after wave %d (bound %s)"
                    % (waves, mib(last_step), waves - 1, mib(ratchet_bound)))
    else:
        case.expect(ratchet <= ratchet_bound,
                    "connection waves: RSS %d s after wave %d is %s above "
                    "the same reading after wave 1 (bound %s)"
                    % (gap, waves, mib(ratchet), mib(ratchet_bound)))
    watch.check("connection-waves", load.errors(figures))
