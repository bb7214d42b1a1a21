// The protocol validators: every message shape accepts what the contract allows and names every
// bad field (by path) in what it refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SolveEvent, SolveMetrics } from '../../src/protocol/events';
import {
  expectValid,
  LIMITS,
  ProtocolError,
  validateCancelParams,
  validateInitializeParams,
  validateInitializeResult,
  validateLoadTeamParams,
  validateLoadTeamResult,
  validateLogNotification,
  validateNoParams,
  validatePingResult,
  validateRpcErrorData,
  validateSolveEvent,
  validateSolveEventNotification,
  validateSolveParams,
  validateSolveResult,
  type Validation,
} from '../../src/protocol/validate';

function issues<T>(v: Validation<T>): string[] {
  assert.equal(v.ok, false, 'expected the message to be refused');
  return v.ok ? [] : v.issues;
}

function accepted<T>(v: Validation<T>): void {
  assert.ok(v.ok, v.ok ? '' : v.message);
}

const metrics: SolveMetrics = {
  wallMs: 12.5,
  stages: [{ round: 1, agent: 'planner', kind: 'latent', ms: 3 }],
  promptTokens: 100,
  latentSteps: 16,
  textTokens: 20,
  device: 'cpu',
  precision: 'int4',
};

const everyEvent: SolveEvent[] = [
  { type: 'team-loading', team: 't', model: 'm', index: 0, count: 3 },
  { type: 'team-loaded', team: 't', agents: [{ name: 'a', role: 'planner', model: 'm' }], device: 'webgpu', precision: 'fp16', ms: 10 },
  { type: 'solve-start', task: 'do it', language: 'python', mode: 'latent', style: 'sequential', rounds: 3, latentSteps: 16 },
  { type: 'round-start', round: 1, rounds: 3 },
  { type: 'round-end', round: 1, ms: 4 },
  { type: 'agent-start', round: 1, agent: 'a', role: 'planner', action: 'decode' },
  { type: 'latent-step', round: 1, agent: 'a', step: 1, steps: 16 },
  { type: 'agent-end', round: 1, agent: 'a', ms: 1, promptTokens: 5, latentSteps: 16, textTokens: 0 },
  { type: 'handoff', round: 1, from: 'a', to: 'b', vectors: 16, meanNorm: 1.5, maxNorm: 2 },
  { type: 'handoff', round: 1, from: 'a', to: 'b', vectors: 0, meanNorm: 0, maxNorm: 0, text: 'a message' },
  { type: 'token', round: 3, agent: 'c', text: 'def' },
  { type: 'retry', reason: 'no code block' },
  { type: 'answer', text: '```python\npass\n```', code: 'pass', language: 'python' },
  { type: 'answer', text: 'no code', code: null, language: 'python' },
  { type: 'metrics', metrics },
  { type: 'warning', message: 'careful' },
];

test('every solve event of the contract is accepted, alone and in a notification', () => {
  for (const event of everyEvent) {
    accepted(validateSolveEvent(event));
    accepted(validateSolveEventNotification({ id: 'solve-1', event }));
  }
});

test('a malformed event names each bad field by its path', () => {
  assert.deepEqual(issues(validateSolveEvent({ type: 'latent-step', round: 1, agent: '', step: 'one', steps: -2 })), [
    'event.agent: must not be empty',
    'event.step: expected a whole number of at least 0, got "one"',
    'event.steps: expected a whole number of at least 0, got -2',
  ]);
  assert.deepEqual(issues(validateSolveEvent({ type: 'no-such' })), [
    'event.type: expected one of team-loading, team-loaded, solve-start, round-start, round-end, agent-start, latent-step, agent-end, handoff, token, retry, answer, metrics, warning, check-plan, check-start, check-end, repair-round, candidate-chosen, got "no-such"',
  ]);
  assert.deepEqual(issues(validateSolveEvent(null)), ['event: expected an object, got null']);
  const metricIssues = issues(validateSolveEvent({ type: 'metrics', metrics: { ...metrics, device: 'tpu', stages: [{ round: 1, agent: 'a', kind: 'nap', ms: 1 }] } }));
  assert.deepEqual(metricIssues, [
    'event.metrics.stages[0].kind: expected one of "latent", "text", "decode", "retry", got "nap"',
    'event.metrics.device: expected one of "cpu", "webgpu", "cuda", got "tpu"',
  ]);
  assert.deepEqual(issues(validateSolveEvent({ type: 'round-end', round: 1, ms: Number.NaN, extra: true })), [
    'event.ms: expected a number of at least 0, got NaN',
    'event.extra: is not a known field',
  ]);
  assert.deepEqual(issues(validateSolveEventNotification({ event: everyEvent[0] })), ['params.id: is required']);
});

const goodSolve = {
  id: 'abc',
  task: 'Write add(a, b).',
  language: 'python',
  team: 'demo-sequential',
  mode: 'latent',
  rounds: 3,
  latentSteps: 16,
  maxNewTokens: 512,
  temperature: 0.2,
  topP: 0.95,
  device: 'auto',
};

test('solve params: the contract passes, optional fields are checked when present', () => {
  accepted(validateSolveParams(goodSolve));
  accepted(validateSolveParams({ ...goodSolve, context: 'def f(): pass', seed: 42, threads: 2 }));
  accepted(validateSolveParams({ ...goodSolve, context: undefined }));
  assert.deepEqual(issues(validateSolveParams({ ...goodSolve, seed: -1, threads: 1.5 })), [
    `params.seed: expected a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, got -1`,
    `params.threads: expected a whole number from 0 to ${LIMITS.threads.max}, got 1.5`,
  ]);
});

test('solve params: every bad or missing field is listed, including limits and unknown fields', () => {
  const found = issues(
    validateSolveParams({
      id: '',
      task: '',
      language: 3,
      mode: 'telepathy',
      rounds: 0,
      latentSteps: LIMITS.latentSteps.max + 1,
      maxNewTokens: 1.5,
      temperature: -1,
      topP: 0,
      device: 'gpu',
      colour: 'red',
    }),
  );
  assert.deepEqual(found, [
    'params.id: must not be empty',
    'params.task: must not be empty',
    'params.language: expected a string, got 3',
    'params.team: is required',
    'params.mode: expected one of "latent", "text", "single", got "telepathy"',
    `params.rounds: expected a whole number from 1 to ${LIMITS.rounds.max}, got 0`,
    `params.latentSteps: expected a whole number from 1 to ${LIMITS.latentSteps.max}, got ${LIMITS.latentSteps.max + 1}`,
    `params.maxNewTokens: expected a whole number from 1 to ${LIMITS.maxNewTokens.max}, got 1.5`,
    'params.temperature: expected a number from 0 to 10, got -1',
    'params.topP: must be above 0, got 0',
    'params.device: expected one of "auto", "cpu", "webgpu", "cuda", got "gpu"',
    'params.colour: is not a known field',
  ]);
  const long = issues(validateSolveParams({ ...goodSolve, task: 'x'.repeat(LIMITS.taskChars + 1) }));
  assert.deepEqual(long, [`params.task: must have at most ${LIMITS.taskChars} characters, got ${LIMITS.taskChars + 1}`]);
  assert.deepEqual(issues(validateSolveParams([goodSolve])), ['params: expected an object, got an array of 1']);
});

test('expectValid returns the value or throws a ProtocolError listing the issues', () => {
  assert.equal(expectValid(validateCancelParams({ id: 'x' }), 'cancel').id, 'x');
  assert.throws(
    () => expectValid(validateCancelParams({ id: 7 }), 'solve/cancel params'),
    (e: unknown) => e instanceof ProtocolError && e.issues.length === 1 && e.message === 'invalid solve/cancel params:\n  params.id: expected a string, got 7',
  );
  const many = validateSolveParams({});
  assert.throws(() => expectValid(many, 'solve params'), /and \d+ more/);
});

test('the other requests, results and notifications', () => {
  accepted(validateInitializeParams({ clientName: 'vscode' }));
  accepted(validateInitializeParams({ clientName: 'cli', threads: 4, modelsDirectory: '/m' }));
  assert.deepEqual(issues(validateInitializeParams({ clientName: 'x', threads: -1 })), [`params.threads: expected a whole number from 0 to ${LIMITS.threads.max}, got -1`]);
  accepted(
    validateInitializeResult({
      runtimeVersion: '0.1.0',
      ortVersion: '1.30.0',
      node: 'v20',
      providers: [
        { name: 'cuda', available: false, reason: 'no libraries' },
        { name: 'cpu', available: true },
      ],
      limits: { maxRounds: 16, maxLatentSteps: 256, maxNewTokens: 32768 },
    }),
  );
  assert.deepEqual(issues(validateInitializeResult({ runtimeVersion: '1', ortVersion: '1', node: 'v', providers: [{ name: 'npu', available: 'yes' }], limits: {} })), [
    'result.providers[0].name: expected one of "cpu", "webgpu", "cuda", got "npu"',
    'result.providers[0].available: expected true or false, got "yes"',
    'result.limits.maxRounds: is required',
    'result.limits.maxLatentSteps: is required',
    'result.limits.maxNewTokens: is required',
  ]);
  accepted(validateLoadTeamParams({ team: 'demo', device: 'auto' }));
  accepted(validateLoadTeamParams({ id: 'l1', team: 'demo', device: 'cpu', threads: 2 }));
  assert.deepEqual(issues(validateLoadTeamParams({ team: 'demo' })), ['params.device: is required']);
  accepted(validateLoadTeamResult({ team: 'demo', device: 'cpu', precision: 'int4', agents: [{ name: 'a', role: 'r', model: 'm' }], ms: 3, warnings: [] }));
  accepted(validateSolveResult({ rounds: 3, answer: 'x', code: null, language: 'python', metrics, device: 'cpu', precision: 'int4' }));
  assert.deepEqual(issues(validateSolveResult({ rounds: 1, answer: 42, code: null })), [
    'result.answer: expected a string, got 42',
    'result.language: is required',
    'result.metrics: is required',
    'result.device: is required',
    'result.precision: is required',
  ]);
  accepted(validatePingResult({ uptimeMs: 5, team: null, solves: ['a'] }));
  accepted(validateLogNotification({ level: 'warn', message: 'm' }));
  assert.deepEqual(issues(validateLogNotification({ level: 'loud', message: 3 })), [
    'params.level: expected one of "trace", "debug", "info", "warn", "error", got "loud"',
    'params.message: expected a string, got 3',
  ]);
  accepted(validateRpcErrorData({ kind: 'user', code: 'model-missing', action: 'pull it' }));
  assert.deepEqual(issues(validateRpcErrorData({ kind: 'oops' })), ['error.data.kind: expected one of "cancelled", "user", "engine", "invalid", got "oops"']);
  for (const none of [undefined, null, {}, []]) accepted(validateNoParams(none));
  assert.deepEqual(issues(validateNoParams({ a: 1 })), ['params: this method takes no parameters, got an object']);
});
