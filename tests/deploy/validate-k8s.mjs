#!/usr/bin/env node
// validate-k8s.mjs - validates Kubernetes manifests offline, the way the API
// server would take them, and renders a kustomization.
//
//   node tests/deploy/validate-k8s.mjs [--print] PATH...
//
// PATH is a directory holding a kustomization.yaml (rendered, then validated
// as one application), any other directory (each *.yaml / *.yml file), or a
// file. Exit 0 when everything is valid, 1 when something is not (one line per
// problem on stderr), 2 on a usage error. With --print, the objects (rendered,
// for a kustomization) go to stdout as one JSON array, for the Python tests.
//
// What is checked, for every object:
//  1. the official Kubernetes OpenAPI schema of its apiVersion/kind (the npm
//     package kubernetes-models, generated from the Kubernetes API's OpenAPI
//     document): types, required fields, enums, formats such as quantities;
//  2. no unknown fields anywhere (the API server's strict field validation;
//     the schemas alone allow unknown fields): a typo such as `readinessProb`
//     is an error, found by probing each field against the schema;
//  3. rules the API server enforces that the schema does not express: DNS-1123
//     names, label syntax, a workload's selector matching its pod template, a
//     container image, unique container / port / volume names, volume mounts
//     and named probe ports that exist.
// And for a kustomization, across the rendered objects: no duplicates; every
// non-optional ConfigMap / Secret (and key) that a pod uses exists; Services
// select some pod and their target ports exist; Ingress backends exist;
// RoleBindings name an existing Role and ServiceAccount; a StatefulSet's
// serviceName is a headless Service.
//
// The renderer implements exactly the kustomization fields this project uses
// (resources, namespace, images, patches) with kustomize's semantics, and
// refuses any other field rather than ignore it. Of patches it knows two
// kinds, from a file (`path`): a JSON 6902 patch (a list of add / replace /
// remove operations) on the objects named by `target` (kind, name), and a
// strategic-merge patch (an object naming its target by kind and name) that
// is `$patch: delete` or merges mappings only (lists there have merge keys
// this renderer does not know: use a JSON 6902 patch). When a kustomize
// binary is around, the tests also compare its rendering with this one.

import { readFileSync, existsSync, statSync, readdirSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";

const problems = [];
function problem(where, msg) {
  problems.push(`${where}: ${msg}`);
}

// --- loading -------------------------------------------------------------------

function loadYamlFile(file) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    problem(file, `cannot read: ${e.message}`);
    return [];
  }
  const out = [];
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  for (const [i, doc] of docs.entries()) {
    const where = `${file}#${i + 1}`;
    if (doc.errors.length) {
      for (const e of doc.errors) problem(where, `YAML: ${e.message.split("\n")[0]}`);
      continue;
    }
    const obj = doc.toJS({ maxAliasCount: 100 });
    if (obj === null || obj === undefined) continue; // an empty document
    out.push({ obj, where });
  }
  return out;
}

function yamlFilesIn(dir) {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

// --- schema validation -----------------------------------------------------------

const modelCache = new Map();

// The kubernetes-models class for apiVersion/kind, or null when there is none.
async function modelFor(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (modelCache.has(key)) return modelCache.get(key);
  let cls = null;
  if (/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) && /^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    try {
      const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
      const c = mod[kind];
      if (c && c.apiVersion === apiVersion && c.kind === kind) cls = c;
    } catch {
      cls = null;
    }
  }
  modelCache.set(key, cls);
  return cls;
}

function schemaErrors(cls, obj) {
  try {
    new cls(obj).validate();
    return [];
  } catch (e) {
    if (Array.isArray(e.errors)) return e.errors;
    return [{ instancePath: "", message: String(e.message || e) }];
  }
}

// A value no schema type accepts: putting it in place of a field makes the
// validator complain at that path exactly when the schema knows the field.
const PROBE = Symbol("probe");

function unknownFields(cls, obj) {
  const found = [];
  const root = structuredClone(obj);
  const walk = (node, ptr) => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, `${ptr}/${i}`));
      return;
    }
    if (node === null || typeof node !== "object") return;
    for (const k of Object.keys(node)) {
      const saved = node[k];
      node[k] = PROBE;
      const p = `${ptr}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`;
      const known = schemaErrors(cls, root).some((e) => e.instancePath === p);
      node[k] = saved;
      if (!known) {
        found.push(p);
        continue; // nothing below an unknown field can be known
      }
      walk(saved, p);
    }
  };
  walk(root, "");
  return found;
}

// --- rules the API server enforces beyond the schema ---------------------------------

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

const CLUSTER_SCOPED = new Set([
  "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
  "StorageClass", "IngressClass", "CustomResourceDefinition", "PriorityClass",
  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
  "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "APIService",
  "CSIDriver", "CSINode", "RuntimeClass", "VolumeAttachment", "ComponentStatus",
  "CertificateSigningRequest", "FlowSchema", "PriorityLevelConfiguration",
]);
// Kinds whose name must be a DNS-1123 label (no dots), not just a subdomain.
const LABEL_NAMED = new Set(["Namespace", "Service"]);

function checkLabelKey(where, key) {
  const parts = key.split("/");
  if (parts.length > 2) return problem(where, `label key "${key}" has more than one '/'`);
  const name = parts[parts.length - 1];
  if (parts.length === 2 && (parts[0].length > 253 || !DNS1123_SUBDOMAIN.test(parts[0])))
    problem(where, `label key "${key}": the prefix must be a DNS-1123 subdomain`);
  if (name.length > 63 || !LABEL_NAME.test(name))
    problem(where, `label key "${key}": the name must be 1-63 characters of [A-Za-z0-9-_.]`);
}

function checkLabels(where, labels) {
  for (const [k, v] of Object.entries(labels || {})) {
    checkLabelKey(where, k);
    if (typeof v === "string" && v !== "" && (v.length > 63 || !LABEL_NAME.test(v)))
      problem(where, `label ${k}: value "${v}" is not a valid label value`);
  }
}

function checkMetadata(where, obj) {
  const md = obj.metadata || {};
  const name = md.name;
  if (typeof name !== "string" || name === "") {
    problem(where, "metadata.name is required");
  } else if (LABEL_NAMED.has(obj.kind)) {
    if (name.length > 63 || !DNS1123_LABEL.test(name))
      problem(where, `metadata.name "${name}" must be a DNS-1123 label (a-z 0-9 -, at most 63)`);
  } else if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    problem(where, `metadata.name "${name}" must be a DNS-1123 subdomain`);
  }
  if (md.namespace !== undefined && !DNS1123_LABEL.test(String(md.namespace)))
    problem(where, `metadata.namespace "${md.namespace}" is not a valid namespace name`);
  checkLabels(where, md.labels);
  for (const k of Object.keys(md.annotations || {})) checkLabelKey(where, k);
}

// The pod template(s) of a workload: [{spec, metadata, path}].
function podTemplates(obj) {
  const s = obj.spec || {};
  switch (obj.kind) {
    case "Pod":
      return [{ metadata: obj.metadata || {}, spec: s, path: "spec" }];
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
    case "Job":
      return s.template ? [{ metadata: s.template.metadata || {}, spec: s.template.spec || {}, path: "spec.template.spec" }] : [];
    case "CronJob": {
      const t = s.jobTemplate && s.jobTemplate.spec && s.jobTemplate.spec.template;
      return t ? [{ metadata: t.metadata || {}, spec: t.spec || {}, path: "spec.jobTemplate.spec.template.spec" }] : [];
    }
    default:
      return [];
  }
}

function allContainers(pod) {
  return [...(pod.initContainers || []), ...(pod.containers || [])];
}

function checkPod(where, obj, tmpl) {
  const pod = tmpl.spec;
  const at = `${where} ${tmpl.path}`;
  if (!Array.isArray(pod.containers) || pod.containers.length === 0)
    problem(at, "containers: at least one container is required");
  const volumes = new Set();
  for (const v of pod.volumes || []) {
    if (volumes.has(v.name)) problem(at, `volumes: duplicate name "${v.name}"`);
    volumes.add(v.name);
    if (v.name && !DNS1123_LABEL.test(v.name)) problem(at, `volume name "${v.name}" must be a DNS-1123 label`);
  }
  if (obj.kind === "StatefulSet")
    for (const t of obj.spec.volumeClaimTemplates || []) volumes.add(t.metadata && t.metadata.name);
  const names = new Set();
  const portNames = new Set();
  for (const c of allContainers(pod)) {
    const cat = `${at} container "${c.name}"`;
    if (names.has(c.name)) problem(cat, "duplicate container name");
    names.add(c.name);
    if (c.name && !DNS1123_LABEL.test(c.name)) problem(cat, "name must be a DNS-1123 label");
    if (typeof c.image !== "string" || c.image.trim() === "") problem(cat, "image: Required value");
    const own = new Set();
    for (const p of c.ports || []) {
      if (p.name === undefined) continue;
      if (p.name.length > 15 || !IANA_SVC_NAME.test(p.name))
        problem(cat, `port name "${p.name}" must be at most 15 characters of a-z 0-9 - with a letter`);
      if (portNames.has(p.name)) problem(cat, `duplicate port name "${p.name}" in the pod`);
      portNames.add(p.name);
      own.add(p.name);
    }
    for (const m of c.volumeMounts || [])
      if (!volumes.has(m.name)) problem(cat, `volumeMount "${m.name}" names no volume of the pod`);
    for (const e of c.env || [])
      if (!ENV_NAME.test(e.name || "")) problem(cat, `env name "${e.name}" is not a valid variable name`);
    for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
      const pr = c[probe];
      if (!pr) continue;
      const handlers = ["exec", "httpGet", "tcpSocket", "grpc"].filter((h) => pr[h]);
      if (handlers.length !== 1) problem(cat, `${probe}: exactly one handler (exec, httpGet, tcpSocket, grpc) is required`);
      const port = (pr.httpGet && pr.httpGet.port) ?? (pr.tcpSocket && pr.tcpSocket.port);
      if (typeof port === "string" && !own.has(port))
        problem(cat, `${probe}: port "${port}" is not a named port of this container`);
    }
  }
}

function checkWorkload(where, obj) {
  if (!["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"].includes(obj.kind)) return;
  const sel = (obj.spec && obj.spec.selector) || {};
  const labels = (obj.spec.template && obj.spec.template.metadata && obj.spec.template.metadata.labels) || {};
  const ml = sel.matchLabels || {};
  if (Object.keys(ml).length === 0 && !(sel.matchExpressions || []).length)
    problem(where, "spec.selector: empty selectors are invalid for this kind");
  for (const [k, v] of Object.entries(ml))
    if (labels[k] !== v)
      problem(where, `spec.template.metadata.labels: selector ${k}=${v} does not match the template labels`);
}

function checkService(where, obj) {
  if (obj.kind !== "Service") return;
  const s = obj.spec || {};
  const ports = s.ports || [];
  if (ports.length === 0 && s.clusterIP !== "None" && s.type !== "ExternalName")
    problem(where, "spec.ports: at least one port is required");
  const seen = new Set();
  for (const p of ports) {
    if (ports.length > 1 && !p.name) problem(where, "spec.ports: every port needs a name when there are several");
    if (p.name && seen.has(p.name)) problem(where, `spec.ports: duplicate name "${p.name}"`);
    seen.add(p.name);
  }
}

async function checkObject(item) {
  const { obj, where } = item;
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    problem(where, "a manifest must be a mapping");
    return;
  }
  if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
    problem(where, "apiVersion and kind are required strings");
    return;
  }
  const label = `${where} ${obj.kind}/${(obj.metadata && obj.metadata.name) || "?"}`;
  const cls = await modelFor(obj.apiVersion, obj.kind);
  if (!cls) {
    problem(label, `unknown apiVersion/kind ${obj.apiVersion} ${obj.kind}`);
    return;
  }
  const errs = schemaErrors(cls, obj);
  for (const e of errs) problem(label, `schema: ${e.instancePath || "/"} ${e.message}`);
  for (const p of unknownFields(cls, obj)) problem(label, `unknown field ${p}`);
  try {
    checkMetadata(label, obj);
    checkWorkload(label, obj);
    checkService(label, obj);
    for (const t of podTemplates(obj)) checkPod(label, obj, t);
  } catch (e) {
    // A shape the schema already refused can trip the rules; that is reported.
    if (!errs.length) problem(label, `cannot check: ${e.message}`);
  }
}

// --- cross-references within one application ---------------------------------------

function refKey(kind, ns, name) {
  return `${kind}|${ns || ""}|${name}`;
}

function checkReferences(items) {
  const byKey = new Map();
  for (const { obj, where } of items) {
    if (!obj || !obj.kind || !obj.metadata) continue;
    const group = String(obj.apiVersion).includes("/") ? obj.apiVersion.split("/")[0] : "";
    const k = `${group}|${refKey(obj.kind, obj.metadata.namespace, obj.metadata.name)}`;
    if (byKey.has(k)) problem(where, `duplicate ${obj.kind} ${obj.metadata.name} (also ${byKey.get(k).where})`);
    byKey.set(k, { obj, where });
  }
  const find = (kind, ns, name) => {
    for (const { obj } of items)
      if (obj && obj.kind === kind && obj.metadata && obj.metadata.name === name &&
          (CLUSTER_SCOPED.has(kind) || (obj.metadata.namespace || "") === (ns || "")))
        return obj;
    return null;
  };
  const hasKey = (o, key) =>
    Object.prototype.hasOwnProperty.call(o.data || {}, key) ||
    Object.prototype.hasOwnProperty.call(o.stringData || {}, key) ||
    Object.prototype.hasOwnProperty.call(o.binaryData || {}, key);
  const needRef = (where, kind, ns, name, key, optional) => {
    if (optional) return;
    const o = find(kind, ns, name);
    if (!o) problem(where, `${kind} "${name}" does not exist`);
    else if (key !== undefined && !hasKey(o, key)) problem(where, `${kind} "${name}" has no key "${key}"`);
  };

  const namespaces = items.filter((i) => i.obj && i.obj.kind === "Namespace").map((i) => i.obj.metadata.name);
  const pods = []; // {ns, labels, containers}
  for (const { obj, where } of items) {
    if (!obj || !obj.kind || !obj.metadata) continue;
    const ns = obj.metadata.namespace;
    const label = `${where} ${obj.kind}/${obj.metadata.name}`;
    if (!CLUSTER_SCOPED.has(obj.kind)) {
      if (!ns) problem(label, "has no namespace after rendering");
      else if (namespaces.length && !namespaces.includes(ns))
        problem(label, `namespace "${ns}" is not one of the Namespace objects (${namespaces.join(", ")})`);
    }
    for (const t of podTemplates(obj)) {
      pods.push({ ns, labels: t.metadata.labels || {}, containers: allContainers(t.spec) });
      const sa = t.spec.serviceAccountName;
      if (sa && sa !== "default") needRef(label, "ServiceAccount", ns, sa);
      for (const v of t.spec.volumes || []) {
        if (v.configMap) needRef(label, "ConfigMap", ns, v.configMap.name, undefined, v.configMap.optional);
        if (v.secret) needRef(label, "Secret", ns, v.secret.secretName, undefined, v.secret.optional);
      }
      for (const c of allContainers(t.spec)) {
        for (const e of c.env || []) {
          const vf = e.valueFrom || {};
          if (vf.configMapKeyRef)
            needRef(label, "ConfigMap", ns, vf.configMapKeyRef.name, vf.configMapKeyRef.key, vf.configMapKeyRef.optional);
          if (vf.secretKeyRef)
            needRef(label, "Secret", ns, vf.secretKeyRef.name, vf.secretKeyRef.key, vf.secretKeyRef.optional);
        }
        for (const ef of c.envFrom || []) {
          if (ef.configMapRef) needRef(label, "ConfigMap", ns, ef.configMapRef.name, undefined, ef.configMapRef.optional);
          if (ef.secretRef) needRef(label, "Secret", ns, ef.secretRef.name, undefined, ef.secretRef.optional);
        }
      }
    }
    if (obj.kind === "StatefulSet") {
      const svc = find("Service", ns, obj.spec.serviceName);
      if (!svc) problem(label, `spec.serviceName: Service "${obj.spec.serviceName}" does not exist`);
      else if (svc.spec.clusterIP !== "None") problem(label, `spec.serviceName: Service "${obj.spec.serviceName}" is not headless`);
    }
    if (obj.kind === "RoleBinding" || obj.kind === "ClusterRoleBinding") {
      const r = obj.roleRef;
      if (!find(r.kind, r.kind === "Role" ? ns : undefined, r.name)) problem(label, `roleRef: ${r.kind} "${r.name}" does not exist`);
      for (const s of obj.subjects || []) {
        if (s.kind !== "ServiceAccount") continue;
        if (!s.namespace) problem(label, `subject ServiceAccount "${s.name}" needs a namespace`);
        else if (namespaces.includes(s.namespace) && !find("ServiceAccount", s.namespace, s.name))
          problem(label, `subject ServiceAccount "${s.name}" does not exist in ${s.namespace}`);
      }
    }
  }
  for (const { obj, where } of items) {
    if (!obj || !obj.metadata) continue;
    const ns = obj.metadata.namespace;
    const label = `${where} ${obj.kind}/${obj.metadata.name}`;
    if (obj.kind === "Service" && obj.spec.selector) {
      const sel = obj.spec.selector;
      const matched = pods.filter((p) => p.ns === ns && Object.entries(sel).every(([k, v]) => p.labels[k] === v));
      if (!matched.length) problem(label, `spec.selector ${JSON.stringify(sel)} selects no pod template`);
      for (const port of obj.spec.ports || []) {
        const tp = port.targetPort ?? port.port;
        const ok = matched.every((p) =>
          p.containers.some((c) => (c.ports || []).some((cp) => (typeof tp === "string" ? cp.name === tp : cp.containerPort === tp))));
        if (matched.length && !ok) problem(label, `port ${port.name || port.port}: targetPort ${tp} is not a port of the selected pods`);
      }
    }
    if (obj.kind === "Ingress") {
      const backends = [];
      if (obj.spec.defaultBackend) backends.push(obj.spec.defaultBackend);
      for (const r of obj.spec.rules || []) for (const p of (r.http && r.http.paths) || []) backends.push(p.backend);
      for (const b of backends) {
        if (!b.service) continue;
        const svc = find("Service", ns, b.service.name);
        if (!svc) {
          problem(label, `backend Service "${b.service.name}" does not exist`);
          continue;
        }
        const port = b.service.port || {};
        const ok = (svc.spec.ports || []).some((p) => (port.name !== undefined ? p.name === port.name : p.port === port.number));
        if (!ok) problem(label, `backend Service "${b.service.name}" has no port ${port.name ?? port.number}`);
      }
    }
  }
}

// --- the kustomization renderer -----------------------------------------------------

const KUSTOMIZATION_FIELDS = new Set(["apiVersion", "kind", "namespace", "resources", "images", "patches"]);

// --- patches (kustomize `patches:` entries with a `path`) ------------------------------

// RFC 6901 pointer -> tokens.
function pointerTokens(ptr) {
  if (ptr === "") return [];
  if (!ptr.startsWith("/")) return null;
  return ptr.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

// Applies one RFC 6902 operation (add, replace, remove) to obj; returns an
// error message or null.
function applyJsonOp(obj, op) {
  if (!op || typeof op !== "object" || !["add", "replace", "remove"].includes(op.op))
    return `operation ${JSON.stringify(op)}: only add, replace and remove are supported`;
  const toks = pointerTokens(op.path);
  if (!toks || toks.length === 0) return `operation ${op.op}: bad path ${JSON.stringify(op.path)}`;
  let node = obj;
  for (const t of toks.slice(0, -1)) {
    node = Array.isArray(node) ? node[Number(t)] : node && node[t];
    if (node === undefined || node === null || typeof node !== "object") return `path ${op.path} does not exist`;
  }
  const last = toks[toks.length - 1];
  if (Array.isArray(node)) {
    const i = last === "-" ? node.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > node.length || (op.op !== "add" && i >= node.length))
      return `path ${op.path}: no such index`;
    if (op.op === "add") node.splice(i, 0, structuredClone(op.value));
    else if (op.op === "replace") node[i] = structuredClone(op.value);
    else node.splice(i, 1);
    return null;
  }
  if (op.op !== "add" && !Object.prototype.hasOwnProperty.call(node, last)) return `path ${op.path} does not exist`;
  if (op.op === "remove") delete node[last];
  else node[last] = structuredClone(op.value);
  return null;
}

// Merges a strategic-merge patch of mappings into obj (null deletes a key).
function mergeMaps(obj, patch, where, at) {
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$")) {
      problem(where, `${at}/${k}: strategic-merge directives other than a top-level $patch: delete are not supported`);
    } else if (Array.isArray(v)) {
      problem(where, `${at}/${k}: lists in a strategic-merge patch are not supported (use a JSON 6902 patch)`);
    } else if (v === null) {
      delete obj[k];
    } else if (typeof v === "object") {
      if (typeof obj[k] !== "object" || obj[k] === null || Array.isArray(obj[k])) obj[k] = {};
      mergeMaps(obj[k], v, where, `${at}/${k}`);
    } else {
      obj[k] = v;
    }
  }
}

// Applies the kustomization's patches to the rendered items (in place; a
// deleted object is removed). `dir` is the kustomization's directory.
function applyPatches(items, patches, dir, kfile) {
  if (!Array.isArray(patches)) {
    problem(kfile, "patches: a list is required");
    return items;
  }
  for (const pt of patches) {
    if (!pt || typeof pt.path !== "string" || Object.keys(pt).some((f) => !["path", "target"].includes(f))) {
      problem(kfile, `patches: ${JSON.stringify(pt)}: only {path, target} entries are supported`);
      continue;
    }
    const file = path.resolve(dir, pt.path);
    const docs = loadYamlFile(file);
    if (docs.length !== 1) {
      problem(file, "a patch file must hold exactly one document");
      continue;
    }
    const patch = docs[0].obj;
    const where = docs[0].where;
    if (Array.isArray(patch)) {
      const t = pt.target || {};
      if (typeof t.kind !== "string" || typeof t.name !== "string" ||
          Object.keys(t).some((f) => !["kind", "name"].includes(f))) {
        problem(kfile, `patches: ${pt.path}: a JSON 6902 patch needs a target {kind, name}`);
        continue;
      }
      const hits = items.filter((i) => i.obj && i.obj.kind === t.kind && i.obj.metadata && i.obj.metadata.name === t.name);
      if (!hits.length) problem(kfile, `patches: ${pt.path}: no ${t.kind} "${t.name}" to patch`);
      for (const h of hits)
        for (const op of patch) {
          const err = applyJsonOp(h.obj, op);
          if (err) problem(where, `${t.kind}/${t.name}: ${err}`);
        }
      continue;
    }
    if (pt.target !== undefined) {
      problem(kfile, `patches: ${pt.path}: a strategic-merge patch names its target itself (no target:)`);
      continue;
    }
    if (!patch || typeof patch !== "object" || typeof patch.kind !== "string" || !patch.metadata ||
        typeof patch.metadata.name !== "string") {
      problem(where, "a strategic-merge patch needs kind and metadata.name");
      continue;
    }
    const match = (i) => i.obj && i.obj.kind === patch.kind && i.obj.metadata && i.obj.metadata.name === patch.metadata.name &&
      (patch.apiVersion === undefined || i.obj.apiVersion === patch.apiVersion);
    if (!items.some(match)) {
      problem(kfile, `patches: ${pt.path}: no ${patch.kind} "${patch.metadata.name}" to patch`);
      continue;
    }
    if (patch.$patch === "delete") {
      items = items.filter((i) => !match(i));
      continue;
    }
    const { apiVersion, kind, ...rest } = patch; // eslint-disable-line no-unused-vars
    for (const i of items.filter(match)) mergeMaps(i.obj, rest, where, "");
  }
  return items;
}

// "name[:tag][@digest]" -> {name, tag, digest}; a ':' inside a registry host:port
// is not a tag.
function parseImage(ref) {
  let rest = ref;
  let digest;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { name: rest, tag, digest };
}

function applyImages(obj, images) {
  for (const t of podTemplates(obj)) {
    for (const c of allContainers(t.spec)) {
      if (typeof c.image !== "string") continue;
      const img = parseImage(c.image);
      const rule = images.find((r) => r.name === img.name);
      if (!rule) continue;
      const name = rule.newName || img.name;
      let tag = img.tag;
      let digest = img.digest;
      if (rule.newTag !== undefined) {
        tag = String(rule.newTag);
        digest = undefined;
      }
      if (rule.digest !== undefined) {
        digest = rule.digest;
        tag = undefined;
      }
      c.image = name + (tag !== undefined ? `:${tag}` : "") + (digest !== undefined ? `@${digest}` : "");
    }
  }
}

function applyNamespace(obj, ns) {
  if (obj.kind === "Namespace") {
    obj.metadata.name = ns; // kustomize renames Namespace objects too
    return;
  }
  if (CLUSTER_SCOPED.has(obj.kind)) return;
  obj.metadata.namespace = ns;
  if (obj.kind === "RoleBinding" || obj.kind === "ClusterRoleBinding")
    for (const s of obj.subjects || []) if (s.kind === "ServiceAccount" && !s.namespace) s.namespace = ns;
}

// Returns the rendered [{obj, where}] of the kustomization in `dir`; every
// source document is also validated on its own (sources = []).
function renderKustomization(dir, sources, depth = 0) {
  const kfile = path.join(dir, "kustomization.yaml");
  const docs = loadYamlFile(kfile);
  if (docs.length !== 1) {
    problem(kfile, "must hold exactly one document");
    return [];
  }
  const k = docs[0].obj;
  if (typeof k !== "object" || Array.isArray(k)) {
    problem(kfile, "must be a mapping");
    return [];
  }
  for (const f of Object.keys(k))
    if (!KUSTOMIZATION_FIELDS.has(f))
      problem(kfile, `field "${f}" is not supported by this renderer (extend tests/deploy/validate-k8s.mjs)`);
  if (k.kind !== undefined && k.kind !== "Kustomization") problem(kfile, `kind must be Kustomization, not ${k.kind}`);
  if (k.apiVersion !== undefined && k.apiVersion !== "kustomize.config.k8s.io/v1beta1")
    problem(kfile, `apiVersion must be kustomize.config.k8s.io/v1beta1, not ${k.apiVersion}`);
  if (k.namespace !== undefined && (typeof k.namespace !== "string" || !DNS1123_LABEL.test(k.namespace)))
    problem(kfile, `namespace "${k.namespace}" is not a valid namespace name`);
  const images = k.images || [];
  if (!Array.isArray(images) || images.some((i) => !i || typeof i.name !== "string"))
    problem(kfile, "images: a list of {name, newName?, newTag?, digest?}");
  const resources = k.resources || [];
  if (!Array.isArray(resources) || resources.length === 0) problem(kfile, "resources: a non-empty list is required");

  let out = [];
  const seen = new Set();
  for (const r of Array.isArray(resources) ? resources : []) {
    if (typeof r !== "string" || /^[a-z]+:\/\//.test(r)) {
      problem(kfile, `resource ${JSON.stringify(r)}: only local paths are supported`);
      continue;
    }
    const p = path.resolve(dir, r);
    if (seen.has(p)) problem(kfile, `resource "${r}" is listed twice`);
    seen.add(p);
    if (!existsSync(p)) {
      problem(kfile, `resource "${r}" does not exist`);
      continue;
    }
    if (statSync(p).isDirectory()) {
      if (depth > 10 || !existsSync(path.join(p, "kustomization.yaml"))) {
        problem(kfile, `resource "${r}" is a directory without kustomization.yaml`);
        continue;
      }
      out = out.concat(renderKustomization(p, sources, depth + 1));
      continue;
    }
    for (const item of loadYamlFile(p)) {
      sources.push({ obj: structuredClone(item.obj), where: item.where });
      out.push(item);
    }
  }
  if (k.patches !== undefined) out = applyPatches(out, k.patches, dir, kfile);
  for (const { obj } of out) {
    if (!obj || typeof obj !== "object" || !obj.metadata) continue;
    if (typeof k.namespace === "string") applyNamespace(obj, k.namespace);
    if (Array.isArray(images)) applyImages(obj, images);
  }
  return out;
}

// --- main ------------------------------------------------------------------------

async function main(argv) {
  const print = argv.includes("--print");
  const paths = argv.filter((a) => a !== "--print");
  if (paths.length === 0 || paths.some((p) => p.startsWith("-"))) {
    process.stderr.write("usage: validate-k8s.mjs [--print] PATH...\n");
    return 2;
  }
  const printed = [];
  let count = 0;
  for (const p of paths) {
    if (!existsSync(p)) {
      problem(p, "does not exist");
      continue;
    }
    if (statSync(p).isDirectory() && existsSync(path.join(p, "kustomization.yaml"))) {
      const sources = [];
      const rendered = renderKustomization(p, sources);
      for (const item of sources) await checkObject(item); // each file as written
      for (const item of rendered) await checkObject(item); // and as rendered
      const before = problems.length;
      try {
        checkReferences(rendered);
      } catch (e) {
        // objects of the wrong shape, already reported above, can trip it
        if (problems.length === before) problem(p, `cannot check references: ${e.message}`);
      }
      count += rendered.length;
      printed.push(...rendered.map((i) => i.obj));
      continue;
    }
    const files = statSync(p).isDirectory() ? yamlFilesIn(p) : [p];
    if (files.length === 0) problem(p, "no YAML files");
    for (const f of files) {
      for (const item of loadYamlFile(f)) {
        await checkObject(item);
        count++;
        printed.push(item.obj);
      }
    }
  }
  if (count === 0 && problems.length === 0) problem(paths.join(" "), "no Kubernetes objects found");
  const unique = [...new Set(problems)];
  for (const line of unique) process.stderr.write(`${line}\n`);
  if (print) process.stdout.write(`${JSON.stringify(printed, null, 1)}\n`);
  if (unique.length) {
    process.stderr.write(`validate-k8s: ${unique.length} problem(s)\n`);
    return 1;
  }
  process.stderr.write(`validate-k8s: ${count} object(s) valid\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
