"""Fixtures and helpers for the CRUD store's black-box tests (SPEC §4).

A CRUD store runs on top of an event store over HTTP: start_crud_env starts
an event store on a fresh database of a back end, then a CRUD store pointing
at it, and waits until both answer /readyz with 200. The `crud_store`
fixture (conftest.py) does that once per back end.

Only the Python standard library and pytest are used.
"""
import calendar
import copy
import re
import time

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                   re.IGNORECASE)
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

CODES = {400: "invalid_argument", 401: "unauthenticated", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
         410: "gone", 415: "unsupported_media_type", 500: "internal", 503: "unavailable"}


class CrudEnv:
    """An event store and a CRUD store on top of it.

    es, crud: the Service objects; db: the event store's database URL (to
    restart it on the same data); e, c: clients of the event store and of
    the CRUD store (carrying the token when there is one)."""

    def __init__(self, es, crud, db, token=None):
        self.es, self.crud, self.db, self.token = es, crud, db, token
        self.e = es.client(token=token)
        self.c = crud.client(token=token)

    # --- the event store's view of a document's stream

    def events(self, oid):
        r = self.e.get(f"/v1/events/{oid}")
        assert r.status == 200, r
        return r.json["events"]

    def head_id(self):
        r = self.e.get("/v1/logs", params={"from_id": 1, "size": 1})
        assert r.status == 200, r
        return r.json["head_id"]

    def append(self, oid, event_type, payload, version=None):
        """Appends one event directly to the event store."""
        ev = {"originator": {"id": oid}, "event_type": event_type, "payload": payload}
        if version is not None:
            ev["originator"]["version"] = version
        r = self.e.post("/v1/events", ev)
        assert r.status == 201, r
        return r.json

    # --- CRUD shorthands

    def create(self, etype, payload, oid=None):
        body = {"payload": payload}
        if oid is not None:
            body["originator"] = {"id": oid}
        r = self.c.post(f"/v1/entities/{etype}", body)
        assert r.status == 201, r
        return r.json["originator"]["id"]

    def read(self, etype, oid, **params):
        return self.c.get(f"/v1/entities/{etype}/{oid}", params=params or None)


def start_crud_env(backend, services, token=None, crud_extra_env=None, es_port=None,
                   es_url=None, es_extra_env=None):
    """Starts an event store on a fresh database of this back end and a CRUD
    store on top of it; returns a CrudEnv when both are ready."""
    db = backend()
    env = {"ESKIT_DATABASE_URL": db}
    if token:
        env["ESKIT_API_TOKEN"] = token
    env.update(es_extra_env or {})
    kw = {"port": es_port} if es_port else {}
    es = services("event-store", env, **kw)
    assert es.wait_ready(), es.log()
    cenv = {"ESKIT_EVENT_STORE_URL": es_url or es.url}
    if token:
        cenv["ESKIT_API_TOKEN"] = token
    cenv.update(crud_extra_env or {})
    crud = services("crud-store", cenv)
    assert crud.wait_ready(), crud.log()
    return CrudEnv(es, crud, db, token)


# --------------------------------------------------------------------------
# JSON Merge Patch (RFC 7386), written from the RFC

def merge_patch(target, patch):
    """Applies an RFC 7386 merge patch to target; returns the result."""
    if isinstance(patch, dict):
        out = copy.deepcopy(target) if isinstance(target, dict) else {}
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = merge_patch(out.get(k), v)
        return out
    return copy.deepcopy(patch)


def replay(events, entity_type):
    """The document (or None when deleted / never created) that replaying a
    stream's events gives, skipping events of other names."""
    doc = None
    for ev in events:
        et = ev["event_type"]
        if et == f"{entity_type}.Created":
            doc = copy.deepcopy(ev["payload"])
        elif et == f"{entity_type}.Updated":
            doc = merge_patch(doc, ev["payload"])
        elif et == f"{entity_type}.Deleted":
            doc = None
    return doc


# --------------------------------------------------------------------------
# assertions and polling

def assert_error(r, status, mentions=None):
    """r is an error response of SPEC §2 with this status."""
    assert r.status == status, r
    assert (r.header("Content-Type") or "").startswith("application/json"), r.headers
    assert isinstance(r.json, dict) and set(r.json) == {"error"}, r
    err = r.json["error"]
    assert err.get("code") == CODES[status], r
    assert isinstance(err.get("message"), str) and err["message"], r
    if mentions:
        assert mentions in err["message"], r
    return err


def etag_version(r):
    """The version in a response's `ETag: "N"` header."""
    tag = r.header("ETag")
    assert tag is not None and re.fullmatch(r'"[0-9]+"', tag), (tag, r)
    return int(tag[1:-1])


def ts_seconds(ts):
    assert isinstance(ts, str) and TS.match(ts), ts
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000


def poll(fn, timeout=10.0, interval=0.05):
    """Calls fn until it returns a true value or timeout passes; returns the
    last value (the caller asserts on it)."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() >= deadline:
            return v
        time.sleep(interval)
