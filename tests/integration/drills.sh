#!/usr/bin/env bash
# Practice drills (issue 17) end to end: vigilctl drill against a real coordinator with the
# shipped runbooks and the HTTP sink (tests/tools/http_sink.py) standing for three people:
# alice (the drill audience), oncall (the runbooks' real policies) and boss (the SEV2 audience).
#   1. refusals: a viewer cannot drill, a responder cannot drill live, an unknown runbook is
#      named with the ones in force
#   2. a drill pages alice only, marked [DRILL]; oncall and boss hear nothing; no command is
#      requested of any agent (the steps are a dry run on the timeline); a silence does not hold
#      it back
#   3. alice acknowledges, the admin resolves: the report draft has the drill's section with
#      alice's time to acknowledge and to resolve
#   4. a live drill (admin) pages the real policy and tells the audience, still marked [DRILL]
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_sink

h_start_coordinator "runbooks:
  dir: \"$VIGIL_SRC/runbooks\"
paging:
  contacts:
    - {name: alice, webhook: \"$SINK/alice\"}
    - {name: oncall, webhook: \"$SINK/oncall\"}
    - {name: boss, webhook: \"$SINK/boss\"}
  policies:
    - name: default
      levels:
        - {delay: 0s, targets: [\"contact:oncall\"]}
    - name: security
      levels:
        - {delay: 0s, targets: [\"contact:oncall\"]}
  routing:
    SEV2: {also: [\"contact:boss\"]}
  drills:
    audience: [\"contact:alice\"]
  notify: {attempts: 2, backoff: 200ms, max_backoff: 1s, timeout: 2s}"

h_add_operator alice responder
h_add_operator vic viewer

# messages PATH ID: the JSON messages the sink got at PATH about incident ID
messages() { jq -s -c --arg p "/$1" --argjson id "$2" \
    '[.[] | select(.path == $p) | .body | fromjson | select(.incident_id == $id)]' "$SINK_LOG"; }
count() { messages "$1" "$2" | jq length; }
paged() { [[ $(messages "$1" "$2" | jq '[.[] | select(.kind == "page")] | length') -ge 1 ]]; }

# ---- 1. refusals ---------------------------------------------------------------------------
h_capture out rc h_as vic drill security-incident
[[ $rc == 1 && $out == *"responder"* ]] || h_fail "a viewer started a drill: $rc $out"
h_capture out rc h_as alice drill security-incident --live
[[ $rc == 1 && $out == *"admin role"* ]] || h_fail "a responder started a live drill: $rc $out"
h_capture out rc h_ctl drill no-such-runbook
[[ $rc == 1 && $out == *"no runbook no-such-runbook in force"* && $out == *"security-incident"* ]] ||
    h_fail "an unknown runbook was not refused with the ones in force: $rc $out"
h_capture out rc h_ctl drill security-incident --severity SEV9
[[ $rc == 2 && $out == *"--severity must be"* ]] || h_fail "a bad severity was not refused: $rc $out"
[[ $(h_sql "select count(*) from incidents") == 0 ]] || h_fail "a refused drill opened an incident"
h_pass "refusals: a viewer, a responder's live drill, an unknown runbook, a bad severity"

# ---- 2. a drill reaches the drill audience only ----------------------------------------------
# A silence of the runbook holds real pages back, never a drill's.
h_ctl silence --runbook security-incident --for 1h --reason "maintenance" >/dev/null ||
    h_fail "silence failed"
h_capture out rc h_as alice drill security-incident --node web-1 -o json
[[ $rc == 0 ]] || h_fail "drill failed: $rc $out"
id=$(jq -r .id <<<"$out")
[[ $(jq -r .title <<<"$out") == "Drill: Security incident" ]] || h_fail "drill title: $out"
h_wait "alice paged for drill $id" 15 paged alice "$id"
subject=$(messages alice "$id" | jq -r '[.[] | select(.kind == "page")][0].subject')
[[ $subject == "[DRILL] [SEV2] Drill: Security incident (incident $id) needs you"* ]] ||
    h_fail "the drill's page is not marked [DRILL]: $subject"
[[ $(messages alice "$id" | jq '[.[] | select(.kind == "page")][0].drill') == true ]] ||
    h_fail "the page's payload does not say drill: true"
body=$(messages alice "$id" | jq -r '[.[] | select(.kind == "page")][0].body')
[[ $body == "DRILL: a practice run"* ]] || h_fail "the page's body does not start with DRILL: $body"
step_notes() { h_ctl incident show "$id" -o json |
    jq '[.timeline[] | select(.kind == "note" and (.text | startswith("drill: runbook step")))] | length'; }
# block-source-ips, block-ingress-cidr, reset-user-sessions, set-log-level, isolate-pod,
# notify-security-team
steps_noted() { [[ $(step_notes) == 6 ]]; }
h_wait "the six resolve steps on the timeline as a dry run" 10 steps_noted
h_ctl incident show "$id" -o json |
    jq -e 'any(.timeline[]; .text | startswith("drill: synthetic symptom failed-logins (signal log.failed_logins) on web-1"))' \
        >/dev/null || h_fail "the synthetic symptom is not on the timeline"
sleep 2 # the escalation pass that paged alice would have paged the others in the same pass
[[ $(count oncall "$id") == 0 && $(count boss "$id") == 0 ]] ||
    h_fail "a drill reached the real policy or the audience: oncall $(count oncall "$id"), boss $(count boss "$id")"
[[ $(h_sql "select count(*) from command_requests where incident_id = $id") == 0 ]] ||
    h_fail "a drill requested a command"
[[ $(h_sql "select count(*) from audit_log where action = 'drill.start'") == 1 ]] ||
    h_fail "the drill is not audited"
h_capture out rc h_as alice update "$id" "all good" --public
[[ $rc == 1 && $out == *"is a drill: it is never on the status page"* ]] ||
    h_fail "a drill was published on the status page: $rc $out"
h_pass "a drill pages the drill audience only, marked [DRILL]; its steps are a dry run; a silence does not hold it; it is never public"

# ---- 3. acknowledged and resolved: the report times alice ----------------------------------
sleep 1
h_as alice ack "$id" >/dev/null || h_fail "alice could not acknowledge the drill"
sleep 1
h_ctl resolve "$id" --note "drill over" >/dev/null || h_fail "resolve failed"
report=$(h_ctl report "$id") || h_fail "report failed"
[[ $report == *"## Drill"* && $report == *"An audience-only drill of runbook security-incident, started by alice"* ]] ||
    h_fail "the report has no drill section: $report"
grep -Eq '^- alice: paged [0-9-]+ [0-9:]+ UTC; time to acknowledge [0-9]+s; time to resolve [0-9]+s$' <<<"$report" ||
    h_fail "the report does not time alice: $report"
grep -Eq '^- Acknowledged by alice [0-9]+s after the drill started\.$' <<<"$report" ||
    h_fail "the report does not say who acknowledged: $report"
grep -Eq '^- Resolved by admin [0-9]+s after the drill started \([0-9]+s after the acknowledgement\)\.$' <<<"$report" ||
    h_fail "the report does not say who resolved: $report"
h_pass "the drill's report times alice's acknowledgement and the resolution"

# ---- 4. a live drill pages the real policy -------------------------------------------------
h_capture out rc h_ctl drill security-incident --live -o json
[[ $rc == 0 ]] || h_fail "live drill failed: $rc $out"
live=$(jq -r .id <<<"$out")
h_wait "oncall paged for live drill $live" 15 paged oncall "$live"
told_boss() { [[ $(count boss "$live") -ge 1 ]]; }
h_wait "boss told of live drill $live" 15 told_boss
for who in oncall boss; do
    [[ $(messages "$who" "$live" | jq '[.[] | select((.subject | startswith("[DRILL] ")) | not)] | length') == 0 ]] ||
        h_fail "a live drill's message to $who is not marked [DRILL]"
done
[[ $(count alice "$live") == 0 ]] || h_fail "a live drill paged the drill audience instead"
h_pass "a live drill pages the real policy and tells the audience, marked [DRILL]"
h_pass "drills"
