// Bundles the four programs with esbuild; tsc only type-checks.
//   dist/extension.cjs  VS Code extension host (CommonJS, `vscode` external, never onnxruntime)
//   dist/runtime.mjs    the inference process (ESM, native packages external)
//   dist/cli.mjs        the `recursivemas` command line (ESM, native packages external)
//   dist/webview.js     the panel UI (browser IIFE) + dist/webview.css
// Usage: node scripts/build.mjs [--watch] [--production] [--only=extension,webview,...]
import { build, context } from 'esbuild';
import { existsSync, mkdirSync, copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
const dist = join(root, 'dist');
mkdirSync(dist, { recursive: true });

// Native or self-locating packages stay outside the bundles and are resolved from node_modules.
const nativeExternal = ['onnxruntime-node', 'onnxruntime-common', 'node-llama-cpp'];

// The extension host must never load an inference library: fail the build if anything pulls one in.
const forbidInference = {
  name: 'forbid-inference-in-extension-host',
  setup(b) {
    b.onResolve({ filter: /^(onnxruntime-node|onnxruntime-common|onnxruntime-web|node-llama-cpp)(\/|$)/ }, (args) => ({
      errors: [{ text: `${args.path} imported from ${args.importer}: the extension host must not load inference code; talk to the runtime process instead.` }],
    }));
  },
};

// ESM bundles that contain CommonJS dependencies need a real `require`.
const esmBanner = {
  js: "import { createRequire as __rmasCreateRequire } from 'node:module'; const require = __rmasCreateRequire(import.meta.url);",
};

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'warning',
  legalComments: 'none',
};

const targets = [
  {
    name: 'extension',
    entry: 'src/extension/extension.ts',
    options: {
      ...common,
      outfile: join(dist, 'extension.cjs'),
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      external: ['vscode'],
      plugins: [forbidInference],
      // Shared modules written as ESM may read import.meta.url; give them this bundle's own URL.
      define: { 'import.meta.url': '__rmasImportMetaUrl' },
      banner: { js: "const __rmasImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    },
  },
  {
    name: 'runtime',
    entry: 'src/runtime/process/main.ts',
    options: {
      ...common,
      outfile: join(dist, 'runtime.mjs'),
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: nativeExternal,
      banner: esmBanner,
    },
  },
  {
    name: 'cli',
    entry: 'src/cli/main.ts',
    options: {
      ...common,
      outfile: join(dist, 'cli.mjs'),
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: nativeExternal,
      banner: esmBanner,
    },
  },
  {
    name: 'webview',
    entry: 'webview/main.ts',
    options: {
      ...common,
      outfile: join(dist, 'webview.js'),
      platform: 'browser',
      format: 'iife',
      target: ['chrome114'],
    },
  },
];

function copyCss() {
  const src = join(root, 'webview', 'main.css');
  if (existsSync(src)) copyFileSync(src, join(dist, 'webview.css'));
}

/** Checks a written bundle for a stray inference import, in case a plugin was bypassed. */
function checkExtensionBundle() {
  const file = join(dist, 'extension.cjs');
  if (!existsSync(file)) return;
  const text = readFileSync(file, 'utf8');
  if (/require\(["']onnxruntime|from ["']onnxruntime|node-llama-cpp/.test(text)) {
    throw new Error('dist/extension.cjs references an inference package; the extension must only talk to the runtime process.');
  }
}

const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const active = targets.filter((t) => {
  if (only && !only.includes(t.name)) return false;
  if (existsSync(join(root, t.entry))) return true;
  console.warn(`build: skipping ${t.name}: ${t.entry} does not exist yet`);
  return false;
});

const started = Date.now();
if (watch) {
  for (const t of active) {
    const ctx = await context({ ...t.options, entryPoints: [join(root, t.entry)] });
    await ctx.watch();
  }
  copyCss();
  console.log(`build: watching ${active.map((t) => t.name).join(', ')}`);
} else {
  // Build every target even when one fails, so one broken entry does not hide the others' errors.
  const results = await Promise.allSettled(active.map((t) => build({ ...t.options, entryPoints: [join(root, t.entry)] })));
  const failed = active.filter((_, i) => results[i].status === 'rejected').map((t) => t.name);
  copyCss();
  checkExtensionBundle();
  const built = active.map((t) => t.name).filter((n) => !failed.includes(n));
  console.log(`build: ${built.join(', ') || 'nothing'} in ${Date.now() - started} ms`);
  if (failed.length) {
    console.error(`build: FAILED: ${failed.join(', ')} (errors above)`);
    process.exit(1);
  }
}
