export * from './client-node-port.js';
