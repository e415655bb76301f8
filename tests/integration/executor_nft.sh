#!/usr/bin/env bash
# The executor's nft and isolate built-ins against the real nft and real traffic, in network
# namespaces of the test's own (ip netns), so the machine's ruleset and interfaces are never
# touched. Three namespaces joined by veth pairs:
#
#   peer  198.51.100.7/24 (never blocked) and 203.0.113.5/32 (in the blocked network)
#     |  vp ---- vn
#   node  198.51.100.1/24, 192.0.2.1/24; the executor runs here (ip netns exec)
#     |  vc ---- vo
#   coordinator  192.0.2.10/24 (agent.yaml's coordinator endpoint)
#
# A block puts the network in the vigil table's set with its timeout and connections from it stop
# while the rest of the peer still gets through; unblock takes it out and they work again; a
# short block lifts by itself when it expires. Blocking this node's own addresses (or a network
# covering them) or the coordinator's is refused and changes nothing. Isolate makes a table that
# keeps only loopback and the coordinator: the coordinator and the node still reach each other,
# the peer and the node do not; release removes it and the peer gets through again.
# Skipped (77) where this cannot run: not root, no nft, no netns or veth, no nftables in the kernel.
source "$(dirname "$0")/../lib/harness.sh"

[[ $(id -u) == 0 ]] || { h_log "SKIP: needs root"; exit 77; }
[[ -x /usr/sbin/nft ]] || { h_log "SKIP: /usr/sbin/nft is not installed"; exit 77; }
command -v ip >/dev/null || { h_log "SKIP: ip (iproute2) is not installed"; exit 77; }
PY=/usr/bin/python3
[[ -x $PY ]] || { h_log "SKIP: $PY is not installed"; exit 77; }
unshare --net /usr/sbin/nft list ruleset >/dev/null 2>&1 ||
    { h_log "SKIP: nft does not work in a new network namespace here"; exit 77; }

EXEC=$VIGIL_BUILD/vigil-agent-exec
DRIVER=$VIGIL_BUILD/executor-driver
H_DIR=$(mktemp -d /tmp/vigil-it.XXXXXX)
D=$H_DIR
# On failure: what the executor reported and said, and the last connection errors.
h_dump_logs() {
    local f
    for f in "$D/reports.log" "$D/executor.log" "$D/net.log"; do
        [[ -s $f ]] || continue
        echo "----- ${f##*/} (last 20 lines) -----" >&2
        tail -n 20 "$f" >&2
    done
}

# Unique namespace names; whatever was made goes on exit, also after a failure or a signal.
NS_TAG=vigil-nft-$$-$RANDOM
NS_NODE=$NS_TAG-node NS_PEER=$NS_TAG-peer NS_COORD=$NS_TAG-coord
NS_MADE=() LISTENERS=()
cleanup() {
    local pid ns
    for pid in "${LISTENERS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${LISTENERS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in "${NS_MADE[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$H_DIR"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

host_tables_before=$(nft list tables 2>/dev/null | grep -c 'inet vigil' || true)

for ns in "$NS_NODE" "$NS_PEER" "$NS_COORD"; do
    ip netns add "$ns" 2>/dev/null || { h_log "SKIP: cannot create network namespaces (ip netns add)"; exit 77; }
    NS_MADE+=("$ns")
    ip -n "$ns" link set lo up
done
# The pairs are made inside the node's namespace and one end moved on: never on the host.
if ! ip -n "$NS_NODE" link add vn type veth peer name vp netns "$NS_PEER" 2>/dev/null ||
    ! ip -n "$NS_NODE" link add vc type veth peer name vo netns "$NS_COORD" 2>/dev/null; then
    h_log "SKIP: cannot create veth pairs in a network namespace"
    exit 77
fi
ip -n "$NS_NODE" addr add 198.51.100.1/24 dev vn
ip -n "$NS_NODE" addr add 192.0.2.1/24 dev vc
ip -n "$NS_NODE" link set vn up
ip -n "$NS_NODE" link set vc up
ip -n "$NS_NODE" route add 203.0.113.0/24 via 198.51.100.7
ip -n "$NS_PEER" addr add 198.51.100.7/24 dev vp
ip -n "$NS_PEER" addr add 203.0.113.5/32 dev vp
ip -n "$NS_PEER" link set vp up
ip -n "$NS_COORD" addr add 192.0.2.10/24 dev vo
ip -n "$NS_COORD" link set vo up

# A TCP listener that answers each connection with the address it came from, and a client that
# connects from a given source address and wants its own address back within 1.5 s.
cat >"$D/net.py" <<'EOF'
import socket, sys
mode = sys.argv[1]
if mode == "serve":  # serve ADDR PORT READY_FILE
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[2], int(sys.argv[3])))
    s.listen(16)
    open(sys.argv[4], "w").close()
    while True:
        c, peer = s.accept()
        try:
            c.sendall(("from %s\n" % peer[0]).encode())
        except OSError:
            pass
        c.close()
else:  # connect SRC DST PORT
    src, dst, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
    s = socket.socket()
    s.settimeout(1.5)
    try:
        s.bind((src, 0))
        s.connect((dst, port))
        got = s.recv(64).decode().strip()
    except OSError as e:
        sys.exit("%s -> %s:%d: %s" % (src, dst, port, e))
    if got != "from " + src:
        sys.exit("%s -> %s:%d: answered %r" % (src, dst, port, got))
EOF
PORT=7000
listen() { # NS ADDR PORT
    ip netns exec "$1" "$PY" "$D/net.py" serve "$2" "$3" "$D/ready-$1" 2>>"$D/net.log" &
    LISTENERS+=($!)
    h_wait "a listener in $1" 10 test -e "$D/ready-$1"
}
listen "$NS_NODE" 0.0.0.0 "$PORT"
listen "$NS_PEER" 0.0.0.0 "$PORT"
listen "$NS_COORD" 192.0.2.10 7400

reach() { ip netns exec "$1" "$PY" "$D/net.py" connect "$2" "$3" "$4" 2>>"$D/net.log"; }
# can WHEN NS SRC DST PORT / cannot WHEN NS SRC DST PORT
can() { reach "${@:2}" || h_fail "$1: $3 should reach $4:$5 but cannot: $(tail -n 1 "$D/net.log")"; }
# A cut connection times out: its packets are dropped, not refused by a listener gone missing.
cannot() {
    ! reach "${@:2}" || h_fail "$1: $3 should not reach $4:$5 but does"
    tail -n 1 "$D/net.log" | grep 'timed out$' >/dev/null ||
        h_fail "$1: $3 -> $4:$5 failed otherwise than by a timeout: $(tail -n 1 "$D/net.log")"
}

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
  - {name: block-brief, kind: nft, op: block, auto: true, params: [{name: address, cidr: {prefix4: {min: 16, max: 32}}}, {name: expires, duration: {min: 1s, max: 1m}}]}
  - {name: unblock, kind: nft, op: unblock, auto: true, params: [{name: address, cidr: {prefix4: {min: 16, max: 32}}}]}
  - {name: isolate, kind: isolate, auto: true}
  - {name: release, kind: isolate, op: release, auto: true}
EOF
chmod 644 "$D/agent.yaml" "$D/keys/signers.yaml"
capsule() { "$DRIVER" capsule "$D/keys" "$D/caps/$1" -i "$1" "${@:2}" >/dev/null; }
capsule block -a block -A address=203.0.113.0/24 -A expires=10m
capsule unblock -a unblock -A address=203.0.113.0/24
capsule block-inner -a block -A address=203.0.113.5 -A expires=10m
capsule block-wider -a block -A address=203.0.112.0/23 -A expires=10m
capsule unblock-wider -a unblock -A address=203.0.112.0/23
capsule block-again -a block -A address=203.0.113.0/24 -A expires=10m
capsule block-brief -a block-brief -A address=203.0.113.0/24 -A expires=2s
capsule isolate -a isolate
capsule release -a release
capsule block-self -a block -A address=198.51.100.1 -A expires=10m
capsule block-self-net -a block -A address=198.51.100.0/24 -A expires=10m
capsule block-self-coordside -a block -A address=192.0.2.1 -A expires=10m
capsule block-coord -a block -A address=192.0.2.10 -A expires=10m
capsule block-coord-net -a block -A address=192.0.2.0/24 -A expires=10m

# run CAPSULE...: through a fresh executor in the node's namespace, the reports into REPORTS.
run() {
    local caps=() c
    for c in "$@"; do caps+=("$D/caps/$c"); done
    REPORTS=$(ip netns exec "$NS_NODE" "$DRIVER" run "$EXEC" "$D/agent.yaml" "${caps[@]}" \
        2>>"$D/executor.log") || h_fail "executor-driver failed: $(tail -n 5 "$D/executor.log")"
    printf '%s\n' "$REPORTS" >>"$D/reports.log"
}
report() { grep "^REPORT id=$1 step=$2 " <<<"$REPORTS" || true; }
# step NAME: runs the capsule NAME, which must end in done exit=0.
step() {
    run "$1"
    grep -q ' exit=0 ' <<<"$(report "$1" "done")" ||
        h_fail "$1 did not exit 0: $(grep "id=$1 " <<<"$REPORTS")"
}
nft_node() { ip netns exec "$NS_NODE" nft "$@"; }
blocked() { nft_node list set inet vigil blocked4; }

# ---- before anything: everyone reaches the node, and the node the coordinator
can "before block" "$NS_PEER" 203.0.113.5 198.51.100.1 "$PORT"
can "before block" "$NS_PEER" 198.51.100.7 198.51.100.1 "$PORT"
can "before block" "$NS_COORD" 192.0.2.10 192.0.2.1 "$PORT"
can "before block" "$NS_NODE" 192.0.2.1 192.0.2.10 7400
h_pass "before any action the peer's addresses and the coordinator reach the node"

# ---- block / unblock
step block
out=$(blocked)
grep -q '203.0.113.0/24 timeout' <<<"$out" || h_fail "block: $out"
cannot "after block" "$NS_PEER" 203.0.113.5 198.51.100.1 "$PORT"
can "after block" "$NS_PEER" 198.51.100.7 198.51.100.1 "$PORT"
can "after block" "$NS_COORD" 192.0.2.10 192.0.2.1 "$PORT"
h_pass "block: 203.0.113.0/24 is in the set with its timeout, 203.0.113.5 is cut off, 198.51.100.7 and the coordinator still get through"

# Blocks that overlap the one in place merge instead of failing: an address inside it, then a
# wider network (which takes the narrower one in).
step block-inner
step block-wider
out=$(blocked)
grep -q '203.0.112.0/23 timeout' <<<"$out" && ! grep -q '203.0.113.0/24' <<<"$out" ||
    h_fail "overlapping blocks: $out"
cannot "after a wider block" "$NS_PEER" 203.0.113.5 198.51.100.1 "$PORT"
step unblock-wider
h_pass "overlapping blocks merge: an address inside the blocked /24 and then the wider /23 both succeed"
step block-again

step unblock
out=$(blocked)
! grep -q '203.0.113.0/24' <<<"$out" || h_fail "unblock: $out"
can "after unblock" "$NS_PEER" 203.0.113.5 198.51.100.1 "$PORT"
can "after unblock" "$NS_PEER" 198.51.100.7 198.51.100.1 "$PORT"
h_pass "unblock: the network is out of the set and 203.0.113.5 gets through again"

# ---- a block lifts by itself when it expires
step block-brief
t0=$SECONDS
cannot "just after a 2 s block" "$NS_PEER" 203.0.113.5 198.51.100.1 "$PORT"
h_wait "the 2 s block to expire" 6 reach "$NS_PEER" 203.0.113.5 198.51.100.1 "$PORT"
! grep -q '203.0.113.0/24' <<<"$(blocked)" || h_fail "an expired block is still listed: $(blocked)"
h_pass "a 2 s block cuts 203.0.113.5 off and lifts by itself (after $((SECONDS - t0)) s)"

# ---- refusals: this node's own addresses and the coordinator's, and nothing changes
before=$(blocked)
run block-self block-self-net block-self-coordside block-coord block-coord-net
expect_refused() { # ID WHAT REASON-PATTERN
    local line
    line=$(report "$1" refused)
    [[ -n $line ]] || h_fail "$2 was not refused: $(grep "id=$1 " <<<"$REPORTS")"
    [[ -z $(report "$1" "done")$(report "$1" started) ]] || h_fail "$2 ran: $(grep "id=$1 " <<<"$REPORTS")"
    grep -qE "reason=.*($3)" <<<"$line" || h_fail "$2: unexpected reason: $line"
    h_log "refused $2: ${line#*reason=}"
}
expect_refused block-self "blocking the node's own address" 'covers 198\.51\.100\.1[ ,]'
expect_refused block-self-net "blocking a network holding the node's own address" 'covers 198\.51\.100\.1[ ,]'
expect_refused block-self-coordside "blocking the node's address on the coordinator's side" 'covers 192\.0\.2\.1[ ,]'
expect_refused block-coord "blocking the coordinator" 'covers 192\.0\.2\.10[ ,]'
expect_refused block-coord-net "blocking a network holding the coordinator" 'covers 192\.0\.2\.(10|1)[ ,]'
[[ $(blocked) == "$before" ]] || h_fail "a refused block changed the set: $(blocked)"
can "after the refusals" "$NS_PEER" 198.51.100.7 198.51.100.1 "$PORT"
can "after the refusals" "$NS_COORD" 192.0.2.10 192.0.2.1 "$PORT"
can "after the refusals" "$NS_NODE" 192.0.2.1 192.0.2.10 7400
h_pass "blocking the node's own addresses or the coordinator is refused, the set is unchanged and traffic flows"

# ---- isolate / release
step isolate
out=$(nft_node list table inet vigil_isolate)
grep -q 'ip saddr 192.0.2.10 accept' <<<"$out" || h_fail "isolate: $out"
can "after isolate" "$NS_COORD" 192.0.2.10 192.0.2.1 "$PORT"
can "after isolate" "$NS_NODE" 192.0.2.1 192.0.2.10 7400
can "after isolate (loopback)" "$NS_NODE" 127.0.0.1 127.0.0.1 "$PORT"
cannot "after isolate" "$NS_PEER" 198.51.100.7 198.51.100.1 "$PORT"
cannot "after isolate" "$NS_PEER" 203.0.113.5 198.51.100.1 "$PORT"
cannot "after isolate" "$NS_NODE" 198.51.100.1 198.51.100.7 "$PORT"
h_pass "isolate: only the coordinator (and loopback) reach the node and are reached from it; the peer is cut off both ways"

step release
out=$(nft_node list tables)
! grep -q 'vigil_isolate' <<<"$out" || h_fail "release: $out"
can "after release" "$NS_PEER" 198.51.100.7 198.51.100.1 "$PORT"
can "after release" "$NS_PEER" 203.0.113.5 198.51.100.1 "$PORT"
can "after release" "$NS_NODE" 198.51.100.1 198.51.100.7 "$PORT"
can "after release" "$NS_COORD" 192.0.2.10 192.0.2.1 "$PORT"
h_pass "release: the isolate table is gone and the peer and the node reach each other again"

host_tables_after=$(nft list tables 2>/dev/null | grep -c 'inet vigil' || true)
[[ $host_tables_after == "$host_tables_before" ]] ||
    h_fail "the host's ruleset gained vigil tables: $(nft list tables)"
h_pass "nft block/unblock and isolate/release change the node namespace's traffic as declared; the host's ruleset is untouched"
