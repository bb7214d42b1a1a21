// Test tooling: the generated checkpoints (the engine writes them from a spec, for demo teams),
// with the values they stored read back, and an independent float64 reference forward pass of the
// Hugging Face architecture to check engines and converters against.
import { headDimOf, writeHfCheckpoint, type CheckpointSpec, type GeneratedCheckpoint } from '../../src/engine/model/synthetic/hf-checkpoint';
import { listModelTensors, readStoredTensor } from './safetensors-read';

export * from '../../src/engine/model/synthetic/hf-checkpoint';
export { QWEN05B_SHAPE, QWEN35_08B_SHAPE } from './shapes';

export interface TinyModelSpec extends CheckpointSpec {
  /**
   * Read the stored values back into `tensors`. Defaults to true up to 64M parameters; larger
   * models (QWEN05B_SHAPE) are left in their files and `tensors` stays empty.
   */
  keepTensors?: boolean;
}

export interface TinyModel extends GeneratedCheckpoint {
  spec: TinyModelSpec;
  // Tests read whichever keys the family wrote.
  config: any;
  tokenizerConfig: any;
  /** Values as STORED (after bf16/f16 rounding), by stored name (see storedTensorName); empty when keepTensors is false. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export async function writeTinyHfModel(dir: string, spec: TinyModelSpec): Promise<TinyModel> {
  const { keepTensors, ...checkpoint } = spec;
  const written = await writeHfCheckpoint(dir, checkpoint);
  const stored = listModelTensors(dir);
  const parameters = [...stored.values()].reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  if (keepTensors ?? parameters <= 64 * 1024 * 1024) {
    for (const [name, info] of stored) tensors.set(name, { shape: info.shape, data: readStoredTensor(info) });
  }
  return { ...written, spec, tensors };
}

// ---------------------------------------------------------------------------------------------
// Reference forward pass (float64, Hugging Face semantics: rotate-half RoPE, GQA, SwiGLU)

/** HF's inverse RoPE frequencies, including Llama 3.1's rope_scaling when the config has it. */
export function ropeInvFreq(config: any, headDim: number): Float64Array {
  const theta: number = config.rope_theta;
  const inv = new Float64Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  const rs = config.rope_scaling;
  if (rs && rs.rope_type === 'llama3') {
    const lowWave = rs.original_max_position_embeddings / rs.low_freq_factor;
    const highWave = rs.original_max_position_embeddings / rs.high_freq_factor;
    for (let i = 0; i < inv.length; i++) {
      const wave = (2 * Math.PI) / inv[i]!;
      if (wave > lowWave) inv[i] = inv[i]! / rs.factor;
      else if (wave >= highWave) {
        const smooth = (rs.original_max_position_embeddings / wave - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        inv[i] = (1 - smooth) * (inv[i]! / rs.factor) + smooth * inv[i]!;
      }
    }
  }
  return inv;
}

function rmsNorm(x: Float64Array, w: Float32Array, eps: number, off = 0, n = x.length): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[off + i]! * x[off + i]!;
  const r = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) x[off + i] = x[off + i]! * r * w[i]!;
}

function matVec(w: Float32Array, rows: number, cols: number, x: Float64Array, bias?: Float32Array): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = bias ? bias[r]! : 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) s += w[o + c]! * x[c]!;
    out[r] = s;
  }
  return out;
}

/**
 * Incremental float64 forward pass from the stored weights, exactly as the Hugging Face modeling
 * code defines the architecture: `step(id)` feeds the next token and returns the logits after it.
 * Needs the stored tensors (keepTensors).
 */
export function referenceRunner(model: TinyModel): { step(id: number): Float32Array } {
  const spec = model.spec;
  const get = (name: string) => {
    const t = model.tensors.get(name);
    if (!t) throw new Error(`the reference forward pass needs the stored tensors (keepTensors); ${name} is missing`);
    return t.data;
  };
  const H = spec.hiddenSize;
  const I = spec.intermediateSize;
  const hd = headDimOf(spec);
  const nH = spec.numHeads;
  const nKv = spec.numKvHeads;
  const group = nH / nKv;
  const eps: number = model.config.rms_norm_eps;
  const inv = ropeInvFreq(model.config, hd);
  const embed = get('model.embed_tokens.weight');
  const head = model.config.tie_word_embeddings ? embed : get('lm_head.weight');
  const kCache: Float64Array[][] = Array.from({ length: spec.numLayers }, () => []);
  const vCache: Float64Array[][] = Array.from({ length: spec.numLayers }, () => []);
  const rope = (v: Float64Array, heads: number, pos: number) => {
    for (let h = 0; h < heads; h++) {
      const o = h * hd;
      for (let i = 0; i < hd / 2; i++) {
        const a = pos * inv[i]!;
        const c = Math.cos(a);
        const s = Math.sin(a);
        const x1 = v[o + i]!;
        const x2 = v[o + i + hd / 2]!;
        v[o + i] = x1 * c - x2 * s;
        v[o + i + hd / 2] = x2 * c + x1 * s;
      }
    }
  };
  let pos = 0;
  const step = (id: number): Float32Array => {
    if (!(Number.isInteger(id) && id >= 0 && id < spec.vocabSize)) throw new Error(`token id ${id} is outside the vocabulary`);
    const x = Float64Array.from(embed.subarray(id * H, (id + 1) * H));
    for (let l = 0; l < spec.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const xn = Float64Array.from(x);
      rmsNorm(xn, get(p + 'input_layernorm.weight'), eps);
      const bias = (n: string) => (spec.family === 'qwen2' ? get(p + `self_attn.${n}_proj.bias`) : undefined);
      const q = matVec(get(p + 'self_attn.q_proj.weight'), nH * hd, H, xn, bias('q'));
      const k = matVec(get(p + 'self_attn.k_proj.weight'), nKv * hd, H, xn, bias('k'));
      const v = matVec(get(p + 'self_attn.v_proj.weight'), nKv * hd, H, xn, bias('v'));
      if (spec.family === 'qwen3') {
        for (let h = 0; h < nH; h++) rmsNorm(q, get(p + 'self_attn.q_norm.weight'), eps, h * hd, hd);
        for (let h = 0; h < nKv; h++) rmsNorm(k, get(p + 'self_attn.k_norm.weight'), eps, h * hd, hd);
      }
      rope(q, nH, pos);
      rope(k, nKv, pos);
      kCache[l]!.push(k);
      vCache[l]!.push(v);
      const attn = new Float64Array(nH * hd);
      for (let h = 0; h < nH; h++) {
        const kvh = Math.floor(h / group);
        const scores = kCache[l]!.map((kk) => {
          let s = 0;
          for (let d = 0; d < hd; d++) s += q[h * hd + d]! * kk[kvh * hd + d]!;
          return s / Math.sqrt(hd);
        });
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let t = 0; t < e.length; t++) {
          const w = e[t]! / z;
          const vv = vCache[l]![t]!;
          for (let d = 0; d < hd; d++) attn[h * hd + d]! += w * vv[kvh * hd + d]!;
        }
      }
      const o = matVec(get(p + 'self_attn.o_proj.weight'), H, nH * hd, attn);
      for (let i = 0; i < H; i++) x[i]! += o[i]!;
      const xn2 = Float64Array.from(x);
      rmsNorm(xn2, get(p + 'post_attention_layernorm.weight'), eps);
      const g = matVec(get(p + 'mlp.gate_proj.weight'), I, H, xn2);
      const u = matVec(get(p + 'mlp.up_proj.weight'), I, H, xn2);
      for (let i = 0; i < I; i++) g[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
      const d = matVec(get(p + 'mlp.down_proj.weight'), H, I, g);
      for (let i = 0; i < H; i++) x[i]! += d[i]!;
    }
    rmsNorm(x, get('model.norm.weight'), eps);
    pos++;
    return Float32Array.from(matVec(head, spec.vocabSize, H, x));
  };
  return { step };
}

/** Logits after every position of `ids` (reference forward pass). */
export function referenceLogits(model: TinyModel, ids: number[]): Float32Array[] {
  const r = referenceRunner(model);
  return ids.map((id) => r.step(id));
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Greedy continuation with the reference forward pass; logits[0] are the logits after the prompt. */
export function referenceGreedy(model: TinyModel, promptIds: number[], maxNew: number): { ids: number[]; logits: Float32Array[] } {
  if (promptIds.length === 0) throw new Error('the prompt must hold at least one token');
  const r = referenceRunner(model);
  let last: Float32Array = new Float32Array(0);
  for (const id of promptIds) last = r.step(id);
  const ids: number[] = [];
  const logits: Float32Array[] = [];
  for (let n = 0; n < maxNew; n++) {
    const best = argmax(last);
    ids.push(best);
    logits.push(last);
    if (n + 1 < maxNew) last = r.step(best);
  }
  return { ids, logits };
}
