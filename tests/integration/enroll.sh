#!/usr/bin/env bash
# Enrollment and authentication, end to end with real processes:
# three agents with bootstrap tokens become active; an agent without a token stays pending
# until an operator approves it; an unknown key is refused; a revoked agent is cut off at once
# and its next handshake fails; a silent agent is marked lost and comes back.
# Approvals and revocations move the rule engine's node set: a revoked node stops counting for
# a scope-all symptom at once, a node re-enrolled under a new key counts again once approved.
# A revoked admin operator stays revoked when the coordinator restarts with its key configured.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

# A symptom that holds when the service is down on every node that reports it: down on node-a
# and node-c (no pidfile), up on node-b (the coordinator's own pid).
RB=$H_DIR/runbooks
mkdir -p "$RB"
cat >"$RB/fleet-svc.yaml" <<'YAML'
id: fleet-svc
title: Service down on every node
severity: SEV3
symptoms:
  - id: svc-down-everywhere
    signal: proc.up
    labels: {name: svc}
    below: 1
    for: 0s
    scope: all
YAML
rb_yaml="runbooks:
  dir: \"$RB\""
h_start_coordinator "$rb_yaml"
echo "$H_COORD_PID" >"$H_DIR/alive.pid"
svc_yaml() {
    printf 'collectors:\n  processes:\n    interval: 1s\n    watch:\n      - {name: svc, pidfile: "%s"}\n' "$1"
}

h_start_agent node-a "$(svc_yaml "$H_DIR/missing.pid")"
h_start_agent node-b "$(svc_yaml "$H_DIR/alive.pid")"
h_start_agent node-c "$(svc_yaml "$H_DIR/missing.pid")"
active_count() { [[ $(h_ctl agents -o json | jq '[.[] | select(.state == "active")] | length') == "$1" ]]; }
h_wait "three agents active" 30 active_count 3
h_ctl agents -o json | jq -e 'map(.node) | sort == ["node-a","node-b","node-c"]' >/dev/null ||
    h_fail "agents list does not name the three nodes"
h_ctl agents -o json | jq -e 'all(.[]; .id != null and .last_seen != null and .version == "0.1.0")' >/dev/null ||
    h_fail "agents list lacks id, last_seen or version"
h_pass "three agents with tokens are active"

# Without a token: pending, nothing it sends is stored, until approved.
H_NO_TOKEN=1 h_start_agent node-p
state_of() { h_ctl agents -o json | jq -r --arg n "$1" '.[] | select(.node == $n) | .state'; }
is_state() { [[ $(state_of "$1") == "$2" ]]; }
h_wait "node-p pending" 30 is_state node-p pending
pid=$(h_ctl agents -o json | jq -r '.[] | select(.node == "node-p") | .id')
sleep 2
stored=$(h_sql "select count(*) from agent_messages where agent_id = '$pid'")
[[ $stored == 0 ]] || h_fail "a pending agent had $stored messages stored"
grep -q "vigilctl agents approve $pid" "$H_DIR/agents/node-p/agent.log" ||
    h_fail "the pending agent's log does not tell how to approve it"
h_ctl agents approve "$pid" | grep approved >/dev/null || h_fail "approve did not confirm"
h_wait "node-p active after approval" 30 is_state node-p active
has_rows() { [[ $(h_sql "select count(*) from agent_messages where agent_id = '$pid'") -gt 0 ]]; }
h_wait "node-p's spooled signals stored after approval" 30 has_rows
h_pass "an agent without a token is pending until approved"

# An unknown key may only enroll: its signals are refused and counted, nothing stored.
before=$(h_metric 'vigil_messages_refused_total{reason="not_enrolled"}')
h_sim bad unknown-key | grep 'refused code=1' >/dev/null || h_fail "signals from an unknown key were not refused"
after=$(h_metric 'vigil_messages_refused_total{reason="not_enrolled"}')
((after > before)) || h_fail "refusal of an unknown key was not counted ($before -> $after)"
# And an operator key the coordinator does not know gets nowhere.
"$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/stranger.key" >/dev/null
h_write_ctl_config "$H_DIR/stranger.yaml" "$H_DIR/stranger.key"
if out=$(VIGIL_CONFIG="$H_DIR/stranger.yaml" "$VIGIL_BUILD/vigilctl" agents 2>&1); then
    h_fail "an unknown operator key listed agents: $out"
fi
grep -q "refused this operator key" <<<"$out" || h_fail "unexpected refusal message: $out"
h_pass "unknown agent and operator keys are refused"

# Before any revocation the service is up on node-b: not down everywhere.
svc_reported() {
    h_ctl signals -o json --name proc.up | jq -e '[.[] | select(.labels == {"name":"svc"}) |
        "\(.node)=\(.value)"] | sort == ["node-a=0", "node-b=1", "node-c=0"]' >/dev/null
}
h_wait "proc.up{name=svc} from the three nodes" 30 svc_reported
sleep 1 # one more evaluation (every 250 ms) with all three in
fleet_is() { # STATE NODES: the last fleet-svc transition
    grep "symptom runbook=fleet-svc " "$H_DIR/coordinator.log" | tail -n 1 |
        grep -q "state=$1 .*nodes=$2 "
}
# Before node-b's first sample, node-a and node-c may be all the nodes that report: the symptom
# may fire then. With all three in, it must not be (or stay) critical.
fleet_is critical '[0-9]*/[0-9]*' && h_fail "fleet-svc is critical while node-b's service is up"

# Revocation: effective on the very next message, and at the next handshake.
rid=$(h_ctl agents -o json | jq -r '.[] | select(.node == "node-b") | .id')
before=$(h_metric 'vigil_messages_refused_total{reason="revoked"}')
h_ctl agents revoke "$rid" >/dev/null
revoked_at=$(h_sql "select count(*) from agent_messages where agent_id = '$rid'")
refused_more() { (($(h_metric 'vigil_messages_refused_total{reason="revoked"}') > before)); }
h_wait "messages from the revoked agent refused" 15 refused_more
h_wait "the revoked agent logs it" 15 grep -q "revoked this agent's key" "$H_DIR/agents/node-b/agent.log"
sleep 2
now=$(h_sql "select count(*) from agent_messages where agent_id = '$rid'")
[[ $now == "$revoked_at" ]] || h_fail "messages from a revoked agent were stored ($revoked_at -> $now)"
h_stop_agent node-b
h_start_agent node-b
h_wait "the revoked key's handshake is refused" 15 grep -q "refused this agent's key" "$H_DIR/agents/node-b/agent.log"
[[ $(state_of node-b) == revoked ]] || h_fail "node-b is not shown as revoked"
h_ctl agents approve "$rid" 2>/dev/null && h_fail "a revoked agent could be approved again"
h_pass "a revoked agent is cut off"

# The rule engine heard of the revocation: node-b's last sample (service up) no longer counts,
# so the service is down on every node left (without it, not for the 5 minutes a sample lives).
h_wait "fleet-svc critical on 2 of 2 nodes once node-b is revoked" 10 fleet_is critical 2/2
# node-b re-enrolled under a new key, pending until approved; approval puts it back in the
# node set, and its service being up ends "down everywhere".
h_stop_agent node-b
rm -rf "$H_DIR/agents/node-b/state"
H_NO_TOKEN=1 h_start_agent node-b "$(svc_yaml "$H_DIR/alive.pid")"
new_b() { h_ctl agents -o json | jq -r --arg old "$rid" '.[] | select(.node == "node-b" and .id != $old and .state == "pending") | .id'; }
has_new_b() { [[ -n $(new_b) ]]; }
h_wait "node-b pending under a new key" 30 has_new_b
h_ctl agents approve "$(new_b)" >/dev/null || h_fail "cannot approve node-b's new key"
h_wait "fleet-svc ok (2 of 3 nodes) once node-b is approved" 20 fleet_is ok 2/3
h_pass "revoke and approve move the rule engine's node set (scope all: 2/2 critical, then 2/3 ok)"

# Liveness: a silent agent is lost after 3 missed heartbeats (1 s here), and returns.
kill -STOP "${H_AGENT_PIDS[node-c]}"
h_wait "node-c lost" 15 is_state node-c lost
lost_at=$(h_sql "select state_since from agents where node = 'node-c'")
[[ -n $lost_at ]] || h_fail "the time node-c was lost is not stored"
kill -CONT "${H_AGENT_PIDS[node-c]}"
h_wait "node-c active again" 15 is_state node-c active
h_sql "select count(*) from audit_log where action like 'agent.%' and subject = (select id from agents where node='node-c')" |
    grep -qv '^0$' || h_fail "the lost/active transitions are not in the audit log"
h_pass "a silent agent is marked lost and comes back"

# A revoked admin stays revoked: the configuration's admin.public_key does not bring it back.
admin_pub=$(h_key_public "$H_DIR/admin.key")
[[ $(h_sql "select count(*) from operators where public_key = '$admin_pub' and revoked_at is null") == 1 ]] ||
    h_fail "the configured admin is not an active operator"
h_sql "update operators set revoked_at = now() where public_key = '$admin_pub'"
h_stop_coordinator
h_start_coordinator "$rb_yaml"
if out=$(h_ctl agents 2>&1); then
    h_fail "the revoked admin listed agents after a restart: $out"
fi
grep -q "refused this operator key" <<<"$out" || h_fail "unexpected refusal message: $out"
grep -q "admin key (admin.public_key) is revoked and stays revoked" "$H_DIR/coordinator.log" ||
    h_fail "the coordinator did not warn that the configured admin is revoked"
[[ $(h_sql "select count(*) from operators where public_key = '$admin_pub' and revoked_at is not null") == 1 ]] ||
    h_fail "the configured admin's revocation was undone in the store"
h_pass "a revoked admin stays revoked across a restart, with a warning"
