# The Slipway image: a static binary on a minimal base, run as non-root.
# Built with the same `make build` flags that CI uses.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build BIN=/out/slipway

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/slipway /usr/local/bin/slipway
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/slipway"]
CMD ["--help"]
