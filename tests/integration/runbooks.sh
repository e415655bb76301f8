#!/usr/bin/env bash
# Runbooks wired into the coordinator: the shipped six plus a small test runbook load at
# start; a watched process that dies becomes a critical symptom event within 5 s (logged and
# counted); a broken runbook on SIGHUP is refused with file:line:col, counted, and the last
# good set keeps running; `vigil-coordinator -n` refuses the broken directory with exit 78.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

RB=$H_DIR/runbooks
mkdir -p "$RB"
cp "$VIGIL_SRC"/runbooks/*.yaml "$RB"/
cat >"$RB/test-worker.yaml" <<'YAML'
id: test-worker
title: Test worker down
doc: "docs/runbook-format.md"
severity: SEV3
symptoms:
  - id: worker-down
    signal: proc.up
    labels: {name: worker}
    below: 1
    for: 0s
    scope: node
  - id: node-silent
    absent: {signal: agent.uptime_s, for: 1h}
YAML
shipped=$(find "$VIGIL_SRC/runbooks" -maxdepth 1 -name "*.yaml" | wc -l)
expected=$((shipped + 1))

# The watched process, stopped with the test whatever happens.
worker=""
stop_worker() {
    local status=$?
    [[ -z $worker ]] || kill "$worker" 2>/dev/null || true
    (exit "$status")
    h_cleanup
}
trap stop_worker EXIT
sleep 1000 &
worker=$!
echo "$worker" >"$H_DIR/worker.pid"

# No start-up grace for absence (runbooks.absence_grace, 2m by default): this test loses an
# agent on purpose within its first minute.
h_start_coordinator "runbooks:
  dir: \"$RB\"
  absence_grace: 0s"
grep -q "runbooks: $expected loaded from $RB" "$H_DIR/coordinator.log" ||
    h_fail "the coordinator should log \"runbooks: $expected loaded from $RB\""
[[ $(h_metric vigil_runbooks_loaded) == "$expected" ]] ||
    h_fail "vigil_runbooks_loaded is $(h_metric vigil_runbooks_loaded), not $expected"
out=$("$VIGIL_BUILD/vigil-coordinator" -n -c "$H_DIR/coordinator.yaml" 2>&1) ||
    h_fail "-n refuses the good set: $out"
grep -q "runbooks: $expected loaded from $RB" <<<"$out" || h_fail "-n does not report the set: $out"
h_pass "$expected runbooks loaded at start and by -n"

agent_yaml="collectors:
  processes:
    interval: 1s
    watch:
      - {name: worker, pidfile: \"$H_DIR/worker.pid\"}"
h_start_agent node-a "$agent_yaml"

# ---- the worker dies: a critical symptom event within 5 s, logged and counted ----
FP=test-worker/worker-down/node-a
worker_up() {
    h_ctl signals -o json --node node-a |
        jq -e '[.[] | select(.name == "proc.up" and .labels == {"name":"worker"} and .value == 1)] | length == 1' >/dev/null
}
h_wait "proc.up{name=worker} = 1 stored" 40 worker_up
before=$(h_metric 'vigil_symptom_events_total{state="critical"}')
grep -q "fingerprint=$FP " "$H_DIR/coordinator.log" && h_fail "a live worker should raise no event for $FP"
kill "$worker"
wait "$worker" 2>/dev/null || true
worker=""
t0=$(date +%s.%N)
event_logged() { grep -q "symptom runbook=test-worker symptom=worker-down fingerprint=$FP state=critical .*severity=SEV3" "$H_DIR/coordinator.log"; }
h_wait "the critical symptom event for $FP" 5 event_logged
elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
grep "fingerprint=$FP " "$H_DIR/coordinator.log" | grep 'reason="[^"]' >/dev/null ||
    h_fail "the event line has no reason"
after=$(h_metric 'vigil_symptom_events_total{state="critical"}')
((after > before)) || h_fail "vigil_symptom_events_total{state=critical} did not increase ($before -> $after)"
h_log "$(grep -m1 "fingerprint=$FP " "$H_DIR/coordinator.log")"
h_pass "killed worker -> critical symptom event ${elapsed}s later; counter $before -> $after"

# ---- ... and that critical symptom is an incident, with the runbook's severity ----
incident_open() {
    h_ctl incidents -o json | jq -e --arg fp "$FP" \
        '[.[] | select(.runbook == "test-worker" and .severity == "SEV3" and .state == "detected")] | length == 1' >/dev/null
}
h_wait "an open test-worker incident" 5 incident_open
id=$(h_ctl incidents -o json | jq -r '[.[] | select(.runbook == "test-worker")][0].id')
h_ctl incident show "$id" -o json | jq -e '[.timeline[].kind] | index("opened") != null' >/dev/null ||
    h_fail "incident $id has no opened event: $(h_ctl incident show "$id" -o json)"
grep -q "incident opened id=$id runbook=test-worker severity=SEV3" "$H_DIR/coordinator.log" ||
    h_fail "the opened incident is not logged"
h_pass "the critical symptom opened incident $id (SEV3) with its timeline"

# ---- the agent goes away: lost is the node down, so its absence symptom fires at once ----
SILENT=test-worker/node-silent/node-a
h_stop_agent node-a
silent_is() { grep -q "symptom runbook=test-worker symptom=node-silent fingerprint=$SILENT state=$1 " "$H_DIR/coordinator.log"; }
h_wait "the agent marked lost" 10 grep -q "node=node-a state=lost" "$H_DIR/coordinator.log"
h_wait "node-silent critical once node-a is lost" 3 silent_is critical
h_start_agent node-a "$agent_yaml"
h_wait "node-silent back to ok once node-a is heard from again" 20 silent_is ok
h_pass "agent lost -> node down -> absence critical; back -> ok"

# ---- a broken runbook on SIGHUP: refused with its position, the last good set stays ----
cat >"$RB/zz-broken.yaml" <<'YAML'
id: broken
title: Broken
severity: SEV3
symptoms:
  - id: nonsense
    signal: no.such.signal
    above: 1
YAML
failures=$(h_metric vigil_runbook_reload_failures_total)
kill -HUP "$H_COORD_PID"
reload_refused() { grep -qE "runbooks not reloaded.*zz-broken\.yaml:[0-9]+:[0-9]+: " "$H_DIR/coordinator.log"; }
h_wait "the reload error with file:line:col" 10 reload_refused
h_log "$(grep -m1 "runbooks not reloaded" "$H_DIR/coordinator.log")"
[[ $(h_metric vigil_runbook_reload_failures_total) == $((failures + 1)) ]] ||
    h_fail "vigil_runbook_reload_failures_total is $(h_metric vigil_runbook_reload_failures_total), not $((failures + 1))"
h_healthz || h_fail "the coordinator is not healthy after a refused reload"
kill -0 "$H_COORD_PID" || h_fail "the coordinator exited on a refused reload"
[[ $(h_metric vigil_runbooks_loaded) == "$expected" ]] ||
    h_fail "vigil_runbooks_loaded changed to $(h_metric vigil_runbooks_loaded) after a refused reload"
h_capture out code "$VIGIL_BUILD/vigil-coordinator" -n -c "$H_DIR/coordinator.yaml"
[[ $code == 78 ]] || h_fail "-n with a broken runbook exited $code, not 78: $out"
grep -qE "zz-broken\.yaml:[0-9]+:[0-9]+: " <<<"$out" || h_fail "-n does not name the broken file with its position: $out"
h_pass "broken runbook refused on SIGHUP (counted, healthy, set kept) and by -n (exit 78)"

# ---- fixed: the next SIGHUP swaps the new set in ----
rm "$RB/zz-broken.yaml"
cat >"$RB/zz-extra.yaml" <<'YAML'
id: extra
title: Extra
severity: SEV4
symptoms:
  - id: hot
    signal: host.cpu.busy_pct
    above: 99.9
    for: 1h
YAML
kill -HUP "$H_COORD_PID"
reloaded() { grep -q "runbooks reloaded: $((expected + 1))" "$H_DIR/coordinator.log"; }
h_wait "runbooks reloaded: $((expected + 1))" 10 reloaded
[[ $(h_metric vigil_runbooks_loaded) == $((expected + 1)) ]] ||
    h_fail "vigil_runbooks_loaded is $(h_metric vigil_runbooks_loaded) after the reload, not $((expected + 1))"
h_healthz || h_fail "the coordinator is not healthy after the reload"
h_pass "runbooks wired into the coordinator"
