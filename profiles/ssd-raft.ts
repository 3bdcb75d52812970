import { defineProfile } from '../lib/profile.js';

/** The seed's benchmark set-up: 3 Raft nodes and 1 etcd member on the laptop's SSD, via minikube. */
export default defineProfile({
  name: 'ssd-raft',
  description: "3 Raft nodes + 1 etcd member on the benchmark laptop's local SSD (the seed set-up)",
  kube: { context: 'minikube-laptop' },
  namespace: 'sandstore',
  image: { registry: 'docker.io/sandstore', tag: 'ssd-raft-latest' },
  build: { goTags: ['grpc', 'etcd'] },
  raft: { replicas: 3 },
  etcd: { replicas: 1 },
  storage: { sizePerPod: '20Gi' },
  // Tolerating the SSD taint is harmless where the node has none (the seed's single-node laptop).
  nodeSelection: {
    nodeSelector: { 'node.sandstore.io/disk': 'ssd' },
    ssdTaint: { key: 'node.sandstore.io/disk', value: 'ssd' },
  },
  clientAccess: { nodePortBase: 30080 },
  resources: {
    sandstore: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } },
    etcd: { requests: { cpu: '200m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } },
  },
});
