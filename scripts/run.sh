#!/usr/bin/env bash
# `make run`: the coordinator (with its private PostgreSQL) and one agent for this machine,
# all state under var/, in the foreground until Ctrl-C or SIGTERM. Run again, it reuses var/
# (same keys, same data).
#
# The first run writes var/coordinator.yaml, var/agent.yaml and var/vigilctl.yaml; they are
# yours from then on (paging, probes, log files, thresholds): later runs never rewrite them, but
# for one line added to coordinator.yaml and vigilctl.yaml of a var/ from before signing keys (see
# "upgrade" below). Delete one to have it written afresh.
#
# Environment: BUILD (the build directory, relative to the tree or absolute; default build);
# VIGIL_PORT_AGENTS, VIGIL_PORT_ADMIN, VIGIL_PORT_HTTP (default 7400, 7401, 7480; read when the
# configuration is written, i.e. on the first run).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
build=${BUILD:-build}
[[ $build == /* ]] && bin=$build || bin=$top/$build
var=$top/var
port_agents=${VIGIL_PORT_AGENTS:-7400}
port_admin=${VIGIL_PORT_ADMIN:-7401}
port_http=${VIGIL_PORT_HTTP:-7480}

die() { echo "run: $*" >&2; exit 1; }

for b in vigil-coordinator vigil-agent vigil-agent-exec vigilctl; do
    [[ -x $bin/$b ]] || die "$bin/$b not found: run 'make build' first"
done

umask 077
mkdir -p "$var/coordinator"
# Others may traverse (PostgreSQL runs as postgres, the agent as nobody) but not list or read.
chmod 711 "$var" "$var/coordinator"

key_of() { sed -n 's/^public-key: *"\(.*\)"/\1/p' "$1"; }

# First run: the enrollment secret, the coordinator's key pair and an admin operator's keys (a
# CURVE pair in admin.key, its signing key in admin.key.sign). A var/ from before signing keys
# gets admin.key.sign now.
[[ -f $var/enrollment.secret ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$var/enrollment.secret"
[[ -f $var/coordinator/coordinator.key ]] || "$bin/vigilctl" keygen --out "$var/coordinator/coordinator.key" >/dev/null
[[ -f $var/admin.key ]] || "$bin/vigilctl" keygen --out "$var/admin.key" >/dev/null
[[ -f $var/admin.key.sign ]] || "$bin/vigilctl" keygen --signing-out "$var/admin.key.sign" >/dev/null
coord_pub=$(key_of "$var/coordinator/coordinator.key")
admin_pub=$(key_of "$var/admin.key")
admin_sec=$(sed -n 's/^secret-key: *"\(.*\)"/\1/p' "$var/admin.key")
admin_sign_pub=$(sed -n 's/^signing-public-key: *"\(.*\)"/\1/p' "$var/admin.key.sign")
[[ -n $admin_sign_pub ]] || die "$var/admin.key.sign holds no signing-public-key line: remove it to have a new one made"

# needs_writing FILE OLD-HEADER: FILE is missing, or was written by a make run that rewrote it
# on every start (its first line is OLD-HEADER), so nobody has made it their own.
needs_writing() { [[ ! -f $1 ]] || [[ $(head -n 1 "$1") == "$2" ]]; }
header="# Written by the first make run; yours to edit, make run never rewrites it."

# ---- the agent's state directory ----------------------------------------------------------------
# As root, the agent's network side runs as nobody, so its state directory must be reachable by
# nobody: var/agent when it is; otherwise (a clone under /root or a private home) a directory of
# its own, /var/lib/vigil-run/agent-<hash of var/>, with var/agent a symlink to it.
local_state_root=/var/lib/vigil-run

# public_dir DIR: DIR exists, is root's and has mode 0755 (set explicitly, whatever the umask).
public_dir() {
    mkdir -p "$1"
    [[ -d $1 && ! -L $1 ]] || die "$1 is not a directory: remove it"
    [[ $(stat -c %u "$1") == 0 ]] ||
        die "$1 is owned by $(stat -c %U "$1"), not root: it holds agents' state, so it must be root's (chown root:root $1)"
    chmod 0755 "$1"
}

# blocking_dir PATH: the first directory on PATH that nobody cannot search.
blocking_dir() {
    local p="" part
    local -a parts
    IFS=/ read -ra parts <<<"${1#/}"
    for part in "${parts[@]}"; do
        p+=/$part
        runuser -u nobody -- test -x "$p" 2>/dev/null || { echo "$p"; return; }
    done
    echo "$1"
}

choose_agent_state() {
    agent_user="" agent_state=$var/agent
    if [[ $(id -u) -ne 0 ]]; then
        mkdir -p "$agent_state"
        return
    fi
    agent_user=nobody
    if runuser -u nobody -- test -x "$var" 2>/dev/null; then
        if [[ -L $var/agent ]]; then
            agent_state=$(readlink -f "$var/agent")
        fi
        return 0
    fi
    public_dir "$local_state_root"
    runuser -u nobody -- test -x "$local_state_root" 2>/dev/null ||
        die "user nobody cannot search $(blocking_dir "$local_state_root"), so the agent's state cannot live in $local_state_root: chmod o+x it"
    agent_state=$local_state_root/agent-$(printf '%s' "$var" | sha256sum | cut -c1-12)
    if [[ -d $var/agent && ! -L $var/agent ]]; then
        # An earlier run kept the agent's state (its key, its spool) in var/agent as root:
        # move it, so the agent keeps its identity, and hand it to nobody.
        [[ -e $agent_state ]] && die "both $var/agent and $agent_state exist: remove the one you do not need"
        mv "$var/agent" "$agent_state"
        chown -R nobody: "$agent_state"
    fi
    ln -sfn "$agent_state" "$var/agent"
    echo "run: nobody cannot search $(blocking_dir "$var"); the agent's state is in $agent_state (var/agent links to it)"
}

# ---- configuration, written once ----------------------------------------------------------------
if needs_writing "$var/coordinator.yaml" "# Written by make run. Reference: deploy/config/coordinator.yaml"; then
    cat >"$var/coordinator.yaml" <<YAML
$header
# Every key, with its default: deploy/config/coordinator.yaml. A team to page: add "paging:".
state_dir: "$var/coordinator"
listen:
  agents: "tcp://127.0.0.1:$port_agents"
  admin: "tcp://127.0.0.1:$port_admin"
http:
  address: "127.0.0.1"
  port: $port_http
enrollment:
  secret_file: "$var/enrollment.secret"
admin:
  public_key: "$admin_pub"
  name: admin
  signing_public_key: "$admin_sign_pub"
runbooks:
  dir: "$top/runbooks"
YAML
fi

if needs_writing "$var/agent.yaml" "# Written by make run. Reference: deploy/config/agent.yaml"; then
    choose_agent_state
    cat >"$var/agent.yaml" <<YAML
$header
# Every key, with its default: deploy/config/agent.yaml. HTTP health checks, PostgreSQL and
# Redis probes, log files and processes to watch go under "collectors:".
state_dir: "$agent_state"
user: "$agent_user"
coordinator:
  endpoint: "tcp://127.0.0.1:$port_agents"
  public_key: "$coord_pub"
enrollment:
  secret_file: "$var/enrollment.secret"
YAML
fi

if needs_writing "$var/vigilctl.yaml" "# Written by make run: an admin operator for this local coordinator."; then
    cat >"$var/vigilctl.yaml" <<YAML
# Written by the first make run: an admin operator for this local coordinator.
coordinator: "tcp://127.0.0.1:$port_admin"
coordinator_public_key: "$coord_pub"
public_key: "$admin_pub"
secret_key: "$admin_sec"
signing_key_file: "$var/admin.key.sign"
YAML
fi

# yaml_value SECTION KEY: KEY's value under the top-level SECTION of var/coordinator.yaml (the
# file may have been edited since it was written), quotes removed.
yaml_value() {
    awk -v s="$1:" -v k="$2:" '$0 ~ "^" s { in_s = 1; next } /^[^ #]/ { in_s = 0 }
        in_s && $1 == k { gsub(/"/, "", $2); print $2; exit }' "$var/coordinator.yaml"
}
http_port=$(yaml_value http port)
http_port=${http_port:-7480}

# ---- upgrade: a var/ from before signing keys ------------------------------------------------------
# The admin operator gets the signing key in admin.key.sign: the coordinator registers it at start
# (admin.signing_public_key; an operator that has one keeps it), and vigilctl signs with it
# (signing_key_file). Only while the files still name admin.key's operator: once it rotated its
# keys (vigilctl operators rotate), they are its own.
if [[ $(yaml_value admin public_key) == "$admin_pub" && -z $(yaml_value admin signing_public_key) ]]; then
    awk -v line="signing_public_key: \"$admin_sign_pub\"" '
        $0 ~ /^admin:/ { in_admin = 1; print; next }
        /^[^ #]/ { in_admin = 0 }
        { print }
        in_admin && $1 == "public_key:" && !done { match($0, /^ */); print substr($0, 1, RLENGTH) line; done = 1 }
        ' "$var/coordinator.yaml" >"$var/coordinator.yaml.tmp"
    mv "$var/coordinator.yaml.tmp" "$var/coordinator.yaml"
    echo "run: var/coordinator.yaml: added admin.signing_public_key (the signing key in var/admin.key.sign)"
fi
ctl_public=$(sed -n 's/^public_key: *"\(.*\)"/\1/p' "$var/vigilctl.yaml")
if [[ $ctl_public == "$admin_pub" ]] && ! grep -q '^signing_key_file:' "$var/vigilctl.yaml" &&
    [[ ! -e $var/vigilctl.yaml.sign ]]; then
    echo "signing_key_file: \"$var/admin.key.sign\"" >>"$var/vigilctl.yaml"
    echo "run: var/vigilctl.yaml: added signing_key_file (var/admin.key.sign)"
fi

coord_pid="" agent_pid=""
# stop_one NAME PID: SIGTERM, up to 15 s to exit (the coordinator stops its PostgreSQL), then
# SIGKILL with a line saying so: Ctrl-C always ends make run.
stop_one() {
    local name=$1 pid=$2
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
        # jobs -r: still running (kill -0 would also see one that exited but is not reaped).
        jobs -rp | grep -qx "$pid" || break
        sleep 0.1
    done
    if jobs -rp | grep -qx "$pid"; then
        echo "run: the $name did not stop within 15 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
stop() {
    trap - INT TERM EXIT
    stop_one agent "$agent_pid"
    stop_one coordinator "$coord_pid"
    echo "run: stopped (state kept in var/)"
    exit 0
}
trap stop INT TERM EXIT

"$bin/vigil-coordinator" -c "$var/coordinator.yaml" &
coord_pid=$!
for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "http://127.0.0.1:$http_port/healthz" 2>/dev/null && break
    kill -0 "$coord_pid" 2>/dev/null || { echo "run: the coordinator exited; see above" >&2; exit 1; }
    sleep 0.1
done
"$bin/vigil-agent" -c "$var/agent.yaml" &
agent_pid=$!

cat <<TEXT

Vigil is running: coordinator (agents $(yaml_value listen agents), vigilctl $(yaml_value listen admin),
http://127.0.0.1:$http_port/metrics)
with its private PostgreSQL under var/coordinator, and one agent for this machine.

  export VIGIL_CONFIG=var/vigilctl.yaml
  $build/vigilctl agents
  $build/vigilctl agents -o json

Configuration: var/coordinator.yaml and var/agent.yaml (yours to edit; make run keeps them).
Ctrl-C stops everything.
TEXT

# Whichever exits first ends the run; stop() takes the other one down. An agent that exits 75
# (its privileged executor died: docs/operations.md) is started again, as systemd or Kubernetes
# would.
while :; do
    status=0
    wait -n "$coord_pid" "$agent_pid" || status=$?
    if [[ $status == 75 ]] && ! kill -0 "$agent_pid" 2>/dev/null && kill -0 "$coord_pid" 2>/dev/null; then
        echo "run: the agent exited 75 (its executor died); starting it again" >&2
        "$bin/vigil-agent" -c "$var/agent.yaml" &
        agent_pid=$!
        continue
    fi
    break
done
echo "run: a process exited; stopping" >&2
