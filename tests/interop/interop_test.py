"""Wire-compatibility tests between the C++ RouteGuide and gRPC Python.

One case per run (--case):

  python-client-cpp-server     routeguide-server on 127.0.0.1:0; the Python
                               tutorial client runs against it; a Python
                               GetFeature of an out-of-range point must get
                               INVALID_ARGUMENT; SIGTERM must end the server
                               with exit code 0.
  cpp-client-python-server     tutorial_server.py on 127.0.0.1:0;
                               `routeguide-client tutorial --seed=1` runs
                               against it.
  python-client-python-server  the Python pair against each other, to check
                               the reference implementation itself.
  python-reflection-cpp-server routeguide-server on 127.0.0.1:0; a Python
                               client learns RouteGuide by server reflection
                               (gRPC's own reflection.proto) and calls
                               GetFeature with the types it learned.

Every client's output is compared with the tutorial's (--expected):
GetFeature and ListFeatures line for line; RecordRoute's point and feature
counts, and its distance against a haversine recomputed here from the
points the client printed; RouteChat's Sending lines in order and Received
lines in order (the two may interleave).

Every child is stopped by its PID on every path, every wait is bounded, and
only 127.0.0.1 is used. Exit code 0 when every check passed.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from tutorial_output import CheckFailed, check, check_tutorial_output, log

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_CLIENT = os.path.join(HERE, "tutorial_client.py")
PYTHON_SERVER = os.path.join(HERE, "tutorial_server.py")

# Bounds every wait: a server becoming ready, a client run, a shutdown.
WAIT_SECONDS = 30
# After SIGKILL, how long reaping may take.
REAP_SECONDS = 10

CPP_PORT_LINE = re.compile(
    r"RouteGuide server listening on 127\.0\.0\.1:0 \(port (\d+)\)")
PYTHON_PORT_LINE = re.compile(r"^(\d+)\n", re.MULTILINE)


# --- Child processes --------------------------------------------------------


class Child:
    """A long-running child whose stdout and stderr go to files."""

    def __init__(self, name, argv, env, log_dir):
        self.name = name
        self.stdout_path = os.path.join(log_dir, name + ".stdout")
        self.stderr_path = os.path.join(log_dir, name + ".stderr")
        log("$ " + " ".join(argv))
        with open(self.stdout_path, "wb") as out, \
                open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=env)
        self.pid = self.process.pid

    def _read(self, path):
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_for_port(self, stream, pattern):
        """Polls the child's stream for `pattern`; returns group 1 as int."""
        path = self.stdout_path if stream == "stdout" else self.stderr_path
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            match = pattern.search(self._read(path))
            if match:
                return int(match.group(1))
            code = self.process.poll()
            check(code is None,
                  "%s (pid %d) exited with %s before it served"
                  % (self.name, self.pid, code))
            check(time.monotonic() < deadline,
                  "%s (pid %d) did not report its port within %d s"
                  % (self.name, self.pid, WAIT_SECONDS))
            time.sleep(0.05)

    def terminate(self):
        """SIGTERM, then the exit code (SIGKILL after WAIT_SECONDS)."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CheckFailed("%s (pid %d) still ran %d s after SIGTERM"
                              % (self.name, self.pid, WAIT_SECONDS))

    def kill(self):
        """Makes sure the child is gone and reaped."""
        if self.process.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=REAP_SECONDS)
            except subprocess.TimeoutExpired:
                log("warning: %s (pid %d) not reaped" % (self.name, self.pid))

    def dump_logs(self):
        for path in (self.stdout_path, self.stderr_path):
            text = self._read(path)
            if text:
                log("---- %s ----\n%s" % (os.path.basename(path),
                                          text.rstrip("\n")))


def run_client(name, argv, env):
    """Runs a client to completion (killed after WAIT_SECONDS)."""
    log("$ " + " ".join(argv))
    try:
        # subprocess.run kills the child (by its PID) on timeout.
        done = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              capture_output=True, env=env,
                              timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired as timed_out:
        raise CheckFailed("%s did not finish within %d s; stderr:\n%s"
                          % (name, WAIT_SECONDS,
                             (timed_out.stderr or b"").decode(
                                 "utf-8", "replace")))
    out = done.stdout.decode("utf-8", "replace")
    err = done.stderr.decode("utf-8", "replace")
    if err:
        log("---- %s stderr ----\n%s" % (name, err.rstrip("\n")))
    check(done.returncode == 0,
          "%s exited with %d; stdout:\n%s" % (name, done.returncode, out))
    return out




# --- Servers ----------------------------------------------------------------


def start_cpp_server(args, env, log_dir):
    server = Child("routeguide-server",
                   [args.server, "--address=127.0.0.1:0", "--db=" + args.db,
                    "--threads=2", "--grace=5s"],
                   env, log_dir)
    try:
        port = server.wait_for_port("stderr", CPP_PORT_LINE)
    except BaseException:
        server.kill()
        server.dump_logs()
        raise
    log("routeguide-server (pid %d) serves on 127.0.0.1:%d"
        % (server.pid, port))
    return server, port


def start_python_server(args, env, log_dir):
    server = Child("tutorial_server.py",
                   [sys.executable, PYTHON_SERVER, "0", "--db=" + args.db],
                   env, log_dir)
    try:
        port = server.wait_for_port("stdout", PYTHON_PORT_LINE)
    except BaseException:
        server.kill()
        server.dump_logs()
        raise
    log("tutorial_server.py (pid %d) serves on 127.0.0.1:%d"
        % (server.pid, port))
    return server, port


def python_client_argv(args, port):
    return [sys.executable, PYTHON_CLIENT, "--target=127.0.0.1:%d" % port,
            "--db=" + args.db, "--seed=1"]


def cpp_client_argv(args, port):
    return [args.client, "tutorial", "--target=127.0.0.1:%d" % port,
            "--seed=1"]


def check_out_of_range_rejected(port):
    """GetFeature of latitude 900000001 must be INVALID_ARGUMENT."""
    import grpc
    import route_guide_pb2 as pb
    import route_guide_pb2_grpc as pb_grpc

    log("checking a Python GetFeature(latitude 900000001) gets "
        "INVALID_ARGUMENT")
    with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
        stub = pb_grpc.RouteGuideStub(channel)
        try:
            feature = stub.GetFeature(
                pb.Point(latitude=900000001, longitude=0),
                timeout=WAIT_SECONDS)
        except grpc.RpcError as error:
            log("GetFeature failed with %s: %s"
                % (error.code(), error.details()))
            check(error.code() == grpc.StatusCode.INVALID_ARGUMENT,
                  "GetFeature(latitude 900000001): %s, expected "
                  "INVALID_ARGUMENT" % error.code())
            return
        raise CheckFailed("GetFeature(latitude 900000001) succeeded: %r"
                          % feature)


def check_compressed_request_read(port):
    """gzip-compressed requests must be read and answered.

    The server leaves gRPC's compression filter out (it never compresses
    what it sends); decompression is a filter of its own and must stay.
    gRPC sends a message uncompressed when gzip would not make it smaller
    (any Point), so the call is a RouteChat whose first note is long and
    repetitive; it must come back in the reply to the second.
    """
    import grpc
    import route_guide_pb2 as pb
    import route_guide_pb2_grpc as pb_grpc

    log("checking gzip-compressed Python calls are read")
    note = "compressible " * 200
    location = pb.Point(latitude=409146138, longitude=-746188906)
    with grpc.insecure_channel("127.0.0.1:%d" % port,
                               compression=grpc.Compression.Gzip) as channel:
        stub = pb_grpc.RouteGuideStub(channel)
        notes = [pb.RouteNote(location=location, message=note),
                 pb.RouteNote(location=location, message="second")]
        replies = list(stub.RouteChat(iter(notes), timeout=WAIT_SECONDS,
                                      compression=grpc.Compression.Gzip))
    check(any(r.message == note for r in replies),
          "a gzip-compressed RouteChat note of %d bytes did not come back "
          "(replies: %d)" % (len(note), len(replies)))


def check_reflection_discovers_and_calls(port):
    """A client that knows nothing of RouteGuide finds it by server
    reflection and calls GetFeature with what it learned, as grpcurl does.

    The reflection messages are gRPC's own definition (Debian's
    grpc-proto), not the server's protos/reflection.proto, so a field
    number wrong there fails here.
    """
    import grpc
    from google.protobuf import descriptor_pb2, descriptor_pool
    from google.protobuf import message_factory
    import reflection_pb2 as rpb

    log("checking a Python client finds RouteGuide by reflection and calls "
        "GetFeature through what it learned")
    info_path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
        info = channel.stream_stream(
            info_path,
            request_serializer=rpb.ServerReflectionRequest.SerializeToString,
            response_deserializer=rpb.ServerReflectionResponse.FromString)
        requests = [
            rpb.ServerReflectionRequest(list_services=""),
            rpb.ServerReflectionRequest(
                file_containing_symbol="routeguide.RouteGuide"),
            rpb.ServerReflectionRequest(
                file_containing_symbol="routeguide.NoSuchThing"),
        ]
        answers = list(info(iter(requests), timeout=WAIT_SECONDS))
        check(len(answers) == len(requests),
              "%d reflection answers to %d requests"
              % (len(answers), len(requests)))
        services = sorted(s.name for s in
                          answers[0].list_services_response.service)
        log("services: %s" % ", ".join(services))
        check("routeguide.RouteGuide" in services,
              "list_services lacks routeguide.RouteGuide: %s" % services)
        check(answers[2].error_response.error_code ==
              grpc.StatusCode.NOT_FOUND.value[0],
              "an unknown symbol got %r" % answers[2])

        files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in
                 answers[1].file_descriptor_response.file_descriptor_proto]
        check(files, "no file describes routeguide.RouteGuide")
        pool = descriptor_pool.DescriptorPool()
        added = set()
        while len(added) < len(files):
            ready = [f for f in files if f.name not in added and
                     all(d in added for d in f.dependency)]
            check(ready, "files import ones not sent: %s"
                  % [f.name for f in files])
            for f in ready:
                pool.Add(f)
                added.add(f.name)
        method = pool.FindServiceByName(
            "routeguide.RouteGuide").methods_by_name["GetFeature"]
        factory = message_factory.MessageFactory(pool)
        point_class = factory.GetPrototype(method.input_type)
        feature_class = factory.GetPrototype(method.output_type)
        point = point_class(latitude=409146138, longitude=-746188906)
        get_feature = channel.unary_unary(
            "/%s/%s" % (method.containing_service.full_name, method.name),
            request_serializer=point_class.SerializeToString,
            response_deserializer=feature_class.FromString)
        feature = get_feature(point, timeout=WAIT_SECONDS)
    log("GetFeature through reflection: %r" % feature.name)
    check(feature.name ==
          "Berkshire Valley Management Area Trail, Jefferson, NJ, USA",
          "GetFeature through reflection answered %r" % feature.name)


# --- Cases ------------------------------------------------------------------


def with_cpp_server(args, env, log_dir, checks):
    """Runs checks(port) against routeguide-server, which must then exit 0
    on SIGTERM; its logs are shown when anything fails."""
    server, port = start_cpp_server(args, env, log_dir)
    try:
        checks(port)
        log("stopping routeguide-server (pid %d) with SIGTERM" % server.pid)
        code = server.terminate()
        log("routeguide-server exited with %d" % code)
        check(code == 0, "routeguide-server exited with %d after SIGTERM, "
              "expected 0" % code)
    except BaseException:
        server.kill()
        server.dump_logs()
        raise
    finally:
        server.kill()


def case_python_client_cpp_server(args, env, log_dir, expected):
    def checks(port):
        out = run_client("tutorial_client.py", python_client_argv(args, port),
                         env)
        check_tutorial_output("tutorial_client.py -> routeguide-server",
                              out, expected)
        check_out_of_range_rejected(port)
        check_compressed_request_read(port)

    with_cpp_server(args, env, log_dir, checks)


def case_python_reflection_cpp_server(args, env, log_dir, expected):
    with_cpp_server(args, env, log_dir, check_reflection_discovers_and_calls)


def case_cpp_client_python_server(args, env, log_dir, expected):
    server, port = start_python_server(args, env, log_dir)
    try:
        out = run_client("routeguide-client", cpp_client_argv(args, port),
                         env)
        check_tutorial_output("routeguide-client -> tutorial_server.py",
                              out, expected)
        log("stopping tutorial_server.py (pid %d) with SIGTERM" % server.pid)
        code = server.terminate()
        log("tutorial_server.py exited with %d" % code)
        check(code == 0, "tutorial_server.py exited with %d after SIGTERM"
              % code)
    except BaseException:
        server.kill()
        server.dump_logs()
        raise
    finally:
        server.kill()


def case_python_client_python_server(args, env, log_dir, expected):
    server, port = start_python_server(args, env, log_dir)
    try:
        out = run_client("tutorial_client.py", python_client_argv(args, port),
                         env)
        check_tutorial_output("tutorial_client.py -> tutorial_server.py",
                              out, expected)
        code = server.terminate()
        check(code == 0, "tutorial_server.py exited with %d after SIGTERM"
              % code)
    except BaseException:
        server.kill()
        server.dump_logs()
        raise
    finally:
        server.kill()


CASES = {
    "python-client-cpp-server": case_python_client_cpp_server,
    "cpp-client-python-server": case_cpp_client_python_server,
    "python-client-python-server": case_python_client_python_server,
    "python-reflection-cpp-server": case_python_reflection_cpp_server,
}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", required=True, choices=sorted(CASES))
    parser.add_argument("--generated-dir", required=True,
                        help="where route_guide_pb2*.py are")
    parser.add_argument("--server", required=True,
                        help="the routeguide-server binary")
    parser.add_argument("--client", required=True,
                        help="the routeguide-client binary")
    parser.add_argument("--db", required=True,
                        help="feature database, tutorial JSON format")
    parser.add_argument("--expected", required=True,
                        help="the tutorial client's output")
    args = parser.parse_args(argv)

    for path in (args.server, args.client, args.db, args.expected,
                 os.path.join(args.generated_dir, "route_guide_pb2.py"),
                 os.path.join(args.generated_dir, "route_guide_pb2_grpc.py")):
        check(os.path.isfile(path), "missing: %s" % path)
    with open(args.expected, encoding="utf-8") as f:
        expected = f.read()

    sys.path.insert(0, args.generated_dir)
    # Keep proxies out of a loopback test, here and in every child (gRPC
    # reads these when a channel is created).
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "grpc_proxy"):
        os.environ.pop(name, None)
    os.environ["no_grpc_proxy"] = "*"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [args.generated_dir] + ([env["PYTHONPATH"]]
                                if env.get("PYTHONPATH") else []))
    env["PYTHONDONTWRITEBYTECODE"] = "1"

    with tempfile.TemporaryDirectory(prefix="routeguide-interop-") as logs:
        CASES[args.case](args, env, logs, expected)
    log("PASS: %s" % args.case)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CheckFailed as failure:
        print("FAIL: %s" % failure, flush=True)
        sys.exit(1)
