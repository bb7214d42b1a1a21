// Where a decode step's time goes inside session.run: onnxruntime's own profiler over NEW_TOKENS
// steps after a prefill of CONTEXT positions, summed per operator type, with the classifier
// (lm_head) and the state concatenation (the KV copy) apart. Uses bench/decode.ts's checkpoints.
//   npx tsx bench/profile-decode.ts   (MODEL=qwen2.5|qwen3.5|<HF folder> PRECISION=int4|int8|fp32 CONTEXT=1024
//                                      NEW_TOKENS=16 THREADS=<cores>)
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { DecoderModel } from '../src/engine/model/decoder';
import type { Precision } from '../src/engine/api';

const ROOT = join(import.meta.dirname, '..', '.cache', 'bench');
const FOLDERS: Record<string, string> = { 'qwen2.5': 'qwen2.5-0.5b-shape', 'qwen3.5': 'qwen3.5-0.8b-shape' };
const MODEL = process.env.MODEL ?? 'qwen2.5';
const PRECISION = (process.env.PRECISION ?? 'int4') as Precision;
const CONTEXT = Number(process.env.CONTEXT ?? 1024);
const NEW_TOKENS = Number(process.env.NEW_TOKENS ?? 16);
const THREADS = Number(process.env.THREADS ?? availableParallelism());

interface TraceEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string; output_type_shape?: Record<string, number[]>[] };
}

async function main(): Promise<void> {
  const folder = FOLDERS[MODEL] ? join(ROOT, FOLDERS[MODEL]) : MODEL;
  const prefix = join(tmpdir(), `rmas-profile-${process.pid}`);
  // The engine's own graph, session and state handling, with onnxruntime's profiler on.
  const model = await DecoderModel.load(folder, { precision: PRECISION, threads: THREADS, cacheDirectory: join(ROOT, 'graphs'), profileFilePrefix: prefix });
  const c = model.config;
  const state = model.newState();
  const step = async (count: number) => {
    const ids = Array.from({ length: count }, (_, i) => (i * 7919 + 13 + state.length) % c.vocabSize);
    await model.forward(state, model.embedding.lookup(ids), count, 1);
  };
  await step(CONTEXT);
  const decodeStart = performance.now();
  for (let i = 0; i < NEW_TOKENS; i++) await step(1);
  const wallMs = (performance.now() - decodeStart) / NEW_TOKENS;
  model.endProfiling();
  // ORT names the trace <prefix>_<date>.json.
  const file = join(tmpdir(), readdirSync(tmpdir()).find((f) => f.startsWith(basename(prefix)) && f.endsWith('.json'))!);
  await model.dispose();
  const events = JSON.parse(readFileSync(file, 'utf8')) as TraceEvent[];
  if (process.env.KEEP_TRACE) console.log(`trace: ${file}`);
  else rmSync(file, { force: true });
  // The decode steps are the model_run events after the first (the prefill).
  const runs = events.filter((e) => e.name === 'model_run').sort((a, b) => a.ts - b.ts).slice(1);
  const inDecode = (e: TraceEvent) => runs.some((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur);
  const runUs = runs.reduce((s, r) => s + r.dur, 0) / runs.length;
  const byOp = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !inDecode(e)) continue;
    let op = e.args?.op_name ?? '?';
    const output = Object.values(e.args?.output_type_shape?.[0] ?? {})[0] ?? [];
    // The classifier is the one matrix product with the vocabulary as its output width.
    if (output[output.length - 1] === c.vocabSize) op = `${op} (lm_head)`;
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur / runs.length);
  }
  const kernelUs = [...byOp.values()].reduce((a, b) => a + b, 0);
  console.log(`${MODEL} ${PRECISION}, context ${CONTEXT}, ${THREADS} threads, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`decode step: ${wallMs.toFixed(1)} ms in JavaScript, ${(runUs / 1000).toFixed(1)} ms model_run, ${(kernelUs / 1000).toFixed(1)} ms in kernels`);
  for (const [op, us] of [...byOp.entries()].sort((a, b) => b[1] - a[1]).slice(0, 14)) {
    console.log(`  ${op.padEnd(34)} ${(us / 1000).toFixed(2).padStart(8)} ms  ${((100 * us) / runUs).toFixed(1).padStart(5)}%`);
  }
  console.log(JSON.stringify({ model: MODEL, precision: PRECISION, context: CONTEXT, threads: THREADS, step_ms: wallMs, run_ms: runUs / 1000, ops_ms: Object.fromEntries([...byOp].map(([k, v]) => [k, Number((v / 1000).toFixed(3))])) }));
}

await main();
