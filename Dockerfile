# veredito's production image.
#
#   docker build -t veredito .
#   docker run -p 8080:8080 \
#     -v /etc/veredito/production.toml:/etc/veredito/production.toml:ro \
#     -v /etc/veredito/unico.pem:/run/secrets/unico.pem:ro \
#     veredito serve --config /etc/veredito/production.toml
#
# (production.toml setting, among the rest, unico.private_key_path = "/run/secrets/unico.pem").
#
# The image carries config/default.toml and nothing else from config/: no config/sandbox.toml,
# no sandbox key pair. default.toml holds no credential and leaves the sandbox off, and with the
# sandbox off the service refuses to start on any of the sandbox's published values, so the
# image does not start until it is given real configuration: a mounted file passed with
# `--config FILE`, or VEREDITO__SECTION__KEY variables (VEREDITO_API_KEYS / VEREDITO_API_KEYS_FILE
# for the API keys). At least the database URL, unico's credentials (api_key, service_account,
# the private key as unico.private_key_pem or a mounted unico.private_key_path) and
# webhook_secret, the QI Tech and Zro keys, the API keys and the pii keys. A missing or refused
# value stops the start with an error naming its key.
#
# To try the sandbox on a laptop, use compose.yaml (it mounts ./config); never in production.
#
# Stages: chef (the toolchain and cargo-chef), planner (the dependency recipe), build (the
# dependencies in a layer of their own, cached while Cargo.toml and Cargo.lock do not change,
# then veredito itself), runtime.

FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
# src/config.rs compiles in the sandbox's published values (config/sandbox.toml, and the digest of
# the sandbox unico key) so that a production start can recognise and refuse them; they are
# needed here, at build time only, and this stage is not part of the image.
COPY config ./config
RUN cargo build --release --locked --bin veredito

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 veredito \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin veredito
WORKDIR /app
COPY --from=build /src/target/release/veredito /usr/local/bin/veredito
COPY config/default.toml ./config/default.toml
USER 10001:10001
ENV VEREDITO__SERVER__ADDR=0.0.0.0:8080 \
    VEREDITO__TELEMETRY__LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["veredito"]
CMD ["serve"]
