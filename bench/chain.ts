// Chain benchmark: latent vs text vs single on one generated team with realistic shapes (Planner and
// Solver Qwen2.5-0.5B-shaped, Critic Llama-3.2-1B-shaped; random weights), at R = 1, 2, 3 with the
// same final answer budget. Random weights never stop on their own, so every text message runs its
// full budget of 256 tokens (a typical plan length) and every final answer its full budget; the
// code-retry is off so all modes decode the same final budget. Also: one latent step against one
// plain decode step on the same model; and the prefills of an R = 3 latent solve with and without
// prefix reuse (each agent's prompt before its first slot kept from round to round); and one R = 3
// pair at the paper's LiveCodeBench budgets (text MAS 7,078 generated tokens in all, latent 2,247,
// the answer included; the paper measured 22,036 s against 10,186 s, 2.16x). Last line: one JSON object.
//   npm run bench:chain            (PRECISION=int4 ANSWER_TOKENS=64 LATENT_STEPS=16 by default;
//                                   ROUNDS= (empty) skips the mode rows, REUSE_REPEATS=2, 0 skips reuse,
//                                   PAPER_ROW=0 skips the paper-budget pair, about 10 minutes)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Device, Mode, Precision } from '../src/engine/api';
import { SeededRandom } from '../src/engine/random';
import { latentRollout } from '../src/engine/chain/rollout';
import { readPreset } from '../src/engine/chain/presets';
import { loadTeam } from '../src/engine/index';
import { generateFromEmbeds } from '../src/engine/model/generate';
import { RecursiveLink } from '../src/engine/links/link';
import { DecoderModel } from '../src/engine/model/decoder';
import { ensureSyntheticModel } from '../src/engine/model/synthetic';

const ROOT = join(import.meta.dirname, '..', '.cache', 'bench');
const TEAM = join(import.meta.dirname, 'teams', 'bench-sequential.json');
const PRECISION = (process.env.PRECISION ?? 'int4') as Precision;
// On a GPU (scripts/device-bench.sh): DEVICE=webgpu|cuda, PRECISION=fp16 or int4.
const DEVICE = (process.env.DEVICE ?? 'cpu') as Device;
const ANSWER_TOKENS = Number(process.env.ANSWER_TOKENS ?? 64);
const LATENT_STEPS = Number(process.env.LATENT_STEPS ?? 16);
const THREADS = Number(process.env.THREADS ?? availableParallelism());
const ROUNDS = (process.env.ROUNDS ?? '1,2,3').split(',').filter(Boolean).map(Number);
const REUSE_REPEATS = Number(process.env.REUSE_REPEATS ?? 2);
const PAPER_ROW = process.env.PAPER_ROW !== '0';
// RecursiveMAS paper, LiveCodeBench at R = 3: tokens generated in all by Recursive-TextMAS and by
// RecursiveMAS (whose only text is the final answer), and their wall times.
const PAPER = { textTokens: 7078, latentTokens: 2247, textSeconds: 22036, latentSeconds: 10186 };
const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const options = { device: DEVICE, threads: THREADS, precision: PRECISION, modelsDirectory: join(ROOT, 'models'), cacheDirectory: join(ROOT, 'graphs') };

/** An inner link of the trained shape (LayerNorm, d x d, GELU, d x d, residual, LayerNorm) with random weights. */
async function innerLinkOfWidth(d: number): Promise<RecursiveLink> {
  const rng = new SeededRandom(1);
  const random = () => (rng.next() - 0.5) / Math.sqrt(d);
  const t = (shape: number[], f: () => number) => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, f) });
  const tensors = new Map([
    ['pre_ln.weight', t([d], () => 1)], ['pre_ln.bias', t([d], () => 0)],
    ['proj1.weight', t([d, d], random)], ['proj1.bias', t([d], () => 0)],
    ['proj2.weight', t([d, d], random)], ['proj2.bias', t([d], () => 0)],
    ['post_ln.weight', t([d], () => 1)], ['post_ln.bias', t([d], () => 0)],
  ]);
  return RecursiveLink.fromTensors('inner', tensors, { source: 'bench', dIn: d, dOut: d, from: 'm', to: 'm' }, DEVICE);
}

/**
 * One latent step (single-position forward without logits + inner link, its own session.run) vs
 * one decode step (forward with logits + sampling), and the inner link's share of a latent step:
 * what applying the link inside the decoder graph could save at most on this device.
 */
async function stepCosts(): Promise<{ latentMs: number; decodeMs: number; linkMs: number }> {
  const preset = await readPreset(TEAM);
  const source = preset.models['qwen-0.5b-shape']!;
  if (!('generated' in source)) throw new Error('bench team changed');
  const folder = await ensureSyntheticModel(source.generated, join(ROOT, 'models', 'step-cost'));
  const model = await DecoderModel.load(folder, options);
  const d = model.config.hiddenSize;
  const inner = await innerLinkOfWidth(d);
  const linkTimes: number[] = [];
  // The same link, timed around each of its runs.
  const timed = Object.assign(Object.create(inner) as RecursiveLink, {
    apply: async (x: Float32Array, n: number) => {
      const t = performance.now();
      const y = await inner.apply(x, n);
      linkTimes.push(performance.now() - t);
      return y;
    },
  });
  const prompt = model.embedding.lookup(Array.from({ length: 200 }, (_, i) => (i * 31) % 1000));
  const latent: number[] = [];
  const decode: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    let t = performance.now();
    let last = t;
    await latentRollout(model, timed, prompt, 200, 33, {
      onStep: (step) => {
        const now = performance.now();
        if (step > 1) latent.push(now - last);
        last = now;
      },
    });
    t = performance.now();
    last = t;
    let first = true;
    await generateFromEmbeds(model, model.newState(), prompt, 200, {
      temperature: 0,
      maxNewTokens: 33,
      stopTokens: [],
      onToken: () => {
        const now = performance.now();
        if (!first) decode.push(now - last);
        first = false;
        last = now;
      },
    });
  }
  await inner.dispose();
  await model.dispose();
  return { latentMs: median(latent), decodeMs: median(decode), linkMs: median(linkTimes) };
}

interface ReuseRow {
  prefillSeconds: number;
  solveSeconds: number;
  promptPositions: number;
  reusedPositions: number;
}

/** R = 3 latent solves alternating without and with prefix reuse: medians of the prefill time (all agents) and of the solve. */
async function prefixReuse(team: Awaited<ReturnType<typeof loadTeam>>): Promise<{ without: ReuseRow; with: ReuseRow }> {
  const runs: Record<'without' | 'with', ReuseRow[]> = { without: [], with: [] };
  for (let rep = 0; rep < REUSE_REPEATS; rep++) {
    for (const reusePrefixes of [false, true]) {
      const r = await team.solve(
        { task: 'Write a function named add that returns the sum of two integers.', language: 'python', mode: 'latent', rounds: 3, latentSteps: LATENT_STEPS, maxNewTokens: ANSWER_TOKENS, temperature: 0, topP: 1, retryForCode: false, fixedLength: true, reusePrefixes },
        () => {},
      );
      const row = {
        prefillSeconds: r.metrics.stages.reduce((s, st) => s + (st.promptMs ?? 0), 0) / 1000,
        solveSeconds: r.metrics.wallMs / 1000,
        promptPositions: r.metrics.promptTokens,
        reusedPositions: r.metrics.reusedPromptTokens ?? 0,
      };
      runs[reusePrefixes ? 'with' : 'without'].push(row);
      log(`R=3 latent, reuse ${reusePrefixes ? 'on ' : 'off'}: prefills ${row.prefillSeconds.toFixed(2)} s, solve ${row.solveSeconds.toFixed(2)} s, ${row.reusedPositions} of ${row.promptPositions} prompt positions reused`);
      log(`  prefills by turn: ${r.metrics.stages.map((st) => `r${st.round} ${st.agent} ${((st.promptMs ?? 0) / 1000).toFixed(2)} s`).join(', ')}`);
    }
  }
  const med = (rows: ReuseRow[]): ReuseRow => ({
    prefillSeconds: Number(median(rows.map((r) => r.prefillSeconds)).toFixed(3)),
    solveSeconds: Number(median(rows.map((r) => r.solveSeconds)).toFixed(3)),
    promptPositions: rows[0]!.promptPositions,
    reusedPositions: rows[0]!.reusedPositions,
  });
  return { without: med(runs.without), with: med(runs.with) };
}

/**
 * R = 3, latent and text, at the paper's LiveCodeBench budgets: both answers 2,247 tokens; text mode's
 * 8 messages share the rest of its 7,078 tokens (604 each, through a copy of the team preset).
 */
async function paperBudgets(): Promise<{ latent: { seconds: number; textTokens: number }; text: { seconds: number; textTokens: number } }> {
  const rounds = 3;
  const preset = JSON.parse(readFileSync(TEAM, 'utf8'));
  const messages = rounds * preset.agents.length - 1;
  preset.name = 'bench-sequential-paper-budgets';
  preset.defaults = { ...preset.defaults, textMessageTokens: Math.round((PAPER.textTokens - PAPER.latentTokens) / messages) };
  const file = join(ROOT, 'bench-sequential-paper-budgets.json');
  mkdirSync(ROOT, { recursive: true });
  writeFileSync(file, JSON.stringify(preset));
  const team = await loadTeam(file, options);
  const row = {} as Record<'latent' | 'text', { seconds: number; textTokens: number }>;
  try {
    for (const mode of ['latent', 'text'] as const) {
      const r = await team.solve(
        { task: 'Write a function named add that returns the sum of two integers.', language: 'python', mode, rounds, latentSteps: LATENT_STEPS, maxNewTokens: PAPER.latentTokens, temperature: 0, topP: 1, retryForCode: false, fixedLength: true },
        () => {},
      );
      row[mode] = { seconds: r.metrics.wallMs / 1000, textTokens: r.metrics.textTokens };
      log(`paper budgets, R=3 ${mode}: ${row[mode].seconds.toFixed(1)} s, ${r.metrics.textTokens} text tokens`);
    }
  } finally {
    await team.dispose();
  }
  return row;
}

async function main(): Promise<void> {
  log(`precision ${PRECISION}, threads ${THREADS}, latent steps ${LATENT_STEPS}, final answer ${ANSWER_TOKENS} tokens, text messages 256 tokens`);
  const t0 = performance.now();
  const team = await loadTeam(TEAM, { ...options, onEvent: (e) => e.type === 'team-loading' && log(`loading ${e.model} (${e.index + 1}/${e.count})...`) });
  log(`team loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const rows: Record<string, Record<Mode, { seconds: number; textTokens: number; latentSteps: number }>> = {};
  for (const rounds of ROUNDS) {
    rows[rounds] = {} as (typeof rows)[string];
    for (const mode of ['latent', 'text', 'single'] as Mode[]) {
      const r = await team.solve(
        { task: 'Write a function named add that returns the sum of two integers.', language: 'python', mode, rounds, latentSteps: LATENT_STEPS, maxNewTokens: ANSWER_TOKENS, temperature: 0, topP: 1, retryForCode: false },
        () => {},
      );
      rows[rounds][mode] = { seconds: r.metrics.wallMs / 1000, textTokens: r.metrics.textTokens, latentSteps: r.metrics.latentSteps };
      console.log(`R=${rounds} ${mode.padEnd(6)} ${(r.metrics.wallMs / 1000).toFixed(1).padStart(7)} s  text tokens ${String(r.metrics.textTokens).padStart(5)}  latent steps ${r.metrics.latentSteps}`);
    }
  }
  const reuse = REUSE_REPEATS > 0 ? await prefixReuse(team) : null;
  await team.dispose();
  if (reuse) console.log(
    `R=3 latent prefills: ${reuse.without.prefillSeconds.toFixed(2)} s without prefix reuse, ${reuse.with.prefillSeconds.toFixed(2)} s with (${(reuse.without.prefillSeconds / reuse.with.prefillSeconds).toFixed(2)}x; ${reuse.with.reusedPositions} of ${reuse.with.promptPositions} prompt positions reused); solve ${reuse.without.solveSeconds.toFixed(2)} s -> ${reuse.with.solveSeconds.toFixed(2)} s (medians of ${REUSE_REPEATS})`,
  );
  const paper = PAPER_ROW ? await paperBudgets() : null;
  if (paper) console.log(
    `R=3 at the paper's LiveCodeBench budgets: text ${paper.text.seconds.toFixed(1)} s (${paper.text.textTokens} tokens) vs latent ${paper.latent.seconds.toFixed(1)} s (${paper.latent.textTokens} tokens): ${(paper.text.seconds / paper.latent.seconds).toFixed(2)}x (paper: ${PAPER.textSeconds} s vs ${PAPER.latentSeconds} s, ${(PAPER.textSeconds / PAPER.latentSeconds).toFixed(2)}x)`,
  );
  const steps = await stepCosts();
  const speedup: Record<string, number> = {};
  const reduction: Record<string, number> = {};
  for (const [rounds, r] of Object.entries(rows)) {
    speedup[rounds] = Number((r.text.seconds / r.latent.seconds).toFixed(2));
    reduction[rounds] = Number((1 - r.latent.textTokens / r.text.textTokens).toFixed(3));
    console.log(`R=${rounds}: latent is ${speedup[rounds]}x faster than text and generates ${(100 * reduction[rounds]).toFixed(1)}% fewer text tokens (paper: 1.2x/1.9x/2.4x, 34.6%/65.5%/75.6% at R=1/2/3)`);
  }
  const ratio = steps.latentMs / steps.decodeMs;
  console.log(`one latent step ${steps.latentMs.toFixed(1)} ms vs one decode step ${steps.decodeMs.toFixed(1)} ms: ${ratio.toFixed(2)}x; of the latent step, the inner link's own run ${steps.linkMs.toFixed(2)} ms (${((100 * steps.linkMs) / steps.latentMs).toFixed(1)}%)`);
  console.log(JSON.stringify({ precision: PRECISION, threads: THREADS, answer_tokens: ANSWER_TOKENS, text_message_tokens: 256, latent_steps: LATENT_STEPS, rows, speedup_vs_text: speedup, token_reduction_vs_text: reduction, latent_step_vs_decode_step: Number(ratio.toFixed(3)), latent_step_ms: steps.latentMs, decode_step_ms: steps.decodeMs, inner_link_ms: steps.linkMs, prefix_reuse_r3: reuse, paper_budgets_r3: paper }));
}

await main();
