#!/usr/bin/env bash
# Runs `make test-short` as an unprivileged user, as a contributor without
# root would: the unit tests must pass (and stay quick) with no privilege.
# Root runs this (CI): it makes the user, a clone of the committed files,
# and a module cache the user can read, filled from this machine's own
# cache without the network. The user's build cache persists, as a
# contributor's would.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-unprivileged: run as root (it creates the user slipway-ci)" >&2; exit 1; }
user=slipway-ci
home=/var/lib/$user
id -u "$user" >/dev/null 2>&1 || useradd --system --create-home --home-dir "$home" --shell /usr/sbin/nologin "$user"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q . "$work/src"
mods=/var/cache/slipway/gomod
mkdir -p "$mods"
(cd "$work/src" && GOMODCACHE="$mods" GOFLAGS=-mod=mod GOPROXY="file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)" go mod download)
chmod -R a+rX "$mods"
chown -R "$user" "$work"
chmod 755 "$work"

# CI=true is unset here on purpose: this run proves the short suite needs
# no privilege; the privileged suite ran (and could not skip) before it.
runuser -u "$user" -- env -i PATH="$PATH" HOME="$home" GOMODCACHE="$mods" GOPROXY=off GOFLAGS=-mod=mod \
  GOCACHE="$home/.cache/go-build" GOTOOLCHAIN=local \
  bash -c 'cd "$0" && time make test-short' "$work/src"
