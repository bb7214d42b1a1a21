// The protocol's validator kit: a schema refuses what breaks it with one line per bad field, and
// the TypeScript type inferred from it is exactly what it accepts (checked by tsc: this file is in
// the type-check, and each `@ts-expect-error` fails the check if the line stops being an error).
// Also: the one LIMITS table behind the validators and the settings, and the typed request table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/engine/api';
import { manifestProperties } from '../../src/extension/settings';
import { USER_ERROR_CODES, validateRpcErrorData, type UserErrorCode } from '../../src/protocol/errors';
import { expectValid, int, nullable, object, oneOf, ProtocolError, str, tagged, validator, variant, type Infer } from '../../src/protocol/kit';
import { LIMITS } from '../../src/protocol/limits';
import { Notifications, Requests, type NotificationMap, type RequestMap, type SolveParams } from '../../src/protocol/rpc';
import { toResponseError } from '../../src/runtime/process/server';

/** True only when A and B are the same type (not merely assignable either way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const sameType = <T extends true>(proof: T) => proof;

const job = object({ name: str({ min: 1, max: 20 }), tries: int({ min: 1, max: 3 }), speed: oneOf(['fast', 'slow']) }, { note: nullable(str({ max: 100 })) });
type Job = Infer<typeof job>;
const validateJob = validator(job, 'job');

test('an object schema infers required, optional, closed-list and nullable fields', () => {
  assert.equal(sameType<Equal<Job, { name: string; tries: number; speed: 'fast' | 'slow'; note?: string | null }>>(true), true);
  const plain: Job = { name: 'a', tries: 2, speed: 'fast' };
  const noted: Job = { name: 'b', tries: 3, speed: 'slow', note: null };
  // @ts-expect-error `speed` is a closed list, so the compiler refuses what the validator refuses
  const wrongSpeed: Job = { name: 'c', tries: 1, speed: 'medium' };
  // @ts-expect-error a missing required field
  const noTries: Job = { name: 'd', speed: 'fast' };
  assert.deepEqual(validateJob(plain), { ok: true, value: plain });
  assert.deepEqual(validateJob(noted), { ok: true, value: noted });
  assert.equal(validateJob(wrongSpeed).ok, false);
  assert.equal(validateJob(noTries).ok, false);
});

test('a bad value is refused with one clear line per bad field, by path', () => {
  const r = validateJob({ name: '', tries: 4.5, speed: 'medium', note: 7, colour: 'red' });
  assert.equal(r.ok, false);
  assert.deepEqual(r.ok ? [] : r.issues, [
    'job.name: must not be empty',
    'job.tries: expected a whole number from 1 to 3, got 4.5',
    'job.speed: expected one of "fast", "slow", got "medium"',
    'job.note: expected a string, got 7',
    'job.colour: is not a known field',
  ]);
  assert.throws(
    () => expectValid(validateJob({ name: 'x', tries: 0, speed: 'fast' }), 'job params'),
    (e: unknown) => e instanceof ProtocolError && e.message === 'invalid job params:\n  job.tries: expected a whole number from 1 to 3, got 0',
  );
  const notAnObject = validateJob('job');
  assert.deepEqual(notAnObject.ok ? [] : notAnObject.issues, ['job: expected an object, got "job"']);
});

test('a tagged union narrows by `type` and names the variant a value failed', () => {
  const shape = tagged(variant('circle', { r: int({ min: 0 }) }), variant('square', { side: int({ min: 0 }) }, { label: str() }));
  type Shape = Infer<typeof shape>;
  assert.equal(sameType<Equal<Shape, { type: 'circle'; r: number } | { type: 'square'; side: number; label?: string }>>(true), true);
  const area = (s: Shape) => (s.type === 'circle' ? 3 * s.r * s.r : s.side * s.side);
  const check = validator(shape, 'shape');
  const circle = check({ type: 'circle', r: 2 });
  assert.ok(circle.ok);
  assert.equal(area(circle.value), 12);
  assert.deepEqual(shape.tags, ['circle', 'square']);
  const issues = (v: unknown) => {
    const r = check(v);
    return r.ok ? [] : r.issues;
  };
  assert.deepEqual(issues({ type: 'triangle' }), ['shape.type: expected one of circle, square, got "triangle"']);
  assert.deepEqual(issues({ type: 'circle', side: 2 }), ['shape.r: is required', 'shape.side: is not a known field']);
  assert.deepEqual(issues({ type: 'constructor' }), ['shape.type: expected one of circle, square, got "constructor"']);
});

test('solve params hold the LIMITS table: latentSteps 0 is refused, as the engine refuses it', () => {
  const good: SolveParams = { id: 's', task: 't', language: 'python', team: 'demo', mode: 'latent', rounds: 3, latentSteps: 16, maxNewTokens: 64, temperature: 0, topP: 1, device: 'cpu' };
  assert.ok(Requests.solve.params(good).ok);
  for (const key of ['rounds', 'latentSteps', 'maxNewTokens'] as const) {
    const { min, max } = LIMITS[key];
    assert.ok(Requests.solve.params({ ...good, [key]: min }).ok, `${key} = ${min}`);
    assert.ok(Requests.solve.params({ ...good, [key]: max }).ok, `${key} = ${max}`);
    const below = Requests.solve.params({ ...good, [key]: min - 1 });
    assert.deepEqual(below.ok ? [] : below.issues, [`params.${key}: expected a whole number from ${min} to ${max}, got ${min - 1}`]);
  }
  const zeroSteps = Requests.solve.params({ ...good, latentSteps: 0 });
  assert.equal(zeroSteps.ok ? '' : zeroSteps.message, 'invalid params:\n  params.latentSteps: expected a whole number from 1 to 256, got 0');
});

test('the settings offer a range inside what the protocol accepts, read from the same table', () => {
  const props = manifestProperties();
  for (const key of ['rounds', 'latentSteps', 'maxNewTokens', 'temperature', 'topP', 'threads'] as const) {
    const limit = LIMITS[key];
    const setting = props[`recursivemas.${key}`];
    assert.ok(setting, key);
    assert.equal(setting.minimum, limit.settings.min, key);
    assert.equal(setting.maximum, limit.settings.max, key);
    assert.ok(limit.settings.min >= limit.min && limit.settings.max <= limit.max, `${key}: the settings' range lies inside the protocol's`);
  }
  assert.equal(props['recursivemas.verify.maxRepairs']?.maximum, LIMITS.maxRepairs.settings.max);
  assert.deepEqual(props['recursivemas.device']?.enum, ['auto', 'cuda', 'webgpu', 'cpu']);
});

test('each request ties its method to its params and result types', () => {
  assert.equal(sameType<Equal<RequestMap['solve']['params'], SolveParams>>(true), true);
  assert.equal(sameType<Equal<RequestMap['ping']['params'], undefined>>(true), true);
  assert.equal(sameType<Equal<RequestMap['cancel']['result'], { cancelled: boolean }>>(true), true);
  assert.deepEqual(
    Object.values(Requests).map((r) => `${r.method}/${r.type.numberOfParams}`),
    ['initialize/1', 'team/load/1', 'team/unload/0', 'solve/1', 'solve/cancel/1', 'ping/0', 'shutdown/0'],
  );
  assert.deepEqual(Object.values(Notifications).map((n) => n.method), ['solve/event', 'log']);
  assert.equal(sameType<Equal<NotificationMap['log'], { level: 'trace' | 'debug' | 'info' | 'warn' | 'error'; message: string }>>(true), true);
  const r = Requests.cancel.params({ id: 42 });
  assert.equal(r.ok ? '' : r.message, 'invalid params:\n  params.id: expected a string, got 42');
});

test('user error codes: the engine raises only protocol codes, and the error data refuses others', () => {
  assert.equal(sameType<Equal<UserError['code'], UserErrorCode>>(true), true);
  for (const code of USER_ERROR_CODES) assert.ok(validateRpcErrorData({ kind: 'user', code, action: 'do this' }).ok, code);
  const r = validateRpcErrorData({ kind: 'user', code: 'disk-on-fire' });
  assert.match(r.ok ? '' : r.issues.join('\n'), /^error\.data\.code: expected one of "bad-input", "model-missing", .*got "disk-on-fire"$/);
  // @ts-expect-error a code outside the list does not compile
  const madeUp = new UserError('x', 'disk-on-fire');
  assert.deepEqual(toResponseError(madeUp).data, { kind: 'user' }, 'and should one get past the compiler, the runtime does not send it');
  assert.deepEqual(toResponseError(new UserError('gone', 'model-missing', 'pull it')).data, { kind: 'user', code: 'model-missing', action: 'pull it' });
});
