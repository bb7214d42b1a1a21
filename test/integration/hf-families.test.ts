// Hugging Face families against an independent implementation: llama.cpp (node-llama-cpp) runs a
// GGUF written from the same tensors; greedy ids must agree for 64 new tokens and log-probabilities
// stay within tolerance, in fp32, for every family. int4 and int8 are reported as agreement rates.
import { engineGreedy } from '../support/greedy';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, truncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/engine/api';
import { DecoderModel } from '../../src/engine/model/decoder';
import { HfTokenizer } from '../../src/engine/tokenizer/hf';
import { describeAgreement, quantizedAgreement } from '../support/agreement';
import { writeGguf } from '../support/gguf';
import { disposeLlama, llamaGreedy } from '../support/llamacpp';
import { tempDir } from '../support/paths';
import { writeTinyHfModel, type TinyModelSpec } from '../support/tiny-hf';

after(disposeLlama);
const cacheDirectory = tempDir();
const NEW_TOKENS = 64;
// llama.cpp keeps activations in float32 but sums in another order; observed differences are
// around 1e-5..1e-4 on these models, so 2e-3 leaves margin while catching any real mistake.
const LOGPROB_TOLERANCE = 2e-3;

const base = { hiddenSize: 64, intermediateSize: 160, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 400, seed: 7 };
const specs: Record<string, TinyModelSpec> = {
  'llama (Llama 3 rope_scaling, untied)': { ...base, family: 'llama', ropeScalingLlama3: true, tieWordEmbeddings: false },
  'qwen2 (q/k/v biases, tied, bf16, 2 shards)': { ...base, family: 'qwen2', tieWordEmbeddings: true, dtype: 'BF16', shards: 2 },
  'qwen3 (q/k norms, head_dim 32 != 64/4)': { ...base, family: 'qwen3', headDim: 32 },
  'mistral (f16)': { ...base, family: 'mistral', numKvHeads: 4, dtype: 'F16' },
  // transformers 5 (the RecursiveMAS release): RoPE only under rope_parameters; a base no default has.
  'llama, transformers 5 layout (rope_parameters with Llama 3 scaling, rope base 123456)': {
    ...base,
    family: 'llama',
    ropeScalingLlama3: true,
    ropeTheta: 123_456,
    layout: 'transformers5',
  },
  'qwen3, transformers 5 layout (rope_parameters, rope base 31337, bf16)': { ...base, family: 'qwen3', ropeTheta: 31_337, dtype: 'BF16', layout: 'transformers5' },
};

for (const [name, spec] of Object.entries(specs)) {
  test(`${name}: greedy ids equal llama.cpp for ${NEW_TOKENS} tokens, log-probs within ${LOGPROB_TOLERANCE}`, async () => {
    const dir = tempDir();
    const tiny = await writeTinyHfModel(join(dir, 'hf'), spec);
    if (spec.layout === 'transformers5') {
      assert.equal(tiny.config.rope_theta, undefined);
      assert.equal(tiny.config.rope_parameters.rope_theta, spec.ropeTheta);
      assert.equal(tiny.config.torch_dtype, undefined);
      assert.equal(tiny.tokenizerConfig.chat_template, undefined);
      assert.ok(statSync(join(tiny.dir, 'chat_template.jinja')).size > 0);
    }
    const gguf = join(dir, 'model.gguf');
    writeGguf(gguf, tiny, { type: 'F32' });
    const tok = await HfTokenizer.load(tiny.dir);
    const prompt = tok.encodeWithSpecialTokens('def add(a, b):\n    return a + b\n\nprint(add(2, 3))');
    assert.ok(prompt.length > 8);
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

for (const [precision, type] of [['int4', 'Q4_0'], ['int8', 'Q8_0']] as const) {
  test(`${precision} against llama.cpp ${type} on the same weights: teacher-forced top-1 agreement (reported)`, async () => {
    const dir = tempDir();
    const tiny = await writeTinyHfModel(join(dir, 'hf'), { ...base, family: 'qwen2', hiddenSize: 256, intermediateSize: 640, numHeads: 8, tieWordEmbeddings: true });
    const tok = await HfTokenizer.load(tiny.dir);
    const prompt = tok.encodeWithSpecialTokens('def add(a, b):\n    return a + b');
    const a = await quantizedAgreement(tiny, precision, type, prompt, cacheDirectory, dir);
    console.log(`  ${precision} top-1 agreement over ${a.positions} teacher-forced positions: ${describeAgreement(a, type)}`);
    // The same bit width on both sides: neither should be much worse than the other against fp32.
    assert.ok(a.ours >= a.theirs - a.positions / 4, `ours ${a.ours}, llama.cpp ${a.theirs}`);
  });
}

test('bad checkpoints are clear errors: truncated or corrupt safetensors, unsupported model_type, missing keys, tokenizer mismatch', async () => {
  const dir = tempDir();
  const tiny = await writeTinyHfModel(join(dir, 'hf'), { ...base, family: 'qwen2' });
  const weights = join(tiny.dir, 'model.safetensors');
  const config = readFileSync(join(tiny.dir, 'config.json'), 'utf8');
  const expectError = async (pattern: RegExp) =>
    assert.rejects(DecoderModel.load(tiny.dir, { cacheDirectory: tempDir() }), (e: unknown) => e instanceof UserError && pattern.test(e.message));

  writeFileSync(join(tiny.dir, 'config.json'), JSON.stringify({ ...JSON.parse(config), model_type: 'gpt_neox' }));
  await expectError(/model_type "gpt_neox" is not supported\. Supported model types: llama, mistral, qwen2, qwen3/);
  const noHidden = JSON.parse(config);
  delete noHidden.hidden_size;
  writeFileSync(join(tiny.dir, 'config.json'), JSON.stringify(noHidden));
  await expectError(/missing the key "hidden_size"/);
  writeFileSync(join(tiny.dir, 'config.json'), JSON.stringify({ ...JSON.parse(config), intermediate_size: 999 }));
  await expectError(/shape \[160, 64\] but config\.json implies \[999, 64\]/);
  writeFileSync(join(tiny.dir, 'config.json'), config);

  const original = readFileSync(weights);
  truncateSync(weights, statSync(weights).size - 100);
  await expectError(/truncated/);
  const corrupt = Buffer.from(original);
  corrupt.writeBigUInt64LE(10n ** 12n, 0);
  writeFileSync(weights, corrupt);
  await expectError(/header claims/);
  const badJson = Buffer.from(original);
  badJson.write('{{{{', 8);
  writeFileSync(weights, badJson);
  await expectError(/not JSON/);
  writeFileSync(weights, original);

  // A tokenizer with more tokens than the model's vocabulary does not belong to it.
  const model = await DecoderModel.load(tiny.dir, { cacheDirectory });
  await assert.rejects(async () => model.embedding.lookup([5000]), /outside the model's vocabulary/);
  await model.dispose();
});
