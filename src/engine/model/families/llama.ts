// Llama 2/3 (including Llama 3's rope_scaling): the base builder as it is.
import { ConfigReader, parseLlamaLikeConfig } from '../config';
import { DecoderGraphBuilder, type FamilyDefinition } from './base';

export const llama: FamilyDefinition = {
  modelType: 'llama',
  parseConfig: (r: ConfigReader, source: string) => parseLlamaLikeConfig('llama', r, source),
  Builder: DecoderGraphBuilder,
};
