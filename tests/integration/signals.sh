#!/usr/bin/env bash
# Signals end to end: agents' host and socket collectors reach the coordinator, and
# `vigilctl signals` shows the latest value of each series with its threshold state, filtered
# by node and by a glob over names.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator
collectors=$'collectors:\n  host:\n    interval: 1s\n  netstat:\n    interval: 1s'
h_start_agent node-a "$collectors"
h_start_agent node-b "$collectors"

sig() { h_ctl signals -o json "$@"; }
has_cpu() { [[ $(sig --name host.cpu.busy_pct | jq '[.[] | .node] | unique | length') == 2 ]]; }
h_wait "CPU busy % from both nodes" 30 has_cpu

all=$(sig)
jq -e 'all(.[]; has("node") and has("name") and has("labels") and has("value") and has("state") and has("ts"))' \
    <<<"$all" >/dev/null || h_fail "signals lack node/name/labels/value/state/ts"
jq -e '[.[] | select(.name == "host.cpu.busy_pct")] | all(.[]; .value >= 0 and .value <= 100 and (.state | IN("ok","warning","critical")))' \
    <<<"$all" >/dev/null || h_fail "host.cpu.busy_pct out of range or without a threshold state"
jq -e '[.[] | select(.name == "host.mem.used_pct" and .node == "node-a")] | length == 1' <<<"$all" >/dev/null ||
    h_fail "no single latest host.mem.used_pct for node-a"
jq -e '[.[] | select(.name == "host.disk.used_pct" and .labels.mount == "/")] | length >= 1' <<<"$all" >/dev/null ||
    h_fail "no disk usage for /"
# The filesystem holding an agent's state (its spool) is measured, under the mount point df
# names for it, or under another mount of the same filesystem (one series per filesystem: a
# bind mount of / is reported as /). Memory-backed and network filesystems are left out.
state="$H_DIR/agents/node-a/state"
state_mount=$(df --output=target "$state" | tail -n 1)
state_fstype=$(df --output=fstype "$state" | tail -n 1)
case $state_fstype in
tmpfs | ramfs | devtmpfs | hugetlbfs | squashfs | rootfs | nfs* | cifs | smb3 | smbfs | ceph | glusterfs | 9p | afs | fuse.sshfs)
    h_log "state dir on $state_fstype ($state_mount), which host.disk.used_pct leaves out: not checked"
    ;;
*)
    state_dev=$(stat -c %d "$state")
    found=""
    while IFS= read -r mount; do
        if [[ $mount == "$state_mount" || $(stat -c %d -- "$mount" 2>/dev/null) == "$state_dev" ]]; then
            found=$mount
            break
        fi
    done < <(jq -r '.[] | select(.name == "host.disk.used_pct" and .node == "node-a") | .labels.mount' <<<"$all")
    [[ -n $found ]] || h_fail "no disk usage for the state directory's filesystem ($state_mount, $state_fstype)"
    ;;
esac
# ... and no filesystem twice (a bind mount such as /run/netns beside /).
disk_mounts=$(jq -r '[.[] | select(.name == "host.disk.used_pct" and .node == "node-a") | .labels.mount] | unique | .[]' <<<"$all")
twice=$(while IFS= read -r mount; do stat -c %d -- "$mount" 2>/dev/null || true; done <<<"$disk_mounts" | sort | uniq -d)
[[ -z $twice ]] || h_fail "one filesystem reported under several mounts: $(tr '\n' ' ' <<<"$disk_mounts")"
jq -e '[.[] | select(.name == "net.sockets" and .labels.state == "LISTEN")] | length == 2' <<<"$all" >/dev/null ||
    h_fail "no LISTEN socket count from each node"
jq -e '[.[] | select(.name == "agent.uptime_s")] | all(.[]; .state == "none")' <<<"$all" >/dev/null ||
    h_fail "a signal without thresholds shows a threshold state"

# Filters.
[[ $(sig --node node-b | jq '[.[] | .node] | unique') == '[
  "node-b"
]' ]] || h_fail "--node node-b returned other nodes"
sig --name 'host.*' | jq -e 'length > 0 and all(.[]; .name | startswith("host."))' >/dev/null ||
    h_fail "--name host.* returned other names"

# Latest means latest: the value moves on while history accumulates.
first=$(sig --node node-a --name agent.uptime_s | jq '.[0].value')
sleep 2.5
second=$(sig --node node-a --name agent.uptime_s | jq '.[0].value')
awk -v a="$first" -v b="$second" 'BEGIN { exit !(b > a) }' || h_fail "agent.uptime_s did not advance ($first -> $second)"
table=$(h_ctl signals)
head -1 <<<"$table" | grep -q "NODE.*NAME.*LABELS.*VALUE.*UNIT.*STATE.*AGE" || h_fail "table header"
grep -Eq '^node-a +host.mem.used_pct +- +[0-9]+\.[0-9] % +percent +(ok|warning|critical) ' <<<"$table" ||
    h_fail "table row for node-a's memory: $(grep mem.used <<<"$table")"
# Values as a person reads them: bytes in binary units, never 2.48748e+10.
grep -Eq '^node-a +host.mem.available_bytes +- +[0-9.]+ (B|KiB|MiB|GiB|TiB) +bytes ' <<<"$table" ||
    h_fail "table row for node-a's available memory: $(grep available_bytes <<<"$table")"
! grep -Eq '[0-9]e[+-][0-9]' <<<"$table" || h_fail "exponent notation in the table: $(grep -E '[0-9]e[+-][0-9]' <<<"$table")"
h_pass "vigilctl signals shows the latest value and state of every series"
