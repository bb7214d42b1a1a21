// Tests of the test tooling itself: safetensors files, tiny Hugging Face checkpoints and their
// tokenizers, the GGUF writer, and llama.cpp (node-llama-cpp) as an oracle that agrees with an
// independent float64 reference forward pass of the Hugging Face architecture.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { f32ToBf16Bits, f32ToF16Bits } from '../../src/engine/dtype';
import { writeSafetensors, writeShardedSafetensors } from '../../src/engine/model/synthetic/safetensors-writer';
import { bf16Round, f16BitsToF32, f16Round } from '../support/safetensors-read';
import { argmax, referenceRunner, writeTinyHfModel, type Family, type TinyModel, type TinyModelSpec } from '../support/tiny-hf';
import { asStoredInGguf, dequantizeQ4_0, permuteRopeRows, quantizeQ4_0, writeGguf } from '../support/gguf';
import { disposeLlama, llamaGreedy } from '../support/llamacpp';
import { tempDir } from '../support/paths';

const dir = tempDir('rmas-oracle-');
after(() => disposeLlama());

const FAMILIES: Family[] = ['llama', 'qwen2', 'qwen3', 'mistral'];

function tinySpec(family: Family, extra: Partial<TinyModelSpec> = {}): TinyModelSpec {
  return {
    family,
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: family === 'qwen3' ? 32 : undefined,
    vocabSize: 400,
    ...extra,
  };
}

const modelCache = new Map<string, Promise<TinyModel>>();
function tinyModel(family: Family, extra: Partial<TinyModelSpec> = {}): Promise<TinyModel> {
  const key = family + JSON.stringify(extra);
  let p = modelCache.get(key);
  if (!p) {
    p = writeTinyHfModel(join(dir, `${family}-${modelCache.size}`), tinySpec(family, extra));
    modelCache.set(key, p);
  }
  return p;
}

/** Parses a safetensors file by hand, independently of the tooling's own reader. */
function parseSafetensors(path: string) {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const json = buf.subarray(8, 8 + n).toString('utf8');
  return { n, json, header: JSON.parse(json) as Record<string, any>, data: buf.subarray(8 + n) };
}

function logSoftmax(x: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  let s = 0;
  for (const v of x) s += Math.exp(v - m);
  const lse = m + Math.log(s);
  return Float64Array.from(x, (v) => v - lse);
}

/** Teacher-forces llama.cpp's tokens through the reference; max and mean |log-prob difference|. */
function compareWithReference(model: TinyModel, prompt: number[], got: { ids: number[]; logits: Float32Array[] }) {
  const ref = referenceRunner(model);
  let last: Float32Array = new Float32Array(0);
  for (const id of prompt) last = ref.step(id);
  let max = 0;
  let sum = 0;
  let count = 0;
  let argmaxAgree = 0;
  got.ids.forEach((id, i) => {
    const want = logSoftmax(last);
    const have = got.logits[i]!;
    for (let k = 0; k < want.length; k++) {
      if (want[k]! < -30) continue; // float32 probabilities underflow there
      const d = Math.abs(want[k]! - have[k]!);
      max = Math.max(max, d);
      sum += d;
      count++;
    }
    if (argmax(want) === id) argmaxAgree++;
    last = ref.step(id);
  });
  return { max, mean: sum / count, argmaxAgree };
}

const PROMPT = [10, 50, 100, 200, 300, 20, 33, 5, 6, 7, 8, 9, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 120, 121, 122, 123, 124, 125];

describe('safetensors writer', () => {
  test('bf16 and f16 conversion round to nearest even, with the right specials', () => {
    // 1 + 2^-8 lies halfway between bf16 1.0 and 1.0078125: ties go to the even mantissa.
    assert.equal(f32ToBf16Bits(1), 0x3f80);
    assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80);
    assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81);
    assert.equal(f32ToBf16Bits(-2.5), 0xc020);
    assert.equal(f32ToBf16Bits(Infinity), 0x7f80);
    assert.ok(Number.isNaN(bf16Round(Float32Array.of(NaN))[0]));
    assert.equal(f32ToF16Bits(65504), 0x7bff);
    assert.equal(f32ToF16Bits(65519), 0x7bff);
    assert.equal(f32ToF16Bits(65520), 0x7c00); // rounds up to infinity
    assert.equal(f32ToF16Bits(2 ** -24), 0x0001);
    assert.equal(f32ToF16Bits(2 ** -25), 0x0000); // tie to even (zero)
    assert.equal(f32ToF16Bits(-0), 0x8000);
    // Every finite f16 value survives f16 -> f32 -> f16, and each midpoint rounds to the even neighbour.
    for (let h = 0; h < 0x7c00; h++) {
      const v = f16BitsToF32(h);
      assert.equal(f32ToF16Bits(v), h);
      assert.equal(f32ToF16Bits(-v), h | 0x8000);
      if (h < 0x7bff) {
        const mid = (v + f16BitsToF32(h + 1)) / 2;
        assert.equal(f32ToF16Bits(mid), h & 1 ? h + 1 : h, `midpoint after 0x${h.toString(16)}`);
      }
    }
    assert.deepEqual(Array.from(f16Round(Float32Array.of(0.1, 1 / 3))), [f16BitsToF32(0x2e66), f16BitsToF32(0x3555)]);
  });

  test('a single file parses by hand: padded header, contiguous offsets, exact stored values', () => {
    const a = Float32Array.from({ length: 6 }, (_, i) => i * 0.3 - 0.7);
    const b = Float32Array.of(1 + 2 ** -8, 3.14159, -1e-3, 65519);
    const path = join(dir, 'round-trip.safetensors');
    writeSafetensors(
      path,
      [
        { name: 'a.weight', dtype: 'F32', shape: [2, 3], data: a },
        { name: 'b.bf16', dtype: 'BF16', shape: [4], data: b },
        { name: 'b.f16', dtype: 'F16', shape: [2, 2], data: b },
      ],
      { format: 'pt', note: 'tiny' },
    );
    const { n, json, header, data } = parseSafetensors(path);
    assert.equal((8 + n) % 8, 0);
    assert.equal(json, json.trimEnd() + ' '.repeat(json.length - json.trimEnd().length));
    assert.deepEqual(header.__metadata__, { format: 'pt', note: 'tiny' });
    assert.deepEqual(header['a.weight'], { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    assert.deepEqual(header['b.bf16'], { dtype: 'BF16', shape: [4], data_offsets: [24, 32] });
    assert.deepEqual(header['b.f16'], { dtype: 'F16', shape: [2, 2], data_offsets: [32, 40] });
    assert.equal(data.length, 40);
    const f32 = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + 24));
    assert.deepEqual(Array.from(f32), Array.from(a));
    const bf = Array.from({ length: 4 }, (_, i) => data.readUInt16LE(24 + 2 * i));
    assert.deepEqual(bf, [0x3f80, 0x4049, 0xba83, 0x4780]); // 65519 rounds up to 65536 in bf16
    const asF32 = bf.map((x) => new Float32Array(new Uint32Array([x << 16]).buffer)[0]);
    assert.deepEqual(asF32, Array.from(bf16Round(b)));
    const h = Array.from({ length: 4 }, (_, i) => data.readUInt16LE(32 + 2 * i));
    assert.deepEqual(h.map(f16BitsToF32), Array.from(f16Round(b)));
    assert.equal(h[3], 0x7bff);
  });

  test('shards and model.safetensors.index.json cover every tensor once', () => {
    const tensors = Array.from({ length: 7 }, (_, i) => ({
      name: `t${i}`,
      dtype: 'BF16' as const,
      shape: [i + 1, 8],
      data: Float32Array.from({ length: (i + 1) * 8 }, (_, k) => k - i),
    }));
    const out = join(dir, 'sharded');
    const names = writeShardedSafetensors(out, tensors, 3);
    assert.deepEqual(names, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    assert.equal(index.metadata.total_size, tensors.reduce((s, t) => s + t.data.length * 2, 0));
    assert.deepEqual(Object.keys(index.weight_map).sort(), tensors.map((t) => t.name).sort());
    for (const name of names) {
      const { header, data } = parseSafetensors(join(out, name));
      const inFile = Object.keys(header).filter((k) => k !== '__metadata__');
      assert.ok(inFile.length > 0, `${name} is empty`);
      for (const k of inFile) {
        assert.equal(index.weight_map[k], name);
        const [s, e] = header[k].data_offsets;
        const src = tensors.find((t) => t.name === k)!;
        const got = Array.from({ length: (e - s) / 2 }, (_, i) => data.readUInt16LE(s + 2 * i));
        assert.deepEqual(got, Array.from(src.data, (v) => f32ToBf16Bits(v)));
      }
    }
  });
});

describe('tiny Hugging Face checkpoints', () => {
  const texts = [
    'Hello world! The function returns 12345.',
    'def f(x):\n    return x * 2  # twice\n\n\tindented\r\nwindows line',
    "We're here; they'll see. Ünïcödé: é ß 東京 🙂 and  double  spaces   ",
  ];

  for (const family of FAMILIES) {
    test(`${family}: tokenizer.json loads in @huggingface/tokenizers and round-trips text`, async () => {
      const m = await tinyModel(family);
      const json = JSON.parse(readFileSync(join(m.dir, 'tokenizer.json'), 'utf8'));
      const config = JSON.parse(readFileSync(join(m.dir, 'tokenizer_config.json'), 'utf8'));
      const tok = new Tokenizer(json, config);
      assert.equal(tok.get_vocab(true).size, 400);
      assert.deepEqual(tok.encode('', { add_special_tokens: false }).ids, []);
      for (const text of texts) {
        const ids = tok.encode(text, { add_special_tokens: false }).ids;
        assert.equal(tok.decode(ids), text);
        assert.ok(ids.every((id) => id >= 0 && id < 400));
      }
      // Learned merges: common words are single tokens, not bytes.
      assert.deepEqual(tok.encode(' the', { add_special_tokens: false }).tokens, ['Ġthe']);
      // Special tokens are recognised inside text.
      const special = family === 'mistral' ? '[INST]' : family === 'llama' ? '<|eot_id|>' : '<|im_end|>';
      const ids = tok.encode(`a${special}b`, { add_special_tokens: false }).ids;
      assert.ok(ids.includes(m.specialTokens[special]!), JSON.stringify(ids));
      // BOS comes from the post-processor for Llama 3 and Mistral; Qwen adds none.
      const withSpecial = tok.encode('hi').ids;
      if (family === 'llama' || family === 'mistral') assert.equal(withSpecial[0], m.bosId);
      else assert.deepEqual(withSpecial, tok.encode('hi', { add_special_tokens: false }).ids);
      if (family === 'mistral') assert.deepEqual([m.specialTokens['<unk>'], m.specialTokens['<s>'], m.specialTokens['</s>']], [0, 1, 2]);
      else assert.equal(Math.min(...Object.values(m.specialTokens)), 400 - Object.keys(m.specialTokens).length);
    });
  }

  test('chat templates render each family\'s format with @huggingface/jinja', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ];
    const render = async (family: Family, extra: Record<string, unknown> = {}) => {
      const m = await tinyModel(family);
      const c = m.tokenizerConfig;
      return new Template(c.chat_template).render({ messages, add_generation_prompt: true, bos_token: c.bos_token, eos_token: c.eos_token, ...extra });
    };
    assert.equal(await render('qwen2'), '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    assert.equal(await render('qwen3'), '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    assert.equal(
      await render('qwen3', { enable_thinking: false }),
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
    assert.equal(
      await render('llama'),
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    assert.equal(await render('mistral'), '<s>[INST] Be brief.\n\nHi [/INST]');
  });

  test('config.json and tensor names follow each family', async () => {
    for (const family of FAMILIES) {
      const m = await tinyModel(family);
      const config = JSON.parse(readFileSync(join(m.dir, 'config.json'), 'utf8'));
      assert.equal(config.model_type, family);
      assert.equal(config.hidden_act, 'silu');
      assert.equal(config.vocab_size, 400);
      assert.equal(config.num_key_value_heads, 2);
      assert.equal(config.head_dim, family === 'qwen3' ? 32 : undefined);
      assert.equal(config.tie_word_embeddings, family.startsWith('qwen'));
      assert.equal(m.tensors.has('lm_head.weight'), !family.startsWith('qwen'));
      assert.equal(m.tensors.has('model.layers.1.self_attn.q_proj.bias'), family === 'qwen2');
      assert.deepEqual(m.tensors.get('model.layers.1.self_attn.k_norm.weight')?.shape, family === 'qwen3' ? [32] : undefined);
      assert.deepEqual(m.tensors.get('model.layers.0.self_attn.q_proj.weight')?.shape, [family === 'qwen3' ? 128 : 64, 64]);
      const gen = JSON.parse(readFileSync(join(m.dir, 'generation_config.json'), 'utf8'));
      assert.deepEqual([gen.eos_token_id].flat(), m.eosIds);
      const files = readdirSync(m.dir).sort();
      assert.deepEqual(files, ['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
      const { header } = parseSafetensors(join(m.dir, 'model.safetensors'));
      assert.deepEqual(Object.keys(header).filter((k) => k !== '__metadata__').sort(), [...m.tensors.keys()].sort());
    }
    const q2 = await tinyModel('qwen2');
    assert.equal(q2.config.use_sliding_window, false);
    const mi = await tinyModel('mistral');
    assert.equal(mi.config.sliding_window, null);
  });

  test('bf16 weights are stored rounded; sharded streaming gives the same GGUF as kept tensors', async () => {
    const kept = await writeTinyHfModel(join(dir, 'bf16-kept'), tinySpec('llama', { dtype: 'BF16', seed: 7 }));
    const streamed = await writeTinyHfModel(join(dir, 'bf16-streamed'), tinySpec('llama', { dtype: 'BF16', seed: 7, shards: 2, keepTensors: false }));
    assert.equal(streamed.tensors.size, 0);
    assert.equal(kept.config.torch_dtype, 'bfloat16');
    const w = kept.tensors.get('model.layers.0.mlp.up_proj.weight')!.data;
    assert.deepEqual(bf16Round(w), w);
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    assert.ok(Math.abs(std - 0.7) < 0.05, `weight std ${std}, expected the default 0.7 at width 64`);
    writeGguf(join(dir, 'kept.gguf'), kept, { type: 'F32' });
    writeGguf(join(dir, 'streamed.gguf'), streamed, { type: 'F32' });
    assert.ok(readFileSync(join(dir, 'kept.gguf')).equals(readFileSync(join(dir, 'streamed.gguf'))));
  });
});

describe('GGUF writer', () => {
  test('Q4_0 follows ggml: f16 scale = signed max / -8, low nibbles first half, high nibbles second', () => {
    const x = Float32Array.from({ length: 32 }, (_, i) => (i - 8) * 0.5); // max |x| = 11.5 at i = 31
    const q = quantizeQ4_0(x);
    assert.equal(q.length, 18);
    const d = f16BitsToF32(q[0]! | (q[1]! << 8));
    assert.equal(d, -11.5 / 8);
    // x[31] = 11.5 -> 11.5 / d + 8.5 = 0.5 -> 0; x[0] = -4 -> trunc(2.7826 + 8.5) = 11.
    assert.equal(q[2 + 15]! >> 4, 0);
    assert.equal(q[2]! & 0x0f, 11);
    const back = dequantizeQ4_0(q);
    for (let i = 0; i < 32; i++) assert.ok(Math.abs(back[i]! - x[i]!) <= Math.abs(d) / 2 + 1e-6, `element ${i}`);
  });

  test('q/k permutation turns rotate-half pairs into adjacent pairs within each head', () => {
    // 2 heads of dim 4, 1 column: rows [h0: a0 a1 b0 b1 | h1: ...] -> [a0 b0 a1 b1 | ...].
    const w = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(Array.from(permuteRopeRows(w, 8, 1, 2)), [0, 2, 1, 3, 4, 6, 5, 7]);
  });

  test('node-llama-cpp reads the metadata and tensor layout back', async () => {
    const { readGgufFileInfo } = await import('node-llama-cpp');
    const m = await tinyModel('qwen3');
    const path = join(dir, 'meta.gguf');
    writeGguf(path, m, { type: 'F32' });
    const info = await readGgufFileInfo(path, { readTensorInfo: true });
    const meta = info.metadata as any;
    assert.equal(info.version, 3);
    assert.equal(meta.general.architecture, 'qwen3');
    assert.equal(meta.qwen3.attention.head_count_kv, 2);
    assert.equal(meta.qwen3.attention.key_length, 32);
    assert.equal(meta.tokenizer.ggml.model, 'gpt2');
    assert.equal(meta.tokenizer.ggml.tokens.length, 400);
    assert.equal(meta.tokenizer.ggml.eos_token_id, m.specialTokens['<|im_end|>']);
    const q = info.fullTensorInfo!.find((t) => t.name === 'blk.0.attn_q.weight')!;
    assert.deepEqual(q.dimensions.map(Number), [64, 128]);
    assert.ok(!info.fullTensorInfo!.some((t) => t.name === 'output.weight'), 'tied embeddings have no output tensor');
  });
});

describe('llama.cpp oracle', () => {
  for (const family of FAMILIES) {
    test(`${family}: llama.cpp runs the F32 GGUF, deterministic, and matches the HF reference`, async (t) => {
      const m = await tinyModel(family);
      const path = join(dir, `${family}.f32.gguf`);
      writeGguf(path, m, { type: 'F32' });
      const t0 = performance.now();
      const a = await llamaGreedy(path, PROMPT, 16);
      t.diagnostic(`llamaGreedy ${PROMPT.length}+16 tokens: ${(performance.now() - t0).toFixed(0)} ms`);
      const b = await llamaGreedy(path, PROMPT, 16);
      assert.equal(a.ids.length, 16);
      assert.deepEqual(a.ids, b.ids);
      assert.deepEqual(a.logits, b.logits);
      a.logits.forEach((l, i) => {
        assert.equal(l.length, 400);
        assert.equal(argmax(l), a.ids[i]);
      });
      assert.ok(new Set(a.ids).size >= 8, `degenerate continuation ${a.ids.join(' ')}`);
      // The strongest check: rows permuted, biases and norms placed right, or logits drift by units.
      const cmp = compareWithReference(m, PROMPT, a);
      t.diagnostic(`max |log-prob diff| vs reference ${cmp.max.toExponential(2)}`);
      assert.ok(cmp.max < 5e-3, `max diff ${cmp.max}`);
      assert.equal(cmp.argmaxAgree, 16);
    });
  }

  test('llama3 rope_scaling reaches llama.cpp through rope_freqs', async (t) => {
    const m = await tinyModel('llama', { ropeScalingLlama3: true, ropeTheta: 10000, headDim: 32, numHeads: 2, numKvHeads: 1 });
    const path = join(dir, 'llama3-rope.gguf');
    writeGguf(path, m, { type: 'F32' });
    const got = await llamaGreedy(path, PROMPT, 8);
    const withScaling = compareWithReference(m, PROMPT, got);
    const unscaled = { ...m, config: { ...m.config, rope_scaling: null } };
    const without = compareWithReference(unscaled, PROMPT, got);
    t.diagnostic(`max |log-prob diff| vs reference: with rope_scaling ${withScaling.max.toExponential(2)}, without ${without.max.toExponential(2)}`);
    assert.ok(withScaling.max < 5e-3, `max diff ${withScaling.max}`);
    assert.ok(without.max > 20 * withScaling.max, `scaling makes no visible difference (${without.max} vs ${withScaling.max})`);
  });

  test('Q4_0 GGUF loads and tracks the Q4_0-rounded weights, not the originals', async (t) => {
    const m = await tinyModel('qwen2');
    const path = join(dir, 'qwen2.q4_0.gguf');
    writeGguf(path, m, { type: 'Q4_0' });
    const got = await llamaGreedy(path, PROMPT.slice(0, 8), 12);
    assert.equal(got.ids.length, 12);
    const stored = compareWithReference(asStoredInGguf(m, 'Q4_0'), PROMPT.slice(0, 8), got);
    const original = compareWithReference(m, PROMPT.slice(0, 8), got);
    t.diagnostic(`mean |log-prob diff|: vs Q4_0 weights ${stored.mean.toFixed(3)}, vs originals ${original.mean.toFixed(3)}`);
    // llama.cpp also rounds activations to Q8_0, so agreement is close but not exact.
    assert.ok(stored.mean < original.mean / 4, `${stored.mean} vs ${original.mean}`);
    assert.ok(stored.argmaxAgree >= 10, `argmax agreement ${stored.argmaxAgree}/12`);
  });
});
