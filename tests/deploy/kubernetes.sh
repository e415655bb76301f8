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
#    - every mount path is a path the program reads (its configuration's paths, the files a
#      kubeconfig it names names, or a path compiled into the binary, or below them), and every
#      file the configuration (or that kubeconfig) names under a Secret mount is a key secrets.sh
#      puts in that Secret, or one Kubernetes fills into a service-account-token Secret;
#      a kubeconfig in a ConfigMap is one kubectl can use, https, with a CA;
# 4. the cluster agent (base/cluster-agent.yaml, cluster-agent-rbac.yaml) and its rights, two
#    accounts: vigil-cluster-agent, the writer (the actions), and vigil-cluster-observer, read
#    only (the kubernetes probe, in the agent's unprivileged half):
#    - one replica, strategy Recreate, in every overlay, both Roles and RoleBindings in the
#      application's namespace (not vigil);
#    - the writer's Role grants exactly the list below (group/resource:verb, so an added verb,
#      resource or rule fails) and it has no ClusterRole; the observer's Role and ClusterRole
#      grant exactly theirs, and nothing but get, list and watch; each bound to its own account
#      only, and no other binding exists;
#    - no Role or ClusterRole anywhere grants secrets or `*`;
#    - only the cluster agent's ServiceAccount and pod get a token; the node agents' and the
#      coordinator's accounts are bound to nothing; no pod runs as the observer;
#    - the writer's token is root's (every container of the pod runs as uid 0: the kubelet then
#      writes it 0600, so the agent's network-facing user cannot read it), and the pod has no
#      host access and no capability beyond its commented list;
#    - the only long-lived token is the observer's service-account-token Secret, mounted
#      read-only, readable by the agent's user and writable by none, by the cluster agent's main
#      container alone, where the probe's kubeconfig (collectors.kubernetes) says; the probe
#      never uses the in-cluster (writer's) token, the actions never the observer's;
#    - the agent image installs what the cluster agent runs: vigil-agent-action and the probe
#      modules its configuration uses.
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
echo owner-pw >"$tmp/pgownerpass"
echo app-pg-pw >"$tmp/app-pgpass"
echo app-redis-pw >"$tmp/app-redispass"
VIGIL_BUILD=$VIGIL_BUILD "$K8S/secrets.sh" --admin-key "$tmp/admin.key" --pg-host db.example \
    --pg-user vigil_coordinator --pg-password-file "$tmp/pgpass" \
    --pg-owner-password-file "$tmp/pgownerpass" --app-pg-password-file "$tmp/app-pgpass" \
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
[[ $(secret_keys vigil-store | sort | tr '\n' ' ') == "PGDATABASE PGHOST PGPASSWORD PGPORT PGSSLMODE PGUSER owner.pgpass " ]] ||
    fail "secrets.sh: vigil-store keys"
[[ $(secret_value vigil-store owner.pgpass) == "*:*:*:vigil_owner:owner-pw" ]] ||
    fail "secrets.sh: owner.pgpass: $(secret_value vigil-store owner.pgpass)"
[[ $(secret_keys vigil-cluster-agent-keys | sort | tr '\n' ' ') == "agent.key app-pg.password app-redis.password coordinator.pub enrollment.secret signers.yaml " ]] ||
    fail "secrets.sh: vigil-cluster-agent-keys keys: $(secret_keys vigil-cluster-agent-keys | tr '\n' ' ')"
[[ $(secret_value vigil-cluster-agent-keys app-pg.password) == app-pg-pw ]] || fail "secrets.sh: app-pg.password"
for k in coordinator.pub enrollment.secret signers.yaml; do
    [[ $(secret_value vigil-cluster-agent-keys "$k") == "$(secret_value vigil-agent-keys "$k")" ]] ||
        fail "secrets.sh: the cluster agent's $k is not the node agents'"
done
# The cluster agent's key: a key file the agent loads (vigil-agent's own format), not the
# coordinator's.
secret_value vigil-cluster-agent-keys agent.key | grep '^secret-key: "' >/dev/null || fail "secrets.sh: agent.key is not a key file"
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

# A Secret of type kubernetes.io/service-account-token that the manifests declare (in $jl): the
# token controller fills in its token, ca.crt and namespace for the account it names.
sa_token_keys=$'ca.crt\nnamespace\ntoken'
sa_token_secret() { # sa_token_secret NAME: the account it is for, or nothing
    jq -r --arg s "$1" 'select(.kind == "Secret" and .name == $s and .type == "kubernetes.io/service-account-token")
        | .annotations["kubernetes.io/service-account.name"] // ""' "$jl"
}

# provide PATH: the file the container $c reads at PATH, made under $root as the pod has it:
# from the Secret mounted there (secrets.sh's, or a service-account-token Secret Kubernetes fills
# in: a made-up token and CA), from the ConfigMap mounted there (a kubeconfig adds the files it
# names to more_paths, checked with kubectl), or from the Secret an init container copies into
# an emptyDir.
provide() {
    local p=$1 m secret key skey sa cm data kc f
    m=$(jq -r --arg p "$p" '.mounts[] | select(.path as $m | $p | startswith($m + "/")) | .path' <<<"$c" | head -1)
    [[ -n $m ]] || return 0
    secret=$(jq -r --arg m "$m" '.mounts[] | select(.path == $m) | .volume.secret.secretName // empty' <<<"$c")
    cm=$(jq -r --arg m "$m" '.mounts[] | select(.path == $m) | .volume.configMap.name // empty' <<<"$c")
    key=${p#"$m"/}
    if [[ -n $secret ]]; then
        # A volume that lists items holds only those, each under its path.
        jq -e --arg m "$m" --arg k "$key" '.mounts[] | select(.path == $m) | .volume.secret.items
            | . == null or any(.[]; .path == $k)' <<<"$c" >/dev/null ||
            fail "$where: $p: the volume at $m does not list $key among its items"
        skey=$(jq -r --arg m "$m" --arg k "$key" '.mounts[] | select(.path == $m) | .volume.secret.items
            | if . == null then $k else (.[] | select(.path == $k) | .key) end' <<<"$c")
        mkdir -p "$(dirname "$root$p")"
        sa=$(sa_token_secret "$secret")
        if [[ -n $sa ]]; then
            grep -qx -- "$skey" <<<"$sa_token_keys" ||
                fail "$where: $p: Secret $secret (a service-account-token Secret, filled in by Kubernetes) has no key $skey"
            case $skey in
            token) echo "token-of-$sa" ;;
            ca.crt) printf -- '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n' ;;
            namespace) echo vigil ;;
            esac >"$root$p"
        else
            grep -qx -- "$skey" < <(secret_keys "$secret") || fail "$where: $p: Secret $secret (secrets.sh) has no key $skey"
            (umask 077 && secret_value "$secret" "$skey" >"$root$p")
        fi
    elif [[ -n $cm ]]; then
        [[ $p != "$config" ]] || return 0 # the configuration itself: already there
        data=$(jq -r --arg n "$cm" --arg k "$key" 'select(.kind == "ConfigMap" and .name == $n) | .data[$k] // empty' "$jl")
        [[ -n $data ]] || fail "$where: $p: ConfigMap $cm has no key $key"
        mkdir -p "$(dirname "$root$p")"
        kc=$tmp/configmap-file
        printf '%s\n' "$data" >"$kc"
        sed -E "s#(: *\"?)(/(etc|var|run)/)#\\1$root\\2#g" "$kc" >"$root$p"
        grep -qE '^kind: *"?Config"?\s*$' "$kc" || return 0
        # A kubeconfig: kubectl reads it; its current context has an https server, a CA and a
        # token file or client certificate, each a file to provide in turn.
        kubectl config view --kubeconfig "$kc" --minify --raw -o json >"$kc.json" 2>"$kc.err" ||
            fail "$where: $p: kubectl cannot use the kubeconfig: $(cat "$kc.err")"
        jq -e '.clusters[0].cluster.server | startswith("https://")' "$kc.json" >/dev/null ||
            fail "$where: $p: the kubeconfig's server is not https://"
        jq -e '.clusters[0].cluster | (.["insecure-skip-tls-verify"] // false) == false
            and (.["certificate-authority"] // .["certificate-authority-data"] // "") != ""' "$kc.json" >/dev/null ||
            fail "$where: $p: the kubeconfig's cluster has no CA (or skips verification)"
        while IFS= read -r f; do
            [[ $f == /* ]] || f=$(dirname "$p")/$f
            more_paths+=("$f")
        done < <(jq -r '.clusters[0].cluster["certificate-authority"], (.users[0].user | .tokenFile, .["client-certificate"], .["client-key"]) | strings' "$kc.json")
    elif [[ $(jq -r --arg m "$m" '.mounts[] | select(.path == $m) | .volume.emptyDir != null' <<<"$c") == true ]]; then
        # An emptyDir the workload's init container fills from a Secret it mounts.
        local init_script from s
        init_script=$(jq -r --arg w "$workload" 'select(.init == true and .workload == $w) | .command | join(" ")' "$jl")
        grep -qF -- "/$key" <<<"$init_script" || fail "$where: $p is in an emptyDir that no init container fills"
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
        # The files the Secrets and ConfigMaps provide, where the configuration wants them; a
        # kubeconfig names files of its own (its token and CA), provided the same way.
        more_paths=()
        for p in "${cfg_paths[@]}"; do provide "$p"; done
        for p in "${more_paths[@]}"; do provide "$p"; done
        cfg_paths+=("${more_paths[@]}")
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
mutant kubeconfig "ConfigMap vigil-cluster-agent-config-[a-z0-9]* has no key observer.kubeconfig" 's#kubeconfig: /etc/vigil/config/cluster-observer.kubeconfig#kubeconfig: /etc/vigil/config/observer.kubeconfig#' base/config/cluster-agent.yaml
mutant kubeconfig-token "the volume at /var/run/secrets/vigil/observer does not list tokn among its items" 's#tokenFile: /var/run/secrets/vigil/observer/token#tokenFile: /var/run/secrets/vigil/observer/tokn#' base/config/cluster-observer.kubeconfig
mutant sa-token-key "Secret vigil-cluster-observer-token (a service-account-token Secret, filled in by Kubernetes) has no key tokn" 's#{key: token, path: token}#{key: tokn, path: token}#' base/cluster-agent.yaml
mutant kubeconfig-mount "mount /var/run/secrets/vigil/observer: vigil-agent reads nothing there" 's#/var/run/secrets/vigil/observer/#/var/run/secrets/vigil/reader/#' base/config/cluster-observer.kubeconfig
pass "the consistency checks refuse a foreign env var, an unread mount, a wrong port, an unknown flag, a missing Secret key, a file no init container copies, a key its volume leaves out, a kubeconfig the ConfigMap lacks, a token file its Secret volume leaves out or a service-account-token Secret lacks, a kubeconfig pointing away from its mount"

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
# Exactly what cluster-agent-rbac.yaml's comments justify, one line per verb. The writer
# (vigil-cluster-agent, the actions): its Role only, no ClusterRole.
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
LIST
)
# The observer (vigil-cluster-observer, the kubernetes probe in the agent's unprivileged half):
# reads only.
observer_role_want=$(sort <<'LIST'
/pods:get
/pods:list
/pods:watch
/pods/log:get
/events:get
/events:list
/events:watch
apps/deployments:get
apps/deployments:list
apps/deployments:watch
networking.k8s.io/ingresses:get
networking.k8s.io/ingresses:list
/services:get
/services:list
/configmaps:get
/configmaps:list
LIST
)
observer_clusterrole_want=$(sort <<'LIST'
/nodes:get
/nodes:list
/nodes:watch
metrics.k8s.io/pods:get
metrics.k8s.io/pods:list
metrics.k8s.io/nodes:get
metrics.k8s.io/nodes:list
LIST
)
read_verbs='["get", "list", "watch"]'
app_namespace=reconciliation
agent_sa='{"kind":"ServiceAccount","name":"vigil-cluster-agent","namespace":"vigil"}'
observer_sa='{"kind":"ServiceAccount","name":"vigil-cluster-observer","namespace":"vigil"}'
observer_secret=vigil-cluster-observer-token
# Every binding there may be: account -> what it is bound to (binding kind/name -> role kind/name).
bindings_want=$(sort <<'LIST'
vigil-cluster-agent RoleBinding/vigil-cluster-agent -> Role/vigil-cluster-agent
vigil-cluster-observer RoleBinding/vigil-cluster-observer -> Role/vigil-cluster-observer
vigil-cluster-observer ClusterRoleBinding/vigil-cluster-observer -> ClusterRole/vigil-cluster-observer
LIST
)

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

    # The observer: no verb but get, list and watch, and no Secrets (before the general check,
    # to say whose it is).
    local r
    for r in Role ClusterRole; do
        got=$(jq -r --arg k "$r" --argjson read "$read_verbs" '.[] | select(.kind == $k and .metadata.name == "vigil-cluster-observer")
            | .rules[] | .resources[] as $res | .verbs[] | select(. as $v | $read | index($v) | not) | "\($res):\(.)"' "$o" | sort -u | paste -sd ' ' -)
        [[ -z $got ]] || fail "$where: the observer's $r/vigil-cluster-observer grants a write verb: $got"
        got=$(jq -r --arg k "$r" '.[] | select(.kind == $k and .metadata.name == "vigil-cluster-observer")
            | .rules[] | .resources[] | select(. == "*" or test("^secrets(/|$)"))' "$o" | sort -u | paste -sd ' ' -)
        [[ -z $got ]] || fail "$where: the observer's $r/vigil-cluster-observer grants secrets ($got)"
    done

    # Nowhere: secrets, `*`, and any binding but the cluster agent's two accounts' own.
    got=$(jq -r '.[] | select(.kind == "Role" or .kind == "ClusterRole") | . as $o | .rules[]
        | select(any((.apiGroups // [])[], .resources[], .verbs[], (.resourceNames // [])[]; . == "*" or test("^secrets(/|$)")))
        | "\($o.kind)/\($o.metadata.name)"' "$o" | sort -u | paste -sd ' ' -)
    [[ -z $got ]] || fail "$where: $got grants secrets or *"
    got=$(jq -r '.[] | select(.kind == "RoleBinding" or .kind == "ClusterRoleBinding") | .subjects[]
        | select(.kind != "ServiceAccount" or (.name != "vigil-cluster-agent" and .name != "vigil-cluster-observer")) | .name' "$o" | sort -u | paste -sd ' ' -)
    [[ -z $got ]] || fail "$where: a binding names ServiceAccount $got: only the cluster agent's two accounts hold rights"
    got=$(jq -r '.[] | select(.kind == "RoleBinding" or .kind == "ClusterRoleBinding") | . as $b | .subjects[]
        | "\(.name) \($b.kind)/\($b.metadata.name) -> \($b.roleRef.kind)/\($b.roleRef.name)"' "$o" | sort)
    [[ $got == "$bindings_want" ]] ||
        fail "$where: the bindings are not exactly the writer's and the observer's own: $(diff <(echo "$bindings_want") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"
    jq -e --argjson a "$agent_sa" --argjson b "$observer_sa" '[.[] | select(.kind == "RoleBinding" or .kind == "ClusterRoleBinding")]
        | all(.subjects == [if .metadata.name == "vigil-cluster-agent" then $a else $b end])' "$o" >/dev/null ||
        fail "$where: a binding's subject is not exactly its account in namespace vigil"

    # The writer: its Role, in the application's namespace, exactly the list; no ClusterRole.
    # The observer: its Role there too, and its ClusterRole, exactly their lists.
    [[ $(jq -r --arg ns "$app_namespace" '[.[] | select((.kind == "Role" or .kind == "RoleBinding")
        and (.metadata.name == "vigil-cluster-agent" or .metadata.name == "vigil-cluster-observer")) | .metadata.namespace == $ns]
        | (length == 4 and all)' "$o") == true ]] ||
        fail "$where: the cluster agent's Roles and RoleBindings are not (all four, only) in namespace $app_namespace: $(jq -c '[.[] | select(.kind == "Role" or .kind == "RoleBinding") | "\(.kind)/\(.metadata.name) in \(.metadata.namespace)"]' "$o")"
    got=$(rule_lines "$o" Role vigil-cluster-agent)
    [[ $got == "$role_want" ]] || fail "$where: the cluster agent's (writer's) Role is not exactly the list: $(diff <(echo "$role_want") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"
    got=$(jq -r '.[] | select(.kind == "ClusterRole" or .kind == "ClusterRoleBinding") | select(.metadata.name == "vigil-cluster-agent") | .kind' "$o" | paste -sd ' ' -)
    [[ -z $got ]] || fail "$where: the writer has a $got vigil-cluster-agent: no action needs cluster-wide rights"
    got=$(rule_lines "$o" Role vigil-cluster-observer)
    [[ $got == "$observer_role_want" ]] || fail "$where: the observer's Role is not exactly the list: $(diff <(echo "$observer_role_want") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"
    got=$(rule_lines "$o" ClusterRole vigil-cluster-observer)
    [[ $got == "$observer_clusterrole_want" ]] || fail "$where: the observer's ClusterRole is not exactly the list: $(diff <(echo "$observer_clusterrole_want") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"

    # Tokens: only the cluster agent's account and pod have one (a ServiceAccount without the
    # field mounts one); no pod runs as the observer.
    got=$(jq -r '.[] | select(.kind == "ServiceAccount" and .metadata.name != "vigil-cluster-agent"
        and .automountServiceAccountToken != false) | .metadata.name' "$o" | paste -sd ' ' -)
    [[ -z $got ]] || fail "$where: ServiceAccount $got mounts a token"
    got=$(jq -r '.[] | select(.spec.template.spec != null) | select(.spec.template.spec.serviceAccountName != "vigil-cluster-agent"
        and .spec.template.spec.automountServiceAccountToken != false) | "\(.kind)/\(.metadata.name)"' "$o" | paste -sd ' ' -)
    [[ -z $got ]] || fail "$where: $got mounts a token"
    [[ $(jq -r '.[] | select(.kind == "ServiceAccount" and .metadata.name == "vigil-cluster-agent") | .automountServiceAccountToken' "$o") == true ]] ||
        fail "$where: ServiceAccount vigil-cluster-agent mounts no token"
    got=$(jq -r '.[] | select(.spec.template.spec.serviceAccountName == "vigil-cluster-observer") | "\(.kind)/\(.metadata.name)"' "$o" | paste -sd ' ' -)
    [[ -z $got ]] || fail "$where: $got runs as ServiceAccount vigil-cluster-observer"
    # The only long-lived token: the observer's, in vigil, left for Kubernetes to fill in.
    got=$(jq -r '.[] | select(.kind == "Secret" and .type == "kubernetes.io/service-account-token")
        | "\(.metadata.name) for \(.metadata.annotations["kubernetes.io/service-account.name"]) in \(.metadata.namespace) \(.data // .stringData // {} | keys | join(","))"' "$o" | paste -sd ' ' -)
    [[ $got == "$observer_secret for vigil-cluster-observer in vigil " ]] ||
        fail "$where: the service-account-token Secrets are \"$got\", not $observer_secret for vigil-cluster-observer alone (in vigil, no data)"
    # Only the cluster agent's main container mounts it (a secret or projected volume).
    got=$(jq -r --arg s "$observer_secret" '.[] | select(.spec.template.spec != null) | . as $w | .spec.template.spec
        | [(.volumes // [])[] | select(.secret.secretName == $s or any((.projected.sources // [])[]; .secret.name == $s)) | .name] as $v
        | ((.initContainers // []) + .containers)[] | select(any((.volumeMounts // [])[]; .name as $n | $v | index($n)))
        | "\($w.kind)/\($w.metadata.name)/\(.name)"' "$o" | paste -sd ' ' -)
    [[ $got == "Deployment/vigil-cluster-agent/vigil-agent" ]] ||
        fail "$where: the observer's token Secret is mounted by \"$got\", not the cluster agent's container vigil-agent alone"

    # Its configuration: role cluster, its fixed node name, and the namespace of its Role.
    local cm
    cm=$(jq -r '.[] | select(.kind == "ConfigMap" and (.metadata.name | startswith("vigil-cluster-agent-config"))) | .data["cluster-agent.yaml"]' "$o")
    grep -q '^role: cluster' <<<"$cm" || fail "$where: the cluster agent's configuration has no role: cluster"
    grep -qE '^node: +cluster( |$)' <<<"$cm" || fail "$where: the cluster agent's node name is not \"cluster\""
    got=$(grep -oE '\{name: namespace, enum: \[[^]]*\]\}' <<<"$cm" | sort -u)
    [[ $got == "{name: namespace, enum: [$app_namespace]}" ]] ||
        fail "$where: the catalog's namespaces ($got) are not the Role's namespace $app_namespace"

    # The two identities in it: the actions with the pod's own token (kubernetes.kubeconfig
    # empty: in-cluster), the kubernetes probe, as `vigil`, with the observer's kubeconfig,
    # whose token and CA are the observer Secret mounted read-only where it says, readable by
    # `vigil` and by no means writable.
    local cfg kubeconfig kc_key kc_cm kc m mode
    cfg=$(node -e '
const { createRequire } = require("node:module");
const YAML = createRequire(process.argv[1] + "/x.js")("yaml");
console.log(JSON.stringify(YAML.parse(require("node:fs").readFileSync(0, "utf8"))));' "$NODE_MODULES" <<<"$cm")
    [[ $(jq -r '.kubernetes.kubeconfig // ""' <<<"$cfg") == "" ]] ||
        fail "$where: the actions' kubernetes.kubeconfig is not empty: they run with the pod's own (writer's) token"
    jq -e '(.collectors.kubernetes.targets // []) | length > 0' <<<"$cfg" >/dev/null ||
        fail "$where: the cluster agent has no collectors.kubernetes target"
    got=$(jq -r '.collectors.kubernetes.targets[] | select((.kubeconfig // "") == "") | .name' <<<"$cfg" | paste -sd ' ' -)
    [[ -z $got ]] || fail "$where: the kubernetes probe's target $got uses the in-cluster token (root's only, the writer's): give it the observer's kubeconfig"
    got=$(jq -c '[.collectors.kubernetes.targets[].namespaces] | unique' <<<"$cfg")
    [[ $got == "[[\"$app_namespace\"]]" ]] || fail "$where: the kubernetes probe's namespaces $got are not the observer Role's [$app_namespace]"
    local pod='.[] | select(.kind == "Deployment" and .metadata.name == "vigil-cluster-agent") | .spec.template.spec'
    local main="$pod | .containers[] | select(.name == \"vigil-agent\")"
    # mount_volume DIR: the volume the main container mounts at DIR, with its readOnly, as JSON.
    mount_volume() {
        jq -c --arg d "$1" "($pod | .volumes) as \$v | $main | .volumeMounts[] | select(.mountPath == \$d)
            | . as \$m | {readOnly: (.readOnly // false), volume: (\$v[] | select(.name == \$m.name))}" "$o"
    }
    while IFS= read -r kubeconfig; do
        m=$(mount_volume "$(dirname "$kubeconfig")")
        kc_cm=$(jq -r '.volume.configMap.name // empty' <<<"$m")
        [[ -n $kc_cm ]] || fail "$where: the kubernetes probe's kubeconfig $kubeconfig is not in a ConfigMap the cluster agent mounts"
        kc_key=$(basename "$kubeconfig")
        kc=$tmp/observer.kubeconfig
        jq -r --arg n "$kc_cm" --arg k "$kc_key" '.[] | select(.kind == "ConfigMap" and .metadata.name == $n) | .data[$k] // empty' "$o" >"$kc"
        [[ -s $kc ]] || fail "$where: ConfigMap $kc_cm has no $kc_key"
        kubectl config view --kubeconfig "$kc" --minify --raw -o json >"$kc.json" 2>/dev/null ||
            fail "$where: kubectl cannot use $kubeconfig"
        [[ $(jq -r '.clusters[0].cluster.server' "$kc.json") == https://kubernetes.default.svc ]] ||
            fail "$where: $kubeconfig: the server is not https://kubernetes.default.svc"
        for f in '.clusters[0].cluster["certificate-authority"]' '.users[0].user.tokenFile'; do
            got=$(jq -r "$f // empty" "$kc.json")
            [[ $got == /* ]] || fail "$where: $kubeconfig: $f is not an absolute path (\"$got\")"
            m=$(mount_volume "$(dirname "$got")")
            [[ $(jq -r '.volume.secret.secretName // empty' <<<"$m") == "$observer_secret" ]] ||
                fail "$where: $kubeconfig: $got is not in the observer's token Secret $observer_secret (mounted at $(dirname "$got"))"
            [[ $(jq -r .readOnly <<<"$m") == true ]] || fail "$where: the observer's token Secret is not mounted read-only"
            # The file's mode: its item's, or the volume's default (0644 unset).
            mode=$(jq -r --arg k "$(basename "$got")" '.volume.secret | ((.items // [])[] | select(.path == $k) | .mode) // .defaultMode // 420' <<<"$m")
            ((mode & 4)) || fail "$where: $got: mode $(printf %04o "$mode") is not readable by the agent's user (other)"
            if ((mode & 0222)); then fail "$where: $got: mode $(printf %04o "$mode") is writable"; fi
        done
    done < <(jq -r '.collectors.kubernetes.targets[].kubeconfig' <<<"$cfg")
}
for name in "${overlays[@]}"; do
    to_json "$tmp/$name.yaml" >"$tmp/$name.objects.json"
    cluster_agent_checks "$tmp/$name.objects.json" "overlays/$name"
    pass "overlays/$name: the cluster agent: 1 replica, Recreate; the writer's Role in $app_namespace exactly ($(wc -l <<<"$role_want") verbs), no ClusterRole, its token the pod's (root's); the observer's Role ($(wc -l <<<"$observer_role_want") verbs) and ClusterRole ($(wc -l <<<"$observer_clusterrole_want")) read only, its token Secret mounted read-only where the probe's kubeconfig says; no secrets or *"
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
rbac_mutant secrets "Role/vigil-cluster-agent grants secrets" '0,/resources: \["pods"\]/s//resources: ["pods", "secrets"]/' base/cluster-agent-rbac.yaml
rbac_mutant star "Role/vigil-cluster-agent grants secrets or \*" '0,/resources: \["deployments"\]/s//resources: ["*"]/' base/cluster-agent-rbac.yaml
rbac_mutant writer-clusterwide "> vigil-cluster-agent ClusterRoleBinding/vigil-cluster-observer" '/^kind: ClusterRoleBinding/,$s/^    name: vigil-cluster-observer$/    name: vigil-cluster-agent/' base/cluster-agent-rbac.yaml
rbac_mutant observer-write "the observer's Role/vigil-cluster-observer grants a write verb: pods:create" '0,/verbs: \["get", "list", "watch"\]/s//verbs: ["get", "list", "watch", "create"]/' base/cluster-agent-rbac.yaml
rbac_mutant observer-write-nodes "the observer's ClusterRole/vigil-cluster-observer grants a write verb: nodes:patch" '/resources: \["nodes"\]/,/verbs:/s/"watch"\]/"watch", "patch"]/' base/cluster-agent-rbac.yaml
rbac_mutant observer-secrets "the observer's Role/vigil-cluster-observer grants secrets" 's/resources: \["configmaps"\]/resources: ["configmaps", "secrets"]/' base/cluster-agent-rbac.yaml
rbac_mutant observer-verb "the observer's Role is not exactly the list: > /services:watch" '/resources: \["services"\]/,/verbs:/s/"list"\]/"list", "watch"]/' base/cluster-agent-rbac.yaml
rbac_mutant observer-bound-to-writer "> vigil-cluster-observer RoleBinding/vigil-cluster-observer -> Role/vigil-cluster-agent" '/^roleRef:/,/^subjects:/s/^  name: vigil-cluster-observer$/  name: vigil-cluster-agent/' base/cluster-agent-rbac.yaml
rbac_mutant replicas "2 replicas" 's/^  replicas: 1/  replicas: 2/' base/cluster-agent.yaml
rbac_mutant strategy "not Recreate" 's/type: Recreate/type: RollingUpdate/' base/cluster-agent.yaml
rbac_mutant automount "ServiceAccount vigil-agent mounts a token" '0,/automountServiceAccountToken: false/s//automountServiceAccountToken: true/' base/serviceaccounts.yaml
rbac_mutant observer-automount "ServiceAccount vigil-cluster-observer mounts a token" '$s/automountServiceAccountToken: false/automountServiceAccountToken: true/' base/serviceaccounts.yaml
rbac_mutant observer-pod "DaemonSet/vigil-agent runs as ServiceAccount vigil-cluster-observer" 's/serviceAccountName: vigil-agent/serviceAccountName: vigil-cluster-observer/' base/agent-daemonset.yaml
rbac_mutant daemonset-bound "a binding names ServiceAccount vigil-agent" '0,/    name: vigil-cluster-agent$/s//    name: vigil-agent/' base/cluster-agent-rbac.yaml
rbac_mutant namespace "not (all four, only) in namespace reconciliation" 's/^bases:/namespace: vigil\nbases:/' overlays/dev/kustomization.yaml
rbac_mutant token "readable by the agent's network-facing user" '0,/runAsUser: 0                    # drops/s//runAsGroup: 0                   # drops/' base/cluster-agent.yaml
rbac_mutant writer-secret "the service-account-token Secrets are" 's#kubernetes.io/service-account.name: vigil-cluster-observer#kubernetes.io/service-account.name: vigil-cluster-agent#' base/cluster-agent-rbac.yaml
rbac_mutant observer-init "mounted by \"Deployment/vigil-cluster-agent/keys Deployment/vigil-cluster-agent/vigil-agent\"" 's#- {name: run-secrets, mountPath: /run/vigil/secrets}#&\n            - {name: observer-token, mountPath: /var/run/secrets/vigil/observer, readOnly: true}#' base/cluster-agent.yaml
rbac_mutant observer-rw "not mounted read-only" '/mountPath: \/var\/run\/secrets\/vigil\/observer$/{n;s/readOnly: true/readOnly: false/}' base/cluster-agent.yaml
rbac_mutant observer-mode "mode 0666 is writable" 's/defaultMode: 0444/defaultMode: 0666/' base/cluster-agent.yaml
rbac_mutant observer-mode-root "mode 0440 is not readable by the agent's user" 's/defaultMode: 0444/defaultMode: 0440/' base/cluster-agent.yaml
rbac_mutant probe-in-cluster "target cluster uses the in-cluster token" 's#kubeconfig: /etc/vigil/config/cluster-observer.kubeconfig#kubeconfig: ""#' base/config/cluster-agent.yaml
rbac_mutant probe-writer-token "is not in the observer's token Secret" 's#tokenFile: /var/run/secrets/vigil/observer/token#tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token#' base/config/cluster-observer.kubeconfig
rbac_mutant actions-observer "the actions' kubernetes.kubeconfig is not empty" '/^kubernetes:/,/^  kubeconfig:/s#kubeconfig: ""#kubeconfig: /etc/vigil/config/cluster-observer.kubeconfig#' base/config/cluster-agent.yaml
pass "the cluster agent checks refuse an added verb, secrets, *, cluster-wide rights for the writer, an observer with a write verb (Role or ClusterRole), with secrets, with another read verb, bound to the writer's Role, 2 replicas, a rolling update, another token, a pod running as the observer, a binding of the node agents, an overlay namespace, a writer's token the agent's user could read, a long-lived writer's token, the observer's token in another container, writable or unreadable by the agent's user, the probe on the writer's token, the actions on the observer's"

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
# And the probe modules: the agent loads vigil-probe-<kind>.so from beside it for every
# collectors.<kind> with targets, and exits when one is missing (a crash-looping pod).
for f in "$K8S"/base/config/*.yaml; do
    node -e '
const { createRequire } = require("node:module");
const YAML = createRequire(process.argv[1] + "/x.js")("yaml");
const c = YAML.parse(require("node:fs").readFileSync(process.argv[2], "utf8")).collectors || {};
for (const k of ["http", "postgres", "redis", "kubernetes"])
    if (((c[k] || {}).targets || []).length) console.log(k);' "$NODE_MODULES" "$f"
done | sort -u >"$tmp/probe-kinds"
while IFS= read -r kind; do
    grep -q "/build/vigil-probe-$kind.so[ \\]" "$VIGIL_SRC"/deploy/docker/agent.Dockerfile ||
        fail "deploy/kubernetes/base/config configures collectors.$kind, and deploy/docker/agent.Dockerfile does not build and install vigil-probe-$kind.so (next to vigil-agent, where it loads probe modules from): the agent would exit at start"
done <"$tmp/probe-kinds"
pass "the agent image installs the probe modules the configurations use: $(paste -sd ' ' "$tmp/probe-kinds")"
