// The installed onnxruntime's com.microsoft LinearAttention (gated_delta) and CausalConvWithState,
// each as a one-node graph, against the gated delta rule and causal conv written out in float64
// the way transformers' Qwen3.5 reference computes them: the Qwen3.5 graph relies on exactly these
// semantics (state layouts, the value-head grouping, where the scale and decay apply).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder } from '../../src/engine/onnx/graph';

const wave = (n: number, a: number, b = 0) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * a + b) * 0.7);

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** transformers' torch_recurrent_gated_delta_rule (q, k already L2-normalised), one batch. */
function gatedDeltaReference(
  q: Float32Array, k: Float32Array, v: Float32Array, g: Float32Array, beta: Float32Array, state: Float32Array,
  T: number, hk: number, hv: number, dk: number, dv: number,
): { out: Float64Array; state: Float64Array } {
  const S = Float64Array.from(state);
  const out = new Float64Array(T * hv * dv);
  const scale = 1 / Math.sqrt(dk);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < hv; h++) {
      const kh = Math.floor(h / (hv / hk)); // each key head serves consecutive value heads
      const s = h * dk * dv;
      const decay = Math.exp(g[t * hv + h]!);
      for (let i = 0; i < dk * dv; i++) S[s + i]! *= decay;
      const kt = (i: number) => k[(t * hk + kh) * dk + i]!;
      const delta = new Float64Array(dv);
      for (let j = 0; j < dv; j++) {
        let mem = 0;
        for (let i = 0; i < dk; i++) mem += S[s + i * dv + j]! * kt(i);
        delta[j] = (v[(t * hv + h) * dv + j]! - mem) * beta[t * hv + h]!;
      }
      for (let i = 0; i < dk; i++) for (let j = 0; j < dv; j++) S[s + i * dv + j]! += kt(i) * delta[j]!;
      for (let j = 0; j < dv; j++) {
        let o = 0;
        for (let i = 0; i < dk; i++) o += S[s + i * dv + j]! * q[(t * hk + kh) * dk + i]! * scale;
        out[(t * hv + h) * dv + j] = o;
      }
    }
  }
  return { out, state: S };
}

function l2rows(x: Float32Array, d: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[r * d + i]! ** 2;
    for (let i = 0; i < d; i++) out[r * d + i] = x[r * d + i]! / Math.sqrt(ss + 1e-6);
  }
  return out;
}

test('LinearAttention gated_delta matches the gated delta rule, fewer key heads than value heads, with a past state', async () => {
  const [T, hk, hv, dk, dv] = [5, 2, 4, 8, 6];
  const g = new GraphBuilder();
  g.useOpset('com.microsoft', 1);
  const names = ['q', 'k', 'v', 'past', 'decay', 'beta'];
  const dims: number[][] = [[1, T, hk * dk], [1, T, hk * dk], [1, T, hv * dv], [1, hv, dk, dv], [1, T, hv], [1, T, hv]];
  names.forEach((n, i) => g.input(n, DataType.FLOAT, dims[i]!));
  const [out, present] = g.opN('LinearAttention', names, 2, { q_num_heads: hk, kv_num_heads: hv, update_rule: 'gated_delta', scale: { float: 1 / Math.sqrt(dk) } }, 'com.microsoft');
  g.bindOutput(out!, 'out', DataType.FLOAT, [1, T, hv * dv]);
  g.bindOutput(present!, 'present', DataType.FLOAT, [1, hv, dk, dv]);
  const session = await ort.InferenceSession.create(g.finish('linear-attention-check'));
  const q = l2rows(wave(T * hk * dk, 0.37), dk);
  const k = l2rows(wave(T * hk * dk, 0.91, 1), dk);
  const v = wave(T * hv * dv, 0.53, 2);
  const past = wave(hv * dk * dv, 0.11, 3);
  const decay = Float32Array.from(wave(T * hv, 0.7), (x) => -Math.abs(x) - 0.05);
  const beta = Float32Array.from(wave(T * hv, 1.3), (x) => 1 / (1 + Math.exp(-x)));
  const feeds = Object.fromEntries([q, k, v, past, decay, beta].map((data, i) => [names[i]!, new ort.Tensor('float32', data, dims[i])]));
  const result = await session.run(feeds);
  const ref = gatedDeltaReference(q, k, v, decay, beta, past, T, hk, hv, dk, dv);
  assert.ok(maxDiff(result.out!.data as Float32Array, ref.out) < 1e-5, `output differs by ${maxDiff(result.out!.data as Float32Array, ref.out)}`);
  assert.ok(maxDiff(result.present!.data as Float32Array, ref.state) < 1e-5, 'state differs');
  await session.release();
});

test('CausalConvWithState: depthwise causal conv + SiLU over [past | input], state = last K-1 inputs', async () => {
  const [C, L, K] = [6, 4, 4];
  const g = new GraphBuilder();
  g.useOpset('com.microsoft', 1);
  const x = g.input('x', DataType.FLOAT, [1, C, 'L']);
  const past = g.input('past', DataType.FLOAT, [1, C, K - 1]);
  const w = g.initializer('w', DataType.FLOAT, [C, 1, K], wave(C * K, 0.77, 1));
  const [y, present] = g.opN('CausalConvWithState', [x, w, '', past], 2, { activation: 'silu' }, 'com.microsoft');
  g.bindOutput(y!, 'y', DataType.FLOAT, [1, C, 'L']);
  g.bindOutput(present!, 'present', DataType.FLOAT, [1, C, K - 1]);
  const session = await ort.InferenceSession.create(g.finish('causal-conv-check'));
  const weights = wave(C * K, 0.77, 1);
  for (const len of [L, 1]) {
    const xv = wave(C * len, 0.29, len);
    const pv = wave(C * (K - 1), 0.41, 2);
    const result = await session.run({ x: new ort.Tensor('float32', xv, [1, C, len]), past: new ort.Tensor('float32', pv, [1, C, K - 1]) });
    const expected = new Float64Array(C * len);
    const expectedState = new Float64Array(C * (K - 1));
    for (let c = 0; c < C; c++) {
      const window = [...pv.subarray(c * (K - 1), (c + 1) * (K - 1)), ...xv.subarray(c * len, (c + 1) * len)];
      for (let l = 0; l < len; l++) {
        let s = 0;
        for (let j = 0; j < K; j++) s += weights[c * K + j]! * window[l + j]!;
        expected[c * len + l] = s / (1 + Math.exp(-s));
      }
      for (let j = 0; j < K - 1; j++) expectedState[c * (K - 1) + j] = window[window.length - (K - 1) + j]!;
    }
    assert.ok(maxDiff(result.y!.data as Float32Array, expected) < 1e-5, `length ${len}: output differs`);
    assert.ok(maxDiff(result.present!.data as Float32Array, expectedState) < 1e-6, `length ${len}: state differs`);
  }
  await session.release();
});
