// One run per latent step: an agent's graph with its inner link built in returns the next step's
// input embedding itself. Its latent rollout equals the two-run one (decoder, then the link's own
// session, with the vector passing through JavaScript) and never calls the link's session.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { SyntheticSpec } from '../../src/engine/chain/presets';
import { generatedLinkTensors } from '../../src/engine/chain/generated-links';
import { latentRollout } from '../../src/engine/chain/rollout';
import { RecursiveLink, linkComputation } from '../../src/engine/links/link';
import { DecoderModel } from '../../src/engine/model/decoder';
import { ensureSyntheticModel } from '../../src/engine/model/synthetic';
import { tempDir } from '../support/paths';

const modelsDirectory = tempDir();
const cacheDirectory = tempDir();

const families: Record<string, SyntheticSpec> = {
  llama: { family: 'llama', hiddenSize: 96, intermediateSize: 256, numLayers: 2, numHeads: 6, numKvHeads: 2, vocabSize: 512, seed: 51, maxPositionEmbeddings: 4096 },
  qwen3_5: {
    family: 'qwen3_5', hiddenSize: 64, intermediateSize: 176, numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 32, vocabSize: 512, seed: 52, maxPositionEmbeddings: 4096,
    qwen3_5: { fullAttentionInterval: 2 },
  },
};

for (const [family, spec] of Object.entries(families)) {
  test(`${family}: a latent rollout with the inner link in the graph equals decoder-then-link, one run per step`, async () => {
    const folder = await ensureSyntheticModel(spec, join(modelsDirectory, family));
    const d = spec.hiddenSize;
    const tensors = generatedLinkTensors('inner', d, d, 7, 1);
    const expectation = { source: 'test', dIn: d, dOut: d, from: family, to: family };
    const inner = await RecursiveLink.fromTensors('inner', tensors, expectation, 'cpu');
    const plain = await DecoderModel.load(folder, { cacheDirectory });
    const fused = await DecoderModel.load(folder, { cacheDirectory, latentHead: linkComputation('inner', tensors, expectation) });
    assert.equal(fused.latentHeadKey, inner.key);
    try {
      assert.notEqual(fused.graphPath, plain.graphPath, 'the link is part of the cached graph');
      const prompt = plain.embedding.lookup(Array.from({ length: 20 }, (_, i) => (i * 29 + 3) % 500));
      const m = 12;
      const twoRuns = await latentRollout(plain, inner, prompt, 20, m);
      const linkCalls = { count: 0 };
      const counted = Object.create(inner) as RecursiveLink;
      counted.apply = async (x, n) => (linkCalls.count++, inner.apply(x, n));
      const runsBefore = fused.timing.runMs;
      const oneRun = await latentRollout(fused, counted, prompt, 20, m);
      assert.equal(linkCalls.count, 0, "the link's own session is never called");
      assert.ok(fused.timing.runMs > runsBefore);
      let worst = 0;
      for (let i = 0; i < twoRuns.length; i++) worst = Math.max(worst, Math.abs(twoRuns[i]! - oneRun[i]!));
      console.log(`  ${family}: ${m} thoughts, max |diff| fused vs two runs ${worst.toExponential(2)}`);
      assert.ok(worst < 1e-4, `thoughts differ by ${worst}`);
      // A different link is not this graph's head: the rollout takes the two-run path with it.
      const other = await RecursiveLink.fromTensors('inner', generatedLinkTensors('inner', d, d, 8, 1), { source: 'test', dIn: d, dOut: d, from: family, to: family }, 'cpu');
      const viaOther = await latentRollout(fused, other, prompt, 20, 3);
      const reference = await latentRollout(plain, other, prompt, 20, 3);
      assert.ok(viaOther.every((v, i) => Math.abs(v - reference[i]!) < 1e-4));
      await other.dispose();
    } finally {
      await plain.dispose();
      await fused.dispose();
      await inner.dispose();
    }
  });
}
