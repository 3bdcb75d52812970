export * from './sandstore-cluster.js';
export * from './sandstore-cluster-props.js';
