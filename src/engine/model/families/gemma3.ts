// Gemma 3 (the text decoder of `gemma3`, whose config nests it under text_config and whose weights
// sit under language_model., and of flat `gemma3_text`): Llama's attention with q/k norms, a query
// scale from query_pre_attn_scalar, four sandwich norms per layer storing (weight - 1), a GELU-tanh
// gated MLP, embeddings scaled by sqrt(hidden) (in the lookup, so latent inputs are not scaled
// again), and sliding-window layers with their own RoPE base interleaved with full layers.
import { UserError } from '../../api';
import { layerWeight } from '../checkpoint';
import { ConfigReader, parseLlamaLikeConfig, readRope, type DecoderConfig } from '../config';
import { DecoderGraphBuilder, type AttentionMask, type Residual, type Rotary, type FamilyDefinition } from './base';

class Gemma3GraphBuilder extends DecoderGraphBuilder {
  /** The sliding layers' rotary tables and windowed mask, built once when the first one needs them. */
  private sliding?: { rotary: Rotary; mask: AttentionMask };

  protected override async layer(l: number, x: Residual, rotary: Rotary, mask: AttentionMask): Promise<Residual> {
    const sa = this.c.slidingAttention;
    if (sa?.sliding[l]) {
      // The graph inputs DecoderGraphBuilder.build declares.
      this.sliding ??= { rotary: this.rotaryTables('position_ids', sa.rope), mask: this.attentionMask('inputs_embeds', 'attention_mask', sa.window) };
      ({ rotary, mask } = this.sliding);
    }
    const input = await this.normResidual(x, layerWeight(l, 'input_layernorm.weight'));
    const attn = await this.attention(l, input.normed, rotary, mask);
    const attnOut = await this.rmsNorm(attn, layerWeight(l, 'post_attention_layernorm.weight'), { float: true });
    const pre = await this.normResidual({ base: input.sum, delta: attnOut }, layerWeight(l, 'pre_feedforward_layernorm.weight'));
    const mlp = await this.mlp(l, pre.normed);
    return { base: pre.sum, delta: await this.rmsNorm(mlp, layerWeight(l, 'post_feedforward_layernorm.weight'), { float: true }) };
  }

  protected override async normalizeQK(l: number, q: string, k: string): Promise<[string, string]> {
    return [await this.rmsNorm(q, layerWeight(l, 'self_attn.q_norm.weight')), await this.rmsNorm(k, layerWeight(l, 'self_attn.k_norm.weight'))];
  }

  /** Gemma's RMSNorm multiplies by (1 + weight). */
  protected override async normWeight(weightName: string): Promise<Float32Array> {
    return (await this.requireWeight(weightName)).map((w) => 1 + w);
  }

  protected override async mlp(l: number, x: string): Promise<string> {
    const { g } = this;
    const [gateIn, up] = (await this.linearGroup(x, [layerWeight(l, 'mlp.gate_proj'), layerWeight(l, 'mlp.up_proj')])) as [string, string];
    // gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in fp32 (x^3 overflows fp16 from |x| = 40).
    const gate = this.toFloat(gateIn);
    const cube = g.op('Mul', [g.op('Mul', [gate, gate]), gate]);
    const inner = g.op('Mul', [g.op('Add', [gate, g.op('Mul', [cube, g.scalarF32(0.044715)])]), g.scalarF32(Math.sqrt(2 / Math.PI))]);
    const gelu = g.op('Mul', [g.op('Mul', [gate, g.scalarF32(0.5)]), g.op('Add', [g.op('Tanh', [inner]), g.scalarF32(1)])]);
    return this.linear(g.op('Mul', [this.toCompute(gelu), up]), layerWeight(l, 'mlp.down_proj'));
  }

  protected override async lmHead(x: string): Promise<string> {
    const logits = await super.lmHead(x);
    const cap = this.c.finalLogitSoftcapping;
    if (cap === undefined) return logits;
    const { g } = this;
    return g.op('Mul', [g.op('Tanh', [g.op('Mul', [logits, g.scalarF32(1 / cap)])]), g.scalarF32(cap)]);
  }
}

function unsupported(source: string, what: string): never {
  throw new UserError(`${source}: ${what}, which the gemma3 family here does not implement.`, 'unsupported');
}

/**
 * transformers' Gemma3TextConfig defaults. transformers 4 wrote a multimodal checkpoint's
 * text_config as a diff against them (google/gemma-3-4b-it's lists six keys: no heads, head_dim
 * or rope base), so they are part of the format, not a guess. head_dim is never hidden/heads here
 * (4B: 256 vs 320).
 */
const GEMMA3_TEXT_DEFAULTS: Record<string, unknown> = {
  vocab_size: 262_208,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  max_position_embeddings: 131_072,
  rms_norm_eps: 1e-6,
  rope_theta: 1_000_000,
  rope_local_base_freq: 10_000,
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
  sliding_window_pattern: 6,
};

export function parseGemma3Config(raw: ConfigReader, source: string): DecoderConfig {
  const r = raw.withDefaults(GEMMA3_TEXT_DEFAULTS);
  const activation = r.raw('hidden_activation') ?? r.raw('hidden_act');
  if (activation !== 'gelu_pytorch_tanh') unsupported(source, `"hidden_activation" is ${JSON.stringify(activation)} (only gelu_pytorch_tanh is built)`);
  if (r.has('attn_logit_softcapping')) unsupported(source, `"attn_logit_softcapping" is set (Gemma 2 style attention softcapping)`);
  if (r.raw('use_bidirectional_attention') === true) unsupported(source, '"use_bidirectional_attention" is true (an embedding model, not a decoder)');
  const config = parseLlamaLikeConfig('gemma3', r, source);
  const window = r.int('sliding_window');
  let sliding: boolean[];
  const types = r.raw('layer_types');
  if (types !== undefined && types !== null) {
    if (!Array.isArray(types) || types.length !== config.numLayers || types.some((t) => t !== 'sliding_attention' && t !== 'full_attention')) {
      throw new UserError(`${source}: "layer_types" must list "sliding_attention" or "full_attention" for each of the ${config.numLayers} layers.`, 'model-invalid');
    }
    sliding = types.map((t) => t === 'sliding_attention');
  } else {
    // transformers 4: every pattern-th layer is a full layer.
    const pattern = r.int('sliding_window_pattern');
    sliding = Array.from({ length: config.numLayers }, (_, i) => (i + 1) % pattern !== 0);
  }
  config.slidingAttention = { window, sliding, rope: readRope(r, source, 'sliding_attention') };
  config.attentionScale = 1 / Math.sqrt(r.num('query_pre_attn_scalar'));
  const cap = r.raw('final_logit_softcapping');
  if (cap !== undefined && cap !== null) config.finalLogitSoftcapping = r.num('final_logit_softcapping');
  // Rounded to the embedding table's dtype once the weights are open (see openHfCheckpoint).
  config.embeddingScale = Math.sqrt(config.hiddenSize);
  return config;
}

export const gemma3: FamilyDefinition = {
  modelType: 'gemma3',
  parseConfig: parseGemma3Config,
  Builder: Gemma3GraphBuilder,
};

export const gemma3Text: FamilyDefinition = { ...gemma3, modelType: 'gemma3_text' };
