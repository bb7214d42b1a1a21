// The architecture families we can build, keyed by config.json's model_type. A new family is a
// config parser plus, where its graph differs, a subclass of DecoderGraphBuilder overriding the
// blocks that differ (Gemma 3 overrides layer, the norm weights, mlp and the lm head; the
// Qwen3.5 hybrid overrides attention with Gated DeltaNet blocks, which keep a recurrent state).
import { UserError } from '../../api';
import type { DecoderConfig, HfFamilyName } from '../config';
import { DecoderGraphBuilder, type FamilyDefinition } from './base';
import { gemma3, gemma3Text } from './gemma3';
import { llama } from './llama';
import { mistral } from './mistral';
import { qwen2 } from './qwen2';
import { qwen3 } from './qwen3';
import { qwen3_5, qwen3_5_text } from './qwen3_5';

export type { FamilyDefinition };

/** By config.json's model_type: every family of HF_FAMILY_NAMES, plus the text-only variants' names. */
export const HF_FAMILIES: Readonly<Record<string, FamilyDefinition>> = {
  llama,
  mistral,
  qwen2,
  qwen3,
  qwen3_5,
  qwen3_5_text,
  gemma3,
  gemma3_text: gemma3Text,
} satisfies Record<HfFamilyName, FamilyDefinition> & Record<string, FamilyDefinition>;

/** Known variants we do not build, with what they need that the engine lacks. */
const REFUSED_VARIANTS: Record<string, string> = {
  qwen3_5_moe: 'Qwen3.5 MoE needs mixture-of-experts MLP layers (expert routing), which the engine does not build; use a dense Qwen3.5 model',
  gemma3n: 'Gemma 3n needs per-layer embeddings, AltUp and Laurel blocks, which the engine does not build; use a Gemma 3 (gemma3 / gemma3_text) model',
  qwen3_5_moe_text: 'Qwen3.5 MoE needs mixture-of-experts MLP layers (expert routing), which the engine does not build; use a dense Qwen3.5 model',
};

export function familyFor(modelType: unknown, source: string): FamilyDefinition {
  const family = typeof modelType === 'string' ? HF_FAMILIES[modelType] : undefined;
  const refused = typeof modelType === 'string' ? REFUSED_VARIANTS[modelType] : undefined;
  if (refused) throw new UserError(`${source}: model_type ${JSON.stringify(modelType)} is not supported: ${refused}.`, 'unsupported');
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
