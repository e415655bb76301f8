#!/usr/bin/env bash
# A newcomer's first minute, as root: the tree cloned into a private (0700) directory, which
# neither the postgres user nor nobody can search, like a clone in /root. `make run`'s own
# script (scripts/run.sh) starts from there with the already-built binaries (copied into the
# clone's build/, as a newcomer's own build would be) on ports of its own,
# until an agent is active in `vigilctl agents`; then Ctrl-C, and nothing may be left running.
# Twice: with nothing under /var/lib, and with a stale 0700 /var/lib/vigil (what a coordinator
# with the default state_dir leaves). Then the same for `make demo` (scripts/demo.sh).
#
# It runs in a private mount namespace with an empty tmpfs over /var/lib, so the machine's own
# /var/lib is never touched, and beside other tests (ctest -j).
set -euo pipefail
VIGIL_SRC=${VIGIL_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
VIGIL_BUILD=${VIGIL_BUILD:-$VIGIL_SRC/build}

if [[ $(id -u) -ne 0 ]]; then
    echo "newcomer: needs root (a private mount namespace, runuser); skipped" >&2
    exit 77
fi
if [[ -z ${VIGIL_NEWCOMER_NS:-} ]]; then
    # In a chroot / is not a mount point, so no mount namespace can be made private, and a
    # tmpfs over /var/lib could reach the machine's own: skip rather than risk it.
    if ! unshare --mount --propagation private true 2>/dev/null; then
        echo "newcomer: no private mount namespace here (is / a mount point? not in a chroot); skipped" >&2
        exit 77
    fi
    exec unshare --mount --propagation private env VIGIL_NEWCOMER_NS=1 bash "$0" "$@"
fi

source "$VIGIL_SRC/tests/lib/harness.sh"

H_DIR=$(mktemp -d /tmp/vigil-newcomer.XXXXXX) # 0700: the clone inside is out of others' reach
clone=$H_DIR/clone
run_pgid=""
cleanup() {
    local status=$?
    # A process group still alive after a failure: stop it as a second Ctrl-C would not.
    [[ -n $run_pgid ]] && kill -TERM -- "-$run_pgid" 2>/dev/null
    if [[ $status -eq 0 ]]; then rm -rf "$H_DIR"; else h_log "kept $H_DIR for inspection"; fi
    exit "$status"
}
trap cleanup EXIT
trap "exit 143" TERM INT

mkdir "$clone"
tar -C "$VIGIL_SRC" --exclude=./.git --exclude='./build*' --exclude=./var -cf - . | tar -C "$clone" -xf -
runuser -u postgres -- test -x "$clone" && h_fail "the clone is reachable by postgres: the test would prove nothing"
# The already-built binaries, inside the clone as a newcomer's build would be (out of nobody's
# reach too: the agent must map its probe modules before it drops privileges).
mkdir "$clone/build"
cp -a "$VIGIL_BUILD"/vigil-coordinator "$VIGIL_BUILD"/vigil-agent "$VIGIL_BUILD"/vigil-agent-exec \
    "$VIGIL_BUILD"/vigilctl "$VIGIL_BUILD"/vigil-probe-*.so "$clone/build/"

fresh_var_lib() { # an empty /var/lib (tmpfs), optionally with a stale 0700 /var/lib/vigil
    mountpoint -q /var/lib && umount /var/lib
    mount -t tmpfs -o mode=0755 vigil-newcomer /var/lib
    if [[ ${1:-} == stale ]]; then
        mkdir -m 0700 /var/lib/vigil
    fi
}

# start_in_group LOG CMD...: CMD in a process group of its own, as a terminal's foreground job
# would be (so Ctrl-C can be sent to the group, and SIGINT is not ignored as it is for a plain
# background job).
start_in_group() {
    local log=$1
    shift
    set -m
    "$@" >"$log" 2>&1 &
    run_pgid=$!
    set +m
}

# ctrl_c_and_check WHAT LOG PATTERN...: Ctrl-C to the group, then nothing whose command line
# holds one of the patterns may still run.
ctrl_c_and_check() {
    local what=$1 log=$2
    shift 2
    kill -INT -- "-$run_pgid"
    local deadline=$((SECONDS + 30)) status=0
    # Bounded: a script that does not stop must fail the test, with what it was doing.
    while kill -0 "$run_pgid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$run_pgid" 2>/dev/null; then
        ps -e -o pid,pgid,stat,wchan:24,cmd | awk -v g="$run_pgid" 'NR == 1 || $2 == g' >&2 || true
        cat "$log" >&2
        h_fail "$what: still running 30 s after Ctrl-C"
    fi
    wait "$run_pgid" || status=$?
    run_pgid=""
    local p left=""
    while ((SECONDS < deadline)); do
        left=""
        for p in "$@"; do left+=$(pgrep -a -f -- "$p" || true); done
        [[ -z $left ]] && break
        sleep 0.2
    done
    [[ -z $left ]] || { cat "$log" >&2; h_fail "$what: still running after Ctrl-C: $left"; }
    h_log "$what: Ctrl-C stopped everything (exit status $status)"
}

agent_active() { # agent_active VIGILCTL-CONFIG
    VIGIL_CONFIG=$1 "$clone/build/vigilctl" agents -o json 2>/dev/null |
        jq -e 'any(.[]; .state == "active")' >/dev/null
}

# play_make_run NAME LABEL: scripts/run.sh from the clone with a fresh var/, to an active agent.
play_make_run() {
    local label=$2 log=$H_DIR/run-$1.log
    rm -rf "$clone/var"
    start_in_group "$log" env -C "$clone" VIGIL_PORT_AGENTS="$(h_free_port)" \
        VIGIL_PORT_ADMIN="$(h_free_port)" VIGIL_PORT_HTTP="$(h_free_port)" scripts/run.sh
    local pid=$run_pgid
    run_up() {
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; h_fail "$label: make run exited"; }
        [[ -f $clone/var/vigilctl.yaml ]] && agent_active "$clone/var/vigilctl.yaml"
    }
    h_wait "$label: an active agent in vigilctl agents" 90 run_up

    local pgdata
    pgdata=$(readlink -f "$clone/var/coordinator/pgdata")
    [[ $pgdata == /var/lib/vigil-pg/pg-* ]] || h_fail "$label: private cluster in $pgdata, expected under /var/lib/vigil-pg"
    [[ $(stat -c '%a %U' /var/lib/vigil-pg) == "755 root" ]] ||
        h_fail "$label: /var/lib/vigil-pg is $(stat -c '%a %U' /var/lib/vigil-pg), expected 755 root"
    grep -q "network side runs as uid=$(id -u nobody)" "$log" ||
        { cat "$log" >&2; h_fail "$label: the agent's network side did not drop to nobody"; }
    local warnings
    warnings=$(grep -i -E '(^|[ :])(warn|warning)[]: ]' "$log" || true)
    [[ -z $warnings ]] || h_fail "$label: a clean start logged warnings: $warnings"
    h_log "$label: agent active, cluster in $pgdata, network side as nobody, no warning"

    ctrl_c_and_check "$label" "$log" "$clone/var" "$pgdata" "$(readlink -f "$clone/var/agent")"
}

fresh_var_lib
play_make_run empty "empty /var/lib"
fresh_var_lib stale
play_make_run stale "stale 0700 /var/lib/vigil"
[[ $(stat -c %a /var/lib/vigil) == 700 ]] || h_fail "the stale /var/lib/vigil was changed"

# make run again on the same var/: the user's edits to the configuration survive.
echo "# a team's paging would go here" >>"$clone/var/coordinator.yaml"
start_in_group "$H_DIR/run-again.log" env -C "$clone" scripts/run.sh
pid=$run_pgid
h_wait "make run again: an active agent" 90 agent_active "$clone/var/vigilctl.yaml"
grep -q "a team's paging would go here" "$clone/var/coordinator.yaml" ||
    h_fail "a second make run rewrote var/coordinator.yaml"
ctrl_c_and_check "make run again" "$H_DIR/run-again.log" "$clone/var"

# A clone others can search (the usual case): the agent's state stays in var/agent.
open_dir=$(mktemp -d /tmp/vigil-newcomer-open.XXXXXX)
chmod 711 "$open_dir"
cp -a "$clone" "$open_dir/clone"
# Searchable by others whatever the mode of the tree it was copied from (a 0700 clone in /root
# gives the copy its mode through tar and cp -a).
chmod 755 "$open_dir/clone"
rm -rf "$open_dir/clone/var"
start_in_group "$H_DIR/run-open.log" env -C "$open_dir/clone" VIGIL_PORT_AGENTS="$(h_free_port)" \
    VIGIL_PORT_ADMIN="$(h_free_port)" VIGIL_PORT_HTTP="$(h_free_port)" scripts/run.sh
open_up() {
    kill -0 "$run_pgid" 2>/dev/null || { cat "$H_DIR/run-open.log" >&2; h_fail "make run in an open clone exited"; }
    [[ -f $open_dir/clone/var/vigilctl.yaml ]] && agent_active "$open_dir/clone/var/vigilctl.yaml"
}
h_wait "make run in a clone others can search: an active agent" 90 open_up
[[ -d $open_dir/clone/var/agent && ! -L $open_dir/clone/var/agent ]] ||
    h_fail "in a clone others can search, the agent's state should stay in var/agent"
grep -q "network side runs as uid=$(id -u nobody)" "$H_DIR/run-open.log" ||
    h_fail "in a clone others can search, the agent's network side did not drop to nobody"
ctrl_c_and_check "make run in an open clone" "$H_DIR/run-open.log" "$open_dir/clone/var"
rm -rf "$open_dir"

# make demo: its own temporary directory and ports; Ctrl-C once its agent is active.
fresh_var_lib stale
log=$H_DIR/demo.log
start_in_group "$log" env -C "$clone" scripts/demo.sh
demo_dir=""
demo_up() {
    kill -0 "$run_pgid" 2>/dev/null || { cat "$log" >&2; h_fail "make demo exited"; }
    demo_dir=$(grep -o -m1 '/tmp/vigil-demo\.[A-Za-z0-9]*' "$log" || true)
    [[ -n $demo_dir && -f $demo_dir/vigilctl.yaml ]] && agent_active "$demo_dir/vigilctl.yaml"
}
h_wait "make demo: an active agent" 90 demo_up
ctrl_c_and_check "make demo" "$log" "$demo_dir"
[[ ! -e $demo_dir ]] || h_fail "make demo left $demo_dir behind after Ctrl-C"
h_pass "make run and make demo from a private clone, with and without a stale /var/lib/vigil"
