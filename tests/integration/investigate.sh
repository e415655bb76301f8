#!/usr/bin/env bash
# Automatic investigation: when an incident opens, its runbook's investigate entries are
# collected from the incident's node as collections linked to the incident — stored ones listed
# by `vigilctl incident show` (text and -o json) and verified in the vault, a refused one failed
# on the timeline with the agent's reason.
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
h_pass "incident opened -> host, processes stored in the vault and listed; the refused file failed on the timeline with the agent's reason"

h_pass "automatic investigation"
