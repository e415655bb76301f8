#!/usr/bin/env bash
# Prints the Secrets Vigil's Kubernetes manifests mount (deploy/kubernetes/), as YAML, on
# standard output:
#
#   vigil-coordinator-keys  coordinator.key    the coordinator's CURVE key pair
#                           coordinator.sign   its Ed25519 signing key (command capsules)
#                           enrollment.secret  the cluster's enrollment secret
#   vigil-agent-keys        coordinator.pub    the coordinator's CURVE public key
#                           enrollment.secret  the same secret: every node's agent is active at once
#                           signers.yaml       the keys commands are verified against: the
#                                              coordinator's and the first admin's (docs/remediation.md)
#   vigil-cluster-agent-keys agent.key         the cluster agent's CURVE key pair (role: cluster,
#                                              base/cluster-agent.yaml): made here, so a new pod or
#                                              volume is the same agent, bound to node "cluster"
#                           coordinator.pub, enrollment.secret, signers.yaml  as in vigil-agent-keys
#                           app-pg.password    the password of the application's PostgreSQL user
#                                              (config/cluster-agent.yaml, collectors.postgres)
#                           app-redis.password the application's Redis password (collectors.redis)
#   vigil-store             PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD PGSSLMODE
#                           (with --pg-host: overlays/prod's external PostgreSQL; PGUSER is the
#                           coordinator's own login, vigil_coordinator in docs/operations.md)
#                           owner.pgpass  the password of vigil_owner, the login that owns the
#                                         tables (migrations, maintenance), as a libpq password file
#
#   deploy/kubernetes/secrets.sh --admin-key admin.key --app-pg-password-file FILE
#       --app-redis-password-file FILE [--overlay DIR] [--keys DIR]
#       [--namespace NS] [--pg-host HOST --pg-user USER --pg-password-file FILE
#        --pg-owner-password-file FILE [--pg-port 5432] [--pg-database vigil]
#        [--pg-sslmode verify-full]] | kubectl apply -f -
#
# --admin-key: the first admin's key file from `vigilctl keygen --out admin.key` (and its
#   admin.key.sign); with --overlay, its two public keys are also written into
#   DIR/coordinator.yaml (admin.public_key, admin.signing_public_key).
# --app-pg-password-file, --app-redis-password-file: files whose first line is the password the
#   cluster agent logs in to the application's PostgreSQL (user reconciliation_user) and Redis
#   with, for its probes and its postgres and redis actions.
# --keys DIR: where the coordinator's keys, the cluster agent's key and the enrollment secret are
#   made, or taken from when they are there already (keep DIR private: it is the cluster's
#   identity). Without it they are made in a temporary directory that is removed afterwards: the
#   Secrets are then the only copy, and running this again makes new keys (the cluster agent
#   then waits for `vigilctl agents approve`: node "cluster" is bound to its first key).
# The keys are made by the project's own programs: VIGIL_BUILD (default build/) must hold
# vigilctl and vigil-coordinator (`make`).
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${VIGIL_BUILD:-$src/build}
namespace=vigil
admin_key="" overlay="" keys="" pg_host="" pg_port=5432 pg_database=vigil pg_user=""
pg_password_file="" pg_owner_password_file="" pg_sslmode=verify-full app_pg_password_file="" app_redis_password_file=""

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}
die() {
    echo "secrets.sh: $*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case $1 in
    --admin-key) admin_key=${2:?}; shift 2 ;;
    --overlay) overlay=${2:?}; shift 2 ;;
    --keys) keys=${2:?}; shift 2 ;;
    --namespace) namespace=${2:?}; shift 2 ;;
    --pg-host) pg_host=${2:?}; shift 2 ;;
    --pg-port) pg_port=${2:?}; shift 2 ;;
    --pg-database) pg_database=${2:?}; shift 2 ;;
    --pg-user) pg_user=${2:?}; shift 2 ;;
    --pg-password-file) pg_password_file=${2:?}; shift 2 ;;
    --pg-owner-password-file) pg_owner_password_file=${2:?}; shift 2 ;;
    --pg-sslmode) pg_sslmode=${2:?}; shift 2 ;;
    --app-pg-password-file) app_pg_password_file=${2:?}; shift 2 ;;
    --app-redis-password-file) app_redis_password_file=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "secrets.sh: unknown argument $1" >&2; usage ;;
    esac
done
[[ -n $admin_key ]] || die "--admin-key is required (make one with: vigilctl keygen --out admin.key)"
[[ -f $admin_key && -f $admin_key.sign ]] || die "$admin_key or $admin_key.sign: no such file"
if [[ -n $pg_host ]]; then
    [[ -n $pg_user && -n $pg_password_file && -n $pg_owner_password_file ]] ||
        die "--pg-host needs --pg-user, --pg-password-file and --pg-owner-password-file (the coordinator's login and vigil_owner's: docs/operations.md, \"Database roles\")"
    for f in "$pg_password_file" "$pg_owner_password_file"; do
        [[ -f $f ]] || die "$f: no such file"
        [[ -n $(head -n1 "$f") ]] || die "$f: the first line (the password) is empty"
    done
    [[ $(head -n1 "$pg_owner_password_file") != *[:\\]* ]] ||
        die "$pg_owner_password_file: a password file cannot hold ':' or '\\' unescaped; choose another password"
fi
# The cluster agent's passwords: a first line that is not empty (the agent refuses an empty one).
for f in "$app_pg_password_file" "$app_redis_password_file"; do
    [[ -n $f ]] || die "--app-pg-password-file and --app-redis-password-file are required: the cluster agent's PostgreSQL and Redis passwords (deploy/config/cluster-agent.yaml)"
    [[ -f $f ]] || die "$f: no such file"
    [[ -n $(head -n1 "$f") ]] || die "$f: the first line (the password) is empty"
done
[[ -z $overlay || -f $overlay/coordinator.yaml ]] || die "$overlay/coordinator.yaml: no such file"
for prog in vigilctl vigil-coordinator; do
    [[ -x $build/$prog ]] || die "$build/$prog not found: run make first (or set VIGIL_BUILD)"
done

# A value of a `key: "value"` line of a key file.
key_field() { sed -n "s/^$2: *\"\\(.*\\)\"\$/\\1/p" "$1"; }

admin_public=$(key_field "$admin_key" public-key)
admin_signing=$(key_field "$admin_key.sign" signing-public-key)
[[ ${#admin_public} == 40 && ${#admin_signing} == 44 ]] ||
    die "$admin_key is not a vigilctl keygen key file (with $admin_key.sign beside it)"

umask 077
if [[ -z $keys ]]; then
    keys=$(mktemp -d)
    trap 'rm -rf "$keys"' EXIT
fi
mkdir -p "$keys"
[[ -f $keys/coordinator.key ]] || "$build/vigilctl" keygen --out "$keys/coordinator.key" >/dev/null
rm -f "$keys/coordinator.key.sign" # keygen's operator signing key: the coordinator has its own
# The cluster agent's CURVE key pair, in the format of an agent's state_dir/agent.key.
[[ -f $keys/cluster-agent.key ]] || "$build/vigilctl" keygen --out "$keys/cluster-agent.key" >/dev/null
rm -f "$keys/cluster-agent.key.sign" # an agent signs nothing
[[ -f $keys/enrollment.secret ]] ||
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$keys/enrollment.secret"
# The coordinator makes its signing key under its state_dir; --print-signing-key makes it there
# (or reads it) and prints the public half.
mkdir -p "$keys/state"
printf 'state_dir: "%s/state"\nrunbooks:\n  dir: ""\n' "$keys" >"$keys/print-key.yaml"
coordinator_signing=$("$build/vigil-coordinator" -c "$keys/print-key.yaml" --print-signing-key 2>/dev/null) ||
    die "vigil-coordinator --print-signing-key failed"
coordinator_public=$(key_field "$keys/coordinator.key" public-key)

cat >"$keys/signers.yaml" <<YAML
# The keys commands on this node are verified against (docs/remediation.md): the coordinator's
# (capsules) and the first admin's (approvals). Add operators who may approve here.
signers:
  - {name: coordinator, role: coordinator, public_key: "$coordinator_signing"}
  - {name: admin, role: admin, public_key: "$admin_signing"}
YAML
printf '%s\n' "$coordinator_public" >"$keys/coordinator.pub"
cluster_agent_public=$(key_field "$keys/cluster-agent.key" public-key)
[[ ${#cluster_agent_public} == 40 ]] || die "$keys/cluster-agent.key is not a vigilctl keygen key file"

b64() { base64 -w0 <"$1"; }
b64s() { printf '%s' "$1" | base64 -w0; }
b64line() { head -n1 "$1" | base64 -w0; } # the first line, with its newline

cat <<YAML
# Made by deploy/kubernetes/secrets.sh. Keep this output private: it holds secret keys.
apiVersion: v1
kind: Secret
metadata:
  name: vigil-coordinator-keys
  namespace: $namespace
  labels: {app.kubernetes.io/part-of: vigil, app.kubernetes.io/name: vigil-coordinator}
type: Opaque
data:
  coordinator.key: $(b64 "$keys/coordinator.key")
  coordinator.sign: $(b64 "$keys/state/coordinator.sign")
  enrollment.secret: $(b64 "$keys/enrollment.secret")
---
apiVersion: v1
kind: Secret
metadata:
  name: vigil-agent-keys
  namespace: $namespace
  labels: {app.kubernetes.io/part-of: vigil, app.kubernetes.io/name: vigil-agent}
type: Opaque
data:
  coordinator.pub: $(b64 "$keys/coordinator.pub")
  enrollment.secret: $(b64 "$keys/enrollment.secret")
  signers.yaml: $(b64 "$keys/signers.yaml")
---
apiVersion: v1
kind: Secret
metadata:
  name: vigil-cluster-agent-keys
  namespace: $namespace
  labels: {app.kubernetes.io/part-of: vigil, app.kubernetes.io/name: vigil-cluster-agent}
type: Opaque
data:
  agent.key: $(b64 "$keys/cluster-agent.key")
  coordinator.pub: $(b64 "$keys/coordinator.pub")
  enrollment.secret: $(b64 "$keys/enrollment.secret")
  signers.yaml: $(b64 "$keys/signers.yaml")
  app-pg.password: $(b64line "$app_pg_password_file")
  app-redis.password: $(b64line "$app_redis_password_file")
YAML
echo "secrets.sh: the cluster agent (node \"cluster\") has the public key $cluster_agent_public" >&2
if [[ -n $pg_host ]]; then
    cat <<YAML
---
apiVersion: v1
kind: Secret
metadata:
  name: vigil-store
  namespace: $namespace
  labels: {app.kubernetes.io/part-of: vigil, app.kubernetes.io/name: vigil-coordinator}
type: Opaque
data:
  PGHOST: $(b64s "$pg_host")
  PGPORT: $(b64s "$pg_port")
  PGDATABASE: $(b64s "$pg_database")
  PGUSER: $(b64s "$pg_user")
  PGPASSWORD: $(b64s "$(head -n1 "$pg_password_file")")
  PGSSLMODE: $(b64s "$pg_sslmode")
  owner.pgpass: $(b64s "*:*:*:vigil_owner:$(head -n1 "$pg_owner_password_file")")
YAML
fi

# The first admin, in the overlay's coordinator.yaml: the lines under `admin:` only.
if [[ -n $overlay ]]; then
    tmp=$overlay/coordinator.yaml.new
    in_admin=0
    while IFS= read -r line || [[ -n $line ]]; do
        if [[ $line =~ ^[a-z_]+: ]]; then
            in_admin=0
            [[ $line == admin:* ]] && in_admin=1
        fi
        if [[ $in_admin == 1 && $line =~ ^(\ +)public_key: ]]; then
            line="${BASH_REMATCH[1]}public_key: \"$admin_public\""
        elif [[ $in_admin == 1 && $line =~ ^(\ +)signing_public_key: ]]; then
            line="${BASH_REMATCH[1]}signing_public_key: \"$admin_signing\""
        fi
        printf '%s\n' "$line"
    done <"$overlay/coordinator.yaml" >"$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$overlay/coordinator.yaml"
    echo "secrets.sh: admin keys written to $overlay/coordinator.yaml" >&2
fi
