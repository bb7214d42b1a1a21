// Hugging Face model folders: config.json + model.safetensors (or shards), any of f32/f16/bf16.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../api';
import type { Checkpoint, WeightSource } from './checkpoint';
import { EMBED, LM_HEAD } from './checkpoint';
import { ConfigReader, type DecoderConfig } from './config';
import { familyFor } from './families/index';
import { openCheckpointShards, type SafetensorsFile } from './safetensors';
import { openLlama2cCheckpoint } from './llama2c';

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
  return family.parseConfig(new ConfigReader(json, configPath), configPath);
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
  for (const shard of shards) for (const name of shard.tensors.keys()) where.set(name, shard);
  if (!where.has(EMBED)) {
    await Promise.all(shards.map((s) => s.close()));
    throw new UserError(`${folder}: the weights have no ${EMBED}; this is not a decoder checkpoint we can read.`, 'model-invalid');
  }
  // Some checkpoints say tie_word_embeddings=false but ship no lm_head (and vice versa).
  config.tieWordEmbeddings = !where.has(LM_HEAD);
  const shardOf = (name: string): SafetensorsFile => {
    const s = where.get(name);
    if (!s) throw new UserError(`${folder}: no tensor named ${name}.`, 'model-invalid');
    return s;
  };
  const weights: WeightSource = {
    has: (name) => where.has(name),
    shape: (name) => where.get(name)?.tensors.get(name)?.shape ?? [],
    read: (name) => shardOf(name).readFloat32(name),
    readStored: async (name) => {
      const s = shardOf(name);
      return { dtype: s.floatDType(name), bytes: await s.readRaw(name) };
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

/** A llama2.c .bin file or a Hugging Face folder. */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new UserError(`No model at ${path}. Give a llama2.c .bin file or a Hugging Face model folder (with config.json).`, 'model-missing');
  return info.isDirectory() ? openHfCheckpoint(path) : openLlama2cCheckpoint(path);
}
