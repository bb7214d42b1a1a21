// `inspect` over the three formats: .pt (our torch.save-compatible writer), .safetensors (the test
// writer plus a hand-made file with integer dtypes) and .onnx (the engine's graph builder with
// external data, plus hand-encoded TensorProtos using the typed *_data fields). Sums are checked
// against values computed by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/engine/api';
import { formatInspect, inspectTensors, type InspectRow } from '../../src/engine/links/inspect';
import { readOnnxInitializers } from '../../src/engine/onnx/read';
import { DataType, GraphBuilder } from '../../src/engine/onnx/graph';
import { ProtoWriter } from '../../src/engine/onnx/proto';
import { tempDir } from '../support/paths';
import { storage, tensor, writeTorchSave } from '../support/pt-writer';
import { writeSafetensors } from '../../src/engine/model/synthetic/safetensors-writer';

const dir = tempDir('rmas-inspect-');

async function rejectsUser(p: Promise<unknown>, pattern: RegExp, code: UserError['code'] = 'model-invalid'): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

test('a .pt file: dtypes, shapes and float64 sums in logical order', async () => {
  const path = join(dir, 'adapter.pt');
  const w = storage('bf16', [0.5, 1, 1.5, 2, 2.5, 3]);
  writeTorchSave(path, [
    ['proj1.weight', { storage: w, shape: [2, 3] }],
    ['proj1.weight_t', { storage: w, shape: [3, 2], stride: [1, 3] }],
    ['proj1.bias', tensor('f32', [2], [0.25, -1])],
    ['steps', tensor('i64', [2], [2 ** 40 + 1, 3])],
    ['scale', tensor('f64', [2], [0.1, 0.2])],
  ]);
  assert.deepEqual(await inspectTensors(path), [
    { name: 'proj1.weight', dtype: 'bf16', shape: [2, 3], sum: 10.5 },
    { name: 'proj1.weight_t', dtype: 'bf16', shape: [3, 2], sum: 10.5 },
    { name: 'proj1.bias', dtype: 'f32', shape: [2], sum: -0.75 },
    { name: 'steps', dtype: 'i64', shape: [2], sum: 2 ** 40 + 4 },
    { name: 'scale', dtype: 'f64', shape: [2], sum: 0.1 + 0.2 },
  ]);
});

/** A safetensors file written by hand, for the dtypes the test writer does not produce. */
function handSafetensors(path: string, tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([prefix, json, ...tensors.map((t) => Buffer.from(t.bytes))]));
}

test('a .safetensors file, float and integer dtypes', async () => {
  const floats = join(dir, 'model.safetensors');
  writeSafetensors(floats, [
    { name: 'embed', dtype: 'BF16', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4.5]) },
    { name: 'norm', dtype: 'F32', shape: [3], data: Float32Array.from([0.5, 0.25, 0.125]) },
    { name: 'half', dtype: 'F16', shape: [1], data: Float32Array.from([-8]) },
  ]);
  assert.deepEqual(await inspectTensors(floats), [
    { name: 'embed', dtype: 'bf16', shape: [2, 2], sum: 10.5 },
    { name: 'norm', dtype: 'f32', shape: [3], sum: 0.875 },
    { name: 'half', dtype: 'f16', shape: [1], sum: -8 },
  ]);
  const ints = join(dir, 'ints.safetensors');
  handSafetensors(ints, [
    { name: 'ids', dtype: 'I64', shape: [3], bytes: new Uint8Array(BigInt64Array.from([-7n, 2n ** 50n, 9n]).buffer) },
    { name: 'mask', dtype: 'BOOL', shape: [4], bytes: Uint8Array.from([1, 0, 1, 1]) },
    { name: 'x', dtype: 'F64', shape: [2], bytes: new Uint8Array(Float64Array.from([1e-300, 2]).buffer) },
  ]);
  assert.deepEqual(await inspectTensors(ints), [
    { name: 'ids', dtype: 'i64', shape: [3], sum: 2 ** 50 + 2 },
    { name: 'mask', dtype: 'bool', shape: [4], sum: 3 },
    { name: 'x', dtype: 'f64', shape: [2], sum: 2 },
  ]);
  const odd = join(dir, 'odd.safetensors');
  handSafetensors(odd, [{ name: 'u', dtype: 'U16', shape: [1], bytes: Uint8Array.from([1, 0]) }]);
  await rejectsUser(inspectTensors(odd), /tensor u has dtype U16/, 'unsupported');
});

test('an .onnx file with external data and inline initializers', async () => {
  const model = join(dir, 'link.onnx');
  const g = new GraphBuilder(join(dir, 'link.onnx.data'), 64);
  const big = Float32Array.from({ length: 32 }, (_, i) => i * 0.25);
  g.initializer('proj1.weight', DataType.FLOAT, [4, 8], big);
  g.initializer('shape', DataType.INT64, [3], BigInt64Array.from([1n, -2n, 3n]));
  g.initializer('gain', DataType.BFLOAT16, [2], Uint16Array.from([0x3fc0, 0xc040])); // 1.5, -3
  g.initializer('h', DataType.FLOAT16, [2, 1], Uint16Array.from([0x3c00, 0x3800])); // 1, 0.5
  g.initializer('empty', DataType.FLOAT, [0, 5], new Float32Array(0));
  const x = g.input('x', DataType.FLOAT, [1, 8]);
  g.bindOutput(g.op('Add', [x, x]), 'y', DataType.FLOAT, [1, 8]);
  writeFileSync(model, g.finish('link'));
  const rows = await inspectTensors(model);
  assert.deepEqual(rows, [
    { name: 'proj1.weight', dtype: 'f32', shape: [4, 8], sum: (0.25 * 31 * 32) / 2 },
    { name: 'shape', dtype: 'i64', shape: [3], sum: 2 },
    { name: 'gain', dtype: 'bf16', shape: [2], sum: -1.5 },
    { name: 'h', dtype: 'f16', shape: [2, 1], sum: 1.5 },
    { name: 'empty', dtype: 'f32', shape: [0, 5], sum: 0 },
  ]);
  const tensors = await readOnnxInitializers(model);
  assert.deepEqual(Array.from(tensors.get('proj1.weight')!.toFloat32()), Array.from(big));
});

/** A ModelProto whose graph holds the given TensorProtos. */
function onnxWith(...initializers: ((t: ProtoWriter) => void)[]): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, 8);
  w.message(7, (g) => {
    g.string(2, 'g');
    for (const init of initializers) g.message(5, init);
  });
  return w.finish();
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

test('typed *_data fields, packed and unpacked, decode like raw_data', async () => {
  const path = join(dir, 'typed.onnx');
  writeFileSync(
    path,
    onnxWith(
      (t) => t.int(1, 2).int(2, 1).string(8, 'floats_unpacked').float(4, 1.5).float(4, -0.25),
      (t) => t.bytes(1, Uint8Array.from([3])).int(2, 1).string(8, 'floats_packed').bytes(4, bytesOf(Float32Array.from([1, 2, 4]))),
      (t) => t.ints(1, [2]).int(2, 10).string(8, 'half_bits').ints(5, [0x3c00, 0xc000]),
      (t) => t.ints(1, [2]).int(2, 3).string(8, 'int8').ints(5, [-1, 100]),
      (t) => t.ints(1, [2]).int(2, 7).string(8, 'int64').ints(7, [-3, 2 ** 53 - 1]),
      (t) => t.ints(1, [2]).int(2, 11).string(8, 'doubles').bytes(10, bytesOf(Float64Array.from([0.1, 0.2]))),
      (t) => t.ints(1, [2, 2]).int(2, 9).string(8, 'bools').bytes(9, Uint8Array.from([1, 0, 0, 1])),
    ),
  );
  const sums = Object.fromEntries((await inspectTensors(path)).map((r) => [r.name, [r.dtype, r.shape, r.sum]]));
  assert.deepEqual(sums, {
    floats_unpacked: ['f32', [2], 1.25],
    floats_packed: ['f32', [3], 7],
    half_bits: ['f16', [2], -1],
    int8: ['i8', [2], 99],
    int64: ['i64', [2], 2 ** 53 - 4],
    doubles: ['f64', [2], 0.1 + 0.2],
    bools: ['bool', [2, 2], 2],
  });
});

test('ONNX external data outside the folder, cut short or missing, and bad tensors are refused', async () => {
  const external = (location: string, offset: string, length: string) => (t: ProtoWriter) => {
    t.ints(1, [2]).int(2, 1).string(8, 'w');
    for (const [k, v] of [['location', location], ['offset', offset], ['length', length]]) {
      t.message(13, (e) => e.string(1, k!).string(2, v!));
    }
    t.int(14, 1);
  };
  writeFileSync(join(dir, 'weights.bin'), Buffer.alloc(12));
  const model = (name: string, ...inits: ((t: ProtoWriter) => void)[]) => {
    const path = join(dir, name);
    writeFileSync(path, onnxWith(...inits));
    return path;
  };
  await rejectsUser(readOnnxInitializers(model('escape.onnx', external('../weights.bin', '0', '8'))), /\.\.\/weights\.bin.*leaves the model folder; it was refused/);
  await rejectsUser(readOnnxInitializers(model('abs.onnx', external('/etc/passwd', '0', '8'))), /absolute/);
  await rejectsUser(readOnnxInitializers(model('cut.onnx', external('weights.bin', '8', '8'))), /spans bytes 8\.\.16 of weights\.bin, which has only 12 bytes/);
  await rejectsUser(readOnnxInitializers(model('len.onnx', external('weights.bin', '0', '4'))), /external data is 4 bytes but the shape needs 8/);
  await rejectsUser(readOnnxInitializers(model('gone.onnx', external('nothing.bin', '0', '8'))), /cannot be opened/, 'model-missing');
  const ok = await readOnnxInitializers(model('ok.onnx', external('weights.bin', '4', '8')));
  assert.deepEqual(Array.from(ok.get('w')!.toFloat32()), [0, 0]);

  await rejectsUser(readOnnxInitializers(model('raw.onnx', (t) => t.ints(1, [4]).int(2, 1).string(8, 'r').bytes(9, new Uint8Array(12)))), /raw_data has 12 bytes but the shape needs 16/);
  await rejectsUser(readOnnxInitializers(model('count.onnx', (t) => t.ints(1, [3]).int(2, 1).string(8, 'c').float(4, 1))), /float_data has 1 values but the shape needs 3/);
  await rejectsUser(readOnnxInitializers(model('str.onnx', (t) => t.ints(1, [1]).int(2, 8).string(8, 's'))), /type STRING/, 'unsupported');
  await rejectsUser(readOnnxInitializers(model('twice.onnx', (t) => t.ints(1, [0]).int(2, 1).string(8, 'd'), (t) => t.ints(1, [0]).int(2, 1).string(8, 'd'))), /appears twice/);
  const cut = onnxWith((t) => t.ints(1, [4]).int(2, 1).string(8, 'r').bytes(9, new Uint8Array(16)));
  const cutPath = join(dir, 'truncated.onnx');
  writeFileSync(cutPath, cut.slice(0, cut.length - 5));
  await rejectsUser(readOnnxInitializers(cutPath), /not a valid ONNX model: a field claims \d+ bytes/);
});

test('unknown formats and missing files are clear errors', async () => {
  const txt = join(dir, 'notes.txt');
  writeFileSync(txt, 'hello');
  await rejectsUser(inspectTensors(txt), /inspect reads \.pt \(torch\.save\), \.safetensors and \.onnx files/, 'bad-input');
  await rejectsUser(inspectTensors(join(dir, 'missing.pt')), /Cannot open/, 'model-missing');
  await rejectsUser(inspectTensors(join(dir, 'missing.onnx')), /Cannot open/, 'model-missing');
  // A torch zip under another extension is still recognised.
  const bin = join(dir, 'pytorch_model.bin');
  writeTorchSave(bin, [['a', tensor('f16', [2], [1, 2])]]);
  assert.deepEqual(await inspectTensors(bin), [{ name: 'a', dtype: 'f16', shape: [2], sum: 3 }]);
});

test('formatInspect: JSON lines with exactly name, dtype, shape, sum; text as an aligned table', () => {
  const rows: InspectRow[] = [
    { name: 'pre_ln.weight', dtype: 'bf16', shape: [2048], sum: 2041.5 },
    { name: 'proj1.weight', dtype: 'f32', shape: [2048, 2048], sum: -0.125 },
    { name: 'nan', dtype: 'f16', shape: [], sum: NaN },
  ];
  const lines = formatInspect(rows, true).trimEnd().split('\n');
  assert.equal(lines.length, 3);
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const p of parsed) assert.deepEqual(Object.keys(p), ['name', 'dtype', 'shape', 'sum']);
  assert.deepEqual(parsed[1], { name: 'proj1.weight', dtype: 'f32', shape: [2048, 2048], sum: -0.125 });
  assert.equal(parsed[2]!.sum, 'NaN');

  const text = formatInspect(rows, false).trimEnd().split('\n');
  assert.equal(text.length, 4);
  assert.match(text[0]!, /^name\s+dtype\s+shape\s+sum$/);
  const col = (line: string, word: string) => line.indexOf(word);
  assert.equal(col(text[1]!, 'bf16'), col(text[0]!, 'dtype'));
  assert.equal(col(text[2]!, 'f32'), col(text[0]!, 'dtype'));
  assert.equal(col(text[2]!, '[2048, 2048]'), col(text[0]!, 'shape'));
  assert.equal(col(text[3]!, '[]'), col(text[0]!, 'shape'));
  assert.ok(text[1]!.endsWith('2041.5') && text[2]!.endsWith('-0.125') && text[3]!.endsWith('NaN'));
  assert.equal(formatInspect([], true), '');
});
