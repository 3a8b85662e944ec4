# syntax=docker/dockerfile:1

# ---- build stage -----------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /app

# Workspace manifests and members (the root package plus `entity` and `migration`).
COPY Cargo.toml Cargo.lock ./
COPY entity/ entity/
COPY migration/ migration/
COPY src/ src/
COPY assets/ assets/
COPY schema.graphql ./

RUN cargo build --release --locked --bin exchanger

# ---- runtime stage ---------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates for outbound TLS; curl for the HEALTHCHECK below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged user; /app/data is writable for the embedded SQLite fallback
# (used when DATABASE_*_URL / REDIS_URL are not set).
RUN groupadd --system exchanger \
    && useradd --system --gid exchanger --home-dir /app --shell /usr/sbin/nologin exchanger \
    && mkdir -p /app/data \
    && chown -R exchanger:exchanger /app

COPY --from=builder /app/target/release/exchanger /usr/local/bin/exchanger

WORKDIR /app
USER exchanger

ENV BIND_ADDR=0.0.0.0:8080 \
    DATA_DIR=/app/data
EXPOSE 8080

# Liveness only; readiness (/readyz) also checks the backing stores.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1

CMD ["exchanger", "serve"]
