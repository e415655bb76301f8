#!/usr/bin/env bash
# What the Kubernetes DaemonSet relies on (deploy/kubernetes/base/agent-daemonset.yaml), with a
# real coordinator and agent:
# - `node: ""` and NODE_NAME set (the downward API's spec.nodeName): the agent enrolls under that
#   name, and its executor names its node the same way (commands are addressed to it);
# - the coordinator's public key comes from a file (coordinator.public_key_file, a Secret);
# - `vigil-agent --health` (the liveness probe) and `--ready` (the readiness probe) read the status
#   file the agent rewrites every 5 s: healthy and ready while it runs and reaches the coordinator;
#   not ready (but healthy) when the coordinator is gone; unhealthy when the agent's loop is
#   stopped (SIGSTOP: the file goes stale after 15 s) and once it has exited.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator

dir=$H_DIR/agents/k8s
mkdir -p "$dir"
h_key_public "$H_DIR/coord/coordinator.key" >"$dir/coordinator.pub"
cat >"$dir/agent.yaml" <<YAML
node: ""
state_dir: "$dir/state"
user: ""
allow_root: true
signers_file: ""
coordinator:
  endpoint: "tcp://127.0.0.1:$H_PORT_AGENTS"
  public_key_file: "$dir/coordinator.pub"
enrollment:
  secret_file: "$H_DIR/enrollment.secret"
heartbeat_interval: 1s
self_signals_interval: 1s
link:
  reconnect_min: 100ms
  reconnect_max: 1s
YAML
"$VIGIL_BUILD/vigil-agent" -n -c "$dir/agent.yaml" | grep "configuration OK" >/dev/null ||
    h_fail "the agent configuration with public_key_file does not check"

health() { "$VIGIL_BUILD/vigil-agent" --health -c "$dir/agent.yaml"; }
ready() { "$VIGIL_BUILD/vigil-agent" --ready -c "$dir/agent.yaml"; }

h_capture out rc health
[[ $rc == 1 && $out == "unhealthy: the agent is not running"* ]] ||
    h_fail "--health before the agent started: rc=$rc $out"

NODE_NAME=k8s-node-7 "$VIGIL_BUILD/vigil-agent" -c "$dir/agent.yaml" >>"$dir/agent.log" 2>&1 &
H_AGENT_PIDS[k8s]=$!
agent_active() {
    [[ $(h_ctl agents -o json | jq -r '.[] | select(.node == "k8s-node-7") | .state') == active ]]
}
h_wait "the agent active as node k8s-node-7" 30 agent_active
[[ $(h_ctl agents -o json | jq 'length') == 1 ]] || h_fail "more than one agent enrolled"
grep -q "executor ready node=k8s-node-7 " "$dir/agent.log" ||
    h_fail "the executor does not name its node k8s-node-7 (NODE_NAME not passed to it)"
h_pass "node name from NODE_NAME, for the agent and its executor; key from public_key_file"

h_wait "--ready" 15 ready
h_capture out rc health
[[ $rc == 0 && $out == "healthy: node k8s-node-7, link active, coordinator last heard "* ]] ||
    h_fail "--health while running: rc=$rc $out"
h_capture out rc ready
[[ $rc == 0 && $out == "ready: node k8s-node-7, link active"* ]] || h_fail "--ready: rc=$rc $out"
[[ $(stat -c %a "$dir/state/status") == 600 && ! -e $dir/state/status.part ]] ||
    h_fail "status file mode or a leftover status.part"
h_pass "healthy and ready: $out"

h_stop_coordinator
not_ready() { ! ready >/dev/null; }
h_wait "not ready without the coordinator" 20 not_ready
h_capture out rc ready
[[ $rc == 1 && $out == "not ready: no answer from the coordinator"* ]] ||
    h_fail "--ready without a coordinator: rc=$rc $out"
h_capture out2 rc health
[[ $rc == 0 ]] || h_fail "--health must not fail because the coordinator is gone: $out2"
h_pass "coordinator gone: $out (still healthy)"

kill -STOP "${H_AGENT_PIDS[k8s]}"
unhealthy() { ! health >/dev/null; }
h_wait "unhealthy once the stopped agent's status is stale" 25 unhealthy
h_capture out rc health
[[ $rc == 1 && $out == *"stale after 15s"* ]] || h_fail "--health of a stopped agent: rc=$rc $out"
kill -CONT "${H_AGENT_PIDS[k8s]}"
h_wait "healthy again once it runs" 10 health
h_pass "a stuck loop is unhealthy: $out"

h_stop_agent k8s
h_capture out rc health
[[ $rc == 1 && $out == "unhealthy: the agent is not running"* ]] ||
    h_fail "--health after a clean stop: rc=$rc $out"
h_pass "a stopped agent is unhealthy at once: $out"
