#!/usr/bin/env bash
# Retention and legal hold (026_retention.sql, docs/forensics.md "Retention and legal hold"),
# against the private PostgreSQL:
#   - signals are partitioned by day: today's partition and two ahead exist; a day older than
#     retention.signals sits in its own partition and is dropped whole, with an audit row that
#     says how many rows and bytes went, while newer samples stay; a late sample of a kept day
#     that landed in the default partition is moved into its day's partition; one older than
#     retention is deleted from it (audited);
#   - evidence: an unheld resolved incident's artifact and an operator's artifact lose their
#     content once retention.evidence has passed (audited, one row each), a held incident's and
#     an open incident's stay; the database itself refuses to remove a held incident's content;
#     `vigilctl evidence verify` still passes, counting the removed ones; releasing the hold
#     lets retention take that evidence too;
#   - `vigilctl hold` needs the admin role, is audited, on the timeline and in `incident show`.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
today() { h_sql "select to_char((now() at time zone 'utc')::date + ($1), 'YYYYMMDD')"; }
partition_exists() { [[ $(h_sql "select count(*) from vigil_signals_partitions() where part = 'signals_p$1'") == 1 ]]; }

# Evidence is kept forever at first (the default), while the test sets up what it will expire.
h_start_coordinator "retention:
  interval: 1s"

# ---- signals ----

for d in 0 1 2; do
    h_wait "partition of today+$d" 10 partition_exists "$(today $d)"
done
h_pass "today's signals partition and the next two days' exist"

old=$(today -20)
late=$(today -3)
# A partition made 20 days ago with its samples (one transaction: a pass never sees it empty),
# a late sample of 3 days ago (no partition: the default one), one of 30 days ago, and today's.
# Made as the owner role, as the maintenance makes partitions (the superuser's would be beyond it).
h_sql "set role vigil_owner;
       select vigil_signals_partition((now() at time zone 'utc')::date - 20);
       insert into signals (agent_id, seq, name, value, ts)
       select 'old-agent', g, 'cpu.load', g, now() - interval '20 days' + g * interval '1 second'
         from generate_series(1, 100) g;
       insert into signals (agent_id, seq, name, value, ts) values
         ('late-agent', 1, 'cpu.load', 1, now() - interval '3 days'),
         ('stale-agent', 1, 'cpu.load', 1, now() - interval '30 days'),
         ('new-agent', 1, 'cpu.load', 1, now())" >/dev/null

gone() { ! partition_exists "$old"; }
h_wait "the 20-day-old partition dropped" 20 gone
detail=$(h_sql "select detail from audit_log where action = 'retention.signals'
                and subject = 'signals_p$old' and actor = 'vigil:retention'")
[[ $detail == *"rows=100 bytes="* && $detail == *"retention.signals (14d)"* ]] ||
    h_fail "no audit row for the dropped partition with its rows and bytes: '$detail'"
(($(h_sql "select count(*) from signals where agent_id = 'old-agent'") == 0)) ||
    h_fail "the old samples are still there"
[[ $(h_sql "select tableoid::regclass from signals where agent_id = 'new-agent'") == "signals_p$(today 0)" ]] ||
    h_fail "today's sample is not in today's partition"
h_pass "a partition older than retention.signals is dropped whole and audited; today's stays"

moved() { [[ $(h_sql "select tableoid::regclass from signals where agent_id = 'late-agent'") == "signals_p$late" ]]; }
h_wait "the late sample moved into its day's partition" 10 moved
stale_gone() { [[ $(h_sql "select count(*) from signals where agent_id = 'stale-agent'") == 0 ]]; }
h_wait "the 30-day-old sample deleted from the default partition" 10 stale_gone
[[ $(h_sql "select count(*) from audit_log where action = 'retention.signals'
            and subject = 'signals_default' and detail like 'deleted 1 rows older than %'") == 1 ]] ||
    h_fail "no audit row for the default partition's expired sample"
[[ $(h_sql "select count(*) from signals_default") == 0 ]] || h_fail "the default partition is not empty"
[[ $(h_sql "select count(*) from signal_latest where agent_id = 'new-agent'") == 1 ]] ||
    h_fail "signal_latest is not kept by the partitioned table's trigger"
h_pass "the default partition keeps nothing: late samples moved, expired ones deleted (audited)"

# ---- evidence ----

mkdir -p "$H_DIR/files"
chmod 755 "$H_DIR/files"
echo "evidence for the case" >"$H_DIR/files/a.txt"
h_start_agent node-a "evidence:
  allow_dirs: [\"$H_DIR/files\"]"
active() { [[ $(h_ctl agents -o json | jq '[.[] | select(.state == "active")] | length') == 1 ]]; }
h_wait "the agent active" 30 active
agent_rows() { (($(h_sql "select count(*) from signals where agent_id <> 'new-agent' and agent_id <> 'late-agent' and ts > now() - interval '1 minute'") > 0)); }
h_wait "the agent's samples stored" 20 agent_rows
[[ $(h_sql "select distinct tableoid::regclass from signals where ts > now() - interval '1 minute'
            and agent_id not like '%-agent'") == "signals_p$(today 0)" ]] ||
    h_fail "the agent's samples did not go into today's partition"
h_pass "ingest writes into the day's partition"

for _ in 1 2 3 4; do
    h_ctl collect --node node-a file --arg path="$H_DIR/files/a.txt" >/dev/null || h_fail "collect failed"
done
mapfile -t collections < <(h_sql "select collection_id from evidence order by id")
mapfile -t artifacts < <(h_sql "select id from evidence order by id")
((${#artifacts[@]} == 4)) || h_fail "expected 4 artifacts, the vault has ${#artifacts[@]}"
# Incidents as the correlator leaves them: held and unheld ones resolved a day ago, one open.
incident() { # STATE RESOLVED_AT -> id
    h_sql "insert into incidents (fingerprint, runbook, title, severity, state, opened_at,
           response_due, updated_at, resolved_at)
           values ('retention-' || gen_random_uuid(), 'application-down', 'retention test', 2, '$1',
                   now() - interval '2 days', now() - interval '2 days', now(), $2) returning id"
}
held=$(incident resolved "now() - interval '1 day'")
unheld=$(incident resolved "now() - interval '1 day'")
open=$(incident detected null)
h_sql "update evidence_collections set incident_id = $held where id = ${collections[0]};
       update evidence_collections set incident_id = $unheld where id = ${collections[1]};
       update evidence_collections set incident_id = $open where id = ${collections[3]}" >/dev/null
# collections[2]: an operator's collection, of no incident.

h_add_operator vera viewer
h_capture out rc h_as vera hold "$held" --reason "case 7"
[[ $rc == 1 && $out == *"needs the admin role"* ]] || h_fail "a viewer placed a hold: exit $rc: $out"
h_capture out rc h_ctl hold "$held" --reason "litigation hold, case 7"
[[ $rc == 0 && $out == *"$held"*held*"litigation hold, case 7"* ]] || h_fail "hold: exit $rc: $out"
h_capture out rc h_ctl hold "$held"
[[ $rc == 1 && $out == *"is already on hold"* ]] || h_fail "a second hold: exit $rc: $out"
h_capture out rc h_ctl hold release "$unheld"
[[ $rc == 1 && $out == *"is not on hold"* ]] || h_fail "releasing what is not held: exit $rc: $out"
h_capture out rc h_ctl incident show "$held"
grep -q "^  legal hold    on hold since .* by operator:admin: litigation hold, case 7" <<<"$out" ||
    h_fail "incident show does not mention the hold: $out"
grep -q "legal hold placed" <<<"$out" || h_fail "the hold is not on the timeline: $out"
[[ $(h_as vera holds -o json | jq -r '.[0].incident, .[0].held, .[0].artifacts') == "$held"$'\n'true$'\n'1 ]] ||
    h_fail "holds does not list the held incident with its artifact: $(h_as vera holds -o json)"
[[ $(h_sql "select count(*) from audit_log where action = 'incident.hold'
            and subject = 'incident:$held' and actor = 'operator:admin'") == 1 ]] ||
    h_fail "the hold is not audited"
h_pass "vigilctl hold: admin only, audited, on the timeline, in incident show and holds"

# The database refuses to drop a held incident's content, whoever asks.
h_capture out rc h_sql "with a as (insert into audit_log (actor, action, subject, detail)
                          values ('x', 'retention.evidence', 'evidence:${artifacts[0]}', 'x') returning id)
                        insert into evidence_removals (evidence_id, audit_id, chunks, bytes)
                          select ${artifacts[0]}, id, 1, 1 from a;
                        delete from evidence_chunks c using evidence e
                         where e.id = ${artifacts[0]} and c.agent_id = e.agent_id
                           and c.artifact = e.artifact"
[[ $rc != 0 && $out == *"which is on legal hold"* ]] ||
    h_fail "the held incident's content could be deleted: exit $rc: $out"
h_pass "the database refuses to remove a held incident's evidence"

# Now evidence expires 2s after it was stored (and its incident resolved).
h_stop_coordinator
h_start_coordinator "retention:
  interval: 1s
  evidence: 2s"
removed() { [[ $(h_sql "select count(*) from evidence_removals") == "$1" ]]; }
h_wait "two artifacts' content removed" 20 removed 2
sleep 2 # two more passes: nothing else goes
removed 2 || h_fail "more than two artifacts' content removed: $(h_sql "select evidence_id from evidence_removals")"
[[ $(h_sql "select string_agg(evidence_id::text, ' ' order by evidence_id) from evidence_removals") == "${artifacts[1]} ${artifacts[2]}" ]] ||
    h_fail "the wrong artifacts lost their content: $(h_sql "select evidence_id from evidence_removals")"
for id in "${artifacts[0]}" "${artifacts[3]}"; do
    (($(h_sql "select count(*) from evidence_chunks c join evidence e using (agent_id, artifact)
              where e.id = $id") > 0)) || h_fail "artifact $id (held or open incident) lost its content"
done
(($(h_sql "select count(*) from evidence") == 4)) || h_fail "a vault row is gone"
for id in "${artifacts[1]}" "${artifacts[2]}"; do
    detail=$(h_sql "select detail from audit_log where action = 'retention.evidence'
                    and subject = 'evidence:$id' and actor = 'vigil:retention'")
    [[ $detail == *"chunks=1 bytes=22"* && $detail == *"retention.evidence (2"* ]] ||
        h_fail "artifact $id: no audit row with what went and why: '$detail'"
done
h_capture out rc h_ctl evidence get "${artifacts[1]}" --out "$H_DIR/got"
[[ $rc == 1 && $out == *"evidence ${artifacts[1]}: its content was removed by retention on "*"its size and SHA-256 stay in the vault"* ]] ||
    h_fail "evidence get of a removed artifact: exit $rc: $out"
h_ctl evidence get "${artifacts[0]}" --out "$H_DIR/got" >/dev/null ||
    h_fail "the held incident's artifact cannot be fetched"
cmp -s "$H_DIR/got" "$H_DIR/files/a.txt" || h_fail "the held incident's artifact differs"
h_pass "expired evidence loses its content (audited); a held and an open incident's is kept"

h_capture out rc h_ctl evidence verify
[[ $rc == 0 && $(head -1 <<<"$out") == "evidence vault: 4 artifacts (2 with content removed by retention), 44 bytes, chain intact" ]] ||
    h_fail "verify after retention: exit $rc: $out"
grep -q "^audit log: .* chain intact" <<<"$out" || h_fail "the audit chain is not intact: $out"
h_pass "evidence verify passes after retention removed content"

[[ $(h_metric vigil_retention_evidence_removed_total) == 2 ]] ||
    h_fail "vigil_retention_evidence_removed_total is $(h_metric vigil_retention_evidence_removed_total)"
[[ $(h_metric vigil_retention_evidence_bytes_removed_total) == 44 ]] ||
    h_fail "vigil_retention_evidence_bytes_removed_total is $(h_metric vigil_retention_evidence_bytes_removed_total)"

h_capture out rc h_ctl hold release "$held" --reason "case closed"
[[ $rc == 0 && $out == *released* ]] || h_fail "release: exit $rc: $out"
h_wait "the released incident's evidence removed" 20 removed 3
h_capture out rc h_ctl evidence verify
[[ $rc == 0 && $(head -1 <<<"$out") == "evidence vault: 4 artifacts (3 with content removed by retention), 22 bytes, chain intact" ]] ||
    h_fail "verify after the release: exit $rc: $out"
[[ $(h_sql "select count(*) from audit_log where action = 'incident.hold_release'
            and subject = 'incident:$held' and detail = 'case closed'") == 1 ]] ||
    h_fail "the release is not audited"
h_pass "a released hold lets retention remove the evidence; verify still passes"

# Content deleted outside retention (the triggers switched off, no removal recorded) is still
# caught at that artifact.
h_sql "set session_replication_role = replica;
       delete from evidence_chunks c using evidence e where e.id = ${artifacts[3]}
          and c.agent_id = e.agent_id and c.artifact = e.artifact" >/dev/null
h_capture out rc h_ctl evidence verify
[[ $rc == 1 && $out == *"chain broken at evidence ${artifacts[3]}"* ]] ||
    h_fail "content deleted without a retention record went unnoticed: exit $rc: $out"
h_pass "content removed outside retention still breaks verify"
