export * from './sandstore-cluster.js';
