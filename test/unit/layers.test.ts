// The layering check (.dependency-cruiser.cjs) on the real tree, and on a small tree with wrong
// imports, to show it fails where it must (a check that never fails checks nothing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const config = join(root, '.dependency-cruiser.cjs');
const cli = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

function cruise(cwd: string, paths: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [cli, '--config', config, '--output-type', 'err', ...paths], { cwd, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('the source tree imports in the layer order, without cycles', () => {
  const r = cruise(root, ['src', 'webview']);
  assert.equal(r.status, 0, r.output);
});

test('the engine entry point, `recursivemas models` and the runtime process load no onnxruntime until a team or a model is loaded', () => {
  const r = spawnSync(process.execPath, [cli, '--config', config, '--output-type', 'json', 'src'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr);
  const graph = new Map<string, { resolved: string; dependencyTypes: string[] }[]>();
  for (const m of (JSON.parse(r.stdout) as { modules: { source: string; dependencies: { resolved: string; dependencyTypes: string[] }[] }[] }).modules) {
    graph.set(m.source, m.dependencies);
  }
  /** The modules loading `start` loads: static imports only (a dynamic import waits for its first use, a type import loads nothing). */
  const loadedWith = (start: string): Map<string, string> => {
    const from = new Map<string, string>([[start, '']]);
    const queue = [start];
    for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
      for (const d of graph.get(next) ?? []) {
        if (d.dependencyTypes.some((type) => type === 'dynamic-import' || type === 'type-only') || from.has(d.resolved)) continue;
        from.set(d.resolved, next);
        queue.push(d.resolved);
      }
    }
    return from;
  };
  for (const entry of ['src/engine/index.ts', 'src/cli/models.ts', 'src/runtime/process/main.ts']) {
    assert.ok(graph.has(entry), `${entry} is not in the cruised graph`);
    const loaded = loadedWith(entry);
    const inference = [...loaded.keys()].find((m) => /node_modules\/onnxruntime-(node|common)\/(?!package\.json$)/.test(m));
    if (inference) {
      const chain: string[] = [];
      for (let m: string | undefined = inference; m; m = loaded.get(m)) chain.unshift(m);
      assert.fail(`${entry} loads onnxruntime at import: ${chain.join(' -> ')}`);
    }
  }
});

test('a cycle, a backward import inside the engine and an engine internal in the extension each fail', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rmas-layers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  write('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'ESNext', moduleResolution: 'Bundler', strict: true } }));
  write('src/engine/onnx/graph.ts', "import { run } from '../chain/run';\nexport const graph = () => run;\n");
  write('src/engine/chain/run.ts', "import { graph } from '../onnx/graph';\nexport const run = () => graph;\n");
  write('src/engine/host.ts', "export const host = 1;\n");
  write('src/extension/panel.ts', "import { run } from '../engine/chain/run';\nimport { host } from '../engine/host';\nexport const panel = [run, host];\n");
  const r = cruise(dir, ['src']);
  assert.notEqual(r.status, 0, 'the check passed a tree with wrong imports');
  assert.match(r.output, /no-cycles/);
  assert.match(r.output, /onnx-bottom: src\/engine\/onnx\/graph\.ts → src\/engine\/chain\/run\.ts/);
  assert.match(r.output, /extension-engine-host-only: src\/extension\/panel\.ts → src\/engine\/chain\/run\.ts/);
  assert.doesNotMatch(r.output, /panel\.ts → src\/engine\/host\.ts/);
});
