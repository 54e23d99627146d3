"""Regression tests for defects found in review of the event store and the
common modules (one test per finding; see the comment of each)."""
import os
import shutil
import socket
import sqlite3
import tempfile
import time

import pytest


def ev(oid, event_type="Doc.Created", payload=None, version=None):
    e = {"originator": {"id": oid}, "event_type": event_type,
         "payload": {} if payload is None else payload}
    if version is not None:
        e["originator"]["version"] = version
    return e


def test_sqlite_locked_by_another_process_gives_503_not_a_hang(services):
    """db_sqlite.c: BEGIN IMMEDIATE went through a retry loop of 500 tries
    on top of the 5 s busy_timeout, so an append against a database whose
    write lock another process holds hung for ~40 minutes (and so did
    SIGTERM) instead of failing with 503 after about 5 s."""
    tmp = tempfile.mkdtemp(prefix="eskit-rev-")
    try:
        path = os.path.join(tmp, "es.db")
        s = services("event-store", {"ESKIT_DATABASE_URL": f"sqlite:{path}"})
        assert s.wait_ready(), s.log()
        c = s.client(timeout=60)
        assert c.post("/v1/events", ev("a")).status == 201
        other = sqlite3.connect(path, isolation_level=None, timeout=1)
        other.execute("BEGIN IMMEDIATE")
        try:
            t0 = time.monotonic()
            r = c.post("/v1/events", ev("b"))
            took = time.monotonic() - t0
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert r.status == 503, r
        assert r.json["error"]["code"] == "unavailable"
        assert took < 15, took
        # nothing was written, and the store recovers by itself
        assert c.get("/v1/events/b").json == {"events": []}
        deadline = time.monotonic() + 10
        while (r := c.post("/v1/events", ev("b"))).status == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert r.status == 201, r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sse_read(port, path, want, timeout=60):
    """Reads an SSE response until `want` (bytes) appears or the server
    closes; returns everything read."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
                     .encode())
        data = bytearray()
        deadline = time.monotonic() + timeout
        while want not in data and time.monotonic() < deadline:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
            if data.endswith(b"\r\n0\r\n\r\n"):  # the last chunk: the stream ended
                break
        return bytes(data)
    finally:
        sock.close()


def test_sse_backlog_larger_than_its_buffer_still_streams(services):
    """es_http_logs.c: one SSE fetch renders up to 200 entries into a buffer
    capped at 64 MiB; when they did not fit, the stream ended before sending
    anything, and a reconnecting client (Last-Event-ID) hit the same wall
    for ever."""
    tmp = tempfile.mkdtemp(prefix="eskit-rev-")
    try:
        s = services("event-store", {"ESKIT_DATABASE_URL": f"sqlite:{tmp}/es.db",
                                     "ESKIT_MAX_BODY_BYTES": str(16 << 20)})
        assert s.wait_ready(), s.log()
        c = s.client(timeout=120)
        big = "x" * (14 << 20)
        for i in range(5):
            r = c.post("/v1/events", ev(f"big{i}", payload=big))
            assert r.status == 201, r
        data = _sse_read(s.port, "/v1/logs/stream?from_id=1", b"\nid: 5\n", timeout=120)
        assert b"\nid: 1\n" in data, data[:300]
        assert b"\nid: 5\n" in data, data[:300]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_exclude_deleted_is_case_sensitive_on_both_back_ends(event_store):
    """es_store.c / schema: the live-streams filter is `NOT LIKE '%.Deleted'`;
    LIKE is case-insensitive in SQLite and case-sensitive in PostgreSQL, so
    on SQLite a stream whose last event is `Doc.deleted` (a different event
    name) was left out of exclude_deleted=true pages."""
    c = event_store.client()
    assert c.post("/v1/events", ev("d1")).status == 201
    assert c.post("/v1/events", ev("d1", "Doc.deleted")).status == 201
    assert c.post("/v1/events", ev("d2")).status == 201
    assert c.post("/v1/events", ev("d3")).status == 201
    assert c.post("/v1/events", ev("d3", "Doc.Deleted")).status == 201
    r = c.get("/v1/streams", params={"entity_type": "Doc", "exclude_deleted": "true"})
    assert r.status == 200, r
    assert [x["id"] for x in r.json["streams"]] == ["d1", "d2"]
    r = c.get("/v1/streams", params={"entity_type": "Doc"})
    assert [x["id"] for x in r.json["streams"]] == ["d1", "d2", "d3"]


def test_request_methods_do_not_grow_the_metric_labels(event_store):
    """http_server.c: the method label of eskit_http_requests_total was the
    client's method string verbatim, so every made-up method (`BREW1`,
    `BREW2`, ...) added a series for the life of the process: unbounded
    memory, and /metrics fails for good once its text passes 64 MiB."""
    c = event_store.client()
    for i in range(3):
        r = c.request(f"BREW{i}", "/v1/events")
        assert r.status == 405, r
    text = c.get("/metrics").body
    assert 'method="BREW' not in text
    assert 'method="other",route="other",code="405"' in text
