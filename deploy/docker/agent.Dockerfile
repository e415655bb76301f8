# vigil-agent and its executor, for the DaemonSet (deploy/kubernetes/base/agent-daemonset.yaml).
# Build from the repository's root:
#   buildah bud -f deploy/docker/agent.Dockerfile -t vigil-agent:0.1.0 .
#   (or: docker build -f deploy/docker/agent.Dockerfile -t vigil-agent:0.1.0 .)

# ---- build: the toolchain and -dev packages of deps/debian.txt, nothing else ----
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
    && cmake --build /build -j "$(nproc)" --target vigil-agent vigil-agent-exec \
        vigil-agent-action vigil-probe-http vigil-probe-postgres vigil-probe-redis \
        vigil-probe-kubernetes

# ---- runtime: the shared libraries the binaries link (objdump -p), and nft ----
FROM debian:12-slim
# libzmq5 libczmq4 libprotobuf-c1 libsodium23 libfyaml0: vigil-agent (the executor needs the
# last three); libcurl4, libpq5, libhiredis0.14: the HTTP, PostgreSQL and Redis probe modules,
# loaded only when a probe of their kind is configured; libjansson4 with those three:
# vigil-agent-action, which runs PostgreSQL, Redis and Kubernetes actions as `vigil`;
# ca-certificates: HTTPS probes; nftables: /usr/sbin/nft, which the executor's nft and isolate
# actions run.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libzmq5 libczmq4 libprotobuf-c1 libsodium23 libfyaml0 \
        libcurl4 libpq5 libhiredis0.14 libjansson4 ca-certificates nftables \
    && rm -rf /var/lib/apt/lists/*
# The user the network-facing side runs as (agent.yaml `user: vigil`); in adm, as Debian's log
# readers are, for /var/log/auth.log. Its state directory is a hostPath, so the host sees this
# uid as the owner of the agent's key and spool: 10999, not a system uid (below 1000, which the
# host hands out to its own services) nor nobody's.
RUN groupadd --gid 10999 vigil \
    && useradd --uid 10999 --gid vigil --groups adm --no-create-home \
        --home-dir /var/lib/vigil-agent --shell /usr/sbin/nologin vigil
# The executor, vigil-agent-action and the probe modules are found next to vigil-agent.
COPY --from=build /build/vigil-agent /build/vigil-agent-exec /build/vigil-agent-action \
    /build/vigil-probe-http.so /build/vigil-probe-postgres.so /build/vigil-probe-redis.so \
    /build/vigil-probe-kubernetes.so \
    /usr/local/lib/vigil/
# Not USER vigil: the agent must start as root to fork its privileged executor; it then drops
# its network-facing side to `vigil` itself (README, "Privilege separation").
ENTRYPOINT ["/usr/local/lib/vigil/vigil-agent"]
CMD ["-c", "/etc/vigil/config/agent.yaml"]
