"""Deployment artefacts checked by real validators (SPEC §7).

- docker-compose.yml: the Compose file loader (`docker-compose config`), and
  its wiring: ports, URLs between services, database, health checks;
- deploy/k8s: the Kubernetes API schemas and the API server's own rules, the
  kustomization rendered (tests/deploy/validate-k8s.mjs), and the project's
  promises: probes, resources, non-root, the Secret, scrape annotations;
- Prometheus configuration: `promtool check config`;
- Grafana: dashboards are valid, use only metrics the services export
  (`dashboard_metric_names()`), and their queries parse as PromQL;
- docs/openapi.yaml: Redocly's linter (tests/deploy/lint-openapi.mjs);
- Dockerfile: a Dockerfile linter, its shell snippets through shellcheck, and
  its runtime packages against the libraries the binaries link;
- every shell script of the repository: shellcheck.

Each validator is also shown a broken input that it must refuse, so that a
validator that stopped working cannot pass for a valid file. Docker itself is
not needed here (nothing is built or run: test_deploy_live.py does that); the
Node validators are installed by tools/deps.sh into tests/deploy/node_modules.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "deploy"
K8S_DIR = ROOT / "deploy" / "k8s"
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING_DIR = ROOT / "deploy" / "grafana" / "provisioning"
BROKEN_K8S = ROOT / "tests" / "fixtures" / "k8s-broken"
TIMEOUT = 60

# The four services: binary, SPEC port.
SERVICES = {
    "event-store": 8080,
    "crud-store": 8081,
    "consumer-store": 8082,
    "metrics-consumer": 8083,
}
DB_SERVICES = {"event-store", "consumer-store", "crud-store"}
K8S_REPLICAS = {"event-store": 2, "crud-store": 2, "consumer-store": 2, "metrics-consumer": 1}

# Every metric the services export (SPEC §2, §6, and the event store's log
# head), as the series names that appear on /metrics.
KNOWN_METRICS = {
    "eskit_http_requests_total",
    "eskit_http_request_duration_seconds_bucket",
    "eskit_http_request_duration_seconds_sum",
    "eskit_http_request_duration_seconds_count",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "process_start_time_seconds",
    "process_open_fds",
    "eskit_events_total",
    "eskit_crud_events_total",
    "eskit_consumer_offset",
    "eskit_consumer_lag",
    "eskit_consumer_errors_total",
    "eskit_log_head_id",
}


def run(cmd, **kw):
    """Runs cmd (a list) in the repository root; returns the CompletedProcess."""
    return subprocess.run(cmd, cwd=kw.pop("cwd", ROOT), capture_output=True, text=True,
                          timeout=TIMEOUT, **kw)


def need(tool):
    """The path of a tool that tools/deps.sh installs; a failure when missing."""
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} is not installed: run tools/deps.sh")
    return path


def node(script, *args):
    need("node")
    if not (NODE_DIR / "node_modules").is_dir():
        pytest.fail("tests/deploy/node_modules is missing: run tools/deps.sh")
    return run([need("node"), str(NODE_DIR / script), *map(str, args)])


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


# ---------------------------------------------------------------- PromQL names

_PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right",
                    "bool", "offset", "and", "or", "unless", "atan2", "inf", "nan"}


def promql_metric_names(expr):
    """The metric names a PromQL expression selects (Grafana variables allowed).

    Strings, label matchers, ranges and grouping clauses are removed first;
    what remains of an identifier not followed by '(' (a function or an
    aggregation) and not a keyword is a metric name. `{__name__="x"}` selectors
    are recognised too.
    """
    names = set(re.findall(r'__name__\s*=\s*"([A-Za-z_:][A-Za-z0-9_:]*)"', expr))
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^{}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\$\{[^}]*\}|\$\w+", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        word = m.group(0)
        before = s[m.start() - 1] if m.start() else " "
        if before.isdigit() or before == ".":
            continue  # 1e3, 5m after an offset
        if s[m.end():].lstrip().startswith("("):
            continue  # a function or an aggregation
        if word.lower() in _PROMQL_KEYWORDS:
            continue
        names.add(word)
    return names


def grafana_variable_exprs(query):
    """The PromQL inside a Grafana Prometheus variable query."""
    if isinstance(query, dict):
        query = query.get("query", "")
    query = (query or "").strip()
    m = re.fullmatch(r"label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)", query, re.S)
    if m:
        return [m.group(1)]
    if re.fullmatch(r"label_values\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)", query):
        return []
    m = re.fullmatch(r"query_result\((.*)\)", query, re.S)
    if m:
        return [m.group(1)]
    if query.startswith(("label_names(", "metrics(")) or not query:
        return []
    return [query]


def dashboards():
    """{file name: dashboard JSON} for deploy/grafana/dashboards/*.json."""
    out = {}
    for p in sorted(DASHBOARD_DIR.glob("*.json")):
        with open(p, encoding="utf-8") as f:
            out[p.name] = json.load(f)
    return out


def _panels(panels):
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))


def dashboard_exprs(dashboard):
    """[(where, PromQL)] of every query of a dashboard: panel targets and variables."""
    out = []
    for p in _panels(dashboard.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"panel {p.get('title')!r} {t.get('refId')}", t["expr"]))
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            for e in grafana_variable_exprs(v.get("query") or v.get("definition")):
                out.append((f"variable {v.get('name')}", e))
    return out


def dashboard_metric_names():
    """{metric name: sorted dashboard files using it}, over every dashboard query.

    The live test compares these names with what the services' /metrics show.
    """
    names = {}
    for fname, d in dashboards().items():
        for _, expr in dashboard_exprs(d):
            for n in promql_metric_names(expr):
                names.setdefault(n, set()).add(fname)
    return {n: sorted(f) for n, f in sorted(names.items())}


# ---------------------------------------------------------------- Compose

@pytest.fixture(scope="module")
def compose():
    """docker-compose.yml as the Compose loader resolves it (anchors, merges)."""
    r = run([need("docker-compose"), "-f", "docker-compose.yml", "config"])
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


def test_compose_file_is_valid():
    r = run([need("docker-compose"), "-f", "docker-compose.yml", "config", "-q"])
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("old,new", [
    ("condition: service_healthy", "condition: service_healty"),
    ("    command: [\"eskit-crud-store\"]", "    comand: [\"eskit-crud-store\"]"),
    ("      retries: 20\n", "      retries: twenty\n"),
])
def test_compose_loader_refuses_broken_file(tmp_path, old, new):
    text = (ROOT / "docker-compose.yml").read_text()
    assert old in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    r = run([need("docker-compose"), "-f", str(broken), "--project-directory", str(ROOT),
             "config", "-q"])
    assert r.returncode != 0, "the Compose loader accepted a broken file"


def _env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return env


def _mounts(svc):
    """[(source, target)] of a Compose service's volumes, short or long syntax."""
    out = []
    for v in svc.get("volumes", []):
        if isinstance(v, dict):
            out.append((str(v.get("source", "")), v.get("target")))
        else:
            parts = str(v).split(":")
            out.append((parts[0], parts[1] if len(parts) > 1 else parts[0]))
    return out


def test_compose_wiring(compose):
    services = compose["services"]
    assert set(services) == {"postgres", *SERVICES, "prometheus", "grafana"}

    pg = services["postgres"]
    assert pg["image"] == "postgres:15-bookworm"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    data = [src for src, dst in _mounts(pg) if dst == "/var/lib/postgresql/data"]
    assert data and data[0] in compose.get("volumes", {}), "PostgreSQL needs a named volume"
    pg_env = _env(pg)

    for name, port in SERVICES.items():
        svc = services[name]
        env = _env(svc)
        assert svc["image"] == "eskit:latest", name
        assert svc["command"] == [f"eskit-{name}"], name
        assert env["ESKIT_LISTEN"] == f"0.0.0.0:{port}", name
        health = " ".join(svc["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/" in health, f"{name}: health check on the wrong port"
        published = [p for p in svc.get("ports", [])]
        assert any((isinstance(p, dict) and p.get("target") == port) or
                   (isinstance(p, str) and p.split("/")[0].endswith(f":{port}"))
                   for p in published), f"{name}: port {port} not published"
        # every URL to another service names a service and the port it listens on
        for key, value in env.items():
            m = re.fullmatch(r"http://([a-z-]+):(\d+)", value)
            if key.endswith("_URL") and m:
                assert m.group(1) in SERVICES, f"{name} {key}={value}"
                assert int(m.group(2)) == SERVICES[m.group(1)], f"{name} {key}={value}"
        if name in DB_SERVICES:
            url = env["ESKIT_DATABASE_URL"]
            assert re.match(r"postgres(ql)?://[^/@]+@postgres:5432/", url), url
            assert env["PGPASSWORD"] == pg_env["POSTGRES_PASSWORD"]
            assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        else:
            assert "ESKIT_DATABASE_URL" not in env and "PGPASSWORD" not in env, name
    assert _env(services["crud-store"])["ESKIT_EVENT_STORE_URL"] == "http://event-store:8080"
    mc = _env(services["metrics-consumer"])
    for key, svc in (("ESKIT_EVENT_STORE_URL", "event-store"), ("ESKIT_CRUD_STORE_URL", "crud-store"),
                     ("ESKIT_CONSUMER_STORE_URL", "consumer-store")):
        assert mc[key] == f"http://{svc}:{SERVICES[svc]}"
        assert services["metrics-consumer"]["depends_on"][svc]["condition"] == "service_healthy"


def test_compose_prometheus_scrapes_every_service(compose):
    cfg = load_yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    targets = {}
    for job in cfg["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for t in sc["targets"]:
                targets[t] = sc.get("labels", {}).get("service")
    for name, port in SERVICES.items():
        assert targets.get(f"{name}:{port}") == name, f"{name}:{port} is not scraped (service label)"
    assert any(src.endswith("deploy/prometheus/prometheus.yml") and dst == "/etc/prometheus/prometheus.yml"
               for src, dst in _mounts(compose["services"]["prometheus"]))


def test_compose_grafana_provisioning(compose):
    ds = load_yaml(PROVISIONING_DIR / "datasources" / "prometheus.yml")["datasources"]
    assert len(ds) == 1 and ds[0]["type"] == "prometheus"
    assert ds[0]["url"] == "http://prometheus:9090"
    providers = load_yaml(PROVISIONING_DIR / "dashboards" / "eskit.yml")["providers"]
    path = providers[0]["options"]["path"]
    mounts = _mounts(compose["services"]["grafana"])

    def mounted(source, target):
        return any(src.endswith(source) and dst == target for src, dst in mounts)

    assert mounted("deploy/grafana/dashboards", path), "the dashboards are not mounted where the provider looks"
    assert mounted("deploy/grafana/provisioning", "/etc/grafana/provisioning")


# ---------------------------------------------------------------- Prometheus

def test_promtool_accepts_compose_config():
    r = run([need("promtool"), "check", "config", "deploy/prometheus/prometheus.yml"])
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_refuses_broken_config(tmp_path):
    text = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    broken = tmp_path / "prometheus.yml"
    broken.write_text(text.replace("scrape_interval: 15s", "scrape_interval: fifteen", 1))
    r = run([need("promtool"), "check", "config", str(broken)])
    assert r.returncode != 0


def _promtool_knows_kubernetes_sd(tmp_path):
    probe = tmp_path / "probe.yml"
    probe.write_text("scrape_configs:\n  - job_name: p\n    kubernetes_sd_configs:\n      - role: pod\n")
    return run([need("promtool"), "check", "config", str(probe)]).returncode == 0


def test_k8s_prometheus_config(k8s_objects, tmp_path):
    cm = _one(k8s_objects, "ConfigMap", "prometheus-config")
    text = cm["data"]["prometheus.yml"]
    cfg = yaml.safe_load(text)
    (job,) = [j for j in cfg["scrape_configs"] if j["job_name"] == "eskit"]
    relabels = job["relabel_configs"]
    assert {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
            "regex": "true", "action": "keep"} in relabels
    assert any(r.get("target_label") == "service" for r in relabels), "no `service` label for the dashboards"
    full = tmp_path / "prometheus.yml"
    full.write_text(text)
    if _promtool_knows_kubernetes_sd(tmp_path):
        r = run([need("promtool"), "check", "config", str(full)])
        assert r.returncode == 0, r.stdout + r.stderr
        return
    # Debian's promtool is built without Kubernetes discovery: check the rest of
    # the file with promtool (the SD block swapped for an empty static list),
    # and the SD block by hand.
    for sd in job["kubernetes_sd_configs"]:
        assert set(sd) <= {"role", "namespaces", "selectors", "api_server", "kubeconfig_file",
                           "attach_metadata"}, sd
        assert sd["role"] in {"pod", "service", "endpoints", "endpointslice", "node", "ingress"}
        assert set(sd.get("namespaces", {})) <= {"own_namespace", "names"}
    del job["kubernetes_sd_configs"]
    job["static_configs"] = [{"targets": []}]
    rest = tmp_path / "rest.yml"
    rest.write_text(yaml.safe_dump(cfg))
    r = run([need("promtool"), "check", "config", str(rest)])
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------- Grafana

def test_promql_metric_names_extractor():
    f = promql_metric_names
    assert f('histogram_quantile(0.99, sum by (le, route) (rate(eskit_http_request_duration_seconds_bucket'
             '{service=~"$service",route!="/x"}[$__rate_interval])))') == \
        {"eskit_http_request_duration_seconds_bucket"}
    assert f("sum(rate(a_total[5m])) by (job) / on(job) group_left(x) b offset 1h") == {"a_total", "b"}
    assert f("time() - process_start_time_seconds") == {"process_start_time_seconds"}
    assert f('max(eskit_log_head_id) or vector(0) > 1e3') == {"eskit_log_head_id"}
    assert f('{__name__="up", job="x"}') == {"up"}
    assert grafana_variable_exprs("label_values(eskit_consumer_offset, consumer)") == ["eskit_consumer_offset"]
    assert grafana_variable_exprs({"query": "label_values(job)"}) == []


def test_dashboards_are_valid():
    ds_uid = load_yaml(PROVISIONING_DIR / "datasources" / "prometheus.yml")["datasources"][0]["uid"]
    boards = dashboards()
    assert set(boards) >= {"events.json", "consumers.json"}
    uids = [d.get("uid") for d in boards.values()]
    assert all(uids) and len(set(uids)) == len(uids), "every dashboard needs its own uid"
    for fname, d in boards.items():
        assert d.get("title") and isinstance(d.get("schemaVersion"), int), fname
        panels = list(_panels(d["panels"]))
        ids = [p["id"] for p in panels]
        assert len(set(ids)) == len(ids), f"{fname}: duplicate panel ids"
        for p in panels:
            assert {"x", "y", "w", "h"} <= set(p.get("gridPos", {})), f"{fname}: {p.get('title')}"
            if p["type"] == "row":
                continue
            assert p.get("targets"), f"{fname}: panel {p['title']!r} has no query"
            for obj in [p, *p["targets"]]:
                ds = obj.get("datasource")
                assert ds == {"type": "prometheus", "uid": ds_uid}, \
                    f"{fname}: panel {p['title']!r} does not use the provisioned data source"
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                assert v["datasource"]["uid"] == ds_uid, f"{fname}: variable {v['name']}"


def test_dashboards_use_only_exported_metrics():
    names = dashboard_metric_names()
    unknown = {n: f for n, f in names.items() if n not in KNOWN_METRICS}
    assert not unknown, f"dashboards query metrics no service exports: {unknown}"
    by_file = {}
    for n, files in names.items():
        for f in files:
            by_file.setdefault(f, set()).add(n)
    assert {"eskit_events_total", "eskit_log_head_id", "eskit_http_requests_total",
            "eskit_http_request_duration_seconds_bucket"} <= by_file["events.json"]
    assert {"eskit_consumer_offset", "eskit_consumer_lag",
            "eskit_consumer_errors_total"} <= by_file["consumers.json"]


def test_dashboard_queries_parse_as_promql(tmp_path):
    """promtool parses every query (as a recording rule), variables substituted."""
    subst = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
    rules = []
    for fname, d in dashboards().items():
        for i, (where, expr) in enumerate(dashboard_exprs(d)):
            for k, v in subst.items():
                expr = expr.replace(k, v)
            expr = re.sub(r"\$\{?\w+\}?", ".+", expr)  # $service in a regex matcher
            rules.append({"record": f"dashboard:{Path(fname).stem}:{i}", "expr": expr})
    assert rules
    f = tmp_path / "rules.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    r = run([need("promtool"), "check", "rules", str(f)])
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------- Kubernetes

@pytest.fixture(scope="module")
def k8s_objects():
    """deploy/k8s rendered by the validator (which must accept it)."""
    r = node("validate-k8s.mjs", "--print", K8S_DIR)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _one(objs, kind, name):
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def test_k8s_manifests_are_valid():
    r = node("validate-k8s.mjs", K8S_DIR)
    assert r.returncode == 0, r.stderr


def _broken_fixtures():
    return sorted(p.name for p in BROKEN_K8S.iterdir() if p.suffix == ".yaml" or p.is_dir())


@pytest.mark.parametrize("fixture", _broken_fixtures())
def test_k8s_validator_refuses_broken_manifest(fixture):
    path = BROKEN_K8S / fixture
    head = (path / "kustomization.yaml" if path.is_dir() else path).read_text()
    expected = re.findall(r"^# expect: (.+)$", head, re.M)
    assert expected, f"{fixture}: no '# expect:' line"
    r = node("validate-k8s.mjs", path)
    assert r.returncode == 1, f"{fixture} was accepted:\n{r.stderr}"
    for e in expected:
        assert e in r.stderr, f"{fixture}: expected {e!r} in:\n{r.stderr}"


def test_k8s_render_matches_kustomize(k8s_objects):
    """When a kustomize (or kubectl) is around, its rendering equals ours."""
    if shutil.which("kustomize"):
        cmd = ["kustomize", "build", str(K8S_DIR)]
    elif shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", str(K8S_DIR)]
    else:
        pytest.skip("no kustomize or kubectl binary to compare with")
    r = run(cmd)
    if r.returncode != 0:
        pytest.skip(f"{cmd[0]} could not render here: {r.stderr.strip()[:200]}")
    theirs = [d for d in yaml.safe_load_all(r.stdout) if d]

    def key(o):
        return (o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])

    ours = {key(o): o for o in k8s_objects}
    theirs = {key(o): o for o in theirs}
    assert set(ours) == set(theirs)
    for k, o in ours.items():
        assert o == theirs[k], f"{k} renders differently"


def test_make_deploy_k8s_refuses_without_a_context(tmp_path):
    """Without a context kubectl would talk to http://localhost:8080, where the
    event store listens: `make deploy-k8s` refuses before kubectl applies."""
    if not shutil.which("kubectl"):
        pytest.skip("no kubectl")
    env = dict(os.environ, KUBECONFIG=str(tmp_path / "no-config"), HOME=str(tmp_path))
    r = run(["make", "-s", "deploy-k8s"], env=env)
    assert r.returncode != 0, r.stdout
    assert "kubectl has no current context" in r.stderr, r.stderr
    assert "apply" not in r.stdout


def test_make_deploy_k8s_dry_run():
    """`make deploy-k8s` with --dry-run=client, where kubectl reaches a cluster.
    kubectl's client dry run still asks the API server (discovery, and the
    live objects, to choose create or patch), so with no cluster this is
    skipped: the kustomization is then rendered by kubectl's own kustomize
    (test_k8s_render_matches_kustomize) and checked against the API schemas,
    but no API server has seen it."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("no kubectl")
    if run([kubectl, "config", "current-context"]).returncode != 0 or \
            run([kubectl, "version", "--request-timeout=5s"]).returncode != 0:
        pytest.skip("no Kubernetes cluster answers kubectl here: even --dry-run=client needs "
                    "an API server")
    r = run(["make", "-s", "deploy-k8s", "K8S_APPLY_FLAGS=--dry-run=client"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(dry run)" in r.stdout, r.stdout


def _pod_templates(objs):
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet"):
            yield o, o["spec"]["template"]


def test_k8s_namespace_and_restricted_pods(k8s_objects):
    (ns,) = [o for o in k8s_objects if o["kind"] == "Namespace"]
    assert ns["metadata"]["name"] == "eskit"
    for o in k8s_objects:
        if o["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert o["metadata"].get("namespace") == "eskit", f"{o['kind']}/{o['metadata']['name']}"
    # Pod Security "restricted", which the namespace enforces, for every pod.
    for o, t in _pod_templates(k8s_objects):
        spec = t["spec"]
        psc = spec.get("securityContext", {})
        for c in spec["containers"] + spec.get("initContainers", []):
            where = f"{o['metadata']['name']}/{c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert sc.get("readOnlyRootFilesystem") is True, where
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(kind, {})), f"{where}: {kind}"
            assert c.get("livenessProbe") and c.get("readinessProbe"), where


def test_k8s_services(k8s_objects):
    config = _one(k8s_objects, "ConfigMap", "eskit-config")["data"]
    secret = _one(k8s_objects, "Secret", "eskit-secrets")
    assert "db-password" in secret.get("stringData", secret.get("data", {}))
    for name, port in SERVICES.items():
        dep = _one(k8s_objects, "Deployment", name)
        assert dep["spec"]["replicas"] == K8S_REPLICAS[name], name
        tmpl = dep["spec"]["template"]
        ann = tmpl["metadata"].get("annotations", {})
        assert ann.get("prometheus.io/scrape") == "true", name
        assert ann.get("prometheus.io/port") == str(port), name
        assert ann.get("prometheus.io/path") == "/metrics", name
        spec = tmpl["spec"]
        assert spec["securityContext"]["runAsUser"] == 10001, name
        (c,) = spec["containers"]
        assert c["image"] == "eskit:latest", name
        assert c["command"][0].endswith(f"eskit-{name}"), name
        assert c["securityContext"]["runAsUser"] == 10001, name
        assert [p["containerPort"] for p in c["ports"]] == [port], name
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        tmp_mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert tmp_mounts, f"{name}: no /tmp"
        vol = [v for v in spec["volumes"] if v["name"] == tmp_mounts[0]["name"]][0]
        assert "emptyDir" in vol, name
        env = {e["name"]: e for e in c["env"]}
        assert env["ESKIT_LISTEN"]["value"] == f"0.0.0.0:{port}", name

        def value(var):
            e = env[var]
            if "value" in e:
                return e["value"]
            return config[e["valueFrom"]["configMapKeyRef"]["key"]]

        if name in DB_SERVICES:
            assert re.match(r"postgres(ql)?://[^/:@]+@postgres:5432/", value("ESKIT_DATABASE_URL")), name
            ref = env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == ("eskit-secrets", "db-password"), name
        else:
            assert "PGPASSWORD" not in env and "ESKIT_DATABASE_URL" not in env, name
        for var in env:
            if var.endswith("_URL") and var != "ESKIT_DATABASE_URL":
                m = re.fullmatch(r"http://([a-z-]+):(\d+)", value(var))
                assert m and SERVICES.get(m.group(1)) == int(m.group(2)), f"{name} {var}"
        svc = _one(k8s_objects, "Service", name)
        assert [p["port"] for p in svc["spec"]["ports"]] == [port], name
    pg = _one(k8s_objects, "StatefulSet", "postgres")
    assert pg["spec"]["template"]["spec"]["containers"][0]["image"] == "postgres:15-bookworm"
    assert pg["spec"]["volumeClaimTemplates"], "PostgreSQL needs a volume claim"
    assert _one(k8s_objects, "Service", "postgres")["spec"]["clusterIP"] == "None"
    pg_env = {e["name"]: e for e in pg["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert pg_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "eskit-secrets", "key": "db-password"}
    prom = _one(k8s_objects, "Deployment", "prometheus")
    assert prom["spec"]["template"]["spec"]["serviceAccountName"] == "prometheus"


def _openapi():
    return load_yaml(ROOT / "docs" / "openapi.yaml")


def _port_of_server(url):
    return int(re.search(r":(\d+)$", url).group(1))


def test_k8s_ingress_routes_the_public_api(k8s_objects):
    """Every /v1 path of the event store and the CRUD store (docs/openapi.yaml)
    reaches its service through the Ingress."""
    (ing,) = [o for o in k8s_objects if o["kind"] == "Ingress"]
    routes = [(p["path"], p["backend"]["service"]["name"])
              for r in ing["spec"]["rules"] for p in r["http"]["paths"]]
    by_port = {port: name for name, port in SERVICES.items()}
    for path, item in _openapi()["paths"].items():
        if not path.startswith("/v1/"):
            continue
        service = by_port[_port_of_server(item["servers"][0]["url"])]
        if service not in ("event-store", "crud-store"):
            continue
        matches = [(p, s) for p, s in routes if path == p or path.startswith(p.rstrip("/") + "/")]
        assert matches, f"{path} is not routed"
        best = max(matches, key=lambda m: len(m[0]))
        assert best[1] == service, f"{path} goes to {best[1]}, not {service}"


# ---------------------------------------------------------------- OpenAPI

def test_openapi_lint():
    r = node("lint-openapi.mjs", ROOT / "docs" / "openapi.yaml")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("old,new,why", [
    ("    Error:\n      type: object\n", "    Eror:\n      type: object\n", "unresolved"),
    ("          schema: {type: integer, minimum: 1, maximum: 1000, default: 100}",
     "          schema: {type: int, minimum: 1, maximum: 1000, default: 100}", "type"),
    ("  /v1/consumers/{consumer_id}:\n    servers: *consumer-store\n    parameters:\n"
     "      - $ref: \"#/components/parameters/ConsumerId\"\n",
     "  /v1/consumers/{consumer_id}:\n    servers: *consumer-store\n", "consumer_id"),
])
def test_openapi_linter_refuses_broken_document(tmp_path, old, new, why):
    text = (ROOT / "docs" / "openapi.yaml").read_text()
    assert old in text
    broken = tmp_path / "openapi.yaml"
    broken.write_text(text.replace(old, new, 1))
    r = node("lint-openapi.mjs", broken)
    assert r.returncode == 1, f"the linter accepted a broken document ({why})"


def test_openapi_matches_spec():
    doc = _openapi()
    expected = {
        "event-store": {
            "/v1/events": {"post"}, "/v1/events/{originator_id}": {"get"},
            "/v1/streams": {"get"}, "/v1/streams/{originator_id}": {"get", "delete"},
            "/v1/streams/{originator_id}/metadata": {"put"},
            "/v1/logs": {"get"}, "/v1/logs/stream": {"get"},
            "/v1/snapshots/{originator_id}": {"put", "get"},
        },
        "crud-store": {
            "/v1/entities/{entity_type}": {"post", "get"},
            "/v1/entities/{entity_type}/{id}": {"get", "put", "patch", "delete"},
            "/v1/entities/{entity_type}/{id}/history": {"get"},
            "/v1/entities/{entity_type}/_find": {"post"},
            "/v1/entities/{entity_type}/_bulk": {"post"},
            "/v1/types": {"post", "get"}, "/v1/types/{entity_type}": {"get", "put"},
        },
        "consumer-store": {
            "/v1/consumers": {"get"}, "/v1/consumers/{consumer_id}": {"put", "get", "delete"},
        },
    }
    methods = {"get", "put", "post", "patch", "delete"}
    paths = doc["paths"]
    want = {p for v in expected.values() for p in v} | {"/healthz", "/readyz", "/metrics"}
    assert set(paths) == want
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert {_port_of_server(s["url"]) for s in doc["servers"]} == set(SERVICES.values())
    for service, ps in expected.items():
        for path, ms in ps.items():
            item = paths[path]
            assert _port_of_server(item["servers"][0]["url"]) == SERVICES[service], path
            assert set(item) & methods == ms, path
            for m in ms:
                op = item[m]
                assert op["tags"] == [service], f"{m} {path}"
                assert "security" not in op, f"{m} {path}: /v1 is behind the token"
                assert "401" in op["responses"], f"{m} {path}"
    for path in ("/healthz", "/readyz", "/metrics"):
        op = paths[path]["get"]
        assert op["security"] == [], f"{path} is never behind the token"
        assert set(op["tags"]) == set(SERVICES)
    codes = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    assert codes == ["invalid_argument", "unauthenticated", "not_found", "method_not_allowed",
                     "conflict", "payload_too_large", "unsupported_media_type", "gone",
                     "unprocessable", "internal", "unavailable"]
    responses = doc["components"]["responses"]
    assert "WWW-Authenticate" in responses["Unauthenticated"]["headers"]
    assert "Allow" in responses["MethodNotAllowed"]["headers"]
    assert "ETag" in paths["/v1/entities/{entity_type}/{id}"]["get"]["responses"]["200"]["headers"]
    assert "Location" in paths["/v1/entities/{entity_type}"]["post"]["responses"]["201"]["headers"]


# ---------------------------------------------------------------- Dockerfile

def _dockerfile_instructions(path=ROOT / "Dockerfile"):
    """[(INSTRUCTION, arguments)] of a Dockerfile, continuation lines joined."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def _stages():
    stages = []
    for ins, args in _dockerfile_instructions():
        if ins == "FROM":
            stages.append({"from": args, "ins": []})
        elif stages:
            stages[-1]["ins"].append((ins, args))
    return stages


def _apt_packages(stage):
    pkgs = set()
    for ins, args in stage["ins"]:
        if ins == "RUN":
            for m in re.finditer(r"apt-get install((?:\s+[-\w.+=]+)+)", args):
                pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


RUNTIME_PACKAGES = {"libmicrohttpd12", "libjansson4", "libpq5", "libcurl4", "libsqlite3-0",
                    "libuuid1", "libpcre2-8-0", "ca-certificates", "curl"}
# -lNAME in the Makefile -> (the -dev package of the build stage, the runtime package)
LIB_PACKAGES = {
    "microhttpd": ("libmicrohttpd-dev", "libmicrohttpd12"),
    "jansson": ("libjansson-dev", "libjansson4"),
    "pq": ("libpq-dev", "libpq5"),
    "curl": ("libcurl4-openssl-dev", "libcurl4"),
    "sqlite3": ("libsqlite3-dev", "libsqlite3-0"),
    "uuid": ("uuid-dev", "libuuid1"),
    "pcre2-8": ("libpcre2-dev", "libpcre2-8-0"),
    "m": ("libc6-dev", None),
    "pthread": ("libc6-dev", None),
}


def test_dockerfile_lint(tmp_path):
    lint = NODE_DIR / "node_modules" / ".bin" / "dockerfile-utils"
    if not lint.exists():
        pytest.fail("tests/deploy/node_modules is missing: run tools/deps.sh")
    r = run([str(lint), "lint", "Dockerfile"])
    assert r.returncode == 0, r.stdout + r.stderr
    broken = tmp_path / "Dockerfile"
    broken.write_text((ROOT / "Dockerfile").read_text().replace("HEALTHCHECK --interval", "HEALTHCHECK --intervall", 1))
    assert run([str(lint), "lint", str(broken)]).returncode != 0, "the linter accepted a broken Dockerfile"


def test_dockerfile_image():
    build, runtime = _stages()
    assert build["from"].split()[0] == "debian:${DEBIAN_RELEASE}" and build["from"].endswith("AS build")
    assert runtime["from"] == "debian:${DEBIAN_RELEASE}-slim"
    args = dict(a.split("=", 1) for i, a in _dockerfile_instructions() if i == "ARG" and "=" in a)
    assert args["DEBIAN_RELEASE"] == "bookworm"
    assert _apt_packages(runtime) == RUNTIME_PACKAGES
    assert any(i == "RUN" and re.search(r"\bmake\b.*\ball\b", a) for i, a in build["ins"])
    ins = dict(runtime["ins"])
    assert ins["USER"].split(":")[0] == "10001"
    assert ins["WORKDIR"] == "/var/lib/eskit"
    assert "useradd" in ins["RUN"] and "--uid 10001" in ins["RUN"]
    assert re.search(r"install -d -o 10001 .*/var/lib/eskit", ins["RUN"]), "WORKDIR must be writable"
    assert "/healthz" in ins["HEALTHCHECK"] and "ESKIT_LISTEN" in ins["HEALTHCHECK"]
    copied = " ".join(a for i, a in runtime["ins"] if i == "COPY")
    for name in SERVICES:
        assert f"build/bin/eskit-{name}" in copied, name
    # every library the Makefile links has its -dev package in the build stage
    # and its runtime package in the image
    libs = re.search(r"^LIBS\s*:?=(.*)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    dev = _apt_packages(build)
    for lib in re.findall(r"-l([\w.+-]+)", libs):
        assert lib in LIB_PACKAGES, f"-l{lib}: add its packages to the Dockerfile and LIB_PACKAGES"
        dev_pkg, run_pkg = LIB_PACKAGES[lib]
        assert dev_pkg in dev or dev_pkg == "libc6-dev", f"-l{lib}: {dev_pkg} missing in the build stage"
        assert run_pkg is None or run_pkg in RUNTIME_PACKAGES, f"-l{lib}: {run_pkg} missing in the image"


def test_dockerfile_shell_snippets_pass_shellcheck():
    """RUN and HEALTHCHECK commands (shell form) run under /bin/sh: shellcheck them."""
    need("shellcheck")
    snippets = []
    for ins, args in _dockerfile_instructions():
        if ins == "RUN" and not args.startswith("["):
            snippets.append(args)
        if ins == "HEALTHCHECK":
            cmd = re.sub(r"^(--\S+\s+)*CMD\s+", "", args)
            if not cmd.startswith("["):
                snippets.append(cmd)
    assert snippets
    for s in snippets:
        r = run([need("shellcheck"), "-s", "sh", "-"], input=s + "\n")
        assert r.returncode == 0, f"{s}\n{r.stdout}"


STANDIN_DOCKERFILES = sorted((ROOT / "tools" / "docker").glob("*/Dockerfile"))


@pytest.mark.parametrize("path", STANDIN_DOCKERFILES, ids=lambda p: p.parent.name)
def test_standin_dockerfiles_lint(path):
    """The stand-ins' Dockerfiles (tools/docker/*/): the same linter and
    shellcheck on their RUN snippets; each builds on the Debian base that
    tools/docker/images.sh makes, and says what it stands in for."""
    lint = NODE_DIR / "node_modules" / ".bin" / "dockerfile-utils"
    if not lint.exists():
        pytest.fail("tests/deploy/node_modules is missing: run tools/deps.sh")
    r = run([str(lint), "lint", str(path)])
    assert r.returncode == 0, r.stdout + r.stderr
    ins = _dockerfile_instructions(path)
    assert ins[0] == ("FROM", "debian:bookworm-slim"), ins[0]
    assert "stand" in path.read_text().split("FROM")[0].lower(), "say what it stands in for"
    for i, args in ins:
        if i == "RUN" and not args.startswith("["):
            r = run([need("shellcheck"), "-s", "sh", "-"], input=args + "\n")
            assert r.returncode == 0, f"{args}\n{r.stdout}"


def test_every_third_party_image_has_a_standin(compose):
    """tools/docker/images.sh builds a stand-in from tools/docker/<service>/
    for each Compose service whose image is not eskit's."""
    for name, svc in compose["services"].items():
        if svc["image"] != "eskit:latest":
            assert (ROOT / "tools" / "docker" / name / "Dockerfile").exists(), name


def test_runtime_packages_cover_the_binaries():
    """The libraries the built binaries need come from the image's packages
    (checked on this Debian 12 machine with dpkg)."""
    bin_dir = Path(os.environ.get("ESKIT_BIN_DIR", ROOT / "build" / "bin"))
    bins = [bin_dir / f"eskit-{n}" for n in SERVICES if (bin_dir / f"eskit-{n}").exists()]
    if not bins or not shutil.which("objdump") or not shutil.which("dpkg"):
        pytest.skip("no built binaries (or no objdump / dpkg) to inspect")
    base = {"libc6", "libgcc-s1", "libstdc++6"}  # in every Debian image
    for b in bins:
        dyn = run(["objdump", "-p", str(b)]).stdout
        resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", str(b)]).stdout, re.M))
        for soname in re.findall(r"^\s*NEEDED\s+(\S+)", dyn, re.M):
            if re.match(r"lib(asan|ubsan|lsan|tsan)\.", soname):
                continue  # SANITIZE=1 builds
            path = resolved.get(soname)
            assert path, f"{b.name}: {soname} not found by ldd"
            real = os.path.realpath(path)
            owner = None
            for candidate in (path, real, real.replace("/usr/lib/", "/lib/", 1),
                              real.replace("/lib/", "/usr/lib/", 1)):
                r = run(["dpkg", "-S", candidate])
                if r.returncode == 0:
                    owner = r.stdout.split(":")[0]
                    break
            assert owner, f"{b.name}: no package owns {soname}"
            assert owner in RUNTIME_PACKAGES | base, f"{b.name} needs {soname} from {owner}, not in the image"


def test_dockerignore_keeps_the_build_inputs():
    patterns = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
                if l.strip() and not l.startswith("#")]
    for needed in ("Makefile", "tools", "common", "services"):
        assert needed not in patterns, f".dockerignore drops {needed}, which the build stage copies"
    for dropped in (".git", "build", "node_modules"):
        assert dropped in patterns, f".dockerignore should drop {dropped}"
    copied = [a.split()[0] for i, a in _dockerfile_instructions() if i == "COPY" and "--from" not in a]
    assert sorted(copied) == ["Makefile", "common/", "services/", "tools/"]


def _make_dry_run_binaries(cwd, build_dir):
    r = run(["make", "-n", "-B", "all", f"BUILD={build_dir}"], cwd=cwd)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    return set(re.findall(r"-o \S*/bin/(eskit-[\w-]+)", r.stdout))


def test_build_stage_inputs_suffice(tmp_path):
    """`make all` on what the build stage copies builds what it builds in the
    repository (a dry run: no compiler needed, nothing built)."""
    ctx = tmp_path / "src"
    ctx.mkdir()
    for ins, args in _dockerfile_instructions():
        if ins == "COPY" and "--from" not in args:
            src = args.split()[0].rstrip("/")
            if (ROOT / src).is_dir():
                shutil.copytree(ROOT / src, ctx / src)
            else:
                shutil.copy2(ROOT / src, ctx / src)
    in_image = _make_dry_run_binaries(ctx, tmp_path / "b1")
    in_repo = _make_dry_run_binaries(ROOT, tmp_path / "b2")
    assert in_repo, "make all builds no binary?"
    assert in_image == in_repo, "the build stage lacks inputs that `make all` needs"
    # The image copies the four binaries: once the repository builds them all,
    # so must the build stage.
    assert in_image <= {f"eskit-{n}" for n in SERVICES}


# ---------------------------------------------------------------- shell scripts

def shell_scripts():
    """Every shell script of the repository: *.sh anywhere (outside build output
    and dependencies), and files with a sh/bash shebang in tools/, bench/, .ci/."""
    skip = {".git", "build", "node_modules", "data", "__pycache__", ".pytest_cache"}
    found = set()
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for f in filenames:
            if f.endswith(".sh"):
                found.add(Path(dirpath) / f)
    for d in ("tools", "bench", ".ci", "deploy"):
        for p in (ROOT / d).rglob("*") if (ROOT / d).is_dir() else []:
            if p.is_file() and not any(part in skip for part in p.parts):
                try:
                    first = p.open("rb").readline(200)
                except OSError:
                    continue
                if re.match(rb"#!\s*(/usr)?/bin/(env\s+)?(ba|da)?sh\b", first):
                    found.add(p)
    return sorted(str(p.relative_to(ROOT)) for p in found)


@pytest.mark.parametrize("script", shell_scripts())
def test_shellcheck(script):
    r = run([need("shellcheck"), "-x", "-P", "SCRIPTDIR", script])
    assert r.returncode == 0, r.stdout + r.stderr
