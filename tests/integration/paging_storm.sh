#!/usr/bin/env bash
# A storm is one page (issue 17), with real processes: 200 simulated agents (vigil-sim) cross
# a per-node CPU threshold at once, and the webhook sink (tests/tools/http_sink.py) stands for
# the people paged.
#   1. 200 per-node incidents open (the timeline keeps every node), but each level of the
#      policy pages once for the runbook, naming the nodes: "200 nodes" in the text. It used
#      to page the on-call 200 times within a second.
#   2. nodes joining later go to the same thread: one "more nodes" message, no page
#   3. the leader resolved while the rest stay open: the group's paging moves to the next
#      incident, nobody is paged again; a member raised above the group's severity is paged on
#      its own
#   4. the per-person cap: incidents of other runbooks past paging.max_pages_per_minute are
#      held back and told in one summary once the minute lets one more message through
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

# vigil-sim's host.cpu.busy_pct is 0.5 on every node: above 0.1 is a crossing on all of them.
RB=$H_DIR/runbooks
mkdir -p "$RB"
cat >"$RB/cpu-storm.yaml" <<'EOF'
id: cpu-storm
title: CPU pinned
severity: SEV3
symptoms:
  - {id: cpu, signal: host.cpu.busy_pct, above: 0.1}
EOF

# Level 2 (bob) at 8 s: both levels fall inside the test, each must page once.
PAGING="runbooks:
  dir: \"$RB\"
paging:
  contacts:
    - {name: alice, webhook: \"$SINK/alice\"}
    - {name: bob, slack: \"$SINK/bob\"}
    - {name: carol, webhook: \"$SINK/carol\"}
  schedules:
    - {name: primary, timezone: UTC, handover: \"Mon 09:00\", start: \"2026-01-05\", users: [alice]}
  policies:
    - name: default
      levels:
        - {delay: 0s, targets: [\"schedule:primary\"]}
        - {delay: 8s, targets: [\"contact:bob\"]}
    - name: urgent
      levels:
        - {delay: 0s, targets: [\"contact:carol\"]}
  routing:
    SEV1: {policy: urgent}
  grouping: {wait: 3s, interval: 2s}
  max_pages_per_minute: 3
  notify: {attempts: 2, backoff: 200ms, max_backoff: 1s, timeout: 2s}"
h_start_coordinator "$PAGING"

pg_conninfo() {
    local sock
    sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
    [[ -d $H_DIR/coord/pgsock ]] && sock=$H_DIR/coord/pgsock
    echo "host=$sock port=5432 user=vigil dbname=vigil"
}
# requests the sink got on /PATH, as JSON lines with the message text (Slack: .text; webhook: the
# subject and body fields)
received() {
    jq -c --arg p "/$1" 'select(.path == $p) | (.body | fromjson? // {}) as $b
        | {time, text: (($b.text // "") + ($b.subject // "") + "\n" + ($b.body // "")), b: $b}' \
        "$SINK_LOG"
}
count() { received "$1" | jq -s --arg re "$2" '[.[] | select(.text | test($re))] | length'; }
at_least() { (($(count "$1" "$2") >= $3)); }
storm_incidents() { h_sql "select count(*) from incidents where runbook = 'cpu-storm'"; }
storm_pages() { h_sql "select count(*) from notifications n join incidents i on i.id = n.incident_id
                         where i.runbook = 'cpu-storm' and n.kind = 'page' and n.level = $1"; }

# ---- 1. 200 nodes at once: one page per level, naming the nodes -------------------------------
t0=$(date +%s.%N)
h_sim ingest --secret-file "$H_DIR/enrollment.secret" --agents 200 --seconds 3 \
    --signals-per-message 1 --window 1 --node-prefix sim >"$H_DIR/sim.out" 2>&1 ||
    h_fail "vigil-sim: $(cat "$H_DIR/sim.out")"
at_200() { (($(storm_incidents) >= 200)); }
h_wait "200 per-node incidents open" 30 at_200
h_wait "level 1: alice paged" 15 at_least alice "CPU pinned" 1
sleep 1
(($(count alice "CPU pinned") == 1)) || h_fail "alice paged $(count alice "CPU pinned") times for one storm"
msg=$(received alice | jq -r 'select(.text | test("CPU pinned")) | .text' | head -c 4000)
[[ $msg == *"needs you, level 1, 200 nodes"* ]] || h_fail "the page should count 200 nodes: $msg"
[[ $msg == *"Nodes:      200 nodes: sim-"*", and 180 more"* ]] || h_fail "the page should name the nodes: $msg"
received alice | jq -e 'select(.text | test("CPU pinned")) | .b.group.nodes_total == 200' >/dev/null ||
    h_fail "the webhook payload should carry group.nodes_total 200: $(received alice | head -1)"
h_wait "level 2: bob paged" 15 at_least bob "CPU pinned" 1
sleep 1
(($(count bob "CPU pinned") == 1)) || h_fail "bob paged $(count bob "CPU pinned") times for one storm"
[[ $(received bob | jq -r .text) == *"level 2, 200 nodes"* ]] || h_fail "bob's page: $(received bob)"
[[ $(storm_pages 0) == 1 && $(storm_pages 1) == 1 ]] ||
    h_fail "one page row per level: level 1 $(storm_pages 0), level 2 $(storm_pages 1)"
elapsed=$(awk -v t="$t0" -v now="$(date +%s.%N)" 'BEGIN { printf "%.0f", now - t }')
leader=$(h_sql "select incident_id from escalations e join incidents i on i.id = e.incident_id
                where i.runbook = 'cpu-storm' and e.group_leader is null")
[[ $leader =~ ^[0-9]+$ ]] || h_fail "one leader expected: $leader"
[[ $(h_sql "select count(*) from escalations e join incidents i on i.id = e.incident_id
            where i.runbook = 'cpu-storm' and e.group_leader = $leader") == 199 ]] ||
    h_fail "199 incidents should follow the leader $leader"
some=$(h_sql "select max(incident_id) from escalations where group_leader = $leader")
h_ctl incident show "$some" -o json | jq -e --argjson l "$leader" \
    'any(.timeline[]; .kind == "note" and (.text | test("paged as one group with incident \($l)")))' >/dev/null ||
    h_fail "a member's timeline should say which group it is paged with"
h_pass "1. 200 nodes at once: 200 incidents, one page per level (alice, then bob), naming 200 nodes (${elapsed}s)"

# ---- 2. nodes joining later: the same thread, no new page --------------------------------------
h_sim ingest --secret-file "$H_DIR/enrollment.secret" --agents 3 --seconds 2 \
    --signals-per-message 1 --window 1 --node-prefix late >"$H_DIR/sim2.out" 2>&1 ||
    h_fail "vigil-sim (late): $(cat "$H_DIR/sim2.out")"
h_wait "alice told of the late nodes" 15 at_least alice "more nodes" 1
sleep 2.5 # past one more grouping interval: nothing else to tell
(($(count alice "more nodes") == 1)) || h_fail "one message for the late nodes: $(count alice "more nodes")"
late=$(received alice | jq -r 'select(.text | test("more nodes")) | .text')
[[ $late == *"3 nodes joined: late-"* ]] || h_fail "the thread message should name 3 late nodes: $late"
(($(count alice "needs you") == 1 && $(count bob "needs you") == 1)) || h_fail "late nodes paged again"
[[ $(storm_incidents) == 203 ]] || h_fail "203 incidents expected: $(storm_incidents)"
h_pass "2. three nodes later: one thread message naming them, no new page"

# ---- 3. the leader resolves, the rest stay open: the group goes on without paging again -------
h_ctl resolve "$leader" --note "that node is fine" >/dev/null || h_fail "resolve $leader"
heir() { h_sql "select incident_id from escalations e join incidents i on i.id = e.incident_id
                where i.runbook = 'cpu-storm' and e.group_leader is null and i.state = 'detected'"; }
has_heir() { [[ $(heir) =~ ^[0-9]+$ ]]; }
h_wait "a new leader for the group" 5 has_heir
new=$(heir)
h_ctl incident show "$new" -o json | jq -e 'any(.timeline[]; .text | test("leads the group of runbook cpu-storm"))' >/dev/null ||
    h_fail "the new leader's timeline should say it leads"
[[ $(h_sql "select count(*) from escalations where group_leader = $new") == 202 ]] ||
    h_fail "the other 202 should follow $new: $(h_sql "select count(*) from escalations where group_leader = $new")"
sleep 1
(($(count alice "needs you") == 1 && $(count bob "needs you") == 1)) || h_fail "paged again after the hand-over"
(($(count alice "resolved") == 0)) || h_fail "the group is not resolved while 202 nodes are open"
h_ctl ack "$new" >/dev/null || h_fail "ack $new"
h_wait "the acknowledgement told to alice and bob" 5 at_least bob "acknowledged" 1
h_pass "3. the leader resolved: incident $new leads the 202 others; no new page; its ack reaches those paged"

# ---- 3b. a member grown more severe than its group is paged on its own ------------------------
member=$(h_sql "select max(incident_id) from escalations where group_leader = $new")
node=$(h_sql "select substr(fingerprint, length('cpu-storm/') + 1) from incidents where id = $member")
# SEV2: routed like the storm (policy default, alice); SEV1 would go to carol's policy.
read -r id outcome < <("$VIGIL_BUILD/incident-inject" "$(pg_conninfo)" "cpu-storm/$node" cpu-storm 2 \
    critical "CPU pinned" "$node") || h_fail "incident-inject"
[[ $id == "$member" && $outcome == updated ]] || h_fail "the SEV2 symptom should join $member: $id $outcome"
sev2_paged() { received alice | jq -e --argjson id "$member" 'select(.b.incident_id == $id and .b.kind == "page" and .b.severity == "SEV2")' >/dev/null; }
h_wait "the SEV2 member paged on its own" 10 sev2_paged
[[ $(h_sql "select coalesce(group_leader, 0) from escalations where incident_id = $member") == 0 ]] ||
    h_fail "incident $member should have left the group"
h_ctl incident show "$member" -o json | jq -e 'any(.timeline[]; .text | test("SEV2 now, more severe than its group"))' >/dev/null ||
    h_fail "the timeline should say why $member was paged on its own"
h_pass "3b. incident $member raised to SEV2 left the SEV3 group and was paged on its own"

# ---- 4. the per-person cap: 3 pages a minute, the rest in one summary ----------------------------
inject() {
    read -r id outcome < <("$VIGIL_BUILD/incident-inject" "$(pg_conninfo)" "$1/" "$1" 1 critical \
        "Outage $1" web-1) || h_fail "incident-inject $1"
    [[ $outcome == opened ]] || h_fail "incident for $1 not opened: $outcome"
}
t_cap=$(date +%s)
for i in 1 2 3 4 5 6; do inject "outage-$i"; done
# carol's pages start "[SEV1] Outage"; the summary "[Vigil]" (it lists the held pages' subjects).
h_wait "carol's first pages" 10 at_least carol "^\\[SEV1\\] Outage" 3
sleep 2
(($(count carol "^\\[SEV1\\] Outage") == 3)) || h_fail "carol should get 3 pages, then none: $(count carol "^\\[SEV1\\] Outage")"
[[ $(h_sql "select count(*) from notifications where target = 'carol' and status = 'held'") == 3 ]] ||
    h_fail "3 pages held for carol: $(h_sql "select status, count(*) from notifications where target = 'carol' group by 1")"
h_ctl notifications "$(h_sql "select max(incident_id) from notifications where target = 'carol' and status = 'held'")" -o json |
    jq -e 'any(.[]; .status == "held")' >/dev/null || h_fail "vigilctl notifications should show a held page"
h_wait "carol's summary, once the minute has passed" 75 at_least carol "pages held back" 1
waited=$(($(date +%s) - t_cap))
summary=$(received carol | jq -r 'select(.text | test("pages held back")) | .text')
[[ $summary == *"3 pages held back (at most 3 a minute)"* ]] || h_fail "the summary: $summary"
for i in 4 5 6; do
    [[ $summary == *"Outage outage-$i"* ]] || h_fail "the summary should list outage-$i: $summary"
done
[[ $(h_sql "select count(*) from notifications where target = 'carol' and status = 'held'") == 0 ]] ||
    h_fail "held pages left after the summary"
(($(count carol "^\\[SEV1\\] Outage") == 3)) || h_fail "held pages were delivered after all"
h_pass "4. cap of 3 a minute: 3 pages to carol, 3 held and told in one summary after ${waited}s"
