"""What every part of the hardening tests shares: the loopback host, the
bounds on waits, the server's port line, a few values cases agree on, and
the check/log helpers (a failed check() ends the case with CheckFailed).
"""

import os
import re
import time

# Where the hardening scripts are, with h2_attacks.py among them.
HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
MiB = 1 << 20
# Bounds every wait not given by the case itself.
WAIT_SECONDS = 20

PORT_LINE = re.compile(
    r"RouteGuide server listening on 127\.0\.0\.1:\d+ \(port (\d+)\)")
# A point no other test writes notes at.
CHAT_POINT = (123456789, 987654321)
# The server's default --max_metadata_size, and a call's headers that stay
# just under it (the sizes SETTINGS_MAX_HEADER_LIST_SIZE counts).
METADATA_LIMIT = 16 * 1024
METADATA_UNDER = METADATA_LIMIT - 512


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def log(message):
    print(message, flush=True)


def mib(size):
    return "%.1f MiB" % (size / MiB)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        check(time.monotonic() < deadline,
              "%s: not within %.1f s" % (what, timeout))
        time.sleep(0.05)
