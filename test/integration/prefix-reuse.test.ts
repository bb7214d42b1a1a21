// Prefix reuse across rounds: continuing from a kept state after a prompt's first part (a snapshot
// after running the prefix alone, or for attention-only models the whole prompt's K/V cut back)
// equals running the whole prompt (attention K/V, Gemma 3's sliding window, Qwen3.5's running
// linear-attention state), and a whole R = 3 solve with reuse writes the same tokens and hands off the same thoughts
// as one without it, running fewer prompt positions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SolveEvent, SolveRequest } from '../../src/engine/api';
import type { SyntheticSpec } from '../../src/engine/chain/presets';
import { loadTeam } from '../../src/engine/index';
import { DecoderModel } from '../../src/engine/model/decoder';
import { ensureSyntheticModel } from '../../src/engine/model/synthetic';
import { REPO, tempDir } from '../support/paths';

const modelsDirectory = tempDir();
const cacheDirectory = tempDir();
const TOLERANCE = 1e-5;

const families: Record<string, SyntheticSpec> = {
  llama: { family: 'llama', hiddenSize: 96, intermediateSize: 256, numLayers: 2, numHeads: 6, numKvHeads: 2, vocabSize: 512, seed: 41, maxPositionEmbeddings: 4096 },
  gemma3: { family: 'gemma3', hiddenSize: 64, intermediateSize: 176, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 32, vocabSize: 512, seed: 42, maxPositionEmbeddings: 4096 },
  qwen3_5: {
    family: 'qwen3_5', hiddenSize: 64, intermediateSize: 176, numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 32, vocabSize: 512, seed: 43, maxPositionEmbeddings: 4096,
    qwen3_5: { fullAttentionInterval: 2 },
  },
};

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

for (const [family, spec] of Object.entries(families)) {
  test(`${family}: a kept prefix state continued (twice) equals the whole prompt run at once`, async () => {
    const model = await DecoderModel.load(await ensureSyntheticModel(spec, join(modelsDirectory, family)), { cacheDirectory });
    try {
      const d = model.config.hiddenSize;
      const ids = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 500);
      const split = 23;
      const embeds = model.embedding.lookup(ids);
      const whole = await model.forward(model.newState(), embeds, ids.length, 1);
      const prefix = model.newState();
      await model.forward(prefix, embeds.subarray(0, split * d), split, 0);
      const kept = prefix.snapshot();
      for (const attempt of [1, 2]) {
        const state = kept.snapshot();
        const rest = await model.forward(state, embeds.subarray(split * d), ids.length - split, 1);
        assert.equal(state.length, ids.length);
        const hidden = maxDiff(rest.hidden, whole.hidden.subarray(split * d));
        const logits = maxDiff(rest.logits, whole.logits);
        console.log(`  ${family} continuation ${attempt}: max |diff| hidden ${hidden.toExponential(2)}, logits ${logits.toExponential(2)}`);
        assert.ok(hidden < TOLERANCE && logits < TOLERANCE, `${family}: hidden ${hidden}, logits ${logits}`);
      }
      // Continuing never changed what the snapshot holds.
      assert.equal(kept.length, split);
      // Attention-only models keep a prefix by cutting a whole prompt's keys and values back.
      const full = model.newState();
      await model.forward(full, embeds, ids.length, 0);
      if (full.truncatable) {
        const cut = full.truncated(split);
        const again = await model.forward(cut, embeds.subarray(split * d), ids.length - split, 1);
        const hidden = maxDiff(again.hidden, whole.hidden.subarray(split * d));
        console.log(`  ${family} whole prompt cut back to ${split} positions, continued: max |diff| hidden ${hidden.toExponential(2)}, logits ${maxDiff(again.logits, whole.logits).toExponential(2)}`);
        assert.ok(hidden < TOLERANCE && maxDiff(again.logits, whole.logits) < TOLERANCE);
      } else {
        assert.equal(family, 'qwen3_5');
        assert.throws(() => full.truncated(split), /cannot truncate/);
      }
    } finally {
      await model.dispose();
    }
  });
}

async function solveBoth(file: string, request: SolveRequest): Promise<void> {
  const team = await loadTeam(file, { device: 'cpu', modelsDirectory, cacheDirectory });
  try {
    const run = async (reusePrefixes: boolean) => {
      const events: SolveEvent[] = [];
      const result = await team.solve({ ...request, reusePrefixes }, (e) => events.push(e));
      const handoffs = events.filter((e): e is Extract<SolveEvent, { type: 'handoff' }> => e.type === 'handoff');
      const tokens = events.filter((e): e is Extract<SolveEvent, { type: 'token' }> => e.type === 'token').map((e) => e.text);
      return { result, handoffs, tokens };
    };
    const full = await run(false);
    const reused = await run(true);
    assert.equal(full.result.metrics.reusedPromptTokens, 0);
    assert.ok(reused.result.metrics.reusedPromptTokens! > 0, 'later rounds reuse their prefixes');
    assert.equal(reused.result.metrics.promptTokens, full.result.metrics.promptTokens);
    assert.deepEqual(reused.tokens, full.tokens);
    assert.equal(reused.result.answer, full.result.answer);
    assert.equal(reused.handoffs.length, full.handoffs.length);
    let worst = 0;
    reused.handoffs.forEach((h, i) => {
      const f = full.handoffs[i]!;
      assert.equal(`${h.round} ${h.from}->${h.to}`, `${f.round} ${f.from}->${f.to}`);
      worst = Math.max(worst, Math.abs(h.meanNorm - f.meanNorm) / f.meanNorm, Math.abs(h.maxNorm - f.maxNorm) / f.maxNorm);
    });
    const promptMs = (r: typeof full) => r.result.metrics.stages.reduce((s, st) => s + (st.promptMs ?? 0), 0);
    console.log(
      `  ${team.name}: ${reused.result.metrics.reusedPromptTokens} of ${full.result.metrics.promptTokens} prompt positions reused; hand-off norms within ${worst.toExponential(2)} (relative); prefills ${promptMs(full).toFixed(0)} ms -> ${promptMs(reused).toFixed(0)} ms (noisy)`,
    );
    assert.ok(worst < 1e-4, `hand-off norms differ by ${worst}`);
  } finally {
    await team.dispose();
  }
}

const request: SolveRequest = {
  task: 'Write a function named add that adds two numbers', language: 'python', mode: 'latent', rounds: 3, latentSteps: 4, maxNewTokens: 12, temperature: 0, topP: 1, fixedLength: true,
};

test('demo-sequential, R = 3: a solve with prefix reuse equals one without (tokens, hand-offs), with fewer positions run', async () => {
  await solveBoth('demo-sequential', request);
});

test('Gemma 3 planner, Llama critic, Qwen3.5 solver, R = 3: prefix reuse is exact with a running linear-attention state', async () => {
  const preset = JSON.parse(readFileSync(join(REPO, 'models', 'demo-sequential.json'), 'utf8'));
  preset.name = 'prefix-reuse-hybrid';
  preset.models['tiny-qwen3'] = { generated: families.gemma3 };
  preset.models['tiny-qwen2'] = { generated: families.qwen3_5 };
  const file = join(tempDir(), 'prefix-reuse-hybrid.json');
  writeFileSync(file, JSON.stringify(preset));
  await solveBoth(file, request);
});

test('demo-mixture, R = 3: the hub and the experts reuse their prefixes exactly', async () => {
  await solveBoth('demo-mixture', request);
});
