"""End-to-end lag (make bench): from an append's 201 to the metrics
consumer's stored offset covering it, at a steady 1,000 appends/s."""
import threading
import time

from eskit import Client, Service

RATE = 1000
SECONDS = 10


def _percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def run(cluster, services):
    # A fresh event store: the consumer must not start behind a backlog.
    es = Service("event-store", {"ESKIT_DATABASE_URL": cluster.new_database(),
                                 "ESKIT_LOG_LEVEL": "warn"}).start()
    services.append(es)
    cs = Service("consumer-store", {"ESKIT_DATABASE_URL": cluster.new_database(),
                                    "ESKIT_LOG_LEVEL": "warn"}).start()
    services.append(cs)
    mc = Service("metrics-consumer", {"ESKIT_EVENT_STORE_URL": es.url,
                                      "ESKIT_CONSUMER_STORE_URL": cs.url,
                                      "ESKIT_CRUD_STORE_URL": "http://127.0.0.1:9",
                                      "ESKIT_LOG_LEVEL": "warn"}).start()
    services.append(mc)
    assert cs.wait_ready() and mc.wait_ready(), mc.log()

    acked = []  # (log_id, time of the 201)
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS
    workers = 8

    def writer(w):
        c = Client(es.url)
        n = 0
        start = time.monotonic()
        while time.monotonic() < stop:
            due = start + n * workers / RATE
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            r = c.post("/v1/events", {"originator": {"id": f"lag{w}"},
                                      "event_type": "Lag.Happened", "payload": {"n": n}},
                       keep=True)
            t = time.monotonic()
            if r.status == 201:
                with lock:
                    acked.append((r.json["log_id"], t))
            n += 1

    covered = {}

    def watcher():
        c = Client(cs.url)
        while time.monotonic() < stop + 5:
            r = c.get("/v1/consumers/metrics-consumer", keep=True)
            t = time.monotonic()
            if r.status == 200:
                covered.setdefault(r.json["offset"], t)
            time.sleep(0.0005)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(workers)]
    threads.append(threading.Thread(target=watcher))
    [t.start() for t in threads]
    [t.join() for t in threads]
    offsets = sorted(covered.items())
    lags = []
    for log_id, t_ack in acked:
        t_cov = next((t for off, t in offsets if off >= log_id), None)
        if t_cov is not None:
            lags.append(max(0.0, t_cov - t_ack))
    rate = len(acked) / SECONDS
    print(f"end-to-end lag, append 201 -> consumer offset stored, at {rate:.0f} appends/s:")
    if lags:
        print(f"  p50 {_percentile(lags, 0.5) * 1000:7.1f} ms   p99 "
              f"{_percentile(lags, 0.99) * 1000:7.1f} ms   ({len(lags)} of {len(acked)} "
              "appends seen covered; target p99 < 50 ms)")
    else:
        print("  no append was seen covered: the metrics consumer did not advance")
    return cs, mc
