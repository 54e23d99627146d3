"""The soak's final checks (tests/soak/soak.py), run once the chaos has stopped,
every process is up again, the load has stopped and the readers caught up.

It reads the whole application log and every stream and document the load
wrote, and files each finding under one of:

- lost: an acknowledged event missing from the log or from its stream (or
  answered with a log id that holds another event); an acknowledged CRUD write
  missing from its document's history, or a document whose final state is not
  the one its acknowledged writes made; a key's record missing; an id the SSE
  reader saw that is not in the final log;
- duplicated: an event_id twice in the log; a document with more events than
  acknowledged writes; an Idempotency-Key with more than one record;
- skipped: a gap in a stream's versions; a stream read that disagrees with the
  log; a log id the SSE reader did not see (its order is checked as it reads);
- consumer: the stored offset or a metrics consumer's offset not at the head,
  lag not 0, or the two consumers' eskit_events_total short of the entries
  they had to count.

Only the Python standard library.
"""
import collections
import re
import time

from eskit import Client

DOC_TYPE = "SoakDoc"
KEY_RECORD = "eskit.IdempotencyKey.Used"


def get_ok(client, path, params=None, tries=50):
    """GET that must answer 200; resent a few times on 5xx and connection
    errors (the check runs after the chaos, but a service may still be
    reconnecting to its database)."""
    last = None
    for _ in range(tries):
        try:
            r = client.get(path, params=params, keep=True)
            if r.status == 200:
                return r.json
            last = r
            if r.status < 500:
                break
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise RuntimeError(f"GET {path} {params}: {last}")


def read_log(es_url):
    """Every entry of the log, in order: [(id, event)]."""
    c = Client(es_url, timeout=60)
    out, from_id = [], 1
    for _ in range(10**7):
        page = get_ok(c, "/v1/logs", {"from_id": from_id, "size": 1000})
        out.extend((e["id"], e["event"]) for e in page["results"])
        if not page["results"] and page["next_from_id"] > page["head_id"]:
            break
        from_id = page["next_from_id"]
    return out


def read_stream(client, oid):
    """Every event of a stream, in version order."""
    out, v = [], 1
    for _ in range(10**6):
        page = get_ok(client, f"/v1/events/{oid}", {"from_version": v, "limit": 10000})
        out.extend(page["events"])
        if len(page["events"]) < 10000:
            return out
        v = out[-1]["originator"]["version"] + 1
    return out


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')


def scrape(url):
    """{(name, labels text): value} of a /metrics page."""
    r = Client(url, timeout=10).get("/metrics")
    if r.status != 200:
        raise RuntimeError(f"{url}/metrics: {r}")
    out = {}
    for line in r.body.splitlines():
        m = _SAMPLE.match(line)
        if m and not line.startswith("#"):
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def family(samples, name, contains=""):
    return sum(v for (n, labels), v in samples.items() if n == name and contains in labels)


class Findings:
    def __init__(self):
        self.items = collections.defaultdict(list)

    def add(self, category, text):
        self.items[category].append(text)

    def count(self, category):
        return len(self.items[category])


def check(es_url, crud_url, appenders, writers, sse_ids, consumers, findings):
    """Runs every check; returns numbers for the report. consumers: (stored
    offset, [(offset, lag, events counted) of each metrics consumer], window
    start: the stored offset before the later start of the two)."""
    log = read_log(es_url)
    ids = [i for i, _ in log]
    if any(a >= b for a, b in zip(ids, ids[1:])):
        findings.add("skipped", "the log's ids are not strictly increasing")
    by_id = dict(log)
    head = ids[-1] if ids else 0

    # --- every event_id once; every stream without a gap
    eids = collections.Counter(e["event_id"] for _, e in log if e.get("event_id"))
    for eid, n in eids.items():
        if n > 1:
            findings.add("duplicated", f"event_id {eid} is in the log {n} times")
    versions = collections.defaultdict(list)
    for lid, e in log:
        versions[e["originator"]["id"]].append((e["originator"]["version"], lid, e))
    for oid, vs in versions.items():
        got = [v for v, _, _ in vs]
        if got != list(range(1, len(got) + 1)):
            findings.add("skipped", f"stream {oid}: versions in the log are not 1..{len(got)}: "
                                    f"{_runs(got)}")

    # --- appends: each acknowledged event in the log, at its log id, and in its stream
    acked_events = 0
    es = Client(es_url, timeout=60)
    streams = set()
    for a in appenders:
        streams |= a.streams
        for eid, (lid, oid, version) in a.acked.items():
            acked_events += 1
            e = by_id.get(lid)
            if e is None or e.get("event_id") != eid:
                where = "not in the log" if eid not in eids else "at another log id"
                findings.add("lost", f"acknowledged event {eid} (log id {lid}, {oid} "
                                     f"v{version}) is {where}")
            elif e["originator"]["id"] != oid or e["originator"]["version"] != version:
                findings.add("lost", f"log id {lid} holds {e['originator']}, acknowledged as "
                                     f"{oid} v{version}")
    docs = {}
    for w in writers:
        docs.update(w.docs)
    for oid in sorted(streams | set(docs)):
        stored = [(e["originator"]["version"], e.get("event_id")) for e in read_stream(es, oid)]
        logged = [(v, e.get("event_id")) for v, _, e in versions.get(oid, [])]
        if stored != logged:
            findings.add("skipped", f"stream {oid}: a stream read gives {len(stored)} events "
                                    f"{_runs([v for v, _ in stored])}, the log "
                                    f"{len(logged)} {_runs([v for v, _ in logged])}")

    # --- CRUD writes: each document as its acknowledged writes made it,
    #     with exactly one event per write and one record per key
    crud = Client(crud_url, timeout=60)
    kinds = {"create": "Created", "put": "Updated", "patch": "Updated", "delete": "Deleted"}
    abandoned = set().union(*(w.abandoned for w in writers)) if writers else set()
    for oid, d in sorted(docs.items()):
        if oid in abandoned:
            continue        # a write of it was given up or wrongly answered (a failure)
        ent = get_ok(crud, f"/v1/entities/{DOC_TYPE}/{oid}", {"deleted": "true"})
        if (ent["originator"]["version"], ent["payload"], ent["deleted"]) != \
                (d["version"], d["payload"], d["deleted"]):
            findings.add("lost", f"document {oid}: read v{ent['originator']['version']} "
                                 f"deleted={ent['deleted']} {ent['payload']}, acknowledged "
                                 f"v{d['version']} deleted={d['deleted']} {d['payload']}")
        hist = []
        for _ in range(10**5):
            page = get_ok(crud, f"/v1/entities/{DOC_TYPE}/{oid}/history",
                          {"from_version": len(hist) + 1, "limit": 1000})
            hist.extend(page["versions"])
            if len(page["versions"]) < 1000:
                break
        if len(hist) > len(d["writes"]):
            findings.add("duplicated", f"document {oid}: {len(hist)} versions for "
                                       f"{len(d['writes'])} acknowledged writes")
        by_version = {h["version"]: h for h in hist}
        for version, kind, seq, key in d["writes"]:
            h = by_version.get(version)
            change = h and h.get("change") or {}
            ok = h is not None and h["event_type"] == f"{DOC_TYPE}.{kinds[kind]}" and \
                (kind == "delete" or change.get("seq") == seq)
            if not ok:
                findings.add("lost", f"document {oid}: {kind} #{seq} (key {key}) acknowledged "
                                     f"at v{version}, history has {h}")
    records = collections.defaultdict(list)
    for lid, e in log:
        if e["event_type"] == KEY_RECORD:
            records[e["payload"].get("key")].append(e["payload"])
    acked_keys = {}
    for w in writers:
        acked_keys.update(w.keys)
    for key, (oid, version) in acked_keys.items():
        recs = records.get(key, [])
        if len(recs) > 1:
            findings.add("duplicated", f"Idempotency-Key {key} has {len(recs)} records")
        if not recs:
            findings.add("lost", f"Idempotency-Key {key} (acknowledged, {oid} v{version}) "
                                 "has no record")
        elif (recs[0].get("id"), recs[0].get("version")) != (oid, version):
            findings.add("lost", f"Idempotency-Key {key}: record {recs[0]}, acknowledged "
                                 f"{oid} v{version}")

    # --- the tailing reader saw the whole log, in order (order: load.SseReader)
    seen = set(sse_ids)
    for i in sorted(seen - set(ids)):
        findings.add("lost", f"SSE reader saw log id {i}, which is not in the final log")
    for i in ids:
        if i not in seen:
            findings.add("skipped", f"SSE reader never saw log id {i}")

    # --- the consumers reached the head and, together, counted every entry
    stored, mcs, window = consumers
    if stored != head:
        findings.add("consumer", f"stored offset {stored}, head {head}")
    for n, (offset, lag, _) in enumerate(mcs, 1):
        if offset != head or lag != 0:
            findings.add("consumer", f"metrics consumer {n}: offset {offset}, lag {lag}, "
                                     f"head {head}")
    counted = sum(c for _, _, c in mcs)
    due = sum(1 for i in ids if i > window) if window is not None else None
    if due is not None and counted < due:
        findings.add("consumer", f"the metrics consumers counted {counted} entries, but "
                                 f"{due} came after offset {window}")
    return {"log_entries": len(log), "head": head, "streams": len(versions),
            "acked_events": acked_events, "docs": len(docs), "keys": len(acked_keys),
            "key_records": sum(len(r) for r in records.values()),
            "counted": counted, "due": due, "window": window,
            "sse_seen": len(sse_ids)}


def _runs(vs, most=6):
    """A short text of a list of versions: its runs of consecutive numbers."""
    runs = []
    for v in vs:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    text = ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:most])
    return "[" + text + (",…]" if len(runs) > most else "]")
