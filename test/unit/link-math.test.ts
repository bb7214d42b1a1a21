// RecursiveLink graphs against the formulas computed independently here in float64:
// LayerNorm (eps 1e-5, affine), exact erf GELU, the residuals, PyTorch's y = x W^T + b.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecursiveLink, type NamedTensor } from '../../src/engine/links/link';
import { ridgeSolve } from '../../src/engine/links/training-free';
import { UserError } from '../../src/engine/api';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

function tensor(shape: number[], r: () => number, scale = 1, offset = 0): NamedTensor {
  return { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => offset + scale * r()) };
}

// erf by its Taylor series (|x| < 3) and continued fraction beyond: ~1e-12, independent of ORT.
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let sum = 0;
    let term = ax;
    for (let n = 0; n < 80; n++) {
      sum += term / (2 * n + 1);
      term *= (-ax * ax) / (n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (ax + f);
  return Math.sign(x) * (1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f));
}

const gelu = (v: number[]) => v.map((x) => 0.5 * x * (1 + erf(x / Math.SQRT2)));
const add = (a: number[], b: number[]) => a.map((x, i) => x + b[i]!);
function layerNorm(v: number[], w: NamedTensor, b: NamedTensor): number[] {
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const variance = v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length;
  return v.map((x, i) => ((x - mean) / Math.sqrt(variance + 1e-5)) * w.data[i]! + b.data[i]!);
}
function linear(v: number[], w: NamedTensor, b: NamedTensor): number[] {
  const [out, inner] = w.shape as [number, number];
  return Array.from({ length: out }, (_, o) => {
    let s = b.data[o]!;
    for (let i = 0; i < inner; i++) s += w.data[o * inner + i]! * v[i]!;
    return s;
  });
}

function close(actual: Float32Array, expected: number[], tol: number): void {
  assert.equal(actual.length, expected.length);
  let worst = 0;
  expected.forEach((e, i) => (worst = Math.max(worst, Math.abs(actual[i]! - e))));
  assert.ok(worst < tol, `max abs error ${worst} >= ${tol}`);
}

test('inner link = post_ln(x + proj2(gelu(proj1(pre_ln(x))))) on several vectors at once', async () => {
  const d = 24;
  const r = rng(1);
  const t = new Map<string, NamedTensor>([
    ['pre_ln.weight', tensor([d], r, 0.5, 1)], ['pre_ln.bias', tensor([d], r, 0.2)],
    ['proj1.weight', tensor([d, d], r, 0.6)], ['proj1.bias', tensor([d], r, 0.2)],
    ['proj2.weight', tensor([d, d], r, 0.6)], ['proj2.bias', tensor([d], r, 0.2)],
    ['post_ln.weight', tensor([d], r, 0.5, 1)], ['post_ln.bias', tensor([d], r, 0.2)],
  ]);
  const link = await RecursiveLink.fromTensors('inner', t, { source: 'test', dIn: d, dOut: d, from: 'a', to: 'a' }, 'cpu');
  const n = 5;
  const x = tensor([n, d], r, 4).data;
  const got = await link.apply(x, n);
  const expected: number[] = [];
  for (let k = 0; k < n; k++) {
    const v = Array.from(x.subarray(k * d, (k + 1) * d));
    const h = linear(gelu(linear(layerNorm(v, t.get('pre_ln.weight')!, t.get('pre_ln.bias')!), t.get('proj1.weight')!, t.get('proj1.bias')!)), t.get('proj2.weight')!, t.get('proj2.bias')!);
    expected.push(...layerNorm(add(v, h), t.get('post_ln.weight')!, t.get('post_ln.bias')!));
  }
  close(got, expected, 1e-4);
  await link.dispose();
});

test('outer link = ln_target(proj2(gelu(proj1(ln_source(x)))) + residual_proj(x)) across widths', async () => {
  const [dIn, dOut] = [20, 12];
  const r = rng(2);
  const t = new Map<string, NamedTensor>([
    ['ln_source.weight', tensor([dIn], r, 0.5, 1)], ['ln_source.bias', tensor([dIn], r, 0.2)],
    ['proj1.weight', tensor([2 * dOut, dIn], r, 0.6)], ['proj1.bias', tensor([2 * dOut], r, 0.2)],
    ['proj2.weight', tensor([dOut, 2 * dOut], r, 0.6)], ['proj2.bias', tensor([dOut], r, 0.2)],
    ['residual_proj.weight', tensor([dOut, dIn], r, 0.6)], ['residual_proj.bias', tensor([dOut], r, 0.2)],
    ['ln_target.weight', tensor([dOut], r, 0.5, 1)], ['ln_target.bias', tensor([dOut], r, 0.2)],
  ]);
  const link = await RecursiveLink.fromTensors('outer', t, { source: 'test', dIn, dOut, from: 'a', to: 'b' }, 'cpu');
  const n = 3;
  const x = tensor([n, dIn], r, 3).data;
  const got = await link.apply(x, n);
  const expected: number[] = [];
  for (let k = 0; k < n; k++) {
    const v = Array.from(x.subarray(k * dIn, (k + 1) * dIn));
    const h = linear(gelu(linear(layerNorm(v, t.get('ln_source.weight')!, t.get('ln_source.bias')!), t.get('proj1.weight')!, t.get('proj1.bias')!)), t.get('proj2.weight')!, t.get('proj2.bias')!);
    expected.push(...layerNorm(add(h, linear(v, t.get('residual_proj.weight')!, t.get('residual_proj.bias')!)), t.get('ln_target.weight')!, t.get('ln_target.bias')!));
  }
  close(got, expected, 1e-4);
  await link.dispose();
});

test('a link whose dimensions do not match the models is refused, naming the tensor and widths', async () => {
  const r = rng(3);
  const t = new Map<string, NamedTensor>([
    ['ln_source.weight', tensor([16], r)], ['ln_source.bias', tensor([16], r)],
    ['proj1.weight', tensor([24, 16], r)], ['proj1.bias', tensor([24], r)],
    ['proj2.weight', tensor([12, 24], r)], ['proj2.bias', tensor([12], r)],
    ['residual_proj.weight', tensor([12, 16], r)], ['residual_proj.bias', tensor([12], r)],
    ['ln_target.weight', tensor([12], r)], ['ln_target.bias', tensor([12], r)],
  ]);
  await assert.rejects(
    RecursiveLink.fromTensors('outer', t, { source: 'outer_12.pt', dIn: 2048, dOut: 12, from: 'Qwen3-1.7B', to: 'Llama-3.2-1B' }, 'cpu'),
    (e: unknown) => e instanceof UserError && e.code === 'link-mismatch' && /outer_12\.pt/.test(e.message) && /ln_source\.weight/.test(e.message) && /2048/.test(e.message),
  );
  t.delete('proj2.bias');
  await assert.rejects(
    RecursiveLink.fromTensors('outer', t, { source: 'x.pt', dIn: 16, dOut: 12, from: 'a', to: 'b' }, 'cpu'),
    /lacks proj2\.bias/,
  );
});

test('training-free link rescales every vector to the target norm', async () => {
  const d = 8;
  const map = new Float32Array(d * 4).map((_, i) => ((i * 7) % 5) - 2);
  const link = await RecursiveLink.trainingFree(map, d, 4, 3.5, 'cpu');
  const x = Float32Array.from({ length: 2 * d }, (_, i) => Math.sin(i + 1));
  const y = await link.apply(x, 2);
  for (let k = 0; k < 2; k++) {
    const row = Array.from({ length: 4 }, (_, j) => Array.from({ length: d }, (_, i) => x[k * d + i]! * map[i * 4 + j]!).reduce((a, b) => a + b, 0));
    const norm = Math.hypot(...row);
    close(y.subarray(k * 4, (k + 1) * 4), row.map((v) => (v / norm) * 3.5), 1e-5);
  }
  await link.dispose();
});

test('ridge solve satisfies (G + lambda I) X = B', () => {
  const d = 6;
  const k = 3;
  const r = rng(4);
  const a = Array.from({ length: 20 * d }, () => r());
  const gram = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) for (let v = 0; v < 20; v++) gram[i * d + j]! += a[v * d + i]! * a[v * d + j]!;
  const rhs = Float64Array.from({ length: d * k }, () => r());
  const x = ridgeSolve(gram, rhs, d, k, 0.1);
  for (let i = 0; i < d; i++) {
    for (let c = 0; c < k; c++) {
      let s = 0.1 * x[i * k + c]!;
      for (let p = 0; p < d; p++) s += gram[i * d + p]! * x[p * k + c]!;
      assert.ok(Math.abs(s - rhs[i * k + c]!) < 1e-5);
    }
  }
});

test('training-free inner fit solves the ridge normal equations over the real embedding tables', async () => {
  const { writeTinyHfModel } = await import('../support/tiny-hf');
  const { fitInnerTrainingFree, RIDGE_LAMBDA } = await import('../../src/engine/links/training-free');
  const { tempDir } = await import('../support/paths');
  const tiny = await writeTinyHfModel(tempDir() + '/m', { family: 'llama', hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, vocabSize: 300, seed: 3, tieWordEmbeddings: false });
  const cache = tempDir();
  const fit = await fitInnerTrainingFree(tiny.dir, 'test-key', cache);
  const win = tiny.tensors.get('model.embed_tokens.weight')!.data;
  const wout = tiny.tensors.get('lm_head.weight')!.data;
  const [V, d] = [300, 16];
  assert.ok(fit.map);
  // (Wout^T Wout + lambda I) M = Wout^T Win, checked in float64 here.
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let lhs = RIDGE_LAMBDA * fit.map[i * d + j]!;
      for (let p = 0; p < d; p++) {
        let g = 0;
        for (let v = 0; v < V; v++) g += wout[v * d + i]! * wout[v * d + p]!;
        lhs += g * fit.map[p * d + j]!;
      }
      let rhs = 0;
      for (let v = 0; v < V; v++) rhs += wout[v * d + i]! * win[v * d + j]!;
      worst = Math.max(worst, Math.abs(lhs - rhs));
      scale = Math.max(scale, Math.abs(rhs));
    }
  }
  assert.ok(worst < 1e-3 * scale, `residual ${worst} vs scale ${scale}`);
  let norms = 0;
  for (let v = 0; v < V; v++) norms += Math.hypot(...win.subarray(v * d, (v + 1) * d));
  assert.ok(Math.abs(fit.targetNorm - norms / V) < 1e-3 * fit.targetNorm);
  // The second call is served from the disk cache, bit for bit.
  const { readdirSync } = await import('node:fs');
  assert.equal(readdirSync(cache + '/links').length, 1);
  const again = await fitInnerTrainingFree(tiny.dir, 'test-key', cache);
  assert.deepEqual(again.map, fit.map);
  assert.equal(again.targetNorm, fit.targetNorm);
});
