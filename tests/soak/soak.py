#!/usr/bin/env python3
"""The chaos soak (issue 12): `make soak`, not part of `make test`.

For each back end (SQLite files, or a private PostgreSQL cluster made with
initdb) it starts the four services on loopback ports: the event store and the
consumer store on the database, the CRUD store on the event store, and TWO
metrics consumers under one ESKIT_CONSUMER_NAME. Then, for SOAK_SECONDS:

- load (tests/soak/load.py): appenders (singles and batches, fresh event_ids,
  some expected versions), CRUD writers (create/put/patch/delete, each with an
  Idempotency-Key) and a tailing SSE reader; every write is resent unchanged
  after any failure until it is acknowledged (and a few first attempts give
  up after a few milliseconds, so that resends race their first attempt);
- chaos (below): SIGKILL of a random service at a random moment, then a
  restart on the same port and database; on PostgreSQL, `pg_ctl restart` with
  `-m fast` and `-m immediate`; SIGSTOP/SIGCONT pauses of a random service
  for a few seconds. A service that exits by itself is a failure (restarted).

Then the chaos stops, every process is made to run again, the load stops (its
writes in flight still get acknowledged), the SSE reader and the consumers
catch up with the head, and tests/soak/check.py checks everything: lost,
duplicated, skipped, consumers at the head. The report prints the counts, and
the exit status is 1 on any finding, on either back end.

Knobs (environment, as make soak passes them; flags override):
  SOAK_SECONDS (600) per back end, SOAK_BACKEND (both | sqlite | pg),
  SOAK_SEED (default: from the clock; printed, so a run can be repeated as
  far as choices go: timing never repeats), SOAK_APPENDERS (4),
  SOAK_CRUD_WRITERS (3), SOAK_KEEP=1 keeps the services' directories and logs
  (they are kept anyway when a check fails).

Only the Python standard library; Service, PgCluster and Client are
tests/integration/eskit.py's. Network traffic goes to 127.0.0.1 only; every
loop is bounded in count and in time.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from eskit import PG_BIN, Client, PgCluster, Service, _as_postgres  # noqa: E402
import check   # noqa: E402
import load    # noqa: E402

CONSUMER_NAME = "soak-metrics"
SERVICES = ["event-store", "crud-store", "consumer-store", "metrics-consumer-1",
            "metrics-consumer-2"]
CATCH_UP_SECONDS = 180      # bound of each wait at the end
MAX_CHAOS_ACTIONS = 100_000
CHAOS_WEIGHTS = [3, 3, 2, 1, 1]   # of SERVICES: the stores more often than each consumer


def log(msg):
    print(msg, flush=True)


class Stack:
    """The processes of one back end: five services and, on pg, PostgreSQL.

    Every change of a process's state (kill, restart, pause, PostgreSQL
    restart) goes through this object under its lock, and is counted."""

    def __init__(self, kind, workdir):
        self.kind, self.workdir = kind, workdir
        self.lock = threading.RLock()
        self.counts = {}            # "kill.<service>", "pause.<service>", "pg.fast", ...
        self.crashes = []           # services that exited without being told to
        self.mc_window = 0          # the stored offset before the latest consumer start
        self.pg = None
        if kind == "pg":
            self.pg = PgCluster()
            self.pg.start()
            es_db, cs_db = self.pg.new_database(), self.pg.new_database()
        else:
            es_db = f"sqlite:{workdir}/event-store.db"
            cs_db = f"sqlite:{workdir}/consumer-store.db"
        quiet = {"ESKIT_LOG_LEVEL": "warn"}
        self.svc = {}
        self.svc["event-store"] = self._service("event-store", "event-store",
                                                dict(quiet, ESKIT_DATABASE_URL=es_db))
        self.svc["consumer-store"] = self._service("consumer-store", "consumer-store",
                                                   dict(quiet, ESKIT_DATABASE_URL=cs_db))
        es_url, cs_url = self.svc["event-store"].url, self.svc["consumer-store"].url
        self.svc["crud-store"] = self._service("crud-store", "crud-store",
                                               dict(quiet, ESKIT_EVENT_STORE_URL=es_url))
        crud_url = self.svc["crud-store"].url
        for n, batch in ((1, "100"), (2, "37")):
            self.svc[f"metrics-consumer-{n}"] = self._service(
                f"metrics-consumer-{n}", "metrics-consumer",
                dict(quiet, ESKIT_EVENT_STORE_URL=es_url, ESKIT_CONSUMER_STORE_URL=cs_url,
                     ESKIT_CRUD_STORE_URL=crud_url, ESKIT_CONSUMER_NAME=CONSUMER_NAME,
                     ESKIT_CONSUMER_BATCH_SIZE=batch, ESKIT_CONSUMER_POLL_WAIT="1"))
        self.paused = set()

    def _service(self, label, binary, env):
        d = os.path.join(self.workdir, label)
        os.makedirs(d, exist_ok=True)
        return Service(binary, env=env, workdir=d)

    def count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def start_all(self):
        for name in SERVICES:
            self.svc[name].start()
        for name in SERVICES:
            if not self.svc[name].wait_ready(60):
                raise RuntimeError(f"{name} is not ready:\n{self.svc[name].log()}")

    def stored_offset(self, tries=150):
        """The consumers' stored offset (0 when none is stored), or None when
        the consumer store does not answer."""
        c = Client(self.svc["consumer-store"].url, timeout=5)
        for _ in range(tries):
            try:
                r = c.get(f"/v1/consumers/{CONSUMER_NAME}")
                if r.status == 404:
                    return 0
                if r.status == 200:
                    return r.json["offset"]
            except OSError:
                pass
            time.sleep(0.2)
        return None

    def restart(self, name):
        """Starts a stopped service again, on the same port and database."""
        s = self.svc[name]
        if name.startswith("metrics-consumer"):
            # the other consumer may move the offset meanwhile; what it moves
            # it has counted (check.py's window)
            self.mc_window = self.stored_offset()
        for attempt in range(10):
            try:
                s.start()
                return
            except RuntimeError as e:
                log(f"  ! {name} did not start (attempt {attempt + 1}): {str(e)[-500:]}")
                s.stop(signal.SIGKILL)
                time.sleep(1)
        raise RuntimeError(f"{name} does not start again")

    def kill(self, name, rng):
        with self.lock:
            self.svc[name].kill9()
            self.count(f"kill.{name}")
            time.sleep(rng.uniform(0, 1.5))
            self.restart(name)

    def pause(self, name, seconds):
        with self.lock:
            p = self.svc[name].proc
            p.send_signal(signal.SIGSTOP)
            self.paused.add(name)
            self.count(f"pause.{name}")
            try:
                time.sleep(seconds)
            finally:
                p.send_signal(signal.SIGCONT)
                self.paused.discard(name)

    def restart_pg(self, mode):
        with self.lock:
            subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.pg.data, "-w",
                                         "-t", "120", "-m", mode, "-l",
                                         os.path.join(self.pg.dir, "log"), "restart"]),
                           check=True, stdout=subprocess.DEVNULL)
            self.count(f"pg.{mode}")

    def check_alive(self):
        """Restarts any service that exited by itself, and records it."""
        with self.lock:
            for name in SERVICES:
                p = self.svc[name].proc
                if p is not None and p.poll() is not None:
                    tail = self.svc[name].log()[-3000:]
                    self.crashes.append(f"{name} exited by itself with {p.returncode}:\n"
                                        f"{tail}")
                    log(f"  ! {name} exited by itself with {p.returncode}")
                    self.restart(name)

    def stop_all(self):
        for name in reversed(SERVICES):
            s = self.svc[name]
            if s.proc and s.proc.poll() is None:
                s.proc.send_signal(signal.SIGCONT)
                s.stop()
        if self.pg:
            self.pg.destroy()


class Chaos(threading.Thread):
    """One fault at a time, at random moments, until stop: SIGKILL and
    restart (45%), SIGSTOP/SIGCONT for 0.5 to 6 s (35%), and on pg a restart
    of PostgreSQL, fast or immediate (20%). The service is drawn by
    CHAOS_WEIGHTS."""

    def __init__(self, stack, seed, stop):
        super().__init__(name="chaos", daemon=True)
        self.stack, self.stop = stack, stop
        self.rng = random.Random(f"{seed}-chaos")
        self.error = None

    def run(self):
        rng = self.rng
        try:
            for _ in range(MAX_CHAOS_ACTIONS):
                if self.stop.wait(rng.uniform(0.5, 4.0)):
                    return
                self.stack.check_alive()
                roll = rng.random()
                target = rng.choices(SERVICES, weights=CHAOS_WEIGHTS)[0]
                if self.stack.pg and roll >= 0.8:
                    self.stack.restart_pg("fast" if roll < 0.9 else "immediate")
                elif roll < 0.45:
                    self.stack.kill(target, rng)
                else:
                    self.stack.pause(target, rng.uniform(0.5, 6.0))
        except Exception as e:   # reported as a failure of the run
            self.error = f"chaos loop: {e!r}"
            log(f"  ! {self.error}")


def wait_for(what, fn, seconds=CATCH_UP_SECONDS):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last is True:
                return True
        except (OSError, RuntimeError, KeyError, TypeError) as e:
            last = e
        time.sleep(0.5)
    log(f"  ! timed out waiting for {what} (last: {last!r})")
    return False


def head_id(es_url):
    r = Client(es_url, timeout=10).get("/v1/logs", params={"from_id": 1, "size": 1})
    if r.status != 200:
        raise RuntimeError(f"head: {r}")
    return r.json["head_id"]


def consumer_state(stack):
    """(stored offset, [(offset, lag, eskit_events_total summed) per metrics
    consumer])."""
    mcs = []
    for n in (1, 2):
        s = check.scrape(stack.svc[f"metrics-consumer-{n}"].url)
        label = f'consumer="{CONSUMER_NAME}"'
        mcs.append((int(check.family(s, "eskit_consumer_offset", label)),
                    int(check.family(s, "eskit_consumer_lag", label)),
                    int(check.family(s, "eskit_events_total"))))
    return stack.stored_offset(tries=5), mcs


def run_backend(kind, seconds, seed, n_appenders, n_writers, keep):
    workdir = tempfile.mkdtemp(prefix=f"eskit-soak-{kind}-")
    log(f"== soak {kind}: {seconds} s, seed {seed}, {n_appenders} appenders, "
        f"{n_writers} CRUD writers, work dir {workdir}")
    stack = Stack(kind, workdir)
    stats = load.Stats()
    findings = check.Findings()
    started = time.monotonic()
    ok = False
    try:
        stack.start_all()
        es, crud = stack.svc["event-store"], stack.svc["crud-store"]
        # a registered type with a schema: CRUD writes are validated, and the
        # metrics consumers count them in eskit_crud_events_total
        r = Client(crud.url).post("/v1/types", {"spec": {
            "entity_type": load.DOC_TYPE, "schema_spec": {"schema_version": 1, "json_schema": {
                "type": "object", "required": ["seq"],
                "properties": {"seq": {"type": "integer"}}}}}, "skip_duplicate": True})
        if r.status not in (200, 201):
            raise RuntimeError(f"registering {load.DOC_TYPE}: {r}")

        stop_load, stop_chaos = threading.Event(), threading.Event()
        sse = load.SseReader("127.0.0.1", es.port, stats)
        appenders = [load.Appender(i, es.url, seed, stats, stop_load)
                     for i in range(n_appenders)]
        writers = [load.CrudWriter(i, crud.url, seed, stats, stop_load)
                   for i in range(n_writers)]
        chaos = Chaos(stack, seed, stop_chaos)
        for t in [sse, *appenders, *writers, chaos]:
            t.start()
        end = time.monotonic() + seconds
        next_report = time.monotonic() + 30
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            if time.monotonic() >= next_report:
                next_report += 30
                log(f"  [{time.monotonic() - started:4.0f} s] appends "
                    f"{stats.get('acked.appends')} (events {stats.get('acked.events')}), "
                    f"CRUD writes {stats.get('acked.crud')}, retries "
                    f"{stats.get('retries.append') + stats.get('retries.crud')}, "
                    f"kills {sum(v for k, v in stack.counts.items() if k.startswith('kill'))}, "
                    f"pauses {sum(v for k, v in stack.counts.items() if k.startswith('pause'))}"
                    f", PostgreSQL restarts "
                    f"{stack.counts.get('pg.fast', 0) + stack.counts.get('pg.immediate', 0)}"
                    f", SSE at id {sse.last}")

        # --- the end: no more chaos, everything runs, the load finishes
        stop_chaos.set()
        chaos.join(120)
        stack.check_alive()
        for name in SERVICES:
            if not stack.svc[name].wait_ready(60):
                findings.add("consumer" if name.startswith("metrics") else "unready",
                             f"{name} is not ready after the chaos")
        stop_load.set()
        for t in [*appenders, *writers]:
            t.join(load.RETRY_SECONDS + 60)
            if t.is_alive():
                findings.add("unacknowledged", f"{t.name} did not finish")
        load_end = time.monotonic()
        head = head_id(es.url)
        wait_for(f"the SSE reader at the head ({head})", lambda: sse.last >= head)
        sse.finish()

        def at_head():
            stored, mcs = consumer_state(stack)
            return stored == head and all(o == head and lag == 0 for o, lag, _ in mcs) or \
                (stored, mcs)
        wait_for(f"the consumers at the head ({head})", at_head)
        stored, mcs = consumer_state(stack)
        stack.check_alive()
        numbers = check.check(es.url, crud.url, appenders, writers, list(sse.ids),
                              (stored, mcs, stack.mc_window), findings)
        for category, text in stats.failures:
            findings.add(category, text)
        for text in stack.crashes:
            findings.add("crashed", text)
        if chaos.error:
            findings.add("chaos", chaos.error)
        ok = report(kind, seconds, seed, stats, stack, sse, numbers, findings,
                    load_end - started, time.monotonic() - load_end)
    except Exception as e:
        log(f"  ! the soak of {kind} broke: {e!r}")
        raise
    finally:
        stack.stop_all()
        if ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"  the services' logs are kept in {workdir}")
    return ok


def report(kind, seconds, seed, stats, stack, sse, n, findings, load_s, check_s):
    c = stack.counts
    g = stats.get
    kills = ", ".join(f"{s} {c.get('kill.' + s, 0)}" for s in SERVICES)
    pauses = ", ".join(f"{s} {c.get('pause.' + s, 0)}" for s in SERVICES)
    reasons = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(stats.n.items())
                        if k.startswith("retry_reason."))
    lost, dup, skipped = (findings.count(k) for k in ("lost", "duplicated", "skipped"))
    other = sum(len(v) for k, v in findings.items.items()
                if k not in ("lost", "duplicated", "skipped"))
    lines = [
        f"== soak {kind} result: {seconds} s of chaos (load {load_s:.0f} s, catch-up and "
        f"checks {check_s:.0f} s), seed {seed}",
        f"  acknowledged: appends {g('acked.appends')} (events {g('acked.events')}); CRUD "
        f"writes {g('acked.crud')} (create {g('acked.crud.create')}, put "
        f"{g('acked.crud.put')}, patch {g('acked.crud.patch')}, delete "
        f"{g('acked.crud.delete')}) on {n['docs']} documents, {n['keys']} keys",
        f"  retries: appends {g('retries.append')} (answered 200, already committed: "
        f"{g('replayed.append')}), CRUD {g('retries.crud')}; by cause: {reasons or 'none'}; "
        f"first attempts with a short time-out: appends {g('impatient.append')}, CRUD "
        f"{g('impatient.crud')}",
        f"  kills (SIGKILL + restart): {sum(c.get('kill.' + s, 0) for s in SERVICES)}: "
        f"{kills}",
        "  PostgreSQL restarts: " + (f"{c.get('pg.fast', 0) + c.get('pg.immediate', 0)} "
                                      f"(-m fast {c.get('pg.fast', 0)}, -m immediate "
                                      f"{c.get('pg.immediate', 0)})" if stack.pg else "n/a"),
        f"  pauses (SIGSTOP/SIGCONT): {sum(c.get('pause.' + s, 0) for s in SERVICES)}: "
        f"{pauses}",
        f"  log: {n['log_entries']} entries, head {n['head']}, {n['streams']} streams, "
        f"{n['key_records']} key records; SSE reader: {n['sse_seen']} ids, "
        f"{sse.reconnects} reconnects",
        f"  consumers: both at offset {n['head']} == head; eskit_events_total of the two "
        f"{n['counted']} >= {n['due']} entries after offset {n['window']}"
        if not findings.count("consumer") else
        f"  consumers: NOT at the head ({findings.count('consumer')} findings)",
        f"  lost {lost}, duplicated {dup}, skipped {skipped}, other failures {other}",
    ]
    for category, items in sorted(findings.items.items()):
        for text in items[:20]:
            lines.append(f"  {category}: {text}")
        if len(items) > 20:
            lines.append(f"  {category}: … {len(items) - 20} more")
    ok = lost == dup == skipped == other == 0
    lines.append(f"== soak {kind}: {'PASS' if ok else 'FAIL'}")
    log("\n".join(lines))
    return ok


def main():
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=float(env("SOAK_SECONDS") or 600))
    ap.add_argument("--backend", choices=["sqlite", "pg", "both"],
                    default=env("SOAK_BACKEND") or "both")
    ap.add_argument("--seed", type=int, default=int(env("SOAK_SEED") or 0) or
                    int(time.time()) % 1_000_000)
    ap.add_argument("--appenders", type=int, default=int(env("SOAK_APPENDERS") or 4))
    ap.add_argument("--crud-writers", type=int, default=int(env("SOAK_CRUD_WRITERS") or 3))
    ap.add_argument("--keep", action="store_true", default=env("SOAK_KEEP") == "1")
    a = ap.parse_args()
    kinds = ["sqlite", "pg"] if a.backend == "both" else [a.backend]
    results = {k: run_backend(k, a.seconds, a.seed, a.appenders, a.crud_writers, a.keep)
               for k in kinds}
    log("== soak: " + ", ".join(f"{k} {'PASS' if ok else 'FAIL'}" for k, ok in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
