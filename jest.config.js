/**
 * Two projects: `unit` (constructs, profiles, synth, runner decision logic; no cluster) and `e2e`
 * (against the real local control plane, which its global set-up starts). Both run TypeScript
 * through ts-jest's ESM preset, because @kubernetes/client-node 1.x is an ES module; run with
 * NODE_OPTIONS=--experimental-vm-modules (the npm scripts do).
 */
const common = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }],
  },
};

/** @type {import('jest').Config} */
export default {
  // e2e waits are bounded by the runner's own deadlines; this is only a backstop.
  testTimeout: 300000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/lib/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/e2e/'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      globalSetup: '<rootDir>/test/e2e/global-setup.ts',
    },
  ],
};
