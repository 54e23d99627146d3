"""The Grafana dashboards against the running services, black box: every
metric their queries name (test_deploy.dashboard_metric_names()) is exported
by at least one of the four services, checked on their live /metrics.

The four services are started (test_openapi_live.start_four) and given
traffic first, so that the labelled series exist: appends and reads on the
event store, a registered CRUD type with a document created, updated and
deleted, and the metrics consumer counting those events (eskit_events_total,
eskit_crud_events_total and its consumer gauges)."""
import time

from eskit import SANITIZE
from promcheck import Metrics, check_metrics
from test_deploy import dashboard_metric_names
from test_openapi_live import TOKEN, pytestmark, start_four  # noqa: F401 (pytestmark)

SLOW = 3 if SANITIZE else 1


def _traffic(four):
    es = four["event-store"].client(token=TOKEN)
    crud = four["crud-store"].client(token=TOKEN)
    r = es.post("/v1/events", {"originator": {"id": "order-1"}, "event_type": "Order.Placed",
                               "payload": {"total": 1}})
    assert r.status == 201, r
    assert es.get("/v1/logs").status == 200
    r = crud.post("/v1/types", {"spec": {"entity_type": "Dash", "schema_spec": {
        "schema_version": 1, "json_schema": {"type": "object"}}}})
    assert r.status == 201, r
    r = crud.post("/v1/entities/Dash", {"payload": {"n": 1}, "originator": {"id": "d1"}})
    assert r.status == 201, r
    r = crud.patch("/v1/entities/Dash/d1", {"n": 2})
    assert r.status == 200, r
    r = crud.delete("/v1/entities/Dash/d1")
    assert r.status == 200, r
    r = crud.get("/v1/entities/Dash/d1")
    assert r.status == 404, r


def _wait_counted(mc, timeout=30):
    """Until the metrics consumer has counted the Dash document's three CRUD
    events and its lag is 0; returns its parsed /metrics."""
    deadline = time.time() + timeout * SLOW
    m = None
    while time.time() < deadline:
        m = check_metrics(mc.url)
        done = all(m.total("eskit_crud_events_total", entity_type="Dash", event_type=e) >= 1
                   for e in ("Created", "Updated", "Deleted"))
        if done and m.total("eskit_consumer_lag") == 0 and m.series("eskit_consumer_offset"):
            return m
        time.sleep(0.1)
    raise AssertionError("the metrics consumer did not count the CRUD events:\n"
                         + (m.text if m else ""))


def _exported(scrapes):
    """({sample name: services with a sample of it}, {histogram/summary family
    with samples: services}) of {service: promcheck.Metrics}."""
    exported, families = {}, {}
    for name, m in scrapes.items():
        for sample_name, _, _ in m.samples:
            exported.setdefault(sample_name, set()).add(name)
            fam = m.family(sample_name)
            if fam != sample_name:
                families.setdefault(fam, set()).add(name)
    return exported, families


def _unexported(used, exported, families):
    """{name: dashboard files} of the used names no service exports. A
    histogram's _bucket/_sum/_count, or the family's own name, is matched
    through its family."""
    missing = {}
    for n, files in used.items():
        base = next((n[:-len(s)] for s in ("_bucket", "_sum", "_count") if n.endswith(s)), n)
        if n not in exported and base not in families:
            missing[n] = files
    return missing


def test_unexported_names_are_found():
    """The comparison itself, on a made-up scrape: it cannot pass vacuously."""
    m = Metrics("# TYPE h histogram\n"
                'h_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
                "# TYPE c_total counter\nc_total 1\n"
                "# TYPE g gauge\n")   # a TYPE line without a sample is not a series
    exported, families = _exported({"svc": m})
    used = {n: ["d.json"] for n in ("h_bucket", "h_count", "h", "c_total", "g", "c",
                                    "c_total_bucket", "x_bucket")}
    assert _unexported(used, exported, families) == {
        n: ["d.json"] for n in ("g", "c", "c_total_bucket", "x_bucket")}


def test_dashboard_metrics_are_exported_by_the_running_services(backend, services):
    used = dashboard_metric_names()
    assert used, "no metric names found in the dashboards"
    four = start_four(backend, services)
    _traffic(four)
    _wait_counted(four["metrics-consumer"])

    scrapes = {name: check_metrics(svc.url) for name, svc in four.items()}
    exported, families = _exported(scrapes)
    missing = _unexported(used, exported, families)
    assert not missing, (
        "the dashboards query metrics no running service exports (no sample on any "
        f"/metrics): {missing}\nexported: {sorted(exported)}")
    # the metrics of the metrics consumer come from it, the log head from the event store
    for n in ("eskit_events_total", "eskit_crud_events_total", "eskit_consumer_offset",
              "eskit_consumer_lag", "eskit_consumer_errors_total"):
        if n in used:
            assert "metrics-consumer" in exported[n], (n, exported[n])
    if "eskit_log_head_id" in used:
        assert "event-store" in exported["eskit_log_head_id"], exported["eskit_log_head_id"]
