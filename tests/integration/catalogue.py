"""Shared machinery for the malformed-request catalogues (SPEC §2).

A catalogue is a list of `Case`s: one raw HTTP request each, with the 4xx
answer SPEC §2 demands. `send` puts a request on the wire as it is (any
method, any bytes, chunked or not, surviving a server that answers and closes
early), `check` lists what is wrong with an answer (status, Content-Type, the
{"error": {"code", "message", "details"}} body, the code that goes with the
status, the field named in a 400's message, `WWW-Authenticate` on a 401,
`Allow` on a 405, the expected details) and `run_cases` runs a whole list and
reports every failing case at once rather than stopping at the first.

Used by test_event_store_malformed.py and test_crud_malformed.py; the
service-specific catalogues and seeds stay in those files. Not a test module
itself (pytest collects nothing here).
"""
import http.client
import json
import urllib.parse

from eskit import Response

# The error code SPEC §2 pairs with each status a catalogue case may expect.
# A service with a wider table (the CRUD store's also has 500 and 503) passes
# its own to check() / run_cases() as `codes`.
CODES = {400: "invalid_argument", 401: "unauthenticated", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
         415: "unsupported_media_type"}


# --------------------------------------------------------------------------
# building request bodies and paths


def j(obj):
    return json.dumps(obj).encode()


def without(d, *path):
    """A deep copy of d with the member at `path` removed."""
    d = json.loads(json.dumps(d))
    cur = d
    for p in path[:-1]:
        cur = cur[p]
    del cur[path[-1]]
    return d


def with_(d, path, value):
    """A deep copy of d with the member at `path` (a tuple) set to value."""
    d = json.loads(json.dumps(d))
    cur = d
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return d


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


# --------------------------------------------------------------------------
# cases, sending, checking


class Case:
    """One malformed request and its expected answer.

    body: bytes sent as they are, a dict/list sent as JSON, or None (no body).
    headers: sent on top of `Content-Type: application/json` (when there is a
    body); a header given as None is not sent. A list of (name, value) pairs
    sends each pair as it is, repeats included; a Content-Length among them
    replaces the one send() would add.
    msg: for 400s, a substring the error message must contain (the field).
    allow: for 405s, methods the Allow header must list.
    details: members the error's details must hold.
    errors: for schema failures, the JSON Pointer paths details.errors must name.
    """

    def __init__(self, id, method, path, body=None, status=400, msg=None, headers=None,
                 allow=None, details=None, errors=None):
        self.id, self.method, self.path = id, method, path
        self.body = body if body is None or isinstance(body, bytes) else j(body)
        self.status, self.msg = status, msg
        self.headers = headers or {}
        self.allow, self.details, self.errors = allow, details, errors

    def __repr__(self):
        return f"<Case {self.id}>"


def send(base, method, path, body=None, headers=None, token=None, chunked=False,
         timeout=30):
    """Sends one raw request; tolerates the server answering and closing before
    the whole body has been sent (as it may for a 413)."""
    u = urllib.parse.urlparse(base)
    hdrs = {}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    if token:
        hdrs["Authorization"] = "Bearer " + token
    pairs = list(headers or ()) if isinstance(headers, list) else []
    if not pairs:
        hdrs.update(headers or {})
    own_length = any(k.lower() == "content-length" for k, _ in pairs)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in list(hdrs.items()) + pairs:
            if v is not None:
                conn.putheader(k, v)
        if body is not None:
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif not own_length:
                conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body is not None:
            try:
                if chunked:
                    for i in range(0, len(body), 512):
                        part = body[i:i + 512]
                        conn.send(b"%x\r\n%s\r\n" % (len(part), part))
                    conn.send(b"0\r\n\r\n")
                else:
                    conn.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered early; read what it said
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def check(case, r, codes=None, allow_excludes_method=False):
    """Returns a list of problems with response r to `case` ([] when right).

    codes: the status -> error code table (default CODES).
    allow_excludes_method: on a 405, also require that the Allow header does
    not list the method that was refused.
    """
    codes = CODES if codes is None else codes
    problems = []
    if r.status != case.status:
        problems.append(f"status {r.status}, want {case.status}")
    ct = r.header("Content-Type") or ""
    if not ct.lower().startswith("application/json"):
        problems.append(f"Content-Type {ct!r}, want application/json")
    body = r.json
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        problems.append("body is not {\"error\": {...}}")
        return problems
    if set(body) != {"error"}:
        problems.append(f"extra top-level members {sorted(set(body) - {'error'})}")
    want_code = codes.get(case.status)
    if err.get("code") != want_code:
        problems.append(f"error.code {err.get('code')!r}, want {want_code!r}")
    msg = err.get("message")
    if not isinstance(msg, str) or not msg:
        problems.append("error.message is not a non-empty string")
        msg = ""
    if "details" not in err or not isinstance(err["details"], dict):
        problems.append(f"error.details {err.get('details', '<absent>')!r} is not an object")
    if case.msg and case.msg not in msg:
        problems.append(f"message does not name {case.msg!r}")
    if case.status == 401:
        wa = r.header("WWW-Authenticate") or ""
        if not wa.startswith("Bearer"):
            problems.append(f"WWW-Authenticate {wa!r}, want Bearer")
    if case.status == 405:
        allow = r.header("Allow")
        if allow is None:
            problems.append("no Allow header")
        else:
            listed = {m.strip().upper() for m in allow.split(",")}
            missing = set(case.allow or ()) - listed
            if missing:
                problems.append(f"Allow {allow!r} lacks {sorted(missing)}")
            if allow_excludes_method and case.method in listed:
                problems.append(f"Allow {allow!r} lists the refused {case.method}")
    for k, v in (case.details or {}).items():
        got = err.get("details", {}).get(k) if isinstance(err.get("details"), dict) else None
        if got != v:
            problems.append(f"details.{k} {got!r}, want {v!r}")
    if case.errors is not None:
        errs = err.get("details", {}).get("errors") if isinstance(err.get("details"),
                                                                   dict) else None
        got = sorted(e.get("path") for e in errs if isinstance(e, dict)) \
            if isinstance(errs, list) else None
        if got != sorted(case.errors):
            problems.append(f"details.errors paths {got!r}, want {sorted(case.errors)!r}")
    return problems


def run_cases(base, cases, token=None, codes=None, allow_excludes_method=False):
    """Runs the cases; returns a readable report of the failing ones (codes and
    allow_excludes_method are passed on to check)."""
    failures = []
    for c in cases:
        try:
            r = send(base, c.method, c.path, c.body, c.headers, token=token)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{c.id}: {c.method} {c.path[:80]} -> {type(exc).__name__}: {exc}")
            continue
        problems = check(c, r, codes=codes, allow_excludes_method=allow_excludes_method)
        if problems:
            failures.append(f"{c.id}: {c.method} {c.path[:80]} -> {r.status} "
                            f"{r.body[:300]!r}\n      " + "; ".join(problems))
    return failures
