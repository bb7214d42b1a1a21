// The README's first command, as a newcomer runs it after `npm ci` (which builds the bundles): a
// whole solve on a built-in team, offline. Also its --json form, checked event by event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, tempDir } from '../support/paths';

const env = { ...process.env, RECURSIVEMAS_CACHE: tempDir(), RECURSIVEMAS_MODELS: tempDir() };

// `npm ci` builds the bundles; rebuilding here (about a second) keeps a stale dist/ from a
// developer's earlier build out of the picture.
let built = false;
function ensureBuilt(): void {
  if (!built) execFileSync(process.execPath, ['scripts/build.mjs', '--only=cli,runtime'], { cwd: REPO, stdio: 'ignore' });
  built = true;
  assert.ok(existsSync(join(REPO, 'dist', 'cli.mjs')) && existsSync(join(REPO, 'dist', 'runtime.mjs')));
}

function readmeCommand(): string[] {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const line = readme.split('\n').find((l) => l.startsWith('npm ci && '));
  assert.ok(line, 'the README starts with `npm ci && <command>`');
  const command = line.slice('npm ci && '.length);
  // Split like a shell would for this simple line: words and one double-quoted task.
  return [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

test("the README's first command completes a whole solve offline", () => {
  ensureBuilt();
  const [program, ...args] = readmeCommand();
  assert.equal(program, './bin/recursivemas.js');
  const run = spawnSync(process.execPath, [join(REPO, 'bin', 'recursivemas.js'), ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 240_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, /demo team of generated \(random\) weights/);
  assert.match(run.stderr, /round 2\/2/);
  assert.ok(run.stdout.length > 0);
});

test('recursivemas solve --team demo-sequential --rounds 2 --json prints the events, then the result', () => {
  ensureBuilt();
  const run = spawnSync(process.execPath, [join(REPO, 'bin', 'recursivemas.js'), 'solve', '--team', 'demo-sequential', '--rounds', '2', '--json', 'Write a function that adds two numbers'], { cwd: REPO, env, encoding: 'utf8', timeout: 240_000 });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const result = lines.at(-1)!;
  assert.deepEqual(Object.keys(result).sort(), ['answer', 'code', 'device', 'metrics', 'precision', 'rounds']);
  assert.equal(result.rounds, 2);
  assert.equal(result.device, 'cpu');
  // `auto` on the CPU provider runs at int4.
  assert.equal(result.precision, 'int4');
  const events = lines.slice(0, -1).map((l) => (l.event ?? l) as { type: string; round?: number });
  assert.deepEqual(events.filter((e) => e.type === 'round-start').map((e) => e.round), [1, 2]);
  assert.ok(events.some((e) => e.type === 'handoff'));
  assert.ok(events.some((e) => e.type === 'answer'));
});
