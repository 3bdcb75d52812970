#!/usr/bin/env bash
# Stop and delete a local test cluster started by up.sh.
#
# Usage: down.sh [--name NAME] [--keep-state]
#   --name NAME     cluster / kube context name (default sandstore-local)
#   --keep-state    stop the processes but keep the state dir (certs, etcd
#                   data, logs) and the kube context: up.sh restarts it as it was
#
# Stops every process up.sh started (recorded pids; SIGTERM, then SIGKILL
# after 15 s); for the real node also its containers and containerd's shims,
# its mounts, network namespace (veth pair, bridge, iptables rules), route and
# cgroups; stops the image registry when no other local cluster is running;
# removes the context/cluster/user entries named NAME from every kubeconfig
# file up.sh merged them into, then removes the state dir (the node's ext4
# and xfs images included) and the node's storage directory
# /var/lib/sandstore-deploy/NAME (its volume directories). With --keep-state
# the images and volumes stay, unmounted.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=node.sh
source "$LC_DIR/node.sh"

parse_name_arg "$@"
KEEP_STATE=0
for a in "${REST_ARGS[@]+"${REST_ARGS[@]}"}"; do
  case $a in
    --keep-state) KEEP_STATE=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown argument '$a' (see --help)" ;;
  esac
done

GRACE_S=15

# Binary each recorded pid must still be running (so a recycled pid is never
# killed). Taken from what the process itself reports, falling back to the
# recorded cache paths.
expected_bin() {
  local c=$1 tools
  tools=${TOOLS_BIN_DIR:-$(tools_bin_dir)}
  case $c in
    etcd) echo "${ETCD_BIN_DIR:-$CACHE_DIR/etcd-$ETCD_VERSION/bin}/etcd" ;;
    kube-apiserver | kube-controller-manager | kube-scheduler) echo "${KUBE_BIN_DIR:-$CACHE_DIR/kubernetes-$KUBE_VERSION/bin}/$c" ;;
    kwok-controller) echo "${KWOK_BIN_DIR:-$CACHE_DIR/kwok-$KWOK_VERSION/bin}/kwok" ;;
    provisioner) echo "$tools/sandstore-local-provisioner" ;;
    nodeproxy) echo "$tools/sandstore-local-nodeproxy" ;;
    local-path) echo "${LOCAL_PATH_BIN_DIR:-$(local_path_bin_dir)}/local-path-provisioner" ;;
    kubelet | kube-proxy) echo "${KUBE_BIN_DIR:-$CACHE_DIR/kubernetes-$KUBE_VERSION/bin}/$c" ;;
    containerd) command -v containerd || echo /usr/bin/containerd ;;
    coredns) echo "${COREDNS_BIN_DIR:-$CACHE_DIR/coredns-$COREDNS_VERSION/bin}/coredns" ;;
    kube-router) echo "${KUBE_ROUTER_BIN_DIR:-$CACHE_DIR/kube-router-$KUBE_ROUTER_VERSION/bin}/kube-router" ;;
  esac
}

# stop_group COMPONENT...: SIGTERM them all, wait up to GRACE_S for every one
# to exit, SIGKILL what is left.
stop_group() {
  local c pid bin pids=() bins=() names=() i n t
  for c in "$@"; do
    pid=$(cat "$CLUSTER_DIR/pids/$c.pid" 2>/dev/null || true)
    [[ -n $pid ]] || continue
    bin=$(expected_bin "$c")
    if pid_alive "$pid" "$bin"; then
      log "stopping $c (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid") bins+=("$bin") names+=("$c")
    fi
  done
  ((${#pids[@]})) || return 0
  t=$(now_ms)
  while :; do
    n=0
    for i in "${!pids[@]}"; do
      if pid_alive "${pids[i]}" "${bins[i]}"; then n=$((n + 1)); fi
    done
    ((n == 0)) && return 0
    if (($(now_ms) - t > GRACE_S * 1000)); then
      for i in "${!pids[@]}"; do
        if pid_alive "${pids[i]}" "${bins[i]}"; then
          warn "${names[i]} (pid ${pids[i]}) still running after ${GRACE_S}s: SIGKILL"
          kill -KILL "${pids[i]}" 2>/dev/null || true
        fi
      done
      for ((n = 0; n < 50; n++)); do
        local alive=0
        for i in "${!pids[@]}"; do
          if pid_alive "${pids[i]}" "${bins[i]}"; then alive=1; fi
        done
        ((alive)) || return 0
        sleep 0.1
      done
      die "processes of '$NAME' survived SIGKILL: ${pids[*]}"
    fi
    sleep 0.1
  done
}

stop_all() {
  local t
  t=$(now_ms)
  if [[ -n ${NODE_SLOT-} ]]; then
    node_vars
    # The node first, while the apiserver still answers its last updates; its
    # provisioner before it (no helper pod is started on a node going away).
    stop_group local-path
    stop_group coredns kube-router kube-proxy kubelet
    stop_group containerd nodeproxy
    node_teardown
    log "real node '$NODE_NAME' stopped: containers, mounts (its ext4 and xfs images too), network namespace $NODE_NETNS and cgroups removed"
  fi
  # Clients first, then the apiserver, etcd last (an apiserver whose etcd is
  # already gone takes a long time to shut down).
  stop_group provisioner kwok-controller kube-scheduler kube-controller-manager
  stop_group kube-apiserver
  stop_group etcd
  log "all processes of '$NAME' stopped ($(elapsed "$t"))"
  stop_registry_if_unused
}

# The registry (images.sh) serves every local cluster: it stops with the last one.
stop_registry_if_unused() {
  local d pid
  for d in "$STATE_ROOT"/clusters/*/; do
    [[ $d == "$CLUSTER_DIR/" ]] && continue
    pid=$(cat "$d/pids/kube-apiserver.pid" 2>/dev/null || true)
    if [[ -n $pid ]] && pid_alive "$pid" "$KUBE_BIN_DIR/kube-apiserver"; then return 0; fi
  done
  bash "$LC_DIR/images.sh" stop-registry
}

# remove_entries FILE: delete context, cluster and user NAME from FILE (only
# those present); unset current-context only if it pointed at NAME.
remove_entries() {
  local f=$1 kubectl=$2 cur
  [[ -f $f ]] || return 0
  if "$kubectl" config get-contexts "$NAME" --kubeconfig "$f" >/dev/null 2>&1; then
    "$kubectl" config delete-context "$NAME" --kubeconfig "$f" >/dev/null 2>&1 || return 1
  fi
  if "$kubectl" config get-clusters --kubeconfig "$f" 2>/dev/null | grep -qxF "$NAME"; then
    "$kubectl" config delete-cluster "$NAME" --kubeconfig "$f" >/dev/null || return 1
  fi
  if "$kubectl" config get-users --kubeconfig "$f" 2>/dev/null | grep -qxF "$NAME"; then
    "$kubectl" config delete-user "$NAME" --kubeconfig "$f" >/dev/null || return 1
  fi
  cur=$("$kubectl" config current-context --kubeconfig "$f" 2>/dev/null || true)
  if [[ $cur == "$NAME" ]]; then
    "$kubectl" config unset current-context --kubeconfig "$f" >/dev/null || return 1
    warn "current-context of $f was '$NAME'; it is now unset"
  fi
  log "removed context/cluster/user '$NAME' from $f"
}

# remove_node_storage: the real node's volume directories and mount points
# (NODE_STORAGE_DIR), never through a mount that is still there.
remove_node_storage() {
  [[ -n ${NODE_STORAGE_DIR-} && -d $NODE_STORAGE_DIR ]] || return 0
  if awk '{print $2}' /proc/self/mounts | grep -q "^$NODE_STORAGE_DIR/"; then
    warn "$NODE_STORAGE_DIR still has mounts (see findmnt -R $NODE_STORAGE_DIR): not removed"
    return 1
  fi
  rm -rf "$NODE_STORAGE_DIR"
  rmdir "$(dirname "$NODE_STORAGE_DIR")" 2>/dev/null || true
}

down() {
  if [[ ! -d $CLUSTER_DIR ]]; then
    log "no cluster '$NAME' (no $CLUSTER_DIR): nothing to do"
    return 0
  fi
  KUBECONFIG_MERGED_FILES=
  if [[ -f $CLUSTER_DIR/cluster.env ]]; then
    # shellcheck disable=SC1091
    source "$CLUSTER_DIR/cluster.env"
  fi
  stop_all
  if [[ $KEEP_STATE == 1 ]]; then
    log "state kept in $CLUSTER_DIR (up.sh --name $NAME restarts the cluster)"
    return 0
  fi

  local kubectl=${KUBECTL:-$KUBE_BIN_DIR/kubectl} f rc=0
  [[ -x $kubectl ]] || kubectl=$KUBE_BIN_DIR/kubectl
  if [[ -n $KUBECONFIG_MERGED_FILES ]]; then
    if [[ ! -x $kubectl ]]; then
      rc=1
      warn "kubectl ($kubectl) is gone, cannot edit kubeconfig; remove context/cluster/user '$NAME' by hand from: $KUBECONFIG_MERGED_FILES"
    else
      local IFS=:
      for f in $KUBECONFIG_MERGED_FILES; do
        with_lock "$STATE_ROOT/locks/kubeconfig.lock" remove_entries "$f" "$kubectl" ||
          { rc=1; warn "could not remove '$NAME' entries from $f"; }
      done
      unset IFS
    fi
  fi
  remove_node_storage || rc=1
  rm -rf "$CLUSTER_DIR"
  log "cluster '$NAME' deleted"
  return $rc
}

mkdir -p "$STATE_ROOT/clusters"
with_lock "$STATE_ROOT/locks/cluster-$NAME.lock" down
