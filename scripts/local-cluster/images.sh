#!/usr/bin/env bash
# Container images for the local cluster's real node, built offline with crane
# (go-containerregistry) and served by a registry on 127.0.0.1:5000 that all
# local clusters share. Same inputs -> same digest (deterministic tar layers,
# no timestamps). Each image is kept as an OCI layout in
# $SANDSTORE_CACHE_DIR/images/<key>/ (<key> hashes all its inputs), so an
# emptied or restarted registry is refilled by a push, without rebuilding.
# Usage: images.sh ensure [NAME:TAG...]  registry up, build what changed, push what is missing;
#                                        stdout: the image references (localhost:5000/NAME:TAG)
#        images.sh status                registry up? each image present, with digest
#        images.sh stop-registry         stop the registry started here (TERM, KILL after 5 s)
# Env:   SANDSTORE_SOURCE (Sand Store checkout; default: shared/sandstore in an ancestor
#        directory of the repository, else /work/shared/sandstore), SANDSTORE_CACHE_DIR, SANDSTORE_STATE_DIR
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
umask 022 # the layers' file modes are those of the files created here

# The images: NAME:TAG, root filesystem (rootfs_<x> + inputs_<x> below), Go
# tags for Sand Store ("-": none), config (cfg_<x> below). Rows with the same
# rootfs and tags share their one layer.
PAUSE_VERSION=3.9
IMAGES=(
  "pause:$PAUSE_VERSION                    pause  -          pause"
  "etcd:$ETCD_VERSION                      etcd   -          etcd"
  "sandstore-node:local-node-latest        node   grpc,etcd  node"
  "sandstore-node:local-node-crash         node   grpc,etcd  node_crash"
  "sandstore-node:local-node-never-ready   node   grpc,etcd  node_never_ready"
  "busybox:$BUSYBOX_VERSION                busybox -          busybox"
  "kube-api-probe:v1                       apiprobe -         apiprobe"
  "sandstore-role-label:v1                 rolelabel -        rolelabel"
)
CRANE_VERSION=v0.20.2
# Loopback only: the registry has no authentication. Debian's docker-registry
# package also ships a service and /etc/docker/registry/config.yml; they are
# never used (on a systemd host that service may hold :5000: stop it).
REF_PREFIX=localhost:5000 # what pods pull: the same registry
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

SELF=$LC_DIR/images.sh
CRANE=$CACHE_DIR/crane-$CRANE_VERSION/bin/crane
IMG_CACHE=$CACHE_DIR/images
REG_DIR=$STATE_ROOT/registry
REG_PIDFILE=$REG_DIR/registry.pid REG_LOG=$REG_DIR/registry.log REG_CONF=$REG_DIR/config.yml
BUILD_LOG=$STATE_ROOT/images/build.log
REG_BIN=$(command -v docker-registry || true)

cr() { "$CRANE" --insecure "$@"; } # --insecure: plain HTTP to our loopback registry
sha() { sha256sum "$@" | cut -c1-64; }
# crane's --entrypoint/--cmd take CSV lists: quote every element.
csv() { local o='' e; for e in "$@"; do o+=${o:+,}\"${e//\"/\"\"}\"; done; printf '%s' "$o"; }

# step WHAT CMD...: CMD's output goes to the build log; on failure show its
# tail and stop with one sentence.
step() {
  local what=$1; shift
  printf '===== %s %s\n' "$(date -u +%FT%TZ)" "$what" >>"$BUILD_LOG"
  "$@" >>"$BUILD_LOG" 2>&1 && return 0
  tail -n 15 "$BUILD_LOG" >&2
  die "$what failed; full output in $BUILD_LOG"
}

# ----------------------------------------------------------------- inputs ---
find_sandstore_source() {
  [[ -z ${SANDSTORE_DIR-} ]] || return 0
  local d cands=()
  if [[ -n ${SANDSTORE_SOURCE-} ]]; then cands=("$SANDSTORE_SOURCE"); else
    d=$(cd "$LC_DIR/../.." && pwd) # the repository root; look in each ancestor
    while [[ $d != / ]]; do d=$(dirname "$d"); cands+=("$d/shared/sandstore"); done
    cands+=(/work/shared/sandstore) # CI clones the repo elsewhere on this machine
  fi
  for d in "${cands[@]}" ""; do [[ -f $d/go.mod ]] && break; done
  [[ -n $d || -z ${SANDSTORE_SOURCE-} ]] || die "SANDSTORE_SOURCE=$SANDSTORE_SOURCE has no go.mod; point it at a Sand Store checkout"
  [[ -n $d ]] || die "Sand Store source not found (no shared/sandstore in any ancestor directory of the repository, nor /work/shared/sandstore); set SANDSTORE_SOURCE to a Sand Store checkout"
  grep -qx 'module github.com/AnishMulay/sandstore' "$d/go.mod" ||
    die "$d is not Sand Store (its go.mod is not module github.com/AnishMulay/sandstore); set SANDSTORE_SOURCE"
  SANDSTORE_DIR=$(cd "$d" && pwd)
}

# inputs_<x> TAGS: append to INPUTS what the image's content depends on
# (memoised: computed once per run). lib.sh is not hashed: it only supplies
# paths and versions, and the binaries they lead to are hashed.
inputs_pause() {
  if [[ -z ${PAUSE_C-} ]]; then
    local dir
    dir=$(cd "$LC_DIR" && GOFLAGS=-mod=readonly go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') ||
      die "'go mod download k8s.io/kubernetes@$KUBE_VERSION' (for pause.c) failed (see above)"
    PAUSE_C=$dir/build/pause/linux/pause.c
    [[ -f $PAUSE_C ]] || die "$PAUSE_C not found (module k8s.io/kubernetes@$KUBE_VERSION)"
  fi
  INPUTS+="pause.c $(sha "$PAUSE_C") gcc $(gcc -dumpfullversion) $(strip --version | head -n1)"$'\n'
}
inputs_etcd() {
  [[ -x $ETCD_BIN_DIR/etcd && -x $ETCD_BIN_DIR/etcdctl ]] || die "$ETCD_BIN_DIR/etcd or etcdctl missing (run build.sh)"
  INPUTS+="etcd $(sha "$ETCD_BIN_DIR/etcd") etcdctl $(sha "$ETCD_BIN_DIR/etcdctl")"$'\n'
}
inputs_node() {
  find_sandstore_source
  BUSYBOX=$(command -v busybox) || die "busybox not found (Debian package busybox-static; run install-prereqs.sh)"
  # every file of the tree except .git, in sorted order, names and contents
  [[ -n ${SRC_HASH-} ]] || SRC_HASH=$(cd "$SANDSTORE_DIR" &&
    find . -name .git -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha)
  [[ -n ${BUSYBOX_HASH-} ]] || BUSYBOX_HASH=$(sha "$BUSYBOX")
  INPUTS+="sandstore-source $SRC_HASH $GOVERSION tags $1 busybox $BUSYBOX_HASH"$'\n'
}
inputs_busybox() {
  BUSYBOX=$(command -v busybox) || die "busybox not found (Debian package busybox-static; run install-prereqs.sh)"
  [[ $("$BUSYBOX" | head -n1) == "BusyBox v$BUSYBOX_VERSION "* ]] ||
    die "$BUSYBOX is not BusyBox $BUSYBOX_VERSION (lib.sh's BUSYBOX_VERSION, the image's tag): $("$BUSYBOX" | head -n1)"
  [[ -n ${BUSYBOX_HASH-} ]] || BUSYBOX_HASH=$(sha "$BUSYBOX")
  INPUTS+="busybox $BUSYBOX_HASH"$'\n'
}
inputs_apiprobe() { # image_key has set GOVERSION
  INPUTS+="apiprobe $(cat "$LC_DIR"/apiprobe/*.go | sha) $GOVERSION"$'\n'
}
inputs_rolelabel() { # image_key has set GOVERSION
  INPUTS+="rolelabel $(cat "$LC_DIR"/rolelabel/*.go | sha) $GOVERSION"$'\n'
}
# image_key ROOTFS TAGS CFG -> KEY, and INPUTS (kept readable next to the image)
image_key() {
  [[ -n ${GOVERSION-} ]] || read -r GOVERSION GOARCH < <(go env GOVERSION GOARCH | paste -sd' ')
  INPUTS="recipe $(sha "$SELF") crane $CRANE_VERSION linux/$GOARCH rootfs $1 tags $2 config $3"$'\n'
  "inputs_$1" "$2"
  KEY=$(printf '%s' "$INPUTS" | sha)
}

# ----------------------------------------------------------------- rootfs ---
# rootfs_<x> DIR TAGS: the image's files (all owned by root in the layer).
base_files() { # DIR SHELL: /etc/passwd and /etc/group (root, nobody, nonroot 65532), /tmp
  mkdir -p "$1/etc" "$1/tmp"
  chmod 1777 "$1/tmp"
  printf '%s\n' "root:x:0:0:root:/root:$2" "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin" \
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin" >"$1/etc/passwd"
  printf '%s\n' root:x:0: nobody:x:65534: nonroot:x:65532: >"$1/etc/group"
}
rootfs_pause() { # Kubernetes' own pause, compiled as its build/pause/Makefile does
  step "compiling pause.c" gcc -Os -Wall -Werror -static -DVERSION="$PAUSE_VERSION" -o "$1/pause" "$PAUSE_C"
  step "stripping pause" strip "$1/pause"
}
rootfs_etcd() { # laid out like quay.io/coreos/etcd (distroless/static): no shell
  mkdir -p "$1/usr/local/bin" "$1/var/etcd" "$1/var/lib/etcd"
  install -m 0755 "$ETCD_BIN_DIR/etcd" "$ETCD_BIN_DIR/etcdctl" "$1/usr/local/bin/"
  base_files "$1" /sbin/nologin
}
rootfs_node() { # upstream's Dockerfile runner stage, with busybox for Alpine's userland
  sandstore_bins "$2"
  mkdir -p "$1/usr/local/bin" "$1/var/lib/sandstore/data" "$1/var/lib/sandstore/logs"
  install -m 0755 "$SS_BINS/sandstore" "$SS_BINS/smoke" "$SS_BINS/durability_smoke" "$1/usr/local/bin/"
  busybox_userland "$1"
  base_files "$1" /bin/sh
}
busybox_userland() { # DIR: /bin/busybox (static) and a link per applet
  local a
  ! readelf -l "$BUSYBOX" | grep -q INTERP || die "$BUSYBOX is dynamically linked: install Debian's busybox-static"
  mkdir -p "$1/bin"
  install -m 0755 "$BUSYBOX" "$1/bin/busybox"
  for a in $("$BUSYBOX" --list); do [[ $a == busybox ]] || ln -s busybox "$1/bin/$a"; done
}
# busybox: local-path-provisioner's helper pods run its setup/teardown
# scripts (sh, mkdir, rm) with it, as upstream's busybox image does.
rootfs_busybox() {
  busybox_userland "$1"
  base_files "$1" /bin/sh
}
# apiprobe: the e2e suite's in-cluster API client (apiprobe/main.go), standard
# library only, static; like the etcd image, no shell.
rootfs_apiprobe() {
  mkdir -p "$1/usr/local/bin"
  step "go build ./apiprobe" env CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
    go -C "$LC_DIR" build -trimpath -ldflags="-s -w" -o "$1/usr/local/bin/kube-api-probe" ./apiprobe
  base_files "$1" /sbin/nologin
}
# rolelabel: the sidecar that keeps a Sand Store pod's Raft role label
# (rolelabel/main.go), standard library only, static; no shell.
rootfs_rolelabel() {
  mkdir -p "$1/usr/local/bin"
  step "go build ./rolelabel" env CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
    go -C "$LC_DIR" build -trimpath -ldflags="-s -w" -o "$1/usr/local/bin/sandstore-role-label" ./rolelabel
  base_files "$1" /sbin/nologin
}
# sandstore_bins TAGS -> SS_BINS (sandstore, smoke, durability_smoke): built
# once per source, Go version and tags, shared by every image using them.
sandstore_bins() {
  SS_BINS=$CACHE_DIR/sandstore-bin/$(printf '%s' "$SRC_HASH $GOVERSION $1" | sha | cut -c1-16)
  [[ ! -f $SS_BINS/.complete ]] || return 0
  log "building Sand Store from $SANDSTORE_DIR (tags '$1'; cold: about 3 minutes)"
  local t0 tmp tagflag=()
  t0=$(now_ms) tmp=$(mktemp -d "$TMP/bin.XXXXXX")
  [[ $1 == - ]] || tagflag=(-tags "$1")
  export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" # static; never writes to the source
  step "go build ./cmd/sandstore" go -C "$SANDSTORE_DIR" build -trimpath "${tagflag[@]}" -o "$tmp/sandstore" ./cmd/sandstore
  # like upstream, the clients are built without the server's tags
  step "go build ./clients/open_smoke" go -C "$SANDSTORE_DIR" build -trimpath -o "$tmp/smoke" ./clients/open_smoke
  step "go build ./clients/durability_smoke" go -C "$SANDSTORE_DIR" build -trimpath -o "$tmp/durability_smoke" ./clients/durability_smoke
  echo "$SANDSTORE_DIR tags=$1 $GOVERSION" >"$tmp/.complete"
  rm -rf "$SS_BINS"; mkdir -p "$(dirname "$SS_BINS")"; mv -T "$tmp" "$SS_BINS"
  log "  built in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- configs ---
# cfg_<x>: crane mutate flags, i.e. the image config (no timestamps are set).
cfg_busybox() { CFG=(--env "PATH=$IMAGE_PATH" --cmd /bin/sh); }
cfg_apiprobe() { CFG=(--entrypoint /usr/local/bin/kube-api-probe --user 65532:65532); }
cfg_rolelabel() { CFG=(--entrypoint /usr/local/bin/sandstore-role-label --user 65532:65532); }
cfg_pause() { CFG=(--entrypoint /pause --user 65535:65535); }
cfg_etcd() { CFG=(--env "PATH=$IMAGE_PATH" --cmd /usr/local/bin/etcd --workdir /var/lib/etcd --exposed-ports 2379/tcp --exposed-ports 2380/tcp); }
cfg_node() { CFG=(--entrypoint "${1:-/usr/local/bin/sandstore}" --env "PATH=$IMAGE_PATH" --label io.sandstore.topology=hyperconverged); }
# Crash: the pod's args (--server node) are appended to this entrypoint, and
# the real sandstore rejects the undefined flag before anything else ("flag
# provided but not defined: -local-cluster-crash" and its usage on stderr, exit 2).
cfg_node_crash() { cfg_node "$(csv /usr/local/bin/sandstore --local-cluster-crash)"; }
# Never ready: busybox sh execs the real sandstore with the pod's args plus a
# trailing --listen (the last flag wins over LISTEN_ADDR and any earlier
# --listen): it runs normally but never accepts connections on 8080, so the
# TCP probes fail while the process keeps running.
# shellcheck disable=SC2016
cfg_node_never_ready() { cfg_node "$(csv /bin/sh -c 'exec /usr/local/bin/sandstore "$@" --listen=:18080' sandstore)"; }

# --------------------------------------------------------------- registry ---
registry_answers() ( # GET /v2/ answers as a distribution (v2) registry does
  exec 3<>"/dev/tcp/${REGISTRY_ADDR%:*}/${REGISTRY_ADDR#*:}" || exit 1
  printf 'GET /v2/ HTTP/1.0\r\nHost: %s\r\n\r\n' "$REGISTRY_ADDR" >&3
  r=$(timeout 3 cat <&3) || exit 1
  [[ $r == HTTP/1.?' 200'* && ${r,,} == *'docker-distribution-api-version: registry/2.0'* ]]
) 2>/dev/null
registry_running() { [[ -n $REG_BIN ]] && pid_alive "$(cat "$REG_PIDFILE" 2>/dev/null)" "$REG_BIN"; }
registry_config() { # the same for every checkout sharing the cache (no paths of this repo in it)
  printf '%s\n' "# written by scripts/local-cluster/images.sh" "version: 0.1" "log: {level: info, formatter: text}" "storage:" \
    "  filesystem: {rootdirectory: \"$CACHE_DIR/registry\"}" "  delete: {enabled: true}" "http: {addr: \"$REGISTRY_ADDR\"}"
}

stop_registry() {
  local pid i
  pid=$(cat "$REG_PIDFILE" 2>/dev/null || true)
  if registry_running; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do registry_running || break; sleep 0.1; done
    if registry_running; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
    ! registry_running || die "the registry (pid $pid) did not stop"
    log "registry (pid $pid) stopped"
  else log "the registry is not running"; fi
  rm -f "$REG_PIDFILE"
}

ensure_registry() {
  [[ -n $REG_BIN ]] || die "docker-registry not found (Debian package docker-registry; run install-prereqs.sh)"
  mkdir -p "$REG_DIR" "$CACHE_DIR/registry"
  local i pid='' unset=() v
  if registry_running; then
    if cmp -s <(registry_config) "$REG_CONF"; then
      for ((i = 0; i < 50; i++)); do registry_answers && return 0; sleep 0.2; done
      die "the registry (pid $(cat "$REG_PIDFILE")) runs but does not answer http://$REGISTRY_ADDR/v2/; see $REG_LOG"
    fi
    log "the registry's configuration changed: restarting it"
    stop_registry
  fi
  ! port_in_use "${REGISTRY_ADDR#*:}" ||
    die "$REGISTRY_ADDR is taken by a process that is not the registry started by images.sh (no live pid in $REG_PIDFILE); stop it or free the port"
  registry_config >"$REG_CONF"
  rm -f "$REG_PIDFILE"
  printf '===== %s starting registry =====\n' "$(date -u +%FT%TZ)" >>"$REG_LOG"
  # As up.sh's start_component: own session, stdio to the log only, pid file
  # written by the process itself, fd 9 (our flock) closed, and so is any
  # other inherited fd (a caller's pipe would never see EOF). REGISTRY_* env
  # vars would override the config file, so they are dropped.
  for v in $(compgen -e); do [[ $v != REGISTRY_* ]] || unset+=(-u "$v"); done
  # shellcheck disable=SC2016
  setsid env "${unset[@]}" bash -c 'echo $$ >"$0"
    for fd in /proc/$$/fd/*; do fd=${fd##*/}; ((fd > 2)) && eval "exec $fd>&-"; done
    exec "$@"' "$REG_PIDFILE" "$REG_BIN" serve "$REG_CONF" </dev/null >>"$REG_LOG" 2>&1 9>&- &
  disown
  for ((i = 0; i < 150; i++)); do
    [[ -n $pid ]] || pid=$(cat "$REG_PIDFILE" 2>/dev/null || true)
    registry_answers && { log "registry started (pid $pid) on http://$REGISTRY_ADDR, storage $CACHE_DIR/registry"; return 0; }
    [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || break # it exited
    sleep 0.1
  done
  tail -n 10 "$REG_LOG" >&2
  die "the registry did not come up on $REGISTRY_ADDR; see $REG_LOG"
}

ensure_crane() {
  [[ ! -x $CRANE ]] || return 0
  log "building crane $CRANE_VERSION (go install github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION)"
  local tmp; tmp=$(mktemp -d "$TMP/crane.XXXXXX")
  (cd "$tmp" && GOFLAGS=-buildvcs=false GOBIN=$tmp CGO_ENABLED=0 step "building crane" \
    go install -trimpath -ldflags="-s -w" "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION")
  mkdir -p "$(dirname "$CRANE")"; mv "$tmp/crane" "$CRANE"
}

# ----------------------------------------------------------------- images ---
# build_image REF ROOTFS TAGS CFG (KEY set): layer tar -> crane append + mutate
# (crane edits configs only in a registry: a build tag, deleted afterwards)
# -> OCI layout in $IMG_CACHE/$KEY.
build_image() {
  local ref=$1 repo=${1%:*} layer=$TMP/layer-$2-${3//[^a-z0-9]/_}.tar digest out root top
  local work=$REGISTRY_ADDR/$repo:build-${KEY:0:16}
  log "building $REF_PREFIX/$ref (key ${KEY:0:12})"
  if [[ ! -f $layer ]]; then
    root=$layer.d && mkdir -m 0755 "$root"
    "rootfs_$2" "$root" "$3"
    mapfile -t top < <(cd "$root" && LC_ALL=C ls -A)
    step "tar of the $2 layer" tar --create --file "$layer" --directory "$root" --format=gnu \
      --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -- "${top[@]}"
  fi
  "cfg_$4"
  step "crane append ($ref)" cr append --oci-empty-base -f "$layer" -t "$work"
  step "crane mutate ($ref)" cr mutate "$work" --set-platform "linux/$GOARCH" "${CFG[@]}" -t "$REGISTRY_ADDR/$ref"
  digest=$(cr digest "$REGISTRY_ADDR/$ref") || die "reading the digest of $REGISTRY_ADDR/$ref failed; see $REG_LOG"
  out=$(mktemp -d "$TMP/out.XXXXXX")
  step "crane pull ($ref)" cr pull --format oci "$REGISTRY_ADDR/$repo@$digest" "$out/oci"
  # the registry deletes manifests by digest only (the tag goes with it)
  work=$(cr digest "$work") || die "reading the digest of the build tag $work failed; see $REG_LOG"
  step "crane delete (build tag of $ref)" cr delete "$REGISTRY_ADDR/$repo@$work"
  printf '%s' "$INPUTS" >"$out/inputs" && echo "$digest" >"$out/digest" # last: marks the layout complete
  rm -rf "${IMG_CACHE:?}/$KEY"; mv -T "$out" "$IMG_CACHE/$KEY"
}

ensure_images() {
  local t0 row ref rootfs tags cfg want have built=0 pushed=0 refs=() rows=()
  t0=$(now_ms)
  for row in "${IMAGES[@]}"; do read -r ref _ <<<"$row"; [[ $# == 0 || " $* " == *" $ref "* ]] && rows+=("$row"); done
  ((${#rows[@]})) || die "no image is named '$*' (see the IMAGES table in $SELF)"
  mkdir -p "$IMG_CACHE" "$(dirname "$BUILD_LOG")" && : >"$BUILD_LOG"
  TMP=$(mktemp -d "$CACHE_DIR/.build.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  ensure_crane
  ensure_registry
  for row in "${rows[@]}"; do
    read -r ref rootfs tags cfg <<<"$row"
    if [[ $rootfs == etcd && ! -x $ETCD_BIN_DIR/etcdctl ]]; then log "etcd binaries missing: running build.sh"; bash "$LC_DIR/build.sh"; fi
    image_key "$rootfs" "$tags" "$cfg"
    [[ -s $IMG_CACHE/$KEY/digest ]] || { build_image "$ref" "$rootfs" "$tags" "$cfg"; built=$((built + 1)); }
    want=$(<"$IMG_CACHE/$KEY/digest")
    have=$(cr digest "$REGISTRY_ADDR/$ref" 2>/dev/null || true)
    if [[ $have != "$want" ]]; then # missing or different: push the kept layout
      log "pushing $REF_PREFIX/$ref ($want) from $IMG_CACHE/$KEY"
      step "crane push ($ref)" cr push "$IMG_CACHE/$KEY/oci" "$REGISTRY_ADDR/$ref"
      have=$(cr digest "$REGISTRY_ADDR/$ref" 2>/dev/null || true)
      [[ $have == "$want" ]] || die "after the push $REGISTRY_ADDR/$ref has digest '$have', not $want; see $REG_LOG"
      pushed=$((pushed + 1))
    fi
    refs+=("$REF_PREFIX/$ref")
  done
  if ((built + pushed)); then log "images ready: $built built, $pushed pushed, in $(elapsed "$t0")"
  else log "all ${#refs[@]} images up to date in the registry ($(elapsed "$t0"))"; fi
  printf '%s\n' "${refs[@]}"
}

status() {
  local row ref rootfs tags cfg want have up=0 s
  if registry_running && registry_answers; then up=1
    echo "registry: up (pid $(<"$REG_PIDFILE")) at http://$REGISTRY_ADDR, storage $CACHE_DIR/registry, log $REG_LOG"
  elif port_in_use "${REGISTRY_ADDR#*:}"; then echo "registry: $REGISTRY_ADDR is taken by a process that is not ours"
  else echo "registry: down (bash $SELF ensure starts it)"; fi
  for row in "${IMAGES[@]}"; do
    read -r ref rootfs tags cfg <<<"$row"
    # want: the digest ensure would serve now (empty: not built yet, or inputs missing)
    want=$( (image_key "$rootfs" "$tags" "$cfg" && cat "$IMG_CACHE/$KEY/digest") 2>/dev/null) || want=
    have=$( ((up)) && cr digest "$REGISTRY_ADDR/$ref" 2>/dev/null) || have=
    if ((!up)); then s="not served (registry down)"; elif [[ -z $have ]]; then s=missing
    elif [[ $have == "$want" ]]; then s="$have up to date"; else s="$have not built from the current inputs (run ensure)"; fi
    printf '%-52s %s\n' "$REF_PREFIX/$ref" "$s"
  done
}

cmd=${1-}
[[ $# == 0 ]] || shift
mkdir -p "$CACHE_DIR"
case $cmd in
  ensure) with_lock "$CACHE_DIR/.images.lock" ensure_images "$@" ;;
  status) status ;;
  stop-registry) with_lock "$CACHE_DIR/.images.lock" stop_registry ;;
  -h | --help) sed -n '2,13p' "$0" ;;
  *) die "usage: images.sh ensure [NAME:TAG...] | status | stop-registry (see --help)" ;;
esac
