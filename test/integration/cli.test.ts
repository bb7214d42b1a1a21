// `recursivemas solve` and `recursivemas models` end to end: the real runtime process for solves (a
// generated demo team), a real HTTP hub on 127.0.0.1 for pulls, and the documented exit codes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CliIo } from '../../src/cli/io';
import { runModelsCommand } from '../../src/cli/models';
import { runSolveCommand } from '../../src/cli/solve';
import type { SolveEvent } from '../../src/protocol/events';
import { validateSolveEvent } from '../../src/protocol/validate';
import { FakeHub } from '../support/fake-hub';
import { REPO, tempDir } from '../support/paths';

const HOME = tempDir('rmas-cli-');
const ENV = { RECURSIVEMAS_MODELS: join(HOME, 'models'), RECURSIVEMAS_CACHE: join(HOME, 'cache') };
const DEMO = ['--team', 'demo-sequential', '--rounds', '2', '--latent-steps', '4', '--max-new-tokens', '16', '--seed', '11'];

function captureIo(isTTY = false): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: (t) => void (out += t),
    stdoutBytes: (b) => void (out += Buffer.from(b).toString()),
    stderr: (t) => void (err += t),
    isTTY,
    out: () => out,
    err: () => err,
  };
}

function solve(argv: string[], io = captureIo(), signal?: AbortSignal) {
  return runSolveCommand(argv, io, { supervisor: { env: ENV }, signal }).then((code) => ({ code, io }));
}

test('--json writes one event per line, then the result object last', async () => {
  const { code, io } = await solve(['Write add(a, b).', ...DEMO, '--json']);
  assert.equal(code, 0, io.err());
  const lines = io.out().trimEnd().split('\n').map((l) => JSON.parse(l));
  const result = lines.pop();
  assert.deepEqual(Object.keys(result).sort(), ['answer', 'code', 'device', 'metrics', 'precision', 'rounds']);
  assert.equal(result.rounds, 2);
  assert.equal(result.device, 'cpu');
  const events = lines as SolveEvent[];
  for (const e of events) assert.ok(validateSolveEvent(e).ok, JSON.stringify(e));
  assert.deepEqual(events.filter((e) => e.type === 'round-start').map((e) => e.type === 'round-start' && e.round), [1, 2]);
  assert.equal(events.at(-1)?.type, 'metrics');
  const answer = events.find((e) => e.type === 'answer');
  assert.ok(answer?.type === 'answer' && answer.text === result.answer);
});

test('plain output: progress lines on stderr, the code (or the answer) on stdout', async () => {
  const json = await solve(['Write add(a, b).', ...DEMO, '--json']);
  const expected = JSON.parse(json.io.out().trimEnd().split('\n').at(-1)!);
  const { code, io } = await solve(['Write add(a, b).', ...DEMO]);
  assert.equal(code, 0, io.err());
  // Same seed, same team: the same text, printed as it is.
  const text: string = expected.code ?? expected.answer;
  assert.equal(io.out(), text.endsWith('\n') ? text : `${text}\n`);
  const err = io.err();
  assert.match(err, /team demo-sequential loaded on cpu at int4 in/);
  assert.match(err, /latent mode, sequential team, 2 rounds x 4 latent steps/);
  assert.match(err, /^round 1\/2$/m);
  assert.match(err, /^round 2\/2$/m);
  assert.match(err, /planner -> critic: 4 latent vectors/);
  assert.match(err, /^done in .* on cpu at int4/m);
  // Not a terminal: no cursor movement.
  // eslint-disable-next-line no-control-regex -- the escape code is what this checks
  assert.doesNotMatch(err, /\x1b\[K/);
});

test('on a terminal the status line is redrawn in place and cleared before the code', async () => {
  const { code, io } = await solve(['Write add(a, b).', ...DEMO], captureIo(true));
  assert.equal(code, 0);
  // Redraws are throttled, but the last step of each rollout is always drawn.
  // eslint-disable-next-line no-control-regex -- the escape codes are what this checks
  assert.match(io.err(), /\r\x1b\[K {2}round 1\/2 {2}planner {2}latent step \[#{20}\] 4\/4\r\x1b\[K {2}planner: 4 latent steps/);
  assert.ok(!io.out().includes('\x1b'), 'escape codes leaked into stdout');
});

test('--file gives the agents the file as context and sets the language from its extension', async () => {
  const file = join(HOME, 'shapes.ts');
  writeFileSync(file, 'export interface Shape { area(): number }\n');
  const { code, io } = await solve(['Add a Circle class.', '--file', file, ...DEMO, '--json']);
  assert.equal(code, 0, io.err());
  const start = io.out().split('\n').map((l) => (l ? JSON.parse(l) : null)).find((e) => e?.type === 'solve-start');
  assert.equal(start.language, 'typescript');
});

test('bad usage exits with 2 and says what is wrong', async () => {
  const cases: [string[], RegExp][] = [
    [[], /Give the task to solve/],
    [['task', '--rounds', '0'], /--rounds must be a whole number from 1 to/],
    [['task', '--latent-steps', 'many'], /--latent-steps must be a whole number/],
    [['task', '--mode', 'telepathy'], /--mode must be one of latent, text, single/],
    [['task', '--device', 'tpu'], /--device must be one of auto, cpu, webgpu, cuda/],
    [['task', '--team', 'no-such-team'], /no team preset named "no-such-team". Available: .*demo-sequential/],
    [['task', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['task', '--file', join(HOME, 'missing.py')], /--file .* cannot be read \(ENOENT\)/],
  ];
  for (const [argv, message] of cases) {
    const io = captureIo();
    assert.equal(await runSolveCommand(argv, io), 2, `${argv.join(' ')}: ${io.err()}`);
    assert.match(io.err(), message);
  }
  const help = captureIo();
  assert.equal(await runSolveCommand(['--help'], help), 0);
  assert.match(help.out(), /usage: recursivemas solve/);
});

test('missing models exit with 3 and name the pull command', async () => {
  const { code, io } = await solve(['task', '--team', 'sequential-light-code', '--models-dir', join(HOME, 'empty-models'), '--max-new-tokens', '8']);
  assert.equal(code, 3, io.err());
  assert.match(io.err(), /is not downloaded/);
  assert.match(io.err(), /recursivemas models pull sequential-light-code/);
});

test('cancelling (the signal Ctrl-C would send) stops the solve and exits with 4', async () => {
  const controller = new AbortController();
  const io = captureIo();
  const watcher = setInterval(() => {
    if (/^round 1\/16$/m.test(io.err())) controller.abort();
  }, 10);
  const started = performance.now();
  const { code } = await solve(['task', '--team', 'demo-sequential', '--rounds', '16', '--latent-steps', '256'], io, controller.signal);
  clearInterval(watcher);
  assert.equal(code, 4, io.err());
  assert.match(io.err(), /cancelling\.\.\./);
  assert.match(io.err(), /^cancelled$/m);
  assert.equal(io.out(), '');
  assert.ok(performance.now() - started < 20_000);
});

test('Ctrl-C (SIGINT to the process group) cancels a real CLI process cleanly: exit code 4, runtime gone', async () => {
  const script = `
    import { runSolveCommand } from './src/cli/solve.ts';
    import { processIo } from './src/cli/io.ts';
    process.exitCode = await runSolveCommand(${JSON.stringify(['task', '--team', 'demo-sequential', '--rounds', '16', '--latent-steps', '256', '--verbose'])}, processIo);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO,
    env: { ...process.env, ...ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, like a terminal's foreground job, so the signal reaches the runtime too.
    detached: true,
  });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!/^round 1\/16$/m.test(err)) {
    assert.ok(Date.now() < deadline, `no progress: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const runtimePid = Number(/runtime \S+ started \(pid (\d+)/.exec(err)?.[1]);
  process.kill(-child.pid!, 'SIGINT');
  assert.equal(await exit, 4, err);
  assert.match(err, /cancelling/);
  assert.match(err, /^cancelled$/m);
  // Ctrl-C reached the runtime too (same process group); it left the cancel to its parent.
  assert.match(err, /ignoring SIGINT/);
  assert.ok(runtimePid > 0, 'the runtime pid was not printed');
  assert.throws(() => process.kill(runtimePid, 0), 'the runtime outlived the CLI');
});

// --- models ------------------------------------------------------------------------------

let hub: FakeHub | undefined;
after(async () => {
  await hub?.stop();
});

test('models pull <repo>, list and rm against a hub on 127.0.0.1', async () => {
  const config = Buffer.from(JSON.stringify({ model_type: 'llama' }));
  const weights = Buffer.alloc(300_000, 7);
  hub = await FakeHub.start({
    lifetimeMs: 30_000,
    repos: { 'acme/tiny': { sha: 'c'.repeat(40), files: [{ path: 'config.json', content: config }, { path: 'model.safetensors', content: weights, lfs: true }] } },
  });
  const dir = join(HOME, 'pulled');
  const common = ['--models-dir', dir, '--endpoint', hub.endpoint];

  const pull = captureIo();
  assert.equal(await runModelsCommand(['pull', 'acme/tiny', ...common], pull), 0, pull.err());
  assert.match(pull.err(), /acme\/tiny: 2 files at cccccccccc, 293\.0 KiB downloaded/);
  assert.deepEqual(readFileSync(join(dir, 'acme', 'tiny', 'model.safetensors')), weights);

  const list = captureIo();
  assert.equal(await runModelsCommand(['list', ...common], list), 0);
  assert.match(list.out(), /acme\/tiny +\d+(\.\d+)? KiB +complete at cccccccccc/);
  assert.match(list.out(), /demo-sequential: demo, generated weights/);
  assert.match(list.out(), /sequential-light-code: not downloaded \(recursivemas models pull sequential-light-code\)\n +MBPP\+ 37\.3 \(authors' figures\); download about [\d.]+ GiB; about [\d.]+ GiB of memory at int4, fits/);
  assert.match(list.out(), /deliberation: cannot run in this version: needs its tool-calling final round/);
  const json = captureIo();
  assert.equal(await runModelsCommand(['list', '--json', ...common], json), 0);
  assert.equal(JSON.parse(json.out()).models[0].repo, 'acme/tiny');

  const again = captureIo();
  assert.equal(await runModelsCommand(['pull', 'acme/tiny', ...common], again), 0);
  assert.match(again.err(), /0 B downloaded .* 2 already present/);

  const rm = captureIo();
  assert.equal(await runModelsCommand(['rm', 'acme/tiny', ...common], rm), 0);
  assert.ok(!existsSync(join(dir, 'acme', 'tiny')));
  const rmAgain = captureIo();
  assert.equal(await runModelsCommand(['rm', 'acme/tiny', ...common], rmAgain), 3);
  assert.match(rmAgain.err(), /not in .*nothing was removed/);
});

test('models: a demo preset needs no download; bad usage exits with 2; an unknown repo fails with 1', async () => {
  const dir = join(HOME, 'pulled2');
  const demo = captureIo();
  assert.equal(await runModelsCommand(['pull', 'demo-sequential', '--models-dir', dir], demo), 0);
  assert.match(demo.err(), /team demo-sequential uses generated weights and needs no download/);
  for (const argv of [[], ['dance'], ['pull'], ['rm', 'not-a-repo'], ['pull', 'no-such-preset'], ['list', 'extra']]) {
    const io = captureIo();
    assert.equal(await runModelsCommand([...argv, '--models-dir', dir], io), 2, `${argv.join(' ')}: ${io.err()}`);
  }
  if (hub) {
    const io = captureIo();
    assert.equal(await runModelsCommand(['pull', 'acme/absent', '--models-dir', dir, '--endpoint', hub.endpoint], io), 1);
    assert.match(io.err(), /error: .*acme\/absent/);
  }
});
