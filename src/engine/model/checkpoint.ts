// A checkpoint reduced to what the graph builder needs: the decoder description and weights under
// Hugging Face tensor names (model.layers.{i}.self_attn.q_proj.weight, ...), read one at a time.
import type { DecoderConfig } from './config';
import type { FloatDType } from '../dtype';

export interface WeightSource {
  has(name: string): boolean;
  shape(name: string): number[];
  /** Values as float32, in the stored [out, in] layout for linear weights. */
  read(name: string): Promise<Float32Array>;
  /** The stored bytes and their dtype (used for the embedding table, kept in its stored precision). */
  readStored(name: string): Promise<{ dtype: FloatDType; bytes: Uint8Array }>;
}

export interface Checkpoint {
  /** The path the user gave (a llama2.c .bin or a Hugging Face folder). */
  source: string;
  config: DecoderConfig;
  weights: WeightSource;
  /** The files whose bytes define the model, hashed for the build cache. */
  contentFiles: string[];
  close(): Promise<void>;
}

export const EMBED = 'model.embed_tokens.weight';
export const FINAL_NORM = 'model.norm.weight';
export const LM_HEAD = 'lm_head.weight';
export const layerWeight = (i: number, name: string): string => `model.layers.${i}.${name}`;
