"""The soak's load (tests/soak/soak.py): clients that write and read while the
chaos loop kills, restarts and pauses what they talk to.

- Appender: single appends and batches to the event store, every event with a
  fresh event_id; most events go to streams the appender owns (their versions
  are predicted, and some requests send them as expected versions), the others
  to streams shared by every appender (no version).
- CrudWriter: documents through the CRUD store, each written by one writer:
  create (with or without an id), PUT, PATCH (with or without If-Match) and
  DELETE, every write with an Idempotency-Key of its own.
- SseReader: tails GET /v1/logs/stream, reconnecting with Last-Event-ID, and
  records every id it sees.

Every write is sent again, unchanged (same body, same event ids, same key),
after ANY failure: a connection error, a time-out or a 5xx. So each logical
write ends acknowledged (200/201) or, past a bound, given up (a failure of the
soak). Every acknowledged write, every retry and every answer that is not what
the contract promises is recorded for soak.py and check.py.

Every loop is bounded in count and in time. Only the Python standard library.
"""
import http.client
import json
import random
import socket
import threading
import time
import uuid

from eskit import Client

REQUEST_TIMEOUT = 3.0        # s; shorter than a pause, so pauses cause resends
IMPATIENT = 0.05             # share of first attempts that time out early (send)
RETRY_SECONDS = 300.0        # a write still unacknowledged this long after the
                             # load stopped is given up (a failure)
MAX_OPS = 10_000_000         # bound of every writer loop
MAX_ATTEMPTS = 100_000       # bound of the retries of one write
SHARED_STREAMS = 8
DOC_TYPE = "SoakDoc"


class Stats:
    """Counters and findings shared by the load threads (under one lock)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.n = {}                  # name -> count
        self.failures = []           # (category, text): lost, duplicated, ...

    def add(self, name, k=1):
        with self.lock:
            self.n[name] = self.n.get(name, 0) + k

    def get(self, name):
        with self.lock:
            return self.n.get(name, 0)

    def fail(self, category, text):
        with self.lock:
            self.failures.append((category, text))


def send(client, method, path, body, headers, ok, stats, what, stop, rng):
    """Sends one request until it is answered with a status in ok, resending
    it unchanged after a connection error, a time-out or a 5xx (with a
    back-off of 50 ms to 1 s). A share IMPATIENT of first attempts wait
    only 1 to 50 ms for their answer, on a connection of their own: the
    resend often races the first attempt, still being served. Returns (response, attempts):
    the response is None when the write was given up, else its answer (ok or
    another 4xx)."""
    delay = 0.05
    give_up_at = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            if attempt == 1 and rng.random() < IMPATIENT:
                stats.add(f"impatient.{what}")
                short = Client(f"http://{client.host}:{client.port}",
                               timeout=rng.uniform(0.001, 0.05))
                r = short.request(method, path, body=body, headers=headers)
            else:
                r = client.request(method, path, body=body, headers=headers, keep=True)
        except TimeoutError:
            reason = "timeout"
        except (OSError, http.client.HTTPException):
            reason = "connection"
        else:
            if r.status in ok or r.status < 500:
                return r, attempt
            reason = str(r.status)
        stats.add(f"retries.{what}")
        stats.add(f"retry_reason.{reason}")
        if stop.is_set():
            give_up_at = give_up_at or time.monotonic() + RETRY_SECONDS
            if time.monotonic() > give_up_at:
                break
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    stats.fail("unacknowledged", f"{what} {method} {path}: given up after {attempt} attempts")
    return None, attempt


class Appender(threading.Thread):
    """Appends events with fresh event ids, singles and batches, until stop.

    acked: event_id -> (log_id, stream, version) of every acknowledged event;
    streams: the streams it wrote (its own and the shared ones)."""

    def __init__(self, ix, url, seed, stats, stop):
        super().__init__(name=f"appender-{ix}", daemon=True)
        self.ix, self.url, self.stats, self.stop = ix, url, stats, stop
        self.rng = random.Random(f"{seed}-appender-{ix}")
        self.seed = seed
        self.acked = {}
        self.streams = set()

    def run(self):
        rng, stats = self.rng, self.stats
        client = Client(self.url, timeout=REQUEST_TIMEOUT)
        shared = [f"soak-{self.seed}-shared-{j}" for j in range(SHARED_STREAMS)]
        own, own_version, own_left, n_own = None, 0, 0, 0
        for n in range(MAX_OPS):
            if self.stop.is_set():
                break
            if own_left <= 0:       # a new stream of its own every 50 to 300 events
                n_own += 1
                own, own_version, own_left = f"soak-{self.seed}-a{self.ix}-{n_own}", 0, \
                    rng.randint(50, 300)
            count = 1 if rng.random() < 0.5 else rng.randint(2, 20)
            versioned = rng.random() < 0.6   # own events carry their expected version
            events, expect = [], []          # expect: (stream, predicted version or None)
            for i in range(count):
                ev = {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                      "event_type": "Soak.Single" if count == 1 else "Soak.Batched",
                      "payload": {"a": self.ix, "n": n, "i": i,
                                  "pad": "x" * rng.randint(0, 200)}}
                if rng.random() < 0.7:
                    own_version += 1
                    own_left -= 1
                    ev["originator"] = {"id": own}
                    if versioned:
                        ev["originator"]["version"] = own_version
                    expect.append((own, own_version))
                else:
                    s = rng.choice(shared)
                    ev["originator"] = {"id": s}
                    expect.append((s, None))
                if rng.random() < 0.3:
                    ev["metadata"] = {"correlation_id": f"c-{self.ix}-{n}"}
                events.append(ev)
            body = events[0] if count == 1 else {"events": events}
            r, attempts = send(client, "POST", "/v1/events", body, None, (200, 201), stats,
                               "append", self.stop, rng)
            if r is None:
                own_left = 0        # its versions are unknown now: go on elsewhere
                continue
            if r.status not in (200, 201) or (r.status == 200 and attempts == 1):
                stats.fail("unexpected", f"append of {count} (attempt {attempts}) -> {r}")
                own_left = 0
                continue
            if r.status == 200:
                stats.add("replayed.append")  # an earlier attempt had committed
            results = [r.json] if count == 1 else r.json.get("results", [])
            if len(results) != count:
                stats.fail("unexpected", f"append of {count} answered {len(results)}: {r}")
                continue
            for ev, res, (stream, version) in zip(events, results, expect):
                got = res["event"]
                if got.get("event_id") != ev["event_id"] or \
                        got["originator"]["id"] != stream or \
                        (version is not None and got["originator"]["version"] != version):
                    stats.fail("unexpected", f"append answered {got} for {ev}")
                self.acked[ev["event_id"]] = (res["log_id"], stream,
                                              got["originator"]["version"])
                self.streams.add(stream)
            stats.add("acked.appends")
            stats.add("acked.events", count)
            time.sleep(rng.uniform(0, 0.06))


def merge_patch(target, patch):
    """RFC 7386 applied to a copy of target."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


class CrudWriter(threading.Thread):
    """Writes documents of DOC_TYPE through the CRUD store, every write with an
    Idempotency-Key, until stop. Each document is written by this writer only,
    so it knows each document's version and content.

    docs: id -> {"version", "payload", "deleted", "writes": [(version, kind,
    seq, key)]} of every document with an acknowledged write; keys: key ->
    (id, version) of every acknowledged keyed write."""

    def __init__(self, ix, url, seed, stats, stop):
        super().__init__(name=f"crud-writer-{ix}", daemon=True)
        self.ix, self.url, self.stats, self.stop = ix, url, stats, stop
        self.rng = random.Random(f"{seed}-crud-{ix}")
        self.seed = seed
        self.docs = {}
        self.keys = {}
        self.abandoned = set()      # documents left after a wrong answer

    def run(self):
        rng, stats = self.rng, self.stats
        self.client = Client(self.url, timeout=REQUEST_TIMEOUT)
        doc, life = None, 0
        for n in range(MAX_OPS):
            if self.stop.is_set():
                break
            key = f"soak-{self.seed}-w{self.ix}-{n}"
            seq = n
            if doc is None:
                payload = {"seq": seq, "w": self.ix, "name": f"doc {n}",
                           "tags": [rng.randint(0, 9) for _ in range(rng.randint(0, 3))]}
                body = {"payload": payload}
                if rng.random() < 0.5:
                    body["originator"] = {"id": f"soak-{self.seed}-d{self.ix}-{n}"}
                r = self._write("create", key, "POST", f"/v1/entities/{DOC_TYPE}", body, None,
                                201)
                if r is None:
                    continue
                oid = r.json["originator"]["id"]
                if r.json["originator"].get("version") != 1 or \
                        ("originator" in body and oid != body["originator"]["id"]):
                    stats.fail("unexpected", f"create answered {r}")
                doc = self.docs[oid] = {"id": oid, "version": 1, "payload": payload,
                                        "deleted": False, "writes": []}
                self._acked(doc, "create", seq, key)
                life = rng.randint(3, 40)
                continue
            path = f"/v1/entities/{DOC_TYPE}/{doc['id']}"
            v = doc["version"]
            op = "delete" if len(doc["writes"]) >= life else \
                ("put" if rng.random() < 0.35 else "patch")
            if op == "put":
                payload = {"seq": seq, "w": self.ix, "name": f"put {n}",
                           "n": rng.randint(0, 10**6)}
                if rng.random() < 0.5:
                    body, headers = {"originator": {"version": v}, "payload": payload}, None
                else:
                    body, headers = {"payload": payload}, {"If-Match": f'"{v}"'}
                r = self._write(op, key, "PUT", path, body, headers, 200)
                want = payload
            elif op == "patch":
                body = {"seq": seq, f"f{rng.randint(0, 5)}": rng.choice(
                    [None, rng.randint(0, 99), {"x": rng.randint(0, 9)}, "s"])}
                headers = {"If-Match": f'"{v}"'} if rng.random() < 0.5 else None
                r = self._write(op, key, "PATCH", path, body, headers, 200)
                want = merge_patch(doc["payload"], body)
                if r is not None and r.json.get("payload") != want:
                    stats.fail("unexpected", f"PATCH {path} {body} answered {r}, not {want}")
            else:
                headers = {"If-Match": f'"{v}"'} if rng.random() < 0.5 else None
                r = self._write(op, key, "DELETE", path, None, headers, 200)
                want = doc["payload"]
            if r is None:
                self.abandoned.add(doc["id"])
                doc = None
                continue
            if r.json["originator"].get("version") != v + 1:
                stats.fail("unexpected", f"{op} {path} at {v} answered {r}")
            doc["version"], doc["payload"] = v + 1, want
            self._acked(doc, op, seq, key)
            if op == "delete":
                doc["deleted"] = True
                doc = None
            time.sleep(rng.uniform(0, 0.06))

    def _write(self, what, key, method, path, body, headers, status):
        """One keyed write, resent until acknowledged; None (recorded as a
        failure) when it was given up or answered otherwise than status."""
        hdrs = dict(headers or {}, **{"Idempotency-Key": key})
        r, attempts = send(self.client, method, path, body, hdrs, (status,), self.stats,
                           "crud", self.stop, self.rng)
        if r is None:
            return None
        if r.status != status or not isinstance(r.json, dict) or "originator" not in r.json:
            self.stats.fail("unexpected", f"{what} {method} {path} (attempt {attempts}) -> {r}")
            return None
        return r

    def _acked(self, doc, kind, seq, key):
        doc["writes"].append((doc["version"], kind, seq, key))
        self.keys[key] = (doc["id"], doc["version"])
        self.stats.add("acked.crud")
        self.stats.add(f"acked.crud.{kind}")


class SseReader(threading.Thread):
    """Tails GET /v1/logs/stream from the start, reconnecting with
    Last-Event-ID after any failure; ids: every entry id seen, in order."""

    def __init__(self, url_host, url_port, stats):
        super().__init__(name="sse-reader", daemon=True)
        self.host, self.port, self.stats = url_host, url_port, stats
        self.ids = []
        self.last = 0
        self.reconnects = 0
        self.done = threading.Event()
        self.conn = None

    def run(self):
        deadline = time.monotonic() + 24 * 3600    # bound; soak.py sets done far earlier
        while not self.done.is_set() and time.monotonic() < deadline:
            try:
                self._follow()
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                pass
            finally:
                if self.conn:
                    self.conn.close()
            if self.done.is_set():
                break
            self.reconnects += 1
            time.sleep(0.2)

    def _follow(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=25)
        headers = {"Last-Event-ID": str(self.last)} if self.last else {}
        self.conn.request("GET", "/v1/logs/stream", headers=headers)
        resp = self.conn.getresponse()
        if resp.status != 200:
            resp.read()
            return
        entry_id, data = None, None
        for _ in range(10**9):
            if self.done.is_set():
                return
            line = resp.readline()
            if not line:
                return                  # the stream ended: reconnect
            line = line.decode("utf-8").rstrip("\r\n")
            if line.startswith("id:"):
                entry_id = int(line[3:].strip())
            elif line.startswith("data:"):
                data = json.loads(line[5:])
            elif line == "" and entry_id is not None:
                if data is None or data.get("id") != entry_id:
                    self.stats.fail("skipped", f"SSE: entry {entry_id} came with data {data}")
                if self.ids and entry_id <= self.ids[-1]:
                    self.stats.fail("skipped", f"SSE: id {entry_id} after {self.ids[-1]}")
                self.ids.append(entry_id)
                self.last = entry_id
                entry_id, data = None, None

    def finish(self):
        """Stops the reader (its blocking read ends at once)."""
        self.done.set()
        conn = self.conn
        if conn and conn.sock:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.join(30)
