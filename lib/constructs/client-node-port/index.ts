export * from './client-node-port.js';
export * from './client-node-port-props.js';
