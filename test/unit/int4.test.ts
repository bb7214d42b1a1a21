// int4 weight-only quantization: the packing MatMulNBits reads, checked against dequantized math.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder } from '../../src/engine/onnx/graph';
import { dequantizeInt4, INT4_BLOCK, quantizeInt4 } from '../../src/engine/model/quantize';

test('quantization error is at most one step of its block (half a step unless clamped at +7)', () => {
  const [N, K] = [8, 70]; // 70 is not a multiple of the block: the last block is padded
  const w = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 5)));
  const q = quantizeInt4(w, N, K);
  assert.equal(q.blocksPerRow, 3);
  const back = dequantizeInt4(q, N, K);
  for (let r = 0; r < N; r++) {
    for (let k = 0; k < K; k++) {
      const scale = Math.abs(q.scales[r * q.blocksPerRow + Math.floor(k / INT4_BLOCK)]!);
      const error = Math.abs(back[r * K + k]! - w[r * K + k]!);
      const clamped = w[r * K + k]! / q.scales[r * q.blocksPerRow + Math.floor(k / INT4_BLOCK)]! > 7.5;
      assert.ok(error <= (clamped ? scale : scale / 2) + 1e-6, `error ${error} scale ${scale}`);
    }
  }
});

test('MatMulNBits on our packing computes x times the dequantized weights', async () => {
  const [N, K] = [48, 96];
  const w = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 1.7) * 0.3);
  const q = quantizeInt4(w, N, K);
  const dq = dequantizeInt4(q, N, K);
  const g = new GraphBuilder();
  g.useOpset('com.microsoft', 1);
  const x = g.input('x', DataType.FLOAT, [1, K]);
  const b = g.initializer('b', DataType.UINT8, [N, q.blocksPerRow, INT4_BLOCK / 2], q.packed);
  const s = g.initializer('s', DataType.FLOAT, [N * q.blocksPerRow], q.scales);
  g.bindOutput(g.op('MatMulNBits', [x, b, s], { K, N, bits: 4, block_size: INT4_BLOCK, accuracy_level: 0 }, { domain: 'com.microsoft' }), 'y', DataType.FLOAT, [1, N]);
  const session = await ort.InferenceSession.create(g.finish('int4-check'));
  const xv = Float32Array.from({ length: K }, (_, i) => Math.cos(i));
  const y = (await session.run({ x: new ort.Tensor('float32', xv, [1, K]) })).y!.data as Float32Array;
  for (let n = 0; n < N; n++) {
    let expected = 0;
    for (let k = 0; k < K; k++) expected += xv[k]! * dq[n * K + k]!;
    assert.ok(Math.abs(expected - y[n]!) < 1e-5, `column ${n}: ${y[n]} vs ${expected}`);
  }
  await session.release();
});
