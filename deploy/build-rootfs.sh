#!/bin/sh
# Assembles the container image's whole file system in a directory, for a `FROM scratch`
# image: the static psgw binary with its version stamped in, CA certificates, a non-root user
# and its data directory. The Dockerfile runs it in a Go build stage; where no registry can be
# reached (no Go image to pull), deploy/build-image.sh runs it on the host instead and builds
# the Dockerfile's `prebuilt` target. The zone database is compiled into the binary
# (time/tzdata), so the image needs no /usr/share/zoneinfo.
#
# Usage: deploy/build-rootfs.sh OUT_DIR
# Environment: VERSION, COMMIT, BUILD_DATE (else taken from git and the clock),
#              CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt).
set -eu
out=${1:?usage: build-rootfs.sh OUT_DIR}
uid=65532 # the conventional "nonroot" id of distroless images

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=${COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || true)}
date=${BUILD_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp"
CGO_ENABLED=0 GOOS=linux go build -trimpath \
  -ldflags "-s -w -X main.version=$version -X main.commit=$commit -X main.buildDate=$date" \
  -o "$out/usr/local/bin/psgw" ./cmd/psgw
if [ ! -r "$ca" ]; then
  echo "build-rootfs: no CA bundle at $ca (set CA_BUNDLE): psgw could not verify LFPSE's certificate" >&2
  exit 1
fi
cp "$ca" "$out/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\npsgw:x:%s:%s:psgw:/var/lib/psgw:/sbin/nologin\n' $uid $uid >"$out/etc/passwd"
printf 'root:x:0:\npsgw:x:%s:\n' $uid >"$out/etc/group"
chmod 1777 "$out/tmp"
echo "$version" >"$out/.psgw-version"
