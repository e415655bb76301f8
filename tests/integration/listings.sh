#!/usr/bin/env bash
# Listings are bounded and paged: the coordinator answers a page at a time (the database
# returns that page alone), and vigilctl pages through to the end. Once, `vigilctl signals`
# stopped silently at 50,000 series and a large agent list outgrew the reply size limit.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator

# 60,000 series over 7 nodes, straight into the table the listing reads.
h_sql "insert into signal_latest (agent_id, node, name, labels, value, ts)
       select 'ag-list' || (i % 7), 'node-' || (i % 7), 'test.metric', jsonb_build_object('n', i::text),
              i, now() from generate_series(1, 60000) i" >/dev/null
all=$(h_ctl signals -o json --name 'test.*')
[[ $(jq 'length' <<<"$all") == 60000 ]] || h_fail "vigilctl signals listed $(jq 'length' <<<"$all") of 60000 series"
[[ $(jq '[.[] | .labels.n] | unique | length' <<<"$all") == 60000 ]] || h_fail "a series was listed twice"
[[ $(h_ctl signals -o json --node node-3 | jq 'length') == $(h_sql "select count(*) from generate_series(1, 60000) i where i % 7 = 3") ]] ||
    h_fail "--node node-3 did not list exactly that node's series"
[[ $(h_ctl signals -o json --name 'other.*' | jq 'length') == 0 ]] || h_fail "--name other.* listed series"
[[ $(h_ctl signals -o json --name 'test.metri?' | jq 'length') == 60000 ]] || h_fail "--name with ? did not match"
h_pass "vigilctl signals pages through 60,000 series, each once; filters apply before the pages"

# 2,500 agents: the registry loads them at start.
h_sql "insert into agents (id, public_key, node, state)
       select 'ag-' || lpad(to_hex(i), 16, '0'), 'key-' || lpad(i::text, 36, '0'), 'node-' || i, 'active'
       from generate_series(1, 2500) i" >/dev/null
h_stop_coordinator
h_start_coordinator
agents=$(h_ctl agents -o json)
[[ $(jq 'length' <<<"$agents") == 2500 ]] || h_fail "vigilctl agents listed $(jq 'length' <<<"$agents") of 2500"
[[ $(jq '[.[] | .id] | unique | length' <<<"$agents") == 2500 ]] || h_fail "an agent was listed twice"
jq -e '[.[] | .id] == ([.[] | .id] | sort)' <<<"$agents" >/dev/null || h_fail "agents are not in id order"
h_pass "vigilctl agents pages through 2,500 agents, each once, in id order"

# ---- incidents: 1,203 of them (701 open), newest first, each once, across pages of 500 ----
h_sql "insert into incidents (fingerprint, runbook, title, severity, state, opened_at, response_due,
                              updated_at)
       select 'listing/' || i, 'listing', 'listing ' || i, 3,
              case when i % 12 < 7 then 'detected' else 'resolved' end, now(), now(), now()
       from generate_series(1, 1203) i" >/dev/null
json=$(h_ctl incidents --status all -o json)
[[ $(jq 'length' <<<"$json") == 1203 && $(jq '[.[].id] | unique | length' <<<"$json") == 1203 ]] ||
    h_fail "vigilctl incidents --status all should list 1203 incidents once each, got $(jq 'length' <<<"$json")"
jq -e '[.[].id] | . == (sort | reverse)' <<<"$json" >/dev/null || h_fail "incidents must come newest first"
open=$(h_sql "select count(*) from incidents where state in ('detected', 'acknowledged', 'mitigated')")
[[ $(h_ctl incidents -o json | jq 'length') == "$open" ]] ||
    h_fail "vigilctl incidents should list the $open open incidents"
h_pass "vigilctl incidents pages through 1,203 incidents, each once, newest first; open ones alone too"
