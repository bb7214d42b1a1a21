// Qwen3.5: a hybrid of Gated DeltaNet linear-attention layers (three of every four by default) and
// gated full-attention layers, each followed by the usual SwiGLU MLP. Differences from Qwen3:
// - RMSNorms scale by (1 + weight) (weights are stored zero-centred), except the gated norm inside
//   the linear-attention block, which scales by weight;
// - full attention: q_proj yields per head [query | gate]; the merged heads are multiplied by
//   sigmoid(gate) before o_proj; RoPE turns only the first head_dim * partial_rotary_factor dims
//   (the text positions of the multimodal RoPE are equal on all three axes, so it is plain RoPE);
// - linear attention: in_proj_qkv -> causal depthwise conv (kernel K, SiLU) with a conv state of the
//   last K-1 inputs -> q, k (L2-normalised), v; decay g = -exp(A_log) * softplus(a + dt_bias),
//   beta = sigmoid(b); the gated delta rule with a recurrent state [Hv, dk, dv] per layer; gated
//   RMSNorm with silu(z); out_proj. Each key head serves num_v_heads / num_k_heads consecutive
//   value heads.
// The conv and delta-rule steps are onnxruntime's com.microsoft CausalConvWithState and
// LinearAttention (update_rule gated_delta), which the CPU and WebGPU providers implement.
import { UserError } from '../../api';
import { DataType } from '../../onnx/graph';
import { layerWeight } from '../checkpoint';
import { ConfigReader, convChannels, parseLlamaLikeConfig, type DecoderConfig, type LinearAttentionConfig } from '../config';
import { DecoderGraphBuilder, type AttentionMask, type Rotary, type FamilyDefinition } from './base';

const L2_EPS = 1e-6;

class Qwen35GraphBuilder extends DecoderGraphBuilder {
  /** sigmoid(gate) of each full-attention layer, from splitQuery to projectOutput. */
  private readonly outputGates = new Map<number, string>();
  /** The weight of the l2 norm as an RMSNorm, shared by every layer. */
  private l2Weight?: string;

  private get la(): LinearAttentionConfig {
    return this.c.linearAttention!;
  }

  protected override async attention(l: number, x: string, rotary: Rotary, mask: AttentionMask): Promise<string> {
    return this.la.isLinear[l] ? this.gatedDeltaNet(l, x) : super.attention(l, x, rotary, mask);
  }

  protected override splitQuery(l: number, projected: string): string {
    const { g, c } = this;
    const both = g.op('Reshape', [projected, g.constI64([0, 0, c.numHeads, 2 * c.headDim])]);
    const half = (from: number) =>
      g.op('Reshape', [g.op('Slice', [both, g.constI64([from]), g.constI64([from + c.headDim]), g.constI64([3])]), g.constI64([0, 0, c.numHeads * c.headDim])]);
    this.outputGates.set(l, g.op('Sigmoid', [half(c.headDim)]));
    return half(0);
  }

  protected override async projectOutput(l: number, merged: string): Promise<string> {
    return this.linear(this.g.op('Mul', [merged, this.outputGates.get(l)!]), layerWeight(l, 'self_attn.o_proj'));
  }

  protected override async normalizeQK(l: number, q: string, k: string): Promise<[string, string]> {
    return [await this.rmsNorm(q, layerWeight(l, 'self_attn.q_norm.weight')), await this.rmsNorm(k, layerWeight(l, 'self_attn.k_norm.weight'))];
  }

  /** Zero-centred norms become (1 + weight) once, at build time; the gated norm keeps its weight. */
  protected override async requireWeight(name: string): Promise<Float32Array> {
    const w = await super.requireWeight(name);
    if (/norm\.weight$/.test(name) && !name.endsWith('linear_attn.norm.weight')) return w.map((v) => v + 1);
    return w;
  }

  private async gatedDeltaNet(l: number, x: string): Promise<string> {
    const { g } = this;
    const la = this.la;
    const keyDim = la.numKeyHeads * la.keyHeadDim;
    const valueDim = la.numValueHeads * la.valueHeadDim;
    const channels = convChannels(la);
    const w = (name: string) => layerWeight(l, `linear_attn.${name}`);
    g.useOpset('com.microsoft', 1);

    // The delta rule and its inputs in fp32, whatever the compute dtype: its state runs over the whole sequence.
    const [qkv, z, b, a] = (await this.linearGroup(x, [w('in_proj_qkv'), w('in_proj_z'), w('in_proj_b'), w('in_proj_a')])).map((p) => this.toFloat(p)) as [string, string, string, string];

    // Causal depthwise conv over [conv state | new positions], channels first.
    const convWeight = g.initializer(w('conv1d.weight'), DataType.FLOAT, [channels, 1, la.convKernel], await this.requireWeight(w('conv1d.weight')));
    const pastConv = g.input(`past_key_values.${l}.conv_state`, DataType.FLOAT, ['batch', channels, la.convKernel - 1]);
    const [conv, presentConv] = g.opN('CausalConvWithState', [g.op('Transpose', [qkv], { perm: [0, 2, 1] }), convWeight, '', pastConv], 2, { activation: 'silu' }, 'com.microsoft');
    g.bindOutput(presentConv!, `present.${l}.conv_state`, DataType.FLOAT, ['batch', channels, la.convKernel - 1]);
    const mixed = g.op('Transpose', [conv!], { perm: [0, 2, 1] });
    const [qk, v] = g.opN('Split', [mixed, g.constI64([2 * keyDim, channels - 2 * keyDim])], 2, { axis: 2 }) as [string, string];
    const [q, k] = g.opN('Split', [this.l2Normalize(qk, 2 * la.numKeyHeads, la.keyHeadDim), g.constI64([keyDim, keyDim])], 2, { axis: 2 }) as [string, string];

    // Log-space decay and the write strength, per value head and position.
    const aLog = await this.requireWeight(w('A_log'));
    const negA = g.initializer(`${w('A_log')}.neg_exp`, DataType.FLOAT, [la.numValueHeads], aLog.map((x) => -Math.exp(x)));
    const dtBias = g.initializer(w('dt_bias'), DataType.FLOAT, [la.numValueHeads], await this.requireWeight(w('dt_bias')));
    const decay = g.op('Mul', [negA, g.op('Softplus', [g.op('Add', [a, dtBias])])]);
    const beta = g.op('Sigmoid', [b]);

    const stateShape = ['batch', la.numValueHeads, la.keyHeadDim, la.valueHeadDim];
    const pastState = g.input(`past_key_values.${l}.recurrent_state`, DataType.FLOAT, stateShape);
    const [core, presentState] = g.opN(
      'LinearAttention',
      [q, k, v, pastState, decay, beta],
      2,
      { q_num_heads: la.numKeyHeads, kv_num_heads: la.numValueHeads, update_rule: 'gated_delta', scale: { float: 1 / Math.sqrt(la.keyHeadDim) } },
      'com.microsoft',
    );
    g.bindOutput(presentState!, `present.${l}.recurrent_state`, DataType.FLOAT, stateShape);

    // Gated RMSNorm per value head: norm(core) * weight * silu(z).
    const headShape = g.constI64([0, 0, la.numValueHeads, la.valueHeadDim]);
    const normed = await this.rmsNorm(g.op('Reshape', [core!, headShape]), w('norm.weight'), { float: true });
    const zHeads = g.op('Reshape', [z, headShape]);
    const gated = g.op('Mul', [normed, g.op('Mul', [zHeads, g.op('Sigmoid', [zHeads])])]);
    return this.linear(this.toCompute(g.op('Reshape', [gated, g.constI64([0, 0, valueDim])])), w('out_proj'));
  }

  /**
   * x / sqrt(sum(x^2) + eps) over each head of x [B,S,heads*dim], as transformers' l2norm. That is
   * an RMSNorm with eps / dim and weight 1 / sqrt(dim), so it runs as one fused kernel (q and k together).
   */
  private l2Normalize(x: string, heads: number, dim: number): string {
    const { g } = this;
    const h = g.op('Reshape', [x, g.constI64([0, 0, heads, dim])]);
    this.l2Weight ??= g.initializer('l2norm.weight', DataType.FLOAT, [dim], new Float32Array(dim).fill(1 / Math.sqrt(dim)));
    return g.op('Reshape', [this.rmsNormWith(h, this.l2Weight, L2_EPS / dim), g.constI64([0, 0, heads * dim])]);
  }

  protected override expectedShape(name: string): number[] | undefined {
    const { c } = this;
    const la = this.la;
    const valueDim = la.numValueHeads * la.valueHeadDim;
    const table: [RegExp, number[]][] = [
      [/self_attn\.q_proj\.weight$/, [2 * c.numHeads * c.headDim, c.hiddenSize]],
      [/linear_attn\.in_proj_qkv\.weight$/, [convChannels(la), c.hiddenSize]],
      [/linear_attn\.in_proj_z\.weight$/, [valueDim, c.hiddenSize]],
      [/linear_attn\.in_proj_[ab]\.weight$/, [la.numValueHeads, c.hiddenSize]],
      [/linear_attn\.conv1d\.weight$/, [convChannels(la), 1, la.convKernel]],
      [/linear_attn\.(A_log|dt_bias)$/, [la.numValueHeads]],
      [/linear_attn\.norm\.weight$/, [la.valueHeadDim]],
      [/linear_attn\.out_proj\.weight$/, [c.hiddenSize, valueDim]],
    ];
    return table.find(([re]) => re.test(name))?.[1] ?? super.expectedShape(name);
  }
}

/** Qwen3.5's decoder config (hf.ts hands over text_config of a qwen3_5 wrapper, merged with its outer keys). */
function parseQwen35Config(text: ConfigReader, source: string): DecoderConfig {
  const numExperts = text.raw('num_experts');
  if (typeof numExperts === 'number' && numExperts > 0) {
    throw new UserError(
      `${source}: this Qwen3.5 checkpoint has mixture-of-experts MLPs (num_experts ${numExperts}); only dense Qwen3.5 models are supported (the engine has no expert routing).`,
      'unsupported',
    );
  }
  const c = parseLlamaLikeConfig('qwen3_5', text, source);
  c.headDim = text.int('head_dim', 256);
  if (c.ropeScaling) throw new UserError(`${source}: Qwen3.5 with RoPE scaling (${c.ropeScaling.type}) is not supported.`, 'unsupported');
  // The multimodal RoPE's three position streams are equal for text, which makes it plain RoPE.
  const rope = (text.raw('rope_parameters') ?? {}) as Record<string, unknown>;
  const partial = typeof rope.partial_rotary_factor === 'number' ? rope.partial_rotary_factor : text.num('partial_rotary_factor', 0.25);
  c.rotaryDim = Math.round(c.headDim * partial);

  const layerTypes = text.raw('layer_types');
  let isLinear: boolean[];
  if (Array.isArray(layerTypes)) {
    if (layerTypes.length !== c.numLayers) {
      throw new UserError(`${source}: layer_types has ${layerTypes.length} entries for ${c.numLayers} layers.`, 'model-invalid');
    }
    isLinear = layerTypes.map((t, i) => {
      if (t === 'linear_attention') return true;
      if (t === 'full_attention') return false;
      throw new UserError(`${source}: layer_types[${i}] is ${JSON.stringify(t)}; Qwen3.5 layers are "linear_attention" or "full_attention".`, 'model-invalid');
    });
  } else {
    const interval = text.int('full_attention_interval', 4);
    isLinear = Array.from({ length: c.numLayers }, (_, i) => (i + 1) % interval !== 0);
  }
  c.linearAttention = {
    isLinear,
    numKeyHeads: text.int('linear_num_key_heads', 16),
    numValueHeads: text.int('linear_num_value_heads', 32),
    keyHeadDim: text.int('linear_key_head_dim', 128),
    valueHeadDim: text.int('linear_value_head_dim', 128),
    convKernel: text.int('linear_conv_kernel_dim', 4),
  };
  const la = c.linearAttention;
  if (la.numValueHeads % la.numKeyHeads !== 0) {
    throw new UserError(`${source}: linear_num_value_heads (${la.numValueHeads}) is not a multiple of linear_num_key_heads (${la.numKeyHeads}).`, 'model-invalid');
  }
  if (la.convKernel < 2) throw new UserError(`${source}: linear_conv_kernel_dim must be at least 2, found ${la.convKernel}.`, 'model-invalid');
  return c;
}

export const qwen3_5: FamilyDefinition = {
  modelType: 'qwen3_5',
  parseConfig: parseQwen35Config,
  Builder: Qwen35GraphBuilder,
};

export const qwen3_5_text: FamilyDefinition = { ...qwen3_5, modelType: 'qwen3_5_text' };
