#!/usr/bin/env bash
# The spool across an outage: an agent keeps producing while the coordinator is down until its
# bounded spool overflows, is restarted, and delivers everything it kept once the coordinator
# returns; what overflow dropped is counted exactly and reported.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator
# Only the agent's own signals, so every message is a batch of the same size.
small_spool=$'spool:\n  max_size: 256KiB\n  segment_size: 16KiB\n  fsync: false\nevidence:\n  chunk_size: 4KiB\ncollectors:\n  host:\n    interval: 0s\n  netstat:\n    interval: 0s'
H_SELF_INTERVAL=10ms h_start_agent node-s "$small_spool"
is_active() { [[ $(h_ctl agents -o json | jq -r '.[0].state') == active ]]; }
h_wait "node-s active" 30 is_active
id=$(h_ctl agents -o json | jq -r '.[0].id')
h_stop_coordinator

state=$H_DIR/agents/node-s/state/spool
dropped() { sed -n 's/^dropped_messages //p' "$state/next-seq"; }
overflowed() { [[ $(dropped) -gt 0 ]]; }
h_wait "the spool overflows while the coordinator is down" 90 overflowed
h_stop_agent node-s
kept=$(du -cb "$state"/*.seg | tail -1 | cut -f1)
h_log "spool holds $kept bytes after $(dropped) dropped messages"
((kept > 128 * 1024)) || h_fail "the spool kept only $kept bytes"

h_start_coordinator
H_SELF_INTERVAL=1h h_start_agent node-s "$small_spool"
spool_empty() { ! ls "$state"/*.seg >/dev/null 2>&1; }
h_wait "the restarted agent delivers its spool" 60 spool_empty

read -r count hi < <(h_sql "select count(*), max(seq) from agent_messages where agent_id = '$id'" | tr '|' ' ')
ceiling=$(sed -n 's/^seq_ceiling //p' "$state/next-seq")
d=$(dropped)
h_log "stored=$count dropped=$d made=$((ceiling - 1)) highest stored=$hi"
[[ $hi == $((ceiling - 1)) ]] || h_fail "the newest message ($((ceiling - 1))) is not stored (max $hi)"
# Every message not in the store was dropped by the spool and counted. (A message sent just
# before the coordinator stopped may be both stored and later dropped from the spool, so the
# count of drops can exceed the gap by what was in flight.)
missing=$((ceiling - 1 - count))
((missing <= d)) || h_fail "$missing messages missing but only $d dropped: $((missing - d)) lost uncounted"
((d - missing <= 256)) || h_fail "$d dropped but only $missing missing"
missing_seqs=$(h_sql "select count(*) from generate_series(1, $((ceiling - 1))) s
    where not exists (select 1 from agent_messages m where m.agent_id = '$id' and m.seq = s)")
[[ $missing_seqs == "$missing" ]] || h_fail "duplicate rows: $missing_seqs seqs missing vs $missing by count"
reported() { [[ $(h_ctl agents -o json | jq -r '.[0].dropped_messages') == "$d" ]]; }
h_wait "the agent reports exactly $d dropped messages" 15 reported
per=$(h_sql "select count(*) from signals where agent_id = '$id' and seq = $hi")
samples=$(sed -n 's/^dropped_samples //p' "$state/next-seq")
((per > 0)) && [[ $samples == $((per * d)) ]] ||
    h_fail "dropped samples $samples != $per x $d messages"
h_pass "a full spool is resent after restart; overflow losses are counted exactly"
