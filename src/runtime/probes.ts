// Hardware probes for the execution providers: whether onnxruntime-node's CUDA provider and its
// system libraries load, and whether a WebGPU session runs (and on a real GPU or a software
// rasterizer). They run in short-lived child processes: a GPU driver can print on stdout (our
// protocol channel in some setups), hang, or crash, and none of that may reach the caller. Shared by
// the runtime process (which provider to use) and the extension host (the CUDA install, the models view).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { providerProbeModel } from '../engine/host';

export interface ProbeResult {
  available: boolean;
  /** Why the provider cannot be used (when unavailable). */
  reason?: string;
  /** The adapter is a CPU rasterizer (Mesa lavapipe, SwiftShader): usable, but slower than the CPU provider. */
  software?: boolean;
  note?: string;
}

const PROBE_TIMEOUT_MS = 20_000;
const MARKER = '@@recursivemas-probe ';

/** The folder holding onnxruntime-node's native binding (and, when installed, the CUDA provider). */
export function ortBindingDirectory(platform: string = process.platform, arch: string = process.arch): string {
  const require = createRequire(import.meta.url);
  const packageDir = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(packageDir, 'bin', 'napi-v6', platform, arch);
}

/** The files onnxruntime-node's install step adds next to the binding for CUDA. */
export function cudaProviderFiles(platform: string = process.platform): string[] {
  return platform === 'win32'
    ? ['onnxruntime_providers_cuda.dll', 'onnxruntime_providers_shared.dll']
    : ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];
}

/** The CUDA 12 / cuDNN 9 libraries the CUDA provider loads from the system. */
export function cudaSystemLibraries(platform: string = process.platform): string[] {
  return platform === 'win32'
    ? ['cudart64_12.dll', 'cublas64_12.dll', 'cublasLt64_12.dll', 'cudnn64_9.dll']
    : ['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcudnn.so.9'];
}

interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  result?: Record<string, unknown>;
  stderr: string;
  timedOut: boolean;
}

/** Runs a CommonJS snippet in a fresh Node and reads the one marked JSON line it prints. */
function runProbeChild(script: string, env: Record<string, string>, timeoutMs: number): Promise<ChildOutcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stderr: e.message, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(MARKER));
      let result: Record<string, unknown> | undefined;
      try {
        result = line ? (JSON.parse(line.slice(MARKER.length)) as Record<string, unknown>) : undefined;
      } catch {
        result = undefined;
      }
      resolve({ code, signal, result, stderr, timedOut });
    });
  });
}

function childFailure(what: string, outcome: ChildOutcome, timeoutMs: number): string {
  if (outcome.timedOut) return `the ${what} probe did not finish within ${timeoutMs / 1000} s`;
  const last = outcome.stderr.trim().split('\n').slice(-3).join(' / ');
  return `the ${what} probe ${outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.code}`}${last ? `: ${last}` : ''}`;
}

const DLOPEN_SCRIPT = `
const missing = [];
for (const lib of JSON.parse(process.env.PROBE_LIBS)) {
  try { process.dlopen({ exports: {} }, lib); }
  catch (e) { if (!/did not self-register/i.test(e.message)) missing.push(lib + ' (' + e.message.split('\\n')[0] + ')'); }
}
console.log(${JSON.stringify(MARKER)} + JSON.stringify({ missing }));
process.exit(0);
`;

/** CUDA is usable when onnxruntime-node's CUDA provider files are installed and the CUDA libraries load. */
export async function probeCuda(options: { bindingDirectory?: string; platform?: string; arch?: string; timeoutMs?: number } = {}): Promise<ProbeResult> {
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  if (!((platform === 'linux' || platform === 'win32') && arch === 'x64')) {
    return { available: false, reason: `onnxruntime-node has no CUDA provider for ${platform}-${arch}.` };
  }
  const dir = options.bindingDirectory ?? ortBindingDirectory(platform, arch);
  const absent = cudaProviderFiles(platform).filter((f) => !existsSync(join(dir, f)));
  if (absent.length) {
    return {
      available: false,
      reason:
        `onnxruntime-node's CUDA provider is not installed (${absent.join(', ')} missing in ${dir}). ` +
        'In VS Code run "RecursiveMAS: Install CUDA Support"; from a terminal, `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` where RecursiveMAS is installed.',
    };
  }
  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  const outcome = await runProbeChild(DLOPEN_SCRIPT, { PROBE_LIBS: JSON.stringify(cudaSystemLibraries(platform)) }, timeoutMs);
  const missing = outcome.result?.missing;
  if (!Array.isArray(missing)) return { available: false, reason: childFailure('CUDA library', outcome, timeoutMs) };
  if (missing.length) {
    return { available: false, reason: `CUDA 12 / cuDNN 9 libraries cannot be loaded: ${missing.join('; ')}. Install them or add their folder to ${platform === 'win32' ? 'PATH' : 'LD_LIBRARY_PATH'}.` };
  }
  return { available: true };
}

const WEBGPU_SCRIPT = `
const say = (r) => { console.log(${JSON.stringify(MARKER)} + JSON.stringify(r)); process.exit(0); };
(async () => {
  const ort = require(process.env.PROBE_ORT);
  const model = Buffer.from(process.env.PROBE_MODEL, 'base64');
  const session = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], logSeverityLevel: 3 });
  const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [1, 4]) });
  const y = Array.from(out.y.data);
  say(y.join(',') === '2,3,4,5' ? { ok: true } : { ok: false, reason: 'the WebGPU provider computed a wrong result (' + y.join(',') + ')' });
})().catch((e) => say({ ok: false, reason: String(e && e.message || e).split('\\n')[0] }));
`;

/**
 * The GPU device nodes of a Linux machine (DRM render nodes, NVIDIA, WSL2's dxg). A hardware Vulkan
 * driver needs one; an adapter found without any is a software rasterizer such as Mesa's lavapipe.
 */
export function linuxGpuDeviceNodes(devDirectory = '/dev'): string[] {
  const list = (dir: string) => {
    try {
      return readdirSync(join(devDirectory, dir));
    } catch {
      return [];
    }
  };
  return [
    ...list('dri').filter((n) => n.startsWith('renderD')).map((n) => `dri/${n}`),
    ...list('').filter((n) => /^nvidia\d+$/.test(n) || n === 'dxg'),
  ];
}

const SOFTWARE_NOTE =
  'the only WebGPU adapter is a software rasterizer (no GPU device under /dev): it is slower than the CPU provider, so "auto" does not pick it; choose "webgpu" explicitly to use it anyway.';

/** WebGPU is usable when a session with the webgpu provider can be created and run. */
export async function probeWebGpu(options: { timeoutMs?: number; platform?: string; devDirectory?: string } = {}): Promise<ProbeResult> {
  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  const require = createRequire(import.meta.url);
  const outcome = await runProbeChild(
    WEBGPU_SCRIPT,
    { PROBE_ORT: require.resolve('onnxruntime-node'), PROBE_MODEL: Buffer.from(providerProbeModel()).toString('base64') },
    timeoutMs,
  );
  if (!outcome.result) return { available: false, reason: childFailure('WebGPU', outcome, timeoutMs) };
  if (outcome.result.ok === true) {
    const platform = options.platform ?? process.platform;
    if (platform === 'linux' && linuxGpuDeviceNodes(options.devDirectory).length === 0) return { available: true, software: true, note: SOFTWARE_NOTE };
    return { available: true };
  }
  const why = typeof outcome.result.reason === 'string' ? outcome.result.reason : 'unknown error';
  const adapter = /adapter/i.test(why) ? 'no WebGPU adapter could be created (no GPU, or no Vulkan/Metal/D3D12 driver)' : 'the WebGPU provider failed to start';
  return { available: false, reason: `${adapter}: ${why.replace(/^.*?(Failed to get a WebGPU adapter)/, '$1')}` };
}
