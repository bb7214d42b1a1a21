// The Qwen3.5 part of the generated checkpoints (hf-checkpoint.ts): config keys and tensor names as
// the released Qwen3.5 folders have them. The release is the multimodal Qwen3_5ForConditionalGeneration
// (decoder under text_config, tensors under model.language_model., a vision tower under
// model.visual., a multi-token-prediction head under mtp.); qwen3_5_text is the flat text-only form.
// Norms are stored zero-centred (the model scales by 1 + weight), except linear_attn.norm.

export interface Qwen35Options {
  /** Default true: the released multimodal layout. */
  multimodal?: boolean;
  /** Linear-attention shapes; defaults 2 key heads, 4 value heads, head dims 16, kernel 4. */
  linearKeyHeads?: number;
  linearValueHeads?: number;
  linearKeyHeadDim?: number;
  linearValueHeadDim?: number;
  convKernel?: number;
  /** Every interval-th layer is full attention; default 4. */
  fullAttentionInterval?: number;
  /** Default 0.25. */
  partialRotaryFactor?: number;
}

interface Shape {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  vocabSize: number;
  qwen3_5?: Qwen35Options;
}

export interface Qwen35Resolved {
  multimodal: boolean;
  keyHeads: number;
  valueHeads: number;
  keyHeadDim: number;
  valueHeadDim: number;
  convKernel: number;
  interval: number;
  partialRotaryFactor: number;
  isLinear: boolean[];
}

export function qwen35Options(spec: Shape): Qwen35Resolved {
  const o = spec.qwen3_5 ?? {};
  const interval = o.fullAttentionInterval ?? 4;
  return {
    multimodal: o.multimodal ?? true,
    keyHeads: o.linearKeyHeads ?? 2,
    valueHeads: o.linearValueHeads ?? 4,
    keyHeadDim: o.linearKeyHeadDim ?? 16,
    valueHeadDim: o.linearValueHeadDim ?? 16,
    convKernel: o.convKernel ?? 4,
    interval,
    partialRotaryFactor: o.partialRotaryFactor ?? 0.25,
    isLinear: Array.from({ length: spec.numLayers }, (_, i) => (i + 1) % interval !== 0),
  };
}

/** Where a decoder tensor (model.layers.0...) is stored. */
export function qwen35StoredName(spec: Shape, name: string): string {
  return qwen35Options(spec).multimodal && name.startsWith('model.') ? `model.language_model.${name.slice('model.'.length)}` : name;
}

type Kind = 'matrix' | 'norm' | 'gemmaNorm' | 'bias';

/** Every tensor of the checkpoint; 'gemmaNorm' is a zero-centred norm, 'bias' a small vector. */
export function qwen35TensorPlan(spec: Shape, headDim: number, tie: boolean): { name: string; shape: number[]; kind: Kind }[] {
  const o = qwen35Options(spec);
  const H = spec.hiddenSize;
  const I = spec.intermediateSize;
  const keyDim = o.keyHeads * o.keyHeadDim;
  const valueDim = o.valueHeads * o.valueHeadDim;
  const channels = 2 * keyDim + valueDim;
  const plan: { name: string; shape: number[]; kind: Kind }[] = [{ name: 'model.embed_tokens.weight', shape: [spec.vocabSize, H], kind: 'matrix' }];
  for (let i = 0; i < spec.numLayers; i++) {
    const p = `model.layers.${i}.`;
    plan.push({ name: p + 'input_layernorm.weight', shape: [H], kind: 'gemmaNorm' });
    if (o.isLinear[i]) {
      const a = p + 'linear_attn.';
      plan.push({ name: a + 'in_proj_qkv.weight', shape: [channels, H], kind: 'matrix' });
      plan.push({ name: a + 'in_proj_z.weight', shape: [valueDim, H], kind: 'matrix' });
      plan.push({ name: a + 'in_proj_b.weight', shape: [o.valueHeads, H], kind: 'matrix' });
      plan.push({ name: a + 'in_proj_a.weight', shape: [o.valueHeads, H], kind: 'matrix' });
      plan.push({ name: a + 'conv1d.weight', shape: [channels, 1, o.convKernel], kind: 'matrix' });
      plan.push({ name: a + 'dt_bias', shape: [o.valueHeads], kind: 'bias' });
      plan.push({ name: a + 'A_log', shape: [o.valueHeads], kind: 'bias' });
      plan.push({ name: a + 'norm.weight', shape: [o.valueHeadDim], kind: 'norm' });
      plan.push({ name: a + 'out_proj.weight', shape: [H, valueDim], kind: 'matrix' });
    } else {
      const q = spec.numHeads * headDim;
      const kv = spec.numKvHeads * headDim;
      plan.push({ name: p + 'self_attn.q_proj.weight', shape: [2 * q, H], kind: 'matrix' });
      plan.push({ name: p + 'self_attn.k_proj.weight', shape: [kv, H], kind: 'matrix' });
      plan.push({ name: p + 'self_attn.v_proj.weight', shape: [kv, H], kind: 'matrix' });
      plan.push({ name: p + 'self_attn.q_norm.weight', shape: [headDim], kind: 'gemmaNorm' });
      plan.push({ name: p + 'self_attn.k_norm.weight', shape: [headDim], kind: 'gemmaNorm' });
      plan.push({ name: p + 'self_attn.o_proj.weight', shape: [H, q], kind: 'matrix' });
    }
    plan.push({ name: p + 'post_attention_layernorm.weight', shape: [H], kind: 'gemmaNorm' });
    plan.push({ name: p + 'mlp.gate_proj.weight', shape: [I, H], kind: 'matrix' });
    plan.push({ name: p + 'mlp.up_proj.weight', shape: [I, H], kind: 'matrix' });
    plan.push({ name: p + 'mlp.down_proj.weight', shape: [H, I], kind: 'matrix' });
  }
  plan.push({ name: 'model.norm.weight', shape: [H], kind: 'gemmaNorm' });
  if (!tie) plan.push({ name: 'lm_head.weight', shape: [spec.vocabSize, H], kind: 'matrix' });
  const named = plan.map((e) => ({ ...e, name: qwen35StoredName(spec, e.name) }));
  if (o.multimodal) {
    // A token vision tower and MTP head, present as in the release and never read by the decoder.
    named.push({ name: 'model.visual.patch_embed.proj.weight', shape: [32, 3, 2, 2, 2], kind: 'matrix' });
    named.push({ name: 'mtp.fc.weight', shape: [H, 2 * H], kind: 'matrix' });
  }
  return named;
}

/** config.json: the decoder keys, nested under text_config in the multimodal layout. */
export function qwen35Config(
  spec: Shape & { rmsNormEps?: number; ropeTheta?: number; maxPositionEmbeddings?: number },
  headDim: number,
  ids: { bos: number; eos: number | number[] },
  tie: boolean,
  dtype: string,
): Record<string, unknown> {
  const o = qwen35Options(spec);
  const text: Record<string, unknown> = {
    attention_bias: false,
    attention_dropout: 0.0,
    attn_output_gate: true,
    bos_token_id: ids.bos,
    dtype,
    eos_token_id: ids.eos,
    full_attention_interval: o.interval,
    head_dim: headDim,
    hidden_act: 'silu',
    hidden_size: spec.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: spec.intermediateSize,
    layer_types: o.isLinear.map((l) => (l ? 'linear_attention' : 'full_attention')),
    linear_conv_kernel_dim: o.convKernel,
    linear_key_head_dim: o.keyHeadDim,
    linear_num_key_heads: o.keyHeads,
    linear_num_value_heads: o.valueHeads,
    linear_value_head_dim: o.valueHeadDim,
    max_position_embeddings: spec.maxPositionEmbeddings ?? 262144,
    model_type: 'qwen3_5_text',
    mtp_num_hidden_layers: 1,
    num_attention_heads: spec.numHeads,
    num_hidden_layers: spec.numLayers,
    num_key_value_heads: spec.numKvHeads,
    rms_norm_eps: spec.rmsNormEps ?? 1e-6,
    rope_parameters: {
      mrope_interleaved: true,
      mrope_section: [11, 11, 10],
      partial_rotary_factor: o.partialRotaryFactor,
      rope_theta: spec.ropeTheta ?? 10_000_000,
      rope_type: 'default',
    },
    tie_word_embeddings: tie,
    use_cache: true,
    vocab_size: spec.vocabSize,
  };
  if (!o.multimodal) return { architectures: ['Qwen3_5ForCausalLM'], ...text, transformers_version: '5.3.0' };
  return {
    architectures: ['Qwen3_5ForConditionalGeneration'],
    image_token_id: spec.vocabSize - 1,
    model_type: 'qwen3_5',
    text_config: text,
    tie_word_embeddings: tie,
    transformers_version: '5.3.0',
    video_token_id: spec.vocabSize - 2,
    vision_config: { depth: 1, hidden_size: 32, model_type: 'qwen3_5', num_heads: 2, out_hidden_size: spec.hiddenSize, patch_size: 2, temporal_patch_size: 2 },
  };
}
