"""The event store's endpoints (SPEC §3), on both back ends."""
import threading


_EMPTY = object()


def ev(oid, etype="User.Created", payload=_EMPTY, version=None, **extra):
    e = {"originator": {"id": oid}, "event_type": etype,
         "payload": {} if payload is _EMPTY else payload}
    if version is not None:
        e["originator"]["version"] = version
    e.update(extra)
    return e


def test_append_and_read_stream(event_store):
    c = event_store.client()
    r = c.post("/v1/events", ev("u1", payload={"email": "ada@example.com"}))
    assert r.status == 201, r
    assert r.json["log_id"] >= 1
    assert r.json["event"]["originator"] == {"id": "u1", "version": 1}
    assert r.json["event"]["occurred_on"].endswith("Z")
    r = c.post("/v1/events", ev("u1", "User.Updated", {"n": 2}, version=2,
                                occurred_on="2026-11-22T16:33:00.123+02:00"))
    assert r.status == 201, r
    assert r.json["event"]["occurred_on"] == "2026-11-22T14:33:00.123Z"
    r = c.get("/v1/events/u1")
    assert r.status == 200
    assert [e["originator"]["version"] for e in r.json["events"]] == [1, 2]
    assert r.json["events"][0]["payload"] == {"email": "ada@example.com"}
    assert r.header("Content-Type").startswith("application/json")
    r = c.get("/v1/events/u1", params={"from_version": 2})
    assert [e["originator"]["version"] for e in r.json["events"]] == [2]
    r = c.get("/v1/events/u1", params={"to_version": 1, "limit": 1})
    assert [e["originator"]["version"] for e in r.json["events"]] == [1]
    assert c.get("/v1/events/nobody").json == {"events": []}


def test_payload_round_trips_any_json(event_store):
    c = event_store.client()
    values = [{"a": [1, 2.5, "x", None, True, {"b": {}}]}, [1, 2], "text", 42, 1.5, None,
              {"unicode": "h\u00e9llo \u2603 \U0001F600", "esc": "a\"b\\c\n"}]
    for i, v in enumerate(values):
        r = c.post("/v1/events", ev(f"p{i}", payload=v))
        assert r.status == 201, r
        got = c.get(f"/v1/events/p{i}").json["events"][0]["payload"]
        assert got == v


def test_expected_version_conflict(event_store):
    c = event_store.client()
    assert c.post("/v1/events", ev("s", version=1)).status == 201
    r = c.post("/v1/events", ev("s", version=1))
    assert r.status == 409
    assert r.json["error"]["code"] == "conflict"
    assert r.json["error"]["details"]["current_version"] == 1
    r = c.post("/v1/events", ev("s", version=5))
    assert r.status == 409 and r.json["error"]["details"]["current_version"] == 1
    r = c.post("/v1/events", ev("new", version=2))
    assert r.status == 409 and r.json["error"]["details"]["current_version"] == 0
    assert c.get("/v1/events/new").json == {"events": []}


def test_batch_is_atomic(event_store):
    c = event_store.client()
    r = c.post("/v1/events", {"events": [ev("a"), ev("b", "Order.Created"),
                                         ev("a", "User.Updated")]})
    assert r.status == 201, r
    res = r.json["results"]
    assert [x["event"]["originator"] for x in res] == [
        {"id": "a", "version": 1}, {"id": "b", "version": 1}, {"id": "a", "version": 2}]
    ids = [x["log_id"] for x in res]
    assert ids == sorted(ids) and len(set(ids)) == 3
    head = c.get("/v1/logs").json["head_id"]
    # the second event conflicts: nothing of the batch is written
    r = c.post("/v1/events", {"events": [ev("c"), ev("a", version=2)]})
    assert r.status == 409, r
    assert c.get("/v1/events/c").json == {"events": []}
    assert c.get("/v1/logs").json["head_id"] == head
    # consecutive versions inside a batch
    r = c.post("/v1/events", {"events": [ev("d", version=1), ev("d", version=2)]})
    assert r.status == 201
    r = c.post("/v1/events", {"events": [ev("e", version=1), ev("e", version=3)]})
    assert r.status == 400
    assert "consecutive" in r.json["error"]["message"]


def test_concurrent_same_version_exactly_one_wins(event_store):
    c = event_store.client()
    for round_ in range(10):
        oid = f"race{round_}"
        statuses = []
        barrier = threading.Barrier(8)

        def go():
            barrier.wait()
            statuses.append(c.post("/v1/events", ev(oid, version=1)).status)

        ts = [threading.Thread(target=go) for _ in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        assert sorted(statuses) == [201] + [409] * 7, statuses
        assert len(c.get(f"/v1/events/{oid}").json["events"]) == 1


def test_streams(event_store):
    c = event_store.client()
    for i in range(5):
        assert c.post("/v1/events", ev(f"inv{i}", "com.acme.Invoice.Created")).status == 201
    c.post("/v1/events", ev("inv0", "com.acme.Invoice.Paid"))
    c.post("/v1/events", ev("other", "User.Created"))
    r = c.get("/v1/streams/inv0")
    assert r.status == 200
    assert r.json["entity_type"] == "com.acme.Invoice"
    assert r.json["version"] == 2 and r.json["last_event_type"] == "com.acme.Invoice.Paid"
    assert r.json["created_log_id"] < r.json["updated_log_id"]
    assert c.get("/v1/streams/nope").status == 404
    seen, after = [], None
    while True:
        params = {"entity_type": "com.acme.Invoice", "limit": 2}
        if after:
            params["after"] = after
        page = c.get("/v1/streams", params=params).json
        seen += [s["id"] for s in page["streams"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == [f"inv{i}" for i in range(5)]
    assert c.get("/v1/streams").status == 400
    assert c.get("/v1/streams", params={"entity_type": "X", "limit": 1001}).status == 400
    assert c.get("/v1/streams", params={"entity_type": "X", "after": "abc"}).status == 400


def test_log_filters_and_cursor(event_store):
    c = event_store.client()
    r = c.get("/v1/logs")
    assert r.json == {"results": [], "next_from_id": 1, "head_id": 0}
    assert c.get("/v1/logs", params={"from_id": 7}).json["next_from_id"] == 7
    c.post("/v1/events", {"events": [ev("u1"), ev("o1", "Order.Created"),
                                     ev("u1", "User.Updated"), ev("o1", "Order.Paid"),
                                     ev("x1", "com.acme.User.Created")]})
    log = c.get("/v1/logs").json
    assert len(log["results"]) == 5 and log["head_id"] == log["results"][-1]["id"]
    first = log["results"][0]["id"]

    def types(**params):
        return [e["event"]["event_type"] for e in c.get("/v1/logs", params=params).json["results"]]

    assert types(selector="User.*") == ["User.Created", "User.Updated"]
    assert types(selector="*.Created") == ["User.Created", "Order.Created",
                                            "com.acme.User.Created"]
    assert types(selector="com.acme.User.Created") == ["com.acme.User.Created"]
    assert types(pipeline_id="Order") == ["Order.Created", "Order.Paid"]
    assert types(pipeline_id="Order", selector="*.Paid") == ["Order.Paid"]
    assert types(pipeline_id="Order", selector="User.*") == []
    page = c.get("/v1/logs", params={"size": 2}).json
    assert len(page["results"]) == 2 and page["next_from_id"] == page["results"][1]["id"] + 1
    # a narrow selector still moves the reader forward
    page = c.get("/v1/logs", params={"selector": "Nothing.*"}).json
    assert page["results"] == [] and page["next_from_id"] == log["head_id"] + 1
    page = c.get("/v1/logs", params={"from_id": 0, "size": 1}).json
    assert page["results"][0]["id"] == first
    # skip_payload (an extension): the same entries without their payloads
    full = c.get("/v1/logs", params={"pipeline_id": "Order"}).json
    bare = c.get("/v1/logs", params={"pipeline_id": "Order", "skip_payload": "true"}).json
    assert [e["id"] for e in bare["results"]] == [e["id"] for e in full["results"]]
    for f, b in zip(full["results"], bare["results"]):
        assert "payload" in f["event"] and "payload" not in b["event"]
        del f["event"]["payload"]
        assert f == b
    assert bare["next_from_id"] == full["next_from_id"] and bare["head_id"] == full["head_id"]
    assert c.get("/v1/logs", params={"skip_payload": "false"}).json == log
    for bad in [{"size": 0}, {"size": 1001}, {"from_id": -1}, {"wait": 61},
                {"selector": "User"}, {"selector": "Us er.*"}, {"pipeline_id": "a..b"},
                {"skip_payload": "maybe"}]:
        r = c.get("/v1/logs", params=bad)
        assert r.status == 400, (bad, r)
        assert r.json["error"]["code"] == "invalid_argument"


def test_snapshots(event_store):
    c = event_store.client()
    c.post("/v1/events", {"events": [ev("s1"), ev("s1", "User.Updated")]})
    assert c.put("/v1/snapshots/s1", {"version": 1, "payload": {"v": 1}}).status == 204
    assert c.put("/v1/snapshots/s1", {"version": 2, "payload": {"v": 2}}).status == 204
    r = c.put("/v1/snapshots/s1", {"version": 3, "payload": {}})
    assert r.status == 409
    assert c.get("/v1/snapshots/s1").json == {"version": 2, "payload": {"v": 2}}
    r = c.get("/v1/snapshots/s1", params={"max_version": 1})
    assert r.json == {"version": 1, "payload": {"v": 1}}
    assert c.get("/v1/snapshots/none").status == 404
    head = c.get("/v1/logs").json["head_id"]
    assert head == 2  # snapshots are not in the log
    assert c.put("/v1/snapshots/s1", {"version": "1", "payload": {}}).status == 400
    assert c.put("/v1/snapshots/s1", {"version": 1}).status == 400


def test_health_ready_and_unknown_paths(event_store):
    c = event_store.client()
    assert c.get("/healthz").json == {"status": "ok"}
    assert c.get("/readyz").json == {"status": "ready"}
    r = c.get("/v1/nothing")
    assert r.status == 404 and r.json["error"]["code"] == "not_found"
    r = c.delete("/v1/events")
    assert r.status == 405 and "POST" in r.header("Allow")
    assert r.json["error"]["code"] == "method_not_allowed"


def test_streams_exclude_deleted(event_store):
    """An extension for the CRUD store's lists: exclude_deleted=true leaves out
    streams whose last event is named Deleted, in creation order."""
    c = event_store.client()
    for i in range(6):
        assert c.post("/v1/events", ev(f"doc{i}", "Doc.Created")).status == 201
    for i in (1, 3, 4):
        assert c.post("/v1/events", ev(f"doc{i}", "Doc.Deleted")).status == 201
    seen, after = [], None
    while True:
        params = {"entity_type": "Doc", "limit": 2, "exclude_deleted": "true"}
        if after:
            params["after"] = after
        page = c.get("/v1/streams", params=params).json
        seen += [s["id"] for s in page["streams"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == ["doc0", "doc2", "doc5"]
    every = c.get("/v1/streams", params={"entity_type": "Doc"}).json["streams"]
    assert len(every) == 6
    assert c.get("/v1/streams", params={"entity_type": "Doc",
                                        "exclude_deleted": "maybe"}).status == 400
