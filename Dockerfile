# syntax=docker/dockerfile:1
#
# The Forten system binary in a small image. One image, every role:
#   docker run -p 3000-3004:3000-3004 forten                 # `forten up`: every service, embedded defaults
#   docker run forten run access-service                     # one service per container (see deploy/README.md)
#
# Build: docker build -t forten:latest .

# --- build ---------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The registry, the git checkouts and target/ live in BuildKit cache mounts, so a rebuild after
# a source change recompiles only the workspace crates, not the dependencies. target/ is a cache
# mount (gone after this step), so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --package forten --bin forten \
 && install -m 0755 target/release/forten /usr/local/bin/forten

# --- run -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: TLS to amqps/rediss/postgres with sslmode and OTLP endpoints;
# curl: the health checks of docker-compose.yml.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 forten \
 && useradd --system --uid 10001 --gid forten --home-dir /var/lib/forten --create-home \
      --shell /usr/sbin/nologin forten
COPY --from=builder /usr/local/bin/forten /usr/local/bin/forten
# A numeric user, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
WORKDIR /var/lib/forten
# Listen on every interface (the binary's default is loopback); SQLite files, when no
# DATABASE_URL is given, under the user's home.
ENV HOST=0.0.0.0 \
    FORTEN_DATA_DIR=/var/lib/forten/data
# api-gateway 3000, auth-service 3001, access-service 3002, monitoring-service 3003,
# analytics-service 3004 (`forten env` prints them).
EXPOSE 3000-3004
ENTRYPOINT ["forten"]
CMD ["up"]
