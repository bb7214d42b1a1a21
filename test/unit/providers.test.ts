// Execution-provider choice. The real probes run here (no GPU, CUDA libraries not installed); the
// "GPU present" cases replace the probes with stubs, the one edge this machine cannot reach.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cudaProviderFiles, linuxGpuDeviceNodes, probeCuda, probeWebGpu, type ProbeResult } from '../../src/runtime/probes';
import { ProviderChooser, resolveThreads } from '../../src/runtime/process/providers';
import { tempDir } from '../support/paths';

const yes = async (): Promise<ProbeResult> => ({ available: true });
const no = (reason: string) => async (): Promise<ProbeResult> => ({ available: false, reason });

test('auto prefers CUDA, then WebGPU, then the CPU (GPU presence stubbed)', async () => {
  assert.equal((await new ProviderChooser({ probes: { cuda: yes, webgpu: yes } }).resolve('auto')).device, 'cuda');
  assert.equal((await new ProviderChooser({ probes: { cuda: no('no libs'), webgpu: yes } }).resolve('auto')).device, 'webgpu');
  assert.equal((await new ProviderChooser({ probes: { cuda: no('no libs'), webgpu: no('no adapter') } }).resolve('auto')).device, 'cpu');
});

test('an explicit choice is honoured when possible and refused with the reason otherwise', async () => {
  const chooser = new ProviderChooser({ probes: { cuda: no('libcudart.so.12 is missing'), webgpu: yes } });
  assert.equal((await chooser.resolve('webgpu')).device, 'webgpu');
  assert.equal((await chooser.resolve('cpu')).device, 'cpu');
  await assert.rejects(chooser.resolve('cuda'), (e: Error & { code?: string; action?: string }) => {
    assert.equal(e.name, 'UserError');
    assert.equal(e.code, 'device-unavailable');
    assert.equal(e.message, 'CUDA was requested but cannot be used here: libcudart.so.12 is missing');
    assert.match(e.action!, /"auto" or "cpu"/);
    return true;
  });
  const list = await chooser.providers();
  assert.deepEqual(list, [
    { name: 'cuda', available: false, reason: 'libcudart.so.12 is missing' },
    { name: 'webgpu', available: true },
    { name: 'cpu', available: true },
  ]);
});

test('a provider that failed at session creation is skipped by auto from then on', async () => {
  const chooser = new ProviderChooser({ probes: { cuda: yes, webgpu: yes } });
  chooser.markFailed('cuda', 'CUDA failed to create a session: out of memory');
  assert.equal((await chooser.resolve('auto')).device, 'webgpu');
  await assert.rejects(chooser.resolve('cuda'), /out of memory/);
});

test('probe answers are cached, and a probe that throws counts as unavailable', async () => {
  let calls = 0;
  const chooser = new ProviderChooser({
    probes: {
      cuda: async () => {
        calls++;
        throw new Error('driver exploded');
      },
      webgpu: no('none'),
    },
  });
  await chooser.providers();
  const list = await chooser.providers();
  assert.equal(calls, 1);
  assert.deepEqual(list[0], { name: 'cuda', available: false, reason: 'the CUDA probe failed: driver exploded' });
});

test('real CUDA probe: missing provider files, then missing CUDA libraries, are told apart', async () => {
  const empty = tempDir('rmas-ort-bin-');
  const missingFiles = await probeCuda({ bindingDirectory: empty, platform: 'linux', arch: 'x64' });
  assert.equal(missingFiles.available, false);
  assert.match(missingFiles.reason!, /CUDA provider is not installed \(libonnxruntime_providers_cuda\.so, libonnxruntime_providers_shared\.so missing/);
  assert.match(missingFiles.reason!, /npm rebuild onnxruntime-node/);
  // With the provider files present, the system's CUDA libraries are what is missing on this machine.
  for (const f of cudaProviderFiles('linux')) writeFileSync(join(empty, f), '');
  const missingLibs = await probeCuda({ bindingDirectory: empty, platform: 'linux', arch: 'x64' });
  assert.equal(missingLibs.available, false);
  assert.match(missingLibs.reason!, /libcudart\.so\.12 \(.*cannot open shared object file/);
  assert.match(missingLibs.reason!, /LD_LIBRARY_PATH/);
  const mac = await probeCuda({ platform: 'darwin', arch: 'arm64' });
  assert.match(mac.reason!, /no CUDA provider for darwin-arm64/);
  // The checkout's own onnxruntime-node was installed without the CUDA download (.npmrc).
  assert.match((await probeCuda()).reason!, /not installed/);
});

test('real WebGPU probe: a session is created and run in a child process, or the reason is given', async () => {
  // This machine has no GPU; whether Mesa's lavapipe (a software Vulkan driver) is installed varies,
  // so both outcomes are checked for what they must say.
  const started = performance.now();
  const r = await probeWebGpu();
  console.log(`WebGPU probe answered in ${(performance.now() - started).toFixed(0)} ms: ${JSON.stringify(r)}`);
  if (r.available) {
    assert.equal(r.software, linuxGpuDeviceNodes().length === 0 ? true : undefined);
    if (r.software) assert.match(r.note!, /software rasterizer/);
  } else {
    assert.match(r.reason!, /no WebGPU adapter could be created|WebGPU provider failed/);
  }
  const short = await probeWebGpu({ timeoutMs: 1 });
  assert.equal(short.available, false);
  assert.match(short.reason!, /did not finish within/);
});

test('GPU device nodes tell a hardware adapter from a software rasterizer', () => {
  const dev = tempDir('rmas-dev-');
  assert.deepEqual(linuxGpuDeviceNodes(dev), []);
  mkdirSync(join(dev, 'dri'));
  writeFileSync(join(dev, 'dri', 'card0'), '');
  assert.deepEqual(linuxGpuDeviceNodes(dev), []);
  writeFileSync(join(dev, 'dri', 'renderD128'), '');
  writeFileSync(join(dev, 'nvidia0'), '');
  writeFileSync(join(dev, 'nvidiactl'), '');
  assert.deepEqual(linuxGpuDeviceNodes(dev).sort(), ['dri/renderD128', 'nvidia0']);
});

test('auto passes over a software WebGPU adapter; an explicit choice uses it with a warning', async () => {
  const chooser = new ProviderChooser({
    probes: { cuda: no('not installed'), webgpu: async () => ({ available: true, software: true, note: 'software rasterizer' }) },
  });
  assert.deepEqual(await chooser.resolve('auto'), { device: 'cpu', warnings: [] });
  const explicit = await chooser.resolve('webgpu');
  assert.equal(explicit.device, 'webgpu');
  assert.match(explicit.warnings[0]!, /software adapter .* much slower than the CPU/);
  assert.deepEqual((await chooser.providers())[1], { name: 'webgpu', available: true, note: 'software rasterizer' });
});

test('thread counts: 0 or nothing leaves ORT its default; too many are capped with a warning', () => {
  assert.deepEqual(resolveThreads(undefined, 8), { threads: undefined });
  assert.deepEqual(resolveThreads(0, 8), { threads: undefined });
  assert.deepEqual(resolveThreads(4, 8), { threads: 4 });
  assert.deepEqual(resolveThreads(64, 8), { threads: 8, warning: '64 threads were requested but this machine has 8; using 8.' });
  assert.throws(() => resolveThreads(-1, 8), /whole number/);
});
