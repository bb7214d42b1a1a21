// How much memory a model needs once loaded, computed from its configuration alone, so a team
// that cannot fit is refused before anything is read.
import type { Precision } from '../api';
import type { DecoderConfig } from './config';

export interface MemoryEstimate {
  parameters: number;
  /** Weights inside the ONNX session (fp16 weights are widened to float32 on the CPU provider). */
  weightsBytes: number;
  /** The token-embedding table kept by the engine for lookups, in its stored precision. */
  embeddingBytes: number;
  /** Keys and values for `contextTokens` positions, float32. */
  kvCacheBytes: number;
  totalBytes: number;
}

const BYTES_PER_WEIGHT: Record<Precision, number> = {
  fp32: 4,
  // ORT folds Cast(float16 initializer) into a float32 constant at session creation.
  fp16: 4,
  // Four bits plus one float32 scale per block of 32.
  int4: 0.5 + 4 / 32,
};

/** Fixed cost of an ONNX Runtime session and its arenas, measured roughly on small graphs. */
const SESSION_OVERHEAD_BYTES = 64 * 1024 * 1024;

export function estimateMemory(c: DecoderConfig, precision: Precision, contextTokens: number, storedBytesPerValue = 4): MemoryEstimate {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const biases = c.family === 'qwen2' ? q + 2 * kv : 0;
  const qkNorms = c.family === 'qwen3' ? 2 * c.headDim : 0;
  const perLayer = c.hiddenSize * q + 2 * c.hiddenSize * kv + q * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize + 2 * c.hiddenSize + biases + qkNorms;
  const embed = c.vocabSize * c.hiddenSize;
  // The classifier is a separate matrix inside the graph even when tied (it is the table transposed).
  const linear = c.numLayers * perLayer + embed;
  const parameters = c.numLayers * perLayer + embed * (c.tieWordEmbeddings ? 1 : 2) + c.hiddenSize;
  const weightsBytes = Math.ceil(linear * BYTES_PER_WEIGHT[precision]) + SESSION_OVERHEAD_BYTES;
  const embeddingBytes = embed * storedBytesPerValue;
  const kvCacheBytes = 2 * c.numLayers * kv * contextTokens * 4;
  return { parameters, weightsBytes, embeddingBytes, kvCacheBytes, totalBytes: weightsBytes + embeddingBytes + kvCacheBytes };
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
