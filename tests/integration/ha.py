"""PostgreSQL high availability on loopback, for the HA tests (SPEC §8):

- Formation: a pg_auto_failover formation (Debian's postgresql-15-auto-failover)
  in a temp dir: a monitor, a primary and a synchronous secondary, each a
  `pg_autoctl` keeper run as the `postgres` user. A node can be killed the way
  a machine dies (SIGKILL of its keeper, its postmaster and every child, all
  at once) and run again, when it rejoins as a secondary.
- StandbyPair: a plain primary and a hot standby streaming from it
  (pg_basebackup -R), without an HA manager: for the standby-read tests, where
  a standby is paused (SIGSTOP) or lags.

The monitor's default timings make a failover take about 50 s: health checks
every 5 s, a node unhealthy after 20 s without a report, then 30 s for the
lost primary to demote itself. FAST_MONITOR shortens them to a few seconds
(docs/ha.md says which setting does what). Everything lives under one temp
dir and is stopped and removed by destroy(), which tests call in a finally
(or through a fixture), also after a failure.
"""
import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from eskit import PG_BIN, free_port

PG_AUTOCTL = "/usr/bin/pg_autoctl"

# pgautofailover.* settings of the monitor (milliseconds; defaults in comments).
FAST_MONITOR = {
    "pgautofailover.health_check_period": 1000,        # 5000: between health checks
    "pgautofailover.health_check_timeout": 1000,       # 5000: connect time-out of a check
    "pgautofailover.health_check_max_retries": 1,      # 2: failed checks before "bad"
    "pgautofailover.health_check_retry_delay": 200,    # 2000: between retries
    "pgautofailover.node_considered_unhealthy_timeout": 2000,  # 20000: no report for this long
    "pgautofailover.primary_demote_timeout": 2000,     # 30000: wait for a lost primary to demote
    "pgautofailover.startup_grace_period": 1000,       # 10000: no failover this soon after start
}

# The keepers' own timeouts (pg_autoctl.cfg, seconds; defaults in comments).
FAST_KEEPER = {
    "timeout.prepare_promotion_walreceiver": 1,        # 5: wait for the WAL receiver to stop
    "timeout.prepare_promotion_catchup": 10,           # 30: a standby catching up before promotion
}


def _as_postgres(cmd, env=None):
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    envs = ["env"] + [f"{k}={v}" for k, v in (env or {}).items()]
    return prefix + envs + cmd


def _children(pid):
    """Every descendant of pid (from /proc), deepest last."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _postmaster_pid(pgdata):
    try:
        with open(os.path.join(pgdata, "postmaster.pid")) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def _kill_tree(pids, sig=signal.SIGKILL):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def psql(port, sql, db="postgres", timeout=10, check=True):
    """Runs sql on 127.0.0.1:port as postgres; returns its output (-At)."""
    out = subprocess.run([f"{PG_BIN}/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                          "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db,
                          "-c", sql],
                         capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, PGCONNECT_TIMEOUT="2"))
    if check and out.returncode != 0:
        raise RuntimeError(f"psql :{port} {sql!r}: {out.stderr.strip()}")
    return out.stdout.strip() if out.returncode == 0 else None


def writable(port):
    """True when the server takes writes (a primary, and not read-only: after
    a promotion pg_auto_failover keeps it read-only until the old primary is
    known to be out), False when not, None when it does not answer."""
    try:
        v = psql(port, "SELECT NOT pg_is_in_recovery() AND "
                 "current_setting('transaction_read_only') = 'off'", timeout=5, check=False)
    except subprocess.TimeoutExpired:
        return None
    return {"t": True, "f": False}.get(v)


class Node:
    def __init__(self, formation, name):
        self.f = formation
        self.name = name
        self.port = free_port()
        self.pgdata = os.path.join(formation.dir, name)
        self.log_path = os.path.join(formation.dir, f"{name}.log")
        self.proc = None

    @property
    def hostport(self):
        return f"127.0.0.1:{self.port}"

    def run(self):
        """Starts this node's keeper (pg_autoctl run) in the background."""
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(_as_postgres([PG_AUTOCTL, "run", "--pgdata", self.pgdata],
                                                  self.f.env),
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        logf.close()

    def kill(self):
        """Dies as a machine would: the keeper, the postmaster and every child
        of either, SIGKILLed at once (backends too: none is left to finish
        a commit)."""
        pids = []
        if self.proc and self.proc.poll() is None:
            pids += [self.proc.pid] + _children(self.proc.pid)
        pm = _postmaster_pid(self.pgdata)
        if pm and pm not in pids:
            pids += [pm] + _children(pm)
        _kill_tree(pids)
        if self.proc:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        # the children were reparented to init; wait until they are gone
        deadline = time.time() + 10
        while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
            time.sleep(0.05)

    def pause(self, sig):
        """SIGSTOP / SIGCONT the postmaster and its children."""
        pm = _postmaster_pid(self.pgdata)
        if pm:
            _kill_tree([pm] + _children(pm), sig)

    def psql(self, sql, **kw):
        return psql(self.port, sql, **kw)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-6000:]
        except OSError:
            return ""


class Formation:
    """A pg_auto_failover formation on loopback: a monitor and two nodes (a
    primary and a synchronous secondary), database `dbname`. With a single
    secondary the formation keeps number_sync_standbys at 0 (the monitor
    refuses 1 until there are two standbys); the secondary is synchronous all
    the same (ANY 1), which wait_sync() checks."""

    def __init__(self, dbname="eskit", monitor_settings=None, keeper_settings=None):
        self.dir = tempfile.mkdtemp(prefix="eskit-ha-")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.dbname = dbname
        self.monitor_settings = FAST_MONITOR if monitor_settings is None else monitor_settings
        self.keeper_settings = FAST_KEEPER if keeper_settings is None else keeper_settings
        # pg_autoctl keeps its configuration and state under XDG dirs: ours.
        self.env = {"XDG_CONFIG_HOME": f"{self.dir}/config", "XDG_DATA_HOME": f"{self.dir}/share",
                    "XDG_RUNTIME_DIR": f"{self.dir}/run", "PGHOST": "127.0.0.1",
                    "PG_CONFIG": f"{PG_BIN}/pg_config"}
        self.monitor = Node(self, "monitor")
        self.nodes = [Node(self, "node1"), Node(self, "node2")]
        self.events = []  # (time.monotonic(), text): what happened when, for reports
        atexit.register(self.destroy)  # also when the test run is interrupted

    def note(self, text):
        self.events.append((time.monotonic(), text))

    def autoctl(self, *args, timeout=120, check=True):
        out = subprocess.run(_as_postgres([PG_AUTOCTL] + list(args), self.env),
                             capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"pg_autoctl {' '.join(args)}: rc {out.returncode}\n"
                               f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out

    @property
    def monitor_url(self):
        return (f"postgres://autoctl_node@127.0.0.1:{self.monitor.port}/pg_auto_failover"
                "?sslmode=disable")

    def url(self, attrs="read-write", order=None):
        """A libpq multi-host URL of the data nodes (in `order`, a list of
        nodes, or node1, node2)."""
        hosts = ",".join(n.hostport for n in (order or self.nodes))
        return f"postgresql://postgres@{hosts}/{self.dbname}?target_session_attrs={attrs}"

    # --- building ---------------------------------------------------------------

    def start(self, timeout=180):
        t0 = time.monotonic()
        m = self.monitor
        self.autoctl("create", "monitor", "--pgctl", f"{PG_BIN}/pg_ctl", "--pgdata", m.pgdata,
                     "--pgport", str(m.port), "--hostname", "127.0.0.1", "--auth", "trust",
                     "--no-ssl")
        self.autoctl("config", "set", "--pgdata", m.pgdata, "postgresql.listen_addresses",
                     "127.0.0.1")
        with open(os.path.join(m.pgdata, "postgresql.conf"), "a") as f:
            f.write("\n# eskit HA tests: fail over in seconds (tests/integration/ha.py)\n")
            for k, v in self.monitor_settings.items():
                f.write(f"{k} = {v}\n")
        m.run()
        self._wait(lambda: m.psql("SELECT 1", check=False, timeout=5) == "1", 60,
                   "the monitor to answer")
        primary, secondary = self.nodes
        self._create_node(primary)
        self.wait_state(primary, "single", timeout)
        stop = threading.Event()
        t = threading.Thread(target=self._checkpoints, args=(primary, stop), daemon=True)
        t.start()
        try:
            self._create_node(secondary)
            self.wait_state(secondary, "secondary", timeout)
            self.wait_state(primary, "primary", timeout)
        finally:
            stop.set()
            t.join()
        # With one secondary, number_sync_standbys stays 0 (1 needs two
        # standbys) and pg_auto_failover still makes it synchronous:
        # synchronous_standby_names = 'ANY 1 (pgautofailover_standby_2)'.
        self.wait_sync(primary, secondary, timeout)
        self.note(f"formation ready in {time.monotonic() - t0:.1f}s")
        return self

    def _create_node(self, n):
        self.autoctl("create", "postgres", "--pgctl", f"{PG_BIN}/pg_ctl", "--pgdata", n.pgdata,
                     "--pgport", str(n.port), "--hostname", "127.0.0.1", "--listen",
                     "127.0.0.1", "--name", n.name, "--dbname", self.dbname, "--auth", "trust",
                     "--no-ssl", "--monitor", self.monitor_url, timeout=300)
        for k, v in self.keeper_settings.items():
            self.autoctl("config", "set", "--pgdata", n.pgdata, k, str(v))
        n.run()

    def _checkpoints(self, node, stop):
        """A new standby's base backup starts with a checkpoint, which the
        primary spreads over minutes unless one is asked for at once: ask,
        every second, until the standby is built."""
        while not stop.wait(1.0):
            try:
                node.psql("CHECKPOINT", check=False, timeout=5)
            except subprocess.TimeoutExpired:
                pass

    # --- looking ----------------------------------------------------------------

    def states(self):
        """{node name: (reported state, goal state)} from the monitor."""
        out = self.monitor.psql("SELECT nodename, reportedstate, goalstate FROM "
                                "pgautofailover.node", db="pg_auto_failover", check=False,
                                timeout=5)
        res = {}
        for line in (out or "").splitlines():
            name, rep, goal = line.split("|")
            res[name] = (rep, goal)
        return res

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def primary(self):
        """The node the monitor calls primary (or wait_primary / single)."""
        for name, (rep, goal) in self.states().items():
            if rep in ("primary", "wait_primary", "single") and rep == goal:
                return self.node(name)
        return None

    def other(self, n):
        return next(x for x in self.nodes if x is not n)

    def _wait(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.1)
        raise TimeoutError(f"waited {timeout}s for {what}\n" + self.report())

    def wait_state(self, n, state, timeout=120):
        self._wait(lambda: self.states().get(n.name) == (state, state), timeout,
                   f"{n.name} to be {state}")

    def wait_sync(self, primary, standby, timeout=60):
        """Until the primary replicates synchronously to the standby."""
        def sync():
            out = primary.psql("SELECT sync_state FROM pg_stat_replication WHERE "
                               "application_name LIKE 'pgautofailover_standby_%'",
                               check=False, timeout=5)
            return out in ("sync", "quorum")
        self._wait(sync, timeout, f"{standby.name} to replicate synchronously")

    def wait_promoted(self, n, timeout=60):
        """Until n takes writes (writable()); returns time.monotonic() of the
        first such answer: "the promotion" of SPEC §8."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if writable(n.port):
                t = time.monotonic()
                self.note(f"{n.name} promoted")
                return t
            time.sleep(0.05)
        raise TimeoutError(f"{n.name} was not promoted within {timeout}s\n" + self.report())

    # --- failing ----------------------------------------------------------------

    def kill(self, n):
        self.note(f"{n.name} killed")
        n.kill()

    def rejoin(self, n, timeout=180):
        """Runs a killed node's keeper again; it comes back as a secondary
        (pg_rewind, or a new base backup) replicating synchronously."""
        self.note(f"{n.name} restarted")
        n.run()
        other = self.other(n)
        stop = threading.Event()
        t = threading.Thread(target=self._checkpoints, args=(other, stop), daemon=True)
        t.start()
        try:
            self.wait_state(n, "secondary", timeout)
            self.wait_state(other, "primary", timeout)
        finally:
            stop.set()
            t.join()
        self.wait_sync(other, n, timeout)
        self.note(f"{n.name} is a synchronous secondary again")

    def report(self):
        lines = [f"states: {self.states()}"]
        for n in [self.monitor] + self.nodes:
            lines.append(f"--- {n.name} (port {n.port}) ---\n{n.log()[-3000:]}")
        return "\n".join(lines)

    def destroy(self):
        """Kills every process of the formation and removes its files; safe
        to call again."""
        for n in self.nodes + [self.monitor]:
            try:
                n.kill()
            except Exception:  # noqa: BLE001 - cleaning up whatever is left
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


class StandbyPair:
    """A primary (eskit.PgCluster) and a hot standby streaming from it
    asynchronously (pg_basebackup -R), both on loopback: for reads on a
    standby that can be made to lag (recovery_min_apply_delay), paused
    (SIGSTOP) or killed."""

    def __init__(self):
        from eskit import PgCluster
        self.primary = PgCluster()
        with open(os.path.join(self.primary.data, "postgresql.conf"), "a") as f:
            f.write("wal_level = replica\nmax_wal_senders = 10\n")
        self.dir = tempfile.mkdtemp(prefix="eskit-standby-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        atexit.register(self.destroy)

    def start(self):
        self.primary.start()
        subprocess.run(_as_postgres([f"{PG_BIN}/pg_basebackup", "-h", "127.0.0.1", "-p",
                                     str(self.primary.port), "-U", "postgres", "-D", self.data,
                                     "-R", "-X", "stream", "-c", "fast"]),
                       check=True, capture_output=True, timeout=120)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"\n# the standby\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nhot_standby = on\n"
                    "hot_standby_feedback = on\n")
        subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-w", "-t", "60",
                                     "-l", os.path.join(self.dir, "log"), "start"]),
                       check=True, stdout=subprocess.DEVNULL)
        return self

    def url(self, db, standby=False):
        port = self.port if standby else self.primary.port
        return f"postgresql://postgres@127.0.0.1:{port}/{db}"

    def new_database(self):
        """A database made on the primary, once the standby has it too."""
        url = self.primary.new_database()
        db = url.rsplit("/", 1)[1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if psql(self.port, "SELECT 1", db=db, check=False, timeout=5) == "1":
                return db
            time.sleep(0.1)
        raise TimeoutError(f"the standby did not replay CREATE DATABASE {db}")

    def standby_sql(self, sql, **kw):
        return psql(self.port, sql, **kw)

    def set_apply_delay(self, ms):
        """Makes the standby apply each commit `ms` after the primary."""
        self.standby_sql(f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(ms)}ms'")
        self.standby_sql("SELECT pg_reload_conf()")

    def signal(self, sig):
        """SIGSTOP / SIGCONT the standby's postmaster and every child."""
        pm = _postmaster_pid(self.data)
        if pm:
            _kill_tree([pm] + _children(pm), sig)

    def destroy(self):
        """Stops both servers and removes their files; safe to call again."""
        if not os.path.isdir(self.dir):
            return
        self.signal(signal.SIGCONT)
        subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate",
                                     "stop"]), check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        pm = _postmaster_pid(self.data)
        if pm:
            _kill_tree([pm] + _children(pm))
        shutil.rmtree(self.dir, ignore_errors=True)
        self.primary.destroy()
