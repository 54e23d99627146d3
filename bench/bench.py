"""make bench: eskit against plain PostgreSQL, measured in the same run.

Every number is printed next to its baseline and the ratio, because the
machine is shared and noisy: absolute numbers mean little, ratios measured
minutes apart on the same disk mean more. Each comparison alternates the
two sides several times and reports the median of each.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from eskit import Client, PgCluster, Service  # noqa: E402
from benchlib import (DURATION, ROUNDS, compare_stats, pgbench_stats, rss_mb,  # noqa: E402
                      wrk, wrk_stats)
import bench_crud  # noqa: E402
import bench_lag  # noqa: E402
import bench_standby  # noqa: E402
import bench_query  # noqa: E402
import bench_retention  # noqa: E402

# ESKIT_BENCH_ONLY=appends,reads,crud,lag,standby,query,retention runs some sections
# (default: all);
# crud-history, crud-get and crud-list pick one part of the crud section.
ONLY = set(filter(None, os.environ.get("ESKIT_BENCH_ONLY", "").split(",")))


def wanted(section):
    return not ONLY or section in ONLY or section.split("-")[0] in ONLY


PGBENCH_SCHEMA = """
CREATE TABLE IF NOT EXISTS pb_events (
    log_id bigint PRIMARY KEY, originator_id text NOT NULL, version bigint NOT NULL,
    event_type text NOT NULL, entity_type text NOT NULL, event_name text NOT NULL,
    payload jsonb NOT NULL, occurred_on bigint NOT NULL, UNIQUE (originator_id, version));
CREATE TABLE IF NOT EXISTS pb_streams (
    id text PRIMARY KEY, entity_type text NOT NULL, version bigint NOT NULL,
    last_event_type text NOT NULL, created_log_id bigint NOT NULL, updated_log_id bigint NOT NULL);
CREATE SEQUENCE IF NOT EXISTS pb_seq;
"""

# The same two-row insert transaction as one single append: the event row
# and the stream row, committed durably.
PGBENCH_INSERT = """\\set n random(1, 1000000000)
BEGIN;
INSERT INTO pb_events VALUES (nextval('pb_seq'), 'p' || :client_id || '-' || :n || '-' || currval('pb_seq'), 1, 'Bench.Created', 'Bench', 'Created', '{"n": 1, "name": "bench"}', 0);
INSERT INTO pb_streams VALUES ('p' || :client_id || '-' || :n || '-' || currval('pb_seq'), 'Bench', 1, 'Bench.Created', currval('pb_seq'), currval('pb_seq'));
END;
"""

PGBENCH_SELECT = """SELECT version, event_type, payload, occurred_on FROM es_events WHERE originator_id = 'bench-five' ORDER BY version;
"""


def appends(cluster, dbname, es):
    print("single appends over HTTP vs pgbench's same two-row insert transaction:")
    for conns in (1, 8, 32, 64):
        compare_stats(f"{conns:>2} connections",
                      lambda: wrk_stats(es.url, "append.lua", conns, "/v1/events"),
                      lambda: pgbench_stats(cluster, dbname, PGBENCH_INSERT, conns))
    print("batch appends (100 events per request), 8 connections:")
    rates = [wrk(es.url, "batch.lua", 8, "/v1/events") * 100 for _ in range(ROUNDS)]
    print(f"  {'events/s':<44} eskit {statistics.median(rates):>10.0f}/s   "
          f"(target 50,000)")


def main():
    cluster = PgCluster()
    cluster.start()
    services = []
    try:
        es_db = cluster.new_database()
        dbname = es_db.rsplit("/", 1)[1]
        cluster.psql(PGBENCH_SCHEMA, db=dbname)
        es = Service("event-store", {"ESKIT_DATABASE_URL": es_db, "ESKIT_LOG_LEVEL": "warn",
                                     "ESKIT_DB_POOL_SIZE": "32"}).start()
        services.append(es)
        assert es.wait_ready(), es.log()
        c = Client(es.url)

        print(f"eskit bench: PostgreSQL 15 private cluster, {DURATION}s per measurement, "
              f"{ROUNDS} alternating rounds, medians")
        if wanted("appends"):
            appends(cluster, dbname, es)

        c.post("/v1/events", {"events": [
            {"originator": {"id": "bench-five"}, "event_type": "Bench.Created",
             "payload": {"i": i}} for i in range(5)]})
        if wanted("reads"):
            print("read a 5-event stream vs pgbench selecting the same rows, 32 connections:")
            compare_stats("GET /v1/events/{id}",
                          lambda: wrk_stats(es.url, None, 32, "/v1/events/bench-five"),
                          lambda: pgbench_stats(cluster, dbname, PGBENCH_SELECT, 32))
        if any(wanted(p) for p in ("crud-history", "crud-get", "crud-list")):
            bench_crud.run(cluster, services, wanted)
        if wanted("lag"):
            bench_lag.run(cluster, services)
        if wanted("standby"):
            bench_standby.run(services)
        if wanted("query"):
            bench_query.run(cluster, services)
        if wanted("retention"):
            bench_retention.run(cluster, services)

        print("resident memory after the run:")
        for s in services:
            if s.proc.poll() is None:
                print(f"  eskit-{s.name:<20} {rss_mb(s.proc.pid):6.1f} MB (target < 32 MB)")
    finally:
        for s in services:
            s.stop()
        cluster.destroy()


if __name__ == "__main__":
    main()
