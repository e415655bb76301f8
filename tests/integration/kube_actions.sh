#!/usr/bin/env bash
# The kubernetes service actions of vigil-agent-action (agent/action/svc_kube.c) against the fake
# API server (tests/tools/kube_apiserver.py), side by side with the real kubectl.
#
# For every op the runbooks do with kubectl (rollout restart, scale, the two env patches, the
# resources patch, the networkpolicy patch), kubectl runs against a freshly reset server, then
# vigil-agent-action runs the equivalent request against the reset server: both must send one
# write with the same method, path and content type, and leave the object in the same state
# (restartedAt masked; for block, the policy's spec: Vigil adds its vigil.dev/blocked annotation).
# Then what kubectl has no single command for: block/unblock round trips, isolate-pod and
# release-pod (label, the vigil-isolate policy created and deleted, a policy Vigil does not own
# never deleted), and the failures: an unknown deployment, a wrong token, a server that is not
# listening or never answers, a kubeconfig that skips TLS verification. vigil-agent-action runs as
# nobody (as the agent's user would) when the test is root.
# Skipped (77) without kubectl or python3.
source "$(dirname "$0")/../lib/harness.sh"

command -v kubectl >/dev/null || { h_log "SKIP: kubectl is not installed"; exit 77; }
PY=${VIGIL_PYTHON:-python3}
command -v "$PY" >/dev/null || { h_log "SKIP: $PY is not installed"; exit 77; }
command -v jq >/dev/null || { h_log "SKIP: jq is not installed"; exit 77; }
ACTION=$VIGIL_BUILD/vigil-agent-action
[[ -x $ACTION ]] || h_fail "$ACTION is not built (make vigil-agent-action)"

umask 022 # what the test writes for vigil-agent-action is readable by the user it runs as
H_DIR=$(mktemp -d /tmp/vigil-kube.XXXXXX)
D=$H_DIR
SERVER_PID="" HANG_PID="" FORBID_PID=""
h_dump_logs() {
    [[ -s $D/server.log ]] || return 0
    echo "----- server.log (last 20 lines) -----" >&2
    tail -n 20 "$D/server.log" >&2
}
cleanup() {
    local status=$? pid
    for pid in $SERVER_PID $HANG_PID $FORBID_PID; do kill "$pid" 2>/dev/null || true; done
    for pid in $SERVER_PID $HANG_PID $FORBID_PID; do wait "$pid" 2>/dev/null || true; done
    if [[ $status -ne 0 ]]; then h_log "kept $D for inspection"; else rm -rf "$D"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

"$PY" "$VIGIL_SRC/tests/tools/kube_apiserver.py" --dir "$D" >"$D/server.log" 2>&1 &
SERVER_PID=$!
h_wait "the fake API server listening" 20 test -s "$D/port"
PORT=$(cat "$D/port")
TOKEN=$(cat "$D/token")
URL=https://127.0.0.1:$PORT
export KUBECONFIG=$D/kubeconfig

# vigil-agent-action as the agent's user would run it: nobody, when the test is root. What it
# reads must be readable by that user.
RUNAS=()
if [[ $(id -u) == 0 ]]; then
    RUNAS=(runuser -u nobody --)
    chmod 755 "$D"
    chmod 644 "$D/kubeconfig" "$D/ca.crt" "$D/token"
    [[ $("${RUNAS[@]}" id -u) != 0 ]] || h_fail "runuser -u nobody still runs as root"
    # A copy nobody can reach, as a package installs it: a build tree in a 0700 clone under
    # /root is not.
    install -d -m 0755 "$D/bin"
    install -m 0755 "$ACTION" "$D/bin/vigil-agent-action"
    ACTION=$D/bin/vigil-agent-action
fi

api() { # api METHOD PATH [BODY]: the fake server's own endpoints
    curl -fsS --cacert "$D/ca.crt" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
        -X "$1" ${3:+--data "$3"} "$URL$2"
}
reset() {
    api POST /_test/reset >/dev/null
    api POST /_test/clear-requests >/dev/null
}
# The writes since the last reset: "METHOD PATH CONTENT_TYPE", one a line.
writes() { jq -r 'select(.method != "GET") | "\(.method) \(.path) \(.content_type)"' "$D/requests.jsonl"; }
# An object from the server's state, without what the server makes up (metadata it owns, the
# clock's times in status conditions), then filter.
state() {
    api GET /_test/state | jq -S --arg s "$1" --arg k "$2" \
        ".[\$s][\$k] | if . == null then null else del(.metadata.resourceVersion, .metadata.uid,
         .metadata.creationTimestamp, .metadata.managedFields, .status.conditions[]?.lastUpdateTime,
         .status.conditions[]?.lastTransitionTime) end | $3"
}

# vigil [ENV=VALUE...] OP ARGS...: the request the executor would write, as printf '%s\0' pairs;
# kube.* keys default to the server's kubeconfig unless given in ARGS.
vigil() {
    local op=$1
    shift
    local kube=(kube.kubeconfig "$D/kubeconfig")
    [[ " $* " == *" kube."* ]] && kube=()
    printf '%s\0' kind kubernetes op "$op" action "$op-test" timeout_ms "${TIMEOUT_MS:-10000}" \
        "${kube[@]}" arg.namespace reconciliation "$@" | "${RUNAS[@]}" "$ACTION" kubernetes "$op"
}

# same_as_kubectl OP STORE KEY FILTER: kubectl "${KUBECTL[@]}" and vigil OP "${ARGS[@]}", each on
# a reset server; one write each, the same method, path and content type, the same state.
same_as_kubectl() {
    local op=$1 store=$2 key=$3 filter=$4 kwrites kstate vwrites vstate out rc
    reset
    kubectl --cache-dir "$D/kcache" "${KUBECTL[@]}" >"$D/kubectl.out" 2>&1 ||
        h_fail "kubectl ${KUBECTL[*]}: $(cat "$D/kubectl.out")"
    kwrites=$(writes)
    kstate=$(state "$store" "$key" "$filter")
    reset
    h_capture out rc vigil "$op" "${ARGS[@]}"
    [[ $rc == 0 ]] || h_fail "$op exited $rc: $out"
    vwrites=$(writes)
    vstate=$(state "$store" "$key" "$filter")
    [[ -n $kwrites && $(wc -l <<<"$kwrites") == 1 ]] || h_fail "kubectl ${KUBECTL[*]} wrote: $kwrites"
    [[ $kwrites == "$vwrites" ]] || h_fail "$op wrote \"$vwrites\", kubectl \"$kwrites\""
    [[ $kstate == "$vstate" ]] ||
        h_fail "$op left $key unlike kubectl: $(diff <(echo "$kstate") <(echo "$vstate") | head -20)"
    [[ $kstate != "$(reset; state "$store" "$key" "$filter")" ]] || h_fail "$op changed nothing"
    LAST_OUT=$out
    read -r m p _ <<<"$vwrites"
    echo "kube-actions: op=$op method=$m path=$p same_as_kubectl=yes"
}

# ---- the runbooks' kubectl steps, side by side

MASK='(.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] |= (if . then "T" else . end))'
KUBECTL=(rollout restart deployment/backend -n reconciliation)
ARGS=(arg.deployment backend)
same_as_kubectl restart deployments reconciliation/backend "$MASK"
[[ $LAST_OUT == *"restore: none"* ]] || h_fail "restart's account: $LAST_OUT"

KUBECTL=(scale deployment backend --replicas=3 -n reconciliation)
ARGS=(arg.deployment backend arg.replicas 3)
same_as_kubectl scale deployments reconciliation/backend .
[[ $LAST_OUT == *'before: {"replicas":2}'*'after: {"replicas":3}'*'restore: replicas=2'* ]] ||
    h_fail "scale's account: $LAST_OUT"

KUBECTL=(patch deployment backend -n reconciliation -p
    '{"spec":{"template":{"spec":{"containers":[{"name":"backend","env":[{"name":"DB_POOL_SIZE","value":"20"}]}]}}}}')
ARGS=(arg.deployment backend arg.container backend arg.variable DB_POOL_SIZE arg.value 20)
same_as_kubectl set-env deployments reconciliation/backend .
[[ $LAST_OUT == *'before: null'*'after: {"name":"DB_POOL_SIZE","value":"20"}'*'restore: -'* ]] ||
    h_fail "set-env's account of a new variable: $LAST_OUT"

KUBECTL=(patch deployment backend -n reconciliation -p
    '{"spec":{"template":{"spec":{"containers":[{"name":"backend","env":[{"name":"LOG_LEVEL","value":"debug"}]}]}}}}')
ARGS=(arg.deployment backend arg.container backend arg.variable LOG_LEVEL arg.value debug)
same_as_kubectl set-env deployments reconciliation/backend .
[[ $LAST_OUT == *'before: {"name":"LOG_LEVEL","value":"info"}'*'restore: value=info'* ]] ||
    h_fail "set-env's account of a changed variable: $LAST_OUT"

KUBECTL=(patch deployment backend -n reconciliation -p
    '{"spec":{"template":{"spec":{"containers":[{"name":"backend","resources":{"limits":{"memory":"2Gi","cpu":"1000m"}}}]}}}}')
ARGS=(arg.deployment backend arg.container backend arg.cpu 1000m arg.memory 2Gi)
same_as_kubectl set-resources deployments reconciliation/backend .
[[ $LAST_OUT == *'restore: cpu=500m memory=1Gi'* ]] || h_fail "set-resources' account: $LAST_OUT"

KUBECTL=(patch networkpolicy reconciliation-network-policy -n reconciliation -p
    '{"spec":{"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.0.0.0/24"]}}]}]}}')
ARGS=(arg.policy reconciliation-network-policy arg.cidr 10.0.0.0/24)
same_as_kubectl block networkpolicies reconciliation/reconciliation-network-policy .spec

# ---- block / unblock

POLICY=reconciliation/reconciliation-network-policy
blocked() { state networkpolicies $POLICY '.metadata.annotations["vigil.dev/blocked"]' | jq -r .; }
excepted() { state networkpolicies $POLICY '[.spec.ingress[].from[].ipBlock.except // empty] | add // []' | jq -c .; }
reset
seed_spec=$(state networkpolicies $POLICY .spec)
vigil block arg.policy reconciliation-network-policy arg.cidr 10.0.0.0/24 >/dev/null
vigil block arg.policy reconciliation-network-policy arg.cidr 10.1.0.0/16 >/dev/null
[[ $(blocked) == 10.0.0.0/24,10.1.0.0/16 ]] || h_fail "vigil.dev/blocked after two blocks: $(blocked)"
[[ $(excepted) == '["10.0.0.0/24","10.1.0.0/16"]' ]] || h_fail "except after two blocks: $(excepted)"
api POST /_test/clear-requests >/dev/null
h_capture out rc vigil block arg.policy reconciliation-network-policy arg.cidr 10.0.0.0/24
[[ $rc == 0 && $out == *"already blocked"* && -z $(writes) ]] ||
    h_fail "a second block of 10.0.0.0/24 (exit $rc, writes: $(writes)): $out"
h_capture out rc vigil block arg.policy reconciliation-network-policy arg.cidr 192.168.1.0/24
[[ $rc == 1 && $out == *"nothing to block"* && -z $(writes) ]] ||
    h_fail "blocking a range the policy does not let in (exit $rc): $out"
h_capture out rc vigil block arg.policy reconciliation-network-policy arg.cidr 2001:db8::/64
[[ $rc == 1 && $out == *"nothing to block"* ]] || h_fail "blocking an IPv6 range (exit $rc): $out"
h_capture out rc vigil block arg.policy reconciliation-network-policy arg.cidr 10.0.0.0/8
[[ $rc == 1 && $out == *"strict subset"* && -z $(writes) ]] ||
    h_fail "blocking the whole range of an ipBlock (exit $rc): $out"
vigil unblock arg.policy reconciliation-network-policy arg.cidr 10.0.0.0/24 >/dev/null
[[ $(blocked) == 10.1.0.0/16 && $(excepted) == '["10.1.0.0/16"]' ]] ||
    h_fail "after unblocking 10.0.0.0/24: blocked $(blocked), except $(excepted)"
h_capture out rc vigil unblock arg.policy reconciliation-network-policy arg.cidr 10.1.0.0/16
[[ $rc == 0 && $out == *"restore: op=block cidr=10.1.0.0/16"* ]] || h_fail "unblock (exit $rc): $out"
[[ $(state networkpolicies $POLICY .spec) == "$seed_spec" && $(blocked) == null ]] ||
    h_fail "block/unblock did not come back to the seed: $(state networkpolicies $POLICY .)"
api POST /_test/clear-requests >/dev/null
h_capture out rc vigil unblock arg.policy reconciliation-network-policy arg.cidr 10.1.0.0/16
[[ $rc == 0 && $out == *"not blocked"* && -z $(writes) ]] || h_fail "unblocking twice (exit $rc): $out"
echo "kube-actions: op=block/unblock round trip back to the seed spec, annotation vigil.dev/blocked kept in step"

# ---- isolate-pod / release-pod

P1=backend-7d4b9c-abcde P2=backend-7d4b9c-fghij
label() { state pods "reconciliation/$1" '.metadata.labels["vigil.dev/isolated"]' | jq -r .; }
isolate_policy() { state networkpolicies reconciliation/vigil-isolate "$1"; }
reset
h_capture out rc vigil isolate-pod arg.pod $P1
[[ $rc == 0 ]] || h_fail "isolate-pod exited $rc: $out"
[[ $(label $P1) == true ]] || h_fail "isolate-pod did not label $P1"
[[ $(writes) == "PATCH /api/v1/namespaces/reconciliation/pods/$P1 application/strategic-merge-patch+json
POST /apis/networking.k8s.io/v1/namespaces/reconciliation/networkpolicies application/json" ]] ||
    h_fail "isolate-pod's writes: $(writes)"
want='{"egress":[{"to":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"vigil"}}}]}],"ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"vigil"}}}]}],"podSelector":{"matchLabels":{"vigil.dev/isolated":"true"}},"policyTypes":["Egress","Ingress"]}'
[[ $(isolate_policy '.spec | .policyTypes |= sort' | jq -cS .) == "$want" ]] ||
    h_fail "vigil-isolate's spec: $(isolate_policy .spec)"
[[ $(isolate_policy '.metadata.labels["app.kubernetes.io/managed-by"]') == '"vigil"' ]] ||
    h_fail "vigil-isolate is not labelled as Vigil's"
api POST /_test/clear-requests >/dev/null
vigil isolate-pod arg.pod $P2 >/dev/null
[[ $(writes) == "PATCH /api/v1/namespaces/reconciliation/pods/$P2 application/strategic-merge-patch+json" ]] ||
    h_fail "isolating a second pod wrote: $(writes)"
h_capture out rc vigil release-pod arg.pod $P1
[[ $rc == 0 && $(label $P1) == null && $out == *"kept: 1 pod still isolated"* ]] ||
    h_fail "releasing $P1 while $P2 is isolated (exit $rc): $out"
[[ $(isolate_policy .spec) != null ]] || h_fail "vigil-isolate deleted while $P2 is still isolated"
h_capture out rc vigil release-pod arg.pod $P2
[[ $rc == 0 && $(label $P2) == null && $(isolate_policy .) == null ]] ||
    h_fail "releasing the last pod did not delete vigil-isolate (exit $rc): $out"
[[ $(writes | tail -1) == "DELETE /apis/networking.k8s.io/v1/namespaces/reconciliation/networkpolicies/vigil-isolate application/json" ]] ||
    h_fail "release-pod's writes: $(writes)"
echo "kube-actions: op=isolate-pod/release-pod label set and removed, vigil-isolate created, kept while in use, deleted"

# A vigil-isolate that is not Vigil's: isolate says the pod may not be isolated, release never
# deletes it.
reset
api POST /apis/networking.k8s.io/v1/namespaces/reconciliation/networkpolicies \
    '{"metadata":{"name":"vigil-isolate"},"spec":{"podSelector":{},"policyTypes":["Ingress"]}}' >/dev/null
h_capture out rc vigil isolate-pod arg.pod $P1
[[ $rc == 1 && $out == *"is not Vigil's"* ]] || h_fail "isolate-pod beside a foreign vigil-isolate (exit $rc): $out"
api POST /_test/clear-requests >/dev/null
h_capture out rc vigil release-pod arg.pod $P1
[[ $rc == 0 && $out == *"kept: it is not Vigil's"* ]] || h_fail "release-pod beside a foreign policy (exit $rc): $out"
[[ $(isolate_policy .spec) != null && -z $(writes | grep DELETE || true) ]] ||
    h_fail "release-pod deleted a policy Vigil does not own"
echo "kube-actions: op=release-pod an unowned vigil-isolate is never deleted"

# ---- credentials

reset
h_capture out rc vigil scale arg.deployment backend arg.replicas 4 kube.server "$URL" \
    kube.token_file "$D/token" kube.ca_file "$D/ca.crt"
[[ $rc == 0 && $(state deployments reconciliation/backend .spec.replicas) == 4 ]] ||
    h_fail "in-cluster keys (server, token_file, ca_file) (exit $rc): $out"
sed "s|\"certificate-authority\": \".*\"|\"certificate-authority-data\": \"$(base64 -w0 "$D/ca.crt")\"|" \
    "$D/kubeconfig" >"$D/kubeconfig-data"
h_capture out rc vigil scale arg.deployment backend arg.replicas 5 kube.kubeconfig "$D/kubeconfig-data"
[[ $rc == 0 && $(state deployments reconciliation/backend .spec.replicas) == 5 ]] ||
    h_fail "a kubeconfig with certificate-authority-data (exit $rc): $out"
sed 's|"certificate-authority": ".*"|"insecure-skip-tls-verify": true|' "$D/kubeconfig" >"$D/kubeconfig-insecure"
h_capture out rc vigil scale arg.deployment backend arg.replicas 6 kube.kubeconfig "$D/kubeconfig-insecure"
[[ $rc == 1 && $out == *"insecure-skip-tls-verify, which Vigil refuses"* ]] ||
    h_fail "a kubeconfig that skips TLS verification (exit $rc): $out"
echo "kube-actions: credentials in-cluster keys, certificate-authority-data, insecure-skip-tls-verify refused"

# ---- failures

h_capture out rc vigil scale arg.deployment nosuch arg.replicas 1
[[ $rc == 1 && $out == *"deployment reconciliation/nosuch not found"* ]] || h_fail "unknown deployment (exit $rc): $out"
echo wrong-token >"$D/bad-token"
chmod 644 "$D/bad-token"
h_capture out rc vigil restart arg.deployment backend kube.server "$URL" kube.token_file "$D/bad-token" \
    kube.ca_file "$D/ca.crt"
[[ $rc == 1 && $out == *"the API server refused: Unauthorized"* ]] || h_fail "a wrong token (exit $rc): $out"
closed=$(h_free_port)
h_capture out rc vigil restart arg.deployment backend kube.server "https://127.0.0.1:$closed" \
    kube.token_file "$D/token" kube.ca_file "$D/ca.crt"
[[ $rc == 3 && $out == *"cannot reach the API server"* ]] || h_fail "a server not listening (exit $rc): $out"
# A server that accepts the connection and never answers: the run ends at timeout_ms.
"$PY" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(120)' "$D/hang.port" &
HANG_PID=$!
h_wait "the silent listener" 10 test -s "$D/hang.port"
start=$SECONDS
TIMEOUT_MS=1000 h_capture out rc vigil restart arg.deployment backend \
    kube.server "https://127.0.0.1:$(cat "$D/hang.port")" kube.token_file "$D/token" kube.ca_file "$D/ca.crt"
[[ $rc == 3 && $((SECONDS - start)) -le 3 ]] ||
    h_fail "a server that never answers (exit $rc after $((SECONDS - start))s): $out"
# An API server that forbids everything (the fake has no RBAC): the refusal names the verb, the
# resource and the namespace the Role should allow.
"$PY" -c 'import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
            "reason": "Forbidden", "message": "deployments.apps \"backend\" is forbidden"}).encode()
        self.send_response(403); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = c.wrap_socket(s.socket, server_side=True)
open(sys.argv[1], "w").write(str(s.server_address[1])); s.serve_forever()' \
    "$D/forbid.port" "$D/ca.crt" "$D/server.key" &
FORBID_PID=$!
h_wait "the forbidding server" 10 test -s "$D/forbid.port"
h_capture out rc vigil scale arg.deployment backend arg.replicas 3 \
    kube.server "https://127.0.0.1:$(cat "$D/forbid.port")" kube.token_file "$D/token" kube.ca_file "$D/ca.crt"
[[ $rc == 1 && $out == *'the API server refused: deployments.apps "backend" is forbidden (does the ServiceAccount'"'"'s Role allow get deployments in reconciliation?)'* ]] ||
    h_fail "a forbidden read (exit $rc): $out"
h_capture out rc vigil scale arg.deployment backend
[[ $rc == 2 && $out == *"no arg.replicas"* ]] || h_fail "a request without arg.replicas (exit $rc): $out"
echo "kube-actions: failures not-found=1 unauthorized=1 forbidden=1 not-listening=3 silent=3 missing-key=2 as uid $("${RUNAS[@]}" id -u)"
h_pass "kubernetes actions"
