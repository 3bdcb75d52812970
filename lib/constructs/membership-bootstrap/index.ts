export * from './membership-bootstrap.js';
export * from './membership-bootstrap-props.js';
export * from './membership-txn.js';
