#!/usr/bin/env python3
"""Unit tests of bench_measure.py's readings from /proc, of the load
generator's CPU time and of h2load's figures, and of the copies
bench_startup.py times."""

import os
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_measure  # noqa: E402
import bench_startup  # noqa: E402


class ContextSwitchesTest(unittest.TestCase):
    def test_counts_every_thread_not_only_the_first(self):
        # A second thread sleeps 200 times (each sleep is a switch) and
        # stays alive for the second reading; the first thread waits once.
        slept = threading.Event()
        finish = threading.Event()

        def sleeper():
            for _ in range(200):
                time.sleep(0.0002)
            slept.set()
            finish.wait()

        before = bench_measure.thread_context_switches(os.getpid())
        thread = threading.Thread(target=sleeper)
        thread.start()
        try:
            self.assertTrue(slept.wait(30))
            after = bench_measure.thread_context_switches(os.getpid())
        finally:
            finish.set()
            thread.join()
        self.assertIn(thread.native_id, after)
        self.assertNotIn(thread.native_id, before)
        made = bench_measure.context_switches_between(before, after)
        self.assertGreaterEqual(made, 200)
        # Far fewer than the test's whole run could make, so a reading that
        # counted something else (every process, say) would show.
        self.assertLess(made, 5000)

    def test_between_two_readings(self):
        # Thread 1 went on, 2 ended (lost, never negative), 3 is new.
        before = {1: 10, 2: 500}
        after = {1: 15, 3: 7}
        self.assertEqual(bench_measure.context_switches_between(before, after), 12)

    def test_a_process_that_is_gone_is_an_error(self):
        with self.assertRaises(FileNotFoundError):
            bench_measure.thread_context_switches(2 ** 22 + 1)


class RunMeasuringCpuTest(unittest.TestCase):
    def run_python(self, code, timeout=60):
        return bench_measure.run_measuring_cpu([sys.executable, "-c", code],
                                               timeout=timeout)

    def test_counts_the_childs_cpu_and_not_its_sleep(self):
        done, busy, _ = self.run_python(
            "import time\n"
            "end = time.process_time() + 0.4\n"
            "while time.process_time() < end: pass\n"
            "print('done')")
        self.assertEqual(done.returncode, 0)
        self.assertEqual(done.stdout, "done\n")
        self.assertGreaterEqual(busy, 0.4)
        self.assertLess(busy, 5)
        # This process spins meanwhile: a reading of anything but the
        # child's own time would count it.
        spin_until = time.monotonic() + 0.6

        def spin():
            while time.monotonic() < spin_until:
                pass

        spinner = threading.Thread(target=spin)
        spinner.start()
        try:
            _, idle, wall = self.run_python("import time; time.sleep(0.5)")
        finally:
            spinner.join()
        self.assertLess(idle, 0.2)
        self.assertGreaterEqual(wall, 0.5)
        self.assertLess(wall, 30)

    def test_output_and_exit_code_come_back(self):
        done, _, _ = self.run_python(
            "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)")
        self.assertEqual((done.returncode, done.stdout, done.stderr),
                         (3, "out\n", "err\n"))

    def test_a_child_past_its_timeout_is_killed(self):
        started = time.monotonic()
        done, _, _ = self.run_python("import time; time.sleep(60)", timeout=0.5)
        self.assertEqual(done.returncode, -9)
        self.assertLess(time.monotonic() - started, 30)


class H2loadFiguresTest(unittest.TestCase):
    OUTPUT = ("finished in 4.00s, 8736.33 req/s, 1.02MB/s\n"
              "requests: 34945 total, 35009 started, {done} done, "
              "{succeeded} succeeded, 0 failed, 0 errored, 0 timeout\n")

    def test_the_rate(self):
        out = self.OUTPUT.format(done=34945, succeeded=34945)
        self.assertEqual(bench_measure.h2load_figures(out), 8736.33)

    def test_failed_calls_or_none_done_are_an_error(self):
        for done, succeeded in ((34945, 34944), (0, 0)):
            with self.subTest(done=done, succeeded=succeeded):
                with self.assertRaises(RuntimeError):
                    bench_measure.h2load_figures(
                        self.OUTPUT.format(done=done, succeeded=succeeded))
        with self.assertRaises(RuntimeError):
            bench_measure.h2load_figures("connect error\n")

    def test_cpu_per_call_from_the_share_of_a_core_and_the_rate(self):
        # Half a core at 10,000 calls/s is 50 microseconds a call.
        self.assertAlmostEqual(bench_measure.cpu_us_per_call(0.5, 10000), 50)


class MedianTest(unittest.TestCase):
    def test_the_round_with_the_median_keeps_its_figures(self):
        self.assertEqual(bench_measure.median_index([30, 10, 20]), 2)
        self.assertEqual(bench_measure.median_index([40, 10, 30, 20]), 2)
        rounds = [{"calls_per_second": c, "cpu": cpu}
                  for c, cpu in ((30, 3), (10, 1), (20, 2))]
        chosen = bench_measure.median_round(rounds)
        self.assertEqual((chosen["calls_per_second"], chosen["cpu"]), (20, 2))
        self.assertEqual(chosen["rounds_calls_per_second"], [30, 10, 20])

class StartupCopiesTest(unittest.TestCase):
    def test_one_executable_copy_per_binary(self):
        with tempfile.TemporaryDirectory() as build, \
                tempfile.TemporaryDirectory() as copies:
            for name in ("ours", "callback"):
                path = os.path.join(build, bench_measure.SERVERS[name][0])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(name)
                os.chmod(path, 0o755)
            paths = bench_startup.copy_binaries(
                build, ["ours", "ours-nospin", "callback"], copies)
            # Two of the servers are one binary with other flags.
            self.assertEqual(paths["ours"], paths["ours-nospin"])
            self.assertNotEqual(paths["ours"], paths["callback"])
            self.assertEqual(len(os.listdir(copies)), 2)
            for name in ("ours", "callback"):
                self.assertTrue(paths[name].startswith(copies))
                self.assertTrue(os.access(paths[name], os.X_OK))
                with open(paths[name]) as f:
                    self.assertEqual(f.read(), name)


if __name__ == "__main__":
    unittest.main()
