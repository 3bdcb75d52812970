import { defineProfile } from '../lib/profile.js';

/**
 * The offline local control plane (`npm run cluster:up`): kwok nodes, one of them tainted as the
 * SSD node. Small requests so that several profiles fit; images are never pulled (kwok runs no
 * containers).
 */
export default defineProfile({
  name: 'local',
  description: '3 Raft nodes + 1 etcd member on the local kwok cluster (npm run cluster:up)',
  kube: { context: 'sandstore-local' },
  namespace: 'sandstore-local',
  image: { registry: 'localhost:5000', tag: 'local-latest' },
  build: { goTags: ['grpc', 'etcd'] },
  raft: { replicas: 3 },
  // The local registry's etcd (scripts/local-cluster/images.sh), as local-node's: kwok pulls nothing,
  // but whatever reads the image (`check`, the baseline) stays on this machine.
  etcd: { replicas: 1, storageSize: '256Mi', image: 'localhost:5000/etcd:v3.5.9' },
  storage: { className: 'sandstore-local-ssd-local', sizePerPod: '1Gi' },
  nodeSelection: {
    nodeSelector: { 'node.sandstore.io/disk': 'ssd' },
    ssdTaint: { key: 'node.sandstore.io/disk', value: 'ssd' },
  },
  clientAccess: { nodePortBase: 30280 },
  resources: {
    sandstore: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '200m', memory: '256Mi' } },
    etcd: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '200m', memory: '256Mi' } },
  },
});
