// The code retry as released: when the final answer has no code block, the raw answer is continued
// as plain text (no chat template, no latents) after a follow-up that opens a code fence, for at
// most 256 new tokens. Checked token for token against rendering that continuation as plain text
// and decoding it greedily by full recomputation, independently of the engine's cached decode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { SolveEvent } from '../../src/engine/api';
import { readPreset } from '../../src/engine/chain/presets';
import { retryContinuation } from '../../src/engine/chain/prompts';
import { loadTeam } from '../../src/engine/index';
import { DecoderModel } from '../../src/engine/model/decoder';
import { ensureSyntheticModel } from '../../src/engine/model/synthetic';
import { HfTokenizer } from '../../src/engine/tokenizer/hf';
import { tempDir } from '../support/paths';
import { argmax } from '../support/tiny-hf';

test('the retry continues the raw answer as plain text, token-exact against a plain-text greedy decode', async () => {
  const modelsDirectory = tempDir();
  const cacheDirectory = tempDir();
  const preset = await readPreset('demo-sequential');
  const team = await loadTeam('demo-sequential', { device: 'cpu', modelsDirectory, cacheDirectory });
  const events: SolveEvent[] = [];
  let result;
  try {
    result = await team.solve({ task: 'Write a function named add(a, b).', language: 'python', mode: 'single', rounds: 1, latentSteps: 2, maxNewTokens: 12, temperature: 0, topP: 1, seed: 3 }, (e) => events.push(e));
  } finally {
    await team.dispose();
  }
  const retryAt = events.findIndex((e) => e.type === 'retry');
  assert.ok(retryAt > 0, 'random weights write no code block, so the retry runs');
  const text = (list: SolveEvent[]) => list.map((e) => (e.type === 'token' ? e.text : '')).join('');
  const first = text(events.slice(0, retryAt));
  const retried = text(events.slice(retryAt));
  const continuation = retryContinuation(preset.prompts, first, 'python');
  assert.equal(result.answer, continuation + retried);
  assert.ok(result.metrics.stages.some((s) => s.kind === 'retry'));

  const solver = preset.agents.find((a) => a.role === 'solver')!;
  const source = preset.models[solver.model]!;
  assert.ok('generated' in source);
  const folder = await ensureSyntheticModel(source.generated, join(tempDir(), 'solver'));
  const tokenizer = await HfTokenizer.load(folder);
  const model = await DecoderModel.load(folder, { cacheDirectory });
  try {
    // Plain text through the tokenizer as a plain encode does it: no chat markup anywhere.
    const ids = tokenizer.encodeWithSpecialTokens(continuation);
    assert.ok(!tokenizer.decode(ids).includes('<|im_start|>'));
    const stops = new Set([...tokenizer.eosIds, ...model.config.eosTokenIds]);
    const generated: number[] = [];
    for (let i = 0; i < 12; i++) {
      const all = [...ids, ...generated];
      const { logits } = await model.forward(model.newState(), model.embedding.lookup(all), all.length, 1);
      const next = argmax(logits);
      if (stops.has(next)) break;
      generated.push(next);
    }
    assert.equal(retried, tokenizer.decode(generated, true));
  } finally {
    await model.dispose();
  }
});
