// The loader's memory check counts links by formula (model/memory.ts linkBytes); the formula must
// match the tensors a link really holds, for inner links and for outer links between widths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatedLinkTensors } from '../../src/engine/chain/generated-links';
import { linkBytes } from '../../src/engine/model/memory';

test('linkBytes is the float32 size of every tensor of an inner or outer link', () => {
  for (const [kind, dIn, dOut] of [['inner', 64, 64], ['outer', 64, 96], ['outer', 96, 64]] as const) {
    const tensors = generatedLinkTensors(kind, dIn, dOut, 3, 1);
    let bytes = 0;
    for (const t of tensors.values()) {
      assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1));
      bytes += t.data.byteLength;
    }
    assert.equal(linkBytes(kind, dIn, dOut), bytes, `${kind} ${dIn} -> ${dOut}`);
  }
});
