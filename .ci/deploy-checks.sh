#!/usr/bin/env bash
# Static checks of the deployment artifacts under deploy/ (see docs/deploy.md):
#   Prometheus rules (promtool check + unit tests) · the systemd unit (systemd-analyze
#   verify and security) · the logrotate snippet (a real rotation in a temp dir) ·
#   Kubernetes manifests against the API schema (kubernetes-validate, offline) plus
#   the pod security settings · the embedded configs (vaultgate check-config when a
#   vaultgate binary is built) · the Grafana dashboard (JSON, and every query parsed by
#   promtool) · the Dockerfile (static checks; a real container build only with
#   VAULTGATE_CONTAINER_BUILD=1 and a container builder that can run here).
#
# Installs what it needs first (Debian packages, and kubernetes-validate from PyPI into a
# venv under ~/.cache). Run as root on Debian 12:  bash .ci/deploy-checks.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s (t=%ss)\n' "$1" "$SECONDS"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step "install what the checks need"
need_pkgs=()
command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || need_pkgs+=(systemd)
command -v logrotate >/dev/null 2>&1 || need_pkgs+=(logrotate)
[ -x /usr/bin/python3 ] || need_pkgs+=(python3)
/usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || need_pkgs+=(python3-yaml)
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    echo "apt-get install ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
PY=/usr/bin/python3
# kubernetes-validate ships the Kubernetes OpenAPI schemas inside the package, so it
# validates offline (validators that fetch schemas at run time cannot work here).
KV_VERSION=1.37.0
VENV="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/vaultgate-deploy-checks/venv"
if ! "$VENV/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$KV_VERSION"; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
fi
promtool --version 2>&1 | head -1
systemd-analyze --version | head -1
echo "kubernetes-validate $("$VENV/bin/kubernetes-validate" --version)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# A vaultgate binary, if one is built (this script never builds one).
VG=""
# The debug binary first: `cargo test` built it from this checkout in the same CI run.
for b in target/debug/vaultgate target/release/vaultgate; do
    if [ -x "$b" ]; then VG="$PWD/$b"; break; fi
done

step "Prometheus: promtool check rules / test rules"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml

step "systemd: systemd-analyze verify and security"
# `verify` refuses a unit whose ExecStart binary does not exist, and this script builds
# none: check a copy whose /usr/local/bin/vaultgate is replaced by a binary that exists
# (the built vaultgate if there is one, else /bin/true). Nothing else in the unit is
# changed. verify exits 0 on unknown keys or bad values (it only warns), so any output
# at all counts as a failure here.
mkdir -p "$TMP/systemd"
sed "s#/usr/local/bin/vaultgate#${VG:-/bin/true}#g" deploy/systemd/vaultgate.service \
    > "$TMP/systemd/vaultgate.service"
grep -q '/usr/local/bin/vaultgate' "$TMP/systemd/vaultgate.service" && fail "substitution left the path"
out=$(systemd-analyze verify "$TMP/systemd/vaultgate.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify printed warnings:
$out"
echo "verify: no warnings (ExecStart binary: ${VG:-/bin/true})"
# Exposure score 0-100 (printed as 0.0-10.0); the unit scores about 1.4. Fail above 2.0.
systemd-analyze security --offline=true --threshold=20 "$TMP/systemd/vaultgate.service" | tail -1

step "logrotate: a forced rotation of a scratch audit log"
mkdir -p "$TMP/logrotate/log"
chmod 0750 "$TMP/logrotate/log"
echo '{"seq":1}' > "$TMP/logrotate/log/audit.log"
sed "s#/var/log/vaultgate/audit.log#$TMP/logrotate/log/audit.log#" deploy/systemd/vaultgate.logrotate \
    > "$TMP/logrotate/vaultgate"
grep -q '/var/log/vaultgate' "$TMP/logrotate/vaultgate" && fail "substitution left the path"
# postrotate only reloads vaultgate.service when it is active (it is not, here).
logrotate --force --state "$TMP/logrotate/state" "$TMP/logrotate/vaultgate"
[ ! -e "$TMP/logrotate/log/audit.log" ] || fail "logrotate left (or recreated) the live audit.log"
ls "$TMP/logrotate/log"/audit.log-* >/dev/null || fail "no rotated audit log"
echo "renamed: $(cd "$TMP/logrotate/log" && ls)"

step "Kubernetes: schema (kubernetes-validate --strict, offline) and pod security"
mapfile -t manifests < <(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)
"$VENV/bin/kubernetes-validate" --strict --quiet "${manifests[@]}"
echo "validated: ${manifests[*]}"
"$PY" - "${manifests[@]}" <<'PYEOF'
import os, sys, yaml
errors = []
docs = []
for path in sys.argv[1:]:
    with open(path) as f:
        docs += [(path, d) for d in yaml.safe_load_all(f) if d]
# Every resource listed in kustomization.yaml, commented-out ones included, exists.
with open("deploy/kubernetes/kustomization.yaml") as f:
    text = f.read()
kust = yaml.safe_load(text)
listed = set(kust["resources"])
for line in text.splitlines():
    s = line.strip()
    if s.startswith("# - ") and s.endswith(".yaml"):
        listed.add(s[4:])
for r in listed:
    if not os.path.exists(os.path.join("deploy/kubernetes", r)):
        errors.append(f"kustomization.yaml lists {r}, which does not exist")
for path, d in docs:
    if d["kind"] not in ("Deployment", "Job"):
        continue
    name = f'{path}: {d["kind"]} {d["metadata"]["name"]}'
    pod = d["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if not psc.get("runAsNonRoot") or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        errors.append(f"{name}: pod securityContext needs runAsNonRoot and seccompProfile RuntimeDefault")
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            errors.append(f"{name}/{c['name']}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{name}/{c['name']}: allowPrivilegeEscalation must be false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            errors.append(f"{name}/{c['name']}: capabilities must drop ALL")
        if "limits" not in c.get("resources", {}) or "requests" not in c.get("resources", {}):
            errors.append(f"{name}/{c['name']}: resources need requests and limits")
    if d["kind"] != "Deployment":
        continue
    main = pod["containers"][0]
    args = main.get("args", [])
    if "--passphrase-file" not in args:
        errors.append(f"{name}: serve must get --passphrase-file")
    if main.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        errors.append(f"{name}: liveness probe must be /healthz")
    if main.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        errors.append(f"{name}: readiness probe must be /readyz")
    if pod.get("terminationGracePeriodSeconds", 30) < 35:
        errors.append(f"{name}: terminationGracePeriodSeconds must cover the 30 s drain")
    sled = any(v.get("persistentVolumeClaim") for v in pod.get("volumes", []))
    if sled and (d["spec"].get("replicas") != 1 or d["spec"].get("strategy", {}).get("type") != "Recreate"):
        errors.append(f"{name}: a sled store needs replicas: 1 and strategy Recreate")
for path, d in docs:
    if d["kind"] == "Service" and d["spec"].get("type", "ClusterIP") != "ClusterIP" and "api" in d["metadata"]["name"]:
        errors.append(f"{path}: the API Service must stay ClusterIP")
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"pod security, probes and variants: ok ({len(docs)} resources)")
PYEOF

step "configs embedded in the ConfigMaps"
"$PY" - "$TMP" <<'PYEOF'
import sys, tomllib, yaml
out = sys.argv[1]
for name in ("configmap", "configmap-postgres"):
    with open(f"deploy/kubernetes/{name}.yaml") as f:
        text = yaml.safe_load(f)["data"]["vaultgate.toml"]
    # The PostgreSQL template gets its URL from the init container; use a dummy one.
    text = text.replace("@POSTGRES_URL@", "postgres://vaultgate:x@db.example.internal:5432/vaultgate")
    cfg = tomllib.loads(text)
    assert cfg["proxy"]["listen"].startswith("0.0.0.0:"), name
    assert cfg["vault"]["data"].startswith("/var/lib/vaultgate"), name
    with open(f"{out}/{name}.toml", "w") as f:
        f.write(text)
    print(f"{name}.yaml: TOML parses")
PYEOF
if [ -n "$VG" ]; then
    # Offline: the certificates, keyring and data volume exist only in the pod.
    "$VG" check-config --offline --config "$TMP/configmap.toml"
    "$VG" check-config --offline --config "$TMP/configmap-postgres.toml"
else
    echo "vaultgate check-config: skipped, no built binary (target/release or target/debug/vaultgate)"
fi
# The PostgreSQL variant's init container: run its script (paths moved to a temp dir,
# the final check-config left out) on a URL with TOML-special characters, and parse.
mkdir -p "$TMP/render/template" "$TMP/render/config"
"$PY" - "$TMP/render" <<'PYEOF'
import sys, yaml
out = sys.argv[1]
with open("deploy/kubernetes/deployment-postgres.yaml") as f:
    pod = yaml.safe_load(f)["spec"]["template"]["spec"]
(init,) = [c for c in pod["initContainers"] if c["name"] == "render-config"]
script = init["args"][0].replace("/etc/vaultgate/", out + "/")
assert "exec vaultgate check-config" in script
script = script.replace("exec vaultgate check-config", ": vaultgate check-config")
with open(f"{out}/render.sh", "w") as f:
    f.write(script)
with open("deploy/kubernetes/configmap-postgres.yaml") as f:
    with open(f"{out}/template/vaultgate.toml", "w") as t:
        t.write(yaml.safe_load(f)["data"]["vaultgate.toml"])
PYEOF
url='postgres://vaultgate:p&s"w\d|x@db.example.internal:5432/vaultgate?options=-c%20search_path%3Dvg'
VAULTGATE_POSTGRES_URL="$url" bash -c "$(cat "$TMP/render/render.sh")"
"$PY" - "$TMP/render/config/vaultgate.toml" "$url" <<'PYEOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    cfg = tomllib.load(f)
assert cfg["vault"]["postgres_url"] == sys.argv[2], cfg["vault"]["postgres_url"]
print("init container render: the URL arrives intact")
PYEOF
[ -z "$VG" ] || "$VG" check-config --offline --config "$TMP/render/config/vaultgate.toml"

step "Grafana dashboard: JSON and every query parsed by promtool"
"$PY" - "$TMP/dashboard-rules.yml" <<'PYEOF'
import json, re, sys, yaml
with open("deploy/grafana/vaultgate.json") as f:
    dash = json.load(f)
assert dash["schemaVersion"] == 39
assert any(i["name"] == "DS_PROMETHEUS" for i in dash["__inputs"])
assert any(v["name"] == "DS_PROMETHEUS" for v in dash["templating"]["list"])
exprs = []
ids = set()
for p in dash["panels"]:
    assert p["id"] not in ids, f"duplicate panel id {p['id']}"
    ids.add(p["id"])
    for t in p.get("targets", []):
        exprs.append((p["title"], t["expr"]))
# Grafana's variables, replaced by what they become, so that promtool can parse them.
subst = {"$__rate_interval": "5m", "$job": "vaultgate", "$instance": ".+"}
rules = []
for i, (title, e) in enumerate(exprs):
    for k, v in subst.items():
        e = e.replace(k, v)
    assert "$" not in e, f"{title}: unsubstituted variable in {e}"
    rules.append({"record": f"dashboard:query_{i}", "expr": e})
with open(sys.argv[1], "w") as f:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
print(f"{len(dash['panels'])} panels, {len(exprs)} queries")
PYEOF
promtool check rules "$TMP/dashboard-rules.yml" >/dev/null
echo "promtool parsed every dashboard query"

step "Dockerfile: static checks"
"$PY" - <<'PYEOF'
import json, re, sys
lines, cur = [], ""
for raw in open("deploy/docker/Dockerfile"):
    s = raw.rstrip("\n")
    if not cur and (not s.strip() or s.lstrip().startswith("#")):
        continue
    cur += s.rstrip("\\") + " "
    if not s.endswith("\\"):
        lines.append(cur.strip()); cur = ""
ins = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]
errors = []
froms = [a for i, a in ins if i == "FROM"]
if len(froms) < 2:
    errors.append("multi-stage: expected at least two FROM lines")
if not re.match(r"rust:1-bookworm\s+AS\s+\w+", froms[0], re.I):
    errors.append(f"the first stage must be rust:1-bookworm AS <name>: {froms[0]}")
if froms[-1].split()[0] != "debian:bookworm-slim":
    errors.append(f"the runtime stage must be debian:bookworm-slim: {froms[-1]}")
stages = {f.split()[-1].lower() for f in froms if re.search(r"\sAS\s", f, re.I)}
runs = " ".join(a for i, a in ins if i == "RUN")
if not re.search(r"cargo build --release --locked", runs):
    errors.append("cargo build --release --locked is missing")
for i, a in ins:
    if i == "COPY" and "--from=" in a:
        src = re.search(r"--from=(\S+)", a).group(1).lower()
        if src not in stages:
            errors.append(f"COPY --from={src}: no such stage")
users = [a for i, a in ins if i == "USER"]
if not users or users[-1].split(":")[0] in ("0", "root") or users[-1].split(":")[0] != "10001":
    errors.append(f"the last USER must be uid 10001: {users}")
# USER must come after the last FROM (i.e. apply to the runtime stage).
last_from = max(n for n, (i, _) in enumerate(ins) if i == "FROM")
if not any(i == "USER" and n > last_from for n, (i, _) in enumerate(ins)):
    errors.append("USER is not set in the runtime stage")
want = {"VOLUME": "/var/lib/vaultgate", "EXPOSE": "8080 8081"}
for k, v in want.items():
    if not any(i == k and a.split() == v.split() for i, a in ins):
        errors.append(f"{k} {v} is missing")
ep = [json.loads(a) for i, a in ins if i == "ENTRYPOINT"]
cmd = [json.loads(a) for i, a in ins if i == "CMD"]
if ep[-1:] != [["vaultgate"]]:
    errors.append(f"ENTRYPOINT must be [\"vaultgate\"] (exec form): {ep}")
if cmd[-1:] != [["serve", "--config", "/etc/vaultgate/vaultgate.toml"]]:
    errors.append(f"CMD must be serve --config /etc/vaultgate/vaultgate.toml: {cmd}")
if any(i == "ADD" for i, _ in ins):
    errors.append("use COPY, not ADD")
if errors:
    print("\n".join(errors), file=sys.stderr); sys.exit(1)
print(f"{len(froms)} stages, non-root USER {users[-1]}, --locked, exec-form ENTRYPOINT/CMD: ok")
PYEOF

step "Dockerfile: container build"
# A real build compiles vaultgate in the container (many minutes on 2 cores), so it is
# opt-in. It needs the base images (rust:1-bookworm, debian:bookworm-slim) from a
# container registry and a host that can run containers; when either is missing the
# build is skipped with the reason, never reported as passed.
builder=""
if command -v podman >/dev/null 2>&1; then builder=podman
elif command -v buildah >/dev/null 2>&1; then builder=buildah
fi
if [ "${VAULTGATE_CONTAINER_BUILD:-0}" != 1 ]; then
    echo "SKIPPED: set VAULTGATE_CONTAINER_BUILD=1 to build the image (it compiles vaultgate: many minutes)"
elif [ -z "$builder" ]; then
    echo "SKIPPED: no container builder (podman or buildah) installed"
elif ! pull_err=$(timeout 120 "$builder" pull -q docker.io/library/debian:bookworm-slim 2>&1); then
    echo "SKIPPED: cannot pull the base images, so no build is possible here:"
    echo "  ${pull_err##*$'\n'}"
elif [ "$builder" = podman ] && ! run_err=$(timeout 120 podman run --rm docker.io/library/debian:bookworm-slim true 2>&1); then
    echo "SKIPPED: this host cannot run containers (so RUN steps cannot execute):"
    echo "  ${run_err##*$'\n'}"
else
    if [ "$builder" = podman ]; then
        podman build -f deploy/docker/Dockerfile -t localhost/vaultgate:deploy-check .
        podman run --rm localhost/vaultgate:deploy-check --version
    else
        buildah bud -f deploy/docker/Dockerfile -t localhost/vaultgate:deploy-check .
    fi
fi

step "done"
echo "deploy checks passed in ${SECONDS}s"
