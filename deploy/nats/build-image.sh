#!/bin/sh
# Builds the NATS server image of the compose file's cluster profile without pulling
# anything: the nats-server version psgw's go.mod names is compiled here (Go 1.26 needed,
# static, no cgo) and copied onto an empty base (deploy/nats/Dockerfile).
#
# Usage: deploy/nats/build-image.sh [TAG]   (default psgw-nats:latest)
set -eu
cd "$(dirname "$0")/../.."
tag=${1:-psgw-nats:latest}
version=$(go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
mkdir -p deploy/nats/dist
# Built inside psgw's module, so the version is go.mod's.
CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o deploy/nats/dist/nats-server \
  github.com/nats-io/nats-server/v2
docker build -t "$tag" --label "org.opencontainers.image.version=$version" deploy/nats
