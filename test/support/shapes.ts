// Real models' shapes, for benchmarks and tests that need a model of that size (random weights).
import type { CheckpointSpec } from '../../src/engine/model/synthetic/hf-checkpoint';

/** Qwen2.5-0.5B's shape, for benchmarks (about 494M parameters; ~2 GB in F32). */
export const QWEN05B_SHAPE: CheckpointSpec = {
  family: 'qwen2',
  hiddenSize: 896,
  intermediateSize: 4864,
  numLayers: 24,
  numHeads: 14,
  numKvHeads: 2,
  vocabSize: 151936,
  tieWordEmbeddings: true,
  ropeTheta: 1_000_000,
  rmsNormEps: 1e-6,
  maxPositionEmbeddings: 32768,
};

/** Qwen3.5-0.8B's shape (text part), for benchmarks: about 0.75B decoder parameters, ~3 GB in F32. */
export const QWEN35_08B_SHAPE: CheckpointSpec = {
  family: 'qwen3_5',
  hiddenSize: 1024,
  intermediateSize: 3584,
  numLayers: 24,
  numHeads: 8,
  numKvHeads: 2,
  headDim: 256,
  vocabSize: 248320,
  tieWordEmbeddings: true,
  ropeTheta: 10_000_000,
  rmsNormEps: 1e-6,
  maxPositionEmbeddings: 262144,
  qwen3_5: { linearKeyHeads: 16, linearValueHeads: 16, linearKeyHeadDim: 128, linearValueHeadDim: 128, convKernel: 4, fullAttentionInterval: 4 },
};
