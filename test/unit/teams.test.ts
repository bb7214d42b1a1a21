// The teams the extension offers come from the engine's own preset parser: the shipped presets
// are exactly the engine's, with the repositories the engine would fetch; a broken preset file is
// left out; a repository used whole by a link is fetched whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listPresets } from '../../src/engine/host';
import { listTeams } from '../../src/extension/teams';
import { REPO } from '../support/paths';

const MODELS = join(REPO, 'models');

test('the shipped presets: the same teams and repositories as the engine lists, demo teams last', async () => {
  const teams = await listTeams(MODELS);
  const presets = await listPresets();
  assert.deepEqual(teams.map((t) => t.name).sort(), presets.map((p) => p.name).sort());
  for (const t of teams) {
    const preset = presets.find((p) => p.name === t.name);
    assert.deepEqual(t.repos.map((r) => r.repo).sort(), [...(preset?.repos ?? [])].sort(), t.name);
    assert.equal(t.demo, preset?.demo, t.name);
    assert.ok(t.agents.length >= 2, t.name);
  }
  const firstDemo = teams.findIndex((t) => t.demo);
  assert.ok(firstDemo > 0 && teams.slice(firstDemo).every((t) => t.demo), 'real teams first, then demo teams');
});

test('a broken preset is left out; file globs merge per repository, and a link in a repository takes all of it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rmas-teams-'));
  try {
    const preset = JSON.parse(readFileSync(join(MODELS, 'sequential-light-code.json'), 'utf8'));
    const planner = preset.models.planner.repo;
    const solver = preset.models.solver.repo;
    preset.name = 'shared-repos';
    preset.models.critic = { repo: planner, files: ['*.json', 'critic/*.safetensors'] };
    for (const link of Object.values<{ repo: string }>(preset.outerLinks)) link.repo = solver;
    writeFileSync(join(dir, 'shared-repos.json'), JSON.stringify(preset));
    writeFileSync(join(dir, 'broken.json'), '{ "name": "broken", ');
    writeFileSync(join(dir, 'not-a-team.json'), JSON.stringify({ name: 'not-a-team', agents: [] }));
    writeFileSync(join(dir, 'notes.txt'), 'not a preset');

    const teams = await listTeams(dir);
    assert.deepEqual(teams.map((t) => t.name), ['shared-repos']);
    const repos = teams[0]?.repos ?? [];
    assert.deepEqual(repos.map((r) => r.repo), [planner, solver]);
    assert.deepEqual(repos[0]?.files, ['*.json', '*.jinja', '*.safetensors', '*.pt', 'critic/*.safetensors']);
    assert.equal(repos[1]?.files, undefined, 'the outer links live in the solver repository, so all of it is fetched');
    assert.deepEqual(teams[0]?.agents.map((a) => `${a.name}:${a.role}`), ['planner:planner', 'critic:critic', 'solver:solver']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
