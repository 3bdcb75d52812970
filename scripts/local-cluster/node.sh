# shellcheck shell=bash
# The real node of the local cluster: a kubelet on containerd + runc, CNI bridge
# networking, kube-proxy (iptables) and CoreDNS, all inside a network namespace
# of the cluster's own. Sourced by up.sh and down.sh (after lib.sh), not run.
#
#   host netns                          node netns "<cluster name>"
#   127.0.0.1:<apiserver>, :5000  <-- nodeproxy --  127.0.0.1:<apiserver>, :5000 (same addresses)
#   127.0.0.1:<apiserver>         <-- nodeproxy --  <node IP>:<apiserver> (the `kubernetes` Service's endpoint)
#   ssn<slot> 10.213.<slot>.1/30  ----- veth -----  eth0 10.213.<slot>.2/30 = node IP
#   route 10.214.<slot>.0/24 via node IP            cni0 bridge 10.214.<slot>.1/24, pods
#                                                   containerd, kubelet, kube-proxy rules,
#                                                   CoreDNS on <node IP>:53
#
# The node namespace has no default route, so nothing a pod sends can leave the
# machine; CoreDNS answers cluster names only. From the host, the node IP and its
# node ports are reachable over the veth pair, as the operator's laptop reaches
# the benchmark machine. containerd and the kubelet share a mount namespace of
# the node's own (a slave copy of the host's, so the kubelet's volume mounts are
# the ones containerd sees), where /var/log/pods and /var/log/containers are the
# node's own directories: the kubelet hard-codes those paths, and each kubelet
# deletes every pod log directory there that is not one of its pods (its
# container GC), so two real nodes on one host would delete each other's logs.
# Model: Kubernetes' hack/local-up-cluster.sh.

# local-path: rancher's provisioner for the node's volumes (up.sh starts it last).
# kube-router: NetworkPolicies (its firewall only: iptables and ipsets in the node's namespace).
NODE_COMPONENTS=(nodeproxy containerd kubelet kube-proxy kube-router coredns local-path)
NODE_SUBNET_PREFIX=10.213 # node IPs: 10.213.<slot>.0/30, one per cluster
POD_SUBNET_PREFIX=10.214  # pod ranges: 10.214.<slot>.0/24, one per cluster

# node_vars: the node's names, addresses and paths, from NAME, CLUSTER_DIR and NODE_SLOT.
node_vars() {
  NODE_NAME=$NAME-node
  NODE_NETNS=$NAME
  NODE_NETNS_PATH=/run/netns/$NODE_NETNS
  NODE_VETH_HOST=ssn$NODE_SLOT
  NODE_HOST_IP=$NODE_SUBNET_PREFIX.$NODE_SLOT.1
  NODE_IP=$NODE_SUBNET_PREFIX.$NODE_SLOT.2
  NODE_POD_CIDR=$POD_SUBNET_PREFIX.$NODE_SLOT.0/24
  NODE_DIR=$CLUSTER_DIR/node
  # Where the node's volumes live on this host, one set per cluster name like
  # NODE_RUN_DIR: volumes/ on the host's file system, ext4/ and xfs/ the mounts
  # of the images in NODE_DIR/fs (node_fs_up). The node itself (containerd, the
  # kubelet, the pods, local-path's helper pods) sees them at NODE_VIEW_DIR, the
  # same path on every cluster, as each machine of a real cluster has its own
  # disk at the same place: a profile's storage.nodePath names a path there and
  # so fits whichever local cluster it is deployed to.
  NODE_STORAGE_DIR=/var/lib/sandstore-deploy/$NAME
  NODE_VIEW_DIR=/var/lib/sandstore-node
  NODE_VOLUMES_DIR=$NODE_STORAGE_DIR/volumes
  NODE_EXT4_DIR=$NODE_STORAGE_DIR/ext4
  NODE_XFS_DIR=$NODE_STORAGE_DIR/xfs
  NODE_RUN_DIR=/run/sandstore-deploy/$NAME
  NODE_MNTNS_DIR=$NODE_RUN_DIR/ns # a private mount: a namespace file cannot live on a shared one
  NODE_MNTNS_PATH=$NODE_MNTNS_DIR/mnt
  NODE_POD_LOGS_DIR=$NODE_DIR/pod-logs             # /var/log/pods in the node's mount namespace
  NODE_CONTAINER_LOGS_DIR=$NODE_DIR/container-logs # /var/log/containers there
  NODE_CGROUP=sandstore-$NAME
  CONTAINERD_SOCK=$NODE_RUN_DIR/containerd.sock
}

# nsx CMD...: run a command in the node's network namespace (network only: the
# mount namespace stays the host's).
nsx() { nsenter --net="$NODE_NETNS_PATH" "$@"; }

# node_mntns_up: the node's mount namespace (see the top), kept by a bind of
# its /proc/<pid>/ns/mnt on NODE_MNTNS_PATH as `ip netns` keeps network ones.
# Idempotent: an existing, working one is kept.
node_mntns_up() {
  mkdir -p "$NODE_MNTNS_DIR" "$NODE_POD_LOGS_DIR" "$NODE_CONTAINER_LOGS_DIR" /var/log/pods /var/log/containers "$NODE_VIEW_DIR"
  if ! { [[ -e $NODE_MNTNS_PATH ]] && nsenter --mount="$NODE_MNTNS_PATH" true 2>/dev/null; }; then
    if ! mountpoint -q "$NODE_MNTNS_DIR" && ! { mount --bind "$NODE_MNTNS_DIR" "$NODE_MNTNS_DIR" && mount --make-private "$NODE_MNTNS_DIR"; }; then
      fail "" "could not make $NODE_MNTNS_DIR a private mount (for the node's mount namespace)"
    fi
    : >"$NODE_MNTNS_PATH"
    # shellcheck disable=SC2016
    unshare --mount="$NODE_MNTNS_PATH" --propagation slave \
      sh -c 'mount --bind "$0" /var/log/pods && mount --bind "$1" /var/log/containers' "$NODE_POD_LOGS_DIR" "$NODE_CONTAINER_LOGS_DIR" ||
      fail "" "could not create the node's mount namespace with its own /var/log/pods"
  fi
  # The node's disk at its own path (node_vars), the ext4 and xfs mounts with it (--rbind). Also
  # added to a namespace made before there was one, so a kept cluster gets it on its next up.sh.
  nsenter --mount="$NODE_MNTNS_PATH" mountpoint -q "$NODE_VIEW_DIR" ||
    nsenter --mount="$NODE_MNTNS_PATH" mount --rbind "$NODE_STORAGE_DIR" "$NODE_VIEW_DIR" ||
    fail "" "could not bind $NODE_STORAGE_DIR on $NODE_VIEW_DIR in the node's mount namespace"
}

# node_mntns_down: the namespace goes with its last process and its file.
node_mntns_down() {
  if mountpoint -q "$NODE_MNTNS_DIR" 2>/dev/null; then
    [[ ! -e $NODE_MNTNS_PATH ]] || umount "$NODE_MNTNS_PATH" 2>/dev/null || true
    umount "$NODE_MNTNS_DIR" 2>/dev/null || umount -l "$NODE_MNTNS_DIR" 2>/dev/null || warn "could not unmount $NODE_MNTNS_DIR"
  fi
}

# node_preflight: everything the real node needs, checked before anything
# starts; one message listing all that is missing.
node_preflight() {
  local miss=() c f
  [[ $(id -u) == 0 ]] ||
    miss+=("root: the real node creates a network namespace, mounts and cgroups (run as root, or up.sh --no-node for a kwok-only cluster)")
  grep -qw overlay /proc/filesystems 2>/dev/null ||
    miss+=("overlayfs (containerd's snapshotter): 'overlay' is not in /proc/filesystems (modprobe overlay)")
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    for c in cpu memory pids; do
      grep -qw "$c" /sys/fs/cgroup/cgroup.controllers || miss+=("cgroup v2 controller '$c' (not in /sys/fs/cgroup/cgroup.controllers)")
    done
  else
    for c in cpu cpuacct cpuset memory pids; do
      [[ -d /sys/fs/cgroup/$c ]] || miss+=("cgroup v1 controller '$c' (no /sys/fs/cgroup/$c)")
    done
  fi
  grep -q '^Seccomp:' /proc/self/status 2>/dev/null || miss+=("seccomp support in the kernel (pods run with RuntimeDefault)")
  declare -A pkg=([ip]=iproute2 [nsenter]=util-linux [mount]=mount [umount]=mount [iptables]=iptables
    [iptables-save]=iptables [iptables-restore]=iptables [containerd]=containerd [containerd-shim-runc-v2]=containerd
    [ctr]=containerd [runc]=runc [conntrack]=conntrack
    [ipset]=ipset)
  for c in "${!pkg[@]}"; do
    command -v "$c" >/dev/null 2>&1 || miss+=("command '$c' (Debian package ${pkg[$c]}; scripts/local-cluster/install-prereqs.sh installs it)")
  done
  for f in bridge host-local loopback portmap; do
    [[ -x /usr/lib/cni/$f ]] || miss+=("CNI plugin /usr/lib/cni/$f (Debian package containernetworking-plugins)")
  done
  if [[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
    modprobe br_netfilter 2>/dev/null || true
    [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] ||
      miss+=("br_netfilter (kube-proxy's Service rules must see bridged pod traffic): modprobe br_netfilter failed")
  fi
  if ((${#miss[@]})); then
    printf '%s[local-cluster] ERROR:%s the real node cannot run on this machine; missing:\n' "$_c_r" "$_c_0" >&2
    printf '  - %s\n' "${miss[@]}" >&2
    exit 1
  fi
}

# choose_node_slot: the lowest slot (0-249) no other cluster has recorded, so
# that two clusters' node and pod ranges never overlap.
choose_node_slot() {
  local used s
  used=" $(cat "$STATE_ROOT"/clusters/*/cluster.env 2>/dev/null | sed -n 's/^NODE_SLOT=//p' | tr '\n' ' ' || true) "
  for ((s = 0; s < 250; s++)); do
    [[ $used == *" $s "* ]] && continue
    if ip -4 addr show 2>/dev/null | grep -q "inet $NODE_SUBNET_PREFIX\.$s\.\|inet $POD_SUBNET_PREFIX\.$s\."; then continue; fi
    NODE_SLOT=$s
    return 0
  done
  die "no free node slot: 250 local clusters with a real node already exist"
}

# node_net_up: namespace, veth pair, addresses, routes, sysctls. Idempotent: a
# half-made set-up (an interrupted up.sh) is completed, not duplicated.
node_net_up() {
  [[ -e $NODE_NETNS_PATH ]] || ip netns add "$NODE_NETNS" || fail "" "could not create network namespace $NODE_NETNS"
  if ! ip link show "$NODE_VETH_HOST" >/dev/null 2>&1; then
    nsx ip link del eth0 >/dev/null 2>&1 || true
    ip link add "$NODE_VETH_HOST" type veth peer name eth0 netns "$NODE_NETNS" ||
      fail "" "could not create the veth pair $NODE_VETH_HOST <-> $NODE_NETNS/eth0"
  fi
  ip addr replace "$NODE_HOST_IP/30" dev "$NODE_VETH_HOST"
  ip link set "$NODE_VETH_HOST" up
  nsx ip link set lo up
  nsx ip addr replace "$NODE_IP/30" dev eth0
  nsx ip link set eth0 up
  # The host reaches pods (kube-apiserver's proxy, debugging) through the node.
  ip route replace "$NODE_POD_CIDR" via "$NODE_IP" dev "$NODE_VETH_HOST"
  # Inside the node only: forwarding between eth0 and the bridge, bridged
  # traffic through iptables (Service NAT between pods on one bridge).
  nsx sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 >/dev/null ||
    fail "" "could not set the node namespace's sysctls (ip_forward, bridge-nf-call-iptables)"
}

# node_cgroup_up: a cgroup per cluster under which the kubelet puts every pod
# (its cgroupRoot must exist), so that down.sh can find every container process.
node_cgroup_up() {
  local d
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    mkdir -p "/sys/fs/cgroup/$NODE_CGROUP"
    return 0
  fi
  for d in /sys/fs/cgroup/*/; do
    [[ -f $d/cgroup.procs ]] || continue
    mkdir -p "$d$NODE_CGROUP"
    # A new cpuset cgroup starts with no cpus and mems: no task could join it.
    if [[ -f $d/cpuset.cpus && -z $(tr -d '\n' <"$d$NODE_CGROUP/cpuset.cpus") ]]; then
      cat "$d/cpuset.cpus" >"$d$NODE_CGROUP/cpuset.cpus"
      cat "$d/cpuset.mems" >"$d$NODE_CGROUP/cpuset.mems"
    fi
  done
}

# The node's file systems: a sparse image each (made once, kept by down.sh
# --keep-state), loop-mounted by up.sh and unmounted by every teardown.
NODE_FS_TYPES=(ext4 xfs)
NODE_FS_SIZE=3G
declare -A MKFS_FORCE=([ext4]=-F [xfs]=-f) # format a file, not a block device
node_fs_dir() { case $1 in ext4) echo "$NODE_EXT4_DIR" ;; xfs) echo "$NODE_XFS_DIR" ;; esac; }
node_fs_image() { echo "$NODE_DIR/fs/$1.img"; }

# node_fs_mounted FS: its image is what is mounted at its directory.
node_fs_mounted() {
  local src
  src=$(findmnt -n -o SOURCE --mountpoint "$(node_fs_dir "$1")" 2>/dev/null) || return 1
  [[ $src == /dev/loop* ]] && losetup -n -O BACK-FILE "$src" 2>/dev/null | grep -qxF "$(node_fs_image "$1")"
}

# node_fs_up: make what is missing (image, mount point), mount what is not
# mounted. An image is formatted under a temporary name and renamed after, so
# an interrupted mkfs leaves no half-made image behind.
node_fs_up() {
  local fs img dir
  mkdir -p "$NODE_DIR/fs" "$NODE_VOLUMES_DIR"
  chmod 711 "$NODE_STORAGE_DIR" "$NODE_VOLUMES_DIR"
  for fs in "${NODE_FS_TYPES[@]}"; do
    img=$(node_fs_image "$fs") dir=$(node_fs_dir "$fs")
    if [[ ! -f $img ]]; then
      rm -f "$img.tmp"
      if ! { truncate -s "$NODE_FS_SIZE" "$img.tmp" && "mkfs.$fs" -q "${MKFS_FORCE[$fs]}" "$img.tmp" >/dev/null; }; then
        rm -f "$img.tmp"
        fail "" "could not make the $fs image $img (mkfs.$fs; install-prereqs.sh installs it)"
      fi
      mv "$img.tmp" "$img"
    fi
    mkdir -p "$dir"
    node_fs_mounted "$fs" && continue
    node_fs_down_one "$fs" # something else there (a stale loop device): gone first
    mount -t "$fs" -o loop "$img" "$dir" || fail "" "could not mount $img ($fs) at $dir"
  done
}

# node_fs_down_one FS: unmount its directory (lazily if busy) and detach every
# loop device still backed by its image.
node_fs_down_one() {
  local dir img dev
  dir=$(node_fs_dir "$1") img=$(node_fs_image "$1")
  while findmnt -n --mountpoint "$dir" >/dev/null 2>&1; do
    umount "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null || { warn "could not unmount $dir"; break; }
  done
  [[ -f $img ]] || return 0
  for dev in $(losetup -n -O NAME -j "$img" 2>/dev/null); do
    losetup -d "$dev" 2>/dev/null || warn "could not detach $dev ($img)"
  done
}

node_fs_down() {
  local fs
  for fs in "${NODE_FS_TYPES[@]}"; do node_fs_down_one "$fs"; done
}

node_write_configs() {
  local cfg=$NODE_DIR/config
  mkdir -p "$cfg" "$NODE_DIR"/{containerd,kubelet,cni/net.d,cni/ipam} "$NODE_RUN_DIR" \
    "$NODE_DIR/containerd/certs.d/localhost:5000" "$NODE_DIR/containerd/certs.d/$AUTH_REGISTRY_ADDR"
  chmod 711 "$NODE_DIR"

  cat >"$cfg/containerd.toml" <<EOF
# containerd of the real node of local cluster '$NAME' (written by up.sh)
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_RUN_DIR/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost:5000/pause:3.9"
  # This machine refuses negative oom_score_adj values; without this runc
  # cannot start the pause container.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$NODE_DIR/containerd/certs.d"
EOF
  # The registry is plain HTTP on loopback (the node reaches it through nodeproxy).
  cat >"$NODE_DIR/containerd/certs.d/localhost:5000/hosts.toml" <<EOF
server = "http://localhost:5000"
[host."http://localhost:5000"]
  capabilities = ["pull", "resolve"]
EOF
  # The authenticated one (scripts/docker-engine.sh): the kubelet passes the pod's pull Secret.
  cat >"$NODE_DIR/containerd/certs.d/$AUTH_REGISTRY_ADDR/hosts.toml" <<EOF
server = "http://$AUTH_REGISTRY_ADDR"
[host."http://$AUTH_REGISTRY_ADDR"]
  capabilities = ["pull", "resolve"]
EOF

  cat >"$NODE_DIR/cni/net.d/10-sandstore.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "sandstore-$NAME",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$NODE_POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

  # Pods get the cluster DNS only: no host search domains, no upstream servers.
  printf '# intentionally empty: cluster DNS only (kubelet clusterDNS)\n' >"$cfg/resolv.conf"

  cat >"$cfg/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $CLUSTER_DIR/pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $CLUSTER_DIR/pki/kubelet-server.crt
tlsPrivateKeyFile: $CLUSTER_DIR/pki/kubelet-server.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
cgroupRoot: /$NODE_CGROUP
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: $cfg/resolv.conf
volumePluginDir: $NODE_DIR/kubelet/volume-plugins
failSwapOn: false
# This machine refuses negative oom_score_adj values.
oomScoreAdj: 0
serializeImagePulls: false
# A developer machine's disk is often fuller than a server's: evict only when
# it is really full, never because of the defaults' 10-15 %.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
EOF

  cat >"$cfg/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $CLUSTER_DIR/kubeconfigs/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $NODE_POD_CIDR
nodePortAddresses: [$NODE_IP/32]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
# In a network namespace other than the host's, conntrack's global sysctls are
# read-only: leave them as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF

  # Cluster names only: no forward plugin, so any other name is refused.
  cat >"$cfg/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:10254
    ready 127.0.0.1:10253
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $CLUSTER_DIR/kubeconfigs/coredns.kubeconfig $NAME
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
}
EOF
}

node_http_ok() { # node_http_ok URL (inside the node namespace): 200 with body ok/OK
  local body
  body=$(nsx timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET $2 HTTP/1.0\r\nHost: x\r\n\r\n" >&3 && cat <&3' "$@" 2>/dev/null) || return 1
  [[ $body == "HTTP/1."?" 200"* ]]
}

# node_ready: the Node says Ready. With KUBELET_STARTED_AT set (node_start), only a Ready
# condition the new kubelet posted counts: after a repair the Node object in etcd still says
# Ready from the killed kubelet, and the new one may post NotReady first (runtime network, PLEG).
node_ready() {
  local ready heartbeat
  ready=$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}' 2>/dev/null) || return 1
  heartbeat=${ready#* }
  [[ ${ready%% *} == True ]] || return 1
  [[ -z ${KUBELET_STARTED_AT:-} ]] || (( $(date -u -d "$heartbeat" +%s 2>/dev/null || echo 0) >= KUBELET_STARTED_AT ))
}

# node_start: configs, network, then the daemons in dependency order. The
# caller (up.sh) has started the control plane and the registry.
cri_serving() { # this start of containerd's has logged that its CRI service serves
  awk '/===== .* starting containerd =====/ { up = 0 } /msg="Start streaming server"/ { up = 1 } END { exit !up }' \
    "$CLUSTER_DIR/logs/containerd.log"
}

node_start() {
  local t
  t=$(now_ms)
  log "starting the real node '$NODE_NAME' (network namespace $NODE_NETNS, node IP $NODE_IP, pods $NODE_POD_CIDR)"
  "$TOOLS_BIN_DIR/sandstore-local-pki" -dir "$PKI" -name "$NAME" -node "$NODE_NAME" -node-ip "$NODE_IP" ||
    fail "" "certificate generation for the node failed"
  write_component_kubeconfig kubelet kubelet
  write_component_kubeconfig kube-proxy kube-proxy
  write_component_kubeconfig coredns coredns
  write_component_kubeconfig kube-router kube-router
  kc apply -f "$LC_DIR/node-rbac.yaml" >/dev/null || fail kube-apiserver "applying node-rbac.yaml (CoreDNS's read-only role) failed"
  node_write_configs
  node_net_up
  # The file systems first: the node's mount namespace is a copy of the host's
  # mounts when it is made, and the host's root is private here (no mount made
  # on the host later reaches it).
  node_fs_up
  node_mntns_up
  node_cgroup_up

  # The node's daemons use the host's addresses; pods reach the API server through the `kubernetes`
  # Service, whose endpoint is the node IP (up.sh's advertise_address): listened on here, in the
  # node's namespace, which no packet from beyond this machine can reach (no default route).
  start_component nodeproxy -netns "$NODE_NETNS_PATH" \
    -forward "127.0.0.1:$APISERVER_PORT=127.0.0.1:$APISERVER_PORT" -forward "$REGISTRY_ADDR=$REGISTRY_ADDR" \
    -forward "$AUTH_REGISTRY_ADDR=$AUTH_REGISTRY_ADDR" \
    -forward "$NODE_IP:$APISERVER_PORT=127.0.0.1:$APISERVER_PORT"
  IN_NETNS=$NODE_NETNS_PATH IN_MNTNS=$NODE_MNTNS_PATH start_component containerd --config "$NODE_DIR/config/containerd.toml"
  wait_until 30 "containerd to answer on $CONTAINERD_SOCK" containerd \
    ctr --address "$CONTAINERD_SOCK" version
  # containerd answers before its CRI service has reloaded its saved state (longer the more dead
  # containers it holds: 3 ms on a new node, 255 ms after a few restarts); a kubelet started then
  # fails its first CRI call ("server is not initialized yet") and exits. The CRI logs "Start
  # streaming server" as its last step before it serves.
  wait_until 30 "containerd's CRI service to load its state" containerd cri_serving
  KUBELET_STARTED_AT=$(date -u +%s)
  IN_NETNS=$NODE_NETNS_PATH IN_MNTNS=$NODE_MNTNS_PATH start_component kubelet \
    --config "$NODE_DIR/config/kubelet.yaml" \
    --kubeconfig "$CLUSTER_DIR/kubeconfigs/kubelet.kubeconfig" \
    --root-dir "$NODE_DIR/kubelet" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "node.sandstore.io/disk=ssd,node.sandstore.io/runtime=containerd" \
    --register-with-taints "node.sandstore.io/runtime=containerd:NoSchedule" \
    --pod-infra-container-image localhost:5000/pause:3.9 \
    --v=1
  IN_NETNS=$NODE_NETNS_PATH start_component kube-proxy --config "$NODE_DIR/config/kube-proxy.yaml" --v=1
  IN_NETNS=$NODE_NETNS_PATH start_component coredns -conf "$NODE_DIR/config/Corefile"

  # The kubelet's own health first: a Node object left from before a restart still says Ready.
  wait_until 60 "the kubelet's /healthz" kubelet node_http_ok 127.0.0.1 10248 /healthz
  wait_until 120 "the real node $NODE_NAME to be Ready" kubelet node_ready
  # NetworkPolicies: kube-router's firewall alone, in the node's network namespace (its iptables
  # chains and ipsets are that namespace's own, gone with it), for the node's pods only. Started
  # once the Node is registered: kube-router exits when no Node has its --hostname-override yet,
  # which happened on a loaded machine when it started alongside the kubelet.
  IN_NETNS=$NODE_NETNS_PATH start_component kube-router --run-firewall=true --run-router=false \
    --run-service-proxy=false --enable-cni=false --enable-pod-egress=false --enable-overlay=false \
    --kubeconfig "$CLUSTER_DIR/kubeconfigs/kube-router.kubeconfig" --hostname-override "$NODE_NAME" \
    --service-cluster-ip-range 10.96.0.0/12 --health-port "$KUBE_ROUTER_HEALTH_PORT" --metrics-port 0 --v=1
  wait_until 60 "kube-proxy /healthz" kube-proxy node_http_ok 127.0.0.1 10256 /healthz
  wait_until 60 "CoreDNS /ready" coredns node_http_ok 127.0.0.1 10253 /ready
  wait_until 60 "kube-router's firewall to sync the NetworkPolicies" kube-router kube_router_ready
  local_path_start
  log "  real node Ready after $(elapsed "$t")"
}

# local-path.yaml as this cluster gets it: its node, paths and helper image.
render_local_path() {
  sed -e "s|@NODE_NAME@|$NODE_NAME|g" -e "s|@VIEW_DIR@|$NODE_VIEW_DIR|g" \
    -e "s|@BUSYBOX_VERSION@|$BUSYBOX_VERSION|g" "$LC_DIR/local-path/local-path.yaml"
}

# local_path_started: its log says so since the last start. One awk over the
# file, no pipe: with pipefail, `tac log | sed .../q | grep -q` failed on a log
# longer than a pipe's buffer (a restart on kept state), tac dying of SIGPIPE.
local_path_started() {
  awk '/===== .* starting local-path =====/ { started = 0 } /Started provisioner controller/ { started = 1 } END { exit !started }' \
    "$CLUSTER_DIR/logs/local-path.log"
}

# local_path_start: its namespace, helper pods' service account, ConfigMap and
# file-system classes, then the provisioner (a host process, like the test
# provisioner: up.sh's pid files, logs and repair apply; its helper pods run
# on the node). It reads its ConfigMap when it starts.
local_path_start() {
  render_local_path >"$CLUSTER_DIR/local-path.yaml"
  # The classes' nodePath (immutable) is fixed: re-applied unchanged. A class of a cluster made
  # when the node saw its disk at another path is replaced (it is up.sh's own; volumes keep theirs).
  local fs path
  for fs in ext4 xfs; do
    path=$(kc get storageclass "local-path-$fs" -o 'jsonpath={.parameters.nodePath}' 2>/dev/null || true)
    [[ -z $path || $path == "$NODE_VIEW_DIR/$fs" ]] || kc delete storageclass "local-path-$fs" >/dev/null
  done
  kc apply -f "$CLUSTER_DIR/local-path.yaml" >/dev/null ||
    fail kube-apiserver "applying local-path.yaml (local-path-provisioner's namespace, ConfigMap, StorageClasses) failed"
  start_component local-path start --kubeconfig "$CLUSTER_DIR/kubeconfigs/admin.kubeconfig" \
    --namespace local-path-storage --configmap-name local-path-config \
    --service-account-name local-path-provisioner-service-account \
    --helper-image "localhost:5000/busybox:$BUSYBOX_VERSION"
  wait_until 60 "local-path-provisioner to start its controller" local-path local_path_started
}

KUBE_ROUTER_HEALTH_PORT=20244 # kube-router's default, in the node's namespace
# kube_router_ready: healthy, and its first sync has hooked its chains into the node's FORWARD chain
# (until then no policy is enforced).
kube_router_ready() {
  node_http_ok 127.0.0.1 "$KUBE_ROUTER_HEALTH_PORT" /healthz && nsx iptables -w 5 -S FORWARD 2>/dev/null | grep -q KUBE-ROUTER-FORWARD
}

node_running() {
  local c
  for c in "${NODE_COMPONENTS[@]}"; do running "$c" || return 1; done
  node_ready
}

# ---------------------------------------------------------------------------
# Tear-down (down.sh, and up.sh when it restarts a broken node). Every step is
# safe to repeat and to run on a half-made node.
# ---------------------------------------------------------------------------

# node_kill_containers: the processes the kubelet's pods run (in the cluster's
# cgroup) and containerd's shims for this node (they outlive containerd).
node_kill_containers() {
  local pids=() p f i
  for ((i = 0; i < 3; i++)); do
    pids=()
    for f in /sys/fs/cgroup/pids/"$NODE_CGROUP" /sys/fs/cgroup/"$NODE_CGROUP"; do
      [[ -d $f ]] || continue
      while read -r p; do [[ -n $p ]] && pids+=("$p"); done < <(find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null)
    done
    for p in /proc/[0-9]*; do
      [[ -r $p/cmdline ]] || continue
      if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "^containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK\|^/usr/bin/containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK"; then
        pids+=("${p#/proc/}")
      fi
    done
    ((${#pids[@]})) || return 0
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.3
  done
}

node_unmount_all() { # every mount under the node's directories, deepest first
  local m
  for m in $(awk '{print $2}' /proc/self/mounts | grep -E "^($NODE_DIR|$NODE_RUN_DIR)(/|$)" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || warn "could not unmount $m"
  done
}

node_cgroup_down() {
  local d
  for d in /sys/fs/cgroup/*/"$NODE_CGROUP" /sys/fs/cgroup/"$NODE_CGROUP"; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d $d ]] && warn "could not remove cgroup $d"
  done
  return 0
}

# node_teardown: after the node's daemons are stopped (by pid): containers,
# mounts (those in the node's mount namespace go with it), namespaces (with the
# network one the veth pair, the bridge and every iptables rule of the node),
# route, cgroups, run dir. The node's pod logs stay in NODE_DIR with its state.
node_teardown() {
  node_kill_containers
  node_mntns_down
  node_unmount_all
  node_fs_down
  if [[ -e $NODE_NETNS_PATH ]]; then
    ip netns del "$NODE_NETNS" 2>/dev/null || warn "could not delete network namespace $NODE_NETNS"
  fi
  ip link del "$NODE_VETH_HOST" >/dev/null 2>&1 || true
  ip route del "$NODE_POD_CIDR" >/dev/null 2>&1 || true
  node_cgroup_down
  rm -rf "$NODE_RUN_DIR"
  rmdir /run/sandstore-deploy 2>/dev/null || true
}
