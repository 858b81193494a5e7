# dingtail as a sidecar: watches the application's logs on a shared volume.
#
#   docker build -t dingtail .
#   docker run --rm -v /var/log/app:/logs:ro -v $PWD/dingtail.yaml:/etc/dingtail/dingtail.yaml:ro \
#       -v $PWD/rules.d:/etc/dingtail/rules.d:ro \
#       -e DINGTALK_OPS_TOKEN=... -e DINGTALK_OPS_SECRET=... dingtail
#
# The binary runs as PID 1: it handles SIGTERM/SIGINT itself (persist, send what the rate budget
# allows, exit 0) and starts no child processes, so there are no zombies to reap.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that editing the source does not rebuild them.
# (The manifest names test and bench targets, so their folders come along.)
COPY Cargo.toml Cargo.lock ./
COPY tests ./tests
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin dingtail \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin dingtail \
    && strip target/release/dingtail

FROM debian:bookworm-slim
# No CA bundle needed: the binary carries the web PKI roots (webpki-roots).
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin dingtail \
    && mkdir -p /etc/dingtail/rules.d /var/lib/dingtail \
    && chown dingtail /var/lib/dingtail
COPY --from=build /src/target/release/dingtail /usr/local/bin/dingtail
# The shipped rules are examples to adapt (their inputs and robot follow the quick start): mount
# your rules at /etc/dingtail/rules.d, e.g. from a ConfigMap (see examples/kubernetes/).
COPY rules/ /usr/share/dingtail/rules/
USER 10001
VOLUME ["/var/lib/dingtail"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/dingtail"]
CMD ["run", "-c", "/etc/dingtail/dingtail.yaml"]
