// A loaded decoder: one ONNX Runtime session plus the embedding table. Several agents may share one
// DecoderModel; each keeps its own KV cache (or linear-attention state) in a DecoderState.
import * as ort from 'onnxruntime-node';

// ORT's own warnings (e.g. about unused initializers) are noise for users; errors still surface.
ort.env.logLevel = 'error';
import { UserError, type Device, type Precision } from '../api';
import { buildDecoderGraph, computesInFp16 } from './build';
import { convChannels, type DecoderConfig } from './config';
import { EmbeddingTable } from './embedding';
import { kvBufferCapacity } from './memory';
import { quantizesWeights } from './quantize';
import { openCheckpoint } from './hf';
import type { LatentHead } from './families/base';
import { dirname, join } from 'node:path';

export interface LoadModelOptions {
  precision?: Precision;
  device?: Device;
  threads?: number;
  cacheDirectory?: string;
  /** An agent's inner link, built into the graph so that a latent step is one run (see GraphOptions). */
  latentHead?: LatentHead;
  /** For benchmarks: onnxruntime profiles every run into a trace named from this prefix (see endProfiling). */
  profileFilePrefix?: string;
}

/**
 * One sequence's decoder state: per layer either its keys and values (growing with the sequence) or,
 * for a linear-attention layer, a conv state and a recurrent state (fixed size, zeros at start).
 * On a GPU provider the tensors stay in device memory between steps (`onDevice`): JavaScript holds
 * opaque handles and never reads them. On the CPU provider the keys and values sit in buffers with
 * spare capacity (KvBuffers) that each step feeds whole and appends its new positions to; the
 * fixed-size states are replaced by each step's outputs.
 */
export class DecoderState {
  /** The state tensors each run replaces: all of them, or with KvBuffers the linear-attention ones. */
  private pastTensors: Record<string, ort.Tensor>;
  private kv?: KvBuffers;
  /** [past input, present output] of the tensors each run replaces. */
  private readonly replaced: [string, string][];
  length = 0;
  constructor(
    private readonly config: DecoderConfig,
    past?: Record<string, ort.Tensor>,
    readonly onDevice = false,
    kv?: KvBuffers | 'new',
    /** The KV cache's element type: fp16 where the graph computes in fp16 (GPU providers). */
    private readonly kvType: KvType = 'float32',
  ) {
    this.kv = kv === 'new' ? KvBuffers.empty(config, this) : kv;
    // With buffers, only the linear-attention layers' fixed-size states are replaced.
    this.replaced = stateNames(config).filter(([past]) => !this.kv || !/\.(key|value)$/.test(past));
    this.pastTensors = past ?? emptyPast(config, this.kv !== undefined, kvType);
    for (const t of Object.values(this.pastTensors)) holdDeviceTensor(t);
  }
  /**
   * The state tensors, by graph input name. With key/value buffers, the keys and values are copies
   * of the filled positions ([1, KVH, length, HD]), for inspection.
   */
  get past(): Readonly<Record<string, ort.Tensor>> {
    if (!this.kv) return this.pastTensors;
    const filled: Record<string, ort.Tensor> = { ...this.pastTensors };
    for (const name of Object.keys(this.kv.tensors)) filled[name] = this.kv.filled(name, this.length);
    return filled;
  }
  /** What a run of this state is fed: every state input (key/value buffers whole, capacity included). */
  get inputs(): Readonly<Record<string, ort.Tensor>> {
    return this.kv ? { ...this.pastTensors, ...this.kv.tensors } : this.pastTensors;
  }
  /** The key/value buffers' capacity in positions, or undefined when the graph takes whole present tensors. */
  get capacity(): number | undefined {
    return this.kv?.capacity;
  }
  /** Puts a step's output in place of `name`, freeing the old device tensor once no state holds it. */
  replace(name: string, tensor: ort.Tensor): void {
    const old = this.pastTensors[name];
    holdDeviceTensor(tensor);
    this.pastTensors[name] = tensor;
    if (old) dropDeviceTensor(old);
  }
  /** The graph outputs a run of `count` positions on this state returns, as advance() takes them. */
  get outputNames(): string[] {
    return [...this.replaced.map(([, present]) => present), ...(this.kv?.outputNames ?? [])];
  }
  /** Takes a run of `count` new positions: its state outputs replace or extend this state. */
  advance(outputs: Readonly<Record<string, ort.Tensor>>, count: number): void {
    for (const [past, present] of this.replaced) this.replace(past, outputs[present]!);
    if (this.kv) this.append(this.kv, outputs, count);
    this.length += count;
  }
  /**
   * Appends the new positions' keys and values (a run's new.{l}.key/value outputs, [1, KVH, count,
   * HD] each) after the filled slots: in place when this state writes these buffers and they have
   * room, otherwise first copying the filled positions into larger buffers of its own.
   */
  private append(kv: KvBuffers, outputs: Readonly<Record<string, ort.Tensor>>, count: number): void {
    const needed = this.length + count;
    if (kv.writer !== this || kv.capacity < needed) {
      if (kv.writer === this) kv.writer = undefined;
      kv = this.kv = kv.copy(this.length, kvBufferCapacity(needed), this);
    }
    kv.write(outputs, this.length, count);
  }
  /**
   * Frees this state's device memory (a no-op for host tensors, which the garbage collector frees).
   * Device tensors are not collected: a state on a GPU provider must be released when done.
   */
  release(): void {
    for (const t of Object.values(this.pastTensors)) dropDeviceTensor(t);
    if (this.kv) {
      // Snapshots may still read these buffers: nobody writes into them any more.
      if (this.kv.writer === this) this.kv.writer = undefined;
      this.kv = KvBuffers.empty(this.config, this);
    }
    this.pastTensors = emptyPast(this.config, this.kv !== undefined, this.kvType);
    this.length = 0;
  }
  reset(): void {
    this.release();
  }
  /**
   * This state as it is now, for continuing twice from one point (prefix reuse). O(1): forward
   * replaces the past tensors with the run's new outputs and never writes into them, and the
   * key/value buffers' owner only writes past its own length (at least the snapshot's), while the
   * snapshot copies them before its first write; a linear-attention layer's running state is
   * captured exactly at this length.
   */
  snapshot(): DecoderState {
    const copy = new DecoderState(this.config, { ...this.pastTensors }, this.onDevice, this.kv, this.kvType);
    copy.length = this.length;
    return copy;
  }
  /**
   * Whether truncated() works: only keys and values are per position (a running state is not), and
   * only host memory can be cut (device tensors are not readable from JavaScript).
   */
  get truncatable(): boolean {
    return !this.onDevice && !this.config.linearAttention?.isLinear.some(Boolean);
  }
  /** A state holding only the first `length` positions (positions never depend on later ones). */
  truncated(length: number): DecoderState {
    if (!this.truncatable || length > this.length) throw new Error(`cannot truncate this state to ${length} positions`);
    if (this.kv) {
      // Shares the buffers as a snapshot does: slots from `length` on are simply unfilled for it.
      const copy = new DecoderState(this.config, { ...this.pastTensors }, false, this.kv);
      copy.length = length;
      return copy;
    }
    const past: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(this.past)) {
      const [b, heads, total, width] = t.dims as [number, number, number, number];
      if (total !== this.length) throw new Error(`${name} holds ${total} positions, not ${this.length}`);
      const from = t.data as Float32Array;
      const data = new Float32Array(b * heads * length * width);
      for (let h = 0; h < b * heads; h++) data.set(from.subarray(h * total * width, (h * total + length) * width), h * length * width);
      past[name] = new ort.Tensor('float32', data, [b, heads, length, width]);
    }
    const copy = new DecoderState(this.config, past);
    copy.length = length;
    return copy;
  }
}

/**
 * Every attention layer's keys and values in buffers [1, KVH, capacity, HD] (slot i holds position
 * i), fed to the graph whole. Snapshots share them; only `writer` writes into them, and only past
 * its own length, which no state sharing them reads (their lengths are at most the writer's).
 */
class KvBuffers {
  /** The state that may write into these buffers in place; any other copies them first. */
  writer: DecoderState | undefined;
  /** The buffers as graph inputs, by past input name. */
  readonly tensors: Record<string, ort.Tensor> = {};
  readonly outputNames: string[];

  private constructor(
    /** [past input, output of the new positions] per buffer. */
    private readonly pairs: readonly [string, string][],
    private readonly heads: number,
    private readonly width: number,
    readonly capacity: number,
    writer: DecoderState,
  ) {
    this.writer = writer;
    this.outputNames = pairs.map(([, output]) => output);
    for (const [name] of pairs) this.tensors[name] = new ort.Tensor('float32', new Float32Array(heads * capacity * width), [1, heads, capacity, width]);
  }

  static empty(c: DecoderConfig, writer: DecoderState): KvBuffers {
    return new KvBuffers(kvNames(c), c.numKvHeads, c.headDim, 0, writer);
  }

  private data(name: string): Float32Array {
    return this.tensors[name]!.data as Float32Array;
  }

  /** New buffers of `capacity` holding this one's first `length` positions, written by `writer`. */
  copy(length: number, capacity: number, writer: DecoderState): KvBuffers {
    const next = new KvBuffers(this.pairs, this.heads, this.width, capacity, writer);
    for (const [name] of this.pairs) this.copyRows(name, next.data(name), capacity, length);
    return next;
  }

  /** The first `length` positions of `name` as a compact [1, KVH, length, HD] tensor. */
  filled(name: string, length: number): ort.Tensor {
    const data = new Float32Array(this.heads * length * this.width);
    this.copyRows(name, data, length, length);
    return new ort.Tensor('float32', data, [1, this.heads, length, this.width]);
  }

  private copyRows(name: string, to: Float32Array, toCapacity: number, length: number): void {
    const from = this.data(name);
    const w = this.width;
    for (let h = 0; h < this.heads; h++) to.set(from.subarray(h * this.capacity * w, (h * this.capacity + length) * w), h * toCapacity * w);
  }

  /** Writes `count` positions from slot `at`, taken from a run's outputs. */
  write(outputs: Readonly<Record<string, ort.Tensor>>, at: number, count: number): void {
    const w = this.width;
    for (const [name, output] of this.pairs) {
      const from = outputs[output]!.data as Float32Array;
      const to = this.data(name);
      for (let h = 0; h < this.heads; h++) to.set(from.subarray(h * count * w, (h + 1) * count * w), (h * this.capacity + at) * w);
    }
  }
}

// Device tensors are opaque handles whose memory the garbage collector never frees (measured on
// WebGPU: leaked buffers grew memory and slowed steps 5x), and snapshots share them: count holders.
const deviceHolders = new WeakMap<ort.Tensor, number>();

function holdDeviceTensor(t: ort.Tensor): void {
  if (t.location === 'gpu-buffer') deviceHolders.set(t, (deviceHolders.get(t) ?? 0) + 1);
}

function dropDeviceTensor(t: ort.Tensor): void {
  if (t.location !== 'gpu-buffer') return;
  const left = (deviceHolders.get(t) ?? 1) - 1;
  if (left > 0) {
    deviceHolders.set(t, left);
    return;
  }
  deviceHolders.delete(t);
  t.dispose();
}

/** [past input, present output] names of every state tensor the graph carries. */
export function stateNames(c: DecoderConfig): [string, string][] {
  const names: [string, string][] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const parts = c.linearAttention?.isLinear[l] ? ['conv_state', 'recurrent_state'] : ['key', 'value'];
    for (const p of parts) names.push([`past_key_values.${l}.${p}`, `present.${l}.${p}`]);
  }
  return names;
}

/** With key/value buffers: [past input, output of the new positions] of each attention layer's keys and values. */
function kvNames(c: DecoderConfig): [string, string][] {
  const names: [string, string][] = [];
  for (let l = 0; l < c.numLayers; l++) {
    if (!c.linearAttention?.isLinear[l]) for (const p of ['key', 'value']) names.push([`past_key_values.${l}.${p}`, `new.${l}.${p}`]);
  }
  return names;
}

type KvType = 'float32' | 'float16';

/** The state tensors runs replace; with key/value buffers, only the linear-attention ones. */
function emptyPast(c: DecoderConfig, kvBuffers: boolean, kvType: KvType): Record<string, ort.Tensor> {
  const past: Record<string, ort.Tensor> = {};
  const dims = [1, c.numKvHeads, 0, c.headDim];
  const empty = kvType === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims);
  const la = c.linearAttention;
  for (let l = 0; l < c.numLayers; l++) {
    if (la?.isLinear[l]) {
      past[`past_key_values.${l}.conv_state`] = zeros([1, convChannels(la), la.convKernel - 1]);
      past[`past_key_values.${l}.recurrent_state`] = zeros([1, la.numValueHeads, la.keyHeadDim, la.valueHeadDim]);
    } else if (!kvBuffers) {
      past[`past_key_values.${l}.key`] = empty;
      past[`past_key_values.${l}.value`] = empty;
    }
  }
  return past;
}

function zeros(dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
}

export interface ForwardResult {
  /** [logitsToKeep, vocab]: the last positions' logits (empty when logitsToKeep is 0). */
  logits: Float32Array;
  /** [count, hidden]: post-final-norm hidden states of the new positions. */
  hidden: Float32Array;
  /**
   * With `next`, on a graph with a latent head: the next latent step's input embedding ([1, 1, H]),
   * where the provider keeps it (device memory on a GPU). Pass it to forwardNext.
   */
  next?: ort.Tensor;
}

export interface StepTiming {
  runMs: number;
  totalMs: number;
}

export class DecoderModel {
  /** Time spent inside session.run versus the whole forward call, for benchmarks. */
  readonly timing: StepTiming = { runMs: 0, totalMs: 0 };
  /** Whether the session keeps the state outputs in device memory (GPU providers). */
  readonly stateOnDevice: boolean;
  private readonly kvType: KvType;

  private constructor(
    readonly source: string,
    readonly config: DecoderConfig,
    readonly embedding: EmbeddingTable,
    private readonly session: ort.InferenceSession,
    readonly device: Device,
    readonly precision: Precision,
    readonly warnings: string[],
    readonly graphPath: string,
    /** Whether the graph takes keys and values as buffers with spare capacity (GraphOptions.kvBuffers). */
    private readonly kvBuffers: boolean,
    /** The key of the inner link built into the graph, if any (see LoadModelOptions.latentHead). */
    readonly latentHeadKey?: string,
  ) {
    this.stateOnDevice = device !== 'cpu';
    this.kvType = computesInFp16(precision, device) ? 'float16' : 'float32';
  }

  static async load(path: string, options: LoadModelOptions = {}): Promise<DecoderModel> {
    const precision = options.precision ?? 'fp32';
    const checkpoint = await openCheckpoint(path);
    try {
      const requested = options.device ?? 'cpu';
      if (precision === 'int8' && requested !== 'cpu') {
        throw new UserError(`int8 weights run on the CPU only, not on ${requested}: choose fp16 or int4 for ${requested}, or the cpu device for int8.`, 'bad-input');
      }
      const graphFor = (device: Device) => buildDecoderGraph(checkpoint, { precision, cacheDirectory: options.cacheDirectory, device, latentHead: options.latentHead });
      let built = await graphFor(requested);
      // An int4 or int8 model's lookups read int8 rows: its own classifier is no finer than that.
      const embedding = await EmbeddingTable.load(checkpoint, { int8: quantizesWeights(precision), int8File: join(dirname(built.modelPath), 'embedding.int8') });
      const deviceOutputs = [...stateNames(checkpoint.config).map(([, present]) => present), ...(options.latentHead ? ['next_embeds'] : [])];
      const profiling = options.profileFilePrefix ? { enableProfiling: true, profileFilePrefix: options.profileFilePrefix } : {};
      // If the GPU provider fails, the CPU runs its own graph (fp32 compute, key/value buffers).
      const cpuGraph = requested === 'cpu' ? undefined : async () => (built = await graphFor('cpu')).modelPath;
      const { session, device, warnings } = await createSession(built.modelPath, requested, options.threads, deviceOutputs, profiling, cpuGraph);
      return new DecoderModel(path, checkpoint.config, embedding, session, device, precision, warnings, built.modelPath, built.kvBuffers, options.latentHead?.key);
    } finally {
      await checkpoint.close();
    }
  }

  newState(): DecoderState {
    return new DecoderState(this.config, undefined, this.stateOnDevice, this.kvBuffers ? 'new' : undefined, this.kvType);
  }

  /** Runs `count` new positions given as input embeddings ([count * hidden]) on top of `state`'s cache. */
  async forward(state: DecoderState, embeds: Float32Array, count: number, logitsToKeep = 1, options: { next?: boolean } = {}): Promise<ForwardResult> {
    if (embeds.length !== count * this.config.hiddenSize) {
      throw new UserError(`forward got ${embeds.length} values for ${count} positions of width ${this.config.hiddenSize}.`, 'bad-input');
    }
    return this.run(state, new ort.Tensor('float32', embeds, [1, count, this.config.hiddenSize]), count, logitsToKeep, options.next ?? false);
  }

  /**
   * One latent step fed with the previous step's `next` output (the inner link already applied in
   * the graph), which is then freed; returns this step's hidden state and (with `wantNext`) the next `next`.
   */
  async forwardNext(state: DecoderState, next: ort.Tensor, wantNext = true): Promise<ForwardResult> {
    try {
      return await this.run(state, next, 1, 0, wantNext);
    } finally {
      next.dispose();
    }
  }

  private async run(state: DecoderState, inputsEmbeds: ort.Tensor, count: number, logitsToKeep: number, next: boolean): Promise<ForwardResult> {
    if (next && !this.latentHeadKey) throw new Error('this graph has no latent head');
    const started = performance.now();
    const feeds = { ...this.feeds(state, count, logitsToKeep), inputs_embeds: inputsEmbeds };
    const runStart = performance.now();
    // All outputs: onnxruntime-node binds every output when some stay on the device, and then
    // refuses a shorter fetch list ("Output count mismatch").
    const out = await this.session.run(feeds);
    this.timing.runMs += performance.now() - runStart;
    state.advance(out, count);
    const result: ForwardResult = { logits: out.logits!.data as Float32Array, hidden: out.last_hidden_state!.data as Float32Array };
    if (next) result.next = out.next_embeds!;
    else out.next_embeds?.dispose();
    this.timing.totalMs += performance.now() - started;
    return result;
  }

  /**
   * For benchmarks: the milliseconds of one session.run of this step, fetching the state outputs or
   * only logits and hidden states (the difference is what returning the state to JavaScript costs).
   * `state` is left as it was.
   */
  async timeRun(state: DecoderState, embeds: Float32Array, count: number, fetchState: boolean): Promise<number> {
    const feeds = { ...this.feeds(state, count, 1), inputs_embeds: new ort.Tensor('float32', embeds, [1, count, this.config.hiddenSize]) };
    const fetches = ['logits', 'last_hidden_state', ...(fetchState ? state.outputNames : [])];
    const t = performance.now();
    await this.session.run(feeds, fetches);
    return performance.now() - t;
  }

  /** Every input but inputs_embeds. */
  private feeds(state: DecoderState, count: number, logitsToKeep: number): Record<string, ort.Tensor> {
    const c = this.config;
    const total = state.length + count;
    if (total > c.maxPositionEmbeddings) {
      throw new UserError(
        `The sequence needs ${total} positions but the model's context is ${c.maxPositionEmbeddings}. Shorten the prompt, lower max new tokens or latent steps.`,
        'bad-input',
      );
    }
    const positions = new BigInt64Array(count);
    for (let i = 0; i < count; i++) positions[i] = BigInt(state.length + i);
    return {
      ...state.inputs,
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
      position_ids: new ort.Tensor('int64', positions, [1, count]),
      logits_to_keep: new ort.Tensor('int64', BigInt64Array.of(BigInt(logitsToKeep)), [1]),
    };
  }

  /** Writes the profiler's trace (with LoadModelOptions.profileFilePrefix). */
  endProfiling(): void {
    this.session.endProfiling();
  }

  async dispose(): Promise<void> {
    this.embedding.close();
    await this.session.release();
  }
}

const EP_NAMES: Record<Device, string> = { cpu: 'cpu', webgpu: 'webgpu', cuda: 'cuda' };

/**
 * Creates the session on `device`, falling back to CPU with a warning when that provider fails. On a
 * GPU provider the outputs named in `deviceOutputs` (the decoder's state) stay in device memory, to
 * be fed back as the next step's inputs without a copy through the host; every other output (logits,
 * hidden states) comes back to JavaScript.
 */
export async function createSession(
  modelPath: string | Uint8Array,
  device: Device,
  threads?: number,
  deviceOutputs: readonly string[] = [],
  extra: ort.InferenceSession.SessionOptions = {},
  /** The graph to run on the CPU instead when the GPU provider fails (the CPU's graph differs). */
  cpuGraph?: () => Promise<string>,
): Promise<{ session: ort.InferenceSession; device: Device; warnings: string[] }> {
  const base: ort.InferenceSession.SessionOptions = {
    ...extra,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    logSeverityLevel: 3,
    // Flush denormals to zero: peaked softmaxes leave attention probabilities in the denormal
    // range, where x86 arithmetic is ~20x slower (measured: the probs x V matmuls took 6x their
    // normal time at 1024 positions). Values below 1.2e-38 change no result we can see.
    extra: { session: { set_denormal_as_zero: '1' } },
    ...(threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}),
  };
  if (device !== 'cpu') {
    try {
      const preferredOutputLocation = Object.fromEntries(deviceOutputs.map((name) => [name, 'gpu-buffer' as const]));
      const session = await ort.InferenceSession.create(modelPath as string, {
        ...base,
        executionProviders: [EP_NAMES[device]],
        ...(deviceOutputs.length ? { preferredOutputLocation } : {}),
      });
      return { session, device, warnings: [] };
    } catch (e) {
      const warning = `The ${device} execution provider failed to start (${(e as Error).message.split('\n')[0]}); running on the CPU instead.`;
      const cpuPath = cpuGraph ? await cpuGraph() : modelPath;
      const session = await ort.InferenceSession.create(cpuPath as string, { ...base, executionProviders: ['cpu'] });
      return { session, device: 'cpu', warnings: [warning] };
    }
  }
  const session = await ort.InferenceSession.create(modelPath as string, { ...base, executionProviders: ['cpu'] });
  return { session, device: 'cpu', warnings: [] };
}
