#!/usr/bin/env bash
# deploy/kubernetes, checked offline (no cluster):
# 1. every overlay renders with `kubectl kustomize` (Debian's kubectl 1.20 with kustomize 2.0.3,
#    or a newer one: the kustomizations use what both understand);
# 2. every rendered object validates against the Kubernetes OpenAPI schema, unknown fields
#    refused (tests/deploy/validate-k8s.mjs, with deps/npm's kubernetes-models);
# 3. the manifests agree with the binaries:
#    - the configurations in the ConfigMaps pass `vigil-agent -n` / `vigil-coordinator -n`, with
#      the files the Secrets from deploy/kubernetes/secrets.sh hold where the pods mount them;
#    - every command and probe runs a binary the images install, with flags its -h lists, and
#      its -c names a file a ConfigMap mount provides;
#    - every env var is one the binary (or libpq, for the coordinator's PG* variables) reads;
#    - the coordinator's container ports, Service, NetworkPolicy, probes and scrape annotation
#      are the ports its configuration listens on;
#    - every mount path is a path the program reads (its configuration's paths, or a path
#      compiled into the binary, or below them), and every file the configuration names under
#      a Secret mount is a key secrets.sh puts in that Secret.
set -euo pipefail
VIGIL_SRC=${VIGIL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
VIGIL_BUILD=${VIGIL_BUILD:-$VIGIL_SRC/build}
K8S=$VIGIL_SRC/deploy/kubernetes
NODE_MODULES=$VIGIL_SRC/deps/npm/node_modules

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
pass() { echo "PASS: $*"; }

command -v kubectl >/dev/null || fail "kubectl not found: make deps installs kubernetes-client"
command -v node >/dev/null || fail "node not found: make deps installs nodejs"
[[ -d $NODE_MODULES/kubernetes-models ]] ||
    fail "$NODE_MODULES/kubernetes-models missing: run make deps (scripts/deps.sh installs deps/npm)"
for b in vigil-agent vigil-agent-exec vigil-coordinator vigilctl; do
    [[ -x $VIGIL_BUILD/$b ]] || fail "$VIGIL_BUILD/$b not built"
done

tmp=$(mktemp -d /tmp/vigil-deploy.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 711 "$tmp"

# ---- 1. render ----
overlays=()
for dir in "$K8S"/overlays/*/; do
    name=$(basename "$dir")
    overlays+=("$name")
    if ! kubectl kustomize "$dir" >"$tmp/$name.yaml" 2>"$tmp/$name.err"; then
        cat "$tmp/$name.err" >&2
        fail "kubectl kustomize overlays/$name"
    fi
    # kustomize 5 warns that `bases` and `patchesStrategicMerge` are deprecated: they are what
    # kustomize 2.0.3 understands. Anything else on stderr is a problem.
    if grep -q . < <(grep -v -e "^# Warning: 'bases' is deprecated" \
        -e "^# Warning: 'patchesStrategicMerge' is deprecated" "$tmp/$name.err"); then
        cat "$tmp/$name.err" >&2
        fail "kubectl kustomize overlays/$name printed warnings"
    fi
done
((${#overlays[@]} >= 2)) || fail "expected the dev and prod overlays"
pass "rendered overlays: ${overlays[*]} ($(kubectl version --client 2>/dev/null | head -2 | cut -c1-60 | tr '\n' ' '))"

# ---- 2. schema ----
for name in "${overlays[@]}"; do
    node "$VIGIL_SRC/tests/deploy/validate-k8s.mjs" "$NODE_MODULES" "$tmp/$name.yaml" >"$tmp/$name.jsonl" ||
        fail "overlays/$name: objects do not validate against the Kubernetes schema (above)"
    kinds=$(grep -c '^kind:' "$tmp/$name.yaml")
    pass "overlays/$name: $kinds objects valid, no unknown field"
done
# The check refuses what it should: a misspelt field and a wrong type.
sed -e 's/^      hostPID: true/      hostPID: true\n      hostPid: true/' "$tmp/${overlays[0]}.yaml" >"$tmp/bad.yaml"
if node "$VIGIL_SRC/tests/deploy/validate-k8s.mjs" "$NODE_MODULES" "$tmp/bad.yaml" >/dev/null 2>"$tmp/bad.err"; then
    fail "a misspelt field (hostPid) was not refused"
fi
grep -q "hostPid: unknown field" "$tmp/bad.err" || fail "no unknown-field error: $(cat "$tmp/bad.err")"
sed -e 's/containerPort: 7400/containerPort: "7400"/' "$tmp/${overlays[0]}.yaml" >"$tmp/bad.yaml"
if node "$VIGIL_SRC/tests/deploy/validate-k8s.mjs" "$NODE_MODULES" "$tmp/bad.yaml" >/dev/null 2>"$tmp/bad.err"; then
    fail "a port given as a string was not refused"
fi
pass "the schema check refuses an unknown field and a wrong type"

# ---- 3. consistency ----
# The Secrets, made as an administrator would, unpacked where the pods mount them.
"$VIGIL_BUILD/vigilctl" keygen --out "$tmp/admin.key" >/dev/null
echo pw >"$tmp/pgpass"
VIGIL_BUILD=$VIGIL_BUILD "$K8S/secrets.sh" --admin-key "$tmp/admin.key" --pg-host db.example \
    --pg-user vigil --pg-password-file "$tmp/pgpass" >"$tmp/secrets.yaml" ||
    fail "secrets.sh failed"
node -e '
const { createRequire } = require("node:module");
const req = createRequire(process.argv[1] + "/x.js");
const YAML = req("yaml");
const fs = require("node:fs");
for (const d of YAML.parseAllDocuments(fs.readFileSync(process.argv[2], "utf8"))) {
    const o = d.toJS();
    for (const [k, v] of Object.entries(o.data))
        console.log(JSON.stringify({ secret: o.metadata.name, key: k, value: Buffer.from(v, "base64").toString("utf8") }));
}' "$NODE_MODULES" "$tmp/secrets.yaml" >"$tmp/secrets.jsonl"
secret_keys() { jq -r --arg s "$1" 'select(.secret == $s) | .key' "$tmp/secrets.jsonl"; }
secret_value() { jq -r --arg s "$1" --arg k "$2" 'select(.secret == $s and .key == $k) | .value' "$tmp/secrets.jsonl"; }
[[ $(secret_keys vigil-store | sort | tr '\n' ' ') == "PGDATABASE PGHOST PGPASSWORD PGPORT PGSSLMODE PGUSER " ]] ||
    fail "secrets.sh: vigil-store keys"

agent_help=$("$VIGIL_BUILD/vigil-agent" -h)
coord_help=$("$VIGIL_BUILD/vigil-coordinator" -h)
libpq=$(ldd "$VIGIL_BUILD/vigil-coordinator" | awk '$1 ~ /^libpq/ { print $3 }')
[[ -f $libpq ]] || fail "vigil-coordinator does not link libpq?"
strings "$libpq" >"$tmp/strings.libpq"
for b in vigil-agent vigil-coordinator; do tr '\0' '\n' <"$VIGIL_BUILD/$b" >"$tmp/strings.$b"; done

# Absolute paths a program reads: compiled in (the binary and, for the agent, its executor).
strings -n 4 "$VIGIL_BUILD/vigil-agent" "$VIGIL_BUILD/vigil-agent-exec" | grep -E '^/[a-z]' | sort -u >"$tmp/paths.vigil-agent"
strings -n 4 "$VIGIL_BUILD/vigil-coordinator" | grep -E '^/[a-z]' | sort -u >"$tmp/paths.vigil-coordinator"

# under P PATH...: is PATH equal to P or below it, for one of them?
under() {
    local p=$1 q
    shift
    for q in "$@"; do [[ $q == "$p" || $q == "$p"/* ]] && return 0; done
    return 1
}

# consistency NAME: the checks of 3. on $tmp/NAME.jsonl (validate-k8s.mjs's description).
consistency() {
    local name=$1
    jl=$tmp/$name.jsonl
    root=$tmp/root-$name
    mkdir -p "$root"
    # Each container of Vigil's own programs.
    while IFS= read -r c; do
        workload=$(jq -r .workload <<<"$c")
        cname=$(jq -r .container <<<"$c")
        where="overlays/$name $workload container $cname"
        init=$(jq -r .init <<<"$c")
        if [[ $init == true ]]; then
            # The key-copying init container: a shell script that names every path it mounts.
            script=$(jq -r '.command | join(" ")' <<<"$c")
            while IFS= read -r m; do
                grep -qF -- "$m" <<<"$script" || fail "$where: mount $m is not used by its command"
            done < <(jq -r '.mounts[].path' <<<"$c")
            continue
        fi
        bin=$(jq -r '.command[0]' <<<"$c")
        prog=$(basename "$bin")
        case $prog in
        vigil-agent) help=$agent_help ;;
        vigil-coordinator) help=$coord_help ;;
        *) fail "$where: runs $bin, not a Vigil program" ;;
        esac
        # The image copies it from the build stage into /usr/local/lib/vigil/.
        grep -q "/build/${prog}[ \\]" "$VIGIL_SRC"/deploy/docker/*.Dockerfile ||
            fail "$where: no Dockerfile installs $prog"
        [[ $bin == /usr/local/lib/vigil/$prog ]] || fail "$where: $bin is not where the image installs $prog"

        # Flags (command, args and exec probes) and the configuration file.
        config=""
        while IFS= read -r argv; do
            mapfile -t a < <(jq -r '.[]' <<<"$argv")
            [[ ${a[0]} == "$bin" ]] || fail "$where: a probe runs ${a[0]}, not $bin"
            for ((i = 1; i < ${#a[@]}; i++)); do
                if [[ ${a[i]} == -* ]]; then
                    grep -qE -- "(^|[ ,])${a[i]}([ ,]|$)" <<<"$help" || fail "$where: $prog has no flag ${a[i]} (its -h)"
                fi
                if [[ ${a[i]} == -c ]]; then
                    [[ -z $config || $config == "${a[i + 1]}" ]] || fail "$where: two configuration files"
                    config=${a[i + 1]}
                fi
            done
        done < <(jq -c '(.command + .args), .probe_commands[]' <<<"$c")
        [[ -n $config ]] || fail "$where: no -c"
        cm_mount=$(jq -r --arg f "$(dirname "$config")" '.mounts[] | select(.path == $f and .volume.configMap) | .volume.configMap.name' <<<"$c")
        [[ -n $cm_mount ]] || fail "$where: -c $config is not in a ConfigMap mount"
        data=$(jq -r --arg n "$cm_mount" --arg k "$(basename "$config")" 'select(.kind == "ConfigMap" and .name == $n) | .data[$k] // empty' "$jl")
        [[ -n $data ]] || fail "$where: ConfigMap $cm_mount has no key $(basename "$config")"

        # Environment.
        while IFS= read -r env; do
            case $env in
            PG*) grep -qx "$env" "$tmp/strings.libpq" || fail "$where: libpq reads no $env" ;;
            # getenv's argument: a C string ending with the name (the linker may merge it into
            # the tail of a longer one).
            *) grep -qa "$env\$" "$tmp/strings.$prog" || fail "$where: $prog reads no $env" ;;
            esac
        done < <(jq -r '.env[]' <<<"$c")

        # The configuration, with every absolute path moved under $root, checked by the program.
        printf '%s\n' "$data" >"$tmp/$prog.yaml"
        sed -E "s#(: *\"?)(/(etc|var|run)/)#\\1$root\\2#g" "$tmp/$prog.yaml" >"$root/$prog.yaml"
        cfg_paths=("$config")
        while IFS= read -r p; do cfg_paths+=("$p"); done < <(grep -oE '(: *"?)/(etc|var|run)/[^" #]*' "$tmp/$prog.yaml" | sed -E 's/^: *"?//')
        # The files the Secrets provide, where the configuration wants them.
        for p in "${cfg_paths[@]}"; do
            m=$(jq -r --arg p "$p" '.mounts[] | select(.path as $m | $p | startswith($m + "/")) | .path' <<<"$c" | head -1)
            [[ -n $m ]] || continue
            secret=$(jq -r --arg m "$m" '.mounts[] | select(.path == $m) | .volume.secret.secretName // empty' <<<"$c")
            key=${p#"$m"/}
            if [[ -n $secret ]]; then
                grep -qx -- "$key" < <(secret_keys "$secret") || fail "$where: $p: Secret $secret (secrets.sh) has no key $key"
                mkdir -p "$(dirname "$root$p")"
                (umask 077 && secret_value "$secret" "$key" >"$root$p")
            elif [[ $(jq -r --arg m "$m" '.mounts[] | select(.path == $m) | .volume.emptyDir != null' <<<"$c") == true ]]; then
                # An emptyDir the init container fills from the coordinator's Secret.
                grep -qF -- "/$key" <<<"$(jq -r 'select(.init == true) | .command | join(" ")' "$jl")" ||
                    fail "$where: $p is in an emptyDir that no init container fills"
                mkdir -p "$(dirname "$root$p")"
                (umask 077 && secret_value vigil-coordinator-keys "$key" >"$root$p")
            fi
        done
        case $prog in
        vigil-agent) out=$("$VIGIL_BUILD/vigil-agent" -n -c "$root/$prog.yaml" 2>&1) ||
            fail "$where: vigil-agent -n: $out" ;;
        vigil-coordinator)
            mkdir -p "$root/etc/vigil"
            ln -sfn "$VIGIL_SRC/runbooks" "$root/etc/vigil/runbooks" # the image's copy of runbooks/
            out=$("$VIGIL_BUILD/vigil-coordinator" -n -c "$root/$prog.yaml" 2>&1) ||
                fail "$where: vigil-coordinator -n: $out" ;;
        esac
        grep -q "configuration OK" <<<"$out" || fail "$where: -n said: $out"

        # Mounts: each one a path the program reads, or above one.
        mapfile -t compiled <"$tmp/paths.$prog"
        while IFS= read -r m; do
            under "$m" "${cfg_paths[@]}" "${compiled[@]}" ||
                fail "$where: mount $m: $prog reads nothing there (its configuration and binary name no such path)"
        done < <(jq -r '.mounts[].path' <<<"$c")

        # Ports: what the coordinator listens on, everywhere a port is named.
        if [[ $prog == vigil-coordinator ]]; then
            port_of() { grep -A3 "^$1:" "$tmp/$prog.yaml" | grep -m1 -oE "$2" | grep -oE '[0-9]+$'; }
            agents=$(port_of listen '\bagents: *"tcp://[^"]*:[0-9]+')
            admin=$(port_of listen '\badmin: *"tcp://[^"]*:[0-9]+')
            http=$(port_of http '\bport: *[0-9]+')
            status=$(port_of status_page '\bport: *[0-9]+')
            want="agents=$agents admin=$admin http=$http status=$status"
            got=$(jq -r '[.ports[] | "\(.name)=\(.port)"] | join(" ")' <<<"$c")
            [[ $got == "$want" ]] || fail "$where: container ports $got, configuration $want"
            [[ $(grep -A3 '^http:' "$tmp/$prog.yaml" | grep -c '^  address: *"0.0.0.0"') == 1 ]] ||
                fail "$where: http.address is not the pod's address"
            [[ $(grep -A3 '^status_page:' "$tmp/$prog.yaml" | grep -c '^  address: *"0.0.0.0"') == 1 ]] ||
                fail "$where: status_page.address is not the pod's address"
            jq -e --arg h "$http" '.scrape_port == $h' <<<"$c" >/dev/null || fail "$where: prometheus.io/port is not $http"
            jq -e '.probe_ports | all(. == "http")' <<<"$c" >/dev/null || fail "$where: a probe is not on the http port"
            svc=$(jq -r 'select(.kind == "Service") | [.ports[] | "\(.targetPort)=\(.port)"] | join(" ")' "$jl")
            [[ $svc == "$want" ]] || fail "overlays/$name Service ports $svc, configuration $want"
            np=$(jq -r 'select(.kind == "NetworkPolicy") | .ports | join(" ")' "$jl")
            [[ $np == "$agents $admin $http $status" ]] || fail "overlays/$name NetworkPolicy ports $np"
        fi
        pass "overlays/$name $workload: $prog -n OK; flags, env ($(jq -r '.env | join(",")' <<<"$c")), mounts, ports agree"
    done < <(jq -c 'select(.kind == "Container")' "$jl")
}
for name in "${overlays[@]}"; do consistency "$name"; done

# The consistency checks refuse what they should: an env var no program reads, a mount where it
# reads nothing, a port the configuration does not listen on, a flag the agent does not have.
mutant() { # mutant LABEL EXPECTED-MESSAGE SED-SCRIPT FILE (relative to deploy/kubernetes)
    local label=$1 expect=$2 script=$3 file=$4
    rm -rf "$tmp/k8s" "$tmp/root-mutant"
    cp -r "$K8S" "$tmp/k8s"
    sed -i -e "$script" "$tmp/k8s/$file"
    cmp -s "$K8S/$file" "$tmp/k8s/$file" && fail "mutant $label: the sed script changed nothing"
    kubectl kustomize "$tmp/k8s/overlays/dev" >"$tmp/mutant.yaml" 2>/dev/null || fail "mutant $label does not render"
    node "$VIGIL_SRC/tests/deploy/validate-k8s.mjs" "$NODE_MODULES" "$tmp/mutant.yaml" >"$tmp/mutant.jsonl" ||
        fail "mutant $label is not even schema-valid"
    if (consistency mutant) >/dev/null 2>"$tmp/mutant.err"; then
        fail "mutant $label passed the consistency checks"
    fi
    grep -q -- "$expect" "$tmp/mutant.err" || fail "mutant $label: expected \"$expect\", got: $(cat "$tmp/mutant.err")"
}
mutant env "reads no VIGIL_NODE" 's/- name: NODE_NAME /- name: VIGIL_NODE /' base/agent-daemonset.yaml
mutant mount "mount /opt/vigil: vigil-agent reads nothing there" 's#mountPath: /var/lib/vigil-agent-exec#mountPath: /opt/vigil#' base/agent-daemonset.yaml
mutant port "container ports agents=7500" 's/containerPort: 7400/containerPort: 7500/' base/coordinator-statefulset.yaml
mutant flag "has no flag --healthy" 's/"--health"/"--healthy"/' base/agent-daemonset.yaml
mutant secret "has no key coordinator.pem" 's#/etc/vigil/keys/coordinator.pub#/etc/vigil/keys/coordinator.pem#' base/config/agent.yaml
pass "the consistency checks refuse a foreign env var, an unread mount, a wrong port, an unknown flag, a missing Secret key"
