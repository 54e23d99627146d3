"""/metrics of the event store (SPEC §2, §3): passes `promtool check metrics`
after traffic that includes errors, and exports the required series."""
import time

from eskit import Client
from promcheck import check_metrics


def ev(oid, etype="User.Created", version=None):
    e = {"originator": {"id": oid}, "event_type": etype, "payload": {"x": 1}}
    if version is not None:
        e["originator"]["version"] = version
    return e


def traffic(c, prefix):
    """Requests of many routes and outcomes; returns the number of 201 appends."""
    ok = 0
    for i in range(5):
        assert c.post("/v1/events", ev(f"{prefix}-u{i}")).status == 201
        ok += 1
    r = c.post("/v1/events", {"events": [ev(f"{prefix}-b"), ev(f"{prefix}-b", "User.Updated")]})
    assert r.status == 201, r
    ok += 1
    assert c.post("/v1/events", ev(f"{prefix}-u0", version=1)).status == 409
    assert c.post("/v1/events", raw="{not json").status == 400
    assert c.post("/v1/events", ev("bad id!")).status == 400
    assert c.post("/v1/events", raw="<a/>", headers={"Content-Type": "text/xml"}).status == 415
    assert c.get(f"/v1/events/{prefix}-u1").status == 200
    assert c.get(f"/v1/streams/{prefix}-u1").status == 200
    assert c.get(f"/v1/streams/{prefix}-missing").status == 404
    assert c.get("/v1/logs", params={"size": 5}).status == 200
    assert c.get("/v1/logs", params={"size": 0}).status == 400
    assert c.get("/v1/nothing/here").status == 404
    assert c.delete("/v1/events").status == 405
    assert c.put(f"/v1/snapshots/{prefix}-u1", {"version": 1, "payload": {}}).status == 204
    assert c.get(f"/v1/snapshots/{prefix}-u2").status == 404
    return ok


def test_event_store_metrics_pass_promtool(event_store):
    c = event_store.client()
    appends = traffic(c, "met")
    head = c.get("/v1/logs").json["head_id"]
    assert head > 0

    # counters may be bumped just after the response is sent: poll briefly
    deadline = time.monotonic() + 5
    while True:
        m = check_metrics(event_store.url)
        posted = m.total("eskit_http_requests_total", method="POST", code="201")
        if posted >= appends or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert posted == appends, m.series("eskit_http_requests_total")

    # errors are counted by their status code
    for code, method in [("409", "POST"), ("400", "POST"), ("415", "POST"),
                         ("404", "GET"), ("405", "DELETE"), ("200", "GET"), ("204", "PUT")]:
        assert m.series("eskit_http_requests_total", method=method, code=code), (
            code, method, m.series("eskit_http_requests_total"))
    # route labels are route templates, not raw paths (bounded cardinality)
    routes = {lb["route"] for lb, _ in m.series("eskit_http_requests_total")}
    routes |= {lb["route"] for lb, _ in m.series("eskit_http_request_duration_seconds_bucket")}
    assert not [r for r in routes if "met-" in r or "nothing" in r], routes
    # the append route has a duration histogram counting every POST to it
    post_routes = {lb["route"] for lb, _ in
                   m.series("eskit_http_requests_total", method="POST", code="201")}
    assert len(post_routes) == 1, post_routes
    route = post_routes.pop()
    posts = m.total("eskit_http_requests_total", method="POST", route=route)
    assert m.value("eskit_http_request_duration_seconds_count", route=route) >= posts
    assert m.series("eskit_http_request_duration_seconds_bucket", route=route, le="+Inf")

    # the process metrics are plausible
    now = time.time()
    start = m.value("process_start_time_seconds")
    assert now - 3600 < start <= now + 1, (start, now)
    assert m.value("process_cpu_seconds_total") >= 0

    # the log head gauge follows the log
    assert m.types.get("eskit_log_head_id") == "gauge"
    assert m.value("eskit_log_head_id") == head
    r = c.post("/v1/events", ev("met-last"))
    assert r.status == 201
    assert check_metrics(event_store.url).value("eskit_log_head_id") == r.json["log_id"]


def test_metrics_not_behind_token(backend, services):
    es = services("event-store", {"ESKIT_DATABASE_URL": backend(),
                                  "ESKIT_API_TOKEN": "s3cret-token"})
    assert es.wait_ready(), es.log()
    anon = Client(es.url)
    r = anon.get("/v1/logs")
    assert r.status == 401, r
    authed = Client(es.url, token="s3cret-token")
    r = authed.post("/v1/events", ev("tok-1"))
    assert r.status == 201, r
    m = check_metrics(es.url)    # sends no token
    assert m.series("eskit_http_requests_total", code="401"), m.series(
        "eskit_http_requests_total")
    assert m.value("eskit_log_head_id") == r.json["log_id"]
