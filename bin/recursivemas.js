#!/usr/bin/env node
// The published entry point: the bundled CLI (built by `npm run build`, which `npm install` runs).
import('../dist/cli.mjs').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('recursivemas: the CLI is not built yet. Run `npm run build` in the package folder.');
    process.exit(70);
  }
  throw error;
});
