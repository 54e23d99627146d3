"""The consumer store (SPEC §5), black-box, on both back ends: offsets per
consumer, compare-and-set under concurrency, malformed requests, restarts,
kill -9 durability and the Prometheus exposition."""
import calendar
import os
import re
import subprocess
import tempfile
import threading
import time

import pytest

from eskit import BIN_DIR, Client, free_port

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def consumer_store(backend, services):
    s = services("consumer-store", {"ESKIT_DATABASE_URL": backend()})
    assert s.wait_ready(), s.log()
    return s


def ts_seconds(ts):
    assert TS.match(ts), ts
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000


def assert_error(r, status, code, mentions=None):
    assert r.status == status, r
    assert r.header("Content-Type").startswith("application/json"), r.headers
    assert r.json["error"]["code"] == code, r
    if mentions:
        assert mentions in r.json["error"]["message"], r


def test_help_lists_variables():
    binary = os.path.join(BIN_DIR, "eskit-consumer-store")
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out
    for var in ("ESKIT_DATABASE_URL", "ESKIT_LISTEN", "ESKIT_DB_POOL_SIZE", "ESKIT_API_TOKEN",
                "ESKIT_MAX_BODY_BYTES", "ESKIT_LOG_FORMAT"):
        assert var in out.stdout
    assert "127.0.0.1:8082" in out.stdout
    assert "sqlite:data/consumer-store.db" in out.stdout


def test_put_get_list_delete(consumer_store):
    c = consumer_store.client()
    assert c.get("/v1/consumers").json == {"consumers": []}
    before = time.time()
    r = c.put("/v1/consumers/metrics-consumer", {"offset": 42})
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json")
    assert r.json["consumer_id"] == "metrics-consumer" and r.json["offset"] == 42
    assert set(r.json) == {"consumer_id", "offset", "updated_at"}
    assert before - 5 <= ts_seconds(r.json["updated_at"]) <= time.time() + 5
    g = c.get("/v1/consumers/metrics-consumer")
    assert g.status == 200 and g.json == r.json

    # without expected_offset a PUT always writes, backwards and to 0 too
    time.sleep(0.01)
    r2 = c.put("/v1/consumers/metrics-consumer", {"offset": 7})
    assert r2.status == 200 and r2.json["offset"] == 7
    assert r2.json["updated_at"] > r.json["updated_at"]
    assert c.put("/v1/consumers/metrics-consumer", {"offset": 0}).json["offset"] == 0
    big = 2 ** 63 - 1
    assert c.put("/v1/consumers/metrics-consumer", {"offset": big}).json["offset"] == big
    assert c.get("/v1/consumers/metrics-consumer").json["offset"] == big

    # every id character class; the list is ordered by id (byte order)
    ids = ["b", "a", "Zed", "a.b", "x_y", "u:1@host", "a-1", "9", "z" * 128]
    for i, cid in enumerate(ids):
        assert c.put(f"/v1/consumers/{cid}", {"offset": i}).status == 200
    listed = c.get("/v1/consumers").json["consumers"]
    names = [x["consumer_id"] for x in listed]
    assert names == sorted(ids + ["metrics-consumer"])
    assert {x["consumer_id"]: x["offset"] for x in listed}["a.b"] == 3
    for x in listed:
        assert set(x) == {"consumer_id", "offset", "updated_at"} and TS.match(x["updated_at"])

    r = c.delete("/v1/consumers/a")
    assert r.status == 204 and r.body == ""
    assert_error(c.delete("/v1/consumers/a"), 404, "not_found")
    assert_error(c.get("/v1/consumers/a"), 404, "not_found")
    assert_error(c.get("/v1/consumers/never"), 404, "not_found")
    assert "a" not in [x["consumer_id"] for x in c.get("/v1/consumers").json["consumers"]]
    # a deleted consumer starts again from scratch (counts as 0)
    assert c.put("/v1/consumers/a", {"offset": 3, "expected_offset": 0}).status == 200


def test_compare_and_set(consumer_store):
    c = consumer_store.client()
    assert c.put("/v1/consumers/c1", {"offset": 10}).status == 200
    r = c.put("/v1/consumers/c1", {"offset": 20, "expected_offset": 10})
    assert r.status == 200 and r.json["offset"] == 20, r
    stored = c.get("/v1/consumers/c1").json
    for expected in (10, 0, 21, 19):
        r = c.put("/v1/consumers/c1", {"offset": 30, "expected_offset": expected})
        assert_error(r, 409, "conflict")
        assert r.json["error"]["details"]["current_offset"] == 20
    # a failed CAS changes nothing, not even updated_at
    assert c.get("/v1/consumers/c1").json == stored
    # CAS may also move backwards or stay put: it only compares
    assert c.put("/v1/consumers/c1", {"offset": 5, "expected_offset": 20}).json["offset"] == 5
    assert c.put("/v1/consumers/c1", {"offset": 5, "expected_offset": 5}).json["offset"] == 5
    # expected_offset: null is the same as absent
    assert c.put("/v1/consumers/c1", {"offset": 6, "expected_offset": None}).status == 200


def test_expected_offset_on_a_missing_consumer(consumer_store):
    c = consumer_store.client()
    r = c.put("/v1/consumers/new1", {"offset": 5, "expected_offset": 5})
    assert_error(r, 409, "conflict")
    assert r.json["error"]["details"] == {"current_offset": 0}
    assert_error(c.get("/v1/consumers/new1"), 404, "not_found")  # nothing inserted
    assert c.get("/v1/consumers").json == {"consumers": []}
    r = c.put("/v1/consumers/new1", {"offset": 5, "expected_offset": 0})
    assert r.status == 200 and r.json["offset"] == 5, r
    r = c.put("/v1/consumers/new1", {"offset": 9, "expected_offset": 0})
    assert_error(r, 409, "conflict")
    assert r.json["error"]["details"]["current_offset"] == 5
    # a stored consumer at 0 matches expected 0 as well
    assert c.put("/v1/consumers/new2", {"offset": 0}).status == 200
    assert c.put("/v1/consumers/new2", {"offset": 1, "expected_offset": 0}).status == 200
    assert c.get("/v1/consumers/new2").json["offset"] == 1


def race(n, fn):
    """Runs fn(i) in n threads released together; returns their results."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def go(i):
        barrier.wait()
        results[i] = fn(i)

    ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return results


def test_concurrent_cas_exactly_one_wins(consumer_store):
    c = consumer_store.client()
    for round_ in range(6):
        cid = f"race{round_}"
        # even rounds: a missing consumer (expected 0); odd rounds: a stored one
        expected = 0 if round_ % 2 == 0 else 100
        if expected:
            assert c.put(f"/v1/consumers/{cid}", {"offset": expected}).status == 200

        def attempt(i):
            return c.put(f"/v1/consumers/{cid}",
                         {"offset": 1000 + i, "expected_offset": expected})

        results = race(16, attempt)
        statuses = sorted(r.status for r in results)
        assert statuses == [200] + [409] * 15, [(r.status, r.body) for r in results]
        winner = next(i for i, r in enumerate(results) if r.status == 200)
        for r in results:
            if r.status == 409:
                assert r.json["error"]["details"]["current_offset"] == 1000 + winner
        assert c.get(f"/v1/consumers/{cid}").json["offset"] == 1000 + winner


def test_offsets_never_move_backwards(consumer_store):
    c = consumer_store.client()
    assert c.put("/v1/consumers/loop", {"offset": 0}).status == 200
    done = threading.Event()
    seen, errors = [], []

    def watcher():
        while not done.is_set():
            r = c.get("/v1/consumers/loop")
            if r.status != 200:
                errors.append(r)
                return
            seen.append(r.json["offset"])

    def worker(i):
        wins = 0
        for _ in range(25):
            cur = c.get("/v1/consumers/loop").json["offset"]
            r = c.put("/v1/consumers/loop", {"offset": cur + 1, "expected_offset": cur})
            if r.status == 200:
                wins += 1
                assert r.json["offset"] == cur + 1
            elif r.status == 409:
                assert r.json["error"]["details"]["current_offset"] >= cur
            else:
                errors.append(r)
        return wins

    w = threading.Thread(target=watcher)
    w.start()
    try:
        wins = race(8, worker)
    finally:
        done.set()
        w.join()
    assert not errors, errors
    assert seen == sorted(seen), "an offset moved backwards"
    final = c.get("/v1/consumers/loop").json["offset"]
    # every successful CAS advanced by exactly one: no lost or double update
    assert final == sum(wins) and final >= 25


def test_malformed_requests(consumer_store):
    c = consumer_store.client()
    assert c.put("/v1/consumers/m", {"offset": 3}).status == 200
    stored = c.get("/v1/consumers/m").json
    json_ct = {"Content-Type": "application/json"}
    cases = [
        # (raw body, content type, mention)
        ("{", json_ct, "JSON"),
        ("", json_ct, "empty"),
        ('{"offset": 1,}', json_ct, "JSON"),
        ('{"offset": "1"}', json_ct, "offset"),
        ('{"offset": -1}', json_ct, "offset"),
        ('{"offset": 1.5}', json_ct, "offset"),
        ('{"offset": 1e3}', json_ct, "offset"),
        ('{"offset": true}', json_ct, "offset"),
        ('{"offset": [1]}', json_ct, "offset"),
        ('{"offset": 9223372036854775808}', json_ct, None),  # 2^63: refused, not clamped
        ('{"offset": -9223372036854775809}', json_ct, None),
        ("{}", json_ct, "offset"),
        ('{"offset": null}', json_ct, "offset"),
        ('{"expected_offset": 3}', json_ct, "offset"),
        ("[1]", json_ct, "offset"),
        ("5", json_ct, "offset"),
        ('"x"', json_ct, "offset"),
        ('{"offset": 4, "expected_offset": "3"}', json_ct, "expected_offset"),
        ('{"offset": 4, "expected_offset": -1}', json_ct, "expected_offset"),
        ('{"offset": 4, "expected_offset": 2.5}', json_ct, "expected_offset"),
        ('{"offset": 4, "expected_offset": 9223372036854775808}', json_ct, None),
        (b'{"offset": 4, "x": "\xff"}', json_ct, None),  # invalid UTF-8
    ]
    for raw, headers, mention in cases:
        r = c.put("/v1/consumers/m", raw=raw, headers=headers)
        assert_error(r, 400, "invalid_argument", mention)

    # malformed ids, on every method
    bad_ids = ["bad%20id", "%C3%A9t%C3%A9", "a" * 129, "semi%3Bcolon", "q%22uote"]
    for bid in bad_ids:
        assert_error(c.put(f"/v1/consumers/{bid}", {"offset": 1}), 400, "invalid_argument",
                     "consumer_id")
        assert_error(c.get(f"/v1/consumers/{bid}"), 400, "invalid_argument", "consumer_id")
        assert_error(c.delete(f"/v1/consumers/{bid}"), 400, "invalid_argument", "consumer_id")
    assert c.put("/v1/consumers/" + "a" * 128, {"offset": 1}).status == 200
    assert c.delete("/v1/consumers/" + "a" * 128).status == 204
    # a path segment is decoded, then checked whole (issue 12): victim%00x is
    # not the consumer victim, victim%2Fx is not a path of two segments
    assert c.put("/v1/consumers/victim", {"offset": 7}).status == 200
    for bid in ("victim%00x", "victim%00", "%00", "victim%2Fx", "victim%ff"):
        assert_error(c.delete(f"/v1/consumers/{bid}"), 400, "invalid_argument",
                     "consumer_id")
        assert_error(c.put(f"/v1/consumers/{bid}", {"offset": 9}), 400, "invalid_argument",
                     "consumer_id")
        assert_error(c.get(f"/v1/consumers/{bid}"), 400, "invalid_argument", "consumer_id")
    assert c.get("/v1/consumers/victim").json["offset"] == 7
    assert c.delete("/v1/consumers/victim").status == 204
    # a query that is not UTF-8 text: 400 naming the parameter
    assert_error(c.get("/v1/consumers?x=%ff"), 400, "invalid_argument", "x")
    assert_error(c.get("/v1/consumers/m?y=%00"), 400, "invalid_argument", "y")

    # media types: clearly not JSON is 415; curl -d's form type is read as JSON
    for ct in ("text/xml", "application/xml", "multipart/form-data; boundary=x", "image/png"):
        r = c.put("/v1/consumers/m", raw='{"offset": 9}', headers={"Content-Type": ct})
        assert_error(r, 415, "unsupported_media_type")
    # too large
    r = c.put("/v1/consumers/m", raw='{"offset": 1, "pad": "' + "x" * (1 << 20) + '"}',
              headers=json_ct)
    assert_error(r, 413, "payload_too_large")
    # unknown methods and paths
    r = c.post("/v1/consumers/m", {"offset": 1})
    assert_error(r, 405, "method_not_allowed")
    allow = r.header("Allow")
    assert all(m in allow for m in ("GET", "PUT", "DELETE")), allow
    r = c.patch("/v1/consumers/m", {"offset": 1})
    assert_error(r, 405, "method_not_allowed")
    r = c.delete("/v1/consumers")
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.header("Allow")
    assert_error(c.get("/v1/consumer"), 404, "not_found")
    assert_error(c.get("/v1/consumers/m/extra"), 404, "not_found")
    assert_error(c.get("/v2/consumers"), 404, "not_found")

    # none of it changed anything
    assert c.get("/v1/consumers/m").json == stored
    assert [x["consumer_id"] for x in c.get("/v1/consumers").json["consumers"]] == ["m"]

    # accepted: curl -d's content type, no content type, unknown fields
    r = c.put("/v1/consumers/m", raw='{"offset": 11}',
              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200 and r.json["offset"] == 11, r
    assert c.put("/v1/consumers/m", raw='{"offset": 12}').json["offset"] == 12
    r = c.put("/v1/consumers/m", {"offset": 13, "note": "ignored", "expected_offset": 12})
    assert r.status == 200 and "note" not in r.json


def test_health_ready_and_token(backend, services):
    s = services("consumer-store", {"ESKIT_DATABASE_URL": backend(),
                                    "ESKIT_API_TOKEN": "s3cret"})
    assert s.wait_ready(), s.log()
    anon = s.client()
    assert anon.get("/healthz").json == {"status": "ok"}
    assert anon.get("/readyz").json == {"status": "ready"}
    assert anon.get("/metrics").status == 200
    r = anon.get("/v1/consumers")
    assert_error(r, 401, "unauthenticated")
    assert r.header("WWW-Authenticate").startswith("Bearer")
    assert_error(anon.put("/v1/consumers/x", {"offset": 1}), 401, "unauthenticated")
    assert_error(Client(s.url, token="wrong").get("/v1/consumers"), 401, "unauthenticated")
    c = s.client(token="s3cret")
    assert c.put("/v1/consumers/x", {"offset": 1}).status == 200
    assert c.get("/v1/consumers").json["consumers"][0]["consumer_id"] == "x"


def test_unavailable_database(services):
    """With its database down, the service still starts: /readyz and /v1 are 503."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=2"
    s = services("consumer-store", {"ESKIT_DATABASE_URL": url})
    c = s.client()
    assert c.get("/healthz").status == 200
    assert_error(c.get("/readyz"), 503, "unavailable")
    assert_error(c.get("/v1/consumers"), 503, "unavailable")
    assert_error(c.put("/v1/consumers/x", {"offset": 1}), 503, "unavailable")
    # validation still comes first
    assert_error(c.put("/v1/consumers/x", {"offset": -1}), 400, "invalid_argument")


def test_restart_keeps_data(backend, services):
    url = backend()
    s = services("consumer-store", {"ESKIT_DATABASE_URL": url})
    assert s.wait_ready(), s.log()
    c = s.client()
    assert c.put("/v1/consumers/keep", {"offset": 77}).status == 200
    assert c.put("/v1/consumers/gone", {"offset": 1}).status == 200
    assert c.delete("/v1/consumers/gone").status == 204
    before = c.get("/v1/consumers").json
    assert s.stop() == 0, s.log()
    # again, on the same database (and the migrations run again harmlessly)
    s2 = services("consumer-store", {"ESKIT_DATABASE_URL": url})
    assert s2.wait_ready(), s2.log()
    c2 = s2.client()
    assert c2.get("/v1/consumers").json == before
    assert c2.put("/v1/consumers/keep", {"offset": 78, "expected_offset": 77}).status == 200


def test_kill9_keeps_acknowledged_writes(backend, services):
    url = backend()
    s = services("consumer-store", {"ESKIT_DATABASE_URL": url})
    assert s.wait_ready(), s.log()
    c = s.client()
    acked = {}
    for i in range(20):
        r = c.put(f"/v1/consumers/k{i}", {"offset": i * 10})
        assert r.status == 200
        acked[f"k{i}"] = r.json
    r = c.put("/v1/consumers/k0", {"offset": 5, "expected_offset": 0})
    assert r.status == 200
    acked["k0"] = r.json
    s.kill9()
    s2 = services("consumer-store", {"ESKIT_DATABASE_URL": url})
    assert s2.wait_ready(), s2.log()
    got = {x["consumer_id"]: x for x in s2.client().get("/v1/consumers").json["consumers"]}
    assert got == acked


def test_metrics_pass_promtool(consumer_store):
    c = consumer_store.client()
    c.put("/v1/consumers/p", {"offset": 1})
    c.put("/v1/consumers/p", {"offset": 2, "expected_offset": 0})
    c.get("/v1/consumers/p")
    c.get("/v1/consumers")
    c.get("/v1/nowhere")
    r = c.get("/metrics")
    assert r.status == 200
    text = r.body
    for name in ("eskit_http_requests_total", "eskit_http_request_duration_seconds_bucket",
                 "process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_start_time_seconds", "process_open_fds",
                 "eskit_consumer_offset_writes_total", "eskit_consumers"):
        assert name in text, name
    assert 'route="/v1/consumers/{consumer_id}"' in text
    assert re.search(r'eskit_consumer_offset_writes_total\{result="conflict"\} 1\b', text)
    assert re.search(r"^eskit_consumers 1\b", text, re.M)
    with tempfile.NamedTemporaryFile("w", suffix=".prom", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        out = subprocess.run(["/usr/bin/promtool", "check", "metrics"], stdin=open(path),
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        os.unlink(path)
