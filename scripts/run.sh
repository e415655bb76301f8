#!/usr/bin/env bash
# `make run`: the coordinator (with its private PostgreSQL) and one agent for this machine,
# all state under var/, in the foreground until Ctrl-C or SIGTERM. Run again, it reuses var/
# (same keys, same data).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
build=${BUILD:-build}
var=$top/var
bin=$top/$build

umask 077
mkdir -p "$var/coordinator" "$var/agent"
# Others may traverse (PostgreSQL runs as postgres, the agent as nobody) but not list or read.
chmod 711 "$var" "$var/coordinator"

key_of() { sed -n 's/^public-key: *"\(.*\)"/\1/p' "$1"; }

# First run: the enrollment secret, the coordinator's key pair and an admin operator key.
[[ -f $var/enrollment.secret ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$var/enrollment.secret"
[[ -f $var/coordinator/coordinator.key ]] || "$bin/vigilctl" keygen --out "$var/coordinator/coordinator.key" >/dev/null
[[ -f $var/admin.key ]] || "$bin/vigilctl" keygen --out "$var/admin.key" >/dev/null
coord_pub=$(key_of "$var/coordinator/coordinator.key")
admin_pub=$(key_of "$var/admin.key")
admin_sec=$(sed -n 's/^secret-key: *"\(.*\)"/\1/p' "$var/admin.key")

# The agent's network side runs as nobody when nobody can reach var/; otherwise (a checkout
# under a private home directory) it stays root, which the config then has to allow.
agent_user="" allow_root=false
if [[ $(id -u) -eq 0 ]]; then
    if runuser -u nobody -- test -x "$var" 2>/dev/null; then
        agent_user=nobody
    else
        allow_root=true
        echo "run: nobody cannot reach $var; the agent's network side stays root" >&2
    fi
fi

cat >"$var/coordinator.yaml" <<YAML
# Written by make run. Reference: deploy/config/coordinator.yaml
state_dir: "$var/coordinator"
listen:
  agents: "tcp://127.0.0.1:7400"
  admin: "tcp://127.0.0.1:7401"
http:
  address: "127.0.0.1"
  port: 7480
enrollment:
  secret_file: "$var/enrollment.secret"
admin:
  public_key: "$admin_pub"
  name: admin
runbooks:
  dir: "$top/runbooks"
YAML

cat >"$var/agent.yaml" <<YAML
# Written by make run. Reference: deploy/config/agent.yaml
state_dir: "$var/agent"
user: "$agent_user"
allow_root: $allow_root
coordinator:
  endpoint: "tcp://127.0.0.1:7400"
  public_key: "$coord_pub"
enrollment:
  secret_file: "$var/enrollment.secret"
YAML

cat >"$var/vigilctl.yaml" <<YAML
# Written by make run: an admin operator for this local coordinator.
coordinator: "tcp://127.0.0.1:7401"
coordinator_public_key: "$coord_pub"
public_key: "$admin_pub"
secret_key: "$admin_sec"
YAML

coord_pid="" agent_pid=""
stop() {
    trap - INT TERM EXIT
    [[ -n $agent_pid ]] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    [[ -n $coord_pid ]] && kill -TERM "$coord_pid" 2>/dev/null && wait "$coord_pid" 2>/dev/null
    echo "run: stopped (state kept in var/)"
    exit 0
}
trap stop INT TERM EXIT

"$bin/vigil-coordinator" -c "$var/coordinator.yaml" &
coord_pid=$!
for _ in $(seq 1 600); do
    curl -fsS -o /dev/null http://127.0.0.1:7480/healthz 2>/dev/null && break
    kill -0 "$coord_pid" 2>/dev/null || { echo "run: the coordinator exited; see above" >&2; exit 1; }
    sleep 0.1
done
"$bin/vigil-agent" -c "$var/agent.yaml" &
agent_pid=$!

cat <<TEXT

Vigil is running: coordinator (agents :7400, vigilctl :7401, http://127.0.0.1:7480/metrics)
with its private PostgreSQL under var/coordinator, and one agent for this machine.

  export VIGIL_CONFIG=var/vigilctl.yaml
  $build/vigilctl agents
  $build/vigilctl agents -o json

Ctrl-C stops everything.
TEXT

# Whichever exits first ends the run; stop() takes the other one down.
wait -n "$coord_pid" "$agent_pid" || true
echo "run: a process exited; stopping" >&2
