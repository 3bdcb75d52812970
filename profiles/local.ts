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
  image: { registry: 'localhost:5000', repository: 'sandstore-node', tag: 'local-latest', pullPolicy: 'IfNotPresent' },
  build: { goTags: ['grpc', 'etcd'], platform: 'linux/amd64' },
  raft: { replicas: 3, maxBatchSize: 64, maxBatchWaitMs: 10, snapshotThresholdLogs: 1000 },
  etcd: { replicas: 1, image: 'quay.io/coreos/etcd:v3.5.0', storageSize: '256Mi' },
  storage: { className: 'sandstore-local-ssd-local', provisioner: 'rancher.io/local-path', sizePerPod: '1Gi', reclaimPolicy: 'Delete' },
  nodeSelection: {
    nodeSelector: { 'node.sandstore.io/disk': 'ssd' },
    ssdTaint: { key: 'node.sandstore.io/disk', value: 'ssd', effect: 'NoSchedule' },
  },
  clientAccess: { nodePortBase: 30280 },
  resources: {
    sandstore: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '200m', memory: '256Mi' } },
    etcd: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '200m', memory: '256Mi' } },
  },
  smokeTest: true,
});
