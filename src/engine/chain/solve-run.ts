// One solve on a loaded team: R rounds of latent rollouts (or text messages) and hand-offs in the
// preset's collaboration style, then the final agent's streamed decode, the code retry and the
// metrics (spec: shared/docs/recursivemas.md, sections 3-5).
import { CancelledError, UserError, type Device, type Precision, type SolveEvent, type SolveRequest, type SolveResult } from '../api';
import type { StageTiming, Style } from '../../protocol/events';
import { LIMITS, outOfRange } from '../../protocol/limits';
import { generateFromEmbeds } from '../model/generate';
import type { RecursiveLink } from '../links/link';
import type { DecoderModel, DecoderState } from '../model/decoder';
import { vectorNorm } from '../tensor';
import type { ChatMessage, HfTokenizer } from '../tokenizer/hf';
import { TokenTextStream } from '../tokenizer/types';
import { extractCode } from './answer';
import type { AgentPreset, TeamPreset } from './presets';
import { buildRoleMessages, retryContinuation } from './prompts';
import { latentRollout } from './rollout';
import { splicePrompt, type SlotContent, type SplicedPrompt } from './splice';

/** A model with its tokenizer, loaded once for every agent that uses it. */
export interface SharedModel {
  key: string;
  folder: string;
  model: DecoderModel;
  tokenizer: HfTokenizer;
  contentKey: string;
}

export interface Agent {
  preset: AgentPreset;
  shared: SharedModel;
  inner: RecursiveLink;
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

/** The same bounds the protocol's validators hold the runtime's clients to (one LIMITS table). */
function checkRequest(r: SolveRequest): void {
  const whole = (v: number, name: string, range: { min: number; max: number }) => {
    const problem = outOfRange(name, v, range);
    if (problem) throw new UserError(problem, 'bad-input');
  };
  if (!r.task.trim()) throw new UserError('The task is empty: select code or describe what to write.', 'bad-input');
  whole(r.rounds, 'rounds', LIMITS.rounds);
  whole(r.latentSteps, 'latent steps', LIMITS.latentSteps);
  whole(r.maxNewTokens, 'max new tokens', LIMITS.maxNewTokens);
}

/** Where a prompt's run starts: a state (fresh or a kept prefix) and the embeddings still to run. */
interface PromptStart {
  state: DecoderState;
  embeds: Float32Array;
  count: number;
  /** Prefix ids whose positions the caller keeps from `state` once the turn has run. */
  keep?: number[];
}

export class SolveRun {
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
    try {
      return await this.runRounds();
    } finally {
      // Kept prefixes may hold device memory, which only a release frees.
      for (const kept of this.prefixes.values()) kept.state.release();
      this.prefixes.clear();
    }
  }

  private async runRounds(): Promise<SolveResult> {
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
    let thoughts: Float32Array;
    try {
      thoughts = await latentRollout(agent.shared.model, agent.inner, start.embeds, start.count, m, {
        onStep: (step, steps) => {
          // Step 1's thought is the prompt's last hidden state: the time until then is the prefill.
          if (step === 1) promptMs = performance.now() - t;
          this.latentSteps++;
          this.emit({ type: 'latent-step', round, agent: name, step, steps });
        },
        check: () => this.check(),
      }, start.state);
      if (start.keep) this.prefixes.set(name, { ids: start.keep, state: start.state.truncated(start.keep.length) });
    } finally {
      start.state.release();
    }
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
    }).finally(() => state.release());
    const tail = textStream.flush();
    text += tail;
    if (stream && tail) this.emit({ type: 'token', round, agent: agent.preset.name, text: tail });
    this.textTokens += result.tokens.length;
    return { text, tokens: result.tokens.length, promptMs: result.prefillMs };
  }
}
