// `npm run package` builds a VSIX that holds only what ships, and that VSIX, installed into a
// real VS Code (code-server), solves a task with its own runtime and its own onnxruntime-node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { artifactsDir } from './support/browser';
import { codeServerMissing, openFile, openWorkbench, panelFrameHandle, runCommand, selectLines, type Workbench } from './support/code-server';
import { repoRoot } from './support/env';

const missing = codeServerMissing();

function listZip(file: string): Promise<{ name: string; size: number }[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error(`${file} could not be opened as a zip`));
      const out: { name: string; size: number }[] = [];
      zip.on('entry', (e: yauzl.Entry) => {
        out.push({ name: e.fileName, size: e.uncompressedSize });
        zip.readEntry();
      });
      zip.on('end', () => resolve(out));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

describe('packaged VSIX', { skip: missing ?? false, timeout: 180_000 }, () => {
  let vsix = '';
  let wb: Workbench | undefined;

  before(() => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'package-vsix.mjs')], { cwd: repoRoot, encoding: 'utf8' });
    assert.equal(r.status, 0, `npm run package failed:\n${r.stdout}\n${r.stderr}`);
    vsix = /package: (\S+\.vsix)/.exec(r.stdout)?.[1] ?? '';
    assert.ok(vsix, r.stdout);
  });
  after(async () => {
    await wb?.close();
  });

  test('holds the bundles, presets, icon and one platform of onnxruntime, and no sources or maps', async () => {
    const entries = await listZip(vsix);
    const names = entries.map((e) => e.name.replace(/^extension\//, ''));
    for (const f of ['package.json', 'dist/extension.cjs', 'dist/runtime.mjs', 'dist/webview.js', 'dist/webview.css', 'media/icon.png', 'models/demo-sequential.json']) {
      assert.ok(names.includes(f), `${f} is packaged`);
    }
    const platformDir = `dist/node_modules/onnxruntime-node/bin/napi-v6/${process.platform}/${process.arch}/`;
    assert.ok(names.some((n) => n.startsWith(platformDir)), 'this platform\'s onnxruntime binaries are packaged');
    assert.deepEqual(names.filter((n) => n.includes('/bin/napi-v6/') && !n.startsWith(platformDir)), [], 'no other platform\'s binaries');
    assert.deepEqual(names.filter((n) => /^(src|test|webview|scripts|bench)\//.test(n) || n.endsWith('.map') || /(^|\/)[^/]+(?<!\.d)\.ts$/.test(n)), []);
    assert.ok(!names.some((n) => n.startsWith('node_modules/')), 'no top-level node_modules');
    const total = entries.reduce((a, e) => a + e.size, 0);
    assert.ok(total < 80 * 1024 * 1024, `unpacked size ${(total / 1024 / 1024).toFixed(1)} MB`);
  });

  test('installed into VS Code, it solves with its own runtime', async () => {
    wb = await openWorkbench({
      vsix,
      files: { 'main.py': '# add two numbers\ndef add(a, b):\n    pass\n' },
      settings: { 'recursivemas.team': 'demo-sequential', 'recursivemas.device': 'cpu', 'recursivemas.threads': 1, 'recursivemas.maxNewTokens': 24, 'recursivemas.latentSteps': 8, 'recursivemas.rounds': 2 },
    });
    const page = wb.page;
    await openFile(page, 'main.py');
    await selectLines(page, 1, 3);
    await runCommand(page, 'Solve with RecursiveMAS');
    const f = await panelFrameHandle(page);
    await f.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.phase ?? ''), undefined, { timeout: 60_000 });
    assert.equal(await f.evaluate(() => document.body.dataset.phase), 'done', (await f.locator('#error').textContent()) ?? '');
    assert.equal(await f.locator('.round').count(), 2);
    const runtimes = wb.runtimeCommands();
    assert.equal(runtimes.length, 1);
    assert.ok(runtimes[0]!.includes(join(wb.workDir, 'extensions')), `the runtime runs from the installed extension: ${runtimes[0]}`);
    await page.screenshot({ path: join(artifactsDir(), 'vsix-finished.png') });
  });
});
