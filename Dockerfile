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
# Probes: GET /_gateway/healthz (liveness), GET /_gateway/readyz (readiness).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/legacy-gateway"]
CMD ["serve"]
