// The sequential-light-code preset exactly as released: the authors' repository ids (as their
// loader names them, written out here independently of the preset), agent repos in the layout
// transformers 5 saves (rope only under rope_parameters, `dtype`, chat_template.jinja, bf16 weights)
// with inner-link manifests and bf16 .pt adapters, an Outerlinks repo with a task-scoped
// outerlink_config.json (written by test/support/release.ts). Served by a hub on 127.0.0.1, pulled
// with `models pull`, loaded and solved.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, type SolveEvent } from '../../src/engine/api';
import { loadTeam } from '../../src/engine/index';
import { readPreset, reposOf } from '../../src/engine/chain/presets';
import { runModelsCommand } from '../../src/cli/models';
import { FakeHub } from '../support/fake-hub';
import { tempDir } from '../support/paths';
import { hubRepos, writeRelease } from '../support/release';
import type { TinyModelSpec } from '../support/tiny-hf';

// From the authors' load_from_repo.py / README (note "Llama3.2", no "-Instruct").
const PLANNER = 'RecursiveMAS/Sequential-Light-Planner-Qwen3-1.7B';
const CRITIC = 'RecursiveMAS/Sequential-Light-Critic-Llama3.2-1B';
const SOLVER = 'RecursiveMAS/Sequential-Light-Solver-Qwen2.5-Math-1.5B';
const OUTER = 'RecursiveMAS/Sequential-Light-Outerlinks';
const AGENT_REPOS = [PLANNER, CRITIC, SOLVER];

const specs: Record<string, TinyModelSpec> = {
  planner: { family: 'qwen3', hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 32, vocabSize: 400, seed: 1, ropeTheta: 1_000_000 },
  critic: { family: 'llama', hiddenSize: 96, intermediateSize: 192, numLayers: 2, numHeads: 6, numKvHeads: 2, vocabSize: 400, seed: 2, ropeTheta: 500_000 },
  solver: { family: 'qwen2', hiddenSize: 80, intermediateSize: 160, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 400, seed: 3, ropeTheta: 10_000 },
};

let hub: FakeHub | undefined;
after(async () => {
  await hub?.stop();
});

const cacheDirectory = tempDir();
const quiet = { stdout: () => {}, stdoutBytes: () => {}, stderr: () => {}, isTTY: false };

test('the preset names exactly the repositories the authors released', async () => {
  const preset = await readPreset('sequential-light-code');
  assert.deepEqual(reposOf(preset).sort(), [CRITIC, OUTER, PLANNER, SOLVER].sort());
  for (const source of Object.values(preset.models)) {
    assert.ok('repo' in source);
    assert.ok(source.files?.includes('*.jinja'), `${source.repo} must fetch chat_template.jinja`);
  }
});

test('sequential-light-code is pulled from a hub in the released layout and solves with 3 rounds of latent hand-offs', async () => {
  const source = tempDir();
  const release = await writeRelease(source, 'sequential-light-code', specs);
  hub = await FakeHub.start({ lifetimeMs: 120_000, repos: hubRepos(release) });
  const modelsDirectory = tempDir();
  assert.equal(await runModelsCommand(['pull', 'sequential-light-code', '--models-dir', modelsDirectory, '--endpoint', hub.endpoint], quiet), 0);
  for (const repo of AGENT_REPOS) {
    const folder = join(modelsDirectory, ...repo.split('/'));
    assert.ok(statSync(join(folder, 'chat_template.jinja')).isFile(), `${repo}: chat_template.jinja pulled`);
    assert.throws(() => statSync(join(folder, 'README.md')), `${repo}: the model card is not needed`);
  }

  const team = await loadTeam('sequential-light-code', { device: 'cpu', modelsDirectory, cacheDirectory });
  try {
    assert.deepEqual(team.agents.map((a) => a.role), ['planner', 'critic', 'solver']);
    const events: SolveEvent[] = [];
    const result = await team.solve({ task: 'Write a function named is_even(n).', language: 'python', mode: 'latent', rounds: 3, latentSteps: 4, maxNewTokens: 6, temperature: 0.2, topP: 0.95, seed: 1 }, (e) => events.push(e));
    assert.equal(result.rounds, 3);
    const handoffs = events.filter((e) => e.type === 'handoff');
    // Rounds 1-2: planner->critic, critic->solver, solver->planner; round 3: the first two.
    assert.deepEqual(handoffs.map((h) => `${h.from}->${h.to}`), [
      'planner->critic', 'critic->solver', 'solver->planner',
      'planner->critic', 'critic->solver', 'solver->planner',
      'planner->critic', 'critic->solver',
    ]);
    assert.equal(result.metrics.latentSteps, 8 * 4);
  } finally {
    await team.dispose();
  }
});

test('an outer link released for other models is refused, naming the file and the widths', async () => {
  const modelsDirectory = tempDir();
  await writeRelease(modelsDirectory, 'sequential-light-code', specs, { outerInDim: { outer_12: 128 } });
  await assert.rejects(
    loadTeam('sequential-light-code', { device: 'cpu', modelsDirectory, cacheDirectory }),
    (e: unknown) => e instanceof UserError && e.code === 'link-mismatch' && /outer_12\.pt/.test(e.message) && /hidden 64/.test(e.message),
  );
});

test('a released agent without any chat template is refused, naming where one was looked for', async () => {
  const modelsDirectory = tempDir();
  await writeRelease(modelsDirectory, 'sequential-light-code', specs);
  rmSync(join(modelsDirectory, ...CRITIC.split('/'), 'chat_template.jinja'));
  await assert.rejects(
    loadTeam('sequential-light-code', { device: 'cpu', modelsDirectory, cacheDirectory }),
    (e: unknown) => e instanceof UserError && e.code === 'model-invalid' && /Critic-Llama3\.2-1B has no chat template/.test(e.message) && /chat_template\.jinja/.test(e.message),
  );
});

test('a team whose models are not downloaded says how to get them', async () => {
  await assert.rejects(
    loadTeam('sequential-light-code', { device: 'cpu', modelsDirectory: tempDir(), cacheDirectory }),
    (e: unknown) => e instanceof UserError && e.code === 'model-missing' && /models pull sequential-light-code/.test(e.action ?? ''),
  );
});

test('released teams this version cannot run are refused before anything is read, naming what they need', async () => {
  await assert.rejects(
    loadTeam('deliberation', { device: 'cpu', modelsDirectory: tempDir(), cacheDirectory }),
    (e: unknown) => e instanceof UserError && e.code === 'unsupported' && /tool-calling final round/.test(e.message),
  );
});
