// Hugging Face model folders: config.json + model.safetensors (or shards), any of f32/f16/bf16.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../api';
import type { Checkpoint, WeightSource } from './checkpoint';
import { EMBED, LM_HEAD } from './checkpoint';
import { ConfigReader, unwrapTextConfig, type DecoderConfig } from './config';
import { familyFor } from './families/index';
import { openCheckpointShards, type SafetensorsFile } from './safetensors';
import { openLlama2cCheckpoint } from './llama2c';
import { f16ToF32, f32ToF16Bits, type FloatDType } from '../dtype';
import { validateDecoderConfig } from './config-check';

export async function readJsonFile(path: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UserError(`Cannot read ${what} at ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}.`, 'model-missing');
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new UserError(`${path} is not a valid JSON object. Download it again.`, 'model-invalid');
  }
}

/** The decoder description of a Hugging Face folder, from config.json alone (no weights read). */
export async function readHfConfig(folder: string): Promise<DecoderConfig> {
  const configPath = join(folder, 'config.json');
  const json = await readJsonFile(configPath, 'the model configuration');
  const family = familyFor(json.model_type, configPath);
  // Multimodal wrappers (gemma3, qwen3_5) keep the decoder under text_config; errors name that part.
  const text = unwrapTextConfig(json);
  const source = text.nested ? `${configPath} (text_config)` : configPath;
  return validateDecoderConfig(family.parseConfig(new ConfigReader(text.json, source), source), source);
}

/**
 * The Hugging Face name a decoder tensor is known by here, or undefined for tensors a text decoder
 * never reads (a multimodal checkpoint's vision tower and projector). Multimodal checkpoints keep
 * the decoder under `language_model.` (transformers 4: language_model.model.layers...) or
 * `model.language_model.` (transformers 5: model.language_model.layers..., lm_head at the top).
 */
export function decoderTensorName(stored: string): string | undefined {
  if (stored.startsWith('language_model.model.')) return `model.${stored.slice('language_model.model.'.length)}`;
  if (stored.startsWith('language_model.lm_head.')) return stored.slice('language_model.'.length);
  if (stored.startsWith('model.language_model.')) return `model.${stored.slice('model.language_model.'.length)}`;
  if (/^(model\.)?(vision_tower|visual|multi_modal_projector|audio_tower|embed_vision|embed_audio)\./.test(stored)) return undefined;
  return stored;
}

export async function openHfCheckpoint(folder: string): Promise<Checkpoint> {
  const configPath = join(folder, 'config.json');
  const config = await readHfConfig(folder);
  const generation = await readJsonFile(join(folder, 'generation_config.json'), 'generation config').catch(() => undefined);
  if (generation) {
    const eos = new ConfigReader(generation, 'generation_config.json').ids('eos_token_id');
    if (eos.length) config.eosTokenIds = [...new Set([...config.eosTokenIds, ...eos])];
  }
  const shards = await openCheckpointShards(folder);
  const where = new Map<string, SafetensorsFile>();
  const storedName = new Map<string, string>();
  for (const shard of shards) {
    for (const name of shard.tensors.keys()) {
      const decoderName = decoderTensorName(name);
      if (decoderName === undefined) continue;
      where.set(decoderName, shard);
      storedName.set(decoderName, name);
    }
  }
  if (!where.has(EMBED)) {
    await Promise.all(shards.map((s) => s.close()));
    throw new UserError(`${folder}: the weights have no ${EMBED}; this is not a decoder checkpoint we can read.`, 'model-invalid');
  }
  // Some checkpoints say tie_word_embeddings=false but ship no lm_head (and vice versa).
  config.tieWordEmbeddings = !where.has(LM_HEAD);
  // transformers multiplies embeddings by the scale rounded to the table's dtype (Gemma's
  // sqrt(hidden) in bf16); the links were trained on exactly those values.
  const embedDType = where.get(EMBED)!.floatDType(storedName.get(EMBED)!);
  if (config.embeddingScale !== 1) config.embeddingScale = roundToDType(config.embeddingScale, embedDType);
  const shardOf = (name: string): SafetensorsFile => {
    const s = where.get(name);
    if (!s) throw new UserError(`${folder}: no tensor named ${name}.`, 'model-invalid');
    return s;
  };
  const stored = (name: string): string => storedName.get(name) ?? name;
  const weights: WeightSource = {
    has: (name) => where.has(name),
    shape: (name) => where.get(name)?.tensors.get(stored(name))?.shape ?? [],
    read: (name) => shardOf(name).readFloat32(stored(name)),
    readStored: async (name) => {
      const s = shardOf(name);
      return { dtype: s.floatDType(stored(name)), bytes: await s.readRaw(stored(name)) };
    },
  };
  return {
    source: folder,
    config,
    weights,
    contentFiles: [configPath, ...shards.map((s) => s.path)],
    close: async () => {
      await Promise.all(shards.map((s) => s.close()));
    },
  };
}

/** `value` as a tensor of `dtype` holds it (round to nearest even). */
function roundToDType(value: number, dtype: FloatDType): number {
  if (dtype === 'f16') return f16ToF32(Uint16Array.of(f32ToF16Bits(value)))[0]!;
  if (dtype === 'bf16') {
    const bits = new Uint32Array(Float32Array.of(value).buffer)[0]!;
    const rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
    return new Float32Array(Uint32Array.of(rounded).buffer)[0]!;
  }
  return Math.fround(value);
}

/** A llama2.c .bin file or a Hugging Face folder. */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new UserError(`No model at ${path}. Give a llama2.c .bin file or a Hugging Face model folder (with config.json).`, 'model-missing');
  return info.isDirectory() ? openHfCheckpoint(path) : openLlama2cCheckpoint(path);
}
