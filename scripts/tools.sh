#!/usr/bin/env bash
# Installs, idempotently, what `make test` and `make demo` need beyond the
# Go toolchain: Debian packages, and the pinned Kaniko executor and Trivy
# CLI built from the Go module proxy into a per-machine cache keyed by
# version ($TOOLS_DIR, default ~/.cache/slipway/tools) so fresh clones on
# the same machine reuse them. A second run changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR=${TOOLS_DIR:-${SLIPWAY_TOOLS_DIR:-$HOME/.cache/slipway/tools}}
mkdir -p "$TOOLS_DIR"
# shellcheck source=../stages/tools/versions.env
. stages/tools/versions.env

want_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$want_go" "$have_go" | sort -V | head -n1)" != "$want_go" ]; then
  echo "tools: go.mod wants Go $want_go, this machine has $have_go" >&2
  exit 1
fi

# Debian packages: git (repositories, git http-backend), docker-registry (the
# registry images are pushed to), busybox-static (a shell for test base
# images), util-linux (mount and chroot for the build sandbox), iproute2,
# ca-certificates, and
# for the local cluster etcd-server, redis-server (Argo CD), prometheus and
# prometheus-alertmanager.
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v redis-server >/dev/null || need+=(redis-server)
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v git >/dev/null || need+=(git)
command -v docker-registry >/dev/null || need+=(docker-registry)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || need+=(busybox-static file)
command -v unshare >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2) # brings up loopback in the build sandbox's network
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v chromium-headless-shell >/dev/null || need+=(chromium-headless-shell) # the UI's browser tests
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tools: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
  echo "tools: installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The Kaniko executor, from its own small module (tools/kaniko) so its
# dependency graph never touches slipway's. Static, as the sandbox needs.
kaniko="$TOOLS_DIR/kaniko-$KANIKO_VERSION/executor"
grep -q "github.com/GoogleContainerTools/kaniko $KANIKO_VERSION" tools/kaniko/go.mod ||
  { echo "tools: tools/kaniko/go.mod does not pin Kaniko $KANIKO_VERSION" >&2; exit 1; }
if [ ! -x "$kaniko" ]; then
  echo "tools: building Kaniko executor $KANIKO_VERSION (minutes the first time)"
  mkdir -p "$(dirname "$kaniko")"
  (cd tools/kaniko && CGO_ENABLED=0 go build -trimpath -o "$kaniko.tmp" github.com/GoogleContainerTools/kaniko/cmd/executor)
  mv "$kaniko.tmp" "$kaniko"
fi

# The Trivy CLI (v0.74 needs GOEXPERIMENT=jsonv2 to build).
trivy="$TOOLS_DIR/trivy-$TRIVY_VERSION/trivy"
if [ ! -x "$trivy" ]; then
  echo "tools: building Trivy $TRIVY_VERSION (minutes the first time)"
  mkdir -p "$(dirname "$trivy")"
  tmp=$(mktemp -d)
  GOEXPERIMENT=jsonv2 GOBIN="$tmp" go install "github.com/aquasecurity/trivy/cmd/trivy@$TRIVY_VERSION"
  mv "$tmp/trivy" "$trivy"
  rmdir "$tmp"
fi

# kube-apiserver and kube-controller-manager for the local cluster, from a
# module that replaces every k8s.io staging module with its release; the
# version ldflags let clients parse the server version.
kube="$TOOLS_DIR/kubernetes-$KUBERNETES_VERSION"
if [ ! -x "$kube/kube-apiserver" ] || [ ! -x "$kube/kube-controller-manager" ]; then
  echo "tools: building kube-apiserver and kube-controller-manager $KUBERNETES_VERSION (minutes the first time)"
  mkdir -p "$kube"
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  done
  for bin in kube-apiserver kube-controller-manager; do
    (cd tools/kubernetes && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$kube/$bin.tmp" "k8s.io/kubernetes/cmd/$bin")
    mv "$kube/$bin.tmp" "$kube/$bin"
  done
fi

# Argo CD's multi-call binary (it picks its role from argv[0]), from a
# module carrying Argo CD's own replace block.
argocd="$TOOLS_DIR/argocd-$ARGOCD_VERSION/argocd"
if [ ! -x "$argocd" ]; then
  echo "tools: building Argo CD $ARGOCD_VERSION (minutes the first time)"
  mkdir -p "$(dirname "$argocd")"
  (cd tools/argocd && CGO_ENABLED=0 go build -trimpath -o "$argocd.tmp" github.com/argoproj/argo-cd/v2/cmd)
  mv "$argocd.tmp" "$argocd"
fi

# Gitea, the forge of the local environment (pushes, webhooks, commit
# statuses), from a module carrying Gitea's version-pin replaces; pure Go
# (its default SQLite driver is modernc). Built without bindata, it reads
# its templates and options at run time: they are copied beside it.
gitea_dir="$TOOLS_DIR/gitea-$GITEA_VERSION"
if [ ! -x "$gitea_dir/gitea" ]; then
  echo "tools: building Gitea $GITEA_VERSION (minutes the first time)"
  mkdir -p "$gitea_dir"
  (cd tools/gitea && CGO_ENABLED=0 go build -trimpath -o "$gitea_dir/gitea.tmp" gitea.dev)
  src=$(cd tools/gitea && go list -m -f '{{.Dir}}' gitea.dev)
  rm -rf "$gitea_dir/templates" "$gitea_dir/options"
  cp -r "$src/templates" "$src/options" "$gitea_dir/"
  chmod -R u+w "$gitea_dir/templates" "$gitea_dir/options"
  mv "$gitea_dir/gitea.tmp" "$gitea_dir/gitea"
fi

# The kustomize CLI, which Argo CD's repo-server runs for kustomize apps.
kustomize="$TOOLS_DIR/kustomize-$KUSTOMIZE_VERSION/kustomize"
if [ ! -x "$kustomize" ]; then
  echo "tools: building kustomize $KUSTOMIZE_VERSION"
  mkdir -p "$(dirname "$kustomize")"
  tmp=$(mktemp -d)
  CGO_ENABLED=0 GOBIN="$tmp" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  mv "$tmp/kustomize" "$kustomize"
  rmdir "$tmp"
fi

# The checkers `make vet` runs: staticcheck, govulncheck, and the Go
# vulnerability database built offline from the pinned golang.org/x/vulndb
# module (its data/osv reports, indexed by its own indexdb command).
# shellcheck source=lint.env
. scripts/lint.env
install_go_tool() { # name version package
  local bin="$TOOLS_DIR/$1-$2/$1"
  if [ ! -x "$bin" ]; then
    echo "tools: building $1 $2"
    mkdir -p "$(dirname "$bin")"
    local tmp; tmp=$(mktemp -d)
    CGO_ENABLED=0 GOBIN="$tmp" go install "$3@$2"
    mv "$tmp/$(basename "$3")" "$bin"
    rm -rf "$tmp"
  fi
}
install_go_tool staticcheck "$STATICCHECK_VERSION" honnef.co/go/tools/cmd/staticcheck
install_go_tool govulncheck "$GOVULNCHECK_VERSION" golang.org/x/vuln/cmd/govulncheck
vulndb="$TOOLS_DIR/govulndb-$VULNDB_VERSION"
if [ ! -f "$vulndb/index/db.json" ]; then
  echo "tools: indexing the Go vulnerability database $VULNDB_VERSION"
  install_go_tool indexdb "$VULNDB_VERSION" golang.org/x/vulndb/cmd/indexdb
  src=$(cd / && go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  rm -rf "$vulndb.tmp"
  "$TOOLS_DIR/indexdb-$VULNDB_VERSION/indexdb" -vulns "$src/data/osv" -out "$vulndb.tmp"
  mv "$vulndb.tmp" "$vulndb"
fi

# axe-core for the browser tests' accessibility check, from the npm
# registry, verified against the pinned integrity.
# shellcheck source=browser.env
. scripts/browser.env
axe="$TOOLS_DIR/axe-core-$AXE_CORE_VERSION/axe.min.js"
if [ ! -f "$axe" ]; then
  echo "tools: fetching axe-core $AXE_CORE_VERSION from the npm registry"
  tmp=$(mktemp -d)
  curl -fsSL -o "$tmp/axe.tgz" "https://registry.npmjs.org/axe-core/-/axe-core-$AXE_CORE_VERSION.tgz"
  got="sha512-$(openssl dgst -sha512 -binary "$tmp/axe.tgz" | base64 -w0)"
  if [ "$got" != "$AXE_CORE_INTEGRITY" ]; then
    echo "tools: axe-core $AXE_CORE_VERSION tarball has integrity $got, want $AXE_CORE_INTEGRITY" >&2
    rm -rf "$tmp"
    exit 1
  fi
  tar -xzf "$tmp/axe.tgz" -C "$tmp" package/axe.min.js
  mkdir -p "$(dirname "$axe")"
  mv "$tmp/package/axe.min.js" "$axe"
  rm -rf "$tmp"
fi

echo "tools: ok (Go $have_go, $(git --version), Kaniko $KANIKO_VERSION, Trivy $("$trivy" --version 2>/dev/null | head -n1 | awk '{print $2}'), cache $TOOLS_DIR)"
