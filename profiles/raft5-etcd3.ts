import { defineProfile } from '../lib/profile.js';

/**
 * A fault-tolerance set-up: 5 Raft nodes survive two failures, 3 etcd members survive one. SSD nodes
 * are tainted so that only storage pods land there; larger batches trade latency for throughput.
 */
export default defineProfile({
  name: 'raft5-etcd3',
  description: '5 Raft nodes + 3 etcd members on tainted SSD nodes, batched for throughput',
  kube: { context: 'minikube-laptop' },
  namespace: 'sandstore-raft5',
  image: { registry: 'docker.io/sandstore', tag: 'raft5-etcd3-latest' },
  build: { goTags: ['grpc', 'etcd'] },
  raft: { replicas: 5, maxBatchSize: 256, maxBatchWaitMs: 20, snapshotThresholdLogs: 5000 },
  etcd: { replicas: 3, storageSize: '2Gi' },
  storage: { className: 'sandstore-local-ssd-raft5', sizePerPod: '40Gi' },
  nodeSelection: {
    nodeSelector: { 'node.sandstore.io/disk': 'ssd' },
    ssdTaint: { key: 'node.sandstore.io/disk', value: 'ssd' },
  },
  clientAccess: { nodePortBase: 30180 },
  resources: {
    sandstore: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '2', memory: '4Gi' } },
    etcd: { requests: { cpu: '200m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
  },
});
