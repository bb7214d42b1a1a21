// The decoder description every family is reduced to, and how Hugging Face config.json maps onto it.
import { UserError } from '../api';
import { TORCH_FLOAT_DTYPES, type FloatDType } from '../dtype';

/** The Hugging Face families the engine builds: the one list (builders, presets, generated checkpoints). */
export const HF_FAMILY_NAMES = ['llama', 'qwen2', 'qwen3', 'mistral', 'gemma3', 'qwen3_5'] as const;
export type HfFamilyName = (typeof HF_FAMILY_NAMES)[number];
export type FamilyName = HfFamilyName | 'llama2c';

export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | { type: 'linear'; factor: number };

/** A rotary embedding: its base and optional scaling (one per layer type where a family has several). */
export interface RopeSpec {
  theta: number;
  scaling?: RopeScaling;
}

/** Gemma 3's interleaving of sliding-window and full-attention layers. */
export interface SlidingAttention {
  /** A query sees keys at most `window - 1` positions back. */
  window: number;
  /** Per layer: true for a sliding-window layer. */
  sliding: boolean[];
  /** The rotary embedding of the sliding layers (full layers use ropeTheta / ropeScaling). */
  rope: RopeSpec;
}

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
  /** Query scale before q.k; default 1/sqrt(headDim) (Gemma 3: query_pre_attn_scalar^-0.5). */
  attentionScale?: number;
  slidingAttention?: SlidingAttention;
  /** logits = cap * tanh(logits / cap) when set. */
  finalLogitSoftcapping?: number;
  bosTokenId?: number;
  eosTokenIds: number[];
  /** The weights' dtype as config.json states it (`dtype` in transformers 5, `torch_dtype` before). */
  storedDType?: FloatDType;
  /** Hybrid decoders (Qwen3.5): which layers are Gated DeltaNet layers, and their shapes. */
  linearAttention?: LinearAttentionConfig;
  /** Rotated dimensions per head when RoPE is partial (Qwen3.5: head_dim * partial_rotary_factor). */
  rotaryDim?: number;
}

/** Gated DeltaNet layers keep a conv state [B, convDim, convKernel-1] and a recurrent state [B, Hv, dk, dv]. */
export interface LinearAttentionConfig {
  /** Per layer: true for a linear-attention layer, false for full attention (with a KV cache). */
  isLinear: boolean[];
  numKeyHeads: number;
  numValueHeads: number;
  keyHeadDim: number;
  valueHeadDim: number;
  convKernel: number;
}

/** Conv channels of a linear-attention layer: q, k and v side by side. */
export function convChannels(la: LinearAttentionConfig): number {
  return 2 * la.numKeyHeads * la.keyHeadDim + la.numValueHeads * la.valueHeadDim;
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

  /** A reader where keys this config lacks take `defaults` (a config class's own defaults, as transformers applies them). */
  withDefaults(defaults: Record<string, unknown>): ConfigReader {
    const json = { ...this.json };
    for (const [k, v] of Object.entries(defaults)) if (json[k] === undefined || json[k] === null) json[k] = v;
    return new ConfigReader(json, this.source);
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
  const rope = readRope(r, source);
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
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    ropeInterleaved: false,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    maxPositionEmbeddings: r.int('max_position_embeddings', 4096),
    embeddingScale: 1,
    bosTokenId: r.has('bos_token_id') ? r.ids('bos_token_id')[0] : undefined,
    eosTokenIds: r.ids('eos_token_id'),
    storedDType: readStoredDType(r),
  };
}

/** `dtype` (transformers 5) or `torch_dtype` (transformers 4), when it names a float type we read. */
export function readStoredDType(r: ConfigReader): DecoderConfig['storedDType'] {
  const v = r.raw('dtype') ?? r.raw('torch_dtype');
  return typeof v === 'string' && Object.hasOwn(TORCH_FLOAT_DTYPES, v) ? TORCH_FLOAT_DTYPES[v as keyof typeof TORCH_FLOAT_DTYPES] : undefined;
}

export type RopeLayerType = 'full_attention' | 'sliding_attention';

/** The rope object under `key`, if any; anything but an object is refused. */
function ropeObject(value: unknown, key: string, source: string): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new UserError(`${source}: "${key}" must be an object, found ${JSON.stringify(value)}.`, 'model-invalid');
  }
  return value as Record<string, unknown>;
}

/**
 * The rotary embedding of one layer type, from either config.json layout:
 * - transformers 5: `rope_parameters` = {rope_type, rope_theta, factor, ...}, or one such object per
 *   layer type as Gemma 3 writes it ({full_attention: {...}, sliding_attention: {...}});
 * - transformers 4: top-level `rope_theta` + `rope_scaling` (Gemma 3's sliding layers: the
 *   unscaled `rope_local_base_freq`).
 * A config without a base is refused: a default base would run with wrong positions and no error.
 */
export function readRope(r: ConfigReader, source: string, layerType: RopeLayerType = 'full_attention'): RopeSpec {
  const params = ropeObject(r.raw('rope_parameters'), 'rope_parameters', source);
  const legacyScaling = ropeObject(r.raw('rope_scaling'), 'rope_scaling', source);
  const perType = params !== undefined && ('full_attention' in params || 'sliding_attention' in params);
  let own: Record<string, unknown> | undefined;
  let ownKey = 'rope_parameters';
  if (perType) {
    ownKey = `rope_parameters.${layerType}`;
    own = ropeObject(params[layerType], ownKey, source);
  } else if (layerType === 'full_attention') {
    own = params;
  }
  const legacyThetaKey = layerType === 'sliding_attention' ? 'rope_local_base_freq' : 'rope_theta';
  let theta: number | undefined;
  if (own?.rope_theta !== undefined && own.rope_theta !== null) {
    theta = own.rope_theta as number;
    if (typeof theta !== 'number' || !(theta > 0)) throw new UserError(`${source}: "${ownKey}.rope_theta" must be a positive number, found ${JSON.stringify(own.rope_theta)}.`, 'model-invalid');
  } else if (r.has(legacyThetaKey)) {
    theta = r.num(legacyThetaKey);
    if (!(theta > 0)) throw new UserError(`${source}: "${legacyThetaKey}" must be a positive number, found ${theta}.`, 'model-invalid');
  }
  if (theta === undefined) {
    const what = layerType === 'sliding_attention' ? 'its sliding-window layers' : 'the model';
    throw new UserError(
      `${source} has no RoPE base for ${what}: neither "${ownKey}.rope_theta" nor "${legacyThetaKey}" is set. The file may be incomplete: download it again.`,
      'model-invalid',
    );
  }
  // The scaling sits next to the base in rope_parameters; transformers 4 kept it in rope_scaling,
  // which applied to the full-attention layers only.
  const ownHasType = own !== undefined && (own.rope_type !== undefined || own.type !== undefined);
  if (ownHasType) return { theta, scaling: parseRopeScaling(own, ownKey, source) };
  return { theta, scaling: layerType === 'full_attention' ? parseRopeScaling(legacyScaling, 'rope_scaling', source) : undefined };
}

function parseRopeScaling(o: Record<string, unknown> | undefined, key: string, source: string): RopeScaling | undefined {
  if (o === undefined) return undefined;
  const type = (o.rope_type ?? o.type) as string | undefined;
  if (type === 'default' || type === undefined) return undefined;
  const num = (k: string, d?: number): number => {
    const v = o[k];
    if (typeof v === 'number') return v;
    if (d !== undefined) return d;
    throw new UserError(`${source}: "${key}" of type ${type} needs "${k}".`, 'model-invalid');
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
  throw new UserError(`${source}: "${key}" has rope type "${type}", which is not supported (supported: default, llama3, linear).`, 'unsupported');
}

/**
 * A multimodal wrapper's decoder config (Gemma 3, Qwen3.5: the text model under `text_config`),
 * with the wrapper's own keys (eos_token_id, tie_word_embeddings, ...) kept where the text part
 * does not set them; a flat config as it is.
 */
export function unwrapTextConfig(json: Record<string, unknown>): { json: Record<string, unknown>; nested: boolean } {
  const text = json.text_config;
  if (!text || typeof text !== 'object' || Array.isArray(text)) return { json, nested: false };
  const { text_config: _text, vision_config: _vision, audio_config: _audio, ...outer } = json;
  return { json: { ...outer, ...(text as Record<string, unknown>) }, nested: true };
}

/** Inverse RoPE frequencies of `rope` (default: the config's full-attention rope), with Llama 3's frequency-dependent scaling when configured. */
export function inverseFrequencies(config: DecoderConfig, rope: RopeSpec = { theta: config.ropeTheta, scaling: config.ropeScaling }): Float32Array {
  const dim = config.rotaryDim ?? config.headDim;
  const half = dim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    let f = 1 / Math.pow(rope.theta, (2 * i) / dim);
    const s = rope.scaling;
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
