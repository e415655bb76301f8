#!/usr/bin/env bash
# The evidence path's speed, beside sha256sum in the same run:
#   1. one artifact of SIZE MiB (256 by default, random bytes in a file) collected from a real
#      agent into the vault (`vigilctl collect file`: read and hashed by the agent, sent in
#      chunks through its spool, stored and re-hashed by the coordinator) and fetched back out
#      (`vigilctl evidence get`, hashed again as it arrives): mb_per_s = 2 * SIZE / that time;
#   2. `sha256sum` of the same file: what hashing the bytes once costs here;
#   3. `vigilctl evidence verify` over a vault of ROWS rows (1,000,000 by default: the artifact
#      above and empty ones tests/bench/vault-fill chained after it): verify_rows_per_s.
#
#   tests/bench/evidence.sh [--size MIB] [--rows N]
#
# Last line: evidence: mb_per_s=X sha256sum_mb_per_s=Y ratio=R verify_rows_per_s=V
# (ratio = X / Y). Targets (issue 15): X >= 100, V >= 100000.
set -euo pipefail
SIZE=256
ROWS=1000000
while (($#)); do
    case $1 in
    --size) SIZE=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "evidence.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
done
export H_LOG_LEVEL=warn
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator
mkdir -p "$H_DIR/files"
chmod 755 "$H_DIR/files"
head -c $((SIZE * 1024 * 1024)) /dev/urandom >"$H_DIR/files/big.bin"
chmod 644 "$H_DIR/files/big.bin"
h_start_agent node-a "$(
    cat <<YAML
evidence:
  allow_dirs: ["$H_DIR/files"]
  max_size: $((SIZE + 1))MiB
  chunk_size: 1MiB
spool:
  max_size: $((2 * SIZE + 64))MiB
  segment_size: 64MiB
YAML
)"
active() { [[ $(h_ctl agents -o json | jq '[.[] | select(.state == "active")] | length') == 1 ]]; }
h_wait "the agent active" 30 active

now() { date +%s.%N; }
t0=$(now)
h_ctl collect --node node-a file --arg "path=$H_DIR/files/big.bin" --timeout 600s -o json >"$H_DIR/collect.json" ||
    h_fail "collect failed: $(cat "$H_DIR/collect.json")"
t1=$(now)
id=$(jq -r '.[0].id' "$H_DIR/collect.json")
h_ctl --timeout 600s evidence get "$id" --out "$H_DIR/back.bin" >/dev/null || h_fail "evidence get failed"
t2=$(now)
cmp -s "$H_DIR/files/big.bin" "$H_DIR/back.bin" || h_fail "the artifact came back different"
rm -f "$H_DIR/back.bin"
t3=$(now)
sha256sum "$H_DIR/files/big.bin" >/dev/null
t4=$(now)

# The vault: chained empty rows after the artifact, then one verification walk.
pgsock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
[[ -d $H_DIR/coord/pgsock ]] && pgsock=$H_DIR/coord/pgsock
"$VIGIL_BUILD/vault-fill" "host=$pgsock port=5432 user=vigil dbname=vigil" $((ROWS - 1)) >/dev/null ||
    h_fail "vault-fill failed"
t5=$(now)
h_ctl --timeout 600s evidence verify >"$H_DIR/verify.out" || h_fail "verify: $(cat "$H_DIR/verify.out")"
t6=$(now)
head -1 "$H_DIR/verify.out" | grep "^evidence vault: $ROWS artifacts, .* chain intact$" >/dev/null ||
    h_fail "verify did not walk $ROWS intact rows: $(cat "$H_DIR/verify.out")"

awk -v size="$SIZE" -v rows="$ROWS" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v t4="$t4" \
    -v t5="$t5" -v t6="$t6" 'BEGIN {
    mb = size * 1048576 / 1e6
    e2e = 2 * mb / (t2 - t0); sha = mb / (t4 - t3)
    printf "evidence: in_s=%.2f out_s=%.2f verify_s=%.2f size_mib=%d rows=%d\n", t1 - t0, t2 - t1, t6 - t5, size, rows
    printf "evidence: mb_per_s=%.0f sha256sum_mb_per_s=%.0f ratio=%.2f verify_rows_per_s=%.0f\n", e2e, sha, e2e / sha, rows / (t6 - t5)
}'
