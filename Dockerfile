# psgw container image: a static binary on a distroless base, running as non-root.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/psgw ./cmd/psgw

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/psgw /usr/local/bin/psgw
# JetStream data lives here; mount a volume so it survives the container.
VOLUME /var/lib/psgw
ENV PSGW_DATA_DIR=/var/lib/psgw \
    PSGW_HTTP_ADDR=0.0.0.0:8080 \
    PSGW_MLLP_ADDR=0.0.0.0:2575
EXPOSE 8080 2575
USER nonroot
ENTRYPOINT ["/usr/local/bin/psgw"]
CMD ["run"]
