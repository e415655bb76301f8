#!/usr/bin/env bash
# Evidence on demand end to end: `vigilctl collect` asks real agents for netstat, processes,
# host, log_tail and file artifacts; each is hashed on the agent, re-hashed by the coordinator
# over the bytes it stored, and fetched back by `vigilctl evidence get` with the same SHA-256.
# Paths outside the agent's allowed directories (directly, through a symlink, through ../),
# unknown kinds and absent nodes are refused with a clear line and a non-zero exit.
# (postgres and redis artifacts are covered by the probes' tests.)
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator

mkdir -p "$H_DIR/files" "$H_DIR/logs" "$H_DIR/outside"
chmod 755 "$H_DIR/files" "$H_DIR/logs"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$H_DIR/files/big.bin" # several 256 KiB chunks
echo "not for collection" >"$H_DIR/outside/secret.txt"
ln -s "$H_DIR/outside/secret.txt" "$H_DIR/files/link-out"
for i in $(seq 1 200); do echo "$(date -u +%FT%TZ) app line $i"; done >"$H_DIR/logs/app.log"

agent_yaml=$(
    cat <<YAML
evidence:
  allow_dirs: ["$H_DIR/files"]
  max_size: 16MiB
  chunk_size: 256KiB
collectors:
  logs:
    files:
      - name: app
        path: "$H_DIR/logs/app.log"
YAML
)
h_start_agent node-a "$agent_yaml"
h_start_agent node-b "$agent_yaml"
both_active() {
    [[ $(h_ctl agents -o json | jq '[.[] | select(.state == "active")] | length') == 2 ]]
}
h_wait "both agents active" 30 both_active

# collect_one KIND [--arg k=v ...]: collects from node-a, fetches the artifact, checks that
# the fetched file, the vault's sha256 and the JSON agree; prints the fetched file's path.
collect_one() {
    local kind=$1 out id sha db_sha file
    shift
    out=$(h_ctl collect --node node-a "$kind" "$@" -o json) || h_fail "collect $kind: exit $?: $out"
    jq -e 'length == 1 and .[0].status == "stored" and (.[0].id | type == "number") and
           .[0].node == "node-a" and .[0].kind == "'"$kind"'" and (.[0].size | type == "number") and
           (.[0].sha256 | test("^[0-9a-f]{64}$"))' <<<"$out" >/dev/null ||
        h_fail "collect $kind: unexpected JSON: $out"
    id=$(jq -r '.[0].id' <<<"$out")
    sha=$(jq -r '.[0].sha256' <<<"$out")
    db_sha=$(h_sql "select encode(sha256, 'hex') from evidence where id = $id")
    [[ $db_sha == "$sha" ]] || h_fail "collect $kind: vault says $db_sha, vigilctl said $sha"
    file="$H_DIR/got-$kind-$id"
    h_ctl evidence get "$id" --out "$file" >/dev/null || h_fail "evidence get $id ($kind) failed"
    [[ $(sha256sum "$file" | cut -d' ' -f1) == "$sha" ]] || h_fail "evidence get $id: content hash differs"
    [[ $(stat -c %s "$file") == $(jq -r '.[0].size' <<<"$out") ]] || h_fail "evidence get $id: size differs"
    echo "$file"
}

for kind in netstat processes host; do
    f=$(collect_one "$kind")
    [[ -s $f ]] || h_fail "$kind artifact is empty"
done
h_pass "netstat, processes and host artifacts are stored and fetched with matching SHA-256"

f=$(collect_one log_tail --arg name=app --arg lines=50)
grep -q "app line 200" "$f" || h_fail "log_tail lacks the last line: $(tail -2 "$f")"
grep -q "app line 100" "$f" && h_fail "log_tail returned more than the last 50 lines"
h_pass "log_tail returns the configured log's last lines"

f=$(collect_one file --arg path="$H_DIR/files/big.bin")
[[ $(sha256sum "$f" | cut -d' ' -f1) == $(sha256sum "$H_DIR/files/big.bin" | cut -d' ' -f1) ]] ||
    h_fail "the fetched file differs from the original"
id=$(h_sql "select max(id) from evidence")
(($(h_sql "select count(*) from evidence_chunks c join evidence e using (agent_id, artifact) where e.id = $id") > 1)) ||
    h_fail "a 5 MiB file arrived in one chunk"
h_ctl evidence get "$id" --out - | cmp - "$H_DIR/files/big.bin" || h_fail "--out - differs"
h_capture out rc h_ctl evidence get "$id" --out "$f"
[[ $rc != 0 ]] && grep -q "never overwritten" <<<"$out" || h_fail "evidence get overwrote a file: $out"
h_pass "a 5 MiB file arrives in chunks and comes back byte for byte"

# ---- refusals: a clear line, a non-zero exit, nothing stored ----
stored_before=$(h_sql "select count(*) from evidence")
refused() { # DESCRIPTION PATTERN vigilctl-collect-args...
    local what=$1 pattern=$2 out rc
    shift 2
    h_capture out rc h_ctl collect "$@"
    [[ $rc != 0 ]] || h_fail "$what was not refused: $out"
    grep -Eq "$pattern" <<<"$out" || h_fail "$what: unclear message: $out"
    h_log "$what: exit $rc: $out"
}
refused "/etc/passwd" '^vigilctl: node-a: file: .*/etc/passwd.* outside' \
    --node node-a file --arg path=/etc/passwd
refused "a symlink out of the allowed directory" '^vigilctl: node-a: file: .*outside' \
    --node node-a file --arg path="$H_DIR/files/link-out"
refused "a ../ escape" '^vigilctl: node-a: file: .*outside' \
    --node node-a file --arg path="$H_DIR/files/../outside/secret.txt"
refused "an unknown kind" 'unknown evidence kind "shadow"' --node node-a shadow
refused "a node without agents" 'no active agent on node nowhere' --node nowhere host
[[ $(h_sql "select count(*) from evidence") == "$stored_before" ]] || h_fail "a refused collection stored evidence"
(($(h_metric 'vigil_evidence_failed_total{kind="file"}') >= 3)) || h_fail "refused file collections not counted"
(($(h_metric 'vigil_evidence_requests_refused_total{reason="unknown_kind"}') >= 1)) ||
    h_fail "unknown kind not counted"
h_pass "paths outside the allowed directories and unknown kinds are refused, counted and not stored"

# ---- --all: one artifact per agent ----
out=$(h_ctl collect --all host -o json) || h_fail "collect --all: $out"
jq -e 'length == 2 and all(.[]; .status == "stored") and ([.[].node] | sort == ["node-a", "node-b"])' \
    <<<"$out" >/dev/null || h_fail "collect --all: $out"
coll=$(jq -r '.[0].collection_id' <<<"$out")
h_ctl evidence list --collection "$coll" -o json | jq -e 'length == 2' >/dev/null ||
    h_fail "evidence list --collection"
h_ctl evidence list | sed -n 1p | grep "ID.*COLLECTION.*NODE.*KIND.*STATUS.*SIZE.*SHA256" >/dev/null ||
    h_fail "evidence list table header"
(($(h_metric vigil_evidence_stored_total) >= 7)) || h_fail "stored artifacts not counted"
h_pass "collect --all stores one artifact per agent"

# ---- the vault is append-only and chained ----
h_capture out rc h_sql "delete from evidence"
[[ $rc != 0 ]] && grep -q "append-only" <<<"$out" || h_fail "evidence rows could be deleted: $out"
broken=$(h_sql "select count(*) from (select prev_chain, lag(chain) over (order by id) as before, id
                from evidence) s where id > (select min(id) from evidence) and prev_chain <> before")
[[ $broken == 0 ]] || h_fail "$broken vault rows do not link to their predecessor"
h_pass "the evidence vault refuses deletion and every row links to the one before"
