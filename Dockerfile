# Slipway's image: the static engine and the static Trivy client (a scan
# asks the cluster's Trivy server, so the image holds no vulnerability
# database), CA certificates, run as non-root. Builds and `run` stages
# happen in Pods, not here. There is no git: the clone stage uses go-git
# where git is absent.
#
# `make image` builds it with the pinned Kaniko executor (no Docker engine
# needed). Its build context is a directory holding the two binaries,
# which `make image` builds first with `make build`'s flags and Go
# (GOTOOLCHAIN=go1.27.3, from go.mod) and `make tools`' Trivy; BASE is replaced by an equivalent local image where
# there is no route to gcr.io.
ARG BASE=gcr.io/distroless/static-debian12:nonroot
FROM ${BASE}
COPY slipway trivy /usr/local/bin/
ENV SLIPWAY_TRIVY=/usr/local/bin/trivy SLIPWAY_TRIVY_CACHE=/tmp/trivy HOME=/tmp
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/slipway"]
CMD ["--help"]
