"""Appends while the scavenger deletes (make bench, section "retention"):
single appends at 32 connections while the event store's scavenger deletes
100,000 expired events, against the same appends with nothing to delete.
The target is a ratio of at least 0.8: the scavenger's bounded batches
(docs/retention.md) must not stall the log."""
import re
import statistics
import time

from eskit import Client, Service
from benchlib import DURATION, ROUNDS, wrk

STREAMS = 10
PER_STREAM = 10000  # 100,000 events in all
BATCH = 1000


def _scavenged(c):
    r = c.get("/metrics")
    m = re.search(r"^eskit_events_scavenged_total (\S+)$", r.body, re.M)
    return float(m.group(1)) if m else 0.0


def _expire(c, rnd):
    """Appends STREAMS x PER_STREAM events, then sets retention on each stream
    so that all but its last event are expired: the scavenger starts at once."""
    ids = [f"ret{rnd}-{k}" for k in range(STREAMS)]
    for oid in ids:
        for start in range(0, PER_STREAM, BATCH):
            r = c.post("/v1/events", {"events": [
                {"originator": {"id": oid}, "event_type": "Ret.Happened",
                 "payload": {"i": start + i, "pad": "x" * 64}} for i in range(BATCH)]})
            assert r.status == 201, r
    for oid in ids:
        r = c.put(f"/v1/streams/{oid}/metadata", {"max_count": 1})
        assert r.status == 200, r


def run(cluster, services):
    es = Service("event-store", {"ESKIT_DATABASE_URL": cluster.new_database(),
                                 "ESKIT_LOG_LEVEL": "warn", "ESKIT_DB_POOL_SIZE": "32",
                                 "ESKIT_SCAVENGE_INTERVAL": "1"}).start()
    services.append(es)
    assert es.wait_ready(), es.log()
    c = Client(es.url, timeout=120)
    print(f"single appends at 32 connections while the scavenger deletes "
          f"{STREAMS * PER_STREAM:,} expired events, vs with nothing to delete:")
    during, quiet, deleted = [], [], []
    for rnd in range(ROUNDS):
        # nothing to delete: the previous round's events are all gone
        quiet.append(wrk(es.url, "append.lua", 32, "/v1/events"))
        base = _scavenged(c)
        _expire(c, rnd)
        start = _scavenged(c)
        during.append(wrk(es.url, "append.lua", 32, "/v1/events"))
        deleted.append(_scavenged(c) - start)
        for _ in range(600):  # the rest goes before the next quiet run
            if _scavenged(c) - base >= STREAMS * (PER_STREAM - 1):
                break
            time.sleep(0.5)
    md, mq = statistics.median(during), statistics.median(quiet)
    ratio = md / mq if mq else float("inf")
    print(f"  {'appends/s, scavenging vs not':<44} eskit {md:>10.0f}/s   quiet   {mq:>10.0f}/s"
          f"   ratio {ratio:5.2f}x (target >= 0.8)")
    print(f"  events deleted during each {DURATION}s measurement: "
          f"{', '.join(f'{d:,.0f}' for d in deleted)}")
    return ratio
