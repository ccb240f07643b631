#!/usr/bin/env bash
# Validates deploy/: every Kubernetes manifest against the Kubernetes schemas
# (kubernetes-validate ships them: no network needed), the references between manifests,
# and the Prometheus rules (promtool). The metric names the dashboard and the rules use are
# checked against a running gateway by tests/deploy.rs (cargo test).
set -euo pipefail
cd "$(dirname "$0")"

# The module, not the script: pip may put the script outside PATH (~/.local/bin).
python3 -m kubernetes_validate --version >/dev/null 2>&1 || { echo "kubernetes-validate missing: pip install kubernetes-validate" >&2; exit 1; }
command -v promtool >/dev/null || { echo "promtool missing: apt-get install prometheus" >&2; exit 1; }

echo "== kubernetes-validate --strict (every manifest but kustomization.yaml)"
manifests=$(ls kubernetes/*.yaml | grep -v kustomization.yaml)
# Custom resources (ServiceMonitor) have no schema there: a warning, checked below instead.
python3 -m kubernetes_validate --strict --quiet $manifests

echo "== references between manifests"
python3 - <<'PY'
import glob, sys, yaml
docs = {}
for f in glob.glob("kubernetes/*.yaml"):
    for d in yaml.safe_load_all(open(f)):
        if d:
            docs[(d["kind"], d["metadata"]["name"] if "metadata" in d else f)] = d
kust = yaml.safe_load(open("kubernetes/kustomization.yaml"))
listed = set(kust["resources"])
present = {f.split("/")[-1] for f in glob.glob("kubernetes/*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
errors = []
if listed != present:
    errors.append(f"kustomization resources {sorted(listed)} != files {sorted(present)}")
dep = docs[("Deployment", "legacy-gateway")]
tmpl = dep["spec"]["template"]
labels = tmpl["metadata"]["labels"]
c = tmpl["spec"]["containers"][0]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
def selects(sel):
    return all(labels.get(k) == v for k, v in sel.items())
for (kind, name), d in docs.items():
    if kind == "Service":
        if not selects(d["spec"]["selector"]):
            errors.append(f"Service {name} selects no gateway pod")
        for p in d["spec"]["ports"]:
            if p["targetPort"] not in ports:
                errors.append(f"Service {name}: targetPort {p['targetPort']} is no container port")
    if kind in ("PodDisruptionBudget", "NetworkPolicy"):
        sel = d["spec"].get("selector", d["spec"].get("podSelector"))["matchLabels"]
        if not selects(sel):
            errors.append(f"{kind} {name} selects no gateway pod")
    if kind == "NetworkPolicy":
        for rule in d["spec"]["ingress"]:
            for p in rule["ports"]:
                if p["port"] not in ports.values():
                    errors.append(f"NetworkPolicy: port {p['port']} is no container port")
            if ports["admin"] in [p["port"] for p in rule["ports"]] and "from" not in rule:
                errors.append("NetworkPolicy admits the admin port from everywhere")
    if kind == "HorizontalPodAutoscaler":
        if d["spec"]["scaleTargetRef"]["name"] != "legacy-gateway":
            errors.append("HPA targets another Deployment")
        if d["spec"]["minReplicas"] < 2:
            errors.append("HPA minReplicas below 2 defeats the PDB")
        if "replicas" in dep["spec"]:
            errors.append("Deployment sets replicas under an HPA: every kubectl apply would reset the count")
sm = docs[("ServiceMonitor", "legacy-gateway")]
admin = [d for (k, n), d in docs.items() if k == "Service" and all(d["metadata"]["labels"].get(a) == b for a, b in sm["spec"]["selector"]["matchLabels"].items())]
if len(admin) != 1:
    errors.append(f"ServiceMonitor selects {len(admin)} Services, want the admin one")
else:
    names = [p["name"] for p in admin[0]["spec"]["ports"]]
    for e in sm["spec"]["endpoints"]:
        if e["port"] not in names:
            errors.append(f"ServiceMonitor port {e['port']} not on Service {admin[0]['metadata']['name']}")
        if e["path"] != "/_gateway/metrics":
            errors.append("ServiceMonitor path is not /_gateway/metrics")
# Shutdown: preStop delay + shutdown grace must fit in terminationGracePeriodSeconds.
import re, tomllib
cfg = tomllib.loads(docs[("ConfigMap", "legacy-gateway-config")]["data"]["gateway.toml"])
grace_ms = cfg.get("limits", {}).get("shutdown_grace_ms", 20000)
pre = c["lifecycle"]["preStop"]["exec"]["command"]
delay = int(pre[-1]) if pre[0].endswith("sleep") else 0
tgps = tmpl["spec"]["terminationGracePeriodSeconds"]
if tgps * 1000 <= delay * 1000 + grace_ms:
    errors.append(f"terminationGracePeriodSeconds {tgps} <= preStop {delay} s + shutdown_grace_ms {grace_ms}")
# Site settings: kept out of the cluster, and their defaults already in the manifests they
# are copied into (so `kubectl apply -f` without kustomize agrees with `apply -k`).
settings = docs[("ConfigMap", "legacy-gateway-settings")]
if settings["metadata"].get("annotations", {}).get("config.kubernetes.io/local-config") != "true":
    errors.append("settings.yaml must stay local-config (never applied)")
netpol = docs[("NetworkPolicy", "legacy-gateway")]
admitted = [r["from"][0]["namespaceSelector"]["matchLabels"].get("kubernetes.io/metadata.name") for r in netpol["spec"]["ingress"] if "from" in r]
if admitted != [settings["data"]["monitoringNamespace"]]:
    errors.append(f"NetworkPolicy admits {admitted}, settings say {settings['data']['monitoringNamespace']}")
if sm["metadata"]["labels"].get("release") != settings["data"]["prometheusRelease"]:
    errors.append("ServiceMonitor release label differs from settings.yaml prometheusRelease")
secret_keys = set(yaml.safe_load(open("kubernetes/secret.example.yaml"))["stringData"])
for e in c["env"]:
    ref = e.get("valueFrom", {}).get("secretKeyRef")
    if ref and ref["key"] not in secret_keys:
        errors.append(f"env {e['name']}: key {ref['key']} missing from secret.example.yaml")
if errors:
    print("\n".join("error: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
print(f"ok: {len(docs)} resources, references consistent")
PY

if command -v kubectl >/dev/null; then
  echo "== kubectl kustomize (the settings are applied, and not applied themselves)"
  rendered=$(kubectl kustomize kubernetes)
  if grep -q "legacy-gateway-settings" <<<"$rendered"; then echo "error: settings.yaml is rendered into the cluster" >&2; exit 1; fi
  grep -q "release: " <<<"$rendered" || { echo "error: the ServiceMonitor lost its release label" >&2; exit 1; }
fi

echo "== Argo Rollouts AnalysisTemplate (its CRD is not in kubernetes-validate: checked here)"
python3 - <<'PY'
import re, sys, yaml
errors = []
kust = yaml.safe_load(open("argo-rollouts/kustomization.yaml"))
for f in kust["resources"]:
    for d in yaml.safe_load_all(open(f"argo-rollouts/{f}")):
        if d["apiVersion"] != "argoproj.io/v1alpha1" or d["kind"] != "AnalysisTemplate":
            errors.append(f"{f}: not an argoproj.io/v1alpha1 AnalysisTemplate")
            continue
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", d["metadata"]["name"]):
            errors.append(f"{f}: metadata.name is not a DNS label")
        spec = d["spec"]
        declared = {a["name"] for a in spec.get("args", [])}
        unknown = set(spec) - {"args", "metrics", "dryRun", "measurementRetention"}
        if unknown:
            errors.append(f"{f}: unknown spec fields {sorted(unknown)}")
        for m in spec["metrics"]:
            allowed = {"name", "interval", "initialDelay", "count", "successCondition", "failureCondition",
                       "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit", "provider"}
            if set(m) - allowed:
                errors.append(f"{f}: metric {m.get('name')}: unknown fields {sorted(set(m) - allowed)}")
            for key in ("name", "provider", "successCondition"):
                if key not in m:
                    errors.append(f"{f}: metric without {key}")
            for key in ("interval", "initialDelay"):
                if key in m and not re.fullmatch(r"\d+(ms|s|m|h)", str(m[key])):
                    errors.append(f"{f}: {key} {m[key]!r} is not a duration")
            prom = m.get("provider", {}).get("prometheus")
            if not prom or "query" not in prom or "address" not in prom:
                errors.append(f"{f}: metric {m.get('name')}: needs provider.prometheus address and query")
                continue
            used = set(re.findall(r"\{\{\s*args\.([\w-]+)\s*\}\}", yaml.safe_dump(m)))
            if used - declared:
                errors.append(f"{f}: args {sorted(used - declared)} used but not declared")
            if "gateway_cutover_ready" not in prom["query"]:
                errors.append(f"{f}: the query does not read gateway_cutover_ready")
if errors:
    print("\n".join("error: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
print("ok: AnalysisTemplate structure and arguments")
PY

echo "== promtool check rules"
promtool check rules observability/alerts.yaml
if [ -f observability/alerts.test.yaml ]; then
  echo "== promtool test rules"
  promtool test rules observability/alerts.test.yaml
fi
