"""A RouteGuide client in the style of the gRPC Python tutorial.

Runs the tutorial's walkthrough (GetFeature twice, ListFeatures over the
40,-75 .. 42,-73 rectangle, RecordRoute of ten random features of the
database file, RouteChat of five notes) against --target and prints it in
the tutorial client's format.

    /usr/bin/python3 tutorial_client.py --target=127.0.0.1:PORT \
        --db=data/route_guide_db.json [--seed=N]

route_guide_pb2 and route_guide_pb2_grpc must be importable (PYTHONPATH).
Exit code 0 on success; an RPC error ends the run with a traceback.
"""

import argparse
import json
import random
import sys
import threading

import grpc

import route_guide_pb2 as pb
import route_guide_pb2_grpc as pb_grpc

# Per-call deadline, so a broken server cannot hang the walkthrough.
CALL_TIMEOUT_SECONDS = 10


# gRPC pulls the request iterators on a thread of its own, so RouteChat's
# "Sending" lines race the main thread's "Received" lines: print whole lines
# under a lock.
print_lock = threading.Lock()


def say(line):
    with print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def point(latitude, longitude):
    return pb.Point(latitude=latitude, longitude=longitude)


def load_locations(db_path):
    """The points of every feature in a tutorial-format JSON database."""
    with open(db_path, encoding="utf-8") as db_file:
        entries = json.load(db_file)
    return [point(e["location"]["latitude"], e["location"]["longitude"])
            for e in entries]


def describe_feature(feature):
    return "Feature called '%s' at latitude: %d, longitude: %d" % (
        feature.name, feature.location.latitude, feature.location.longitude)


def show_get_feature(stub, where):
    feature = stub.GetFeature(where, timeout=CALL_TIMEOUT_SECONDS)
    if not feature.HasField("location"):
        # A tutorial server always answers with the location it was asked.
        raise RuntimeError("GetFeature answered without a location")
    if feature.name:
        say(describe_feature(feature))
    else:
        say("Found no feature at latitude: %d, longitude: %d" % (
            feature.location.latitude, feature.location.longitude))


def walk_get_feature(stub):
    show_get_feature(stub, point(409146138, -746188906))
    show_get_feature(stub, point(0, 0))


def walk_list_features(stub):
    area = pb.Rectangle(lo=point(400000000, -750000000),
                        hi=point(420000000, -730000000))
    say("Looking for features between 40, -75 and 42, -73")
    for feature in stub.ListFeatures(area, timeout=CALL_TIMEOUT_SECONDS):
        say(describe_feature(feature))


def walk_record_route(stub, locations, rng):
    def route():
        for _ in range(10):
            stop = rng.choice(locations)
            say("Visiting point latitude: %d, longitude: %d" % (
                stop.latitude, stop.longitude))
            yield stop

    summary = stub.RecordRoute(route(), timeout=CALL_TIMEOUT_SECONDS)
    # The tutorial's lines end in a space.
    say("Finished trip with %d points " % summary.point_count)
    say("Passed %d features " % summary.feature_count)
    say("Travelled %d meters " % summary.distance)
    say("It took %d seconds " % summary.elapsed_time)


def walk_route_chat(stub):
    notes = [
        ("First message", 0, 0),
        ("Second message", 0, 1),
        ("Third message", 1, 0),
        ("Fourth message", 0, 0),
        ("Fifth message", 1, 0),
    ]

    def outgoing():
        for text, latitude, longitude in notes:
            say("Sending %s at latitude: %d, longitude: %d" % (
                text, latitude, longitude))
            yield pb.RouteNote(message=text,
                               location=point(latitude, longitude))

    for reply in stub.RouteChat(outgoing(), timeout=CALL_TIMEOUT_SECONDS):
        say("Received message %s at latitude: %d, longitude: %d" % (
            reply.message, reply.location.latitude,
            reply.location.longitude))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT")
    parser.add_argument("--db", required=True,
                        help="feature database (tutorial JSON format)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed for RecordRoute's random points")
    args = parser.parse_args(argv)

    locations = load_locations(args.db)
    if not locations:
        raise SystemExit("%s holds no feature" % args.db)
    rng = random.Random(args.seed)

    with grpc.insecure_channel(args.target) as channel:
        grpc.channel_ready_future(channel).result(
            timeout=CALL_TIMEOUT_SECONDS)
        stub = pb_grpc.RouteGuideStub(channel)
        say("-------------- GetFeature --------------")
        walk_get_feature(stub)
        say("-------------- ListFeatures --------------")
        walk_list_features(stub)
        say("-------------- RecordRoute --------------")
        walk_record_route(stub, locations, rng)
        say("-------------- RouteChat --------------")
        walk_route_chat(stub)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
