// `recursivemas inspect` through the CLI entry: .pt link files (bf16), our built .onnx graphs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main';
import type { CliIo } from '../../src/cli/io';
import { DecoderModel } from '../../src/engine/model/decoder';
import { STORIES, tempDir } from '../support/paths';
import { tensor, writeTorchSave } from '../support/pt-writer';

function capture(): CliIo & { out(): string } {
  let out = '';
  return { stdout: (t) => void (out += t), stdoutBytes: () => {}, stderr: () => {}, isTTY: false, out: () => out };
}

test('inspect --json lists name, dtype, shape and the float64 sum of each tensor of a .pt file', async () => {
  const file = join(tempDir(), 'adapter.pt');
  writeTorchSave(file, [
    ['pre_ln.weight', tensor('bf16', [4], [1, 2, 3, 4.5])],
    ['proj1.weight', tensor('f32', [2, 3], [0.5, -1, 2, 3, 4, -5.5])],
  ]);
  const io = capture();
  assert.equal(await main(['inspect', file, '--json'], io), 0);
  const rows = io.out().trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rows, [
    { name: 'pre_ln.weight', dtype: 'bf16', shape: [4], sum: 10.5 },
    { name: 'proj1.weight', dtype: 'f32', shape: [2, 3], sum: 3 },
  ]);
  assert.ok(rows.every((r: object) => Object.keys(r).join() === 'name,dtype,shape,sum'));
});

test('inspect reads the external-data initializers of a graph we built', async () => {
  const cache = tempDir();
  const model = await DecoderModel.load(join(STORIES, 'stories260K.bin'), { cacheDirectory: cache });
  await model.dispose();
  const io = capture();
  assert.equal(await main(['inspect', model.graphPath], io), 0);
  // q, k and v run as one matrix product (64 + 2 x 32 columns).
  assert.match(io.out(), /model\.layers\.0\.self_attn\.q_proj\.group3\.t +f32 +\[64, 128\]/);
  assert.match(io.out(), /\[64, 64\]/);
  assert.ok(readdirSync(join(cache, 'graphs')).length > 0);
  assert.notEqual(await main(['inspect'], capture()), 0);
});
