// Test tooling: converts a tiny Hugging Face checkpoint (tiny-hf.ts) to GGUF v3 the way
// llama.cpp's convert_hf_to_gguf.py does, so llama.cpp can serve as an independent oracle.
// Written from the GGUF spec and ggml's block layouts; tensors are streamed one at a time.
import { closeSync, openSync, writeSync } from 'node:fs';
import { f32ToF16Bits } from '../../src/engine/dtype';
import { f16BitsToF32, f16Round, listModelTensors, readStoredTensor } from './safetensors-read';
import { headDimOf, storedTensorName, type TinyModel } from './tiny-hf';

export type GgufWeightType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0';

export interface GgufTensorSummary {
  name: string;
  type: GgufWeightType;
  /** GGML order: ne[0] (the contiguous row length) first. */
  dims: number[];
}

const ALIGNMENT = 32;
const QK4_0 = 32;
const Q4_0_BLOCK_BYTES = 2 + QK4_0 / 2;
const QK8_0 = 32;
const Q8_0_BLOCK_BYTES = 2 + QK8_0;

const GGML_TYPE: Record<GgufWeightType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 };
// llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q4_0, MOSTLY_Q8_0.
const FILE_TYPE: Record<GgufWeightType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7 };

enum Kv {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

type KvValue =
  | { type: Kv.UINT32 | Kv.INT32 | Kv.FLOAT32; value: number }
  | { type: Kv.BOOL; value: boolean }
  | { type: Kv.STRING; value: string }
  | { type: Kv.ARRAY; itemType: Kv.STRING; value: string[] }
  | { type: Kv.ARRAY; itemType: Kv.INT32; value: number[] };

/** Little-endian byte builder for the header. */
class Bytes {
  private parts: Buffer[] = [];
  length = 0;
  private push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  raw(b: Buffer): void {
    this.push(b);
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function writeKv(out: Bytes, key: string, v: KvValue): void {
  out.str(key);
  out.u32(v.type);
  switch (v.type) {
    case Kv.UINT32:
      out.u32(v.value);
      break;
    case Kv.INT32:
      out.i32(v.value);
      break;
    case Kv.FLOAT32:
      out.f32(v.value);
      break;
    case Kv.BOOL:
      out.raw(Buffer.from([v.value ? 1 : 0]));
      break;
    case Kv.STRING:
      out.str(v.value);
      break;
    case Kv.ARRAY:
      out.u32(v.itemType);
      out.u64(v.value.length);
      if (v.itemType === Kv.STRING) for (const s of v.value) out.str(s);
      else for (const n of v.value) out.i32(n);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Quantization and layout

/**
 * ggml's reference Q4_0 (quantize_row_q4_0_ref): per block of 32, d = (value of largest
 * magnitude) / -8 stored as f16, q = min(15, trunc(x/d + 8.5)) computed in float32; byte j holds
 * element j in its low nibble and element j+16 in its high nibble.
 */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  if (x.length % QK4_0 !== 0) throw new Error(`Q4_0 needs a multiple of ${QK4_0} values, got ${x.length}`);
  const nb = x.length / QK4_0;
  const out = new Uint8Array(nb * Q4_0_BLOCK_BYTES);
  const f = Math.fround;
  for (let i = 0; i < nb; i++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = x[i * QK4_0 + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f(max / -8);
    const id = d ? f(1 / d) : 0;
    const h = f32ToF16Bits(d);
    const o = i * Q4_0_BLOCK_BYTES;
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < QK4_0 / 2; j++) {
      const x0 = f(x[i * QK4_0 + j]! * id);
      const x1 = f(x[i * QK4_0 + QK4_0 / 2 + j]! * id);
      const q0 = Math.min(15, Math.trunc(f(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(f(x1 + 8.5)));
      out[o + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/**
 * ggml's reference Q8_0 (quantize_row_q8_0_ref): per block of 32, d = (largest magnitude) / 127
 * stored as f16, q = roundf(x / d) (halves away from zero) computed in float32.
 */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  if (x.length % QK8_0 !== 0) throw new Error(`Q8_0 needs a multiple of ${QK8_0} values, got ${x.length}`);
  const nb = x.length / QK8_0;
  const out = new Uint8Array(nb * Q8_0_BLOCK_BYTES);
  const f = Math.fround;
  for (let i = 0; i < nb; i++) {
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) amax = Math.max(amax, Math.abs(x[i * QK8_0 + j]!));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    const h = f32ToF16Bits(d);
    const o = i * Q8_0_BLOCK_BYTES;
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < QK8_0; j++) {
      const v = f(x[i * QK8_0 + j]! * id);
      out[o + 2 + j] = (Math.sign(v) * Math.round(Math.abs(v))) & 0xff;
    }
  }
  return out;
}

/** The float values a Q8_0 buffer represents (ggml's dequantize_row_q8_0). */
export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  const nb = bytes.length / Q8_0_BLOCK_BYTES;
  const out = new Float32Array(nb * QK8_0);
  for (let i = 0; i < nb; i++) {
    const o = i * Q8_0_BLOCK_BYTES;
    const d = f16BitsToF32(bytes[o]! | (bytes[o + 1]! << 8));
    for (let j = 0; j < QK8_0; j++) out[i * QK8_0 + j] = ((bytes[o + 2 + j]! << 24) >> 24) * d;
  }
  return out;
}

/** The float values a Q4_0 buffer represents (ggml's dequantize_row_q4_0). */
export function dequantizeQ4_0(bytes: Uint8Array): Float32Array {
  const nb = bytes.length / Q4_0_BLOCK_BYTES;
  const out = new Float32Array(nb * QK4_0);
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_0_BLOCK_BYTES;
    const d = f16BitsToF32(bytes[o]! | (bytes[o + 1]! << 8));
    for (let j = 0; j < QK4_0 / 2; j++) {
      const b = bytes[o + 2 + j]!;
      out[i * QK4_0 + j] = ((b & 0x0f) - 8) * d;
      out[i * QK4_0 + j + QK4_0 / 2] = ((b >>> 4) - 8) * d;
    }
  }
  return out;
}

/**
 * convert_hf_to_gguf.py's permute for Llama-style q_proj/k_proj rows: HF rotates halves
 * (pairs i, i+hd/2) while GGML's "normal" RoPE rotates adjacent pairs (2i, 2i+1), so within each
 * head row s*hd/2 + j moves to row 2j + s.
 */
export function permuteRopeRows(w: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const hd = rows / heads;
  if (!Number.isInteger(hd) || hd % 2 !== 0) throw new Error(`cannot permute ${rows} rows into ${heads} heads`);
  const out = new Float32Array(w.length);
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let j = 0; j < half; j++) {
        const src = (h * hd + s * half + j) * cols;
        const dst = (h * hd + 2 * j + s) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/** llama.cpp's rope_freqs for Llama 3.1 rope_scaling (convert_hf_to_gguf.py's rope factors). */
export function llama3RopeFactors(config: any, headDim: number): Float32Array {
  const rs = config.rope_scaling;
  const base: number = config.rope_theta;
  const factor: number = rs.factor ?? 8;
  const low: number = rs.low_freq_factor ?? 1;
  const high: number = rs.high_freq_factor ?? 4;
  const oldLen: number = rs.original_max_position_embeddings ?? 8192;
  const lowWave = oldLen / low;
  const highWave = oldLen / high;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / Math.pow(base, (2 * i) / headDim);
    const wave = (2 * Math.PI) / freq;
    if (wave < highWave) out[i] = 1;
    else if (wave > lowWave) out[i] = factor;
    else {
      const smooth = (oldLen / wave - low) / (high - low);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Conversion

interface PlannedTensor {
  name: string;
  /** HF shape [rows, cols] or [n]. */
  shape: number[];
  type: GgufWeightType;
  load: () => Float32Array;
}

function ggufArch(family: TinyModel['spec']['family']): string {
  return family === 'llama' || family === 'mistral' ? 'llama' : family;
}

function tokenizerPre(family: TinyModel['spec']['family']): string {
  // Pre-tokenizer names llama.cpp knows, matching each family's split regex.
  return family === 'llama' ? 'llama-bpe' : family === 'mistral' || family === 'gemma3' ? 'gpt-2' : 'qwen2';
}

/** The decoder's part of config.json (a multimodal Gemma 3 nests it under text_config). */
function textConfig(model: TinyModel): any {
  return model.config.text_config ?? model.config;
}

/**
 * The full-attention RoPE as convert_hf_to_gguf.py reads it: rope_parameters (transformers 5;
 * per layer type for Gemma 3) or rope_theta + rope_scaling (transformers 4).
 */
function fullRope(c: any): { theta: number; params: any } {
  const params = c.rope_parameters ?? c.rope_scaling ?? {};
  const full = params.full_attention ?? params;
  return { theta: full.rope_theta ?? c.rope_theta, params: full };
}

/** The sliding layers' RoPE base (Gemma 3), in either layout. */
function slidingRopeTheta(c: any): number | undefined {
  return c.rope_parameters?.sliding_attention?.rope_theta ?? c.rope_local_base_freq;
}

/** llama.cpp's gemma3 sliding pattern: layer il is sliding when il % period < period - 1. */
function slidingPeriod(c: any): number {
  if (!Array.isArray(c.layer_types)) return c.sliding_window_pattern;
  const types: string[] = c.layer_types;
  const period = types.indexOf('full_attention') + 1;
  if (period < 1 || types.some((t, i) => (t === 'sliding_attention') !== (i % period < period - 1))) {
    throw new Error('layer_types is not periodic, which a GGUF sliding_window_pattern cannot express');
  }
  return period;
}

function chooseType(shape: number[], want: GgufWeightType): GgufWeightType {
  if (shape.length < 2 || want === 'F32') return 'F32';
  if ((want === 'Q4_0' || want === 'Q8_0') && shape[shape.length - 1]! % QK4_0 !== 0) return 'F32';
  return want;
}

function byteSize(type: GgufWeightType, n: number): number {
  if (type === 'Q8_0') return (n / QK8_0) * Q8_0_BLOCK_BYTES;
  return type === 'F32' ? n * 4 : type === 'F16' ? n * 2 : (n / QK4_0) * Q4_0_BLOCK_BYTES;
}

function encode(type: GgufWeightType, x: Float32Array): Uint8Array {
  if (type === 'F32') return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (type === 'Q4_0') return quantizeQ4_0(x);
  if (type === 'Q8_0') return quantizeQ8_0(x);
  const h = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) h[i] = f32ToF16Bits(x[i]!);
  return new Uint8Array(h.buffer);
}

function planTensors(model: TinyModel, want: GgufWeightType): PlannedTensor[] {
  const spec = model.spec;
  const stored = model.tensors.size > 0 ? undefined : listModelTensors(model.dir);
  const load = (name: string) => (): Float32Array => {
    const kept = model.tensors.get(name);
    if (kept) return kept.data;
    const info = stored!.get(name);
    if (!info) throw new Error(`tensor ${name} is missing from ${model.dir}`);
    return readStoredTensor(info);
  };
  const shapeOf = (name: string): number[] => {
    const kept = model.tensors.get(name);
    if (kept) return kept.shape;
    const info = stored!.get(name);
    if (!info) throw new Error(`tensor ${name} is missing from ${model.dir}`);
    return info.shape;
  };
  const out: PlannedTensor[] = [];
  const gemma = spec.family === 'gemma3';
  // Gemma's RMSNorm multiplies by (1 + weight); llama.cpp's by the weight, so the converter adds 1.
  const shiftNorm = (x: Float32Array) => x.map((v) => v + 1);
  const add = (gguf: string, canonical: string, transform?: (x: Float32Array, shape: number[]) => Float32Array) => {
    const hf = storedTensorName(spec, canonical);
    const shape = shapeOf(hf);
    const base = load(hf);
    const shift = gemma && canonical.endsWith('norm.weight');
    const transformed = shift ? () => shiftNorm(base()) : base;
    out.push({ name: gguf, shape, type: chooseType(shape, want), load: transform ? () => transform(transformed(), shape) : transformed });
  };
  const c = textConfig(model);
  const hd = headDimOf(spec);
  const permute = spec.family === 'llama' || spec.family === 'mistral';
  const permuted = (heads: number) => (x: Float32Array, shape: number[]) => permuteRopeRows(x, shape[0]!, shape[1]!, heads);
  add('token_embd.weight', 'model.embed_tokens.weight');
  const rope = fullRope(c);
  if (spec.family === 'llama' && rope.params.rope_type === 'llama3') {
    const factors = llama3RopeFactors({ rope_scaling: rope.params, rope_theta: rope.theta }, hd);
    out.push({ name: 'rope_freqs.weight', shape: [hd / 2], type: 'F32', load: () => factors });
  }
  for (let i = 0; i < spec.numLayers; i++) {
    const hf = `model.layers.${i}.`;
    const g = `blk.${i}.`;
    add(g + 'attn_norm.weight', hf + 'input_layernorm.weight');
    add(g + 'attn_q.weight', hf + 'self_attn.q_proj.weight', permute ? permuted(spec.numHeads) : undefined);
    add(g + 'attn_k.weight', hf + 'self_attn.k_proj.weight', permute ? permuted(spec.numKvHeads) : undefined);
    add(g + 'attn_v.weight', hf + 'self_attn.v_proj.weight');
    if (spec.family === 'qwen2') {
      add(g + 'attn_q.bias', hf + 'self_attn.q_proj.bias');
      add(g + 'attn_k.bias', hf + 'self_attn.k_proj.bias');
      add(g + 'attn_v.bias', hf + 'self_attn.v_proj.bias');
    }
    if (spec.family === 'qwen3' || gemma) {
      add(g + 'attn_q_norm.weight', hf + 'self_attn.q_norm.weight');
      add(g + 'attn_k_norm.weight', hf + 'self_attn.k_norm.weight');
    }
    add(g + 'attn_output.weight', hf + 'self_attn.o_proj.weight');
    if (gemma) {
      add(g + 'post_attention_norm.weight', hf + 'post_attention_layernorm.weight');
      add(g + 'ffn_norm.weight', hf + 'pre_feedforward_layernorm.weight');
      add(g + 'post_ffw_norm.weight', hf + 'post_feedforward_layernorm.weight');
    } else {
      add(g + 'ffn_norm.weight', hf + 'post_attention_layernorm.weight');
    }
    add(g + 'ffn_gate.weight', hf + 'mlp.gate_proj.weight');
    add(g + 'ffn_up.weight', hf + 'mlp.up_proj.weight');
    add(g + 'ffn_down.weight', hf + 'mlp.down_proj.weight');
  }
  add('output_norm.weight', 'model.norm.weight');
  const lmHead = storedTensorName(spec, 'lm_head.weight');
  if (model.tensors.size > 0 ? model.tensors.has(lmHead) : stored!.has(lmHead)) add('output.weight', 'lm_head.weight');
  return out;
}

function metadata(model: TinyModel, want: GgufWeightType): [string, KvValue][] {
  const spec = model.spec;
  const c = textConfig(model);
  const arch = ggufArch(spec.family);
  const hd = headDimOf(spec);
  const u32 = (value: number): KvValue => ({ type: Kv.UINT32, value });
  const f32 = (value: number): KvValue => ({ type: Kv.FLOAT32, value });
  const str = (value: string): KvValue => ({ type: Kv.STRING, value });
  const kv: [string, KvValue][] = [
    ['general.architecture', str(arch)],
    ['general.type', str('model')],
    ['general.name', str(`tiny ${spec.family}`)],
    ['general.file_type', u32(FILE_TYPE[want])],
    ['general.alignment', u32(ALIGNMENT)],
  ];
  if (want === 'Q4_0' || want === 'Q8_0') kv.push(['general.quantization_version', u32(2)]);
  kv.push(
    [`${arch}.block_count`, u32(spec.numLayers)],
    [`${arch}.context_length`, u32(c.max_position_embeddings)],
    [`${arch}.embedding_length`, u32(spec.hiddenSize)],
    [`${arch}.feed_forward_length`, u32(spec.intermediateSize)],
    [`${arch}.attention.head_count`, u32(spec.numHeads)],
    [`${arch}.attention.head_count_kv`, u32(spec.numKvHeads)],
    [`${arch}.rope.freq_base`, f32(fullRope(c).theta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(c.rms_norm_eps)],
    [`${arch}.rope.dimension_count`, u32(hd)],
  );
  // As convert_hf_to_gguf.py: whenever config.json states head_dim.
  if (c.head_dim !== undefined || hd !== spec.hiddenSize / spec.numHeads) {
    kv.push([`${arch}.attention.key_length`, u32(hd)], [`${arch}.attention.value_length`, u32(hd)]);
  }
  kv.push([`${arch}.vocab_size`, u32(spec.vocabSize)]);
  if (spec.family === 'gemma3') {
    // As convert_hf_to_gguf.py's Gemma3Model (llama.cpp takes 1/sqrt(head_dim) as the query scale).
    if (c.query_pre_attn_scalar !== hd) throw new Error('llama.cpp scales gemma3 queries by 1/sqrt(head_dim); query_pre_attn_scalar must equal head_dim');
    kv.push([`${arch}.attention.sliding_window`, u32(c.sliding_window)], [`${arch}.attention.sliding_window_pattern`, u32(slidingPeriod(c))]);
    const local = slidingRopeTheta(c);
    if (local !== undefined) kv.push([`${arch}.rope.freq_base_swa`, f32(local)]);
    const full = fullRope(c).params;
    if (full.rope_type === 'linear' || full.type === 'linear') kv.push([`${arch}.rope.scaling.type`, str('linear')], [`${arch}.rope.scaling.factor`, f32(full.factor)]);
    if (c.final_logit_softcapping) kv.push([`${arch}.final_logit_softcapping`, f32(c.final_logit_softcapping)]);
  }

  const specialIds = new Map(Object.entries(model.specialTokens).map(([t, id]) => [id, t]));
  const tokenTypes = model.vocab.map((_, id) => {
    const t = specialIds.get(id);
    if (t === undefined) return 1; // NORMAL
    const isSpecial = model.addedTokens.find((a) => a.id === id)?.special;
    return isSpecial ? 3 : 4; // CONTROL : USER_DEFINED
  });
  kv.push(
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str(tokenizerPre(spec.family))],
    ['tokenizer.ggml.tokens', { type: Kv.ARRAY, itemType: Kv.STRING, value: model.vocab }],
    ['tokenizer.ggml.token_type', { type: Kv.ARRAY, itemType: Kv.INT32, value: tokenTypes }],
    ['tokenizer.ggml.merges', { type: Kv.ARRAY, itemType: Kv.STRING, value: model.merges.map(([a, b]) => `${a} ${b}`) }],
  );
  const bos = model.bosId ?? c.bos_token_id;
  kv.push(['tokenizer.ggml.bos_token_id', u32(bos)]);
  const configEos = Array.isArray(c.eos_token_id) ? c.eos_token_id : [c.eos_token_id];
  // llama.cpp's converter takes the tokenizer's eos_token (the turn end for chat models).
  const eosName: string = model.tokenizerConfig.eos_token;
  kv.push(['tokenizer.ggml.eos_token_id', u32(model.specialTokens[eosName] ?? configEos[0])]);
  const pad = model.tokenizerConfig.pad_token;
  if (typeof pad === 'string' && model.specialTokens[pad] !== undefined) kv.push(['tokenizer.ggml.padding_token_id', u32(model.specialTokens[pad])]);
  kv.push(['tokenizer.ggml.add_bos_token', { type: Kv.BOOL, value: model.bosId !== null && spec.family !== 'qwen2' && spec.family !== 'qwen3' }]);
  if (typeof model.tokenizerConfig.chat_template === 'string') kv.push(['tokenizer.chat_template', str(model.tokenizerConfig.chat_template)]);
  return kv;
}

/**
 * Writes `model` as GGUF v3. `type` applies to every 2-D weight, token_embd and output included
 * (llama-quantize's Q4_0 preset would keep output.weight at Q6_K; we keep one type for simplicity);
 * norms, biases and rope_freqs stay F32, as do Q4_0 matrices whose rows are not a multiple of 32.
 * llama/mistral q/k rows are permuted for GGML's adjacent-pair RoPE; qwen2/qwen3 (NEOX RoPE) are not.
 */
export function writeGguf(path: string, model: TinyModel, opts: { type: GgufWeightType }): GgufTensorSummary[] {
  const qwen35 = model.spec.family === 'qwen3_5';
  const tensors = qwen35 ? planQwen35Tensors(model, opts.type) : planTensors(model, opts.type);
  const header = new Bytes();
  header.u32(0x46554747); // "GGUF"
  header.u32(3);
  const kv = qwen35 ? qwen35Metadata(model, opts.type) : metadata(model, opts.type);
  header.u64(tensors.length);
  header.u64(kv.length);
  for (const [k, v] of kv) writeKv(header, k, v);
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const dims = t.shape.slice().reverse();
    header.str(t.name);
    header.u32(dims.length);
    for (const d of dims) header.u64(d);
    header.u32(GGML_TYPE[t.type]);
    header.u64(offset);
    offsets.push(offset);
    const n = t.shape.reduce((a, b) => a * b, 1);
    offset += byteSize(t.type, n);
    offset += (ALIGNMENT - (offset % ALIGNMENT)) % ALIGNMENT;
  }
  const headerBytes = header.toBuffer();
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, headerBytes);
    let pos = headerBytes.length;
    const pad = (ALIGNMENT - (pos % ALIGNMENT)) % ALIGNMENT;
    writeSync(fd, Buffer.alloc(pad));
    const dataStart = pos + pad;
    pos = dataStart;
    tensors.forEach((t, i) => {
      const target = dataStart + offsets[i]!;
      if (target > pos) writeSync(fd, Buffer.alloc(target - pos));
      const bytes = encode(t.type, t.load());
      writeSync(fd, bytes);
      pos = target + bytes.length;
    });
    const tail = (ALIGNMENT - ((pos - dataStart) % ALIGNMENT)) % ALIGNMENT;
    if (tail) writeSync(fd, Buffer.alloc(tail));
  } finally {
    closeSync(fd);
  }
  return tensors.map((t) => ({ name: t.name, type: t.type, dims: t.shape.slice().reverse() }));
}

/**
 * A copy of `model` whose tensors hold the values a GGUF of `type` stores (f16-rounded or Q4_0
 * round-tripped 2-D weights), so a reference forward pass can be compared with llama.cpp running
 * that file. llama.cpp also rounds activations for such weights (f16, or Q8_0 next to Q4_0),
 * so agreement is close, not exact.
 */
export function asStoredInGguf(model: TinyModel, type: GgufWeightType): TinyModel {
  if (model.tensors.size === 0) throw new Error('asStoredInGguf needs the stored tensors (keepTensors)');
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of model.tensors) {
    const kind = chooseType(t.shape, type);
    const data =
      kind === 'Q4_0' ? dequantizeQ4_0(quantizeQ4_0(t.data)) : kind === 'Q8_0' ? dequantizeQ8_0(quantizeQ8_0(t.data)) : kind === 'F16' ? f16Round(t.data) : t.data;
    tensors.set(name, { shape: t.shape, data });
  }
  return { ...model, tensors };
}

// ---------------------------------------------------------------------------------------------
// Qwen3.5 (llama.cpp's qwen35 architecture), following llama.cpp's conversion of Qwen3.5 /
// Qwen3Next: norms stored zero-centred get +1 except the gated linear_attn.norm; A_log becomes
// ssm_a = -exp(A_log); dt_bias is ssm_dt.bias; conv1d [C,1,K] is squeezed to [C,K]; and when key
// heads are fewer than value heads, everything indexed by value head is reordered from grouped
// (value heads of key head 0, then of key head 1, ...) to tiled order, which ggml's broadcasting
// of the key heads over value heads assumes.

/** The decoder keys of a Qwen3.5 config.json (under text_config in the multimodal layout). */
export function qwen35TextConfig(model: TinyModel): any {
  return model.config.text_config ?? model.config;
}

/** Row blocks of `width` values indexed [k][r] become [r][k] (K key heads, R value heads per key head). */
function groupedToTiled(x: Float32Array, blocks: number, keyHeads: number, width: number, rowLength = 1): Float32Array {
  const perKey = blocks / keyHeads;
  const block = width * rowLength;
  const out = new Float32Array(x.length);
  for (let k = 0; k < keyHeads; k++) {
    for (let r = 0; r < perKey; r++) out.set(x.subarray((k * perKey + r) * block, (k * perKey + r + 1) * block), (r * keyHeads + k) * block);
  }
  return out;
}

function planQwen35Tensors(model: TinyModel, want: GgufWeightType): PlannedTensor[] {
  const t = qwen35TextConfig(model);
  const stored = model.tensors.size > 0 ? undefined : listModelTensors(model.dir);
  const prefix = model.config.text_config ? 'model.language_model.' : 'model.';
  const hfName = (name: string) => (name.startsWith('model.') ? prefix + name.slice('model.'.length) : name);
  const find = (name: string) => {
    const kept = model.tensors.get(hfName(name));
    if (kept) return { shape: kept.shape, load: () => kept.data };
    const info = stored?.get(hfName(name));
    if (!info) throw new Error(`tensor ${hfName(name)} is missing from ${model.dir}`);
    return { shape: info.shape, load: () => readStoredTensor(info) };
  };
  const K = t.linear_num_key_heads;
  const V = t.linear_num_value_heads;
  const dk = t.linear_key_head_dim;
  const dv = t.linear_value_head_dim;
  const H = t.hidden_size;
  const reorder = K !== V;
  const out: PlannedTensor[] = [];
  const add = (gguf: string, hf: string, transform?: (x: Float32Array) => Float32Array, shape?: number[]) => {
    const src = find(hf);
    const finalShape = shape ?? src.shape;
    out.push({ name: gguf, shape: finalShape, type: chooseType(finalShape, want), load: transform ? () => transform(src.load()) : src.load });
  };
  const plusOne = (x: Float32Array) => x.map((v) => v + 1);
  const valueRows = (width: number, rowLength: number) => (x: Float32Array) => (reorder ? groupedToTiled(x, V, K, width, rowLength) : x);
  add('token_embd.weight', 'model.embed_tokens.weight');
  for (let i = 0; i < t.num_hidden_layers; i++) {
    const hf = `model.layers.${i}.`;
    const g = `blk.${i}.`;
    add(g + 'attn_norm.weight', hf + 'input_layernorm.weight', plusOne);
    add(g + 'post_attention_norm.weight', hf + 'post_attention_layernorm.weight', plusOne);
    if (t.layer_types[i] === 'linear_attention') {
      const a = hf + 'linear_attn.';
      const qk = 2 * K * dk;
      add(g + 'attn_qkv.weight', a + 'in_proj_qkv.weight', (x) => {
        const y = Float32Array.from(x);
        y.set(valueRows(dv, H)(x.subarray(qk * H)), qk * H);
        return y;
      });
      add(g + 'attn_gate.weight', a + 'in_proj_z.weight', valueRows(dv, H));
      add(g + 'ssm_beta.weight', a + 'in_proj_b.weight', valueRows(1, H));
      add(g + 'ssm_alpha.weight', a + 'in_proj_a.weight', valueRows(1, H));
      const conv = find(a + 'conv1d.weight');
      const kernel = conv.shape[2]!;
      add(g + 'ssm_conv1d.weight', a + 'conv1d.weight', (x) => {
        const y = Float32Array.from(x);
        y.set(valueRows(dv, kernel)(x.subarray(qk * kernel)), qk * kernel);
        return y;
      }, [conv.shape[0]!, kernel]);
      add(g + 'ssm_dt.bias', a + 'dt_bias', valueRows(1, 1));
      add(g + 'ssm_a', a + 'A_log', (x) => valueRows(1, 1)(x.map((v) => -Math.exp(v))));
      add(g + 'ssm_norm.weight', a + 'norm.weight');
      add(g + 'ssm_out.weight', a + 'out_proj.weight', (x) => {
        if (!reorder) return x;
        // Columns are value-head dims: reorder within every row.
        const y = new Float32Array(x.length);
        const cols = V * dv;
        for (let r = 0; r < H; r++) y.set(groupedToTiled(x.subarray(r * cols, (r + 1) * cols), V, K, dv), r * cols);
        return y;
      });
    } else {
      add(g + 'attn_q.weight', hf + 'self_attn.q_proj.weight');
      add(g + 'attn_k.weight', hf + 'self_attn.k_proj.weight');
      add(g + 'attn_v.weight', hf + 'self_attn.v_proj.weight');
      add(g + 'attn_q_norm.weight', hf + 'self_attn.q_norm.weight', plusOne);
      add(g + 'attn_k_norm.weight', hf + 'self_attn.k_norm.weight', plusOne);
      add(g + 'attn_output.weight', hf + 'self_attn.o_proj.weight');
    }
    add(g + 'ffn_gate.weight', hf + 'mlp.gate_proj.weight');
    add(g + 'ffn_up.weight', hf + 'mlp.up_proj.weight');
    add(g + 'ffn_down.weight', hf + 'mlp.down_proj.weight');
  }
  add('output_norm.weight', 'model.norm.weight', plusOne);
  if (!model.config.tie_word_embeddings) add('output.weight', 'lm_head.weight');
  return out;
}

function qwen35Metadata(model: TinyModel, want: GgufWeightType): [string, KvValue][] {
  const t = qwen35TextConfig(model);
  const rope = t.rope_parameters ?? {};
  const rotaryDim = Math.round(t.head_dim * (rope.partial_rotary_factor ?? 0.25));
  // The tokenizer and general keys as for any family, from a flat view of the text config.
  const flat = { ...t, rope_theta: rope.rope_theta };
  const shared = metadata({ ...model, config: flat }, want).filter(([k]) => !k.startsWith('qwen3_5.') && k !== 'general.architecture');
  const u32 = (value: number): KvValue => ({ type: Kv.UINT32, value });
  const f32 = (value: number): KvValue => ({ type: Kv.FLOAT32, value });
  const half = rotaryDim / 2;
  const third = Math.floor(half / 3);
  const a = 'qwen35';
  return [
    ['general.architecture', { type: Kv.STRING, value: a }],
    ...shared,
    [`${a}.block_count`, u32(t.num_hidden_layers)],
    [`${a}.context_length`, u32(t.max_position_embeddings)],
    [`${a}.embedding_length`, u32(t.hidden_size)],
    [`${a}.feed_forward_length`, u32(t.intermediate_size)],
    [`${a}.attention.head_count`, u32(t.num_attention_heads)],
    [`${a}.attention.head_count_kv`, u32(t.num_key_value_heads)],
    [`${a}.attention.key_length`, u32(t.head_dim)],
    [`${a}.attention.value_length`, u32(t.head_dim)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(t.rms_norm_eps)],
    [`${a}.rope.freq_base`, f32(rope.rope_theta)],
    [`${a}.rope.dimension_count`, u32(rotaryDim)],
    // Text positions are equal on every axis, so the sections only need to cover the rotary pairs.
    [`${a}.rope.dimension_sections`, { type: Kv.ARRAY, itemType: Kv.INT32, value: [half - 2 * third, third, third, 0] }],
    [`${a}.ssm.conv_kernel`, u32(t.linear_conv_kernel_dim)],
    [`${a}.ssm.state_size`, u32(t.linear_key_head_dim)],
    [`${a}.ssm.group_count`, u32(t.linear_num_key_heads)],
    [`${a}.ssm.time_step_rank`, u32(t.linear_num_value_heads)],
    [`${a}.ssm.inner_size`, u32(t.linear_value_head_dim * t.linear_num_value_heads)],
    [`${a}.full_attention_interval`, u32(t.full_attention_interval)],
    [`${a}.vocab_size`, u32(t.vocab_size)],
  ];
}
