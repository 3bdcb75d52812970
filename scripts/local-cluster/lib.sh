# shellcheck shell=bash
# Shared settings and helpers for scripts/local-cluster/*.sh. Sourced, not run.

# ---------------------------------------------------------------------------
# Pinned versions. KUBE_VERSION and ETCD_VERSION must match go.mod / go.sum in
# this directory (build.sh checks it); KWOK_VERSION is built with `go install`.
# ---------------------------------------------------------------------------
KUBE_VERSION=v1.28.15
KUBE_GIT_COMMIT=841856557ef0f6a399096c42635d114d6f2cf7f4
KUBE_BUILD_DATE=2024-10-22T20:26:26Z
ETCD_VERSION=v3.5.9
KWOK_VERSION=v0.8.0
# CoreDNS for the real node, built with `go install` from its own module
# (v1.11.4: the oldest 1.11 whose quic-go builds with Go 1.26).
COREDNS_VERSION=v1.11.4
# rancher local-path-provisioner: the real node's volumes (built from its own
# module by build.sh, plus one file: local-path/qualifier.go).
LOCAL_PATH_VERSION=v0.0.30
# kube-router: the real node's NetworkPolicy agent, its firewall only (`go install` from its own
# module; why this one and not kube-network-policies: README.md, "The real node").
KUBE_ROUTER_VERSION=v2.1.0
# Its helper pods' image (images.sh): Debian bookworm's busybox-static.
BUSYBOX_VERSION=1.35.0

LC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${SANDSTORE_CACHE_DIR:-$HOME/.cache/sandstore-deploy}
STATE_ROOT=${SANDSTORE_STATE_DIR:-$HOME/.local/state/sandstore-deploy}

KUBE_BIN_DIR=$CACHE_DIR/kubernetes-$KUBE_VERSION/bin
ETCD_BIN_DIR=$CACHE_DIR/etcd-$ETCD_VERSION/bin
KWOK_BIN_DIR=$CACHE_DIR/kwok-$KWOK_VERSION/bin
COREDNS_BIN_DIR=$CACHE_DIR/coredns-$COREDNS_VERSION/bin
KUBE_ROUTER_BIN_DIR=$CACHE_DIR/kube-router-$KUBE_ROUTER_VERSION/bin
# The image registry every local cluster shares (images.sh); the real node
# reaches it at the same address through nodeproxy.
REGISTRY_ADDR=127.0.0.1:5000
# The authenticated registry scripts/docker-engine.sh starts for Flow 1's tests (htpasswd, plain
# HTTP on loopback): the real node reaches and trusts it like the one above, pulling with a Secret.
AUTH_REGISTRY_ADDR=127.0.0.1:5001

# Process start order of the control plane (node.sh lists the real node's).
CONTROL_PLANE_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok-controller provisioner)

if [[ -t 2 ]]; then _c_b=$'\e[1m' _c_r=$'\e[31m' _c_y=$'\e[33m' _c_0=$'\e[0m'; else _c_b= _c_r= _c_y= _c_0=; fi
log() { printf '%s[local-cluster]%s %s\n' "$_c_b" "$_c_0" "$*" >&2; }
warn() { printf '%s[local-cluster] WARNING:%s %s\n' "$_c_y" "$_c_0" "$*" >&2; }
die() { printf '%s[local-cluster] ERROR:%s %s\n' "$_c_r" "$_c_0" "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }
# elapsed START_MS -> "12.3s"
elapsed() { local d=$(($(now_ms) - $1)); printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100)); }

# Content hash of the sources of the small local Go tools (provisioner, pki):
# they live in this repo and change more often than the pinned upstream bits.
tools_hash() {
  (cd "$LC_DIR" && cat go.mod go.sum provisioner/*.go pki/*.go nodeproxy/*.go | sha256sum | cut -c1-12)
}
tools_bin_dir() { echo "$CACHE_DIR/local-tools-$(tools_hash)/bin"; }
# local-path-provisioner's build: its version and the one file added to it.
local_path_bin_dir() {
  echo "$CACHE_DIR/local-path-provisioner-$LOCAL_PATH_VERSION-$(sha256sum "$LC_DIR/local-path/qualifier.go" | cut -c1-12)/bin"
}

# parse_name_arg "$@" -> sets NAME (default sandstore-local) and REST_ARGS.
parse_name_arg() {
  NAME=sandstore-local
  REST_ARGS=()
  while [[ $# -gt 0 ]]; do
    case $1 in
      --name) [[ $# -ge 2 ]] || die "--name needs a value"; NAME=$2; shift 2 ;;
      --name=*) NAME=${1#--name=}; shift ;;
      *) REST_ARGS+=("$1"); shift ;;
    esac
  done
  [[ $NAME =~ ^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$ ]] ||
    die "invalid --name '$NAME': use 1-40 chars of [a-z0-9-], starting and ending alphanumeric"
  CLUSTER_DIR=$STATE_ROOT/clusters/$NAME
}

# The kubeconfig file the context is merged into: first entry of $KUBECONFIG,
# else ~/.kube/config.
user_kubeconfig() {
  local first=${KUBECONFIG:-}
  first=${first%%:*}
  if [[ -n $first ]]; then echo "$first"; else echo "$HOME/.kube/config"; fi
}

# Run a command holding an exclusive lock (serialises kubeconfig edits and
# builds between concurrent up.sh / down.sh runs).
with_lock() {
  local lockfile=$1; shift
  mkdir -p "$(dirname "$lockfile")"
  if command -v flock >/dev/null 2>&1; then
    (
      flock -w 1800 9 || die "timed out waiting for lock $lockfile"
      "$@"
    ) 9>"$lockfile"
  else
    "$@"
  fi
}

# pid_alive PID BINARY_PATH: the pid exists, is not a zombie and is still
# running that binary (guards against pid reuse).
pid_alive() {
  local pid=$1 bin=$2 exe stat state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -d /proc/$pid ]] || return 0 # no procfs: trust kill -0
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  state=${stat##*) }
  state=${state%% *}
  [[ $state != Z && $state != X ]] || return 1
  if exe=$(readlink "/proc/$pid/exe" 2>/dev/null); then
    exe=${exe% (deleted)}
    [[ $exe == "$(readlink -f "$bin")" ]]
  else
    [[ $(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1) == "$bin" ]]
  fi
}

# port_in_use PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
