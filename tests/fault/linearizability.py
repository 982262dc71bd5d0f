"""Linearizability checker for histories of etcd KV clients (Porcupine-style).

A history is a list of `Op`s: one single-key operation of one client, with the time it was called
and the time its answer came back (time.monotonic), or no return time when its outcome is unknown
(a timeout, a lost connection): such an operation may or may not have taken effect, at any moment
after its call.

The model is etcd's KV store seen through one key: its state is (value or None, mod_revision or
None when the write that set it is unknown, floor) where floor is the highest store revision the
linearization has reached. Operations:
  put(key, value)  -> revision r       the write happened at r: needs r > floor
  get(key)         -> (value or None, mod_revision, header revision H): the key held that value,
                      set at mod_revision, and the read saw the store at H >= floor
  delete(key)      -> (deleted count, header revision H): deleted 1 needs the key to exist and
                      H > floor; deleted 0 needs it to be absent and H >= floor
  cas(key, expect, value) -> (succeeded, header revision H): a txn comparing the key's value
                      with `expect` (None: its create_revision with 0, i.e. absent) that puts
                      `value` if equal; succeeded needs the comparison to hold and H > floor
                      (the put is at H), failed needs it not to hold and H >= floor
Etcd revisions totally order writes, so along a linearization they must strictly increase (and
reads must not see a revision older than an earlier operation's).

`check(history)` runs, in this order:
  1. global revision checks across keys, O(n log n): no two writes share a revision; a read's
     mod_revision is not above its header revision; for two operations where one returned before
     the other was called, the later one's revision is >= the earlier's (> if it is a write);
  2. per key (etcd keys are independent apart from the shared revision counter, which step 1
     covers), Wing & Gong's search with Lowe's memoization of (linearized set, state), as in
     Porcupine's checkSingle: it looks for an order of the key's operations that respects real
     time and the model. The search is bounded by a step budget; running out of it is reported
     as its own outcome (BUDGET), never as a pass and never as a hang.
Before the search, unknown puts and compare-and-swaps are simplified when values are unique per
key (the fault tests write "c<client>-<seq>"): a write that nothing can have observed is dropped
(linearizing it last is always allowed and changes nothing): no read and no watch saw its value,
and no delete that removed something and no failed compare-and-swap returned after its call
(those observe that the key existed, or held another value, without seeing which); a write whose
value a read saw must have taken effect before that read returned.
"""

import collections

OK = "ok"
ILLEGAL = "illegal"
BUDGET = "budget exceeded"

DEFAULT_STEP_BUDGET = 2_000_000


class Op:
    """One client operation. kind: "put" | "get" | "delete" | "cas". ret None: outcome unknown.

    result, when ret is not None:
      put:    {"rev": r}
      get:    {"value": v or None, "mod_rev": r or 0, "header_rev": H}
      delete: {"deleted": n, "header_rev": H}
      cas:    {"succeeded": bool, "header_rev": H}
    """

    __slots__ = ("client", "kind", "key", "value", "call", "ret", "result", "id", "expect")

    def __init__(self, client, kind, key, call, ret=None, value=None, result=None,
                 expect=None):
        self.client = client
        self.kind = kind
        self.key = key
        self.value = value
        self.call = call
        self.ret = ret
        self.result = result
        self.id = None
        self.expect = expect  # cas: the value compared against (None: the key must not exist)

    @property
    def unknown(self):
        return self.ret is None

    @property
    def is_write(self):
        return self.kind in ("put", "delete", "cas")

    def revision(self):
        """The store revision this (known) operation pins: a put's, a read's or a delete's
        header revision."""
        if self.kind == "put":
            return self.result["rev"]
        return self.result["header_rev"]

    def advances(self):
        """True if this known operation created a new revision."""
        if self.kind == "put":
            return True
        if self.kind == "cas":
            return self.result["succeeded"]
        return self.kind == "delete" and self.result["deleted"] > 0

    def __repr__(self):
        end = "?" if self.ret is None else "%.6f" % self.ret
        if self.kind == "put":
            what = "put(%r, %r)" % (self.key, self.value)
        elif self.kind == "cas":
            what = "cas(%r, %r -> %r)" % (self.key, self.expect, self.value)
        else:
            what = "%s(%r)" % (self.kind, self.key)
        res = "unknown" if self.ret is None else self.result
        return "[client %s %s [%.6f, %s] -> %s]" % (self.client, what, self.call, end, res)


class Result:
    def __init__(self, outcome, reason="", ops=(), steps=0):
        self.outcome = outcome
        self.reason = reason
        self.ops = list(ops)  # the operations involved, for the report
        self.steps = steps

    @property
    def ok(self):
        return self.outcome == OK

    def explain(self, limit=40):
        lines = ["%s: %s" % (self.outcome, self.reason)]
        for op in self.ops[:limit]:
            lines.append("  %r" % (op,))
        if len(self.ops) > limit:
            lines.append("  ... %d more" % (len(self.ops) - limit))
        return "\n".join(lines)


# -- 1. global revision checks ----------------------------------------------------------------

def check_revisions(history):
    known = [op for op in history if not op.unknown]
    writes = {}
    for op in known:
        if op.kind == "get" and op.result["value"] is not None \
                and op.result["mod_rev"] > op.result["header_rev"]:
            return Result(ILLEGAL, "a read's mod_revision %d is above its header revision %d"
                          % (op.result["mod_rev"], op.result["header_rev"]), [op])
        if op.advances():
            rev = op.revision()
            if rev in writes:
                return Result(ILLEGAL, "two writes at revision %d" % rev, [writes[rev], op])
            writes[rev] = op
    # Real time: sweep by call time; `done` holds every op that returned before the current call.
    by_call = sorted(known, key=lambda o: o.call)
    by_ret = sorted(known, key=lambda o: o.ret)
    i = 0
    best = None  # the returned op with the highest revision
    for op in by_call:
        while i < len(by_ret) and by_ret[i].ret < op.call:
            if best is None or by_ret[i].revision() > best.revision():
                best = by_ret[i]
            i += 1
        if best is None:
            continue
        rev = op.revision()
        if op.advances() and rev <= best.revision():
            return Result(ILLEGAL, "a write at revision %d started after an operation at "
                          "revision %d had returned" % (rev, best.revision()), [best, op])
        if not op.advances() and rev < best.revision():
            return Result(ILLEGAL, "an operation saw revision %d after an operation at revision "
                          "%d had returned (it went back in time)" % (rev, best.revision()),
                          [best, op])
    return Result(OK)


# -- 2. per-key search ------------------------------------------------------------------------

INITIAL_STATE = (None, None, 0, None, None)
_NO_BOUND = float("inf")


def _step(state, op):
    """The model: returns the next state, or None if `op` cannot happen in `state`.

    state = (value, mod_revision, floor, lo, hi). value None: the key is absent. mod_revision
    None with a value: set by a write whose revision r is unknown; then lo < r <= hi, where lo is
    the floor when it took effect and hi the lowest header revision of the reads linearized
    since (they saw it, so it was at or below their revision). floor: the highest revision the
    linearization has reached."""
    value, mod_rev, floor, lo, hi = state
    if op.unknown:
        if op.kind == "put":
            return (op.value, None, floor, floor, _NO_BOUND)
        if op.kind == "cas":
            # Taking effect now: only if the comparison holds now (if it does not, "never"
            # is the same as linearizing it last).
            if value != op.expect:
                return state
            return (op.value, None, floor, floor, _NO_BOUND)
        if op.kind == "delete":
            return (None, None, floor, None, None)
        return state  # an unknown read tells nothing
    res = op.result
    if op.kind == "put":
        if res["rev"] <= floor:
            return None
        return (op.value, res["rev"], res["rev"], None, None)
    if op.kind == "get":
        h = res["header_rev"]
        if h < floor:
            return None
        if res["value"] is None:
            return (None, None, h, None, None) if value is None else None
        if value != res["value"]:
            return None
        if mod_rev is None:
            # set by an unknown write: now its revision is known, within its bounds
            if not lo < res["mod_rev"] <= min(hi, h):
                return None
        elif mod_rev != res["mod_rev"]:
            return None
        return (value, res["mod_rev"], h, None, None)
    if op.kind == "cas":
        h = res["header_rev"]
        if res["succeeded"]:
            if value != op.expect or h <= floor:
                return None
            return (op.value, h, h, None, None)
        if value == op.expect or h < floor:
            return None
        if mod_rev is None and value is not None:
            return (value, None, h, lo, min(hi, h))  # it saw the unknown write: r <= h
        return (value, mod_rev, h, None, None)
    if op.kind == "delete":
        h = res["header_rev"]
        if res["deleted"] > 0:
            if value is None or h <= floor:
                return None
            return (None, None, h, None, None)
        if value is not None or h < floor:
            return None
        return (None, None, h, None, None)
    raise ValueError("unknown operation kind %r" % op.kind)


class _Node:
    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op, is_call):
        self.op = op
        self.is_call = is_call
        self.match = None
        self.prev = None
        self.next = None


def _build_list(ops):
    inf = float("inf")
    events = []
    for op in ops:
        events.append((op.call, 0, op.id, True, op))
        events.append((inf if op.ret is None else op.ret, 1, op.id, False, op))
    events.sort(key=lambda e: e[:3])  # calls before returns at equal times: they overlap
    head = _Node(None, False)
    prev = head
    calls = {}
    for _, _, _, is_call, op in events:
        node = _Node(op, is_call)
        if is_call:
            calls[op.id] = node
        else:
            calls[op.id].match = node
        node.prev = prev
        prev.next = node
        prev = node
    return head


def _lift(node):
    node.prev.next = node.next
    if node.next is not None:
        node.next.prev = node.prev
    m = node.match
    m.prev.next = m.next
    if m.next is not None:
        m.next.prev = m.prev


def _unlift(node):
    m = node.match
    m.prev.next = m
    if m.next is not None:
        m.next.prev = m
    node.prev.next = node
    if node.next is not None:
        node.next.prev = node


def check_key(ops, initial=INITIAL_STATE, budget=DEFAULT_STEP_BUDGET):
    """Wing & Gong / Lowe over the operations of one key. Returns a Result."""
    for i, op in enumerate(ops):
        op.id = i
    head = _build_list(ops)
    state = initial
    linearized = 0
    cache = set()
    stack = []
    steps = 0
    best_depth = 0
    stuck_at = None
    node = head.next
    while head.next is not None:
        steps += 1
        if steps > budget:
            return Result(BUDGET, "more than %d search steps for key %r (%d operations)"
                          % (budget, ops[0].key if ops else None, len(ops)), [], steps)
        if node.is_call:
            new_state = _step(state, node.op)
            if new_state is not None:
                new_lin = linearized | (1 << node.op.id)
                if (new_lin, new_state) not in cache:
                    cache.add((new_lin, new_state))
                    stack.append((node, state))
                    state = new_state
                    linearized = new_lin
                    _lift(node)
                    node = head.next
                    continue
            node = node.next
        else:
            # The return of an operation that is not linearized yet: backtrack.
            if len(stack) >= best_depth:
                best_depth = len(stack)
                stuck_at = (node.op, state)
            if not stack:
                return Result(ILLEGAL, _stuck_reason(ops, stuck_at), _context(ops, stuck_at),
                              steps)
            node, state = stack.pop()
            linearized &= ~(1 << node.op.id)
            _unlift(node)
            node = node.next
    return Result(OK, steps=steps)


def _stuck_reason(ops, stuck_at):
    op, state = stuck_at
    value, mod_rev, floor = state[:3]
    return ("key %r: no linearization; the longest prefix found (state value=%r mod_revision=%s "
            "revision=%d) cannot be extended to %r" % (op.key, value, mod_rev, floor, op))


def _context(ops, stuck_at):
    """The operations around the one the search got stuck on, by call time."""
    op = stuck_at[0]
    ordered = sorted(ops, key=lambda o: o.call)
    i = ordered.index(op)
    return ordered[max(0, i - 12):i + 6]


# -- simplification of unknown puts -----------------------------------------------------------

def simplify_unknown_puts(ops, seen_values=None):
    """For one key with unique put values: drops unknown puts whose value nobody saw, and bounds
    the others by the first read that saw them (see the module comment). `seen_values` adds
    {value: mod_revision} seen by other observers (a watch). Returns the new list."""
    put_values = [op.value for op in ops if op.kind in ("put", "cas")]
    if len(put_values) != len(set(put_values)):
        return list(ops)  # values repeat: keep every op, the search handles them
    first_seen = {}  # value -> (ret of the first read that saw it, mod_rev)
    for op in ops:
        if op.kind == "get" and not op.unknown and op.result["value"] is not None:
            v = op.result["value"]
            if v not in first_seen or op.ret < first_seen[v][0]:
                first_seen[v] = (op.ret, op.result["mod_rev"])
    out = []
    for op in ops:
        if op.kind in ("put", "cas") and op.unknown:
            if op.value in first_seen:
                ret, _ = first_seen[op.value]
                # Known to have taken effect; keep the revision unknown for the model (it is
                # checked against every read that saw it) but bound its return.
                out.append(_UnknownEffectBefore(op, max(op.call, ret)))
                continue
            if seen_values is not None and op.value in seen_values:
                out.append(op)
                continue
            if any(_observes_without_value(d) and d.ret > op.call for d in ops):
                # A delete that removed something, or a failed compare-and-swap, may have seen
                # this write without seeing its value (that the key existed, that it no longer
                # held the compared value). Keep it: it may take effect anywhere after its call.
                out.append(op)
                continue
            continue  # never observed: linearize it last, i.e. leave it out
        out.append(op)
    return out


def _observes_without_value(op):
    if op.unknown:
        return False
    if op.kind == "delete":
        return op.result["deleted"] > 0
    return op.kind == "cas" and not op.result["succeeded"]


class _UnknownEffectBefore(Op):
    """An unknown put or compare-and-swap that a read saw: it took effect no later than `ret`
    (the first read that saw it), at a revision the model does not pin."""

    __slots__ = ()

    def __init__(self, op, ret):
        super().__init__(op.client, op.kind, op.key, op.call, ret, op.value, None, op.expect)

    @property
    def unknown(self):
        return True  # for the model: the revision is not known


# -- entry point ------------------------------------------------------------------------------

def check(history, budget=DEFAULT_STEP_BUDGET, seen_values_by_key=None):
    """Checks a whole history (any keys). Returns a Result: OK, ILLEGAL (with the reason and the
    operations involved) or BUDGET."""
    res = check_revisions(history)
    if not res.ok:
        return res
    by_key = collections.defaultdict(list)
    for op in history:
        if op.kind == "get" and op.unknown:
            continue
        by_key[op.key].append(op)
    total = 0
    for key in sorted(by_key):
        seen = (seen_values_by_key or {}).get(key)
        ops = simplify_unknown_puts(by_key[key], seen)
        res = check_key(ops, budget=budget - total)
        total += res.steps
        if not res.ok:
            res.steps = total
            return res
    return Result(OK, "%d operations on %d keys, %d search steps"
                  % (len(history), len(by_key), total), steps=total)


def summarize(history):
    c = collections.Counter((op.kind, "unknown" if op.unknown else "ok") for op in history)
    swapped = sum(1 for op in history if op.kind == "cas" and not op.unknown
                  and op.result["succeeded"])
    return ", ".join("%s %s: %d" % (k, s, n) for (k, s), n in sorted(c.items())) + \
        " (%d swaps succeeded)" % swapped


# -- saved histories ---------------------------------------------------------------------------

def save(history, path):
    """Writes a history as JSON (one object per operation), for `python3 linearizability.py
    PATH` to check again, e.g. with a changed checker."""
    import json
    with open(path, "w") as f:
        json.dump([{"client": op.client, "kind": op.kind, "key": op.key, "value": op.value,
                    "expect": op.expect, "call": op.call, "ret": op.ret, "result": op.result}
                   for op in history], f, indent=0)


def load(path):
    import json
    with open(path) as f:
        return [Op(d["client"], d["kind"], d["key"], d["call"], d["ret"], d["value"],
                   d["result"], d["expect"]) for d in json.load(f)]


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 2:
        sys.exit("usage: linearizability.py HISTORY.json (as saved by a failed fault test)")
    result = check(load(sys.argv[1]))
    print(result.explain())
    sys.exit(0 if result.ok else 1)
