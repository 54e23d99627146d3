"""Connections that hold a service without using it (SPEC §2, §8; README
"Connections"): every service bounds them.

- Slowloris, on all four services: connections from one client address that
  send a partial request and then a byte now and then. At most
  ESKIT_MAX_CONNECTIONS_PER_CLIENT of them are held (the others are closed
  as soon as they are accepted), each is closed once
  ESKIT_HTTP_HEADER_TIMEOUT_SECONDS have gone by without complete headers,
  however often it sends a byte, and clients from other addresses are
  served all along.
- Abandoned long polls: clients that ask for a long poll and go away are
  noticed within about a second, not at the end of their wait.

Attackers connect from 127.0.0.2 (all of 127/8 is loopback on Linux); the
well-behaved client from 127.0.0.1.
"""
import os
import socket
import time

import pytest

from eskit import Client

ATTACKER = "127.0.0.2"
PER_CLIENT = 64
HEADER_TIMEOUT = 3


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metric(svc, name):
    for line in Client(svc.url).get("/metrics").body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return 0.0


def served_quickly(svc, name):
    """/healthz (and an append, for the event store) from 127.0.0.1, each
    answered within a second."""
    c = Client(svc.url, timeout=1)
    assert c.get("/healthz").status == 200
    if name == "event-store":
        r = c.post("/v1/events", {"originator": {"id": "calm-client"},
                                  "event_type": "Calm.Appended", "payload": {}})
        assert r.status == 201, r


def open_slow(port, n):
    """n connections from ATTACKER, each sending a partial request."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                     source_address=(ATTACKER, 0))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    return socks


def still_open(socks):
    """Sends each one more header byte; returns the sockets the server has
    not closed (a closed one reads EOF or fails)."""
    alive = []
    for s in socks:
        try:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    continue  # the server closed it
            except BlockingIOError:
                pass
            s.setblocking(True)
            s.sendall(b"X")
            alive.append(s)
        except OSError:
            pass
    return alive


@pytest.mark.parametrize("name", ["event-store", "crud-store", "consumer-store",
                                  "metrics-consumer"])
def test_slowloris_is_bounded_and_cut(services, capsys, name):
    svc = services(name, {"ESKIT_MAX_CONNECTIONS_PER_CLIENT": str(PER_CLIENT),
                          "ESKIT_HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)})
    served_quickly(svc, name)
    rss0 = rss_kb(svc.proc.pid)
    socks = open_slow(svc.port, PER_CLIENT * 3)
    try:
        time.sleep(0.5)
        held = still_open(socks)
        # the others were refused, and the calm client is served meanwhile
        assert len(held) <= PER_CLIENT, len(held)
        assert len(held) >= PER_CLIENT // 2, len(held)
        served_quickly(svc, name)
        # a byte a second keeps none of them past the header deadline
        t0 = time.monotonic()
        while held and time.monotonic() - t0 < HEADER_TIMEOUT + 5:
            time.sleep(1)
            held = still_open(held)
            served_quickly(svc, name)
        elapsed = time.monotonic() - t0
        assert not held, f"{len(held)} slow connections still open after {elapsed:.1f}s"
        cut = metric(svc, "eskit_http_header_timeouts_total")
        assert cut > 0
        served_quickly(svc, name)
        rss1 = rss_kb(svc.proc.pid)
    finally:
        for s in socks:
            s.close()
    with capsys.disabled():
        print(f"\n[slowloris] {name}: {len(socks)} slow connections from one address, "
              f"at most {PER_CLIENT} held, all closed {elapsed:.1f}s later "
              f"({cut:.0f} by the header deadline); RSS {rss0 // 1024} -> "
              f"{rss1 // 1024} MB")
    assert rss1 - rss0 < 64 * 1024, (rss0, rss1)


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def test_abandoned_long_polls_are_noticed(services, capsys):
    es = services("event-store", {"ESKIT_MAX_CONNECTIONS_PER_CLIENT": "0"})
    n = 200
    before = metric(es, 'eskit_http_requests_total{method="GET",route="/v1/logs",code="200"}')
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", es.port), timeout=5,
                                     source_address=(ATTACKER, 0))
        s.sendall(b"GET /v1/logs?from_id=100000&wait=60 HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    time.sleep(1.5)
    waiting = threads(es.proc.pid)
    # they wait (none answered yet) ...
    assert metric(es, 'eskit_http_requests_total{method="GET",route="/v1/logs",'
                      'code="200"}') == before
    for s in socks:
        s.close()
    t0 = time.monotonic()
    done = before
    while time.monotonic() - t0 < 15:
        done = metric(es, 'eskit_http_requests_total{method="GET",route="/v1/logs",'
                          'code="200"}')
        if done - before >= n:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - t0
    with capsys.disabled():
        print(f"\n[abandoned long polls] {n} long polls (wait=60) closed by their clients: "
              f"{done - before:.0f} ended {elapsed:.1f}s later; threads while waiting "
              f"{waiting}")
    # ... and every one of them ends long before its 60 s
    assert done - before >= n, (done, before)
    c = Client(es.url, timeout=1)
    assert c.get("/healthz").status == 200
    r = c.post("/v1/events", {"originator": {"id": "after-polls"},
                              "event_type": "Calm.Appended", "payload": {}})
    assert r.status == 201, r


def test_limits_are_logged(services):
    es = services("event-store", {"ESKIT_MAX_CONNECTIONS": "5000",
                                  "ESKIT_MAX_CONNECTIONS_PER_CLIENT": "100"})
    assert "up to 5000 connections, 100 per client address" in es.log(), es.log()


def test_clients_that_do_not_read_pin_bounded_memory(services, capsys):
    """Ten clients that ask for a page of 1000 large log entries (60 MB) and
    do not read it: what the service holds for them stays bounded (a page of
    /v1/logs stops growing at 4 MiB and is read from the database a few rows
    at a time; next_from_id says where the rest begins), and paging through
    the log still gives every entry once."""
    es = services("event-store", {"ESKIT_MAX_BODY_BYTES": str(8 << 20)})
    c = Client(es.url, timeout=60)
    big = "x" * 60000
    n = 0
    for b in range(25):
        r = c.post("/v1/events", {"events": [
            {"originator": {"id": f"big-{b}"}, "event_type": "Big.Made",
             "payload": {"s": big, "n": k}} for k in range(40)]})
        assert r.status == 201, r
        n += 40
    # paging: every entry once, in order, each page bounded
    seen, frm, pages, largest = [], 1, 0, 0
    while True:
        r = c.get("/v1/logs", params={"from_id": frm, "size": 1000})
        assert r.status == 200, r
        largest = max(largest, len(r.body))
        pages += 1
        seen += [x["id"] for x in r.json["results"]]
        if r.json["next_from_id"] == frm or not r.json["results"]:
            break
        frm = r.json["next_from_id"]
    assert seen == list(range(1, n + 1))
    assert pages > 10 and largest < 5 << 20, (pages, largest)
    rss0 = rss_kb(es.proc.pid)
    socks = []
    for _ in range(10):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", es.port))
        s.sendall(b"GET /v1/logs?from_id=1&size=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    time.sleep(3)
    rss1 = rss_kb(es.proc.pid)
    assert Client(es.url, timeout=1).get("/healthz").status == 200
    for s in socks:
        s.close()
    with capsys.disabled():
        print(f"\n[clients that do not read] {n} entries of 60 KB: {pages} pages of at most "
              f"{largest / 1e6:.1f} MB; 10 clients not reading a page of 1000: RSS "
              f"{rss0 // 1024} -> {rss1 // 1024} MB (the log is {n * 60 / 1000:.0f} MB)")
    # a whole page of 1000 (60 MB) each would be 600 MB
    assert rss1 - rss0 < 160 * 1024, (rss0, rss1)
