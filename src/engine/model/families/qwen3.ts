// Qwen3: RMSNorm over each query and key head before RoPE; head_dim is independent of hidden_size.
import { ConfigReader, parseLlamaLikeConfig } from '../config';
import { layerWeight } from '../checkpoint';
import { DecoderGraphBuilder, type FamilyDefinition } from './base';

class Qwen3GraphBuilder extends DecoderGraphBuilder {
  protected override async normalizeQK(l: number, q: string, k: string): Promise<[string, string]> {
    return [await this.rmsNorm(q, layerWeight(l, 'self_attn.q_norm.weight')), await this.rmsNorm(k, layerWeight(l, 'self_attn.k_norm.weight'))];
  }
}

export const qwen3: FamilyDefinition = {
  modelType: 'qwen3',
  parseConfig: (r: ConfigReader, source: string) => parseLlamaLikeConfig('qwen3', r, source),
  Builder: Qwen3GraphBuilder,
};
