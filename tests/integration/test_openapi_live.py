"""docs/openapi.yaml against the running services, black box.

The four services are started (event store and consumer store on fresh
databases of each back end, the CRUD store and the metrics consumer on top of
them, all with ESKIT_API_TOKEN), the main endpoints of each are exercised, and
every response is checked against the document:

- its path, method and status must be documented (an undocumented one fails:
  the document cannot silently drift from the services); a 405 on a
  documented path is checked against `components.responses.MethodNotAllowed`,
  which the document says any path may answer for a method it does not list;
- the service that answered must be the one the path item's `servers` names;
- its Content-Type must be a documented media type of that response, and a
  response documented without content must have no body;
- a JSON body must validate against the documented schema, with a real JSON
  Schema validator (OpenAPI 3.1 schemas are JSON Schema 2020-12; `$ref`s to
  `#/components/...` are resolved in the whole document; `format` date-time
  and int64 are checked too);
- documented response headers (ETag, Location, WWW-Authenticate, Allow) must
  be present when the document marks them required, and match their schema.

Schema mismatches are collected and reported together at the end of a test;
an unexpected status fails at once (later steps depend on it).

Needs python3-jsonschema (tools/deps.sh) and python3-yaml.
"""
import http.client
import json
import os
import re
import urllib.parse
from pathlib import Path

import jsonschema
import pytest
import yaml

from eskit import BIN_DIR, Client, Response, free_port

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "docs" / "openapi.yaml"
TOKEN = "openapi-live-token"
METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
# The services' default ports (SPEC §1), as the document's `servers` give them.
DEFAULT_PORT = {"event-store": 8080, "crud-store": 8081, "consumer-store": 8082,
                "metrics-consumer": 8083}

# The document's pairs of error code and status (its description, SPEC §2).
ERROR_CODES = {400: "invalid_argument", 401: "unauthenticated", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
               410: "gone", 415: "unsupported_media_type", 500: "internal", 503: "unavailable"}

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(os.path.join(BIN_DIR, f"eskit-{n}")) for n in DEFAULT_PORT),
    reason="the service binaries are not built")


# --------------------------------------------------------------- the document

_RFC3339 = re.compile(
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$")


def _format_checker():
    fc = jsonschema.FormatChecker()

    @fc.checks("date-time")
    def _date_time(value):
        return not isinstance(value, str) or bool(_RFC3339.match(value))

    @fc.checks("int64")
    def _int64(value):
        return (not isinstance(value, int) or isinstance(value, bool)
                or -(1 << 63) <= value < (1 << 63))

    @fc.checks("int32")
    def _int32(value):
        return (not isinstance(value, int) or isinstance(value, bool)
                or -(1 << 31) <= value < (1 << 31))

    return fc


class OpenApi:
    """docs/openapi.yaml, with a Draft 2020-12 validator per response schema."""

    def __init__(self, path=OPENAPI):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        assert self.doc["openapi"].startswith("3.1"), self.doc["openapi"]
        self.resolver = jsonschema.RefResolver.from_schema(self.doc)
        self.formats = _format_checker()
        for name, schema in self.doc["components"]["schemas"].items():
            jsonschema.Draft202012Validator.check_schema(schema)
        # literal paths before templated ones (/v1/logs/stream before a {param})
        self.templates = []
        for p in self.doc["paths"]:
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"
            self.templates.append((p.count("{"), p, re.compile(rx)))
        self.templates.sort()

    def deref(self, obj):
        while isinstance(obj, dict) and "$ref" in obj and len(obj) == 1:
            _, obj = self.resolver.resolve(obj["$ref"])
        return obj

    def validator(self, schema):
        return jsonschema.Draft202012Validator(schema, resolver=self.resolver,
                                               format_checker=self.formats)

    def path_template(self, path):
        for _, tpl, rx in self.templates:
            if rx.match(path):
                return tpl
        return None

    def response(self, path, method, status):
        """(template, the documented response object) or raises AssertionError."""
        tpl = self.path_template(path)
        assert tpl, f"{method} {path}: the path is not documented"
        item = self.doc["paths"][tpl]
        op = item.get(method.lower())
        if op is None:
            assert status == 405, (f"{method} {tpl} -> {status}: the method is not "
                                   "documented (only a 405 may answer it)")
            allowed = sorted(m.upper() for m in item if m in METHODS)
            return tpl, self.deref({"$ref": "#/components/responses/MethodNotAllowed"}), allowed
        responses = op["responses"]
        resp = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") \
            or responses.get("default")
        assert resp is not None, (f"{method} {tpl} -> {status}: this status is not documented "
                                  f"(documented: {sorted(responses)})")
        return tpl, self.deref(resp), None


# ------------------------------------------------------------- the live check

class LiveCheck:
    """Sends requests and checks each response against the document."""

    def __init__(self, api, urls):
        self.api = api
        self.urls = urls          # service name -> base URL
        self.checked = []         # (service, method, template, status)
        self.problems = []
        self.calls = 0

    def client(self, service, token=TOKEN):
        return Client(self.urls[service], token=token)

    def call(self, service, method, path, expect, token=TOKEN, **kw):
        r = self.client(service, token).request(method, path, **kw)
        self.calls += 1
        bare = urllib.parse.urlsplit(path).path
        assert r.status == expect, (f"{service}: {method} {path}: expected {expect}, got "
                                    f"{r.status} {r.body[:500]}")
        self.check(service, method, bare, r)
        return r

    def sse(self, service, path, entries, headers=None):
        """GET an SSE path; checks the response head against the document, and
        the first `entries` events: `id:` is the log id and `data:` a JSON
        LogEntry, as the document describes. Returns the entries."""
        u = urllib.parse.urlsplit(self.urls[service])
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        self.calls += 1
        try:
            conn.request("GET", path, headers={"Authorization": "Bearer " + TOKEN,
                                               **(headers or {})})
            resp = conn.getresponse()
            assert resp.status == 200, (path, resp.status, resp.read(500))
            got, event, body = [], {}, []
            while len(got) < entries:
                line = resp.readline().decode()
                assert line, f"{path}: the stream ended after {len(got)} entries"
                body.append(line)
                line = line.rstrip("\r\n")
                if line.startswith("id:"):
                    event["id"] = line[3:].strip()
                elif line.startswith("data:"):
                    event["data"] = line[5:].strip()
                elif line == "" and "data" in event:
                    got.append(event)
                    event = {}
            r = Response(resp.status, resp.getheaders(), "".join(body))
        finally:
            conn.close()
        self.check(service, "GET", urllib.parse.urlsplit(path).path, r)
        entry_schema = {"$ref": "#/components/schemas/LogEntry"}
        out = []
        for ev in got:
            entry = json.loads(ev["data"])
            for e in self.api.validator(entry_schema).iter_errors(entry):
                self.problems.append(f"{service}: GET {path}: SSE data {ev['data'][:200]}: "
                                     f"not a LogEntry: {e.message}")
            if ev.get("id") != str(entry.get("id")):
                self.problems.append(f"{service}: GET {path}: SSE id {ev.get('id')!r} is not "
                                     f"the entry's id {entry.get('id')!r}")
            out.append(entry)
        return out

    def check(self, service, method, path, r):
        where = f"{service}: {method} {path} -> {r.status}"
        try:
            tpl, resp, allowed = self.api.response(path, method, r.status)
        except AssertionError as e:
            self.problems.append(f"{service}: {e}")
            return
        self.checked.append((service, method, tpl, r.status))
        where = f"{service}: {method} {tpl} -> {r.status}"
        item = self.api.doc["paths"][tpl]
        servers = item.get("servers") or self.api.doc["servers"]
        ports = {int(re.search(r":(\d+)$", s["url"]).group(1)) for s in servers}
        if DEFAULT_PORT[service] not in ports:
            self.problems.append(f"{where}: answered by the {service}, but the document's "
                                 f"servers for this path are {[s['url'] for s in servers]}")
        self._check_headers(where, resp, r, allowed)
        self._check_body(where, resp, r)
        # "Errors always have the body Error, with the status of its code"
        if r.status >= 400 and isinstance(r.json, dict) and isinstance(r.json.get("error"), dict):
            code = r.json["error"].get("code")
            if ERROR_CODES.get(r.status) != code:
                self.problems.append(f"{where}: error code {code!r} with status {r.status} "
                                     f"(the document pairs {r.status} with "
                                     f"{ERROR_CODES.get(r.status)!r})")

    def _check_headers(self, where, resp, r, allowed):
        for name, h in (resp.get("headers") or {}).items():
            h = self.api.deref(h)
            value = r.header(name)
            if value is None:
                if h.get("required"):
                    self.problems.append(f"{where}: documented header {name} is missing")
                continue
            schema = h.get("schema")
            if schema is not None:
                for e in self.api.validator(schema).iter_errors(value):
                    self.problems.append(f"{where}: header {name}: {value!r}: {e.message}")
        if allowed is not None:
            # the Allow header names the methods the document lists for the path
            got = sorted(m.strip().upper() for m in (r.header("Allow") or "").split(",")
                         if m.strip())
            want = set(allowed)
            if "GET" in want:
                want.add("HEAD")
            if not set(allowed) <= set(got) or not set(got) <= want | {"OPTIONS"}:
                self.problems.append(f"{where}: Allow {got}, the document lists {allowed}")

    def _check_body(self, where, resp, r):
        content = resp.get("content")
        if not content:
            if r.body:
                self.problems.append(f"{where}: documented without a body, got {r.body[:200]!r}")
            return
        ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
        media = {k.lower(): v for k, v in content.items()}
        if ctype not in media:
            self.problems.append(f"{where}: Content-Type {ctype!r}, documented {sorted(media)}")
            return
        schema = media[ctype].get("schema")
        if schema is None:
            return
        if ctype == "application/json" or ctype.endswith("+json"):
            try:
                body = json.loads(r.body)
            except ValueError as e:
                self.problems.append(f"{where}: the body is not JSON ({e}): {r.body[:200]!r}")
                return
        else:
            body = r.body
        errors = sorted(self.api.validator(schema).iter_errors(body),
                        key=lambda e: list(e.absolute_path))
        for e in errors:
            ptr = "/" + "/".join(str(p) for p in e.absolute_path)
            msg = e.message
            if e.context:   # oneOf/anyOf: say why each alternative failed
                msg = f"no {e.validator} alternative matches: " + "; ".join(
                    f"#{c.relative_schema_path[0]} at "
                    f"/{'/'.join(str(p) for p in c.absolute_path)}: {c.message}"
                    for c in e.context)
            self.problems.append(f"{where}: body at {ptr}: {msg}"
                                 f" (schema {'/'.join(str(p) for p in e.absolute_schema_path)});"
                                 f" body {r.body[:300]}")

    def finish(self):
        """Fails with every problem found; returns the number of responses checked."""
        assert not self.problems, (f"{len(self.problems)} responses do not match "
                                   "docs/openapi.yaml:\n" + "\n".join(self.problems))
        assert len(self.checked) == self.calls
        return len(self.checked)


# ------------------------------------------------------------- the four services

def start_four(backend, services, token=TOKEN):
    """Event store and consumer store on fresh databases of this back end, the
    CRUD store and the metrics consumer on top; returns {name: Service} once
    all four answer /readyz with 200."""
    common = {"ESKIT_API_TOKEN": token} if token else {}
    es = services("event-store", {"ESKIT_DATABASE_URL": backend(), **common})
    cs = services("consumer-store", {"ESKIT_DATABASE_URL": backend(), **common})
    assert es.wait_ready(), es.log()
    assert cs.wait_ready(), cs.log()
    crud = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url, **common})
    assert crud.wait_ready(), crud.log()
    mc = services("metrics-consumer", {
        "ESKIT_EVENT_STORE_URL": es.url, "ESKIT_CRUD_STORE_URL": crud.url,
        "ESKIT_CONSUMER_STORE_URL": cs.url, "ESKIT_CONSUMER_POLL_WAIT": "1", **common})
    assert mc.wait_ready(), mc.log()
    return {"event-store": es, "crud-store": crud, "consumer-store": cs,
            "metrics-consumer": mc}


@pytest.fixture(scope="module")
def api():
    return OpenApi()


@pytest.fixture
def live(api, backend, services):
    four = start_four(backend, services)
    check = LiveCheck(api, {n: s.url for n, s in four.items()})
    check.four = four
    return check


# ------------------------------------------------------------------- the tests

def _ev(oid, etype, payload=None, version=None, **extra):
    e = {"originator": {"id": oid}, "event_type": etype, "payload": payload or {}, **extra}
    if version is not None:
        e["originator"]["version"] = version
    return e


def test_event_store_responses_match_the_document(live):
    es = "event-store"
    call = live.call
    oid = "order-1"
    # append: one event (the server picks the version and occurred_on), one
    # with a version and an offset timestamp, and a batch over two streams
    call(es, "POST", "/v1/events", 201, body=_ev(oid, "Order.Placed", {"total": 42}))
    call(es, "POST", "/v1/events", 201,
         body=_ev(oid, "Order.Paid", {"by": ["card"]}, version=2,
                  occurred_on="2026-11-22T16:33:00.5+02:00"))
    r = call(es, "POST", "/v1/events", 201, body={"events": [
        _ev(oid, "Order.Shipped", "a string payload", version=3),
        _ev("order-2", "Order.Placed", {"total": 1}),
        _ev("order-2", "Order.Paid", None),
        _ev("user-1", "User.Created", {"email": "ada@example.com"}),
    ]})
    assert len(r.json["results"]) == 4
    # 409: a version that does not follow; 400: a version as a string; 415
    r = call(es, "POST", "/v1/events", 409, body=_ev(oid, "Order.Paid", {}, version=9))
    assert r.json["error"]["details"]["current_version"] == 3
    call(es, "POST", "/v1/events", 400, body=_ev(oid, "Order.Paid", {}, version="4"))
    call(es, "POST", "/v1/events", 400, body={"events": []})
    call(es, "POST", "/v1/events", 415, raw="<event/>", headers={"Content-Type": "text/xml"})
    call(es, "POST", "/v1/events", 413, body=_ev(oid, "Order.Paid", {"s": "x" * (1 << 20)}))
    # read a stream
    r = call(es, "GET", f"/v1/events/{oid}", 200)
    assert [e["originator"]["version"] for e in r.json["events"]] == [1, 2, 3]
    call(es, "GET", f"/v1/events/{oid}?from_version=2&to_version=3&limit=1", 200)
    r = call(es, "GET", "/v1/events/no-such-stream", 200)
    assert r.json == {"events": []}
    call(es, "GET", f"/v1/events/{oid}?limit=0", 400)
    # streams
    call(es, "GET", f"/v1/streams/{oid}", 200)
    call(es, "GET", "/v1/streams/no-such-stream", 404)
    r = call(es, "GET", "/v1/streams?entity_type=Order&limit=1", 200)
    assert r.json["next_after"] is not None
    r = call(es, "GET", "/v1/streams?" + urllib.parse.urlencode(
        {"entity_type": "Order", "after": r.json["next_after"], "limit": 1000}), 200)
    assert r.json["next_after"] is None
    call(es, "GET", "/v1/streams", 400)
    call(es, "GET", "/v1/streams/bad%20id", 400)
    # the application log
    r = call(es, "GET", "/v1/logs", 200)
    assert len(r.json["results"]) == 6
    call(es, "GET", "/v1/logs?from_id=0&size=2&selector=Order.*", 200)
    call(es, "GET", "/v1/logs?selector=*.Created&pipeline_id=User", 200)
    r = call(es, "GET", "/v1/logs?from_id=1000", 200)
    assert r.json["results"] == []
    call(es, "GET", "/v1/logs?selector=Order..x", 400)
    call(es, "GET", "/v1/logs?size=1001", 400)
    entries = live.sse(es, "/v1/logs/stream?from_id=1&selector=Order.*", 5)
    assert [e["event"]["event_type"] for e in entries][:2] == ["Order.Placed", "Order.Paid"]
    entries = live.sse(es, "/v1/logs/stream", 1, headers={"Last-Event-ID": "5"})
    assert entries[0]["id"] > 5
    call(es, "GET", "/v1/logs/stream?selector=a.b.", 400)
    # snapshots
    call(es, "PUT", f"/v1/snapshots/{oid}", 204, body={"version": 2, "payload": {"n": 2}})
    call(es, "PUT", f"/v1/snapshots/{oid}", 204, body={"version": 3, "payload": [3]})
    r = call(es, "GET", f"/v1/snapshots/{oid}", 200)
    assert r.json == {"version": 3, "payload": [3]}
    call(es, "GET", f"/v1/snapshots/{oid}?max_version=2", 200)
    call(es, "GET", f"/v1/snapshots/{oid}?max_version=1", 404)
    call(es, "PUT", f"/v1/snapshots/{oid}", 409, body={"version": 4, "payload": {}})
    call(es, "PUT", f"/v1/snapshots/{oid}", 400, body={"payload": {}})
    # the token, and a method a path does not have
    call(es, "GET", "/v1/logs", 401, token=None)
    call(es, "POST", "/v1/events", 401, token="wrong", body=_ev(oid, "Order.Paid"))
    call(es, "DELETE", f"/v1/events/{oid}", 405)
    call(es, "PUT", "/v1/logs", 405, body={})
    assert live.finish() == 38


def test_crud_store_responses_match_the_document(live):
    cr = "crud-store"
    call = live.call
    schema = {"type": "object", "required": ["title"],
              "properties": {"title": {"type": "string"}, "pages": {"type": "integer"}}}
    spec = {"entity_type": "Book", "schema_spec": {"schema_version": 1, "json_schema": schema}}
    # types
    call(cr, "POST", "/v1/types", 201, body={"spec": spec})
    call(cr, "POST", "/v1/types", 409, body={"spec": spec})
    call(cr, "POST", "/v1/types", 200, body={"spec": spec, "skip_duplicate": True})
    call(cr, "POST", "/v1/types", 201, body={"spec": {"entity_type": "com.acme.Note"}})
    call(cr, "POST", "/v1/types", 400, body={"spec": {
        "entity_type": "Bad", "schema_spec": {"json_schema": {"type": "object"}}}})
    r = call(cr, "GET", "/v1/types/Book", 200)
    assert r.json["spec"]["entity_type"] == "Book"
    call(cr, "GET", "/v1/types/Nope", 404)
    r = call(cr, "GET", "/v1/types", 200)
    assert {s["entity_type"] for s in r.json["results"]} == {"Book", "com.acme.Note"}
    call(cr, "GET", "/v1/types?limit=1", 200)
    call(cr, "GET", "/v1/types?limit=0", 400)
    spec2 = {"entity_type": "Book", "schema_spec": {"schema_version": 2, "json_schema": schema}}
    call(cr, "PUT", "/v1/types/Book", 200, body={"spec": spec2})
    call(cr, "PUT", "/v1/types/Book", 409, body={"spec": spec})
    call(cr, "PUT", "/v1/types/Nope", 404, body={"spec": {"entity_type": "Nope"}})
    # entities: create
    r = call(cr, "POST", "/v1/entities/Book", 201, body={"payload": {"title": "Dune"}})
    gen = r.json["originator"]["id"]
    r = call(cr, "POST", "/v1/entities/Book", 201,
             body={"payload": {"title": "Emma", "pages": 474}, "originator": {"id": "emma"}})
    assert r.header("Location").endswith("/v1/entities/Book/emma"), r.headers
    call(cr, "POST", "/v1/entities/Book", 409,
         body={"payload": {"title": "Emma"}, "originator": {"id": "emma"}})
    r = call(cr, "POST", "/v1/entities/Book", 400, body={"payload": {"title": 7}})
    assert r.json["error"]["details"]["errors"], r.json
    call(cr, "POST", "/v1/entities/Book", 400, body={"payload": [1]})
    call(cr, "POST", "/v1/entities/eskit.EntityType", 400, body={"payload": {}})
    call(cr, "POST", "/v1/entities/Free", 201, body={"payload": {"any": [1, {"x": None}]}})
    call(cr, "POST", "/v1/entities/Free", 415, raw="a=1",
         headers={"Content-Type": "multipart/form-data; boundary=x"})
    call(cr, "POST", "/v1/entities/Free", 413, body={"payload": {"s": "x" * (1 << 20)}})
    # read
    r = call(cr, "GET", "/v1/entities/Book/emma", 200)
    assert r.header("ETag") == '"1"'
    call(cr, "GET", f"/v1/entities/Book/{gen}", 200)
    call(cr, "GET", "/v1/entities/Book/nobody", 404)
    call(cr, "GET", "/v1/entities/Free/emma", 404)
    call(cr, "GET", "/v1/entities/Book/emma?version=0", 400)
    # replace: the version in the body, then as If-Match; stale; none
    call(cr, "PUT", "/v1/entities/Book/emma", 200,
         body={"originator": {"version": 1}, "payload": {"title": "Emma", "pages": 480}})
    call(cr, "PUT", "/v1/entities/Book/emma", 200, headers={"If-Match": '"2"'},
         body={"payload": {"title": "Emma", "pages": 480}})
    call(cr, "PUT", "/v1/entities/Book/emma", 409,
         body={"originator": {"version": 1}, "payload": {"title": "Emma"}})
    call(cr, "PUT", "/v1/entities/Book/emma", 400, body={"payload": {"title": "Emma"}})
    call(cr, "PUT", "/v1/entities/Book/emma", 400,
         body={"originator": {"version": 3}, "payload": {"title": None}})
    call(cr, "PUT", "/v1/entities/Book/nobody", 404,
         body={"originator": {"version": 1}, "payload": {"title": "x"}})
    # merge patch
    r = call(cr, "PATCH", "/v1/entities/Book/emma", 200, raw=json.dumps({"pages": None}),
             headers={"Content-Type": "application/merge-patch+json"})
    assert r.json["payload"] == {"title": "Emma"} and r.json["originator"]["version"] == 4
    call(cr, "PATCH", "/v1/entities/Book/emma", 200, headers={"If-Match": '"4"'},
         body={"pages": 500})
    call(cr, "PATCH", "/v1/entities/Book/emma", 409, headers={"If-Match": '"2"'},
         body={"pages": 1})
    call(cr, "PATCH", "/v1/entities/Book/emma", 400, body={"title": 1})
    call(cr, "PATCH", "/v1/entities/Book/nobody", 404, body={"pages": 1})
    # version read, list, history
    r = call(cr, "GET", "/v1/entities/Book/emma?version=2", 200)
    assert r.header("ETag") == '"2"'
    r = call(cr, "GET", "/v1/entities/Book?limit=1", 200)
    assert r.json["next_page_token"] is not None
    r = call(cr, "GET", "/v1/entities/Book?" + urllib.parse.urlencode(
        {"limit": 100, "page_token": r.json["next_page_token"], "skip_payload": "true"}), 200)
    assert r.json["next_page_token"] is None
    call(cr, "GET", "/v1/entities/Book", 200)
    call(cr, "GET", "/v1/entities/Nothing", 200)
    call(cr, "GET", "/v1/entities/Book?limit=101", 400)
    r = call(cr, "GET", "/v1/entities/Book/emma/history", 200)
    assert [v["version"] for v in r.json["versions"]] == [1, 2, 3, 4, 5]
    call(cr, "GET", "/v1/entities/Book/emma/history?from_version=3&limit=1", 200)
    call(cr, "GET", "/v1/entities/Book/nobody/history", 404)
    # delete
    call(cr, "DELETE", "/v1/entities/Book/emma", 409, headers={"If-Match": '"1"'})
    call(cr, "DELETE", "/v1/entities/Book/emma", 200, headers={"If-Match": '"5"'})
    call(cr, "DELETE", f"/v1/entities/Book/{gen}", 200)
    call(cr, "DELETE", "/v1/entities/Book/emma", 404)
    call(cr, "GET", "/v1/entities/Book/emma", 404)
    r = call(cr, "GET", "/v1/entities/Book/emma?deleted=true", 200)
    assert r.json["deleted"] is True and r.header("ETag") == '"6"'
    call(cr, "GET", "/v1/entities/Book/emma/history", 200)
    # the token, and a method a path does not have
    call(cr, "GET", "/v1/types", 401, token=None)
    call(cr, "POST", "/v1/types/Book", 405, body={})
    call(cr, "DELETE", "/v1/types", 405)
    assert live.finish() == 57


def test_crud_store_queries_match_the_document(live):
    """_find, _bulk, declared indexes and time travel (issue 14)."""
    cr = "crud-store"
    call = live.call
    spec = {"entity_type": "Film", "indexes": [{"name": "by_year", "fields": ["year"]},
                                               {"name": "by_dir", "fields": ["crew.director"]}]}
    call(cr, "POST", "/v1/types", 201, body={"spec": spec})
    call(cr, "POST", "/v1/types", 400, body={"spec": {
        "entity_type": "Bad", "indexes": [{"name": "x", "fields": ["a b"]}]}})
    r = call(cr, "POST", "/v1/entities/Film/_bulk", 200, body={"operations": [
        {"op": "create", "id": "f1", "payload": {"year": 1979, "crew": {"director": "Scott"}}},
        {"op": "create", "id": "f2", "payload": {"year": 1982, "crew": {"director": "Scott"}}},
        {"op": "create", "id": "f3", "payload": {"year": 2001}},
        {"op": "patch", "id": "f3", "patch": {"year": 1968}},
        {"op": "put", "id": "f2", "version": 1, "payload": {"year": 1982, "title": "BR"}},
        {"op": "delete", "id": "f1"}]})
    assert [x["originator"]["version"] for x in r.json["results"]] == [1, 1, 1, 2, 2, 2]
    call(cr, "POST", "/v1/entities/Film/_bulk", 400, body={"operations": []})
    r = call(cr, "POST", "/v1/entities/Film/_bulk", 409, body={"operations": [
        {"op": "create", "id": "f9", "payload": {}}, {"op": "create", "id": "f2", "payload": {}}]})
    assert r.json["error"]["details"]["index"] == 1
    call(cr, "POST", "/v1/entities/Film/_bulk", 404, body={"operations": [
        {"op": "delete", "id": "nobody"}]})
    r = call(cr, "GET", "/v1/types/Film", 200)
    assert set(r.json["index_status"]) == {"by_year", "by_dir"}
    r = call(cr, "POST", "/v1/entities/Film/_find", 200,
             body={"selector": {"year": {"$lt": 2000}}, "sort": [{"year": "asc"}], "limit": 1})
    assert r.json["results"][0]["originator"]["id"] == "f3" and r.json["next_page_token"]
    call(cr, "POST", "/v1/entities/Film/_find", 200,
         body={"selector": {}, "page_token": r.json["next_page_token"], "limit": 1,
               "sort": [{"year": "asc"}], "skip_payload": True})
    call(cr, "POST", "/v1/entities/Film/_find", 200,
         body={"selector": {"$or": [{"title": "BR"}, {"crew.director": {"$exists": True}}]},
               "as_of_log_id": 2})
    call(cr, "POST", "/v1/entities/Film/_find", 400, body={"selector": {"year": {"$x": 1}}})
    call(cr, "POST", "/v1/entities/Film/_find", 400, body={"limit": 1})
    # time travel on GET and the list
    call(cr, "GET", "/v1/entities/Film/f3?as_of_log_id=1", 404)
    r = call(cr, "GET", "/v1/entities/Film/f1?as_of_log_id=2", 200)  # 1 is the type
    assert r.json["payload"]["year"] == 1979 and r.header("ETag") == '"1"'
    call(cr, "GET", "/v1/entities/Film/f1?as_of=2000-01-01T00:00:00Z", 404)
    call(cr, "GET", "/v1/entities/Film/f1?version=1&as_of_log_id=1", 400)
    r = call(cr, "GET", "/v1/entities/Film?as_of_log_id=4", 200)
    assert len(r.json["results"]) == 3
    call(cr, "GET", "/v1/entities/Film?as_of=yesterday", 400)
    assert live.finish() == 18


def test_consumer_store_responses_match_the_document(live):
    cs = "consumer-store"
    call = live.call
    r = call(cs, "PUT", "/v1/consumers/projector-1", 200, body={"offset": 5})
    assert r.json["offset"] == 5
    call(cs, "PUT", "/v1/consumers/projector-1", 200, body={"offset": 9, "expected_offset": 5})
    r = call(cs, "PUT", "/v1/consumers/projector-1", 409, body={"offset": 10, "expected_offset": 5})
    call(cs, "PUT", "/v1/consumers/fresh", 200, body={"offset": 1, "expected_offset": 0})
    call(cs, "PUT", "/v1/consumers/projector-1", 400, body={"offset": -1})
    call(cs, "PUT", "/v1/consumers/projector-1", 400, body={"offset": "1"})
    call(cs, "PUT", "/v1/consumers/bad%20id", 400, body={"offset": 1})
    call(cs, "PUT", "/v1/consumers/projector-1", 415, raw="<offset/>",
         headers={"Content-Type": "text/xml"})
    r = call(cs, "GET", "/v1/consumers/projector-1", 200)
    assert r.json["offset"] == 9
    call(cs, "GET", "/v1/consumers/nobody", 404)
    r = call(cs, "GET", "/v1/consumers", 200)
    ids = [c["consumer_id"] for c in r.json["consumers"]]
    assert {"projector-1", "fresh"} <= set(ids) and ids == sorted(ids)
    call(cs, "DELETE", "/v1/consumers/fresh", 204)
    call(cs, "DELETE", "/v1/consumers/fresh", 404)
    call(cs, "GET", "/v1/consumers", 401, token=None)
    call(cs, "POST", "/v1/consumers", 405, body={})
    assert live.finish() == 15


def test_health_ready_metrics_of_every_service_match_the_document(live):
    for service in DEFAULT_PORT:
        for token in (None, TOKEN):   # never behind the token
            r = live.call(service, "GET", "/healthz", 200, token=token)
            assert r.json == {"status": "ok"}
            r = live.call(service, "GET", "/readyz", 200, token=token)
            assert r.json == {"status": "ready"}
            live.call(service, "GET", "/metrics", 200, token=token)
    assert live.finish() == 24


def test_readyz_503_matches_the_document(api, backend, services):
    """A CRUD store whose event store is down answers /readyz 503 and /v1 503."""
    crud = services("crud-store", {"ESKIT_EVENT_STORE_URL": f"http://127.0.0.1:{free_port()}",
                                   "ESKIT_API_TOKEN": TOKEN})
    live = LiveCheck(api, {"crud-store": crud.url})
    live.call("crud-store", "GET", "/readyz", 503)
    live.call("crud-store", "GET", "/v1/types/Book", 503)
    live.call("crud-store", "GET", "/v1/entities/Book/x", 503)
    live.finish()


# --------------------------------------------------- the checker's own checks

def test_the_checker_refuses_drift(api):
    """An undocumented status, a wrong body, a missing required header and an
    undocumented path are reported: the check cannot pass vacuously."""
    def resp(status, body, headers=()):
        hs = [("Content-Type", "application/json")] + list(headers)
        return Response(status, hs, json.dumps(body) if body is not None else "")

    live = LiveCheck(api, {})
    live.check("event-store", "GET", "/v1/streams/x", resp(418, {"error": {}}))
    live.check("event-store", "GET", "/v1/streams/x", resp(200, {"id": "x"}))
    live.check("event-store", "GET", "/v1/logs", resp(
        200, {"results": [], "next_from_id": 1, "head_id": 0, "x": 1}))   # fine
    live.check("event-store", "POST", "/v1/events", resp(201, {
        "log_id": 1, "event": {"originator": {"id": "a", "version": 1},
                               "event_type": "A.B", "payload": {},
                               "occurred_on": "yesterday"}}))
    live.check("crud-store", "GET", "/v1/entities/T/x", resp(200, {
        "entity_type": "T", "originator": {"id": "x", "version": 1}, "deleted": False},
        [("ETag", "1")]))
    live.check("crud-store", "GET", "/v1/nothing", resp(404, {
        "error": {"code": "not_found", "message": "m"}}))
    live.check("consumer-store", "GET", "/v1/logs", resp(
        200, {"results": [], "next_from_id": 1, "head_id": 0}))
    live.check("event-store", "PUT", "/v1/snapshots/x", resp(204, {"unexpected": 1}))
    live.check("consumer-store", "GET", "/v1/consumers", resp(401, {
        "error": {"code": "unauthenticated", "message": "m"}}))
    live.check("event-store", "DELETE", "/v1/logs", resp(405, {
        "error": {"code": "method_not_allowed", "message": "m"}}, [("Allow", "GET, POST")]))
    p = live.problems
    assert any("418" in x and "not documented" in x for x in p), p
    assert any("/v1/streams/{originator_id} -> 200" in x and "'entity_type'" in x for x in p), p
    assert any("occurred_on" in x and "date-time" in x for x in p), p
    assert any("header ETag" in x for x in p), p
    assert any("/v1/nothing" in x and "not documented" in x for x in p), p
    assert any("answered by the consumer-store" in x for x in p), p
    assert any("without a body" in x for x in p), p
    assert any("header WWW-Authenticate is missing" in x for x in p), p
    assert any("Allow ['GET', 'POST'], the document lists ['GET']" in x for x in p), p
    assert not any("GET /v1/logs -> 200" in x and x.startswith("event-store") for x in p), p
    assert len(p) == 15, p   # 7 missing members of a Stream count once each
