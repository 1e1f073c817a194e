#!/bin/sh
# Builds the psgw container image without pulling anything: psgw is compiled on this machine
# (Go 1.26 needed) and the Dockerfile's `prebuilt` target, which starts `FROM scratch`, copies
# it in. Use it where no registry can be reached; elsewhere `docker build .` builds from
# source in a Go image and gives the same file system.
#
# Usage: deploy/build-image.sh [TAG]   (default psgw:latest)
set -eu
cd "$(dirname "$0")/.."
tag=${1:-psgw:latest}
deploy/build-rootfs.sh dist/rootfs
docker build --target prebuilt -t "$tag" \
  --label "org.opencontainers.image.version=$(cat dist/rootfs/.psgw-version)" .
