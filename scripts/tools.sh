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

# Every tool is built with the Go that go.mod names: the machine's Go
# fetches it from the module proxy when it is older (GOTOOLCHAIN), and a
# cached tool that another Go built is built again.
want_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
export GOTOOLCHAIN="go$want_go"
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$have_go" != "$want_go" ]; then
  echo "tools: go.mod wants Go $want_go, and GOTOOLCHAIN=$GOTOOLCHAIN gave $have_go" >&2
  exit 1
fi
# current BIN...: each exists and was built by the pinned Go (or, with
# built_by set, by that Go); a GOEXPERIMENT suffix (go1.26.8-X:jsonv2)
# is not part of the version.
current() {
  local bin
  for bin in "$@"; do
    [ -x "$bin" ] && [ "$(go version "$bin" 2>/dev/null | awk '{print $2}' | sed 's/-X:.*//')" = "${built_by:-go$want_go}" ] || return 1
  done
}

# Debian packages: git (repositories, git http-backend), docker-registry (the
# registry images are pushed to), busybox-static (a shell for test base
# images), util-linux (mount and chroot for the build sandbox), iproute2,
# ca-certificates, and
# for the local cluster etcd-server, redis-server (Argo CD), prometheus and
# prometheus-alertmanager; postgresql (the store's second database: tests
# run its initdb and postgres in temporary directories, never the
# package's own cluster); containerd, runc, the CNI plugins, iptables,
# conntrack and ipset (the NetworkPolicy agent's sets) for the local
# cluster's real node (the kubelet runs Pods on a containerd of its own,
# never the system's).
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
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
command -v openssl >/dev/null || need+=(openssl)
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v ipset >/dev/null || need+=(ipset)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tools: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
  echo "tools: installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The Go-built tools are independent: each is a function, built TOOLS_JOBS
# at a time (default 2) so that one's module download can overlap
# another's compile; more does not help on 2 cores, where compiling is
# the bulk of a fresh machine's hour. Each writes its log to
# $TOOLS_DIR/logs/<name>.log; a failed one is printed whole. No debug
# information is made: the compiler writes no DWARF (-dwarf=false, less
# work per package) and the linker strips symbols (-s -w); panics keep
# their traces. Every build uses the machine's one module cache (GOMODCACHE)
# and build cache (GOCACHE).
LDSTRIP="-s -w"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-gcflags=all=-dwarf=false"

# The Kaniko executor, from its own small module (tools/kaniko) so its
# dependency graph never touches slipway's. Static, as the sandbox needs.
kaniko="$TOOLS_DIR/kaniko-$KANIKO_VERSION/executor"
kaniko_pkg=github.com/GoogleContainerTools/kaniko/cmd/executor
grep -q "github.com/GoogleContainerTools/kaniko $KANIKO_VERSION" tools/kaniko/go.mod ||
  { echo "tools: tools/kaniko/go.mod does not pin Kaniko $KANIKO_VERSION" >&2; exit 1; }
build_kaniko() {
  current "$kaniko" && return 0
  echo "tools: building Kaniko executor $KANIKO_VERSION (minutes the first time)"
  mkdir -p "$(dirname "$kaniko")"
  (cd tools/kaniko && CGO_ENABLED=0 go build -trimpath -ldflags "$LDSTRIP" -o "$kaniko.tmp" "$kaniko_pkg")
  mv "$kaniko.tmp" "$kaniko"
}

# The Trivy CLI (v0.74 needs GOEXPERIMENT=jsonv2 to build), static like
# its releases: the same binary is the engine's client and, in an image,
# the cluster's `trivy server`. A cgo build of an earlier recipe is rebuilt.
# The one tool not built by go.mod's Go: Trivy v0.74.0, the newest release,
# uses encoding/json/v2 as Go 1.26's experiment had it (json.SkipFunc),
# which Go 1.27 removed, so it is built by TRIVY_GO (versions.env) until a
# Trivy release builds with Go 1.27.
trivy="$TOOLS_DIR/trivy-$TRIVY_VERSION/trivy"
build_trivy() {
  built_by=$TRIVY_GO current "$trivy" && go version -m "$trivy" | grep -q 'CGO_ENABLED=0' && return 0
  echo "tools: building Trivy $TRIVY_VERSION with $TRIVY_GO (minutes the first time)"
  mkdir -p "$(dirname "$trivy")"
  local tmp; tmp=$(mktemp -d)
  GOTOOLCHAIN=$TRIVY_GO CGO_ENABLED=0 GOEXPERIMENT=jsonv2 GOBIN="$tmp" go install -trimpath -ldflags "$LDSTRIP -X github.com/aquasecurity/trivy/pkg/version/app.ver=${TRIVY_VERSION#v}" \
    "github.com/aquasecurity/trivy/cmd/trivy@$TRIVY_VERSION"
  mv "$tmp/trivy" "$trivy"
  rmdir "$tmp"
}

# The local cluster's Kubernetes components — kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy — from a
# module that replaces every k8s.io staging module with its release, in
# one build (they share most packages); the version ldflags let clients
# parse the server version.
kube="$TOOLS_DIR/kubernetes-$KUBERNETES_VERSION"
kube_bins="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy"
kube_pkgs=()
for bin in $kube_bins; do kube_pkgs+=("k8s.io/kubernetes/cmd/$bin"); done
build_kubernetes() {
  local bin paths=()
  for bin in $kube_bins; do paths+=("$kube/$bin"); done
  current "${paths[@]}" && return 0
  echo "tools: building $kube_bins $KUBERNETES_VERSION (minutes the first time)"
  mkdir -p "$kube"
  local minor ldflags="$LDSTRIP"
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  done
  rm -rf "$kube/.build" && mkdir "$kube/.build"
  (cd tools/kubernetes && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$kube/.build/" "${kube_pkgs[@]}")
  for bin in $kube_bins; do mv "$kube/.build/$bin" "$kube/$bin"; done
  rmdir "$kube/.build"
}

# The Argo CD components the local cluster runs (API server, application
# controller, repo-server and its git askpass helper) in one binary that
# picks its role from argv[0], from tools/argocd: its main carries only
# those roles (not Argo CD's CLI, Dex, notifications, ApplicationSet
# controller or commit server), its go.mod Argo CD's own replace block.
argocd="$TOOLS_DIR/argocd-$ARGOCD_VERSION/argocd"
build_argocd() {
  current "$argocd" && go version -m "$argocd" | grep -q 'path.slipway.local/tools/argocd' && return 0
  echo "tools: building Argo CD $ARGOCD_VERSION (minutes the first time)"
  mkdir -p "$(dirname "$argocd")"
  (cd tools/argocd && CGO_ENABLED=0 go build -trimpath -ldflags "$LDSTRIP" -o "$argocd.tmp" .)
  mv "$argocd.tmp" "$argocd"
}

# Gitea, the forge of the local environment (pushes, webhooks, commit
# statuses), from a module carrying Gitea's version-pin replaces; pure Go
# (its default SQLite driver is modernc). Built without bindata, it reads
# its templates and options at run time: they are copied beside it.
gitea_dir="$TOOLS_DIR/gitea-$GITEA_VERSION"
build_gitea() {
  current "$gitea_dir/gitea" && return 0
  echo "tools: building Gitea $GITEA_VERSION (minutes the first time)"
  mkdir -p "$gitea_dir"
  (cd tools/gitea && CGO_ENABLED=0 go build -trimpath -ldflags "$LDSTRIP" -o "$gitea_dir/gitea.tmp" gitea.dev)
  local src; src=$(cd tools/gitea && go list -m -f '{{.Dir}}' gitea.dev)
  rm -rf "$gitea_dir/templates" "$gitea_dir/options"
  cp -r "$src/templates" "$src/options" "$gitea_dir/"
  chmod -R u+w "$gitea_dir/templates" "$gitea_dir/options"
  mv "$gitea_dir/gitea.tmp" "$gitea_dir/gitea"
}

# The kustomize CLI, which Argo CD's repo-server runs for kustomize apps.
kustomize="$TOOLS_DIR/kustomize-$KUSTOMIZE_VERSION/kustomize"
build_kustomize() {
  current "$kustomize" && return 0
  echo "tools: building kustomize $KUSTOMIZE_VERSION"
  mkdir -p "$(dirname "$kustomize")"
  local tmp; tmp=$(mktemp -d)
  CGO_ENABLED=0 GOBIN="$tmp" go install -ldflags "$LDSTRIP" "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  mv "$tmp/kustomize" "$kustomize"
  rmdir "$tmp"
}

# The local node's NetworkPolicy agent (kube-router, its firewall only),
# which the integration tests run on the node beside kube-proxy so that
# the policies deploy/ ships are enforced, not only applied. Built from
# tools/kube-router, whose go.mod raises the dependencies kube-router's
# only release pins past their known vulnerabilities.
kube_router="$TOOLS_DIR/kube-router-$KUBE_ROUTER_VERSION/kube-router"
kube_router_pkg=github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
build_netpolicy() {
  local dir; dir=$(dirname "$kube_router")
  current "$kube_router" && return 0
  echo "tools: building kube-router $KUBE_ROUTER_VERSION"
  mkdir -p "$dir"
  (cd tools/kube-router && CGO_ENABLED=0 go build -trimpath -ldflags "$LDSTRIP" -o "$dir/kube-router.tmp" "$kube_router_pkg")
  mv "$dir/kube-router.tmp" "$dir/kube-router"
}

# The checkers `make vet` runs: staticcheck, govulncheck, and the Go
# vulnerability database built offline from the pinned golang.org/x/vulndb
# module (its data/osv reports, indexed by its own indexdb command).
# shellcheck source=lint.env
. scripts/lint.env
install_go_tool() { # name version package
  local bin="$TOOLS_DIR/$1-$2/$1"
  current "$bin" && return 0
  echo "tools: building $1 $2"
  mkdir -p "$(dirname "$bin")"
  local tmp; tmp=$(mktemp -d)
  CGO_ENABLED=0 GOBIN="$tmp" go install -ldflags "$LDSTRIP" "$3@$2"
  mv "$tmp/$(basename "$3")" "$bin"
  rm -rf "$tmp"
}
build_checkers() {
  install_go_tool staticcheck "$STATICCHECK_VERSION" honnef.co/go/tools/cmd/staticcheck
  install_go_tool govulncheck "$GOVULNCHECK_VERSION" golang.org/x/vuln/cmd/govulncheck
  local vulndb="$TOOLS_DIR/govulndb-$VULNDB_VERSION"
  [ -f "$vulndb/index/db.json" ] && return 0
  echo "tools: indexing the Go vulnerability database $VULNDB_VERSION"
  install_go_tool indexdb "$VULNDB_VERSION" golang.org/x/vulndb/cmd/indexdb
  local src; src=$(cd / && go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  rm -rf "$vulndb.tmp"
  "$TOOLS_DIR/indexdb-$VULNDB_VERSION/indexdb" -vulns "$src/data/osv" -out "$vulndb.tmp"
  mv "$vulndb.tmp" "$vulndb"
}

# fetch DIR PACKAGE...: downloads into the module cache what building
# the packages of the module in DIR needs, and compiles nothing.
fetch() {
  local dir=$1; shift
  (cd "$dir" && go list -deps "$@" >/dev/null)
}
# The modules of every tool still to build, downloaded side by side (the
# network, not the processors) while the first builds compile, so that a
# build finds its modules there. Trivy's, installed by version, come with
# its build, which starts first.
prefetch() {
  current "$kube/kube-apiserver" || fetch tools/kubernetes "${kube_pkgs[@]}" &
  current "$argocd" || fetch tools/argocd . &
  current "$gitea_dir/gitea" || fetch tools/gitea gitea.dev &
  current "$kaniko" || fetch tools/kaniko "$kaniko_pkg" &
  current "$kube_router" || fetch tools/kube-router "$kube_router_pkg" &
  wait
}

# Runs the builds, the longest first, at most TOOLS_JOBS at a time, beside
# the downloads; each says how long it took, and the times are listed
# again at the end. A failed one has its log printed and fails the script
# once the others have finished.
logs="$TOOLS_DIR/logs"
mkdir -p "$logs"
jobs_max=${TOOLS_JOBS:-2}
began=$(date +%s)
prefetch >"$logs/prefetch.log" 2>&1 &
fetching=$!
started=()
for name in trivy kubernetes argocd gitea kaniko checkers kustomize netpolicy; do
  while [ "$(jobs -rp | grep -cvx "$fetching")" -ge "$jobs_max" ]; do wait -n || true; done
  rm -f "$logs/$name.rc" "$logs/$name.took"
  (
    set +e
    t0=$(date +%s)
    (set -e; "build_$name") >"$logs/$name.log" 2>&1
    rc=$?
    echo "$rc" >"$logs/$name.rc"
    if [ -s "$logs/$name.log" ]; then
      echo "$(($(date +%s) - t0))" >"$logs/$name.took"
      echo "tools: $name done in $(cat "$logs/$name.took") s (exit $rc)"
    fi
  ) &
  started+=("$name")
done
wait
times=()
for name in "${started[@]}"; do
  [ -f "$logs/$name.took" ] && times+=("$name $(cat "$logs/$name.took") s")
done
if [ ${#times[@]} -gt 0 ]; then
  list=$(printf '%s, ' "${times[@]}")
  echo "tools: built ${list%, } — $(($(date +%s) - began)) s in all, $jobs_max at a time"
fi
failed=0
for name in "${started[@]}"; do
  if [ "$(cat "$logs/$name.rc" 2>/dev/null)" != 0 ]; then
    echo "tools: building $name failed; its log ($logs/$name.log):" >&2
    cat "$logs/$name.log" >&2
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1

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
