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
    return float(m.group(1)) if m else 0.0


def pgbench(cluster, db, script, conns, seconds=DURATION):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    os.chmod(path, 0o644)
    out = subprocess.run([f"{PG_BIN}/pgbench", "-n", "-h", "127.0.0.1", "-p", str(cluster.port),
                          "-U", "postgres", "-c", str(conns), "-j", str(min(conns, 2)),
                          "-T", str(seconds), "-f", path, db],
                         capture_output=True, text=True).stdout
    os.unlink(path)
    m = re.search(r"tps = ([\d.]+)", out)
    return float(m.group(1)) if m else 0.0


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


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


