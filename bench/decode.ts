// Decode benchmark: our engine against llama.cpp (node-llama-cpp) on the same weights, a
// Qwen2.5-0.5B-shaped model with random weights, fp32 (vs F32 GGUF) and int4 (vs Q4_0), at
// context 128 and 1024. Both run in this process with the same thread count, alternating, and
// figures are medians over REPEATS runs. Last line: one JSON object with the ratios.
//   npm run bench:decode            (REPEATS=3 THREADS=<cores> NEW_TOKENS=32 by default)
import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { DecoderModel } from '../src/engine/model/decoder';
import { argmax } from '../src/engine/model/sampling';
import { writeGguf } from '../test/support/gguf';
import { disposeLlama, llamaSpeed } from '../test/support/llamacpp';
import { QWEN05B_SHAPE, writeTinyHfModel } from '../test/support/tiny-hf';

const ROOT = join(import.meta.dirname, '..', '.cache', 'bench');
const REPEATS = Number(process.env.REPEATS ?? 3);
const THREADS = Number(process.env.THREADS ?? availableParallelism());
const NEW_TOKENS = Number(process.env.NEW_TOKENS ?? 32);
const CONTEXTS = (process.env.CONTEXTS ?? '128,1024').split(',').map(Number);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string) => process.stderr.write(`${s}\n`);

async function prepare(): Promise<{ hf: string; ggufF32: string; ggufQ4: string }> {
  const hf = join(ROOT, 'qwen2.5-0.5b-shape');
  const ggufF32 = join(ROOT, 'qwen2.5-0.5b-shape.f32.gguf');
  const ggufQ4 = join(ROOT, 'qwen2.5-0.5b-shape.q4_0.gguf');
  if (!existsSync(join(hf, 'config.json')) || !existsSync(ggufF32) || !existsSync(ggufQ4)) {
    mkdirSync(ROOT, { recursive: true });
    log('generating the Qwen2.5-0.5B-shaped checkpoint (random weights, ~2 GB) and its GGUF files...');
    const model = await writeTinyHfModel(hf, { ...QWEN05B_SHAPE, seed: 5, keepTensors: false, maxPositionEmbeddings: 4096 });
    writeGguf(ggufF32, model, { type: 'F32' });
    writeGguf(ggufQ4, model, { type: 'Q4_0' });
  }
  return { hf, ggufF32, ggufQ4 };
}

interface Ours {
  prefillTokS: number;
  decodeTokS: number;
  runShare: number;
}

async function ours(model: DecoderModel, context: number): Promise<Ours> {
  const ids = Array.from({ length: context }, (_, i) => (i * 7919 + 13) % model.config.vocabSize);
  const state = model.newState();
  let t = performance.now();
  let r = await model.forward(state, model.embedding.lookup(ids), ids.length, 1);
  const prefillTokS = context / ((performance.now() - t) / 1000);
  model.timing.runMs = 0;
  model.timing.totalMs = 0;
  const steps: number[] = [];
  const embed = new Float32Array(model.config.hiddenSize);
  for (let i = 0; i < NEW_TOKENS; i++) {
    t = performance.now();
    r = await model.forward(state, model.embedding.lookup([argmax(r.logits)], embed), 1, 1);
    steps.push(performance.now() - t);
  }
  const total = steps.reduce((a, b) => a + b, 0);
  return { prefillTokS, decodeTokS: 1000 / median(steps), runShare: model.timing.runMs / total };
}

async function main(): Promise<void> {
  const files = await prepare();
  log(`threads ${THREADS}, ${NEW_TOKENS} new tokens, ${REPEATS} repeats, contexts ${CONTEXTS.join(', ')}`);
  const summary: Record<string, Record<string, number>> = {};
  for (const precision of ['fp32', 'int4'] as const) {
    const gguf = precision === 'fp32' ? files.ggufF32 : files.ggufQ4;
    const t0 = performance.now();
    const model = await DecoderModel.load(files.hf, { precision, threads: THREADS, cacheDirectory: join(ROOT, 'graphs') });
    log(`${precision}: loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s (graph cached after the first run)`);
    for (const context of CONTEXTS) {
      const a: Ours[] = [];
      const b: { prefillTokS: number; decodeTokS: number }[] = [];
      for (let rep = 0; rep < REPEATS; rep++) {
        a.push(await ours(model, context));
        b.push(await llamaSpeed(gguf, { promptTokens: context, newTokens: NEW_TOKENS, threads: THREADS }));
      }
      const row = {
        prefill_tok_s: median(a.map((x) => x.prefillTokS)),
        decode_tok_s: median(a.map((x) => x.decodeTokS)),
        llamacpp_prefill_tok_s: median(b.map((x) => x.prefillTokS)),
        llamacpp_decode_tok_s: median(b.map((x) => x.decodeTokS)),
        session_run_share: median(a.map((x) => x.runShare)),
        ratio_vs_llamacpp: 0,
      };
      row.ratio_vs_llamacpp = row.decode_tok_s / row.llamacpp_decode_tok_s;
      summary[`${precision}_ctx${context}`] = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v.toFixed(3))]));
      console.log(
        `${precision.padEnd(5)} ctx ${String(context).padStart(5)}  ours: prefill ${row.prefill_tok_s.toFixed(1)} tok/s, decode ${row.decode_tok_s.toFixed(2)} tok/s ` +
          `(session.run ${(100 * row.session_run_share).toFixed(1)}% of a step, JavaScript ${(100 - 100 * row.session_run_share).toFixed(1)}%)  ` +
          `llama.cpp: prefill ${row.llamacpp_prefill_tok_s.toFixed(1)}, decode ${row.llamacpp_decode_tok_s.toFixed(2)} tok/s  ratio ${row.ratio_vs_llamacpp.toFixed(2)}x`,
      );
    }
    await model.dispose();
  }
  await disposeLlama();
  console.log(JSON.stringify({ threads: THREADS, new_tokens: NEW_TOKENS, repeats: REPEATS, ...summary }));
}

await main();
