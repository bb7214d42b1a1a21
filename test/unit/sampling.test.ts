// Sampling and streamed detokenization.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, argmax } from '../../src/engine/model/sampling';
import { TokenTextStream, type TextTokenizer } from '../../src/engine/tokenizer/types';

const logits = Float32Array.from([1, 5, 3, 4.9, -2, 0]);

test('temperature 0 is greedy (first maximum)', () => {
  assert.equal(new Sampler({ temperature: 0 }).sample(logits), 1);
  assert.equal(argmax(Float32Array.from([2, 7, 7, 1])), 1);
});

test('a seed reproduces a sampled sequence; another seed gives another', () => {
  const run = (seed: number) => {
    const s = new Sampler({ temperature: 1.5, seed });
    return Array.from({ length: 40 }, () => s.sample(logits));
  };
  assert.deepEqual(run(7), run(7));
  assert.notDeepEqual(run(7), run(8));
});

test('top-k keeps only the k most likely tokens', () => {
  const s = new Sampler({ temperature: 5, topK: 2, seed: 3 });
  const seen = new Set(Array.from({ length: 300 }, () => s.sample(logits)));
  assert.deepEqual([...seen].sort(), [1, 3]);
});

test('top-p keeps the smallest set whose probability exceeds p', () => {
  // Probabilities at temperature 1: token 1 and 3 hold ~0.47 and ~0.43 of the mass, token 2 ~0.06.
  const s = new Sampler({ temperature: 1, topP: 0.85, seed: 11 });
  const seen = new Set(Array.from({ length: 400 }, () => s.sample(logits)));
  assert.deepEqual([...seen].sort(), [1, 3]);
  const wide = new Sampler({ temperature: 1, topP: 0.99, seed: 11 });
  assert.ok(new Set(Array.from({ length: 2000 }, () => wide.sample(logits))).has(2));
});

test('a top-p below 1/vocabulary over equal logits still picks the most likely token', () => {
  // Every probability (1/6) is under the top-p cutoff (1 - p) / (n - 1) = 0.198, so no token qualifies.
  const s = new Sampler({ temperature: 1, topP: 0.01, seed: 5 });
  assert.equal(s.sample(new Float32Array(6).fill(0.5)), 0);
});

test('sampling frequencies follow the softmax', () => {
  const two = Float32Array.from([0, Math.log(3)]); // p = 0.25, 0.75
  const s = new Sampler({ temperature: 1, seed: 5 });
  let ones = 0;
  for (let i = 0; i < 4000; i++) ones += s.sample(two);
  assert.ok(Math.abs(ones / 4000 - 0.75) < 0.03, `${ones / 4000}`);
});

test('invalid sampling settings are refused with the reason', () => {
  assert.throws(() => new Sampler({ temperature: -1 }), /temperature/);
  assert.throws(() => new Sampler({ temperature: 1, topP: 0 }), /top-p/);
  assert.throws(() => new Sampler({ temperature: 1, topK: 1.5 }), /top-k/);
});

test('the text stream never emits half of a UTF-8 character', () => {
  // A byte-level tokenizer: each token is one byte of UTF-8.
  const bytesTokenizer: TextTokenizer = {
    vocabSize: 256,
    eosIds: [],
    encode: (t) => [...Buffer.from(t, 'utf8')],
    decode: (ids) => Buffer.from(ids).toString('utf8'),
  };
  const text = 'déjà vu → 日本語 🙂 ok';
  const stream = new TokenTextStream(bytesTokenizer);
  const pieces = [...Buffer.from(text, 'utf8')].map((b) => stream.push(b));
  pieces.push(stream.flush());
  assert.equal(pieces.join(''), text);
  assert.ok(pieces.every((p) => !p.includes('\uFFFD')));
  assert.ok(pieces.filter((p) => p === '').length >= 10, 'bytes of multi-byte characters were held back');
});
