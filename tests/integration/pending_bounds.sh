#!/usr/bin/env bash
# What unknown keys leave behind is bounded: past enrollment.pending_max, a key without a valid
# token is refused (counted) instead of waiting; and an agent that stays pending longer than
# enrollment.pending_ttl is forgotten (audited), so keys nobody approves do not pile up.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
H_ENROLLMENT_YAML="  pending_max: 2
  pending_ttl: 4s" h_start_coordinator

pending() { h_ctl agents -o json | jq '[.[] | select(.state == "pending")] | length'; }
pending_is() { [[ $(pending) == "$1" ]]; }
H_NO_TOKEN=1 h_start_agent p1
H_NO_TOKEN=1 h_start_agent p2
h_wait "two agents pending" 20 pending_is 2
H_NO_TOKEN=1 h_start_agent p3
refused() { grep -q "too many agents are waiting for approval" "$H_DIR/agents/p3/agent.log"; }
h_wait "the third unknown key refused" 20 refused
[[ $(pending) == 2 ]] || h_fail "$(pending) agents pending, the bound is 2"
[[ $(h_metric 'vigil_messages_refused_total{reason="rate_limited"}') -ge 1 ]] ||
    h_fail "the refusal is not counted"
h_pass "past enrollment.pending_max, unknown keys are refused"

for a in p1 p2 p3; do h_stop_agent "$a"; done
h_wait "pending agents forgotten after enrollment.pending_ttl" 20 pending_is 0
[[ $(h_sql "select count(*) from audit_log where action = 'agent.forgotten'") == 2 ]] ||
    h_fail "forgetting is not audited: $(h_sql "select action, subject, detail from audit_log")"
[[ $(h_sql "select count(*) from agents where state = 'pending'") == 0 ]] || h_fail "pending rows remain"
h_pass "agents pending longer than enrollment.pending_ttl are forgotten, and it is audited"
