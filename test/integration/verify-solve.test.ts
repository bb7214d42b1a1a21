// Checks in the loop, end to end: `recursivemas solve --verify` on the generated demo team through
// the real supervisor and runtime process. Its random weights write no working code, so the
// configured check fails and the repair rounds run; the user's file is never written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSolveCommand } from '../../src/cli/solve';
import type { SolveEvent, Verification } from '../../src/protocol/events';
import { validateSolveEvent, validateSolveResult } from '../../src/protocol/validate';
import { tempDir } from '../support/paths';

const HOME = tempDir('rmas-verify-');
const ENV = { RECURSIVEMAS_MODELS: join(HOME, 'models'), RECURSIVEMAS_CACHE: join(HOME, 'cache') };
const DEMO = ['--team', 'demo-sequential', '--rounds', '1', '--latent-steps', '2', '--max-new-tokens', '12', '--seed', '5'];

test('solve --verify: the check fails on each candidate, two repair rounds run, the file is untouched', async () => {
  const project = tempDir('rmas-verify-project-');
  const file = join(project, 'calc.py');
  const original = 'def add(a, b):\n    raise NotImplementedError\n';
  writeFileSync(file, original);
  writeFileSync(join(project, 'test_calc.py'), 'from calc import add\nassert add(2, 3) == 5, "add(2, 3) should be 5"\n');
  let out = '';
  let err = '';
  const io = { stdout: (t: string) => void (out += t), stdoutBytes: (b: Uint8Array) => void (out += Buffer.from(b).toString()), stderr: (t: string) => void (err += t), isTTY: false };
  const cwd = process.cwd();
  process.chdir(project);
  let code: number;
  try {
    code = await runSolveCommand(['Implement add(a, b) so that the tests pass.', '--file', file, '--verify', 'python3 test_calc.py', ...DEMO, '--json'], io, { supervisor: { env: ENV } });
  } finally {
    process.chdir(cwd);
  }
  assert.equal(code, 0, err);
  const lines = out.trimEnd().split('\n').map((l) => JSON.parse(l));
  const result = lines.pop();
  const events = lines as SolveEvent[];
  for (const e of events) assert.ok(validateSolveEvent(e).ok, JSON.stringify(e));
  // The CLI prints the result without its language; the rest is the runtime's validated result.
  const checked = validateSolveResult({ ...result, language: 'python' });
  assert.ok(checked.ok, checked.ok ? '' : checked.message);

  const plan = events.find((e) => e.type === 'check-plan');
  assert.ok(plan?.type === 'check-plan');
  assert.deepEqual(plan.checks, [{ id: 'command', kind: 'command', label: 'python3 test_calc.py' }]);
  assert.equal(plan.maxRepairs, 2);
  assert.ok(events.indexOf(plan) < events.findIndex((e) => e.type === 'solve-start'), 'the plan comes before the team runs');

  const ends = events.filter((e): e is Extract<SolveEvent, { type: 'check-end' }> => e.type === 'check-end');
  assert.deepEqual(ends.map((e) => [e.candidate, e.status]), [[1, 'failed'], [2, 'failed'], [3, 'failed']]);
  for (const e of ends) assert.ok(e.firstFailure, 'each failure names what failed');
  const repairs = events.filter((e): e is Extract<SolveEvent, { type: 'repair-round' }> => e.type === 'repair-round');
  assert.deepEqual(repairs.map((e) => [e.repair, e.candidate, e.afterRound]), [[1, 2, 1], [2, 3, 2]]);
  assert.ok(repairs.every((e) => e.feedback.length <= 1500 && e.feedback.includes('python3 test_calc.py: failed')));
  // Each candidate's round follows the previous one's in one timeline.
  assert.deepEqual(events.filter((e) => e.type === 'round-start').map((e) => e.type === 'round-start' && e.round), [1, 2, 3]);
  // The feedback reaches the prompts: the planner of a repair round reads more than the first one did.
  const plannerPrompt = (round: number) => events.find((e) => e.type === 'agent-end' && e.round === round)!;
  const first = plannerPrompt(1);
  const repaired = plannerPrompt(2);
  assert.ok(first.type === 'agent-end' && repaired.type === 'agent-end' && repaired.promptTokens > first.promptTokens, `prompt positions ${JSON.stringify([first, repaired])}`);

  const chosen = events.find((e) => e.type === 'candidate-chosen');
  assert.ok(chosen?.type === 'candidate-chosen');
  assert.equal(chosen.candidate, 3, 'all failed alike: the latest is kept');
  assert.match(chosen.reason, /No candidate passed every check; candidate 3 passed the most \(0 of 1\) and is the latest of those/);
  const v = result.verification as Verification;
  assert.equal(v.candidates.length, 3);
  assert.equal(v.chosen, 3);
  assert.equal(result.rounds, 3);
  assert.equal(readFileSync(file, 'utf8'), original, "the user's file is never written");
});

test('solve --verify usage: an empty command and --max-repairs alone are refused with exit 2', async () => {
  for (const [argv, message] of [
    [['task', '--verify', ' '], /--verify needs a test command, e.g. --verify "pytest -q", or --verify auto\./],
    [['task', '--max-repairs', '1'], /--max-repairs needs --verify "<command>" \(or --verify auto\)\./],
    [['task', '--verify', 'auto', '--max-repairs', '11'], /--max-repairs must be a whole number from 0 to 10, got "11"\./],
  ] as const) {
    let err = '';
    const io = { stdout: () => {}, stdoutBytes: () => {}, stderr: (t: string) => void (err += t), isTTY: false };
    assert.equal(await runSolveCommand([...argv, '--team', 'demo-sequential'], io, { supervisor: { env: ENV } }), 2);
    assert.match(err, message);
  }
});
