#!/usr/bin/env bash
# `vigilctl evidence get` on one connection with its GetEvidence requests pipelined
# (cli/evidence_fetch.c):
#   1. an artifact of several 3 MiB pieces comes back byte for byte, to a file and to standard
#      output, and each fetch is exactly one evidence.get audit row (the coordinator audits the
#      request at offset 0); an empty artifact is fetched and audited too
#   2. a coordinator frozen mid-fetch (SIGSTOP): the fetch fails after --timeout, not after
#      one timeout per piece, says so, and leaves no partial file
#   3. a coordinator killed mid-fetch: the error says the connection was lost; no partial file
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator

mkdir -p "$H_DIR/files"
chmod 755 "$H_DIR/files"
head -c $((10 * 1024 * 1024 + 12345)) /dev/urandom >"$H_DIR/files/four-pieces.bin"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$H_DIR/files/big.bin"
: >"$H_DIR/files/empty.bin"
chmod 644 "$H_DIR/files"/*
h_start_agent node-a "evidence:
  allow_dirs: [\"$H_DIR/files\"]
  max_size: 80MiB
  chunk_size: 1MiB
spool:
  max_size: 256MiB"
active() { [[ $(h_ctl agents -o json | jq '[.[] | select(.state == "active")] | length') == 1 ]]; }
h_wait "the agent active" 30 active

collect() { # FILE: prints the stored artifact's id
    local out
    out=$(h_ctl collect --node node-a file --arg "path=$H_DIR/files/$1" --timeout 120s -o json) ||
        h_fail "collect $1: $out"
    jq -r '.[0].id' <<<"$out"
}
audited() { h_sql "select count(*) from audit_log where action = 'evidence.get' and subject = 'evidence=$1'"; }

# ---- 1. whole, identical, audited once per fetch ----
id=$(collect four-pieces.bin)
[[ $(audited "$id") == 0 ]] || h_fail "evidence $id audited before any fetch"
out=$(h_ctl evidence get "$id" --out "$H_DIR/four.out") || h_fail "evidence get $id: $out"
cmp "$H_DIR/files/four-pieces.bin" "$H_DIR/four.out" || h_fail "the fetched artifact differs"
[[ $out == "evidence $id: $((10 * 1024 * 1024 + 12345)) bytes, sha256 "*" verified, written to $H_DIR/four.out" ]] ||
    h_fail "evidence get's line: $out"
[[ $(audited "$id") == 1 ]] || h_fail "one fetch of 4 pieces: $(audited "$id") evidence.get rows"
h_ctl evidence get "$id" --out - | cmp - "$H_DIR/files/four-pieces.bin" || h_fail "--out - differs"
[[ $(audited "$id") == 2 ]] || h_fail "two fetches: $(audited "$id") evidence.get rows"
empty=$(collect empty.bin)
h_ctl evidence get "$empty" --out "$H_DIR/empty.out" >/dev/null || h_fail "evidence get of an empty artifact"
[[ -f $H_DIR/empty.out && ! -s $H_DIR/empty.out && $(audited "$empty") == 1 ]] ||
    h_fail "the empty artifact: $(stat -c %s "$H_DIR/empty.out" 2>&1), audited $(audited "$empty")"
h_pass "an artifact of 4 pieces comes back byte for byte, each fetch one evidence.get row"

# ---- 2. and 3. the coordinator stops answering mid-fetch ----
big=$(collect big.bin)
# get_interrupted SIGNAL OUT: starts a fetch of big into OUT and sends the coordinator SIGNAL
# once the first piece is written; sets rc, msg and took (seconds).
get_interrupted() {
    local sig=$1 out=$2 pid start size=0 deadline=$((SECONDS + 30))
    start=$(date +%s.%N)
    h_ctl --timeout 2s evidence get "$big" --out "$out" >"$H_DIR/get.out" 2>&1 &
    pid=$!
    while ((size < 3 * 1024 * 1024)); do
        kill -0 "$pid" 2>/dev/null || h_fail "the fetch ended before the coordinator was stopped: $(cat "$H_DIR/get.out")"
        ((SECONDS < deadline)) || h_fail "the fetch wrote nothing in 30s"
        size=$(stat -c %s "$out" 2>/dev/null || echo 0)
        sleep 0.01
    done
    kill "-$sig" "$H_COORD_PID"
    rc=0
    wait "$pid" || rc=$?
    took=$(echo "$(date +%s.%N) - $start" | bc)
    msg=$(cat "$H_DIR/get.out")
}
get_interrupted STOP "$H_DIR/frozen.out"
kill -CONT "$H_COORD_PID"
[[ $rc == 1 && $msg == *"no reply from tcp://127.0.0.1:$H_PORT_ADMIN within 2s (the coordinator answered earlier requests on this connection, then went quiet: is it overloaded or stopped?)"* &&
    $msg == *"evidence $big: $H_DIR/frozen.out removed; nothing was kept"* ]] ||
    h_fail "a frozen coordinator: exit $rc: $msg"
[[ ! -e $H_DIR/frozen.out ]] || h_fail "a partial file was left: $(stat -c %s "$H_DIR/frozen.out") bytes"
(($(echo "$took < 10" | bc))) || h_fail "the fetch gave up after ${took}s, not about --timeout (2s)"
h_log "frozen coordinator: exit $rc after ${took}s: $msg"
h_wait "coordinator healthy again" 30 h_healthz

get_interrupted KILL "$H_DIR/killed.out"
H_COORD_PID_KILLED=$H_COORD_PID
H_COORD_PID=""
wait "$H_COORD_PID_KILLED" 2>/dev/null || true
[[ $rc == 1 && $msg == *"the connection was lost after it was authenticated: did the coordinator stop or restart?"* &&
    $msg == *"evidence $big: $H_DIR/killed.out removed; nothing was kept"* ]] ||
    h_fail "a killed coordinator: exit $rc: $msg"
[[ ! -e $H_DIR/killed.out ]] || h_fail "a partial file was left: $(stat -c %s "$H_DIR/killed.out") bytes"
h_log "killed coordinator: exit $rc after ${took}s: $msg"
h_pass "a coordinator frozen or killed mid-fetch: a clear error after --timeout, no partial file"
