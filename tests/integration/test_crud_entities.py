"""The CRUD store's documents (SPEC §4), black-box, on both back ends:
create / read / replace / merge patch / delete / list / history, the events
the store writes under each of them (read back from the event store), and
the replay's handling of events of other names.

Where the SPEC leaves a choice open, the reading taken is written next to the
assertion that depends on it.
"""
import json
import random
import time

import pytest

from crud_fixtures import (UUID4, assert_error, etag_version,
                           merge_patch, replay, ts_seconds)


@pytest.fixture
def crud(crud_store):
    """The conftest's crud_store (an event store and a CRUD store, per back end)."""
    return crud_store


U = "/v1/entities/User"


def entity_of(r, oid, version, payload, etype="User", deleted=False):
    """r is a 200 entity response for this document at this version."""
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json"), r.headers
    assert r.json["entity_type"] == etype, r
    assert r.json["originator"] == {"id": oid, "version": version}, r
    assert r.json["payload"] == payload, r
    assert r.json["deleted"] is deleted, r
    assert etag_version(r) == version


# --------------------------------------------------------------------------
# create

def test_create_with_generated_id(crud):
    doc = {"email": "ada@example.com", "n": 1, "tags": ["a", "b"], "nested": {"x": [1, {}]},
           "unicode": "h\u00e9llo \u2603 \U0001F600", "f": 1.5, "t": True}
    r = crud.c.post(U, {"payload": doc})
    assert r.status == 201, r
    assert r.header("Content-Type").startswith("application/json")
    oid = r.json["originator"]["id"]
    assert UUID4.match(oid), oid
    assert r.json["originator"] == {"id": oid, "version": 1}
    loc = r.header("Location")
    assert loc is not None and loc.endswith(f"/v1/entities/User/{oid}"), loc
    # the Location, absolute or not, names the document
    path = loc[loc.index("/v1/"):]
    entity_of(crud.c.get(path), oid, 1, doc)
    # the stream holds one User.Created with the whole document
    evs = crud.events(oid)
    assert [e["event_type"] for e in evs] == ["User.Created"]
    assert evs[0]["payload"] == doc and evs[0]["originator"]["version"] == 1
    # an originator without id, and unknown members, are fine; ids differ
    r2 = crud.c.post(U, {"payload": {}, "originator": {}, "unknown": [1]})
    assert r2.status == 201, r2
    oid2 = r2.json["originator"]["id"]
    assert UUID4.match(oid2) and oid2 != oid
    entity_of(crud.read("User", oid2), oid2, 1, {})


def test_create_with_id_and_duplicate(crud):
    oid = "ada@example.com:user_1-A.b"          # every id character class
    r = crud.c.post(U, {"payload": {"v": 1}, "originator": {"id": oid}})
    assert r.status == 201, r
    assert r.json["originator"] == {"id": oid, "version": 1}
    assert r.header("Location").endswith(f"/v1/entities/User/{oid}")
    head = crud.head_id()
    r = crud.c.post(U, {"payload": {"v": 2}, "originator": {"id": oid}})
    assert_error(r, 409)
    # the same id under another entity type is the same stream: it exists
    assert_error(crud.c.post("/v1/entities/Order", {"payload": {},
                                                    "originator": {"id": oid}}), 409)
    assert crud.head_id() == head
    assert len(crud.events(oid)) == 1
    entity_of(crud.read("User", oid), oid, 1, {"v": 1})
    # a 128-character id is fine
    long_id = "x" * 128
    assert crud.create("User", {}, long_id) == long_id


def test_create_payload_not_an_object(crud):
    head = crud.head_id()
    for bad in ([1, 2], "text", None, 42, True):
        r = crud.c.post(U, {"payload": bad, "originator": {"id": "bad-payload"}})
        assert_error(r, 400, "payload")
    assert_error(crud.c.post(U, {"originator": {"id": "bad-payload"}}), 400, "payload")
    assert crud.head_id() == head
    assert crud.events("bad-payload") == []


def test_create_reads_any_json_content_type(crud):
    # curl -d sends application/x-www-form-urlencoded: read as JSON (SPEC §2)
    r = crud.c.post(U, raw=b'{"payload": {"a": 1}, "originator": {"id": "curl"}}',
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 201, r
    entity_of(crud.read("User", "curl"), "curl", 1, {"a": 1})
    r = crud.c.post(U, raw=b'{"payload": {"a": 2}, "originator": {"id": "noct"}}')
    assert r.status == 201, r


# --------------------------------------------------------------------------
# read

def test_read_latest_and_at_versions(crud):
    docs = [{"name": "v1", "n": 1}, {"name": "v2", "n": 2, "extra": [1]}, {"name": "v3"}]
    oid = crud.create("User", docs[0], "reader")
    for i, d in enumerate(docs[1:], start=1):
        r = crud.c.put(f"{U}/reader", {"originator": {"version": i}, "payload": d})
        assert r.status == 200, r
        assert r.json["originator"] == {"id": oid, "version": i + 1}
    entity_of(crud.read("User", oid), oid, 3, docs[2])
    for v in (1, 2, 3):
        entity_of(crud.read("User", oid, version=v), oid, v, docs[v - 1])
    # a version past the last
    assert_error(crud.read("User", oid, version=4), 404)
    assert_error(crud.read("User", oid, version=1000), 404)
    # of another entity type: not found, at any version
    assert_error(crud.read("Order", oid), 404)
    assert_error(crud.read("Order", oid, version=1), 404)
    assert_error(crud.read("Order", oid, deleted="true"), 404)
    # never existed
    assert_error(crud.read("User", "nobody"), 404)
    assert_error(crud.read("User", "nobody", version=1), 404)
    assert_error(crud.read("User", "nobody", deleted="true"), 404)


def test_read_cost_does_not_grow_with_history(crud):
    """A document with 5,000 versions (appended straight to the event store)
    reads about as fast as one with 1 (SPEC §4: snapshots, cache)."""
    crud.create("User", {"n": 0}, "short")
    crud.create("User", {"n": 0, "blob": "x" * 100}, "long")
    for start in range(2, 5001, 1000):
        evs = [{"originator": {"id": "long", "version": v}, "event_type": "User.Updated",
                "payload": {"n": v}} for v in range(start, min(start + 1000, 5001))]
        r = crud.e.post("/v1/events", {"events": evs})
        assert r.status == 201, r
    entity_of(crud.read("User", "long"), "long", 5000, {"n": 5000, "blob": "x" * 100})

    def median_read(oid):
        times = []
        for _ in range(15):
            t = time.perf_counter()
            r = crud.read("User", oid)
            times.append(time.perf_counter() - t)
            assert r.status == 200, r
        return sorted(times)[len(times) // 2]

    short, long_ = median_read("short"), median_read("long")
    assert long_ <= 5 * short + 0.02, (short, long_)


# --------------------------------------------------------------------------
# delete

def test_delete_and_read_deleted(crud):
    oid = crud.create("User", {"a": 1}, "del")
    assert crud.c.put(f"{U}/del", {"originator": {"version": 1},
                                   "payload": {"a": 2}}).status == 200
    r = crud.c.delete(f"{U}/del")
    assert r.status == 200, r
    assert r.json["originator"] == {"id": oid, "version": 3}
    evs = crud.events(oid)
    assert [e["event_type"] for e in evs] == ["User.Created", "User.Updated", "User.Deleted"]
    assert evs[2]["payload"] == {}
    # gone for a plain read, there with deleted=true (the last document, deleted: true)
    assert_error(crud.read("User", oid), 404)
    entity_of(crud.read("User", oid, deleted="true"), oid, 3, {"a": 2}, deleted=True)
    entity_of(crud.read("User", oid, version=3, deleted="true"), oid, 3, {"a": 2},
              deleted=True)
    assert_error(crud.read("User", oid, version=3), 404)
    # reading: the document as it was before the delete, with deleted=true
    entity_of(crud.read("User", oid, version=2, deleted="true"), oid, 2, {"a": 2})
    assert_error(crud.read("User", oid, version=4, deleted="true"), 404)
    # deleted=false is the default
    assert_error(crud.read("User", oid, deleted="false"), 404)
    other = crud.create("User", {"x": 1})
    head = crud.head_id()
    # a second delete, a delete of nothing, of another type: 404
    assert_error(crud.c.delete(f"{U}/del"), 404)
    assert_error(crud.c.delete(f"{U}/never-there"), 404)
    assert_error(crud.c.delete(f"/v1/entities/Order/{other}"), 404)
    # reading: a deleted document cannot be replaced or patched (404), and its
    # id still exists (409 on create)
    assert_error(crud.c.put(f"{U}/del", {"originator": {"version": 3}, "payload": {}}), 404)
    assert_error(crud.c.patch(f"{U}/del", {"a": 3}), 404)
    assert_error(crud.c.post(U, {"payload": {}, "originator": {"id": "del"}}), 409)
    assert crud.head_id() == head
    assert len(crud.events(oid)) == 3


def test_delete_if_match(crud):
    oid = crud.create("User", {"a": 1}, "dm")
    crud.c.patch(f"{U}/dm", {"a": 2})
    head = crud.head_id()
    assert_error(crud.c.delete(f"{U}/dm", headers={"If-Match": '"1"'}), 409)
    assert_error(crud.c.delete(f"{U}/dm", headers={"If-Match": '"3"'}), 409)
    assert crud.head_id() == head
    entity_of(crud.read("User", oid), oid, 2, {"a": 2})
    r = crud.c.delete(f"{U}/dm", headers={"If-Match": '"2"'})
    assert r.status == 200, r
    assert r.json["originator"] == {"id": oid, "version": 3}
    assert_error(crud.read("User", oid), 404)


# --------------------------------------------------------------------------
# replace

def test_put_with_body_version_and_if_match(crud):
    oid = crud.create("User", {"a": 1, "b": 2}, "put")
    r = crud.c.put(f"{U}/put", {"originator": {"version": 1}, "payload": {"a": 1, "c": 3}})
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json")
    assert r.json["originator"] == {"id": oid, "version": 2}
    entity_of(crud.read("User", oid), oid, 2, {"a": 1, "c": 3})
    r = crud.c.put(f"{U}/put", {"payload": {"z": 26}}, headers={"If-Match": '"2"'})
    assert r.status == 200, r
    assert r.json["originator"] == {"id": oid, "version": 3}
    entity_of(crud.read("User", oid), oid, 3, {"z": 26})
    # the If-Match from a read works as it is
    g = crud.read("User", oid)
    r = crud.c.put(f"{U}/put", {"payload": {"z": 27}}, headers={"If-Match": g.header("ETag")})
    assert r.status == 200 and r.json["originator"]["version"] == 4, r


def test_put_stale_version_writes_nothing(crud):
    oid = crud.create("User", {"a": 1}, "stale")
    assert crud.c.put(f"{U}/stale", {"originator": {"version": 1},
                                     "payload": {"a": 2}}).status == 200
    before_events = crud.events(oid)
    before_hist = crud.c.get(f"{U}/stale/history").json
    head = crud.head_id()
    for body, hdrs in [({"originator": {"version": 1}, "payload": {"a": 9}}, None),
                       ({"payload": {"a": 9}}, {"If-Match": '"1"'}),
                       ({"originator": {"version": 3}, "payload": {"a": 9}}, None),
                       ({"payload": {"a": 9}}, {"If-Match": '"7"'})]:
        r = crud.c.put(f"{U}/stale", body, headers=hdrs)
        assert_error(r, 409)
    assert crud.head_id() == head
    assert crud.events(oid) == before_events
    assert crud.c.get(f"{U}/stale/history").json == before_hist
    entity_of(crud.read("User", oid), oid, 2, {"a": 2})


def test_put_errors(crud):
    oid = crud.create("User", {"a": 1}, "pe")
    head = crud.head_id()
    # no version at all
    assert_error(crud.c.put(f"{U}/pe", {"payload": {"a": 2}}), 400, "version")
    assert_error(crud.c.put(f"{U}/pe", {"originator": {}, "payload": {"a": 2}}), 400,
                 "version")
    # no payload / not an object
    assert_error(crud.c.put(f"{U}/pe", {"originator": {"version": 1}}), 400, "payload")
    for bad in ([1], "x", None, 5):
        assert_error(crud.c.put(f"{U}/pe", {"originator": {"version": 1}, "payload": bad}),
                     400, "payload")
    # missing document, other entity type
    assert_error(crud.c.put(f"{U}/nobody", {"originator": {"version": 1}, "payload": {}}),
                 404)
    assert_error(crud.c.put(f"/v1/entities/Order/{oid}",
                            {"originator": {"version": 1}, "payload": {}}), 404)
    assert crud.head_id() == head
    entity_of(crud.read("User", oid), oid, 1, {"a": 1})


def test_put_unchanged_document_appends_empty_patch(crud):
    doc = {"a": 1, "nested": {"b": [1, 2]}}
    oid = crud.create("User", doc, "same")
    r = crud.c.put(f"{U}/same", {"originator": {"version": 1}, "payload": doc})
    assert r.status == 200 and r.json["originator"]["version"] == 2, r
    evs = crud.events(oid)
    assert [e["event_type"] for e in evs] == ["User.Created", "User.Updated"]
    assert evs[1]["payload"] == {}
    assert evs[1]["originator"]["version"] == 2
    entity_of(crud.read("User", oid), oid, 2, doc)
    hist = crud.c.get(f"{U}/same/history").json["versions"]
    assert [h["change"] for h in hist] == [doc, {}]


def test_update_event_holds_only_the_merge_patch(crud):
    big = {f"f{i}": {"i": i, "s": "v" * 20, "arr": list(range(i % 5))} for i in range(60)}
    big.update({"arr": [1, 2, 3], "scalar": "s", "num": 7})
    oid = crud.create("User", big, "big")
    steps = []

    def put(new, want_patch):
        v = len(crud.events(oid))
        r = crud.c.put(f"{U}/big", {"originator": {"version": v}, "payload": new})
        assert r.status == 200 and r.json["originator"]["version"] == v + 1, r
        ev = crud.events(oid)[-1]
        assert ev["event_type"] == "User.Updated" and ev["originator"]["version"] == v + 1
        assert ev["payload"] == want_patch, (ev["payload"], want_patch)
        steps.append(new)
        entity_of(crud.read("User", oid), oid, v + 1, new)

    cur = dict(big)
    cur["scalar"] = "changed"                          # change one member
    put(dict(cur), {"scalar": "changed"})
    del cur["f3"]                                      # remove one member
    put(dict(cur), {"f3": None})
    cur["added"] = {"deep": [None, 1]}                 # add one member
    put(dict(cur), {"added": {"deep": [None, 1]}})
    cur["arr"] = [1, 2, 3, 4]                          # arrays: replaced whole
    put(dict(cur), {"arr": [1, 2, 3, 4]})
    cur["num"] = "seven"                               # a member changes type
    put(dict(cur), {"num": "seven"})
    cur["f5"] = 5                                      # an object becomes a scalar
    put(dict(cur), {"f5": 5})
    cur["scalar"] = {"now": "an object"}               # a scalar becomes an object
    put(dict(cur), {"scalar": {"now": "an object"}})
    del cur["num"]
    cur["num2"] = 1.25                                 # one removed, one added
    put(dict(cur), {"num": None, "num2": 1.25})
    # every version still reads as it was written
    for v, d in enumerate([big] + steps, start=1):
        entity_of(crud.read("User", oid, version=v), oid, v, d)


def test_update_patch_of_nested_change_is_nested(crud):
    """The merge patch from one document to the next recurses into objects:
    changing one member of a nested object stores just that member."""
    doc = {"profile": {"city": "London", "zip": "N1", "phones": ["1", "2"],
                       "deep": {"a": 1, "b": 2}}, "other": "x" * 100}
    oid = crud.create("User", doc, "nested")
    new = {"profile": {"city": "Paris", "zip": "N1", "phones": ["1", "2"],
                       "deep": {"a": 1}}, "other": "x" * 100}
    r = crud.c.put(f"{U}/nested", {"originator": {"version": 1}, "payload": new})
    assert r.status == 200, r
    assert crud.events(oid)[-1]["payload"] == {"profile": {"city": "Paris",
                                                           "deep": {"b": None}}}
    entity_of(crud.read("User", oid), oid, 2, new)


def test_random_replacements_replay(crud):
    """A seeded run of random replacements: each version reads back as
    written, and replaying the stream's events gives the document."""
    rnd = random.Random(7386)

    def value(depth):
        k = rnd.randrange(7 if depth < 3 else 5)
        if k == 0:
            return rnd.randrange(-1000, 1000)
        if k == 1:
            return rnd.choice(["a", "b", "\u00e9", ""])
        if k == 2:
            return rnd.choice([True, False, 1.5])
        if k == 3:
            return [rnd.randrange(3) for _ in range(rnd.randrange(3))]
        if k == 4:
            return {}
        return doc(depth + 1)

    def doc(depth=0):
        keys = rnd.sample("abcdefgh", rnd.randrange(1, 6))
        return {k: value(depth) for k in keys}

    docs = [doc()]
    oid = crud.create("User", docs[0], "rnd")
    for v in range(1, 30):
        # mostly small edits of the previous document, sometimes a new one
        if rnd.random() < 0.3:
            nxt = doc()
        else:
            nxt = merge_patch(docs[-1], {rnd.choice("abcdefgh"): value(1)
                                         if rnd.random() < 0.8 else None})
        r = crud.c.put(f"{U}/rnd", {"originator": {"version": v}, "payload": nxt})
        assert r.status == 200, r
        docs.append(nxt)
    evs = crud.events(oid)
    assert len(evs) == len(docs)
    for i in range(1, len(evs)):
        assert merge_patch(docs[i - 1], evs[i]["payload"]) == docs[i], i
    assert replay(evs, "User") == docs[-1]
    for v, d in enumerate(docs, start=1):
        entity_of(crud.read("User", oid, version=v), oid, v, d)


# --------------------------------------------------------------------------
# merge patch

def test_patch_merge_semantics(crud):
    doc = {"a": 1, "b": {"c": 1, "d": 2}, "arr": [1, 2, 3], "keep": "k",
           "obj": {"x": {"y": 1}}}
    oid = crud.create("User", doc, "mp")
    patch = {"a": None, "b": {"c": None, "e": 3}, "arr": [9], "new": {"x": None, "y": 1},
             "obj": {"x": {"z": 2}}, "absent": None}
    want = {"b": {"d": 2, "e": 3}, "arr": [9], "keep": "k", "new": {"y": 1},
            "obj": {"x": {"y": 1, "z": 2}}}
    assert merge_patch(doc, patch) == want          # the helper agrees with RFC 7386
    r = crud.c.patch(f"{U}/mp", raw=json.dumps(patch),
                     headers={"Content-Type": "application/merge-patch+json"})
    entity_of(r, oid, 2, want)
    entity_of(crud.read("User", oid), oid, 2, want)
    evs = crud.events(oid)
    assert evs[-1]["event_type"] == "User.Updated"
    assert merge_patch(doc, evs[-1]["payload"]) == want
    # plain application/json works too; a member becoming an array, an array an object
    r = crud.c.patch(f"{U}/mp", {"keep": [1, {"a": None}], "arr": {"q": None, "r": 1}})
    want2 = dict(want, keep=[1, {"a": None}], arr={"r": 1})
    entity_of(r, oid, 3, want2)
    assert replay(crud.events(oid), "User") == want2


def test_patch_if_match_and_errors(crud):
    oid = crud.create("User", {"n": 1}, "pm")
    r = crud.c.patch(f"{U}/pm", {"n": 2}, headers={"If-Match": '"1"'})
    entity_of(r, oid, 2, {"n": 2})
    head = crud.head_id()
    assert_error(crud.c.patch(f"{U}/pm", {"n": 3}, headers={"If-Match": '"1"'}), 409)
    assert_error(crud.c.patch(f"{U}/pm", {"n": 3}, headers={"If-Match": '"5"'}), 409)
    assert_error(crud.c.patch(f"{U}/nobody", {"n": 3}), 404)
    assert_error(crud.c.patch(f"/v1/entities/Order/{oid}", {"n": 3}), 404)
    # a patch that is not an object would make the document a non-object
    assert_error(crud.c.patch(f"{U}/pm", [1, 2]), 400)
    assert_error(crud.c.patch(f"{U}/pm", "text"), 400)
    assert crud.head_id() == head
    entity_of(crud.read("User", oid), oid, 2, {"n": 2})
    r = crud.c.patch(f"{U}/pm", {"n": 3}, headers={"If-Match": '"2"'})
    entity_of(r, oid, 3, {"n": 3})


# --------------------------------------------------------------------------
# list

def test_list_pages_order_and_shape(crud):
    assert crud.c.get(U).json == {"results": [], "next_page_token": None}
    # ids in reverse lexical order, so that creation order is not id order
    ids = [crud.create("User", {"i": i}, f"{chr(ord('z') - i)}{i}") for i in range(14)]
    crud.create("Order", {"i": 99}, "order-1")
    # one update and one delete
    assert crud.c.patch(f"{U}/{ids[2]}", {"i": 2, "patched": True}).status == 200
    assert crud.c.delete(f"{U}/{ids[5]}").status == 200
    live = [x for x in ids if x != ids[5]]
    r = crud.c.get(U)
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json")
    assert set(r.json) == {"results", "next_page_token"}
    res = r.json["results"]
    assert len(res) == 10                                  # the default limit
    assert [e["originator"]["id"] for e in res] == live[:10]  # creation order
    assert isinstance(r.json["next_page_token"], str) and r.json["next_page_token"]
    for e in res:
        assert e["entity_type"] == "User" and e["deleted"] is False
        i = ids.index(e["originator"]["id"])
        if i == 2:
            assert e["originator"]["version"] == 2
            assert e["payload"] == {"i": 2, "patched": True}
        else:
            assert e["originator"]["version"] == 1 and e["payload"] == {"i": i}
    r2 = crud.c.get(U, params={"page_token": r.json["next_page_token"]})
    assert r2.status == 200, r2
    assert [e["originator"]["id"] for e in r2.json["results"]] == live[10:]
    assert r2.json["next_page_token"] is None
    # limit up to 100
    r = crud.c.get(U, params={"limit": 100})
    assert [e["originator"]["id"] for e in r.json["results"]] == live
    assert r.json["next_page_token"] is None
    r = crud.c.get(U, params={"limit": 13})
    assert [e["originator"]["id"] for e in r.json["results"]] == live
    r = crud.c.get(U, params={"limit": 1})
    assert [e["originator"]["id"] for e in r.json["results"]] == live[:1]
    assert r.json["next_page_token"]
    assert_error(crud.c.get(U, params={"limit": 101}), 400, "limit")
    assert_error(crud.c.get(U, params={"limit": 0}), 400, "limit")
    # skip_payload
    r = crud.c.get(U, params={"skip_payload": "true", "limit": 100})
    assert [e["originator"]["id"] for e in r.json["results"]] == live
    for e in r.json["results"]:
        assert "payload" not in e, e
        assert e["entity_type"] == "User" and e["deleted"] is False
    r = crud.c.get(U, params={"skip_payload": "false", "limit": 2})
    assert all("payload" in e for e in r.json["results"])
    # other types are listed apart
    r = crud.c.get("/v1/entities/Order")
    assert [e["originator"]["id"] for e in r.json["results"]] == ["order-1"]
    assert crud.c.get("/v1/entities/Nothing").json == {"results": [],
                                                       "next_page_token": None}


def walk(crud, limit, between=None, params=None):
    """Walks all pages; returns the ids in order (calls between(page_no)
    after each page but the last)."""
    got, token, page = [], None, 0
    while True:
        p = dict(params or {}, limit=limit)
        if token is not None:
            p["page_token"] = token
        r = crud.c.get(U, params=p)
        assert r.status == 200, r
        assert len(r.json["results"]) <= limit
        got += [e["originator"]["id"] for e in r.json["results"]]
        token = r.json["next_page_token"]
        if token is None:
            return got
        assert page < 100, "the walk does not end"
        page += 1
        if between:
            between(page)


def test_list_walk_returns_each_live_document_once(crud):
    ids = [crud.create("User", {"i": i}) for i in range(20)]
    for i in (0, 4, 5, 11, 19):
        assert crud.c.delete(f"{U}/{ids[i]}").status == 200
    live = [x for i, x in enumerate(ids) if i not in (0, 4, 5, 11, 19)]
    assert walk(crud, 3) == live
    assert walk(crud, 3, params={"skip_payload": "true"}) == live
    assert walk(crud, 1) == live
    assert walk(crud, 15) == live


def test_list_walk_while_documents_change(crud):
    ids = [crud.create("User", {"i": i}) for i in range(20)]
    deleted = set()
    created = []

    def between(page):
        if page == 1:
            # the last document of the page just read, and one further on
            for x in (ids[2], ids[10]):
                assert crud.c.delete(f"{U}/{x}").status == 200
                deleted.add(x)
        if page == 2:
            created.append(crud.create("User", {"late": True}))
        if page == 3:
            assert crud.c.patch(f"{U}/{ids[15]}", {"patched": 1}).status == 200

    got = walk(crud, 3, between)
    assert len(got) == len(set(got)), got                 # nothing twice
    assert ids[10] not in got                             # deleted before its page
    for x in ids:
        if x not in deleted:
            assert x in got, x                            # live throughout: returned
    assert [x for x in got if x in ids] == [x for x in ids if x in got]  # in order
    # a document created during the walk (after the cursor) may or may not be
    # seen; when it is, it comes last (creation order)
    if created[0] in got:
        assert got[-1] == created[0]


# --------------------------------------------------------------------------
# history

def test_history(crud):
    t0 = time.time()
    oid = crud.create("User", {"a": 1, "b": 2}, "hist")
    assert crud.c.put(f"{U}/hist", {"originator": {"version": 1},
                                    "payload": {"a": 1, "c": 3}}).status == 200
    assert crud.c.patch(f"{U}/hist", {"a": 5}).status == 200
    assert crud.c.delete(f"{U}/hist").status == 200
    r = crud.c.get(f"{U}/hist/history")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json")
    h = r.json
    assert h["entity_type"] == "User" and h["id"] == oid
    vs = h["versions"]
    assert [v["version"] for v in vs] == [1, 2, 3, 4]
    assert [v["event_type"] for v in vs] == ["User.Created", "User.Updated", "User.Updated",
                                             "User.Deleted"]
    assert [v["change"] for v in vs] == [{"a": 1, "b": 2}, {"b": None, "c": 3}, {"a": 5}, {}]
    evs = crud.events(oid)
    for v, e in zip(vs, evs):
        assert t0 - 5 <= ts_seconds(v["occurred_on"]) <= time.time() + 5
        assert v["occurred_on"] == e["occurred_on"]
        assert v["recorded_at"] == e["recorded_at"]
        assert v["change"] == e["payload"]
    assert [v["recorded_at"] for v in vs] == sorted(v["recorded_at"] for v in vs)
    ids = lambda r: [v["version"] for v in r.json["versions"]]  # noqa: E731
    assert ids(crud.c.get(f"{U}/hist/history", params={"from_version": 2})) == [2, 3, 4]
    assert ids(crud.c.get(f"{U}/hist/history", params={"limit": 2})) == [1, 2]
    assert ids(crud.c.get(f"{U}/hist/history", params={"from_version": 2, "limit": 1})) == [2]
    assert ids(crud.c.get(f"{U}/hist/history", params={"from_version": 4, "limit": 10})) == [4]
    r = crud.c.get(f"{U}/hist/history", params={"from_version": 5})
    assert r.status == 200 and r.json["versions"] == [], r
    # never existed; reading: of another entity type is "never existed" too
    assert_error(crud.c.get(f"{U}/nobody/history"), 404)
    assert_error(crud.c.get(f"/v1/entities/Order/{oid}/history"), 404)


# --------------------------------------------------------------------------
# reserved entity types

@pytest.mark.parametrize("etype", ["eskit.EntityType", "eskit.Thing", "eskit.a.b"])
def test_reserved_entity_types_refused(crud, etype):
    head = crud.head_id()
    base = f"/v1/entities/{etype}"
    assert_error(crud.c.post(base, {"payload": {}}), 400, "entity_type")
    assert_error(crud.c.post(base, {"payload": {}, "originator": {"id": "User"}}), 400,
                 "entity_type")
    assert_error(crud.c.get(base), 400, "entity_type")
    assert_error(crud.c.get(f"{base}/User"), 400, "entity_type")
    assert_error(crud.c.get(f"{base}/User/history"), 400, "entity_type")
    assert_error(crud.c.put(f"{base}/User", {"originator": {"version": 1}, "payload": {}}),
                 400, "entity_type")
    assert_error(crud.c.patch(f"{base}/User", {"a": 1}), 400, "entity_type")
    assert_error(crud.c.delete(f"{base}/User"), 400, "entity_type")
    assert crud.head_id() == head


# --------------------------------------------------------------------------
# events of other names in a document's stream

def test_events_of_other_names_are_skipped(crud):
    """Reading of "the version of the document returned" (SPEC §4): versions
    are positions in the document's stream. An event of another name (here
    `User.Noted`, appended straight to the event store) does not change the
    document, but it takes a version: the latest read returns the stream's
    last version as the document's version (ETag), so a read-modify-write
    (PUT/PATCH/DELETE with that If-Match) succeeds and appends at the next
    position. `?version=N` returns the document after replaying events 1..N,
    with version N."""
    oid = crud.create("User", {"a": 1}, "foreign")
    crud.append(oid, "User.Noted", {"note": "not a CRUD event", "a": 999})
    r = crud.read("User", oid)
    entity_of(r, oid, 2, {"a": 1})
    entity_of(crud.read("User", oid, version=1), oid, 1, {"a": 1})
    entity_of(crud.read("User", oid, version=2), oid, 2, {"a": 1})
    assert_error(crud.read("User", oid, version=3), 404)
    # read-modify-write with the ETag just read
    w = crud.c.put(f"{U}/foreign", {"payload": {"a": 2}}, headers={"If-Match": r.header("ETag")})
    assert w.status == 200, w
    assert w.json["originator"] == {"id": oid, "version": 3}
    evs = crud.events(oid)
    assert [e["event_type"] for e in evs] == ["User.Created", "User.Noted", "User.Updated"]
    assert evs[2]["payload"] == {"a": 2}
    entity_of(crud.read("User", oid), oid, 3, {"a": 2})
    # another foreign event after the update
    crud.append(oid, "User.Audited", {"a": None})
    entity_of(crud.read("User", oid), oid, 4, {"a": 2})
    r = crud.c.patch(f"{U}/foreign", {"b": 1}, headers={"If-Match": '"4"'})
    entity_of(r, oid, 5, {"a": 2, "b": 1})
    for v, d in [(1, {"a": 1}), (2, {"a": 1}), (3, {"a": 2}), (4, {"a": 2}),
                 (5, {"a": 2, "b": 1})]:
        entity_of(crud.read("User", oid, version=v), oid, v, d)
    # the document is listed once, at its last version
    lst = crud.c.get(U).json["results"]
    assert [(e["originator"], e["payload"]) for e in lst] == [
        ({"id": oid, "version": 5}, {"a": 2, "b": 1})]
    # history holds the CRUD events with their stream versions (whether it
    # also lists the skipped events is not asserted)
    hist = {v["version"]: v for v in crud.c.get(f"{U}/foreign/history").json["versions"]}
    assert hist[1]["event_type"] == "User.Created" and hist[1]["change"] == {"a": 1}
    assert hist[3]["event_type"] == "User.Updated" and hist[3]["change"] == {"a": 2}
    assert hist[5]["event_type"] == "User.Updated" and hist[5]["change"] == {"b": 1}
    # a delete with the current ETag works, and replay agrees throughout
    d = crud.c.delete(f"{U}/foreign", headers={"If-Match": '"5"'})
    assert d.status == 200 and d.json["originator"] == {"id": oid, "version": 6}, d
    assert_error(crud.read("User", oid), 404)
    assert replay(crud.events(oid), "User") is None


def test_documents_written_straight_to_the_event_store(crud):
    """A document of type T with id I is the stream I of T.Created/Updated/
    Deleted events, whoever wrote them: events appended to the event store
    directly are read, listed and updated through the CRUD store."""
    crud.append("direct", "User.Created", {"d": 1, "x": {"y": 1}})
    crud.append("direct", "User.Updated", {"x": {"y": None, "z": 2}})
    entity_of(crud.read("User", "direct"), "direct", 2, {"d": 1, "x": {"z": 2}})
    entity_of(crud.read("User", "direct", version=1), "direct", 1, {"d": 1, "x": {"y": 1}})
    assert [e["originator"]["id"] for e in crud.c.get(U).json["results"]] == ["direct"]
    r = crud.c.patch(f"{U}/direct", {"d": None}, headers={"If-Match": '"2"'})
    entity_of(r, "direct", 3, {"x": {"z": 2}})
    crud.append("direct", "User.Deleted", {})
    assert_error(crud.read("User", "direct"), 404)
    assert crud.c.get(U).json["results"] == []


def test_list_with_and_without_payload_is_the_same_set(crud):
    """skip_payload only leaves out the payload (SPEC §4): a list with it holds
    the same live documents, at the same versions, as the list without it,
    page by page. Deleted documents (also one whose Deleted event is followed
    by an event of another name) and foreign streams of the same entity type
    (events of other names only, appended straight to the event store) are in
    neither."""
    ids = [crud.create("User", {"i": i}, f"l{i}") for i in range(6)]
    for oid in ("l1", "l4"):
        assert crud.c.delete(f"{U}/{oid}").status == 200
    crud.append("l4", "User.Noted", {"after": "the delete"})
    crud.append("f1", "User.Happened", {"not": "a document"})
    crud.append("f2", "User.Noted", {})
    crud.append("f2", "User.Noted", {})
    crud.append("l5", "User.Noted", {"still": "live"})

    def walk(**params):
        seen, token = [], None
        while True:
            q = dict(params, limit=2)
            if token:
                q["page_token"] = token
            r = crud.c.get(U, params=q)
            assert r.status == 200, r
            seen += [(e["originator"]["id"], e["originator"]["version"], e["deleted"])
                     for e in r.json["results"]]
            token = r.json["next_page_token"]
            if not token:
                return seen

    live = [("l0", 1, False), ("l2", 1, False), ("l3", 1, False), ("l5", 2, False)]
    assert walk() == live
    assert walk(skip_payload="true") == live
    r = crud.c.get(U, params={"skip_payload": "true", "limit": 100})
    assert all("payload" not in e for e in r.json["results"]), r
    assert len(ids) == 6


def test_list_cost_does_not_grow_with_deleted_documents(crud):
    """SPEC §4: a page's cost follows its size, not the number of events or
    deleted documents in the store. 10,000 deleted documents (written straight
    to the event store) before 10 live ones: the first page of the live ones
    costs about what a page of a type without deleted documents costs."""
    n = 10000
    for start in range(0, n, 500):
        evs = []
        for i in range(start, start + 500):
            evs.append({"originator": {"id": f"gone{i}", "version": 1},
                        "event_type": "User.Created", "payload": {"i": i}})
            evs.append({"originator": {"id": f"gone{i}", "version": 2},
                        "event_type": "User.Deleted", "payload": {}})
        r = crud.e.post("/v1/events", {"events": evs})
        assert r.status == 201, r
    live = [crud.create("User", {"live": i}) for i in range(10)]
    fresh = [crud.create("Fresh", {"live": i}) for i in range(10)]

    def median_page(etype):
        times = []
        for _ in range(7):
            t = time.perf_counter()
            r = crud.c.get(f"/v1/entities/{etype}", params={"limit": 10})
            times.append(time.perf_counter() - t)
            assert r.status == 200, r
        return sorted(times)[len(times) // 2], r

    crowded, r = median_page("User")
    assert [e["originator"]["id"] for e in r.json["results"]] == live
    plain, r = median_page("Fresh")
    assert [e["originator"]["id"] for e in r.json["results"]] == fresh
    print(f"page of 10: {plain * 1000:.1f} ms; after {n} deleted: {crowded * 1000:.1f} ms")
    assert crowded <= 5 * plain + 0.03, (plain, crowded)


def test_create_at_the_default_body_limit(backend, services):
    """ESKIT_MAX_BODY_BYTES is the largest request body (default 1048576,
    SPEC §1): a create of exactly that many bytes is accepted and stored.
    The event the CRUD store appends for it is a little larger, so the event
    store runs with a larger limit, as the README and the deployment files
    say it should; with equal limits the CRUD store answers 413."""
    from crud_fixtures import start_crud_env
    crud = start_crud_env(backend, services,
                          es_extra_env={"ESKIT_MAX_BODY_BYTES": "2097152"})
    pre = b'{"originator":{"id":"max"},"payload":{"b":"'
    post = b'"}}'
    body = pre + b"x" * (1048576 - len(pre) - len(post)) + post
    assert len(body) == 1048576
    r = crud.c.post(U, raw=body)
    assert r.status == 201, r
    entity_of(crud.read("User", "max"), "max", 1, {"b": "x" * (1048576 - len(pre) - len(post))})
    assert crud.c.post(U, raw=body + b" ").status == 413
