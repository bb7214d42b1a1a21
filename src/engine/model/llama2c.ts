// llama2.c checkpoints: a 7 x int32 header, then float32 weights in run.c's order. A negative
// vocab_size means the classifier is stored separately (untied).
import { open } from 'node:fs/promises';
import { UserError } from '../api';
import type { Checkpoint, WeightSource } from './checkpoint';
import { EMBED, FINAL_NORM, LM_HEAD, layerWeight } from './checkpoint';
import type { DecoderConfig } from './config';
import { validateDecoderConfig } from './config-check';

interface Span {
  shape: number[];
  offset: number;
}

export async function openLlama2cCheckpoint(path: string): Promise<Checkpoint> {
  const handle = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`Cannot open the llama2.c checkpoint ${path}: ${e.code ?? e.message}.`, 'model-missing');
  });
  const size = (await handle.stat()).size;
  const header = Buffer.alloc(28);
  if (size < 28 || (await handle.read(header, 0, 28, 0)).bytesRead < 28) {
    await handle.close();
    throw new UserError(`${path} is too short to be a llama2.c checkpoint (${size} bytes).`, 'model-invalid');
  }
  const [dim, hidden, layers, heads, kvHeads, rawVocab, seqLen] = Array.from({ length: 7 }, (_, i) => header.readInt32LE(i * 4)) as [
    number, number, number, number, number, number, number,
  ];
  const vocab = Math.abs(rawVocab);
  const sane = (v: number, max: number) => Number.isInteger(v) && v > 0 && v <= max;
  if (!sane(dim, 65536) || !sane(hidden, 1 << 20) || !sane(layers, 1024) || !sane(heads, 1024) || !sane(kvHeads, heads) ||
      !sane(vocab, 1 << 22) || !sane(seqLen, 1 << 22) || dim % heads !== 0 || heads % kvHeads !== 0) {
    await handle.close();
    throw new UserError(`${path} does not look like a llama2.c checkpoint (header: dim ${dim}, hidden ${hidden}, layers ${layers}, heads ${heads}, kv heads ${kvHeads}, vocab ${rawVocab}, seq_len ${seqLen}).`, 'model-invalid');
  }
  const headDim = dim / heads;
  const config: DecoderConfig = {
    family: 'llama2c',
    hiddenSize: dim,
    intermediateSize: hidden,
    numLayers: layers,
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    vocabSize: vocab,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeInterleaved: true,
    tieWordEmbeddings: rawVocab > 0,
    maxPositionEmbeddings: seqLen,
    embeddingScale: 1,
    bosTokenId: 1,
    eosTokenIds: [],
  };
  try {
    validateDecoderConfig(config, path);
  } catch (e) {
    await handle.close();
    throw e;
  }
  const kvDim = kvHeads * headDim;
  const spans = new Map<string, Span>();
  let offset = 28;
  const take = (shape: number[]): number => {
    const at = offset;
    offset += shape.reduce((a, b) => a * b, 1) * 4;
    return at;
  };
  // run.c stores each weight kind for all layers contiguously: [layers, ...shape].
  const perLayer = (name: string, shape: number[]) => {
    const base = take([layers, ...shape]);
    const stride = shape.reduce((a, b) => a * b, 1) * 4;
    for (let l = 0; l < layers; l++) spans.set(layerWeight(l, name), { shape, offset: base + l * stride });
  };
  spans.set(EMBED, { shape: [vocab, dim], offset: take([vocab, dim]) });
  perLayer('input_layernorm.weight', [dim]);
  perLayer('self_attn.q_proj.weight', [dim, dim]);
  perLayer('self_attn.k_proj.weight', [kvDim, dim]);
  perLayer('self_attn.v_proj.weight', [kvDim, dim]);
  perLayer('self_attn.o_proj.weight', [dim, dim]);
  perLayer('post_attention_layernorm.weight', [dim]);
  perLayer('mlp.gate_proj.weight', [hidden, dim]);
  perLayer('mlp.down_proj.weight', [dim, hidden]);
  perLayer('mlp.up_proj.weight', [hidden, dim]);
  spans.set(FINAL_NORM, { shape: [dim], offset: take([dim]) });
  take([seqLen, headDim / 2]); // freq_cis_real (unused: RoPE is computed in the graph)
  take([seqLen, headDim / 2]); // freq_cis_imag
  const tied = config.tieWordEmbeddings;
  if (!tied) spans.set(LM_HEAD, { shape: [vocab, dim], offset: take([vocab, dim]) });
  if (offset > size) {
    await handle.close();
    throw new UserError(`${path} is truncated: its header needs ${offset} bytes of weights but the file has ${size}. Download it again.`, 'model-invalid');
  }

  const readBytes = async (name: string): Promise<Uint8Array> => {
    const span = spans.get(name);
    if (!span) throw new UserError(`llama2.c checkpoint ${path} has no weight ${name}.`, 'model-invalid');
    const bytes = new Uint8Array(span.shape.reduce((a, b) => a * b, 1) * 4);
    await handle.read(bytes, 0, bytes.length, span.offset);
    return bytes;
  };
  const weights: WeightSource = {
    has: (name) => spans.has(name),
    shape: (name) => spans.get(name)?.shape ?? [],
    read: async (name) => new Float32Array((await readBytes(name)).buffer),
    readStored: async (name) => ({ dtype: 'f32', bytes: await readBytes(name) }),
  };
  return { source: path, config, weights, contentFiles: [path], close: () => handle.close() };
}
