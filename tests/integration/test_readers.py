"""Every reader of the event store takes every value it can return (SPEC §3,
§6), on both back ends, black box.

PostgreSQL's jsonb spells a float such as 1e20 as the 21-digit integer
100000000000000000000 (1e39 as a 39-digit one, -1.5e300 as a 301-digit one),
and the event store passes the stored text through. jansson refuses integers
past 64 bits, so every C reader of that output parses it with
jsonx_parse_stored(), which takes them as the nearest double. Covered here:
the metrics consumer (it counts such entries and reaches the head), the CRUD
store (a document or a type schema holding such numbers reads back equal by
GET, by version, in lists, in history, after a restart too, when its cache is
empty, and from a snapshot) and the event store's own snapshot read."""
import json
import os
import re

import pytest

from eskit import BIN_DIR
from test_metrics_consumer import caught_up, family_sum, metric, parse_metrics, scrape

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(os.path.join(BIN_DIR, f"eskit-{s}"))
            for s in ("crud-store", "consumer-store", "metrics-consumer")),
    reason="the services are not built")

# the numbers of the issue: PostgreSQL spells all but 5e-324 as integers
ODD = [1e20, -1.5e300, 5e-324, 1.7976931348623157e308, 1e39]


def num_equal(a, b):
    """JSON equality with numbers compared numerically (as doubles)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(num_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(num_equal(x, y) for x, y in zip(a, b))
    return a == b


def odd_doc(tag):
    return {"tag": tag, "big": 1e20, "neg": -1.5e300, "tiny": 5e-324,
            "max": 1.7976931348623157e308, "huge": 1e39, "list": ODD,
            "nested": {"a": {"b": ODD}}}


@pytest.fixture
def stack(backend, services):
    """An event store, a consumer store, a CRUD store and (started by the
    test) a metrics consumer, on fresh databases of one back end."""
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    cs = services("consumer-store", {"ESKIT_DATABASE_URL": backend()})
    assert es.wait_ready(), es.log()
    assert cs.wait_ready(), cs.log()
    crud = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url})
    assert crud.wait_ready(), crud.log()
    return es, cs, crud


def test_pg_spells_large_floats_as_integers(backend, services):
    """What the readers below must take: on PostgreSQL the event store returns
    1e20 as a 21-digit integer and 1e39 as a 40-digit one."""
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    assert es.wait_ready(), es.log()
    c = es.client()
    assert c.post("/v1/events", {"originator": {"id": "n1"}, "event_type": "Num.Seen",
                                 "payload": {"a": 1e20, "b": 1e39}}).status == 201
    body = c.get("/v1/events/n1").body
    if backend.kind == "pg":
        assert re.search(r'"a": ?100000000000000000000[,}]', body), body
        assert re.search(r'"b": ?[0-9]{39,40}[,}]', body), body  # 1e39, as a double spells it
    ev = json.loads(body)["events"][0]
    assert num_equal(ev["payload"], {"a": 1e20, "b": 1e39})


def test_metrics_consumer_counts_odd_numbers(stack, services):
    es, cs, crud = stack
    mc = services("metrics-consumer", {
        "ESKIT_EVENT_STORE_URL": es.url, "ESKIT_CONSUMER_STORE_URL": cs.url,
        "ESKIT_CRUD_STORE_URL": crud.url, "ESKIT_CONSUMER_POLL_WAIT": "1"})
    assert mc.wait_ready(), mc.log()
    c = es.client()
    events = [{"originator": {"id": f"odd{i}"}, "event_type": "Num.Odd", "payload": {"x": x}}
              for i, x in enumerate(ODD)]
    events.append({"originator": {"id": "odd-doc"}, "event_type": "Num.Odd",
                   "payload": odd_doc("log")})
    events.append({"originator": {"id": "plain"}, "event_type": "Num.Plain",
                   "payload": {"x": 1}})
    for e in events:  # one by one: each its own log page boundary case
        r = c.post("/v1/events", e)
        assert r.status == 201, r
    head = caught_up(es, cs, mc)
    assert head == len(events)
    s = parse_metrics(scrape(mc))
    assert metric(s, "eskit_events_total", entity_type="Num", event_type="Odd") == len(ODD) + 1
    assert metric(s, "eskit_events_total", entity_type="Num", event_type="Plain") == 1
    assert family_sum(s, "eskit_events_total") == len(events)
    assert metric(s, "eskit_consumer_lag", consumer="metrics-consumer") == 0
    assert metric(s, "eskit_consumer_errors_total", consumer="metrics-consumer") == 0


def test_event_store_snapshot_holds_odd_numbers(backend, services):
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    assert es.wait_ready(), es.log()
    c = es.client()
    assert c.post("/v1/events", {"originator": {"id": "s1"}, "event_type": "Num.Seen",
                                 "payload": {}}).status == 201
    doc = odd_doc("snap")
    r = c.put("/v1/snapshots/s1", {"version": 1, "payload": doc})
    assert r.status == 204, r
    r = c.get("/v1/snapshots/s1")
    assert r.status == 200, r
    assert r.json["version"] == 1
    assert num_equal(r.json["payload"], doc), r


def read_everything(c, oid, versions):
    """Reads document oid of type Flt every way the CRUD store offers and
    checks it against versions ({version: document})."""
    last = max(versions)
    r = c.get(f"/v1/entities/Flt/{oid}")
    assert r.status == 200, r
    assert r.json["originator"]["version"] == last
    assert num_equal(r.json["payload"], versions[last]), r
    for v, doc in versions.items():
        r = c.get(f"/v1/entities/Flt/{oid}", params={"version": v})
        assert r.status == 200, r
        assert num_equal(r.json["payload"], doc), (v, r)
    r = c.get("/v1/entities/Flt", params={"limit": 100})
    assert r.status == 200, r
    mine = [x for x in r.json["results"] if x["originator"]["id"] == oid]
    assert len(mine) == 1 and num_equal(mine[0]["payload"], versions[last]), r
    r = c.get(f"/v1/entities/Flt/{oid}/history")
    assert r.status == 200, r
    assert [h["version"] for h in r.json["versions"]] == sorted(versions)
    assert num_equal(r.json["versions"][0]["change"], versions[1]), r


def test_crud_documents_hold_odd_numbers(stack, services):
    es, cs, crud = stack
    c = crud.client()
    v1 = odd_doc("one")
    r = c.post("/v1/entities/Flt", {"payload": v1, "originator": {"id": "f1"}})
    assert r.status == 201, r
    # PUT with a changed big number, PATCH adding another: the merge patches
    # hold them too, and the replay applies them
    v2 = dict(v1, big=2e20, tag="two")
    r = c.put("/v1/entities/Flt/f1", {"originator": {"version": 1}, "payload": v2})
    assert r.status == 200, r
    r = c.patch("/v1/entities/Flt/f1", {"more": 3e25, "tiny": None})
    assert r.status == 200, r
    v3 = dict(v2, more=3e25)
    del v3["tiny"]
    assert num_equal(r.json["payload"], v3), r
    versions = {1: v1, 2: v2, 3: v3}
    read_everything(c, "f1", versions)

    # a fresh CRUD store: an empty cache, everything replayed from the log
    assert crud.stop() == 0, crud.log()
    crud2 = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url})
    assert crud2.wait_ready(), crud2.log()
    c2 = crud2.client()
    read_everything(c2, "f1", versions)
    r = c2.patch("/v1/entities/Flt/f1", {"tag": "four"})
    assert r.status == 200, r
    assert num_equal(r.json["payload"], dict(v3, tag="four")), r


def test_crud_snapshot_holds_odd_numbers(stack, services):
    """A document past 100 versions is snapshotted in the event store; a
    fresh CRUD store starts its replay from that snapshot."""
    es, cs, crud = stack
    c = crud.client()
    doc = odd_doc("snap")
    assert c.post("/v1/entities/Flt", {"payload": doc,
                                       "originator": {"id": "many"}}).status == 201
    for i in range(101):
        r = c.patch("/v1/entities/Flt/many", {"n": i})
        assert r.status == 200, r
    r = es.client().get("/v1/snapshots/many")
    assert r.status == 200, r
    assert crud.stop() == 0, crud.log()
    crud2 = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url})
    assert crud2.wait_ready(), crud2.log()
    r = crud2.client().get("/v1/entities/Flt/many")
    assert r.status == 200, r
    assert r.json["originator"]["version"] == 102
    assert num_equal(r.json["payload"], dict(doc, n=100)), r


SCHEMA = {"type": "object",
          "properties": {"x": {"type": "number", "maximum": 1e20, "minimum": -1.5e300}}}


def check_type(c):
    r = c.get("/v1/types/Big")
    assert r.status == 200, r
    assert num_equal(r.json["spec"]["schema_spec"]["json_schema"], SCHEMA), r
    r = c.get("/v1/types")
    assert r.status == 200, r
    specs = {s["entity_type"]: s for s in r.json["results"]}
    assert num_equal(specs["Big"]["schema_spec"]["json_schema"], SCHEMA), r
    assert "Other" in specs, r
    # the schema is applied with its big bounds
    assert c.post("/v1/entities/Big", {"payload": {"x": 5e19}}).status == 201
    assert c.post("/v1/entities/Big", {"payload": {"x": 1e20}}).status == 201
    r = c.post("/v1/entities/Big", {"payload": {"x": 2e20}})
    assert r.status == 400, r
    r = c.post("/v1/types", {"spec": {"entity_type": "Big", "schema_spec": {
        "schema_version": 1, "json_schema": SCHEMA}}, "skip_duplicate": True})
    assert r.status == 200, r


def test_crud_type_schema_holds_odd_numbers(stack, services):
    es, cs, crud = stack
    c = crud.client()
    r = c.post("/v1/types", {"spec": {"entity_type": "Big", "schema_spec": {
        "schema_version": 1, "json_schema": SCHEMA}}})
    assert r.status == 201, r
    assert c.post("/v1/types", {"spec": {"entity_type": "Other"}}).status == 201
    check_type(c)

    assert crud.stop() == 0, crud.log()
    crud2 = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url})
    assert crud2.wait_ready(), crud2.log()
    c2 = crud2.client()
    check_type(c2)
    # another type whose schema holds such a number, created after the restart
    r = c2.post("/v1/types", {"spec": {"entity_type": "Big2", "schema_spec": {
        "schema_version": 1, "json_schema": SCHEMA}}})
    assert r.status == 201, r
    r = c2.put("/v1/types/Big", {"spec": {"entity_type": "Big", "schema_spec": {
        "schema_version": 2, "json_schema": dict(SCHEMA, required=["x"])}}})
    assert r.status == 200, r
    assert c2.post("/v1/entities/Big", {"payload": {}}).status == 400


def test_resent_append_of_odd_numbers_is_idempotent(backend, services):
    """The event store's own reader: a resend is judged against the stored
    payload and metadata (SPEC §3), which PostgreSQL spells as integers."""
    import uuid
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    assert es.wait_ready(), es.log()
    c = es.client()
    one = {"event_id": str(uuid.uuid4()), "originator": {"id": "idem1"},
           "event_type": "Num.Seen", "payload": odd_doc("idem"), "metadata": {"m": 1e20}}
    r = c.post("/v1/events", one)
    assert r.status == 201, r
    first = r.json["log_id"]
    r = c.post("/v1/events", one)
    assert r.status == 200, r
    assert r.json["log_id"] == first
    batch = {"events": [dict(one, event_id=str(uuid.uuid4()), originator={"id": f"idem{i}"})
                        for i in range(2, 5)]}
    r = c.post("/v1/events", batch)
    assert r.status == 201, r
    ids = [x["log_id"] for x in r.json["results"]]
    r = c.post("/v1/events", batch)
    assert r.status == 200, r
    assert [x["log_id"] for x in r.json["results"]] == ids
    # another payload under the same id is still a conflict
    r = c.post("/v1/events", dict(one, payload=dict(odd_doc("idem"), big=3e20)))
    assert r.status == 409, r
