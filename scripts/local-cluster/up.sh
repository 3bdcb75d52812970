#!/usr/bin/env bash
# Start (or reuse) an offline local Kubernetes test cluster for sandstore-deploy:
# etcd + kube-apiserver + kube-controller-manager + kube-scheduler (v1.28.15,
# built from the Go modules) on 127.0.0.1, kwok simulating 3 nodes, a real node
# (kubelet + containerd + kube-proxy + CoreDNS in a network namespace of its
# own, see node.sh), the image registry on 127.0.0.1:5000 with the images the
# node runs (images.sh), rancher's local-path-provisioner for the real node's
# volumes (on its own directory, or on a loop-mounted ext4 or xfs image) and a
# test-only provisioner for the kwok nodes' claims. See
# scripts/local-cluster/README.md.
#
# Usage: up.sh [--name NAME] [--no-storage-class] [--no-node]
#   --name NAME          cluster / kube context name (default sandstore-local)
#   --no-storage-class   do not create the 'local-path' StorageClass
#   --no-node            kwok nodes only (no root needed, starts in seconds)
#
# Env: SANDSTORE_CACHE_DIR (built binaries, default ~/.cache/sandstore-deploy)
#      SANDSTORE_STATE_DIR (cluster state, default ~/.local/state/sandstore-deploy)
#      KUBECONFIG          the context is merged into its first path (default ~/.kube/config)
#
# stdout: only the cluster's cluster.env (KEY=VALUE lines, shell-quoted); all
# progress goes to stderr. Exit status non-zero on failure, after printing the
# tail of the failing component's log.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_name_arg "$@"
CREATE_SC=1
WITH_NODE=1
for a in "${REST_ARGS[@]+"${REST_ARGS[@]}"}"; do
  case $a in
    --no-storage-class) CREATE_SC=0 ;;
    --no-node) WITH_NODE=0 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) die "unknown argument '$a' (see --help)" ;;
  esac
done

# shellcheck source=node.sh
source "$LC_DIR/node.sh"
T0=$(now_ms)
# A machine that cannot run the node says so before minutes of building.
[[ $WITH_NODE == 0 ]] || node_preflight
bash "$LC_DIR/build.sh"

TOOLS_BIN_DIR=$(tools_bin_dir)
LOCAL_PATH_BIN_DIR=$(local_path_bin_dir)
KUBECTL=$KUBE_BIN_DIR/kubectl
declare -A BIN=(
  [etcd]=$ETCD_BIN_DIR/etcd
  [kube-apiserver]=$KUBE_BIN_DIR/kube-apiserver
  [kube-controller-manager]=$KUBE_BIN_DIR/kube-controller-manager
  [kube-scheduler]=$KUBE_BIN_DIR/kube-scheduler
  [kwok-controller]=$KWOK_BIN_DIR/kwok
  [provisioner]=$TOOLS_BIN_DIR/sandstore-local-provisioner
  [local-path]=$LOCAL_PATH_BIN_DIR/local-path-provisioner
  [nodeproxy]=$TOOLS_BIN_DIR/sandstore-local-nodeproxy
  [containerd]=$(command -v containerd || echo /usr/bin/containerd)
  [kubelet]=$KUBE_BIN_DIR/kubelet
  [kube-proxy]=$KUBE_BIN_DIR/kube-proxy
  [coredns]=$COREDNS_BIN_DIR/coredns
  [kube-router]=$KUBE_ROUTER_BIN_DIR/kube-router
)
PKI=$CLUSTER_DIR/pki
POD_LOGS_DIR=$CLUSTER_DIR/pod-logs # log fixtures served by kwok (kubectl logs)
ADMIN_KUBECONFIG=$CLUSTER_DIR/kubeconfig
STARTED=() # components started by this run (stopped again if up.sh fails)

kc() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=10s "$@"; }

pid_of() { cat "$CLUSTER_DIR/pids/$1.pid" 2>/dev/null || true; }
running() { pid_alive "$(pid_of "$1")" "${BIN[$1]}"; }

# Binary a recorded pid may be running: the current build, or the one recorded
# in cluster.env when the process was started (e.g. an older provisioner build).
declare -A OLD_BIN=()
stop_component() {
  local c=$1 pid i bin
  pid=$(pid_of "$c")
  for bin in "${BIN[$c]}" "${OLD_BIN[$c]-}"; do
    [[ -n $bin && -n $pid ]] || continue
    if pid_alive "$pid" "$bin"; then
      kill -TERM "$pid" 2>/dev/null || true
      # 8 s: an apiserver that lost etcd may never finish a graceful shutdown
      for ((i = 0; i < 80; i++)); do pid_alive "$pid" "$bin" || break; sleep 0.1; done
      if pid_alive "$pid" "$bin"; then
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do pid_alive "$pid" "$bin" || break; sleep 0.1; done
      fi
    fi
  done
  rm -f "$CLUSTER_DIR/pids/$c.pid"
}

# stop_started: stop what this run started, newest first; a node whose
# daemons were started also loses its containers, mounts and namespace (not
# for local-path alone: a healthy node's provisioner restarted on reuse).
stop_started() {
  local i node=0
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    [[ ${STARTED[i]} != local-path && " ${NODE_COMPONENTS[*]} " == *" ${STARTED[i]} "* ]] && node=1
    stop_component "${STARTED[i]}"
  done
  STARTED=()
  ((node == 0)) || node_teardown
}

fail() { # fail COMPONENT MESSAGE
  local c=$1 i
  shift
  printf '%s[local-cluster] ERROR:%s %s\n' "$_c_r" "$_c_0" "$*" >&2
  if [[ -n $c && -f $CLUSTER_DIR/logs/$c.log ]]; then
    echo "----- last 40 lines of $CLUSTER_DIR/logs/$c.log -----" >&2
    tail -n 40 "$CLUSTER_DIR/logs/$c.log" >&2
    echo "-----" >&2
  fi
  stop_started
  echo "[local-cluster] logs and state kept in $CLUSTER_DIR; remove them with: bash $LC_DIR/down.sh --name $NAME" >&2
  exit 1
}

start_component() { # start_component NAME ARGS...
  local c=$1 bin=${BIN[$1]} pidfile=$CLUSTER_DIR/pids/$1.pid log=$CLUSTER_DIR/logs/$1.log i pid
  shift
  [[ -x $bin ]] || fail "" "binary $bin missing (re-run build.sh)"
  rm -f "$pidfile"
  printf '===== %s starting %s =====\n' "$(date -u +%FT%TZ)" "$c" >>"$log"
  # New session (survives the caller's Ctrl-C / terminal), stdio to the log
  # file only (never the caller's pipes), pid written by the process itself.
  # shellcheck disable=SC2016
  # fd 9 (the flock of with_lock) is closed so the daemon never holds a lock.
  # IN_NETNS=PATH: the process runs in that network namespace (nsenter execs
  # it in place, so the recorded pid is the daemon's own).
  # IN_MNTNS=PATH: and in that mount namespace too.
  local pre=()
  [[ -z ${IN_NETNS-} ]] || pre=(nsenter --net="$IN_NETNS" ${IN_MNTNS:+--mount="$IN_MNTNS"})
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "${pre[@]+"${pre[@]}"}" "$bin" "$@" </dev/null >>"$log" 2>&1 9>&- &
  disown # not a job of this shell: no "Killed" notices, no waiting for it
  for ((i = 0; i < 100; i++)); do [[ -s $pidfile ]] && break; sleep 0.02; done
  [[ -s $pidfile ]] || fail "$c" "$c did not start"
  STARTED+=("$c")
  pid=$(cat "$pidfile")
  # exec happens right after the pid is written
  for ((i = 0; i < 50; i++)); do pid_alive "$pid" "$bin" && break; sleep 0.02; done
}

check_alive() { # fail if any of the given components died
  local c
  for c in "$@"; do running "$c" || fail "$c" "$c exited unexpectedly"; done
}

healthy() {
  [[ -f $CLUSTER_DIR/cluster.env && -f $ADMIN_KUBECONFIG ]] || return 1
  local c
  for c in "${COMPONENTS[@]}"; do running "$c" || return 1; done
  [[ $(kc get --raw /readyz 2>/dev/null) == ok ]] || return 1
  [[ -z $NODE_SLOT ]] || { node_ready && node_fs_mounted ext4 && node_fs_mounted xfs; }
}

# advertise_address: what kube-apiserver advertises as its address, i.e. the endpoint of the
# `kubernetes` Service (kube-proxy DNATs 10.96.0.1:443 to it). It listens on 127.0.0.1 only, which
# no pod can reach (and Endpoints may not name loopback), so a cluster with a real node advertises
# the node's IP, where nodeproxy listens inside the node's network namespace and relays to the
# host's 127.0.0.1 (node.sh). Without a node: an address nothing routes (no pod runs anywhere).
advertise_address() { echo "${NODE_IP:-10.255.0.1}"; }

# api_endpoint: the `kubernetes` Service's endpoints, "IP[ IP...]:PORT".
api_endpoint() {
  kc get endpoints kubernetes -n default -o 'jsonpath={.subsets[*].addresses[*].ip}:{.subsets[*].ports[*].port}'
}
api_endpoint_current() { [[ $(api_endpoint 2>/dev/null) == "$(advertise_address):$APISERVER_PORT" ]]; }

choose_ports() {
  # A block of 10 ports, starting at a base derived from the cluster name so
  # a given name usually gets the same ports; moved on if anything is in use.
  local h base i p ok others
  h=$(printf '%s' "$NAME" | cksum | cut -d' ' -f1)
  base=$((20000 + (h % 1000) * 10))
  others=$(cat "$STATE_ROOT"/clusters/*/cluster.env 2>/dev/null | sed -n 's/^APISERVER_PORT=//p' || true)
  for ((i = 0; i < 1000; i++)); do
    ok=1
    for p in $others; do
      if ((p >= base && p < base + 10)); then ok=0; fi
    done
    for ((p = base; ok && p < base + 7; p++)); do
      if port_in_use "$p"; then ok=0; fi
    done
    if ((ok)); then
      APISERVER_PORT=$base ETCD_PORT=$((base + 1)) ETCD_PEER_PORT=$((base + 2))
      KCM_PORT=$((base + 3)) SCHEDULER_PORT=$((base + 4)) PROVISIONER_HEALTH_PORT=$((base + 5))
      KWOK_SERVER_PORT=$((base + 6))
      return 0
    fi
    base=$((base + 10)); ((base < 30000)) || base=20000
  done
  die "no free block of ports found in 20000-29999"
}

write_env() {
  local f=$CLUSTER_DIR/cluster.env tmp
  tmp=$(mktemp "$CLUSTER_DIR/.env.XXXXXX")
  {
    echo "# sandstore-deploy local cluster '$NAME' (written by up.sh; read by down.sh)"
    local k
    for k in CLUSTER_NAME CLUSTER_DIR KUBE_CONTEXT API_SERVER KUBECONFIG_CLUSTER KUBECONFIG_MERGED_FILES KUBECTL \
      KUBE_VERSION ETCD_VERSION KWOK_VERSION APISERVER_PORT ETCD_PORT ETCD_PEER_PORT KCM_PORT SCHEDULER_PORT \
      PROVISIONER_HEALTH_PORT KWOK_SERVER_PORT POD_LOGS_DIR KUBE_BIN_DIR ETCD_BIN_DIR KWOK_BIN_DIR TOOLS_BIN_DIR \
      COREDNS_BIN_DIR KUBE_ROUTER_BIN_DIR NODE_SLOT NODE_NAME NODE_NETNS NODE_IP NODE_HOST_IP NODE_POD_CIDR NODE_DIR NODE_STORAGE_DIR \
      NODE_VOLUMES_DIR NODE_EXT4_DIR NODE_XFS_DIR NODE_VIEW_DIR NODE_RUN_DIR NODE_MNTNS_PATH NODE_POD_LOGS_DIR NODE_CGROUP CONTAINERD_SOCK \
      LOCAL_PATH_BIN_DIR; do
      printf '%s=%q\n' "$k" "${!k-}"
    done
  } >"$tmp"
  mv "$tmp" "$f"
}

write_component_kubeconfig() { # NAME CERTBASE -> $CLUSTER_DIR/kubeconfigs/NAME.kubeconfig
  local f=$CLUSTER_DIR/kubeconfigs/$1.kubeconfig
  cat >"$f" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $NAME
  cluster:
    server: $API_SERVER
    certificate-authority: $PKI/ca.crt
users:
- name: $1
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: $NAME
  context:
    cluster: $NAME
    user: $1
current-context: $NAME
EOF
  chmod 600 "$f"
}

# set_context_entries KUBECONFIG_FILE: add/overwrite cluster, user and context
# NAME in that file. kubectl config set-* never touches current-context or any
# other entry.
set_context_entries() {
  local f=$1
  mkdir -p "$(dirname "$f")"
  "$KUBECTL" config set-cluster "$NAME" --kubeconfig "$f" --server "$API_SERVER" \
    --certificate-authority "$PKI/ca.crt" --embed-certs=true >/dev/null
  "$KUBECTL" config set-credentials "$NAME" --kubeconfig "$f" \
    --client-certificate "$PKI/admin.crt" --client-key "$PKI/admin.key" --embed-certs=true >/dev/null
  "$KUBECTL" config set-context "$NAME" --kubeconfig "$f" --cluster "$NAME" --user "$NAME" >/dev/null
}

merge_user_kubeconfig() {
  local target
  target=$(user_kubeconfig)
  with_lock "$STATE_ROOT/locks/kubeconfig.lock" set_context_entries "$target" ||
    fail "" "could not merge context '$NAME' into $target"
  case ":$KUBECONFIG_MERGED_FILES:" in
    *":$target:"*) ;;
    *) KUBECONFIG_MERGED_FILES=${KUBECONFIG_MERGED_FILES:+$KUBECONFIG_MERGED_FILES:}$target ;;
  esac
  write_env
  log "kube context '$NAME' merged into $target (current-context left unchanged)"
}

summary() {
  log "cluster '$NAME' ready: $API_SERVER, context '$NAME' — $(elapsed "$T0") total"
  log "  kubectl: $KUBECTL --context $NAME get nodes"
  [[ -z $NODE_SLOT ]] || log "  real node: $NODE_NAME at $NODE_IP (its node ports are reachable from this host); volumes in $NODE_VOLUMES_DIR, $NODE_EXT4_DIR (ext4), $NODE_XFS_DIR (xfs), seen by the node at $NODE_VIEW_DIR/{volumes,ext4,xfs}"
  log "  state/logs: $CLUSTER_DIR   (stop with: bash $LC_DIR/down.sh --name $NAME)"
  grep -v '^#' "$CLUSTER_DIR/cluster.env"
}

wait_until() { # wait_until TIMEOUT_S DESCRIPTION COMPONENT_FOR_LOGS CMD... (also fails fast on dead components)
  local timeout=$1 what=$2 comp=$3 deadline
  shift 3
  deadline=$(($(now_ms) + timeout * 1000))
  # subshell: a bug in the probe (set -u, failed redirection) cannot end up.sh silently
  until ("$@") >/dev/null 2>&1; do
    check_alive "${STARTED[@]}"
    (($(now_ms) < deadline)) || fail "$comp" "timed out after ${timeout}s waiting for $what"
    sleep 0.2
  done
}

nodes_ready() {
  local out
  out=$(kc get nodes kwok-ssd-0 kwok-ssd-1 kwok-general-0 \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}') || return 1
  [[ $out == "True True True " ]]
}

component_healthz() { # component_healthz PORT (self-signed serving cert: not verified)
  [[ $("$KUBECTL" --kubeconfig "$CLUSTER_DIR/kubeconfigs/healthz.kubeconfig" --request-timeout=5s \
    --server "https://127.0.0.1:$1" get --raw /healthz 2>/dev/null) == ok ]]
}

provisioner_healthz() ( # subshell: a failed exec redirection must not end up.sh
  exec 3<>"/dev/tcp/127.0.0.1/$PROVISIONER_HEALTH_PORT" || exit 1
  printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  r=$(timeout 3 cat <&3)
  [[ $r == *$'\r\n\r\nok' ]]
)

# kwok.yaml as kwok gets it: @POD_LOGS_DIR@ replaced by this cluster's path.
render_kwok_config() {
  local content
  content=$(<"$LC_DIR/kwok.yaml")
  printf '%s\n' "${content//@POD_LOGS_DIR@/"$POD_LOGS_DIR"}"
}

# write_log_fixtures [--if-missing]: the files kwok serves as container logs
# (CRI log format: "<RFC3339Nano time> <stdout|stderr> F <line>").
#   current.log  every container (kwok.yaml ClusterLogs)
#   crash.log    containers tagged :crashloop (current and previous log)
#   fail.log     containers tagged :fail
write_log_fixtures() {
  if [[ ${1-} == --if-missing && -f $POD_LOGS_DIR/current.log && -f $POD_LOGS_DIR/crash.log && -f $POD_LOGS_DIR/fail.log ]]; then
    return 0
  fi
  mkdir -p "$POD_LOGS_DIR"
  local t0 i=0 f
  t0=$(($(date +%s) - 5))
  line() { # line STREAM TEXT
    local ms=$((i * 137)) ts
    i=$((i + 1))
    TZ=UTC printf -v ts '%(%Y-%m-%dT%H:%M:%S)T' $((t0 + ms / 1000))
    printf '%s.%03d000000Z %s F %s\n' "$ts" $((ms % 1000)) "$1" "$2"
  }
  start_lines() {
    line stdout "sandstore node starting (simulated log: kwok pod on the sandstore-deploy local test cluster)"
    line stdout "config: data-dir=/data raft-port=7000 client-port=8080"
    line stdout "raft: node started, term 0"
  }
  f=$POD_LOGS_DIR/current.log
  {
    start_lines
    line stdout "raft: election timeout elapsed, starting election (term 1)"
    line stdout "raft: Became Leader (term 1)"
    line stdout "sandstore node started: serving clients on :8080"
  } >"$f.tmp" && mv -f "$f.tmp" "$f"
  i=0 f=$POD_LOGS_DIR/crash.log
  {
    start_lines
    line stderr "panic: simulated crash"
    line stderr ""
    line stderr "goroutine 1 [running]:"
    line stderr "main.main()"
    line stderr $'\t/src/cmd/sandstore-node/main.go:42 +0x1d'
  } >"$f.tmp" && mv -f "$f.tmp" "$f"
  i=0 f=$POD_LOGS_DIR/fail.log
  {
    start_lines
    line stderr "error: simulated failure"
  } >"$f.tmp" && mv -f "$f.tmp" "$f"
}

start_kwok() {
  write_log_fixtures
  render_kwok_config >"$CLUSTER_DIR/kwok.yaml"
  # HOME is redirected so that a user's ~/.kwok/kwok.yaml cannot add stages.
  # The server (kubelet API for kube-apiserver: pod logs) listens on
  # 127.0.0.1:KWOK_SERVER_PORT, HTTPS with a cert from the cluster CA (plain
  # HTTP on the same port for /healthz); --node-port makes the node stages
  # publish that port in status.daemonEndpoints.kubeletEndpoint.Port.
  HOME=$CLUSTER_DIR/kwok-home start_component kwok-controller \
    --kubeconfig "$CLUSTER_DIR/kubeconfigs/admin.kubeconfig" \
    --config "$CLUSTER_DIR/kwok.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --server-address "127.0.0.1:$KWOK_SERVER_PORT" \
    --node-port "$KWOK_SERVER_PORT" \
    --tls-cert-file "$PKI/kwok-server.crt" --tls-private-key-file "$PKI/kwok-server.key" \
    --enable-crds Logs
}

kwok_healthz() ( # plain HTTP on the server port (kwok multiplexes HTTP and HTTPS)
  exec 3<>"/dev/tcp/127.0.0.1/$KWOK_SERVER_PORT" || exit 1
  printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  r=$(timeout 3 cat <&3)
  [[ $r == *$'\r\n\r\nok' ]]
)

# Nodes: (re)apply nodes.yaml and make sure existing nodes (created by an
# older up.sh, or before a restart) carry the address and port kube-apiserver
# uses for the kubelet API (pod logs). Status is ignored by apply on update,
# so it is patched (strategic merge: addresses are merged by type).
ensure_nodes() {
  local files=(-f "$LC_DIR/nodes.yaml" -f "$LC_DIR/kwok-logs-crd.yaml")
  [[ $CREATE_SC == 1 ]] && files+=(-f "$LC_DIR/storageclass.yaml")
  kc apply "${files[@]}" >/dev/null || fail kube-apiserver "creating the kwok nodes / kwok Logs CRD / StorageClass failed"
  kc patch nodes kwok-ssd-0 kwok-ssd-1 kwok-general-0 --subresource=status --type=strategic \
    -p "{\"status\":{\"addresses\":[{\"type\":\"InternalDNS\",\"address\":\"127.0.0.1\"}],\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":$KWOK_SERVER_PORT}}}}" \
    >/dev/null || fail kube-apiserver "setting the kubelet endpoint of the kwok nodes failed"
}

on_exit() {
  local rc=$? i
  if ((rc != 0 && ${#STARTED[@]} > 0)); then
    stop_started
    echo "[local-cluster] up.sh failed (exit $rc); stopped the processes it had started. Logs: $CLUSTER_DIR/logs" >&2
  fi
}

up() {
  trap on_exit EXIT
  mkdir -p "$CLUSTER_DIR"
  KUBECONFIG_MERGED_FILES=
  if [[ -f $CLUSTER_DIR/cluster.env ]]; then
    load_recorded_env
    if [[ $WITH_NODE == 1 && -z $NODE_SLOT ]]; then
      with_lock "$STATE_ROOT/locks/ports.lock" choose_node_slot_and_record
    elif [[ $WITH_NODE == 0 && -n $NODE_SLOT ]]; then
      die "cluster '$NAME' has a real node; --no-node applies to a new cluster only (down.sh --name $NAME first)"
    fi
    set_components
    if [[ $RECORDED_KUBE_VERSION != "$KUBE_VERSION" ]]; then
      die "cluster '$NAME' was created with Kubernetes $RECORDED_KUBE_VERSION, this checkout pins $KUBE_VERSION: run down.sh --name $NAME first"
    fi
    CLUSTER_NAME=$NAME KUBE_CONTEXT=$NAME KUBECONFIG_CLUSTER=$ADMIN_KUBECONFIG
    API_SERVER=https://127.0.0.1:$APISERVER_PORT
    if [[ -z $RECORDED_KWOK_SERVER_PORT ]]; then
      # kube-apiserver and kwok need new flags, the nodes a kubelet endpoint
      log "cluster '$NAME' was started by an older version of up.sh (no kubelet API for pod logs): (re)starting its processes on the existing state"
    elif healthy && ! api_endpoint_current; then
      # A cluster started before kube-apiserver advertised the node's IP: pods cannot reach it.
      log "cluster '$NAME' runs, but the kubernetes Service's endpoint is $(api_endpoint 2>/dev/null), not $(advertise_address):$APISERVER_PORT: restarting its processes on the existing state with the current flags"
    elif healthy; then
      log "cluster '$NAME' is already running and healthy (pids alive, /readyz ok): reusing it"
      if ! cmp -s <(render_kwok_config) "$CLUSTER_DIR/kwok.yaml"; then
        log "  kwok.yaml changed since the cluster started: restarting kwok-controller with it"
        stop_component kwok-controller
        start_kwok
        wait_until 30 "kwok-controller to start" kwok-controller running kwok-controller
        wait_until 30 "kwok server /healthz (127.0.0.1:$KWOK_SERVER_PORT)" kwok-controller kwok_healthz
      else
        write_log_fixtures --if-missing
      fi
      if [[ -n $NODE_SLOT ]] && ! cmp -s <(render_local_path) "$CLUSTER_DIR/local-path.yaml"; then
        log "  local-path.yaml changed since the cluster started: re-applying it and restarting local-path-provisioner"
        stop_component local-path
        local_path_start
      fi
      # Sand Store's source or the image recipe may have changed since.
      if [[ -n $NODE_SLOT ]]; then
        bash "$LC_DIR/images.sh" ensure >/dev/null || die "the images of the real node could not be built or pushed (see above)"
      fi
      merge_user_kubeconfig
      summary
      return 0
    else
      log "cluster '$NAME' exists but is not (fully) running: restarting its processes on the existing state"
    fi
    local i
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop_component "${COMPONENTS[i]}"; done
    [[ -z $NODE_SLOT ]] || node_teardown
  else
    with_lock "$STATE_ROOT/locks/ports.lock" choose_ports_and_record
    load_recorded_env
    set_components
  fi

  CLUSTER_NAME=$NAME KUBE_CONTEXT=$NAME KUBECONFIG_CLUSTER=$ADMIN_KUBECONFIG
  API_SERVER=https://127.0.0.1:$APISERVER_PORT
  mkdir -p "$CLUSTER_DIR"/{pki,pids,logs,kubeconfigs,etcd-data,kwok-home,certs}
  chmod 700 "$CLUSTER_DIR" "$CLUSTER_DIR/etcd-data" "$CLUSTER_DIR/pki"
  write_env

  local t
  t=$(now_ms)
  local p holder i
  for p in "$APISERVER_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$PROVISIONER_HEALTH_PORT" "$KWOK_SERVER_PORT"; do
    # A component stopped just above (a repair) may take a moment to let go of its port.
    for ((i = 0; i < 50; i++)); do port_in_use "$p" || break; sleep 0.1; done
    if port_in_use "$p"; then
      holder=$(ss -ltnpH "sport = :$p" 2>/dev/null | sed -n 's/.*users:((\(.*\)))$/\1/p' | head -1)
      fail "" "port $p (recorded for cluster '$NAME' in $CLUSTER_DIR/cluster.env) is in use by another process${holder:+ ($holder)}; run down.sh --name $NAME and up.sh again"
    fi
  done
  "$TOOLS_BIN_DIR/sandstore-local-pki" -dir "$PKI" -name "$NAME" || fail "" "certificate generation failed"
  write_component_kubeconfig admin admin
  write_component_kubeconfig kube-controller-manager kube-controller-manager
  write_component_kubeconfig kube-scheduler kube-scheduler
  # for probing the self-signed /healthz of kube-controller-manager and kube-scheduler
  sed -e "s#certificate-authority: .*#insecure-skip-tls-verify: true#" \
    "$CLUSTER_DIR/kubeconfigs/admin.kubeconfig" >"$CLUSTER_DIR/kubeconfigs/healthz.kubeconfig"
  if [[ ! -f $ADMIN_KUBECONFIG ]]; then
    set_context_entries "$ADMIN_KUBECONFIG"
    "$KUBECTL" config use-context "$NAME" --kubeconfig "$ADMIN_KUBECONFIG" >/dev/null
  fi

  log "starting etcd $ETCD_VERSION (127.0.0.1:$ETCD_PORT) and kube-apiserver $KUBE_VERSION (127.0.0.1:$APISERVER_PORT)"
  start_component etcd \
    --name "$NAME" --data-dir "$CLUSTER_DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "$NAME=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --unsafe-no-fsync=true --log-level warn

  wait_until 30 "etcd to listen on 127.0.0.1:$ETCD_PORT" etcd port_in_use "$ETCD_PORT"

  # Audit log (metadata only): lets the bench count each client's API requests on the server side.
  printf '%s\n' 'apiVersion: audit.k8s.io/v1' 'kind: Policy' 'omitStages: ["RequestReceived"]' 'rules:' '- level: Metadata' \
    > "$CLUSTER_DIR/audit-policy.yaml"
  start_component kube-apiserver \
    --audit-policy-file "$CLUSTER_DIR/audit-policy.yaml" --audit-log-path "$CLUSTER_DIR/logs/audit.log" \
    --audit-log-maxsize 200 --audit-log-maxbackup 1 \
    --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --advertise-address "$(advertise_address)" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --cert-dir "$CLUSTER_DIR/certs" \
    --client-ca-file "$PKI/ca.crt" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/12 \
    --authorization-mode Node,RBAC \
    --allow-privileged=true \
    --kubelet-preferred-address-types InternalDNS,InternalIP,Hostname \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" \
    --profiling=false \
    --v=1

  wait_until 60 "kube-apiserver /readyz" kube-apiserver \
    bash -c '[[ $("$0" --kubeconfig "$1" --request-timeout=2s get --raw /readyz 2>/dev/null) == ok ]]' "$KUBECTL" "$ADMIN_KUBECONFIG"
  log "  kube-apiserver ready after $(elapsed "$t")"
  ensure_nodes

  log "starting kube-controller-manager (:$KCM_PORT), kube-scheduler (:$SCHEDULER_PORT), kwok $KWOK_VERSION (kubelet API :$KWOK_SERVER_PORT), local-path provisioner"
  local kcmconf=$CLUSTER_DIR/kubeconfigs/kube-controller-manager.kubeconfig
  # Each controller may send 100 requests/s (bursts of 200), not the default 20 (30): a claim costs
  # the volume binder, the claim- and volume-protection controllers a handful of writes each way, so
  # at 51 replicas a deploy spent ~14 of its 24 s waiting on those limits (docs/performance.md, "scale").
  # Clusters that run many stateful pods raise it the same way (minikube:
  # --extra-config=controller-manager.kube-api-qps=100).
  start_component kube-controller-manager \
    --kubeconfig "$kcmconf" --authentication-kubeconfig "$kcmconf" --authorization-kubeconfig "$kcmconf" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --cert-dir "$CLUSTER_DIR/certs" \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials=true \
    --controllers '*' \
    --service-cluster-ip-range 10.96.0.0/12 \
    --cluster-name "$NAME" \
    --kube-api-qps 100 --kube-api-burst 200 \
    --leader-elect=false \
    --profiling=false \
    --v=1

  local schedconf=$CLUSTER_DIR/kubeconfigs/kube-scheduler.kubeconfig
  start_component kube-scheduler \
    --kubeconfig "$schedconf" --authentication-kubeconfig "$schedconf" --authorization-kubeconfig "$schedconf" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --cert-dir "$CLUSTER_DIR/certs" \
    --leader-elect=false \
    --profiling=false \
    --v=1

  start_kwok

  # The kwok nodes' claims (the real node's are local-path-provisioner's, started with the node).
  start_component provisioner \
    --kubeconfig "$CLUSTER_DIR/kubeconfigs/admin.kubeconfig" \
    --provisioner-name rancher.io/local-path \
    --health-addr "127.0.0.1:$PROVISIONER_HEALTH_PORT" \
    --pod-logs-dir "$POD_LOGS_DIR"

  wait_until 60 "the 3 kwok nodes to be Ready" kwok-controller nodes_ready
  log "  nodes Ready after $(elapsed "$t")"
  wait_until 60 "kube-controller-manager /healthz" kube-controller-manager component_healthz "$KCM_PORT"
  wait_until 60 "kube-scheduler /healthz" kube-scheduler component_healthz "$SCHEDULER_PORT"
  wait_until 60 "kwok server /healthz (127.0.0.1:$KWOK_SERVER_PORT)" kwok-controller kwok_healthz
  wait_until 60 "provisioner /healthz" provisioner provisioner_healthz
  wait_until 60 "ServiceAccount default/default (kube-controller-manager)" kube-controller-manager \
    kc get serviceaccount default -n default
  if [[ -n $NODE_SLOT ]]; then
    bash "$LC_DIR/images.sh" ensure >/dev/null || fail "" "the images of the real node could not be built or pushed (see above)"
    node_start
    # An apiserver killed with an older address leaves its lease (and that endpoint) for up to 15 s.
    wait_until 60 "the kubernetes Service's endpoint to be $(advertise_address):$APISERVER_PORT" kube-apiserver api_endpoint_current
  fi
  check_alive "${COMPONENTS[@]}"

  merge_user_kubeconfig
  summary
}

# Read the ports etc. recorded in cluster.env (only those keys: binary paths
# are always recomputed from this checkout's pins).
load_recorded_env() {
  eval "$(
    # shellcheck disable=SC1091
    source "$CLUSTER_DIR/cluster.env"
    for k in APISERVER_PORT ETCD_PORT ETCD_PEER_PORT KCM_PORT SCHEDULER_PORT PROVISIONER_HEALTH_PORT KUBECONFIG_MERGED_FILES NODE_SLOT; do
      printf '%s=%q\n' "$k" "${!k-}"
    done
    printf 'RECORDED_KUBE_VERSION=%q\n' "${KUBE_VERSION-}"
    printf 'RECORDED_KWOK_SERVER_PORT=%q\n' "${KWOK_SERVER_PORT-}"
    printf 'OLD_BIN[etcd]=%q\n' "${ETCD_BIN_DIR-}/etcd"
    for c in kube-apiserver kube-controller-manager kube-scheduler; do printf 'OLD_BIN[%s]=%q\n' "$c" "${KUBE_BIN_DIR-}/$c"; done
    printf 'OLD_BIN[kwok-controller]=%q\n' "${KWOK_BIN_DIR-}/kwok"
    printf 'OLD_BIN[provisioner]=%q\n' "${TOOLS_BIN_DIR-}/sandstore-local-provisioner"
    printf 'OLD_BIN[nodeproxy]=%q\n' "${TOOLS_BIN_DIR-}/sandstore-local-nodeproxy"
    printf 'OLD_BIN[local-path]=%q\n' "${LOCAL_PATH_BIN_DIR-}/local-path-provisioner"
    for c in kubelet kube-proxy; do printf 'OLD_BIN[%s]=%q\n' "$c" "${KUBE_BIN_DIR-}/$c"; done
    printf 'OLD_BIN[coredns]=%q\n' "${COREDNS_BIN_DIR-}/coredns"
    printf 'OLD_BIN[kube-router]=%q\n' "${KUBE_ROUTER_BIN_DIR-}/kube-router"
  )"
  [[ -n $APISERVER_PORT && -n $PROVISIONER_HEALTH_PORT ]] || die "$CLUSTER_DIR/cluster.env is incomplete; run down.sh --name $NAME"
  # Clusters started by an older up.sh have no kwok server port recorded: it
  # gets the next offset of the cluster's own block of 10 ports.
  KWOK_SERVER_PORT=${RECORDED_KWOK_SERVER_PORT:-$((APISERVER_PORT + 6))}
}

# The processes of this cluster, in start order: the control plane, then the
# real node's (when it has one).
set_components() {
  COMPONENTS=("${CONTROL_PLANE_COMPONENTS[@]}")
  if [[ -n $NODE_SLOT ]]; then
    node_vars
    COMPONENTS+=("${NODE_COMPONENTS[@]}")
  else
    NODE_NAME= NODE_NETNS= NODE_IP= NODE_HOST_IP= NODE_POD_CIDR= NODE_DIR= NODE_RUN_DIR= NODE_CGROUP= CONTAINERD_SOCK=
    NODE_STORAGE_DIR= NODE_VOLUMES_DIR= NODE_EXT4_DIR= NODE_XFS_DIR= NODE_VIEW_DIR= NODE_MNTNS_PATH= NODE_POD_LOGS_DIR=
  fi
}

choose_node_slot_and_record() {
  choose_node_slot
  node_vars
  write_env
}

choose_ports_and_record() {
  choose_ports
  NODE_SLOT=
  [[ $WITH_NODE == 0 ]] || { choose_node_slot; node_vars; }
  # Record immediately (inside the ports lock) so that a concurrent up.sh with
  # another name sees these ports as taken.
  CLUSTER_NAME=$NAME KUBE_CONTEXT=$NAME KUBECONFIG_CLUSTER=$ADMIN_KUBECONFIG
  API_SERVER=https://127.0.0.1:$APISERVER_PORT
  write_env
}

mkdir -p "$STATE_ROOT/clusters"
with_lock "$STATE_ROOT/locks/cluster-$NAME.lock" up
