#!/usr/bin/env bash
# Silences (issue 17) end to end: vigilctl silence / silences / silence end against a real
# coordinator, incidents fed through incident-inject (the incident layer's C API, as
# escalation.sh does), and the HTTP sink (tests/tools/http_sink.py) standing for the on-call.
#   1. hostile or incomplete requests are refused with the reason
#   2. a runbook silence: its incidents open and are on the timeline, nobody is paged; other
#      runbooks page as before; audited
#   3. a node silence holds back that node's incidents only
#   4. it expires on time: the unacknowledged incident is paged within seconds of the end, and a
#      new incident of the runbook pages at once
#   5. ended by hand: paging resumes; ending it twice or an unknown id is refused
#   6. a node silence does not hide a storm: a group whose leader's node is silenced still
#      pages, about its other nodes
source "$(dirname "$0")/../lib/harness.sh"
h_setup

SINK_PID=""
on_exit() {
    local status=$?
    set +e
    [[ -n $SINK_PID ]] && kill "$SINK_PID" 2>/dev/null
    (exit "$status")
    h_cleanup
}
trap on_exit EXIT

h_start_sink

# A short grouping wait: per-node incidents page 2 s after they open (step 6 needs a group).
h_start_coordinator "paging:
  contacts:
    - {name: alice, webhook: \"$SINK/alice\"}
  schedules:
    - {name: primary, timezone: UTC, handover: \"Mon 09:00\", start: \"2026-01-05\", users: [alice]}
  policies:
    - name: default
      levels:
        - {delay: 0s, targets: [\"schedule:primary\"]}
  grouping: {wait: 2s}
  notify: {attempts: 2, backoff: 200ms, max_backoff: 1s, timeout: 2s}"

pg_conninfo() {
    local sock
    sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
    [[ -d $H_DIR/coord/pgsock ]] && sock=$H_DIR/coord/pgsock
    echo "host=$sock port=5432 user=vigil dbname=vigil"
}
# open FINGERPRINT RUNBOOK [NODE]: prints the new incident's id
open_incident() {
    local id outcome
    read -r id outcome < <("$VIGIL_BUILD/incident-inject" "$(pg_conninfo)" "$1" "$2" 2 critical \
        "Down ($1)" "${3:-web-1}") || h_fail "incident-inject $1"
    [[ $outcome == opened ]] || h_fail "incident $1 not opened: $outcome"
    echo "$id"
}
pages() { jq -s --argjson id "$1" '[.[] | select(.path == "/alice") | .body | fromjson
                                     | select(.incident_id == $id and .kind == "page")] | length' "$SINK_LOG"; }
paged() { (($(pages "$1") >= 1)); }
silenced_on_timeline() {
    h_ctl incident show "$1" -o json | jq -e --arg s "silenced by silence $2 " \
        'any(.timeline[]; .kind == "note" and (.text | startswith($s)))' >/dev/null
}

# ---- 1. refusals ---------------------------------------------------------------------------
refused() { # refused STATUS TEXT ARGS...
    local want=$1 text=$2
    shift 2
    h_capture out rc h_ctl "$@"
    [[ $rc == "$want" && $out == *"$text"* ]] || h_fail "vigilctl $* should fail ($want, \"$text\"): $rc $out"
}
refused 2 "exactly one of --runbook, --node, --match" silence --for 1h --reason x
refused 2 "exactly one of --runbook, --node, --match" silence --runbook a --node b --for 1h --reason x
refused 2 "exactly one of --runbook, --node, --match" silence --runbook a --reason x
refused 2 "--for must be a duration" silence --runbook a --for soon --reason x
refused 1 "--for must be between 1m and 30d" silence --runbook a --for 10s --reason x
refused 1 "--for must be between 1m and 30d" silence --runbook a --for 31d --reason x
refused 1 "--runbook must be a runbook id" silence --runbook 'A b' --for 1h --reason x
refused 1 "--match must be KEY=VALUE" silence --match 'no-equals' --for 1h --reason x
refused 1 "--match must be KEY=VALUE" silence --match 'severity=SEV9' --for 1h --reason x
refused 2 "--reason must say why" silence --runbook a --for 1h --reason ''
refused 1 "--reason is required" silence --runbook a --for 1h --reason "$(head -c 1100 /dev/zero | tr '\0' r)"
refused 1 "--node must be a node name" silence --node "$(head -c 200 /dev/zero | tr '\0' n)" --for 1h --reason x
[[ $(h_ctl silences --all -o json | jq length) == 0 ]] || h_fail "a refused silence was stored"
h_pass "1. refused: no matcher, two matchers, no --for, 10s, 31d, bad runbook id, bad --match, no or long reason, long node"

# ---- 2. a runbook silence ---------------------------------------------------------------------
t_maint=$(date +%s.%N)
s1=$(h_ctl silence --runbook maint --for 1m --reason "planned DB upgrade" -o json | jq -r '.[0].id')
[[ $s1 =~ ^[0-9]+$ ]] || h_fail "silence id: $s1"
h_ctl silences -o json | jq -e --argjson id "$s1" 'length == 1 and .[0].id == $id and
    .[0].matcher == "runbook" and .[0].value == "maint" and .[0].reason == "planned DB upgrade" and
    .[0].created_by == "admin" and .[0].ended_at == null' >/dev/null ||
    h_fail "silences: $(h_ctl silences -o json)"
h_ctl silences | grep -E "^$s1 +runbook=maint +[0-9T:-]+Z +admin +planned DB upgrade" >/dev/null ||
    h_fail "silences table: $(h_ctl silences)"
[[ $(h_sql "select count(*) from audit_log where action = 'silence_add' and subject = 'silence $s1'") == 1 ]] ||
    h_fail "adding a silence is not audited"
m1=$(open_incident maint/ maint)
o1=$(open_incident other/ other)
h_wait "the other runbook's incident paged" 5 paged "$o1"
h_wait "the silence on the maint incident's timeline" 5 silenced_on_timeline "$m1" "$s1"
sleep 1
(($(pages "$m1") == 0)) || h_fail "a silenced incident was paged"
[[ $(h_ctl incidents -o json | jq --argjson id "$m1" '[.[] | select(.id == $id and .state == "detected")] | length') == 1 ]] ||
    h_fail "the silenced incident should be open"
h_pass "2. runbook silence $s1: incident $m1 open with the silence on its timeline, nobody paged; incident $o1 of another runbook paged; audited"

# ---- 3. a node silence -------------------------------------------------------------------------
s2=$(h_ctl silence --node web-9 --for 2h --reason "node drain" -o json | jq -r '.[0].id')
n9=$(open_incident db/web-9 db web-9)
n8=$(open_incident db/web-8 db web-8)
h_wait "web-8's incident paged" 5 paged "$n8"
h_wait "web-9's incident silenced" 5 silenced_on_timeline "$n9" "$s2"
(($(pages "$n9") == 0)) || h_fail "web-9 is silenced"
h_pass "3. node silence $s2: web-9's incident not paged, web-8's paged"

# ---- 4. the runbook silence expires on time ------------------------------------------------------
h_wait "the held maint incident paged once the silence expires" 75 paged "$m1"
late=$(awk -v t="$t_maint" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - t }')
awk -v l="$late" 'BEGIN { exit !(l >= 59 && l < 72) }' || h_fail "paged ${late}s after a 1m silence"
h_ctl silences -o json | jq -e --argjson id "$s1" 'all(.id != $id)' >/dev/null ||
    h_fail "an expired silence is still listed as in force"
h_ctl silences --all | grep -E "^$s1 .*\(expired\)" >/dev/null || h_fail "silences --all: $(h_ctl silences --all)"
m2=$(open_incident maint/other-scope maint web-2)
h_wait "a new maint incident pages at once" 5 paged "$m2"
h_pass "4. the 1m silence expired on time: incident $m1 paged ${late}s after it began; a new one at once"

# ---- 5. ended by hand ------------------------------------------------------------------------------
h_ctl silence end "$s2" -o json | jq -e '.[0].ended_by == "operator:admin" and .[0].ended_at != null' >/dev/null ||
    h_fail "silence end: $(h_ctl silences --all -o json)"
h_wait "web-9's incident paged once its silence is ended" 15 paged "$n9"
refused 1 "has already ended" silence end "$s2"
refused 1 "no silence 99999" silence end 99999
refused 2 "needs a silence id" silence end x
[[ $(h_sql "select count(*) from audit_log where action = 'silence_end' and subject = 'silence $s2'") == 1 ]] ||
    h_fail "ending a silence is not audited"
h_pass "5. silence $s2 ended by hand: web-9 paged; ending it again or an unknown id refused; audited"

# ---- 6. a node silence does not hide a storm on other nodes --------------------------------------
g1=$(open_incident cache/web-5 cache web-5)
g2=$(open_incident cache/web-6 cache web-6)
# The silence comes once the two form a group (web-6 follows web-5): the case under test is a
# silence on the leader's node, not which of the two the escalation engine saw first.
grouped() { [[ $(h_sql "select group_leader from escalations where incident_id = $g2") == "$g1" ]]; }
h_wait "web-6 in web-5's group" 10 grouped
s3=$(h_ctl silence --node web-5 --for 1h --reason "web-5 only" -o json | jq -r '.[0].id')
h_wait "the group of web-5 and web-6 paged" 8 paged "$g1"
jq -e --argjson id "$g1" 'select(.path == "/alice") | .body | fromjson
    | select(.incident_id == $id and .kind == "page") | .group.nodes_total == 2' "$SINK_LOG" >/dev/null ||
    h_fail "the group's page should name both nodes: $(grep -F "incident $g1)" "$SINK_LOG" | head -1)"
(($(pages "$g2") == 0)) || h_fail "web-6 is in the group: no page of its own"
h_ctl silence end "$s3" >/dev/null
h_pass "6. silence $s3 on web-5 (the leader's node): the group of web-5 and web-6 still paged, once"
