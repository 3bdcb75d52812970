#!/usr/bin/env bash
# A real Docker engine and an authenticated registry on this machine, for Flow 1's tests and
# benchmark (`npm run image`, `update --build`); never the operator's own Docker.
#
#   docker-engine.sh up [--source DIR]  start dockerd and the registry (if not running), make the
#                                       offline base images; print the env (below) on stdout
#   docker-engine.sh env                print the env of a running engine
#   docker-engine.sh readonly on|off    restart the registry with maintenance.readonly (pushes refused)
#   docker-engine.sh down [--purge]     stop both; leave no process, mount or network behind
#                                       (--purge: also the daemon's data root and the registry's storage)
#
# dockerd (Debian's docker.io, 20.10): its own data root, exec root, pidfile and unix socket, no TCP
# listener, --bridge=none --iptables=false --ip6tables=false --ip-masq=false (no bridge, no NAT, no
# iptables rule: host networking is not touched); build containers get no network at all.
# The registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1:5001 (5000 is the local
# cluster's), htpasswd (bcrypt) authentication, plain HTTP: docker treats 127.0.0.0/8 as an insecure
# registry by default, so no TLS is needed (and the local cluster's node trusts it in its hosts.toml).
#
# Offline base images, under the names upstream's deploy/docker/Dockerfile starts FROM (Docker Hub is
# unreachable here, and the build containers have no network):
#   golang:1.24-alpine  Go 1.24.13 (golang.org/toolchain from the Go module proxy, the toolchain
#                       `GOTOOLCHAIN` fetches), Debian's busybox-static for Alpine's userland, and a
#                       module cache pre-filled from the Go module proxy for the checkout's go.sum,
#                       with GOPROXY=off (upstream's `go mod download` step then reads that cache)
#   alpine:latest       Debian's busybox-static with a link per applet
# Both are `docker import`ed from tar files made here, labelled with a hash of their inputs, and
# remade when an input changes. docs/image.md says what differs from upstream and why.
#
# Env printed (KEY=value, one a line): DOCKER_HOST, SANDSTORE_AUTH_REGISTRY, SANDSTORE_AUTH_REGISTRY_USER,
# SANDSTORE_AUTH_REGISTRY_PASSWORD. Progress goes to stderr. The docker CLI used by the caller needs its
# own DOCKER_CONFIG (tests log in there, never in ~/.docker).
set -euo pipefail
# shellcheck source=scripts/local-cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/local-cluster/lib.sh"
log() { printf '[docker-engine] %s\n' "$*" >&2; }
die() { printf '[docker-engine] ERROR: %s\n' "$*" >&2; exit 1; }

GO_BUILDER_TOOLCHAIN=go1.24.13 # the newest 1.24 patch: what golang:1.24-alpine would carry
ENGINE_STATE=$STATE_ROOT/docker-engine
ENGINE_CACHE=$CACHE_DIR/docker-engine
DATA_ROOT=$ENGINE_CACHE/data
EXEC_ROOT=/run/sandstore-deploy-docker # short: containerd's socket lives under it (108-byte limit)
SOCK=$ENGINE_STATE/docker.sock
DOCKERD_PIDFILE=$ENGINE_STATE/dockerd.pid
DOCKERD_LOG=$ENGINE_STATE/dockerd.log
REG_STATE=$ENGINE_STATE/registry
REG_STORAGE=$ENGINE_CACHE/registry
REG_USER=sandstore
DOCKERD=$(command -v dockerd || true)
REG_BIN=$(command -v docker-registry || true)
# The daemon's client: Debian's docker CLI (the engine's own version) with a config of ours.
DOCKER_CLI=/usr/bin/docker

dk() { DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$ENGINE_STATE/client "$DOCKER_CLI" "$@"; }

# ------------------------------------------------------------------ dockerd ---
dockerd_running() { [[ -n $DOCKERD ]] && pid_alive "$(cat "$DOCKERD_PIDFILE" 2>/dev/null)" "$DOCKERD"; }

start_dockerd() {
  [[ -n $DOCKERD && -x $DOCKER_CLI ]] || die "dockerd or $DOCKER_CLI not found (Debian package docker.io; run scripts/local-cluster/install-prereqs.sh)"
  mkdir -p "$ENGINE_STATE/client" "$DATA_ROOT" "$EXEC_ROOT"
  if dockerd_running; then return 0; fi
  rm -f "$DOCKERD_PIDFILE" "$SOCK"
  log "starting dockerd (data root $DATA_ROOT, socket $SOCK)"
  # Its own session; no TCP host; nothing that changes the host's network.
  setsid "$DOCKERD" --host "unix://$SOCK" --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
    --pidfile "$DOCKERD_PIDFILE" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
    --userland-proxy=false --storage-driver=overlay2 --exec-opt native.cgroupdriver=cgroupfs \
    --cgroup-parent=/sandstore-docker-engine --log-level=warn \
    </dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
  disown
  local i
  for ((i = 0; i < 300; i++)); do
    dk version --format '{{.Server.Version}}' >/dev/null 2>&1 && { log "dockerd $(dk version --format '{{.Server.Version}}') up"; return 0; }
    sleep 0.1
  done
  tail -n 20 "$DOCKERD_LOG" >&2
  die "dockerd did not answer on $SOCK within 30 s; see $DOCKERD_LOG"
}

stop_dockerd() {
  local pid i
  pid=$(cat "$DOCKERD_PIDFILE" 2>/dev/null || true)
  if dockerd_running; then
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do dockerd_running || break; sleep 0.1; done
    ! dockerd_running || die "dockerd (pid $pid) did not stop within 30 s"
    log "dockerd (pid $pid) stopped"
  fi
  rm -f "$DOCKERD_PIDFILE" "$SOCK"
  # dockerd unmounts its layers and stops its containerd when it stops; check, and clean what is left.
  local m
  while read -r m; do
    [[ -n $m ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m" || die "cannot unmount $m"
    log "unmounted $m (left by dockerd)"
  done < <(findmnt -rn -o TARGET | grep -E "^($DATA_ROOT|$EXEC_ROOT)(/|$)" | sort -r)
  rm -rf "$EXEC_ROOT"
}

# ----------------------------------------------------------------- registry ---
registry_running() { [[ -n $REG_BIN ]] && pid_alive "$(cat "$REG_STATE/pid" 2>/dev/null)" "$REG_BIN"; }

registry_config() { # READONLY: true|false
  printf '%s\n' "# written by scripts/docker-engine.sh" "version: 0.1" "log: {level: info, formatter: text}" \
    "storage:" "  filesystem: {rootdirectory: \"$REG_STORAGE\"}" "  delete: {enabled: true}" \
    "  maintenance: {readonly: {enabled: $1}, uploadpurging: {enabled: false}}" \
    "auth:" "  htpasswd: {realm: sandstore-test-registry, path: \"$REG_STATE/htpasswd\"}" \
    "http: {addr: \"$AUTH_REGISTRY_ADDR\"}"
}

registry_answers() { # GET /v2/ without credentials: 401 with a Basic challenge
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$AUTH_REGISTRY_ADDR/v2/" 2>/dev/null) || return 1
  [[ $code == 401 ]]
}

start_registry() { # READONLY
  [[ -n $REG_BIN ]] || die "docker-registry not found (Debian package docker-registry; run scripts/local-cluster/install-prereqs.sh)"
  command -v htpasswd >/dev/null || die "htpasswd not found (Debian package apache2-utils; run scripts/local-cluster/install-prereqs.sh)"
  mkdir -p "$REG_STATE" "$REG_STORAGE"
  chmod 700 "$REG_STATE"
  if [[ ! -s $REG_STATE/password ]]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$REG_STATE/password")
    htpasswd -B -b -c "$REG_STATE/htpasswd" "$REG_USER" "$(<"$REG_STATE/password")" 2>/dev/null
  fi
  if registry_running && cmp -s <(registry_config "$1") "$REG_STATE/config.yml"; then return 0; fi
  stop_registry
  ! port_in_use "${AUTH_REGISTRY_ADDR#*:}" || die "$AUTH_REGISTRY_ADDR is taken by a process that is not this script's registry"
  registry_config "$1" >"$REG_STATE/config.yml"
  local v unset=()
  for v in $(compgen -e); do [[ $v != REGISTRY_* ]] || unset+=(-u "$v"); done
  # shellcheck disable=SC2016
  setsid env "${unset[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$REG_STATE/pid" \
    "$REG_BIN" serve "$REG_STATE/config.yml" </dev/null >>"$REG_STATE/log" 2>&1 9>&- &
  disown
  local i
  for ((i = 0; i < 100; i++)); do
    registry_answers && { log "registry on http://$AUTH_REGISTRY_ADDR (htpasswd, readonly=$1)"; return 0; }
    sleep 0.1
  done
  tail -n 10 "$REG_STATE/log" >&2
  die "the registry did not answer on $AUTH_REGISTRY_ADDR; see $REG_STATE/log"
}

stop_registry() {
  local pid i
  pid=$(cat "$REG_STATE/pid" 2>/dev/null || true)
  if registry_running; then
    kill -TERM "$pid"
    for ((i = 0; i < 50; i++)); do registry_running || break; sleep 0.1; done
    if registry_running; then kill -KILL "$pid"; sleep 0.2; fi
    log "registry (pid $pid) stopped"
  fi
  rm -f "$REG_STATE/pid"
}

# -------------------------------------------------------------- base images ---
# import_image NAME KEY ROOTFS_FN [--change ...]: docker import a tar of the rootfs ROOTFS_FN makes,
# unless the daemon already has NAME made from the same inputs (label io.sandstore.recipe=KEY).
import_image() {
  local name=$1 key=$2 fn=$3 have dir
  shift 3
  have=$(dk image inspect --format '{{index .Config.Labels "io.sandstore.recipe"}}' "$name" 2>/dev/null || true)
  [[ $have != "$key" ]] || return 0
  dir=$(mktemp -d "$ENGINE_CACHE/rootfs.XXXXXX")
  "$fn" "$dir/root"
  log "docker import $name"
  tar -C "$dir/root" --numeric-owner --owner=0 --group=0 -c . |
    dk import --platform linux/amd64 --change "LABEL io.sandstore.recipe=$key" "$@" - "$name" >/dev/null
  rm -rf "$dir"
}

busybox_root() { # DIR: /bin/busybox (static) and a link per applet, /etc/passwd, /tmp
  local a bb
  bb=$(command -v busybox) || die "busybox not found (Debian package busybox-static)"
  ! readelf -l "$bb" | grep -q INTERP || die "$bb is dynamically linked: install Debian's busybox-static"
  mkdir -p "$1/bin" "$1/etc" "$1/tmp" "$1/root"
  chmod 1777 "$1/tmp"
  install -m 0755 "$bb" "$1/bin/busybox"
  for a in $("$bb" --list); do [[ $a == busybox ]] || ln -s busybox "$1/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$1/etc/group"
}

# Filled by base_images: the toolchain's and the module cache's directories on this machine.
TOOLCHAIN_DIR='' MODCACHE=''
golang_root() {
  busybox_root "$1"
  mkdir -p "$1/usr/local" "$1/go/pkg/mod/cache" "$1/go/src" "$1/go/bin"
  cp -a "$TOOLCHAIN_DIR" "$1/usr/local/go"
  # The module zip keeps no file modes: make its programs executable, as `GOTOOLCHAIN` switching does.
  chmod -R u+w "$1/usr/local/go"
  find "$1/usr/local/go/bin" "$1/usr/local/go/pkg/tool" -type f -exec chmod 0755 {} +
  cp -a "$MODCACHE/cache/download" "$1/go/pkg/mod/cache/download"
}
alpine_root() { busybox_root "$1"; }

base_images() { # SOURCE: the Sand Store checkout whose go.sum the module cache covers
  local src=$1 bb_hash key
  [[ -f $src/go.mod ]] || die "$src has no go.mod: pass --source <Sand Store checkout>"
  mkdir -p "$ENGINE_CACHE"
  # The toolchain and the checkout's modules, from the Go module proxy into a cache of our own.
  MODCACHE=$ENGINE_CACHE/gomod
  TOOLCHAIN_DIR=$(GOMODCACHE=$MODCACHE GOFLAGS=-mod=mod go mod download -json \
    "golang.org/toolchain@v0.0.1-$GO_BUILDER_TOOLCHAIN.linux-amd64" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -f $TOOLCHAIN_DIR/bin/go ]] || die "go mod download of the $GO_BUILDER_TOOLCHAIN toolchain failed"
  (cd "$src" && GOMODCACHE=$MODCACHE GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download) ||
    die "go mod download in $src failed (the builder image's module cache)"
  bb_hash=$(sha256sum "$(command -v busybox)" | cut -c1-16)
  import_image alpine:latest "alpine-$bb_hash-v1" alpine_root --change 'CMD ["/bin/sh"]'
  key="golang-$GO_BUILDER_TOOLCHAIN-$bb_hash-$(sha256sum "$src/go.sum" | cut -c1-16)-v1"
  import_image golang:1.24-alpine "$key" golang_root \
    --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' --change 'ENV GOPROXY=off' \
    --change 'ENV GOLANG_VERSION=1.24.13' --change 'WORKDIR /go' --change 'CMD ["/bin/sh"]'
}

print_env() {
  echo "DOCKER_HOST=unix://$SOCK"
  echo "SANDSTORE_AUTH_REGISTRY=$AUTH_REGISTRY_ADDR"
  echo "SANDSTORE_AUTH_REGISTRY_USER=$REG_USER"
  echo "SANDSTORE_AUTH_REGISTRY_PASSWORD=$(<"$REG_STATE/password")"
}

cmd=${1:-}
shift || true
case $cmd in
  up)
    src=${SANDSTORE_SOURCE:-$(cd "$LC_DIR/../../.." && pwd)/shared/sandstore}
    [[ ${1:-} != --source ]] || src=$2
    [[ $(id -u) == 0 ]] || die "dockerd needs root"
    with_lock "$ENGINE_STATE.lock" start_dockerd
    with_lock "$ENGINE_STATE.lock" start_registry false
    with_lock "$ENGINE_STATE.lock" base_images "$src"
    print_env
    ;;
  env)
    { dockerd_running && registry_running; } || die "not running: run scripts/docker-engine.sh up"
    print_env
    ;;
  readonly)
    [[ ${1:-} == on || ${1:-} == off ]] || die "usage: docker-engine.sh readonly on|off"
    with_lock "$ENGINE_STATE.lock" start_registry "$([[ $1 == on ]] && echo true || echo false)"
    ;;
  down)
    with_lock "$ENGINE_STATE.lock" stop_registry
    with_lock "$ENGINE_STATE.lock" stop_dockerd
    if [[ ${1:-} == --purge ]]; then rm -rf "$ENGINE_CACHE" "$ENGINE_STATE"; log "purged $ENGINE_CACHE and $ENGINE_STATE"; fi
    ;;
  *) die "usage: docker-engine.sh up [--source DIR] | env | readonly on|off | down [--purge]" ;;
esac
