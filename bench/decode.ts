// Decode benchmark: our engine against llama.cpp (node-llama-cpp) on the same weights, a
// Qwen2.5-0.5B-shaped model and a Qwen3.5-0.8B-shaped one (hybrid linear attention) with random
// weights, fp32 (vs F32 GGUF), int8 (vs Q8_0) and int4 (vs Q4_0), at context 128 and 1024. Both run with the same
// thread count, alternating, llama.cpp in a child process (see llamaSpeed); figures are medians
// over REPEATS runs.
// The same run measures this machine's streaming-read bandwidth (ORT ReduceSum and vector x matrix
// over 1 GiB at the same thread count) and prints each decode speed as a share of the bound that sets (graph weight
// bytes + state bytes read per token / bandwidth): machines here differ several-fold in bandwidth
// from day to day, so only same-run shares compare. Each step is split into session.run (of which:
// returning the state outputs to JavaScript, measured by the same run without fetching them) and
// JavaScript. Last line: one JSON object with the ratios.
// On a GPU (scripts/device-bench.sh): DEVICE=webgpu|cuda runs our graphs there, PRECISIONS=fp16,int4
// (fp16 against an F16 GGUF), RECURSIVEMAS_LLAMA_GPU=cuda|vulkan runs llama.cpp on the GPU too, and
// =none leaves it out (where node-llama-cpp cannot be carried); the bandwidth bound is then the
// CPU's and means nothing for GPU rows.
//   npm run bench:decode   (REPEATS=3 THREADS=<cores> NEW_TOKENS=32 MODELS=qwen2.5,qwen3.5
//                           PRECISIONS=fp32,int8,int4 DEVICE=cpu by default)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DecoderModel, createSession } from '../src/engine/model/decoder';
import { stateBytes } from '../src/engine/model/memory';
import { DataType, GraphBuilder } from '../src/engine/onnx/graph';
import { argmax } from '../src/engine/model/sampling';
import type { Device, Precision } from '../src/engine/api';
import { writeGguf, type GgufWeightType } from '../test/support/gguf';
import { QWEN05B_SHAPE, QWEN35_08B_SHAPE, writeTinyHfModel, type TinyModelSpec } from '../test/support/tiny-hf';

const ROOT = join(import.meta.dirname, '..', '.cache', 'bench');
const REPEATS = Number(process.env.REPEATS ?? 3);
const THREADS = Number(process.env.THREADS ?? availableParallelism());
const NEW_TOKENS = Number(process.env.NEW_TOKENS ?? 32);
const CONTEXTS = (process.env.CONTEXTS ?? '128,1024').split(',').map(Number);
const SHAPES: Record<string, { folder: string; spec: TinyModelSpec }> = {
  'qwen2.5': { folder: 'qwen2.5-0.5b-shape', spec: QWEN05B_SHAPE },
  'qwen3.5': { folder: 'qwen3.5-0.8b-shape', spec: QWEN35_08B_SHAPE },
};
const MODELS = (process.env.MODELS ?? 'qwen2.5,qwen3.5').split(',');
const PRECISIONS = (process.env.PRECISIONS ?? 'fp32,int8,int4').split(',') as Precision[];
const DEVICE = (process.env.DEVICE ?? 'cpu') as Device;
const WITH_LLAMA = process.env.RECURSIVEMAS_LLAMA_GPU !== 'none';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const log = (s: string) => process.stderr.write(`${s}\n`);

/** llama.cpp's file at each of our precisions. */
const GGUF_TYPES: Record<Precision, GgufWeightType> = { fp32: 'F32', fp16: 'F16', int8: 'Q8_0', int4: 'Q4_0' };

async function prepare(name: string): Promise<{ hf: string; gguf: Record<Precision, string> }> {
  const { folder, spec } = SHAPES[name]!;
  const hf = join(ROOT, folder);
  const gguf = Object.fromEntries(PRECISIONS.map((p) => [p, join(ROOT, `${folder}.${GGUF_TYPES[p].toLowerCase()}.gguf`)])) as Record<Precision, string>;
  const missing = WITH_LLAMA ? PRECISIONS.filter((p) => !existsSync(gguf[p])) : [];
  if (!existsSync(join(hf, 'config.json')) || missing.length) {
    mkdirSync(ROOT, { recursive: true });
    log(`generating the ${folder} checkpoint (random weights, 2-3 GB) and its GGUF files...`);
    const model = await writeTinyHfModel(hf, { ...spec, seed: 5, keepTensors: false, maxPositionEmbeddings: 4096 });
    if (WITH_LLAMA) for (const p of PRECISIONS) writeGguf(gguf[p], model, { type: GGUF_TYPES[p] });
  }
  return { hf, gguf };
}

/**
 * Streaming-read bandwidth in bytes/s over a 1 GiB tensor (inputs are zero-copy), median of several
 * runs of each of two kernels: a ReduceSum over its rows, and a vector times it as a matrix (the
 * decode kernel's own access pattern, which streams faster here than ReduceSum). The higher figure
 * is what this machine demonstrably reaches.
 */
async function measureBandwidth(threads: number): Promise<number> {
  const rows = 4096;
  const cols = (1 << 30) / 4 / rows;
  const data = new Float32Array(rows * cols).fill(1);
  const kernels: Record<string, (g: GraphBuilder, x: string) => string> = {
    // Summing along each row lets ORT split the rows over its threads.
    reduce: (g, x) => g.op('ReduceSum', [x, g.constI64([1])], { keepdims: 0 }),
    gemv: (g, x) => g.op('MatMul', [g.initializer('v', DataType.FLOAT, [1, rows], new Float32Array(rows).fill(1)), x]),
  };
  let best = 0;
  for (const [name, kernel] of Object.entries(kernels)) {
    const g = new GraphBuilder();
    const x = g.input('x', DataType.FLOAT, [rows, cols]);
    g.bindOutput(kernel(g, x), 'y', DataType.FLOAT, name === 'reduce' ? [rows] : [1, cols]);
    const { session } = await createSession(g.finish(`bandwidth-${name}`), 'cpu', threads);
    const feeds = { x: new ort.Tensor('float32', data, [rows, cols]) };
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t = performance.now();
      await session.run(feeds);
      if (i > 0) times.push(performance.now() - t);
    }
    await session.release();
    best = Math.max(best, data.byteLength / (median(times) / 1000));
  }
  return best;
}

/** Bytes one decode step must read at `context`: every weight in the graph once plus the state. */
function bytesPerToken(model: DecoderModel, precision: Precision, context: number): number {
  const weights = statSync(model.graphPath).size + statSync(`${model.graphPath}.data`).size;
  return weights + stateBytes(model.config, precision, context, model.device);
}

interface Ours {
  prefillTokS: number;
  /** Medians per decode step, in ms: the whole step, its session.run, and the part of that run spent returning the state. */
  stepMs: number;
  runMs: number;
  stateCopyMs: number;
}

/**
 * llama.cpp's speed, measured in a child process: once llama.cpp has run in a process, our decode
 * steps in that process stay slower, even after it is disposed (Qwen3.5 int4 at 128: 47 ms alone,
 * 52-65 ms after), while llama.cpp's speed does not change with onnxruntime beside it. A user's
 * runtime never loads llama.cpp, so each side runs in a process of its own.
 */
function llamaSpeed(gguf: string, context: number): { prefillTokS: number; decodeTokS: number } {
  const child = join(import.meta.dirname, 'llama-speed.ts');
  const out = execFileSync(process.execPath, [...process.execArgv, child, gguf, String(context), String(NEW_TOKENS), String(THREADS)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').at(-1)!) as { prefillTokS: number; decodeTokS: number };
}

async function ours(model: DecoderModel, context: number): Promise<Ours> {
  const ids = Array.from({ length: context }, (_, i) => (i * 7919 + 13) % model.config.vocabSize);
  const state = model.newState();
  let t = performance.now();
  let r = await model.forward(state, model.embedding.lookup(ids), ids.length, 1);
  const prefillTokS = context / ((performance.now() - t) / 1000);
  const steps: number[] = [];
  const runs: number[] = [];
  const embed = new Float32Array(model.config.hiddenSize);
  for (let i = 0; i < NEW_TOKENS; i++) {
    t = performance.now();
    const run0 = model.timing.runMs;
    r = await model.forward(state, model.embedding.lookup([argmax(r.logits)], embed), 1, 1);
    steps.push(performance.now() - t);
    runs.push(model.timing.runMs - run0);
  }
  // On a GPU provider the state never leaves the device (and every output must be fetched).
  let stateCopyMs = 0;
  if (!model.stateOnDevice) {
    const next = model.embedding.lookup([argmax(r.logits)]);
    const withState: number[] = [];
    const without: number[] = [];
    for (let i = 0; i < 5; i++) {
      withState.push(await model.timeRun(state, next, 1, true));
      without.push(await model.timeRun(state, next, 1, false));
    }
    stateCopyMs = Math.max(0, median(withState) - median(without));
  }
  state.release();
  return { prefillTokS, stepMs: median(steps), runMs: median(runs), stateCopyMs };
}

async function main(): Promise<void> {
  log(`threads ${THREADS}, ${NEW_TOKENS} new tokens, ${REPEATS} repeats, contexts ${CONTEXTS.join(', ')}, device ${DEVICE}, llama.cpp on ${process.env.RECURSIVEMAS_LLAMA_GPU ?? 'cpu'}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const bandwidths = [await measureBandwidth(THREADS)];
  console.log(`streaming read bandwidth (1 GiB, ReduceSum or vector x matrix, ${THREADS} threads): ${(bandwidths[0]! / 1e9).toFixed(1)} GB/s`);
  const summary: Record<string, Record<string, number>> = {};
  for (const name of MODELS) {
    const files = await prepare(name);
    for (const precision of PRECISIONS) {
      const gguf = files.gguf[precision];
      const t0 = performance.now();
      const model = await DecoderModel.load(files.hf, { precision, device: DEVICE, threads: THREADS, cacheDirectory: join(ROOT, 'graphs') });
      if (model.device !== DEVICE) throw new Error(`${DEVICE} was asked for but the model runs on ${model.device}: ${model.warnings.join(' ')}`);
      log(`${name} ${precision}: loaded on ${model.device} in ${((performance.now() - t0) / 1000).toFixed(1)} s (graph cached after the first run)`);
      for (const context of CONTEXTS) {
        const a: Ours[] = [];
        const b: { prefillTokS: number; decodeTokS: number }[] = [];
        for (let rep = 0; rep < REPEATS; rep++) {
          a.push(await ours(model, context));
          if (WITH_LLAMA) b.push(llamaSpeed(gguf, context));
        }
        const row = {
          prefill_tok_s: median(a.map((x) => x.prefillTokS)),
          decode_tok_s: 0,
          llamacpp_prefill_tok_s: median(b.map((x) => x.prefillTokS)),
          llamacpp_decode_tok_s: median(b.map((x) => x.decodeTokS)),
          step_ms: median(a.map((x) => x.stepMs)),
          session_run_ms: median(a.map((x) => x.runMs)),
          state_copy_ms: median(a.map((x) => x.stateCopyMs)),
          session_run_share: 0,
          bytes_per_token: bytesPerToken(model, precision, context + NEW_TOKENS),
          bandwidth_gb_s: 0,
          bound_tok_s: 0,
          share_of_bound: 0,
          llamacpp_share_of_bound: 0,
          ratio_vs_llamacpp: 0,
        };
        // From the median step, so speed and step split describe the same runs.
        row.decode_tok_s = 1000 / row.step_ms;
        row.session_run_share = row.session_run_ms / row.step_ms;
        // A shared machine's bandwidth drifts within a run: each row's bound uses the mean of the
        // measurements just before and just after it.
        bandwidths.push(await measureBandwidth(THREADS));
        row.bandwidth_gb_s = (bandwidths.at(-2)! + bandwidths.at(-1)!) / 2 / 1e9;
        row.bound_tok_s = (row.bandwidth_gb_s * 1e9) / row.bytes_per_token;
        row.share_of_bound = row.decode_tok_s / row.bound_tok_s;
        row.llamacpp_share_of_bound = row.llamacpp_decode_tok_s / row.bound_tok_s;
        row.ratio_vs_llamacpp = row.decode_tok_s / row.llamacpp_decode_tok_s;
        // Qwen2.5 rows keep their original keys (fp32_ctx128, ...); others are prefixed by the model.
        summary[`${name === 'qwen2.5' ? '' : `${name}_`}${precision}_ctx${context}`] = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v.toFixed(3))]));
        console.log(
          `${name} ${precision.padEnd(5)} ctx ${String(context).padStart(5)}  ours: prefill ${row.prefill_tok_s.toFixed(1)} tok/s, decode ${row.decode_tok_s.toFixed(2)} tok/s ` +
            `= ${(100 * row.share_of_bound).toFixed(0)}% of the bandwidth bound ${row.bound_tok_s.toFixed(1)} tok/s (${(row.bytes_per_token / 1e6).toFixed(0)} MB/token at ${row.bandwidth_gb_s.toFixed(1)} GB/s); ` +
            `step ${row.step_ms.toFixed(1)} ms = session.run ${row.session_run_ms.toFixed(1)} (state returned to JS ${row.state_copy_ms.toFixed(1)}) + JavaScript ${(row.step_ms - row.session_run_ms).toFixed(1)}  ` +
            (WITH_LLAMA
              ? `llama.cpp: prefill ${row.llamacpp_prefill_tok_s.toFixed(1)}, decode ${row.llamacpp_decode_tok_s.toFixed(2)} tok/s (${(100 * row.llamacpp_share_of_bound).toFixed(0)}% of the bound)  ratio ${row.ratio_vs_llamacpp.toFixed(2)}x`
              : 'llama.cpp: not run'),
        );
      }
      await model.dispose();
    }
  }
  console.log(`bandwidth over the run: ${bandwidths.map((b) => (b / 1e9).toFixed(1)).join(', ')} GB/s; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(JSON.stringify({ device: DEVICE, threads: THREADS, new_tokens: NEW_TOKENS, repeats: REPEATS, bandwidth_gb_s: Number((median(bandwidths) / 1e9).toFixed(2)), ...summary }));
}

await main();
