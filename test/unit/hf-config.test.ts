// config.json layouts of transformers 4 and 5 (RoPE, text_config nesting, dtype) and each refusal,
// read through readHfConfig from real files; tensor names of multimodal checkpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/engine/api';
import { readRope, ConfigReader } from '../../src/engine/model/config';
import { decoderTensorName, openHfCheckpoint, readHfConfig } from '../../src/engine/model/hf';
import { tempDir } from '../support/paths';
import { writeTinyHfModel } from '../support/tiny-hf';

const llama = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 300,
  rms_norm_eps: 1e-5,
  max_position_embeddings: 2048,
};

async function read(json: Record<string, unknown>) {
  const dir = tempDir();
  writeFileSync(join(dir, 'config.json'), JSON.stringify(json));
  return { config: await readHfConfig(dir), path: join(dir, 'config.json') };
}

async function refused(json: Record<string, unknown>, pattern: RegExp): Promise<void> {
  const dir = tempDir();
  writeFileSync(join(dir, 'config.json'), JSON.stringify(json));
  await assert.rejects(readHfConfig(dir), (e: unknown) => e instanceof UserError && pattern.test(e.message) && e.message.includes(join(dir, 'config.json')));
}

const LLAMA3 = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
const LLAMA3_PARSED = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };

test('transformers 4: top-level rope_theta and rope_scaling (rope_type or legacy type), torch_dtype', async () => {
  const { config } = await read({ ...llama, rope_theta: 500_000, rope_scaling: { ...LLAMA3, rope_type: 'llama3' }, torch_dtype: 'bfloat16' });
  assert.equal(config.ropeTheta, 500_000);
  assert.deepEqual(config.ropeScaling, LLAMA3_PARSED);
  assert.equal(config.storedDType, 'bf16');
  const legacy = await read({ ...llama, rope_theta: 10_000, rope_scaling: { type: 'linear', factor: 2 } });
  assert.deepEqual(legacy.config.ropeScaling, { type: 'linear', factor: 2 });
  const none = await read({ ...llama, rope_theta: 10_000, rope_scaling: null });
  assert.equal(none.config.ropeScaling, undefined);
});

test('transformers 5: flat rope_parameters (default and llama3), dtype; rope_parameters wins over a stale rope_theta', async () => {
  const flat = await read({ ...llama, rope_parameters: { rope_type: 'default', rope_theta: 123_456 }, dtype: 'float16' });
  assert.equal(flat.config.ropeTheta, 123_456);
  assert.equal(flat.config.ropeScaling, undefined);
  assert.equal(flat.config.storedDType, 'f16');
  const scaled = await read({ ...llama, rope_parameters: { ...LLAMA3, rope_type: 'llama3', rope_theta: 500_000 } });
  assert.deepEqual(scaled.config.ropeScaling, LLAMA3_PARSED);
  assert.equal(scaled.config.ropeTheta, 500_000);
  const both = await read({ ...llama, rope_theta: 10_000, rope_parameters: { rope_type: 'default', rope_theta: 77_777 } });
  assert.equal(both.config.ropeTheta, 77_777);
  for (const family of ['qwen2', 'qwen3', 'mistral']) {
    const { config } = await read({ ...llama, model_type: family, rope_parameters: { rope_type: 'default', rope_theta: 4242 } });
    assert.equal(config.ropeTheta, 4242, family);
  }
});

test('refused: no rope base, rope_scaling / rope_parameters that is not an object, an unknown rope type, a scaling without its factor', async () => {
  await refused(llama, /has no RoPE base for the model: neither "rope_parameters\.rope_theta" nor "rope_theta" is set/);
  await refused({ ...llama, rope_parameters: { rope_type: 'default' } }, /neither "rope_parameters\.rope_theta" nor "rope_theta"/);
  await refused({ ...llama, rope_theta: 1e4, rope_scaling: 'linear' }, /"rope_scaling" must be an object, found "linear"/);
  await refused({ ...llama, rope_parameters: 10_000 }, /"rope_parameters" must be an object, found 10000/);
  await refused({ ...llama, rope_parameters: [1] }, /"rope_parameters" must be an object/);
  await refused({ ...llama, rope_theta: -5 }, /"rope_theta" must be a positive number/);
  await refused({ ...llama, rope_parameters: { rope_type: 'yarn', factor: 4, rope_theta: 1e4 } }, /"rope_parameters" has rope type "yarn", which is not supported/);
  await refused({ ...llama, rope_parameters: { rope_type: 'linear', rope_theta: 1e4 } }, /"rope_parameters" of type linear needs "factor"/);
});

const gemmaText = {
  model_type: 'gemma3_text',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 6,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 32,
  vocab_size: 300,
  query_pre_attn_scalar: 32,
  sliding_window: 16,
  hidden_activation: 'gelu_pytorch_tanh',
};

test('Gemma 3: per-layer-type rope_parameters (transformers 5), legacy rope_local_base_freq + rope_scaling (transformers 4), layer_types or sliding_window_pattern', async () => {
  const t5 = await read({
    ...gemmaText,
    layer_types: ['sliding_attention', 'full_attention', 'sliding_attention', 'sliding_attention', 'full_attention', 'full_attention'],
    rope_parameters: { full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1_000_000 }, sliding_attention: { rope_type: 'default', rope_theta: 10_000 } },
  });
  assert.equal(t5.config.ropeTheta, 1_000_000);
  assert.deepEqual(t5.config.ropeScaling, { type: 'linear', factor: 8 });
  assert.deepEqual(t5.config.slidingAttention, { window: 16, sliding: [true, false, true, true, false, false], rope: { theta: 10_000, scaling: undefined } });
  assert.equal(t5.config.attentionScale, 1 / Math.sqrt(32));
  assert.equal(t5.config.embeddingScale, 8);
  const t4 = await read({ ...gemmaText, rope_theta: 500_000, rope_local_base_freq: 5000, rope_scaling: { rope_type: 'linear', factor: 4 }, sliding_window_pattern: 3, query_pre_attn_scalar: 64 });
  assert.equal(t4.config.ropeTheta, 500_000);
  assert.deepEqual(t4.config.ropeScaling, { type: 'linear', factor: 4 });
  // rope_scaling is the full layers' only.
  assert.deepEqual(t4.config.slidingAttention, { window: 16, sliding: [true, true, false, true, true, false], rope: { theta: 5000, scaling: undefined } });
  assert.equal(t4.config.attentionScale, 1 / 8);
  // A per-type rope_parameters whose sliding part has no base: the legacy key still counts.
  const r = new ConfigReader({ rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 3 } }, rope_local_base_freq: 7 }, 'x/config.json');
  assert.deepEqual(readRope(r, 'x/config.json', 'sliding_attention'), { theta: 7, scaling: undefined });
  assert.throws(() => readRope(new ConfigReader({ rope_parameters: { full_attention: { rope_theta: 3 } } }, 's'), 's', 'sliding_attention'), /neither "rope_parameters\.sliding_attention\.rope_theta" nor "rope_local_base_freq"/);
});

test('text_config nesting: the 4B-it multimodal wrapper, sparse as transformers 4 wrote it, reads with Gemma3TextConfig defaults; errors name the text_config part', async () => {
  // google/gemma-3-4b-it's config.json lists only these text keys; the rest are the class defaults.
  const { config } = await read({
    architectures: ['Gemma3ForConditionalGeneration'],
    model_type: 'gemma3',
    eos_token_id: [1, 106],
    text_config: { hidden_size: 2560, intermediate_size: 10240, model_type: 'gemma3_text', num_hidden_layers: 34, rope_scaling: { factor: 8.0, rope_type: 'linear' }, sliding_window: 1024 },
    vision_config: { model_type: 'siglip_vision_model', hidden_size: 1152 },
    torch_dtype: 'bfloat16',
  });
  assert.equal(config.family, 'gemma3');
  assert.deepEqual([config.numHeads, config.numKvHeads, config.headDim, config.vocabSize], [8, 4, 256, 262_208]);
  assert.equal(config.ropeTheta, 1_000_000);
  assert.deepEqual(config.ropeScaling, { type: 'linear', factor: 8 });
  assert.equal(config.slidingAttention!.rope.theta, 10_000);
  assert.equal(config.slidingAttention!.window, 1024);
  assert.deepEqual(config.slidingAttention!.sliding.slice(0, 6), [true, true, true, true, true, false]);
  assert.equal(config.attentionScale, 1 / 16);
  assert.deepEqual(config.eosTokenIds, [1, 106]);
  assert.equal(config.storedDType, 'bf16');
  await refused({ model_type: 'gemma3', text_config: { ...gemmaText, hidden_size: undefined } }, /\(text_config\) is missing the key "hidden_size"/);
});

test('multimodal tensor names: language_model.model. (transformers 4) and model.language_model. (transformers 5) map to the decoder; vision tensors are skipped', () => {
  assert.equal(decoderTensorName('language_model.model.layers.3.mlp.up_proj.weight'), 'model.layers.3.mlp.up_proj.weight');
  assert.equal(decoderTensorName('language_model.lm_head.weight'), 'lm_head.weight');
  assert.equal(decoderTensorName('model.language_model.embed_tokens.weight'), 'model.embed_tokens.weight');
  assert.equal(decoderTensorName('lm_head.weight'), 'lm_head.weight');
  assert.equal(decoderTensorName('model.layers.0.self_attn.q_proj.weight'), 'model.layers.0.self_attn.q_proj.weight');
  for (const vision of ['vision_tower.vision_model.embeddings.patch_embedding.weight', 'model.vision_tower.vision_model.post_layernorm.weight', 'multi_modal_projector.mm_input_projection_weight', 'model.multi_modal_projector.mm_soft_emb_norm.weight', 'model.visual.blocks.0.attn.qkv.weight']) {
    assert.equal(decoderTensorName(vision), undefined, vision);
  }
});

test('a bf16 Gemma 3 scales embeddings by sqrt(hidden) rounded to bf16, as transformers does', async () => {
  const dir = join(tempDir(), 'g');
  mkdirSync(dir);
  // hidden 96: sqrt = 9.7979..., which bf16 holds as 9.8125.
  const tiny = await writeTinyHfModel(dir, { family: 'gemma3', hiddenSize: 96, intermediateSize: 128, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 48, vocabSize: 300, dtype: 'BF16', gemma3: { slidingWindow: 8 } });
  const checkpoint = await openHfCheckpoint(tiny.dir);
  try {
    assert.equal(checkpoint.config.embeddingScale, 9.8125);
    assert.ok(checkpoint.weights.has('model.layers.1.post_feedforward_layernorm.weight'));
    assert.ok(!checkpoint.weights.has('vision_tower.vision_model.post_layernorm.weight'));
    assert.equal(checkpoint.config.tieWordEmbeddings, true);
  } finally {
    await checkpoint.close();
  }
});
