#!/usr/bin/env bash
# `make fuzz`: runs every libFuzzer target built in BUILD_DIR (default build-fuzz) for
# FUZZ_SECONDS each (default 60), starting from the committed corpus in tests/fuzz/corpus/<name>
# and keeping what it finds in BUILD_DIR/corpus/<name>. Prints one line per target:
#   fuzz: target=<name> seconds=S execs=N cov=C features=F crashes=K
# execs is libFuzzer's final stat::number_of_executed_units, cov and features (ft) the last
# status line's counters. One input running longer than FUZZ_UNIT_TIMEOUT seconds (default 10)
# is a crash too (a hang). A crash leaves its input in BUILD_DIR/crash-<name>-*; add it to the
# target's corpus directory once fixed, so make test replays it from then on.
# FUZZ_TARGETS="bundle kube_watch" runs only those.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-60}
unit_timeout=${FUZZ_UNIT_TIMEOUT:-10}
status=0
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    name=${name#fuzz_}
    [[ -z ${FUZZ_TARGETS:-} || " $FUZZ_TARGETS " == *" $name "* ]] || continue
    bin=$build/fuzz_$name
    [[ -x $bin ]] || { echo "fuzz: $bin not built" >&2; exit 1; }
    work=$build/corpus/$name
    mkdir -p "$work"
    log=$build/fuzz_$name.log
    set +e
    "$bin" -max_total_time="$seconds" -timeout="$unit_timeout" -print_final_stats=1 \
        -artifact_prefix="$build/crash-$name-" \
        "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    crashes=$(find "$build" -maxdepth 1 -name "crash-$name-*" | wc -l)
    echo "fuzz: target=$name seconds=$seconds execs=${execs:-0} cov=${cov:-0} features=${ft:-0} crashes=$crashes"
    if [[ $rc -ne 0 || $crashes -ne 0 ]]; then
        echo "fuzz: $name failed (exit $rc); see $log" >&2
        status=1
    fi
done
exit "$status"
