// Links for demo teams: random but well-scaled weights, so a team of generated models runs the
// whole chain offline (what they pass carries no meaning).
import type { NamedTensor } from '../links/link';
import type { DecoderModel } from '../model/decoder';
import { SeededRandom } from '../random';
import { vectorNorm } from '../tensor';

/** Demo-team links: random but well-scaled weights (the LayerNorm gains set the output norm). */
export function generatedLinkTensors(kind: 'inner' | 'outer', dIn: number, dOut: number, seed: number, outNorm: number): Map<string, NamedTensor> {
  const random = new SeededRandom(seed);
  const t = new Map<string, NamedTensor>();
  const fill = (name: string, shape: number[], f: () => number) =>
    t.set(name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, f) });
  const gain = outNorm / Math.sqrt(dOut);
  if (kind === 'inner') {
    fill('pre_ln.weight', [dIn], () => 1);
    fill('pre_ln.bias', [dIn], () => 0);
    fill('proj1.weight', [dIn, dIn], () => random.normal() / Math.sqrt(dIn));
    fill('proj1.bias', [dIn], () => 0);
    fill('proj2.weight', [dIn, dIn], () => random.normal() / Math.sqrt(dIn));
    fill('proj2.bias', [dIn], () => 0);
    fill('post_ln.weight', [dIn], () => gain);
    fill('post_ln.bias', [dIn], () => 0);
  } else {
    fill('ln_source.weight', [dIn], () => 1);
    fill('ln_source.bias', [dIn], () => 0);
    fill('proj1.weight', [2 * dOut, dIn], () => random.normal() / Math.sqrt(dIn));
    fill('proj1.bias', [2 * dOut], () => 0);
    fill('proj2.weight', [dOut, 2 * dOut], () => random.normal() / Math.sqrt(2 * dOut));
    fill('proj2.bias', [dOut], () => 0);
    fill('residual_proj.weight', [dOut, dIn], () => random.normal() / Math.sqrt(dIn));
    fill('residual_proj.bias', [dOut], () => 0);
    fill('ln_target.weight', [dOut], () => gain);
    fill('ln_target.bias', [dOut], () => 0);
  }
  return t;
}

/** A link's seed: the preset's number mixed with the link's name, so every link of a team differs. */
export function generatedLinkSeed(base: number, name: string): number {
  return base + [...name].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7);
}

/** The typical length of a token embedding of `m`, the norm generated links map their output to. */
export function meanEmbeddingNorm(m: DecoderModel): number {
  const rows = Math.min(m.config.vocabSize, 512);
  let total = 0;
  for (let id = 0; id < rows; id++) {
    const r = m.embedding.row(id);
    total += vectorNorm(r);
  }
  return total / rows;
}
