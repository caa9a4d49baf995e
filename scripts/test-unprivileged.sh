#!/usr/bin/env bash
# Runs `make test-short` without privilege, as a contributor without root
# would: the unit tests must pass (and stay quick) with no capability over
# the machine. Root runs this (CI): the tests run in a user namespace as
# uid 65534 (nobody) with no capabilities in the machine's namespaces —
# they cannot mount, make network namespaces or chown — while the files
# they read and the Go caches stay this user's own, so the packages
# `make vet` compiled moments before are not compiled again.
set -euo pipefail
cd "$(dirname "$0")/.."
# CI=true is unset on purpose: this run proves the short suite needs no
# privilege; the privileged suite ran (and could not skip) before it.
exec unshare --user --map-user=65534 --map-group=65534 \
  env -u CI bash -c '[ "$(id -u)" = 65534 ] || { echo "test-unprivileged: not unprivileged" >&2; exit 1; }; time make test-short'
