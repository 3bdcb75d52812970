export * from './smoke-test.js';
export * from './smoke-test-props.js';
