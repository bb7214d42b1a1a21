// Memory estimates from a configuration alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { estimateMemory, formatBytes } from '../../src/engine/model/memory';
import type { DecoderConfig } from '../../src/engine/model/config';

const qwen05b: DecoderConfig = {
  family: 'qwen2', hiddenSize: 896, intermediateSize: 4864, numLayers: 24, numHeads: 14, numKvHeads: 2, headDim: 64,
  vocabSize: 151936, rmsNormEps: 1e-6, ropeTheta: 1e6, ropeInterleaved: false, tieWordEmbeddings: true,
  maxPositionEmbeddings: 32768, embeddingScale: 1, eosTokenIds: [],
};

test("Qwen2.5-0.5B's parameter count comes out exactly (494,032,768)", () => {
  assert.equal(estimateMemory(qwen05b, 'fp32', 0).parameters, 494_032_768);
});

test('precision and context change the estimate as they should', () => {
  const fp32 = estimateMemory(qwen05b, 'fp32', 4096);
  const int4 = estimateMemory(qwen05b, 'int4', 4096);
  // 24 layers x (K and V) x 2 heads x 64 x 4096 positions x 4 bytes
  assert.equal(fp32.kvCacheBytes, 24 * 2 * 128 * 4096 * 4);
  assert.ok(int4.weightsBytes < fp32.weightsBytes / 5);
  assert.equal(fp32.totalBytes, fp32.weightsBytes + fp32.embeddingBytes + fp32.kvCacheBytes);
  assert.ok(fp32.totalBytes > 2.5e9 && fp32.totalBytes < 3.2e9, formatBytes(fp32.totalBytes));
  assert.equal(formatBytes(3 * 1024 ** 3), '3.00 GiB');
});
