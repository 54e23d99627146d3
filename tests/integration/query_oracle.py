"""A plain Python evaluator of the _find selector language (SPEC §4), written
from the SPEC, to check the CRUD store's answers against: matching, the sort
order across JSON types, and the state of documents at a log id rebuilt from
the event store's log.

Only the Python standard library is used.
"""
import copy
import functools

from crud_fixtures import merge_patch

MISSING = object()
OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")


def get(doc, path):
    v = doc
    for seg in path.split("."):
        if not isinstance(v, dict) or seg not in v:
            return MISSING
        v = v[seg]
    return v


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def jeq(a, b):
    """JSON equality: numbers by value, objects regardless of member order."""
    if is_num(a) and is_num(b):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(jeq(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(jeq(x, y) for x, y in zip(a, b))
    return type(a) == type(b) and a == b


def rank(v):
    if v is MISSING:
        return 0
    if v is None:
        return 1
    if v is False:
        return 2
    if v is True:
        return 3
    if is_num(v):
        return 4
    if isinstance(v, str):
        return 5
    if isinstance(v, list):
        return 6
    return 7


def cmp(a, b):
    """missing < null < false < true < numbers < strings < arrays < objects."""
    ra, rb = rank(a), rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra in (4, 5):
        return (a > b) - (a < b)
    if ra == 6:
        for x, y in zip(a, b):
            c = cmp(x, y)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if ra == 7:
        ka, kb = sorted(a), sorted(b)
        for x, y in zip(ka, kb):
            if x != y:
                return -1 if x < y else 1
            c = cmp(a[x], b[y])
            if c:
                return c
        return (len(ka) > len(kb)) - (len(ka) < len(kb))
    return 0


def same_type(v, arg):
    if is_num(arg):
        return is_num(v)
    if isinstance(arg, bool):
        return isinstance(v, bool)
    if arg is None:
        return v is None
    return isinstance(v, str) and isinstance(arg, str)


def cond(v, c):
    if isinstance(c, dict) and any(k.startswith("$") for k in c):
        return all(op(v, k, a) for k, a in c.items())
    return v is not MISSING and jeq(v, c)


def op(v, k, a):
    if k == "$eq":
        return v is not MISSING and jeq(v, a)
    if k == "$ne":
        return v is MISSING or not jeq(v, a)
    if k == "$in":
        return v is not MISSING and any(jeq(v, x) for x in a)
    if k == "$nin":
        return v is MISSING or not any(jeq(v, x) for x in a)
    if k == "$exists":
        return (v is not MISSING) == a
    if v is MISSING or not same_type(v, a):
        return False
    c = cmp(v, a)
    return {"$gt": c > 0, "$gte": c >= 0, "$lt": c < 0, "$lte": c <= 0}[k]


def match(sel, doc):
    for k, c in sel.items():
        if k == "$and":
            if not all(match(s, doc) for s in c):
                return False
        elif k == "$or":
            if not any(match(s, doc) for s in c):
                return False
        elif not cond(get(doc, k), c):
            return False
    return True


def find(docs, sel, sort=None):
    """docs: [(created, id, doc)] in creation order; returns the ids that match,
    in the order of `sort` ([{path: asc|desc}]) then creation."""
    hits = [(c, i, d) for c, i, d in docs if match(sel, d)]

    def key_cmp(x, y):
        for s in sort or []:
            (path, direction), = s.items()
            c = cmp(get(x[2], path), get(y[2], path))
            if c:
                return -c if direction == "desc" else c
        return (x[0] > y[0]) - (x[0] < y[0])

    hits.sort(key=functools.cmp_to_key(key_cmp))
    return [i for _, i, _ in hits]


class LogModel:
    """The documents of one entity type at every log id, from the log's entries
    ([{"id", "event"}] in order), replayed like the CRUD store (§4)."""

    def __init__(self, entries, entity_type):
        self.t = entity_type
        self.changes = []  # (log_id, doc_id, state or None when deleted/gone, created)
        state, created = {}, {}
        for e in entries:
            ev = e["event"]
            et, oid = ev["event_type"], ev["originator"]["id"]
            if et == f"{self.t}.Created":
                created.setdefault(oid, e["id"])
                state[oid] = copy.deepcopy(ev["payload"])
            elif et == f"{self.t}.Updated" and state.get(oid) is not None:
                state[oid] = merge_patch(state[oid], ev["payload"])
            elif et == f"{self.t}.Deleted" and state.get(oid) is not None:
                state[oid] = None
            else:
                continue
            self.changes.append((e["id"], oid, copy.deepcopy(state[oid]), created[oid]))
        self.head = entries[-1]["id"] if entries else 0

    def docs_at(self, log_id=None):
        """[(created, id, doc)] of the live documents just after log_id."""
        state = {}
        for lid, oid, doc, created in self.changes:
            if log_id is not None and lid > log_id:
                break
            state[oid] = (created, doc)
        return sorted((c, i, d) for i, (c, d) in state.items() if d is not None)
