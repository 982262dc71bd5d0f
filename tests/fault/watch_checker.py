"""Checks what one watcher on a key prefix received against etcd's watch guarantees.

The watcher (workload.Watcher) records, in arrival order, every event and every periodic
progress notification of its streams; when a stream is cut off (a member killed, partitioned or
stopped) it opens a new one on another member from its last revision + 1, so the record is one
logical stream. Checked here, given the client history (linearizability.Op) of the same run:
  - ordered: event revisions strictly increase (the fault tests write one key per revision);
  - no duplicates: no (key, mod_revision) twice, also across a resumption;
  - no gaps: every write of the history that is known to have committed (acknowledged, or seen
    by a read) on a key under the prefix, with a revision in [start_revision, end_revision],
    has its event; end_revision is the last revision the watcher is known to have reached;
  - every event is a write of the history: a PUT event carries the value of a put or of a
    compare-and-swap (not one that failed) of that key (at its acknowledged revision, if it was
    acknowledged), a DELETE event the revision of
    a delete of that key that deleted it (or of a delete whose outcome is unknown);
  - prev_kv (the watch asks for it): a PUT's prev_kv is the key's previous event in the stream
    (None after a DELETE), a DELETE's prev_kv is the previous value; for a key's first event,
    prev_kv names a put of the history with a lower revision;
  - progress: periodic progress notifications arrived, their revisions never decrease, and no
    event at or below a notification's revision arrives after it (a notification at R promises
    every event up to R was sent).
"""

import collections


class WatchEvent:
    __slots__ = ("kind", "key", "value", "mod_rev", "prev", "stream")

    def __init__(self, kind, key, value, mod_rev, prev, stream=0):
        self.kind = kind  # "put" | "delete"
        self.key = key
        self.value = value  # None for a delete
        self.mod_rev = mod_rev
        self.prev = prev  # (value, mod_rev) or None
        self.stream = stream  # which stream (resumption) delivered it

    def __repr__(self):
        return "<%s %r=%r @%d prev=%r stream %d>" % (self.kind, self.key, self.value,
                                                     self.mod_rev, self.prev, self.stream)


class Progress:
    __slots__ = ("rev", "stream")

    def __init__(self, rev, stream=0):
        self.rev = rev
        self.stream = stream

    def __repr__(self):
        return "<progress @%d stream %d>" % (self.rev, self.stream)


class WatchViolation(Exception):
    pass


def committed_writes(history, prefix):
    """{revision: op} of the writes under `prefix` known to have committed, and {(key, value):
    op} of every put and compare-and-swap (for matching PUT events)."""
    by_rev = {}
    puts = {}
    seen_mod = {}
    for op in history:
        if not op.key.startswith(prefix):
            continue
        if op.kind in ("put", "cas"):
            puts[(op.key, op.value)] = op
            if not op.unknown and op.advances():
                by_rev[op.revision()] = op
        elif op.kind == "delete" and not op.unknown and op.result["deleted"] > 0:
            by_rev[op.result["header_rev"]] = op
        elif op.kind == "get" and not op.unknown and op.result["value"] is not None:
            seen_mod[(op.key, op.result["value"])] = op.result["mod_rev"]
    for (key, value), rev in seen_mod.items():
        op = puts.get((key, value))
        if op is not None and op.unknown:
            by_rev[rev] = op  # an unknown put a read saw: it committed at that revision
    return by_rev, puts


def check(records, history, prefix, start_rev, end_rev, min_progress=1):
    """Raises WatchViolation with the reason; returns a summary string otherwise. `records` is
    the watcher's list of WatchEvent and Progress in arrival order."""
    by_rev, puts = committed_writes(history, prefix)
    deletes = collections.defaultdict(list)
    for op in history:
        if op.kind == "delete" and op.key.startswith(prefix):
            deletes[op.key].append(op)

    last_rev = start_rev - 1
    last_progress = None
    seen = set()
    last_event_of_key = {}
    events = 0
    progresses = 0
    for rec in records:
        if isinstance(rec, Progress):
            progresses += 1
            if last_progress is not None and rec.rev < last_progress:
                raise WatchViolation("progress went back from %d to %d (%r)"
                                     % (last_progress, rec.rev, rec))
            last_progress = rec.rev
            continue
        ev = rec
        events += 1
        if not ev.key.startswith(prefix):
            raise WatchViolation("event outside the watched prefix %r: %r" % (prefix, ev))
        if (ev.key, ev.mod_rev) in seen:
            raise WatchViolation("duplicate event %r" % (ev,))
        seen.add((ev.key, ev.mod_rev))
        if ev.mod_rev <= last_rev:
            raise WatchViolation("event %r out of order: after revision %d" % (ev, last_rev))
        if ev.mod_rev < start_rev:
            raise WatchViolation("event %r before the start revision %d" % (ev, start_rev))
        if last_progress is not None and ev.mod_rev <= last_progress:
            raise WatchViolation("event %r after a progress notification at %d"
                                 % (ev, last_progress))
        last_rev = ev.mod_rev
        _check_matches_history(ev, by_rev, puts, deletes)
        _check_prev_kv(ev, last_event_of_key.get(ev.key), puts)
        last_event_of_key[ev.key] = ev

    reached = max(last_rev, last_progress or 0)
    if reached < end_rev:
        raise WatchViolation("the watcher reached revision %d only, not %d" % (reached, end_rev))
    missing = sorted(r for r, op in by_rev.items()
                     if start_rev <= r <= end_rev and (op.key, r) not in seen)
    if missing:
        raise WatchViolation("gap: %d committed write(s) in [%d, %d] never seen by the watcher, "
                             "first: revision %d %r" % (len(missing), start_rev, end_rev,
                                                        missing[0], by_rev[missing[0]]))
    if progresses < min_progress:
        raise WatchViolation("%d progress notification(s), expected at least %d"
                             % (progresses, min_progress))
    return "%d events in [%d, %d], %d progress notifications" % (events, start_rev, end_rev,
                                                                  progresses)


def _check_matches_history(ev, by_rev, puts, deletes):
    if ev.kind == "put":
        op = puts.get((ev.key, ev.value))
        if op is None:
            raise WatchViolation("event %r: no client ever put this value" % (ev,))
        if not op.unknown and not op.advances():
            raise WatchViolation("event %r: its compare-and-swap failed" % (ev,))
        if not op.unknown and op.revision() != ev.mod_rev:
            raise WatchViolation("event %r: the put was acknowledged at revision %d"
                                 % (ev, op.revision()))
        return
    op = by_rev.get(ev.mod_rev)
    if op is not None:
        if op.kind != "delete" or op.key != ev.key:
            raise WatchViolation("event %r: revision %d was %r" % (ev, ev.mod_rev, op))
        return
    if not any(d.unknown for d in deletes.get(ev.key, [])):
        raise WatchViolation("event %r: no delete of this key at this revision" % (ev,))


def _check_prev_kv(ev, previous, puts):
    if previous is not None:
        expected = None if previous.kind == "delete" else (previous.value, previous.mod_rev)
        if ev.prev != expected:
            raise WatchViolation("event %r: prev_kv %r, but the key's previous event was %r"
                                 % (ev, ev.prev, previous))
        if ev.kind == "delete" and expected is None:
            raise WatchViolation("event %r: a delete of a key already deleted (%r)"
                                 % (ev, previous))
        return
    if ev.prev is None:
        if ev.kind == "delete":
            raise WatchViolation("event %r: a delete without prev_kv" % (ev,))
        return
    value, rev = ev.prev
    op = puts.get((ev.key, value))
    if op is None or rev >= ev.mod_rev or (not op.unknown and op.revision() != rev):
        raise WatchViolation("event %r: prev_kv %r is no earlier put of this key" % (ev, ev.prev))
