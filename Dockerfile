# fedgate: build in a Rust image, run as a non-root user in a slim Debian.
#   docker build -t fedgate:local .
# The runtime image holds the binary, CA certificates, and curl for the
# healthchecks; nothing else.

# The lockfile needs a recent stable Rust (time 0.3.55 and jsonwebtoken 11 need 1.88).
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY benches benches
COPY src src
# Embedded in the binary for `fedgate demo` and `fedgate mock` (test-only keys).
COPY fixtures/saml/keys fixtures/saml/keys
COPY tests/data tests/data
RUN cargo build --locked --release --bin fedgate

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin fedgate \
 && mkdir -p /shared /etc/fedgate \
 && chown 10001:10001 /shared
COPY --from=build /src/target/release/fedgate /usr/local/bin/fedgate
USER 10001:10001
# mimalloc returns freed memory at once (dist/fedgate.service says why).
ENV MIMALLOC_PURGE_DELAY=0
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/fedgate"]
CMD ["serve", "--config", "/etc/fedgate/fedgate.toml"]
