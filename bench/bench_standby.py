"""Reads on a hot standby (make bench, section `standby`): log reads and SSE
fan-out served by one standby (ESKIT_DATABASE_READ_URL) next to the same
served by the primary, and the primary's CPU in each case.

One primary and one asynchronous hot standby (tests/integration/ha.py,
StandbyPair) on this machine; three event stores on one database: a writer
(a steady 100 appends/s, as a live system has), one whose reads go to the
primary and one whose reads go to the standby. Both servers share this
machine's cores, so the throughputs say little about a second machine's; the
primary's CPU (every process of that cluster, from /proc) says what moving
the readers takes off it.
"""
import os
import re
import statistics
import threading
import time
import http.client

from benchlib import DURATION, ROUNDS
from eskit import Client, Service
from ha import StandbyPair, _children, _postmaster_pid

WRITE_RATE = 100   # appends/s in the background
SUBSCRIBERS = 100  # SSE streams in the fan-out measurement
TICK = os.sysconf("SC_CLK_TCK")


def cluster_cpu(data_dir):
    """CPU seconds used so far by the postmaster of data_dir and its children."""
    pm = _postmaster_pid(data_dir)
    total = 0
    for pid in ([pm] + _children(pm)) if pm else []:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def _ms(text):
    """wrk's "812.00us", "12.34ms", "1.02s", "1.10m" in ms (nan when it is none)."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def wrk_latency(url, path, conns=16, seconds=DURATION):
    """wrk's req/s and its median and p99 latency (ms)."""
    import subprocess
    out = subprocess.run(["wrk", "-t", "2", "-c", str(conns), "-d", f"{seconds}s", "--latency",
                          url + path], capture_output=True, text=True).stdout
    def find(pattern):
        m = re.search(pattern, out)
        return m.group(1) if m else ""
    rps = float(find(r"Requests/sec:\s+([\d.]+)") or 0)
    p50, p99 = _ms(find(r"\s50%\s+(\S+)")), _ms(find(r"\s99%\s+(\S+)"))
    if not rps:
        print(f"    (wrk: {out.strip()[-300:]!r})")
    if re.search(r"Non-2xx or 3xx responses", out):
        print("    (wrk saw non-2xx answers)")
    return rps, p50, p99


class Writer:
    """Appends at WRITE_RATE through one event store; remembers when each
    log id was acknowledged."""

    def __init__(self, url):
        self.url = url
        self.acked = {}
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        c = Client(self.url)
        n, start = 0, time.monotonic()
        while not self.stop.is_set():
            delay = start + n / WRITE_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            r = c.post("/v1/events", {"originator": {"id": f"sb-w{n % 50}"},
                                      "event_type": "Bench.Written", "payload": {"n": n}},
                       keep=True)
            if r.status == 201:
                self.acked[r.json["log_id"]] = time.monotonic()
            n += 1


def fan_out(es, writer, seconds):
    """SUBSCRIBERS SSE streams tail the log through es for `seconds`; returns
    (median, p99) of acknowledgement-to-delivery in ms, over every delivery."""
    head = Client(es.url).get("/v1/logs", params={"from_id": 1, "size": 1}).json["head_id"]
    got = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    conns = []

    def sub():
        conn = http.client.HTTPConnection("127.0.0.1", es.port, timeout=30)
        conns.append(conn)
        conn.request("GET", f"/v1/logs/stream?from_id={head + 1}")
        r = conn.getresponse()
        mine = []
        try:
            while time.monotonic() < stop:
                line = r.readline()
                if not line:
                    break
                if line.startswith(b"id: "):
                    mine.append((int(line[4:]), time.monotonic()))
        except OSError:
            pass
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=sub, daemon=True) for _ in range(SUBSCRIBERS)]
    [t.start() for t in threads]
    [t.join(seconds + 30) for t in threads]
    for c in conns:
        c.close()
    lat = sorted(max(0.0, t - writer.acked[i]) * 1000 for i, t in got if i in writer.acked)
    if not lat:
        return float("nan"), float("nan"), 0
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)], len(lat)


def run(services):
    pair = StandbyPair()
    pair.start()
    try:
        db = pair.new_database()
        env = {"ESKIT_DATABASE_URL": pair.url(db), "ESKIT_LOG_LEVEL": "warn",
               "ESKIT_DB_POOL_SIZE": "16"}
        ew = Service("event-store", env).start()
        on_primary = Service("event-store", env).start()
        on_standby = Service("event-store", dict(
            env, ESKIT_DATABASE_READ_URL=pair.url(db, standby=True))).start()
        services += [ew, on_primary, on_standby]
        for s in (ew, on_primary, on_standby):
            assert s.wait_ready(), s.log()
        # a log to read: 2,000 entries of about 200 bytes
        c = Client(ew.url)
        for b in range(20):
            c.post("/v1/events", {"events": [
                {"originator": {"id": f"sb-{b}"}, "event_type": "Bench.Seeded",
                 "payload": {"i": i, "text": "x" * 160}} for i in range(100)]})
        writer = Writer(ew.url)
        time.sleep(1)
        where = (("primary", on_primary), ("standby", on_standby))

        print(f"reads on a hot standby (ESKIT_DATABASE_READ_URL) vs on the primary, with "
              f"{WRITE_RATE} appends/s going on; primary CPU = the primary cluster's "
              f"processes, in cores:")
        res = {name: [] for name, _ in where}
        for _ in range(ROUNDS):
            for name, es in where:
                cpu0, t0 = cluster_cpu(pair.primary.data), time.monotonic()
                rps, p50, p99 = wrk_latency(es.url, "/v1/logs?from_id=1&size=100")
                cpu = (cluster_cpu(pair.primary.data) - cpu0) / (time.monotonic() - t0)
                res[name].append((rps, p50, p99, cpu))
        for name, _ in where:
            r = res[name]
            print(f"  log reads (100 entries, 16 connections) on the {name:<8} "
                  f"{statistics.median(x[0] for x in r):>8.0f}/s  median "
                  f"{statistics.median(x[1] for x in r):6.2f} ms  p99 "
                  f"{statistics.median(x[2] for x in r):6.2f} ms  primary CPU "
                  f"{statistics.median(x[3] for x in r):4.2f}")
        seconds = max(DURATION, 8)
        for name, es in where:
            cpu0, t0 = cluster_cpu(pair.primary.data), time.monotonic()
            p50, p99, n = fan_out(es, writer, seconds)
            cpu = (cluster_cpu(pair.primary.data) - cpu0) / (time.monotonic() - t0)
            print(f"  SSE fan-out ({SUBSCRIBERS} streams) on the {name:<8}      "
                  f"{n:>8} deliveries  median {p50:6.2f} ms  p99 {p99:6.2f} ms  "
                  f"primary CPU {cpu:4.2f}")
        writer.stop.set()
        writer.t.join(10)
        m = Client(on_standby.url).get("/metrics").body
        print("  the standby replica's reads: " + ", ".join(
            line for line in m.splitlines()
            if line.startswith(("eskit_db_reads_total", "eskit_standby_fallbacks_total"))))
    finally:
        for s in services[-3:]:
            s.stop()  # before their database goes
        pair.destroy()

