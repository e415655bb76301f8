#!/usr/bin/env bash
# The shipped node-lost runbook (issue 17) with real processes: three real agents and fleets of
# simulated ones (vigil-sim, whose batches carry the agents' heartbeat signal agent.uptime_s).
# It used to be that a dead node raised nothing.
#   1. a coordinator restart while the agents are slow to come back (stopped with SIGSTOP past
#      the liveness timeout, then continued): nothing opens, thanks to runbooks.absence_grace
#   2. one simulated agent stops: one SEV3 node-lost incident for its node, no fleet incident
#   3. most of the fleet stops at once: one SEV1 incident across nodes, naming them
# The runbook's absence and verify holds are shortened (1m -> 5s, 2m -> 2s); the rest is as shipped.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

SIM_PID=""
on_exit() {
    local status=$?
    set +e
    [[ -n $SIM_PID ]] && kill "$SIM_PID" 2>/dev/null
    for name in node-a node-b node-c; do
        [[ -n ${H_AGENT_PIDS[$name]:-} ]] && kill -CONT "${H_AGENT_PIDS[$name]}" 2>/dev/null
    done
    (exit "$status")
    h_cleanup
}
trap on_exit EXIT

RB=$H_DIR/runbooks
mkdir -p "$RB"
sed -e 's/for: 1m}/for: 5s}/' -e 's/hold: 2m}/hold: 2s}/' "$VIGIL_SRC/runbooks/node-lost.yaml" >"$RB/node-lost.yaml"
grep -q 'for: 5s}' "$RB/node-lost.yaml" && grep -q 'fraction: 0.3' "$RB/node-lost.yaml" ||
    h_fail "node-lost.yaml was not shortened: the shipped runbook changed shape"

CONFIG="runbooks:
  dir: \"$RB\"
  absence_grace: 8s"
h_start_coordinator "$CONFIG"

lost_incidents() { h_ctl incidents --status all -o json | jq -c '[.[] | select(.runbook == "node-lost")]'; }
count_lost() { lost_incidents | jq length; }

# ---- 1. a restart is not a fleet-wide outage --------------------------------------------------
for name in node-a node-b node-c; do h_start_agent "$name"; done
active3() { [[ $(h_ctl agents -o json | jq '[.[] | select(.state == "active")] | length') == 3 ]]; }
h_wait "three agents active" 30 active3
sleep 2
[[ $(count_lost) == 0 ]] || h_fail "node-lost before anything happened: $(lost_incidents)"
h_kill_coordinator
for name in node-a node-b node-c; do kill -STOP "${H_AGENT_PIDS[$name]}"; done
h_start_coordinator "$CONFIG"
# Past the liveness timeout (3 heartbeats of 1 s): the coordinator marks them lost.
lost3() { (($(grep -c 'state=lost previous=active' "$H_DIR/coordinator.log") >= 3)); }
h_wait "the stopped agents marked lost after the restart" 10 lost3
for name in node-a node-b node-c; do kill -CONT "${H_AGENT_PIDS[$name]}"; done
h_wait "three agents active again" 15 active3
sleep 8 # past the grace: a late incident would show now
[[ $(count_lost) == 0 ]] || h_fail "a coordinator restart opened node-lost incidents: $(lost_incidents)"
h_pass "1. coordinator restarted while its agents were stopped past the liveness timeout: no node-lost incident"

# ---- 2. one agent stops: SEV3 for its node -------------------------------------------------------
# Started directly, not through h_sim: its pid must be vigil-sim's own, to stop it below.
"$VIGIL_BUILD/vigil-sim" ingest --endpoint "tcp://127.0.0.1:$H_PORT_AGENTS" --server-key "$H_COORD_PUB" \
    --secret-file "$H_DIR/enrollment.secret" --agents 9 --seconds 600 \
    --signals-per-message 5 --window 1 --node-prefix fleet >"$H_DIR/fleet.out" 2>&1 &
SIM_PID=$!
active12() { [[ $(h_ctl agents -o json | jq '[.[] | select(.state == "active")] | length') == 12 ]]; }
h_wait "the simulated fleet active" 30 active12
t0=$(date +%s.%N)
h_sim ingest --secret-file "$H_DIR/enrollment.secret" --agents 1 --seconds 2 \
    --signals-per-message 5 --window 1 --node-prefix solo >"$H_DIR/solo.out" 2>&1 ||
    h_fail "vigil-sim solo: $(cat "$H_DIR/solo.out")"
solo_open() { lost_incidents | jq -e 'any(.[]; .scope == ["solo-0"])' >/dev/null; }
h_wait "a node-lost incident for solo-0" 20 solo_open
took=$(awk -v t="$t0" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - t }')
lost_incidents | jq -e 'length == 1 and .[0].severity == "SEV3" and .[0].state == "detected"' >/dev/null ||
    h_fail "one SEV3 incident expected: $(lost_incidents)"
solo=$(lost_incidents | jq '.[0].id')
h_ctl incident show "$solo" -o json | jq -e '.timeline[0].kind == "opened"' >/dev/null ||
    h_fail "incident $solo: $(h_ctl incident show "$solo" -o json)"
sleep 2
[[ $(count_lost) == 1 ]] || h_fail "one lost node of 13 is no fleet outage: $(lost_incidents)"
h_pass "2. one agent of 13 stopped: SEV3 node-lost incident $solo for solo-0 (${took}s after it started), nothing else"

# ---- 3. most of the fleet stops: SEV1 across nodes ------------------------------------------------
kill "$SIM_PID"
wait "$SIM_PID" 2>/dev/null || true
SIM_PID=""
fleet_open() { lost_incidents | jq -e 'any(.[]; .severity == "SEV1")' >/dev/null; }
h_wait "a SEV1 node-lost incident across nodes" 20 fleet_open
fleet=$(lost_incidents | jq -c '[.[] | select(.severity == "SEV1")]')
jq -e 'length == 1 and (.[0].scope | length) >= 9 and all(.[0].scope[]; test("^(fleet-[0-8]|solo-0)$"))' <<<"$fleet" >/dev/null ||
    h_fail "one SEV1 incident naming the lost fleet expected: $fleet"
per_node() { [[ $(lost_incidents | jq '[.[] | select(.severity == "SEV3")] | length') == 10 ]]; }
h_wait "a SEV3 per lost node as well" 10 per_node
lost_incidents | jq -e 'all(.[]; (.scope | any(. == "node-a" or . == "node-b" or . == "node-c")) | not)' >/dev/null ||
    h_fail "the live agents are not lost: $(lost_incidents)"
h_pass "3. 9 of 13 agents stopped at once: SEV1 incident $(jq '.[0].id' <<<"$fleet") across $(jq '.[0].scope | length' <<<"$fleet") nodes, and a SEV3 per node"
