# Build: docker build -t veredito .
# Run:   docker run -p 8080:8080 -e DATABASE_URL=postgres://... veredito
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY openapi.json ./
RUN cargo build --release --locked --bin veredito

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin veredito
WORKDIR /app
COPY --from=build /src/target/release/veredito /usr/local/bin/veredito
COPY config ./config
USER 10001:10001
ENV VEREDITO__SERVER__ADDR=0.0.0.0:8080 \
    VEREDITO__TELEMETRY__LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["veredito"]
CMD ["serve"]
