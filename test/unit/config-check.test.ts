// validateDecoderConfig: the check every decoder config passes before a graph is built from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/engine/api';
import type { DecoderConfig } from '../../src/engine/model/config';
import { validateDecoderConfig } from '../../src/engine/model/config-check';

const base: DecoderConfig = {
  family: 'llama',
  hiddenSize: 64,
  intermediateSize: 128,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  vocabSize: 256,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  ropeInterleaved: false,
  tieWordEmbeddings: false,
  maxPositionEmbeddings: 512,
  embeddingScale: 1,
  eosTokenIds: [2],
};

function refused(overrides: Partial<DecoderConfig>, pattern: RegExp): void {
  assert.throws(
    () => validateDecoderConfig({ ...base, ...overrides }, 'config.json'),
    (e: Error) => e instanceof UserError && e.code === 'model-invalid' && e.message.startsWith('config.json: ') && pattern.test(e.message),
    JSON.stringify(overrides),
  );
}

test('a sound config passes unchanged, with the extra fields other families add', () => {
  assert.equal(validateDecoderConfig(base, 'config.json'), base);
  const gemma = {
    ...base,
    family: 'gemma3',
    attentionScale: 0.25,
    finalLogitSoftcapping: 30,
    embeddingScale: 8,
    slidingAttention: { window: 16, sliding: [true, false], rope: { theta: 10000 } },
  } as DecoderConfig;
  assert.equal(validateDecoderConfig(gemma, 'g'), gemma);
  const hybrid = { ...base, rotaryDim: 4, linearAttention: { isLinear: [true, false], numKeyHeads: 2, numValueHeads: 4, keyHeadDim: 16, valueHeadDim: 16, convKernel: 4 } } as DecoderConfig;
  assert.equal(validateDecoderConfig(hybrid, 'q'), hybrid);
  // A family's own numeric field is only required to be finite.
  const extra = { ...base, someFutureField: { ratio: 0.5 } } as DecoderConfig;
  assert.equal(validateDecoderConfig(extra, 'x'), extra);
});

test('head dimensions: odd for RoPE, fractional, heads that do not divide', () => {
  refused({ headDim: 7 }, /rotary width \(head_dim 7\) is odd/);
  refused({ headDim: 7.5 }, /headDim must be a positive whole number, found 7.5/);
  refused({ rotaryDim: 5 }, /odd/);
  refused({ rotaryDim: 32 }, /rotary width 32 must be a whole number from 1 to head_dim/);
  refused({ numKvHeads: 3 }, /4 attention heads cannot be shared by 3 key\/value heads/);
});

test('every numeric field finite, positive, bounded: no config makes us allocate terabytes', () => {
  refused({ vocabSize: 0 }, /vocabSize must be a positive whole number/);
  refused({ numLayers: -1 }, /numLayers/);
  refused({ hiddenSize: Infinity }, /hiddenSize is Infinity/);
  refused({ rmsNormEps: NaN }, /rmsNormEps is NaN/);
  refused({ vocabSize: 2 ** 40 }, /vocabSize is 1099511627776, more than/);
  refused({ numLayers: 100_000 }, /numLayers is 100000/);
  refused({ intermediateSize: 400_000, hiddenSize: 60_000, numHeads: 4, headDim: 16 }, /the MLP \(400000 x 60000\) is larger/);
  refused({ maxPositionEmbeddings: 2 ** 40 }, /maxPositionEmbeddings/);
  refused({ rmsNormEps: 0 }, /rms_norm_eps must be a positive number/);
  refused({ ropeTheta: -5 }, /rope theta must be a positive number/);
  refused({ ropeScaling: { type: 'linear', factor: 0 } }, /rope scaling factor/);
  refused({ eosTokenIds: [2.5] }, /token id 2.5/);
  refused({ slidingAttention: { window: 16, sliding: [true], rope: { theta: 1 } } }, /sliding-window layer pattern has 1 entries for 2 layers/);
});
