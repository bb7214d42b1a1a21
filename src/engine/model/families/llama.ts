// Llama 2/3 (including Llama 3's rope_scaling): the base builder as it is.
import { ConfigReader, parseLlamaLikeConfig } from '../config';
import type { FamilyDefinition } from './index';
import { DecoderGraphBuilder } from './base';

export const llama: FamilyDefinition = {
  modelType: 'llama',
  parseConfig: (r: ConfigReader, source: string) => parseLlamaLikeConfig('llama', r, source),
  Builder: DecoderGraphBuilder,
};
