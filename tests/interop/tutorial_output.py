"""The tutorial client's output, checked line by line for interop_test.py:
the sections, RecordRoute's distance recomputed, RouteChat's notes.
"""

import math
import re

HEADER = re.compile(r"^-------------- (\w+) --------------$")
VISIT_LINE = re.compile(
    r"^Visiting point latitude: (-?\d+), longitude: (-?\d+)$")
TRAVELLED_LINE = re.compile(r"^Travelled (\d+) meters $")


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def log(message):
    print(message, flush=True)


def sections(text):
    """Lines by the section header they follow ("GetFeature", ...)."""
    result = {}
    current = None
    for line in text.split("\n"):
        header = HEADER.match(line)
        if header:
            current = header.group(1)
            check(current not in result, "section %s twice" % current)
            result[current] = []
        elif current is not None:
            result[current].append(line)
        else:
            check(line == "", "output before the first section: %r" % line)
    # The text ends in a newline: drop the empty string after it.
    if current is not None and result[current][-1:] == [""]:
        result[current].pop()
    return result


def check_lines_equal(what, actual, expected):
    log("comparing %s: %d lines, expected %d"
        % (what, len(actual), len(expected)))
    for i, (got, want) in enumerate(zip(actual, expected)):
        check(got == want, "%s line %d:\n  got      %r\n  expected %r"
              % (what, i + 1, got, want))
    if len(actual) > len(expected):
        raise CheckFailed("%s: %d lines, expected %d; first extra: %r"
                          % (what, len(actual), len(expected),
                             actual[len(expected)]))
    if len(actual) < len(expected):
        raise CheckFailed("%s: %d lines, expected %d; first missing: %r"
                          % (what, len(actual), len(expected),
                             expected[len(actual)]))


def haversine_meters(a, b):
    """The tutorial's distance: great circle, earth radius 6371000 m."""
    lat_a, lon_a = a[0] / 1e7, a[1] / 1e7
    lat_b, lon_b = b[0] / 1e7, b[1] / 1e7
    d_lat = math.radians(lat_b - lat_a)
    d_lon = math.radians(lon_b - lon_a)
    h = (math.sin(d_lat / 2) ** 2 + math.cos(math.radians(lat_a))
         * math.cos(math.radians(lat_b)) * math.sin(d_lon / 2) ** 2)
    return 6371000.0 * 2 * math.atan2(math.sqrt(h), math.sqrt(1 - h))


def check_record_route(lines):
    log("checking RecordRoute: %d lines" % len(lines))
    visits = [VISIT_LINE.match(line) for line in lines[:10]]
    check(len(lines) == 14 and all(visits),
          "RecordRoute: expected 10 Visiting lines then 4 summary lines, "
          "got:\n" + "\n".join(lines))
    check(lines[10] == "Finished trip with 10 points ",
          "RecordRoute: %r, expected 'Finished trip with 10 points '"
          % lines[10])
    check(lines[11] == "Passed 10 features ",
          "RecordRoute: %r, expected 'Passed 10 features '" % lines[11])
    travelled = TRAVELLED_LINE.match(lines[12])
    check(travelled, "RecordRoute: %r is no 'Travelled N meters ' line"
          % lines[12])
    check(re.match(r"^It took \d+ seconds $", lines[13]),
          "RecordRoute: %r is no 'It took N seconds ' line" % lines[13])
    points = [(int(v.group(1)), int(v.group(2))) for v in visits]
    want = sum(haversine_meters(a, b) for a, b in zip(points, points[1:]))
    got = int(travelled.group(1))
    log("RecordRoute distance: server says %d m, recomputed %.3f m"
        % (got, want))
    # The server truncates its own float sum; allow for rounding there.
    check(abs(got - want) <= 2,
          "RecordRoute: travelled %d m, the points give %.3f m" % (got, want))


def check_route_chat(lines, expected):
    def only(prefix, source):
        return [line for line in source if line.startswith(prefix)]

    log("checking RouteChat: %d lines" % len(lines))
    others = [line for line in lines
              if not line.startswith(("Sending ", "Received message "))]
    check(not others, "RouteChat: unexpected lines %r" % others)
    check_lines_equal("RouteChat Sending lines", only("Sending ", lines),
                      only("Sending ", expected))
    check_lines_equal("RouteChat Received lines",
                      only("Received message ", lines),
                      only("Received message ", expected))


def check_tutorial_output(who, out, expected_text):
    log("checking the output of %s" % who)
    got = sections(out)
    want = sections(expected_text)
    order = ["GetFeature", "ListFeatures", "RecordRoute", "RouteChat"]
    check(list(got) == order,
          "%s: sections %s, expected %s" % (who, list(got), order))
    check_lines_equal("GetFeature", got["GetFeature"], want["GetFeature"])
    check_lines_equal("ListFeatures", got["ListFeatures"],
                      want["ListFeatures"])
    check_record_route(got["RecordRoute"])
    check_route_chat(got["RouteChat"], want["RouteChat"])
