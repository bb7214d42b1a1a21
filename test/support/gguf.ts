// Test tooling: converts a tiny Hugging Face checkpoint (tiny-hf.ts) to GGUF v3 the way
// llama.cpp's convert_hf_to_gguf.py does, so llama.cpp can serve as an independent oracle.
// Written from the GGUF spec and ggml's block layouts; tensors are streamed one at a time.
import { closeSync, openSync, writeSync } from 'node:fs';
import { f16BitsToF32, f16Round, f32ToF16Bits, listModelTensors, readStoredTensor } from '../../src/engine/model/synthetic/safetensors-writer';
import { headDimOf, type TinyModel } from './tiny-hf';

export type GgufWeightType = 'F32' | 'F16' | 'Q4_0';

export interface GgufTensorSummary {
  name: string;
  type: GgufWeightType;
  /** GGML order: ne[0] (the contiguous row length) first. */
  dims: number[];
}

const ALIGNMENT = 32;
const QK4_0 = 32;
const Q4_0_BLOCK_BYTES = 2 + QK4_0 / 2;

const GGML_TYPE: Record<GgufWeightType, number> = { F32: 0, F16: 1, Q4_0: 2 };
// llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q4_0.
const FILE_TYPE: Record<GgufWeightType, number> = { F32: 0, F16: 1, Q4_0: 2 };

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
      if (v.itemType === Kv.STRING) for (const s of v.value as string[]) out.str(s);
      else for (const n of v.value as number[]) out.i32(n);
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
  return family === 'llama' ? 'llama-bpe' : family === 'mistral' ? 'gpt-2' : 'qwen2';
}

function chooseType(shape: number[], want: GgufWeightType): GgufWeightType {
  if (shape.length < 2 || want === 'F32') return 'F32';
  if (want === 'Q4_0' && shape[shape.length - 1]! % QK4_0 !== 0) return 'F32';
  return want;
}

function byteSize(type: GgufWeightType, n: number): number {
  return type === 'F32' ? n * 4 : type === 'F16' ? n * 2 : (n / QK4_0) * Q4_0_BLOCK_BYTES;
}

function encode(type: GgufWeightType, x: Float32Array): Uint8Array {
  if (type === 'F32') return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (type === 'Q4_0') return quantizeQ4_0(x);
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
  const add = (gguf: string, hf: string, transform?: (x: Float32Array, shape: number[]) => Float32Array) => {
    const shape = shapeOf(hf);
    const base = load(hf);
    out.push({ name: gguf, shape, type: chooseType(shape, want), load: transform ? () => transform(base(), shape) : base });
  };
  const hd = headDimOf(spec);
  const permute = spec.family === 'llama' || spec.family === 'mistral';
  const permuted = (heads: number) => (x: Float32Array, shape: number[]) => permuteRopeRows(x, shape[0]!, shape[1]!, heads);
  add('token_embd.weight', 'model.embed_tokens.weight');
  if (spec.family === 'llama' && model.config.rope_scaling?.rope_type === 'llama3') {
    const factors = llama3RopeFactors(model.config, hd);
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
    if (spec.family === 'qwen3') {
      add(g + 'attn_q_norm.weight', hf + 'self_attn.q_norm.weight');
      add(g + 'attn_k_norm.weight', hf + 'self_attn.k_norm.weight');
    }
    add(g + 'attn_output.weight', hf + 'self_attn.o_proj.weight');
    add(g + 'ffn_norm.weight', hf + 'post_attention_layernorm.weight');
    add(g + 'ffn_gate.weight', hf + 'mlp.gate_proj.weight');
    add(g + 'ffn_up.weight', hf + 'mlp.up_proj.weight');
    add(g + 'ffn_down.weight', hf + 'mlp.down_proj.weight');
  }
  add('output_norm.weight', 'model.norm.weight');
  if (!model.config.tie_word_embeddings) add('output.weight', 'lm_head.weight');
  return out;
}

function metadata(model: TinyModel, want: GgufWeightType): [string, KvValue][] {
  const spec = model.spec;
  const c = model.config;
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
  if (want === 'Q4_0') kv.push(['general.quantization_version', u32(2)]);
  kv.push(
    [`${arch}.block_count`, u32(spec.numLayers)],
    [`${arch}.context_length`, u32(c.max_position_embeddings)],
    [`${arch}.embedding_length`, u32(spec.hiddenSize)],
    [`${arch}.feed_forward_length`, u32(spec.intermediateSize)],
    [`${arch}.attention.head_count`, u32(spec.numHeads)],
    [`${arch}.attention.head_count_kv`, u32(spec.numKvHeads)],
    [`${arch}.rope.freq_base`, f32(c.rope_theta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(c.rms_norm_eps)],
    [`${arch}.rope.dimension_count`, u32(hd)],
  );
  // As convert_hf_to_gguf.py: whenever config.json states head_dim.
  if (c.head_dim !== undefined || hd !== spec.hiddenSize / spec.numHeads) {
    kv.push([`${arch}.attention.key_length`, u32(hd)], [`${arch}.attention.value_length`, u32(hd)]);
  }
  kv.push([`${arch}.vocab_size`, u32(spec.vocabSize)]);

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
  const bos = model.bosId ?? model.config.bos_token_id;
  kv.push(['tokenizer.ggml.bos_token_id', u32(bos)]);
  const configEos = Array.isArray(c.eos_token_id) ? c.eos_token_id : [c.eos_token_id];
  // llama.cpp's converter takes the tokenizer's eos_token (the turn end for chat models).
  const eosName: string = model.tokenizerConfig.eos_token;
  kv.push(['tokenizer.ggml.eos_token_id', u32(model.specialTokens[eosName] ?? configEos[0])]);
  const pad = model.tokenizerConfig.pad_token;
  if (typeof pad === 'string' && model.specialTokens[pad] !== undefined) kv.push(['tokenizer.ggml.padding_token_id', u32(model.specialTokens[pad]!)]);
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
  const tensors = planTensors(model, opts.type);
  const header = new Bytes();
  header.u32(0x46554747); // "GGUF"
  header.u32(3);
  const kv = metadata(model, opts.type);
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
    const data = kind === 'Q4_0' ? dequantizeQ4_0(quantizeQ4_0(t.data)) : kind === 'F16' ? f16Round(t.data) : t.data;
    tensors.set(name, { shape: t.shape, data });
  }
  return { ...model, tensors };
}
