#!/usr/bin/env bash
# Hostile and broken input gets a clear answer and a metric, and loses nothing: bad
# configuration, secret files readable by others, an unreachable database, and malformed,
# oversized, mis-versioned, mis-typed, forged or badly tokened messages.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

# ---- configuration ----
h_write_coordinator_config
sed -i 's/^  agents: /  agent: /' "$H_DIR/coordinator.yaml"
h_capture out rc "$VIGIL_BUILD/vigil-coordinator" -n -c "$H_DIR/coordinator.yaml"
[[ $rc == 78 ]] || h_fail "unknown key: exit $rc, expected 78"
grep -Eq 'coordinator.yaml:[0-9]+:[0-9]+: .*unknown key "listen.agent"' <<<"$out" || h_fail "unknown key message: $out"

h_write_coordinator_config
sed -i "s/^  port: .*/  port: 70000/" "$H_DIR/coordinator.yaml"
h_capture out rc "$VIGIL_BUILD/vigil-coordinator" -n -c "$H_DIR/coordinator.yaml"
[[ $rc == 78 ]] && grep -Eq ':[0-9]+:[0-9]+: "http.port": must be between 1 and 65535' <<<"$out" ||
    h_fail "out-of-range port: exit $rc: $out"

h_write_coordinator_config
"$VIGIL_BUILD/vigil-coordinator" -n -c "$H_DIR/coordinator.yaml" | grep "configuration OK" >/dev/null ||
    h_fail "-n does not accept a good configuration"

chmod 644 "$H_DIR/enrollment.secret"
h_capture out rc "$VIGIL_BUILD/vigil-coordinator" -n -c "$H_DIR/coordinator.yaml"
[[ $rc == 78 ]] && grep -q "readable by group or others" <<<"$out" ||
    h_fail "a world-readable enrollment secret was accepted: exit $rc: $out"
chmod 600 "$H_DIR/enrollment.secret"

# The agent: an element of a list is named, and -n builds the log patterns.
agent_check() { # YAML -> sets out, rc
    printf 'coordinator:\n  public_key: "%s"\n%s\n' "$H_COORD_PUB" "$1" >"$H_DIR/agent-check.yaml"
    h_capture out rc "$VIGIL_BUILD/vigil-agent" -n -c "$H_DIR/agent-check.yaml"
}
agent_check $'collectors:\n  http:\n    targets:\n      - {name: a, url: "http://x/"}\n      - {name: b, urll: "http://y/"}'
[[ $rc == 78 ]] && grep -Eq 'agent-check.yaml:[0-9]+:[0-9]+: unknown key "collectors.http.targets\[1\].urll" \(did you mean "collectors.http.targets\[1\].url"\?\)' <<<"$out" ||
    h_fail "agent list element error: exit $rc: $out"
agent_check $'collectors:\n  logs:\n    files:\n      - {name: app, path: "/var/log/x.log", patterns: [{name: e, regex: "ERROR("}]}'
[[ $rc == 78 ]] && grep -q 'collectors.logs: log file "app": pattern "e":' <<<"$out" ||
    h_fail "agent -n accepted a pattern that does not compile: exit $rc: $out"
h_pass "configuration errors name file, line, column and key"

# ---- an unreachable database: retried, then exit 69 with the reason ----
h_write_coordinator_config $'store:\n  url: "host=/nonexistent port=1 dbname=vigil connect_timeout=1"\n  start_timeout: 2s'
h_capture out rc timeout 30 "$VIGIL_BUILD/vigil-coordinator" -c "$H_DIR/coordinator.yaml"
[[ $rc == 69 ]] || h_fail "unreachable database: exit $rc, expected 69: $out"
grep -qi "unreachable" <<<"$out" || h_fail "unreachable database: no clear message: $out"
h_pass "an unreachable database at start is retried, then exit 69"

# ---- hostile messages ----
h_start_coordinator
h_start_agent node-a
is_active() { [[ $(h_ctl agents -o json | jq -r '.[0].state') == active ]]; }
h_wait "node-a active" 30 is_active

check_refused() { # KIND REASON
    local before after out
    before=$(h_metric "vigil_messages_refused_total{reason=\"$2\"}")
    out=$(h_sim bad "$1" --secret-file "$H_DIR/enrollment.secret") || h_fail "$1 was not refused: $out"
    after=$(h_metric "vigil_messages_refused_total{reason=\"$2\"}")
    ((after > before)) || h_fail "$1: refusal not counted under reason=$2 ($before -> $after)"
    grep -q "refused reason=$2" "$H_DIR/coordinator.log" || h_fail "$1: refusal not logged"
    h_log "$1: $out"
}
check_refused malformed malformed
check_refused version version
check_refused unknown-type unknown_type
check_refused sender sender_mismatch
check_refused multipart malformed
check_refused oversized oversized
check_refused bad-token bad_token
h_healthz || h_fail "the coordinator is unhealthy after hostile input"
kill -0 "$H_COORD_PID" || h_fail "the coordinator died"
id=$(h_ctl agents -o json | jq -r '.[] | select(.node == "node-a") | .id')
before=$(h_sql "select count(*) from agent_messages where agent_id = '$id'")
grows() { (($(h_sql "select count(*) from agent_messages where agent_id = '$id'") > before)); }
h_wait "node-a still delivering" 15 grows
h_pass "hostile messages are refused, counted and logged; the coordinator carries on"

# ---- a key file others can read is refused ----
h_stop_agent node-a
chmod 644 "$H_DIR/agents/node-a/state/agent.key"
h_capture out rc timeout 20 "$VIGIL_BUILD/vigil-agent" -c "$H_DIR/agents/node-a/agent.yaml"
((rc != 0)) && grep -q "readable by group or others" <<<"$out" ||
    h_fail "an agent started with a world-readable key: exit $rc: $out"
h_pass "an agent refuses a key file readable by others"
