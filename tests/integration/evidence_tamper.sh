#!/usr/bin/env bash
# The coordinator's evidence checks against what a real agent never sends: bytes that do not
# match the agent's hash (refused, logged at error level, counted, never in the vault), an
# agent's refusal, and an agent that never answers (timed out). Needs evidence-fake-agent
# built into $VIGIL_BUILD (tests/tools/evidence-fake-agent.c).
source "$(dirname "$0")/../lib/harness.sh"
FAKE=${VIGIL_FAKE_AGENT:-$VIGIL_BUILD/evidence-fake-agent}
[[ -x $FAKE ]] || { echo "evidence-fake-agent not built: $FAKE" >&2; exit 1; }
h_setup
h_start_coordinator "evidence:
  incomplete_grace: 0s"
mkdir -p "$H_DIR/files"
head -c $((5 * 1024 * 1024 + 123)) /dev/urandom >"$H_DIR/files/big.bin"
declare -A FAKE_PIDS=()
fake() { # NODE MODE [FILE]
    "$FAKE" --endpoint "tcp://127.0.0.1:$H_PORT_AGENTS" --server-key "$H_COORD_PUB" \
        --secret-file "$H_DIR/enrollment.secret" --node "$1" --file "${3:-$H_DIR/files/big.bin}" \
        --mode "$2" >"$H_DIR/fake-$1.out" 2>&1 &
    FAKE_PIDS[$1]=$!
    h_wait "$1 ready" 20 grep -q ready "$H_DIR/fake-$1.out"
}
run() { h_capture out rc h_ctl "$@"; }

fake node-ok ok
run collect --node node-ok file --arg path=/any -o json
[[ $rc == 0 ]] || h_fail "collect: exit $rc: $out"
id=$(jq -r '.[0].id' <<<"$out")
[[ $(jq -r '.[0].sha256' <<<"$out") == $(sha256sum "$H_DIR/files/big.bin" | cut -d' ' -f1) ]] ||
    h_fail "stored hash differs from the file's"
h_ctl evidence get "$id" --out - | cmp - "$H_DIR/files/big.bin" || h_fail "fetched bytes differ"
h_pass "a good artifact is verified and stored"

vault=$(h_sql "select count(*) from evidence")
fake node-bad tamper
run collect --node node-bad file --arg path=/any
[[ $rc == 3 ]] && grep -q "^vigilctl: node-bad: file: sha256 mismatch: agent said [0-9a-f]\{64\}, stored bytes hash to [0-9a-f]\{64\}$" <<<"$out" ||
    h_fail "tampered artifact: exit $rc: $out"
grep -q "error: .*evidence refused reason=sha256" "$H_DIR/coordinator.log" || h_fail "mismatch not logged as an error"
[[ $(h_metric 'vigil_evidence_rejected_total{reason="sha256"}') == 1 ]] || h_fail "mismatch not counted"
[[ $(h_sql "select count(*) from evidence") == "$vault" ]] || h_fail "a mismatched artifact entered the vault"
h_pass "bytes that do not match the agent's hash are refused, logged, counted, never stored"

fake node-err error
run collect --node node-err file --arg path=/etc/shadow
[[ $rc == 3 ]] && grep -q "^vigilctl: node-err: file: path /etc/shadow is outside the allowed directories$" <<<"$out" ||
    h_fail "agent refusal: exit $rc: $out"
[[ $(h_metric 'vigil_evidence_failed_total{kind="file"}') == 1 ]] || h_fail "agent refusal not counted"
h_pass "an agent's refusal reaches the operator as one line"

fake node-silent silent
run collect --node node-silent host --timeout 2s
[[ $rc == 3 ]] && grep -q "node-silent: host: timed out" <<<"$out" || h_fail "silent agent: exit $rc: $out"
kill "${FAKE_PIDS[node-silent]}" 2>/dev/null || true
h_pass "an agent that never answers times out"

# Two whole artifacts for one request, back to back (so in one batch): both found the target
# pending, but only the first may enter the vault.
vault=$(h_sql "select count(*) from evidence")
echo "a small artifact" >"$H_DIR/files/small.bin"
fake node-twice twice "$H_DIR/files/small.bin"
run collect --node node-twice file --arg path=/any
[[ $rc == 0 ]] || h_fail "collect from node-twice: exit $rc: $out"
second_refused() {
    (($(h_metric 'vigil_evidence_rejected_total{reason="duplicate"}') +
        $(h_metric 'vigil_evidence_rejected_total{reason="not_pending"}') >= 1))
}
h_wait "the second artifact refused" 10 second_refused
[[ $(h_sql "select count(*) from evidence") == $((vault + 1)) ]] ||
    h_fail "two artifacts of one request entered the vault: $(h_sql "select count(*) from evidence") rows, expected $((vault + 1))"
kill "${FAKE_PIDS[node-twice]}" 2>/dev/null || true
h_pass "a second artifact for one request never enters the vault"

# An upload that never completes (every chunk but the last): once its request has timed out,
# its chunks are removed (audited, counted); the chunks of verified artifacts stay untouchable.
fake node-partial partial
run collect --node node-partial file --arg path=/any --timeout 2s
[[ $rc == 3 ]] && grep -q "node-partial: file: timed out" <<<"$out" || h_fail "partial upload: exit $rc: $out"
removed() { (($(h_metric vigil_evidence_incomplete_removed_bytes_total) > 0)); }
h_wait "the never-completed upload removed" 15 removed
[[ $(h_sql "select count(*) from evidence_chunks c join evidence_targets t on t.collection_id = c.collection_id and t.agent_id = c.agent_id where t.node = 'node-partial'") == 0 ]] ||
    h_fail "chunks of the never-completed upload are still stored"
h_sql "select detail from audit_log where action = 'evidence.incomplete_removed'" | grep "never completed" >/dev/null ||
    h_fail "the removal is not in the audit log"
h_capture err _ h_sql "delete from evidence_chunks where agent_id in (select agent_id from evidence)"
grep -q "append-only" <<<"$err" || h_fail "chunks of a verified artifact could be deleted: $err"
kill "${FAKE_PIDS[node-partial]}" 2>/dev/null || true
h_pass "an upload that never completes is removed after its request failed; verified chunks stay"
