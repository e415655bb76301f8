#!/usr/bin/env bash
# The kubernetes probe keeps its copy of the cluster with watches, not by listing every cycle,
# and recovers from what a real API server does to watches (tests/tools/kube_apiserver.py):
#   - after the first cycle's lists it watches pods, deployments and events of the namespace and
#     the nodes (?watch=1&resourceVersion=RV&allowWatchBookmarks=true), and a pod's change
#     reaches k8s.crashloop/k8s.pod_restarts without another list
#   - BOOKMARK events move the resourceVersion a watch resumes from: after the server forgot
#     the history older than the last bookmark and dropped every watch, they resume without
#     listing again
#   - a dropped watch and a resourceVersion gap: the watches resume from the last
#     resourceVersion seen, and what changed meanwhile (a pod recovered, a pod deleted) shows in
#     the signals, still without a list
#   - 410 Gone, as a watch ERROR event (what a real server sends) and as an HTTP 410 answer:
#     the probe lists again and the signals follow the objects changed in the meantime
#   - a server that stops answering (SIGSTOP) while the watches are open: k8s.up 0 with reason
#     timeout (no cycle waits on a watch), and once it answers again the signals follow
source "$(dirname "$0")/../lib/harness.sh"

h_setup
KUBE_PID=""
stop_kube() {
    [[ -n $KUBE_PID ]] || return 0
    kill -CONT "$KUBE_PID" 2>/dev/null || true # a test that failed while it was stopped
    kill -TERM "$KUBE_PID" 2>/dev/null || true
    wait "$KUBE_PID" 2>/dev/null || true
    KUBE_PID=""
}
on_exit() {
    local status=$?
    set +e
    if [[ $status != 0 && -f $H_DIR/kube.log ]]; then
        echo "----- kube.log (last 30 lines) -----" >&2
        tail -n 30 "$H_DIR/kube.log" >&2
    fi
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
crashloop() {
    kube PATCH "/api/v1/namespaces/$NS/pods/$POD/status" application/merge-patch+json '{
  "status": {
    "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
    "containerStatuses": [{
      "name": "backend", "ready": false, "restartCount": '"$1"',
      "image": "reconciliation/backend:1.4.2",
      "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}' >/dev/null ||
        h_fail "cannot make $POD crash-loop"
}
recover() {
    kube PATCH "/api/v1/namespaces/$NS/pods/$POD/status" application/merge-patch+json '{
  "status": {
    "conditions": [{"type": "Ready", "status": "True"}],
    "containerStatuses": [{"name": "backend", "ready": true, "restartCount": 0,
                           "image": "reconciliation/backend:1.4.2",
                           "state": {"running": {"startedAt": "2026-01-01T10:06:00Z"}}}]}}' >/dev/null ||
        h_fail "cannot make $POD recover"
}
rv() { kube POST '/_test/skip-rv?n=0' | jq -r .resourceVersion; }
# The lists of pods (GET .../pods without watch) the probe made since the last clear-requests.
pod_lists() {
    jq -r 'select(.method == "GET" and .path == "/api/v1/namespaces/'$NS'/pods"
                  and (.query | test("watch=") | not)) | .path' "$KUBE/requests.jsonl" | wc -l
}
# The watch requests the server has answered (its log has every request as it starts).
watches() { grep -oE 'GET /api[^ ]*[?&]watch=1[^ ]*' "$H_DIR/kube.log" || true; }

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
      - {name: k8s, kubeconfig: "$KUBE/kubeconfig", namespaces: [$NS]}
YAML
)
h_start_agent cluster "$agent_yaml"

sig() {
    h_ctl signals -o json --node cluster --name "$1" |
        jq -c --arg k "${2:-}" --arg v "${3:-}" \
            '[.[] | select(.labels.target == "k8s" and ($k == "" or .labels[$k] == $v))] | sort_by(.ts) | last'
}
has() { sig "$1" "${3:-}" "${4:-}" | jq -e "$2" >/dev/null; }

# ---- list once, then watch ------------------------------------------------------------------
h_wait "k8s.up is 1" 30 has k8s.up '.value == 1'
h_wait "the seed's signals" 10 has k8s.pod_restarts '.value == 2' pod backend-7d4b9c-fghij
for path in "/api/v1/namespaces/$NS/pods" "/apis/apps/v1/namespaces/$NS/deployments" \
    "/api/v1/namespaces/$NS/events" "/api/v1/nodes"; do
    h_wait "a watch of $path" 10 bash -c "grep -qF 'GET $path?watch=1&resourceVersion=' '$H_DIR/kube.log'"
done
watches | grep 'allowWatchBookmarks=true' >/dev/null || h_fail "the watches do not ask for bookmarks: $(watches | head -3)"
kube POST /_test/clear-requests >/dev/null
crashloop 5
h_wait "the crash loop seen through the watch" 10 has k8s.crashloop '.value == 1' namespace $NS
has k8s.pod_restarts '.value == 5' pod "$POD" || h_fail "k8s.pod_restarts: $(sig k8s.pod_restarts pod "$POD")"
has k8s.pods_not_ready '.value == 1' namespace $NS || h_fail "k8s.pods_not_ready: $(sig k8s.pods_not_ready namespace $NS)"
sleep 2
[[ $(pod_lists) == 0 ]] || h_fail "pods were listed again while watched: $(pod_lists) lists"
h_pass "listed once, then watched: a pod's change reached the signals without a list"

# ---- bookmarks: the history before the last bookmark is forgotten, the watches resume --------
before=$(rv)
kube PATCH "/apis/apps/v1/namespaces/$NS/deployments/frontend" application/merge-patch+json \
    '{"metadata": {"annotations": {"vigil-test": "bookmark"}}}' >/dev/null || h_fail "cannot patch frontend"
sleep 3 # a bookmark a second carries the new resourceVersion to every watch
kube POST "/_test/compact?rv=$((before + 1))" >/dev/null
kube POST /_test/clear-requests >/dev/null
nwatches=$(watches | wc -l)
kube POST /_test/drop-watches >/dev/null
h_wait "the pods watch resumed" 10 bash -c "(( \$(grep -cF 'GET /api/v1/namespaces/$NS/pods?watch=1' '$H_DIR/kube.log') > $(watches | grep -cF "/namespaces/$NS/pods?") ))"
sleep 2
[[ $(pod_lists) == 0 ]] || h_fail "pods listed again after a drop although a bookmark was past the compaction"
(($(watches | wc -l) > nwatches)) || h_fail "no watch resumed"
h_pass "bookmarks: after the history was forgotten and the watches dropped, they resumed without a list"

# ---- a dropped watch and a resourceVersion gap -------------------------------------------------
kube POST /_test/clear-requests >/dev/null
last=$(rv)
kube POST /_test/drop-watches >/dev/null
kube POST '/_test/skip-rv?n=50' >/dev/null
recover
kube DELETE "/api/v1/namespaces/$NS/pods/backend-7d4b9c-fghij" >/dev/null || h_fail "cannot delete a pod"
h_wait "the recovery seen after the gap" 15 has k8s.crashloop '.value == 0' namespace $NS
h_wait "the recovered pod's restart series ended" 10 has k8s.pod_restarts '.value == 0' pod "$POD"
h_wait "the deleted pod's restart series ended" 10 has k8s.pod_restarts '.value == 0' pod backend-7d4b9c-fghij
has k8s.pods_not_ready '.value == 0' namespace $NS || h_fail "k8s.pods_not_ready: $(sig k8s.pods_not_ready namespace $NS)"
[[ $(pod_lists) == 0 ]] || h_fail "pods listed again after a drop that needed none"
# The pods watch resumed from a resourceVersion at or after the one before the drop.
resumed=$(watches | grep -F "/namespaces/$NS/pods?" | tail -1 | sed -E 's/.*resourceVersion=([0-9]+).*/\1/')
[[ $resumed =~ ^[0-9]+$ ]] && ((resumed >= last - 1)) || h_fail "the pods watch resumed from $resumed (last $last)"
h_pass "dropped watch and resourceVersion gap: resumed from the last resourceVersion, the changes made meanwhile are in the signals"

# ---- 410 Gone as a watch ERROR event: list again -----------------------------------------------
kube POST /_test/clear-requests >/dev/null
kube POST /_test/compact >/dev/null
kube POST /_test/drop-watches >/dev/null
crashloop 7
h_wait "a list after 410 Gone (ERROR event)" 15 bash -c "(( \$(jq -r 'select(.method == \"GET\" and .path == \"/api/v1/namespaces/$NS/pods\" and (.query | test(\"watch=\") | not)) | .path' '$KUBE/requests.jsonl' | wc -l) > 0 ))"
h_wait "the crash loop after 410 Gone" 10 has k8s.crashloop '.value == 1' namespace $NS
has k8s.pod_restarts '.value == 7' pod "$POD" || h_fail "k8s.pod_restarts after 410: $(sig k8s.pod_restarts pod "$POD")"
h_pass "410 Gone as an ERROR event: listed again, the signals follow the change"

# ---- 410 Gone as an HTTP status: list again ----------------------------------------------------
kube POST '/_test/config?gone=status' >/dev/null
kube POST /_test/clear-requests >/dev/null
kube POST /_test/compact >/dev/null
kube POST /_test/drop-watches >/dev/null
recover
h_wait "an HTTP 410 to a watch" 15 bash -c "jq -n -e 'any(inputs; .status == 410 and (.query | test(\"watch=1\")))' '$KUBE/requests.jsonl' >/dev/null"
h_wait "the recovery after HTTP 410" 15 has k8s.crashloop '.value == 0' namespace $NS
(($(pod_lists) > 0)) || h_fail "no list after HTTP 410"
has k8s.up '.value == 1' || h_fail "k8s.up after 410: $(sig k8s.up)"
h_pass "410 Gone as an HTTP answer: listed again, the signals follow the change, k8s.up stays 1"

# ---- a server that stops answering: no cycle waits on a watch --------------------------------
kill -STOP "$KUBE_PID"
h_wait "k8s.up 0 while the server hangs" 20 has k8s.up '.value == 0'
h_ctl signals -o json --node cluster --name k8s.error |
    jq -e 'any(.[]; .labels.target == "k8s" and .labels.reason == "timeout" and .value == 1)' >/dev/null ||
    h_fail "no k8s.error{reason=timeout}: $(h_ctl signals --node cluster --name k8s.error)"
kill -CONT "$KUBE_PID"
h_wait "k8s.up back to 1" 20 has k8s.up '.value == 1'
crashloop 9
h_wait "a change after the hang reaches the signals" 15 has k8s.pod_restarts '.value == 9' pod "$POD"
h_pass "a hung server: k8s.up 0 with reason timeout within the cycle's bound, then the watches carry on"
