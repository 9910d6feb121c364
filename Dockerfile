# syntax=docker/dockerfile:1
# reportsplit container image: a release build in the Rust image, copied into a distroless
# runtime (glibc, CA certificates, no shell, no package manager) that runs as a non-root user.
# Nothing secret is baked in: the site configuration and every secret are mounted at run time
# (docs/deploy.md). The code tables of mappings/ are compiled into the binary.
#
#   docker build -t reportsplit:0.1.0 .
#
# Base images are pinned by tag. Pin them by digest too (`image:tag@sha256:...`) in a registry
# you control: these machines pull no image, so no digest could be checked here.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The whole workspace (see .dockerignore): every member's manifest is needed to resolve it.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin reportsplit \
    && cp target/release/reportsplit /usr/local/bin/reportsplit

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="reportsplit" \
      org.opencontainers.image.description="Splits FHIR R4 radiology DiagnosticReports into coded Observations" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /usr/local/bin/reportsplit /usr/local/bin/reportsplit
# uid/gid 65532 ("nonroot" in distroless). The embedded state store writes under
# /var/lib/reportsplit: mount a volume there (or use a PostgreSQL state store).
USER 65532:65532
WORKDIR /var/lib/reportsplit
ENV REPORTSPLIT_STATE_DIR=/var/lib/reportsplit \
    REPORTSPLIT_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/reportsplit"]
CMD ["--help"]
