#!/usr/bin/env bash
# deploy/grafana/vigil-dashboard.json against a real coordinator's /metrics: the file is a
# Grafana dashboard (valid JSON, panels with Prometheus queries), every metric a query reads is
# one the coordinator exports, and every label it groups or filters by is one that metric has.
# A metric renamed in the code, or a query mistyped, fails here instead of drawing an empty
# panel at 3 a.m.
source "$(dirname "$0")/../lib/harness.sh"
DASH=$VIGIL_SRC/deploy/grafana/vigil-dashboard.json
h_setup

jq -e '.title == "Vigil" and (.panels | length) > 10 and .schemaVersion >= 30' "$DASH" >/dev/null ||
    h_fail "$DASH is not the Vigil dashboard"
mapfile -t exprs < <(jq -r '.panels[] | select(.type != "row") | .targets[].expr' "$DASH")
((${#exprs[@]} >= 20)) || h_fail "only ${#exprs[@]} queries in $DASH"
[[ $(jq '[.panels[] | select(.type != "row") | select((.targets | length) == 0)] | length' "$DASH") == 0 ]] ||
    h_fail "a panel without a query"
h_pass "the dashboard is valid JSON with ${#exprs[@]} queries"

# An agent, so the per-agent metrics carry their labels.
h_start_coordinator
h_start_agent node-a
active() { [[ $(h_ctl agents -o json | jq '[.[] | select(.state == "active")] | length') == 1 ]]; }
h_wait "the agent active" 30 active
# The per-agent spool metrics come with the agent's first self signals.
spool_reported() {
    curl -fsS "http://127.0.0.1:$H_PORT_HTTP/metrics" >"$H_DIR/metrics" &&
        grep -q '^vigil_agent_spool_depth{' "$H_DIR/metrics"
}
h_wait "the agent's spool in /metrics" 30 spool_reported

checked=0
for expr in "${exprs[@]}"; do
    mapfile -t names < <(grep -oE '\bvigil_[a-z_]+' <<<"$expr" | sort -u)
    ((${#names[@]} > 0)) || h_fail "a query reads no vigil_ metric: $expr"
    for name in "${names[@]}"; do
        family=$name
        [[ $name == *_bucket ]] && family=${name%_bucket}
        grep -q "^# TYPE $family " "$H_DIR/metrics" || h_fail "$name is not exported (query: $expr)"
        checked=$((checked + 1))
    done
    # Labels: those of `by (...)` and of selectors other than the dashboard's job variable.
    mapfile -t labels < <({ grep -oE 'by \([a-z_, ]+\)' <<<"$expr" | sed -E 's/by \(|\)//g' | tr ',' '\n'
        grep -oE '\{[^}]*\}' <<<"$expr" | grep -oE '[a-z_]+=~?"' | sed -E 's/=~?"//'; } |
        tr -d ' ' | grep -vx 'job\|le' | sort -u)
    for label in "${labels[@]}"; do
        [[ -n $label ]] || continue
        has=0
        for name in "${names[@]}"; do
            grep -qE "^$name\{([^}]*,)?$label=" "$H_DIR/metrics" && has=1
        done
        ((has)) || h_fail "no metric of \"$expr\" has the label $label"
    done
done
h_pass "every metric ($checked uses) and label the dashboard queries is in /metrics"
h_pass "grafana dashboard"
