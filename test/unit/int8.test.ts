// int8 weights with per-row int8 activations (MatMulInteger): the quantization, and the graph the
// engine builds, checked against the same integer arithmetic done here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder } from '../../src/engine/onnx/graph';
import { dequantizeInt8, int8MatMul, INT8_WEIGHT_LEVELS, quantizeActivationsInt8, quantizeInt8Rows, type Int8Weights } from '../../src/engine/model/quantize';

function quantize(w: Float32Array, out: number, inner: number): Int8Weights {
  const q = { values: new Int8Array(inner * out), scales: new Float32Array(out) };
  // Two calls, as grouped linears fill one weight from several tensors.
  quantizeInt8Rows(w.subarray(0, 3 * inner), 3, inner, out, q, 0);
  quantizeInt8Rows(w.subarray(3 * inner), out - 3, inner, out, q, 3);
  return q;
}

/** What the graph should compute: each row rounded to 127 levels around 0, integer sums, both scales. */
function reference(x: Float32Array, rows: number, q: Int8Weights, inner: number, out: number): Float32Array {
  const y = new Float32Array(rows * out);
  for (let m = 0; m < rows; m++) {
    let largest = 0;
    for (let k = 0; k < inner; k++) largest = Math.max(largest, Math.abs(x[m * inner + k]!));
    const scale = Math.fround(Math.max(Math.fround(largest / 127), 1e-30));
    const a = Array.from({ length: inner }, (_, k) => {
      const v = Math.fround(x[m * inner + k]! / scale);
      // QuantizeLinear rounds halves to even.
      const r = Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v);
      return Math.max(-128, Math.min(127, r));
    });
    for (let n = 0; n < out; n++) {
      let sum = 0;
      for (let k = 0; k < inner; k++) sum += a[k]! * q.values[k * out + n]!;
      y[m * out + n] = sum * scale * q.scales[n]!;
    }
  }
  return y;
}

async function runLinear(x: Float32Array, rows: number, q: Int8Weights, inner: number, out: number): Promise<ort.Tensor> {
  const g = new GraphBuilder();
  const input = g.input('x', DataType.FLOAT, [1, rows, inner]);
  g.bindOutput(int8MatMul(g, quantizeActivationsInt8(g, input), q, inner, out, 'w'), 'y', DataType.FLOAT, [1, rows, out]);
  const session = await ort.InferenceSession.create(g.finish('int8-check'));
  try {
    return (await session.run({ x: new ort.Tensor('float32', x, [1, rows, inner]) })).y!;
  } finally {
    await session.release();
  }
}

test('int8 weights: one scale per output channel, values within 7 bits, error at most half a step', () => {
  const [N, K] = [9, 70];
  const w = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 5)));
  const q = quantize(w, N, K);
  assert.ok(q.values.every((v) => Math.abs(v) <= INT8_WEIGHT_LEVELS));
  const back = dequantizeInt8(q, N, K);
  for (let n = 0; n < N; n++) {
    let largest = 0;
    for (let k = 0; k < K; k++) largest = Math.max(largest, Math.abs(w[n * K + k]!));
    assert.ok(Math.abs(q.scales[n]! - largest / INT8_WEIGHT_LEVELS) < 1e-7);
    for (let k = 0; k < K; k++) assert.ok(Math.abs(back[n * K + k]! - w[n * K + k]!) <= q.scales[n]! / 2 + 1e-6);
  }
  // A channel of zeros stays zeros.
  const zeros = quantize(new Float32Array(N * K), N, K);
  assert.ok(dequantizeInt8(zeros, N, K).every((v) => v === 0));
});

test('the int8 graph computes the integer products of the per-row activations and the weights', async () => {
  const [rows, K, N] = [4, 96, 40];
  const w = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 1.7) * 0.3);
  // Rows of very different sizes, one of zeros: each keeps its own scale.
  const x = Float32Array.from({ length: rows * K }, (_, i) => Math.cos(i) * [1, 1000, 0.001, 0][Math.floor(i / K)]!);
  const q = quantize(w, N, K);
  const got = (await runLinear(x, rows, q, K, N)).data as Float32Array;
  const want = reference(x, rows, q, K, N);
  for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)), `${i}: ${got[i]} vs ${want[i]}`);
  for (let n = 0; n < N; n++) assert.equal(got[3 * N + n], 0);
});

test('no int16 saturation: full-scale activations times full-scale weights over a long row', async () => {
  // Each pair of uint8 x int8 products reaches 255 * 63 * 2 = 32130, just under int16's limit
  // (x86 without VNNI adds pairs in int16); full-range int8 weights would overflow here.
  const [K, N] = [512, 8];
  const w = new Float32Array(N * K).fill(1);
  for (let k = 0; k < K; k++) w[K + k] = -1;
  const x = new Float32Array(K).fill(2);
  const q = quantize(w, N, K);
  const got = (await runLinear(x, 1, q, K, N)).data as Float32Array;
  assert.ok(Math.abs(got[0]! - 2 * K) < 1e-3 * K, `${got[0]}`);
  assert.ok(Math.abs(got[1]! + 2 * K) < 1e-3 * K, `${got[1]}`);
});

test('no rows in, no rows out (a latent step keeps no logits)', async () => {
  const [K, N] = [64, 24];
  const q = quantize(Float32Array.from({ length: N * K }, (_, i) => Math.sin(i)), N, K);
  assert.deepEqual((await runLinear(new Float32Array(0), 0, q, K, N)).dims, [1, 0, N]);
});
