// Test tooling: how often a quantized engine model and llama.cpp at the same bit width pick fp32's
// next token, each at every position of fp32's own greedy continuation (teacher-forced top-1).
import { join } from 'node:path';
import type { Precision } from '../../src/engine/api';
import { DecoderModel } from '../../src/engine/model/decoder';
import { argmax } from '../../src/engine/model/sampling';
import { writeGguf, type GgufWeightType } from './gguf';
import { engineGreedy } from './greedy';
import { llamaGreedy } from './llamacpp';
import type { TinyModel } from './tiny-hf';

export interface Agreement {
  positions: number;
  /** Positions where ours / llama.cpp's top-1 equals fp32's, and where the two equal each other. */
  ours: number;
  theirs: number;
  both: number;
}

export async function quantizedAgreement(tiny: TinyModel, precision: Precision, type: GgufWeightType, prompt: number[], cacheDirectory: string, dir: string): Promise<Agreement> {
  const gguf = join(dir, `${type}.gguf`);
  writeGguf(gguf, tiny, { type });
  const quantized = await DecoderModel.load(tiny.dir, { cacheDirectory, precision });
  const fp32 = await DecoderModel.load(tiny.dir, { cacheDirectory });
  try {
    const reference = (await engineGreedy(fp32, prompt, 32)).ids;
    // Every position sees the fp32 greedy context; compare each engine's next-token choice there.
    const context = [...prompt, ...reference.slice(0, -1)];
    const all = await quantized.forward(quantized.newState(), quantized.embedding.lookup(context), context.length, reference.length);
    const V = quantized.config.vocabSize;
    const result = { positions: reference.length, ours: 0, theirs: 0, both: 0 };
    for (let i = 0; i < reference.length; i++) {
      const ours = argmax(all.logits, i * V, V);
      const theirs = (await llamaGreedy(gguf, context.slice(0, prompt.length + i), 1)).ids[0]!;
      result.ours += Number(ours === reference[i]);
      result.theirs += Number(theirs === reference[i]);
      result.both += Number(ours === theirs);
    }
    return result;
  } finally {
    await Promise.all([quantized.dispose(), fp32.dispose()]);
  }
}

/** "ours vs fp32 75%, llama.cpp Q8_0 vs fp32 72%, ours vs llama.cpp 75%" */
export function describeAgreement(a: Agreement, type: GgufWeightType): string {
  const pct = (n: number) => `${((100 * n) / a.positions).toFixed(0)}%`;
  return `ours vs fp32 ${pct(a.ours)}, llama.cpp ${type} vs fp32 ${pct(a.theirs)}, ours vs llama.cpp ${pct(a.both)}`;
}
