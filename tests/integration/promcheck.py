"""Checks a service's /metrics (SPEC §2): Prometheus text format 0.0.4 that
passes `promtool check metrics`, with the metrics every service must export.

Reusable by the tests of every service:

    from promcheck import check_metrics
    m = check_metrics(service.url)
    m.value("eskit_log_head_id")
    m.series("eskit_http_requests_total", code="201")
"""
import http.client
import math
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse

PROMTOOL = os.environ.get("PROMTOOL") or shutil.which("promtool") or "/usr/bin/promtool"

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class Metrics:
    def __init__(self, text):
        self.text = text
        self.types = {}     # family name -> type
        self.helps = {}
        self.samples = []   # (name, {label: value}, float)
        self._parse(text)

    # --- parsing of the text exposition format 0.0.4 ----------------------------
    def _parse(self, text):
        for n, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] == "TYPE":
                    assert parts[2] not in self.types, f"line {n}: second TYPE: {line}"
                    self.types[parts[2]] = parts[3].strip() if len(parts) > 3 else ""
                elif len(parts) >= 3 and parts[1] == "HELP":
                    self.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
                continue
            self.samples.append(self._sample(line, n))

    @staticmethod
    def _sample(line, n):
        m = _NAME.match(line)
        assert m, f"line {n}: no metric name: {line!r}"
        name, i = m.group(0), m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            i += 1
            while True:
                while line[i] == " ":
                    i += 1
                if line[i] == "}":
                    i += 1
                    break
                lm = _LABEL.match(line, i)
                assert lm, f"line {n}: bad label name at {i}: {line!r}"
                key, i = lm.group(0), lm.end()
                assert line[i:i + 2] == '="', f"line {n}: bad label at {i}: {line!r}"
                i += 2
                val = []
                while line[i] != '"':
                    if line[i] == "\\":
                        i += 1
                        val.append({"n": "\n", "\\": "\\", '"': '"'}[line[i]])
                    else:
                        val.append(line[i])
                    i += 1
                i += 1
                assert key not in labels, f"line {n}: label {key} twice: {line!r}"
                labels[key] = "".join(val)
                while line[i] == " ":
                    i += 1
                if line[i] == ",":
                    i += 1
        rest = line[i:].split()
        assert 1 <= len(rest) <= 2, f"line {n}: bad value: {line!r}"
        return name, labels, float(rest[0])

    # --- queries -----------------------------------------------------------------
    def series(self, name, **labels):
        """[(labels, value)] of the samples called `name` whose labels include `labels`."""
        return [(lb, v) for nm, lb, v in self.samples
                if nm == name and all(lb.get(k) == str(x) for k, x in labels.items())]

    def value(self, name, **labels):
        """The value of the one sample matching; fails if there is not exactly one."""
        s = self.series(name, **labels)
        assert len(s) == 1, f"{name}{labels}: {len(s)} samples, expected 1:\n" + "\n".join(
            ln for ln in self.text.split("\n") if ln.startswith(name))
        return s[0][1]

    def total(self, name, **labels):
        return sum(v for _, v in self.series(name, **labels))

    def family(self, sample_name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample_name[:-len(suffix)] if sample_name.endswith(suffix) else None
            if base and self.types.get(base) in ("histogram", "summary"):
                return base
        return sample_name


def promtool_check(text):
    """Runs `promtool check metrics` on the text; returns (exit code, output)."""
    with tempfile.NamedTemporaryFile("w", suffix=".prom", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        with open(path, "rb") as stdin:
            p = subprocess.run([PROMTOOL, "check", "metrics"], stdin=stdin,
                               capture_output=True, text=True, timeout=60)
        return p.returncode, (p.stdout + p.stderr).strip()
    finally:
        os.unlink(path)


def fetch_metrics(url):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", "/metrics")   # never behind the token: no Authorization
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type") or "", r.read().decode("utf-8")
    finally:
        conn.close()


def check_histograms(m):
    """Every histogram: cumulative buckets ending at +Inf == _count, and a _sum."""
    for fam, typ in m.types.items():
        if typ != "histogram":
            continue
        groups = {}
        for lb, v in m.series(fam + "_bucket"):
            assert "le" in lb, f"{fam}_bucket without le: {lb}"
            key = tuple(sorted((k, x) for k, x in lb.items() if k != "le"))
            groups.setdefault(key, []).append((float(lb["le"]), v))
        assert groups, f"histogram {fam} has no buckets"
        for key, buckets in groups.items():
            buckets.sort()
            les = [le for le, _ in buckets]
            assert les[-1] == math.inf, f"{fam}{dict(key)}: no +Inf bucket"
            assert len(set(les)) == len(les), f"{fam}{dict(key)}: duplicate le"
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), f"{fam}{dict(key)}: buckets not cumulative {buckets}"
            lbl = dict(key)
            assert m.value(fam + "_count", **lbl) == counts[-1], f"{fam}{lbl}: +Inf != _count"
            assert m.value(fam + "_sum", **lbl) >= 0


def check_metrics(url):
    """Fetches `url`/metrics, checks it with promtool and the SPEC §2 rules,
    and returns the parsed Metrics."""
    status, ctype, text = fetch_metrics(url)
    assert status == 200, (status, text[:500])
    assert ctype.startswith("text/plain"), ctype
    assert "version=0.0.4" in ctype.replace(" ", ""), ctype
    rc, out = promtool_check(text)
    assert rc == 0, f"promtool check metrics exited {rc}:\n{out}\n--- metrics ---\n{text}"
    m = Metrics(text)
    # no series twice
    keys = [(n, tuple(sorted(lb.items()))) for n, lb, _ in m.samples]
    dups = {k for k in keys if keys.count(k) > 1}
    assert not dups, f"duplicate series: {sorted(dups)[:10]}"
    # every sample belongs to a family with a TYPE
    untyped = sorted({n for n, _, _ in m.samples if m.family(n) not in m.types})
    assert not untyped, f"samples without # TYPE: {untyped}"
    check_histograms(m)

    # what every service exports
    assert m.types.get("eskit_http_requests_total") == "counter", m.types
    reqs = m.series("eskit_http_requests_total")
    assert reqs, "no eskit_http_requests_total series"
    for lb, v in reqs:
        assert {"method", "route", "code"} <= set(lb), lb
        assert re.fullmatch(r"[1-5][0-9][0-9]", lb["code"]), lb
        assert v >= 0 and v == int(v), (lb, v)
    assert m.types.get("eskit_http_request_duration_seconds") == "histogram", m.types
    buckets = m.series("eskit_http_request_duration_seconds_bucket")
    assert buckets and all("route" in lb for lb, _ in buckets), buckets[:3]
    for name, typ in [("process_resident_memory_bytes", "gauge"),
                      ("process_cpu_seconds_total", "counter"),
                      ("process_start_time_seconds", "gauge"),
                      ("process_open_fds", "gauge")]:
        assert m.types.get(name) == typ, f"{name}: TYPE {m.types.get(name)}, expected {typ}"
        assert m.value(name) >= 0, name
    assert m.value("process_resident_memory_bytes") > 1 << 20
    assert m.value("process_open_fds") >= 3
    return m
