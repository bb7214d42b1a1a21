// The sequential-light-code preset exactly as released (agent repos with inner-link manifests and
// bf16 .pt adapters, an Outerlinks repo with outerlink_config.json), on small stand-in checkpoints
// of the same families, loaded offline from the models folder and solved end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, type SolveEvent } from '../../src/engine/api';
import { loadTeam } from '../../src/engine/chain/team';
import { tempDir } from '../support/paths';
import { tensor, writeTorchSave } from '../support/pt-writer';
import { writeTinyHfModel, type TinyModelSpec } from '../support/tiny-hf';

const modelsDirectory = tempDir();
const cacheDirectory = tempDir();

const agents: [string, TinyModelSpec][] = [
  ['RecursiveMAS/Sequential-Light-Planner-Qwen3-1.7B', { family: 'qwen3', hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 32, vocabSize: 400, seed: 1 }],
  ['RecursiveMAS/Sequential-Light-Critic-Llama-3.2-1B-Instruct', { family: 'llama', hiddenSize: 96, intermediateSize: 192, numLayers: 2, numHeads: 6, numKvHeads: 2, vocabSize: 400, seed: 2 }],
  ['RecursiveMAS/Sequential-Light-Solver-Qwen2.5-Math-1.5B-Instruct', { family: 'qwen2', hiddenSize: 80, intermediateSize: 160, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 400, seed: 3 }],
];

const values = (n: number, seed: number, scale: number, offset = 0) => Array.from({ length: n }, (_, i) => offset + scale * Math.sin(seed * 7.1 + i * 1.3));
const vec = (n: number, seed: number, offset = 0) => tensor('bf16', [n], values(n, seed, 0.1, offset));
const mat = (rows: number, cols: number, seed: number) => tensor('bf16', [rows, cols], values(rows * cols, seed, 1 / Math.sqrt(cols)));

function writeInner(folder: string, d: number, seed: number, file: string): void {
  writeTorchSave(join(folder, file), [
    ['pre_ln.weight', vec(d, seed, 1)], ['pre_ln.bias', vec(d, seed + 1)],
    ['proj1.weight', mat(d, d, seed + 2)], ['proj1.bias', vec(d, seed + 3)],
    ['proj2.weight', mat(d, d, seed + 4)], ['proj2.bias', vec(d, seed + 5)],
    ['post_ln.weight', vec(d, seed + 6, 1)], ['post_ln.bias', vec(d, seed + 7)],
  ]);
}

function writeOuter(folder: string, dIn: number, dOut: number, seed: number, file: string): void {
  writeTorchSave(join(folder, file), [
    ['ln_source.weight', vec(dIn, seed, 1)], ['ln_source.bias', vec(dIn, seed + 1)],
    ['proj1.weight', mat(2 * dOut, dIn, seed + 2)], ['proj1.bias', vec(2 * dOut, seed + 3)],
    ['proj2.weight', mat(dOut, 2 * dOut, seed + 4)], ['proj2.bias', vec(dOut, seed + 5)],
    ['residual_proj.weight', mat(dOut, dIn, seed + 6)], ['residual_proj.bias', vec(dOut, seed + 7)],
    ['ln_target.weight', vec(dOut, seed + 8, 1)], ['ln_target.bias', vec(dOut, seed + 9)],
  ]);
}

async function writeRelease(outerInDimOf12?: number): Promise<void> {
  for (const [i, [repo, spec]] of agents.entries()) {
    const folder = join(modelsDirectory, ...repo.split('/'));
    await writeTinyHfModel(folder, spec);
    writeFileSync(join(folder, 'adapter_config.json'), JSON.stringify({ adapter_type: 'ln_res_adapter', hidden_dim: spec.hiddenSize }));
    writeFileSync(join(folder, 'innerlink_config.json'), JSON.stringify({ tasks: { math: { 'adapter.pt': 'adapter(math).pt' }, code: { 'adapter.pt': 'adapter(code).pt' } } }));
    writeInner(folder, spec.hiddenSize, 10 * i, 'adapter(code).pt');
    writeInner(folder, spec.hiddenSize, 10 * i + 5, 'adapter(math).pt');
  }
  const outer = join(modelsDirectory, 'RecursiveMAS', 'Sequential-Light-Outerlinks');
  const [p, c, s] = agents.map(([, spec]) => spec.hiddenSize) as [number, number, number];
  const entries = [
    { legacy_key: 'outer_12', filename: 'code/outer_12.pt', adapter_type: 'outer_ln_res_adapter', in_dim: outerInDimOf12 ?? p, out_dim: c },
    { legacy_key: 'outer_23', filename: 'code/outer_23.pt', adapter_type: 'outer_ln_res_adapter', in_dim: c, out_dim: s },
    { legacy_key: 'outer_31', filename: 'code/outer_31.pt', adapter_type: 'outer_ln_res_adapter', in_dim: s, out_dim: p },
  ];
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(outer, 'code'), { recursive: true });
  writeFileSync(join(outer, 'outerlink_config.json'), JSON.stringify({ tasks: { code: { adapters: entries }, math: { adapters: [] } } }));
  writeOuter(outer, outerInDimOf12 ?? p, c, 100, 'code/outer_12.pt');
  writeOuter(outer, c, s, 200, 'code/outer_23.pt');
  writeOuter(outer, s, p, 300, 'code/outer_31.pt');
}

test('sequential-light-code loads the released layout offline and solves with 3 rounds of latent hand-offs', async () => {
  await writeRelease();
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
  await writeRelease(128);
  await assert.rejects(
    loadTeam('sequential-light-code', { device: 'cpu', modelsDirectory, cacheDirectory }),
    (e: unknown) => e instanceof UserError && e.code === 'link-mismatch' && /outer_12\.pt/.test(e.message) && /hidden 64/.test(e.message),
  );
});

test('a team whose models are not downloaded says how to get them', async () => {
  await assert.rejects(
    loadTeam('sequential-light-code', { device: 'cpu', modelsDirectory: tempDir(), cacheDirectory }),
    (e: unknown) => e instanceof UserError && e.code === 'model-missing' && /models pull sequential-light-code/.test(e.action ?? ''),
  );
});
