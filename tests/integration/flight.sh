#!/usr/bin/env bash
# The flight recorder end to end (docs/forensics.md): an agent snapshots its node every second
# and keeps 12 s. A listener (python3 -m http.server) lives for 3 s and writes to a followed log;
# after it is gone, `vigilctl collect --node node-a flight` still shows its socket with its
# process as the owner, its process line and its log line, under timestamped headings, while
# the newest snapshot no longer has it. Snapshots older than the window are not shipped: once
# the window has passed, the listener is out of the artifact too. A SEV2 incident on the node
# freezes its recorder by itself: the flight artifact is part of the incident's investigation.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
command -v python3 >/dev/null || { h_log "SKIP: python3 not found"; exit 77; }

L=$H_DIR/logs
mkdir -p "$L"
: >"$L/app.log"
LISTENER=""
stop_listener() {
    local status=$?
    [[ -z $LISTENER ]] || kill "$LISTENER" 2>/dev/null || true
    (exit "$status")
    h_cleanup
}
trap stop_listener EXIT

# A SEV2 runbook that fires on a FATAL line in the followed log, which the test writes last.
RB=$H_DIR/runbooks
mkdir -p "$RB"
cat >"$RB/app-errors.yaml" <<'EOF'
id: app-errors
title: App errors
severity: SEV2
symptoms:
  - {id: errors, signal: log.match_count, labels: {file: app, pattern: fatal}, above: 0, scope: any}
verify:
  - {signal: log.match_count, labels: {file: app, pattern: fatal}, at_most: 0, scope: all, hold: 1h}
EOF
h_start_coordinator "runbooks:
  dir: \"$RB\""
h_start_agent node-a "$(
    cat <<YAML
flight_recorder:
  interval: 1s
  window: 12s
  max_size: 4MiB
collectors:
  logs:
    interval: 1s
    files:
      - {name: app, path: "$L/app.log", patterns: [{name: fatal, regex: "FATAL"}]}
YAML
)"
out=$("$VIGIL_BUILD/vigil-agent" -n -c "$H_DIR/agents/node-a/agent.yaml" 2>&1) ||
    h_fail "the agent refuses the flight_recorder configuration: $out"
active() { [[ $(h_ctl agents -o json | jq -r '.[] | select(.node == "node-a") | .state') == active ]]; }
h_wait "node-a active" 30 active

# A window shorter than the interval is refused with the key's name.
bad=$H_DIR/agents/node-a/bad.yaml
sed -e 's/^  window: 12s/  window: 10s/' -e 's/^  interval: 1s$/  interval: 30s/' \
    "$H_DIR/agents/node-a/agent.yaml" >"$bad"
h_capture out rc "$VIGIL_BUILD/vigil-agent" -n -c "$bad"
[[ $rc == 78 ]] && grep -q 'flight_recorder.window' <<<"$out" ||
    h_fail "window < interval: exit $rc, expected 78 naming flight_recorder.window: $out"

# ---- the short-lived listener ----
PORT=$(h_free_port)
sleep 2 # a few snapshots without it first
(cd "$H_DIR" && exec python3 -m http.server "$PORT" --bind 127.0.0.1) >"$H_DIR/listener.log" 2>&1 &
LISTENER=$!
listening() { ss -Htln "sport = :$PORT" | grep LISTEN >/dev/null; }
h_wait "the listener on :$PORT" 20 listening
echo "$(date -u +%FT%TZ) flight-test: listener pid=$LISTENER on port $PORT" >>"$L/app.log"
sleep 3
kill "$LISTENER"
wait "$LISTENER" 2>/dev/null || true
gone_at=$(date +%s)
h_wait "the listener gone" 10 bash -c "! ss -Htln 'sport = :$PORT' | grep -q LISTEN"
pid=$LISTENER
LISTENER=""
sleep 2 # the newest snapshots are taken without it

# collect_flight NAME: the artifact, fetched back into $H_DIR/NAME (hash checked by vigilctl).
collect_flight() {
    local out id
    out=$(h_ctl collect --node node-a flight -o json) || h_fail "collect flight: exit $?: $out"
    jq -e 'length == 1 and .[0].status == "stored" and .[0].kind == "flight"' <<<"$out" >/dev/null ||
        h_fail "collect flight: unexpected JSON: $out"
    id=$(jq -r '.[0].id' <<<"$out")
    h_ctl evidence get "$id" --out "$H_DIR/$1" >/dev/null || h_fail "evidence get $id failed"
}
collect_flight flight-1
f=$H_DIR/flight-1
head -3 "$f" >&2

# Every snapshot headed with its time, oldest first, and no more than the window holds.
ts='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'
n=$(grep -cE "^== $ts netstat ==$" "$f")
((n >= 5 && n <= 13)) || h_fail "$n netstat snapshots in a 12 s window at 1 s"
[[ $(grep -cE "^== $ts processes ==$" "$f") == "$n" ]] || h_fail "not one processes section per snapshot"
grep -qE "^== $ts log app \([0-9]+ lines?\) ==$" "$f" || h_fail "no log app section"
times=$(grep -E "^== $ts netstat ==$" "$f" | awk '{ print $2 }')
[[ $times == "$(sort <<<"$times")" ]] || h_fail "snapshots are not oldest first"
oldest=$(date -u -d "$(head -1 <<<"$times")" +%s)
(($(date +%s) - oldest <= 14)) || h_fail "a snapshot from $(head -1 <<<"$times") is older than the window"

# The listener: its socket with its owner, its process, its log line, in the same snapshot.
awk -v port="127.0.0.1:$PORT" -v pid="pid=$pid," '
    /^== .* netstat ==$/ { sec = "net"; when = $2; next }
    /^== .* processes ==$/ { sec = "proc"; next }
    /^== / { sec = ""; next }
    sec == "net" && $2 == "LISTEN" && index($0, port) && index($0, pid) { print when; exit }
' "$f" >"$H_DIR/seen-at"
[[ -s $H_DIR/seen-at ]] || h_fail "no snapshot shows 127.0.0.1:$PORT LISTEN owned by pid $pid: $(grep -n ":$PORT" "$f" | head -3)"
seen=$(cat "$H_DIR/seen-at")
awk -v when="$seen" -v pid="$pid" '
    $0 == "== " when " processes ==" { in_it = 1; next }
    /^== / { in_it = 0 }
    in_it && $1 == pid && index($0, "http.server") { found = 1 }
    END { exit !found }' "$f" || h_fail "the $seen snapshot does not list process $pid (http.server)"
grep -q "flight-test: listener pid=$pid on port $PORT" "$f" || h_fail "the listener's log line is missing"
last=$(tail -1 <<<"$times")
awk -v when="$last" -v port="127.0.0.1:$PORT" '
    $0 == "== " when " netstat ==" { in_it = 1; next }
    /^== / { in_it = 0 }
    in_it && index($0, port) { bad = 1 }
    END { exit bad }' "$f" || h_fail "the newest snapshot ($last) still shows the listener"
h_pass "after the listener exited, the flight artifact shows it at $seen: 127.0.0.1:$PORT LISTEN, pid $pid, its process and log line"

# The recorder's own signals: snapshots within the window, bytes within max_size.
sig() { h_ctl signals -o json --node node-a | jq -r --arg n "$1" '[.[] | select(.name == $n)][0].value // empty'; }
snaps=$(sig agent.flight.snapshots)
bytes=$(sig agent.flight.bytes)
[[ -n $snaps && -n $bytes ]] || h_fail "no agent.flight.* signals"
awk -v s="$snaps" -v b="$bytes" 'BEGIN { exit !(s >= 1 && s <= 13 && b > 0 && b <= 4194304) }' ||
    h_fail "agent.flight.snapshots=$snaps agent.flight.bytes=$bytes"
h_log "agent.flight.snapshots=$snaps agent.flight.bytes=$bytes"

# Once the window has passed, the snapshots with the listener are gone.
wait_s=$((gone_at + 14 - $(date +%s)))
((wait_s <= 0)) || sleep "$wait_s"
collect_flight flight-2
! grep -q "127.0.0.1:$PORT " "$H_DIR/flight-2" || h_fail "the listener is still shipped after the window passed"
! grep -q "flight-test: listener" "$H_DIR/flight-2" || h_fail "the log line is still shipped after the window passed"
n=$(grep -cE "^== $ts netstat ==$" "$H_DIR/flight-2")
((n >= 5 && n <= 13)) || h_fail "$n snapshots after the window passed"
h_pass "snapshots older than the 12 s window are gone ($n kept)"

# ---- a SEV2 opens: the coordinator asks the node to freeze and ship its recorder ----
echo "$(date -u +%FT%TZ) flight-test: retrying the upstream, 3rd time" >>"$L/app.log"
sleep 3 # in a snapshot by now: the minutes before the incident
echo "$(date -u +%FT%TZ) FATAL flight-test: the application gave up" >>"$L/app.log"
incident() { h_ctl incidents -o json | jq -r '[.[] | select(.runbook == "app-errors")][0].id // empty'; }
has_incident() { [[ -n $(incident) ]]; }
h_wait "the SEV2 incident" 30 has_incident
inc=$(incident)
flight_stored() {
    h_ctl incident show "$inc" -o json |
        jq -e '[.investigation[] | select(.kind == "flight" and .node == "node-a" and .status == "stored")] | length == 1' >/dev/null
}
h_wait "the flight recorder in incident $inc's investigation" 30 flight_stored
id=$(h_ctl incident show "$inc" -o json | jq -r '.investigation[] | select(.kind == "flight") | .id')
h_ctl evidence get "$id" --out "$H_DIR/flight-incident" >/dev/null || h_fail "evidence get $id"
grep -q "flight-test: retrying the upstream, 3rd time" "$H_DIR/flight-incident" ||
    h_fail "the frozen recorder does not hold the minutes before: the line before the incident is missing"
h_pass "a SEV2 incident freezes the node's flight recorder into its investigation, with the log line before it opened"
