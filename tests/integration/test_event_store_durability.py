"""Durability (SPEC §1): every acknowledged append survives `kill -9` of the
event store, on both back ends."""
import random
import threading
import time

from eskit import Client

N_WRITERS = 8
KILL_AFTER_EVENTS = 1000     # SIGKILL once this many events are acknowledged


def ev(oid, etype, version=None, payload=None):
    e = {"originator": {"id": oid}, "event_type": etype,
         "payload": payload if payload is not None else {}}
    if version is not None:
        e["originator"]["version"] = version
    return e


def test_acknowledged_appends_survive_kill9(backend, services):
    url = backend()
    es = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert es.wait_ready(), es.log()

    lock = threading.Lock()
    acked = {}              # log_id -> (originator id, version, event_type, payload)
    errors = []
    killed = threading.Event()
    enough = threading.Event()
    seed = random.randrange(1 << 30)

    def writer(t):
        rnd = random.Random(seed + t)
        streams = [f"dur-{t}-a", f"dur-{t}-b", f"dur-{t}-c"]
        version = {s: 0 for s in streams}
        i = 0
        deadline = time.time() + 60
        while not killed.is_set() and time.time() < deadline:
            n = 1 if rnd.random() < 0.5 else rnd.randint(2, 5)
            explicit = rnd.random() < 0.5
            events = []
            for k in range(n):
                s = rnd.choice(streams)
                version[s] += 1
                i += 1
                events.append(ev(s, "Account.Deposited", version[s] if explicit else None,
                                 {"writer": t, "seq": i, "amount": rnd.randint(1, 10**6)}))
            body = events[0] if n == 1 else {"events": events}
            try:
                r = Client(es.url, timeout=30).post("/v1/events", body)
            except OSError as e:
                if not killed.is_set():
                    with lock:
                        errors.append(f"writer {t} before the kill: {e!r}")
                return      # after the kill: expected, stop writing
            if r.status != 201:
                if not killed.is_set():
                    with lock:
                        errors.append(f"writer {t} before the kill: POST {body} -> {r}")
                return
            results = r.json["results"] if "results" in r.json else [r.json]
            with lock:
                for sent, x in zip(events, results):
                    o = x["event"]["originator"]
                    if o["id"] != sent["originator"]["id"]:
                        errors.append(f"writer {t}: sent {sent}, got {x}")
                    acked[x["log_id"]] = (o["id"], o["version"], x["event"]["event_type"],
                                          x["event"]["payload"])
                if len(acked) >= KILL_AFTER_EVENTS:
                    enough.set()

    ts = [threading.Thread(target=writer, args=(t,)) for t in range(N_WRITERS)]
    [t.start() for t in ts]
    assert enough.wait(60), (f"only {len(acked)} appends acknowledged in 60 s: {errors[:5]}\n"
                             + es.log()[-3000:])
    killed.set()
    es.kill9()
    [t.join(60) for t in ts]
    assert not errors, "\n".join(errors[:20]) + "\n" + es.log()[-3000:]
    n_acked = len(acked)
    assert n_acked >= KILL_AFTER_EVENTS

    # a new process on the same database
    es2 = services("event-store", {"ESKIT_DATABASE_URL": url}, workdir=es.workdir)
    assert es2.wait_ready(), es2.log()
    c = es2.client()

    # every acknowledged event is in its stream, at the same version, unchanged
    by_stream = {}
    for lid, (s, v, et, p) in acked.items():
        by_stream.setdefault(s, {})[v] = (et, p)
    for s, versions in sorted(by_stream.items()):
        r = c.get(f"/v1/events/{s}")
        assert r.status == 200, r
        stored = {e["originator"]["version"]: e for e in r.json["events"]}
        got = sorted(stored)
        # no gaps (events written but not acknowledged before the kill may be there)
        assert got == list(range(1, len(got) + 1)), (s, got)
        for v, (et, p) in sorted(versions.items()):
            assert v in stored, (f"acknowledged event {s} v{v} lost after kill -9; "
                                 f"stream has {got}\n{es2.log()[-3000:]}")
            assert stored[v]["event_type"] == et and stored[v]["payload"] == p, (
                s, v, stored[v], et, p)

    # the log holds every acknowledged log_id, with the same event
    log = {}
    from_id = 1
    while True:
        r = c.get("/v1/logs", params={"from_id": from_id, "size": 1000})
        assert r.status == 200, r
        for x in r.json["results"]:
            o = x["event"]["originator"]
            log[x["id"]] = (o["id"], o["version"])
        if not r.json["results"]:
            break
        from_id = r.json["next_from_id"]
    assert max(log) == r.json["head_id"]
    lost = sorted(set(acked) - set(log))
    assert not lost, f"{len(lost)} acknowledged log ids missing after kill -9: {lost[:30]}"
    wrong = [(lid, log[lid], acked[lid][:2]) for lid in acked if log[lid] != acked[lid][:2]]
    assert not wrong, f"log entries changed: {wrong[:20]}"

    # and the store goes on: the next append follows the stored versions
    s = sorted(by_stream)[0]
    cur = len(c.get(f"/v1/events/{s}").json["events"])
    r = c.post("/v1/events", ev(s, "Account.Deposited", cur + 1))
    assert r.status == 201, r
    assert r.json["log_id"] > max(log)
    print(f"{n_acked} acknowledged before kill -9; {len(log)} in the log after restart")
