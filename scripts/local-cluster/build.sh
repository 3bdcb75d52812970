#!/usr/bin/env bash
# Builds (once) the binaries of the local test control plane into the cache:
#
#   $SANDSTORE_CACHE_DIR/kubernetes-<v>/bin/  kube-apiserver kube-controller-manager kube-scheduler kubectl
#                                             kubelet kube-proxy (the real node)
#   $SANDSTORE_CACHE_DIR/etcd-<v>/bin/        etcd etcdctl (etcdctl also goes into the etcd image)
#   $SANDSTORE_CACHE_DIR/kwok-<v>/bin/        kwok
#   $SANDSTORE_CACHE_DIR/coredns-<v>/bin/     coredns (cluster DNS of the real node)
#   $SANDSTORE_CACHE_DIR/kube-router-<v>/bin/ kube-router (the real node's NetworkPolicies)
#   $SANDSTORE_CACHE_DIR/local-path-provisioner-<v>-<hash>/bin/  local-path-provisioner (the real node's volumes)
#   $SANDSTORE_CACHE_DIR/local-tools-<hash>/bin/  sandstore-local-provisioner sandstore-local-pki
#                                                 sandstore-local-nodeproxy
#   $SANDSTORE_CACHE_DIR/bin/                 symlinks to all of the above (put it on PATH if you like)
#
# Everything comes from the Go module proxy; nothing else is downloaded.
# Usage: build.sh [--force]   (--force rebuilds even if cached)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FORCE=0
for a in "$@"; do
  case $a in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown argument $a" ;;
  esac
done

command -v go >/dev/null 2>&1 || die "'go' not found on PATH. Run scripts/local-cluster/install-prereqs.sh (Go >= 1.21 needed; kwok $KWOK_VERSION needs a Go 1.26 toolchain, which 'go' fetches from the module proxy when GOTOOLCHAIN=auto)."

export CGO_ENABLED=0
# Keep the user's GOFLAGS out of our way, but stay reproducible and read-only
# with respect to go.mod/go.sum.
export GOFLAGS="-mod=readonly -buildvcs=false"
GO_LDFLAGS_BASE="-s -w"

# complete DIR [FILE...]: DIR was fully built and holds every FILE (a cache
# from an older build.sh may lack binaries added since).
complete() {
  local d=$1 f
  [[ -f $d/.complete ]] || return 1
  shift
  for f in "$@"; do [[ -x $d/$f ]] || return 1; done
}
KUBE_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
ETCD_BINS=(etcd etcdctl)

build_upstream_and_tools() {
  local tools_dir need_kube=0 need_etcd=0 need_tools=0
  tools_dir=$(tools_bin_dir)
  if [[ $FORCE == 1 ]] || ! complete "$KUBE_BIN_DIR" "${KUBE_BINS[@]}"; then need_kube=1; fi
  if [[ $FORCE == 1 ]] || ! complete "$ETCD_BIN_DIR" "${ETCD_BINS[@]}"; then need_etcd=1; fi
  if [[ $FORCE == 1 ]] || ! complete "$tools_dir"; then need_tools=1; fi
  if [[ $need_kube == 0 && $need_etcd == 0 && $need_tools == 0 ]]; then
    return 0
  fi

  grep -q "k8s.io/kubernetes $KUBE_VERSION\$" "$LC_DIR/go.mod" ||
    die "go.mod does not require k8s.io/kubernetes $KUBE_VERSION (lib.sh and go.mod disagree)"
  grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION\$" "$LC_DIR/go.mod" ||
    die "go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION (lib.sh and go.mod disagree)"

  local pkgs=() what=()
  if [[ $need_kube == 1 ]]; then
    local b
    for b in "${KUBE_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    what+=("kubernetes $KUBE_VERSION (${KUBE_BINS[*]})")
  fi
  if [[ $need_etcd == 1 ]]; then pkgs+=(./etcd go.etcd.io/etcd/etcdctl/v3); what+=("etcd $ETCD_VERSION (etcd, etcdctl)"); fi
  if [[ $need_tools == 1 ]]; then pkgs+=(./provisioner ./pki ./nodeproxy); what+=("sandstore-local-{provisioner,pki,nodeproxy}"); fi

  local v=$KUBE_VERSION minor
  minor=${v#v1.}; minor=${minor%%.*}
  local ldflags="$GO_LDFLAGS_BASE"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitCommit=$KUBE_GIT_COMMIT -X $p.gitTreeState=clean -X $p.buildDate=$KUBE_BUILD_DATE"
  done
  ldflags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"

  local tmp start
  tmp=$(mktemp -d "$CACHE_DIR/.build.XXXXXX")
  log "building ${what[*]}"
  log "  (one 'go build' from $LC_DIR/go.mod; a cold build downloads modules and compiles for several minutes)"
  start=$(now_ms)
  if ! (cd "$LC_DIR" && go build -trimpath -ldflags="$ldflags" -o "$tmp/" "${pkgs[@]}"); then
    rm -rf "$tmp"
    die "go build failed (see output above)"
  fi
  log "  built in $(elapsed "$start")"

  install_dir() { # install_dir DEST FILE=NAME...
    local dest=$1; shift
    rm -rf "$dest"; mkdir -p "$dest"
    local f
    for f in "$@"; do # SRC=DEST (DEST empty: same name)
      local src=${f%%=*} to=${f#*=}
      mv "$tmp/$src" "$dest/${to:-$src}"
    done
    date -u +%FT%TZ >"$dest/.complete"
  }
  if [[ $need_kube == 1 ]]; then
    install_dir "$KUBE_BIN_DIR" "${KUBE_BINS[@]/%/=}"
  fi
  if [[ $need_etcd == 1 ]]; then install_dir "$ETCD_BIN_DIR" "${ETCD_BINS[@]/%/=}"; fi
  if [[ $need_tools == 1 ]]; then
    install_dir "$tools_dir" provisioner=sandstore-local-provisioner pki=sandstore-local-pki nodeproxy=sandstore-local-nodeproxy
  fi
  rm -rf "$tmp"
}

# build_into DEST_DIR BINARY WHAT BUILDER [ARG...]: unless DEST_DIR is a
# complete cache of BINARY, `BUILDER ARG... TMP` writes TMP/BINARY (TMP a
# fresh directory), which then replaces DEST_DIR's.
build_into() {
  local dest=$1 bin=$2 purpose=$3 tmp start
  shift 3
  if [[ $FORCE == 0 ]] && complete "$dest" "$bin"; then return 0; fi
  tmp=$(mktemp -d "$CACHE_DIR/.build.XXXXXX")
  log "building $bin ($purpose)"
  start=$(now_ms)
  if ! "$@" "$tmp"; then
    rm -rf "$tmp"
    die "building $bin failed (see output above)"
  fi
  log "  built in $(elapsed "$start")"
  rm -rf "$dest"; mkdir -p "$dest"
  mv "$tmp/$bin" "$dest/$bin"
  date -u +%FT%TZ >"$dest/.complete"
  rm -rf "$tmp"
}

# go_install_into DEST_DIR BINARY PACKAGE@VERSION [LDFLAGS]: a program built
# with its own module's go.mod (`go install pkg@version`), kept apart from ours.
go_install_into() {
  build_into "$1" "$2" "go install $3" go_install_to "$3" "${4:-}"
}
go_install_to() { # PACKAGE@VERSION LDFLAGS DIR
  (cd "$3" && GOFLAGS=-buildvcs=false GOBIN="$3" go install -trimpath -ldflags="$GO_LDFLAGS_BASE $2" "$1")
}

build_kwok() {
  go_install_into "$KWOK_BIN_DIR" kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
}

build_coredns() {
  go_install_into "$COREDNS_BIN_DIR" coredns "github.com/coredns/coredns@$COREDNS_VERSION"
}

build_kube_router() {
  go_install_into "$KUBE_ROUTER_BIN_DIR" kube-router "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION" \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
}

# rancher local-path-provisioner, built from a copy of its module's source
# (as the module proxy serves it) with local-path/qualifier.go added; go
# install cannot add a file, and -overlay may not touch the module cache.
build_local_path() {
  build_into "$(local_path_bin_dir)" local-path-provisioner "$LOCAL_PATH_VERSION: its module's source + local-path/qualifier.go" \
    local_path_build
}
local_path_build() { # DIR
  local src
  # outside any module: nothing is added to our go.mod / go.sum
  src=$(cd "$1" && GOFLAGS="" go mod download -json "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') && [[ -f $src/provisioner.go ]] || return 1
  cp -R "$src" "$1/src" && chmod -R u+w "$1/src" && rm -rf "$1/src/vendor" && # the zip's vendor/ is empty
    cp "$LC_DIR/local-path/qualifier.go" "$1/src/zz_sandstore_local_cluster.go" &&
    (cd "$1/src" && GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -tags sandstore_local_cluster \
      -ldflags="$GO_LDFLAGS_BASE -X main.VERSION=$LOCAL_PATH_VERSION" -o "$1/local-path-provisioner" .)
}

link_bin() {
  local tools_dir f
  tools_dir=$(tools_bin_dir)
  mkdir -p "$CACHE_DIR/bin"
  for f in "$KUBE_BIN_DIR"/* "$ETCD_BIN_DIR"/* "$KWOK_BIN_DIR"/* "$COREDNS_BIN_DIR"/* "$KUBE_ROUTER_BIN_DIR"/* "$tools_dir"/* "$(local_path_bin_dir)"/*; do
    ln -sfn "$f" "$CACHE_DIR/bin/$(basename "$f")"
  done
}

do_build() {
  local start
  start=$(now_ms)
  local cold=0
  complete "$KUBE_BIN_DIR" "${KUBE_BINS[@]}" && complete "$ETCD_BIN_DIR" "${ETCD_BINS[@]}" && complete "$KWOK_BIN_DIR" &&
    complete "$COREDNS_BIN_DIR" coredns && complete "$KUBE_ROUTER_BIN_DIR" kube-router && complete "$(tools_bin_dir)" && complete "$(local_path_bin_dir)" local-path-provisioner || cold=1
  [[ $FORCE == 1 ]] && cold=1
  if [[ $cold == 1 ]]; then
    log "$(go version) ; cache: $CACHE_DIR"
  fi
  build_upstream_and_tools
  build_kwok
  build_coredns
  build_kube_router
  build_local_path
  link_bin
  if [[ $cold == 1 ]]; then log "all binaries ready in $(elapsed "$start")"; fi
}

mkdir -p "$CACHE_DIR"
with_lock "$CACHE_DIR/.build.lock" do_build
