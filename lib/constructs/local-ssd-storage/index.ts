export * from './local-ssd-storage.js';
