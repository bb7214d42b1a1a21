// The model store across processes and failures: two real `recursivemas models pull` processes of
// one repository from a slow local hub, a pull killed while another waits, stale and live locks,
// `models rm` during a pull and of compiled graphs, reserved names, and the checksum taken from
// the file on disk.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { DownloadError } from '../../src/runtime/store/download';
import { ModelStore } from '../../src/runtime/store/store';
import { ensureCliBuilt, runCli, startCli } from '../support/cli';
import { FakeHub, type FakeFile } from '../support/fake-hub';
import { tempDir } from '../support/paths';

const REPO = 'acme/slow-model';
const weights = randomBytes(400_000);
const config = Buffer.from(JSON.stringify({ model_type: 'llama', hidden_size: 64 }));
const FILES: FakeFile[] = [
  { path: 'config.json', content: config },
  { path: 'model.safetensors', content: weights, lfs: true },
];
// 400 kB at 16 kB every 25 ms: about 0.6 s per full transfer, long enough to overlap.
const SLOW = { chunkBytes: 16_000, intervalMs: 25 };

const HOME = tempDir('rmas-concurrent-');
let hub: FakeHub;
let models: string;
let cache: string;

function env(): NodeJS.ProcessEnv {
  return { ...process.env, RECURSIVEMAS_MODELS: models, RECURSIVEMAS_CACHE: cache, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '', RECURSIVEMAS_DEBUG: '' };
}

async function storedBytes(file: string): Promise<Buffer> {
  return readFile(join(models, ...REPO.split('/'), file));
}

async function leftovers(): Promise<string[]> {
  const dir = join(models, ...REPO.split('/'));
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.part') || n.includes('.lock'));
}

/** A pid that is certainly dead: a process that already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

before(async () => {
  ensureCliBuilt();
  hub = await FakeHub.start({
    lifetimeMs: 120_000,
    repos: {
      [REPO]: { sha: 'a'.repeat(40), files: FILES },
      'acme/tmp-name': { files: [{ path: 'config.json', content: config }], listOnly: ['.recursivemas.json.tmp'] },
      'acme/lock-name': { files: [{ path: 'config.json', content: config }], listOnly: ['sub/.recursivemas.lock'] },
      'acme/part-name': { files: [{ path: 'config.json', content: config }], listOnly: ['weights.bin.part'] },
    },
  });
});

after(async () => {
  await hub.stop();
});

beforeEach(async () => {
  hub.reset();
  models = join(HOME, `models-${Math.random().toString(36).slice(2)}`);
  cache = join(HOME, `cache-${Math.random().toString(36).slice(2)}`);
});

test('two `models pull` processes of one repository at once: both succeed, the bytes are the source, one download', async () => {
  hub.faults.trickle = SLOW;
  const first = startCli(['models', 'pull', REPO], { env: env() });
  const second = startCli(['models', 'pull', REPO], { env: env() });
  const [a, b] = await Promise.all([first.done, second.done]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  // One of them found the other at work and said so, then reused its result.
  const waiter = [a, b].find((r) => /another pull of it is running \(process \d+, since .*\); waiting for it to finish/.test(r.stderr));
  assert.ok(waiter, `neither pull said it waited:\n${a.stderr}\n---\n${b.stderr}`);
  assert.match(waiter.stderr, /2 already present/);
  assert.deepEqual(await storedBytes('model.safetensors'), weights);
  assert.deepEqual(await storedBytes('config.json'), config);
  assert.equal(hub.contentRequests('model.safetensors').length, 1, 'the weights were fetched more than once');
  assert.deepEqual(await leftovers(), []);
  assert.ok(existsSync(join(models, ...REPO.split('/'), '.recursivemas.json')));
});

test('a pull killed with SIGKILL while a second one waits: the second takes over the stale lock and resumes the .part', async () => {
  hub.faults.trickle = SLOW;
  const first = startCli(['models', 'pull', REPO], { env: env() });
  // Kill the first once it has written part of the weights.
  const part = join(models, ...REPO.split('/'), 'model.safetensors.part');
  for (let i = 0; i < 400 && ((await stat(part).catch(() => undefined))?.size ?? 0) < 50_000; i++) await new Promise((r) => setTimeout(r, 10));
  const second = startCli(['models', 'pull', REPO], { env: env() });
  await second.stderrMatches(/waiting for it to finish/);
  first.kill('SIGKILL');
  const [a, b] = await Promise.all([first.done, second.done]);
  assert.equal(a.signal, 'SIGKILL');
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(await storedBytes('model.safetensors'), weights);
  // The second resumed where the first stopped rather than starting over.
  assert.ok(hub.contentRequests('model.safetensors').some((r) => r.range !== undefined), 'the .part was not resumed');
  assert.deepEqual(await leftovers(), []);
});

test('a stale lock (its process is dead) is taken over at once; a live one makes the pull wait until it goes', async () => {
  const dir = join(models, ...REPO.split('/'));
  await mkdir(dir, { recursive: true });
  const lock = join(dir, '.recursivemas.lock');
  await writeFile(lock, JSON.stringify({ pid: deadPid(), hostname: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
  const stale = await runCli(['models', 'pull', REPO], { env: env() });
  assert.equal(stale.code, 0, stale.stderr);
  assert.doesNotMatch(stale.stderr, /waiting/);
  assert.equal(existsSync(lock), false);

  // This test process holds it now: the pull must wait, and finish once it is released.
  await rm(dir, { recursive: true });
  await mkdir(dir, { recursive: true });
  await writeFile(lock, JSON.stringify({ pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString() }));
  const waiting = startCli(['models', 'pull', REPO], { env: env() });
  await waiting.stderrMatches(new RegExp(`another pull of it is running \\(process ${process.pid}, since`));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(existsSync(join(dir, 'model.safetensors')), false, 'it downloaded while the lock was held');
  await rm(lock);
  const done = await waiting.done;
  assert.equal(done.code, 0, done.stderr);
  assert.deepEqual(await storedBytes('model.safetensors'), weights);
});

test('`models rm` refuses while a pull runs, in one line; afterwards it removes the model and its compiled graphs', async () => {
  hub.faults.trickle = SLOW;
  const pulling = startCli(['models', 'pull', REPO], { env: env() });
  await pulling.stderrMatches(/file 1\/2/);
  const refused = await runCli(['models', 'rm', REPO], { env: env() });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^error: acme\/slow-model is being downloaded right now \(process \d+, since .*\)\. Wait for that pull to finish or stop it, then remove the model again\.\n$/);
  assert.equal((await pulling.done).code, 0);

  // A compiled graph built from this model (as build.ts records it), and one from another model.
  const ours = join(cache, 'graphs', 'k1');
  const theirs = join(cache, 'graphs', 'k2');
  for (const [folder, source] of [[ours, join(models, 'acme', 'slow-model')], [theirs, join(models, 'acme', 'other')]] as const) {
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'config.json'), JSON.stringify({ source, precision: 'fp32' }));
    await writeFile(join(folder, 'model.onnx.data'), Buffer.alloc(123_456));
  }
  const listed = await runCli(['models', 'list'], { env: env() });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /acme\/slow-model +\S+ \S+ +complete at a{10}, compiled graphs 1\d\d\.\d KiB\n/);
  const removed = await runCli(['models', 'rm', REPO], { env: env() });
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stderr, /removed acme\/slow-model from .* and 1 compiled graph \(/);
  assert.equal(existsSync(ours), false);
  assert.equal(existsSync(theirs), true);
  assert.equal(existsSync(join(models, 'acme', 'slow-model')), false);
});

test('hub names in the reserved family (our manifest, its temporaries, locks, .part) refuse the repository', async () => {
  const store = new ModelStore({ modelsDirectory: models, endpoint: hub.endpoint, env: {} });
  for (const [repo, name] of [['acme/tmp-name', '.recursivemas.json.tmp'], ['acme/lock-name', 'sub/.recursivemas.lock'], ['acme/part-name', 'weights.bin.part']]) {
    await assert.rejects(store.pull(repo!), (e: Error) => e instanceof DownloadError && e.code === 'bad-path' && e.message.includes(`"${name}"`), repo);
    assert.equal(existsSync(join(models, ...repo!.split('/'))), false, `${repo} left a folder`);
  }
  // Through the CLI: one line, usage exit code.
  const r = await runCli(['models', 'pull', 'acme/tmp-name'], { env: env() });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: The hub's file list for acme\/tmp-name contains "\.recursivemas\.json\.tmp" \(names starting with "\.recursivemas" are reserved/m);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('the checksum is taken from the file on disk: bytes changed under the download are caught before the rename', async () => {
  hub.faults.trickle = { chunkBytes: 16_000, intervalMs: 15 };
  const store = new ModelStore({ modelsDirectory: models, endpoint: hub.endpoint, env: {}, retry: { retries: 0 } });
  const pulling = store.pull(REPO, { files: ['model.safetensors'] });
  const part = join(models, ...REPO.split('/'), 'model.safetensors.part');
  for (let i = 0; i < 400 && ((await stat(part).catch(() => undefined))?.size ?? 0) < 20_000; i++) await new Promise((r) => setTimeout(r, 5));
  // Another writer (the old bug: a second process appending to the same .part) changes a byte.
  const handle = await open(part, 'r+');
  await handle.write(Buffer.from([weights[0]! ^ 0xff]), 0, 1, 0);
  await handle.close();
  await assert.rejects(pulling, (e: Error) => e instanceof DownloadError && e.code === 'corrupt' && /SHA-256/.test(e.message));
  assert.equal(existsSync(join(models, ...REPO.split('/'), 'model.safetensors')), false);
  assert.equal(existsSync(part), false);
});

test('a models folder deleted during the download is reported as such, not as a permission problem', async () => {
  hub.faults.trickle = { chunkBytes: 16_000, intervalMs: 15 };
  const store = new ModelStore({ modelsDirectory: models, endpoint: hub.endpoint, env: {}, retry: { retries: 0 } });
  const pulling = store.pull(REPO, { files: ['model.safetensors'] });
  const part = join(models, ...REPO.split('/'), 'model.safetensors.part');
  for (let i = 0; i < 400 && !existsSync(part); i++) await new Promise((r) => setTimeout(r, 5));
  await rm(models, { recursive: true, force: true });
  const err = await pulling.then(
    () => assert.fail('the pull succeeded without its folder'),
    (e: Error) => e,
  );
  assert.ok(err instanceof DownloadError, String(err));
  assert.match(err.message, /disappeared during the download \(ENOENT\)/);
  assert.doesNotMatch(err.message, /writable/);
});

test('the final check is by checksum: a finished file changed later in the pull is caught and the folder is not declared complete', async () => {
  hub.faults.trickle = { chunkBytes: 16_000, intervalMs: 15 };
  const store = new ModelStore({ modelsDirectory: models, endpoint: hub.endpoint, env: {}, retry: { retries: 0 } });
  const pulling = store.pull(REPO);
  const dir = join(models, ...REPO.split('/'));
  // config.json comes first; while the weights arrive, something rewrites it with other bytes of the same size.
  for (let i = 0; i < 400 && !existsSync(join(dir, 'model.safetensors.part')); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(existsSync(join(dir, 'config.json')));
  await writeFile(join(dir, 'config.json'), Buffer.from(config.toString().replace('64', '65')));
  await assert.rejects(pulling, (e: Error) => e instanceof DownloadError && e.code === 'corrupt' && /"config\.json" of acme\/slow-model is missing or was changed after it was verified/.test(e.message));
  assert.equal(existsSync(join(dir, '.recursivemas.json')), false);
  // Pulling again repairs it.
  hub.faults.trickle = undefined;
  const again = await store.pull(REPO);
  assert.deepEqual(again.reusedFiles, ['model.safetensors']);
  assert.deepEqual(await storedBytes('config.json'), config);
});
