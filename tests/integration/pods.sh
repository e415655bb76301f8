#!/usr/bin/env bash
# The agent sees Kubernetes, end to end, without a cluster: a /var/log/pods and
# /var/log/containers tree made here (kubernetes.pod_logs_dir, .container_logs_dir), and a
# server process put in a cgroup shaped like the kubelet's (cgroup v1, cgroupfs driver:
# /kubepods-.../besteffort/pod<uid>/<container id>) when this machine's pids hierarchy is
# writable (as root on cgroup v1).
# The server is named as namespace/pod/container in proc.pod, in net.listen's labels and in the
# processes and netstat artifacts; a `namespace:` log entry follows the pod's CRI log through
# partial lines, a container restart (1.log) and the kubelet's rotation, and log_tail names the
# pod of each file.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

uid=$(cat /proc/sys/kernel/random/uuid)
cid=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
P=$H_DIR/pods
C=$H_DIR/containers
POD=$P/vigiltest_web-0_$uid
mkdir -p "$POD/server" "$C"
ln -s "$POD/server/0.log" "$C/web-0_vigiltest_server-$cid.log"
mkdir -p "$P/stray_dir" "$P/UPPER_case_$uid" # not pods: counted as bad_name, never followed
cri() { printf '2024-05-01T12:00:00.%09dZ %s %s %s\n' "$RANDOM" "$1" "$2" "$3" >>"$4"; }
cri stdout F "history, before the agent: not news" "$POD/server/0.log"

# The server in a kubelet-shaped cgroup, when this machine lets us make one. The top is named
# kubepods-<something> (any component starting "kubepods" marks the kubelet's tree), so a real
# node's /kubepods is never touched.
TOP=/sys/fs/cgroup/pids/kubepods-vigiltest-$$
CG=$TOP/besteffort/pod$uid/$cid
in_pod=0
if mkdir -p "$CG" 2>/dev/null && [[ -w $CG/cgroup.procs ]]; then
    in_pod=1
else
    h_log "no writable cgroup v1 pids hierarchy here: pod identity of processes not checked"
fi
port=$(h_free_port)
server=
stop_all() {
    local status=$?
    if [[ -n $server ]]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    if ((in_pod)); then
        rmdir "$CG" "$TOP/besteffort/pod$uid" "$TOP/besteffort" "$TOP" 2>/dev/null || true
    fi
    (exit "$status")
    h_cleanup
}
trap stop_all EXIT
# Into the cgroup first, then exec: the process is in the pod from its first instruction.
bash -c 'if [[ $1 == 1 ]]; then echo $$ >"$2/cgroup.procs"; fi
         exec python3 -c "import socket,time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((\"127.0.0.1\", $3)); s.listen(); time.sleep(1000)"' _ "$in_pod" "$CG" "$port" &
server=$!
echo "$server" >"$H_DIR/server.pid"

collectors=$(cat <<YAML
kubernetes:
  pod_logs_dir: "$P"
  container_logs_dir: "$C"
collectors:
  netstat:
    interval: 1s
  processes:
    interval: 1s
    watch:
      - {name: server, pidfile: "$H_DIR/server.pid"}
  logs:
    interval: 1s
    files:
      - {name: shop, namespace: vigiltest, pod: "web-*", format: access,
         patterns: [{name: error, regex: "ERROR"}]}
YAML
)

h_start_coordinator
h_start_agent node-a "$collectors"
out=$("$VIGIL_BUILD/vigil-agent" -n -c "$H_DIR/agents/node-a/agent.yaml" 2>&1) ||
    h_fail "the agent refuses the kubernetes configuration: $out"

sig() { h_ctl signals -o json --node node-a; }
val() { sig | jq -r --arg n "$1" --argjson l "$2" '[.[] | select(.name == $n and .labels == $l)][0].value // empty'; }
is() {
    local v
    v=$(val "$1" "$2")
    [[ -n $v ]] && awk -v a="$v" -v b="$4" -v op="$3" 'BEGIN { if (op == "==") exit !(a == b); exit !(a >= b) }'
}
SHOP='{"file":"shop"}'

# ---- pod identity of a process and of a socket's owner ----
if ((in_pod)); then
    POD_LABELS='{"name":"server","namespace":"vigiltest","pod":"web-0","pod_uid":"'$uid'","container":"server"}'
    h_wait "proc.pod names the server's pod" 40 is proc.pod "$POD_LABELS" == 1
    listen() { sig | jq -e --arg p "$port" '.[] | select(.name == "net.listen" and .labels.port == $p and
        .labels.namespace == "vigiltest" and .labels.pod == "web-0" and .labels.container == "server")' >/dev/null; }
    h_wait "net.listen on $port carries the pod" 20 listen
    out=$(h_ctl collect --node node-a processes -o json) || h_fail "collect processes: $out"
    h_ctl evidence get "$(jq -r '.[0].id' <<<"$out")" --out "$H_DIR/processes.txt" >/dev/null
    grep -Eq "^$server .* vigiltest/web-0/server .*python3" "$H_DIR/processes.txt" ||
        h_fail "the processes artifact does not name the pod: $(grep "^$server " "$H_DIR/processes.txt")"
    out=$(h_ctl collect --node node-a netstat -o json) || h_fail "collect netstat: $out"
    h_ctl evidence get "$(jq -r '.[0].id' <<<"$out")" --out "$H_DIR/netstat.txt" >/dev/null
    grep -q "127.0.0.1:$port .*pid=$server,fd=[0-9]*,pod=vigiltest/web-0/server" "$H_DIR/netstat.txt" ||
        h_fail "the netstat artifact does not name the pod: $(grep ":$port " "$H_DIR/netstat.txt")"
    h_wait "agent.pods.known counts the pod" 10 is agent.pods.known '{}' == 1
    is agent.pods.bad_names '{}' '>=' 2 || h_fail "the stray directories were not counted by podmap"
    h_pass "a process in a pod is named: proc.pod, net.listen, processes and netstat artifacts"
fi

# ---- the pod's CRI log ----
h_wait "log.files{shop} = 1" 40 is log.files "$SHOP" == 1
is log.lines "$SHOP" == 0 || h_fail "history was counted"
line() { echo "203.0.113.9 - - [10/Oct/2023:13:55:36 +0000] \"GET /$1 HTTP/1.1\" $2 512 \"-\" \"curl/8.0\""; }
cri stdout F "$(line a 200)" "$POD/server/0.log"
full=$(line b 500)
cri stdout P "${full:0:30}" "$POD/server/0.log"
cri stderr F "ERROR between the pieces" "$POD/server/0.log"
cri stdout F "${full:30}" "$POD/server/0.log"
echo "not a CRI record" >>"$POD/server/0.log"
h_wait "two requests, one joined from partial records" 10 is log.http.requests "$SHOP" == 2
is log.http.status '{"file":"shop","class":"5xx"}' == 1 || h_fail "the joined 500 was not counted"
is log.match_count '{"file":"shop","pattern":"error"}' == 1 || h_fail "the stderr line was not matched"
is log.errors '{"file":"shop","reason":"not_cri"}' == 1 || h_fail "the plain line was not refused"
is log.errors '{"file":"shop","reason":"bad_name"}' == 2 || h_fail "stray directories were not counted"
h_pass "CRI records decoded, partial lines joined, other lines refused and counted"

# The container restarts (1.log), then the kubelet rotates the new file.
cri stdout F "$(line c 200)" "$POD/server/1.log"
h_wait "the restarted container's 1.log followed from its start" 10 is log.http.requests "$SHOP" == 3
cri stdout F "$(line d 200)" "$POD/server/1.log"
mv "$POD/server/1.log" "$POD/server/1.log.20240501-120000"
cri stdout F "$(line e 200)" "$POD/server/1.log"
h_wait "the rotated file finished and the new one read" 15 is log.http.requests "$SHOP" == 5
is log.rotations "$SHOP" == 1 || h_fail "log.rotations{shop} is $(val log.rotations "$SHOP")"
is log.pod '{"file":"shop","namespace":"vigiltest","pod":"web-0","container":"server","pod_uid":"'"$uid"'"}' == 2 ||
    h_fail "log.pod does not count the container's two files"
h_pass "a container restart and the kubelet's rotation are followed"

out=$(h_ctl collect --node node-a log_tail --arg name=shop --arg lines=1 -o json) || h_fail "collect log_tail: $out"
h_ctl evidence get "$(jq -r '.[0].id' <<<"$out")" --out "$H_DIR/tail.txt" >/dev/null
grep -q "^==> $POD/server/1.log (namespace=vigiltest pod=web-0 container=server) <==" "$H_DIR/tail.txt" ||
    h_fail "log_tail does not name the pod: $(head -3 "$H_DIR/tail.txt")"
h_pass "log_tail names the pod of each file"
