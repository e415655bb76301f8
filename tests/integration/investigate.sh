#!/usr/bin/env bash
# Automatic investigation: when an incident opens, its runbook's investigate entries are
# collected from the incident's node as collections linked to the incident — stored ones listed
# by `vigilctl incident show` (text and -o json) and verified in the vault, a refused one failed
# on the timeline with the agent's reason. Across nodes, a node that joins the incident later
# (here: the symptom reaches every node and its severity rises) is investigated too, once.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

RB=$H_DIR/runbooks
mkdir -p "$RB"
cat >"$RB/worker-down.yaml" <<'YAML'
id: worker-down
title: Worker down
severity: SEV3
reopen_window: 0s
symptoms:
  - {id: down, signal: proc.up, labels: {name: worker}, below: 1, scope: node}
investigate:
  - {kind: host}
  - {kind: processes}
  - {kind: file, args: {path: /etc/hostname}}
YAML
cat >"$RB/fleet-down.yaml" <<'YAML'
id: fleet-down
title: Fleet down
severity: SEV3
reopen_window: 0s
symptoms:
  - {id: down, signal: proc.up, labels: {name: fleet}, below: 1, scope: any, severity_all: SEV2}
investigate:
  - {kind: host}
YAML

worker="" fleet_b="" fleet_c=""
stop_worker() {
    local status=$?
    for p in $worker $fleet_b $fleet_c; do kill "$p" 2>/dev/null || true; done
    (exit "$status")
    h_cleanup
}
trap stop_worker EXIT
sleep 1000 &
worker=$!
echo "$worker" >"$H_DIR/worker.pid"
sleep 1000 &
fleet_b=$!
echo "$fleet_b" >"$H_DIR/fleet-b.pid"
sleep 1000 &
fleet_c=$!
echo "$fleet_c" >"$H_DIR/fleet-c.pid"

h_start_coordinator "runbooks:
  dir: \"$RB\""
# No evidence.allow_dirs on the node: the file entry is refused by the agent, with its reason.
h_start_agent node-a "collectors:
  processes:
    interval: 1s
    watch:
      - {name: worker, pidfile: \"$H_DIR/worker.pid\"}"
worker_up() {
    h_ctl signals -o json --node node-a --name proc.up |
        jq -e '[.[] | select(.labels.name == "worker")] | last | .value == 1' >/dev/null
}
h_wait "the agent sees the worker" 30 worker_up

kill "$worker"
worker=""
incident_id() { h_ctl incidents -o json | jq -r '[.[] | select(.runbook == "worker-down")] | last | .id // empty'; }
has_incident() { [[ -n $(incident_id) ]]; }
h_wait "worker-down incident" 20 has_incident
id=$(incident_id)

settled() {
    h_ctl incident show "$id" -o json |
        jq -e '.investigation | length == 3 and all(.[]; .status != "pending")' >/dev/null
}
h_wait "the investigation of incident $id settled" 60 settled
doc=$(h_ctl incident show "$id" -o json)
inv=$(jq -c '[.investigation[] | {kind, node, status}] | sort_by(.kind)' <<<"$doc")
[[ $inv == '[{"kind":"file","node":"node-a","status":"failed"},{"kind":"host","node":"node-a","status":"stored"},{"kind":"processes","node":"node-a","status":"stored"}]' ]] ||
    h_fail "investigation: $inv"
jq -e '.investigation[] | select(.kind == "host") | .sha256 | test("^[0-9a-f]{64}$")' <<<"$doc" >/dev/null ||
    h_fail "the host snapshot has no SHA-256: $doc"
h_ctl evidence verify >/dev/null || h_fail "the vault does not verify"
host_id=$(jq -r '.investigation[] | select(.kind == "host") | .id' <<<"$doc")
h_ctl evidence get "$host_id" --out "$H_DIR/host.json" >/dev/null || h_fail "evidence get $host_id"
[[ $(h_sql "SELECT count(*) FROM audit_log WHERE action = 'evidence.get'
    AND subject = 'evidence=$host_id' AND actor LIKE '%admin%'") == 1 ]] ||
    h_fail "fetching evidence $host_id is not one audit row: $(h_sql "SELECT actor, action, subject, detail FROM audit_log WHERE action LIKE 'evidence.%'")"
timeline=$(jq -r '.timeline[] | "\(.kind) \(.actor) \(.text)"' <<<"$doc")
for kind in host processes file; do
    grep -q "^note vigil investigating: $kind from node-a (collection [0-9]*)" <<<"$timeline" ||
        h_fail "no timeline note for the $kind collection: $timeline"
done
grep -q "^note vigil investigation: file from node-a failed: refused, no directory is allowed" <<<"$timeline" ||
    h_fail "the refused file collection is not on the timeline with its reason: $timeline"
text=$(h_ctl incident show "$id")
grep -q "^investigation" <<<"$text" && grep -q "processes" <<<"$text" ||
    h_fail "incident show does not list the investigation: $text"
report=$(h_ctl report "$id")
grep -q "^- host from node-a: evidence [0-9]*, [0-9]* bytes, SHA-256 [0-9a-f]\{64\}$" <<<"$report" &&
    grep -q "^- file from node-a: failed (refused" <<<"$report" ||
    h_fail "the report draft does not list the evidence: $report"
h_pass "incident opened -> host, processes stored in the vault and listed; the refused file failed on the timeline with the agent's reason"

# ---- across nodes: node-c joins after the incident opened on node-b
for n in b c; do
    h_start_agent "node-$n" "collectors:
  processes:
    interval: 1s
    watch:
      - {name: fleet, pidfile: \"$H_DIR/fleet-$n.pid\"}"
done
fleet_up() {
    h_ctl signals -o json --node "$1" --name proc.up |
        jq -e '[.[] | select(.labels.name == "fleet")] | last | .value == 1' >/dev/null
}
h_wait "node-b sees its fleet process" 30 fleet_up node-b
h_wait "node-c sees its fleet process" 30 fleet_up node-c
kill "$fleet_b"
fleet_b=""
fleet_incident() { h_ctl incidents -o json | jq -r '[.[] | select(.runbook == "fleet-down")] | last | .id // empty'; }
has_fleet() { [[ -n $(fleet_incident) ]]; }
h_wait "fleet-down incident" 20 has_fleet
fid=$(fleet_incident)
hosts() { h_ctl incident show "$fid" -o json | jq -r '[.investigation[] | select(.status == "stored") | .node] | sort | join(" ")'; }
only_b() { [[ $(hosts) == "node-b" ]]; }
h_wait "node-b investigated" 30 only_b
kill "$fleet_c"
fleet_c=""
both() { [[ $(hosts) == "node-b node-c" ]]; }
h_wait "node-c investigated once it joined" 30 both
[[ $(h_ctl incident show "$fid" -o json | jq '.investigation | length') == 2 ]] ||
    h_fail "a node was investigated twice: $(h_ctl incident show "$fid" -o json | jq -c '.investigation')"
h_pass "across nodes: the node that joined the open incident is investigated too, and the first not again"

h_pass "automatic investigation"
