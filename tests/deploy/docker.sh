#!/usr/bin/env bash
# deploy/docker, checked offline (there is no Docker engine; `make images` builds them with
# buildah where it can run):
# - dockerfilelint (deps/npm) finds nothing in either Dockerfile;
# - each is multi-stage, its runtime stage is Debian 12 slim with --no-install-recommends and no
#   -dev package, the coordinator's runs as a non-root USER;
# - every binary the manifests and units run is copied into /usr/local/lib/vigil/, with what
#   it loads from beside it (the executor, the probe modules);
# - the runtime packages are the ones whose libraries the built binaries link (objdump -p).
set -euo pipefail
VIGIL_SRC=${VIGIL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
VIGIL_BUILD=${VIGIL_BUILD:-$VIGIL_SRC/build}
DOCKER=$VIGIL_SRC/deploy/docker
LINT=$VIGIL_SRC/deps/npm/node_modules/.bin/dockerfilelint
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
pass() { echo "PASS: $*"; }
[[ -x $LINT ]] || fail "$LINT missing: run make deps (deps/npm)"

# runtime FILE: the Dockerfile's last stage.
runtime() { awk '/^FROM /{n++} {stage[n] = stage[n] $0 "\n"} END {printf "%s", stage[n]}' "$1"; }

declare -A binaries=(
    [agent.Dockerfile]="vigil-agent vigil-agent-exec vigil-probe-http.so vigil-probe-postgres.so vigil-probe-redis.so vigil-probe-kubernetes.so vigil-agent-action"
    [coordinator.Dockerfile]="vigil-coordinator vigilctl"
)
for df in "${!binaries[@]}"; do
    file=$DOCKER/$df
    out=$("$LINT" -o json "$file" 2>&1) || true
    issues=$(jq '[.files[].issues[]] | length' <<<"$out" 2>/dev/null) || fail "$df: dockerfilelint: $out"
    [[ $issues == 0 ]] || fail "$df: dockerfilelint: $(jq -c '[.files[].issues[] | {line, title}]' <<<"$out")"
    [[ $(grep -c '^FROM ' "$file") -ge 2 ]] || fail "$df: not multi-stage"
    rt=$(runtime "$file")
    grep -qx 'FROM debian:12-slim' <<<"$rt" || fail "$df: the runtime stage is not debian:12-slim"
    grep -q -- '--no-install-recommends' <<<"$rt" || fail "$df: runtime apt-get without --no-install-recommends"
    ! grep -qE '[a-z0-9]-dev\b|build-essential|cmake' <<<"$rt" || fail "$df: build tools in the runtime stage"
    for b in ${binaries[$df]}; do
        grep -q "/build/${b}[ \\]" <<<"$rt" || fail "$df: does not install $b"
        # Every library it links comes from a package the runtime stage installs.
        while IFS= read -r lib; do
            pkg=$(dpkg -S "*/$lib" 2>/dev/null | head -1 | cut -d: -f1)
            [[ -n $pkg && $pkg != libc6 ]] || continue
            grep -qE "(^|[[:space:]])$pkg([[:space:]]|\\\\|$)" <<<"$rt" || fail "$df: $b links $lib ($pkg), not installed"
        done < <(objdump -p "$VIGIL_BUILD/$b" | awk '/NEEDED/ { print $2 }')
    done
    grep -q '/usr/local/lib/vigil/' <<<"$rt" || fail "$df: not installed in /usr/local/lib/vigil"
    pass "$df: lint clean, multi-stage, debian:12-slim runtime with the libraries of ${binaries[$df]}"
done
grep -qx 'USER vigil' <(runtime "$DOCKER/coordinator.Dockerfile") || fail "coordinator.Dockerfile: not USER vigil"
# The agent must start as root (its executor); it drops to `vigil` itself.
! grep -q '^USER' <(runtime "$DOCKER/agent.Dockerfile") || fail "agent.Dockerfile: USER would stop the executor"
pass "the coordinator image runs as vigil; the agent starts as root and drops to vigil"

# The linter does find things: a Dockerfile with a mistake it knows.
printf 'FROM debian:12-slim\nRUN apt-get install curl\nADD foo /foo\n' >"${TMPDIR:-/tmp}/vigil-bad.Dockerfile"
out=$("$LINT" -o json "${TMPDIR:-/tmp}/vigil-bad.Dockerfile" 2>&1) || true
rm -f "${TMPDIR:-/tmp}/vigil-bad.Dockerfile"
[[ $(jq '[.files[].issues[]] | length' <<<"$out") -gt 0 ]] || fail "dockerfilelint found nothing in a bad Dockerfile"
pass "dockerfilelint reports a bad Dockerfile"
