/**
 * ESLint: typescript-eslint's type-aware rules (recommendedTypeChecked, the types from tsconfig.json
 * through the project service) on the TypeScript, the recommended rules on the few JavaScript
 * files, and no formatting rules: Prettier formats (its settings are in package.json).
 */
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // Generated or written by the tools: synthesized YAML, run results, coverage.
  { ignores: ['dist/', 'results/', 'coverage/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A caught error passed on as it is (its type is unknown), as only-throw-error allows by default.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // `const { omitted: _omitted, ...rest } = o` is how the code leaves a key out.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
  {
    // CommonJS by necessity: cdk8s-cli loads validation plugins with require().
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
  {
    // After eslint-config-prettier, which turns it off. Prettier wraps code to its printWidth (120,
    // in package.json), but not comments: a comment line is held to the same width here.
    rules: { 'max-len': ['error', { code: Number.MAX_SAFE_INTEGER, comments: 120, ignoreUrls: true }] },
  },
);
