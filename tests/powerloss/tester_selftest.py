#!/usr/bin/python3
"""Tests the power-loss tester itself: the recorder (LD_PRELOAD) and the reconstructor.

A small Python program (WORKLOAD below) runs under the recorder and writes, syncs, renames and
unlinks files in a fresh directory with os.* calls (each one libc call: open, write, pwrite,
writev after lseek, O_APPEND, dup, ftruncate, posix_fallocate, fsync, fdatasync, rename,
unlink, mkdir, directory fsync), from several threads for the last part. Then:
  - the lossless image at the last record equals the directory the program left, byte for
    byte (the recorder missed nothing and put every write at the right offset);
  - over many seeds, the power-cut images keep every synced byte, and each unsynced thing
    (a write, a file's data, a rename without a directory fsync) is sometimes kept and
    sometimes lost; a torn write shows up at least once;
  - a trace cut short in its last record (the recorded process killed mid-append) still reads.

Run: tester_selftest.py --preload libdolmen_powerloss_preload.so [unittest args]
"""

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "powerloss"))

import reconstruct  # noqa: E402

PRELOAD = None
SEEDS = 60
RUN_TIMEOUT_S = 60

A = b"A" * 4096
B = bytes(range(256)) * 32           # 8 KiB, unsynced, over two 4 KiB sectors
C = b"C" * 3000
D = b"D" * 5000
V1, V2 = b"v" * 100, b"w" * 4000

# The recorded program; argv[1] is the directory. Every step says what the model must do.
WORKLOAD = r'''
import os, sys, threading
d = sys.argv[1]
A, B, C, D, V1, V2 = %r
def dirsync(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
os.mkdir(d + "/sub")
# synced: A is durable (fsync, and the directory fsync makes the name durable), then B is
# written over [4096, 12288) and never synced.
fd = os.open(d + "/sub/synced", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, A)
os.fsync(fd)
dirsync(d + "/sub")
dirsync(d)
os.pwrite(fd, B, 4096)
os.close(fd)
# unsynced: its name is durable (directory fsync), its data is not.
fd = os.open(d + "/unsynced", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, C)
dirsync(d)
os.close(fd)
# vec: lseek + writev at an offset, dup'ed fd, fdatasync through the original.
fd = os.open(d + "/vec", os.O_CREAT | os.O_RDWR, 0o644)
os.ftruncate(fd, 100)
os.lseek(fd, 1000, os.SEEK_SET)
os.writev(fd, [V1, V2])
fd2 = os.dup(fd)
os.write(fd2, b"after")
os.close(fd2)
os.fdatasync(fd)
os.close(fd)
# log: O_APPEND writes, posix_fallocate with no size change, fsync.
fd = os.open(d + "/log", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
os.write(fd, b"first,")
os.write(fd, b"second")
os.posix_fallocate(fd, 0, 6)
os.fsync(fd)
os.close(fd)
dirsync(d)
# appends: two unsynced writes in one sector (a log's tail). The disk writes sectors whole, so
# the second never survives without the first under the "sectors" model.
fd = os.open(d + "/appends", os.O_CREAT | os.O_WRONLY, 0o644)
os.fsync(fd)
os.pwrite(fd, b"one", 0)
os.pwrite(fd, b"two", 3)
os.close(fd)
dirsync(d)
# tmp -> renamed: data synced before the rename, the rename never made durable by a directory
# fsync: after a cut either name may be there, with all of D.
fd = os.open(d + "/tmp", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, D)
os.fsync(fd)
os.close(fd)
dirsync(d)
os.rename(d + "/tmp", d + "/renamed")
# Threads writing their own files at once: the lossless image must still match.
def worker(n):
    fd = os.open(d + "/t%%d" %% n, os.O_CREAT | os.O_WRONLY, 0o644)
    for i in range(200):
        os.pwrite(fd, b"%%d-%%d;" %% (n, i) * 7, i * 64)
    os.close(fd)
threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
''' % ((A, B, C, D, V1, V2),)


def run_workload(work_dir):
    """Runs WORKLOAD under the recorder on work_dir/data; returns (data dir, trace path)."""
    data = os.path.join(work_dir, "data")
    os.makedirs(data)
    trace = os.path.join(work_dir, "trace")
    env = dict(os.environ, LD_PRELOAD=PRELOAD, DOLMEN_POWERLOSS_DIR=os.path.realpath(data),
               DOLMEN_POWERLOSS_TRACE=trace)
    program = os.path.join(work_dir, "workload.py")
    with open(program, "w") as f:
        f.write(WORKLOAD)
    proc = subprocess.run([sys.executable, program, os.path.realpath(data)], env=env,
                          capture_output=True, timeout=RUN_TIMEOUT_S)
    if proc.returncode != 0:
        raise AssertionError("workload failed: %s" % proc.stderr.decode(errors="replace"))
    return data, trace


def read(path):
    with open(path, "rb") as f:
        return f.read()


class TesterSelfTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.work_dir = tempfile.mkdtemp(prefix="dolmen-powerloss-selftest-")
        cls.data, cls.trace = run_workload(cls.work_dir)
        cls.records = reconstruct.read_trace(cls.trace)
        cls.last = cls.records[-1].seq

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work_dir, ignore_errors=True)

    def image(self, seed, cut=None, lossless=False, model="sectors"):
        out = os.path.join(self.work_dir, "image-%d-%s-%s" % (seed, lossless, model))
        shutil.rmtree(out, ignore_errors=True)
        reconstruct.reconstruct(self.records, cut or self.last, seed, out, lossless=lossless,
                                model=model)
        return out

    def test_every_kind_of_call_is_recorded(self):
        kinds = {reconstruct.OP_NAMES[r.op] for r in self.records}
        self.assertEqual(kinds, {"mkdir", "create", "write", "truncate", "fallocate", "sync",
                                 "rename"})
        dir_syncs = [r for r in self.records if r.op == reconstruct.SYNC
                     and r.flags & reconstruct.FLAG_DIR]
        self.assertEqual({r.path for r in dir_syncs}, {".", "sub"})

    def test_lossless_image_equals_the_directory(self):
        image = self.image(1, lossless=True)
        compare = filecmp.dircmp(self.data, image)
        self.assertEqual((compare.left_only, compare.right_only), ([], []))
        for root, _, files in os.walk(self.data):
            for name in files:
                real = os.path.join(root, name)
                copy = os.path.join(image, os.path.relpath(real, self.data))
                self.assertEqual(read(real), read(copy), "content of %s" % name)
        self.assertEqual(read(os.path.join(image, "vec")),
                         bytes(100) + bytes(900) + V1 + V2 + b"after")
        self.assertEqual(read(os.path.join(image, "log")), b"first,second")

    def test_power_cuts_keep_synced_data_and_sometimes_lose_the_rest(self):
        for model in ("sectors", "writes"):
            with self.subTest(model=model):
                self.check_power_cuts(model)

    def check_power_cuts(self, model):
        seen = {"b_whole": 0, "b_lost": 0, "b_torn": 0, "c_whole": 0, "c_short": 0,
                "renamed": 0, "not_renamed": 0}
        for seed in range(1, SEEDS + 1):
            image = self.image(seed, model=model)
            synced = read(os.path.join(image, "sub/synced"))
            self.assertEqual(synced[:4096], A, "seed %d: synced data lost" % seed)
            tail = synced[4096:]
            if tail == B:
                seen["b_whole"] += 1
            elif tail.strip(b"\0") == b"":
                seen["b_lost"] += 1
            else:
                seen["b_torn"] += 1
                for i, byte in enumerate(tail):  # torn: each byte is B's or never written
                    self.assertIn(byte, (B[i], 0), "seed %d: byte %d of B" % (seed, i))
            unsynced = read(os.path.join(image, "unsynced"))  # the name was dir-synced
            seen["c_whole" if unsynced == C else "c_short"] += 1
            self.assertEqual(read(os.path.join(image, "vec")),
                             bytes(1000) + V1 + V2 + b"after", "seed %d: vec" % seed)
            self.assertEqual(read(os.path.join(image, "log")), b"first,second")
            names = set(os.listdir(image))
            self.assertEqual(len(names & {"tmp", "renamed"}), 1, "seed %d: %s" % (seed, names))
            name = "renamed" if "renamed" in names else "tmp"
            seen["renamed" if name == "renamed" else "not_renamed"] += 1
            self.assertEqual(read(os.path.join(image, name)), D, "seed %d: D" % seed)
        for outcome, count in seen.items():
            self.assertGreater(count, 0, "%s model: never seen across %d seeds: %s (%s)"
                               % (model, SEEDS, outcome, seen))

    def test_a_sector_holds_one_moment_under_the_sectors_model(self):
        seen = {"sectors": set(), "writes": set()}
        for seed in range(1, SEEDS + 1):
            for model in seen:
                seen[model].add(read(os.path.join(self.image(seed, model=model), "appends")))
        allowed = {b"", b"one", b"onetwo", b"one\0\0\0", b"\0\0\0", b"\0" * 6}
        self.assertLessEqual(seen["sectors"], allowed)
        self.assertIn(b"onetwo", seen["sectors"])
        self.assertIn(b"\0\0\0two", seen["writes"])  # the per-write model allows the hole

    def test_same_seed_same_image(self):
        first, second = self.image(7), os.path.join(self.work_dir, "again")
        reconstruct.reconstruct(self.records, self.last, 7, second)
        for name in os.listdir(first):
            if os.path.isfile(os.path.join(first, name)):
                self.assertEqual(read(os.path.join(first, name)),
                                 read(os.path.join(second, name)), name)

    def test_early_cut_has_only_what_came_before(self):
        create_vec = next(r.seq for r in self.records if r.path == "vec")
        image = self.image(3, cut=create_vec - 1, lossless=True)
        self.assertNotIn("vec", os.listdir(image))
        self.assertEqual(read(os.path.join(image, "unsynced")), C)

    def test_a_trace_cut_in_its_last_record_still_reads(self):
        cut_short = os.path.join(self.work_dir, "trace-cut")
        blob = read(self.trace)
        with open(cut_short, "wb") as f:
            f.write(blob[:-3])
        records = reconstruct.read_trace(cut_short)
        self.assertEqual(len(records), len(self.records) - 1)
        with open(cut_short, "wb") as f:
            f.write(b"not a trace")
        with self.assertRaises(reconstruct.TraceError):
            reconstruct.read_trace(cut_short)


def main():
    global PRELOAD
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--preload", required=True)
    args, rest = parser.parse_known_args()
    if not os.path.isfile(args.preload):
        parser.error("--preload %s does not exist" % args.preload)
    PRELOAD = os.path.abspath(args.preload)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
