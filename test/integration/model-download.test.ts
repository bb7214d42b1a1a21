// The model manager against a real HTTP(S) server on 127.0.0.1 that behaves like the hub.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { DownloadError, downloadFile, proxyForUrl } from '../../src/runtime/store/download';
import { resolveHubConfig, validateRepoFilePath, validateRepoId } from '../../src/runtime/store/hub';
import { globToRegExp, ModelStore, type PullProgress } from '../../src/runtime/store/store';
import { FakeHub, sha256Hex, type FakeFile } from '../support/fake-hub';

const REPO = 'acme/tiny-model';
const SHA = 'c0ffee'.padEnd(40, '0');
const weights = randomBytes(300_000);
const config = Buffer.from(JSON.stringify({ model_type: 'llama', hidden_size: 64 }, null, 2));
const tokenizer = Buffer.from(JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: { a: 0, b: 1 } } }));
const onnx = randomBytes(20_000);
const FILES: FakeFile[] = [
  { path: 'config.json', content: config },
  { path: 'tokenizer.json', content: tokenizer },
  { path: 'model.safetensors', content: weights, lfs: true },
  { path: 'onnx/model.onnx', content: onnx, lfs: true },
];
const TOTAL = FILES.reduce((sum, f) => sum + f.content.length, 0);
const FAST_RETRY = { retries: 4, baseDelayMs: 5, maxDelayMs: 20 };

let hub: FakeHub;
let root: string;
let modelsDirectory: string;

function store(extra: Partial<ConstructorParameters<typeof ModelStore>[0]> = {}): ModelStore {
  return new ModelStore({ modelsDirectory, endpoint: hub.endpoint, env: {}, retry: FAST_RETRY, fetchTimeoutMs: 5_000, ...extra });
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<DownloadError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DownloadError, `expected a DownloadError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected a rejection with code ${code}`);
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'model-download-'));
  hub = await FakeHub.start({
    treePageSize: 2, // exercises the tree endpoint's Link pagination
    lifetimeMs: 60_000,
    repos: {
      [REPO]: { sha: SHA, files: FILES },
      'acme/other': { sha: 'b'.repeat(40), files: [{ path: 'config.json', content: config }] },
      'acme/evil': { files: [{ path: 'config.json', content: config }], listOnly: ['../../escape.txt'] },
      'acme/evil-abs': { files: [{ path: 'config.json', content: config }], listOnly: ['/etc/passwd'] },
      'acme/evil-clash': { files: [{ path: 'config.json', content: config }], listOnly: ['config.json/inner', '.recursivemas.json'] },
    },
  });
});

after(async () => {
  await hub.stop();
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  hub.reset();
  modelsDirectory = await mkdtemp(join(root, 'models-'));
});

test('a normal pull writes every file, then the manifest, with sane progress', async () => {
  const events: PullProgress[] = [];
  const s = store({ progressIntervalMs: 0 });
  const result = await s.pull(REPO, { onProgress: (p) => events.push(p) });

  const dir = join(modelsDirectory, 'acme', 'tiny-model');
  assert.equal(result.directory, dir);
  assert.equal(result.commit, SHA);
  assert.equal(result.downloadedBytes, TOTAL);
  for (const f of FILES) assert.deepEqual(await readFile(join(dir, f.path)), f.content, f.path);
  assert.equal(existsSync(join(dir, 'model.safetensors.part')), false);

  const manifest = JSON.parse(await readFile(join(dir, '.recursivemas.json'), 'utf8'));
  assert.equal(manifest.repo, REPO);
  assert.equal(manifest.commit, SHA);
  assert.equal(manifest.revision, 'main');
  assert.ok(!Number.isNaN(Date.parse(manifest.completedAt)));
  const weightsEntry = manifest.files.find((f: { path: string }) => f.path === 'model.safetensors');
  assert.deepEqual(weightsEntry, { path: 'model.safetensors', size: weights.length, sha256: sha256Hex(weights) });
  assert.equal(manifest.files.length, FILES.length);
  assert.equal(await s.isComplete(REPO), true);

  assert.ok(events.length >= FILES.length, `only ${events.length} progress events`);
  for (let i = 1; i < events.length; i++) assert.ok(events[i]!.bytes >= events[i - 1]!.bytes, 'progress went backwards');
  const last = events[events.length - 1]!;
  assert.equal(last.total, TOTAL);
  assert.equal(last.bytes, TOTAL);
  assert.equal(last.filesDone, FILES.length);
  assert.ok(last.rateBytesPerS > 0);
  assert.equal(last.etaS, 0);

  // Downloads are pinned to the commit, the listing was paginated, and a second pull reuses everything.
  assert.ok(hub.requests.some((r) => r.path === `/acme/tiny-model/resolve/${SHA}/model.safetensors`));
  assert.ok(hub.requests.filter((r) => r.path.includes('/tree/')).length >= 2);
  hub.reset();
  const again = await s.pull(REPO);
  assert.equal(again.downloadedBytes, 0);
  assert.equal(again.reusedFiles.length, FILES.length);
  assert.equal(hub.contentRequests().length, 0);
});

test('a file filter pulls only matching files', async () => {
  const s = store();
  const result = await s.pull(REPO, { files: ['*.json'] });
  assert.deepEqual(result.files.map((f) => f.path).sort(), ['config.json', 'tokenizer.json']);
  assert.equal(existsSync(join(result.directory, 'model.safetensors')), false);
  assert.equal(await s.isComplete(REPO), true);
  assert.equal(hub.contentRequests('model.safetensors').length, 0);
  await rejectsWith(s.pull(REPO, { files: ['*.gguf'] }), 'not-found');
  assert.ok(globToRegExp('*.safetensors').test('onnx/x.safetensors'));
  assert.ok(!globToRegExp('config.json').test('configxjson'));
});

test('a transfer cut in the middle resumes with a Range request', async () => {
  hub.faults.cutAfterBytes = 100_000;
  const s = store();
  const result = await s.pull(REPO, { files: ['model.safetensors'] });
  const served = hub.contentRequests('model.safetensors');
  assert.equal(served.length, 2);
  assert.equal(served[0]!.range, undefined);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(served[1]!.range ?? '')?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= 100_000, `resumed at ${served[1]!.range}`);
  assert.equal(served[1]!.status, 206);
  const onDisk = await readFile(join(result.directory, 'model.safetensors'));
  assert.equal(sha256Hex(onDisk), sha256Hex(weights));
});

test('corrupted bytes are rejected: no final file, no .part, no manifest', async () => {
  hub.faults.corrupt = true;
  const s = store();
  const err = await rejectsWith(s.pull(REPO, { files: ['model.safetensors'] }), 'corrupt');
  assert.match(err.message, /model\.safetensors/);
  const dir = s.directoryFor(REPO);
  assert.equal(existsSync(join(dir, 'model.safetensors')), false);
  assert.equal(existsSync(join(dir, 'model.safetensors.part')), false);
  assert.equal(existsSync(join(dir, '.recursivemas.json')), false);
  assert.equal(await s.isComplete(REPO), false);
  // Files stored in git are checked against their blob id too.
  await rejectsWith(s.pull(REPO, { files: ['config.json'] }), 'corrupt');
  assert.equal(existsSync(join(dir, 'config.json')), false);
});

test('401 tells the user to set HF_TOKEN, never echoes the token, and the CDN never gets it', async () => {
  hub.faults.requireToken = 'hf_right_token';
  const none = await rejectsWith(store().pull(REPO), 'unauthorized');
  assert.match(none.message, /HF_TOKEN/);
  assert.match(none.message, /licen[cs]e/);
  const wrong = await rejectsWith(store({ token: 'hf_wrong_token' }).pull(REPO), 'unauthorized');
  assert.ok(!wrong.message.includes('hf_wrong_token'));
  assert.ok(!JSON.stringify(wrong).includes('hf_wrong_token'));

  hub.reset();
  hub.faults.requireToken = 'hf_right_token';
  const result = await store({ env: { HF_TOKEN: 'hf_right_token' } }).pull(REPO);
  assert.equal(result.files.length, FILES.length);
  const toHub = hub.requests.filter((r) => r.server === 'hub');
  const toCdn = hub.requests.filter((r) => r.server === 'cdn');
  assert.ok(toHub.length > 0 && toHub.every((r) => r.authorization === 'Bearer hf_right_token'));
  assert.ok(toCdn.length === 2 && toCdn.every((r) => r.authorization === undefined));
});

test('404 names the repo, file and revision', async () => {
  const repoErr = await rejectsWith(store().pull('acme/missing', { revision: 'v2' }), 'not-found');
  assert.match(repoErr.message, /acme\/missing/);
  assert.match(repoErr.message, /v2/);
  hub.faults.missingFiles = ['tokenizer.json'];
  const fileErr = await rejectsWith(store().pull(REPO), 'not-found');
  assert.match(fileErr.message, /tokenizer\.json/);
  assert.match(fileErr.message, /acme\/tiny-model/);
  assert.match(fileErr.message, /main/);
});

test('5xx is retried until it succeeds; Retry-After is honoured', async () => {
  hub.faults = { failFirst: 2, failStatus: 500, failOn: 'content' };
  const result = await store().pull(REPO, { files: ['config.json'] });
  assert.equal(result.files.length, 1);
  assert.equal(hub.requests.filter((r) => r.status === 500).length, 2);
  assert.deepEqual(await readFile(join(result.directory, 'config.json')), config);

  hub.reset();
  hub.faults = { failFirst: 1, failStatus: 429, failOn: 'api', retryAfterS: 1 };
  const started = Date.now();
  await store().pull('acme/other');
  assert.ok(Date.now() - started >= 900, 'Retry-After: 1 was not waited for');

  hub.reset();
  hub.faults = { failFirst: 100, failStatus: 503, failOn: 'api' };
  await rejectsWith(store({ retry: { retries: 2, baseDelayMs: 1 } }).pull('acme/other'), 'server');
  assert.equal(hub.requests.length, 3, 'retries are bounded');
});

test('cancellation mid-file rejects as cancelled, keeps the .part, and a later pull resumes it', async () => {
  hub.faults.trickle = { chunkBytes: 8192, intervalMs: 15 };
  const controller = new AbortController();
  const s = store({ progressIntervalMs: 0 });
  const pulling = s.pull(REPO, {
    files: ['model.safetensors'],
    signal: controller.signal,
    onProgress: (p) => {
      if (p.fileBytes >= 40_000) controller.abort();
    },
  });
  await rejectsWith(pulling, 'cancelled');
  const dir = s.directoryFor(REPO);
  assert.equal(existsSync(join(dir, 'model.safetensors')), false);
  assert.equal(existsSync(join(dir, '.recursivemas.json')), false);
  assert.equal(await s.isComplete(REPO), false);
  const partSize = (await stat(join(dir, 'model.safetensors.part'))).size;
  assert.ok(partSize >= 40_000 && partSize < weights.length, `part has ${partSize} bytes`);

  hub.reset();
  const result = await s.pull(REPO, { files: ['model.safetensors'] });
  assert.equal(hub.contentRequests('model.safetensors')[0]!.range, `bytes=${partSize}-`);
  assert.equal(result.downloadedBytes, weights.length - partSize);
  assert.equal(sha256Hex(await readFile(join(dir, 'model.safetensors'))), sha256Hex(weights));
});

test('a server that ignores Range restarts the file from byte 0', async () => {
  const dest = join(modelsDirectory, 'direct', 'weights.bin');
  await mkdir(join(modelsDirectory, 'direct'), { recursive: true });
  await writeFile(`${dest}.part`, weights.subarray(0, 50_000));
  hub.faults.ignoreRange = true;
  const result = await downloadFile({
    url: `${hub.endpoint}/${REPO}/resolve/main/model.safetensors`,
    destination: dest,
    size: weights.length,
    sha256: sha256Hex(weights),
    env: {},
  });
  assert.equal(result.resumedFrom, 50_000);
  assert.equal(result.fetchedBytes, weights.length);
  assert.deepEqual(await readFile(dest), weights);
});

test('progress is throttled and ends with a final event at the full size', async () => {
  hub.faults.trickle = { chunkBytes: 8192, intervalMs: 10 };
  const events: Array<{ bytes: number; total: number; rateBytesPerS: number; etaS: number }> = [];
  const started = Date.now();
  await downloadFile({
    url: `${hub.endpoint}/${REPO}/resolve/main/model.safetensors`,
    destination: join(modelsDirectory, 'throttled.bin'),
    size: weights.length,
    sha256: sha256Hex(weights),
    env: {},
    progressIntervalMs: 100,
    onProgress: (p) => events.push(p),
  });
  const elapsed = Date.now() - started;
  assert.ok(events.length >= 2, `${events.length} events`);
  assert.ok(events.length <= Math.ceil(elapsed / 100) + 2, `${events.length} events in ${elapsed} ms`);
  for (let i = 1; i < events.length; i++) assert.ok(events[i]!.bytes >= events[i - 1]!.bytes);
  const last = events[events.length - 1]!;
  assert.equal(last.bytes, weights.length);
  assert.equal(last.total, weights.length);
  assert.ok(last.rateBytesPerS > 0);
  assert.ok(Number.isFinite(events[0]!.etaS) && events[0]!.etaS > 0);
});

test('a stalled connection times out after fetchTimeoutMs instead of hanging', async () => {
  hub.faults.trickle = { chunkBytes: 1, intervalMs: 1_000 };
  const s = store({ fetchTimeoutMs: 150, retry: { retries: 1, baseDelayMs: 1 } });
  const started = Date.now();
  const err = await rejectsWith(s.pull(REPO, { files: ['config.json'] }), 'network');
  assert.match(err.message, /ETIMEDOUT/);
  assert.ok(Date.now() - started < 2_000);
  assert.equal(hub.contentRequests('config.json').length, 2, 'one retry after the first timeout');
});

test('a full disk (tiny quota) is refused before any byte is written', async () => {
  const s = store({ freeSpace: async () => 1000 });
  const err = await rejectsWith(s.pull(REPO), 'no-space');
  assert.ok(err.message.includes(String(TOTAL)), err.message);
  assert.ok(err.message.includes('1000'), err.message);
  assert.equal(hub.contentRequests().length, 0);
  assert.equal(existsSync(join(modelsDirectory, 'acme')), false);
});

test('a complete folder is used offline with the server stopped; plain folders work too', async () => {
  const own = await FakeHub.start({ repos: { [REPO]: { sha: SHA, files: FILES } }, lifetimeMs: 10_000 });
  const online = new ModelStore({ modelsDirectory, endpoint: own.endpoint, env: {} });
  await online.pull(REPO);
  await own.stop();

  const offline = new ModelStore({ modelsDirectory, endpoint: own.endpoint, env: {}, retry: { retries: 0 } });
  const dir = await offline.localPath(REPO);
  assert.equal(dir, join(modelsDirectory, 'acme', 'tiny-model'));
  assert.equal(await offline.ensure(REPO), dir);
  await rejectsWith(offline.localPath('acme/not-here'), 'not-found');
  await rejectsWith(offline.pull('acme/not-here'), 'network');

  const plain = join(root, 'my-local-model');
  await mkdir(plain, { recursive: true });
  assert.equal(await offline.localPath(plain), plain);
  await rejectsWith(offline.localPath(join(root, 'no-such-folder')), 'not-found');

  // Truncating a listed file makes the folder incomplete again.
  await writeFile(join(dir, 'config.json'), '{}');
  assert.equal(await offline.isComplete(REPO), false);
});

test('list and remove', async () => {
  const s = store();
  await s.pull(REPO, { files: ['config.json'] });
  await mkdir(join(modelsDirectory, 'acme', 'partial'), { recursive: true });
  await writeFile(join(modelsDirectory, 'acme', 'partial', 'model.safetensors.part'), Buffer.alloc(1234));

  const listed = await s.list();
  assert.deepEqual(
    listed.map((e) => [e.repo, e.complete]),
    [
      ['acme/partial', false],
      ['acme/tiny-model', true],
    ],
  );
  assert.equal(listed[0]!.sizeBytes, 1234);
  assert.ok(listed[1]!.sizeBytes > config.length); // the file plus its manifest
  assert.equal(listed[1]!.commit, SHA);

  assert.equal(await s.remove(REPO), true);
  assert.equal(existsSync(join(modelsDirectory, 'acme', 'tiny-model')), false);
  assert.equal(await s.remove(REPO), false);
  assert.equal(await s.remove('acme/partial'), true);
  assert.equal(existsSync(join(modelsDirectory, 'acme')), false);
  assert.deepEqual(await s.list(), []);

  // An owner folder that links outside the models folder is never deleted through.
  const outside = await mkdtemp(join(root, 'outside-'));
  await mkdir(join(outside, 'name'));
  await writeFile(join(outside, 'name', 'keep.txt'), 'keep');
  await symlink(outside, join(modelsDirectory, 'linked'), 'dir');
  await rejectsWith(s.remove('linked/name'), 'bad-path');
  assert.equal(await readFile(join(outside, 'name', 'keep.txt'), 'utf8'), 'keep');
  assert.throws(() => s.directoryFor('../etc'), DownloadError);
});

test('path traversal in a hub file list is refused before anything is fetched', async () => {
  const s = store();
  const err = await rejectsWith(s.pull('acme/evil'), 'bad-path');
  assert.match(err.message, /\.\.\/\.\.\/escape\.txt/);
  await rejectsWith(s.pull('acme/evil-abs'), 'bad-path');
  await rejectsWith(s.pull('acme/evil-clash'), 'bad-path');
  assert.equal(hub.contentRequests().length, 0);
  assert.equal(existsSync(join(modelsDirectory, 'acme')), false);
  assert.equal(existsSync(join(root, 'escape.txt')), false);

  for (const bad of ['../x', '/abs', 'a/../b', 'a\\b', 'C:/x', 'c:x', 'a//b', './a', 'a/\u0000']) {
    assert.throws(() => validateRepoFilePath(bad), DownloadError, bad);
  }
  assert.equal(validateRepoFilePath('onnx/model.onnx_data'), 'onnx/model.onnx_data');
  for (const bad of ['a', 'a/b/c', '../b', 'a/..', 'a/.b', '/a/b', 'a/b c']) {
    assert.throws(() => validateRepoId(bad), DownloadError, bad);
  }
  await rejectsWith(s.pull(REPO, { revision: '../../etc' }), 'bad-path');
});

test('endpoint rules: https only, except http to loopback; HF_ENDPOINT and HF_TOKEN from the environment', () => {
  assert.throws(() => resolveHubConfig({ endpoint: 'http://example.com', env: {} }), /HTTPS/);
  assert.throws(() => resolveHubConfig({ endpoint: 'ftp://127.0.0.1', env: {} }), DownloadError);
  assert.equal(resolveHubConfig({ env: {} }).endpoint, 'https://huggingface.co');
  const fromEnv = resolveHubConfig({ env: { HF_ENDPOINT: 'https://hf-mirror.example/', HF_TOKEN: 'hf_x' } });
  assert.equal(fromEnv.endpoint, 'https://hf-mirror.example');
  assert.equal(fromEnv.transport.token, 'hf_x');
  assert.equal(resolveHubConfig({ endpoint: 'http://[::1]:8080', env: {} }).endpoint, 'http://[::1]:8080');

  const target = new URL('https://huggingface.co/x');
  assert.equal(proxyForUrl(target, { env: { https_proxy: 'http://proxy:3128' } })?.host, 'proxy:3128');
  assert.equal(proxyForUrl(target, { env: { HTTPS_PROXY: 'proxy:3128', NO_PROXY: '.huggingface.co' } }), undefined);
  assert.equal(proxyForUrl(target, { env: { HTTPS_PROXY: 'proxy:3128', NO_PROXY: 'example.com, huggingface.co:443' } }), undefined);
  assert.equal(proxyForUrl(new URL('https://cdn-lfs.huggingface.co/'), { env: { HTTPS_PROXY: 'p:1', NO_PROXY: 'huggingface.co' } }), undefined);
  assert.ok(proxyForUrl(new URL('https://nothuggingface.co/'), { env: { HTTPS_PROXY: 'p:1', NO_PROXY: 'huggingface.co' } }));
  assert.equal(proxyForUrl(target, { env: { HTTPS_PROXY: 'p:1' }, proxy: null }), undefined);
});

/** A tiny CONNECT-only proxy on 127.0.0.1 that records the tunnels it opened. */
async function startConnectProxy(): Promise<{ url: string; tunnels: string[]; close: () => Promise<void> }> {
  const tunnels: string[] = [];
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server = net.createServer((client) => {
    track(client);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 8192) client.destroy();
        return;
      }
      client.off('data', onData);
      const line = head.subarray(0, head.indexOf('\r\n')).toString();
      const match = /^CONNECT 127\.0\.0\.1:(\d+) HTTP\/1\.1$/.exec(line);
      if (!match) return void client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      tunnels.push(`127.0.0.1:${match[1]}`);
      const upstream = net.connect(Number(match[1]), '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      track(upstream);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const safety = setTimeout(() => server.close(), 30_000);
  safety.unref();
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    tunnels,
    close: async () => {
      clearTimeout(safety);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('HTTPS through a CONNECT proxy from HTTPS_PROXY; NO_PROXY bypasses it', async () => {
  const secureHub = await FakeHub.start({ tls: true, repos: { [REPO]: { sha: SHA, files: FILES } }, lifetimeMs: 20_000 });
  const proxy = await startConnectProxy();
  try {
    const viaProxy = new ModelStore({
      modelsDirectory,
      endpoint: secureHub.endpoint,
      env: { HTTPS_PROXY: proxy.url, HF_TOKEN: 'hf_proxy_token' },
      ca: secureHub.ca,
    });
    const result = await viaProxy.pull(REPO);
    assert.equal(sha256Hex(await readFile(join(result.directory, 'model.safetensors'))), sha256Hex(weights));
    const hubHost = new URL(secureHub.endpoint).host;
    const cdnHost = new URL(secureHub.cdnOrigin).host;
    assert.ok(proxy.tunnels.includes(hubHost), `no tunnel to the hub: ${proxy.tunnels.join(', ')}`);
    assert.ok(proxy.tunnels.includes(cdnHost), `no tunnel to the CDN: ${proxy.tunnels.join(', ')}`);
    assert.ok(secureHub.requests.filter((r) => r.server === 'hub').every((r) => r.authorization === 'Bearer hf_proxy_token'));

    const tunnelsBefore = proxy.tunnels.length;
    const bypass = new ModelStore({
      modelsDirectory: join(modelsDirectory, 'second'),
      endpoint: secureHub.endpoint,
      env: { HTTPS_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' },
      ca: secureHub.ca,
    });
    await bypass.pull(REPO, { files: ['config.json'] });
    assert.equal(proxy.tunnels.length, tunnelsBefore);

    // Without the test CA the TLS check holds even through the tunnel.
    const untrusted = new ModelStore({
      modelsDirectory: join(modelsDirectory, 'third'),
      endpoint: secureHub.endpoint,
      env: { HTTPS_PROXY: proxy.url },
      retry: { retries: 0 },
    });
    const err = await rejectsWith(untrusted.pull(REPO), 'network');
    assert.match(err.message, /certificate/i);
  } finally {
    await proxy.close();
    await secureHub.stop();
  }
});
