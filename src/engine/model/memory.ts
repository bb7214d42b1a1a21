// How much memory a model needs once loaded, computed from its configuration alone, so a team
// that cannot fit is refused before anything is read. Parameters are counted per layer part, so a
// family with other layers (extra norms, other attention) adds its terms in `layerParameters`.
import type { Device, Precision } from '../api';
import { DTYPE_BYTES } from '../dtype';
import { computesInFp16 } from './build';
import { quantizesWeights } from './quantize';
import { convChannels, type DecoderConfig, type LinearAttentionConfig } from './config';

export interface MemoryEstimate {
  parameters: number;
  /** Weights inside the ONNX session, at the precision they run in on `device`. */
  weightsBytes: number;
  /**
   * The token-embedding table the engine keeps in memory for lookups: as stored, or for int4 and int8 models
   * only the rows' scales (the int8 rows are read from a file beside the graph, a row per token).
   */
  embeddingBytes: number;
  /** Keys and values for `contextTokens` positions (on the CPU, the buffers' spare room too) plus any fixed linear-attention state. */
  kvCacheBytes: number;
  totalBytes: number;
}

export interface MemoryOptions {
  /** Where the graph runs (default cpu): fp16 weights cost 2 bytes on a GPU, 4 on the CPU. */
  device?: Device;
  /** Bytes per value of an in-memory embedding table; default config.json's dtype (float32 when unstated). */
  embeddingBytesPerValue?: number;
}

/** Bytes one linear weight takes inside the session. */
export function bytesPerWeight(precision: Precision, device: Device = 'cpu'): number {
  switch (precision) {
    case 'fp32':
      return 4;
    // The CPU provider has no fp16 MatMul: ORT folds Cast(float16 initializer) into a float32
    // constant at session creation, so fp16 saves disk, not memory, there.
    case 'fp16':
      return device === 'cpu' ? 4 : 2;
    // Four bits plus one scale per block of 32: float32 on the CPU, float16 where the graph computes in fp16.
    case 'int4':
      return 0.5 + (computesInFp16(precision, device) ? 2 : 4) / 32;
    // One byte; the per-channel scales are a rounding error.
    case 'int8':
      return 1;
  }
}

/**
 * What a quantized session holds on the CPU per byte of its weights: MatMulNBits (int4) and
 * MatMulInteger (int8) repack their weights when the session starts, and part of the external data
 * stays mapped. Measured for int4 on the Sequential-Light team at its real shapes (2.81 GB of int4
 * graphs): 3.29 GB of sessions, 4.90 GB peak in a solve; int8 is assumed to be the same.
 */
const QUANTIZED_CPU_SESSION_FACTOR = 1.2;

/** Fixed cost of an ONNX Runtime session and its arenas, measured roughly on small graphs. */
const SESSION_OVERHEAD_BYTES = 64 * 1024 * 1024;

/** Matrix weights (run at the model's precision) and vectors (norms, biases: always float32) of layer `l`. */
export function layerParameters(c: DecoderConfig, l = 0): { matrices: number; vectors: number } {
  if (c.linearAttention) return hybridLayerParameters(c, c.linearAttention, l);
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const attention = c.hiddenSize * q + 2 * c.hiddenSize * kv + q * c.hiddenSize;
  const mlp = 3 * c.hiddenSize * c.intermediateSize;
  const norms = 2 * c.hiddenSize;
  const biases = c.family === 'qwen2' ? q + 2 * kv : 0;
  const qkNorms = c.family === 'qwen3' ? 2 * c.headDim : 0;
  return { matrices: attention + mlp, vectors: norms + biases + qkNorms };
}

/** Qwen3.5: a Gated DeltaNet layer (conv kernel, A_log, dt_bias, gated norm stay float32) or a gated full-attention layer. */
function hybridLayerParameters(c: DecoderConfig, la: LinearAttentionConfig, l: number): { matrices: number; vectors: number } {
  const H = c.hiddenSize;
  const mlp = 3 * H * c.intermediateSize;
  if (la.isLinear[l]) {
    const valueDim = la.numValueHeads * la.valueHeadDim;
    const matrices = H * convChannels(la) + H * valueDim + 2 * H * la.numValueHeads + valueDim * H + mlp;
    return { matrices, vectors: convChannels(la) * la.convKernel + 2 * la.numValueHeads + la.valueHeadDim + 2 * H };
  }
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  return { matrices: H * 2 * q + 2 * H * kv + q * H + mlp, vectors: 2 * H + 2 * c.headDim };
}

/** Bytes of the fixed-size state of every linear-attention layer (conv + recurrent, float32). */
export function linearStateBytes(c: DecoderConfig): number {
  const la = c.linearAttention;
  if (!la) return 0;
  const perLayer = convChannels(la) * (la.convKernel - 1) + la.numValueHeads * la.keyHeadDim * la.valueHeadDim;
  return la.isLinear.filter((x) => x).length * perLayer * 4;
}

function storedBytes(c: DecoderConfig): number {
  return DTYPE_BYTES[c.storedDType ?? 'f32'];
}

/**
 * Positions the CPU's key/value buffers are made with to hold `needed`: a quarter more, in whole
 * 64-position steps (growing copies them; unfilled slots cost attention work).
 */
export function kvBufferCapacity(needed: number): number {
  return Math.ceil((needed * 1.25) / 64) * 64;
}

/** Bytes of the decoder state over `positions`: keys and values of full-attention layers, plus any fixed linear-attention state. */
export function stateBytes(c: DecoderConfig, precision: Precision, positions: number, device: Device = 'cpu'): number {
  // Only full-attention layers grow with the context; linear-attention layers hold a fixed state.
  const attentionLayers = c.linearAttention ? c.linearAttention.isLinear.filter((x) => !x).length : c.numLayers;
  const kvElementBytes = computesInFp16(precision, device) ? 2 : 4;
  return 2 * attentionLayers * c.numKvHeads * c.headDim * positions * kvElementBytes + linearStateBytes(c);
}

export function estimateMemory(c: DecoderConfig, precision: Precision, contextTokens: number, options: MemoryOptions = {}): MemoryEstimate {
  const layer = { matrices: 0, vectors: 0 };
  for (let l = 0; l < c.numLayers; l++) {
    const p = layerParameters(c, l);
    layer.matrices += p.matrices;
    layer.vectors += p.vectors;
  }
  const embed = c.vocabSize * c.hiddenSize;
  const parameters = layer.matrices + layer.vectors + embed * (c.tieWordEmbeddings ? 1 : 2) + c.hiddenSize;
  // The classifier is a matrix inside the graph at the model's precision even when tied (the table transposed).
  const matrices = layer.matrices + embed;
  const vectors = layer.vectors + c.hiddenSize;
  const packing = quantizesWeights(precision) && (options.device ?? 'cpu') === 'cpu' ? QUANTIZED_CPU_SESSION_FACTOR : 1;
  const weightsBytes = Math.ceil(matrices * bytesPerWeight(precision, options.device) * packing + vectors * 4) + SESSION_OVERHEAD_BYTES;
  const embeddingBytes = quantizesWeights(precision) ? c.vocabSize * 4 : embed * (options.embeddingBytesPerValue ?? storedBytes(c));
  // On the CPU the keys and values sit in buffers with room to grow; a GPU state holds what is filled.
  const positions = (options.device ?? 'cpu') === 'cpu' ? kvBufferCapacity(contextTokens) : contextTokens;
  const kvCacheBytes = stateBytes(c, precision, positions, options.device);
  return { parameters, weightsBytes, embeddingBytes, kvCacheBytes, totalBytes: weightsBytes + embeddingBytes + kvCacheBytes };
}

/**
 * Float32 weights of one RecursiveLink (links/link.ts): an inner link is LayerNorm, two d x d
 * layers and LayerNorm; an outer link projects dIn through a 2*dOut hidden layer to dOut beside a
 * residual projection, with a LayerNorm at each end.
 */
export function linkBytes(kind: 'inner' | 'outer', dIn: number, dOut: number): number {
  const values = kind === 'inner' ? 2 * dIn * dIn + 6 * dIn : 3 * dIn * dOut + 2 * dOut * dOut + 2 * dIn + 6 * dOut;
  return values * 4;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
