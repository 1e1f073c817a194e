# psgw container image: a static binary on an empty base (FROM scratch), running as a
# non-root user, with CA certificates; the zone database is compiled into the binary.
#
# Two ways to build it, giving the same file system (deploy/build-rootfs.sh assembles it):
#   docker build -t psgw .                      from source, in a Go image (needs a registry)
#   deploy/build-image.sh psgw                  no registry: compiles on this machine, then
#                                               builds the `prebuilt` target below
# docs/deploy.md says how to run it.

# ---- prebuilt: the file system deploy/build-rootfs.sh made in dist/rootfs ------------------
# It comes first so that building this target never reads the stages below (the legacy
# builder stops at the target), and so never pulls an image.
FROM scratch AS prebuilt
COPY dist/rootfs/ /
# Made by this COPY alone (not in the rootfs), so it is owned by the psgw user, and a fresh
# named volume mounted here, which takes the directory's owner, is writable by it.
COPY --chown=65532:65532 deploy/volume/ /var/lib/psgw/
ENV PSGW_DATA_DIR=/var/lib/psgw \
    PSGW_HTTP_ADDR=0.0.0.0:8080 \
    PSGW_MLLP_ADDR=0.0.0.0:2575
EXPOSE 8080 2575
VOLUME /var/lib/psgw
USER 65532:65532
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/psgw", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/psgw"]
CMD ["run"]

# ---- from source (the default target) -------------------------------------------------------
FROM golang:1.26-bookworm AS build
ARG VERSION=dev
ARG COMMIT=
ARG BUILD_DATE=
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN VERSION="$VERSION" COMMIT="$COMMIT" BUILD_DATE="$BUILD_DATE" deploy/build-rootfs.sh /rootfs

FROM scratch AS image
COPY --from=build /rootfs/ /
COPY --chown=65532:65532 deploy/volume/ /var/lib/psgw/
ENV PSGW_DATA_DIR=/var/lib/psgw \
    PSGW_HTTP_ADDR=0.0.0.0:8080 \
    PSGW_MLLP_ADDR=0.0.0.0:2575
EXPOSE 8080 2575
VOLUME /var/lib/psgw
USER 65532:65532
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/psgw", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/psgw"]
CMD ["run"]
