export * from './network-policies.js';
export * from './network-policies-props.js';
