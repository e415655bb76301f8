#!/usr/bin/env bash
# Follow-up actions (issue 18, the document's step 5) against a real coordinator and its store:
#   1. refusals: a viewer cannot add or finish one (but can list them); an unknown incident is
#      not found; a bad due date, an empty or multi-line text, a long owner are refused
#   2. added to two incidents: listed open across incidents, the overdue one first (a due date
#      in the past), then by due date, then newest; on the timeline as notes; audited
#   3. done: gone from the open list, in --all; done twice is a conflict; timeline and audit
#   4. the report draft lists them as checkboxes; an incident without any keeps the placeholder
#   5. the tables are append-only
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator

h_add_operator alice responder
h_add_operator vic viewer

open_incident() { h_ctl -o json open --runbook "$1" --severity SEV3 --title "$2" | jq -r .id; }
A=$(open_incident application-down "Checkout errors")
B=$(open_incident database-down "Orders database failover")
C=$(open_incident disk-full "Disk full on a build host")
[[ $A =~ ^[0-9]+$ && $B =~ ^[0-9]+$ && $C =~ ^[0-9]+$ ]] || h_fail "could not open incidents: $A $B $C"

# ---- 1. refusals ---------------------------------------------------------------------------
h_capture out rc h_as vic followup add "$A" "rotate the keys"
[[ $rc == 1 && $out == *"needs the responder role (you are viewer)"* ]] ||
    h_fail "a viewer added a follow-up: $rc $out"
h_capture out rc h_as vic followup done 1
[[ $rc == 1 && $out == *"needs the responder role (you are viewer)"* ]] ||
    h_fail "a viewer finished a follow-up: $rc $out"
h_capture out rc h_ctl followup add 999999 "rotate the keys"
[[ $rc == 1 && $out == *"incident 999999 not found"* ]] || h_fail "an unknown incident: $rc $out"
h_capture out rc h_ctl followup add "$A" "x" --due 2026-02-30
[[ $rc == 2 && $out == *"--due must be a calendar date YYYY-MM-DD"* ]] ||
    h_fail "an impossible due date was not refused: $rc $out"
h_capture out rc h_ctl followup add "$A" "x" --due tomorrow
[[ $rc == 2 && $out == *"--due must be"* ]] || h_fail "a due date in words was not refused: $rc $out"
h_capture out rc h_ctl followup add "$A" ""
[[ $rc == 2 ]] || h_fail "an empty text was not refused: $rc $out"
h_capture out rc h_ctl followup add "$A" $'two\nlines'
[[ $rc == 1 && $out == *"one line of UTF-8 text of at most 1024 bytes"* ]] ||
    h_fail "a multi-line text was not refused: $rc $out"
h_capture out rc h_ctl followup add "$A" "$(printf 'x%.0s' {1..1025})"
[[ $rc == 1 && $out == *"at most 1024 bytes"* ]] || h_fail "a 1025-byte text was not refused: $rc $out"
h_capture out rc h_ctl followup add "$A" "x" --owner "$(printf 'o%.0s' {1..65})"
[[ $rc == 1 && $out == *"--owner must be a name of 1 to 64 characters"* ]] ||
    h_fail "a 65-character owner was not refused: $rc $out"
h_capture out rc h_ctl followup add "$A" $'bad \xff byte'
[[ $rc == 1 ]] || h_fail "text that is not UTF-8 was not refused: $rc $out"
h_capture out rc h_ctl followup done 424242
[[ $rc == 1 && $out == *"follow-up 424242 not found"* ]] || h_fail "an unknown follow-up: $rc $out"
h_capture out rc h_ctl followup frobnicate 1
[[ $rc == 2 && $out == *"usage: vigilctl followup add"* ]] || h_fail "an unknown sub-command: $rc $out"
[[ $(h_sql "select count(*) from followups") == 0 ]] || h_fail "a refused follow-up was stored"
h_capture out rc h_as vic followups
[[ $rc == 0 && $out == "no open follow-ups" ]] || h_fail "a viewer cannot list follow-ups: $rc $out"
h_pass "refusals: viewer, unknown incident and follow-up, bad dates, texts and owners"

# ---- 2. add and list -----------------------------------------------------------------------
today=$(date -u +%F)
future=$(date -u -d '+30 days' +%F)
later=$(date -u -d '+60 days' +%F)
h_capture out rc h_as alice followup add "$A" "Add an alert on checkout 5xx" --owner alice --due "$future"
[[ $rc == 0 && $out =~ ^follow-up\ ([0-9]+)\ added\ to\ incident\ $A$ ]] || h_fail "add: $rc $out"
F1=${BASH_REMATCH[1]}
F2=$(h_as alice -o json followup add "$B" "Rehearse the failover" --owner "Zoë Ångström" \
    --due 2020-01-15 | jq -r '.[0].id') || h_fail "add with a past due date failed"
F3=$(h_ctl -o json followup add "$A" "Write the runbook's missing step" | jq -r '.[0].id')
F4=$(h_ctl -o json followup add "$B" "Review the replica lag alert" --due "$later" | jq -r '.[0].id')
[[ $F2 =~ ^[0-9]+$ && $F3 =~ ^[0-9]+$ && $F4 =~ ^[0-9]+$ ]] || h_fail "ids: $F2 $F3 $F4"

list=$(h_as vic -o json followups) || h_fail "followups -o json failed"
order=$(jq -c '[.[].id]' <<<"$list")
# overdue first (F2), then by due date (F1 before F4), then those without one (F3)
[[ $order == "[$F2,$F1,$F4,$F3]" ]] || h_fail "the order is not overdue first, then due date: $order (want $F2,$F1,$F4,$F3)"
jq -e --argjson id "$F2" --argjson b "$B" '.[0] | .id == $id and .incident_id == $b and .overdue
    and .due == "2020-01-15" and .owner == "Zoë Ångström" and .created_by == "alice"
    and .done == false and .done_by == null' <<<"$list" >/dev/null || h_fail "the overdue one: $list"
jq -e --arg d "$future" '.[1] | .overdue == false and .due == $d and .owner == "alice"
    and .text == "Add an alert on checkout 5xx"' <<<"$list" >/dev/null || h_fail "the open one: $list"
jq -e '.[3] | .due == null and .owner == null and .created_by == "admin"' <<<"$list" >/dev/null ||
    h_fail "one without owner or due date: $list"
table=$(h_ctl followups) || h_fail "followups failed"
head -1 <<<"$table" | grep -E '^ID +INCIDENT +STATE +DUE +OWNER +AGE +TEXT' >/dev/null || h_fail "table header: $table"
sed -n 2p <<<"$table" | grep -E "^$F2 +$B +OVERDUE +2020-01-15 +Zoë Ångström +[0-9]+s ago +Rehearse the failover" >/dev/null ||
    h_fail "the table's first row is not the overdue one: $table"

notes() { h_ctl incident show "$1" -o json | jq -r '.timeline[] | select(.kind == "note") | "\(.actor)|\(.text)"'; }
notes "$A" | grep -Fx "alice|follow-up $F1 added: Add an alert on checkout 5xx (owner alice, due $future)" >/dev/null ||
    h_fail "the timeline has no note of follow-up $F1: $(notes "$A")"
notes "$A" | grep -Fx "admin|follow-up $F3 added: Write the runbook's missing step" >/dev/null ||
    h_fail "the timeline has no note of follow-up $F3: $(notes "$A")"
notes "$B" | grep -Fx "alice|follow-up $F2 added: Rehearse the failover (owner Zoë Ångström, due 2020-01-15)" >/dev/null ||
    h_fail "the timeline has no note of follow-up $F2: $(notes "$B")"
[[ $(h_sql "select count(*) from audit_log where action = 'followup.add'") == 4 ]] ||
    h_fail "not every follow-up added is audited: $(h_sql "select * from audit_log where action like 'followup%'")"
[[ $(h_sql "select actor || '|' || subject || '|' || detail from audit_log where action = 'followup.add'
            and detail = 'follow-up $F1 (owner alice, due $future)'") == "operator:alice|incident $A|follow-up $F1 (owner alice, due $future)" ]] ||
    h_fail "the audit row of follow-up $F1: $(h_sql "select * from audit_log where action = 'followup.add'")"
h_pass "added to two incidents; listed overdue first, then by due date, then newest; timeline notes and audit rows"

# ---- 3. done -------------------------------------------------------------------------------
h_capture out rc h_as alice followup done "$F2" --note "rehearsed on staging"
[[ $rc == 0 && $out == "follow-up $F2 of incident $B done" ]] || h_fail "done: $rc $out"
h_capture out rc h_ctl followup done "$F2"
[[ $rc == 1 && $out == *"follow-up $F2 is done already"* ]] || h_fail "done twice was not refused: $rc $out"
[[ $(h_sql "select count(*) from followup_events where followup_id = $F2") == 1 ]] ||
    h_fail "done twice left two rows"
[[ $(h_ctl -o json followups | jq -c '[.[].id]') == "[$F1,$F4,$F3]" ]] ||
    h_fail "a done follow-up is still listed as open: $(h_ctl -o json followups)"
all=$(h_ctl -o json followups --all)
jq -e --argjson id "$F2" '.[-1] | .id == $id and .done and .done_by == "alice" and .overdue == false
    and .done_note == "rehearsed on staging" and (.done_at | type) == "string"' <<<"$all" >/dev/null ||
    h_fail "--all does not list the done one last: $all"
h_ctl followups --all | grep -E "^$F2 +$B +done \(alice\) " >/dev/null || h_fail "the table's done row: $(h_ctl followups --all)"
notes "$B" | grep -Fx "alice|follow-up $F2 done by alice: rehearsed on staging" >/dev/null ||
    h_fail "the timeline has no note of the done follow-up: $(notes "$B")"
[[ $(h_sql "select count(*) from audit_log where action = 'followup.done' and actor = 'operator:alice'
            and subject = 'incident $B' and detail = 'follow-up $F2'") == 1 ]] ||
    h_fail "done is not audited once: $(h_sql "select * from audit_log where action = 'followup.done'")"
h_ctl followup done "$F3" >/dev/null || h_fail "done of $F3 failed"
h_pass "done: listed with --all only, done twice refused, timeline note and audit row"

# ---- 4. the report draft -------------------------------------------------------------------
h_ctl resolve "$A" --note "rolled back" >/dev/null || h_fail "resolve failed"
report=$(h_ctl report "$A") || h_fail "report failed"
section=$(sed -n '/^## Follow-up Actions$/,$p' <<<"$report")
expected="## Follow-up Actions
- [ ] Add an alert on checkout 5xx (owner alice, due $future)
- [x] Write the runbook's missing step (done by admin on $today)"
[[ $section == "$expected" ]] || h_fail "the report's follow-ups: got
$section
want
$expected"
report=$(h_ctl report "$B") || h_fail "report failed"
grep -Fxq -- "- [x] Rehearse the failover (done by alice on $today)" <<<"$report" ||
    h_fail "the report of $B: $report"
grep -Fxq -- "- [ ] Review the replica lag alert (due $later)" <<<"$report" ||
    h_fail "the report of $B: $report"
report=$(h_ctl report "$C") || h_fail "report failed"
[[ $(sed -n '/^## Follow-up Actions$/,$p' <<<"$report") == $'## Follow-up Actions\n- [ ] Action item 1' ]] ||
    h_fail "an incident without follow-ups lost the placeholder: $report"
# a resolved incident still takes follow-ups: that is when most are written
h_ctl followup add "$A" "Share the report" --owner bob >/dev/null || h_fail "add to a resolved incident"
h_pass "the report draft lists the follow-ups as checkboxes; the placeholder only when there are none"

# ---- 5. append-only ------------------------------------------------------------------------
for sql in "update followups set text = 'x'" "delete from followups" "truncate followups cascade" \
    "update followup_events set note = 'x'" "delete from followup_events"; do
    h_capture out rc h_sql "$sql"
    [[ $rc != 0 && $out == *"append-only"* ]] || h_fail "'$sql' was not refused: $rc $out"
done
h_pass "follow-ups and their events are append-only"
