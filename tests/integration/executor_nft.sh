#!/usr/bin/env bash
# The executor's nft and isolate built-ins against the real nft, inside a network namespace of
# the test's own (unshare --net), so the machine's ruleset is never touched: a block puts the
# network in the vigil table's set with its timeout, unblock takes it out, isolate makes a table
# that keeps only loopback and the coordinator, release removes it.
# Skipped (77) where nft cannot run: not installed, or no nftables in the kernel.
source "$(dirname "$0")/../lib/harness.sh"

[[ $(id -u) == 0 ]] || { h_log "SKIP: needs root"; exit 77; }
[[ -x /usr/sbin/nft ]] || { h_log "SKIP: /usr/sbin/nft is not installed"; exit 77; }
unshare --net /usr/sbin/nft list ruleset >/dev/null 2>&1 ||
    { h_log "SKIP: nft does not work in a new network namespace here"; exit 77; }

EXEC=$VIGIL_BUILD/vigil-agent-exec
DRIVER=$VIGIL_BUILD/executor-driver
H_DIR=$(mktemp -d /tmp/vigil-it.XXXXXX)
trap 'rm -rf "$H_DIR"' EXIT
D=$H_DIR
mkdir -p "$D/keys" "$D/state" "$D/caps"
"$DRIVER" keys "$D/keys"
cat >"$D/agent.yaml" <<EOF
node: node-a
state_dir: "$D/state"
coordinator:
  endpoint: "tcp://192.0.2.10:7400"
  public_key: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
signers_file: "$D/keys/signers.yaml"
actions:
  - {name: block, kind: nft, op: block, auto: true, params: [{name: address, cidr: {prefix4: {min: 16, max: 32}}}, {name: expires, duration: {min: 1m, max: 1h}}]}
  - {name: unblock, kind: nft, op: unblock, auto: true, params: [{name: address, cidr: {prefix4: {min: 16, max: 32}}}]}
  - {name: isolate, kind: isolate, auto: true}
  - {name: release, kind: isolate, op: release, auto: true}
EOF
chmod 644 "$D/agent.yaml" "$D/keys/signers.yaml"
capsule() { "$DRIVER" capsule "$D/keys" "$D/caps/$1" -i "$1" "${@:2}" >/dev/null; }
capsule block -a block -A address=203.0.113.0/24 -A expires=10m
capsule unblock -a unblock -A address=203.0.113.0/24
capsule isolate -a isolate
capsule release -a release

# One namespace for the whole sequence: each step, then what nft lists.
unshare --net bash -c "
    set -e
    step() { '$DRIVER' run '$EXEC' '$D/agent.yaml' '$D/caps/'\$1 | grep ' step=done '; }
    step block; echo '--- after block'; nft list set inet vigil blocked4
    step unblock; echo '--- after unblock'; nft list set inet vigil blocked4
    step isolate; echo '--- after isolate'; nft list table inet vigil_isolate
    step release; echo '--- after release'; nft list tables
" >"$D/out.txt" 2>"$D/err.txt" || h_fail "the sequence failed: $(tail -n 5 "$D/err.txt")"

section() { sed -n "/^--- after $1\$/,/^---/p" "$D/out.txt"; }
grep -c ' step=done exit=0 ' "$D/out.txt" | grep -qx 4 || h_fail "not every step exited 0: $(grep step= "$D/out.txt")"
section block | grep -q '203.0.113.0/24 timeout' || h_fail "block: $(section block)"
! section unblock | grep -q '203.0.113.0/24' || h_fail "unblock: $(section unblock)"
section isolate | grep -q 'ip saddr 192.0.2.10 accept' || h_fail "isolate: $(section isolate)"
! section release | grep -q 'vigil_isolate' || h_fail "release: $(section release)"
h_pass "nft block/unblock and isolate/release change the namespace's ruleset as declared"
