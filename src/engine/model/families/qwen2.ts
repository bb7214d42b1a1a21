// Qwen2 / Qwen2.5 (Coder, Math): Llama's graph with biases on q/k/v, which the base builder adds
// whenever the checkpoint has them.
import { ConfigReader, parseLlamaLikeConfig } from '../config';
import { DecoderGraphBuilder, type FamilyDefinition } from './base';

export const qwen2: FamilyDefinition = {
  modelType: 'qwen2',
  parseConfig: (r: ConfigReader, source: string) => parseLlamaLikeConfig('qwen2', r, source),
  Builder: DecoderGraphBuilder,
};
