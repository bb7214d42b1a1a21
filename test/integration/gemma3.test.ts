// Gemma 3 against llama.cpp (node-llama-cpp's gemma3 architecture) on a GGUF written from the same
// tensors: the 4B-it multimodal layout (text_config, language_model. tensors, a vision tower that
// must be skipped) in transformers 4 and 5 form, and flat gemma3_text; greedy ids must agree for 64
// new tokens and log-probabilities stay within tolerance, in fp32. Prompts are longer than the
// sliding window, so the window must be applied for the ids to agree.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/engine/api';
import { DecoderModel } from '../../src/engine/model/decoder';
import { argmax } from '../../src/engine/model/sampling';
import { HfTokenizer } from '../../src/engine/tokenizer/hf';
import { writeGguf } from '../support/gguf';
import { engineGreedy } from '../support/greedy';
import { disposeLlama, llamaGreedy } from '../support/llamacpp';
import { tempDir } from '../support/paths';
import { writeTinyHfModel, type TinyModelSpec } from '../support/tiny-hf';

after(disposeLlama);
const cacheDirectory = tempDir();
const NEW_TOKENS = 64;
// llama.cpp's CPU GELU looks values up in a float16 table (input and output rounded to f16), so its
// MLP outputs differ from an exact GELU by up to ~1e-3 relative; the other differences are
// summation order (~1e-5). Observed log-prob gaps are printed; 2e-2 still catches any wrong
// norm, scale, rope base or mask (each moves log-probs by 0.1 or more).
const LOGPROB_TOLERANCE = 2e-2;
const WINDOW = 8;

const base = { family: 'gemma3', hiddenSize: 64, intermediateSize: 160, numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 32, vocabSize: 400, seed: 11 } as const;
const specs: Record<string, TinyModelSpec> = {
  'gemma3 multimodal, transformers 4 (language_model.model.*, rope_local_base_freq, sliding_window_pattern, linear rope scaling)': {
    ...base,
    gemma3: { slidingWindow: WINDOW, slidingWindowPattern: 2, ropeLocalTheta: 5000, ropeLinearFactor: 4 },
    ropeTheta: 200_000,
  },
  'gemma3 multimodal, transformers 5 (model.language_model.*, per-layer-type rope_parameters, dtype, chat_template.jinja)': {
    ...base,
    layout: 'transformers5',
    gemma3: { slidingWindow: WINDOW, slidingWindowPattern: 3, ropeLocalTheta: 2000, ropeLinearFactor: 8 },
    ropeTheta: 123_456,
    seed: 12,
  },
  'gemma3_text flat, transformers 5, untied head, final_logit_softcapping 30': {
    ...base,
    layout: 'transformers5',
    tieWordEmbeddings: false,
    gemma3: { multimodal: false, slidingWindow: WINDOW, slidingWindowPattern: 2, ropeLocalTheta: 10_000, finalLogitSoftcapping: 30 },
    ropeTheta: 1_000_000,
    seed: 13,
  },
};

const PROMPT = 'def add(a, b):\n    return a + b\n\nprint(add(2, 3))';

for (const [name, spec] of Object.entries(specs)) {
  test(`${name}: greedy ids equal llama.cpp for ${NEW_TOKENS} tokens, log-probs within ${LOGPROB_TOLERANCE}`, async () => {
    const dir = tempDir();
    const tiny = await writeTinyHfModel(join(dir, 'hf'), spec);
    if (spec.layout === 'transformers5') {
      const text = tiny.config.text_config ?? tiny.config;
      assert.equal(text.rope_theta, undefined, 'transformers 5 keeps RoPE only under rope_parameters');
      assert.ok(existsSync(join(tiny.dir, 'chat_template.jinja')));
    }
    const gguf = join(dir, 'model.gguf');
    writeGguf(gguf, tiny, { type: 'F32' });
    const tok = await HfTokenizer.load(tiny.dir);
    const prompt = tok.encodeWithSpecialTokens(PROMPT);
    assert.ok(prompt.length > 2 * WINDOW, `the prompt (${prompt.length} tokens) is longer than the sliding window`);
    const model = await DecoderModel.load(tiny.dir, { cacheDirectory });
    const ours = await engineGreedy(model, prompt, NEW_TOKENS);
    const theirs = await llamaGreedy(gguf, prompt, NEW_TOKENS);
    assert.deepEqual(ours.ids, theirs.ids);
    assert.ok(new Set(ours.ids).size > 4, 'the continuation is not degenerate');
    let worst = 0;
    ours.logprobs.forEach((lp, step) => {
      const ref = theirs.logits[step]!;
      for (let v = 0; v < lp.length; v++) if (ref[v]! > -20) worst = Math.max(worst, Math.abs(lp[v]! - ref[v]!));
    });
    console.log(`  ${name}: max |log-prob diff| over ${NEW_TOKENS} steps ${worst.toExponential(2)}`);
    assert.ok(worst < LOGPROB_TOLERANCE, `max log-prob difference ${worst}`);
    await model.dispose();
  });
}

test('gemma3: a prefill followed by single steps equals token-by-token decoding; the window and the embedding scale matter', async () => {
  const dir = tempDir();
  const spec = Object.values(specs)[0]!;
  const tiny = await writeTinyHfModel(join(dir, 'hf'), spec);
  const tok = await HfTokenizer.load(tiny.dir);
  const ids = tok.encodeWithSpecialTokens(PROMPT);
  const model = await DecoderModel.load(tiny.dir, { cacheDirectory });
  const V = model.config.vocabSize;
  // All positions in one prefill, logits for each.
  const whole = await model.forward(model.newState(), model.embedding.lookup(ids), ids.length, ids.length);
  // A prefill of the first part, then one position at a time.
  const split = 5;
  const state = model.newState();
  const rows: Float32Array[] = [];
  const first = await model.forward(state, model.embedding.lookup(ids.slice(0, split)), split, split);
  for (let i = 0; i < split; i++) rows.push(first.logits.slice(i * V, (i + 1) * V));
  for (let i = split; i < ids.length; i++) rows.push((await model.forward(state, model.embedding.lookup([ids[i]!]), 1, 1)).logits.slice());
  let worst = 0;
  rows.forEach((row, i) => {
    for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(row[v]! - whole.logits[i * V + v]!));
    assert.equal(argmax(row), argmax(whole.logits, i * V, V), `position ${i}`);
  });
  console.log(`  prefill vs single steps over ${ids.length} positions (window ${WINDOW}): max |logit diff| ${worst.toExponential(2)}`);
  assert.ok(worst < 1e-4, `max logit difference ${worst}`);

  // Latent steps feed inputs_embeds directly: the scale belongs to the token lookup only.
  const raw = tiny.tensors.get('language_model.model.embed_tokens.weight')!.data;
  const H = model.config.hiddenSize;
  const row = model.embedding.lookup([ids[1]!]);
  assert.equal(model.config.embeddingScale, Math.sqrt(H));
  for (let j = 0; j < H; j++) assert.ok(Math.abs(row[j]! - raw[ids[1]! * H + j]! * Math.sqrt(H)) < 1e-5);

  // The same weights with a window wider than the prompt: positions past the window change.
  const config = JSON.parse(readFileSync(join(tiny.dir, 'config.json'), 'utf8'));
  config.text_config.sliding_window = 4096;
  writeFileSync(join(tiny.dir, 'config.json'), JSON.stringify(config));
  const unwindowed = await DecoderModel.load(tiny.dir, { cacheDirectory });
  const wide = await unwindowed.forward(unwindowed.newState(), unwindowed.embedding.lookup(ids), ids.length, ids.length);
  const gap = (from: number, to: number) => {
    let m = 0;
    for (let i = from * V; i < to * V; i++) m = Math.max(m, Math.abs(wide.logits[i]! - whole.logits[i]!));
    return m;
  };
  assert.ok(gap(0, WINDOW) < 1e-4, 'positions inside the window see the same keys');
  assert.ok(gap(WINDOW, ids.length) > 1e-2, 'positions past the window see fewer keys');
  await Promise.all([model.dispose(), unwindowed.dispose()]);
});

test('gemma3 int4 vs fp32: greedy ids and teacher-forced top-1 agreement (reported)', async () => {
  const dir = tempDir();
  const tiny = await writeTinyHfModel(join(dir, 'hf'), { ...base, hiddenSize: 256, intermediateSize: 640, numHeads: 8, numKvHeads: 4, headDim: 32, gemma3: { slidingWindow: WINDOW, slidingWindowPattern: 2 }, layout: 'transformers5' });
  const tok = await HfTokenizer.load(tiny.dir);
  const prompt = tok.encodeWithSpecialTokens(PROMPT);
  const fp32 = await DecoderModel.load(tiny.dir, { cacheDirectory });
  const int4 = await DecoderModel.load(tiny.dir, { cacheDirectory, precision: 'int4' });
  const n = 32;
  const reference = (await engineGreedy(fp32, prompt, n)).ids;
  const greedy = (await engineGreedy(int4, prompt, n)).ids;
  let prefix = 0;
  while (prefix < n && greedy[prefix] === reference[prefix]) prefix++;
  const samePositions = greedy.filter((id, i) => id === reference[i]).length;
  const context = [...prompt, ...reference.slice(0, -1)];
  const all = await int4.forward(int4.newState(), int4.embedding.lookup(context), context.length, reference.length);
  const V = int4.config.vocabSize;
  let agree = 0;
  for (let i = 0; i < n; i++) agree += Number(argmax(all.logits, i * V, V) === reference[i]);
  console.log(`  gemma3 int4 vs fp32: greedy ids agree for the first ${prefix} of ${n} tokens (same id at ${samePositions} positions); teacher-forced top-1 ${((100 * agree) / n).toFixed(0)}% of ${n} positions`);
  assert.ok(agree >= n / 2, `int4 top-1 agreement ${agree}/${n}`);
  await Promise.all([int4.dispose(), fp32.dispose()]);
});

test('gemma3 variants the engine does not build are refused, naming what is missing', async () => {
  const dir = tempDir();
  const tiny = await writeTinyHfModel(join(dir, 'hf'), { ...base, gemma3: { multimodal: false, slidingWindow: WINDOW } });
  const original = readFileSync(join(tiny.dir, 'config.json'), 'utf8');
  const expectError = async (change: Record<string, unknown>, pattern: RegExp) => {
    writeFileSync(join(tiny.dir, 'config.json'), JSON.stringify({ ...JSON.parse(original), ...change }));
    await assert.rejects(DecoderModel.load(tiny.dir, { cacheDirectory: tempDir() }), (e: unknown) => e instanceof UserError && pattern.test(e.message));
  };
  await expectError({ model_type: 'gemma3n' }, /"gemma3n" is not supported: Gemma 3n needs per-layer embeddings/);
  await expectError({ attn_logit_softcapping: 50 }, /"attn_logit_softcapping" is set .*does not implement/);
  await expectError({ hidden_activation: 'gelu' }, /"hidden_activation" is "gelu" \(only gelu_pytorch_tanh is built\)/);
  await expectError({ layer_types: ['sliding_attention'] }, /"layer_types" must list .* each of the 4 layers/);
  await expectError({ rope_scaling: { rope_type: 'yarn', factor: 4 } }, /rope type "yarn", which is not supported/);
  await expectError({ num_hidden_layers: 5 }, /no tensor "model\.layers\.4\./);
});
