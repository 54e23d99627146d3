"""Black-box helpers for the integration tests: start the real service
binaries, talk HTTP/JSON to them, and run a private PostgreSQL cluster.

Only the Python standard library is used (plus pytest in conftest.py)."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

BIN_DIR = os.environ.get("ESKIT_BIN_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin")
PG_BIN = "/usr/lib/postgresql/15/bin"
SANITIZE = os.environ.get("ESKIT_SANITIZE") == "1"


def run_threads(calls, timeout=120):
    """Runs each (fn, arg...) of calls on a thread of its own, all at once,
    and waits for them all."""
    threads = [threading.Thread(target=fn, args=tuple(args)) for fn, *args in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


def append_one_by_one(url, oid, n, failures):
    """Appends n events to stream oid, one request each; each answer that is
    not a 201 goes to the list failures."""
    c = Client(url)
    for i in range(n):
        r = c.post("/v1/events", {"originator": {"id": oid}, "event_type": "W.Happened",
                                  "payload": {"i": i}})
        if r.status != 201:
            failures.append(f"append: {r.status} {r.body[:200]!r}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except (ValueError, RecursionError):  # Python's json stops near 1000 levels
            self.json = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class Client:
    """A minimal HTTP client; one connection per request unless keep=True."""

    def __init__(self, base, token=None, timeout=30):
        u = urllib.parse.urlparse(base)
        self.host, self.port = u.hostname, u.port
        self.token = token
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None, raw=None, params=None,
                keep=False):
        if params:
            path = path + "?" + urllib.parse.urlencode(params)
        hdrs = {}
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn = self.conn if keep and self.conn else http.client.HTTPConnection(
            self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            out = Response(r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
        except Exception:
            conn.close()
            self.conn = None
            raise
        if keep:
            self.conn = conn
        else:
            conn.close()
        return out

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class Service:
    """One service binary started on a free loopback port."""

    def __init__(self, name, env=None, workdir=None, port=None):
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update({"ESKIT_LISTEN": f"127.0.0.1:{self.port}"})
        self.env.update(env or {})
        if SANITIZE:
            self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
            self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"eskit-{name}-")
        self.log_path = os.path.join(self.workdir, f"{name}.log")
        self.proc = None

    def start(self, wait=True):
        binary = os.path.join(BIN_DIR, f"eskit-{self.name}")
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary], env=self.env, cwd=self.workdir,
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   + self.log())
            try:
                if Client(self.url, timeout=2).get("/healthz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become healthy:\n" + self.log())

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if Client(self.url, timeout=2).get("/readyz").status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def client(self, **kw):
        return Client(self.url, **kw)

    def terminate(self):
        """Sends SIGTERM without waiting (stop() then waits for the exit)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the process; returns its exit code."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        if not (sig == signal.SIGTERM and getattr(self, "terminated", False)):
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-20000:]
        except OSError:
            return ""


def _as_postgres(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


class PgCluster:
    """A private PostgreSQL cluster in a temp dir, made with initdb."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="eskit-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.counter = 0
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(_as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust",
                                     "-U", "postgres", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.dir}'\nmax_connections = 300\n"
                    "synchronous_commit = on\nfsync = on\nshared_buffers = 64MB\n")

    @property
    def admin_url(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self):
        subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-w", "-t", "60",
                                     "-l", os.path.join(self.dir, "log"), "start"]),
                       check=True, stdout=subprocess.DEVNULL)

    def stop(self, mode="fast"):
        subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-w", "-m", mode,
                                     "stop"]), check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def psql(self, sql, db="postgres"):
        out = subprocess.run([f"{PG_BIN}/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                              "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                              "-d", db, "-c", sql],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def new_database(self):
        self.counter += 1
        name = f"eskit_t{os.getpid()}_{self.counter}"
        self.psql(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def files_under(root):
    """Every file below root (for tests that grep a database's files)."""
    for d, _, files in os.walk(root):
        for f in files:
            yield os.path.join(d, f)


def grep_files(paths, needle):
    """The paths whose bytes contain `needle` (unreadable ones are skipped)."""
    hits = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                if needle in f.read():
                    hits.append(p)
        except OSError:
            pass
    return hits
