#!/usr/bin/env bash
# Incidents through vigilctl end to end, with the symptoms fed directly: incident-inject calls
# the incident layer's C API (what the rule engine calls) against the coordinator's database, so
# the test needs no agent or fault (lifecycle.sh drives the rule engine with a real one);
# everything after that is the operator's view: list, show with the timeline, acknowledge
# (refused to a viewer), resolve (note required), and the exit status of an unknown id.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator

pg_conninfo() {
    local sock
    sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
    [[ -d $H_DIR/coord/pgsock ]] && sock=$H_DIR/coord/pgsock
    echo "host=$sock port=5432 user=vigil dbname=vigil"
}
inject() { "$VIGIL_BUILD/incident-inject" "$(pg_conninfo)" "$@"; }

# ---- a critical symptom opens an incident; the same fingerprint joins it ---------------------
read -r id outcome < <(inject application-down:web application-down 2 critical "Application down" web-1 web-2) ||
    h_fail "incident-inject failed"
[[ $outcome == opened && $id -gt 0 ]] || h_fail "expected a new incident, got: $id $outcome"
read -r id2 outcome < <(inject application-down:web application-down 1 critical "Application down" web-3) || h_fail "incident-inject failed"
[[ $id2 == "$id" && $outcome == updated ]] || h_fail "the same fingerprint should join $id: $id2 $outcome"
h_pass "a symptom opens an incident, the same fingerprint joins it"

json=$(h_ctl incidents -o json) || h_fail "vigilctl incidents failed"
jq -e --argjson id "$id" '[.[] | select(.id == $id)] | length == 1' <<<"$json" >/dev/null ||
    h_fail "incident $id is not listed: $json"
jq -e --argjson id "$id" '.[] | select(.id == $id) |
    .runbook == "application-down" and .severity == "SEV1" and .state == "detected" and
    .title == "Application down" and (.opened_at | test("Z$")) and (.response_due | test("Z$")) and
    .scope == ["web-1", "web-2", "web-3"]' <<<"$json" >/dev/null ||
    h_fail "incident $id listed wrongly: $json"
table=$(h_ctl incidents) || h_fail "vigilctl incidents (table) failed"
head -1 <<<"$table" | grep -E '^ID +SEV +STATE +TITLE +SCOPE +OPENED +AGE +DUE' >/dev/null ||
    h_fail "unexpected table header: $table"
grep -Eq "^$id +SEV1 +detected +Application down +web-1,web-2,web-3 " <<<"$table" ||
    h_fail "incident row missing from the table: $table"
h_pass "incidents lists it with severity raised to SEV1, in JSON and as a table"

# ---- a viewer may look, not acknowledge ------------------------------------------------------
"$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/viewer.key" >/dev/null
h_sql "INSERT INTO operators (id, name, public_key, role)
       VALUES ('op-viewer', 'vera', '$(h_key_public "$H_DIR/viewer.key")', 'viewer')" >/dev/null
h_stop_coordinator # operators are loaded at start-up
h_start_coordinator
h_write_ctl_config "$H_DIR/viewer.yaml" "$H_DIR/viewer.key"
viewer() { VIGIL_CONFIG="$H_DIR/viewer.yaml" "$VIGIL_BUILD/vigilctl" "$@"; }
viewer incidents -o json | jq -e --argjson id "$id" 'any(.id == $id)' >/dev/null ||
    h_fail "a viewer should list incidents"
viewer incident show "$id" >/dev/null || h_fail "a viewer should see an incident"
h_capture out status viewer ack "$id"
[[ $status == 1 ]] || h_fail "a viewer's ack should fail with status 1, got $status: $out"
grep -q "permission denied: acknowledging incidents needs the responder role (you are viewer)" <<<"$out" ||
    h_fail "unexpected refusal: $out"
h_pass "a viewer lists and shows incidents; acknowledging is forbidden"

# ---- ack and resolve as admin ---------------------------------------------------------------
h_ctl ack "$id" --note "on it" -o json | jq -e '.state == "acknowledged" and .acknowledged_at != null' >/dev/null ||
    h_fail "ack did not acknowledge $id"
h_capture out status h_ctl ack "$id"
[[ $status == 1 && $out == *"already acknowledged"* ]] || h_fail "a second ack: $status $out"
h_capture out status h_ctl resolve "$id"
[[ $status == 2 && $out == *"--note"* ]] || h_fail "resolve without a note: $status $out"
h_ctl resolve "$id" --note "restarted the app servers" | grep -x "incident $id resolved" >/dev/null ||
    h_fail "resolve did not say so"
h_ctl incidents -o json | jq -e --argjson id "$id" 'all(.id != $id)' >/dev/null ||
    h_fail "a resolved incident is still listed as open"
h_ctl incidents --status all -o json |
    jq -e --argjson id "$id" 'any(.id == $id and .state == "resolved")' >/dev/null ||
    h_fail "--status all should list the resolved incident"
h_pass "ack and resolve move the incident; resolve needs a note"

# ---- the timeline, in order -----------------------------------------------------------------
show=$(h_ctl incident show "$id" -o json) || h_fail "incident show failed"
jq -e '[.timeline[].kind] == ["opened", "symptom", "severity", "acknowledged", "resolved"]' \
    <<<"$show" >/dev/null || h_fail "unexpected timeline: $show"
jq -e '.timeline[3].actor != "vigil" and .timeline[3].text == "on it" and
       .timeline[4].text == "restarted the app servers" and .timeline[0].actor == "vigil" and
       .timeline[2].data.from == "SEV2" and .timeline[2].data.to == "SEV1" and
       ([.timeline[].id] | . == sort)' <<<"$show" >/dev/null || h_fail "timeline details wrong: $show"
h_ctl incident show "$id" | grep -E '^ +severity +SEV1$' >/dev/null || h_fail "incident show (text) lacks the severity"
h_pass "incident show has the timeline in order, with actors and notes"

# ---- a returning symptom reopens the same incident ------------------------------------------
read -r id3 outcome < <(inject application-down:web application-down 2 critical "Application down" web-1) || h_fail "incident-inject failed"
[[ $id3 == "$id" && $outcome == reopened ]] || h_fail "expected $id reopened, got: $id3 $outcome"
h_ctl incident show "$id" -o json | jq -e '.state == "detected" and any(.timeline[]; .kind == "reopened")' >/dev/null ||
    h_fail "the reopened incident's state or timeline is wrong"
h_pass "a symptom returning soon after the resolve reopens the same incident"

# ---- unknown ids and bad input --------------------------------------------------------------
for cmd in "incident show 999999" "ack 999999" "resolve 999999 --note x"; do
    # shellcheck disable=SC2086 # the words are the command line
    h_capture out status h_ctl $cmd
    [[ $status == 1 && $out == "vigilctl: incident 999999 not found" ]] ||
        h_fail "$cmd: expected 'not found' and status 1, got $status: $out"
done
h_capture out status h_ctl ack abc
[[ $status == 2 && $out == *"not an incident id"* ]] || h_fail "ack abc: $status $out"
h_pass "unknown ids are 'not found' (status 1), malformed ones a usage error (status 2)"

kill -0 "$H_COORD_PID" || h_fail "the coordinator died"
