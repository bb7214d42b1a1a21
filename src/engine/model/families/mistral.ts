// Mistral: Llama's graph. Its sliding window only matters past the window length (4096 and up),
// beyond the contexts a solve uses; a longer prompt is refused by the context check.
import { ConfigReader, parseLlamaLikeConfig } from '../config';
import { DecoderGraphBuilder, type FamilyDefinition } from './base';

export const mistral: FamilyDefinition = {
  modelType: 'mistral',
  parseConfig: (r: ConfigReader, source: string) => {
    const config = parseLlamaLikeConfig('mistral', r, source);
    const window = r.raw('sliding_window');
    if (typeof window === 'number' && window > 0) config.maxPositionEmbeddings = Math.min(config.maxPositionEmbeddings, window);
    return config;
  },
  Builder: DecoderGraphBuilder,
};
