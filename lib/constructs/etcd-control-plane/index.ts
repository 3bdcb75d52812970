export * from './etcd-control-plane.js';
export * from './etcd-control-plane-props.js';
