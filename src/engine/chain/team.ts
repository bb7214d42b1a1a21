// Loading a team (models shared between agents that use the same checkpoint, inner and outer links)
// and running a solve: R rounds of latent rollouts and hand-offs in the preset's collaboration style,
// then the final agent's streamed decode (spec: shared/docs/recursivemas.md, sections 3-5).
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
  type PresetSummary,
  type SolveEvent,
  type SolveRequest,
  type SolveResult,
} from '../api';
import type { StageTiming, Style } from '../../protocol/events';
import { generateFromEmbeds } from '../generate';
import { RecursiveLink, type NamedTensor } from '../links/link';
import { fitInnerTrainingFree, fitOuterTrainingFree } from '../links/training-free';
import { defaultModelsDirectory } from '../paths';
import { DecoderModel, type DecoderState } from '../model/decoder';
import { readHfConfig } from '../model/hf';
import { estimateMemory, formatBytes } from '../model/memory';
import { SeededRandom } from '../model/sampling';
import { ensureSyntheticModel } from '../model/synthetic';
import { HfTokenizer, type ChatMessage } from '../tokenizer/hf';
import { TokenTextStream } from '../tokenizer/types';
import { extractCode } from './answer';
import { listPresets as listPresetFiles, readPreset, unsupportedFamilies, type AgentPreset, type LinkSource, type ModelSource, type TeamPreset } from './presets';
import { buildRoleMessages, retryContinuation } from './prompts';
import { latentRollout } from './rollout';
import { splicePrompt, type SlotContent, type SplicedPrompt } from './splice';

export { listPresetFiles as listPresets };
export type { PresetSummary };

export { defaultModelsDirectory };

interface SharedModel {
  key: string;
  folder: string;
  model: DecoderModel;
  tokenizer: HfTokenizer;
  contentKey: string;
}

interface Agent {
  preset: AgentPreset;
  shared: SharedModel;
  inner: RecursiveLink;
}

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

function normal(random: SeededRandom, std: number): number {
  const u = Math.max(random.next(), 1e-12);
  return std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.next());
}

/** Demo-team links: random but well-scaled weights (the LayerNorm gains set the output norm). */
function generatedLinkTensors(kind: 'inner' | 'outer', dIn: number, dOut: number, seed: number, outNorm: number): Map<string, NamedTensor> {
  const random = new SeededRandom(seed);
  const t = new Map<string, NamedTensor>();
  const fill = (name: string, shape: number[], f: () => number) =>
    t.set(name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, f) });
  const gain = outNorm / Math.sqrt(dOut);
  if (kind === 'inner') {
    fill('pre_ln.weight', [dIn], () => 1);
    fill('pre_ln.bias', [dIn], () => 0);
    fill('proj1.weight', [dIn, dIn], () => normal(random, 1 / Math.sqrt(dIn)));
    fill('proj1.bias', [dIn], () => 0);
    fill('proj2.weight', [dIn, dIn], () => normal(random, 1 / Math.sqrt(dIn)));
    fill('proj2.bias', [dIn], () => 0);
    fill('post_ln.weight', [dIn], () => gain);
    fill('post_ln.bias', [dIn], () => 0);
  } else {
    fill('ln_source.weight', [dIn], () => 1);
    fill('ln_source.bias', [dIn], () => 0);
    fill('proj1.weight', [2 * dOut, dIn], () => normal(random, 1 / Math.sqrt(dIn)));
    fill('proj1.bias', [2 * dOut], () => 0);
    fill('proj2.weight', [dOut, 2 * dOut], () => normal(random, 1 / Math.sqrt(2 * dOut)));
    fill('proj2.bias', [dOut], () => 0);
    fill('residual_proj.weight', [dOut, dIn], () => normal(random, 1 / Math.sqrt(dIn)));
    fill('residual_proj.bias', [dOut], () => 0);
    fill('ln_target.weight', [dOut], () => gain);
    fill('ln_target.bias', [dOut], () => 0);
  }
  return t;
}

/** Euclidean norm without spreading the vector into arguments (a wide model would overflow the stack). */
function vectorNorm(v: Float32Array): number {
  let sum = 0;
  for (const x of v) sum += x * x;
  return Math.sqrt(sum);
}

function meanEmbeddingNorm(m: DecoderModel): number {
  const rows = Math.min(m.config.vocabSize, 512);
  let total = 0;
  for (let id = 0; id < rows; id++) {
    const r = m.embedding.row(id);
    total += vectorNorm(r);
  }
  return total / rows;
}

/** The ordered pairs a style passes messages along. */
export function messagePairs(preset: TeamPreset, rounds: number): [string, string][] {
  const by = (role: string) => preset.agents.filter((a) => a.role === role).map((a) => a.name);
  const pairs: [string, string][] = [];
  if (preset.style === 'sequential') {
    const [p, c, s] = [by('planner')[0]!, by('critic')[0]!, by('solver')[0]!];
    pairs.push([p, c], [c, s]);
    if (rounds > 1) pairs.push([s, p]);
  } else {
    const hub = preset.style === 'mixture' ? by('summarizer')[0]! : by('learner')[0]!;
    for (const e of by('expert')) {
      pairs.push([e, hub]);
      if (rounds > 1) pairs.push([hub, e]);
    }
  }
  return pairs;
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
    for (const [index, key] of keys.entries()) {
      if (options.signal?.aborted) throw new CancelledError();
      emit({ type: 'team-loading', team: preset.name, model: key, index, count: keys.length });
      const folder = folders.get(key)!;
      const model = await DecoderModel.load(folder, { device, threads: options.threads, precision, cacheDirectory: options.cacheDirectory });
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
      const inner = await loadLink('inner', a.innerLink, { from: s, to: s, label: `${a.name} inner link`, seed: a.name, preset, modelsDirectory, options, device: realDevice });
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
  const context = options.contextTokens ?? 4096;
  const precision = options.precision ?? 'fp32';
  const device: Device = options.device === 'auto' ? 'cpu' : options.device;
  const widths = new Map<string, number>();
  const parts: string[] = [];
  let total = 0;
  for (const [key, folder] of folders) {
    const config = await readHfConfig(folder);
    widths.set(key, config.hiddenSize);
    // Agents take turns and drop their KV cache after their turn, so one cache per model.
    const e = estimateMemory(config, precision, context, { device });
    const bytes = e.totalBytes;
    total += bytes;
    parts.push(`${key} ${formatBytes(bytes)} (${(e.parameters / 1e9).toFixed(2)}B parameters at ${precision}, KV cache for ${context} positions ${formatBytes(e.kvCacheBytes)})`);
  }
  let links = 0;
  for (const a of preset.agents) links += 2 * widths.get(a.model)! ** 2 * 4;
  for (const [from, to] of messagePairs(preset, 2)) {
    const dIn = widths.get(preset.agents.find((a) => a.name === from)!.model)!;
    const dOut = widths.get(preset.agents.find((a) => a.name === to)!.model)!;
    links += (3 * dIn * dOut + 2 * dOut * dOut) * 4;
  }
  total += links;
  const available = options.availableMemoryBytes ?? freemem();
  if (total > available) {
    throw new UserError(
      `The team "${preset.name}" needs about ${formatBytes(total)} of memory but ${formatBytes(available)} is available: ${parts.join('; ')}; links ${formatBytes(links)}.`,
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
    return RecursiveLink.trainingFree(fit.map, fit.dIn, fit.dOut, fit.targetNorm, ctx.device, ctx.options.threads);
  }
  if ('generated' in source) {
    const seed = source.generated + [...ctx.seed].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7);
    const tensors = generatedLinkTensors(kind, dIn, dOut, seed, meanEmbeddingNorm(ctx.to.model));
    return RecursiveLink.fromTensors(kind, tensors, expectation, ctx.device, ctx.options.threads);
  }
  // Loaded on demand: demo and training-free teams never read link files.
  const { loadLinkTensors } = await import('../links/files');
  const { tensors, file } = await loadLinkTensors(source, { modelFolder: ctx.from.folder, modelsDirectory: ctx.modelsDirectory, preset: ctx.preset.name });
  return RecursiveLink.fromTensors(kind, tensors, { ...expectation, source: `${ctx.label} (${file})` }, ctx.device, ctx.options.threads);
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

/** New tokens the code retry may write, as released. */
const RETRY_TOKENS = 256;

/** The code after the last opened fence when the model never closed it (the retry ends inside one). */
function openFenceTail(text: string): string | null {
  const at = text.lastIndexOf('```');
  if (at < 0) return null;
  const body = text.slice(text.indexOf('\n', at) + 1).trim();
  return body ? body : null;
}

function checkRequest(r: SolveRequest): void {
  const whole = (v: number, name: string, lo: number, hi: number) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new UserError(`${name} must be a whole number from ${lo} to ${hi}, got ${v}.`, 'bad-input');
  };
  if (!r.task.trim()) throw new UserError('The task is empty: select code or describe what to write.', 'bad-input');
  whole(r.rounds, 'rounds', 1, 16);
  whole(r.latentSteps, 'latent steps', 1, 256);
  whole(r.maxNewTokens, 'max new tokens', 1, 32768);
}

/** Where a prompt's run starts: a state (fresh or a kept prefix) and the embeddings still to run. */
interface PromptStart {
  state: DecoderState;
  embeds: Float32Array;
  count: number;
  /** Prefix ids whose positions the caller keeps from `state` once the turn has run. */
  keep?: number[];
}

class SolveRun {
  private readonly stages: StageTiming[] = [];
  private promptTokens = 0;
  private latentSteps = 0;
  private textTokens = 0;
  private reusedPromptTokens = 0;
  private rounds = 1;
  /** Per agent: the token ids of its prompt before the first slot and the state right after them. */
  private readonly prefixes = new Map<string, { ids: number[]; state: DecoderState }>();
  private readonly started = performance.now();

  constructor(
    private readonly preset: TeamPreset,
    private readonly agents: Map<string, Agent>,
    private readonly outer: Map<string, RecursiveLink>,
    private readonly device: Device,
    private readonly precision: Precision,
    private readonly req: SolveRequest,
    private readonly emit: (e: SolveEvent) => void,
    private readonly signal?: AbortSignal,
  ) {}

  private byRole(role: string): Agent[] {
    return [...this.agents.values()].filter((a) => a.preset.role === role);
  }

  private check(): void {
    if (this.signal?.aborted) throw new CancelledError();
  }

  async run(): Promise<SolveResult> {
    checkRequest(this.req);
    const style = this.preset.style as Style;
    const mode = this.req.mode;
    const rounds = mode === 'single' ? 1 : this.req.rounds;
    this.rounds = rounds;
    this.emit({ type: 'solve-start', task: this.req.task, language: this.req.language, mode, style, rounds, latentSteps: this.req.latentSteps });
    let answer: string;
    if (mode === 'single') answer = await this.single();
    else if (style === 'sequential') answer = await this.sequential(rounds);
    else answer = await this.hubAndSpokes(rounds);
    let code = extractCode(answer, this.req.language);
    if (code === null && this.req.retryForCode !== false && !this.req.fixedLength) {
      this.emit({ type: 'retry', reason: 'The final answer had no fenced code block; asking once more for only the code.' });
      answer = await this.retryForCode(answer);
      code = extractCode(answer, this.req.language) ?? openFenceTail(answer);
    }
    if (code === null) this.emit({ type: 'warning', message: 'No code block could be obtained from the final agent; the answer is shown as it is.' });
    this.emit({ type: 'answer', text: answer, code, language: this.req.language });
    const metrics = {
      wallMs: performance.now() - this.started,
      stages: this.stages,
      promptTokens: this.promptTokens,
      latentSteps: this.latentSteps,
      textTokens: this.textTokens,
      reusedPromptTokens: this.reusedPromptTokens,
      device: this.device,
      precision: this.precision,
    };
    this.emit({ type: 'metrics', metrics });
    return { rounds, answer, code, language: this.req.language, metrics, device: this.device, precision: this.precision };
  }

  // --- styles -------------------------------------------------------------------------------

  private finalState?: { agent: Agent; round: number };

  private async single(): Promise<string> {
    const solver = this.byRole('solver')[0] ?? this.byRole('summarizer')[0] ?? this.byRole('learner')[0]!;
    this.emit({ type: 'round-start', round: 1, rounds: 1 });
    const t = performance.now();
    const answer = await this.decodeTurn(1, solver, [], []);
    this.emit({ type: 'round-end', round: 1, ms: performance.now() - t });
    return answer;
  }

  private async sequential(rounds: number): Promise<string> {
    const planner = this.byRole('planner')[0]!;
    const critic = this.byRole('critic')[0]!;
    const solver = this.byRole('solver')[0]!;
    let feedback: SlotContent | null = null;
    for (let r = 1; r <= rounds; r++) {
      const t = performance.now();
      this.emit({ type: 'round-start', round: r, rounds });
      const plan = await this.thinkTurn(r, planner, feedback ? [solver.preset.name] : [], feedback ? [feedback] : []);
      const toCritic = await this.handOff(r, planner, critic, plan);
      const review = await this.thinkTurn(r, critic, [planner.preset.name], [toCritic]);
      const toSolver = await this.handOff(r, critic, solver, review);
      if (r === rounds) {
        const answer = await this.decodeTurn(r, solver, [critic.preset.name], [toSolver]);
        this.emit({ type: 'round-end', round: r, ms: performance.now() - t });
        return answer;
      }
      const solved = await this.thinkTurn(r, solver, [critic.preset.name], [toSolver]);
      feedback = await this.handOff(r, solver, planner, solved);
      this.emit({ type: 'round-end', round: r, ms: performance.now() - t });
    }
    throw new Error('unreachable');
  }

  /** Mixture (experts -> summarizer) and distillation (expert -> learner): one hub, its spokes. */
  private async hubAndSpokes(rounds: number): Promise<string> {
    const hub = (this.preset.style === 'mixture' ? this.byRole('summarizer') : this.byRole('learner'))[0]!;
    const spokes = this.byRole('expert');
    let broadcast = new Map<string, SlotContent>();
    for (let r = 1; r <= rounds; r++) {
      const t = performance.now();
      this.emit({ type: 'round-start', round: r, rounds });
      const toHub: SlotContent[] = [];
      for (const e of spokes) {
        const back = broadcast.get(e.preset.name);
        const thought = await this.thinkTurn(r, e, back ? [hub.preset.name] : [], back ? [back] : []);
        toHub.push(await this.handOff(r, e, hub, thought));
      }
      const senders = spokes.map((e) => e.preset.name);
      if (r === rounds) {
        const answer = await this.decodeTurn(r, hub, senders, toHub);
        this.emit({ type: 'round-end', round: r, ms: performance.now() - t });
        return answer;
      }
      const hubThought = await this.thinkTurn(r, hub, senders, toHub);
      broadcast = new Map();
      for (const e of spokes) broadcast.set(e.preset.name, await this.handOff(r, hub, e, hubThought));
      this.emit({ type: 'round-end', round: r, ms: performance.now() - t });
    }
    throw new Error('unreachable');
  }

  // --- turns --------------------------------------------------------------------------------

  private messagesFor(agent: Agent, senders: string[]): ChatMessage[] {
    return buildRoleMessages(this.preset.prompts, {
      role: agent.preset.role,
      task: this.req.task,
      language: this.req.language,
      context: this.req.context,
      senders,
      domain: agent.preset.domain,
      checkFeedback: this.req.checkFeedback,
    });
  }

  private embedPrompt(agent: Agent, messages: ChatMessage[], slots: SlotContent[]): SplicedPrompt {
    const { tokenizer, model } = agent.shared;
    return splicePrompt(tokenizer.renderChat(messages), slots, tokenizer, model.embedding, agent.preset.name);
  }

  /**
   * The state a latent prompt starts from and the part of the prompt still to run. The text before
   * the first slot is the same tokens at the same positions in every round, so its state is kept
   * after its first run and later rounds continue from it. Keys and values are per position, so the
   * whole prompt runs once and the turn keeps its first positions afterwards (`keep`, done by the
   * caller); a linear-attention layer's running state cannot be cut back, so there the prefix runs
   * alone first and its state is kept exactly where it ends.
   */
  private async startFromPrefix(round: number, agent: Agent, prompt: SplicedPrompt): Promise<PromptStart> {
    const { model } = agent.shared;
    const whole = { state: model.newState(), embeds: prompt.embeds, count: prompt.count };
    const ids = prompt.textParts.length > 1 ? prompt.textParts[0]! : [];
    if (this.req.reusePrefixes === false || ids.length === 0) return whole;
    const name = agent.preset.name;
    const d = model.config.hiddenSize;
    const rest = { embeds: prompt.embeds.subarray(ids.length * d), count: prompt.count - ids.length };
    const kept = this.prefixes.get(name);
    if (kept && kept.ids.length === ids.length && kept.ids.every((id, i) => id === ids[i])) {
      this.reusedPromptTokens += ids.length;
      return { state: kept.state.snapshot(), ...rest };
    }
    // Nothing later would use it.
    if (round >= this.rounds) return whole;
    if (whole.state.truncatable) return { ...whole, keep: ids };
    const state = model.newState();
    await model.forward(state, prompt.embeds.subarray(0, ids.length * d), ids.length, 0);
    this.prefixes.set(name, { ids, state: state.snapshot() });
    return { state, ...rest };
  }

  /** A non-final turn: m latent steps (latent mode) or a text message (text mode). */
  private async thinkTurn(round: number, agent: Agent, senders: string[], slots: SlotContent[]): Promise<SlotContent> {
    this.check();
    const name = agent.preset.name;
    const t = performance.now();
    const messages = this.messagesFor(agent, senders);
    const prompt = this.embedPrompt(agent, messages, slots);
    const { embeds, count } = prompt;
    if (this.req.mode === 'text') {
      this.emit({ type: 'agent-start', round, agent: name, role: agent.preset.role, action: 'text' });
      const text = await this.decode(round, agent, embeds, count, this.preset.defaults.textMessageTokens, false);
      const ms = performance.now() - t;
      this.stages.push({ round, agent: name, kind: 'text', ms });
      this.emit({ type: 'agent-end', round, agent: name, ms, promptTokens: count, latentSteps: 0, textTokens: text.tokens });
      return { text: text.text };
    }
    this.emit({ type: 'agent-start', round, agent: name, role: agent.preset.role, action: 'latent' });
    const m = this.req.latentSteps;
    this.promptTokens += count;
    let promptMs = 0;
    const start = await this.startFromPrefix(round, agent, prompt);
    const thoughts = await latentRollout(agent.shared.model, agent.inner, start.embeds, start.count, m, {
      onStep: (step, steps) => {
        // Step 1's thought is the prompt's last hidden state: the time until then is the prefill.
        if (step === 1) promptMs = performance.now() - t;
        this.latentSteps++;
        this.emit({ type: 'latent-step', round, agent: name, step, steps });
      },
      check: () => this.check(),
    }, start.state);
    if (start.keep) this.prefixes.set(name, { ids: start.keep, state: start.state.truncated(start.keep.length) });
    const ms = performance.now() - t;
    this.stages.push({ round, agent: name, kind: 'latent', ms, promptMs, steps: m - 1 });
    this.emit({ type: 'agent-end', round, agent: name, ms, promptTokens: count, latentSteps: m, textTokens: 0 });
    return { vectors: thoughts, count: m };
  }

  /** M = outer_AB( inner_A( H_A ) ) for latent thoughts; text passes through as it is. */
  private async handOff(round: number, from: Agent, to: Agent, content: SlotContent): Promise<SlotContent> {
    this.check();
    const fromName = from.preset.name;
    const toName = to.preset.name;
    if ('text' in content) {
      this.emit({ type: 'handoff', round, from: fromName, to: toName, vectors: 0, meanNorm: 0, maxNorm: 0, text: content.text });
      return content;
    }
    const link = this.outer.get(`${fromName}->${toName}`)!;
    const mapped = await link.apply(await from.inner.apply(content.vectors, content.count), content.count);
    const d = link.dOut;
    let sum = 0;
    let max = 0;
    for (let i = 0; i < content.count; i++) {
      const n = vectorNorm(mapped.subarray(i * d, (i + 1) * d));
      sum += n;
      max = Math.max(max, n);
    }
    this.emit({ type: 'handoff', round, from: fromName, to: toName, vectors: content.count, meanNorm: sum / content.count, maxNorm: max });
    return { vectors: mapped, count: content.count };
  }

  private async decodeTurn(round: number, agent: Agent, senders: string[], slots: SlotContent[]): Promise<string> {
    this.check();
    const name = agent.preset.name;
    const t = performance.now();
    this.emit({ type: 'agent-start', round, agent: name, role: agent.preset.role, action: 'decode' });
    const messages = this.messagesFor(agent, senders);
    this.finalState = { agent, round };
    const prompt = this.embedPrompt(agent, messages, slots);
    const t0 = performance.now();
    const start = this.req.mode === 'latent' ? await this.startFromPrefix(round, agent, prompt) : undefined;
    const reuseMs = performance.now() - t0;
    const out = await this.decode(round, agent, prompt.embeds, prompt.count, this.req.maxNewTokens, true, start);
    const count = prompt.count;
    const ms = performance.now() - t;
    this.stages.push({ round, agent: name, kind: 'decode', ms, promptMs: reuseMs + out.promptMs, steps: out.tokens });
    this.emit({ type: 'agent-end', round, agent: name, ms, promptTokens: count, latentSteps: 0, textTokens: out.tokens });
    return out.text;
  }

  /**
   * The retry as released: the final agent's raw answer, continued as plain text (no chat template,
   * no latents, the tokenizer's own special tokens as a plain encode adds them) after a short
   * follow-up that ends inside an opened code fence; at most RETRY_TOKENS new tokens.
   */
  private async retryForCode(previous: string): Promise<string> {
    const f = this.finalState!;
    const t = performance.now();
    const { tokenizer, model } = f.agent.shared;
    const continuation = retryContinuation(this.preset.prompts, previous, this.req.language);
    const ids = tokenizer.encodeWithSpecialTokens(continuation);
    const out = await this.decode(f.round, f.agent, model.embedding.lookup(ids), ids.length, Math.min(RETRY_TOKENS, this.req.maxNewTokens), true);
    this.stages.push({ round: f.round, agent: f.agent.preset.name, kind: 'retry', ms: performance.now() - t, promptMs: out.promptMs, steps: out.tokens });
    return continuation + out.text;
  }

  /** `start`, when given, holds the prompt's first part already run; `embeds` and `count` are the whole prompt. */
  private async decode(
    round: number,
    agent: Agent,
    embeds: Float32Array,
    count: number,
    maxNewTokens: number,
    stream: boolean,
    start?: PromptStart,
  ): Promise<{ text: string; tokens: number; promptMs: number }> {
    const { model, tokenizer } = agent.shared;
    const budget = Math.min(maxNewTokens, model.config.maxPositionEmbeddings - count);
    if (budget <= 0) {
      throw new UserError(`The prompt of ${agent.preset.name} is ${count} positions, more than its model's context (${model.config.maxPositionEmbeddings}). Shorten the task or the context.`, 'bad-input');
    }
    // Special tokens stay out of messages and answers: a text message re-encoded with <|im_start|>
    // in it would inject chat structure into the next agent's prompt.
    const textStream = new TokenTextStream(tokenizer, true);
    let text = '';
    const state = start?.state ?? model.newState();
    this.promptTokens += count;
    const stops = [...new Set([...tokenizer.eosIds, ...model.config.eosTokenIds])];
    const result = await generateFromEmbeds(model, state, start?.embeds ?? embeds, start?.count ?? count, {
      temperature: this.req.temperature,
      topP: this.req.topP,
      topK: this.req.topK,
      seed: this.req.seed,
      maxNewTokens: budget,
      stopTokens: this.req.fixedLength ? [] : stops,
      signal: this.signal,
      onToken: (id) => {
        const piece = textStream.push(id);
        text += piece;
        if (stream && piece) this.emit({ type: 'token', round, agent: agent.preset.name, text: piece });
      },
    });
    const tail = textStream.flush();
    text += tail;
    if (stream && tail) this.emit({ type: 'token', round, agent: agent.preset.name, text: tail });
    this.textTokens += result.tokens.length;
    return { text, tokens: result.tokens.length, promptMs: result.prefillMs };
  }
}
