#!/usr/bin/env bash
# make images: the images of deploy/docker/ built with buildah, without a Docker engine and
# without pulling from an image registry:
#   1. the base image debian:12-slim is made here: debootstrap's minbase of Debian 12 (bookworm)
#      with the same dpkg exclusions as the published slim image (no documentation, man pages or
#      locales), committed as docker.io/library/debian:12-slim in buildah's local storage, once;
#   2. `buildah bud --isolation chroot` builds deploy/docker/agent.Dockerfile and
#      coordinator.Dockerfile from the repository (no runc needed: RUN steps run in a chroot).
# Where a registry is reachable, `buildah bud --pull` on the Dockerfiles uses the real base.
# Result: localhost/vigil-agent:VERSION and localhost/vigil-coordinator:VERSION (buildah images);
# push them with `buildah push IMAGE docker://REGISTRY/IMAGE`. Root only (debootstrap, chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "images: run as root (debootstrap and buildah's chroot isolation)" >&2; exit 1; }
# vfs: no overlay mounts needed (STORAGE_DRIVER=overlay where the kernel and runtime allow).
b() { buildah --storage-driver "${STORAGE_DRIVER:-vfs}" "$@"; }
version=$(sed -n 's/^project(vigil VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[[ -n $version ]] || version=0.0.0
base=docker.io/library/debian:12-slim
work=${IMAGES_DIR:-build-images}
mkdir -p "$work"

if ! b inspect --type image "$base" >/dev/null 2>&1; then
    rootfs=$work/rootfs
    rm -rf "$rootfs"
    mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
    echo "images: debootstrap --variant=minbase bookworm $rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    ctr=$(b from scratch)
    b copy "$ctr" "$rootfs" / >/dev/null
    b config --cmd '["bash"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    b commit --rm "$ctr" "$base" >/dev/null
    rm -rf "$rootfs"
    echo "images: $base made from debootstrap"
fi

for image in agent coordinator; do
    echo "images: building localhost/vigil-$image:$version"
    b bud --isolation chroot --pull=false --layers=false -f "deploy/docker/$image.Dockerfile" \
        -t "localhost/vigil-$image:$version" . >"$work/$image.log" 2>&1 ||
        { tail -30 "$work/$image.log" >&2; echo "images: vigil-$image failed (log: $work/$image.log)" >&2; exit 1; }
done
b images --filter reference=localhost/vigil-*
