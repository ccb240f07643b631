# Multi-stage: build with the full toolchain, run from a small image as a non-root user.
# Both base images are pinned by version, so a rebuild of the same commit gets the same
# toolchain and the same C library; bump them together (the runtime must be the builder's
# Debian release, or the binary may need a newer glibc than the image has).
ARG RUST_IMAGE=rust:1.95.0-bookworm
ARG RUNTIME_IMAGE=debian:12.11-slim
FROM ${RUST_IMAGE} AS build
WORKDIR /src

# Dependency layer: the manifests alone, with empty sources, so the ~300 crates compile once
# and stay cached until a manifest or Cargo.lock changes (an edit under src/ reuses them).
# The root is a workspace with the benchmark tools as a member (tools/): cargo reads every
# member's manifest to resolve the lock file, so tools/Cargo.toml comes along with stub
# binaries. Only `legacy-gateway` is ever built here; the stubs stay for the second step.
# The event transcoder (crates/events) and the embedded sandbox (crates/sandbox) are libraries
# the gateway depends on: their manifests come with an empty lib.rs, their real sources with the
# gateway's.
COPY Cargo.toml Cargo.lock ./
COPY tools/Cargo.toml ./tools/
COPY crates/events/Cargo.toml ./crates/events/
COPY crates/sandbox/Cargo.toml ./crates/sandbox/
RUN mkdir -p src benches crates/events/src crates/sandbox/src tools/src/bin/bench-load tools/src/bin/soak \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs crates/events/src/lib.rs crates/sandbox/src/lib.rs \
 && echo 'fn main() {}' > benches/events.rs \
 && echo 'fn main() {}' > benches/translate.rs \
 && for b in bench-load/main bench-upstream soak/main; do echo 'fn main() {}' > "tools/src/bin/$b.rs"; done \
 && cargo build --release --locked --bin legacy-gateway \
 && rm -rf src benches crates/events/src crates/sandbox/src target/release/.fingerprint/legacy-gateway-* \
           target/release/deps/legacy_gateway-* target/release/deps/liblegacy_gateway-* \
           target/release/deps/liblegacy_gateway_events-* \
           target/release/deps/legacy_gateway_sandbox-* target/release/deps/liblegacy_gateway_sandbox-* \
           target/release/legacy-gateway

# The gateway itself.
COPY src ./src
COPY crates ./crates
COPY mappings ./mappings
COPY openapi ./openapi
COPY benches ./benches
RUN cargo build --release --locked --bin legacy-gateway

FROM ${RUNTIME_IMAGE}
# ca-certificates only: upstream TLS uses the webpki roots built in, but an operator's
# `upstream.ca_file` may point into /etc/ssl. No curl: `legacy-gateway healthcheck` probes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home gateway \
 && mkdir -p /var/log/legacy-gateway \
 && chown 10001:10001 /var/log/legacy-gateway
COPY --from=build /src/target/release/legacy-gateway /usr/local/bin/legacy-gateway
# The mapping files are built into the binary; this copy is for operators who mount or edit
# their own (LEGACY_GATEWAY_MAPPINGS=/etc/legacy-gateway/mappings).
COPY mappings /etc/legacy-gateway/mappings
# The shadow diff file (`shadow.diff_file = "/var/log/legacy-gateway/shadow-diffs.jsonl"`)
# is written here by the runtime user. No VOLUME: an anonymous volume is created on every
# `docker run` and left behind; mount one where you want the file kept
# (`-v gateway-diffs:/var/log/legacy-gateway`, an emptyDir on Kubernetes).
USER 10001:10001
# On 0.0.0.0 the gateway refuses to start without an orchestrator (--orchestrator,
# LEGACY_GATEWAY_ORCHESTRATOR, or a configuration file): the embedded sandbox serves fake users
# to anyone, so a demo asks for it by name (-e LEGACY_GATEWAY_SANDBOX=true).
ENV LEGACY_GATEWAY_LISTEN=0.0.0.0:8080 \
    LEGACY_GATEWAY_LOG_FORMAT=json
# Probes: GET /_gateway/healthz (liveness), GET /_gateway/readyz (readiness), on 8080 and 9901.
# 9901 is the admin listener (metrics, reload, shadow report): it stays on the container's
# loopback unless LEGACY_GATEWAY_ADMIN_LISTEN=0.0.0.0:9901 is set, which also needs
# LEGACY_GATEWAY_ADMIN_TOKEN; publish it only privately (-p 127.0.0.1:9901:9901), never to clients.
EXPOSE 8080 9901
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/legacy-gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/legacy-gateway"]
CMD ["serve"]
