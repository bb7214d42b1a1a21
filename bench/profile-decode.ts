// Where a decode step's time goes inside session.run: onnxruntime's own profiler over NEW_TOKENS
// steps after a prefill of CONTEXT positions, summed per operator type, with the classifier
// (lm_head) and the state concatenation (the KV copy) apart. Uses bench/decode.ts's checkpoints.
//   npx tsx bench/profile-decode.ts   (MODEL=qwen2.5|qwen3.5|<HF folder> PRECISION=int4|fp32 CONTEXT=1024
//                                      NEW_TOKENS=16 THREADS=<cores>)
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DecoderModel, stateNames } from '../src/engine/model/decoder';

const ROOT = join(import.meta.dirname, '..', '.cache', 'bench');
const FOLDERS: Record<string, string> = { 'qwen2.5': 'qwen2.5-0.5b-shape', 'qwen3.5': 'qwen3.5-0.8b-shape' };
const MODEL = process.env.MODEL ?? 'qwen2.5';
const PRECISION = (process.env.PRECISION ?? 'int4') as 'fp32' | 'int4';
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
  // Builds (or finds) the graph exactly as the engine does; the profiled session is opened on it below.
  const model = await DecoderModel.load(folder, { precision: PRECISION, threads: THREADS, cacheDirectory: join(ROOT, 'graphs') });
  const c = model.config;
  const prefix = join(tmpdir(), `rmas-profile-${process.pid}`);
  const session = await ort.InferenceSession.create(model.graphPath, {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
    extra: { session: { set_denormal_as_zero: '1' } },
    enableProfiling: true,
    profileFilePrefix: prefix,
  });
  const names = stateNames(c);
  let past: Record<string, ort.Tensor> = model.newState().past;
  let length = 0;
  const step = async (count: number) => {
    const ids = Array.from({ length: count }, (_, i) => (i * 7919 + 13 + length) % c.vocabSize);
    const total = length + count;
    const out = await session.run({
      ...past,
      inputs_embeds: new ort.Tensor('float32', model.embedding.lookup(ids), [1, count, c.hiddenSize]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: count }, (_, i) => BigInt(length + i)), [1, count]),
      logits_to_keep: new ort.Tensor('int64', BigInt64Array.of(1n), [1]),
    });
    past = Object.fromEntries(names.map(([p, present]) => [p, out[present]!]));
    length = total;
  };
  await step(CONTEXT);
  const decodeStart = performance.now();
  for (let i = 0; i < NEW_TOKENS; i++) await step(1);
  const wallMs = (performance.now() - decodeStart) / NEW_TOKENS;
  session.endProfiling();
  // ORT names the trace <prefix>_<date>.json.
  const file = join(tmpdir(), readdirSync(tmpdir()).find((f) => f.startsWith(basename(prefix)) && f.endsWith('.json'))!);
  await session.release();
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
