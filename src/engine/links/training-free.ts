// Training-free links (LatentMAS, arXiv 2511.20639): a ridge fit between embedding tables, computed
// with ONNX Runtime for the large products, solved by Cholesky, cached on disk.
//   inner:  M = (Wout^T Wout + lambda I)^-1 Wout^T Win        (hidden state -> own input space)
//   outer:  M = (WinA^T WinA + lambda I)^-1 WinA^T WinB      (A's input space -> B's input space)
// The outer fit starts from the sender's input rows because the hand-off applies it after the
// sender's inner link, whose output already lives in the sender's input-embedding space.
import * as ort from 'onnxruntime-node';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../api';
import { defaultCacheDirectory } from '../paths';
import { EMBED, LM_HEAD } from '../model/checkpoint';
import { openCheckpoint } from '../model/hf';
import { DataType, GraphBuilder } from '../onnx/graph';

export const RIDGE_LAMBDA = 1e-5;

export interface TrainingFreeMap {
  /** [dIn, dOut] row-major, or null for the identity. */
  map: Float32Array | null;
  dIn: number;
  dOut: number;
  /** Mean L2 norm of the receiving model's input-embedding rows. */
  targetNorm: number;
}

interface Tables {
  win: Float32Array;
  wout: Float32Array | null;
  vocab: number;
  width: number;
}

async function readTables(path: string): Promise<Tables> {
  const ckpt = await openCheckpoint(path);
  try {
    const { vocabSize: vocab, hiddenSize: width, tieWordEmbeddings } = ckpt.config;
    const win = await ckpt.weights.read(EMBED);
    const wout = tieWordEmbeddings ? null : await ckpt.weights.read(LM_HEAD);
    return { win, wout, vocab, width };
  } finally {
    await ckpt.close();
  }
}

function meanRowNorm(w: Float32Array, rows: number, width: number): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < width; c++) s += w[r * width + c]! ** 2;
    total += Math.sqrt(s);
  }
  return total / rows;
}

/** A^T B for A [V, dA], B [V, dB] through one ORT Gemm (transA), in float32. */
async function crossProduct(a: Float32Array, b: Float32Array, rows: number, dA: number, dB: number): Promise<Float64Array> {
  const g = new GraphBuilder();
  const ia = g.input('a', DataType.FLOAT, [rows, dA]);
  const ib = g.input('b', DataType.FLOAT, [rows, dB]);
  g.bindOutput(g.op('Gemm', [ia, ib], { transA: 1 }), 'c', DataType.FLOAT, [dA, dB]);
  const session = await ort.InferenceSession.create(g.finish('cross-product'), { logSeverityLevel: 3 });
  try {
    const out = await session.run({ a: new ort.Tensor('float32', a, [rows, dA]), b: new ort.Tensor('float32', b, [rows, dB]) });
    return Float64Array.from(out.c!.data as Float32Array);
  } finally {
    await session.release();
  }
}

/** Solves (G + lambda I) X = B for X [d, k] by Cholesky; G [d, d] symmetric positive semi-definite. */
export function ridgeSolve(gram: Float64Array, rhs: Float64Array, d: number, k: number, lambda = RIDGE_LAMBDA): Float32Array {
  const L = Float64Array.from(gram);
  for (let i = 0; i < d; i++) L[i * d + i]! += lambda;
  for (let j = 0; j < d; j++) {
    let diag = L[j * d + j]!;
    for (let p = 0; p < j; p++) diag -= L[j * d + p]! ** 2;
    if (!(diag > 0)) throw new UserError('The embedding table is degenerate: the ridge system is not positive definite.', 'model-invalid');
    const ljj = Math.sqrt(diag);
    L[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let s = L[i * d + j]!;
      for (let p = 0; p < j; p++) s -= L[i * d + p]! * L[j * d + p]!;
      L[i * d + j] = s / ljj;
    }
  }
  const X = Float64Array.from(rhs);
  for (let c = 0; c < k; c++) {
    for (let i = 0; i < d; i++) {
      let s = X[i * k + c]!;
      for (let p = 0; p < i; p++) s -= L[i * d + p]! * X[p * k + c]!;
      X[i * k + c] = s / L[i * d + i]!;
    }
    for (let i = d - 1; i >= 0; i--) {
      let s = X[i * k + c]!;
      for (let p = i + 1; p < d; p++) s -= L[p * d + i]! * X[p * k + c]!;
      X[i * k + c] = s / L[i * d + i]!;
    }
  }
  return Float32Array.from(X);
}

async function cached(key: string, cacheDirectory: string | undefined, compute: () => Promise<TrainingFreeMap>): Promise<TrainingFreeMap> {
  const dir = join(cacheDirectory ?? defaultCacheDirectory(), 'links');
  const file = join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 24)}.json`);
  const hit = await readFile(file, 'utf8').catch(() => undefined);
  if (hit) {
    const o = JSON.parse(hit) as { dIn: number; dOut: number; targetNorm: number; map: string | null };
    // Small Buffers share a pooled ArrayBuffer: copy exactly this one's bytes.
    const bytes = o.map ? Buffer.from(o.map, 'base64') : null;
    return { ...o, map: bytes ? new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) : null };
  }
  const fresh = await compute();
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const map = fresh.map ? Buffer.from(fresh.map.buffer, fresh.map.byteOffset, fresh.map.byteLength).toString('base64') : null;
  await writeFile(tmp, JSON.stringify({ dIn: fresh.dIn, dOut: fresh.dOut, targetNorm: fresh.targetNorm, map }));
  await rename(tmp, file);
  return fresh;
}

/** Hidden state -> the same model's input-embedding space. */
export async function fitInnerTrainingFree(modelPath: string, contentKey: string, cacheDirectory?: string): Promise<TrainingFreeMap> {
  return cached(`inner|${contentKey}|${RIDGE_LAMBDA}`, cacheDirectory, async () => {
    const t = await readTables(modelPath);
    const targetNorm = meanRowNorm(t.win, t.vocab, t.width);
    // With tied embeddings the fit is (W^T W + lambda I)^-1 W^T W, the identity up to lambda.
    if (!t.wout) return { map: null, dIn: t.width, dOut: t.width, targetNorm };
    const gram = await crossProduct(t.wout, t.wout, t.vocab, t.width, t.width);
    const rhs = await crossProduct(t.wout, t.win, t.vocab, t.width, t.width);
    return { map: ridgeSolve(gram, rhs, t.width, t.width), dIn: t.width, dOut: t.width, targetNorm };
  });
}

/** Sender's input-embedding space -> receiver's, for two models that share a vocabulary. */
export async function fitOuterTrainingFree(fromPath: string, fromKey: string, toPath: string, toKey: string, cacheDirectory?: string): Promise<TrainingFreeMap> {
  return cached(`outer|${fromKey}|${toKey}|${RIDGE_LAMBDA}`, cacheDirectory, async () => {
    const a = await readTables(fromPath);
    const b = fromKey === toKey ? a : await readTables(toPath);
    if (a.vocab !== b.vocab) {
      throw new UserError(
        `A training-free outer link needs two models that share a vocabulary; ${fromPath} has ${a.vocab} tokens and ${toPath} has ${b.vocab}. Use trained links for this pair.`,
        'link-mismatch',
      );
    }
    const targetNorm = meanRowNorm(b.win, b.vocab, b.width);
    if (fromKey === toKey) return { map: null, dIn: a.width, dOut: a.width, targetNorm };
    const gram = await crossProduct(a.win, a.win, a.vocab, a.width, a.width);
    const rhs = await crossProduct(a.win, b.win, a.vocab, a.width, b.width);
    return { map: ridgeSolve(gram, rhs, a.width, b.width), dIn: a.width, dOut: b.width, targetNorm };
  });
}
