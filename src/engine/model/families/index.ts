// The architecture families we can build, keyed by config.json's model_type. A new family is a
// config parser plus, where its graph differs, a subclass of DecoderGraphBuilder overriding the
// blocks that differ (Gemma 3 would override rmsNorm, mlp, layer and the embedding scale; the
// Qwen3.5 hybrid would override layer to add linear-attention blocks with a recurrent state).
import { UserError } from '../../api';
import type { GraphBuilder } from '../../onnx/graph';
import type { WeightSource } from '../checkpoint';
import type { ConfigReader, DecoderConfig } from '../config';
import { DecoderGraphBuilder, type Precision } from './base';
import { llama } from './llama';
import { mistral } from './mistral';
import { qwen2 } from './qwen2';
import { qwen3 } from './qwen3';

export interface FamilyDefinition {
  modelType: string;
  parseConfig(r: ConfigReader, source: string): DecoderConfig;
  Builder: new (g: GraphBuilder, c: DecoderConfig, w: WeightSource, p: Precision) => DecoderGraphBuilder;
}

export const HF_FAMILIES: Record<string, FamilyDefinition> = { llama, mistral, qwen2, qwen3 };

export function familyFor(modelType: unknown, source: string): FamilyDefinition {
  const family = typeof modelType === 'string' ? HF_FAMILIES[modelType] : undefined;
  if (!family) {
    throw new UserError(
      `${source}: model_type ${JSON.stringify(modelType)} is not supported. Supported model types: ${Object.keys(HF_FAMILIES).join(', ')} (and llama2.c .bin checkpoints).`,
      'unsupported',
    );
  }
  return family;
}

export function builderFor(config: DecoderConfig): FamilyDefinition['Builder'] {
  return config.family === 'llama2c' ? DecoderGraphBuilder : HF_FAMILIES[config.family]!.Builder;
}
