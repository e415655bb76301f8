#!/usr/bin/env bash
# Issue 18: the status update rule and severity by hand, with paging to a real HTTP receiver.
#   1. `vigilctl update` goes to everyone paged and the severity's audiences at once, in the
#      operator's words (kind human_update), whether public or not.
#   2. An interval without a human update: the automatic update says none was given, and the
#      incident's owner (who acknowledged it) is reminded to post one (kind reminder).
#   3. A severity raised by hand while nobody responded moves the escalation to the new
#      severity's policy: its next level is paged on that policy's schedule, not the old one's.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_sink

PAGING="paging:
  contacts:
    - {name: alice, webhook: \"$SINK/alice\"}
    - {name: bob, webhook: \"$SINK/bob\"}
    - {name: admin, webhook: \"$SINK/admin\"}
    - {name: management, webhook: \"$SINK/management\"}
  policies:
    - name: slow
      levels:
        - {delay: 0s, targets: [\"contact:alice\"]}
        - {delay: 1h, targets: [\"contact:bob\"]}
    - name: fast
      levels:
        - {delay: 0s, targets: [\"contact:alice\"]}
        - {delay: 2s, targets: [\"contact:bob\"]}
  routing:
    SEV1: {policy: fast, also: [\"contact:management\"]}
    SEV2: {policy: slow, also: [\"contact:management\"]}
    SEV3: {policy: slow}
    SEV4: {policy: slow}
  status_update_interval: 4s
  notify: {attempts: 3, backoff: 200ms, max_backoff: 1s, timeout: 2s}"
h_start_coordinator "$PAGING"

# got PATH INCIDENT KIND: the payloads the sink received on PATH for the incident, of that kind
got() {
    jq -c --arg p "/$1" --argjson id "$2" --arg k "$3" 'select(.path == $p) | .body | fromjson
        | select(.incident_id == $id and .kind == $k)' "$SINK_LOG"
}
has() { [[ -n $(got "$@") ]]; }

# ---- 1. a human update reaches those paged and the audiences -------------------------------
ID=$(h_ctl -o json open --runbook application-down --severity SEV2 --title "Checkout errors" | jq -r .id)
h_wait "alice paged for incident $ID" 10 has alice "$ID" page
h_ctl ack "$ID" >/dev/null || h_fail "ack"
h_ctl update "$ID" "Found it: a bad release." --public >/dev/null || h_fail "update"
h_ctl update "$ID" "Rolled back the release; watching the error rate." >/dev/null || h_fail "update"
two() { [[ $(got alice "$ID" human_update | wc -l) == 2 ]]; }
h_wait "both updates reach alice" 5 two
h_wait "the update reaches the SEV2 audience" 5 has management "$ID" human_update
got alice "$ID" human_update | jq -se 'map(.update) | sort == ["Found it: a bad release. (by admin)",
    "Rolled back the release; watching the error rate. (by admin)"]' \
    >/dev/null || h_fail "the human updates' text: $(got alice "$ID" human_update)"
has bob "$ID" human_update && h_fail "bob was never paged but got the update"
h_pass "1. vigilctl update goes at once to those paged and the audiences, in the operator's words"

# ---- 2. an interval without one -------------------------------------------------------------
h_wait "the owner reminded" 12 has admin "$ID" reminder
got admin "$ID" reminder | sed -n 1p | jq -e --arg id "$ID" '.update | test("vigilctl update " + $id)' >/dev/null ||
    h_fail "the reminder: $(got admin "$ID" reminder)"
h_wait "the automatic update at the interval's end" 5 has alice "$ID" update
got alice "$ID" update | sed -n 1p | jq -e '.update == "no human update was given in the last 4 s"' >/dev/null ||
    h_fail "the automatic update: $(got alice "$ID" update)"
# The reminder came first, about a sixth of the interval (0.67 s) before the automatic update.
first_time() { jq -r --arg p "/$1" --argjson id "$2" --arg k "$3" 'select(.path == $p and
    (.body | fromjson | .incident_id == $id and .kind == $k)) | .time' "$SINK_LOG" | head -1; }
gap=$(awk -v a="$(first_time admin "$ID" reminder)" -v b="$(first_time alice "$ID" update)" \
    'BEGIN { printf "%.2f", b - a }')
awk -v g="$gap" 'BEGIN { exit !(g >= 0.3 && g <= 2.5) }' ||
    h_fail "the reminder should come ~0.67 s before the automatic update (gap $gap s)"
has alice "$ID" reminder && h_fail "the reminder went to alice, who is not the owner"
h_ctl -o json incident show "$ID" | jq -e 'any(.timeline[]; .kind == "status_update" and .actor == "vigil"
    and (.text | test("no human update was given")))' >/dev/null || h_fail "no timeline entry"
h_pass "2. no human update in the interval: the automatic update says so and the owner is reminded"

# ---- 3. severity by hand moves the escalation ------------------------------------------------
ID3=$(h_ctl -o json open --runbook application-down --severity SEV3 --title "Slow checkout" | jq -r .id)
h_wait "alice paged for incident $ID3" 10 has alice "$ID3" page
sleep 3
has bob "$ID3" page && h_fail "bob paged on the slow policy"
h_ctl severity "$ID3" SEV1 --note "every checkout fails now" >/dev/null || h_fail "severity up"
h_wait "bob paged at once on the SEV1 policy (its level 2 at 2 s is past)" 5 has bob "$ID3" page
[[ $(h_sql "select policy from escalations where incident_id = $ID3") == fast ]] ||
    h_fail "the escalation's policy: $(h_sql "select policy from escalations where incident_id = $ID3")"
h_ctl severity "$ID3" SEV2 --note "only some regions" >/dev/null || h_fail "severity down"
[[ $(h_sql "select policy from escalations where incident_id = $ID3") == slow ]] ||
    h_fail "the escalation did not follow the fall"
h_pass "3. a severity set by hand moves the escalation to its policy (next level on its schedule)"
