#!/usr/bin/env bash
# Signed checkpoints of the evidence chain (issue 15, docs/forensics.md): what the chain alone
# cannot catch — the newest rows deleted by someone holding the database's superuser — is caught
# by a checkpoint kept outside the database.
#   1. `vigilctl evidence checkpoint` (a viewer may) prints a signed checkpoint that Debian's
#      openssl verifies with the coordinator's public key alone; the coordinator also writes
#      them to state_dir/checkpoints while the vault grows
#   2. verify --checkpoint holds while the vault only grows
#   3. the newest rows deleted: plain verify still says intact, verify --checkpoint fails naming
#      the row the checkpoint signed; a changed or foreign checkpoint is refused before any walk
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator "evidence:
  checkpoint_interval: 1s"

h_add_operator vera viewer

h_start_agent node-a
active() { [[ $(h_ctl agents -o json | jq '[.[] | select(.state == "active")] | length') == 1 ]]; }
h_wait "the agent active" 30 active
for _ in 1 2 3; do h_ctl collect --node node-a host >/dev/null || h_fail "collect host failed"; done
head_id=$(h_sql "select max(id) from evidence")

# ---- 1. issued, verified by openssl alone, published ------------------------------------
h_as vera evidence checkpoint --out "$H_DIR/cp1" || h_fail "a viewer could not issue a checkpoint"
[[ $(stat -c %a "$H_DIR/cp1") == 600 && $(wc -l <"$H_DIR/cp1") == 12 ]] ||
    h_fail "checkpoint file: mode $(stat -c %a "$H_DIR/cp1"), $(wc -l <"$H_DIR/cp1") lines"
grep -qx "evidence_head: $head_id" "$H_DIR/cp1" || h_fail "the checkpoint does not name evidence $head_id: $(cat "$H_DIR/cp1")"
grep -qx "evidence_hash: $(h_sql "select encode(chain, 'hex') from evidence where id = $head_id")" "$H_DIR/cp1" ||
    h_fail "the checkpoint's chain is not the head's"
# The audit log's chain: its head at the time (the checkpoint's own audit row comes after).
audit_head=$(sed -n 's/^audit_head: //p' "$H_DIR/cp1")
((audit_head >= 1)) || h_fail "the audit chain's head is $audit_head"
grep -qx "audit_hash: $(h_sql "select encode(link, 'hex') from chain_links where chain = 'audit_log' and seq = $audit_head")" "$H_DIR/cp1" ||
    h_fail "the checkpoint's audit hash is not the audit chain's link at $audit_head"
# What an investigator does without Vigil (docs/forensics.md): the signed lines, the signature,
# the key as SubjectPublicKeyInfo (the fixed Ed25519 prefix, then the 32 bytes).
head -n 11 "$H_DIR/cp1" >"$H_DIR/cp1.msg"
sed -n 's/^signature: //p' "$H_DIR/cp1" | base64 -d >"$H_DIR/cp1.sig"
{
    echo "-----BEGIN PUBLIC KEY-----"
    { printf '\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00'
      sed -n 's/^signing_public_key: //p' "$H_DIR/cp1" | base64 -d; } | base64
    echo "-----END PUBLIC KEY-----"
} >"$H_DIR/coordinator.pem"
openssl pkeyutl -verify -pubin -inkey "$H_DIR/coordinator.pem" -rawin -in "$H_DIR/cp1.msg" \
    -sigfile "$H_DIR/cp1.sig" >"$H_DIR/openssl.out" 2>&1 || h_fail "openssl: $(cat "$H_DIR/openssl.out")"
grep -q "Signature Verified Successfully" "$H_DIR/openssl.out" || h_fail "openssl: $(cat "$H_DIR/openssl.out")"
sign_pub=$("$VIGIL_BUILD/vigil-coordinator" -c "$H_DIR/coordinator.yaml" --print-signing-key | grep -o '[A-Za-z0-9+/]\{43\}=' | head -1)
grep -qx "signing_public_key: $sign_pub" "$H_DIR/cp1" || h_fail "not signed with the coordinator's key $sign_pub"
published() { compgen -G "$H_DIR/coord/checkpoints/*.checkpoint" >/dev/null; }
h_wait "checkpoints written to state_dir/checkpoints" 10 published
[[ $(h_sql "select count(*) from audit_log where action = 'evidence.checkpoint' and actor = 'operator:vera'") == 1 ]] ||
    h_fail "issuing a checkpoint is not audited"
h_pass "a signed checkpoint: openssl verifies it with the coordinator's key; written to state_dir/checkpoints"

# ---- 2. it holds while the vault grows -------------------------------------------------
run() { h_capture out rc h_ctl evidence verify "$@"; }
run --checkpoint "$H_DIR/cp1"
[[ $rc == 0 && $(head -1 <<<"$out") == "evidence vault: 3 artifacts, "*" bytes, chain intact, checkpoint held" ]] ||
    h_fail "verify --checkpoint on the same vault: exit $rc: $out"
h_ctl collect --node node-a host >/dev/null || h_fail "collect host failed"
run --checkpoint "$H_DIR/cp1"
[[ $rc == 0 && $(head -1 <<<"$out") == *"4 artifacts"*"checkpoint held" ]] || h_fail "verify --checkpoint after growth: exit $rc: $out"
h_pass "a checkpoint holds while the vault only grows"

# ---- 3. the tail deleted ---------------------------------------------------------------
# As the superuser, past the append-only triggers.
h_sql "SET session_replication_role = replica;
       DELETE FROM evidence_chunks c USING evidence e WHERE e.id >= $head_id
         AND c.agent_id = e.agent_id AND c.artifact = e.artifact;
       DELETE FROM evidence WHERE id >= $head_id" >/dev/null
run
[[ $rc == 0 && $(head -1 <<<"$out") == "evidence vault: 2 artifacts, "*"chain intact" ]] ||
    h_fail "plain verify after deleting the tail: exit $rc: $out (the chain alone cannot see it)"
run --checkpoint "$H_DIR/cp1"
[[ $rc == 1 && $(head -1 <<<"$out") == "evidence vault: 2 artifacts, chain intact, but the checkpoint is not held: the checkpoint of "*" names evidence $head_id, which the evidence chain no longer has: its newest rows were deleted (it now ends at $((head_id - 1)))" ]] ||
    h_fail "verify --checkpoint after deleting the tail: exit $rc: $out"
run --checkpoint "$H_DIR/cp1" -o json
[[ $(jq -r '.checkpoint.held' <<<"$out") == false && $(jq -r '.checkpoint.broken_id' <<<"$out") == "$head_id" ]] ||
    h_fail "verify --checkpoint -o json: $out"
grep -q "error: .*evidence vault: checkpoint not held" "$H_DIR/coordinator.log" || h_fail "not logged as an error"

sed 's/^evidence_head: .*/evidence_head: 1/' "$H_DIR/cp1" >"$H_DIR/cp-changed"
run --checkpoint "$H_DIR/cp-changed"
[[ $rc == 1 && $out == *"the signature does not verify"* ]] || h_fail "a changed checkpoint: exit $rc: $out"
printf 'vigil-checkpoint-v1\nissued_at_ms: x\n' >"$H_DIR/cp-bad"
run --checkpoint "$H_DIR/cp-bad"
[[ $rc == 1 && $out == *"line 2: issued_at_ms must be a decimal number"* ]] || h_fail "a malformed checkpoint: exit $rc: $out"
h_pass "deleting the newest rows escapes the chain but not the checkpoint; changed checkpoints are refused"

# ---- 4. the audit log's and the timelines' chains -------------------------------------------
h_ctl evidence checkpoint --out "$H_DIR/cp2" || h_fail "checkpoint failed"
run
[[ $rc == 0 && $(sed -n 2p <<<"$out") == "audit log: "*" rows, chain intact" &&
    $(sed -n 3p <<<"$out") == "incident timelines: 0 rows, chain intact" &&
    $(sed -n 4p <<<"$out") == "command reports: 0 rows, chain intact" ]] ||
    h_fail "the other chains' verdicts: exit $rc: $out"
# An audit row rewritten in place: its place in the chain is named.
row=$(h_sql "select id from audit_log where action = 'operator.add' and subject = 'vera'")
place=$(h_sql "select seq from chain_links where chain = 'audit_log' and row_id = $row")
h_sql "SET session_replication_role = replica;
       UPDATE audit_log SET detail = 'nothing happened' WHERE id = $row" >/dev/null
run
[[ $rc == 1 && $(sed -n 2p <<<"$out") == "audit log: chain broken at place $place: link differs: the row was changed after it was linked" ]] ||
    h_fail "a rewritten audit row: exit $rc: $out"
run -o json
[[ $(jq -r '.chains[] | select(.name == "audit") | .broken_at' <<<"$out") == "$place" ]] ||
    h_fail "a rewritten audit row, -o json: $out"
grep -q "error: audit chain: broken at place $place" "$H_DIR/coordinator.log" || h_fail "not logged as an error"
# The rows from there on deleted with their links (and those written since, linked or not):
# the chain is whole again, but not what cp2 signed.
signed_audit=$(sed -n 's/^audit_head: //p' "$H_DIR/cp2")
h_sql "SET session_replication_role = replica;
       DELETE FROM audit_log WHERE id >= $row;
       DELETE FROM chain_links WHERE chain = 'audit_log' AND seq >= $place" >/dev/null
run --checkpoint "$H_DIR/cp2"
[[ $rc == 1 && $(sed -n 2p <<<"$out") == "audit log: "*" rows, chain intact" &&
    $(head -1 <<<"$out") == *"the checkpoint is not held: the checkpoint of "*" names place $signed_audit, which the audit chain no longer has: its newest rows were deleted (it now ends at $((place - 1)))" ]] ||
    h_fail "the audit log's newest rows deleted: exit $rc: $out"
h_pass "the audit log's chain names a rewritten row, and a checkpoint catches its deleted tail"
h_pass "evidence checkpoints"
