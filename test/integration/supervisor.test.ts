// The supervisor with the real runtime process (spawned from source through tsx): solves, the
// queue, cancel, a runtime killed with SIGKILL mid-solve, and dispose. The crash loop and malformed
// output use test/support/misbehaving-runtime.ts, a real child process that misbehaves on purpose.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { SolveEvent } from '../../src/protocol/events';
import type { SolveParams } from '../../src/protocol/rpc';
import { RuntimeError, RuntimeSupervisor, type RuntimeLogEntry, type RuntimeState, type SupervisorOptions } from '../../src/runtime/client/supervisor';
import { REPO, tempDir } from '../support/paths';

const HOME = tempDir('rmas-supervisor-');
const ENV = { RECURSIVEMAS_MODELS: join(HOME, 'models'), RECURSIVEMAS_CACHE: join(HOME, 'cache') };

const supervisors: RuntimeSupervisor[] = [];
function supervisor(options: SupervisorOptions = {}): RuntimeSupervisor {
  const s = new RuntimeSupervisor({ clientName: 'supervisor-test', env: ENV, ...options });
  supervisors.push(s);
  return s;
}
after(async () => {
  await Promise.all(supervisors.map((s) => s.dispose()));
});

function misbehaving(mode: string, options: SupervisorOptions = {}): RuntimeSupervisor {
  return supervisor({ runtimeEntry: join(REPO, 'test/support/misbehaving-runtime.ts'), cwd: REPO, env: { ...ENV, MISBEHAVE: mode }, ...options });
}

function params(id: string, overrides: Partial<SolveParams> = {}): SolveParams {
  return {
    id,
    task: 'Write a function add(a, b) that returns the sum.',
    language: 'python',
    team: 'demo-sequential',
    mode: 'latent',
    rounds: 2,
    latentSteps: 4,
    maxNewTokens: 16,
    temperature: 0.2,
    topP: 0.95,
    seed: 3,
    device: 'auto',
    ...overrides,
  };
}

function pidGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// One real runtime shared by the tests that do not kill it.
const shared = supervisor();
const states: RuntimeState[] = [];
shared.onStateChange((c) => states.push(c.state));

test('starts the runtime, solves on it, and reports its states', async () => {
  const info = await shared.start();
  assert.equal(info.ortVersion, '1.30.0');
  assert.ok(info.providers.some((p) => p.name === 'cpu' && p.available));
  const seen: SolveEvent[] = [];
  const tagged: string[] = [];
  const sub = shared.onEvent((n) => tagged.push(n.id));
  const result = await shared.solve(params('first'), (e) => seen.push(e));
  sub.dispose();
  assert.equal(result.rounds, 2);
  assert.equal(result.device, 'cpu');
  assert.equal(seen.at(-1)?.type, 'metrics');
  assert.equal(seen.filter((e) => e.type === 'round-start').length, 2);
  assert.ok(tagged.length === seen.length && tagged.every((id) => id === 'first'));
  assert.deepEqual(states, ['starting', 'ready', 'busy', 'ready']);
  assert.equal(shared.state, 'ready');
  const ping = await shared.ping();
  assert.equal(ping.team, 'demo-sequential');
});

test('two solves submitted at once run one after the other', async () => {
  const order: string[] = [];
  const record = (id: string) => (e: SolveEvent) => order.push(`${id}:${e.type}`);
  const [a, b] = await Promise.all([
    shared.solve(params('queued-a', { seed: 1 }), record('a')),
    shared.solve(params('queued-b', { seed: 2 }), record('b')),
  ]);
  assert.equal(a.rounds, 2);
  assert.equal(b.rounds, 2);
  const lastA = order.lastIndexOf('a:metrics');
  const firstB = order.findIndex((x) => x.startsWith('b:'));
  assert.ok(lastA >= 0 && firstB > lastA, `b started before a finished: ${order.slice(Math.max(0, firstB - 3), firstB + 3).join(', ')}`);
  // b runs on the team a loaded: it says which team that is, then starts.
  assert.deepEqual(order.slice(firstB, firstB + 2), ['b:team-loaded', 'b:solve-start']);
});

test('cancel(id) stops a running solve within a model step and drops a queued one at once', async () => {
  let steps = 0;
  const running = shared.solve(params('to-cancel', { rounds: 16, latentSteps: 256 }), (e) => {
    if (e.type === 'latent-step') steps++;
  });
  const queued = shared.solve(params('queued-then-cancelled'));
  await until(() => steps >= 3, 30_000, 'latent steps');
  assert.equal(await shared.cancel('queued-then-cancelled'), true);
  await assert.rejects(queued, (e: Error) => e.name === 'CancelledError');
  const sent = performance.now();
  assert.equal(await shared.cancel('to-cancel'), true);
  await assert.rejects(running, (e: Error) => e.name === 'CancelledError');
  const ms = performance.now() - sent;
  assert.ok(ms < 1000, `cancel took ${ms.toFixed(0)} ms`);
  assert.equal(await shared.cancel('no-such-solve'), false);
  const next = await shared.solve(params('after-cancel'));
  assert.equal(next.rounds, 2);
});

test('kill -9 of the runtime mid-solve fails the request with its last stderr lines; the next solve runs on a new runtime', async () => {
  const s = supervisor({ restartDelayMs: 50 });
  await s.start();
  const firstPid = s.pid!;
  let steps = 0;
  const doomed = s.solve(params('doomed', { rounds: 16, latentSteps: 256 }), (e) => {
    if (e.type === 'latent-step') steps++;
  });
  await until(() => steps >= 2, 30_000, 'latent steps');
  process.kill(firstPid, 'SIGKILL');
  await assert.rejects(doomed, (e: Error) => {
    assert.ok(e instanceof RuntimeError, `${e.name}: ${e.message}`);
    assert.equal(e.reason, 'crashed');
    assert.match(e.message, /killed by SIGKILL while running solve/);
    // The runtime's own last words are quoted: it logged the solve it was running.
    assert.match(e.message, /solve doomed started \(team demo-sequential/);
    assert.ok(e.output.some((l) => l.includes('solve doomed started')));
    return true;
  });
  const result = await s.solve(params('after-crash'));
  assert.equal(result.rounds, 2);
  assert.notEqual(s.pid, firstPid);
  assert.ok(pidGone(firstPid));
});

test('a runtime that keeps crashing makes the supervisor give up and say why', async () => {
  const s = misbehaving('crash-at-start', { restartDelayMs: 50 });
  const changes: { state: RuntimeState; detail?: string }[] = [];
  s.onStateChange((c) => changes.push(c));
  const started = performance.now();
  await assert.rejects(s.start(), (e: Error) => {
    assert.ok(e instanceof RuntimeError);
    assert.equal(e.reason, 'gave-up');
    assert.match(e.message, /crashed 3 times within 60 s, so it is not restarted again/);
    assert.match(e.message, /exited with code 3 while starting/);
    assert.match(e.message, /the model cache is corrupt \(on purpose\)/);
    return true;
  });
  const ms = performance.now() - started;
  assert.equal(s.state, 'stopped');
  assert.deepEqual(
    changes.map((c) => c.state),
    ['starting', 'crashed', 'starting', 'crashed', 'starting', 'crashed', 'stopped'],
  );
  assert.match(changes.at(-1)!.detail!, /crashed 3 times/);
  // Later requests fail at once with the same explanation, without spawning again.
  await assert.rejects(s.solve(params('never')), /crashed 3 times/);
  assert.equal(s.pid, undefined);
  console.log(`gave up after 3 crashes in ${ms.toFixed(0)} ms`);
});

test('a runtime that cannot even be spawned is reported the same way, without unhandled errors', async () => {
  const s = supervisor({ execPath: join(HOME, 'no-such-node'), restartDelayMs: 10 });
  await assert.rejects(s.start(), (e: Error) => e instanceof RuntimeError && e.reason === 'gave-up' && /could not be started \(spawn .*ENOENT\)/.test(e.message));
  await assert.rejects(s.ping(), /crashed 3 times/);
});

test('malformed output from the runtime is dropped and logged; a malformed result fails only that request', async () => {
  const s = misbehaving('malformed');
  const logs: RuntimeLogEntry[] = [];
  s.onLog((l) => logs.push(l));
  const events: SolveEvent[] = [];
  await assert.rejects(
    s.solve(params('garbled'), (e) => events.push(e)),
    (e: Error) => e instanceof RuntimeError && e.reason === 'protocol' && /malformed result/.test(e.message) && /result\.answer/.test(e.message),
  );
  // Only the two well-formed events got through.
  assert.deepEqual(events.map((e) => e.type), ['round-start', 'round-end']);
  const warnings = logs.filter((l) => l.source === 'supervisor').map((l) => l.message).join('\n');
  assert.match(warnings, /not a protocol message/);
  assert.match(warnings, /dropped a malformed solve\/event.*event\.type/s);
  assert.match(warnings, /event\.step: expected a whole number/);
  assert.match(warnings, /dropped a malformed log notification/);
  // The runtime is still up and answers.
  assert.deepEqual(await s.ping(), { uptimeMs: 1, team: null, solves: [] });
  assert.equal(s.state, 'ready');
});

test('a message whose body never completes times out; the runtime is restarted and answers again', async () => {
  const s = misbehaving('stall-frame', { frameTimeoutMs: 300, restartDelayMs: 20 });
  const logs: RuntimeLogEntry[] = [];
  s.onLog((l) => logs.push(l));
  await s.start();
  const firstPid = s.pid!;
  const started = performance.now();
  await assert.rejects(
    s.ping(),
    (e: Error) => e instanceof RuntimeError && e.reason === 'crashed' && /stopped sending in the middle of a message/.test(e.message) && /announced 5000 bytes/.test(e.message),
  );
  const waited = performance.now() - started;
  assert.ok(waited >= 250 && waited < 5_000, `the stalled message was given up after ${waited.toFixed(0)} ms`);
  assert.ok(pidGone(firstPid));
  // Restarted on its own: a fresh process that answers initialize.
  await s.start();
  assert.notEqual(s.pid, firstPid);
  assert.equal(s.state, 'ready');
  assert.match(logs.map((l) => l.message).join('\n'), /announced 5000 bytes but only \d+ arrived/);
});

test('dispose stops the runtime, with SIGKILL when it ignores SIGTERM', async () => {
  const s = misbehaving('ignore-sigterm', { killTimeoutMs: 300 });
  await s.start();
  const pid = s.pid!;
  const started = performance.now();
  await s.dispose();
  assert.ok(performance.now() - started >= 250, 'dispose did not wait for the grace period');
  assert.ok(pidGone(pid));
  assert.equal(s.state, 'stopped');
  await assert.rejects(s.solve(params('late')), /was stopped/);

  const real = supervisor();
  await real.start();
  const realPid = real.pid!;
  await real.dispose();
  assert.ok(pidGone(realPid));
});

test('the supervisor runs the esbuild bundle of the runtime as well as the source', async () => {
  // Built like scripts/build.mjs builds dist/runtime.mjs, into a folder of our own (two levels
  // under the repository, as dist/ is one: presets are found through RECURSIVEMAS_PRESETS).
  mkdirSync(join(REPO, 'tmp'), { recursive: true });
  const dir = mkdtempSync(join(REPO, 'tmp', 'runtime-bundle-'));
  try {
    await build({
      entryPoints: [join(REPO, 'src/runtime/process/main.ts')],
      outfile: join(dir, 'runtime.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: ['onnxruntime-node', 'onnxruntime-common', 'node-llama-cpp'],
      banner: { js: "import { createRequire as __rmasCreateRequire } from 'node:module'; const require = __rmasCreateRequire(import.meta.url);" },
      logLevel: 'error',
    });
    const s = supervisor({ runtimeEntry: join(dir, 'runtime.mjs'), env: { ...ENV, RECURSIVEMAS_PRESETS: join(REPO, 'models') } });
    const info = await s.start();
    assert.equal(info.runtimeVersion, JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version);
    const result = await s.solve(params('bundled', { rounds: 1 }));
    assert.equal(result.rounds, 1);
    await s.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
