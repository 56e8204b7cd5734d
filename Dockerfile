# The sipfleet command line in a container, for `sipfleet load` past one
# machine (deploy/k8s/load-job.yaml runs it as an Indexed Job, one shard a
# pod). Build from the repository root:
#
#   docker build -t sipfleet:latest .
#
# Two stages: the workspace is compiled in Rust's Debian image (which has
# the OpenSSL headers and pkg-config that native-tls needs), and only the
# binary goes into a slim Debian of the same release, so glibc and
# libssl3 match what it was linked against.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p sipfleet-cli --locked \
    && install -m 0755 target/release/sipfleet /usr/local/bin/sipfleet

FROM debian:bookworm-slim
# ca-certificates: TLS transports verify their SBCs against the system
# store; libssl3: the binary's native-tls (OpenSSL) at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin sipfleet
COPY --from=build /usr/local/bin/sipfleet /usr/local/bin/sipfleet
# Not root: a SIP client needs no privilege (its port is ephemeral or
# above 1024 unless told otherwise).
USER 10001:10001
ENTRYPOINT ["sipfleet"]
CMD ["--help"]
