// The real runtime process, spoken to in raw JSON-RPC frames (no supervisor): a solve end to end on
// a generated demo team, team loading, cancel, malformed input, shutdown, and exit when the parent dies.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import type { SolveEvent } from '../../src/protocol/events';
import type { InitializeResult, LoadTeamResult, SolveEventNotification } from '../../src/protocol/rpc';
import { validateInitializeResult, validateLoadTeamResult, validateSolveEvent, validateSolveResult } from '../../src/protocol/validate';
import { ProviderChooser } from '../../src/runtime/process/providers';
import { serveRuntime } from '../../src/runtime/process/server';
import { REPO, tempDir } from '../support/paths';

const HOME = tempDir('rmas-runtime-');
const ENV = { ...process.env, RECURSIVEMAS_MODELS: join(HOME, 'models'), RECURSIVEMAS_CACHE: join(HOME, 'cache') };
const ENTRY = ['--import', 'tsx', 'src/runtime/process/main.ts'];
// One test runs the server in this process; its engine reads the cache folder from here.
process.env.RECURSIVEMAS_CACHE = ENV.RECURSIVEMAS_CACHE;

interface Message {
  jsonrpc: string;
  id?: number | string | null;
  method?: string;
  params?: any;
  result?: any;
  error?: { code: number; message: string; data?: any };
}

/** A runtime process with a hand-written frame parser, so the test does not trust our own reader. */
class RawRuntime {
  readonly messages: Message[] = [];
  stderr = '';
  private buffer = Buffer.alloc(0);
  private nextId = 1;
  private waiters: (() => void)[] = [];
  readonly exited: Promise<{ code: number | null; signal: string | null }>;

  constructor(readonly child: ChildProcess) {
    (child.stdio[3] as Readable).on('data', (chunk: Buffer) => this.onData(chunk));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  static start(): RawRuntime {
    const child = spawn(process.execPath, ENTRY, {
      cwd: REPO,
      env: { ...ENV, RECURSIVEMAS_RPC_FD: '3' },
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    return new RawRuntime(child);
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) break;
      const length = Number(/^Content-Length: (\d+)$/m.exec(this.buffer.subarray(0, end).toString())![1]);
      if (this.buffer.length < end + 4 + length) break;
      this.messages.push(JSON.parse(this.buffer.subarray(end + 4, end + 4 + length).toString()));
      this.buffer = this.buffer.subarray(end + 4 + length);
    }
    for (const w of this.waiters.splice(0)) w();
  }

  writeRaw(text: string | Buffer): void {
    this.child.stdin!.write(text);
  }

  send(message: object): void {
    const body = Buffer.from(JSON.stringify(message));
    this.writeRaw(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body]));
  }

  /** Sends a request and returns its id; `response(id)` waits for the answer. */
  request(method: string, params?: unknown): number {
    const id = this.nextId++;
    this.send(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });
    return id;
  }

  async waitFor(predicate: (m: Message) => boolean, timeoutMs = 20_000, what = 'a message'): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  response(id: number | string | null, timeoutMs?: number): Promise<Message> {
    return this.waitFor((m) => m.id === id && m.method === undefined, timeoutMs, `the response to request ${id}`);
  }

  async call(method: string, params?: unknown, timeoutMs?: number): Promise<Message> {
    return this.response(this.request(method, params), timeoutMs);
  }

  events(id: string): SolveEvent[] {
    return this.messages.filter((m) => m.method === 'solve/event' && m.params.id === id).map((m) => m.params.event as SolveEvent);
  }

  logs(): string[] {
    return this.messages.filter((m) => m.method === 'log').map((m) => `${m.params.level}: ${m.params.message}`);
  }
}

function solveParams(id: string, overrides: Record<string, unknown> = {}) {
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
    seed: 7,
    device: 'cpu',
    ...overrides,
  };
}

/** Alive and not a zombie (a reaper may be slow to collect an orphan in a container). */
function running(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (existsSync('/proc/self/stat')) {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(stat, 'utf8'));
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

let rt: RawRuntime;
before(async () => {
  rt = RawRuntime.start();
});
after(async () => {
  rt.child.kill('SIGKILL');
});

test('initialize reports versions, providers and limits; ping answers', async () => {
  const init = await rt.call('initialize', { clientName: 'runtime-test' });
  assert.equal(init.error, undefined, JSON.stringify(init.error));
  const v = validateInitializeResult(init.result);
  assert.ok(v.ok, v.ok ? '' : v.message);
  assert.equal(init.result.ortVersion, '1.30.0');
  assert.equal(init.result.node, process.version);
  const cpu = init.result.providers.find((p: { name: string }) => p.name === 'cpu');
  assert.deepEqual(cpu, { name: 'cpu', available: true });
  for (const p of init.result.providers) if (!p.available) assert.ok(p.reason.length > 10, `${p.name} is unavailable without a reason`);
  assert.ok(init.result.limits.maxRounds >= 3 && init.result.limits.maxLatentSteps >= 16);
  const ping = await rt.call('ping');
  assert.equal(ping.result.team, null);
  assert.ok(ping.result.uptimeMs > 0);
});

test('a solve streams its events in order over two rounds and returns the result', async () => {
  const id = rt.request('solve', solveParams('two-rounds'));
  const answer = await rt.response(id, 60_000);
  assert.equal(answer.error, undefined, JSON.stringify(answer.error));
  const result = validateSolveResult(answer.result);
  assert.ok(result.ok, result.ok ? '' : result.message);
  assert.equal(answer.result.rounds, 2);
  assert.equal(answer.result.device, 'cpu');

  const events = rt.events('two-rounds');
  for (const e of events) assert.ok(validateSolveEvent(e).ok, JSON.stringify(e));
  const types = events.map((e) => e.type);
  // Loading first (the team was not loaded), then the solve, then the answer and the metrics last.
  assert.equal(types[0], 'team-loading');
  const loaded = types.indexOf('team-loaded');
  assert.ok(loaded > 0 && types.slice(0, loaded).every((t) => t === 'team-loading'));
  assert.equal(types[loaded + 1], 'solve-start');
  assert.deepEqual(types.slice(-2), ['answer', 'metrics']);
  const rounds = events.filter((e) => e.type === 'round-start');
  assert.deepEqual(rounds.map((e) => e.type === 'round-start' && [e.round, e.rounds]), [[1, 2], [2, 2]]);
  const roundEnds = types.flatMap((t, i) => (t === 'round-end' ? [i] : []));
  const roundStarts = types.flatMap((t, i) => (t === 'round-start' ? [i] : []));
  assert.ok(roundStarts[0]! < roundEnds[0]! && roundEnds[0]! < roundStarts[1]! && roundStarts[1]! < roundEnds[1]!);

  // Round 1: planner -> critic -> solver think in latent space (4 steps each) and hand off.
  const round1 = events.slice(roundStarts[0], roundEnds[0]! + 1);
  const starts = round1.filter((e) => e.type === 'agent-start').map((e) => e.type === 'agent-start' && `${e.agent}:${e.action}`);
  assert.deepEqual(starts, ['planner:latent', 'critic:latent', 'solver:latent']);
  const steps = round1.filter((e) => e.type === 'latent-step');
  assert.equal(steps.length, 12);
  assert.deepEqual(steps.slice(0, 4).map((e) => e.type === 'latent-step' && e.step), [1, 2, 3, 4]);
  const handoffs = round1.filter((e) => e.type === 'handoff').map((e) => e.type === 'handoff' && `${e.from}->${e.to}:${e.vectors}`);
  assert.deepEqual(handoffs, ['planner->critic:4', 'critic->solver:4', 'solver->planner:4']);
  // Round 2 ends with the solver decoding tokens.
  const round2 = events.slice(roundStarts[1], roundEnds[1]! + 1);
  assert.ok(round2.some((e) => e.type === 'agent-start' && e.agent === 'solver' && e.action === 'decode'));
  assert.ok(round2.some((e) => e.type === 'token'));
  const final = events.find((e) => e.type === 'answer');
  assert.ok(final?.type === 'answer' && final.text === answer.result.answer);
});

test('a solve on the team kept from an earlier solve still starts by saying which team runs it', async () => {
  const id = rt.request('solve', solveParams('kept-team'));
  const answer = await rt.response(id, 60_000);
  assert.equal(answer.error, undefined, JSON.stringify(answer.error));
  const events = rt.events('kept-team');
  assert.equal(events[0]?.type, 'team-loaded');
  assert.ok(events[0]?.type === 'team-loaded' && events[0].ms === 0 && events[0].agents.length === 3 && events[0].team === 'demo-sequential', JSON.stringify(events[0]));
  assert.ok(!events.some((e) => e.type === 'team-loading'));
});

test('team/load reports progress under its id and reloads only when team, device or threads change', async () => {
  // Same team, device and threads as the solve above: no reload.
  const same = await rt.call('team/load', { id: 'load-same', team: 'demo-sequential', device: 'cpu' });
  assert.ok(validateLoadTeamResult(same.result).ok, JSON.stringify(same));
  assert.equal(same.result.ms, 0);
  assert.equal(rt.events('load-same').length, 0);
  // A different thread count reloads, with team-loading events under the load's id.
  const reload = await rt.call('team/load', { id: 'load-threads', team: 'demo-sequential', device: 'cpu', threads: 1 }, 30_000);
  assert.equal(reload.error, undefined, JSON.stringify(reload.error));
  assert.ok(reload.result.ms > 0);
  assert.deepEqual(reload.result.agents.map((a: { name: string }) => a.name), ['planner', 'critic', 'solver']);
  const types = rt.events('load-threads').map((e) => e.type);
  assert.deepEqual(types, ['team-loading', 'team-loading', 'team-loading', 'team-loaded']);
  // Another team replaces it: one team at a time.
  const other = await rt.call('team/load', { id: 'load-other', team: 'demo-mixture', device: 'cpu', threads: 1 }, 30_000);
  assert.equal(other.error, undefined, JSON.stringify(other.error));
  assert.equal(other.result.team, 'demo-mixture');
  assert.equal((await rt.call('ping')).result.team, 'demo-mixture');
  const unload = await rt.call('team/unload');
  assert.equal(unload.result, null);
  assert.equal((await rt.call('ping')).result.team, null);
});

test('an explicit device that cannot work is refused with the reason', async () => {
  // onnxruntime-node's CUDA libraries are not installed in this checkout (.npmrc skips them).
  const res = await rt.call('team/load', { team: 'demo-sequential', device: 'cuda' });
  assert.equal(res.error?.code, -32001);
  assert.equal(res.error?.data.kind, 'user');
  assert.equal(res.error?.data.code, 'device-unavailable');
  assert.match(res.error.message, /CUDA was requested but cannot be used here: .*not installed/);
  assert.match(res.error?.data.action, /auto|cpu/);
});

test('a missing model is a user error naming the pull command', async () => {
  const res = await rt.call('solve', solveParams('needs-models', { team: 'sequential-light-code' }));
  assert.equal(res.error?.data.code, 'model-missing', JSON.stringify(res.error));
  assert.match(res.error.data.action, /recursivemas models pull sequential-light-code/);
});

test('cancel mid-round rejects as cancelled within one model step, and the next solve works', async () => {
  const id = rt.request('solve', solveParams('long', { rounds: 16, latentSteps: 256, maxNewTokens: 64 }));
  // Wait until the team is in the middle of round 1's latent rollout.
  await rt.waitFor((m) => m.method === 'solve/event' && m.params.id === 'long' && m.params.event.type === 'latent-step' && m.params.event.step >= 3, 30_000, 'latent steps');
  const sent = performance.now();
  const cancelId = rt.request('solve/cancel', { id: 'long' });
  const cancel = await rt.response(cancelId);
  assert.deepEqual(cancel.result, { cancelled: true });
  const res = await rt.response(id, 10_000);
  const latencyMs = performance.now() - sent;
  assert.equal(res.error?.code, -32800, JSON.stringify(res));
  assert.equal(res.error?.data.kind, 'cancelled');
  const events = rt.events('long');
  assert.ok(!events.some((e) => e.type === 'answer' || (e.type === 'round-start' && e.round > 1)), 'the solve went on after the cancel');
  // The channel is ordered: what follows the cancel's answer ran after the runtime aborted the solve.
  // At most the model step already under way may finish.
  const afterAbort = rt.messages.slice(rt.messages.indexOf(cancel)).filter((m) => m.method === 'solve/event' && m.params.id === 'long' && m.params.event.type === 'latent-step');
  assert.ok(afterAbort.length <= 1, `${afterAbort.length} latent steps ran after the abort`);
  assert.ok(latencyMs < 2000, `cancel took ${latencyMs.toFixed(0)} ms`);
  console.log(`cancel answered in ${latencyMs.toFixed(1)} ms; ${afterAbort.length} latent step(s) after the abort`);
  // Cancelling what is not running says so.
  assert.deepEqual((await rt.call('solve/cancel', { id: 'long' })).result, { cancelled: false });
  const next = await rt.call('solve', solveParams('after-cancel'), 30_000);
  assert.equal(next.error, undefined, JSON.stringify(next.error));
  assert.equal(next.result.rounds, 2);
});

test('malformed messages are rejected with an error and a log, and the runtime keeps answering', async () => {
  const logsBefore = rt.logs().length;
  const errorsBefore = rt.messages.filter((m) => m.id === null).length;
  rt.writeRaw('hello, this is not JSON-RPC\r\n\r\n');
  rt.writeRaw('Content-Length: 12\r\n\r\n{not json!!}');
  rt.writeRaw('Content-Length: banana\r\n\r\n');
  rt.writeRaw('garbage without any header end, then a real message: ');
  rt.send({ jsonrpc: '2.0', id: 'after-garbage', method: 'ping' });
  rt.send([1, 2, 3]);
  rt.send({ jsonrpc: '1.0', id: 'old', method: 'ping' });
  rt.send({ jsonrpc: '2.0', id: 'unknown', method: 'make/coffee' });
  rt.send({ jsonrpc: '2.0', id: 'bad-solve', method: 'solve', params: { id: 'x', task: '', rounds: 0, language: 5, colour: 'red' } });
  rt.send({ jsonrpc: '2.0', id: 'bad-cancel', method: 'solve/cancel', params: { id: 42 } });
  rt.send({ jsonrpc: '2.0', method: 'no/such/notification', params: {} });

  const pong = await rt.response('after-garbage');
  assert.equal(pong.error, undefined);
  assert.equal((await rt.response('old')).error?.code, -32600);
  const unknown = await rt.response('unknown');
  assert.equal(unknown.error?.code, -32601);
  assert.match(unknown.error.message, /unknown method "make\/coffee"/);
  const bad = await rt.response('bad-solve');
  assert.equal(bad.error?.code, -32602);
  assert.equal(bad.error?.data.kind, 'invalid');
  const issues: string[] = bad.error?.data.issues;
  for (const field of ['params.task', 'params.rounds', 'params.language', 'params.colour', 'params.team', 'params.temperature']) {
    assert.ok(issues.some((i) => i.startsWith(`${field}:`)), `${field} is not named in ${JSON.stringify(issues)}`);
  }
  assert.equal((await rt.response('bad-cancel')).error?.code, -32602);
  // Unparseable input gets an error with a null id (there is no id to answer).
  await rt.waitFor(() => rt.messages.filter((m) => m.id === null).length >= errorsBefore + 4, 5000, 'parse errors');
  const parseErrors = rt.messages.filter((m) => m.id === null).slice(errorsBefore);
  assert.ok(parseErrors.every((m) => m.error && [-32700, -32600].includes(m.error.code)), JSON.stringify(parseErrors));
  await rt.waitFor((m) => m.method === 'log' && /no\/such\/notification/.test(m.params.message), 5000, 'the last log notification');
  const logs = rt.logs().slice(logsBefore).join('\n');
  assert.match(logs, /warn: rejected a malformed message/);
  assert.match(logs, /not JSON/);
  assert.match(logs, /rejected solve: invalid solve params/);
  assert.match(logs, /unknown notification "no\/such\/notification"/);
  // Still alive and well.
  assert.equal(rt.child.exitCode, null);
  assert.ok((await rt.call('ping')).result.uptimeMs > 0);
});

test('shutdown answers and the process exits with code 0', async () => {
  const own = RawRuntime.start();
  const res = await own.call('shutdown');
  assert.equal(res.result, null);
  const exit = await own.exited;
  assert.deepEqual(exit, { code: 0, signal: null });
});

/** Starts `node -e` as a parent that spawns the runtime and prints its pid. */
function spawnParent(runtimeStdin: 'pipe' | 'inherit'): { parent: ChildProcess; runtimePid: Promise<number> } {
  const script = `
    const { spawn } = require('node:child_process');
    const rt = spawn(process.execPath, ${JSON.stringify(ENTRY)}, { cwd: ${JSON.stringify(REPO)}, stdio: ['${runtimeStdin}', 'ignore', 'inherit'] });
    console.log(String(rt.pid));
    setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ['-e', script], { env: ENV, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  parent.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const runtimePid = new Promise<number>((resolve, reject) => {
    parent.stdout.setEncoding('utf8').once('data', (d: string) => {
      const pid = Number(d.trim());
      // Wait for the runtime's start line so it is really up before the parent dies.
      const started = Date.now();
      const poll = setInterval(() => {
        if (stderr.includes('runtime') && stderr.includes('started')) {
          clearInterval(poll);
          resolve(pid);
        } else if (Date.now() - started > 20_000) {
          clearInterval(poll);
          reject(new Error(`the runtime did not start: ${stderr}`));
        }
      }, 50);
    });
  });
  return { parent, runtimePid };
}

for (const stdin of ['pipe', 'inherit'] as const) {
  const how = stdin === 'pipe' ? 'its stdin closes' : 'its stdin stays open (the parent pid is watched)';
  test(`the runtime exits when its parent is killed with SIGKILL: ${how}`, async () => {
    const { parent, runtimePid } = spawnParent(stdin);
    const pid = await runtimePid;
    try {
      assert.ok(running(pid));
      parent.kill('SIGKILL');
      const ms = await waitUntil(() => !running(pid), 5000);
      console.log(`runtime gone ${ms} ms after its parent was killed (${how})`);
    } finally {
      if (running(pid)) process.kill(pid, 'SIGKILL');
      parent.stdin!.end();
    }
  });
}

test('a provider that probes fine but fails to create a session falls back to the CPU with a warning (GPU presence stubbed)', async () => {
  // The one mocked edge: the probe claims CUDA is present. Session creation then really fails here
  // (onnxruntime-node's CUDA libraries are not installed), and the engine, the server and the
  // provider choice must cope.
  const providers = new ProviderChooser({ probes: { cuda: async () => ({ available: true }), webgpu: async () => ({ available: false, reason: 'no adapter' }) } });
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  const { server } = serveRuntime({ input: toServer, output: toClient }, { engine: async () => (await import('../../src/engine/index')).createEngine(), providers });
  const client = createMessageConnection(new StreamMessageReader(toClient), new StreamMessageWriter(toServer));
  const events: SolveEventNotification[] = [];
  client.onNotification('solve/event', (p: SolveEventNotification) => void events.push(p));
  client.listen();
  try {
    await client.sendRequest('initialize', { clientName: 'fallback-test', modelsDirectory: ENV.RECURSIVEMAS_MODELS });
    const loaded: LoadTeamResult = await client.sendRequest('team/load', { id: 'fallback', team: 'demo-sequential', device: 'auto' });
    assert.equal(loaded.device, 'cpu');
    assert.ok(loaded.warnings.some((w) => /cuda execution provider failed to start.*running on the CPU instead/i.test(w)), loaded.warnings.join('\n'));
    const teamLoaded = events.find((e) => e.id === 'fallback' && e.event.type === 'team-loaded')?.event;
    assert.ok(teamLoaded?.type === 'team-loaded' && teamLoaded.device === 'cpu', JSON.stringify(teamLoaded));
    // From now on `auto` knows better, and says why CUDA is out.
    const info: InitializeResult = await client.sendRequest('initialize', { clientName: 'fallback-test' });
    const cuda = info.providers.find((p) => p.name === 'cuda')!;
    assert.equal(cuda.available, false);
    assert.match(cuda.reason!, /failed to start/);
    assert.equal((await providers.resolve('auto')).device, 'cpu');
  } finally {
    await server.close();
    client.dispose();
  }
});
