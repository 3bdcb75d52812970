#!/usr/bin/env bash
# Make a fresh machine ready for scripts/local-cluster/up.sh, then (unless
# --no-build) build/cache the control-plane binaries so that up.sh starts warm.
#
# Needs: bash >= 4.2, coreutils, util-linux (setsid, flock, nsenter), ca-certificates,
# Go >= 1.21 (1.26+ preferred, see below) and access to the Go module proxy;
# for the images and the real node also Debian's containerd, runc,
# containernetworking-plugins, iproute2, iptables, conntrack, ipset, docker-registry,
# busybox-static, gcc + libc6-dev (a static pause), tar and binutils; e2fsprogs
# and xfsprogs for the real node's ext4 and xfs file system images.
# Installs missing Debian packages with apt-get when run as root; otherwise,
# or when something cannot be installed, it fails and says exactly what is
# missing. It never silently skips a requirement.
#
# No etcd package is needed: etcd is compiled from go.etcd.io/etcd/server/v3
# together with Kubernetes (see README.md). No Docker, kind or kubectl needed.
# The real node itself needs root at run time (up.sh checks; --no-node does not).
#
# Usage: install-prereqs.sh [--no-build]
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

BUILD=1
for a in "$@"; do
  case $a in
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install-prereqs.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

say() { echo "[install-prereqs] $*" >&2; }
missing() { echo "[install-prereqs] MISSING: $*" >&2; FAILED=1; }
FAILED=0

# --- bash ---------------------------------------------------------------
if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 2))); then
  missing "bash >= 4.2 (found $BASH_VERSION)"
fi

# --- Debian packages for the small tools up.sh/down.sh use ----------------
# command -> Debian package
declare -A PKG=(
  [setsid]=util-linux [flock]=util-linux
  [timeout]=coreutils [sha256sum]=coreutils [cksum]=coreutils [mktemp]=coreutils
  [readlink]=coreutils [date]=coreutils [tail]=coreutils [tr]=coreutils
  [sed]=sed [grep]=grep
  # images.sh: registry, layer tarballs, pause (static C), the node image's userland.
  # (images.sh runs docker-registry with its own config; the package's service
  # and /etc/docker/registry are never used: on systemd hosts stop that service.)
  [docker-registry]=docker-registry [tar]=tar [gcc]=gcc [strip]=binutils [readelf]=binutils
  [busybox]=busybox-static [cmp]=diffutils [find]=findutils [xargs]=findutils [paste]=coreutils
  # node.sh: the real node (containerd + runc, its network namespace, kube-proxy's iptables).
  [containerd]=containerd [containerd-shim-runc-v2]=containerd [ctr]=containerd [runc]=runc
  [ip]=iproute2 [nsenter]=util-linux [iptables]=iptables [conntrack]=conntrack
  # kube-router's firewall (the node's NetworkPolicies) keeps its address sets in ipsets
  [ipset]=ipset
  # up.sh: the real node's file system images (loop-mounted ext4 and xfs)
  [mkfs.ext4]=e2fsprogs [mkfs.xfs]=xfsprogs [losetup]=mount [findmnt]=util-linux [truncate]=coreutils
  # e2e: the lock's clock-skew tests run a runner under a clock an hour off (libfaketime)
  [faketime]=faketime
  # scripts/docker-engine.sh: a real Docker engine (its own socket, no networking) and an
  # htpasswd registry for Flow 1's tests; the package's own service is never started by us.
  [dockerd]=docker.io [htpasswd]=apache2-utils [curl]=curl
)
need_pkgs=()
for cmd in "${!PKG[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || need_pkgs+=("${PKG[$cmd]}")
done
[[ -f /etc/ssl/certs/ca-certificates.crt || -d /etc/ssl/certs && -n $(ls /etc/ssl/certs 2>/dev/null | head -n1) ]] ||
  need_pkgs+=(ca-certificates)
# the real node's pod network: bridge, host-local, loopback, portmap
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback && -x /usr/lib/cni/portmap ]] ||
  need_pkgs+=(containernetworking-plugins)
# pause is linked statically (libc.a); the node image needs a static busybox
command -v gcc >/dev/null 2>&1 && [[ $(gcc -print-file-name=libc.a) == /* ]] || need_pkgs+=(libc6-dev)
command -v busybox >/dev/null 2>&1 && ! readelf -l "$(command -v busybox)" 2>/dev/null | grep -q INTERP ||
  need_pkgs+=(busybox-static)
if ((${#need_pkgs[@]})); then
  mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing: ${need_pkgs[*]}"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"; }; then
      missing "Debian packages ${need_pkgs[*]} (apt-get install failed)"
    fi
  else
    missing "Debian packages ${need_pkgs[*]} (run as root with apt-get available, or install them yourself)"
  fi
fi
for cmd in "${!PKG[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing "command '$cmd' (package ${PKG[$cmd]})"
done
command -v gcc >/dev/null 2>&1 && [[ $(gcc -print-file-name=libc.a) != /* ]] &&
  missing "libc.a for static linking of pause (package libc6-dev)"
command -v busybox >/dev/null 2>&1 && readelf -l "$(command -v busybox)" 2>/dev/null | grep -q INTERP &&
  missing "a statically linked busybox (package busybox-static; the busybox on PATH is dynamically linked)"
for f in bridge host-local loopback portmap; do
  [[ -x /usr/lib/cni/$f ]] || missing "CNI plugin /usr/lib/cni/$f (package containernetworking-plugins)"
done
if command -v date >/dev/null 2>&1 && [[ $(date +%N) == *N* ]]; then
  missing "GNU date with %N support (package coreutils)"
fi

# --- Go -------------------------------------------------------------------
# Kubernetes v1.28.15 and etcd v3.5.9 build with Go >= 1.20; kwok v0.8.0's
# go.mod says 'go 1.26.0'. With Go 1.21..1.25 and GOTOOLCHAIN=auto (the
# default), 'go install' fetches the go1.26 toolchain from the module proxy.
# Debian bookworm's golang-go (1.19) is too old, so Go is not apt-installed.
if ! command -v go >/dev/null 2>&1; then
  missing "Go >= 1.21 ('go' not on PATH; Debian bookworm's golang-go is 1.19, too old). Install Go 1.26 from https://go.dev/dl/ and put it on PATH."
else
  gov=$(go env GOVERSION 2>/dev/null || true)
  gov=${gov#go}
  major=${gov%%.*}
  rest=${gov#*.}
  minor=${rest%%[!0-9]*}
  if [[ ! $major =~ ^[0-9]+$ || ! $minor =~ ^[0-9]+$ ]]; then
    missing "a Go toolchain whose version can be read ('go env GOVERSION' said '$gov')"
  elif ((major < 1 || (major == 1 && minor < 21))); then
    missing "Go >= 1.21 (found go$gov). Install Go 1.26 from https://go.dev/dl/."
  elif ((major == 1 && minor < 26)); then
    tc=$(go env GOTOOLCHAIN 2>/dev/null || true)
    if [[ $tc == local* ]]; then
      missing "Go >= 1.26 for kwok v0.8.0 (found go$gov and GOTOOLCHAIN=$tc forbids fetching go1.26): install Go 1.26 or unset GOTOOLCHAIN"
    else
      say "go$gov found: 'go' will fetch the go1.26 toolchain from the module proxy to build kwok"
    fi
  else
    say "go$gov found"
  fi
  if ((FAILED == 0)); then
    # Can we reach the module proxy? (cheap: metadata only, cached afterwards)
    if ! out=$(cd "$DIR" && GOFLAGS=-mod=mod go list -m -json k8s.io/kubernetes@v1.28.15 2>&1 >/dev/null); then
      missing "access to the Go module proxy ($(go env GOPROXY)): 'go list -m k8s.io/kubernetes@v1.28.15' failed: $out"
    fi
  fi
fi

if ((FAILED)); then
  echo "[install-prereqs] FAILED: the local test cluster cannot be built/started on this machine (see MISSING lines above)." >&2
  exit 1
fi
say "prerequisites OK"

if ((BUILD)); then
  say "building/caching the control-plane binaries (cold: several minutes; cached: instant)"
  bash "$DIR/build.sh"
fi
