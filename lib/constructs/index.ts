export * from './local-ssd-storage/index.js';
export * from './etcd-control-plane/index.js';
export * from './sandstore-cluster/index.js';
export * from './client-node-port/index.js';
export * from './network-policies/index.js';
export * from './resources.js';
export * from './security.js';
