#!/usr/bin/env python3
"""Writes a large feature database in the tutorial's JSON format.

    gen_db.py COUNT OUT.json [--seed S] [--bounds LO_LAT,LO_LON,HI_LAT,HI_LON]

COUNT features at distinct points spread uniformly over the bounds (degrees;
by default latitude 30..50, longitude -120..-70), in the format of
data/route_guide_db.json:

    [
      {"location": {"latitude": 407838351, "longitude": -746143763}, "name": "..."},
      ...
    ]

Coordinates are E7 integers (degrees times 10^7). About a third of the names
are empty, as in the tutorial's data; the rest read "Feature 123, Generated
St". The output depends only on COUNT, the seed and the bounds. OUT may be
"-" for stdout. A million features take a few seconds: lines are formatted
directly and written in chunks, with no json module in the loop.
"""

import argparse
import random
import sys

E7 = 10_000_000
CHUNK_LINES = 10_000
STREETS = ("Generated St", "Synthetic Ave", "Benchmark Rd", "Sample Ln",
           "Random Way", "Test Blvd")


def parse_bounds(text):
    try:
        lo_lat, lo_lon, hi_lat, hi_lon = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LO_LAT,LO_LON,HI_LAT,HI_LON in degrees, got {text!r}")
    if not (-90 <= lo_lat < hi_lat <= 90 and -180 <= lo_lon < hi_lon <= 180):
        raise argparse.ArgumentTypeError(
            f"bounds {text!r} are not a rectangle within -90..90, -180..180")
    return (round(lo_lat * E7), round(lo_lon * E7),
            round(hi_lat * E7), round(hi_lon * E7))


def count_arg(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError("COUNT must not be negative")
    return value


def features(count, seed, bounds):
    """Yields (latitude, longitude, name) for `count` distinct points."""
    lo_lat, lo_lon, hi_lat, hi_lon = bounds
    if count > (hi_lat - lo_lat + 1) * (hi_lon - lo_lon + 1):
        raise ValueError("more features than distinct points in the bounds")
    rng = random.Random(seed)
    randint = rng.randint
    rand = rng.random
    seen = set()
    lon_span = hi_lon - lo_lon + 1
    index = 0
    while index < count:
        lat = randint(lo_lat, hi_lat)
        lon = randint(lo_lon, hi_lon)
        key = (lat - lo_lat) * lon_span + (lon - lo_lon)
        if key in seen:
            continue  # Rare at E7 resolution; keeps every point distinct.
        seen.add(key)
        index += 1
        if rand() < 1 / 3:
            name = ""
        else:
            name = f"Feature {index}, {STREETS[index % len(STREETS)]}"
        yield lat, lon, name


def write_db(out, count, seed, bounds):
    out.write("[")
    separator = "\n  "  # Before the first feature; ",\n  " before the rest.
    chunk = []
    for lat, lon, name in features(count, seed, bounds):
        # Names hold only ASCII letters, digits, spaces and commas: no JSON
        # escaping needed.
        chunk.append(f'{separator}{{"location": {{"latitude": {lat}, '
                     f'"longitude": {lon}}}, "name": "{name}"}}')
        separator = ",\n  "
        if len(chunk) >= CHUNK_LINES:
            out.write("".join(chunk))
            chunk.clear()
    out.write("".join(chunk))
    out.write("\n]\n")


def main():
    parser = argparse.ArgumentParser(
        description="Writes COUNT features in the tutorial's JSON format.")
    parser.add_argument("count", metavar="COUNT", type=count_arg)
    parser.add_argument("out", metavar="OUT.json",
                        help='file to write, or "-" for stdout')
    parser.add_argument("--seed", type=int, default=1,
                        help="random seed (default 1)")
    parser.add_argument("--bounds", type=parse_bounds,
                        default=parse_bounds("30,-120,50,-70"),
                        help="LO_LAT,LO_LON,HI_LAT,HI_LON in degrees "
                             "(default 30,-120,50,-70)")
    args = parser.parse_args()
    try:
        if args.out == "-":
            write_db(sys.stdout, args.count, args.seed, args.bounds)
        else:
            with open(args.out, "w", encoding="ascii",
                      buffering=1 << 20) as out:
                write_db(out, args.count, args.seed, args.bounds)
    except (OSError, ValueError) as error:
        print(f"gen_db.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
