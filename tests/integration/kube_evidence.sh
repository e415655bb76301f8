#!/usr/bin/env bash
# The document's kubectl investigation steps as evidence kinds of their own, collected by the
# cluster agent (role: cluster) from the loopback API server (tests/tools/kube_apiserver.py):
#   - k8s_pods: kubectl get pods, whole namespace, with a label selector and a field selector;
#     each pod's row (name, ready, status, restarts, node) is what the real
#     `kubectl get pods -o json` returns from the same server, with the same selectors
#   - k8s_describe: a pod with its events, a deployment (no environment values shown), and,
#     without a name, the pods that are not ready or restarted and nothing else
#   - k8s_logs: the last N lines of a container (tailLines=N reaches the server), --previous,
#     the pods a label selector matches, and the troubled pods' logs without a pod named
#   - k8s_ingress: hosts, paths, backends
#   - k8s_config: a ConfigMap's data; the names of the Secrets a deployment references; no
#     Secret is ever requested and no secret value appears
#   - k8s_top: pods and nodes from metrics.k8s.io; "metrics API not available" without it
#   - hostile arguments (names that are no DNS-1123 names, a namespace the target does not
#     watch, line counts out of bounds, unknown values) are refused with a clear line before
#     any request, and nothing is stored
#   - the shipped application-down runbook, on a crash loop, collects its kubectl steps
#     (k8s_pods, k8s_describe, k8s_logs, k8s_ingress, k8s_top) from the cluster agent
source "$(dirname "$0")/../lib/harness.sh"

h_setup
KUBE_PID=""
stop_kube() {
    [[ -n $KUBE_PID ]] || return 0
    kill -TERM "$KUBE_PID" 2>/dev/null || true
    wait "$KUBE_PID" 2>/dev/null || true
    KUBE_PID=""
}
on_exit() {
    local status=$?
    set +e
    stop_kube
    (exit "$status")
    h_cleanup
}
trap on_exit EXIT

KUBE=$H_DIR/kube
mkdir -p "$KUBE"
python3 "$VIGIL_SRC/tests/tools/kube_apiserver.py" --dir "$KUBE" >"$H_DIR/kube.log" 2>&1 &
KUBE_PID=$!
h_wait "the API server" 20 test -s "$KUBE/port"
chmod 755 "$KUBE"
chmod 644 "$KUBE/kubeconfig" "$KUBE/ca.crt"
kube() { # kube METHOD PATH [CONTENT-TYPE BODY]
    local args=(-fsS --cacert "$KUBE/ca.crt" -H "Authorization: Bearer $(cat "$KUBE/token")" -X "$1")
    [[ $# -gt 2 ]] && args+=(-H "Content-Type: $3" --data-binary "$4")
    curl "${args[@]}" "https://127.0.0.1:$(cat "$KUBE/port")$2"
}
NS=reconciliation
POD=backend-7d4b9c-abcde

# backend reads its database password from the Secret and its settings from the ConfigMap.
kube PATCH "/apis/apps/v1/namespaces/$NS/deployments/backend" application/strategic-merge-patch+json '{
  "spec": {"template": {"spec": {"containers": [{"name": "backend",
    "env": [{"name": "DB_PASSWORD",
             "valueFrom": {"secretKeyRef": {"name": "reconciliation-secrets", "key": "DB_PASSWORD"}}}],
    "envFrom": [{"configMapRef": {"name": "reconciliation-config"}}]}]}}}}' >/dev/null ||
    h_fail "cannot patch backend"

# The shipped runbooks: application-down's investigation is these kinds (last section).
RB=$H_DIR/runbooks
mkdir -p "$RB"
cp "$VIGIL_SRC"/runbooks/*.yaml "$RB"/
h_start_coordinator "runbooks:
  dir: \"$RB\""
h_start_agent cluster "$(cat <<YAML
role: cluster
collectors:
  host: {interval: 0s}
  netstat: {interval: 0s}
  processes: {interval: 0s}
  kubernetes:
    interval: 5s
    timeout: 4s
    targets:
      - {name: k8s, kubeconfig: "$KUBE/kubeconfig", namespaces: [$NS, default]}
YAML
)"
k8s_up() {
    h_ctl signals -o json --node cluster --name k8s.up | jq -e 'any(.[]; .value == 1)' >/dev/null
}
h_wait "the cluster agent's k8s.up" 30 k8s_up

# collect KIND [k=v ...]: collects from the cluster agent (target k8s), fetches the artifact,
# checks it against the vault's hash; prints the file's path.
collect() {
    local kind=$1 out id args=(--arg target=k8s) file
    shift
    for a in "$@"; do args+=(--arg "$a"); done
    out=$(h_ctl collect --node cluster "$kind" "${args[@]}" -o json) || h_fail "collect $kind $*: exit $?: $out"
    jq -e '.[0].status == "stored"' <<<"$out" >/dev/null || h_fail "collect $kind $*: $out"
    id=$(jq -r '.[0].id' <<<"$out")
    file="$H_DIR/$kind-$id.txt"
    h_ctl evidence get "$id" --out "$file" >/dev/null || h_fail "evidence get $id"
    [[ $(sha256sum "$file" | cut -d' ' -f1) == $(h_sql "select encode(sha256, 'hex') from evidence where id = $id") ]] ||
        h_fail "$kind: the stored hash differs from the fetched bytes"
    echo "$file"
}
expect() { grep -qE -- "$2" "$1" || h_fail "$(basename "$1") lacks /$2/: $(head -c 2000 "$1")"; }
absent() { ! grep -qE -- "$2" "$1" || h_fail "$(basename "$1") has /$2/: $(grep -E -- "$2" "$1" | head -3)"; }
KUBECTL=(kubectl --kubeconfig "$KUBE/kubeconfig" --cache-dir "$KUBE/cache" -n "$NS")
have_kubectl=0
command -v kubectl >/dev/null && "${KUBECTL[@]}" get pods -o name >/dev/null 2>&1 && have_kubectl=1

# same_pods FILE [kubectl selectors...]: every pod kubectl lists has its row in FILE (READY
# ready/total, STATUS phase or waiting reason, RESTARTS sum, NODE), and FILE lists no other.
same_pods() {
    local f=$1 json rows want got
    shift
    if [[ $have_kubectl == 1 ]]; then
        json=$("${KUBECTL[@]}" get pods -o json "$@") || h_fail "kubectl get pods $*"
    else # the same request kubectl makes, when kubectl cannot run here
        h_log "kubectl is not usable here: comparing with the API's own list"
        json=$(kube GET "/api/v1/namespaces/$NS/pods?$(sed -e 's/^-l /labelSelector=/' -e 's/^--field-selector /fieldSelector=/' <<<"$*")")
    fi
    rows=$(jq -r '.items[] | [.metadata.name,
        "\([.status.containerStatuses[]? | select(.ready)] | length)/\(.spec.containers | length)",
        ([.status.containerStatuses[]?.state.waiting.reason // empty][0] // .status.phase),
        ([.status.containerStatuses[]?.restartCount] | add // 0 | tostring),
        .spec.nodeName] | join(" ")' <<<"$json")
    [[ -n $rows ]] || h_fail "kubectl lists no pods for $*"
    while read -r name ready status restarts node; do
        expect "$f" "^$name +$ready +$status +$restarts +$node "
    done <<<"$rows"
    want=$(jq -r '.items[].metadata.name' <<<"$json" | sort)
    got=$(sed -n "/^== kubectl get pods -n $NS/,/^== /p" "$f" | awk 'NR > 2 && NF > 0 && $1 != "==" {print $1}' | sort)
    [[ $got == "$want" ]] || h_fail "k8s_pods $* lists [$got], kubectl [$want]"
}

# ---- k8s_pods ------------------------------------------------------------------------------------
kube POST /_test/clear-requests >/dev/null
f=$(collect k8s_pods)
expect "$f" "^# Kubernetes API https://127.0.0.1:[0-9]+ at .*: k8s_pods$"
expect "$f" "^== kubectl get pods -n $NS ==$"
expect "$f" "^== kubectl get pods -n default ==$"
same_pods "$f"
f=$(collect k8s_pods namespace=$NS selector=app=backend)
absent "$f" "^== kubectl get pods -n default"
expect "$f" "^== kubectl get pods -n $NS -l app=backend ==$"
same_pods "$f" -l app=backend
absent "$f" '^frontend-'
f=$(collect k8s_pods namespace=$NS field=spec.nodeName=worker-2)
same_pods "$f" --field-selector spec.nodeName=worker-2
absent "$f" "^$POD "
h_pass "k8s_pods: the rows kubectl get pods -o json gives, whole namespace, -l and --field-selector (kubectl=$have_kubectl)"

# ---- k8s_describe --------------------------------------------------------------------------------
f=$(collect k8s_describe namespace=$NS name=$POD)
expect "$f" "^== kubectl describe pod $POD -n $NS ==$"
expect "$f" "^Name: +$POD$"
expect "$f" 'Restart Count: 3'
expect "$f" '^Events:$'
expect "$f" "Back-off restarting failed container backend in pod $POD"
f=$(collect k8s_describe namespace=$NS kind=deployment name=backend)
expect "$f" "^== kubectl describe deployment backend -n $NS ==$"
expect "$f" '^Replicas: +2 desired \| 2 updated \| 2 total \| 2 available \| 0 unavailable$'
expect "$f" 'Image: +reconciliation/backend:1.4.2'
absent "$f" 'postgres-service|DB_HOST'
f=$(collect k8s_describe namespace=$NS)
expect "$f" "^== kubectl describe pod $POD -n $NS ==$"
expect "$f" "^== kubectl describe pod backend-7d4b9c-fghij -n $NS ==$"
absent "$f" '^== kubectl describe pod (postgres-0|frontend-)'
h_pass "k8s_describe: a pod with its events, a deployment without its environment, the troubled pods alone"

# ---- k8s_logs ------------------------------------------------------------------------------------
kube POST /_test/clear-requests >/dev/null
f=$(collect k8s_logs namespace=$NS pod=$POD lines=5)
expect "$f" "^== kubectl logs $POD -n $NS -c backend --tail=5 ==$"
lines=$(sed -n "/^== kubectl logs $POD/,\$p" "$f" | tail -n +2 | grep -vc '^$' || true)
((lines >= 1 && lines <= 5)) || h_fail "k8s_logs lines=5 gave $lines lines: $(cat "$f")"
# (the server logs a request once it has answered it: wait for the line)
# (one verdict over every line: jq 1.6's -e answers for the last line only)
tail_asked() {
    jq -n -e --arg p "/api/v1/namespaces/$NS/pods/$POD/log" \
        'any(inputs | select(.path == $p) | .query; test("tailLines=5"))' "$KUBE/requests.jsonl" >/dev/null
}
h_wait "tailLines=5 at the server" 30 tail_asked
f=$(collect k8s_logs namespace=$NS pod=$POD container=backend previous=true)
expect "$f" "^== kubectl logs $POD -n $NS -c backend --tail=100 --previous ==$"
expect "$f" 'ERROR database connection pool exhausted'
f=$(collect k8s_logs namespace=$NS pod=$POD container=sidecar)
expect "$f" "error: pod $POD has no container named sidecar"
f=$(collect k8s_logs namespace=$NS)
expect "$f" "^== kubectl logs $POD -n $NS -c backend --tail=100 ==$"
expect "$f" "^== kubectl logs backend-7d4b9c-fghij -n $NS -c backend --tail=100 ==$"
absent "$f" '^== kubectl logs postgres-0'
f=$(collect k8s_logs namespace=$NS selector=app=frontend lines=3)
expect "$f" "^== kubectl get pods -n $NS -l app=frontend \(the ones whose logs to read\) ==$"
expect "$f" "^== kubectl logs frontend-5f6d7-klmno -n $NS -c frontend --tail=3 ==$"
absent "$f" '^== kubectl logs backend-'
h_pass "k8s_logs: N lines (tailLines reaches the server), --previous, an unknown container, the troubled pods, a selector"

# ---- k8s_ingress ---------------------------------------------------------------------------------
f=$(collect k8s_ingress namespace=$NS)
expect "$f" "^== kubectl get ingress -n $NS; kubectl describe ingress -n $NS ==$"
expect "$f" 'reconciliation-ingress'
expect "$f" 'reconciliation\.example\.com +/api +backend:8080'
h_pass "k8s_ingress: hosts, paths and backends"

# ---- k8s_config ----------------------------------------------------------------------------------
kube POST /_test/clear-requests >/dev/null
f=$(collect k8s_config namespace=$NS name=reconciliation-config)
expect "$f" "^== kubectl get configmap reconciliation-config -n $NS -o yaml ==$"
expect "$f" '^  DB_POOL_SIZE: \|$'
expect "$f" '^    postgres://postgres-service:5432/reconciliation$'
f=$(collect k8s_config namespace=$NS workload=backend)
expect "$f" 'secret +reconciliation-secrets \(env of container backend\)'
expect "$f" 'configmap +reconciliation-config \(envFrom of container backend\)'
f=$(collect k8s_config namespace=$NS)
expect "$f" '^ConfigMap reconciliation-config:$'
expect "$f" 'secret +reconciliation-secrets'
for g in "$H_DIR"/k8s_config-*.txt; do
    absent "$g" 'not-a-real-password|fake-api-key|bm90LWEtcmVhbC1wYXNzd29yZA|ZmFrZS1hcGkta2V5'
done
if jq -r .path "$KUBE/requests.jsonl" | grep '/secrets' >/dev/null; then
    h_fail "a Secret was requested: $(jq -r .path "$KUBE/requests.jsonl" | grep /secrets | head -3)"
fi
h_pass "k8s_config: ConfigMap data, the names of the Secrets a workload references, no Secret read"

# ---- k8s_top -------------------------------------------------------------------------------------
f=$(collect k8s_top namespace=$NS)
expect "$f" "^== kubectl top pods -n $NS ==$"
expect "$f" '^backend-7d4b9c-fghij +450m +900Mi'
expect "$f" '^== kubectl top nodes ==$'
expect "$f" '^worker-1 +1200m +32% +6144Mi +40%'
kube POST '/_test/config?metrics=off' >/dev/null
f=$(collect k8s_top namespace=$NS)
expect "$f" '^metrics API not available \(metrics.k8s.io answered HTTP 404'
[[ $(grep -c '^metrics API not available' "$f") == 2 ]] || h_fail "k8s_top without metrics: $(cat "$f")"
kube POST '/_test/config?metrics=on' >/dev/null
h_pass "k8s_top: pods and nodes from metrics.k8s.io; without it, \"metrics API not available\""

# ---- hostile arguments ---------------------------------------------------------------------------
stored_before=$(h_sql "select count(*) from evidence")
kube POST /_test/clear-requests >/dev/null
refused() { # PATTERN KIND ARGS...
    local pattern=$1 kind=$2 out rc args=(--arg target=k8s)
    shift 2
    for a in "$@"; do args+=(--arg "$a"); done
    h_capture out rc h_ctl collect --node cluster "$kind" "${args[@]}"
    [[ $rc != 0 ]] || h_fail "$kind $* was not refused: $out"
    grep -Eq "$pattern" <<<"$out" || h_fail "$kind $*: unclear message: $out"
    h_log "$kind $*: exit $rc: $out"
}
refused 'pod: ".*" is not a Kubernetes object name' k8s_logs namespace=$NS "pod=../../secrets/x"
refused 'pod: ".*" is not a Kubernetes object name' k8s_logs namespace=$NS "pod=Backend"
refused 'name: ".*" is not a Kubernetes object name' k8s_describe namespace=$NS "name=a?b=c"
refused 'namespace: "kube-system" is not one of the target' k8s_pods namespace=kube-system
refused 'namespace: ".*" is not a namespace name' k8s_pods "namespace=a/b"
refused 'lines: must be a number between 1 and 5000' k8s_logs namespace=$NS pod=$POD lines=0
refused 'lines: must be a number between 1 and 5000' k8s_logs namespace=$NS pod=$POD lines=100000
refused 'lines: must be a number' k8s_logs namespace=$NS pod=$POD lines=5x
refused 'previous: must be true or false' k8s_logs namespace=$NS pod=$POD previous=yes
refused 'kind: must be pod or deployment' k8s_describe namespace=$NS kind=secret name=x
refused 'selector: .* is not an equality-based label selector' k8s_pods namespace=$NS "selector=app in (a b)"
refused 'container: give the pod too' k8s_logs namespace=$NS container=backend
refused 'give pod or selector, not both' k8s_logs namespace=$NS pod=$POD selector=app=backend
refused 'name the namespace' k8s_describe name=$POD
refused 'not an argument|takes no argument|argument' k8s_top namespace=$NS lines=5
[[ $(h_sql "select count(*) from evidence") == "$stored_before" ]] || h_fail "a refused collection stored evidence"
if [[ -s $KUBE/requests.jsonl ]] &&
    jq -n -e 'any(inputs; .path | test("/pods/|/deployments/|/configmaps/"))' "$KUBE/requests.jsonl" >/dev/null; then
    h_fail "a refused collection reached the API server: $(head -3 "$KUBE/requests.jsonl")"
fi
h_pass "hostile arguments are refused with a clear line, before any request, and nothing is stored"

# ---- the shipped application-down runbook: its investigation is these kinds ----------------------
kube PATCH "/api/v1/namespaces/$NS/pods/$POD/status" application/merge-patch+json '{
  "status": {"containerStatuses": [{"name": "backend", "ready": false, "restartCount": 4,
    "image": "reconciliation/backend:1.4.2",
    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}' >/dev/null || h_fail "cannot make $POD crash-loop"
incident() { h_ctl incidents -o json | jq -r '[.[] | select(.runbook == "application-down")][0].id // empty'; }
has_incident() { [[ -n $(incident) ]]; }
h_wait "the application-down incident (k8s.crashloop)" 30 has_incident
id=$(incident)
want='["k8s_describe","k8s_ingress","k8s_logs","k8s_pods","k8s_top"]'
settled() {
    h_ctl incident show "$id" -o json |
        jq -e --argjson want "$want" '[.investigation[] | select(.kind | startswith("k8s_"))] |
            (map(.kind) | sort) == $want and all(.[]; .status == "stored" and .node == "cluster")' >/dev/null
}
h_wait "the runbook's kubectl steps stored" 60 settled
h_pass "the shipped application-down runbook collects k8s_pods, k8s_describe, k8s_logs, k8s_ingress and k8s_top from the cluster agent"
