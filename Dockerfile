# syntax=docker/dockerfile:1
#
# The exchanger server: a release build in the official Rust image, then a slim Debian
# runtime holding only the binary and a health-check script, run as an unprivileged user.
#
#   docker build -t exchanger .
#   docker run --rm -p 127.0.0.1:8080:8080 exchanger      # embedded SQLite + in-process store
#
# Needs BuildKit (the default builder since Docker 23 and in `docker compose`) for the cache
# mounts and COPY --chmod.

# Same Debian release in both stages: the binary links against the builder's glibc.
# The Rust version must satisfy `rust-version` (1.88) and edition 2024 in Cargo.toml.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build stage -----------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /app

# 1. Dependencies only. Just the manifests, the lock file and empty stand-ins for the
#    workspace crates (root bin + lib, `entity`, `migration`), so this layer and the
#    compiled dependencies in target/ are reused until a manifest or Cargo.lock changes.
#    A new workspace member needs its Cargo.toml and stand-in added here.
COPY Cargo.toml Cargo.lock ./
COPY entity/Cargo.toml entity/
COPY migration/Cargo.toml migration/
RUN mkdir -p src entity/src migration/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs entity/src/lib.rs migration/src/lib.rs
# The registry (downloaded crates and index) lives in a BuildKit cache, so a change to
# Cargo.lock downloads only what is new; target/ stays in the layer so the cached
# dependency layer works on any builder, with or without a warm cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked --bin exchanger

# 2. The workspace itself. `include_bytes!` embeds assets/graphiql, so assets/ is an input.
#    COPY keeps the files' own modification times, which can be older than the stand-ins
#    built above; touching the crate roots makes cargo rebuild exactly the three workspace
#    crates. The --version check fails the build if the stand-in binary survived.
COPY assets/ assets/
COPY src/ src/
COPY entity/src/ entity/src/
COPY migration/src/ migration/src/
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    touch src/main.rs src/lib.rs entity/src/lib.rs migration/src/lib.rs \
    && cargo build --release --locked --bin exchanger \
    && ./target/release/exchanger --version | grep -q '^exchanger '

# ---- runtime stage ---------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime

# No packages are installed: the binary needs only glibc (SQLite is compiled in, and
# neither sqlx nor redis is built with TLS, so there are no OpenSSL or CA-certificate
# dependencies), and the health check is plain bash. Install ca-certificates here if a TLS
# client is ever enabled.
#
# A fixed unprivileged uid/gid so volume ownership is predictable. /app/data holds the
# SQLite files of the embedded default (used when DATABASE_*_URL and REDIS_URL are unset).
RUN groupadd --system --gid 10001 exchanger \
    && useradd --system --no-log-init --uid 10001 --gid exchanger --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin exchanger \
    && mkdir -p /app/data \
    && chown exchanger:exchanger /app/data

COPY --from=builder /app/target/release/exchanger /usr/local/bin/exchanger
COPY --chmod=0755 docker/healthcheck.sh /usr/local/bin/exchanger-healthcheck

WORKDIR /app
# Numeric, so a runtime can verify "not root" without reading /etc/passwd.
USER 10001:10001

# Listen on every interface of the container (the default 127.0.0.1 would be unreachable
# from outside it); publish the port on the host as narrowly as you need.
ENV BIND_ADDR=0.0.0.0:8080 \
    DATA_DIR=/app/data
EXPOSE 8080

# Readiness, not just liveness: /readyz answers 200 only when both databases and the store
# answer, so `docker ps` and compose's `service_healthy` mean "can serve requests".
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["exchanger-healthcheck", "/readyz"]

# The server drains on SIGTERM for up to SHUTDOWN_TIMEOUT_SECS (30 s by default): give
# `docker stop` a longer --time (compose: stop_grace_period) or lower that setting.
CMD ["exchanger", "serve"]
