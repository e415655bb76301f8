#!/usr/bin/env bash
# deploy/systemd, checked offline (systemd is not PID 1 here):
# - `systemd-analyze verify` on each unit (its ExecStart paths pointed at the build, which
#   verify requires to exist) prints nothing: no unknown directive, no bad value;
# - `systemd-analyze security --offline=true` prints each unit's exposure score, which must stay
#   at or below 3.5 (agent: it starts as root and keeps what its executor needs) and 2.0
#   (coordinator: no capability, a dynamic user);
# - each unit runs a Vigil program with flags its -h lists, checks its configuration first
#   (-n), and the hardening the deployment relies on is there.
set -euo pipefail
VIGIL_SRC=${VIGIL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
VIGIL_BUILD=${VIGIL_BUILD:-$VIGIL_SRC/build}
UNITS=$VIGIL_SRC/deploy/systemd
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
pass() { echo "PASS: $*"; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (deps/debian.txt: systemd)"

tmp=$(mktemp -d /tmp/vigil-systemd.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

declare -A max_exposure=([vigil-agent.service]=3.5 [vigil-coordinator.service]=2.0)
for unit in "${!max_exposure[@]}"; do
    file=$UNITS/$unit
    [[ -f $file ]] || fail "$unit missing"
    sed "s#/usr/local/lib/vigil/#$VIGIL_BUILD/#g" "$file" >"$tmp/$unit"
    out=$(systemd-analyze verify "$tmp/$unit" 2>&1) || fail "$unit: systemd-analyze verify: $out"
    [[ -z $out ]] || fail "$unit: systemd-analyze verify: $out"

    score=$(systemd-analyze security --offline=true "$file" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    [[ -n $score ]] || fail "$unit: no exposure score"
    awk -v s="$score" -v m="${max_exposure[$unit]}" 'BEGIN { exit !(s <= m) }' ||
        fail "$unit: exposure $score above ${max_exposure[$unit]}"

    prog=$(sed -n 's#^ExecStart=/usr/local/lib/vigil/\([a-z-]*\) .*#\1#p' "$file")
    [[ $prog == vigil-agent || $prog == vigil-coordinator ]] || fail "$unit: ExecStart runs no Vigil program"
    help=$("$VIGIL_BUILD/$prog" -h)
    for flag in $(grep -E '^Exec(Start|StartPre)=/usr/local/lib/vigil/' "$file" | grep -oE ' -[a-zA-Z-]+'); do
        grep -qE -- "(^|[ ,])$flag([ ,]|$)" <<<"$help" || fail "$unit: $prog has no flag $flag"
    done
    grep -q "^ExecStartPre=/usr/local/lib/vigil/$prog -n -c " "$file" || fail "$unit: no configuration check before start"
    for d in ProtectSystem=strict ProtectHome=yes NoNewPrivileges=yes StateDirectory= CapabilityBoundingSet=; do
        grep -q "^$d" "$file" || fail "$unit: no $d"
    done
    pass "$unit: verify clean, exposure $score (at most ${max_exposure[$unit]}), runs $prog"
done

# The check catches a bad value (systemd only warns and goes on).
sed 's/^ProtectHome=yes/ProtectHome=sometimes/' "$tmp/vigil-agent.service" >"$tmp/bad.service"
[[ -n $(systemd-analyze verify "$tmp/bad.service" 2>&1) ]] || fail "verify did not report a bad value"
pass "systemd-analyze verify reports a bad value"
