// The decoder description every family is reduced to, and how Hugging Face config.json maps onto it.
import { UserError } from '../api';

export type FamilyName = 'llama' | 'qwen2' | 'qwen3' | 'mistral' | 'llama2c';

export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | { type: 'linear'; factor: number };

export interface DecoderConfig {
  family: FamilyName;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  /** llama2.c rotates interleaved pairs (2i, 2i+1); Hugging Face Llama/Qwen rotate halves. */
  ropeInterleaved: boolean;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  /** Multiplier applied in the embedding lookup (Gemma uses sqrt(hidden)). */
  embeddingScale: number;
  bosTokenId?: number;
  eosTokenIds: number[];
}

/** Reads typed fields from a config.json, naming the file and key in every error. */
export class ConfigReader {
  constructor(
    private readonly json: Record<string, unknown>,
    private readonly source: string,
  ) {}

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  int(key: string, fallback?: number): number {
    const v = this.json[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new UserError(`${this.source} is missing the key "${key}", which the model needs. The file may be incomplete: download it again.`, 'model-invalid');
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new UserError(`${this.source}: "${key}" must be a positive integer, found ${JSON.stringify(v)}.`, 'model-invalid');
    }
    return v;
  }

  num(key: string, fallback?: number): number {
    const v = this.json[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new UserError(`${this.source} is missing the key "${key}".`, 'model-invalid');
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new UserError(`${this.source}: "${key}" must be a number, found ${JSON.stringify(v)}.`, 'model-invalid');
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.json[key];
    return typeof v === 'boolean' ? v : fallback;
  }

  ids(key: string): number[] {
    const v = this.json[key];
    if (typeof v === 'number') return [v];
    if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
    return [];
  }

  raw(key: string): unknown {
    return this.json[key];
  }
}

/** The fields shared by every Llama-like Hugging Face config. */
export function parseLlamaLikeConfig(family: FamilyName, r: ConfigReader, source: string): DecoderConfig {
  const hiddenSize = r.int('hidden_size');
  const numHeads = r.int('num_attention_heads');
  const numKvHeads = r.int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new UserError(`${source}: num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads}).`, 'model-invalid');
  }
  const headDim = r.int('head_dim', Math.floor(hiddenSize / numHeads));
  return {
    family,
    hiddenSize,
    intermediateSize: r.int('intermediate_size'),
    numLayers: r.int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: r.int('vocab_size'),
    rmsNormEps: r.num('rms_norm_eps', 1e-6),
    ropeTheta: r.num('rope_theta', 10000),
    ropeScaling: parseRopeScaling(r.raw('rope_scaling'), source),
    ropeInterleaved: false,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    maxPositionEmbeddings: r.int('max_position_embeddings', 4096),
    embeddingScale: 1,
    bosTokenId: r.has('bos_token_id') ? r.ids('bos_token_id')[0] : undefined,
    eosTokenIds: r.ids('eos_token_id'),
  };
}

function parseRopeScaling(raw: unknown, source: string): RopeScaling | undefined {
  if (raw === undefined || raw === null) return undefined;
  const o = raw as Record<string, unknown>;
  const type = (o.rope_type ?? o.type) as string | undefined;
  if (type === 'default' || type === undefined) return undefined;
  const num = (k: string, d?: number): number => {
    const v = o[k];
    if (typeof v === 'number') return v;
    if (d !== undefined) return d;
    throw new UserError(`${source}: rope_scaling of type ${type} needs "${k}".`, 'model-invalid');
  };
  if (type === 'llama3') {
    return {
      type,
      factor: num('factor'),
      lowFreqFactor: num('low_freq_factor', 1),
      highFreqFactor: num('high_freq_factor', 4),
      originalMaxPositionEmbeddings: num('original_max_position_embeddings', 8192),
    };
  }
  if (type === 'linear') return { type, factor: num('factor') };
  throw new UserError(`${source}: rope_scaling type "${type}" is not supported (supported: llama3, linear).`, 'unsupported');
}

/** Inverse RoPE frequencies, with Llama 3's frequency-dependent scaling when configured. */
export function inverseFrequencies(config: DecoderConfig): Float32Array {
  const half = config.headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    let f = 1 / Math.pow(config.ropeTheta, (2 * i) / config.headDim);
    const s = config.ropeScaling;
    if (s?.type === 'linear') f /= s.factor;
    if (s?.type === 'llama3') {
      const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
      const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) f /= s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        f = (1 - smooth) * (f / s.factor) + smooth * f;
      }
    }
    out[i] = f;
  }
  return out;
}
