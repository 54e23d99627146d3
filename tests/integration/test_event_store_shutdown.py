"""SIGTERM while clients keep appending on kept-alive connections (the event
store's event loops park appends while their group commits). The service
stops cleanly within its grace period, answers what it took (201) or turns
it away (503, or a closed connection), and every append it acknowledged is
there after a restart on the same database."""
import http.client
import json
import signal
import socket
import threading
import time

from eskit import Client

WRITERS = 16
GRACE = 10  # the event store's grace period for requests in flight (main.c)


class Writer(threading.Thread):
    """Appends to its own stream over one kept-alive connection until stopped
    or turned away; remembers the versions acknowledged."""

    def __init__(self, port, n):
        super().__init__(daemon=True)
        self.port, self.oid = port, f"shut-{n}"
        self.acked, self.statuses, self.stop = [], set(), False

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        body = json.dumps({"originator": {"id": self.oid}, "event_type": "T.Happened",
                           "payload": {"x": 1}})
        while not self.stop:
            try:
                conn.request("POST", "/v1/events", body,
                             {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                return  # the service closed the connection or is gone
            self.statuses.add(r.status)
            if r.status == 201:
                self.acked.append(json.loads(data)["event"]["originator"]["version"])
            elif r.status == 503:
                return
            else:
                raise AssertionError(f"{r.status} {data[:200]!r}")


def test_sigterm_under_append_load(backend, services):
    url = backend()
    es = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert es.wait_ready(), es.log()
    writers = [Writer(es.port, n) for n in range(WRITERS)]
    for w in writers:
        w.start()
    time.sleep(1.5)
    t0 = time.monotonic()
    rc = es.stop(timeout=GRACE + 15)
    took = time.monotonic() - t0
    for w in writers:
        w.stop = True
        w.join(10)
    assert rc == 0, f"exit code {rc} after {took:.1f}s:\n{es.log()}"
    assert took < GRACE + 5, f"stopping took {took:.1f}s"
    assert sum(len(w.acked) for w in writers) > 0

    again = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert again.wait_ready(), again.log()
    c = Client(again.url)
    for w in writers:
        r = c.get(f"/v1/events/{w.oid}")
        have = [e["originator"]["version"] for e in r.json["events"]] if r.status == 200 else []
        missing = set(w.acked) - set(have)
        assert not missing, f"{w.oid}: acknowledged versions {sorted(missing)} are missing"


def test_sigterm_with_a_stalled_upload(backend, services):
    """A request still sending its body holds nothing of the service: the
    event store stops at once, and cleanly, without waiting for it."""
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    assert es.wait_ready(), es.log()
    s = socket.create_connection(("127.0.0.1", es.port))
    s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100\r\n\r\n{\"ori")
    time.sleep(0.3)
    t0 = time.monotonic()
    rc = es.stop(timeout=GRACE + 15)
    took = time.monotonic() - t0
    s.close()
    assert rc == 0, es.log()
    assert took < 3, f"stopping took {took:.1f}s:\n{es.log()}"
    assert "still in flight" not in es.log()


def test_sigterm_with_an_sse_client_that_does_not_read(backend, services):
    """A stream whose client stops reading cannot end by itself: the event
    store gives it the grace period, then ends without waiting longer."""
    url = backend()
    es = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert es.wait_ready(), es.log()
    c = Client(es.url)
    big = "x" * 4000
    for n in range(40):
        r = c.post("/v1/events", {"events": [
            {"originator": {"id": f"sse-{n}-{i}"}, "event_type": "T.Big",
             "payload": {"b": big}} for i in range(50)]})
        assert r.status == 201, r
    s = socket.create_connection(("127.0.0.1", es.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /v1/logs/stream?from_id=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(1.0)  # the stream fills the socket buffers, then waits for room
    t0 = time.monotonic()
    es.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    # While it waits for the stream: no new connections (SPEC §1).
    assert es.proc.poll() is None
    try:
        got = Client(es.url, timeout=5).get("/healthz")
    except (OSError, http.client.HTTPException):
        got = None
    assert got is None, f"a new connection was served while stopping: {got}"
    rc = es.stop(timeout=GRACE + 15)
    took = time.monotonic() - t0
    s.close()
    assert rc == 0, es.log()
    assert took < GRACE + 5, f"stopping took {took:.1f}s"
    assert "still in flight" in es.log(), es.log()  # it did wait, then gave up
