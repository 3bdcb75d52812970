export * from './etcd-control-plane.js';
