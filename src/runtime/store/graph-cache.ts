// The compiled decoder graphs in the graph cache (`<cache>/graphs/<key>/`, written by
// src/engine/model/build.ts) that were built from a model folder: each records its checkpoint's
// `source` in config.json. A graph is about as large as the weights, so removing a model removes
// its graphs too, and listing models shows what they take.
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';

export interface CachedGraph {
  folder: string;
  source: string;
  sizeBytes: number;
}

async function folderSize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await folderSize(path);
    else if (entry.isFile()) total += (await lstat(path).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/** Every finished graph in the cache with the checkpoint it came from. */
export async function listCachedGraphs(cacheDirectory: string): Promise<CachedGraph[]> {
  const root = join(cacheDirectory, 'graphs');
  const graphs: CachedGraph[] = [];
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory()) continue;
    const folder = join(root, entry.name);
    let source: unknown;
    try {
      source = (JSON.parse(await readFile(join(folder, 'config.json'), 'utf8')) as { source?: unknown }).source;
    } catch {
      continue; // still building, or not one of ours
    }
    if (typeof source !== 'string') continue;
    graphs.push({ folder, source: resolve(source), sizeBytes: await folderSize(folder) });
  }
  return graphs;
}

/** Whether a graph was built from the model folder `dir` (the folder itself or a file in it). */
export function builtFrom(graph: CachedGraph, dir: string): boolean {
  const d = resolve(dir);
  return graph.source === d || graph.source.startsWith(d + sep);
}

/** Deletes the graphs built from `dir`; returns how many and their bytes. */
export async function removeGraphsOf(cacheDirectory: string, dir: string): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for (const graph of await listCachedGraphs(cacheDirectory)) {
    if (!builtFrom(graph, dir)) continue;
    await rm(graph.folder, { recursive: true, force: true });
    count++;
    bytes += graph.sizeBytes;
  }
  return { count, bytes };
}
