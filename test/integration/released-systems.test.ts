// Every released system that this version runs, in the release's layout (test/support/release.ts:
// the real repository ids, transformers-5 checkpoints in bf16, inner and outer links with their
// manifests) on tiny generated checkpoints of the released families: served by a hub on 127.0.0.1,
// pulled with `models pull`, loaded and solved in latent mode. The real teams (23-28 GB) do not fit
// this machine; the shapes differ, the files, families and flow are the release's.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import type { SolveEvent } from '../../src/engine/api';
import { loadTeam } from '../../src/engine/index';
import { buildRoleMessages } from '../../src/engine/chain/prompts';
import { HfTokenizer } from '../../src/engine/tokenizer/hf';
import { runModelsCommand } from '../../src/cli/models';
import { FakeHub } from '../support/fake-hub';
import { tempDir } from '../support/paths';
import { hubRepos, writeRelease, type Release } from '../support/release';
import type { TinyModelSpec } from '../support/tiny-hf';

const hubs: FakeHub[] = [];
after(async () => {
  await Promise.all(hubs.map((h) => h.stop()));
});

const cacheDirectory = tempDir();
const quiet = { stdout: () => {}, stdoutBytes: () => {}, stderr: () => {}, isTTY: false };
const TASK = 'Write a function named is_even(n).';
const M = 3;

const tiny = { numLayers: 2, vocabSize: 400 } as const;
// Two layers: one Gated DeltaNet layer and one gated full-attention layer.
const qwen35 = (hiddenSize: number, seed: number, heads: { q: number; kv: number; headDim: number; keyHeads: number; valueHeads: number }): TinyModelSpec => ({
  family: 'qwen3_5', hiddenSize, intermediateSize: 2 * hiddenSize, ...tiny, numHeads: heads.q, numKvHeads: heads.kv, headDim: heads.headDim, seed,
  qwen3_5: { fullAttentionInterval: 2, linearKeyHeads: heads.keyHeads, linearValueHeads: heads.valueHeads, linearKeyHeadDim: 16, linearValueHeadDim: 16 },
});

/** Writes the release, serves it, pulls the preset into a fresh models folder. */
async function pulled(preset: string, specs: Record<string, TinyModelSpec>): Promise<{ release: Release; modelsDirectory: string }> {
  const release = await writeRelease(tempDir(), preset, specs);
  const hub = await FakeHub.start({ lifetimeMs: 170_000, repos: hubRepos(release) });
  hubs.push(hub);
  const modelsDirectory = tempDir();
  assert.equal(await runModelsCommand(['pull', preset, '--models-dir', modelsDirectory, '--endpoint', hub.endpoint], quiet), 0, `models pull ${preset}`);
  return { release, modelsDirectory };
}

function repoFolder(release: Release, modelsDirectory: string, key: string): string {
  const source = release.preset.models[key]!;
  assert.ok('repo' in source);
  return join(modelsDirectory, ...source.repo.split('/'));
}

/** Tensor names in a safetensors file's header. */
function safetensorsNames(path: string): string[] {
  const fd = openSync(path, 'r');
  try {
    const size = Buffer.alloc(8);
    readSync(fd, size, 0, 8, 0);
    const header = Buffer.alloc(Number(size.readBigUInt64LE()));
    readSync(fd, header, 0, header.length, 8);
    return Object.keys(JSON.parse(header.toString('utf8'))).filter((k) => k !== '__metadata__');
  } finally {
    closeSync(fd);
  }
}

interface Solved {
  events: SolveEvent[];
  latentSteps: number;
  handoffs: string[];
}

/** Loads the pulled team, solves in latent mode, checks what every style must show. */
/** Compiled graphs with an inner link built in (one run per latent step, on GPU providers). */
function graphsWithLatentHead(): Set<string> {
  const root = join(cacheDirectory, 'graphs');
  if (!existsSync(root)) return new Set();
  const folders = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.includes('.building-'));
  return new Set(folders.filter((e) => readFileSync(join(root, e.name, 'model.onnx')).includes('next_embeds')).map((e) => e.name));
}

async function solve(preset: string, modelsDirectory: string, rounds: number, finalAgent: string): Promise<Solved> {
  const before = graphsWithLatentHead();
  const team = await loadTeam(preset, { device: 'cpu', modelsDirectory, cacheDirectory });
  try {
    assert.deepEqual(team.warnings, [], 'no provider fallback while loading');
    // On the CPU the inner links run as their own sessions: no graph carries one (the GPU path is in webgpu.test.ts).
    const added = [...graphsWithLatentHead()].filter((k) => !before.has(k));
    assert.deepEqual(added, [], 'no CPU graph holds a second copy of an inner link');
    const events: SolveEvent[] = [];
    const result = await team.solve({ task: TASK, language: 'python', mode: 'latent', rounds, latentSteps: M, maxNewTokens: 4, temperature: 0.2, topP: 0.95, seed: 1 }, (e) => events.push(e));
    assert.equal(result.rounds, rounds);
    const handoffs = events.flatMap((e) => (e.type === 'handoff' ? [e] : []));
    for (const h of handoffs) {
      assert.equal(h.vectors, M, `${h.from}->${h.to} passes all ${M} latent thoughts`);
      assert.ok(Number.isFinite(h.meanNorm) && h.meanNorm > 0, `${h.from}->${h.to}: finite, non-zero thoughts`);
    }
    const latentEvents = events.filter((e) => e.type === 'latent-step').length;
    assert.equal(result.metrics.latentSteps, latentEvents);
    const decodes = events.flatMap((e) => (e.type === 'agent-start' && e.action === 'decode' ? [e] : []));
    assert.deepEqual(decodes.map((d) => [d.agent, d.round]), [[finalAgent, rounds]], 'only the final agent decodes, in the last round');
    const answers = events.filter((e) => e.type === 'answer');
    assert.equal(answers.length, 1, 'the answer event arrives');
    assert.equal(events.at(-1)?.type, 'metrics');
    // Random weights write no code block: that warning is expected; nothing else may warn.
    const warnings = events.flatMap((e) => (e.type === 'warning' && !/No code block/.test(e.message) ? [e.message] : []));
    assert.deepEqual(warnings, []);
    return { events, latentSteps: result.metrics.latentSteps, handoffs: handoffs.map((h) => `${h.from}->${h.to}`) };
  } finally {
    await team.dispose();
  }
}

test('sequential-scaled-code (Gemma 3 multimodal, Llama 3.2, Qwen3.5) is pulled in the released layout and solves in latent mode', async () => {
  const { release, modelsDirectory } = await pulled('sequential-scaled-code', {
    // Prompts are far longer than the sliding window, so the sliding layers really slide.
    planner: { family: 'gemma3', hiddenSize: 64, intermediateSize: 128, ...tiny, numHeads: 4, numKvHeads: 2, headDim: 16, seed: 11, gemma3: { multimodal: true, slidingWindow: 8, slidingWindowPattern: 2, ropeLinearFactor: 8 } },
    critic: { family: 'llama', hiddenSize: 96, intermediateSize: 192, ...tiny, numHeads: 6, numKvHeads: 2, seed: 12, ropeTheta: 500_000, ropeScalingLlama3: true },
    solver: qwen35(80, 13, { q: 4, kv: 2, headDim: 32, keyHeads: 2, valueHeads: 4 }),
  });
  const planner = repoFolder(release, modelsDirectory, 'planner');
  const config = JSON.parse(readFileSync(join(planner, 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'gemma3');
  assert.equal(config.text_config.model_type, 'gemma3_text');
  assert.ok(config.text_config.rope_parameters.sliding_attention && !('rope_theta' in config.text_config), 'rope only under rope_parameters, per layer type');
  const names = safetensorsNames(join(planner, 'model.safetensors'));
  assert.ok(names.includes('model.language_model.embed_tokens.weight') && names.some((n) => n.startsWith('model.vision_tower.')), 'decoder under language_model., vision tower beside it');

  const rounds = 2;
  const solved = await solve('sequential-scaled-code', modelsDirectory, rounds, 'solver');
  assert.deepEqual(solved.handoffs, ['planner->critic', 'critic->solver', 'solver->planner', 'planner->critic', 'critic->solver']);
  // Round 1: planner, critic, solver think; round 2: planner, critic (the solver decodes).
  assert.equal(solved.latentSteps, 5 * M);
  const plannerTurn = solved.events.find((e) => e.type === 'agent-end' && e.agent === 'planner');
  assert.ok(plannerTurn && plannerTurn.type === 'agent-end' && plannerTurn.promptTokens > 8, 'the planner prompt is longer than its sliding window');
});

test('mixture (Qwen2, Qwen2, Mistral, Qwen3.5 summarizer) solves, with untasked links and the Mistral system turn merged', async () => {
  const { release, modelsDirectory } = await pulled('mixture', {
    math: { family: 'qwen2', hiddenSize: 64, intermediateSize: 128, ...tiny, numHeads: 4, numKvHeads: 2, seed: 21 },
    code: { family: 'qwen2', hiddenSize: 80, intermediateSize: 160, ...tiny, numHeads: 4, numKvHeads: 2, seed: 22 },
    science: { family: 'mistral', hiddenSize: 96, intermediateSize: 192, ...tiny, numHeads: 6, numKvHeads: 2, seed: 23 },
    summarizer: qwen35(64, 24, { q: 4, kv: 2, headDim: 16, keyHeads: 2, valueHeads: 2 }),
  });
  const science = repoFolder(release, modelsDirectory, 'science');
  const outer = JSON.parse(readFileSync(join(modelsDirectory, 'RecursiveMAS', 'Mixture-Outerlinks', 'outerlink_config.json'), 'utf8'));
  assert.ok(Array.isArray(outer.adapters) && !('tasks' in outer), 'the Mixture outer links are one flat list');
  for (const key of ['math', 'code', 'science', 'summarizer']) {
    const files = readdirSync(repoFolder(release, modelsDirectory, key));
    assert.ok(files.includes('adapter.pt') && !files.includes('innerlink_config.json'), `${key}: one inner link, adapter.pt, no task manifest`);
  }

  // The science expert's template, as BioMistral's, refuses a system turn; the engine merges it.
  const messages = buildRoleMessages(release.preset.prompts, { role: 'expert', task: TASK, language: 'python', senders: [], domain: 'science' });
  assert.equal(messages[0]!.role, 'system');
  const raw = new Template(readFileSync(join(science, 'chat_template.jinja'), 'utf8'));
  assert.throws(() => raw.render({ messages, add_generation_prompt: true, bos_token: '<s>', eos_token: '</s>' }), /roles must alternate/i);
  const tokenizer = await HfTokenizer.load(science);
  const rendered = tokenizer.renderChat(messages);
  assert.ok(rendered.includes(`[INST] ${messages[0]!.content}`), 'the system text opens the first user turn');

  const rounds = 2;
  const solved = await solve('mixture', modelsDirectory, rounds, 'summarizer');
  const experts = ['math expert', 'code expert', 'science expert'];
  assert.deepEqual(solved.handoffs, [
    ...experts.map((e) => `${e}->summarizer`),
    ...experts.map((e) => `summarizer->${e}`),
    ...experts.map((e) => `${e}->summarizer`),
  ]);
  // Round 1: three experts and the summarizer think; round 2: the experts (the summarizer decodes).
  assert.equal(solved.latentSteps, 7 * M);
  const scienceTurn = solved.events.find((e) => e.type === 'agent-end' && e.agent === 'science expert' && e.round === 1);
  assert.ok(scienceTurn && scienceTurn.type === 'agent-end');
  assert.equal(scienceTurn.promptTokens, tokenizer.encode(rendered).length, 'the solve used the merged prompt');
});

test('distillation-code (Qwen3.5 expert and learner) is pulled in the released layout and solves in latent mode', async () => {
  const { release, modelsDirectory } = await pulled('distillation-code', {
    expert: qwen35(96, 31, { q: 4, kv: 2, headDim: 32, keyHeads: 2, valueHeads: 4 }),
    learner: qwen35(64, 32, { q: 4, kv: 1, headDim: 16, keyHeads: 1, valueHeads: 2 }),
  });
  const learner = repoFolder(release, modelsDirectory, 'learner');
  const config = JSON.parse(readFileSync(join(learner, 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'qwen3_5');
  assert.deepEqual(config.text_config.layer_types, ['linear_attention', 'full_attention']);
  assert.deepEqual(JSON.parse(readFileSync(join(learner, 'innerlink_config.json'), 'utf8')).tasks.code, { 'adapter.pt': 'adapter(code).pt' });

  const rounds = 3;
  const solved = await solve('distillation-code', modelsDirectory, rounds, 'learner');
  assert.deepEqual(solved.handoffs, ['expert->learner', 'learner->expert', 'expert->learner', 'learner->expert', 'expert->learner']);
  // The expert thinks every round, the learner in the two non-final rounds.
  assert.equal(solved.latentSteps, 5 * M);
});
