// Finding and reading link weight files: a file in a model folder or repository (.pt or
// .safetensors), or an entry of the released manifests (innerlink_config.json, outerlink_config.json).
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../api';
import { SafetensorsFile } from '../model/safetensors';
import { joinInside } from '../safe-path';
import type { NamedTensor } from './link';
import { parseInnerLinkConfig, parseOuterLinkConfig, type LinkFileSource } from './manifest';
import { readTorchStateDict } from './torch-file';

export async function readLinkFile(path: string): Promise<Map<string, NamedTensor>> {
  if (!(await stat(path).then((s) => s.isFile(), () => false))) {
    throw new UserError(`The link file ${path} does not exist.`, 'model-missing', 'Download the team\'s models ("RecursiveMAS: Download Models").');
  }
  const out = new Map<string, NamedTensor>();
  if (path.endsWith('.safetensors')) {
    const f = await SafetensorsFile.open(path);
    try {
      for (const [name, info] of f.tensors) out.set(name, { shape: info.shape, data: await f.readFloat32(name) });
    } finally {
      await f.close();
    }
    return out;
  }
  for (const [name, t] of await readTorchStateDict(path)) out.set(name, { shape: t.shape, data: t.toFloat32() });
  return out;
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (e) {
    throw new UserError(`Cannot read ${path} (${(e as Error).message}).`, 'model-missing', 'Download the team\'s models ("RecursiveMAS: Download Models").');
  }
}

const isFile = (path: string) => stat(path).then((s) => s.isFile(), () => false);

/**
 * The inner link of `task`, in the released resolver's order: the manifest's entry for the task,
 * else `adapter(<task>).pt`, else `adapter.pt` (teams released with one link for every task).
 */
async function innerLinkFile(folder: string, task: string): Promise<string> {
  const manifest = join(folder, 'innerlink_config.json');
  if (await isFile(manifest)) {
    const json = await readJson(manifest);
    const tasks = (json as { tasks?: Record<string, unknown> } | null)?.tasks;
    if (!tasks || typeof tasks !== 'object' || Object.hasOwn(tasks, task)) return parseInnerLinkConfig(json, task, manifest);
  }
  for (const name of [`adapter(${task}).pt`, 'adapter.pt']) if (await isFile(join(folder, name))) return name;
  throw new UserError(`${folder} has no inner link for the task "${task}" (no innerlink_config.json entry, adapter(${task}).pt or adapter.pt).`, 'model-missing', 'Download the team\'s models again ("RecursiveMAS: Download Models").');
}

export async function loadLinkTensors(
  source: LinkFileSource,
  ctx: { modelFolder: string; modelsDirectory: string; preset: string },
): Promise<{ tensors: Map<string, NamedTensor>; file: string }> {
  const repoFolder = (repo: string) => join(ctx.modelsDirectory, ...repo.split('/'));
  let file: string;
  if ('file' in source) {
    const folder = source.repo ? repoFolder(source.repo) : ctx.modelFolder;
    file = joinInside(folder, source.file, `team preset ${ctx.preset}`);
  } else if (source.manifest === 'inner') {
    file = joinInside(ctx.modelFolder, await innerLinkFile(ctx.modelFolder, source.task), ctx.modelFolder);
  } else {
    const folder = repoFolder(source.repo);
    const manifest = join(folder, 'outerlink_config.json');
    const entries = parseOuterLinkConfig(await readJson(manifest), source.task, manifest);
    const entry = entries.find((e) => e.key === source.key);
    if (!entry) {
      throw new UserError(`${manifest} has no outer link "${source.key}" for the task "${source.task}" (it has ${entries.map((e) => e.key).join(', ')}).`, 'link-mismatch');
    }
    file = joinInside(folder, entry.file, manifest);
  }
  return { tensors: await readLinkFile(file), file };
}
