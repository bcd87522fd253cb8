# syntax=docker/dockerfile:1

# Build a static binary.
FROM golang:1.26 AS build
# The version that `usersvc version`, /health and usersvc_build_info report
# (the context has no .git to take it from):
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) .
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/usersvc ./cmd/usersvc \
 && mkdir -p /out/data

# Run it in a minimal image with no shell, as a non-root user. DATA_DIR holds
# the SQLite database and generated keys of the embedded defaults; with
# PostgreSQL and SECRET_KEY set it stays empty.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usersvc /usersvc
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV PORT=8000 \
    DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usersvc", "healthcheck"]
ENTRYPOINT ["/usersvc"]
CMD ["serve"]
