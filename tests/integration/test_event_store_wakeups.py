"""Wake-ups of log readers (SPEC §3): a long poll (`GET /v1/logs?wait=`) and the
SSE stream (`GET /v1/logs/stream`) get a new entry within milliseconds of its
commit, not after a poll interval; also across two event-store processes on one
PostgreSQL database."""
import http.client
import json
import socket
import statistics
import threading
import time
import urllib.parse

from eskit import Client

PARK = 0.5      # time given to a reader to be parked in its wait before the append
MAX_DELAY = 0.5  # generous bound for one wake-up on a loaded 2-core machine


def ev(oid, etype="User.Created", payload=None):
    return {"originator": {"id": oid}, "event_type": etype,
            "payload": payload if payload is not None else {}}


def head(url):
    r = Client(url).get("/v1/logs", params={"size": 1})
    assert r.status == 200, r
    return r.json["head_id"]


def append(url, oid, etype="User.Created"):
    r = Client(url).post("/v1/events", ev(oid, etype))
    assert r.status == 201, r
    return r.json["log_id"]


class LongPoll(threading.Thread):
    """GET /v1/logs with wait=..., in the background; records when it answered."""

    def __init__(self, url, **params):
        super().__init__(daemon=True)
        self.url, self.params = url, params
        self.resp = self.error = self.t_done = None
        self.t_start = time.monotonic()

    def run(self):
        try:
            self.resp = Client(self.url, timeout=90).get("/v1/logs", params=self.params)
        except Exception as e:  # noqa: BLE001 - checked by the test
            self.error = e
        self.t_done = time.monotonic()


def wake_delay(reader_url, writer_url, oid):
    """Seconds from an append's 201 to the answer of a parked long poll."""
    h = head(reader_url)
    lp = LongPoll(reader_url, from_id=h + 1, wait=10)
    lp.start()
    time.sleep(PARK)
    assert lp.is_alive(), (f"long poll GET /v1/logs {lp.params} answered "
                           f"{lp.t_done - lp.t_start:.3f}s after it was sent, before any "
                           f"append: {lp.resp or lp.error}")
    log_id = append(writer_url, oid)
    t_ack = time.monotonic()
    lp.join(15)
    assert not lp.is_alive(), "long poll not woken by an append"
    assert lp.error is None, lp.error
    assert lp.resp.status == 200, lp.resp
    assert [x["id"] for x in lp.resp.json["results"]] == [log_id], (
        f"GET /v1/logs {lp.params} -> {lp.resp} {lp.t_done - t_ack:.3f}s after the 201 "
        f"of log_id {log_id}")
    assert lp.resp.json["next_from_id"] == log_id + 1
    return lp.t_done - t_ack


def test_long_poll_wakes_within_milliseconds(event_store):
    delays = [wake_delay(event_store.url, event_store.url, f"lp{i}") for i in range(5)]
    print("long-poll wake-up delays:", [f"{d * 1000:.1f}ms" for d in delays])
    assert max(delays) < MAX_DELAY, delays
    assert statistics.median(delays) < 0.2, delays


def test_long_poll_times_out_empty(event_store):
    c = event_store.client()
    append(event_store.url, "before")
    h = head(event_store.url)
    t0 = time.monotonic()
    r = c.get("/v1/logs", params={"from_id": h + 1, "wait": 2})
    elapsed = time.monotonic() - t0
    assert r.status == 200, r
    assert r.json["results"] == [] and r.json["next_from_id"] == h + 1, r
    assert r.json["head_id"] == h
    assert 1.8 <= elapsed < 5, elapsed
    # wait=0 (the default) answers at once
    t0 = time.monotonic()
    r = c.get("/v1/logs", params={"from_id": h + 1})
    assert r.status == 200 and r.json["results"] == []
    assert time.monotonic() - t0 < 1


def test_long_poll_waits_for_a_matching_entry(event_store):
    h = head(event_store.url)
    lp = LongPoll(event_store.url, from_id=h + 1, wait=10, selector="Order.*")
    lp.start()
    time.sleep(PARK)
    append(event_store.url, "u-nomatch", "User.Created")
    time.sleep(PARK)
    assert lp.is_alive(), f"long poll answered for a non-matching entry: {lp.resp}"
    log_id = append(event_store.url, "o-match", "Order.Created")
    t_ack = time.monotonic()
    lp.join(15)
    assert not lp.is_alive() and lp.error is None, lp.error
    assert lp.resp.status == 200, lp.resp
    assert [(x["id"], x["event"]["event_type"]) for x in lp.resp.json["results"]] == [
        (log_id, "Order.Created")], lp.resp
    assert lp.t_done - t_ack < MAX_DELAY


class Sse:
    """An SSE client on http.client, reading the response line by line."""

    def __init__(self, url, params=None, headers=None, timeout=20):
        u = urllib.parse.urlparse(url)
        path = "/v1/logs/stream"
        if params:
            path += "?" + urllib.parse.urlencode(params)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        self.conn.request("GET", path, headers=headers or {})
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        self.comments = []
        self.lines = []

    def readline(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no SSE line before the deadline")
        self.sock.settimeout(remaining)
        line = self.resp.readline()
        if not line:
            raise EOFError("SSE stream closed by the server")
        line = line.decode("utf-8").rstrip("\r\n")
        self.lines.append(line)
        return line

    def next_event(self, timeout=10):
        """The next event as {"id": str, "data": str}; comments are collected."""
        deadline = time.monotonic() + timeout
        fields = {}
        while True:
            line = self.readline(deadline)
            if line == "":
                if "data" in fields:
                    return fields
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data" and "data" in fields:
                fields["data"] += "\n" + value
            else:
                fields[name] = value

    def next_keepalive(self, timeout):
        """Waits for a `: keepalive` comment (other comments are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(deadline)
            if line.startswith(":"):
                self.comments.append(line)
                if line[1:].strip() == "keepalive":
                    return line

    def close(self):
        self.resp.close()
        self.conn.close()


def check_sse_event(e):
    data = json.loads(e["data"])
    assert set(data) == {"id", "event"}, data
    assert e["id"] == str(data["id"]), e
    return data


def test_sse_backlog_then_live(event_store):
    url = event_store.url
    ids = [append(url, f"s{i}", "User.Created") for i in range(3)]
    s = Sse(url, {"from_id": 1})
    try:
        assert s.resp.status == 200, s.resp.status
        assert s.resp.getheader("Content-Type", "").startswith("text/event-stream")
        got = [check_sse_event(s.next_event()) for _ in ids]
        assert [d["id"] for d in got] == ids
        assert [d["event"]["originator"]["id"] for d in got] == ["s0", "s1", "s2"]
        assert got[0]["event"]["event_type"] == "User.Created"
        for i in range(3):
            live = append(url, f"live{i}", "Order.Created")
            t_ack = time.monotonic()
            d = check_sse_event(s.next_event(timeout=10))
            delay = time.monotonic() - t_ack
            assert d["id"] == live and d["event"]["originator"]["id"] == f"live{i}"
            assert delay < MAX_DELAY, delay
    finally:
        s.close()


def test_sse_last_event_id_overrides_from_id(event_store):
    url = event_store.url
    ids = [append(url, f"l{i}") for i in range(4)]
    s = Sse(url, {"from_id": 1}, headers={"Last-Event-ID": str(ids[1])})
    try:
        assert s.resp.status == 200
        got = [check_sse_event(s.next_event())["id"] for _ in range(2)]
        assert got == ids[2:]
    finally:
        s.close()


def test_sse_filters(event_store):
    url = event_store.url
    append(url, "f-u1", "User.Created")
    o1 = append(url, "f-o1", "Order.Created")
    append(url, "f-o1", "Order.Paid")
    s = Sse(url, {"selector": "*.Created", "pipeline_id": "Order"})
    try:
        assert s.resp.status == 200
        assert check_sse_event(s.next_event())["id"] == o1
        # live: non-matching entries are skipped
        append(url, "f-u2", "User.Created")
        append(url, "f-o1", "Order.Shipped")
        o2 = append(url, "f-o2", "Order.Created")
        d = check_sse_event(s.next_event())
        assert (d["id"], d["event"]["event_type"]) == (o2, "Order.Created")
    finally:
        s.close()
    r = Client(url).get("/v1/logs/stream", params={"selector": "User"})
    assert r.status == 400 and r.json["error"]["code"] == "invalid_argument", r


def raw_exchange(url, request, timeout=3.0):
    """Sends raw request bytes on a new connection and returns every byte the
    server sends until it closes the connection or `timeout` passes."""
    u = urllib.parse.urlparse(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    out = b""
    try:
        sock.sendall(request)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
    finally:
        sock.close()
    return out


def test_sse_head_sends_the_headers_alone(event_store):
    """HEAD is served wherever GET is (README), and an answer to a HEAD has no
    body (RFC 9110 9.3.2): HEAD /v1/logs/stream sends the stream's status and
    headers and nothing after them (not even a chunked body's last chunk,
    which a keep-alive client would read as the start of the next answer),
    and never waits for entries. A malformed HEAD gets its 400 without a
    body too."""
    append(event_store.url, "h1")
    t0 = time.monotonic()
    got = raw_exchange(event_store.url,
                       b"HEAD /v1/logs/stream?from_id=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    head_part, sep, body = got.partition(b"\r\n\r\n")
    assert sep, got
    assert head_part.startswith(b"HTTP/1.1 200"), got
    assert b"content-type: text/event-stream" in head_part.lower(), got
    assert body == b"", got
    assert b"transfer-encoding: chunked" not in head_part.lower(), got
    assert time.monotonic() - t0 < 2.5, "the HEAD waited for its connection to time out"
    got = raw_exchange(event_store.url,
                       b"HEAD /v1/logs/stream?from_id=abc HTTP/1.1\r\nHost: x\r\n"
                       b"Connection: close\r\n\r\n")
    head_part, sep, body = got.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 400") and body == b"", got
    # the GET still streams
    s = Sse(event_store.url, {"from_id": 1})
    try:
        assert s.resp.status == 200
        e = check_sse_event(s.next_event())
        assert e["event"]["originator"]["id"] == "h1", e
    finally:
        s.close()


def test_sse_keepalive_when_idle(event_store):
    s = Sse(event_store.url, {"from_id": head(event_store.url) + 1})
    try:
        assert s.resp.status == 200
        t0 = time.monotonic()
        try:
            s.next_keepalive(timeout=16)
        except TimeoutError:
            raise AssertionError(f"no ': keepalive' comment in 16 s of an idle stream; "
                                 f"lines read: {s.lines}") from None
        print(f"keepalive after {time.monotonic() - t0:.1f}s; comments {s.comments}")
    finally:
        s.close()


def test_replica_wakes_long_poll_and_sse_on_postgres(pg, services):
    """A reader on process B is woken by an append through process A
    (PostgreSQL LISTEN/NOTIFY, not a poll interval)."""
    url = pg.new_database()
    a = services("event-store", {"ESKIT_DATABASE_URL": url})
    b = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert a.wait_ready(), a.log()
    assert b.wait_ready(), b.log()
    delays = [wake_delay(b.url, a.url, f"rep{i}") for i in range(5)]
    delays += [wake_delay(a.url, b.url, f"rev{i}") for i in range(2)]
    print("cross-replica long-poll delays:", [f"{d * 1000:.1f}ms" for d in delays])
    assert max(delays) < MAX_DELAY, (delays, b.log()[-2000:])
    assert statistics.median(delays) < 0.2, delays

    s = Sse(b.url, {"from_id": head(b.url) + 1})
    try:
        assert s.resp.status == 200
        time.sleep(PARK)
        for i in range(3):
            lid = append(a.url, f"sse-rep{i}")
            t_ack = time.monotonic()
            d = check_sse_event(s.next_event())
            delay = time.monotonic() - t_ack
            assert d["id"] == lid, d
            assert delay < MAX_DELAY, (delay, b.log()[-2000:])
    finally:
        s.close()
