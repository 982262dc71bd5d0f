#!/usr/bin/python3
"""Rebuilds a data directory as the disk could be after a power cut (README.md in this folder).

Input: a trace written by the recorder (libdolmen_powerloss_preload.so; format in
docs/formats/powerloss-trace.md), a cut point (a sequence number: the power goes at the moment
right after that record) and a seed. Output: a directory holding one disk state that the model
below allows. Same trace, cut and seed: same directory, byte for byte.

The model (ext4 with data=ordered, conservative where ext4 is vague; README.md says more):
  Data. Per file, a write, truncate or fallocate recorded before an fsync/fdatasync of that file
  was called is durable (fdatasync counts: it writes the data and the size needed to read it).
  A write through an O_SYNC/O_DSYNC fd (or with RWF_[D]SYNC) is durable when it returns.
  sync_file_range and msync make nothing durable. What else was written before the cut:
  --model sectors (default): each sector (512 B or 4 KiB, one size per image) written since
  the file's last sync holds the page cache's content of one moment since then (the synced
  content or that after one of the writes touching it, chosen per sector), and the size is that
  after a random prefix of the unsynced size changes. --model writes: every unsynced write on
  its own is kept whole, dropped, or torn (a prefix or a random subset of its sectors); a
  dropped or torn write that extended the file may leave the new size, zero-filled; an unsynced
  truncate or fallocate is kept or dropped.
  Names. Creations, renames, unlinks and mkdirs are journalled in order, so what survives is a
  prefix of them (jbd2 commits transactions in order). The prefix holds at least every such
  operation recorded before an fsync of its parent directory was called, and, for a file that
  was fsynced/fdatasynced, the operations that created or renamed it (ext4 commits the
  transaction holding the inode's own changes; `--names posix` turns that off and trusts only
  directory fsyncs). Beyond that minimum, the prefix length is chosen at random.
  The starting state is an empty directory (the tester records from an empty data dir).

Run:
  reconstruct.py TRACE --cut N --seed S --out DIR   build one image
  reconstruct.py TRACE --dump                       list the records
  reconstruct.py TRACE --summary                    counts and the last sequence number
"""

import argparse
import collections
import os
import random
import struct
import sys

MAGIC = b"DPLTRACE"
VERSION = 1
HEADER = struct.Struct("<8sI")
# u32 body length, then: seq, timestamp (ns, CLOCK_MONOTONIC), op, flags, path length,
# path2 length, reserved, aux, ino, a, b; then path, path2 and the data.
LENGTH = struct.Struct("<I")
FIXED = struct.Struct("<QQBBHHHIQQQ")

CREATE, WRITE, TRUNCATE, FALLOCATE, SYNC, RENAME, UNLINK, RMDIR, MKDIR, MSYNC = range(1, 11)
OP_NAMES = {CREATE: "create", WRITE: "write", TRUNCATE: "truncate", FALLOCATE: "fallocate",
            SYNC: "sync", RENAME: "rename", UNLINK: "unlink", RMDIR: "rmdir", MKDIR: "mkdir",
            MSYNC: "msync"}
FLAG_DIR, FLAG_SYNC_WRITE = 1, 2
FSYNC, FDATASYNC, SYNC_FILE_RANGE = 1, 2, 3
FALLOC_FL_KEEP_SIZE = 1

Record = collections.namedtuple(
    "Record", "seq ts_ns op flags aux ino a b path path2 data")


class TraceError(Exception):
    pass


def read_trace(path):
    """All complete records of the trace, in order. A last record cut short (the recorded
    process was killed while appending it) is dropped; anything else malformed raises."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < HEADER.size:
        raise TraceError("%s: too short for a trace header" % path)
    magic, version = HEADER.unpack_from(blob, 0)
    if magic != MAGIC or version != VERSION:
        raise TraceError("%s: not a version %d power-loss trace" % (path, VERSION))
    view = memoryview(blob)
    records, pos = [], HEADER.size
    while pos + LENGTH.size <= len(blob):
        (body,) = LENGTH.unpack_from(blob, pos)
        if pos + LENGTH.size + body > len(blob):
            break  # the torn last append
        if body < FIXED.size:
            raise TraceError("%s: record at byte %d shorter than its header" % (path, pos))
        start = pos + LENGTH.size
        seq, ts, op, flags, plen, p2len, _, aux, ino, a, b = FIXED.unpack_from(blob, start)
        p = start + FIXED.size
        if p + plen + p2len > start + body or op not in OP_NAMES:
            raise TraceError("%s: malformed record at byte %d" % (path, pos))
        name = bytes(view[p:p + plen]).decode("utf-8", "surrogateescape")
        name2 = bytes(view[p + plen:p + plen + p2len]).decode("utf-8", "surrogateescape")
        data = view[p + plen + p2len:start + body]
        if records and seq <= records[-1].seq:
            raise TraceError("%s: sequence numbers go back at byte %d" % (path, pos))
        records.append(Record(seq, ts, op, flags, aux, ino, a, b, name, name2, data))
        pos = start + body
    return records


def parent(path):
    return path.rsplit("/", 1)[0] if "/" in path else "."


class File:
    """One inode's history: its data operations in order, and how far they are synced."""

    def __init__(self, fid):
        self.fid = fid
        self.ops = []            # WRITE / TRUNCATE / FALLOCATE records
        self.synced_before = 0   # records with seq < this are durable


class Replay:
    """Walks the records up to the cut and keeps what the model needs: the files' operations,
    the ordered name operations, and the minimum prefix of those that must survive."""

    def __init__(self, records, cut, names_model="ext4"):
        self.files = {}
        self.name_ops = []        # (seq, kind, path, path2, fid)
        self.min_names = 0        # this many name operations survive for sure
        self.warnings = []
        live = {}                 # path -> fid, as the page cache saw it
        by_ino = {}               # inode number -> fid (numbers are reused after unlink)
        name_ops_of = {}          # fid -> [(index+1, seq)] of the name ops that created/moved it
        for r in records:
            if r.seq > cut:
                break
            if r.op == CREATE:
                fid = live.get(r.path)
                if fid is None:
                    fid = len(self.files)
                    self.files[fid] = File(fid)
                    live[r.path] = fid
                    self.name_ops.append((r.seq, "create", r.path, "", fid))
                    name_ops_of.setdefault(fid, []).append((len(self.name_ops), r.seq))
                by_ino[r.ino] = fid
            elif r.op == MKDIR:
                self.name_ops.append((r.seq, "mkdir", r.path, "", None))
            elif r.op == RMDIR:
                self.name_ops.append((r.seq, "rmdir", r.path, "", None))
            elif r.op == UNLINK:
                live.pop(r.path, None)
                self.name_ops.append((r.seq, "unlink", r.path, "", None))
            elif r.op == RENAME:
                if r.path.startswith("/"):
                    self.warnings.append("seq %d: %s moved in from outside; ignored"
                                         % (r.seq, r.path2))
                    continue
                fid = live.pop(r.path, None)
                if r.path2.startswith("/"):
                    self.name_ops.append((r.seq, "unlink", r.path, "", None))
                    continue
                live[r.path2] = fid
                self.name_ops.append((r.seq, "rename", r.path, r.path2, fid))
                if fid is not None:
                    name_ops_of.setdefault(fid, []).append((len(self.name_ops), r.seq))
            elif r.op in (WRITE, TRUNCATE, FALLOCATE):
                fid = by_ino.get(r.ino)
                if fid is None:
                    self.warnings.append("seq %d: %s changed but never created while recorded; "
                                         "ignored" % (r.seq, r.path))
                    continue
                self.files[fid].ops.append(r)
            elif r.op == SYNC and r.aux in (FSYNC, FDATASYNC):
                if r.flags & FLAG_DIR:
                    self._dir_synced(r.path, r.a)
                else:
                    fid = by_ino.get(r.ino)
                    if fid is None:
                        continue
                    f = self.files[fid]
                    f.synced_before = max(f.synced_before, r.a)
                    if names_model == "ext4":
                        # The inode's own creation/rename, recorded before the sync was called.
                        for count, seq in reversed(name_ops_of.get(fid, ())):
                            if seq < r.a:
                                self.min_names = max(self.min_names, count)
                                break
            # sync_file_range and msync: nothing becomes durable.

    def _dir_synced(self, directory, covers):
        for i in range(len(self.name_ops) - 1, self.min_names - 1, -1):
            seq, kind, path, path2, _ = self.name_ops[i]
            if seq >= covers:
                continue
            if parent(path) == directory or (kind == "rename" and parent(path2) == directory):
                self.min_names = max(self.min_names, i + 1)
                return


class Image:
    """Builds one image from a Replay with one random generator."""

    def __init__(self, replay, rng, lossless=False, model="sectors"):
        self.replay = replay
        self.rng = rng
        self.model = model
        self.lossless = lossless  # the control: the disk as a process crash leaves it
        self.sector = rng.choice((512, 4096))
        self.stats = collections.Counter()

    def names(self):
        """The surviving prefix of name operations -> ({path: fid}, {dirs})."""
        ops = self.replay.name_ops
        low, high = self.replay.min_names, len(ops)
        roll = self.rng.random()
        if roll < 0.3 or self.lossless:
            count = high
        else:
            count = low if roll < 0.5 else self.rng.randint(low, high)
        self.stats["name_ops_kept"] = count
        self.stats["name_ops_lost"] = high - count
        paths, dirs = {}, set()
        for _, kind, path, path2, fid in ops[:count]:
            if kind == "create":
                paths[path] = fid
            elif kind == "mkdir":
                dirs.add(path)
            elif kind == "rmdir":
                dirs.discard(path)
            elif kind == "unlink":
                paths.pop(path, None)
            elif kind == "rename":
                moved = paths.pop(path, None)
                if moved is not None:
                    paths[path2] = moved
                elif path in dirs:  # a directory: move what is below it too
                    dirs.discard(path)
                    dirs.add(path2)
                    for p in [p for p in paths if p.startswith(path + "/")]:
                        paths[path2 + p[len(path):]] = paths.pop(p)
        return paths, dirs

    def content(self, f):
        return self._by_sectors(f) if self.model == "sectors" else self._by_writes(f)

    def _by_sectors(self, f):
        """The "sectors" model: each sector holds what the page cache held for it at one moment
        since the file's last sync (the synced content, or that after one of the unsynced
        writes touching it, chosen per sector), and the file's size is that after a prefix of
        its unsynced size changes (metadata is journalled in order). A multi-sector write can
        thus be torn, and sectors (pages) reach the disk in any order, but no sector ever holds
        a mix of two moments."""
        data = bytearray()
        pending = []  # the unsynced operations, in order
        for r in f.ops:
            durable = r.seq < f.synced_before or self.lossless
            if durable and not pending:
                self._apply(data, r)
            else:
                pending.append((r, durable or (r.op == WRITE and r.flags & FLAG_SYNC_WRITE)))
        if not pending:
            return data
        sector = self.sector
        synced_size = len(data)
        touched, at_least = {}, {}
        size, size_changes, must_keep = len(data), [], 0
        for i, (r, durable) in enumerate(pending):
            if r.op == WRITE and len(r.data):
                for s in range(r.a // sector, (r.a + len(r.data) - 1) // sector + 1):
                    touched.setdefault(s, []).append(i + 1)
                    if durable:
                        at_least[s] = i + 1
                new_size = max(size, r.a + len(r.data))
            elif r.op == TRUNCATE:
                new_size = r.a
            elif r.op == FALLOCATE and not r.aux & FALLOC_FL_KEEP_SIZE:
                new_size = max(size, r.a + r.b)
            else:
                new_size = size
            if new_size != size:
                size_changes.append((i, new_size))
                size = new_size
                if durable:
                    must_keep = len(size_changes)
        version = {}
        for s, versions in touched.items():
            choices = [v for v in [0] + versions if v >= at_least.get(s, 0)]
            version[s] = self.rng.choice(choices)
            self.stats["sectors_new" if version[s] == versions[-1] else
                       "sectors_old" if version[s] == 0 else "sectors_between"] += 1
        kept_sizes = self.rng.randint(must_keep, len(size_changes))
        self.stats["size_changes_lost"] += len(size_changes) - kept_sizes
        last_kept_op = size_changes[kept_sizes - 1][0] if kept_sizes else -1
        for i, (r, _) in enumerate(pending):
            if r.op == WRITE:
                end = r.a + len(r.data)
                for s in range(r.a // sector, (end - 1) // sector + 1 if len(r.data) else 0):
                    if i < version[s]:
                        lo, hi = max(r.a, s * sector), min(end, (s + 1) * sector)
                        self._put(data, lo, r.data[lo - r.a:hi - r.a])
            elif r.op == TRUNCATE and i <= last_kept_op and r.a < len(data):
                data[r.a:] = bytes(len(data) - r.a)  # what a shrink dropped reads as zeros
        self._resize(data, size_changes[kept_sizes - 1][1] if kept_sizes else synced_size)
        return data

    def _apply(self, data, r):
        if r.op == WRITE:
            self._put(data, r.a, r.data)
        elif r.op == TRUNCATE:
            self._resize(data, r.a)
        elif r.op == FALLOCATE and not r.aux & FALLOC_FL_KEEP_SIZE and r.a + r.b > len(data):
            self._resize(data, r.a + r.b)

    def _by_writes(self, f):
        """The "writes" model: each unsynced write on its own kept, dropped or torn."""
        data = bytearray()
        for r in f.ops:
            durable = (r.seq < f.synced_before or (r.op == WRITE and r.flags & FLAG_SYNC_WRITE)
                       or self.lossless)
            if r.op == WRITE:
                self._write(data, r, durable)
            elif r.op == TRUNCATE:
                if durable or self.rng.random() < 0.5:
                    self._resize(data, r.a)
            elif r.op == FALLOCATE:
                if (durable or self.rng.random() < 0.5) and not r.aux & FALLOC_FL_KEEP_SIZE:
                    if r.a + r.b > len(data):
                        self._resize(data, r.a + r.b)
        return data

    @staticmethod
    def _resize(data, size):
        if size < len(data):
            del data[size:]
        else:
            data.extend(bytes(size - len(data)))

    def _write(self, data, r, durable):
        start, end = r.a, r.a + len(r.data)
        if durable:
            self._put(data, start, r.data)
            return
        roll = self.rng.random()
        if roll < 0.4:
            self.stats["writes_kept"] += 1
            self._put(data, start, r.data)
            return
        pieces = []  # (from, to) byte ranges of the write, one per sector it touches
        s = start
        while s < end:
            e = min(end, (s // self.sector + 1) * self.sector)
            pieces.append((s, e))
            s = e
        if roll < 0.7:
            self.stats["writes_dropped"] += 1
            kept = []
        elif self.rng.random() < 0.5:
            self.stats["writes_torn_prefix"] += 1
            kept = pieces[:self.rng.randrange(len(pieces))]
        else:
            self.stats["writes_torn_sectors"] += 1
            kept = [p for p in pieces if self.rng.random() < 0.5]
        for s, e in kept:
            self._put(data, s, r.data[s - start:e - start])
        if end > len(data) and self.rng.random() < 0.3:
            self.stats["sizes_ahead_of_data"] += 1
            self._resize(data, end)  # the new size reached the disk, the data did not

    @staticmethod
    def _put(data, offset, chunk):
        if offset > len(data):
            data.extend(bytes(offset - len(data)))
        data[offset:offset + len(chunk)] = chunk


def reconstruct(records, cut, seed, out_dir, names_model="ext4", lossless=False,
                model="sectors"):
    """Writes the image for (cut, seed) into out_dir (created; must not exist). Returns a dict
    of what the model chose (counts), for reports. lossless=True keeps every operation up to
    the cut, as a process crash (kill -9) would: the control experiment."""
    replay = Replay(records, cut, names_model)
    rng = random.Random("%d:%d" % (seed, cut))
    image = Image(replay, rng, lossless, model)
    paths, dirs = image.names()
    os.makedirs(out_dir)
    for d in sorted(dirs, key=lambda p: p.count("/")):
        os.makedirs(os.path.join(out_dir, d), exist_ok=True)
    for path, fid in sorted(paths.items()):
        target = os.path.join(out_dir, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)  # a parent whose mkdir was lost
        with open(target, "wb") as f:
            f.write(image.content(replay.files[fid]) if fid is not None else b"")
    stats = dict(image.stats)
    stats["model"] = model
    stats["sector"] = image.sector
    stats["files"] = len(paths)
    if replay.warnings:
        stats["warnings"] = replay.warnings[:5]
    return stats


def dump(records, out):
    for r in records:
        extra = ""
        if r.op == WRITE:
            extra = " off=%d len=%d%s" % (r.a, len(r.data),
                                          " sync" if r.flags & FLAG_SYNC_WRITE else "")
        elif r.op in (TRUNCATE,):
            extra = " size=%d" % r.a
        elif r.op == FALLOCATE:
            extra = " off=%d len=%d mode=%d" % (r.a, r.b, r.aux)
        elif r.op == SYNC:
            extra = " kind=%d covers<%d%s" % (r.aux, r.a, " dir" if r.flags & FLAG_DIR else "")
        elif r.op == RENAME:
            extra = " -> %s" % r.path2
        out.write("%d %.6f %s %s ino=%d%s\n" % (r.seq, r.ts_ns / 1e9, OP_NAMES[r.op], r.path,
                                                r.ino, extra))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace")
    parser.add_argument("--cut", type=int, help="sequence number of the last record before "
                        "the power goes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="directory to create with the image")
    parser.add_argument("--names", choices=("ext4", "posix"), default="ext4",
                        help="what makes a creation or rename durable (see the model)")
    parser.add_argument("--lossless", action="store_true",
                        help="keep every operation up to the cut (a process crash, no power cut)")
    parser.add_argument("--model", choices=("sectors", "writes"), default="sectors",
                        help="how unsynced writes reach the disk (see the model)")
    parser.add_argument("--dump", action="store_true")
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args(argv)
    try:
        records = read_trace(args.trace)
    except (OSError, TraceError) as e:
        sys.exit("reconstruct: %s" % e)
    if args.dump:
        dump(records, sys.stdout)
        return 0
    if args.summary:
        counts = collections.Counter(OP_NAMES[r.op] for r in records)
        print("records %d, last seq %d, %s" % (len(records), records[-1].seq if records else 0,
                                               dict(sorted(counts.items()))))
        return 0
    if args.cut is None or args.out is None:
        parser.error("--cut and --out are needed to build an image")
    if os.path.exists(args.out):
        parser.error("--out %s exists; pass a new directory" % args.out)
    print(reconstruct(records, args.cut, args.seed, args.out, args.names, args.lossless,
                      args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
