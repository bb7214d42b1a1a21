// The CPU decoder state's key/value buffers (spare capacity, written in place, grown by copying,
// shared by snapshots): a long decode through several growths equals recomputing the whole
// sequence (stories260K, and Gemma 3 with its sliding window), and a snapshot or a cut-back state
// keeps what it holds while its origin, or another continuation of it, goes on writing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DecoderModel, type DecoderState } from '../../src/engine/model/decoder';
import { argmax } from '../../src/engine/model/sampling';
import { STORIES, tempDir } from '../support/paths';
import { writeTinyHfModel } from '../support/tiny-hf';

const cacheDirectory = tempDir();
const STORIES_MODEL = join(STORIES, 'stories260K.bin');
const TOLERANCE = 1e-4;

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Greedy decoding one position at a time; returns every position's logits after the prompt and the capacities seen. */
async function decode(model: DecoderModel, state: DecoderState, prompt: number[], steps: number): Promise<{ ids: number[]; logits: Float32Array[]; capacities: Set<number> }> {
  const ids = [...prompt];
  const logits: Float32Array[] = [];
  const capacities = new Set<number>();
  let r = await model.forward(state, model.embedding.lookup(prompt), prompt.length, 1);
  for (let i = 0; i < steps; i++) {
    capacities.add(state.capacity!);
    logits.push(r.logits.slice());
    // Greedy, but stepping off a repeated token so the sequence keeps changing.
    const next = (argmax(r.logits) + (i % 7 === 6 ? 1 + i : 0)) % model.config.vocabSize;
    ids.push(next);
    r = await model.forward(state, model.embedding.lookup([next]), 1, 1);
  }
  logits.push(r.logits.slice());
  return { ids, logits, capacities };
}

/** The last `rows` positions' logits of `ids` run as one prefill on a fresh state. */
async function recomputed(model: DecoderModel, ids: number[], rows: number): Promise<Float32Array[]> {
  const V = model.config.vocabSize;
  const { logits } = await model.forward(model.newState(), model.embedding.lookup(ids), ids.length, rows);
  return Array.from({ length: rows }, (_, i) => logits.slice(i * V, (i + 1) * V));
}

async function checkLongDecode(model: DecoderModel, prompt: number[], steps: number): Promise<void> {
  const state = model.newState();
  const { ids, logits, capacities } = await decode(model, state, prompt, steps);
  assert.equal(state.length, prompt.length + steps);
  assert.ok(capacities.size >= 4, `capacities seen: ${[...capacities].join(', ')}`);
  // Row j of `logits` predicts position prompt.length + j, from the first prompt.length + j ids.
  const full = await recomputed(model, ids, steps + 1);
  let worst = 0;
  full.forEach((row, j) => (worst = Math.max(worst, maxDiff(logits[j]!, row))));
  console.log(`  ${model.config.family}: ${steps} steps through capacities ${[...capacities].join(' -> ')}: max |logit diff| vs recomputation ${worst.toExponential(2)}`);
  assert.ok(worst < TOLERANCE, `max logit difference ${worst}`);
}

test('stories260K: a long decode through several buffer growths equals recomputing the whole sequence', async () => {
  const model = await DecoderModel.load(STORIES_MODEL, { cacheDirectory });
  try {
    await checkLongDecode(model, [1, 403, 407, 261, 378, 9], 330);
  } finally {
    await model.dispose();
  }
});

test('gemma3 (sliding window 8): a long decode through several buffer growths equals recomputing the whole sequence', async () => {
  const tiny = await writeTinyHfModel(join(tempDir(), 'hf'), {
    family: 'gemma3', hiddenSize: 64, intermediateSize: 160, numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 32, vocabSize: 400, seed: 12,
    maxPositionEmbeddings: 4096, gemma3: { slidingWindow: 8, slidingWindowPattern: 2 },
  });
  const model = await DecoderModel.load(tiny.dir, { cacheDirectory });
  try {
    await checkLongDecode(model, [2, 17, 33, 51, 80, 99, 120, 7, 11, 300], 300);
  } finally {
    await model.dispose();
  }
});

test('a snapshot and a cut-back state are unaffected by their origin, and by each other, continuing', async () => {
  const model = await DecoderModel.load(STORIES_MODEL, { cacheDirectory });
  try {
    const prompt = [1, 403, 407, 261, 378, 9, 44, 120, 310, 5, 77, 64, 200, 18, 90, 41, 33, 8, 250, 101];
    const origin = model.newState();
    await model.forward(origin, model.embedding.lookup(prompt), prompt.length, 1);
    const kept = origin.snapshot();
    const cut = origin.truncated(12);
    // The origin writes past its length, grows its buffers several times, and is released.
    await decode(model, origin, [7], 150);
    origin.release();
    // Two continuations of the snapshot and one of the cut state, step by step, interleaved.
    const runs = [
      { state: kept.snapshot(), ids: [...prompt], logits: [] as Float32Array[] },
      { state: kept.snapshot(), ids: [...prompt], logits: [] as Float32Array[] },
      { state: cut, ids: prompt.slice(0, 12), logits: [] as Float32Array[] },
    ];
    for (let i = 0; i < 80; i++) {
      for (const [k, run] of runs.entries()) {
        const id = (31 * i + 97 * k + 5) % model.config.vocabSize;
        run.ids.push(id);
        run.logits.push((await model.forward(run.state, model.embedding.lookup([id]), 1, 1)).logits.slice());
      }
    }
    assert.equal(kept.length, prompt.length);
    for (const [k, run] of runs.entries()) {
      assert.equal(run.state.length, run.ids.length);
      const full = await recomputed(model, run.ids, 80);
      let worst = 0;
      full.forEach((row, j) => (worst = Math.max(worst, maxDiff(run.logits[j]!, row))));
      console.log(`  continuation ${k}: max |logit diff| vs recomputation ${worst.toExponential(2)}`);
      assert.ok(worst < TOLERANCE, `continuation ${k}: ${worst}`);
    }
    // The snapshot itself still continues as the prompt did.
    const again = await model.forward(kept, model.embedding.lookup([3]), 1, 1);
    const [reference] = await recomputed(model, [...prompt, 3], 1);
    assert.ok(maxDiff(again.logits, reference!) < TOLERANCE);
  } finally {
    await model.dispose();
  }
});
