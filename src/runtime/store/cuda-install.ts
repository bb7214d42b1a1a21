// "Install CUDA Support": onnxruntime-node ships without its CUDA provider (too large for npm); its
// own install script fetches it from NuGet, which a user installing a VSIX never runs. This does the
// same with the model manager's machinery (resume, proxy, retries, progress, cancel): the NuGet
// package of exactly the bundled onnxruntime version, checked against the SHA-512 the feed's
// catalog lists, and the provider libraries placed next to the binding, where the runtime's CUDA
// probe and onnxruntime look for them. Runs in the extension host or the CLI, never in the runtime.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { DownloadError, downloadFile, getJson, type DownloadProgress, type TransportOptions } from './download';

export const NUGET_INDEX = 'https://api.nuget.org/v3/index.json';

/** The NuGet package and the files onnxruntime-node's install step takes from it, per platform. */
export function cudaPackage(platform: string, arch: string): { id: string; files: Record<string, string> } | undefined {
  if (arch !== 'x64') return undefined;
  if (platform === 'linux') {
    const native = 'runtimes/linux-x64/native';
    return {
      id: 'Microsoft.ML.OnnxRuntime.Gpu.Linux',
      files: Object.fromEntries(['cuda', 'shared', 'tensorrt'].map((p) => [`libonnxruntime_providers_${p}.so`, `${native}/libonnxruntime_providers_${p}.so`])),
    };
  }
  if (platform === 'win32') {
    const native = 'runtimes/win-x64/native';
    return {
      id: 'Microsoft.ML.OnnxRuntime.Gpu.Windows',
      files: Object.fromEntries(['cuda', 'shared', 'tensorrt'].map((p) => [`onnxruntime_providers_${p}.dll`, `${native}/onnxruntime_providers_${p}.dll`])),
    };
  }
  return undefined;
}

/** The onnxruntime-node version this build bundles: the CUDA provider must match it exactly. */
export function bundledOrtVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('onnxruntime-node/package.json') as { version: string }).version;
}

export interface CudaInstallOptions extends TransportOptions {
  /** Where the binding lives (the runtime's `ortBindingDirectory`). */
  bindingDirectory: string;
  /** Keeps the downloaded package, so a cancelled install resumes. */
  downloadDirectory: string;
  /** NuGet v3 service index (a mirror may stand in); default nuget.org. */
  feed?: string;
  version?: string;
  platform?: string;
  arch?: string;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  progressIntervalMs?: number;
}

export interface CudaInstallResult {
  version: string;
  packageId: string;
  installed: string[];
  bindingDirectory: string;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function feedError(what: string): DownloadError {
  return new DownloadError('server', `The NuGet feed answered in an unexpected form (${what}). Check the feed address, or try again later.`);
}

function resource(index: unknown, type: string): string {
  const list = isObj(index) && Array.isArray(index.resources) ? index.resources : [];
  const hit = list.find((r): r is Json => isObj(r) && typeof r['@id'] === 'string' && String(r['@type']).startsWith(type));
  if (!hit) throw feedError(`its service index lists no ${type}`);
  const id = hit['@id'] as string;
  return id.endsWith('/') ? id : `${id}/`;
}

/** The package's SHA-512 (base64) from its catalog entry, reached through the registration. */
async function packageHash(index: unknown, id: string, version: string, ctx: Parameters<typeof getJson>[1]): Promise<string> {
  const registration = resource(index, 'RegistrationsBaseUrl');
  const { body: leaf } = await getJson(new URL(`${id.toLowerCase()}/${version.toLowerCase()}.json`, registration), ctx);
  const entry = isObj(leaf) ? leaf.catalogEntry : undefined;
  let catalog: unknown = entry;
  if (typeof entry === 'string') catalog = (await getJson(new URL(entry), ctx)).body;
  const algorithm = isObj(catalog) ? (catalog.packageHashAlgorithm ?? 'SHA512') : undefined;
  if (!isObj(catalog) || typeof catalog.packageHash !== 'string' || typeof algorithm !== 'string' || algorithm.toUpperCase() !== 'SHA512') {
    throw feedError(`no SHA-512 for ${id} ${version}`);
  }
  return catalog.packageHash;
}

async function sha512Base64(path: string): Promise<string> {
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('base64');
}

/** No provider library is near this size (the CUDA one is about 400 MB); a larger claim is hostile. */
const MAX_LIBRARY_BYTES = 4 * 1024 ** 3;

/** Extracts `wanted` (name in package -> file name) from a zip into `folder`. */
async function extract(zipPath: string, wanted: Map<string, string>, folder: string): Promise<string[]> {
  const zip = await yauzl.openPromise(zipPath, { autoClose: false, validateEntrySizes: true, strictFileNames: false });
  const written: string[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      const target = wanted.get(entry.fileName);
      if (!target) continue;
      if (entry.uncompressedSize > MAX_LIBRARY_BYTES) throw new DownloadError('corrupt', `${entry.fileName} in ${zipPath} claims ${entry.uncompressedSize} bytes; refusing it.`);
      // Streamed: the CUDA library is hundreds of MB, too much to hold in the extension host.
      await pipeline(await zip.openReadStreamPromise(entry), createWriteStream(join(folder, target), { mode: 0o755 }));
      written.push(target);
    }
  } finally {
    zip.close();
  }
  return written;
}

export async function installCudaSupport(opts: CudaInstallOptions): Promise<CudaInstallResult> {
  const platform = opts.platform ?? process.platform;
  const arch = opts.arch ?? process.arch;
  const pkg = cudaPackage(platform, arch);
  if (!pkg) throw new DownloadError('not-found', `onnxruntime has no CUDA provider for ${platform}-${arch}; CUDA support exists for Linux and Windows on x64.`);
  const version = opts.version ?? bundledOrtVersion();
  const feed = opts.feed ?? NUGET_INDEX;
  const subject = { repo: `${pkg.id} ${version}`, file: 'CUDA provider' };
  const ctx = { transport: opts, subject, signal: opts.signal, endpoint: new URL(feed).origin };
  const { body: index } = await getJson(new URL(feed), ctx);
  const base = resource(index, 'PackageBaseAddress/3.0.0');
  const expected = await packageHash(index, pkg.id, version, ctx);
  const name = `${pkg.id.toLowerCase()}.${version.toLowerCase()}.nupkg`;
  const packagePath = join(opts.downloadDirectory, name);
  await downloadFile({
    ...opts,
    url: new URL(`${pkg.id.toLowerCase()}/${version.toLowerCase()}/${name}`, base),
    destination: packagePath,
    file: name,
    subject,
    endpoint: ctx.endpoint,
  });
  if ((await sha512Base64(packagePath)) !== expected) {
    await rm(packagePath, { force: true });
    throw new DownloadError('corrupt', `The CUDA provider package ${name} does not match the SHA-512 its feed lists; it was deleted. Try again, and if this repeats a proxy in between is damaging it.`);
  }
  // Unpack beside the binding, then rename each file into place, so the runtime never sees half a library.
  const staging = join(opts.bindingDirectory, `.cuda-install-${process.pid}`);
  await mkdir(staging, { recursive: true });
  try {
    const wanted = new Map(Object.entries(pkg.files).map(([file, inPackage]) => [inPackage, file]));
    const written = await extract(packagePath, wanted, staging);
    const absent = Object.keys(pkg.files).filter((f) => !written.includes(f));
    if (absent.length) throw new DownloadError('corrupt', `The CUDA provider package ${name} lacks ${absent.join(', ')}; it cannot be installed.`);
    for (const f of written) await rename(join(staging, f), join(opts.bindingDirectory, f));
    return { version, packageId: pkg.id, installed: written, bindingDirectory: opts.bindingDirectory };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Whether an NVIDIA driver is present: its kernel module on Linux, its user-mode library on Windows. */
export async function nvidiaDriverPresent(platform: string = process.platform): Promise<boolean> {
  if (platform === 'linux') return readFile('/proc/driver/nvidia/version', 'utf8').then(() => true, () => false);
  if (platform === 'win32') {
    const system = join(process.env.SystemRoot ?? 'C:\\Windows', 'System32', 'nvcuda.dll');
    return stat(system).then(() => true, () => false);
  }
  return false;
}
