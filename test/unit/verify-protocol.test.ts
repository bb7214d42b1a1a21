// The check events and verify parameters in the protocol (validated like every other message),
// the panel's view model folding them, and the repair feedback's budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SolveEvent } from '../../src/protocol/events';
import { validateSolveEvent, validateSolveParams } from '../../src/protocol/validate';
import { checkHostMessage, type HostMessage, type SessionInfo } from '../../src/protocol/webview';
import { chooseCandidate, repairFeedback } from '../../src/engine/verify/loop';
import type { Check } from '../../src/engine/verify/checks';
import { emptyModel, reduce, finalCode } from '../../webview/model';

const isolation = { network: true, writes: 'refused' as const, note: 'Checks run with no network.' };
const EVENTS: SolveEvent[] = [
  { type: 'check-plan', checks: [{ id: 'command', kind: 'command', label: 'pytest -q' }], maxRepairs: 1, isolation },
  { type: 'solve-start', task: 't', language: 'python', mode: 'latent', style: 'sequential', rounds: 1, latentSteps: 2 },
  { type: 'round-start', round: 1, rounds: 1 },
  { type: 'agent-start', round: 1, agent: 'solver', role: 'solver', action: 'decode' },
  { type: 'token', round: 1, agent: 'solver', text: '```python\nx = 1\n```' },
  { type: 'answer', text: '```python\nx = 1\n```', code: 'x = 1', language: 'python' },
  { type: 'check-start', candidate: 1, check: 'command' },
  { type: 'check-end', candidate: 1, check: 'command', status: 'failed', ms: 120, firstFailure: 'E assert 1 == 2', output: 'E assert 1 == 2\n1 failed' },
  { type: 'repair-round', repair: 1, maxRepairs: 1, candidate: 2, afterRound: 1, failing: 1, feedback: 'The previous code failed 1 of 1 check.' },
  { type: 'round-start', round: 2, rounds: 2 },
  { type: 'agent-start', round: 2, agent: 'solver', role: 'solver', action: 'decode' },
  { type: 'token', round: 2, agent: 'solver', text: '```python\nx = 2\n```' },
  { type: 'answer', text: '```python\nx = 2\n```', code: 'x = 2', language: 'python' },
  { type: 'check-start', candidate: 2, check: 'command' },
  { type: 'check-end', candidate: 2, check: 'command', status: 'timed-out', ms: 30_000, firstFailure: 'the check ran past its time limit and was stopped', output: '' },
  { type: 'answer', text: '```python\nx = 1\n```', code: 'x = 1', language: 'python' },
  { type: 'candidate-chosen', candidate: 1, passed: 0, total: 1, reason: 'No candidate passed every check; candidate 1 passed the most (0 of 1).' },
];

test('check events are validated like the others', () => {
  for (const e of EVENTS) assert.ok(validateSolveEvent(e).ok, JSON.stringify(e));
  const bad = (e: unknown, issue: RegExp) => {
    const r = validateSolveEvent(e);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.message, issue);
  };
  bad({ type: 'check-end', candidate: 1, check: 'command', status: 'broken', ms: 1, output: '' }, /event\.status: expected one of "passed", "failed", "errored", "timed-out"/);
  bad({ type: 'check-start', candidate: 0, check: 'command' }, /event\.candidate: expected a whole number from 1 to 1000, got 0/);
  bad({ type: 'repair-round', repair: 1, maxRepairs: 1, candidate: 2, afterRound: 1, failing: 1, feedback: 'x', extra: true }, /event\.extra: is not a known field/);
  bad({ type: 'check-plan', checks: [{ id: 'c', kind: 'shell', label: 'x' }], maxRepairs: 1, isolation }, /event\.checks\[0\]\.kind/);
  bad({ type: 'check-plan', checks: [], maxRepairs: 1, isolation: { network: 'yes', writes: 'refused', note: '' } }, /event\.isolation\.network: expected true or false/);
});

test('solve params carry verify, bounded', () => {
  const base = { id: 's1', task: 't', language: 'python', team: 'demo-sequential', mode: 'latent', rounds: 1, latentSteps: 1, maxNewTokens: 8, temperature: 0, topP: 1, device: 'cpu' };
  const verify = { command: 'pytest -q', findChecks: true, root: '/w', file: { path: '/w/a.py', text: 'x', start: 0, end: 1 }, selection: 'x', maxRepairs: 2, timeoutMs: 5000 };
  assert.ok(validateSolveParams({ ...base, verify }).ok);
  const r = validateSolveParams({ ...base, verify: { ...verify, maxRepairs: 11, shell: true } });
  assert.equal(r.ok, false);
  assert.deepEqual(r.ok ? [] : r.issues, ['params.verify.maxRepairs: expected a whole number from 0 to 10, got 11', 'params.verify.shell: is not a known field']);
});

test('the panel model keeps each candidate, the repair between rounds and the choice', () => {
  const session: SessionInfo = { id: 's1', task: 't', language: 'python', team: 'demo', device: 'cpu', mode: 'latent', rounds: 1, latentSteps: 2, hasSelection: true, defaultAction: 'insertAtCursor', startedAt: 0 };
  let m = reduce(emptyModel(), { type: 'session', session }, 0);
  const phases: string[] = [];
  EVENTS.forEach((event, i) => {
    const msg: HostMessage = { type: 'event', id: 's1', seq: i + 1, event };
    assert.ok(checkHostMessage(msg).ok);
    m = reduce(m, msg, i);
    phases.push(m.phase);
    if (event.type === 'repair-round') assert.equal(m.output, '', 'the next candidate streams from scratch');
  });
  m = reduce(m, { type: 'end', id: 's1', outcome: 'done' }, 100);
  assert.ok(phases.includes('checking'));
  const c = m.checks!;
  assert.deepEqual(c.plan.map((p) => p.label), ['pytest -q']);
  assert.deepEqual(c.candidates.map((x) => [x.candidate, x.firstRound, x.results.map((r) => r.status)]), [[1, 1, ['failed']], [2, 2, ['timed-out']]]);
  assert.deepEqual(c.repairs.map((r) => [r.repair, r.afterRound]), [[1, 1]]);
  assert.equal(c.chosen?.candidate, 1);
  assert.equal(finalCode(m), 'x = 1', 'the chosen candidate is the code the panel offers');
  assert.deepEqual(JSON.parse(JSON.stringify(m)), m, 'the model stays plain JSON');
});

test('repair feedback names each failing check and stays within its budget', () => {
  const checks: Check[] = [
    { id: 'doctest', kind: 'doctest', language: 'python', label: '2 doctest examples', source: '>>> f()\n1' },
    { id: 'assert', kind: 'assert', language: 'python', label: '1 assert line', lines: ['assert f() == 1'] },
  ];
  const long = `${'noise line\n'.repeat(500)}AssertionError: the real reason`;
  const text = repairFeedback(checks, [
    { check: 'doctest', status: 'failed', ms: 1, firstFailure: 'f() | Expected: | 1 | Got: | 2', output: long },
    { check: 'assert', status: 'timed-out', ms: 1, firstFailure: 'the check ran past its time limit and was stopped', output: '' },
  ]);
  assert.ok(text.length <= 1500, `${text.length} characters`);
  assert.match(text, /^The previous code failed 2 of 2 checks\./);
  assert.match(text, /Check 2 doctest examples: failed: f\(\) \| Expected: \| 1 \| Got: \| 2/);
  assert.match(text, /Check 1 assert line: timed-out: the check ran past its time limit/);
  assert.match(text, /AssertionError: the real reason/, 'the end of the output, where the reason is, is kept');
});

test('the answer is the candidate that passed most checks, then the latest', () => {
  const c = (candidate: number, passed: number) => ({ candidate, passed, results: [] });
  assert.deepEqual(chooseCandidate([c(1, 1), c(2, 3)], 3), { chosen: 2, reason: 'Candidate 2 passed all 3 checks (after 1 repair).' });
  assert.deepEqual(chooseCandidate([c(1, 2), c(2, 1), c(3, 0)], 3), { chosen: 1, reason: 'No candidate passed every check; candidate 1 passed the most (2 of 3).' });
  assert.deepEqual(chooseCandidate([c(1, 1), c(2, 1)], 2), { chosen: 2, reason: 'No candidate passed every check; candidate 2 passed the most (1 of 2) and is the latest of those.' });
  assert.deepEqual(chooseCandidate([c(1, 1)], 1), { chosen: 1, reason: 'Candidate 1 passed the check.' });
  assert.equal(chooseCandidate([c(1, 0)], 0).reason, 'No checks were found for this task, so the answer is unchecked.');
});
