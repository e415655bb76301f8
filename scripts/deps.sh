#!/usr/bin/env bash
# Installs the Debian packages listed in deps/debian.txt (the one list of what Vigil needs).
# As root: apt-get update (only when something is missing) and apt-get install.
# Not root: prints the exact command to run instead, and fails.
# A line "PACKAGE !COMMAND" installs PACKAGE only when COMMAND is not on the PATH (another
# package provides it here). Then the npm packages of deps/npm/package.json, by name, into
# deps/npm/node_modules (the deployment checks, tests/deploy/).
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' deps/debian.txt)

npm_deps() {
    [[ -f deps/npm/package.json ]] || return 0
    [[ deps/npm/node_modules/.package-lock.json -nt deps/npm/package.json ]] && return 0
    command -v npm >/dev/null || { echo "deps: npm is missing (deps/debian.txt: npm)" >&2; return 1; }
    echo "deps: installing the npm packages of deps/npm/package.json into deps/npm/node_modules"
    npm install --prefix deps/npm --no-audit --no-fund --no-package-lock --loglevel=error
}

missing=()
for p in "${packages[@]}"; do
    if [[ $p == *'!'* ]]; then # PACKAGE!COMMAND (spaces were removed above)
        command -v "${p#*!}" >/dev/null && continue
        p=${p%%!*}
    fi
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    npm_deps
    exit 0
fi

cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [[ $(id -u) -ne 0 ]]; then
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: run as root:  apt-get update && ${cmd[*]}" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
"${cmd[@]}"
npm_deps
