"""A consumer that cannot advance says so (SPEC §6), black box, on both back
ends: the metrics consumer saves its offset through a small proxy in front
of the real consumer store, which the test makes refuse the saves. The lag
must keep following the head (never freeze, never read 0), errors must
count, the log must say which offset failed and why, and /readyz must turn
503 saying the consumer is stuck once it has been behind without progress
for ESKIT_CONSUMER_STUCK_SECONDS (shortened here); then recover. Also: the
metrics consumer reads the log without payloads (a proxy in front of the
event store sees its queries)."""
import http.client
import http.server
import json
import os
import threading

import pytest

from eskit import BIN_DIR, free_port
from test_metrics_consumer import (FakeCrud, caught_up, head_id, metric, parse_metrics,
                                   scrape, wait_until)

NAME = "metrics-consumer"

pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(BIN_DIR, "eskit-metrics-consumer")),
    reason="eskit-metrics-consumer is not built")


class RefusingProxy:
    """Forwards every request to `target`; while `refuse` is set, answers the
    saves (PUT /v1/consumers/...) with 500 instead. Counts refusals and
    remembers the paths it was asked."""

    def __init__(self, target):
        self.refuse = False
        self.refused = 0
        self.paths = []
        host, port = target.split("//")[1].split(":")
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, body, ctype="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(n) if n else None
                proxy.paths.append(self.path)
                if self.command == "PUT" and proxy.refuse:
                    proxy.refused += 1
                    self.answer(500, json.dumps({"error": {
                        "code": "internal", "message": "refused by the test",
                        "details": {}}}).encode())
                    return
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                try:
                    hdrs = {k: v for k, v in self.headers.items()
                            if k.lower() in ("authorization", "content-type")}
                    conn.request(self.command, self.path, body=data, headers=hdrs)
                    r = conn.getresponse()
                    self.answer(r.status, r.read(),
                                r.getheader("Content-Type") or "application/json")
                finally:
                    conn.close()

            do_GET = do_PUT = do_DELETE = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def append(es, n, tag):
    r = es.client().post("/v1/events", {"events": [
        {"originator": {"id": f"{tag}{i}"}, "event_type": "User.Created", "payload": {}}
        for i in range(n)]})
    assert r.status == 201, r


def gauges(mc):
    s = parse_metrics(scrape(mc))
    return (metric(s, "eskit_consumer_offset", consumer=NAME),
            metric(s, "eskit_consumer_lag", consumer=NAME),
            metric(s, "eskit_consumer_errors_total", consumer=NAME))


def test_stuck_consumer_says_so_and_recovers(backend, services):
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    cs = services("consumer-store", {"ESKIT_DATABASE_URL": backend()})
    assert es.wait_ready(), es.log()
    assert cs.wait_ready(), cs.log()
    proxy, crud = RefusingProxy(cs.url), FakeCrud({"User"})
    try:
        mc = services("metrics-consumer", {
            "ESKIT_EVENT_STORE_URL": es.url, "ESKIT_CONSUMER_STORE_URL": proxy.url,
            "ESKIT_CRUD_STORE_URL": crud.url, "ESKIT_CONSUMER_POLL_WAIT": "1",
            "ESKIT_CONSUMER_STUCK_SECONDS": "2"})
        assert mc.wait_ready(), mc.log()
        append(es, 5, "a")
        assert caught_up(es, cs, mc) == 5

        # the consumer store refuses the saves: the batch is read, not saved
        proxy.refuse = True
        append(es, 3, "b")
        wait_until(lambda: proxy.refused >= 2, what="refused saves")
        # the lag follows the head although the loop only retries its save
        append(es, 4, "c")
        assert head_id(es) == 12
        wait_until(lambda: gauges(mc)[:2] == (5, 7), what="offset 5, lag 7")
        errors = gauges(mc)[2]
        assert errors >= 2
        wait_until(lambda: gauges(mc)[2] > errors, what="errors counting")
        # not ready, and once the stuck time has passed, saying why
        r = mc.client().get("/readyz")
        assert r.status == 503 and r.json["error"]["code"] == "unavailable", r

        def stuck_body():
            r = mc.client().get("/readyz")
            return r.status == 503 and "is stuck" in r.json["error"]["message"] and r
        r = wait_until(stuck_body, what="a stuck /readyz")
        msg = r.json["error"]["message"]
        assert f"consumer {NAME} is stuck: 7 entries behind the log head 12 (offset 5)" in msg, r
        assert "saving offset 8 (stored: 5): the consumer store answered 500: refused by " \
               "the test" in msg, r
        log = mc.log()
        assert "saving offset 8 (stored: 5): the consumer store answered 500" in log, log
        # the loop says it at its next step (within one back-off, at most 5 s)
        wait_until(lambda: f"consumer {NAME} is stuck: " in mc.log(), what="a stuck log line")
        assert mc.client().get("/healthz").status == 200
        assert cs.client().get(f"/v1/consumers/{NAME}").json["offset"] == 5

        # the consumer store takes saves again: it catches up and is ready
        proxy.refuse = False
        assert caught_up(es, cs, mc) == 12
        wait_until(lambda: gauges(mc)[:2] == (12, 0), what="offset 12, lag 0")
        assert mc.wait_ready(), mc.log()
        assert "advances again" in mc.log()
        s = parse_metrics(scrape(mc))
        assert metric(s, "eskit_events_total", entity_type="User", event_type="Created") >= 12
    finally:
        proxy.close()
        crud.close()


def test_metrics_consumer_reads_without_payloads(backend, services):
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    cs = services("consumer-store", {"ESKIT_DATABASE_URL": backend()})
    assert es.wait_ready(), es.log()
    assert cs.wait_ready(), cs.log()
    proxy, crud = RefusingProxy(es.url), FakeCrud({"User"})
    try:
        mc = services("metrics-consumer", {
            "ESKIT_EVENT_STORE_URL": proxy.url, "ESKIT_CONSUMER_STORE_URL": cs.url,
            "ESKIT_CRUD_STORE_URL": crud.url, "ESKIT_CONSUMER_POLL_WAIT": "1"})
        assert mc.wait_ready(), mc.log()
        append(es, 3, "p")
        assert caught_up(es, cs, mc) == 3
        reads = [p for p in proxy.paths if p.startswith("/v1/logs")]
        assert reads, proxy.paths
        assert all("skip_payload=true" in p for p in reads), reads
        s = parse_metrics(scrape(mc))
        assert metric(s, "eskit_events_total", entity_type="User", event_type="Created") == 3
    finally:
        proxy.close()
        crud.close()


def test_stuck_seconds_is_configurable_and_documented():
    import subprocess
    out = subprocess.run([os.path.join(BIN_DIR, "eskit-metrics-consumer"), "--help"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    assert "ESKIT_CONSUMER_STUCK_SECONDS" in out.stdout
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                            "metrics-consumer.md")).read()
    assert "ESKIT_CONSUMER_STUCK_SECONDS" in doc
