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
#      a Secret mount is a key secrets.sh puts in that Secret;
# 4. the cluster agent (base/cluster-agent.yaml, cluster-agent-rbac.yaml) and its rights:
#    - one replica, strategy Recreate, in every overlay, its Role and RoleBinding in the
#      application's namespace (not vigil);
#    - the Role grants exactly the list below (group/resource:verb, so an added verb, resource
#      or rule fails), the ClusterRole likewise, each bound to the cluster agent's account only;
#    - no Role or ClusterRole anywhere grants secrets or `*`;
#    - only the cluster agent's ServiceAccount and pod get a token; the node agents' and the
#      coordinator's accounts are bound to nothing;
#    - the token is root's (every container of the pod runs as uid 0: the kubelet then writes
#      it 0600, so the agent's network-facing user cannot read it), and the pod has no host
#      access and no capability beyond its commented list.
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
    # kustomize 5 warns that `bases`, `patchesStrategicMerge` and `patchesJson6902` are
    # deprecated: they are what
    # kustomize 2.0.3 understands. Anything else on stderr is a problem.
    if grep -q . < <(grep -v -e "^# Warning: 'bases' is deprecated" \
        -e "^# Warning: 'patchesStrategicMerge' is deprecated" \
        -e "^# Warning: 'patchesJson6902' is deprecated" "$tmp/$name.err"); then
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
echo app-pg-pw >"$tmp/app-pgpass"
echo app-redis-pw >"$tmp/app-redispass"
VIGIL_BUILD=$VIGIL_BUILD "$K8S/secrets.sh" --admin-key "$tmp/admin.key" --pg-host db.example \
    --pg-user vigil --pg-password-file "$tmp/pgpass" --app-pg-password-file "$tmp/app-pgpass" \
    --app-redis-password-file "$tmp/app-redispass" >"$tmp/secrets.yaml" 2>"$tmp/secrets.err" ||
    fail "secrets.sh failed: $(cat "$tmp/secrets.err")"
if VIGIL_BUILD=$VIGIL_BUILD "$K8S/secrets.sh" --admin-key "$tmp/admin.key" >/dev/null 2>"$tmp/secrets.err"; then
    fail "secrets.sh made Secrets without the cluster agent's passwords"
fi
grep -q -- "--app-pg-password-file" "$tmp/secrets.err" || fail "secrets.sh without --app-pg-password-file said: $(cat "$tmp/secrets.err")"
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
[[ $(secret_keys vigil-cluster-agent-keys | sort | tr '\n' ' ') == "agent.key app-pg.password app-redis.password coordinator.pub enrollment.secret signers.yaml " ]] ||
    fail "secrets.sh: vigil-cluster-agent-keys keys: $(secret_keys vigil-cluster-agent-keys | tr '\n' ' ')"
[[ $(secret_value vigil-cluster-agent-keys app-pg.password) == app-pg-pw ]] || fail "secrets.sh: app-pg.password"
for k in coordinator.pub enrollment.secret signers.yaml; do
    [[ $(secret_value vigil-cluster-agent-keys "$k") == "$(secret_value vigil-agent-keys "$k")" ]] ||
        fail "secrets.sh: the cluster agent's $k is not the node agents'"
done
# The cluster agent's key: a key file the agent loads (vigil-agent's own format), not the
# coordinator's.
secret_value vigil-cluster-agent-keys agent.key | grep -q '^secret-key: "' || fail "secrets.sh: agent.key is not a key file"
[[ $(secret_value vigil-cluster-agent-keys agent.key) != "$(secret_value vigil-coordinator-keys coordinator.key)" ]] ||
    fail "secrets.sh: the cluster agent has the coordinator's key"

# Does this vigil-agent know role: cluster (the cluster agent's keys, agent/agent_config.c)? A
# build from before it cannot check config/cluster-agent.yaml with -n; everything else is checked.
printf 'node: probe\nrole: cluster\nkubernetes:\n  kubeconfig: ""\n  context: ""\n  server: ""\ncoordinator:\n  public_key: "%s"\n' \
    "$(secret_value vigil-agent-keys coordinator.pub)" >"$tmp/role-probe.yaml"
cluster_role=false
"$VIGIL_BUILD/vigil-agent" -n -c "$tmp/role-probe.yaml" >/dev/null 2>&1 && cluster_role=true

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
                # A volume that lists items holds only those.
                jq -e --arg m "$m" --arg k "$key" '.mounts[] | select(.path == $m) | .volume.secret.items
                    | . == null or any(.[]; .path == $k)' <<<"$c" >/dev/null ||
                    fail "$where: $p: the volume at $m does not list $key among its items"
                mkdir -p "$(dirname "$root$p")"
                (umask 077 && secret_value "$secret" "$key" >"$root$p")
            elif [[ $(jq -r --arg m "$m" '.mounts[] | select(.path == $m) | .volume.emptyDir != null' <<<"$c") == true ]]; then
                # An emptyDir the workload's init container fills from a Secret it mounts.
                grep -qF -- "/$key" <<<"$(jq -r --arg w "$workload" 'select(.init == true and .workload == $w) | .command | join(" ")' "$jl")" ||
                    fail "$where: $p is in an emptyDir that no init container fills"
                init_script=$(jq -r --arg w "$workload" 'select(.init == true and .workload == $w) | .command | join(" ")' "$jl")
                if grep -qE -- "install -d [^;&|]* $p( |\$)" <<<"$init_script"; then
                    mkdir -p "$root$p" # a directory it makes (the coordinator's state_dir)
                else
                    from=""
                    while IFS= read -r s; do
                        grep -qx -- "$key" < <(secret_keys "$s") && from=$s
                    done < <(jq -r --arg w "$workload" 'select(.init == true and .workload == $w) | .mounts[].volume.secret.secretName // empty' "$jl")
                    [[ -n $from ]] || fail "$where: $p: no Secret the init container mounts has a key $key"
                    mkdir -p "$(dirname "$root$p")"
                    (umask 077 && secret_value "$from" "$key" >"$root$p")
                fi
            fi
        done
        case $prog in
        vigil-agent)
            if grep -q '^role: *cluster' "$root/$prog.yaml" && [[ $cluster_role != true ]]; then
                echo "SKIP: $where: vigil-agent -n (this build of vigil-agent knows no role: cluster)"
                out="configuration OK (not checked)"
            else
                out=$("$VIGIL_BUILD/vigil-agent" -n -c "$root/$prog.yaml" 2>&1) ||
                    fail "$where: vigil-agent -n: $out"
            fi
            ;;
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
            np=$(jq -r 'select(.kind == "NetworkPolicy" and .name == "vigil-coordinator") | .ports | join(" ")' "$jl")
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
    cp -rL "$K8S" "$tmp/k8s" # -L: a mutant never edits the tree itself through a link
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
mutant emptydir "no Secret the init container mounts has a key app-pg.pass" 's#/run/vigil/secrets/app-pg.password#/run/vigil/secrets/app-pg.pass#' base/config/cluster-agent.yaml
mutant items "does not list signers.yaml among its items" '/- {key: signers.yaml, path: signers.yaml}/d' base/cluster-agent.yaml
pass "the consistency checks refuse a foreign env var, an unread mount, a wrong port, an unknown flag, a missing Secret key, a file no init container copies, a key its volume leaves out"

# ---- 4. the cluster agent and its rights ----
# Every rendered object as one JSON array.
to_json() { # to_json RENDERED.yaml > OBJECTS.json
    node -e '
const { createRequire } = require("node:module");
const YAML = createRequire(process.argv[1] + "/x.js")("yaml");
const docs = YAML.parseAllDocuments(require("node:fs").readFileSync(process.argv[2], "utf8"));
console.log(JSON.stringify(docs.map((d) => d.toJS()).filter(Boolean)));' "$NODE_MODULES" "$1"
}
# The rules of a Role or ClusterRole as sorted "group/resource:verb" lines ("" is the core group);
# a rule with anything but apiGroups, resources and verbs (resourceNames, nonResourceURLs) shows
# as "extra field".
rule_lines() { # rule_lines OBJECTS.json KIND NAME
    jq -r --arg k "$2" --arg n "$3" '.[] | select(.kind == $k and .metadata.name == $n) | .rules[]
        | (keys - ["apiGroups", "resources", "verbs"] | map("extra field " + .)[]),
          (.apiGroups[] as $g | .resources[] as $r | .verbs[] as $v | "\($g)/\($r):\($v)")' "$1" | sort -u
}
# Exactly what cluster-agent-rbac.yaml's comments justify, one line per verb.
role_want=$(sort <<'LIST'
apps/deployments:get
apps/deployments:patch
apps/deployments/scale:get
apps/deployments/scale:patch
networking.k8s.io/networkpolicies:get
networking.k8s.io/networkpolicies:list
networking.k8s.io/networkpolicies:create
networking.k8s.io/networkpolicies:patch
networking.k8s.io/networkpolicies:delete
/pods:get
/pods:list
/pods:patch
/pods/log:get
/events:get
/events:list
/events:watch
networking.k8s.io/ingresses:get
networking.k8s.io/ingresses:list
/configmaps:get
/configmaps:list
/services:get
/services:list
LIST
)
clusterrole_want=$(sort <<'LIST'
/nodes:get
/nodes:list
/nodes:watch
metrics.k8s.io/pods:get
metrics.k8s.io/pods:list
metrics.k8s.io/nodes:get
metrics.k8s.io/nodes:list
LIST
)
app_namespace=reconciliation
agent_sa='{"kind":"ServiceAccount","name":"vigil-cluster-agent","namespace":"vigil"}'

cluster_agent_checks() { # cluster_agent_checks OBJECTS.json LABEL
    local o=$1 where=$2 got
    # The workload: one replica, Recreate, its account, no host access.
    [[ $(jq '[.[] | select(.kind == "Deployment" and .metadata.name == "vigil-cluster-agent")] | length' "$o") == 1 ]] ||
        fail "$where: no Deployment vigil-cluster-agent"
    local d='.[] | select(.kind == "Deployment" and .metadata.name == "vigil-cluster-agent")'
    [[ $(jq "$d | .spec.replicas" "$o") == 1 ]] || fail "$where: the cluster agent has $(jq "$d | .spec.replicas" "$o") replicas, not 1"
    [[ $(jq -r "$d | .spec.strategy.type" "$o") == Recreate ]] || fail "$where: the cluster agent's strategy is not Recreate"
    [[ $(jq -r "$d | .spec.template.spec.serviceAccountName" "$o") == vigil-cluster-agent ]] ||
        fail "$where: the cluster agent does not run as ServiceAccount vigil-cluster-agent"
    jq -e "$d | .spec.template.spec | (.hostPID // false) == false and (.hostNetwork // false) == false
        and (.hostIPC // false) == false and all(.volumes[]; .hostPath == null)" "$o" >/dev/null ||
        fail "$where: the cluster agent uses the host (hostPID, hostNetwork, hostIPC or a hostPath)"
    # Its token is root's: the kubelet writes it with mode 0600 for the user every container runs
    # as, and only when they all set it; with fsGroup it would be group-readable.
    jq -e "$d | .spec.template.spec | (.securityContext.fsGroup == null)
        and all((.initContainers // []) + .containers | .[]; .securityContext.runAsUser == 0)" "$o" >/dev/null ||
        fail "$where: not every container of the cluster agent sets runAsUser: 0 (or the pod sets fsGroup): its token would be readable by the agent's network-facing user"
    got=$(jq -r "$d | .spec.template.spec.containers[] | select(.name == \"vigil-agent\") | .securityContext.capabilities
        | ((.drop | join(\",\")) + \" \" + (.add | sort | join(\",\")))" "$o")
    [[ $got == "ALL CHOWN,DAC_READ_SEARCH,FOWNER,KILL,SETGID,SETUID" ]] ||
        fail "$where: the cluster agent's capabilities are \"$got\" (drop, add), not the commented list"

    # Nowhere: secrets, `*`, and any binding but the cluster agent's.
    got=$(jq -r '.[] | select(.kind == "Role" or .kind == "ClusterRole") | . as $o | .rules[]
        | select(any((.apiGroups // [])[], .resources[], .verbs[], (.resourceNames // [])[]; . == "*" or test("^secrets(/|$)")))
        | "\($o.kind)/\($o.metadata.name)"' "$o" | sort -u | paste -sd ' ' -)
    [[ -z $got ]] || fail "$where: $got grants secrets or *"
    got=$(jq -r '.[] | select(.kind == "RoleBinding" or .kind == "ClusterRoleBinding") | .subjects[]
        | select(.kind == "ServiceAccount" and .name != "vigil-cluster-agent") | .name' "$o" | sort -u | paste -sd ' ' -)
    [[ -z $got ]] || fail "$where: a binding names ServiceAccount $got: only the cluster agent holds rights"

    # Its Role, in the application's namespace, exactly the list; bound to its account only.
    [[ $(jq -r --arg ns "$app_namespace" '[.[] | select((.kind == "Role" or .kind == "RoleBinding") and .metadata.name == "vigil-cluster-agent") | .metadata.namespace == $ns] | (length == 2 and all)' "$o") == true ]] ||
        fail "$where: the cluster agent's Role and RoleBinding are not (both, only) in namespace $app_namespace: $(jq -c '[.[] | select(.kind == "Role" or .kind == "RoleBinding") | "\(.kind)/\(.metadata.name) in \(.metadata.namespace)"]' "$o")"
    got=$(rule_lines "$o" Role vigil-cluster-agent)
    [[ $got == "$role_want" ]] || fail "$where: the cluster agent's Role is not exactly the list: $(diff <(echo "$role_want") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"
    got=$(rule_lines "$o" ClusterRole vigil-cluster-agent)
    [[ $got == "$clusterrole_want" ]] || fail "$where: the cluster agent's ClusterRole is not exactly the list: $(diff <(echo "$clusterrole_want") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"
    jq -e --argjson sa "$agent_sa" '[.[] | select(.kind == "RoleBinding" or .kind == "ClusterRoleBinding") | select(.metadata.name == "vigil-cluster-agent")]
        | length == 2 and all(.subjects == [$sa] and .roleRef.name == "vigil-cluster-agent"
                              and .roleRef.kind == (if .kind == "RoleBinding" then "Role" else "ClusterRole" end))' "$o" >/dev/null ||
        fail "$where: the cluster agent's bindings do not bind its Role and ClusterRole to its account alone"

    # Tokens: only the cluster agent's account and pod have one (a ServiceAccount without the
    # field mounts one).
    got=$(jq -r '.[] | select(.kind == "ServiceAccount" and .metadata.name != "vigil-cluster-agent"
        and .automountServiceAccountToken != false) | .metadata.name' "$o" | paste -sd ' ' -)
    [[ -z $got ]] || fail "$where: ServiceAccount $got mounts a token"
    got=$(jq -r '.[] | select(.spec.template.spec != null) | select(.spec.template.spec.serviceAccountName != "vigil-cluster-agent"
        and .spec.template.spec.automountServiceAccountToken != false) | "\(.kind)/\(.metadata.name)"' "$o" | paste -sd ' ' -)
    [[ -z $got ]] || fail "$where: $got mounts a token"
    [[ $(jq -r '.[] | select(.kind == "ServiceAccount" and .metadata.name == "vigil-cluster-agent") | .automountServiceAccountToken' "$o") == true ]] ||
        fail "$where: ServiceAccount vigil-cluster-agent mounts no token"

    # Its configuration: role cluster, its fixed node name, and the namespace of its Role.
    local cm
    cm=$(jq -r '.[] | select(.kind == "ConfigMap" and (.metadata.name | startswith("vigil-cluster-agent-config"))) | .data["cluster-agent.yaml"]' "$o")
    grep -q '^role: cluster' <<<"$cm" || fail "$where: the cluster agent's configuration has no role: cluster"
    grep -qE '^node: +cluster( |$)' <<<"$cm" || fail "$where: the cluster agent's node name is not \"cluster\""
    got=$(grep -oE '\{name: namespace, enum: \[[^]]*\]\}' <<<"$cm" | sort -u)
    [[ $got == "{name: namespace, enum: [$app_namespace]}" ]] ||
        fail "$where: the catalog's namespaces ($got) are not the Role's namespace $app_namespace"
}
for name in "${overlays[@]}"; do
    to_json "$tmp/$name.yaml" >"$tmp/$name.objects.json"
    cluster_agent_checks "$tmp/$name.objects.json" "overlays/$name"
    pass "overlays/$name: the cluster agent: 1 replica, Recreate, its Role in $app_namespace exactly ($(wc -l <<<"$role_want") verbs) and its ClusterRole ($(wc -l <<<"$clusterrole_want")), no secrets or *, the only token (root's)"
done

# The checks refuse what they should.
rbac_mutant() { # rbac_mutant LABEL EXPECTED-MESSAGE SED-SCRIPT FILE (relative to deploy/kubernetes)
    local label=$1 expect=$2 script=$3 file=$4
    rm -rf "$tmp/k8s"
    cp -rL "$K8S" "$tmp/k8s" # -L: a mutant never edits the tree itself through a link
    sed -i -e "$script" "$tmp/k8s/$file"
    cmp -s "$K8S/$file" "$tmp/k8s/$file" && fail "rbac mutant $label: the sed script changed nothing"
    kubectl kustomize "$tmp/k8s/overlays/dev" >"$tmp/mutant.yaml" 2>/dev/null || fail "rbac mutant $label does not render"
    to_json "$tmp/mutant.yaml" >"$tmp/mutant.objects.json"
    if (cluster_agent_checks "$tmp/mutant.objects.json" mutant) >/dev/null 2>"$tmp/mutant.err"; then
        fail "rbac mutant $label passed the cluster agent checks"
    fi
    grep -q -- "$expect" "$tmp/mutant.err" || fail "rbac mutant $label: expected \"$expect\", got: $(cat "$tmp/mutant.err")"
}
rbac_mutant verb "> apps/deployments:update" '0,/verbs: \["get", "patch"\]/s//verbs: ["get", "patch", "update"]/' base/cluster-agent-rbac.yaml
rbac_mutant secrets "grants secrets" 's/resources: \["configmaps"\]/resources: ["configmaps", "secrets"]/' base/cluster-agent-rbac.yaml
rbac_mutant star "ClusterRole/vigil-cluster-agent grants secrets or \*" 's/resources: \["pods", "nodes"\]/resources: ["*"]/' base/cluster-agent-rbac.yaml
rbac_mutant replicas "2 replicas" 's/^  replicas: 1/  replicas: 2/' base/cluster-agent.yaml
rbac_mutant strategy "not Recreate" 's/type: Recreate/type: RollingUpdate/' base/cluster-agent.yaml
rbac_mutant automount "ServiceAccount vigil-agent mounts a token" '0,/automountServiceAccountToken: false/s//automountServiceAccountToken: true/' base/serviceaccounts.yaml
rbac_mutant daemonset-bound "a binding names ServiceAccount vigil-agent" '0,/    name: vigil-cluster-agent$/s//    name: vigil-agent/' base/cluster-agent-rbac.yaml
rbac_mutant namespace "not (both, only) in namespace reconciliation" 's/^bases:/namespace: vigil\nbases:/' overlays/dev/kustomization.yaml
rbac_mutant token "readable by the agent's network-facing user" '0,/runAsUser: 0                    # drops/s//runAsGroup: 0                   # drops/' base/cluster-agent.yaml
pass "the cluster agent checks refuse an added verb, secrets, *, 2 replicas, a rolling update, another token, a binding of the node agents, an overlay namespace, a token the agent's user could read"

# Last, as it depends on the image more than on the manifests: the cluster agent's postgres,
# redis and kubernetes actions run vigil-agent-action, which the executor finds next to
# vigil-agent (agent.yaml action_path), so the image must install it.
if [[ $cluster_role != true ]]; then
    echo "SKIP: the image's vigil-agent-action (this build of vigil-agent knows no role: cluster)"
else
    grep -qE '^ +kind: *(postgres|redis|kubernetes)' "$K8S/base/config/cluster-agent.yaml" || fail "config/cluster-agent.yaml: no service action?"
    grep -q "/build/vigil-agent-action[ \\]" "$VIGIL_SRC"/deploy/docker/agent.Dockerfile ||
        fail "the cluster agent's catalog has postgres, redis and kubernetes actions, and deploy/docker/agent.Dockerfile does not install vigil-agent-action (next to vigil-agent, where the executor looks for it)"
    pass "the agent image installs vigil-agent-action, which runs the cluster agent's service actions"
fi
