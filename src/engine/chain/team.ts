// Loading a team: each model's folder (downloaded, a path, or generated for a demo team), a check
// that the team fits in memory before anything is read, the models (shared between agents that use
// the same checkpoint) and the inner and outer links. Solving on the loaded team is solve-run.ts.
import { createHash } from 'node:crypto';
import { freemem } from 'node:os';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  CancelledError,
  UserError,
  type AgentInfo,
  type Device,
  type LoadedTeam,
  type LoadOptions,
  type Precision,
  type SolveEvent,
  type SolveRequest,
  type SolveResult,
} from '../api';
import { RecursiveLink, linkComputation, type LinkComputation, type LinkExpectation, type NamedTensor } from '../links/link';
import { fitInnerTrainingFree, fitOuterTrainingFree } from '../links/training-free';
import { defaultModelsDirectory } from '../paths';
import type { DecoderConfig } from '../model/config';
import { DecoderModel } from '../model/decoder';
import { readHfConfig } from '../model/hf';
import { formatBytes } from '../model/memory';
import { ensureSyntheticModel } from '../model/synthetic';
import { HfTokenizer } from '../tokenizer/hf';
import { generatedLinkSeed, generatedLinkTensors, meanEmbeddingNorm } from './generated-links';
import { messagePairs, readPreset, unsupportedFamilies, type LinkSource, type ModelSource, type TeamPreset } from './presets';
import { teamMemory } from './requirements';
import { SolveRun, type Agent, type SharedModel } from './solve-run';

async function resolveModelFolder(key: string, source: ModelSource, modelsDirectory: string, preset: TeamPreset): Promise<string> {
  if ('generated' in source) {
    const id = createHash('sha256').update(JSON.stringify(source.generated)).digest('hex').slice(0, 16);
    return ensureSyntheticModel(source.generated, join(modelsDirectory, 'generated', `${key}-${id}`));
  }
  const folder = 'path' in source ? resolve(source.path) : join(modelsDirectory, ...source.repo.split('/'));
  if (!(await stat(join(folder, 'config.json')).then(() => true, () => false))) {
    const what = 'repo' in source ? `${source.repo} is not downloaded` : `${folder} has no config.json`;
    throw new UserError(
      `The team "${preset.name}" needs the model "${key}": ${what} (looked in ${folder}).`,
      'model-missing',
      `Download it with "RecursiveMAS: Download Models" or \`recursivemas models pull ${preset.name}\`.`,
    );
  }
  return folder;
}

export async function loadTeam(name: string, options: LoadOptions): Promise<LoadedTeam> {
  const started = performance.now();
  const preset = await readPreset(name);
  refuseUnrunnable(preset);
  const modelsDirectory = options.modelsDirectory ?? defaultModelsDirectory();
  const device: Device = options.device === 'auto' ? 'cpu' : options.device;
  const precision: Precision = options.precision ?? 'fp32';
  const emit = options.onEvent ?? (() => {});
  const shared = new Map<string, SharedModel>();
  const links: RecursiveLink[] = [];
  const warnings: string[] = [];
  try {
    const keys = [...new Set(preset.agents.map((a) => a.model))];
    const folders = new Map<string, string>();
    for (const key of keys) folders.set(key, await resolveModelFolder(key, preset.models[key]!, modelsDirectory, preset));
    await checkTeamFits(preset, folders, options);
    // On a GPU provider an agent's graph applies its inner link itself, so its latent input stays on
    // the device. Not on the CPU: there the link's own one-thread run is about 3% of a latent step (bench:chain)
    // and the graph would hold the link's weights a second time (about 100 MB for Sequential-Light).
    const innerFiles = device === 'cpu' ? new Map<string, OwnInnerLink>() : await readOwnInnerLinks(preset, folders, modelsDirectory);
    for (const [index, key] of keys.entries()) {
      if (options.signal?.aborted) throw new CancelledError();
      emit({ type: 'team-loading', team: preset.name, model: key, index, count: keys.length });
      const folder = folders.get(key)!;
      const latentHead = innerFiles.get(key)?.computation;
      const model = await DecoderModel.load(folder, { device, threads: options.threads, precision, cacheDirectory: options.cacheDirectory, latentHead });
      warnings.push(...model.warnings);
      const tokenizer = await HfTokenizer.load(folder);
      // Agents talk through their chat templates: a plain "role: content" prompt is not what the links learned.
      tokenizer.requireChatTemplate();
      if (tokenizer.vocabSize > model.config.vocabSize) {
        throw new UserError(`${folder}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${model.config.vocabSize}; they do not belong together.`, 'model-invalid');
      }
      shared.set(key, { key, folder, model, tokenizer, contentKey: model.graphPath });
    }
    const realDevice = [...shared.values()][0]!.model.device;
    const agents = new Map<string, Agent>();
    for (const a of preset.agents) {
      const s = shared.get(a.model)!;
      const d = s.model.config.hiddenSize;
      const own = innerFiles.get(a.model);
      const inner = own
        ? await RecursiveLink.fromTensors('inner', own.tensors, own.expectation, realDevice)
        : await loadLink('inner', a.innerLink, { from: s, to: s, label: `${a.name} inner link`, seed: a.name, preset, modelsDirectory, options, device: realDevice });
      if (inner.dIn !== d || inner.dOut !== d) throw new UserError(`The inner link of ${a.name} maps ${inner.dIn} -> ${inner.dOut} but its model is ${d} wide.`, 'link-mismatch');
      links.push(inner);
      agents.set(a.name, { preset: a, shared: s, inner });
    }
    const outer = new Map<string, RecursiveLink>();
    for (const [from, to] of messagePairs(preset, 2)) {
      const key = `${from}->${to}`;
      const source = preset.outerLinks[key];
      if (!source) {
        throw new UserError(`Team preset ${preset.file} has no outer link for ${key}; a ${preset.style} team passes messages along it.`, 'preset-invalid');
      }
      const a = agents.get(from)!;
      const b = agents.get(to)!;
      const link = await loadLink('outer', source, { from: a.shared, to: b.shared, label: `outer link ${key}`, seed: key, preset, modelsDirectory, options, device: realDevice });
      links.push(link);
      outer.set(key, link);
    }
    const ms = performance.now() - started;
    const info: AgentInfo[] = preset.agents.map((a) => ({ name: a.name, role: a.role, model: a.model }));
    emit({ type: 'team-loaded', team: preset.name, agents: info, device: realDevice, precision, ms });
    return new Team(preset, agents, outer, [...shared.values()], links, realDevice, precision, info, warnings);
  } catch (e) {
    await Promise.all([...shared.values()].map((s) => s.model.dispose()));
    await Promise.all(links.map((l) => l.dispose()));
    throw e;
  }
}

interface OwnInnerLink {
  tensors: Map<string, NamedTensor>;
  expectation: LinkExpectation;
  computation: LinkComputation;
}

/**
 * The trained inner links of agents that have a model to themselves, read before the models: each is
 * built into its model's graph, so a latent step is one run on the GPU (a model shared by several agents, or a
 * generated or training-free link, which needs the loaded model, keeps the link as its own session).
 */
async function readOwnInnerLinks(preset: TeamPreset, folders: Map<string, string>, modelsDirectory: string): Promise<Map<string, OwnInnerLink>> {
  const own = new Map<string, OwnInnerLink>();
  for (const a of preset.agents) {
    const source = a.innerLink;
    if ('trainingFree' in source || 'generated' in source) continue;
    if (preset.agents.filter((b) => b.model === a.model).length > 1) continue;
    const folder = folders.get(a.model)!;
    const d = (await readHfConfig(folder)).hiddenSize;
    const { loadLinkTensors } = await import('../links/files');
    const { tensors, file } = await loadLinkTensors(source, { modelFolder: folder, modelsDirectory, preset: preset.name });
    const expectation = { source: `${a.name} inner link (${file})`, dIn: d, dOut: d, from: a.model, to: a.model };
    own.set(a.model, { tensors, expectation, computation: linkComputation('inner', tensors, expectation) });
  }
  return own;
}

/** A preset that is listed but cannot run in this version says why, before anything is read. */
export function refuseUnrunnable(preset: TeamPreset): void {
  if (preset.lacks) {
    throw new UserError(`The team "${preset.name}" cannot run in this version: it needs ${preset.lacks}.`, 'unsupported', 'Pick another team with "RecursiveMAS: Select Team" or --team.');
  }
  const missing = unsupportedFamilies(preset);
  if (missing.length) {
    throw new UserError(
      `The team "${preset.name}" needs the ${missing.join(' and ')} model famil${missing.length > 1 ? 'ies' : 'y'}, which this version cannot build yet.`,
      'unsupported',
      'Pick another team with "RecursiveMAS: Select Team" or --team.',
    );
  }
}

/** Refuses a team whose models, KV caches and links will not fit, with the numbers. */
async function checkTeamFits(preset: TeamPreset, folders: Map<string, string>, options: LoadOptions): Promise<void> {
  const contextTokens = options.contextTokens ?? 4096;
  const precision = options.precision ?? 'fp32';
  const device: Device = options.device === 'auto' ? 'cpu' : options.device;
  const configs = new Map<string, DecoderConfig>();
  for (const [key, folder] of folders) configs.set(key, await readHfConfig(folder));
  const need = teamMemory(preset, configs, { precision, device, contextTokens });
  const available = options.availableMemoryBytes ?? freemem();
  if (need.totalBytes > available) {
    const parts = need.models.map(
      ({ key, estimate: e }) =>
        `${key} ${formatBytes(e.totalBytes)} (${(e.parameters / 1e9).toFixed(2)}B parameters at ${precision}, KV cache for ${contextTokens} positions ${formatBytes(e.kvCacheBytes)})`,
    );
    throw new UserError(
      `The team "${preset.name}" needs about ${formatBytes(need.totalBytes)} of memory but ${formatBytes(available)} is available: ${parts.join('; ')}; links ${formatBytes(need.linkBytes)}.`,
      'out-of-memory',
      precision === 'int4' ? 'Close other programs or choose a smaller team.' : 'Close other programs, choose int4 precision (--precision int4, setting recursivemas.precision) or a smaller team.',
    );
  }
}

interface LinkContext {
  from: SharedModel;
  to: SharedModel;
  label: string;
  seed: string;
  preset: TeamPreset;
  modelsDirectory: string;
  options: LoadOptions;
  device: Device;
}

async function loadLink(kind: 'inner' | 'outer', source: LinkSource, ctx: LinkContext): Promise<RecursiveLink> {
  const dIn = ctx.from.model.config.hiddenSize;
  const dOut = ctx.to.model.config.hiddenSize;
  const expectation = { source: ctx.label, dIn, dOut, from: ctx.from.key, to: ctx.to.key };
  if ('trainingFree' in source) {
    const fit =
      kind === 'inner'
        ? await fitInnerTrainingFree(ctx.from.folder, ctx.from.contentKey, ctx.options.cacheDirectory)
        : await fitOuterTrainingFree(ctx.from.folder, ctx.from.contentKey, ctx.to.folder, ctx.to.contentKey, ctx.options.cacheDirectory);
    return RecursiveLink.trainingFree(fit.map, fit.dIn, fit.dOut, fit.targetNorm, ctx.device);
  }
  if ('generated' in source) {
    const seed = generatedLinkSeed(source.generated, ctx.seed);
    const tensors = generatedLinkTensors(kind, dIn, dOut, seed, meanEmbeddingNorm(ctx.to.model));
    return RecursiveLink.fromTensors(kind, tensors, expectation, ctx.device);
  }
  // Loaded on demand: demo and training-free teams never read link files.
  const { loadLinkTensors } = await import('../links/files');
  const { tensors, file } = await loadLinkTensors(source, { modelFolder: ctx.from.folder, modelsDirectory: ctx.modelsDirectory, preset: ctx.preset.name });
  return RecursiveLink.fromTensors(kind, tensors, { ...expectation, source: `${ctx.label} (${file})` }, ctx.device);
}

class Team implements LoadedTeam {
  readonly name: string;
  constructor(
    private readonly preset: TeamPreset,
    private readonly members: Map<string, Agent>,
    private readonly outer: Map<string, RecursiveLink>,
    private readonly models: SharedModel[],
    private readonly links: RecursiveLink[],
    readonly device: Device,
    readonly precision: Precision,
    readonly agents: AgentInfo[],
    readonly warnings: string[],
  ) {
    this.name = preset.name;
  }

  async solve(request: SolveRequest, onEvent: (event: SolveEvent) => void, signal?: AbortSignal): Promise<SolveResult> {
    return new SolveRun(this.preset, this.members, this.outer, this.device, this.precision, request, onEvent, signal).run();
  }

  async dispose(): Promise<void> {
    await Promise.all(this.models.map((m) => m.model.dispose()));
    await Promise.all(this.links.map((l) => l.dispose()));
  }
}
