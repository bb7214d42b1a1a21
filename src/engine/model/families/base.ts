// The decoder graph, read top to bottom like llama2.c's run.c: embeddings come in, each layer is
// attention + MLP around RMSNorms, the final norm gives last_hidden_state, lm_head gives logits.
// Families override the small methods where they differ (see llama.ts, qwen3.ts, ...).
//
// Interface: inputs_embeds [B,S,H] f32, attention_mask [B,T] i64, position_ids [B,S] i64,
// past_key_values.{i}.key/value [B,KVH,P,HD], logits_to_keep [1] i64 (how many last positions get
// logits: a prefill needs 1, a latent step 0, so neither pays for vocabulary projections it discards);
// outputs logits [B,L,V], last_hidden_state [B,S,H], present.{i}.key/value [B,KVH,T,HD].
// With GraphOptions.kvBuffers (the CPU provider) the past K/V are buffers [B,KVH,C,HD] with spare
// capacity C whose first P = T - S slots are filled, and the graph returns only the new positions'
// new.{i}.key/value [B,KVH,S,HD] (see DecoderState).
import { UserError, type Precision } from '../../api';
import { DataType, GraphBuilder } from '../../onnx/graph';
import type { WeightSource } from '../checkpoint';
import { EMBED, FINAL_NORM, LM_HEAD, layerWeight } from '../checkpoint';
import { inverseFrequencies, type ConfigReader, type DecoderConfig, type RopeSpec } from '../config';
import { f32ToF16, f32ToF16Bits, toFloat32 } from '../../dtype';
import { int8MatMul, quantizeActivationsInt8, quantizeInt4Rows, quantizeInt8Rows, INT4_BLOCK, type Int4Weights, type Int8Activations, type Int8Weights } from '../quantize';

export type { Precision };

/** One architecture family: how its config.json reads and, where its graph differs, its builder. */
export interface FamilyDefinition {
  modelType: string;
  parseConfig(r: ConfigReader, source: string): DecoderConfig;
  Builder: new (g: GraphBuilder, c: DecoderConfig, w: WeightSource, p: Precision, o?: GraphOptions) => DecoderGraphBuilder;
}

/**
 * com.microsoft RotaryEmbedding's cache and position ids for this run: cos and sin of the angles of
 * each (batch, position), rows [B*S, rotaryDim/2] in the compute dtype, and the row of each, [B,S].
 */
export interface Rotary {
  cos: string;
  sin: string;
  rows: string;
}

/**
 * The residual stream between sublayers, fp32. A sum not yet taken (`base + delta`) is taken by
 * the next norm, in the same kernel (SkipSimplifiedLayerNormalization).
 */
export interface Residual {
  base: string;
  delta?: string;
}

/** What every layer's attention shares: the additive mask and the shapes its scores take. */
export interface AttentionMask {
  /** [B,1,1,S,T]: causal over the cache plus padding. */
  bias: string;
  /** The number of past positions P = T - S, as [1]. */
  pastLength: string;
  /** [B,KVH,groups,S,T] and [B,KVH,groups*S,T]: the same scores seen per query head, or per KV head. */
  perQueryHead: string;
  perKvHead: string;
}

export interface GraphOptions {
  /**
   * fp16 compute, for GPU providers: fp16 (or int4 with fp16 scales) weights, activations inside
   * attention and the MLP, and an fp16 KV cache (half the memory and the bytes each step reads). fp32 where accuracy needs it: the
   * residual stream (bf16-trained checkpoints overflow fp16 there), each RMSNorm's reduction, the
   * attention softmax, Gemma's GELU, Qwen3.5's conv and recurrent states, and the outputs. Without
   * it, fp16 weights are cast to fp32 inside the graph, which onnxruntime folds into fp32 constants:
   * right for the CPU provider, which has no fp16 matrix kernels.
   */
  fp16Compute?: boolean;
  /**
   * An agent's inner link, built in after the final norm: the graph also returns `next_embeds`
   * ([B, 1, H]), the next latent step's input computed from the last position's hidden state, so a
   * latent step is one run and its input never leaves the provider's device.
   */
  latentHead?: LatentHead;
  /**
   * Keys and values live in JavaScript-owned buffers with spare capacity, fed whole (inputs are
   * zero-copy) and never returned: onnxruntime-node copies every CPU output into a fresh buffer
   * after each run, so returning the whole cache cost a fifth of a decode step at 1024 positions.
   * The graph returns only the new positions' keys and values, which DecoderState writes into the
   * buffers. For the CPU provider; GPU providers keep present outputs on the device instead.
   */
  kvBuffers?: boolean;
}

/** Graph nodes mapping a hidden state to an input embedding ([..., H] -> [..., H]); `key` names the weights, for the cache. */
export interface LatentHead {
  key: string;
  append(g: GraphBuilder, x: string, scope: string): string;
}

export class DecoderGraphBuilder {
  protected readonly c: DecoderConfig;

  constructor(
    protected readonly g: GraphBuilder,
    config: DecoderConfig,
    protected readonly weights: WeightSource,
    protected readonly precision: Precision,
    protected readonly options: GraphOptions = {},
  ) {
    this.c = config;
  }

  async build(): Promise<void> {
    const { g, c } = this;
    const embeds = g.input('inputs_embeds', DataType.FLOAT, ['batch', 'sequence', c.hiddenSize]);
    const attentionMask = g.input('attention_mask', DataType.INT64, ['batch', 'total_sequence']);
    const positions = g.input('position_ids', DataType.INT64, ['batch', 'sequence']);
    const keep = g.input('logits_to_keep', DataType.INT64, [1]);

    const rotary = this.rotaryTables(positions);
    const mask = this.attentionMask(embeds, attentionMask);
    let x: Residual = { base: embeds };
    for (let l = 0; l < c.numLayers; l++) x = await this.layer(l, x, rotary, mask);
    const hidden = (await this.normResidual(x, FINAL_NORM, { float: true })).normed;
    g.bindOutput(hidden, 'last_hidden_state', DataType.FLOAT, ['batch', 'sequence', c.hiddenSize]);
    if (this.options.latentHead) {
      const last = g.op('Slice', [hidden, g.constI64([-1]), g.constI64([Number.MAX_SAFE_INTEGER]), g.constI64([1])]);
      g.bindOutput(this.options.latentHead.append(g, last, 'latent_head.'), 'next_embeds', DataType.FLOAT, ['batch', 1, c.hiddenSize]);
    }

    // Logits for the last `logits_to_keep` positions only: a prefill needs one row, a latent step none.
    const seqLen = g.op('Slice', [g.op('Shape', [hidden]), g.constI64([1]), g.constI64([2]), g.constI64([0])]);
    const start = g.op('Max', [g.op('Sub', [seqLen, keep]), g.constI64([0])]);
    const kept = g.op('Slice', [hidden, start, g.constI64([Number.MAX_SAFE_INTEGER]), g.constI64([1])]);
    const logits = await this.lmHead(this.toCompute(kept));
    g.bindOutput(logits, 'logits', DataType.FLOAT, ['batch', 'kept_sequence', c.vocabSize]);
  }

  protected async layer(l: number, x: Residual, rotary: Rotary, mask: AttentionMask): Promise<Residual> {
    const input = await this.normResidual(x, layerWeight(l, 'input_layernorm.weight'));
    const attn = await this.attention(l, input.normed, rotary, mask);
    const post = await this.normResidual({ base: input.sum, delta: this.toFloat(attn) }, layerWeight(l, 'post_attention_layernorm.weight'));
    const mlp = await this.mlp(l, post.normed);
    return { base: post.sum, delta: this.toFloat(mlp) };
  }

  protected async attention(l: number, x: string, rotary: Rotary, mask: AttentionMask): Promise<string> {
    const { g, c } = this;
    const [qProjected, kProjected, vProjected] = await this.linearGroup(x, ['q_proj', 'k_proj', 'v_proj'].map((p) => layerWeight(l, `self_attn.${p}`)));
    let q = g.op('Reshape', [this.splitQuery(l, qProjected!), g.constI64([0, 0, c.numHeads, c.headDim])]);
    let k = g.op('Reshape', [kProjected!, g.constI64([0, 0, c.numKvHeads, c.headDim])]);
    const v = g.op('Reshape', [vProjected!, g.constI64([0, 0, c.numKvHeads, c.headDim])]);
    [q, k] = await this.normalizeQK(l, q, k);
    // [B,S,heads,HD] -> [B,heads,S,HD]
    q = this.rope(g.op('Transpose', [q], { perm: [0, 2, 1, 3] }), rotary, c.numHeads);
    k = this.rope(g.op('Transpose', [k], { perm: [0, 2, 1, 3] }), rotary, c.numKvHeads);
    const vt = g.op('Transpose', [v], { perm: [0, 2, 1, 3] });

    const kvShape = ['batch', c.numKvHeads, this.options.kvBuffers ? 'past_capacity' : 'past_sequence', c.headDim];
    const pastK = g.input(`past_key_values.${l}.key`, this.computeType, kvShape);
    const pastV = g.input(`past_key_values.${l}.value`, this.computeType, kvShape);

    // Grouped-query attention without repeating K/V: the queries of one KV head's group stacked as
    // rows, [B,KVH,groups*S,HD], so both products are plain batched matmuls on K/V as they are
    // (broadcasting K/V over a groups axis made ORT's MatMul several times slower at long context).
    const qScaled = g.op('Mul', [q, this.computeScalar(c.attentionScale ?? 1 / Math.sqrt(c.headDim))]);
    const qRows = g.op('Reshape', [qScaled, g.constI64([0, c.numKvHeads, -1, c.headDim])]);
    let presentK: string;
    let presentV: string;
    if (this.options.kvBuffers) {
      const newShape = ['batch', c.numKvHeads, 'sequence', c.headDim];
      g.bindOutput(k, `new.${l}.key`, this.computeType, newShape);
      g.bindOutput(vt, `new.${l}.value`, this.computeType, newShape);
      // The buffers' filled slots (slot i is position i), then the new positions: the very present
      // keys and values of a concatenated cache, so every product sums in the same order and cached
      // steps equal a full recomputation exactly. Two copies inside the run, none out of it.
      const filled = (buffer: string) => g.op('Slice', [buffer, g.constI64([0]), mask.pastLength, g.constI64([2])]);
      presentK = g.op('Concat', [filled(pastK), k], { axis: 2 });
      presentV = g.op('Concat', [filled(pastV), vt], { axis: 2 });
    } else {
      presentK = g.op('Concat', [pastK, k], { axis: 2 });
      presentV = g.op('Concat', [pastV, vt], { axis: 2 });
      const presentShape = ['batch', c.numKvHeads, 'total_sequence', c.headDim];
      g.bindOutput(presentK, `present.${l}.key`, this.computeType, presentShape);
      g.bindOutput(presentV, `present.${l}.value`, this.computeType, presentShape);
    }
    const scores = g.op('MatMul', [qRows, g.op('Transpose', [presentK], { perm: [0, 1, 3, 2] })]);
    const masked = g.op('Add', [g.op('Reshape', [this.toFloat(scores), mask.perQueryHead]), mask.bias]);
    const probs = this.toCompute(g.op('Reshape', [g.op('Softmax', [masked], { axis: -1 }), mask.perKvHead]));
    const context = g.op('MatMul', [probs, presentV]); // [B,KVH,groups*S,HD]
    const heads = g.op('Reshape', [context, g.constI64([0, c.numHeads, -1, c.headDim])]);
    const merged = g.op('Reshape', [g.op('Transpose', [heads], { perm: [0, 2, 1, 3] }), g.constI64([0, 0, c.numHeads * c.headDim])]);
    return this.projectOutput(l, merged);
  }

  /** Hooks around attention for gated variants (Qwen3.5 splits an output gate off q_proj's output). */
  protected splitQuery(_l: number, projected: string): string {
    return projected;
  }

  protected async projectOutput(l: number, merged: string): Promise<string> {
    return this.linear(merged, layerWeight(l, 'self_attn.o_proj'));
  }

  /** Hook for per-head query/key normalisation (Qwen3); identity here. q,k: [B,S,heads,HD]. */
  protected async normalizeQK(_l: number, q: string, k: string): Promise<[string, string]> {
    return [q, k];
  }

  protected async mlp(l: number, x: string): Promise<string> {
    const { g } = this;
    const [gate, up] = (await this.linearGroup(x, [layerWeight(l, 'mlp.gate_proj'), layerWeight(l, 'mlp.up_proj')])) as [string, string];
    const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
    return this.linear(g.op('Mul', [silu, up]), layerWeight(l, 'mlp.down_proj'));
  }

  /**
   * RMSNorm in the op pattern ORT fuses into SimplifiedLayerNormalization, computed in fp32 from
   * either dtype; the result is in the compute dtype (a sublayer's input), or fp32 with `float`.
   */
  protected async rmsNorm(x: string, weightName: string, opts: { float?: boolean } = {}): Promise<string> {
    const y = this.rmsNormWith(this.toFloat(x), await this.normInitializer(weightName), this.c.rmsNormEps);
    return opts.float ? y : this.toCompute(y);
  }

  /**
   * The RMSNorm of the residual stream `r` (in the compute dtype, or fp32 with `float`) and the
   * stream as one tensor. A pending sum is added inside the norm's kernel: one node, not two.
   */
  protected async normResidual(r: Residual, weightName: string, opts: { float?: boolean } = {}): Promise<{ normed: string; sum: string }> {
    if (!r.delta) return { normed: await this.rmsNorm(r.base, weightName, opts), sum: r.base };
    const { g } = this;
    const names = [g.fresh('normed'), '', '', g.fresh('residual')];
    const [normed, , , sum] = g.opN('SkipSimplifiedLayerNormalization', [r.base, r.delta, await this.normInitializer(weightName)], 4, { epsilon: { float: this.c.rmsNormEps } }, 'com.microsoft', names);
    g.useOpset('com.microsoft', 1);
    return { normed: opts.float ? normed! : this.toCompute(normed!), sum: sum! };
  }

  /** A norm's weight as an fp32 initializer. */
  private async normInitializer(weightName: string): Promise<string> {
    return this.g.initializer(weightName, DataType.FLOAT, this.weights.shape(weightName), await this.normWeight(weightName));
  }

  /**
   * x / sqrt(mean(x^2) + eps) * w over the last axis of the fp32 tensor `x`, written the way
   * onnxruntime fuses into one SimplifiedLayerNormalization kernel.
   */
  protected rmsNormWith(x: string, w: string, eps: number): string {
    const { g } = this;
    const meanSquare = g.op('ReduceMean', [g.op('Pow', [x, g.scalarF32(2)])], { axes: [-1], keepdims: 1 });
    const rms = g.op('Sqrt', [g.op('Add', [meanSquare, g.scalarF32(eps)])]);
    return g.op('Mul', [g.op('Div', [x, rms]), w]);
  }

  /** The dtype of activations inside sublayers and of the KV cache. */
  protected get computeType(): typeof DataType.FLOAT | typeof DataType.FLOAT16 {
    return this.options.fp16Compute ? DataType.FLOAT16 : DataType.FLOAT;
  }

  /** `x` (fp32) in the compute dtype. */
  protected toCompute(x: string): string {
    return this.options.fp16Compute ? this.g.op('Cast', [x], { to: DataType.FLOAT16 }) : x;
  }

  /** `x` (in the compute dtype) in fp32. */
  protected toFloat(x: string): string {
    return this.options.fp16Compute ? this.g.op('Cast', [x], { to: DataType.FLOAT }) : x;
  }

  /** A scalar constant in the compute dtype. */
  protected computeScalar(value: number): string {
    const { g } = this;
    if (!this.options.fp16Compute) return g.scalarF32(value);
    return g.initializer(g.fresh('c_f16'), DataType.FLOAT16, [], Uint16Array.of(f32ToF16Bits(value)));
  }

  /** The multiplier an RMSNorm applies, as stored here; Gemma stores it minus one. */
  protected async normWeight(weightName: string): Promise<Float32Array> {
    return this.requireWeight(weightName);
  }

  /** y = x W^T (+ b) for a PyTorch Linear stored as [out, in], in the configured precision. */
  protected async linear(x: string, prefix: string, weightName = `${prefix}.weight`): Promise<string> {
    return (await this.linearParts(x, [{ prefix, weightName }]))[0]!;
  }

  /**
   * Several Linears of the same input as one matrix product, split after: [x W1^T | x W2^T | ...].
   * Each output column is the same dot product as on its own, but a decode step dispatches one
   * kernel instead of several small ones (Qwen3.5's in_proj_b/a have 16 rows each).
   */
  protected async linearGroup(x: string, prefixes: string[]): Promise<string[]> {
    return this.linearParts(x, prefixes.map((prefix) => ({ prefix, weightName: `${prefix}.weight` })));
  }

  private async linearParts(x: string, parts: { prefix: string; weightName: string }[]): Promise<string[]> {
    const { g } = this;
    const shapes = parts.map((p) => this.checkWeight(p.weightName) as [number, number]);
    const inner = shapes[0]![1];
    if (shapes.some(([, i]) => i !== inner)) throw new Error(`grouped linears ${parts.map((p) => p.prefix).join(', ')} differ in input width`);
    const outs = shapes.map(([o]) => o);
    const out = outs.reduce((a, b) => a + b, 0);
    const firsts = outs.map((_, i) => outs.slice(0, i).reduce((a, b) => a + b, 0));
    const name = parts.length === 1 ? parts[0]!.weightName : `${parts[0]!.prefix}.group${parts.length}`;
    let y: string;
    if (this.precision === 'int4') {
      const blocksPerRow = Math.ceil(inner / INT4_BLOCK);
      const q: Int4Weights = { packed: new Uint8Array(out * blocksPerRow * (INT4_BLOCK / 2)), scales: new Float32Array(out * blocksPerRow), blocksPerRow };
      for (const [i, p] of parts.entries()) {
        await this.forRowChunks(p.weightName, outs[i]!, inner, (rows, first, count) => quantizeInt4Rows(rows, count, inner, q, firsts[i]! + first));
      }
      g.useOpset('com.microsoft', 1);
      const packed = g.initializer(`${name}.q4`, DataType.UINT8, [out, q.blocksPerRow, INT4_BLOCK / 2], q.packed);
      const scales = this.options.fp16Compute
        ? g.initializer(`${name}.scales`, DataType.FLOAT16, [out * q.blocksPerRow], f32ToF16(q.scales))
        : g.initializer(`${name}.scales`, DataType.FLOAT, [out * q.blocksPerRow], q.scales);
      // accuracy_level 4 computes with int8-quantized activations, as llama.cpp's Q4_0 kernels do.
      y = g.op('MatMulNBits', [x, packed, scales], { K: inner, N: out, bits: 4, block_size: INT4_BLOCK, accuracy_level: 4 }, { domain: 'com.microsoft' });
    } else if (this.precision === 'int8') {
      const q: Int8Weights = { values: new Int8Array(inner * out), scales: new Float32Array(out) };
      for (const [i, p] of parts.entries()) {
        await this.forRowChunks(p.weightName, outs[i]!, inner, (rows, first, count) => quantizeInt8Rows(rows, count, inner, out, q, firsts[i]! + first));
      }
      let rows = this.int8Inputs.get(x);
      if (!rows) this.int8Inputs.set(x, (rows = quantizeActivationsInt8(g, x)));
      y = int8MatMul(g, rows, q, inner, out, name);
    } else {
      const fp16 = this.precision === 'fp16';
      const t = fp16 ? new Uint16Array(out * inner) : new Float32Array(out * inner);
      for (const [i, p] of parts.entries()) {
        await this.forRowChunks(p.weightName, outs[i]!, inner, (rows, first, count) => transposeRows(rows, count, inner, out, firsts[i]! + first, t));
      }
      if (!fp16) {
        y = g.op('MatMul', [x, g.initializer(`${name}.t`, DataType.FLOAT, [inner, out], t)]);
      } else {
        const w16 = g.initializer(`${name}.t`, DataType.FLOAT16, [inner, out], t);
        y = g.op('MatMul', [x, this.options.fp16Compute ? w16 : g.op('Cast', [w16], { to: DataType.FLOAT })]);
      }
    }
    const biases = parts.map((p) => `${p.prefix}.bias`);
    if (biases.some((b) => this.weights.has(b))) {
      const bias = new Float32Array(out);
      for (const [i, b] of biases.entries()) if (this.weights.has(b)) bias.set(await this.weights.read(b), firsts[i]);
      const stored = this.options.fp16Compute ? g.initializer(`${name}.bias`, DataType.FLOAT16, [out], f32ToF16(bias)) : g.initializer(`${name}.bias`, DataType.FLOAT, [out], bias);
      y = g.op('Add', [y, stored]);
    }
    if (parts.length === 1) return [y];
    return g.opN('Split', [y, g.constI64(outs)], parts.length, { axis: -1 });
  }

  /** Activations already quantized for int8 products, by input name (q, k, v or gate and up share theirs). */
  private readonly int8Inputs = new Map<string, Int8Activations>();

  /** Logits (fp32) of `x` in the compute dtype. */
  protected async lmHead(x: string): Promise<string> {
    const name = this.c.tieWordEmbeddings ? EMBED : LM_HEAD;
    return this.toFloat(await this.linear(x, name.replace(/\.weight$/, ''), name));
  }

  /** cos/sin of position * inverse frequency for RotaryEmbedding, shared by all layers (see Rotary). */
  protected rotaryTables(positions: string, rope?: RopeSpec): Rotary {
    const { g } = this;
    const frequencies = inverseFrequencies(this.c, rope);
    const pos = g.op('Unsqueeze', [g.op('Cast', [positions], { to: DataType.FLOAT }), g.constI64([2])]);
    // Angles in fp32 (positions times frequencies lose digits in fp16); the tables in the compute dtype.
    const angles = g.op('Reshape', [g.op('Mul', [pos, g.constF32(frequencies)]), g.constI64([-1, frequencies.length])]);
    const cos = this.toCompute(g.op('Cos', [angles]));
    const sin = this.toCompute(g.op('Sin', [angles]));
    const count = g.op('Gather', [g.op('Shape', [angles]), g.constI64([0], [])], { axis: 0 });
    const rows = g.op('Reshape', [g.op('Range', [g.constI64([0], []), count, g.constI64([1], [])]), g.op('Shape', [positions])]);
    return { cos, sin, rows };
  }

  /**
   * Rotates x [B,heads,S,HD] in one kernel: halves (Hugging Face) or interleaved pairs (llama2.c);
   * with a partial rotary (Qwen3.5) only the first rotaryDim dimensions turn.
   */
  protected rope(x: string, rotary: Rotary, heads: number): string {
    const { g, c } = this;
    g.useOpset('com.microsoft', 1);
    const attrs = { interleaved: c.ropeInterleaved ? 1 : 0, rotary_embedding_dim: c.rotaryDim ?? c.headDim, num_heads: heads };
    return g.op('RotaryEmbedding', [x, rotary.rows, rotary.cos, rotary.sin], attrs, { domain: 'com.microsoft' });
  }

  /**
   * Additive mask [B,1,1,S,T] (causal over the cache plus the padding mask) and the score shapes;
   * with `window`, a query also sees only keys less than `window` positions back (sliding window).
   */
  protected attentionMask(embeds: string, attentionMask: string, window?: number): AttentionMask {
    const { g, c } = this;
    const scalar = (shapeOf: string, index: number) => g.op('Gather', [g.op('Shape', [shapeOf]), g.constI64([index], [])], { axis: 0 });
    const total = scalar(attentionMask, 1);
    const seq = scalar(embeds, 1);
    const past = g.op('Sub', [total, seq]);
    const one = g.constI64([1], []);
    const keyIndex = g.op('Range', [g.constI64([0], []), total, one]);
    const queryIndex = g.op('Range', [past, total, one]);
    const keys = g.op('Unsqueeze', [keyIndex, g.constI64([0])]);
    const queries = g.op('Unsqueeze', [queryIndex, g.constI64([1])]);
    let causal = g.op('LessOrEqual', [keys, queries]);
    if (window !== undefined) causal = g.op('And', [causal, g.op('Less', [g.op('Sub', [queries, keys]), g.constI64([window], [])])]);
    const notPadded = g.op('Cast', [attentionMask], { to: DataType.BOOL });
    const allowed = g.op('And', [g.op('Unsqueeze', [causal, g.constI64([0, 1, 2])]), g.op('Unsqueeze', [notPadded, g.constI64([1, 2, 3])])]);
    // The lowest finite float rather than -inf keeps fully masked rows finite.
    const bias = g.op('Where', [allowed, g.scalarF32(0), g.scalarF32(-3.4028234663852886e38)]);
    const totalDim = g.op('Unsqueeze', [total, g.constI64([0])]);
    const groups = c.numHeads / c.numKvHeads;
    const perQueryHead = g.op('Concat', [g.constI64([0, c.numKvHeads, groups, -1]), totalDim], { axis: 0 });
    const perKvHead = g.op('Concat', [g.constI64([0, c.numKvHeads, -1]), totalDim], { axis: 0 });
    return { bias, perQueryHead, perKvHead, pastLength: g.op('Unsqueeze', [past, g.constI64([0])]) };
  }

  /**
   * A linear weight's stored [out, inner] rows as float32, a few MB at a time: a large matrix (a
   * 150k-token classifier) never exists whole as float32, only as its stored bytes and the output.
   * Linear weights are read here, not through requireWeight.
   */
  private async forRowChunks(name: string, out: number, inner: number, use: (rows: Float32Array, first: number, count: number) => void): Promise<void> {
    const { dtype, bytes } = await this.weights.readStored(name);
    const size = dtype === 'f32' ? 4 : 2;
    const chunk = Math.max(1, Math.floor((4 << 20) / (inner * 4)));
    for (let first = 0; first < out; first += chunk) {
      const count = Math.min(chunk, out - first);
      use(toFloat32(dtype, bytes.subarray(first * inner * size, (first + count) * inner * size)), first, count);
    }
  }

  /** The tensor's shape, once it is known to exist with the shape config.json implies. */
  protected checkWeight(name: string): number[] {
    if (!this.weights.has(name)) {
      throw new UserError(`The checkpoint has no tensor "${name}", which a ${this.c.family} model needs. The download may be incomplete, or config.json does not match the weights.`, 'model-invalid');
    }
    const expected = this.expectedShape(name);
    const actual = this.weights.shape(name);
    if (expected && (expected.length !== actual.length || expected.some((d, i) => d !== actual[i]))) {
      throw new UserError(`Tensor "${name}" has shape [${actual.join(', ')}] but config.json implies [${expected.join(', ')}].`, 'model-invalid');
    }
    return actual;
  }

  protected async requireWeight(name: string): Promise<Float32Array> {
    this.checkWeight(name);
    return this.weights.read(name);
  }

  protected expectedShape(name: string): number[] | undefined {
    const c = this.c;
    const q = c.numHeads * c.headDim;
    const kv = c.numKvHeads * c.headDim;
    const table: [RegExp, number[]][] = [
      [/embed_tokens\.weight$|^lm_head\.weight$/, [c.vocabSize, c.hiddenSize]],
      [/q_proj\.weight$/, [q, c.hiddenSize]],
      [/[kv]_proj\.weight$/, [kv, c.hiddenSize]],
      [/o_proj\.weight$/, [c.hiddenSize, q]],
      [/(gate|up)_proj\.weight$/, [c.intermediateSize, c.hiddenSize]],
      [/down_proj\.weight$/, [c.hiddenSize, c.intermediateSize]],
      [/[qk]_norm\.weight$/, [c.headDim]],
      [/layernorm\.weight$|^model\.norm\.weight$/, [c.hiddenSize]],
    ];
    return table.find(([re]) => re.test(name))?.[1];
  }
}

/** Writes `count` rows (of `cols` values) of a [rows, cols] matrix, from row `first`, into its transpose `t` (float32, or fp16 bits). */
function transposeRows(w: Float32Array, count: number, cols: number, rows: number, first: number, t: Float32Array | Uint16Array): void {
  const half = t instanceof Uint16Array;
  for (let local = 0; local < count; local++) {
    const r = first + local;
    const base = local * cols;
    for (let col = 0; col < cols; col++) t[col * rows + r] = half ? f32ToF16Bits(w[base + col]!) : w[base + col]!;
  }
}
