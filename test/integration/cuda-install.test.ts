// "Install CUDA Support" against a NuGet feed on 127.0.0.1: the service index, the registration and
// catalog entry that carry the package's SHA-512, and the flat container with the .nupkg (a zip).
// The provider libraries land beside the binding; a damaged package or a cancel places nothing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DownloadError } from '../../src/runtime/store/download';
import { bundledOrtVersion, cudaPackage, installCudaSupport } from '../../src/runtime/store/cuda-install';
import { probeCuda } from '../../src/runtime/probes';
import { tempDir } from '../support/paths';
import { torchZip } from '../support/pt-writer';

const VERSION = bundledOrtVersion();
const pkg = cudaPackage('linux', 'x64')!;
const libraries = Object.fromEntries(Object.keys(pkg.files).map((f, i) => [f, Buffer.alloc(200_000 + i, i + 1)]));
const nupkg = Buffer.from(torchZip(null, [
  { name: `${pkg.id}.nuspec`, data: Buffer.from('<package/>') },
  ...Object.entries(pkg.files).map(([file, inPackage]) => ({ name: inPackage, data: libraries[file]! })),
  { name: 'runtimes/linux-x64/native/libonnxruntime.so', data: Buffer.alloc(1000, 9) },
]));

let served = nupkg;
let requests: string[] = [];
const server = http.createServer((req, res) => {
  const url = req.url ?? '';
  requests.push(url);
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const json = (body: unknown) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const id = pkg.id.toLowerCase();
  if (url === '/v3/index.json') {
    return json({ version: '3.0.0', resources: [
      { '@id': `${base}/flat/`, '@type': 'PackageBaseAddress/3.0.0' },
      { '@id': `${base}/registration/`, '@type': 'RegistrationsBaseUrl/3.6.0' },
    ] });
  }
  if (url === `/registration/${id}/${VERSION}.json`) return json({ catalogEntry: `${base}/catalog/${id}.${VERSION}.json` });
  if (url === `/catalog/${id}.${VERSION}.json`) return json({ packageHash: createHash('sha512').update(nupkg).digest('base64'), packageHashAlgorithm: 'SHA512' });
  if (url === `/flat/${id}/${VERSION}/${id}.${VERSION}.nupkg`) {
    res.writeHead(200, { 'content-length': served.length });
    return res.end(served);
  }
  res.writeHead(404);
  res.end();
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const feed = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3/index.json`;
after(() => new Promise<void>((r) => server.close(() => r())));

test('the CUDA provider of the bundled onnxruntime version is fetched, checked and placed beside the binding', async () => {
  const bindingDirectory = tempDir();
  const progress: number[] = [];
  const result = await installCudaSupport({ bindingDirectory, downloadDirectory: tempDir(), feed, platform: 'linux', arch: 'x64', onProgress: (p) => progress.push(p.bytes), progressIntervalMs: 0 });
  assert.equal(result.version, VERSION);
  assert.deepEqual(result.installed.sort(), Object.keys(pkg.files).sort());
  for (const [file, bytes] of Object.entries(libraries)) assert.ok(readFileSync(join(bindingDirectory, file)).equals(bytes), file);
  assert.ok(!existsSync(join(bindingDirectory, 'libonnxruntime.so')), 'only the provider libraries are taken');
  assert.deepEqual(readdirSync(bindingDirectory).filter((f) => f.startsWith('.')), [], 'no staging folder left');
  assert.ok(progress.length > 0 && progress.at(-1) === nupkg.length);
  // With the provider files in place the probe moves on to the system's CUDA libraries (absent here).
  const probe = await probeCuda({ bindingDirectory, platform: 'linux', arch: 'x64' });
  assert.equal(probe.available, false);
  assert.doesNotMatch(probe.reason ?? '', /provider is not installed/);
});

test('a package that does not match its listed SHA-512 is deleted and nothing is installed', async () => {
  const bindingDirectory = tempDir();
  const downloadDirectory = tempDir();
  served = Buffer.from(nupkg);
  const middle = served.length >> 1;
  served.writeUInt8(served.readUInt8(middle) ^ 0xff, middle);
  try {
    await assert.rejects(
      installCudaSupport({ bindingDirectory, downloadDirectory, feed, platform: 'linux', arch: 'x64' }),
      (e: unknown) => e instanceof DownloadError && e.code === 'corrupt' && /SHA-512/.test(e.message),
    );
  } finally {
    served = nupkg;
  }
  assert.deepEqual(readdirSync(bindingDirectory), []);
  assert.deepEqual(readdirSync(downloadDirectory).filter((f) => f.endsWith('.nupkg')), []);
});

test('a cancelled install places nothing; an unsupported platform is refused in one line', async () => {
  const bindingDirectory = tempDir();
  const controller = new AbortController();
  controller.abort();
  requests = [];
  await assert.rejects(installCudaSupport({ bindingDirectory, downloadDirectory: tempDir(), feed, platform: 'linux', arch: 'x64', signal: controller.signal }), (e: unknown) => e instanceof DownloadError && e.code === 'cancelled');
  assert.deepEqual(readdirSync(bindingDirectory), []);
  await assert.rejects(installCudaSupport({ bindingDirectory, downloadDirectory: tempDir(), feed, platform: 'darwin', arch: 'arm64' }), /Linux and Windows on x64/);
});
