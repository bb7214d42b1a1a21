// Which CPU matrix-product kernel a decode step (one row of activations) should use: onnxruntime's
// int4 MatMulNBits at several block sizes and accuracy levels, the int8 precision's MatMulInteger
// (per output channel) and fp32 MatMul, each over the MLP weights of a whole model shape (LAYERS
// pairs of up and down projections, too big for the caches). Runs alternate between the kernels;
// medians, weight bytes read per second, and the ratio to what the engine builds today (int4,
// block 32, int8 activations).
//   npx tsx bench/matmul-kernels.ts   (SHAPE=qwen3.5|qwen2.5 THREADS=<cores> RUNS=40)
import { availableParallelism, cpus } from 'node:os';
import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder } from '../src/engine/onnx/graph';
import { INT8_WEIGHT_LEVELS, int8MatMul, quantizeActivationsInt8 } from '../src/engine/model/quantize';

const SHAPES: Record<string, { hidden: number; intermediate: number; layers: number }> = {
  'qwen3.5': { hidden: 1024, intermediate: 3584, layers: 24 },
  'qwen2.5': { hidden: 896, intermediate: 4864, layers: 24 },
};
const SHAPE = process.env.SHAPE ?? 'qwen3.5';
const THREADS = Number(process.env.THREADS ?? availableParallelism());
const RUNS = Number(process.env.RUNS ?? 40);

type Kernel = { name: string; bytesPerWeight: number; linear: (g: GraphBuilder, inner: number, out: number, id: string) => (x: string) => string };

/** Deterministic filler bytes (the speed of these kernels does not depend on the values). */
function filler(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (Math.imul(i, 2654435761) >>> 24) & 0xff;
  return b;
}

function nbits(block: number, accuracy: number): Kernel {
  return {
    name: `int4 MatMulNBits block ${block}, accuracy ${accuracy}`,
    bytesPerWeight: 0.5 + 4 / block,
    linear: (g, inner, out, id) => {
      const blocks = Math.ceil(inner / block);
      const packed = g.initializer(`${id}.q4`, DataType.UINT8, [out, blocks, block / 2], filler(out * blocks * (block / 2)));
      const scales = g.initializer(`${id}.scales`, DataType.FLOAT, [out * blocks], new Float32Array(out * blocks).fill(0.01));
      return (x) => g.op('MatMulNBits', [x, packed, scales], { K: inner, N: out, bits: 4, block_size: block, accuracy_level: accuracy }, { domain: 'com.microsoft' });
    },
  };
}

/** The engine's int8 precision: 7-bit weights per output channel, activations per row, MatMulInteger. */
const int8: Kernel = {
  name: 'int8 MatMulInteger (the int8 precision)',
  bytesPerWeight: 1,
  linear: (g, inner, out, id) => {
    const values = Int8Array.from(filler(inner * out), (b) => (b % (2 * INT8_WEIGHT_LEVELS + 1)) - INT8_WEIGHT_LEVELS);
    const w = { values, scales: new Float32Array(out).fill(0.01) };
    return (x) => int8MatMul(g, quantizeActivationsInt8(g, x), w, inner, out, id);
  },
};

const fp32: Kernel = {
  name: 'fp32 MatMul',
  bytesPerWeight: 4,
  linear: (g, inner, out, id) => {
    const w = g.initializer(`${id}.w`, DataType.FLOAT, [inner, out], new Float32Array(inner * out).fill(0.001));
    return (x) => g.op('MatMul', [x, w]);
  },
};

function chain(kernel: Kernel, hidden: number, intermediate: number, layers: number): Uint8Array {
  const g = new GraphBuilder();
  g.useOpset('com.microsoft', 1);
  let x = g.input('x', DataType.FLOAT, [1, hidden]);
  for (let l = 0; l < layers; l++) {
    const up = kernel.linear(g, hidden, intermediate, `l${l}.up`);
    const down = kernel.linear(g, intermediate, hidden, `l${l}.down`);
    x = down(up(x));
  }
  g.bindOutput(x, 'y', DataType.FLOAT, [1, hidden]);
  return g.finish('matmul-kernels');
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;

async function main(): Promise<void> {
  const shape = SHAPES[SHAPE];
  if (!shape) throw new Error(`SHAPE must be one of ${Object.keys(SHAPES).join(', ')}`);
  const { hidden, intermediate, layers } = shape;
  const kernels = [nbits(32, 4), nbits(64, 4), nbits(128, 4), nbits(32, 0), int8, fp32];
  console.log(`${SHAPE} MLP weights (${layers} x ${hidden}x${intermediate} up and down), one row, ${THREADS} threads, ${RUNS} alternating runs; ${cpus()[0]?.model ?? 'unknown CPU'}`);
  const sessions: ort.InferenceSession[] = [];
  for (const k of kernels) sessions.push(await ort.InferenceSession.create(chain(k, hidden, intermediate, layers), { intraOpNumThreads: THREADS, graphOptimizationLevel: 'all' }));
  const x = new ort.Tensor('float32', Float32Array.from({ length: hidden }, (_, i) => Math.sin(i)), [1, hidden]);
  const times: number[][] = kernels.map(() => []);
  for (const s of sessions) await s.run({ x }); // warm-up: first runs pack weights and grow arenas
  for (let r = 0; r < RUNS; r++) {
    for (const [i, s] of sessions.entries()) {
      const t = performance.now();
      await s.run({ x });
      times[i]!.push(performance.now() - t);
    }
  }
  const weights = 2 * layers * hidden * intermediate;
  const base = median(times[0]!);
  for (const [i, k] of kernels.entries()) {
    const ms = median(times[i]!);
    const gbps = (weights * k.bytesPerWeight) / (ms / 1000) / 1e9;
    console.log(`  ${k.name.padEnd(42)} ${ms.toFixed(2).padStart(7)} ms  ${gbps.toFixed(1).padStart(5)} GB/s of weights  ${(base / ms).toFixed(2)}x today's int4`);
  }
  for (const s of sessions) await s.release();
}

main().catch((e: Error) => {
  console.error(`matmul-kernels: ${e.message}`);
  process.exit(1);
});
