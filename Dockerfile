# Multi-stage: build with the full toolchain, run from a small image as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY mappings ./mappings
COPY openapi ./openapi
COPY benches ./benches
RUN cargo build --release --locked --bin legacy-gateway

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home gateway
COPY --from=build /src/target/release/legacy-gateway /usr/local/bin/legacy-gateway
# The mapping files are built into the binary; this copy is for operators who mount or edit
# their own (LEGACY_GATEWAY_MAPPINGS=/etc/legacy-gateway/mappings).
COPY mappings /etc/legacy-gateway/mappings
USER gateway
ENV LEGACY_GATEWAY_LISTEN=0.0.0.0:8080 \
    LEGACY_GATEWAY_LOG_FORMAT=json
# Probes: GET /_gateway/healthz (liveness), GET /_gateway/readyz (readiness), on 8080 and 9901.
# 9901 is the admin listener (metrics, reload, shadow report): it stays on the container's
# loopback unless LEGACY_GATEWAY_ADMIN_LISTEN=0.0.0.0:9901 is set, which also needs
# LEGACY_GATEWAY_ADMIN_TOKEN; publish it only privately (-p 127.0.0.1:9901:9901), never to clients.
EXPOSE 8080 9901
ENTRYPOINT ["/usr/local/bin/legacy-gateway"]
CMD ["serve"]
