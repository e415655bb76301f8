#!/usr/bin/env bash
# The executor's side of a command, against the real vigil-agent-exec: tests/tools/executor-driver
# signs capsules with test keys and speaks the privsep protocol to it, as the agent's network
# side does (which passes capsules on unread). An auto exec action runs and reports accepted,
# started and done with its exit code and the SHA-256 of its output; every refusal comes with a
# canary proving nothing ran; a timeout kills the whole process group; output past the cap is
# cut with the hash over all of it; an action without root: true runs as the agent's user.
# Needs root (the catalog and the signer file must be root's; the user drop needs it).
source "$(dirname "$0")/../lib/harness.sh"

[[ $(id -u) == 0 ]] || { h_log "SKIP: needs root"; exit 77; }
id nobody >/dev/null 2>&1 || { h_log "SKIP: no user nobody"; exit 77; }

EXEC=$VIGIL_BUILD/vigil-agent-exec
DRIVER=$VIGIL_BUILD/executor-driver
H_DIR=$(mktemp -d /tmp/vigil-it.XXXXXX)
trap 'rm -rf "$H_DIR"' EXIT
chmod 755 "$H_DIR"
D=$H_DIR
OUT=$D/out
mkdir -p "$D/keys" "$D/bin" "$D/state" "$D/caps" "$OUT"
chmod 1777 "$OUT"
"$DRIVER" keys "$D/keys"

# The actions' programs: root's, writable by nobody else, as the catalog demands.
cat >"$D/bin/canary.sh" <<EOF
#!/bin/sh
echo "canary ran with: \$1"
: >"$OUT/ran-\$1"
EOF
cat >"$D/bin/block.sh" <<EOF
#!/bin/sh
echo "block \$1" >>"$OUT/blocked"
EOF
# Ignores TERM (its child inherits that), so only the KILL 2 s after the timeout stops them.
cat >"$D/bin/slow.sh" <<EOF
#!/bin/sh
trap '' TERM
sleep 60 &
echo \$! >"$OUT/slow-child.pid"
echo \$\$ >"$OUT/slow.pid"
sleep 60
EOF
cat >"$D/bin/noisy.sh" <<EOF
#!/bin/sh
seq 1 20000
EOF
cat >"$D/bin/as_user.sh" <<EOF
#!/bin/sh
id -u >"$OUT/user-canary"
echo "\$PATH \$LANG \$HOME" >"$OUT/user-env"
ls /proc/self/fd >"$OUT/user-fds"
EOF
# The precheck passes for every name but "bad".
cat >"$D/bin/check.sh" <<EOF
#!/bin/sh
echo "checked \$1" >>"$OUT/checked"
[ "\$1" != bad ]
EOF
chmod 755 "$D"/bin/*.sh

cat >"$D/agent.yaml" <<EOF
node: node-a
state_dir: "$D/state"
user: nobody
coordinator:
  endpoint: "tcp://192.0.2.10:7400"
  public_key: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
signers_file: "$D/keys/signers.yaml"
actions:
  - name: canary
    kind: exec
    argv: [$D/bin/canary.sh, "{name}"]
    root: true
    auto: true
    params:
      - {name: name, identifier: {pattern: "[A-Za-z0-9_.;/ -]+"}}
  - name: approved-canary
    kind: exec
    argv: [$D/bin/canary.sh, "{name}"]
    root: true
    params:
      - {name: name, identifier: {pattern: "[a-z0-9-]+"}}
  - name: block
    kind: exec
    argv: [$D/bin/block.sh, "{address}"]
    root: true
    auto: true
    params:
      - {name: address, cidr: {prefix4: {min: 8, max: 32}}}
  - name: slow
    kind: exec
    argv: [$D/bin/slow.sh]
    root: true
    auto: true
    timeout: 1s
  - name: noisy
    kind: exec
    argv: [$D/bin/noisy.sh]
    root: true
    auto: true
    output_max: 1KiB
  - name: as-user
    kind: exec
    argv: [$D/bin/as_user.sh]
    auto: true
  - name: checked-canary
    kind: exec
    argv: [$D/bin/canary.sh, "{name}"]
    root: true
    auto: true
    precheck: check-name
    params:
      - {name: name, identifier: {pattern: "[a-z]+"}}
  - name: check-name
    kind: exec
    argv: [$D/bin/check.sh, "{name}"]
    root: true
    params:
      - {name: name, identifier: {pattern: "[a-z]+"}}
  - name: stop-sleeper
    kind: signal
    auto: true
    params:
      - {name: process, enum: [sleeper]}
      - {name: signal, enum: [TERM]}
  - name: restart-unit
    kind: systemd
    auto: true
    params:
      - {name: unit, enum: [backend.service]}
  - name: block-source
    kind: nft
    op: block
    auto: true
    params:
      - {name: address, cidr: {prefix4: {min: 16, max: 32}}}
      - {name: expires, duration: {min: 1m, max: 24h}}
  - name: isolate-node
    kind: isolate
    auto: true
collectors:
  processes:
    watch:
      - {name: sleeper, comm: vgsleeper}
EOF
chmod 644 "$D/agent.yaml" "$D/keys/signers.yaml"

# capsule NAME [driver capsule options]: writes $D/caps/NAME.
capsule() {
    local name=$1
    shift
    "$DRIVER" capsule "$D/keys" "$D/caps/$name" -i "$name" "$@" >/dev/null
}
# run CAPSULE...: one executor process for these capsules; its reports in $REPORTS.
run() {
    local caps=() c
    for c in "$@"; do caps+=("$D/caps/$c"); done
    REPORTS=$("$DRIVER" run "$EXEC" "$D/agent.yaml" "${caps[@]}" 2>>"$D/executor.log") ||
        h_fail "executor-driver failed: $(tail -n 5 "$D/executor.log")"
    printf '%s\n' "$REPORTS" >>"$D/reports.log"
}
report() { grep "^REPORT id=$1 step=$2 " <<<"$REPORTS" || true; }
steps() { grep "^REPORT id=$1 " <<<"$REPORTS" | sed 's/.* step=\([a-z]*\) .*/\1/' | tr '\n' ' '; }
sha() { sha256sum | cut -d' ' -f1; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# ---- an auto exec action runs, and reports every step
capsule ok -a canary -A name=first
run ok
[[ $(steps ok) == "accepted started done " ]] || h_fail "steps of ok: $(steps ok)"
done_line=$(report ok done)
[[ $(field exit "$done_line") == 0 ]] || h_fail "exit of ok: $done_line"
[[ $(field sha256 "$done_line") == $(echo "canary ran with: first" | sha) ]] ||
    h_fail "output hash of ok: $done_line"
[[ $(field truncated "$done_line") == 0 ]] || h_fail "ok is not truncated: $done_line"
[[ -e $OUT/ran-first ]] || h_fail "the canary of ok did not run"
h_pass "an auto exec action runs: accepted, started, done with exit 0 and its output's SHA-256"
out_line=$(grep "^OUTPUT id=ok " <<<"$REPORTS" || true)
[[ $(field sha256 "$out_line") == $(field sha256 "$done_line") &&
    $(field last "$out_line") == 1 && $(field offset "$out_line") == 0 ]] ||
    h_fail "the kept output of ok, before its done: '$out_line'"
order=$(grep -E "^(OUTPUT id=ok |REPORT id=ok step=done )" <<<"$REPORTS" | cut -c1-6 | tr '\n' ' ')
[[ $order == "OUTPUT REPORT " ]] || h_fail "the output does not come before the done report: $order"
h_pass "the executor hands the kept output to the agent before the done report that hashes it"

# ---- refusals: each one reported with its reason, and nothing runs
before=$(ls "$OUT" | sort | tr '\n' ' ')
capsule expired -a canary -A name=expired -e
capsule wrong-node -a canary -A name=wrongnode -n node-b
capsule tampered -a canary -A name=tampered -t
capsule unknown -a nope -A name=unknown
capsule shell -a canary -A 'name=x; rm -rf /'
capsule traversal -a canary -A name=../../etc/shadow
capsule coord-cidr -a block -A address=192.0.2.0/24
capsule coord-only -a approved-canary -A name=coordonly
capsule eve -a approved-canary -A name=eve -p eve
run expired wrong-node tampered unknown shell traversal coord-cidr coord-only eve ok
expect_refused() { # ID WHAT REASON-PATTERN
    local line
    line=$(report "$1" refused)
    [[ -n $line ]] || h_fail "$2 was not refused: $(grep "id=$1 " <<<"$REPORTS")"
    [[ $(steps "$1") == "refused " ]] || h_fail "$2: steps besides the refusal: $(steps "$1")"
    grep -qE "$3" <<<"$line" || h_fail "$2: reason does not match /$3/: $line"
    h_log "refused $2: ${line#*reason=}"
}
expect_refused expired "an expired capsule" 'expired'
expect_refused wrong-node "a capsule for another node" 'for node node-b, not for this node'
expect_refused tampered "a tampered argument" 'does not match'
expect_refused unknown "an unknown action" 'unknown action "nope"'
expect_refused shell "'x; rm -rf /' as an identifier" 'argument "name"'
expect_refused traversal "'../../etc/shadow' as an identifier" 'argument "name"'
expect_refused coord-cidr "a CIDR covering the coordinator" '192\.0\.2\.10'
expect_refused coord-only "an approve action with only the coordinator's signature" 'approv'
expect_refused eve "an approver missing from the signer file" "eve's key is not in this node's signer file"
expect_refused ok "the replayed capsule (same executor)" 'replayed'
after=$(ls "$OUT" | sort | tr '\n' ' ')
[[ $before == "$after" ]] || h_fail "something ran: $OUT was \"$before\", now \"$after\""
h_pass "ten refusals, each with its reason, and the canaries prove nothing ran"

# ---- the nonce survives a restart of the executor
run ok
expect_refused ok "the replayed capsule (after a restart)" 'replayed'
h_pass "a replayed capsule is refused after the executor restarted too"

# ---- positive controls for the refusals above: the same actions do run when they may
capsule alice -a approved-canary -A name=alice -p alice
capsule other-cidr -a block -A address=198.51.100.0/24
capsule dry -a canary -A name=dry -d
run alice other-cidr dry
[[ $(field exit "$(report alice done)") == 0 && -e $OUT/ran-alice ]] ||
    h_fail "the approve action did not run with alice's approval: $(steps alice)"
grep -q "block 198.51.100.0/24" "$OUT/blocked" || h_fail "block of 198.51.100.0/24 did not run"
dry_line=$(report dry done)
[[ $(steps dry) == "accepted done " ]] || h_fail "steps of the dry run: $(steps dry)"
grep -q "reason=\"dry run: would run $D/bin/canary.sh dry\"" <<<"$dry_line" ||
    h_fail "dry run reason: $dry_line"
[[ ! -e $OUT/ran-dry ]] || h_fail "the dry run ran"
h_pass "an approved action runs with a responder's approval, a CIDR away from the coordinator passes, a dry run reports and runs nothing"

# ---- a timeout stops the whole process group (TERM ignored: KILL 2 s later)
capsule slow -a slow
run slow
slow_line=$(report slow done)
[[ $(field exit "$slow_line") == -9 ]] || h_fail "the slow action was not killed: $slow_line"
grep -q "timed out" <<<"$slow_line" || h_fail "no timeout reason: $slow_line"
took=$(field duration_ms "$slow_line")
((took >= 2900 && took < 6000)) || h_fail "the slow action took $took ms (1 s timeout + 2 s grace)"
for f in slow.pid slow-child.pid; do
    pid=$(cat "$OUT/$f")
    sleep 0.2
    # A zombie (waiting for whatever reaps orphans here) is dead too.
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null || true)
    [[ -z $state || $state == Z || $state == X ]] ||
        h_fail "process $pid ($f) of the timed-out group is alive (state $state)"
done
h_pass "a timeout kills the process group: exit -9 after $took ms, no process left"

# ---- output past the cap: cut, hashed whole
capsule noisy -a noisy
run noisy
noisy_line=$(report noisy done)
[[ $(field truncated "$noisy_line") == 1 ]] || h_fail "noisy output not flagged truncated: $noisy_line"
[[ $(field sha256 "$noisy_line") == $(seq 1 20000 | sha) ]] ||
    h_fail "the hash is not over the whole output: $noisy_line"
kept=0
for b in $(grep "^OUTPUT id=noisy " <<<"$REPORTS" | sed -n 's/.* bytes=\([0-9]*\).*/\1/p'); do
    kept=$((kept + b))
done
[[ $kept == 1024 ]] || h_fail "noisy: $kept bytes kept (the cap is 1 KiB)"
h_pass "output over the 1 KiB cap is flagged truncated, its SHA-256 covers all $(seq 1 20000 | wc -c) bytes, the first 1 KiB are kept"

# ---- an action without root: true runs as the agent's user, with the fixed environment
capsule as-user -a as-user
run as-user
[[ $(field exit "$(report as-user done)") == 0 ]] || h_fail "as-user failed: $(report as-user done)"
[[ $(stat -c %U "$OUT/user-canary") == nobody && $(cat "$OUT/user-canary") == $(id -u nobody) ]] ||
    h_fail "as-user ran as $(stat -c %U "$OUT/user-canary") uid $(cat "$OUT/user-canary")"
[[ $(cat "$OUT/user-env") == "/usr/sbin:/usr/bin:/sbin:/bin C " ]] ||
    h_fail "environment: $(cat "$OUT/user-env")"
fds=$(tr '\n' ' ' <"$OUT/user-fds")
[[ $fds == "0 1 2 3 " ]] || h_fail "descriptors other than stdin, stdout, stderr (and ls's own): $fds"
h_pass "a non-root action runs as nobody with PATH and LANG only and no inherited descriptor"

# ---- built-ins: signal a watched process (found in /proc by its comm, as the agent watches it)
cp "$(command -v sleep)" "$D/bin/vgsleeper"
"$D/bin/vgsleeper" 300 &
sleeper=$!
capsule signal -a stop-sleeper -A process=sleeper -A signal=TERM
run signal
grep -q "reason=\"sent SIGTERM to sleeper (pid $sleeper)\"" <<<"$(report signal done)" ||
    h_fail "signal: $(report signal done)"
wait "$sleeper" 2>/dev/null || true
! kill -0 "$sleeper" 2>/dev/null || h_fail "the watched process $sleeper is still running"
h_pass "a signal action finds the watched process by its comm and sends it SIGTERM"

# ---- built-ins as fixed argv vectors (dry runs: nothing is changed on this machine)
capsule systemd-dry -a restart-unit -A unit=backend.service -d
capsule nft-dry -a block-source -A address=203.0.113.0/24 -A expires=10m -d
capsule nft-coord -a block-source -A address=192.0.2.10 -A expires=10m -d
capsule isolate-dry -a isolate-node -d
run systemd-dry nft-dry nft-coord isolate-dry
grep -qE 'would run /(usr/)?bin/systemctl restart --no-ask-password -- backend.service"' \
    <<<"$(report systemd-dry done)" || h_fail "systemd argv: $(report systemd-dry done)"
grep -q 'add element inet vigil blocked4 { 203.0.113.0/24 timeout 600s }' \
    <<<"$(report nft-dry done)" || h_fail "nft argv: $(report nft-dry done)"
expect_refused nft-coord "blocking the coordinator" '192\.0\.2\.10'
grep -q 'input ip saddr 192.0.2.10 accept ; add rule inet vigil_isolate output ip daddr 192.0.2.10 accept' \
    <<<"$(report isolate-dry done)" || h_fail "isolate argv: $(report isolate-dry done)"
h_pass "systemd, nft and isolate build their fixed argv (dry runs); blocking the coordinator is refused"

# ---- a precheck runs first; the action runs only when it succeeds
capsule pre-good -a checked-canary -A name=good
capsule pre-bad -a checked-canary -A name=bad
run pre-good pre-bad
[[ $(field exit "$(report pre-good done)") == 0 && -e $OUT/ran-good ]] ||
    h_fail "precheck passed but the action did not run: $(report pre-good done)"
bad_line=$(report pre-bad done)
grep -q 'precheck check-name failed (exit 1): checked-canary not run' <<<"$bad_line" ||
    h_fail "failed precheck: $bad_line"
[[ ! -e $OUT/ran-bad ]] || h_fail "the action ran after its precheck failed"
[[ $(grep -c . "$OUT/checked") == 2 ]] || h_fail "the precheck ran $(grep -c . "$OUT/checked") times"
h_pass "a precheck gates its action: passed, the action runs; failed, DONE says so and nothing else runs"

# ---- a coordinator endpoint given by name is resolved (in the background) by the executor
sed 's|tcp://192.0.2.10:7400|tcp://localhost:7400|' "$D/agent.yaml" >"$D/agent-name.yaml"
chmod 644 "$D/agent-name.yaml"
capsule isolate-name -a isolate-node -d
REPORTS=$("$DRIVER" run "$EXEC" "$D/agent-name.yaml" "$D/caps/isolate-name" 2>>"$D/executor.log") ||
    h_fail "executor-driver failed: $(tail -n 5 "$D/executor.log")"
grep -q 'input ip saddr 127.0.0.1 accept' <<<"$(report isolate-name done)" ||
    h_fail "isolate with a named coordinator: $(report isolate-name done)"
h_pass "a coordinator endpoint by name (localhost) is resolved and kept reachable by isolate"

# ---- the replay cache is the executor's: a directory the agent's user could change is refused
mkdir -p "$D/open"
chmod 0777 "$D/open"
sed "s|^state_dir: .*|state_dir: \"$D/open/state\"|" "$D/agent.yaml" >"$D/agent-open.yaml"
chmod 644 "$D/agent-open.yaml"
capsule open-parent -a canary -A name=openparent
if "$DRIVER" run "$EXEC" "$D/agent-open.yaml" "$D/caps/open-parent" >/dev/null 2>"$D/open.log"; then
    h_fail "the executor must refuse a replay directory in a world-writable parent"
fi
grep -q "executor_state_dir: .*writable by nobody else" "$D/open.log" ||
    h_fail "the refusal should say why: $(tail -n 3 "$D/open.log")"
[[ ! -e $OUT/ran-openparent ]] || h_fail "a command ran although the executor refused to start"
[[ -d $D/state-exec/replay && $(stat -c %a "$D/state-exec") == 700 ]] ||
    h_fail "the replay cache should live in state_dir-exec, mode 0700"
h_pass "the replay cache lives in the executor's own 0700 directory; a world-writable parent is refused"
