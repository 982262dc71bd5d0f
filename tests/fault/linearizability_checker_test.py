"""The linearizability checker accepts valid etcd histories and rejects broken ones.

Each broken history is a small, hand-made case of one way a server can be wrong: a stale read
after an acknowledged write, a lost acknowledged write, two writes at one revision, a read of a
value nobody wrote, reads going back in time (on one key and across keys), a write whose
revision is older than one already acknowledged, a delete of a key that is not there. Pure
Python, no server.
"""

import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linearizability as lin  # noqa: E402
from linearizability import Op  # noqa: E402


def put(client, key, value, call, ret, rev):
    return Op(client, "put", key, call, ret, value, {"rev": rev})


def put_unknown(client, key, value, call):
    return Op(client, "put", key, call, None, value)


def get(client, key, call, ret, value, mod_rev, header_rev):
    return Op(client, "get", key, call, ret, None,
              {"value": value, "mod_rev": mod_rev if value is not None else 0,
               "header_rev": header_rev})


def delete(client, key, call, ret, deleted, header_rev):
    return Op(client, "delete", key, call, ret, None, {"deleted": deleted,
                                                       "header_rev": header_rev})


def cas(client, key, expect, value, call, ret, succeeded, header_rev):
    return Op(client, "cas", key, call, ret, value, {"succeeded": succeeded,
                                                     "header_rev": header_rev}, expect)


def cas_unknown(client, key, expect, value, call):
    return Op(client, "cas", key, call, None, value, None, expect)


def delete_unknown(client, key, call):
    return Op(client, "delete", key, call)


class AcceptsValidHistories(unittest.TestCase):
    def assertLinearizable(self, history):
        res = lin.check(history)
        self.assertEqual(res.outcome, lin.OK, res.explain())

    def test_sequential(self):
        self.assertLinearizable([
            put(1, "a", "x", 0, 1, 2),
            get(1, "a", 2, 3, "x", 2, 2),
            put(1, "a", "y", 4, 5, 3),
            get(2, "a", 6, 7, "y", 3, 3),
            delete(1, "a", 8, 9, 1, 4),
            get(2, "a", 10, 11, None, 0, 4),
            delete(2, "a", 12, 13, 0, 4),
        ])

    def test_concurrent_read_may_see_old_or_new(self):
        for seen, mod in (("x", 2), ("y", 3)):
            self.assertLinearizable([
                put(1, "a", "x", 0, 1, 2),
                put(1, "a", "y", 2, 10, 3),
                get(2, "a", 3, 4, seen, mod, mod),
            ])

    def test_overlapping_writes_in_revision_order(self):
        # Client 2's write started first but got the lower revision: allowed, they overlap.
        self.assertLinearizable([
            put(2, "a", "p", 0, 10, 2),
            put(1, "a", "q", 1, 5, 3),
            get(3, "a", 11, 12, "q", 3, 3),
        ])

    def test_unknown_put_that_took_effect(self):
        self.assertLinearizable([
            put(1, "a", "x", 0, 1, 2),
            put_unknown(2, "a", "lost?", 2),
            get(3, "a", 50, 51, "lost?", 3, 3),
        ])

    def test_unknown_put_that_did_not_take_effect(self):
        self.assertLinearizable([
            put(1, "a", "x", 0, 1, 2),
            put_unknown(2, "a", "lost?", 2),
            get(3, "a", 50, 51, "x", 2, 2),
        ])

    def test_unknown_put_taking_effect_late(self):
        # An unknown op may take effect any time after its call, even after later reads.
        self.assertLinearizable([
            put(1, "a", "x", 0, 1, 2),
            put_unknown(2, "a", "late", 2),
            get(3, "a", 10, 11, "x", 2, 2),
            get(3, "a", 20, 21, "late", 3, 3),
        ])

    def test_unknown_put_observed_only_by_a_delete(self):
        # Found by the fault tests under ASan: an unknown put whose value nobody read, whose
        # existence a later delete (deleted 1) observed. Dropping it as "never observed" made
        # a linearizable history look illegal.
        self.assertLinearizable([
            put(1, "a", "x", 0, 1, 2),
            delete(2, "a", 2, 3, 1, 3),
            put_unknown(3, "a", "u", 4),
            delete(2, "a", 10, 11, 1, 5),
            get(1, "a", 12, 13, None, 0, 5),
        ])

    def test_compare_and_swap(self):
        self.assertLinearizable([
            cas(1, "a", None, "x", 0, 1, True, 2),       # created: it did not exist
            cas(2, "a", None, "y", 2, 3, False, 2),      # exists now: fails, no new revision
            cas(2, "a", "x", "y", 4, 5, True, 3),
            cas(1, "a", "x", "z", 6, 7, False, 3),       # "x" is gone
            get(1, "a", 8, 9, "y", 3, 3),
        ])

    def test_concurrent_compare_and_swaps_one_wins(self):
        self.assertLinearizable([
            put(0, "a", "x", 0, 1, 2),
            cas(1, "a", "x", "p", 2, 10, True, 4),
            cas(2, "a", "x", "q", 2, 10, False, 4),
            get(3, "a", 11, 12, "p", 4, 4),
        ])

    def test_unknown_compare_and_swap_seen(self):
        self.assertLinearizable([
            put(0, "a", "x", 0, 1, 2),
            cas_unknown(1, "a", "x", "p", 2),
            get(3, "a", 11, 12, "p", 3, 3),
        ])

    def test_unknown_put_seen_by_a_failed_swap_then_read(self):
        # Found by the fault tests (seed 954324532, slow_disk_leader): a failed swap at revision
        # 70 between an unknown put (at 70) and the read that saw it. The swap raised the
        # model's floor to 70 and the read's mod_revision 70 was taken for a write below it.
        self.assertLinearizable([
            put(1, "a", "x", 0, 1, 68),
            put_unknown(3, "a", "u", 2),
            cas(1, "a", "x", "y", 10, 11, False, 70),
            get(1, "a", 12, 13, "u", 70, 70),
        ])

    def test_unknown_delete(self):
        self.assertLinearizable([
            put(1, "a", "x", 0, 1, 2),
            delete_unknown(2, "a", 2),
            get(3, "a", 10, 11, None, 0, 3),
        ])

    def test_reads_on_other_keys_move_the_revision(self):
        self.assertLinearizable([
            put(1, "a", "x", 0, 1, 2),
            put(1, "b", "y", 2, 3, 3),
            get(2, "a", 4, 5, "x", 2, 3),
        ])

    def test_random_sequential_histories_from_a_model(self):
        # Histories made by running a real model with overlapping (but order-preserving) times.
        rng = random.Random(7)
        for _ in range(50):
            store, rev, t, history = {}, 1, 0.0, []
            for i in range(60):
                key = rng.choice("abc")
                call = t
                t += rng.random()
                kind = rng.choice(["put", "put", "get", "get", "delete"])
                if kind == "put":
                    rev += 1
                    store[key] = ("v%d" % i, rev)
                    op = put(i % 4, key, "v%d" % i, call, t + 0.001, rev)
                elif kind == "get":
                    v = store.get(key)
                    op = get(i % 4, key, call, t + 0.001, v[0] if v else None,
                             v[1] if v else 0, rev)
                else:
                    deleted = 1 if key in store else 0
                    if deleted:
                        rev += 1
                        del store[key]
                    op = delete(i % 4, key, call, t + 0.001, deleted, rev)
                history.append(op)
                t += 0.002
            self.assertLinearizable(history)


class RejectsBrokenHistories(unittest.TestCase):
    def assertIllegal(self, history, why):
        res = lin.check(history)
        self.assertEqual(res.outcome, lin.ILLEGAL, "%s was accepted" % why)
        self.assertTrue(res.reason)
        return res

    def test_stale_read_after_acknowledged_write(self):
        res = self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            put(1, "a", "y", 2, 3, 3),
            get(2, "a", 4, 5, "x", 2, 3),
        ], "a stale read")
        self.assertIn("'a'", res.reason)

    def test_stale_read_with_its_old_header_revision(self):
        # The same stale read, with a header revision that matches the stale value: caught by
        # the revision check (a read went back in time).
        res = self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            put(1, "a", "y", 2, 3, 3),
            get(2, "a", 4, 5, "x", 2, 2),
        ], "a stale read at an old revision")
        self.assertIn("back in time", res.reason)

    def test_lost_acknowledged_write(self):
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            get(2, "a", 4, 5, None, 0, 2),
        ], "a lost acknowledged write")

    def test_lost_acknowledged_write_after_other_writes(self):
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            put(1, "b", "z", 2, 3, 3),
            get(2, "a", 4, 5, None, 0, 3),
        ], "a lost write")

    def test_two_writes_at_one_revision(self):
        res = self.assertIllegal([
            put(1, "a", "x", 0, 10, 5),
            put(2, "b", "y", 0, 10, 5),
        ], "two writes at one revision")
        self.assertIn("two writes at revision 5", res.reason)

    def test_two_writes_to_one_key_at_one_revision_concurrently(self):
        self.assertIllegal([
            put(1, "a", "x", 0, 10, 5),
            put(2, "a", "y", 0, 10, 5),
        ], "two writes at one revision on one key")

    def test_read_of_a_value_never_written(self):
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            get(2, "a", 2, 3, "ghost", 2, 2),
        ], "a read of a value never written")

    def test_read_of_the_right_value_with_a_wrong_mod_revision(self):
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            put(1, "b", "x", 0, 1, 3),
            get(2, "a", 2, 3, "x", 3, 3),
        ], "a wrong mod_revision")

    def test_reads_going_backwards(self):
        # Two reads by different clients, both concurrent with the write, the second seeing
        # the older value after the first saw the newer one.
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            put(1, "a", "y", 2, 20, 3),
            get(2, "a", 3, 4, "y", 3, 3),
            get(3, "a", 5, 6, "x", 2, 3),
        ], "reads going backwards")

    def test_reads_going_backwards_across_keys(self):
        # Per key each read is fine; only the revisions show that the second read is older.
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            put(1, "b", "y", 0, 1, 3),
            get(2, "b", 2, 3, "y", 3, 3),
            get(2, "a", 4, 5, "x", 2, 2),
        ], "reads going backwards across keys")

    def test_write_revision_older_than_an_acknowledged_one(self):
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 5),
            put(2, "b", "y", 2, 3, 4),
        ], "revisions decreasing in real time")

    def test_delete_of_an_absent_key(self):
        self.assertIllegal([
            get(1, "a", 0, 1, None, 0, 1),
            delete(2, "a", 2, 3, 1, 2),
        ], "a delete of an absent key that deleted something")

    def test_read_after_delete_sees_the_value(self):
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            delete(1, "a", 2, 3, 1, 3),
            get(2, "a", 4, 5, "x", 2, 3),
        ], "a read of a deleted key")

    def test_unknown_put_seen_then_unseen(self):
        # An unknown write may take effect late, but once seen it cannot vanish.
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            put_unknown(2, "a", "u", 2),
            get(3, "a", 10, 11, "u", 3, 3),
            get(3, "a", 12, 13, "x", 2, 3),
        ], "an unknown write seen, then gone")

    def test_second_delete_without_any_write_between(self):
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            delete(2, "a", 2, 3, 1, 3),
            put_unknown(3, "a", "u", 20),  # called after the second delete returned
            delete(2, "a", 10, 11, 1, 5),
        ], "a delete of an absent key with only a later unknown put")

    def test_lost_update_two_swaps_from_one_value(self):
        # Both swaps from "x" succeed one after the other: the second must have failed.
        self.assertIllegal([
            put(0, "a", "x", 0, 1, 2),
            cas(1, "a", "x", "p", 2, 3, True, 3),
            cas(2, "a", "x", "q", 4, 5, True, 4),
        ], "a lost update")

    def test_swap_failed_although_the_value_matched(self):
        self.assertIllegal([
            put(0, "a", "x", 0, 1, 2),
            cas(1, "a", "x", "p", 2, 3, False, 2),
        ], "a failed swap whose comparison held")

    def test_unknown_swap_seen_although_its_comparison_never_held(self):
        self.assertIllegal([
            put(0, "a", "x", 0, 1, 2),
            cas_unknown(1, "a", "nope", "p", 2),
            get(3, "a", 11, 12, "p", 3, 3),
        ], "an unknown swap that took effect without its comparison holding")

    def test_unknown_put_below_a_swap_that_saw_it(self):
        # The failed swap at 69 saw the unknown put (else "x" would still be there and it would
        # have succeeded), so the put is at or below 69: a read at mod_revision 70 is wrong.
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 68),
            put_unknown(3, "a", "u", 2),
            cas(1, "a", "x", "y", 10, 11, False, 69),
            get(1, "a", 12, 13, "u", 70, 70),
        ], "an unknown put above the revision of a swap that saw it")

    def test_mod_revision_above_header_revision(self):
        self.assertIllegal([
            put(1, "a", "x", 0, 1, 2),
            get(2, "a", 2, 3, "x", 2, 1),
        ], "a read from the future")


class SavedHistories(unittest.TestCase):
    def test_save_and_load_keep_the_verdict(self):
        import tempfile
        broken = [put(1, "a", "x", 0, 1, 2), cas_unknown(2, "a", "x", "y", 1.5),
                  delete(3, "a", 3, 4, 1, 4), get(2, "a", 5, 6, None, 0, 4),
                  get(2, "a", 7, 8, "x", 2, 4)]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "h.json")
            lin.save(broken, path)
            loaded = lin.load(path)
        self.assertEqual([repr(op) for op in loaded], [repr(op) for op in broken])
        self.assertEqual(lin.check(loaded).outcome, lin.ILLEGAL)


class Bounds(unittest.TestCase):
    def test_budget_is_reported_not_a_pass_and_not_a_hang(self):
        # Many concurrent unknown deletes and reads of an absent key give the search many
        # orders to try; with a tiny budget it must stop and say so.
        history = [put(0, "a", "x", 0, 1, 2)]
        for c in range(12):
            history.append(delete_unknown(c + 1, "a", 2 + c * 0.01))
        history.append(get(99, "a", 100, 101, "x", 2, 2))
        start = time.monotonic()
        res = lin.check(history, budget=50)
        self.assertEqual(res.outcome, lin.BUDGET, res.explain())
        self.assertLess(time.monotonic() - start, 5)

    def test_a_realistic_history_fits_the_default_budget(self):
        # 8 clients, 4 keys, 2000 overlapping operations, 5% unknown: well within the budget.
        rng = random.Random(3)
        store, rev, history = {}, 1, []
        t = 0.0
        for i in range(2000):
            key = "k%d" % rng.randrange(4)
            call = t
            t += 0.001
            if rng.random() < 0.5:
                rev += 1
                store[key] = ("v%d" % i, rev)
                if rng.random() < 0.05:
                    history.append(put_unknown(i % 8, key, "v%d" % i, call))
                else:
                    history.append(put(i % 8, key, "v%d" % i, call, t + 0.004, rev))
            else:
                v = store.get(key)
                history.append(get(i % 8, key, call, t + 0.004, v[0] if v else None,
                                   v[1] if v else 0, rev))
        res = lin.check(history)
        self.assertEqual(res.outcome, lin.OK, res.explain())


if __name__ == "__main__":
    unittest.main(verbosity=2)
