// The .pt reader against files in torch.save's exact format: two files PyTorch itself wrote
// (reproduced byte for byte by our writer and checked by SHA-256), then every layout a state dict
// can take (dtypes, shared storages, offsets, strides, parameters, newer archive records), then
// the hostile and broken files it must refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/engine/api';
import { PyDict, TensorRef, unpickle } from '../../src/engine/links/pickle';
import { readTorchStateDict } from '../../src/engine/links/torch-file';
import { StridedTensor, type DType } from '../../src/engine/tensor';
import { tempDir } from '../support/paths';
import {
  encodeStateDictPickle,
  encodeTorchSave,
  PickleWriter,
  serializationId,
  storage,
  tensor,
  torchZip,
  writeTorchSave,
  type PtTensor,
} from '../support/pt-writer';
import { bf16BitsToF32, f16BitsToF32 } from '../support/safetensors-read';

const dir = tempDir('rmas-pt-');
let fileCounter = 0;

function save(bytes: Uint8Array, name = `f${fileCounter++}.pt`): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function refused(bytes: Uint8Array, pattern: RegExp, code: UserError['code'] = 'model-invalid'): Promise<void> {
  const path = save(bytes);
  await assert.rejects(readTorchStateDict(path), (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(path), `the error names the file: ${e.message}`);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Real files written by PyTorch: pytorch/pytorch test/test_serialization.py,
// test_serialization_load_bom_data, holds the bytes of torch.save(nn.LSTM(3, 3).state_dict())
// as written by PyTorch itself: "lstm.LE.pt" (data_le_no_bom, saved with
// _disable_byteorder_record=True) and "lstm.LE.BOM.pt" (data_le_bom, with the byteorder record).
// Their storages (float32, little-endian) and the SHA-256 of the whole files:
const LSTM_STORAGES = [
  '0a754abe582aa2bec4ea103ed40a8dbe1c108abeb032e4be2ccb343e0017213e489ce0bed21521be3643c63e76c5893eae1481be5ac7993e9050013f60b99a3cc0203c3d27c79ebeaaf4023f00f30ebcd8b776bea0cccd3d242faf3e00c44b3d30b8e5beb6c555bec469f3bea435dc3e06678d3e4e21ae3e324672be306862bdf07765bd2067a03cb6be9ebe14d1c23e',
  '7c5be13ea25964bea56f09bf7a1c05be20b1db3cf0cdfc3ea275cb3e8c877bbe9c9b5e3eac6d473eae17933e8ec5f0be741cfc3ecb8481bec8a6203e88eeaf3d0ac98d3ec0c5ee3ef045913ef45ea13eb8bb463e9797febeec85033f689cf33df2a8973e5efa0d3f366994bebc3177be68c48a3d94c89fbd81b589be284bb03ef03a7abdb0c69bbd5800883d05c711bf',
  'b0c2663d40dd313c8634d8bea009133f2b678fbe75b10dbf626cc33ea85c82bea463f3bd2c96dfbefe05f1bef8c9963e',
  '04aa69beced88abee34fdfbe24c3d2be06b180be5e26083f001a7dbd06de0d3f04e7ac3e5a40e9be14c2293e9ce92f3e',
];
const LSTM_LE_SHA256 = 'fcdcf2af7d05c533a213c11cf854d1fa392ab5085d7f0dc084d7dae22c5d1a3c';
const LSTM_LE_BOM_SHA256 = 'f1acb40d1056b308a864af3708442601d92bb0b1ed5b09a9619bcaaa88f2418d';

function lstmEntries(): [string, PtTensor][] {
  const s = LSTM_STORAGES.map((hex) => ({ dtype: 'f32' as const, bytes: new Uint8Array(Buffer.from(hex, 'hex')) }));
  return [
    ['weight_ih_l0', { storage: s[0]!, shape: [12, 3] }],
    ['weight_hh_l0', { storage: s[1]!, shape: [12, 3] }],
    ['bias_ih_l0', { storage: s[2]!, shape: [12] }],
    ['bias_hh_l0', { storage: s[3]!, shape: [12] }],
  ];
}

function floatsOf(hex: string): number[] {
  const b = Buffer.from(hex, 'hex');
  return Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(i * 4));
}

test('the writer reproduces two files PyTorch wrote, byte for byte, and the reader reads them', async () => {
  const noBom = encodeTorchSave(lstmEntries(), { archiveName: 'lstm', byteorder: false, serializationId: false, metadata: [['', 1]] });
  assert.equal(noBom.length, 1805);
  assert.equal(sha256(noBom), LSTM_LE_SHA256);
  const bom = encodeTorchSave(lstmEntries(), { archiveName: 'lstm.save', serializationId: false, metadata: [['', 1]] });
  assert.equal(bom.length, 2028);
  assert.equal(sha256(bom), LSTM_LE_BOM_SHA256);

  for (const bytes of [noBom, bom]) {
    const sd = await readTorchStateDict(save(bytes));
    assert.deepEqual([...sd.keys()], ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']);
    const expected = LSTM_STORAGES.map(floatsOf);
    [...sd.values()].forEach((t, i) => {
      assert.equal(t.dtype, 'f32');
      assert.deepEqual(t.shape, i < 2 ? [12, 3] : [12]);
      assert.deepEqual(Array.from(t.toFloat32()), expected[i]);
    });
  }
});

test('the serialization id matches the ids PyTorch wrote into two public files', () => {
  // pytorch/pytorch test/test_serialization.py (test_open_device_numpy_serialization): records
  // data.pkl, byteorder, version with these CRC-32s, and the ids torch wrote.
  assert.equal(serializationId(['data.pkl', 'byteorder', 'version'], [0xcad645df, 0x19e33d85, 0x55679ed1]), '0636457737946401051300000025273995036293');
  assert.equal(serializationId(['data.pkl', 'byteorder', 'version'], [0xec86e4e3, 0x19e33d85, 0x55679ed1]), '0636457737946401051300000027264370494161');
});

// ---------------------------------------------------------------------------------------------
// Layouts

test('every supported dtype reads back exactly', async () => {
  const bf16 = [1.5, -2.25, 0.0078125, 256, -0.5, 3.140625];
  const f16 = [0.5, -65504, 6.103515625e-5, 1.0009765625];
  const f32 = [0.1, -1e-30, 3.4e38, 0].map(Math.fround);
  const entries: [string, PtTensor][] = [
    ['a.bf16', tensor('bf16', [2, 3], bf16)],
    ['a.f16', tensor('f16', [4], f16)],
    ['b.f32', tensor('f32', [2, 2], f32)],
    ['b.f64', tensor('f64', [2], [0.1, -1e300])],
    ['c.i64', tensor('i64', [3], [2 ** 40 + 1, -5, 0])],
    ['c.i32', tensor('i32', [2], [-2147483648, 2147483647])],
    ['c.i16', tensor('i16', [2], [-32768, 32767])],
    ['c.i8', tensor('i8', [2], [-128, 127])],
    ['c.u8', tensor('u8', [2], [0, 255])],
    ['c.bool', tensor('bool', [3], [1, 0, 1])],
  ];
  const sd = await readTorchStateDict(save(encodeTorchSave(entries)));
  const dtypes: DType[] = ['bf16', 'f16', 'f32', 'f64', 'i64', 'i32', 'i16', 'i8', 'u8', 'bool'];
  assert.deepEqual([...sd.values()].map((t) => t.dtype), dtypes);
  assert.deepEqual(Array.from(sd.get('a.bf16')!.toFloat32()), bf16);
  assert.deepEqual(sd.get('a.bf16')!.shape, [2, 3]);
  assert.deepEqual(Array.from(sd.get('a.f16')!.toFloat32()), f16);
  assert.deepEqual(Array.from(sd.get('b.f32')!.toFloat32()), f32);
  assert.deepEqual(Array.from((sd.get('b.f64') as StridedTensor).toFloat64()), [0.1, -1e300]);
  assert.deepEqual(Array.from((sd.get('c.i64') as StridedTensor).toFloat64()), [2 ** 40 + 1, -5, 0]);
  assert.deepEqual(Array.from((sd.get('c.i32') as StridedTensor).toFloat64()), [-2147483648, 2147483647]);
  assert.deepEqual(Array.from(sd.get('c.i32')!.toFloat32()), [-2147483648, 2147483647].map(Math.fround));
  assert.deepEqual(Array.from(sd.get('c.i16')!.toFloat32()), [-32768, 32767]);
  assert.deepEqual(Array.from(sd.get('c.i8')!.toFloat32()), [-128, 127]);
  assert.deepEqual(Array.from(sd.get('c.u8')!.toFloat32()), [0, 255]);
  assert.deepEqual(Array.from(sd.get('c.bool')!.toFloat32()), [1, 0, 1]);
});

test('bf16 and f16 storages are rounded to nearest even on write and decoded bit-exactly', async () => {
  // 1 + 2^-8 sits halfway between two bf16 values: ties go to the even one (1.0).
  const values = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -1e-3, 65519];
  const sd = await readTorchStateDict(save(encodeTorchSave([['x', tensor('bf16', [4], values)], ['y', tensor('f16', [4], values)]])));
  const bf = Array.from(sd.get('x')!.toFloat32());
  assert.deepEqual(bf.slice(0, 2), [1, 1 + 2 ** -6]);
  const bits = new Uint16Array(new Uint8Array(storage('bf16', values).bytes).buffer);
  assert.deepEqual(bf, Array.from(bits, bf16BitsToF32));
  const hbits = new Uint16Array(new Uint8Array(storage('f16', values).bytes).buffer);
  assert.deepEqual(Array.from(sd.get('y')!.toFloat32()), Array.from(hbits, f16BitsToF32));
});

/** Reference: element (i0, i1, ...) of a view is storage[offset + sum(i_k * stride_k)]. */
function expectedView(base: number[], shape: number[], stride: number[], offset: number): number[] {
  const out: number[] = [];
  const idx = new Array<number>(shape.length).fill(0);
  const total = shape.reduce((a, b) => a * b, 1);
  for (let n = 0; n < total; n++) {
    out.push(base[offset + idx.reduce((s, i, k) => s + i * stride[k]!, 0)]!);
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++idx[k]! < shape[k]!) break;
      idx[k] = 0;
    }
  }
  return out;
}

test('views share one storage through offsets and strides, as torch writes them', async () => {
  for (const dtype of ['f32', 'bf16'] as const) {
    const base = Array.from({ length: 24 }, (_, i) => i - 6);
    const s = storage(dtype, base);
    const views: [string, number[], number[], number][] = [
      ['full', [4, 6], [6, 1], 0],
      ['transposed', [6, 4], [1, 6], 0],
      ['row2', [6], [1], 12],
      ['column3', [4], [6], 3],
      ['every_other', [2, 3], [12, 2], 1],
      ['expanded', [3, 4], [0, 1], 5],
      ['permuted3d', [3, 2, 4], [1, 12, 3], 0],
      ['scalar', [], [], 23],
      ['empty', [0, 4], [4, 1], 0],
    ];
    const entries = views.map(([name, shape, stride, offset]): [string, PtTensor] => [name, { storage: s, shape, stride, offset }]);
    const bytes = encodeTorchSave(entries);
    // One storage record: every view points at data/0.
    assert.equal(Buffer.from(bytes).indexOf('archive/data/1'), -1);
    const sd = await readTorchStateDict(save(bytes));
    for (const [name, shape, stride, offset] of views) {
      const t = sd.get(name)!;
      assert.deepEqual(t.shape, shape, name);
      assert.deepEqual(Array.from(t.toFloat32()), expectedView(base, shape, stride, offset), `${dtype} ${name}`);
    }
  }
});

test('nn.Parameter entries unwrap to their tensors, and plain dicts read like OrderedDicts', async () => {
  const p = tensor('f32', [2], [3, 4], { parameter: true });
  const entries: [string, PtTensor][] = [['w', p], ['b', tensor('bf16', [1], [0.5])]];
  const { pickle } = encodeStateDictPickle(entries);
  const root = unpickle(pickle, { source: 'test' });
  assert.ok(root instanceof PyDict && root.ordered);
  const w = root.map.get('w');
  assert.ok(w instanceof TensorRef && w.parameter && w.requiresGrad);
  const meta = root.state instanceof PyDict ? root.state.map.get('_metadata') : undefined;
  assert.ok(meta instanceof PyDict && meta.map.has(''));

  const sd = await readTorchStateDict(save(encodeTorchSave(entries)));
  assert.deepEqual(Array.from(sd.get('w')!.toFloat32()), [3, 4]);
  const plain = await readTorchStateDict(save(encodeTorchSave(entries, { container: 'dict' })));
  assert.deepEqual([...plain.keys()], ['w', 'b']);
  assert.deepEqual(Array.from(plain.get('b')!.toFloat32()), [0.5]);
});

test('newer archives (.format_version, .storage_alignment, serialization id, many storages) read the same', async () => {
  const entries = Array.from({ length: 12 }, (_, i): [string, PtTensor] => [`layer.${i}.weight`, tensor('bf16', [2], [i, -i])]);
  for (const opts of [{ formatVersion: true }, { formatVersion: false }, { byteorder: false }]) {
    const bytes = encodeTorchSave(entries, opts);
    const text = Buffer.from(bytes).toString('latin1');
    assert.ok(text.includes('archive/.data/serialization_id'));
    const sd = await readTorchStateDict(save(bytes));
    assert.equal(sd.size, 12);
    for (let i = 0; i < 12; i++) assert.deepEqual(Array.from(sd.get(`layer.${i}.weight`)!.toFloat32()), [i, -i]);
  }
});

test('a protocol 4 pickle (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL) reads like protocol 2', async () => {
  const w = new PickleWriter().proto(4);
  const short = (s: string) => w.raw(0x8c, s.length).ascii(s);
  w.raw(0x95, 0, 0, 0, 0, 0, 0, 0, 0); // FRAME with a zero length hint
  short('collections').raw(0x94);
  short('OrderedDict').raw(0x94).raw(0x93, 0x94, 0x29, 0x52, 0x94);
  short('t').raw(0x94);
  short('torch._utils').raw(0x94);
  short('_rebuild_tensor_v2').raw(0x94).raw(0x93, 0x94);
  w.raw(0x28); // args
  w.raw(0x28);
  short('storage').raw(0x94);
  short('torch').raw(0x94);
  short('HalfStorage').raw(0x94).raw(0x93, 0x94);
  short('0').raw(0x94);
  short('cpu').raw(0x94);
  w.raw(0x4b, 3, 0x74, 0x94, 0x51); // numel 3, TUPLE, MEMOIZE, BINPERSID
  w.raw(0x4b, 0, 0x4b, 3, 0x85, 0x94, 0x4b, 1, 0x85, 0x94, 0x89);
  w.raw(0x68, 2, 0x29, 0x52, 0x94); // BINGET the OrderedDict class (memo 2), (), REDUCE
  w.raw(0x74, 0x94, 0x52, 0x94, 0x73); // TUPLE, REDUCE, SETITEM
  const pickle = w.stop();
  const bytes = torchZip('archive', [
    { name: 'data.pkl', data: pickle },
    { name: 'data/0', data: storage('f16', [1, -2, 0.25]).bytes },
    { name: 'version', data: Buffer.from('3\n') },
  ]);
  const sd = await readTorchStateDict(save(bytes));
  assert.deepEqual(Array.from(sd.get('t')!.toFloat32()), [1, -2, 0.25]);
  assert.equal(sd.get('t')!.dtype, 'f16');
});

test('past 256 memo slots the pickle switches to LONG_BINPUT / LONG_BINGET and still reads', async () => {
  // About ten memo slots per tensor: the views of the last storage are found through LONG_BINGET.
  const entries = Array.from({ length: 40 }, (_, i): [string, PtTensor] => [`t${i}`, tensor('f32', [2], [i, i + 0.5])]);
  const last = storage('f16', [1, 2, 3, 4]);
  entries.push(['v0', { storage: last, shape: [2], stride: [2], offset: 0 }], ['v1', { storage: last, shape: [2], stride: [2], offset: 1 }]);
  const { pickle } = encodeStateDictPickle(entries);
  assert.ok(pickle.includes(0x72) && pickle.includes(0x6a));
  const sd = await readTorchStateDict(save(encodeTorchSave(entries)));
  assert.equal(sd.size, 42);
  assert.deepEqual(Array.from(sd.get('t39')!.toFloat32()), [39, 39.5]);
  assert.deepEqual(Array.from(sd.get('v0')!.toFloat32()), [1, 3]);
  assert.deepEqual(Array.from(sd.get('v1')!.toFloat32()), [2, 4]);
});

test('pickle scalars and containers decode as Python builds them', () => {
  const w = new PickleWriter().proto(2);
  w.raw(0x5d, 0x28); // EMPTY_LIST, MARK
  w.raw(0x47, ...Buffer.from([0x3f, 0xf8, 0, 0, 0, 0, 0, 0])); // BINFLOAT 1.5 (big-endian)
  w.int(-5).int(1000).int(2 ** 40).int(-(2 ** 40)).none().bool(true).bool(false);
  w.raw(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1); // LONG1: 2^64, beyond a double's integers
  w.raw(0x43, 2, 0xde, 0xad); // SHORT_BINBYTES
  w.raw(0x28, 0x4b, 1, 0x4b, 2, 0x6c); // MARK 1 2 LIST
  w.raw(0x28, 0x58, 1, 0, 0, 0, 0x6b, 0x4b, 7, 0x64); // MARK "k" 7 DICT
  w.raw(0x65); // APPENDS
  const v = unpickle(w.stop(), { source: 'test' });
  assert.ok(Array.isArray(v));
  assert.deepEqual(v.slice(0, 8), [1.5, -5, 1000, 2 ** 40, -(2 ** 40), null, true, false]);
  assert.equal(v[8], 2n ** 64n);
  assert.deepEqual(v[9], Uint8Array.from([0xde, 0xad]));
  assert.deepEqual(v[10], [1, 2]);
  assert.ok(v[11] instanceof PyDict && v[11].map.get('k') === 7);
});

// ---------------------------------------------------------------------------------------------
// Refusals

const one: [string, PtTensor][] = [['w', tensor('f32', [4], [1, 2, 3, 4])]];

test('a pickle naming os.system or builtins.eval is refused, naming the global, before anything runs', async () => {
  const os = new PickleWriter().proto(2).global('os', 'system').str('echo pwned').tuple(1).reduce().stop();
  await refused(encodeTorchSave(one, { pickle: os }), /"os\.system"/);

  const w = new PickleWriter().proto(4);
  w.raw(0x8c, 8).ascii('builtins').raw(0x8c, 4).ascii('eval').raw(0x93);
  await refused(encodeTorchSave(one, { pickle: w.raw(0x8c, 4).ascii('1+1').raw(0x85, 0x52).stop() }), /"builtins\.eval"/);

  // Inside an otherwise valid state dict, as a value.
  const nested = new PickleWriter().proto(2).orderedDict().str('x').global('numpy.core.multiarray', '_reconstruct').raw(0x73).stop();
  await refused(encodeTorchSave(one, { pickle: nested }), /"numpy\.core\.multiarray\._reconstruct"/);

  // Opcodes that instantiate classes are refused by name too.
  const inst = new PickleWriter().proto(2).raw(0x28).raw(0x69).ascii('os\nsystem\n').stop();
  await refused(encodeTorchSave(one, { pickle: inst }), /INST/);
});

test('zip entries outside the archive folder are refused', async () => {
  const data = encodeStateDictPickle(one);
  const good = [
    { name: 'data.pkl', data: data.pickle },
    { name: 'data/0', data: data.storages[0]!.bytes },
  ];
  await refused(encodeTorchSave(one, { extraRecords: [{ name: '../../.bashrc', data: Buffer.from('x') }] }), /"archive\/\.\.\/\.\.\/\.bashrc".*leaves its folder/);
  await refused(torchZip(null, [...good.map((r) => ({ name: `a/${r.name}`, data: r.data })), { name: '/etc/passwd', data: Buffer.from('x') }]), /absolute path/);
  await refused(torchZip(null, [...good.map((r) => ({ name: `a/${r.name}`, data: r.data })), { name: 'C:/x', data: Buffer.from('x') }]), /absolute path/);
  await refused(torchZip(null, [...good.map((r) => ({ name: `a/${r.name}`, data: r.data })), { name: 'a\\..\\x', data: Buffer.from('x') }]), /not a plain relative name/);
  await refused(torchZip(null, [{ name: 'a/data.pkl', data: data.pickle }, { name: 'b/data/0', data: data.storages[0]!.bytes }]), /more than one top folder/);
});

test('storages shorter than their tensors need, and views past their storage, are refused', async () => {
  const { pickle, storages } = encodeStateDictPickle(one);
  const short = torchZip('archive', [
    { name: 'data.pkl', data: pickle },
    { name: 'data/0', data: storages[0]!.bytes.slice(0, 8) },
    { name: 'version', data: Buffer.from('3\n') },
  ]);
  await refused(short, /data\/0 holds 8 bytes but its storage has 4 f32 elements \(16 bytes\) \(truncated file\?\)/);
  const missing = torchZip('archive', [{ name: 'data.pkl', data: pickle }]);
  await refused(missing, /storage 0 is used but archive\/data\/0 is missing/);
  const past = encodeTorchSave([['v', { storage: storage('f32', [1, 2, 3, 4]), shape: [2, 2], stride: [2, 1], offset: 1 }]]);
  await refused(past, /tensor v .* reaches element 4 of storage 0, which has only 4/);
  const huge = encodeTorchSave([['v', { storage: storage('f32', [1]), shape: [65536, 65536, 2], stride: [0, 0, 0] }]]);
  await refused(huge, /absurd shape/);
});

function patchCentralSize(bytes: Uint8Array, entryName: string, size: number): Uint8Array {
  const out = Buffer.from(bytes);
  let at = out.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  while (at >= 0) {
    const nameLength = out.readUInt16LE(at + 28);
    if (out.subarray(at + 46, at + 46 + nameLength).toString() === entryName) {
      out.writeUInt32LE(size, at + 20);
      out.writeUInt32LE(size, at + 24);
      return out;
    }
    at = out.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), at + 4);
  }
  throw new Error(`no central entry ${entryName}`);
}

test('headers claiming more bytes than the file holds, cut files and corrupt data are refused', async () => {
  const bytes = encodeTorchSave(one);
  await refused(patchCentralSize(bytes, 'archive/data/0', 0x7fff0000), /claims 2147418112 bytes .* the file has only \d+ bytes/);
  await refused(patchCentralSize(bytes, 'archive/data.pkl', 0x7fff0000), /claims 2147418112 bytes/);
  await refused(bytes.slice(0, Math.floor(bytes.length * 0.7)), /not a readable zip archive/);
  const flipped = Buffer.from(bytes);
  const storageAt = flipped.indexOf(Buffer.from(storage('f32', [1, 2, 3, 4]).bytes));
  assert.ok(storageAt >= 0, 'the storage bytes are in the file');
  flipped.writeUInt8(flipped.readUInt8(storageAt) ^ 0x40, storageAt);
  await refused(flipped, /CRC-32/);
});

test('big-endian files, legacy-format files and LFS pointers are refused with what to do', async () => {
  const { pickle, storages } = encodeStateDictPickle(one);
  const big = torchZip('archive', [
    { name: 'data.pkl', data: pickle },
    { name: 'byteorder', data: Buffer.from('big') },
    { name: 'data/0', data: storages[0]!.bytes },
  ]);
  await refused(big, /big-endian/, 'unsupported');
  await refused(Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]), /legacy torch\.save format/, 'unsupported');
  await refused(Buffer.from('version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n'), /Git LFS pointer/);
  await refused(Buffer.from('not a zip at all'), /not a zip archive/);
});

test('malformed pickles are refused: bad storage keys, unset memo slots, stray BUILD, missing STOP', async () => {
  const bad = (build: (w: PickleWriter) => void) => {
    const w = new PickleWriter().proto(2);
    build(w);
    return encodeTorchSave(one, { pickle: w.stop() });
  };
  const withKey = (key: string) => (w: PickleWriter) => {
    w.orderedDict().str('w').global('torch._utils', '_rebuild_tensor_v2').mark();
    w.mark().str('storage').global('torch', 'FloatStorage').str(key).str('cpu').int(4).tuple(5).raw(0x51);
    w.int(0).intTuple([4]).intTuple([1]).bool(false).orderedDict().tuple(6).reduce().raw(0x73);
  };
  await refused(bad(withKey('../../etc/passwd')), /storage key "\.\.\/\.\.\/etc\/passwd" is not a plain name/);
  await refused(bad((w) => w.get(7)), /memo slot 7 is read before it is written/);
  await refused(bad((w) => w.emptyDict().emptyDict().raw(0x62)), /BUILD/);
  const noStop = encodeTorchSave(one, { pickle: new PickleWriter().proto(2).emptyDict().stop().slice(0, -1) });
  await refused(noStop, /ends without STOP/);
  await refused(bad((w) => w.raw(0x5d)), /holds a list, not a state dict/);
  await refused(bad((w) => w.emptyDict()), /holds no tensors/);
});

test('a missing file is a model-missing error', async () => {
  await assert.rejects(readTorchStateDict(join(dir, 'nope.pt')), (e: unknown) => e instanceof UserError && e.code === 'model-missing');
});

test('the writer names the archive folder like torch (file name without its extension)', async () => {
  const path = join(dir, 'adapter(code).pt');
  const bytes = writeTorchSave(path, one);
  assert.ok(Buffer.from(bytes).includes('adapter(code)/data.pkl'));
  assert.deepEqual(Array.from((await readTorchStateDict(path)).get('w')!.toFloat32()), [1, 2, 3, 4]);
});
