# vigil-coordinator and vigilctl, with the shipped runbooks, for the StatefulSet
# (deploy/kubernetes/base/coordinator-statefulset.yaml). Build from the repository's root:
#   buildah bud -f deploy/docker/coordinator.Dockerfile -t vigil-coordinator:0.1.0 .
#   (or: docker build -f deploy/docker/coordinator.Dockerfile -t vigil-coordinator:0.1.0 .)

# ---- build ----
FROM debian:12-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config protobuf-c-compiler libprotobuf-c-dev \
        libzmq3-dev libczmq-dev libpq-dev libhiredis-dev libsodium-dev \
        libcurl4-openssl-dev libmicrohttpd-dev libfyaml-dev libjansson-dev libcmocka-dev \
        libarchive-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    && cmake --build /build -j "$(nproc)" --target vigil-coordinator vigilctl

# ---- runtime ----
FROM debian:12-slim
# The coordinator's own user, created first so that it gets uid 999 (the manifests run as 999).
RUN groupadd --system --gid 999 vigil \
    && useradd --system --uid 999 --gid vigil --no-create-home --home-dir /var/lib/vigil \
        --shell /usr/sbin/nologin vigil
# The shared libraries vigil-coordinator and vigilctl link (objdump -p; libssl3 holds libcrypto,
# their SHA-256); ca-certificates for
# HTTPS notifications; postgresql-15 for the private cluster a coordinator without store.url
# runs (overlays/dev) -- its packaged cluster is dropped, the coordinator makes its own.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libzmq5 libczmq4 libprotobuf-c1 libsodium23 libfyaml0 libcurl4 libpq5 \
        libmicrohttpd12 libjansson4 libarchive13 libssl3 ca-certificates postgresql-15 \
    && pg_dropcluster --stop 15 main \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/vigil-coordinator /build/vigilctl /usr/local/lib/vigil/
COPY runbooks/ /etc/vigil/runbooks/
RUN install -d -o vigil -g vigil -m 0700 /var/lib/vigil
USER vigil
EXPOSE 7400 7401 7480
ENTRYPOINT ["/usr/local/lib/vigil/vigil-coordinator"]
CMD ["-c", "/etc/vigil/config/coordinator.yaml"]
