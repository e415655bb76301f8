#!/usr/bin/env bash
# The kubernetes probe end to end on a cluster agent (role: cluster), against the loopback
# Kubernetes API server (tests/tools/kube_apiserver.py) with a pod made to crash-loop:
#   - k8s.up is 1; the crash-looping pod shows in k8s.pods_not_ready and k8s.crashloop, the
#     restarted pods in k8s.pod_restarts, the nodes' usage in k8s.node_cpu_pct/memory_pct, the
#     seed's two recent BackOff warnings in k8s.warning_events; no OOMKilled, no node pressure
#   - vigilctl collect kubernetes stores the investigation: kubectl get pods with the pod names,
#     the failing pod's describe, events and log lines (current and previous), ingress,
#     deployments, nodes, top; no Secret is ever requested and no secret value appears
#   - once the pod recovers its k8s.pod_restarts series ends with 0
#   - with the API server stopped, k8s.up is 0 with a reason
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

# ---- the API server, with backend-7d4b9c-abcde crash-looping --------------------------------
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
POD=backend-7d4b9c-abcde
kube PATCH "/api/v1/namespaces/reconciliation/pods/$POD/status" application/merge-patch+json '{
  "status": {
    "conditions": [
      {"type": "Initialized", "status": "True"},
      {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
       "message": "containers with unready status: [backend]"},
      {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
      {"type": "PodScheduled", "status": "True"}],
    "containerStatuses": [{
      "name": "backend", "ready": false, "started": false, "restartCount": 4,
      "image": "reconciliation/backend:1.4.2",
      "state": {"waiting": {"reason": "CrashLoopBackOff",
                            "message": "back-off 40s restarting failed container=backend"}},
      "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                   "startedAt": "2026-01-01T10:04:00Z",
                                   "finishedAt": "2026-01-01T10:05:03Z"}}}]}}' >/dev/null ||
    h_fail "cannot make $POD crash-loop"
kube POST /_test/clear-requests >/dev/null

# ---- coordinator and the cluster agent -------------------------------------------------------
h_start_coordinator
agent_yaml=$(cat <<YAML
role: cluster
collectors:
  host: {interval: 0s}
  netstat: {interval: 0s}
  processes: {interval: 0s}
  kubernetes:
    interval: 1s
    timeout: 4s
    targets:
      - {name: k8s, kubeconfig: "$KUBE/kubeconfig", namespaces: [reconciliation]}
YAML
)
"$VIGIL_BUILD/vigil-agent" -n -c <(printf 'node: cluster\ncoordinator: {public_key: "%s"}\n%s\n' "$H_COORD_PUB" "$agent_yaml") >/dev/null ||
    h_fail "vigil-agent does not accept the kubernetes probe configuration"
h_start_agent cluster "$agent_yaml"

# sig NAME [LABEL VALUE]: the latest sample of target k8s (JSON object, or null).
sig() {
    h_ctl signals -o json --node cluster --name "$1" |
        jq -c --arg k "${2:-}" --arg v "${3:-}" \
            '[.[] | select(.labels.target == "k8s" and ($k == "" or .labels[$k] == $v))] | sort_by(.ts) | last'
}
has() { sig "$1" "${3:-}" "${4:-}" | jq -e "$2" >/dev/null; }

h_wait "k8s.up is 1" 30 has k8s.up '.value == 1'
h_wait "the crash-looping pod counted not ready" 10 has k8s.pods_not_ready '.value == 1' namespace reconciliation
has k8s.crashloop '.value == 1' namespace reconciliation ||
    h_fail "k8s.crashloop: $(sig k8s.crashloop namespace reconciliation)"
has k8s.pod_restarts '.value == 4 and .labels.namespace == "reconciliation"' pod "$POD" ||
    h_fail "k8s.pod_restarts{pod=$POD}: $(sig k8s.pod_restarts pod "$POD")"
has k8s.pod_restarts '.value == 2' pod backend-7d4b9c-fghij ||
    h_fail "k8s.pod_restarts{pod=backend-7d4b9c-fghij}: $(sig k8s.pod_restarts pod backend-7d4b9c-fghij)"
[[ $(sig k8s.pod_restarts pod frontend-5f6d7-klmno) == null ]] ||
    h_fail "a pod that never restarted has a k8s.pod_restarts series"
has k8s.deployments_unavailable '.value == 0' namespace reconciliation ||
    h_fail "k8s.deployments_unavailable: $(sig k8s.deployments_unavailable namespace reconciliation)"
has k8s.nodes_not_ready '.value == 0' || h_fail "k8s.nodes_not_ready: $(sig k8s.nodes_not_ready)"
has k8s.nodes_memory_pressure '.value == 0' ||
    h_fail "k8s.nodes_memory_pressure: $(sig k8s.nodes_memory_pressure)"
has k8s.nodes_disk_pressure '.value == 0' ||
    h_fail "k8s.nodes_disk_pressure: $(sig k8s.nodes_disk_pressure)"
has k8s.oomkilled '.value == 0 and .unit == "containers"' namespace reconciliation ||
    h_fail "k8s.oomkilled: $(sig k8s.oomkilled namespace reconciliation)"
# The seed's two BackOff warnings were last seen 2 minutes before the API server started.
has k8s.warning_events '.value == 2 and .unit == "events"' namespace reconciliation ||
    h_fail "k8s.warning_events: $(sig k8s.warning_events namespace reconciliation)"
# worker-1 uses 1200m of 3800m and 6Gi of 15Gi.
has k8s.node_cpu_pct '.value > 31.5 and .value < 31.6 and .unit == "percent"' node worker-1 ||
    h_fail "k8s.node_cpu_pct{node=worker-1}: $(sig k8s.node_cpu_pct node worker-1)"
has k8s.node_memory_pct '.value == 40' node worker-1 ||
    h_fail "k8s.node_memory_pct{node=worker-1}: $(sig k8s.node_memory_pct node worker-1)"
h_pass "signals: up, pods not ready, crash loop, restarts per pod, deployments, nodes, node usage"

# ---- evidence ---------------------------------------------------------------------------------
out=$(h_ctl collect --node cluster kubernetes --arg target=k8s -o json) || h_fail "collect kubernetes: $out"
id=$(jq -r '.[0].id' <<<"$out")
[[ $id =~ ^[0-9]+$ ]] || h_fail "collect kubernetes: no id in $out"
f=$H_DIR/evidence-kubernetes.txt
h_ctl evidence get "$id" --out "$f" || h_fail "evidence get $id"
[[ $(sha256sum "$f" | cut -d' ' -f1) == $(h_sql "select encode(sha256, 'hex') from evidence where id = $id") ]] ||
    h_fail "the stored hash differs from the fetched bytes"
expect() { grep -qE -- "$1" "$f" || h_fail "the artifact lacks /$1/: $(head -c 1500 "$f")"; }
expect '^== kubectl get pods -n reconciliation ==$'
for pod in "$POD" backend-7d4b9c-fghij frontend-5f6d7-klmno postgres-0; do
    expect "^$pod "
done
expect "^$POD +0/1 +CrashLoopBackOff +4 +worker-1 "
expect "^== kubectl describe pod $POD -n reconciliation ==$"
expect 'Reason: CrashLoopBackOff'
expect 'Exit Code: 1'
expect 'Back-off restarting failed container backend in pod '"$POD"
expect "^== kubectl logs $POD -n reconciliation -c backend --tail=100 ==$"
expect "^== kubectl logs $POD -n reconciliation -c backend --tail=100 --previous ==$"
expect 'ERROR database connection pool exhausted'
grep -q '^== kubectl describe pod postgres-0' "$f" && h_fail "a healthy pod was described"
expect '^== kubectl get ingress -n reconciliation'
expect 'reconciliation\.example\.com +/api +backend:8080'
expect '^== kubectl get deployments -n reconciliation ==$'
expect '^backend +2 +2 '
expect '^== kubectl get events -n reconciliation'
expect '^== kubectl top pods -n reconciliation ==$'
expect '^backend-7d4b9c-fghij +450m +900Mi'
expect '^== kubectl get nodes; kubectl describe nodes ==$'
expect '^worker-1 +Ready '
expect '^== kubectl top nodes ==$'
expect '^worker-1 +1200m +32% +6144Mi +40%'
if grep -qE 'not-a-real-password|fake-api-key|bm90LWEtcmVhbC1wYXNzd29yZA|ZmFrZS1hcGkta2V5' "$f"; then
    h_fail "the artifact holds a secret's value"
fi
if jq -r .path "$KUBE/requests.jsonl" | grep '/secrets' >/dev/null; then
    h_fail "the probe requested Secrets: $(jq -r .path "$KUBE/requests.jsonl" | grep /secrets | head -3)"
fi
h_pass "evidence: get/describe pods, events, logs (current and previous), ingress, deployments, events, top, nodes; no Secret read"

# ---- the pod recovers: its restart series ends with 0 ----------------------------------------
kube PATCH "/api/v1/namespaces/reconciliation/pods/$POD/status" application/merge-patch+json '{
  "status": {
    "conditions": [{"type": "Ready", "status": "True"}],
    "containerStatuses": [{"name": "backend", "ready": true, "started": true, "restartCount": 0,
                           "image": "reconciliation/backend:1.4.2",
                           "state": {"running": {"startedAt": "2026-01-01T10:06:00Z"}}}]}}' >/dev/null ||
    h_fail "cannot make $POD recover"
h_wait "the recovered pod's restart series ended with 0" 10 has k8s.pod_restarts '.value == 0' pod "$POD"
has k8s.pods_not_ready '.value == 0' namespace reconciliation ||
    h_fail "k8s.pods_not_ready after recovery: $(sig k8s.pods_not_ready namespace reconciliation)"
has k8s.crashloop '.value == 0' namespace reconciliation ||
    h_fail "k8s.crashloop after recovery: $(sig k8s.crashloop namespace reconciliation)"
has k8s.pod_restarts '.value == 2' pod backend-7d4b9c-fghij ||
    h_fail "the other pod's restarts changed: $(sig k8s.pod_restarts pod backend-7d4b9c-fghij)"
h_pass "recovery: not ready and crash loop back to 0, the restart series ended with 0"

# ---- the API server goes away ----------------------------------------------------------------
stop_kube
h_wait "k8s.up is 0" 20 has k8s.up '.value == 0'
h_ctl signals -o json --node cluster --name k8s.error |
    jq -e 'any(.[]; .labels.target == "k8s" and .labels.reason == "refused" and .value == 1)' >/dev/null ||
    h_fail "no k8s.error{reason=refused}: $(h_ctl signals --node cluster --name k8s.error)"
h_pass "API server stopped: k8s.up 0 with reason refused"
