// Builds a checkpoint's decoder graph once and caches it on disk, keyed by the checkpoint's bytes
// and the build options; a changed checkpoint, precision or builder version means a rebuild.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GraphBuilder } from '../onnx/graph';
import { defaultCacheDirectory } from '../paths';
import type { Checkpoint } from './checkpoint';
import { builderFor } from './families/index';
import type { GraphOptions, LatentHead, Precision } from './families/base';
import type { Device } from '../api';

/** Bump when the emitted graph changes, so cached graphs are rebuilt. */
const GRAPH_VERSION = 13;


export interface BuiltGraph {
  modelPath: string;
  key: string;
  /** False when the cached graph was reused. */
  rebuilt: boolean;
  /** Whether the graph takes its keys and values as buffers with spare capacity (see GraphOptions.kvBuffers). */
  kvBuffers: boolean;
  buildMs: number;
}

/**
 * Whether a graph for `device` computes in fp16: on GPU providers at fp16 and int4 (MatMulNBits
 * there takes fp16 activations and scales); the CPU computes in fp32 (it widens fp16 weights).
 */
export function computesInFp16(precision: Precision, device: Device | undefined): boolean {
  return precision !== 'fp32' && device !== undefined && device !== 'cpu';
}

export async function buildDecoderGraph(
  checkpoint: Checkpoint,
  options: { precision: Precision; cacheDirectory?: string; device?: Device; latentHead?: LatentHead },
): Promise<BuiltGraph> {
  const graphOptions: GraphOptions = {
    ...(computesInFp16(options.precision, options.device) ? { fp16Compute: true } : {}),
    ...(options.latentHead ? { latentHead: options.latentHead } : {}),
    // GPU providers keep the state on the device instead.
    ...(!options.device || options.device === 'cpu' ? { kvBuffers: true } : {}),
  };
  const kvBuffers = graphOptions.kvBuffers ?? false;
  const started = performance.now();
  const cacheRoot = join(options.cacheDirectory ?? defaultCacheDirectory(), 'graphs');
  await mkdir(cacheRoot, { recursive: true });
  const hashes = [];
  for (const file of checkpoint.contentFiles) hashes.push(await hashFile(file, cacheRoot));
  const key = createHash('sha256')
    .update(JSON.stringify({ GRAPH_VERSION, precision: options.precision, hashes, fp16Compute: graphOptions.fp16Compute, latentHead: graphOptions.latentHead?.key, kvBuffers }))
    .digest('hex')
    .slice(0, 24);
  const folder = join(cacheRoot, key);
  const modelPath = join(folder, 'model.onnx');
  if (await stat(join(folder, 'complete')).then(() => true, () => false)) {
    return { modelPath, key, rebuilt: false, kvBuffers, buildMs: performance.now() - started };
  }
  // Build in a private folder and rename, so a crash mid-build never leaves a graph that looks complete.
  const staging = `${folder}.building-${process.pid}-${Date.now()}`;
  await mkdir(staging, { recursive: true });
  try {
    const g = new GraphBuilder(join(staging, 'model.onnx.data'));
    const Builder = builderFor(checkpoint.config);
    await new Builder(g, checkpoint.config, checkpoint.weights, options.precision, graphOptions).build();
    await writeFile(join(staging, 'model.onnx'), g.finish(`${checkpoint.config.family}-decoder`));
    await writeFile(join(staging, 'config.json'), JSON.stringify({ source: resolve(checkpoint.source), precision: options.precision, config: checkpoint.config }, null, 2));
    await writeFile(join(staging, 'complete'), '');
    await rm(folder, { recursive: true, force: true });
    await rename(staging, folder);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
  return { modelPath, key, rebuilt: true, kvBuffers, buildMs: performance.now() - started };
}

/** sha256 of a file, remembered by (path, size, mtime) so unchanged multi-GB files are hashed once. */
async function hashFile(path: string, cacheRoot: string): Promise<string> {
  const info = await stat(path);
  const memoPath = join(cacheRoot, 'file-hashes.json');
  const memo = await readFile(memoPath, 'utf8').then((t) => JSON.parse(t) as Record<string, string>, (): Record<string, string> => ({}));
  const id = `${resolve(path)}|${info.size}|${info.mtimeMs}`;
  if (memo[id]) return memo[id];
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  const digest = hash.digest('hex');
  memo[id] = digest;
  const tmp = `${memoPath}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(memo));
  await rename(tmp, memoPath);
  return digest;
}
