#!/usr/bin/env python3
"""Unit tests of bench_measure.py's readings from /proc."""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_measure  # noqa: E402


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


if __name__ == "__main__":
    unittest.main()
