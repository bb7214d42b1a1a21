// The first run: which real team is recommended on a machine (from the presets' sizes, the free
// memory and the authors' reference scores), how the machine is described, and the panel
// dropping a stale error when the settings change.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeMachine, downloadLabel, machineFacts, recommend, teamOffers, type TeamOffer } from '../../src/extension/first-run';
import { panelErrorOf } from '../../src/extension/errors';
import { checkHostMessage, type HostMessage } from '../../src/protocol/webview';
import { emptyModel, reduce } from '../../webview/model';
import { sampleSession } from '../e2e/support/sample';

const presets = new URL('../../models', import.meta.url).pathname;
const GB = 1e9;

describe('recommending a team', () => {
  test('every runnable real preset is offered with its download size; demo and blocked teams are not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rmas-first-run-'));
    try {
      const offers = await teamOffers(presets, dir, 'int4', 64 * GB);
      const names = offers.map((o) => o.team.name);
      assert.ok(names.includes('sequential-light-code') && names.includes('coder-training-free'), names.join(', '));
      assert.ok(!names.some((n) => n.startsWith('demo-')), 'demo teams need no download');
      assert.ok(!names.includes('deliberation'), 'a team this version cannot run is not recommended');
      for (const o of offers) {
        assert.ok(o.downloadBytes > 0.5 * GB, `${o.team.name}: nothing is downloaded yet, so it has a download size`);
        assert.equal(o.exact, false, 'sizes come from model cards before the download');
        assert.match(downloadLabel(o), /^~\d+(\.\d)? GB$/);
      }
      const light = offers.find((o) => o.team.name === 'sequential-light-code')!;
      assert.equal(light.scores, 'MBPP+ 37.3');
      // With plenty of memory: the measured team with the smallest download.
      const best = recommend(offers)!;
      assert.equal(best.team.name, 'sequential-light-code');
      assert.ok(best.scores !== '');
      const measuredSizes = offers.filter((o) => o.scores).map((o) => o.downloadBytes);
      assert.equal(best.downloadBytes, Math.min(...measuredSizes));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('with little free memory only a team that fits is recommended, and with none the smallest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rmas-first-run-'));
    try {
      const all = await teamOffers(presets, dir, 'int4', 64 * GB);
      const light = all.find((o) => o.team.name === 'sequential-light-code')!;
      const coder = all.find((o) => o.team.name === 'coder-training-free')!;
      assert.ok(coder.memoryBytes < light.memoryBytes);
      // Room for the small coder team only.
      const tight = await teamOffers(presets, dir, 'int4', (coder.memoryBytes + light.memoryBytes) / 2);
      const pick = recommend(tight)!;
      assert.equal(pick.team.name, 'coder-training-free');
      assert.equal(pick.fits, true);
      // Room for nothing: the team with the least memory, marked as not fitting.
      const none = recommend(await teamOffers(presets, dir, 'int4', 1000))!;
      assert.equal(none.fits, false);
      assert.equal(none.memoryBytes, Math.min(...all.map((o) => o.memoryBytes)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a downloaded model is measured from its config and needs no download', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rmas-first-run-'));
    try {
      const before = (await teamOffers(presets, dir, 'int4', 64 * GB)).find((o) => o.team.name === 'coder-training-free')!;
      const repo = before.team.repos[0]!.repo;
      mkdirSync(join(dir, ...repo.split('/')), { recursive: true });
      // Qwen2.5-Coder-1.5B's shape.
      writeFileSync(
        join(dir, ...repo.split('/'), 'config.json'),
        JSON.stringify({ model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], hidden_size: 1536, intermediate_size: 8960, num_hidden_layers: 28, num_attention_heads: 12, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true }),
      );
      const after = (await teamOffers(presets, dir, 'int4', 64 * GB)).find((o) => o.team.name === 'coder-training-free')!;
      assert.ok(after.downloadBytes < before.downloadBytes, `${after.downloadBytes} < ${before.downloadBytes}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no offers, no recommendation', () => {
    assert.equal(recommend([] as TeamOffer[]), undefined);
  });
});

describe('describing the machine', () => {
  test('a provider\'s reason is cut to its first clause', () => {
    const m = machineFacts([
      { name: 'cpu', available: true },
      { name: 'cuda', available: false, reason: "onnxruntime-node's CUDA provider is not installed (libonnxruntime_providers_cuda.so missing in /x). In VS Code run ..." },
      { name: 'webgpu', available: false, reason: 'no WebGPU adapter could be created (no GPU): Failed' },
    ]);
    assert.deepEqual(m.gpus, []);
    assert.deepEqual(m.unavailable, [
      { name: 'cuda', reason: "onnxruntime-node's CUDA provider is not installed" },
      { name: 'webgpu', reason: 'no WebGPU adapter could be created' },
    ]);
    assert.ok(m.totalMemoryBytes > 0 && m.freeMemoryBytes > 0);
  });

  test('names the GPU providers found, or says the CPU runs the models and why', () => {
    const cpuOnly = describeMachine({ totalMemoryBytes: 16 * GB, freeMemoryBytes: 9.5 * GB, gpus: [], unavailable: [{ name: 'cuda', reason: 'the CUDA libraries are not installed' }] });
    assert.equal(cpuOnly[0], 'Memory: 9.5 GB free of 16.0 GB.');
    assert.equal(cpuOnly[1], 'GPU: none found; the models run on the CPU (cuda: the CUDA libraries are not installed).');
    const gpu = describeMachine({ totalMemoryBytes: 64 * GB, freeMemoryBytes: 40 * GB, gpus: ['cuda'], unavailable: [] });
    assert.equal(gpu[1], 'GPU: cuda found; the models run there.');
  });
});

describe('errors about a missing team', () => {
  test('a missing model offers the download first, then the offline demo and the folder settings', () => {
    const e = Object.assign(new Error('The model Qwen/Qwen3-1.7B is not downloaded.'), { name: 'UserError', code: 'model-missing' });
    assert.deepEqual(panelErrorOf(e, 'cpu').fixes, ['download-models', 'use-demo-team', 'models-settings', 'select-team']);
    const d = Object.assign(new Error('could not reach huggingface.co'), { name: 'DownloadError' });
    assert.deepEqual(panelErrorOf(d, 'cpu').fixes.slice(0, 3), ['download-models', 'models-settings', 'use-demo-team']);
  });

  test('a settings change clears the error of a failed solve, and only of a failed one', () => {
    const session = sampleSession('s1');
    const failed: HostMessage[] = [{ type: 'session', session }, { type: 'end', id: 's1', outcome: 'failed', error: { message: 'The model is not downloaded.', fixes: ['download-models'] } }];
    const change: HostMessage = { type: 'settings-changed', team: 'demo-sequential' };
    assert.deepEqual(checkHostMessage(change), { ok: true, value: change });
    assert.equal(checkHostMessage({ type: 'settings-changed' }).ok, false);
    const m = [...failed, change].reduce((acc, msg) => reduce(acc, msg, 1000), emptyModel());
    assert.equal(m.error, null);
    assert.equal(m.phase, 'failed');
    assert.match(m.notice?.message ?? '', /team demo-sequential.*Retry/);
    const done: HostMessage[] = [{ type: 'session', session }, { type: 'end', id: 's1', outcome: 'done' }];
    const d = done.reduce((acc, msg) => reduce(acc, msg, 1000), emptyModel());
    assert.equal(reduce(d, change, 1000), d, 'a finished solve is left as it is');
  });
});
