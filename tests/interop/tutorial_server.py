"""A RouteGuide server in the style of the gRPC Python tutorial.

    /usr/bin/python3 tutorial_server.py PORT --db=data/route_guide_db.json

Listens on 127.0.0.1:PORT (0 picks a free port) with a thread pool, prints
the bound port alone on a line of stdout once it serves, and stops on
SIGTERM or SIGINT with exit code 0.

Semantics are the tutorial's: GetFeature answers the feature stored at
exactly that point, or an unnamed feature at the point asked; ListFeatures
streams the features inside the rectangle (bounds inclusive, corners in any
order) in database order; RecordRoute counts points, points that are
features, and haversine meters between consecutive points; RouteChat sends
back, for each note, the notes received earlier on the same call at the
same location.

route_guide_pb2 and route_guide_pb2_grpc must be importable (PYTHONPATH).
"""

import argparse
import json
import math
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

import route_guide_pb2 as pb
import route_guide_pb2_grpc as pb_grpc

EARTH_RADIUS_METERS = 6371000.0
E7 = 1e7


def load_features(db_path):
    with open(db_path, encoding="utf-8") as db_file:
        entries = json.load(db_file)
    return [pb.Feature(name=e.get("name", ""),
                       location=pb.Point(
                           latitude=e["location"]["latitude"],
                           longitude=e["location"]["longitude"]))
            for e in entries]


def same_point(a, b):
    return a.latitude == b.latitude and a.longitude == b.longitude


def haversine_meters(a, b):
    """Great-circle distance between two E7 points."""
    lat_a = math.radians(a.latitude / E7)
    lat_b = math.radians(b.latitude / E7)
    d_lat = math.radians(b.latitude / E7 - a.latitude / E7)
    d_lon = math.radians(b.longitude / E7 - a.longitude / E7)
    h = (math.sin(d_lat / 2) ** 2
         + math.cos(lat_a) * math.cos(lat_b) * math.sin(d_lon / 2) ** 2)
    h = min(1.0, max(0.0, h))
    return EARTH_RADIUS_METERS * 2 * math.atan2(math.sqrt(h),
                                                math.sqrt(1 - h))


class RouteGuide(pb_grpc.RouteGuideServicer):
    def __init__(self, features):
        self._features = features  # Read-only once serving.

    def _find(self, where):
        for feature in self._features:
            if same_point(feature.location, where):
                return feature
        return None

    def GetFeature(self, request, context):
        found = self._find(request)
        if found is not None:
            return found
        return pb.Feature(name="", location=request)

    def ListFeatures(self, request, context):
        west = min(request.lo.longitude, request.hi.longitude)
        east = max(request.lo.longitude, request.hi.longitude)
        south = min(request.lo.latitude, request.hi.latitude)
        north = max(request.lo.latitude, request.hi.latitude)
        for feature in self._features:
            where = feature.location
            if west <= where.longitude <= east and \
                    south <= where.latitude <= north:
                yield feature

    def RecordRoute(self, request_iterator, context):
        started = time.monotonic()
        points = 0
        features = 0
        meters = 0.0
        previous = None
        for where in request_iterator:
            points += 1
            if self._find(where) is not None:
                features += 1
            if previous is not None:
                meters += haversine_meters(previous, where)
            previous = where
        return pb.RouteSummary(point_count=points, feature_count=features,
                               distance=int(meters),
                               elapsed_time=int(time.monotonic() - started))

    def RouteChat(self, request_iterator, context):
        earlier = []
        for note in request_iterator:
            for old in earlier:
                if same_point(old.location, note.location):
                    yield old
            earlier.append(note)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="port on 127.0.0.1; 0 = any")
    parser.add_argument("--db", required=True,
                        help="feature database (tutorial JSON format)")
    parser.add_argument("--grace", type=float, default=2.0,
                        help="seconds calls in flight get on shutdown")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum, frame):
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    pb_grpc.add_RouteGuideServicer_to_server(
        RouteGuide(load_features(args.db)), server)
    port = server.add_insecure_port("127.0.0.1:%d" % args.port)
    if port == 0:
        print("tutorial_server: cannot bind 127.0.0.1:%d" % args.port,
              file=sys.stderr)
        return 1
    server.start()
    print(port, flush=True)

    while not stop.wait(0.5):
        pass
    server.stop(args.grace).wait(args.grace + 5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
