"""Helpers shared by the benchmarks: wrk and pgbench runs, alternating
comparisons with medians and ratios, resident memory."""
import os
import re
import statistics
import subprocess
import tempfile

from eskit import PG_BIN

DURATION = int(os.environ.get("ESKIT_BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("ESKIT_BENCH_ROUNDS", "3"))
HERE = os.path.dirname(os.path.abspath(__file__))


def wrk(url, script=None, conns=8, path="/", env=None, seconds=DURATION):
    return wrk_stats(url, script, conns, path, env, seconds)[0]


def _wrk_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def wrk_stats(url, script=None, conns=8, path="/", env=None, seconds=DURATION):
    """(requests/s, p50 ms, p99 ms) of one wrk run."""
    threads = max(1, min(conns, 2))
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency"]
    if script:
        cmd += ["-s", os.path.join(HERE, script)]
    out = subprocess.run(cmd + [url + path], capture_output=True, text=True,
                         env=dict(os.environ, **(env or {}))).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        print(f"    (wrk reported: {bad.group(0) if bad else ''} {errors.group(0) if errors else ''})")
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return (float(m.group(1)) if m else 0.0, _wrk_ms(p50.group(1)) if p50 else float("nan"),
            _wrk_ms(p99.group(1)) if p99 else float("nan"))


def pgbench(cluster, db, script, conns, seconds=DURATION):
    return pgbench_stats(cluster, db, script, conns, seconds, latencies=False)[0]


def pgbench_stats(cluster, db, script, conns, seconds=DURATION, latencies=True):
    """(transactions/s, p50 ms, p99 ms) of one pgbench run (the latencies
    from its per-transaction log, -l)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    os.chmod(path, 0o644)
    logdir = tempfile.mkdtemp(prefix="eskit-pgbench-")
    os.chmod(logdir, 0o777)
    extra = ["-l", f"--log-prefix={logdir}/tx"] if latencies else []
    out = subprocess.run([f"{PG_BIN}/pgbench", "-n", "-h", "127.0.0.1", "-p", str(cluster.port),
                          "-U", "postgres", "-c", str(conns), "-j", str(min(conns, 2)),
                          "-T", str(seconds), "-f", path] + extra + [db],
                         capture_output=True, text=True, cwd=logdir).stdout
    os.unlink(path)
    lat = []
    for name in os.listdir(logdir):
        with open(os.path.join(logdir, name)) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]) / 1000.0)  # microseconds
        os.unlink(os.path.join(logdir, name))
    os.rmdir(logdir)
    lat.sort()
    p50 = lat[len(lat) // 2] if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    m = re.search(r"tps = ([\d.]+)", out)
    return (float(m.group(1)) if m else 0.0, p50, p99)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def compare_stats(label, ours, theirs, names=("eskit", "pgbench")):
    """compare() for functions that return (rate, p50 ms, p99 ms): medians of
    each over ROUNDS alternating runs, the ratio of the rates."""
    a, b = [], []
    for _ in range(ROUNDS):
        a.append(ours())
        b.append(theirs())
    med = [tuple(statistics.median(x[i] for x in runs) for i in range(3)) for runs in (a, b)]
    ratio = med[0][0] / med[1][0] if med[1][0] else float("inf")
    print(f"  {label:<44} ratio {ratio:5.2f}x")
    for name, (rate, p50, p99) in zip(names, med):
        print(f"    {name:<20} {rate:>10.0f}/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
    return ratio


def compare(label, ours, theirs):
    """Alternates the two measurements ROUNDS times; prints medians and ratio."""
    a, b = [], []
    for _ in range(ROUNDS):
        a.append(ours())
        b.append(theirs())
    ma, mb = statistics.median(a), statistics.median(b)
    ratio = ma / mb if mb else float("inf")
    print(f"  {label:<44} eskit {ma:>10.0f}/s   pgbench {mb:>10.0f}/s   ratio {ratio:5.2f}x")
    return ratio


