// ESLint: typescript-eslint's type-checked recommended rules over the TypeScript sources, ESLint's
// recommended rules over the plain-JavaScript scripts. `npm run lint`; `npm run typecheck` (CI) runs it.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', '.cache/', 'tmp/', 'scratch/', 'test-artifacts/'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A promise nobody awaits loses its error: await it, or `void` it with a comment saying why.
      // node:test's test() and describe() return promises that the runner itself awaits and reports.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      // Implementations of Promise-returning interfaces (VS Code providers, test fakes, build hooks) are
      // `async` so that a throw becomes a rejection, whether or not they await anything.
      '@typescript-eslint/require-await': 'off',
      // As tsc's noUnusedLocals: names dropped from a destructuring (`{ a: _a, ...rest }`) or unused
      // leading parameters are marked with a leading underscore.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // A `let` that callbacks read before its one assignment (`let server; ... server = new ...`) stays a let.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Tests and benchmarks read JSON from real processes, servers and files (replies, checkpoints'
    // configs, result files) and check it field by field; a declared type per reply would only restate
    // those checks.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
  },
);
