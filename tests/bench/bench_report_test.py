#!/usr/bin/env python3
"""Unit tests of bench_report.py: ours over each baseline, as a ratio of
the median rounds and round by round, in the printed lines and the
Markdown tables."""

import contextlib
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_report  # noqa: E402


def server_point(calls, rounds, switches=None, load=None):
    point = {"calls_per_second": calls, "messages_per_second": 2 * calls,
             "p50_us": 10, "p99_us": 20, "p99_9_us": 30,
             "server_cpu_us_per_call": 5.0, "server_peak_rss_kib": 2048,
             "rounds_calls_per_second": rounds}
    if switches is not None:
        point["server_switches_per_call"] = switches
    if load is not None:
        point["load_cpu_share"] = load
    return point


def shown(key, point, servers=("ours", "callback")):
    """What bench.py prints for one point (print_point, then the summary
    table), and the Markdown tables of a run of that point alone."""
    results = {"machine": {"cores": 2, "kernel": "k"},
               "settings": {"build": "b", "rounds": 1, "seconds": 1, "warmup": 1},
               "scenarios": {key: point}}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        bench_report.print_point(key, point, list(servers))
        bench_report.print_table(results, list(servers))
    return printed.getvalue(), bench_report.format_markdown(results, list(servers))


def scenario(ours_rounds, callback_rounds):
    point = {"title": "GetFeature, 1 in flight",
             "ours": server_point(sorted(ours_rounds)[len(ours_rounds) // 2],
                                  ours_rounds),
             "callback": server_point(
                 sorted(callback_rounds)[len(callback_rounds) // 2],
                 callback_rounds)}
    bench_report.add_ratios(point, ["ours", "callback"])
    return point


class PairedRatiosTest(unittest.TestCase):
    def test_round_by_round_median_and_range(self):
        # Round by round 0.5, 1.5 and 2.75 (mean 1.58; paired in sorted
        # order instead, 1.0, 1.25 and 1.65); the medians alone say 1.25.
        point = scenario([100, 150, 330], [200, 100, 120])
        ratios = point["ours"]["ratio_to"]["callback"]
        self.assertAlmostEqual(ratios["calls_per_second"], 1.25)
        self.assertEqual(ratios["paired_rounds"],
                         {"median": 1.5, "low": 0.5, "high": 2.75})

    def test_needs_two_rounds_of_each(self):
        for ours, other in (([100], [50]), ([100, 200], [50]),
                            ([100, 200], [50, 0])):
            with self.subTest(ours=ours, other=other):
                self.assertIsNone(bench_report.paired_ratios(ours, other))

    def test_printed_and_in_markdown(self):
        point = scenario([100, 150, 330], [200, 100, 120])
        printed, markdown = shown("get_1", point)
        self.assertIn("calls round by round 1.50x (0.50-2.75x)", printed)
        self.assertIn("| get_1 | callback | 1.25x | - | 1.00x | 1.00x | "
                      "1.50x (0.50-2.75x) |", markdown)


class SwitchesPerCallTest(unittest.TestCase):
    def results(self, point):
        return {"machine": {"cores": 2, "kernel": "k"},
                "settings": {"build": "b", "rounds": 1, "seconds": 1, "warmup": 1},
                "scenarios": {"get_1": point}}

    def test_each_servers_figure_printed_and_in_markdown(self):
        point = {"title": "GetFeature, 1 in flight",
                 "ours": server_point(100, [100], switches=3.125),
                 "callback": server_point(80, [80], switches=7.5)}
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            bench_report.print_point("get_1", point, ["ours", "callback"])
        lines = [line for line in printed.getvalue().splitlines() if line]
        self.assertIn("switches/call", lines[1])
        self.assertIn(" 3.12 ", lines[2])
        self.assertIn(" 7.50 ", lines[3])
        markdown = bench_report.format_markdown(self.results(point),
                                                ["ours", "callback"])
        self.assertIn("| CPU µs/call | switches/call | load CPU | peak RSS MiB |",
                      markdown)
        self.assertIn("| get_1 | ours | 100 | 200 | 10 | 20 | 30 | 5.0 | 3.12 | - | 2.0 |",
                      markdown)
        self.assertIn("| get_1 | callback | 80 | 160 | 10 | 20 | 30 | 5.0 | 7.50 | - | 2.0 |",
                      markdown)

    def test_results_made_before_the_count_show_a_dash(self):
        point = {"title": "GetFeature, 1 in flight",
                 "ours": server_point(100, [100])}
        markdown = bench_report.format_markdown(self.results(point), ["ours"])
        self.assertIn("| get_1 | ours | 100 | 200 | 10 | 20 | 30 | 5.0 | - | - | 2.0 |",
                      markdown)


class LoadBoundTest(unittest.TestCase):
    """A point where the load generator was near the whole of its core says
    so beside its ratios, wherever they are shown."""

    def point(self, ours_load, callback_load):
        point = {"title": "RecordRoute of 100 points, 64 in flight",
                 "ours": server_point(110, [110, 105], load=ours_load),
                 "callback": server_point(100, [100, 100], load=callback_load)}
        bench_report.add_ratios(point, ["ours", "callback"])
        return point

    def test_either_servers_load_near_its_core_marks_the_ratios(self):
        for ours_load, callback_load in ((0.97, 0.5), (0.5, 0.9)):
            with self.subTest(ours=ours_load, callback=callback_load):
                point = self.point(ours_load, callback_load)
                self.assertTrue(point["ours"]["ratio_to"]["callback"]["load_bound"])
                printed, markdown = shown("record_100", point)
                self.assertIn("load-bound: the load generator used 90% or more",
                              printed)
                self.assertTrue(printed.rstrip().endswith("load-bound"))
                self.assertIn(f"| {ours_load * 100:.0f}% |", markdown)
                self.assertIn("| record_100 | callback | 1.10x | - | 1.00x | "
                              "1.00x | 1.08x (1.05-1.10x) | yes |", markdown)

    def test_a_load_with_room_left_marks_nothing(self):
        point = self.point(0.89, 0.5)
        self.assertNotIn("load_bound", point["ours"]["ratio_to"]["callback"])
        printed, markdown = shown("record_100", point)
        self.assertNotIn("load-bound", printed)
        self.assertIn("| 89% |", markdown)
        self.assertIn("| 1.08x (1.05-1.10x) | no |", markdown)



class H2loadRoundsTest(unittest.TestCase):
    def test_paired_round_by_round_beside_the_ratio_of_medians(self):
        ours = server_point(100, [100, 100])
        ours["h2load_calls_per_second"] = 300
        ours["h2load_rounds"] = [300, 100, 450]
        callback = server_point(100, [100, 100])
        callback["h2load_calls_per_second"] = 200
        callback["h2load_rounds"] = [100, 200, 300]
        point = {"title": "RecordRoute of 100 points, 64 in flight",
                 "ours": ours, "callback": callback}
        bench_report.add_ratios(point, ["ours", "callback"])
        ratios = point["ours"]["ratio_to"]["callback"]
        self.assertAlmostEqual(ratios["h2load_calls_per_second"], 1.5)
        self.assertEqual(ratios["h2load_paired_rounds"],
                         {"median": 1.5, "low": 0.5, "high": 3.0})
        printed, markdown = shown("record_100", point)
        self.assertIn("h2load 1.50x, round by round 1.50x (0.50-3.00x)", printed)
        self.assertIn("| record_100 | callback | 1.00x | 1.50x, round by round "
                      "1.50x (0.50-3.00x) | 1.00x |", markdown)

    def test_server_cpu_per_call_under_h2load_beside_the_rate(self):
        ours = server_point(100, [100])
        ours["h2load_calls_per_second"] = 300
        ours["h2load_server_cpu_us_per_call"] = 45.5
        ours["h2load_server_cpu_share"] = 0.8
        callback = server_point(100, [100])
        callback["h2load_calls_per_second"] = 200
        callback["h2load_server_cpu_us_per_call"] = 18.2
        callback["h2load_server_cpu_share"] = 0.995
        point = {"title": "RecordRoute of 100 points, 64 in flight",
                 "ours": ours, "callback": callback}
        bench_report.add_ratios(point, ["ours", "callback"])
        ratios = point["ours"]["ratio_to"]["callback"]
        self.assertAlmostEqual(ratios["h2load_server_cpu_per_call"], 2.5)
        printed, markdown = shown("record_100", point)
        self.assertIn("h2load 1.50x, h2load CPU/call 2.50x", printed)
        self.assertRegex(printed, r"ours .* 300 +45\.5 \(80%\)\n")
        self.assertRegex(printed, r"callback .* 200 +18\.2 \(100%\)\n")
        self.assertIn("| 300 | 45.5 (80%) |", markdown)
        self.assertIn("| 200 | 18.2 (100%) |", markdown)
        self.assertIn("| record_100 | callback | 1.00x | 1.50x, h2load CPU/call "
                      "2.50x |", markdown)

    def test_results_made_before_the_h2load_cpu_show_a_dash(self):
        point = {"title": "t", "ours": server_point(100, [100]),
                 "callback": server_point(100, [100])}
        point["ours"]["h2load_calls_per_second"] = 300
        point["callback"]["h2load_calls_per_second"] = 200
        bench_report.add_ratios(point, ["ours", "callback"])
        self.assertNotIn("h2load_server_cpu_per_call",
                         point["ours"]["ratio_to"]["callback"])
        printed, markdown = shown("get_64", point)
        self.assertRegex(printed, r"ours .* 300 +-\n")
        self.assertIn("| 300 | - |", markdown)

    def test_results_without_rounds_show_the_ratio_alone(self):
        point = {"title": "t", "ours": server_point(100, [100]),
                 "callback": server_point(100, [100])}
        point["ours"]["h2load_calls_per_second"] = 300
        point["callback"]["h2load_calls_per_second"] = 200
        bench_report.add_ratios(point, ["ours", "callback"])
        self.assertEqual(bench_report.fmt_h2load(
            point["ours"]["ratio_to"]["callback"]), "1.50x")


class MachineLineTest(unittest.TestCase):
    """The Markdown says which TCP congestion control the run had: loopback
    uploads under BBR ran at two thirds of their rate under CUBIC."""

    def markdown(self, machine):
        results = {"machine": machine,
                   "settings": {"build": "b", "rounds": 1, "seconds": 1,
                                "warmup": 1},
                   "scenarios": {}}
        return bench_report.format_markdown(results, ["ours"])

    def test_named_when_known(self):
        line = self.markdown({"cores": 2, "kernel": "k",
                              "tcp_congestion_control": "bbr"}).splitlines()[0]
        self.assertIn("kernel k, TCP congestion control bbr, gRPC", line)

    def test_left_out_when_not_read(self):
        line = self.markdown({"cores": 2, "kernel": "k"}).splitlines()[0]
        self.assertIn("kernel k, gRPC", line)
        self.assertNotIn("congestion", line)

    def test_read_from_the_running_kernel(self):
        facts = bench_report.machine_facts()
        path = "/proc/sys/net/ipv4/tcp_congestion_control"
        if not os.path.exists(path):
            self.skipTest("no " + path)
        with open(path) as f:
            self.assertEqual(facts["tcp_congestion_control"], f.read().strip())


if __name__ == "__main__":
    unittest.main()
