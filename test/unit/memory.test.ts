// Memory estimates from a configuration alone, and the int8 embedding table int4 models keep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { EmbeddingTable } from '../../src/engine/model/embedding';
import { openCheckpoint } from '../../src/engine/model/hf';
import { bytesPerWeight, estimateMemory, formatBytes, kvBufferCapacity } from '../../src/engine/model/memory';
import { writeTinyHfModel } from '../support/tiny-hf';
import { tempDir } from '../support/paths';
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
  // 24 layers x (K and V) x 2 heads x 64 x positions x 4 bytes; on the CPU the buffers hold a
  // quarter more (5120 positions for 4096), on a GPU what is filled.
  assert.equal(fp32.kvCacheBytes, 24 * 2 * 128 * 5120 * 4);
  assert.equal(estimateMemory(qwen05b, 'fp32', 4096, { device: 'webgpu' }).kvCacheBytes, 24 * 2 * 128 * 4096 * 4);
  assert.deepEqual([1, 64, 100, 4096].map(kvBufferCapacity), [64, 128, 128, 5120]);
  // Under a quarter, with what int4 sessions add on the CPU (repacked blocks) counted in.
  assert.ok(int4.weightsBytes < fp32.weightsBytes / 4);
  // int8: a byte a weight plus the same repacking, between int4 and a third of fp32.
  const int8 = estimateMemory(qwen05b, 'int8', 4096);
  assert.ok(int8.weightsBytes > 1.5 * int4.weightsBytes && int8.weightsBytes < fp32.weightsBytes / 3, formatBytes(int8.weightsBytes));
  assert.equal(int8.embeddingBytes, int4.embeddingBytes);
  assert.equal(fp32.totalBytes, fp32.weightsBytes + fp32.embeddingBytes + fp32.kvCacheBytes);
  assert.ok(fp32.totalBytes > 2.5e9 && fp32.totalBytes < 3.2e9, formatBytes(fp32.totalBytes));
  assert.equal(formatBytes(3 * 1024 ** 3), '3.00 GiB');
});

test('fp16 weights cost 2 bytes on a GPU provider and 4 on the CPU (widened at session creation)', () => {
  const cpu = estimateMemory(qwen05b, 'fp16', 0, { device: 'cpu' });
  const gpu = estimateMemory(qwen05b, 'fp16', 0, { device: 'webgpu' });
  const fp32 = estimateMemory(qwen05b, 'fp32', 0);
  assert.equal(cpu.weightsBytes, fp32.weightsBytes);
  assert.ok(gpu.weightsBytes < 0.55 * fp32.weightsBytes, formatBytes(gpu.weightsBytes));
  assert.equal(bytesPerWeight('fp16', 'cuda'), 2);
  assert.equal(bytesPerWeight('int4', 'cpu'), 0.625);
  assert.equal(bytesPerWeight('int8', 'cpu'), 1);
});

test('the embedding table is counted in its stored dtype, from config.json (only scales for int4 models)', () => {
  const bf16 = estimateMemory({ ...qwen05b, storedDType: 'bf16' }, 'fp32', 0);
  const f32 = estimateMemory({ ...qwen05b, storedDType: 'f32' }, 'fp16', 0);
  assert.equal(bf16.embeddingBytes, 151936 * 896 * 2);
  assert.equal(f32.embeddingBytes, 151936 * 896 * 4);
  // int4 models read int8 rows from a file and keep a float32 scale per row in memory.
  assert.equal(estimateMemory({ ...qwen05b, storedDType: 'bf16' }, 'int4', 0).embeddingBytes, 151936 * 4);
});

test('an int8 embedding table looks rows up within half a quantization step of the stored values', async () => {
  const dir = tempDir('rmas-embed-');
  await writeTinyHfModel(dir, { family: 'qwen2', hiddenSize: 64, intermediateSize: 128, numLayers: 1, numHeads: 4, numKvHeads: 2, vocabSize: 400, dtype: 'BF16', seed: 9 });
  const checkpoint = await openCheckpoint(dir);
  try {
    const stored = await EmbeddingTable.load(checkpoint);
    const int8 = await EmbeddingTable.load(checkpoint, { int8: true });
    assert.equal(int8.bytes, 400 * 64 + 400 * 4);
    assert.equal(stored.bytes, 400 * 64 * 2);
    for (const id of [0, 17, 399]) {
      const a = stored.row(id);
      const b = int8.row(id);
      const step = Math.max(...a.map(Math.abs)) / 127;
      for (let j = 0; j < 64; j++) assert.ok(Math.abs(a[j]! - b[j]!) <= step / 2 + 1e-7, `row ${id}[${j}]`);
    }
  } finally {
    await checkpoint.close();
  }
});

test('a file-backed int8 table reads the same rows as the in-memory one, writes its file once, and rewrites a cut one', async () => {
  const dir = tempDir('rmas-embed-file-');
  await writeTinyHfModel(dir, { family: 'qwen2', hiddenSize: 64, intermediateSize: 128, numLayers: 1, numHeads: 4, numKvHeads: 2, vocabSize: 400, dtype: 'BF16', seed: 11 });
  const file = join(dir, 'embedding.int8');
  const checkpoint = await openCheckpoint(dir);
  try {
    const inMemory = await EmbeddingTable.load(checkpoint, { int8: true });
    const fromFile = await EmbeddingTable.load(checkpoint, { int8: true, int8File: file });
    assert.equal(statSync(file).size, 400 * 4 + 400 * 64);
    assert.equal(fromFile.bytes, 400 * 4, 'only the scales stay in memory');
    const ids = [0, 5, 399, 5];
    assert.deepEqual(fromFile.lookup(ids), inMemory.lookup(ids));
    fromFile.close();
    const written = statSync(file).mtimeMs;
    const again = await EmbeddingTable.load(checkpoint, { int8: true, int8File: file });
    assert.equal(statSync(file).mtimeMs, written, 'a whole file is reused');
    assert.deepEqual(again.lookup(ids), inMemory.lookup(ids));
    again.close();
    truncateSync(file, 1000);
    const rewritten = await EmbeddingTable.load(checkpoint, { int8: true, int8File: file });
    assert.equal(statSync(file).size, 400 * 4 + 400 * 64);
    assert.deepEqual(rewritten.lookup(ids), inMemory.lookup(ids));
    rewritten.close();
  } finally {
    await checkpoint.close();
  }
});
