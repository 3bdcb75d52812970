export * from './network-policies.js';
