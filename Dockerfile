# dingtail as a sidecar: watches the application's logs on a shared volume. For machines with a
# registry (it starts from rust:1-slim-bookworm); packaging/build.sh image builds the same image
# offline with buildah.
#
#   docker build --build-arg DINGTAIL_COMMIT=$(git rev-parse --short HEAD) \
#       --build-arg DINGTAIL_VERSION=$(cargo pkgid | sed 's/.*[#@]//') -t dingtail .
#   docker run --rm -v /var/log/app:/logs:ro -v $PWD/dingtail.yaml:/etc/dingtail/dingtail.yaml:ro \
#       -v $PWD/rules.d:/etc/dingtail/rules.d:ro \
#       -e DINGTALK_OPS_TOKEN=... -e DINGTALK_OPS_SECRET=... dingtail
#
# The image is FROM scratch: the binary and what it needs at run time (its shared libraries, CA
# certificates, time-zone data, a passwd with the dingtail user 10001), the packages' config
# (valid, sends nowhere) and the example rules in /usr/share/dingtail/rules, laid out by
# packaging/image/rootfs.sh. The final stage is packaging/image/Containerfile's, line for line
# (.ci/packaging checks it). The binary runs as PID 1: it handles SIGTERM/SIGINT itself (persist,
# send what the rate budget allows, exit 0) and starts no child processes, so there are no
# zombies to reap.

FROM rust:1-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that editing the source does not rebuild them.
# (The manifest names test and bench targets, so their folders come along.)
COPY Cargo.toml Cargo.lock build.rs ./
COPY tests ./tests
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin dingtail \
    && rm -rf src
COPY src ./src
# No .git in the build context: the commit comes from here (`dingtail --version`).
ARG DINGTAIL_COMMIT=
RUN touch src/main.rs src/lib.rs \
    && DINGTAIL_COMMIT="$DINGTAIL_COMMIT" cargo build --release --locked --bin dingtail \
    && strip --strip-unneeded target/release/dingtail
COPY packaging ./packaging
COPY rules ./rules
RUN packaging/image/rootfs.sh /rootfs target/release/dingtail

FROM scratch
COPY --from=build /rootfs/ /
ARG DINGTAIL_VERSION=unknown
ARG DINGTAIL_COMMIT=unknown
LABEL org.opencontainers.image.title="dingtail" \
      org.opencontainers.image.description="Watches log files and pushes the lines that matter into DingTalk group chats" \
      org.opencontainers.image.source="https://github.com/dingtail/dingtail" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.version="${DINGTAIL_VERSION}" \
      org.opencontainers.image.revision="${DINGTAIL_COMMIT}"
USER 10001:10001
VOLUME ["/var/lib/dingtail"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/dingtail"]
CMD ["run", "-c", "/etc/dingtail/dingtail.yaml"]
