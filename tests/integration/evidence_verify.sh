#!/usr/bin/env bash
# `vigilctl evidence verify` over a vault a real agent filled (file and host artifacts, one of
# them in several chunks), then tampered with the way someone holding the database's superuser
# would: the append-only triggers switched off for the session (session_replication_role =
# replica) and one byte of content, a row's metadata, a row's chain hash changed, rows deleted.
# Each time verify exits 1 naming the right row and what is wrong, and says intact again once
# the change is undone. Stepping through the vault one artifact per request (--limit 1) gives
# the same verdicts as one step.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator

# A viewer may list evidence, not make the coordinator re-hash the vault.
"$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/viewer.key" >/dev/null
h_sql "INSERT INTO operators (id, name, public_key, role)
       VALUES ('op-viewer', 'vera', '$(h_key_public "$H_DIR/viewer.key")', 'viewer')" >/dev/null
h_stop_coordinator # operators are loaded at start-up
h_start_coordinator
h_write_ctl_config "$H_DIR/viewer.yaml" "$H_DIR/viewer.key"
h_capture out rc env VIGIL_CONFIG="$H_DIR/viewer.yaml" "$VIGIL_BUILD/vigilctl" evidence verify
[[ $rc == 1 ]] && grep -q "verifying the evidence vault needs the responder role (you are viewer)" <<<"$out" ||
    h_fail "a viewer's verify: exit $rc: $out"
h_pass "a viewer cannot start a verification"

mkdir -p "$H_DIR/files"
chmod 755 "$H_DIR/files"
echo "first file" >"$H_DIR/files/a.txt"
head -c $((700 * 1024)) /dev/urandom >"$H_DIR/files/b.bin" # three 256 KiB chunks
h_start_agent node-a "$(
    cat <<YAML
evidence:
  allow_dirs: ["$H_DIR/files"]
  chunk_size: 256KiB
YAML
)"
active() { [[ $(h_ctl agents -o json | jq '[.[] | select(.state == "active")] | length') == 1 ]]; }
h_wait "the agent active" 30 active

run() { h_capture out rc h_ctl evidence verify "$@"; }

run
[[ $rc == 0 && $(head -1 <<<"$out") == "evidence vault: 0 artifacts, 0 bytes, chain intact" ]] ||
    h_fail "empty vault: exit $rc: $out"
h_pass "an empty vault is intact"

for args in "file --arg path=$H_DIR/files/a.txt" "host" "file --arg path=$H_DIR/files/b.bin" \
    "host" "file --arg path=$H_DIR/files/a.txt"; do
    # shellcheck disable=SC2086 # the kind and its argument are two words
    h_ctl collect --node node-a $args >/dev/null || h_fail "collect $args failed"
done
mapfile -t ids < <(h_sql "select id from evidence order by id")
((${#ids[@]} == 5)) || h_fail "expected 5 artifacts, the vault has ${#ids[@]}"
bytes=$(h_sql "select sum(size) from evidence")
big=${ids[2]}
(($(h_sql "select count(*) from evidence_chunks c join evidence e using (agent_id, artifact)
          where e.id = $big") == 3)) || h_fail "the 700 KiB file is not in three chunks"

expect_intact() { # WHAT
    run
    [[ $rc == 0 && $(head -1 <<<"$out") == "evidence vault: 5 artifacts, $bytes bytes, chain intact" ]] ||
        h_fail "$1: exit $rc: $out"
    run --limit 1 -o json
    [[ $rc == 0 ]] && jq -e --argjson b "$bytes" --argjson last "${ids[4]}" \
        '.checked == 5 and .bytes == $b and .ok == true and .broken_id == null and
         .reason == null and .last_id == $last and (.last_chain | test("^[0-9a-f]{64}$"))' \
        <<<"$out" >/dev/null || h_fail "$1, one artifact per step: exit $rc: $out"
    chain=$(h_sql "select encode(chain, 'hex') from evidence where id = ${ids[4]}")
    [[ $(jq -r .last_chain <<<"$out") == "$chain" ]] || h_fail "$1: last_chain is not the newest row's"
}

expect_broken() { # WHAT ID PATTERN CHECKED: in one step and one artifact per step
    local what=$1 id=$2 pattern=$3 checked=$4
    run
    [[ $rc == 1 ]] && grep -Eq "^evidence vault: chain broken at evidence $id: .*$pattern" <<<"$out" ||
        h_fail "$what: exit $rc: $out"
    h_log "$what: $out"
    run --limit 1 -o json
    [[ $rc == 1 ]] && jq -e --argjson id "$id" --arg p "$pattern" --argjson n "$checked" \
        '.ok == false and .broken_id == $id and (.reason | test($p)) and .checked == $n' \
        <<<"$out" >/dev/null || h_fail "$what, one artifact per step: exit $rc: $out"
    grep -q "error: .*evidence vault: chain broken at evidence=$id" "$H_DIR/coordinator.log" ||
        h_fail "$what: not logged as an error"
}

# As the superuser, past the append-only triggers (h_sql connects as the cluster's superuser).
tamper() { h_sql "SET session_replication_role = replica; $1" >/dev/null; }

expect_intact "as collected"
audit=$(h_sql "select detail from audit_log where action = 'evidence.verify' and actor = 'operator:admin'")
grep -qx "chain intact through evidence ${ids[4]}; other chains intact" <<<"$audit" &&
    grep -qx "chain intact through evidence ${ids[4]} (a step after evidence ${ids[3]}); other chains intact" <<<"$audit" ||
    h_fail "verification not in the audit log as expected: $audit"
h_pass "a vault as collected is intact, in one step and in one step per artifact, and audited"

# ---- one byte of the multi-chunk artifact's second chunk ----
flip() { # DELTA: adds DELTA (mod 256) to byte 1000 of the big artifact's second chunk
    tamper "UPDATE evidence_chunks c SET data = set_byte(c.data, 1000, (get_byte(c.data, 1000) + $1) % 256)
            FROM evidence e WHERE e.id = $big AND c.agent_id = e.agent_id AND c.artifact = e.artifact
            AND c.\"offset\" = 262144"
}
flip 1
expect_broken "one byte of content changed" "$big" "content hash differs from the stored sha256" 2
(($(h_sql "select count(*) from audit_log where action = 'evidence.verify'
           and detail like 'chain broken at evidence $big: content%'") >= 1)) ||
    h_fail "the broken chain is not in the audit log"
flip 255
expect_intact "the byte restored"
h_pass "one changed byte of content names its artifact"

# ---- a chunk removed from the middle of the artifact ----
tamper "CREATE TABLE saved_chunk AS SELECT c.* FROM evidence_chunks c JOIN evidence e USING (agent_id, artifact)
        WHERE e.id = $big AND c.\"offset\" = 262144;
        DELETE FROM evidence_chunks c USING evidence e WHERE e.id = $big AND c.agent_id = e.agent_id
        AND c.artifact = e.artifact AND c.\"offset\" = 262144"
expect_broken "a chunk deleted" "$big" "content differs: a chunk is missing at offset 262144" 2
tamper "INSERT INTO evidence_chunks SELECT * FROM saved_chunk; DROP TABLE saved_chunk"
expect_intact "the chunk restored"
h_pass "a deleted chunk names its artifact and offset"

# ---- a row's metadata, its sha256, its chain hash ----
tamper "UPDATE evidence SET node = 'elsewhere' WHERE id = ${ids[1]}"
expect_broken "a row's node changed" "${ids[1]}" "chain hash differs" 1
tamper "UPDATE evidence SET node = 'node-a' WHERE id = ${ids[1]}"
expect_intact "the node restored"

sha=$(h_sql "select encode(sha256, 'hex') from evidence where id = ${ids[0]}")
tamper "UPDATE evidence SET sha256 = sha256(sha256) WHERE id = ${ids[0]}"
expect_broken "a row's sha256 changed" "${ids[0]}" "chain hash differs" 0
tamper "UPDATE evidence SET sha256 = decode('$sha', 'hex') WHERE id = ${ids[0]}"
expect_intact "the sha256 restored"

chain=$(h_sql "select encode(chain, 'hex') from evidence where id = ${ids[3]}")
tamper "UPDATE evidence SET chain = sha256(chain) WHERE id = ${ids[3]}"
expect_broken "a row's chain hash changed" "${ids[3]}" "chain hash differs" 3
tamper "UPDATE evidence SET chain = decode('$chain', 'hex') WHERE id = ${ids[3]}"
expect_intact "the chain hash restored"
h_pass "a changed node, sha256 or chain hash names its row"

# ---- rows deleted: the next row is named ----
tamper "DELETE FROM evidence WHERE id = $big"
expect_broken "a middle row deleted" "${ids[3]}" "previous link missing" 2
tamper "DELETE FROM evidence WHERE id = ${ids[0]}"
expect_broken "the first row deleted" "${ids[1]}" "previous link missing: the vault does not start" 0
h_pass "a deleted row names the row after it"
