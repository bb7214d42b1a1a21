// safetensors files checked as the format requires: tensors tile the data section exactly (no
// overlap, no alias, no unaccounted bytes, the last one ends at the end of the file), offsets in
// bounds, dtype size x shape = byte length, a bounded header, string metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/engine/api';
import { SafetensorsFile } from '../../src/engine/model/safetensors';
import { formatInspect, inspectTensors } from '../../src/engine/links/inspect';
import { tempDir } from '../support/paths';

const dir = tempDir('rmas-safetensors-');
let n = 0;

/** Writes a header as given (offsets are not computed) followed by `dataBytes` bytes. */
function raw(header: Record<string, unknown>, dataBytes: number, headerLength?: bigint): string {
  const path = join(dir, `t${n++}.safetensors`);
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  writeFileSync(path, Buffer.concat([prefix, json, Buffer.alloc(dataBytes, 1)]));
  return path;
}

async function refused(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(SafetensorsFile.open(path), (e: Error) => e instanceof UserError && e.code === 'model-invalid' && pattern.test(e.message) && !e.message.includes('\n'));
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

test('a well-formed file opens, with zero-sized tensors anywhere in the order', async () => {
  const file = await SafetensorsFile.open(raw({ __metadata__: { format: 'pt' }, a: f32([2], 0, 8), empty: f32([0], 8, 8), b: f32([1, 3], 8, 20) }, 20));
  assert.deepEqual([...file.tensors.keys()], ['a', 'empty', 'b']);
  assert.deepEqual(file.metadata, { format: 'pt' });
  await file.close();
});

test('overlapping and aliased tensors are refused', async () => {
  await refused(raw({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12), /tensor b overlaps tensor a/);
  await refused(raw({ a: f32([2], 0, 8), alias: f32([2], 0, 8) }, 8), /overlaps/);
  await refused(raw({ a: f32([4], 0, 16), inner: f32([0], 8, 8) }, 16), /overlaps/);
});

test('bytes no tensor accounts for are refused: a gap, a head, a tail', async () => {
  await refused(raw({ a: f32([2], 0, 8), b: f32([2], 12, 20) }, 20), /bytes 8-12 of the data belong to no tensor/);
  await refused(raw({ a: f32([2], 4, 12) }, 12), /bytes 0-4 of the data belong to no tensor/);
  await refused(raw({ a: f32([2], 0, 8) }, 9), /the tensors end at byte 8 of the data but the data section has 9 bytes/);
});

test('offsets out of bounds, sizes that disagree with dtype x shape, bad headers', async () => {
  await refused(raw({ a: f32([2], 0, 8) }, 4), /ends at byte .* only/);
  await refused(raw({ a: f32([3], 0, 8) }, 8), /spans 8 bytes but its shape \[3\] needs 12/);
  await refused(raw({ a: { dtype: 'F32', shape: [2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, 8), /impossibly large|spans/);
  await refused(raw({ a: { dtype: 'Q9', shape: [1], data_offsets: [0, 1] } }, 1), /unknown dtype/);
  await refused(raw({ a: f32([2], 0, 8) }, 8, 2n ** 62n), /header claims/);
  await refused(raw({ __metadata__: { n: 3 }, a: f32([2], 0, 8) }, 8), /__metadata__ must map names to strings/);
  await refused(raw({ __metadata__: [1], a: f32([2], 0, 8) }, 8), /__metadata__/);
});

test('a legal header listing 300,000 tensors is read and inspected without overflowing the stack', async () => {
  const header: Record<string, unknown> = {};
  const count = 300_000;
  for (let i = 0; i < count; i++) header[`t${i}`] = { dtype: 'U8', shape: [1], data_offsets: [i, i + 1] };
  const path = raw(header, count);
  const rows = await inspectTensors(path);
  assert.equal(rows.length, count);
  assert.deepEqual(rows[count - 1], { name: `t${count - 1}`, dtype: 'u8', shape: [1], sum: 1 });
  const table = formatInspect(rows, false);
  assert.equal(table.split('\n').length, count + 2);
});
