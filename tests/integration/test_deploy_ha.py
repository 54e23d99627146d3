"""deploy/k8s/overlays/ha (docs/ha.md): the Kubernetes manifests on a highly
available PostgreSQL, validated like deploy/k8s (tests/deploy/validate-k8s.mjs:
the Kubernetes API schemas, the API server's rules, references across the
rendered objects), and rendered the way kustomize would:

- the base's single PostgreSQL (StatefulSet and Service) is gone;
- every database service writes through CloudNativePG's read-write Service
  (<cluster>-rw) and the event store, alone, reads through its read-only
  Service (<cluster>-ro);
- everything else is the base, unchanged.
"""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "deploy"
BASE = ROOT / "deploy" / "k8s"
OVERLAY = BASE / "overlays" / "ha"
DB_SERVICES = {"event-store", "consumer-store"}


def render(path):
    node = shutil.which("node")
    if not node or not (NODE_DIR / "node_modules").is_dir():
        pytest.fail("node or tests/deploy/node_modules is missing: run tools/deps.sh")
    r = subprocess.run([node, str(NODE_DIR / "validate-k8s.mjs"), "--print", str(path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def key(o):
    return (o["kind"], o["metadata"]["name"])


@pytest.fixture(scope="module")
def rendered():
    return {key(o): o for o in render(BASE)}, {key(o): o for o in render(OVERLAY)}


def env_of(dep):
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in c["env"]}


def test_overlay_drops_the_single_postgres(rendered):
    base, ha = rendered
    assert set(base) - set(ha) == {("StatefulSet", "postgres"), ("Service", "postgres")}
    assert set(ha) <= set(base)


def test_overlay_points_writes_at_rw_and_reads_at_ro(rendered):
    base, ha = rendered
    config = ha[("ConfigMap", "eskit-config")]["data"]
    assert config["ESKIT_DATABASE_URL"] == "postgresql://eskit@eskit-db-rw:5432/eskit"
    assert config["ESKIT_DATABASE_READ_URL"] == "postgresql://eskit@eskit-db-ro:5432/eskit"
    for name in ("event-store", "crud-store", "consumer-store", "metrics-consumer"):
        env = env_of(ha[("Deployment", name)])
        if name in DB_SERVICES:
            ref = env["ESKIT_DATABASE_URL"]["valueFrom"]["configMapKeyRef"]
            assert config[ref["key"]].startswith("postgresql://eskit@eskit-db-rw:"), name
        read = env.get("ESKIT_DATABASE_READ_URL")
        if name in ("event-store", "crud-store"):
            ref = read["valueFrom"]["configMapKeyRef"]
            assert (ref["name"], ref["key"]) == ("eskit-config", "ESKIT_DATABASE_READ_URL")
        else:
            assert read is None, name


def test_overlay_changes_nothing_else(rendered):
    base, ha = rendered
    for k, o in ha.items():
        b = json.loads(json.dumps(base[k]))
        if k == ("ConfigMap", "eskit-config"):
            b["data"].update(ESKIT_DATABASE_URL=o["data"]["ESKIT_DATABASE_URL"],
                             ESKIT_DATABASE_READ_URL=o["data"]["ESKIT_DATABASE_READ_URL"])
        if k in (("Deployment", "event-store"), ("Deployment", "crud-store")):
            b["spec"]["template"]["spec"]["containers"][0]["env"].append(
                env_of(o)["ESKIT_DATABASE_READ_URL"])
        assert o == b, f"{k} differs from the base"
