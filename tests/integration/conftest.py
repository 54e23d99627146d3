"""pytest fixtures: a private PostgreSQL cluster for the session, and
services started against SQLite or PostgreSQL (the `backend` fixture runs a
test once per back end)."""
import contextlib
import os
import shutil
import tempfile

import pytest

from eskit import PgCluster, Service


class _ReportedCapsys:
    """capsys whose disabled() keeps capturing: in a pytest-xdist worker the
    terminal is not the user's, so the summaries tests print there (counts,
    recovery times, the deploy test's log) go into the test's report
    instead, which make test shows for passed tests too (-rP)."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def disabled(self):
        return contextlib.nullcontext()


@pytest.fixture
def capsys(capsys):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return _ReportedCapsys(capsys)
    return capsys


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(params=["sqlite", "pg"])
def backend(request):
    """Yields a factory: backend() -> a fresh database URL of this kind."""
    tmp = tempfile.mkdtemp(prefix="eskit-db-")
    counter = [0]

    def make():
        counter[0] += 1
        if request.param == "sqlite":
            return f"sqlite:{tmp}/db{counter[0]}.db"
        return request.getfixturevalue("pg").new_database()

    make.kind = request.param
    yield make
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def services():
    """Starts services and stops them (checking a clean exit) at the end."""
    started = []

    def start(name, env=None, **kw):
        s = Service(name, env=env, **kw).start()
        started.append(s)
        return s

    yield start
    failures = []
    for s in reversed(started):  # all at once: each stop overlaps the others
        s.terminate()
    for s in reversed(started):
        if s.proc and s.proc.poll() is None:
            rc = s.stop()
            if rc != 0:
                failures.append(f"{s.name} exited {rc} on SIGTERM:\n{s.log()}")
    for s in started:
        shutil.rmtree(s.workdir, ignore_errors=True)
    assert not failures, "\n".join(failures)


@pytest.fixture
def event_store(backend, services):
    """An event store on a fresh database of each back end."""
    s = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    assert s.wait_ready(), s.log()
    return s


@pytest.fixture
def crud_store(backend, services):
    """An event store on a fresh database of each back end and a CRUD store on
    top of it, both ready: a crud_fixtures.CrudEnv (.es, .crud, .db, .e, .c)."""
    from crud_fixtures import start_crud_env
    return start_crud_env(backend, services)
