// What a team asks of this machine, for "Select Team" and `models list`: its download size, the
// memory it needs at a precision, whether that fits, and whether this version can run it at all.
// Downloaded models are measured from their config.json; the others from the parameter counts
// their presets carry (model cards), so those figures are approximate and say so.
import { stat } from 'node:fs/promises';
import { freemem } from 'node:os';
import { join } from 'node:path';
import type { Device, Precision } from '../api';
import type { DecoderConfig } from '../model/config';
import { readHfConfig } from '../model/hf';
import { bytesPerWeight, estimateMemory, linkBytes, type MemoryEstimate } from '../model/memory';
import { messagePairs, unsupportedFamilies, type TeamPreset } from './presets';

export interface TeamRequirements {
  /** Bytes still to download (bf16 weights), from the model cards; 0 when everything is here. */
  downloadBytes: number;
  /** Memory the loaded team needs at `precision`. */
  memoryBytes: number;
  precision: Precision;
  /** False when some figure comes from a model card rather than a downloaded config.json. */
  exact: boolean;
  availableBytes: number;
  fits: boolean;
  /** Why the team cannot run in this version (a missing family, a missing style); empty when it can. */
  blockers: string[];
}

/** Positions of KV cache the estimate plans for, as the loader does. */
const CONTEXT_TOKENS = 4096;
/** bf16 on the hub. */
const STORED_BYTES_PER_PARAMETER = 2;

export async function teamRequirements(
  preset: TeamPreset,
  options: { precision: Precision; device?: Device; modelsDirectory: string; availableMemoryBytes?: number },
): Promise<TeamRequirements> {
  let downloadBytes = 0;
  let memoryBytes = 0;
  let exact = true;
  for (const source of Object.values(preset.models)) {
    if (!('repo' in source)) continue;
    const folder = join(options.modelsDirectory, ...source.repo.split('/'));
    const downloaded = await stat(join(folder, 'config.json')).then(() => true, () => false);
    const config = downloaded ? await readHfConfig(folder).catch(() => undefined) : undefined;
    if (config) {
      memoryBytes += estimateMemory(config, options.precision, CONTEXT_TOKENS, { device: options.device }).totalBytes;
      continue;
    }
    exact = false;
    const parameters = (source.parametersB ?? 0) * 1e9;
    if (!downloaded) downloadBytes += parameters * STORED_BYTES_PER_PARAMETER;
    memoryBytes += parameters * bytesPerWeight(options.precision, options.device);
  }
  const blockers: string[] = [];
  if (preset.lacks) blockers.push(preset.lacks);
  for (const family of unsupportedFamilies(preset)) blockers.push(`the ${family} model family`);
  const availableBytes = options.availableMemoryBytes ?? freemem();
  return { downloadBytes, memoryBytes, precision: options.precision, exact, availableBytes, fits: memoryBytes <= availableBytes, blockers };
}

export interface TeamMemory {
  /** One entry per model: agents sharing a checkpoint share its weights. */
  models: { key: string; estimate: MemoryEstimate }[];
  /** Every inner link and every outer link the style passes messages along. */
  linkBytes: number;
  totalBytes: number;
}

/** The memory a loaded team needs, from its models' configurations (what the loader checks before reading weights). */
export function teamMemory(
  preset: Pick<TeamPreset, 'agents' | 'style'>,
  configs: ReadonlyMap<string, DecoderConfig>,
  options: { precision: Precision; device?: Device; contextTokens?: number },
): TeamMemory {
  const contextTokens = options.contextTokens ?? CONTEXT_TOKENS;
  const configOf = (key: string): DecoderConfig => {
    const config = configs.get(key);
    if (!config) throw new Error(`teamMemory: no configuration for the model "${key}"`);
    return config;
  };
  const widthOf = (agent: string): number => {
    const a = preset.agents.find((x) => x.name === agent);
    if (!a) throw new Error(`teamMemory: no agent named "${agent}"`);
    return configOf(a.model).hiddenSize;
  };
  // Agents take turns and drop their KV cache after their turn, so one cache per model.
  const models = [...configs].map(([key, config]) => ({ key, estimate: estimateMemory(config, options.precision, contextTokens, { device: options.device }) }));
  let links = 0;
  for (const a of preset.agents) links += linkBytes('inner', configOf(a.model).hiddenSize, configOf(a.model).hiddenSize);
  for (const [from, to] of messagePairs(preset, 2)) links += linkBytes('outer', widthOf(from), widthOf(to));
  const totalBytes = models.reduce((sum, m) => sum + m.estimate.totalBytes, 0) + links;
  return { models, linkBytes: links, totalBytes };
}
