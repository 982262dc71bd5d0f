"""The watch checker accepts a correct watch record and rejects each kind of broken one: a gap,
a duplicate (also across a resumption), events out of order, a wrong prev_kv, an event nobody
wrote, an event older than a progress notification, a watcher that never caught up, missing
progress notifications. Pure Python, no server."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import watch_checker as wc  # noqa: E402
from linearizability import Op  # noqa: E402
from watch_checker import WatchEvent as E, Progress as P  # noqa: E402


def history():
    # /w/a: x@2, y@3, deleted @4; /w/b: z@5; /other: o@6 (outside the prefix)
    return [
        Op(1, "put", "/w/a", 0, 1, "x", {"rev": 2}),
        Op(1, "put", "/w/a", 2, 3, "y", {"rev": 3}),
        Op(2, "delete", "/w/a", 4, 5, None, {"deleted": 1, "header_rev": 4}),
        Op(2, "put", "/w/b", 6, 7, "z", {"rev": 5}),
        Op(2, "put", "/other", 8, 9, "o", {"rev": 6}),
    ]


def good_record():
    return [
        E("put", "/w/a", "x", 2, None),
        P(2),
        E("put", "/w/a", "y", 3, ("x", 2)),
        E("delete", "/w/a", None, 4, ("y", 3)),
        E("put", "/w/b", "z", 5, None, stream=1),
        P(6, stream=1),
    ]


class WatchCheckerTest(unittest.TestCase):
    def check(self, records, start=2, end=6):
        return wc.check(records, history(), "/w/", start, end)

    def assertRejected(self, records, fragment, **kwargs):
        with self.assertRaises(wc.WatchViolation) as ctx:
            self.check(records, **kwargs)
        self.assertIn(fragment, str(ctx.exception))

    def test_accepts_a_correct_record(self):
        self.assertIn("4 events", self.check(good_record()))

    def test_accepts_a_record_that_starts_later(self):
        self.check(good_record()[2:], start=3)

    def test_rejects_a_gap(self):
        rec = good_record()
        del rec[4]  # /w/b's only event
        self.assertRejected(rec, "gap")
        rec = good_record()
        del rec[2]  # a missed middle event also breaks the next event's prev_kv
        self.assertRejected(rec, "")

    def test_rejects_a_duplicate_after_resumption(self):
        rec = good_record()
        rec.insert(5, E("put", "/w/b", "z", 5, None, stream=2))
        self.assertRejected(rec, "duplicate")

    def test_rejects_events_out_of_order(self):
        rec = good_record()
        rec[2], rec[3] = rec[3], rec[2]
        self.assertRejected(rec, "")

    def test_rejects_a_wrong_prev_kv(self):
        rec = good_record()
        rec[2] = E("put", "/w/a", "y", 3, ("stale", 1))
        self.assertRejected(rec, "prev_kv")

    def test_rejects_a_missing_prev_kv_on_delete(self):
        rec = good_record()
        rec[3] = E("delete", "/w/a", None, 4, None)
        self.assertRejected(rec, "prev_kv")

    def test_rejects_an_event_nobody_wrote(self):
        rec = good_record()
        rec.insert(5, E("put", "/w/b", "ghost", 7, ("z", 5)))
        self.assertRejected(rec, "no client ever put")

    def test_rejects_an_event_at_the_wrong_revision(self):
        rec = good_record()
        rec[4] = E("put", "/w/b", "z", 6, None, stream=1)
        self.assertRejected(rec, "acknowledged at revision 5")

    def test_rejects_an_event_behind_a_progress_notification(self):
        rec = good_record()
        rec[1] = P(3)
        self.assertRejected(rec, "after a progress notification")

    def test_rejects_a_watcher_that_never_caught_up(self):
        rec = good_record()[:-1]
        self.assertRejected(rec, "reached revision 5 only", end=6)

    def test_rejects_missing_progress_notifications(self):
        rec = [r for r in good_record() if not isinstance(r, P)]
        with self.assertRaises(wc.WatchViolation) as ctx:
            wc.check(rec, history(), "/w/", 2, 5)
        self.assertIn("progress", str(ctx.exception))

    def test_rejects_an_event_of_a_failed_compare_and_swap(self):
        hist = history() + [Op(3, "cas", "/w/b", 10, 11, "swapped", {"succeeded": False,
                                                                    "header_rev": 6}, "nope")]
        rec = good_record()
        rec.insert(5, E("put", "/w/b", "swapped", 7, ("z", 5), stream=1))
        with self.assertRaises(wc.WatchViolation) as ctx:
            wc.check(rec, hist, "/w/", 2, 7)
        self.assertIn("compare-and-swap failed", str(ctx.exception))

    def test_rejects_an_event_outside_the_prefix(self):
        rec = good_record()
        rec.insert(5, E("put", "/other", "o", 6, None))
        self.assertRejected(rec, "outside the watched prefix")


if __name__ == "__main__":
    unittest.main(verbosity=2)
