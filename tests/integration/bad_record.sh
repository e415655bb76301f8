#!/usr/bin/env bash
# One bad record must not stop ingest for every agent. An honest agent on a host with a mount
# point whose name is not UTF-8 (an ext4 image mounted at .../mnt-bad\xff in the agent's own
# mount namespace) escapes the name before spooling, so its record is stored; and a record the
# store cannot take anyway (vigil-sim sends one) is refused to its sender alone, with its seq,
# while every other agent's samples keep being stored.
source "$(dirname "$0")/../lib/harness.sh"
[[ $(id -u) == 0 ]] || { echo "bad_record: needs root (mount); skipped" >&2; exit 77; }
h_setup
h_start_coordinator

refused() { h_metric "vigil_messages_refused_total{reason=\"$1\"}"; }
latest() { # latest NODE NAME: the newest sample of NAME from NODE, as JSON lines
    h_ctl signals -o json --node "$1" --name "$2" 2>/dev/null | jq -c '.[]'
}

h_start_agent honest "collectors: {host: {interval: 1s}}"

# The odd host: its own mount namespace with a filesystem mounted at a non-UTF-8 name. In a
# chroot no mount namespace can be made private (/ is not a mount point): that part is skipped
# there rather than let the mount reach the machine.
if unshare --mount --propagation private true 2>/dev/null; then
    img=$H_DIR/odd.img
    mnt=$H_DIR/mnt-bad$'\xff'
    truncate -s 16M "$img"
    mkfs.ext4 -q "$img"
    mkdir "$mnt"
    H_AGENT_WRAP=(unshare --mount --propagation private bash -c 'mount -o loop "$0" "$1" && shift && exec "$@"' "$img" "$mnt")
    h_start_agent odd "collectors: {host: {interval: 1s}}"
    H_AGENT_WRAP=()

    odd_mount_stored() {
        latest odd host.disk.used_pct | jq -e 'select(.labels.mount | endswith("/mnt-bad\\xff"))' >/dev/null
    }
    h_wait "the odd mount's disk usage stored, its name escaped" 30 odd_mount_stored
    escape_counted() { [[ $(latest odd agent.signals.escaped | jq -s 'map(.value) | max // 0') -ge 1 ]]; }
    h_wait "agent.signals.escaped counting the escaped name on the odd host" 10 escape_counted
    [[ $(refused store_error) == 0 ]] || h_fail "a batch failed in the store: $(refused store_error)"
    [[ $(refused invalid_record) == 0 ]] || h_fail "an honest agent's record was refused"
    h_log "the odd mount point arrived as $(latest odd host.disk.used_pct | jq -r 'select(.labels.mount | endswith("xff")) | .labels.mount')"
else
    h_log "no private mount namespace here (a chroot?): the non-UTF-8 mount point is not tried"
fi

# A record the store cannot take: refused with its seq; the sender's next record is stored.
out=$(h_sim bad bad-record --secret-file "$H_DIR/enrollment.secret") || h_fail "bad record: $out"
grep -q "refused code=.* seq=1 reason=record not stored, discard it: a signal label is not valid UTF-8" <<<"$out" ||
    h_fail "unexpected refusal: $out"
[[ $(refused invalid_record) -ge 1 ]] || h_fail "vigil_messages_refused_total{reason=\"invalid_record\"} not counted"
[[ $(refused store_error) == 0 ]] || h_fail "the bad record failed a whole batch: store_error=$(refused store_error)"

# Everyone else's samples keep flowing: the honest agent's newest sample is newer than the bad
# record.
after=$(date +%s)
fresh() {
    local ts
    ts=$(latest honest host.cpu.busy_pct | jq -s 'map(.ts | fromdateiso8601) | max // 0')
    ((ts > after))
}
h_wait "the honest agent's samples still stored after the bad record" 10 fresh
# A node name that is not UTF-8 (odd\xff) and a version cut inside a character are escaped
# before the coordinator keeps them: once kept raw in memory although the store refused them,
# the agent never became active and every later write of its row failed.
out=$(h_sim bad odd-node --secret-file "$H_DIR/enrollment.secret") || h_fail "odd node name: $out"
[[ $(h_sql "select count(*) from agents where node = 'odd\xff'") == 1 ]] ||
    h_fail "the node name is not stored escaped: $(h_sql "select node from agents")"
health_stored() { [[ $(h_sql "select agent_version from agents where node = 'odd\xff'") == 'sim\xe2\x82' ]]; }
h_wait "the heartbeat's version stored, escaped" 10 health_stored
if grep -q "store: .*agent" "$H_DIR/coordinator.log"; then
    h_fail "the store refused an agent row: $(grep "store: .*agent" "$H_DIR/coordinator.log")"
fi
h_pass "a non-UTF-8 mount point is escaped and stored; a bad record is refused to its sender alone"
