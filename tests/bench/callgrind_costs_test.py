#!/usr/bin/env python3
"""Unit tests of instructions.py's parts that need no valgrind: the
callgrind parser on a handwritten file whose self costs are known, the
library groups, the baseline checks and the exit code's verdicts.
(instructions.py itself, under valgrind, is the 'instructions' suite of a
release build.)"""

import io
import json
import os
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind_costs  # noqa: E402
import instruction_groups  # noqa: E402
import instructions  # noqa: E402
import startup_instructions  # noqa: E402
from callgrind_server import CannotRun  # noqa: E402

# Names compressed and reused across ob/cob, fl/fi/fe/cfi and fn/cfn; the
# cost line after each calls= is inclusive (5000, 400) and must not count;
# fi=/fe= move costs to an inlined header and back; a jump line and its
# cost-less position line; relative (+N) and repeated (*) positions; a
# cost line shorter than the events (Dr missing: 0); helper's call to
# itself (999), inside its own cost already.
#   Ir: foo 100+20+1 in foo.c, 30 in inline.h; main 7; helper 50+25 = 233
#   Dr: 7 + 5 = 12
#   inclusive Ir: foo 151 + 5000, main 7 + 400, helper 75
HANDWRITTEN = """\
# callgrind format
version: 1
creator: handwritten
cmd: /bin/app
part: 1

positions: instr line
events: Ir Dr
summary: 233 12

ob=(1) /usr/lib/x86_64-linux-gnu/libfoo.so.1
fl=(1) foo.c
fn=(1) foo
0x10 3 100 7
+2 * 20
cob=(2) /bin/app
cfi=(2) app.cc
cfn=(2) main
calls=1 0x20 5
* * 5000 300
fi=(3) inline.h
+1 4 30
fe=(1)
+1 5 1

ob=(2)
fl=(2)
fn=(2)
0x20 5 7
cfn=(3) helper
calls=4 0x30 9
+1 6 400 40
jump=2 0x40 10
+3 7
fn=(3)
0x30 9 50 5
cfn=(3)
calls=1 0x30 9
+1 +1 999 99
+1 +1 25

totals: 233 12
"""


class ParserTest(unittest.TestCase):
    def test_self_costs(self):
        profile = callgrind_costs.parse(io.StringIO(HANDWRITTEN))
        self.assertEqual(profile.self_costs, {
            ("/usr/lib/x86_64-linux-gnu/libfoo.so.1", "foo.c", "foo"): 121,
            ("/usr/lib/x86_64-linux-gnu/libfoo.so.1", "inline.h", "foo"): 30,
            ("/bin/app", "app.cc", "main"): 7,
            ("/bin/app", "app.cc", "helper"): 75,
        })
        self.assertEqual(profile.total(), 233)
        self.assertEqual(profile.totals, 233)
        self.assertEqual(profile.by_object(), {
            "/usr/lib/x86_64-linux-gnu/libfoo.so.1": 151, "/bin/app": 82})

    def test_inclusive_costs(self):
        profile = callgrind_costs.parse(io.StringIO(HANDWRITTEN))
        self.assertEqual(profile.inclusive("foo"), 5151)
        self.assertEqual(profile.inclusive("main"), 407)
        self.assertEqual(profile.inclusive("helper"), 75)
        self.assertEqual(profile.inclusive("absent"), 0)

    def test_second_event(self):
        profile = callgrind_costs.parse(io.StringIO(HANDWRITTEN), event="Dr")
        self.assertEqual(profile.total(), 12)
        self.assertEqual(profile.totals, 12)

    def test_summary_stands_in_for_totals(self):
        text = HANDWRITTEN.replace("totals: 233 12\n", "")
        self.assertEqual(callgrind_costs.parse(io.StringIO(text)).totals, 233)

    def test_errors(self):
        with self.assertRaises(callgrind_costs.FormatError):
            callgrind_costs.parse(io.StringIO("events: Ir\nfn=(7)\n0 1\n"))
        with self.assertRaises(callgrind_costs.FormatError):
            callgrind_costs.parse(io.StringIO("events: Ir\n"), event="Dr")
        with self.assertRaises(callgrind_costs.FormatError):
            callgrind_costs.parse(io.StringIO("not callgrind\n"))


class GroupsTest(unittest.TestCase):
    def test_objects(self):
        grouping = instruction_groups.Grouping(
            "/b/server/routeguide-server", {"_ZN10routeguide5Point3FooEv"},
            mapped=[(0x4000, 0x5000, "/usr/lib/x86_64-linux-gnu/libgrpc.so.29")])
        cases = {
            ("/b/server/routeguide-server", "_ZN10routeguide5Point3FooEv"):
                instruction_groups.GENERATED,
            ("/b/server/routeguide-server", "_ZN10routeguide5Point3FooEv'2"):
                instruction_groups.GENERATED,
            ("/b/server/routeguide-server", "_ZN10routeguide4MainEv"):
                instruction_groups.OURS,
            ("/usr/lib/x86_64-linux-gnu/libgrpc.so.29.0.0", "f"): "gRPC",
            ("/usr/lib/x86_64-linux-gnu/libgrpc++.so.1.51.1", "f"): "gRPC",
            ("/usr/lib/x86_64-linux-gnu/libgpr.so.29.0.0", "f"): "gRPC",
            ("/usr/lib/x86_64-linux-gnu/libupb.so.29.0.0", "f"): "gRPC",
            ("/usr/lib/x86_64-linux-gnu/libprotobuf.so.32.0.12", "f"): "protobuf",
            ("/usr/lib/x86_64-linux-gnu/libabsl_base.so.20220623.0.0", "f"): "Abseil",
            ("/usr/lib/x86_64-linux-gnu/libc.so.6", "f"): "libc/system",
            ("/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30", "f"): "libc/system",
            ("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "f"): "libc/system",
            ("/usr/lib/x86_64-linux-gnu/libspdlog.so.1.10.0", "f"): "other",
            ("???", "0x0000000000004010"): "gRPC",  # A PLT stub, by address.
            ("???", "0x0000000000009000"): "other",
        }
        for (obj, function), group in cases.items():
            self.assertEqual(grouping.group(obj, function), group, (obj, function))


    def test_libraries_linked_in(self):
        """A static_grpc server: one object, functions sorted by namespace,
        then by the archive that defines them."""
        binary = "/b/server/routeguide-server"
        grouping = instruction_groups.Grouping(
            binary, {"_ZN10routeguide5Point14_InternalParseEv"},
            ours={"_ZNSt6vectorIiSaIiEE17_M_realloc_insertEv", "ours_c_helper"},
            static={"gRPC": {"cq_check_tag", "_ZNSt6vectorIiSaIiEE4swapEv"},
                    "protobuf": {"protobuf_c_thing"}, "Abseil": set()})
        cases = {
            "_ZN10routeguide5Point14_InternalParseEv": instruction_groups.GENERATED,
            "_ZN10routeguide12FeatureStore4FindEv": instruction_groups.OURS,
            "_ZNK10routeguide12FeatureStore4FindEv'2": instruction_groups.OURS,
            "_ZN9grpc_core7ExecCtx5FlushEv": "gRPC",
            "_ZN4grpc6Server5StartEv": "gRPC",
            "_ZN6google8protobuf8internal5ParseEv": "protobuf",
            "_ZN4absl7debian35Mutex4LockEv": "Abseil",
            "_ZNSt6vectorIiSaIiEE17_M_realloc_insertEv": instruction_groups.OURS,
            "_ZNSt6vectorIiSaIiEE4swapEv": "gRPC",
            "cq_check_tag": "gRPC",
            "protobuf_c_thing": "protobuf",
            "ours_c_helper": instruction_groups.OURS,
            "_start": "other",
        }
        for function, group in cases.items():
            self.assertEqual(grouping.group(binary, function), group, function)
        self.assertEqual(instruction_groups.first_name("_ZN10routeguide3FooEv"),
                         "routeguide")
        self.assertEqual(instruction_groups.first_name("_ZNK4absl6StatusEv"), "absl")
        self.assertIsNone(instruction_groups.first_name("cq_next"))


class CompareTest(unittest.TestCase):
    BASELINE = {kind: 1000 for kind in instructions.KINDS}

    def verdicts(self, changed, tolerance=3.0):
        """The verdicts with the kinds in `changed` at those counts and the
        rest at the baseline's."""
        now = dict(self.BASELINE, **changed)
        rows, code = instructions.compare(self.BASELINE, now, tolerance)
        return {row[0]: row[4] for row in rows}, code

    def test_within_tolerance(self):
        verdicts, code = self.verdicts({"GetFeature": 1030, "RecordRoute": 971,
                                        "RouteChat": 1029, "ListFeatures@64": 1030})
        self.assertEqual(code, 0)
        self.assertEqual(set(verdicts.values()), {"ok"})

    def test_regression(self):
        verdicts, code = self.verdicts({"GetFeature": 1031})
        self.assertEqual(code, 1)
        self.assertEqual(verdicts["GetFeature"], "REGRESSION")
        self.assertEqual(verdicts["RouteChat"], "ok")

    def test_regression_at_64_in_flight_alone(self):
        verdicts, code = self.verdicts({"ListFeatures@64": 1031})
        self.assertEqual(code, 1)
        self.assertEqual(verdicts["ListFeatures@64"], "REGRESSION")
        self.assertEqual(verdicts["ListFeatures"], "ok")

    def test_decrease_is_not_a_failure(self):
        verdicts, code = self.verdicts({"GetFeature": 900})
        self.assertEqual(code, 0)
        self.assertTrue(verdicts["GetFeature"].startswith("lower"))

    def test_baseline_edited_down_by_5_percent(self):
        lowered = {k: round(v * 0.95) for k, v in self.BASELINE.items()}
        rows, code = instructions.compare(lowered, self.BASELINE, 3.0)
        self.assertEqual(code, 1)
        self.assertEqual({r[4] for r in rows}, {"REGRESSION"})

    def test_tolerance(self):
        _, code = self.verdicts({"GetFeature": 1040}, 5.0)
        self.assertEqual(code, 0)


class BaselineTest(unittest.TestCase):
    def write(self, data):
        f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        self.addCleanup(os.unlink, f.name)
        json.dump(data, f)
        f.close()
        return f.name

    def good(self):
        return {"instructions_per_call": dict(CompareTest.BASELINE),
                "workload": instructions.workload_settings()}

    def test_good(self):
        baseline = instructions.load_baseline(self.write(self.good()))
        self.assertEqual(baseline["instructions_per_call"]["GetFeature"], 1000)

    def test_missing(self):
        with self.assertRaisesRegex(CannotRun, "--update"):
            instructions.load_baseline("/nonexistent/instructions.json")

    def test_other_workload(self):
        data = self.good()
        data["workload"]["kinds"]["GetFeature"]["requests"] += 1
        with self.assertRaisesRegex(CannotRun, "other workload"):
            instructions.load_baseline(self.write(data))

    def test_kind_missing(self):
        data = self.good()
        del data["instructions_per_call"]["RouteChat"]
        with self.assertRaises(CannotRun):
            instructions.load_baseline(self.write(data))

    def test_exit_2_without_binaries_or_valgrind(self):
        baseline = self.write(self.good())
        with tempfile.TemporaryDirectory() as build, \
                mock.patch("sys.stderr", new_callable=io.StringIO) as err:
            code = instructions.main(["--build", build, "--baseline", baseline])
            self.assertEqual(code, 2)
            self.assertIn("missing", err.getvalue())
            for binary in ("server/routeguide-server", "client/routeguide-client"):
                path = os.path.join(build, binary)
                os.makedirs(os.path.dirname(path))
                with open(path, "w") as f:
                    f.write("#!/bin/sh\nexit 1\n")
                os.chmod(path, 0o755)
            with mock.patch.dict(os.environ, {"PATH": build}):
                code = instructions.main(["--build", build, "--baseline", baseline])
            self.assertEqual(code, 2)
            self.assertIn("valgrind not found", err.getvalue())


class StartupSplitTest(unittest.TestCase):
    """startup_instructions.py's columns from a profile whose costs are
    known: before main is what neither the loader, main nor the other
    threads hold."""

    def profile(self, with_main=True):
        ld, app, libc = "ld.so", "/bin/app", "libc.so.6"
        self_costs = {(ld, "rtld.c", "_dl_start"): 40,
                      (app, "?", "static_init"): 7,
                      (app, "?", startup_instructions.BUILDER): 12,
                      (libc, "?", "start_thread"): 9}
        call_costs = {(ld, "rtld.c", "_dl_start"): 400,
                      (libc, "?", "start_thread"): 90}
        if with_main:
            self_costs[(app, "?", "main")] = 3
            call_costs[(app, "?", "main")] = 20
            call_costs[(app, "?", startup_instructions.BUILDER)] = 8
        return callgrind_costs.Profile("Ir", self_costs, 1000, call_costs)

    def test_columns(self):
        parts = startup_instructions.split(self.profile())
        self.assertEqual(parts, {"total": 1000, "loader": 440, "main": 23,
                                 "builder": 20, "threads": 99,
                                 "before main": 1000 - 440 - 23 - 99})

    def test_no_main_is_not_a_startup(self):
        with self.assertRaises(CannotRun):
            startup_instructions.split(self.profile(with_main=False))

    def test_unknown_server_exits_2(self):
        with mock.patch("sys.stderr", new_callable=io.StringIO) as err:
            self.assertEqual(startup_instructions.main(["--servers", "ours,go"]), 2)
            self.assertIn("go", err.getvalue())


if __name__ == "__main__":
    unittest.main()
