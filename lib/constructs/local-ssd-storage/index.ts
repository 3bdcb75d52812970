export * from './local-ssd-storage.js';
export * from './local-ssd-storage-props.js';
