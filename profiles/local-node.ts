import { defineProfile } from '../lib/profile.js';

/**
 * The local cluster's real node (`npm run cluster:up`): a kubelet on containerd that runs the real
 * Sand Store and etcd, pulled from the cluster's registry on localhost:5000 (scripts/local-cluster/
 * images.sh builds them offline). The node carries the SSD label and a taint that only this profile
 * tolerates, so the kwok profiles never land on it and this one never lands on a kwok node.
 */
export default defineProfile({
  name: 'local-node',
  description: "3 Raft nodes + 1 etcd member as real containers on the local cluster's real node (npm run cluster:up)",
  kube: { context: 'sandstore-local' },
  namespace: 'sandstore-node',
  image: { registry: 'localhost:5000', tag: 'local-node-latest' },
  build: { goTags: ['grpc', 'etcd'] },
  raft: { replicas: 3 },
  // etcd 3.5.9: the nearest 3.5 patch to upstream's v3.5.0 that builds with this machine's Go.
  etcd: { replicas: 1, image: 'localhost:5000/etcd:v3.5.9', storageSize: '256Mi' },
  // The real node's own directory on the host's file system, at the path where every local
  // cluster's node sees its own disk (scripts/local-cluster/node.sh): its local-path config lists
  // the ext4 and xfs mounts beside it, and picks one at random for a class that names none.
  storage: { className: 'sandstore-local-node-ssd', sizePerPod: '1Gi', nodePath: '/var/lib/sandstore-node/volumes' },
  nodeSelection: {
    nodeSelector: { 'node.sandstore.io/disk': 'ssd', 'node.sandstore.io/runtime': 'containerd' },
    ssdTaint: { key: 'node.sandstore.io/runtime', value: 'containerd' },
  },
  // The leader at one node port, 30379, whichever pod leads (docs/leader-access.md).
  clientAccess: {
    nodePortBase: 30380,
    leader: { nodePort: 30379, roleLabelImage: 'localhost:5000/sandstore-role-label:v1' },
  },
  resources: {
    // Limits a benchmark does not hit (measured with `npm run benchmark`, 4 workers): at 256Mi the
    // nodes were OOM-killed in the write phase; at 500m CPU the leader was throttled (1.2 s in one
    // 5 s phase) until a follower's election timer fired and leadership moved mid-run.
    sandstore: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    etcd: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
  },
});
