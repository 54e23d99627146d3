"""Optimistic concurrency of the CRUD store (SPEC §4 PUT), on both back ends:
16 clients each do read-modify-PUT on one document until 20 of their PUTs
have succeeded, retrying on 409. No update may be lost or written twice: the
final version is 1 + the successful PUTs, every client's counter is 20, each
Updated event holds just the one counter that changed, and the document
equals a replay of its stream (RFC 7386 applied in Python). The same with
two CRUD store replicas on one event store."""
import random
import threading
import time

import pytest

from eskit import Client

from crud_fixtures import etag_version, merge_patch, replay


@pytest.fixture
def crud(crud_store):
    """The conftest's crud_store (an event store and a CRUD store, per back end)."""
    return crud_store


CLIENTS = 16
ROUNDS = 20
DEADLINE = 90          # seconds for the whole run; a hang fails rather than blocks


def test_concurrent_read_modify_put(crud):
    run(crud, [crud.crud.url], CLIENTS, ROUNDS)


def test_concurrent_read_modify_put_over_two_replicas(crud, services):
    """Two CRUD stores on one event store (replicas behind a load balancer):
    each client reads from one and writes to the other, alternately. A read
    after an acknowledged write through the other replica sees it; no
    update is lost."""
    other = services("crud-store", {"ESKIT_EVENT_STORE_URL": crud.es.url})
    assert other.wait_ready(), other.log()
    run(crud, [crud.crud.url, other.url], 8, 15)


def run(crud, urls, clients, rounds):
    base = {"title": "shared", "counters": {}, "tags": ["x"]}
    oid = crud.create("Counter", base, "shared")
    path = f"/v1/entities/Counter/{oid}"
    stop_at = time.time() + DEADLINE
    successes = [0] * clients
    conflicts = [0] * clients
    errors = []
    start = threading.Barrier(clients)

    def worker(i):
        cs = [Client(u, timeout=30) for u in urls]
        rnd = random.Random(i)
        key = f"c{i:02d}"
        n = 0
        try:
            start.wait()
            while successes[i] < rounds and time.time() < stop_at:
                n += 1
                c = cs[n % len(cs)]
                g = c.get(path, keep=True)
                if g.status != 200:
                    errors.append(f"client {i}: GET -> {g!r}")
                    return
                v = etag_version(g)
                if g.json["originator"]["version"] != v:
                    errors.append(f"client {i}: ETag {v} but body {g.json['originator']}")
                    return
                doc = g.json["payload"]
                if doc["counters"].get(key, 0) != successes[i]:
                    errors.append(f"client {i}: read counter {doc['counters'].get(key)} "
                                  f"after {successes[i]} successful PUTs (lost update)")
                    return
                new = merge_patch(doc, {"counters": {key: successes[i] + 1}})
                c = cs[(n + 1) % len(cs)]
                # half the writes name the version in the body, half in If-Match
                if rnd.random() < 0.5:
                    r = c.put(path, {"originator": {"version": v}, "payload": new}, keep=True)
                else:
                    r = c.put(path, {"payload": new}, headers={"If-Match": f'"{v}"'},
                              keep=True)
                if r.status == 200:
                    if r.json["originator"] != {"id": oid, "version": v + 1}:
                        errors.append(f"client {i}: PUT at {v} answered {r.json}")
                        return
                    successes[i] += 1
                elif r.status == 409:
                    if (r.json or {}).get("error", {}).get("code") != "conflict":
                        errors.append(f"client {i}: 409 body {r.body[:200]}")
                        return
                    conflicts[i] += 1
                    time.sleep(rnd.random() * 0.002)      # a little jitter
                else:
                    errors.append(f"client {i}: PUT -> {r!r}")
                    return
        except Exception as exc:  # noqa: BLE001
            errors.append(f"client {i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE + 40)
    elapsed = time.time() - t0
    assert not errors, "\n".join(errors[:20])
    assert successes == [rounds] * clients, (successes, f"{elapsed:.1f}s")
    total = sum(successes)

    r = crud.read("Counter", oid)
    assert r.status == 200, r
    assert r.json["originator"]["version"] == 1 + total
    assert etag_version(r) == 1 + total
    doc = r.json["payload"]
    assert doc == {"title": "shared", "tags": ["x"],
                   "counters": {f"c{i:02d}": rounds for i in range(clients)}}, doc

    evs = crud.events(oid)
    assert [e["originator"]["version"] for e in evs] == list(range(1, total + 2))
    assert evs[0]["event_type"] == "Counter.Created" and evs[0]["payload"] == base
    seen = {}
    for e in evs[1:]:
        assert e["event_type"] == "Counter.Updated", e
        # each PUT changed one counter by one: that alone is the patch
        p = e["payload"]
        assert list(p) == ["counters"] and len(p["counters"]) == 1, p
        (key, val), = p["counters"].items()
        assert val == seen.get(key, 0) + 1, (e, seen.get(key))
        seen[key] = val
    assert replay(evs, "Counter") == doc
    # the history agrees, and every version reads as the replay up to it
    versions = []
    while True:
        h = crud.c.get(f"{path}/history", params={"from_version": len(versions) + 1,
                                                 "limit": 100})
        assert h.status == 200, h
        if not h.json["versions"]:
            break
        versions += h.json["versions"]
    assert [v["version"] for v in versions] == list(range(1, total + 2))
    assert [v["change"] for v in versions] == [e["payload"] for e in evs]
    for v in (1, 2, total // 2, total + 1):
        g = crud.read("Counter", oid, version=v)
        assert g.status == 200 and g.json["payload"] == replay(evs[:v], "Counter"), (v, g)
    print(f"{clients}x{rounds} PUTs over {len(urls)} replica(s), {sum(conflicts)} conflicts, "
          f"{elapsed:.1f}s")


PATCHERS = 16
PATCHES = 10


def test_concurrent_patches_without_if_match_all_apply(crud):
    """PATCH without If-Match applies to the latest version (SPEC §4): 16
    clients each send 10 patches adding a member of their own to one
    document, all at once. The CRUD store retries a lost race itself, so
    every patch answers 200 (never a 409 naming a version the client did not
    send), and the document ends at version 161 holding all 160 members."""
    oid = crud.create("Member", {"members": {}}, "club")
    path = f"/v1/entities/Member/{oid}"
    answers = []
    start = threading.Barrier(PATCHERS)

    def patcher(i):
        c = Client(crud.crud.url, timeout=60)
        start.wait()
        for k in range(PATCHES):
            r = c.patch(path, {"members": {f"m{i:02d}-{k}": True}}, keep=True)
            answers.append((i, k, r.status, r.body[:200]))

    threads = [threading.Thread(target=patcher, args=(i,)) for i in range(PATCHERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    bad = [a for a in answers if a[2] != 200]
    assert len(answers) == PATCHERS * PATCHES and not bad, (
        f"{len(bad)} of {len(answers)} patches failed: {bad[:5]}")
    r = crud.read("Member", oid)
    assert r.status == 200, r
    assert r.json["originator"]["version"] == 1 + PATCHERS * PATCHES
    want = {f"m{i:02d}-{k}": True for i in range(PATCHERS) for k in range(PATCHES)}
    assert r.json["payload"] == {"members": want}
    evs = crud.events(oid)
    assert len(evs) == 1 + PATCHERS * PATCHES
    assert replay(evs, "Member") == r.json["payload"]


def test_delete_without_if_match_wins_over_concurrent_patches(crud):
    """A DELETE without If-Match racing with patches is retried like them:
    it answers 200 (never 409), and after it the document reads as deleted
    with every earlier patch in its last state."""
    oid = crud.create("Member", {"members": {}}, "doomed")
    path = f"/v1/entities/Member/{oid}"
    stop = threading.Event()
    errors = []

    def patcher(i):
        c = Client(crud.crud.url, timeout=60)
        k = 0
        while not stop.is_set():
            r = c.patch(path, {"members": {f"m{i:02d}-{k}": True}}, keep=True)
            k += 1
            if r.status == 404:
                return  # deleted meanwhile
            if r.status != 200:
                errors.append((i, r.status, r.body[:200]))

    threads = [threading.Thread(target=patcher, args=(i,)) for i in range(PATCHERS)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    d = crud.c.delete(path)
    stop.set()
    for t in threads:
        t.join(DEADLINE)
    assert d.status == 200, d
    assert not errors, errors[:5]
    r = crud.read("Member", oid, deleted="true")
    assert r.status == 200 and r.json["deleted"] is True, r
    assert r.json["originator"]["version"] == d.json["originator"]["version"]
