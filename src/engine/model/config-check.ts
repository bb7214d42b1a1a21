// The last check on a decoder configuration before anything is built from it, whatever file it
// came from (config.json, a llama2.c header): every number finite, every size a positive whole
// number within what any real model uses, heads that divide, head dimensions that RoPE can rotate.
// A hostile or broken file then ends in one clear error instead of a crash deep in the graph
// builder (a fractional dimension) or an allocation of terabytes. Family parsers check their own
// extra fields; this looks at the shared DecoderConfig fields, and at every other number only to
// see that it is finite, so a family's additions are never refused here.
import { UserError } from '../api';
import type { DecoderConfig, RopeSpec } from './config';

// Upper bounds well above any published model (Llama 3.1 405B: hidden 16384, 126 layers, 128
// heads; Gemma 3: vocab 262144; head_dim at most 256 today), far below what would exhaust memory.
const LIMITS = {
  hiddenSize: 1 << 16,
  intermediateSize: 1 << 19,
  numLayers: 1024,
  numHeads: 1024,
  numKvHeads: 1024,
  headDim: 4096,
  vocabSize: 1 << 22,
  maxPositionEmbeddings: 1 << 24,
} as const;
/** Elements of the largest single matrix (embedding table or MLP projection): 2^33, i.e. 32 GB in fp32. */
const MAX_MATRIX_ELEMENTS = 2 ** 33;

function invalid(source: string, what: string): UserError {
  return new UserError(`${source}: ${what}. The model configuration is damaged or not a decoder we support; download it again.`, 'model-invalid');
}

function checkSize(config: DecoderConfig, source: string, key: keyof typeof LIMITS): void {
  const v = config[key] as unknown;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw invalid(source, `${key} must be a positive whole number, found ${String(v)}`);
  if (v > LIMITS[key]) throw invalid(source, `${key} is ${v}, more than the ${LIMITS[key]} any supported model uses`);
}

function checkPositive(source: string, what: string, v: unknown, max = Number.MAX_VALUE): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) throw invalid(source, `${what} must be a positive number${max < Number.MAX_VALUE ? ` up to ${max}` : ''}, found ${String(v)}`);
}

function checkRope(source: string, what: string, rope: Pick<RopeSpec, 'theta' | 'scaling'>): void {
  checkPositive(source, `${what} theta`, rope.theta, 1e12);
  const s = rope.scaling;
  if (!s) return;
  checkPositive(source, `${what} scaling factor`, s.factor, 1e6);
  if (s.type === 'llama3') {
    checkPositive(source, `${what} low_freq_factor`, s.lowFreqFactor, 1e6);
    checkPositive(source, `${what} high_freq_factor`, s.highFreqFactor, 1e6);
    if (!Number.isSafeInteger(s.originalMaxPositionEmbeddings) || s.originalMaxPositionEmbeddings <= 0) {
      throw invalid(source, `${what} original_max_position_embeddings must be a positive whole number, found ${String(s.originalMaxPositionEmbeddings)}`);
    }
  }
}

/** Every number anywhere in the config is finite (an explicit stack: no recursion over file data). */
function checkAllFinite(config: DecoderConfig, source: string): void {
  const stack: [string, unknown][] = [['', config]];
  while (stack.length) {
    const [path, value] = stack.pop()!;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw invalid(source, `${path || 'a field'} is ${value}`);
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push([`${path}[${i}]`, value[i]]);
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) stack.push([path ? `${path}.${k}` : k, v]);
    }
  }
}

/** Throws a UserError ('model-invalid') naming `source` when the config cannot be built safely. */
export function validateDecoderConfig<T extends DecoderConfig>(config: T, source: string): T {
  checkAllFinite(config, source);
  for (const key of Object.keys(LIMITS) as (keyof typeof LIMITS)[]) checkSize(config, source, key);
  const c = config;
  if (c.numHeads % c.numKvHeads !== 0) throw invalid(source, `the ${c.numHeads} attention heads cannot be shared by ${c.numKvHeads} key/value heads (not a divisor)`);
  // RoPE rotates pairs of dimensions: an odd rotated width has no partner for its last one.
  const rotary = c.rotaryDim ?? c.headDim;
  if (!Number.isSafeInteger(rotary) || rotary <= 0 || rotary > c.headDim) throw invalid(source, `the rotary width ${rotary} must be a whole number from 1 to head_dim (${c.headDim})`);
  if (rotary % 2 !== 0) throw invalid(source, `the rotary width (head_dim ${c.headDim}${c.rotaryDim !== undefined ? `, rotated ${rotary}` : ''}) is odd; RoPE needs an even number of dimensions`);
  if (c.vocabSize * c.hiddenSize > MAX_MATRIX_ELEMENTS) throw invalid(source, `the embedding table (${c.vocabSize} x ${c.hiddenSize}) is larger than any supported model's`);
  if (c.intermediateSize * c.hiddenSize > MAX_MATRIX_ELEMENTS) throw invalid(source, `the MLP (${c.intermediateSize} x ${c.hiddenSize}) is larger than any supported model's`);
  if (c.numHeads * c.headDim > LIMITS.hiddenSize * 4) throw invalid(source, `${c.numHeads} heads of ${c.headDim} dimensions are more than any supported model has`);
  checkPositive(source, 'rms_norm_eps', c.rmsNormEps, 1);
  checkRope(source, 'rope', { theta: c.ropeTheta, scaling: c.ropeScaling });
  checkPositive(source, 'the embedding scale', c.embeddingScale, 1e6);
  if (c.attentionScale !== undefined) checkPositive(source, 'the attention scale', c.attentionScale, 1e6);
  if (c.finalLogitSoftcapping !== undefined) checkPositive(source, 'final_logit_softcapping', c.finalLogitSoftcapping, 1e6);
  for (const id of [...(c.bosTokenId === undefined ? [] : [c.bosTokenId]), ...c.eosTokenIds]) {
    if (!Number.isSafeInteger(id) || id < 0) throw invalid(source, `token id ${id} is not a whole number of 0 or more`);
  }
  const sliding = c.slidingAttention;
  if (sliding) {
    if (!Number.isSafeInteger(sliding.window) || sliding.window <= 0) throw invalid(source, `the sliding window must be a positive whole number, found ${sliding.window}`);
    if (sliding.sliding.length !== c.numLayers) throw invalid(source, `the sliding-window layer pattern has ${sliding.sliding.length} entries for ${c.numLayers} layers`);
    checkRope(source, 'sliding-window rope', sliding.rope);
  }
  const linear = c.linearAttention;
  if (linear) {
    for (const [what, v] of [['linear key heads', linear.numKeyHeads], ['linear value heads', linear.numValueHeads], ['linear key head dim', linear.keyHeadDim], ['linear value head dim', linear.valueHeadDim], ['linear conv kernel', linear.convKernel]] as const) {
      if (!Number.isSafeInteger(v) || v <= 0 || v > LIMITS.headDim) throw invalid(source, `${what} must be a positive whole number up to ${LIMITS.headDim}, found ${v}`);
    }
    if (linear.isLinear.length !== c.numLayers) throw invalid(source, `the linear-attention layer pattern has ${linear.isLinear.length} entries for ${c.numLayers} layers`);
  }
  return config;
}
