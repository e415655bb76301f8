#!/usr/bin/env bash
# The incident document's kubectl commands (/work/shared/seed/incident-response-runbooks.md,
# "reconciliation" namespace) against the fake API server tests/tools/kube_apiserver.py, with
# the real kubectl. Each command must succeed; the writes are checked in the server's state
# (GET /_test/state) and in its request log, and what kubectl sent is printed, one line per
# request (method path content-type), as the reference Vigil's own client must match.
# Needs python3, openssl and kubectl (KUBECTL=... picks another binary); nothing of Vigil's build.
set -euo pipefail

SRC=${VIGIL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
KUBECTL=${KUBECTL:-kubectl}
NS=reconciliation
POD=backend-7d4b9c-abcde

log() { printf '[kube_apiserver] %s\n' "$*" >&2; }
fail() {
    log "FAIL: $*"
    [[ -s $DIR/server.log ]] && sed 's/^/  server: /' "$DIR/server.log" | tail -20 >&2
    exit 1
}
for tool in python3 openssl curl "$KUBECTL"; do
    command -v "$tool" >/dev/null || { log "SKIP: no $tool"; exit 77; }
done

DIR=$(mktemp -d)
server=
cleanup() {
    if [[ -n $server ]]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 143' TERM # so a stopped test still stops its server
trap 'exit 130' INT

python3 "$SRC/tests/tools/kube_apiserver.py" --dir "$DIR" 2>"$DIR/server.log" &
server=$!
for _ in $(seq 100); do
    [[ -s $DIR/port ]] && break
    kill -0 "$server" 2>/dev/null || fail "the server exited at startup"
    sleep 0.1
done
[[ -s $DIR/port ]] || fail "no port file after 10 s"
URL=https://127.0.0.1:$(cat "$DIR/port")
TOKEN=$(cat "$DIR/token")

# Control endpoints.
api() { curl -sS --cacert "$DIR/ca.crt" -H "Authorization: Bearer $TOKEN" "$@"; }
state() { api "$URL/_test/state" >"$DIR/state.json"; }
# check 'python expression over s (the state)' 'what it means'
check() {
    state
    python3 - "$DIR/state.json" "$1" <<'EOF' || fail "$2"
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)
EOF
    log "ok: $2"
}

# The requests kubectl made (discovery left out), one line each: "METHOD PATH CONTENT-TYPE".
sent() {
    python3 - "$DIR/requests.jsonl" <<'EOF'
import json, re, sys
discovery = re.compile(r"^/(version|api|apis|api/v1|apis/[^/]+(/[^/]+)?|openapi/.*)$")
for line in open(sys.argv[1]):
    r = json.loads(line)
    if not discovery.match(r["path"]):
        print(f'{r["method"]} {r["path"]}{"?" + r["query"] if r["query"] else ""} '
              f'{r["content_type"] or "-"} -> {r["status"]}')
EOF
}

# kc ARGS...: run kubectl (must exit 0), its output in $DIR/out, then print what it sent.
kc() {
    api -X POST "$URL/_test/clear-requests" >/dev/null
    "$KUBECTL" --kubeconfig "$DIR/kubeconfig" --cache-dir "$DIR/cache" "$@" >"$DIR/out" 2>&1 ||
        { cat "$DIR/out" >&2; fail "kubectl $* exited $?"; }
    log "kubectl $*"
    sent | sed 's/^/    sent: /' >&2
}
# shows TEXT...: the last command's output contains each TEXT.
shows() {
    local t
    for t in "$@"; do
        grep -qF -- "$t" "$DIR/out" || { cat "$DIR/out" >&2; fail "output lacks '$t'"; }
    done
}
# sent_has 'METHOD PATH CONTENT-TYPE': the last command sent that request.
sent_has() { sent | grep -F -- "$1" >/dev/null || fail "kubectl did not send '$1'"; }

# --- Reads (triage and diagnostics sections).
kc get pods -n $NS
shows backend-7d4b9c-abcde backend-7d4b9c-fghij frontend-5f6d7-klmno postgres-0 Running
kc describe pod $POD -n $NS
shows "Name:" $POD worker-1 reconciliation/backend:1.4.2 DB_HOST BackOff
kc logs $POD -n $NS --tail=100
shows ERROR "database connection pool exhausted"
kc logs $POD -n $NS --tail=1
[[ $(wc -l <"$DIR/out") == 1 ]] || fail "--tail=1 gave $(wc -l <"$DIR/out") lines"
kc get ingress -n $NS
shows reconciliation-ingress
kc describe ingress reconciliation-ingress -n $NS
shows reconciliation-ingress reconciliation.example.com "backend:8080"
kc get configmap reconciliation-config -n $NS -o yaml
shows "name: reconciliation-config" "kind: ConfigMap" DB_POOL_SIZE
kc get secret reconciliation-secrets -n $NS -o yaml
shows "name: reconciliation-secrets" DB_PASSWORD
kc get services -n $NS
shows backend frontend postgres-service redis-service
kc get events -n $NS --sort-by=.lastTimestamp
shows BackOff $POD
kc top pods -n $NS
shows $POD postgres-0 450m
kc top nodes
shows worker-1 worker-2
kc describe nodes
shows "Name:               worker-1" "Name:               worker-2" KubeletReady $POD

# --- Writes (remediation sections). The patches are the document's, verbatim.
DEP='s["deployments"]["reconciliation/backend"]'
BACKEND="$DEP[\"spec\"][\"template\"][\"spec\"][\"containers\"]"
NETPOL='s["networkpolicies"]["reconciliation/reconciliation-network-policy"]'
PATCH_SMP='application/strategic-merge-patch+json -> 200'
kc rollout restart deployment/backend -n $NS
sent_has "PATCH /apis/apps/v1/namespaces/$NS/deployments/backend?fieldManager=kubectl-rollout $PATCH_SMP"
check "\"kubectl.kubernetes.io/restartedAt\" in $DEP[\"spec\"][\"template\"][\"metadata\"][\"annotations\"]" \
    "rollout restart set the template's restartedAt annotation"
check "$DEP[\"metadata\"][\"generation\"] == 2" \
    "the restart bumped the generation"

kc scale deployment backend --replicas=3 -n $NS
shows "deployment.apps/backend scaled"
scale_req=$(sent | grep -E '^(PATCH|PUT) ') || fail "scale sent no write"
log "scale was sent as: $scale_req"
check "$DEP[\"spec\"][\"replicas\"] == 3 and $DEP[\"status\"][\"replicas\"] == 3" \
    "scale set spec.replicas and status.replicas to 3"

kc patch deployment backend -n $NS -p '{"spec":{"template":{"spec":{"containers":[{"name":"backend","env":[{"name":"DB_POOL_SIZE","value":"20"}]}]}}}}'
sent_has "PATCH /apis/apps/v1/namespaces/$NS/deployments/backend?fieldManager=kubectl-patch $PATCH_SMP"
kc patch deployment backend -n $NS -p '{"spec":{"template":{"spec":{"containers":[{"name":"backend","resources":{"limits":{"memory":"2Gi","cpu":"1000m"}}}]}}}}'
kc patch deployment backend -n $NS -p '{"spec":{"template":{"spec":{"containers":[{"name":"backend","env":[{"name":"LOG_LEVEL","value":"debug"}]}]}}}}'
check "len($BACKEND) == 1 and $BACKEND[0][\"image\"] == \"reconciliation/backend:1.4.2\"" \
    "the container list was merged by name, not replaced"
check "{\"name\": \"DB_POOL_SIZE\", \"value\": \"20\"} in $BACKEND[0][\"env\"] and
       {\"name\": \"DB_HOST\", \"value\": \"postgres-service\"} in $BACKEND[0][\"env\"]" \
    "env has DB_POOL_SIZE=20 and still DB_HOST"
check "[e[\"value\"] for e in $BACKEND[0][\"env\"] if e[\"name\"] == \"LOG_LEVEL\"] == [\"debug\"]" \
    "LOG_LEVEL is debug, one entry"
check "$BACKEND[0][\"resources\"][\"limits\"] == {\"memory\": \"2Gi\", \"cpu\": \"1000m\"}" \
    "limits are memory 2Gi, cpu 1000m"
# The same patch again changes nothing: kubectl says so (the server kept the resourceVersion).
kc patch deployment backend -n $NS -p '{"spec":{"template":{"spec":{"containers":[{"name":"backend","env":[{"name":"LOG_LEVEL","value":"debug"}]}]}}}}'
shows "patched (no change)"

kc patch networkpolicy reconciliation-network-policy -n $NS -p '{"spec":{"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.0.0.0/24"]}}]}]}}'
sent_has "PATCH /apis/networking.k8s.io/v1/namespaces/$NS/networkpolicies/reconciliation-network-policy?fieldManager=kubectl-patch $PATCH_SMP"
check "$NETPOL[\"spec\"][\"ingress\"] ==
       [{\"from\": [{\"ipBlock\": {\"cidr\": \"10.0.0.0/8\", \"except\": [\"10.0.0.0/24\"]}}]}]" \
    "the network policy's ipBlock has except [10.0.0.0/24]"

# --- Authentication, the request log, reset.
api -X POST "$URL/_test/clear-requests" >/dev/null
code=$(curl -sS -o "$DIR/out" -w '%{http_code}' --cacert "$DIR/ca.crt" "$URL/api/v1/namespaces/$NS/pods")
[[ $code == 401 ]] || fail "a request without a token got $code"
shows '"kind": "Status"' '"reason": "Unauthorized"'
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$DIR/ca.crt" -H "Authorization: Bearer wrong" "$URL/_test/state")
[[ $code == 401 ]] || fail "a control request with a wrong token got $code"
sent | grep -F "GET /api/v1/namespaces/$NS/pods - -> 401" >/dev/null || fail "the 401 was not logged"
[[ $(wc -l <"$DIR/requests.jsonl") == 1 ]] || fail "control requests were logged"
log "ok: no token, 401 (logged); control endpoints not logged"

api -X POST "$URL/_test/reset" >/dev/null
check "$DEP[\"spec\"][\"replicas\"] == 2 and
       \"annotations\" not in $DEP[\"spec\"][\"template\"][\"metadata\"]" \
    "reset restored the seed"

log "PASS"
