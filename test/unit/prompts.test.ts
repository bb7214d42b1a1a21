// Role prompts have the structure the released links were trained on (the official prompts.py):
// where each role's slot sits relative to the problem, the generic system line, the interface line,
// and the released retry continuation; and prompt sets are data a user can replace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPreset } from '../../src/engine/chain/presets';
import { buildRoleMessages, parsePromptSet, retryContinuation, slotMarker, type Role } from '../../src/engine/chain/prompts';
import { UserError } from '../../src/engine/api';
import { REPO, tempDir } from '../support/paths';

const TASK = 'Write a function named is_prime(n) that tells whether n is prime.';

async function promptsOf(team: string) {
  return (await readPreset(team)).prompts;
}

function user(role: Role, senders: string[], set: Awaited<ReturnType<typeof promptsOf>>, extra: Record<string, string> = {}) {
  const [system, u] = buildRoleMessages(set, { role, task: TASK, language: 'python', senders, domain: 'math', ...extra });
  assert.equal(system!.role, 'system');
  assert.equal(system!.content, 'You are a helpful assistant.');
  return u!.content;
}

const before = (text: string, a: string, b: string) => {
  assert.ok(text.includes(a) && text.includes(b), `${JSON.stringify(a)} and ${JSON.stringify(b)} in ${JSON.stringify(text)}`);
  return text.indexOf(a) < text.indexOf(b);
};

test('sequential roles: solver slot before the problem, critic and later-round planner slots after it, no slot for a first-round planner', async () => {
  const set = await promptsOf('sequential-light-code');
  const slot = slotMarker(0);
  const planner1 = user('planner', [], set);
  assert.ok(!planner1.includes('<<<slot'), planner1);
  assert.ok(before(planner1, 'Implement only the function `is_prime`', TASK), 'interface line, then the problem');
  assert.ok(before(user('planner', ['solver'], set), TASK, slot), 'planner feedback after the problem');
  assert.ok(before(user('critic', ['planner'], set), TASK, slot), 'critic slot after the problem');
  assert.ok(before(user('solver', ['critic'], set), slot, TASK), 'solver slot before the problem');
  assert.match(user('solver', ['critic'], set), /```python/);
  assert.match(user('planner', [], set), /Do not write code/);
});

test('distillation and mixture: learner, summarizer and returning experts read their slots before the problem', async () => {
  const distill = await promptsOf('distillation-code');
  assert.ok(!user('expert', [], distill).includes('<<<slot'));
  assert.ok(before(user('expert', ['learner'], distill), slotMarker(0), TASK));
  assert.ok(before(user('learner', ['expert'], distill), slotMarker(0), TASK));
  const mixture = await promptsOf('mixture');
  const summarizer = user('summarizer', ['math expert', 'code expert', 'science expert'], mixture);
  assert.ok(before(summarizer, slotMarker(0), slotMarker(1)) && before(summarizer, slotMarker(1), slotMarker(2)) && before(summarizer, slotMarker(2), TASK));
  assert.ok(before(user('expert', ['summarizer'], mixture), slotMarker(0), TASK));
  assert.match(user('expert', [], mixture), /math expert/);
});

test('interface lines: a named function, a stdin/stdout program, or plain code', async () => {
  const set = await promptsOf('sequential-light-code');
  const [, program] = buildRoleMessages(set, { role: 'solver', task: 'Read two numbers from standard input and print their sum.', language: 'python', senders: [] });
  assert.match(program!.content, /reads its input from standard input/);
  const [, general] = buildRoleMessages(set, { role: 'solver', task: 'Add input validation.', language: 'typescript', senders: [] });
  assert.match(general!.content, /Write the solution in TypeScript\./);
});

test('check feedback reaches the planner after the problem and the solver before it; without it the prompt has no trace of it', async () => {
  const set = await promptsOf('sequential-light-code');
  const checkFeedback = 'AssertionError: is_prime(2) returned False';
  assert.ok(before(user('planner', [], set, { checkFeedback }), TASK, checkFeedback));
  assert.ok(before(user('solver', ['critic'], set, { checkFeedback }), checkFeedback, TASK));
  assert.ok(!user('solver', ['critic'], set).includes('checks'));
});

test('the retry continues the raw answer as plain text and ends inside an opened fence', async () => {
  const set = await promptsOf('sequential-light-code');
  const text = retryContinuation(set, 'I would loop over divisors.  \n', 'python');
  assert.ok(text.startsWith('I would loop over divisors.\n'));
  assert.ok(text.endsWith('```python\n'));
  assert.ok(!text.includes('<|im_start|>'));
});

test('prompt sets are data: a preset can name its own set beside it, and a broken set is refused clearly', async () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'prompts'));
  const base = JSON.parse(readFileSync(join(REPO, 'models', 'prompts', 'code.json'), 'utf8'));
  base.roles.solver.first = base.roles.solver.first.replace('You are the solver', 'Du bist der Löser');
  writeFileSync(join(dir, 'prompts', 'mine.json'), JSON.stringify(base));
  const preset = JSON.parse(readFileSync(join(REPO, 'models', 'demo-sequential.json'), 'utf8'));
  preset.prompts = 'mine';
  writeFileSync(join(dir, 'mine-team.json'), JSON.stringify(preset));
  const mine = await readPreset(join(dir, 'mine-team.json'));
  assert.match(buildRoleMessages(mine.prompts, { role: 'solver', task: TASK, language: 'python', senders: [] })[1]!.content, /Du bist der Löser/);

  const broken = { ...base, roles: { ...base.roles, critic: { later: 'no place for the plan' } } };
  assert.throws(() => parsePromptSet(broken, 'x.json'), (e: unknown) => e instanceof UserError && /roles\.critic\.later.*\{slots\}/.test(e.message));
  assert.throws(() => parsePromptSet({ ...base, problem: '{question}' }, 'x.json'), /unknown placeholder \{question\}/);
  preset.prompts = 'absent';
  writeFileSync(join(dir, 'absent-team.json'), JSON.stringify(preset));
  await assert.rejects(readPreset(join(dir, 'absent-team.json')), /no prompts\/absent\.json/);
});
