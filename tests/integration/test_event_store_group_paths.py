"""The committer's paths (services/event-store/es_group.c). On PostgreSQL a
group is written in one statement decided from the versions the committer
remembers; the statement checks those versions under the log lock and, when
one is stale, writes nothing and returns the true versions, from which the
committer decides again and retries. Two replicas on one database make every memory stale in turn:
each answer must be what one process alone would have given, and the log
must hold exactly the acknowledged events under their acknowledged ids."""
import re

from eskit import Client


def ev(oid, version=None, etype="Doc.Updated"):
    e = {"originator": {"id": oid}, "event_type": etype, "payload": {"v": version}}
    if version is not None:
        e["originator"]["version"] = version
    return e


def groups(url):
    """eskit_append_groups_total by path."""
    text = Client(url).get("/metrics").body
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r'^eskit_append_groups_total\{path="(\w+)"\} (\S+)$', text, re.M)}


def append(c, body, status):
    r = c.post("/v1/events", body)
    assert r.status == status, r
    return r.json


def test_stale_memories_across_two_replicas(pg, services):
    url = pg.new_database()
    a = services("event-store", {"ESKIT_DATABASE_URL": url})
    b = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert a.wait_ready(), a.log()
    assert b.wait_ready(), b.log()
    ca, cb = Client(a.url), Client(b.url)
    acked = {}

    def ok(c, body):
        out = append(c, body, 201)
        for item in out.get("results", [out]):
            e = item["event"]
            acked[item["log_id"]] = (e["originator"]["id"], e["originator"]["version"])
        return out

    # A remembers s at 1; B moves it to 2 behind A's back.
    ok(ca, ev("s", etype="Doc.Created"))
    ok(cb, ev("s"))
    # Without a version A must still append at 3, not at 2.
    assert ok(ca, ev("s"))["event"]["originator"]["version"] == 3
    # Now A knows 3: its expected version 4 passes.
    ok(ca, ev("s", 4))
    # B still remembers 2: its expected version 5 must pass, and 5 again
    # must be refused with the true current version from either replica.
    ok(cb, ev("s", 5))
    for c in (ca, cb):
        r = append(c, ev("s", 5), 409)
        assert r["error"]["details"]["current_version"] == 5, r
    # A remembers 4, the truth is 5: a refusal A would make from memory
    # (version 7 cannot follow 4) must not be given; the truth refuses it
    # too, but with current_version 5.
    r = append(ca, ev("s", 7), 409)
    assert r["error"]["details"]["current_version"] == 5, r
    # A stream A never saw, made by B: A's expected version follows B's.
    ok(cb, ev("t", etype="Doc.Created"))
    ok(cb, ev("t"))
    ok(ca, ev("t", 3))
    # A stream nobody made: expected version 2 cannot be first.
    r = append(ca, ev("u", 2), 409)
    assert r["error"]["details"]["current_version"] == 0, r
    # A batch over a stale and a fresh stream, through the other replica.
    out = ok(cb, {"events": [ev("s", 6), ev("t", 4), ev("v", etype="Doc.Created")]})
    assert [i["event"]["originator"]["version"] for i in out["results"]] == [6, 4, 1]

    # The log holds exactly what was acknowledged, under the same ids, and
    # the streams' versions run without a gap.
    log = ca.get("/v1/logs", params={"from_id": 1, "size": 1000}).json
    got = {e["id"]: (e["event"]["originator"]["id"], e["event"]["originator"]["version"])
           for e in log["results"]}
    assert got == acked
    for sid, last in (("s", 6), ("t", 4), ("v", 1)):
        versions = [v["originator"]["version"]
                    for v in ca.get(f"/v1/events/{sid}").json["events"]]
        assert versions == list(range(1, last + 1)), (sid, versions)

    # The one statement ran from memory, and again from the true versions
    # it returned behind every stale memory; nothing needed the general path.
    for c in (a, b):
        g = groups(c.url)
        assert g.get("one_statement", 0) > 0 and g.get("retried", 0) > 0, (c.name, g)
        assert g.get("general", 0) == 0, (c.name, g)


def test_each_back_end_takes_its_path(event_store):
    """PostgreSQL writes remembered streams in one statement. SQLite has no
    such statement (no round trips to save): every group goes the general
    way, with the same answers."""
    c = Client(event_store.url)
    append(c, ev("w", etype="Doc.Created"), 201)
    append(c, ev("w", 2), 201)
    append(c, ev("w", 2), 409)
    g = groups(event_store.url)
    if event_store.env.get("ESKIT_DATABASE_URL", "").startswith("sqlite:"):
        assert g.get("one_statement", 0) == 0 and g.get("general", 0) == 2, g
    else:
        assert g.get("one_statement", 0) >= 1, g
