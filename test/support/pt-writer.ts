// Test tooling: writes `.pt` files byte for byte the way torch.save does (checked against real
// torch-made bytes in test/unit/pt-reader.test.ts), so the reader is tested on the real format
// without PyTorch. Written from the format, independently of the engine's reader.
//
// What torch.save (PyTorch >= 1.6, default zip format) writes, and this module reproduces:
// - a protocol 2 pickle made by CPython's C pickler: GLOBAL/BINPUT memoization of classes and
//   functions, BINUNICODE strings memoized by object identity, ints as BININT1/BININT2/BININT/LONG1,
//   dicts filled with SETITEM (one item) or MARK...SETITEMS (batches of 1000), tensors as
//   REDUCE(_rebuild_tensor_v2, (persistent storage id, offset, size, stride, requires_grad,
//   OrderedDict())), parameters as REDUCE(_rebuild_parameter, (tensor, requires_grad, OrderedDict())),
//   and a state dict's `_metadata` attached with BUILD;
// - a zip written by PyTorch's miniz writer: entries STORED under `<archive>/`, local headers with
//   flags 0x0808, zero times and sizes, an "FB" extra field padding each entry's data to 64 bytes,
//   a data descriptor after each entry, then the central directory and zip64 end records.
import { writeFileSync } from 'node:fs';
import { crc32 } from '../../src/engine/links/torch-file';
import type { DType } from '../../src/engine/dtype';
import { f32ToBf16Bits, f32ToF16Bits } from '../../src/engine/dtype';

// ---------------------------------------------------------------------------------------------
// Tensors and storages

export interface PtStorage {
  dtype: DType;
  /** Raw little-endian element bytes. */
  bytes: Uint8Array;
  /** torch's location tag; 'cpu' unless given. */
  location?: string;
}

export interface PtTensor {
  storage: PtStorage;
  shape: number[];
  /** Element strides; row-major contiguous when absent. */
  stride?: number[];
  /** Storage offset in elements. */
  offset?: number;
  requiresGrad?: boolean;
  /** Saved as an nn.Parameter (what state_dict(keep_vars=True) or a bare Parameter gives). */
  parameter?: boolean;
}

export const STORAGE_TYPE: Record<DType, string> = {
  f64: 'DoubleStorage', f32: 'FloatStorage', f16: 'HalfStorage', bf16: 'BFloat16Storage', i64: 'LongStorage',
  i32: 'IntStorage', i16: 'ShortStorage', i8: 'CharStorage', u8: 'ByteStorage', bool: 'BoolStorage',
};

/** Encodes values the way torch stores them (float -> bf16/f16 rounds to nearest even). */
export function encodeValues(dtype: DType, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  let arr: ArrayBufferView;
  switch (dtype) {
    case 'f32':
      arr = Float32Array.from(values);
      break;
    case 'f64':
      arr = Float64Array.from(values);
      break;
    case 'f16':
      arr = Uint16Array.from({ length: n }, (_, i) => f32ToF16Bits(values[i]!));
      break;
    case 'bf16':
      arr = Uint16Array.from({ length: n }, (_, i) => f32ToBf16Bits(values[i]!));
      break;
    case 'i64':
      arr = BigInt64Array.from({ length: n }, (_, i) => BigInt(values[i]!));
      break;
    case 'i32':
      arr = Int32Array.from(values);
      break;
    case 'i16':
      arr = Int16Array.from(values);
      break;
    case 'i8':
      arr = Int8Array.from(values);
      break;
    case 'u8':
      arr = Uint8Array.from(values);
      break;
    case 'bool':
      arr = Uint8Array.from({ length: n }, (_, i) => (values[i] ? 1 : 0));
      break;
  }
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
}

export function storage(dtype: DType, values: ArrayLike<number>, location?: string): PtStorage {
  return { dtype, bytes: encodeValues(dtype, values), location };
}

/** A contiguous tensor with its own storage. */
export function tensor(dtype: DType, shape: number[], values: ArrayLike<number>, extra: Partial<PtTensor> = {}): PtTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new Error(`tensor of shape [${shape.join(',')}] needs ${n} values, got ${values.length}`);
  return { storage: storage(dtype, values), shape, ...extra };
}

export function contiguous(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Pickle

/** Emits pickle opcodes with the C pickler's memo numbering. Public so tests can craft hostile pickles. */
export class PickleWriter {
  private bytes: number[] = [];
  private memoNext = 0;
  private readonly memo = new Map<string, number>();

  raw(...b: number[]): this {
    for (const x of b) this.bytes.push(x & 0xff);
    return this;
  }

  private u32(v: number): void {
    this.raw(v, v >>> 8, v >>> 16, v >>> 24);
  }

  ascii(s: string): this {
    for (const c of Buffer.from(s, 'utf8')) this.bytes.push(c);
    return this;
  }

  proto(n = 2): this {
    return this.raw(0x80, n);
  }

  /** Stores the top of stack in the next memo slot (BINPUT, or LONG_BINPUT past 255). */
  put(): number {
    const i = this.memoNext++;
    if (i < 256) this.raw(0x71, i);
    else {
      this.raw(0x72);
      this.u32(i);
    }
    return i;
  }

  get(i: number): this {
    if (i < 256) return this.raw(0x68, i);
    this.raw(0x6a);
    this.u32(i);
    return this;
  }

  /** Emits an object once and refers to it through the memo afterwards (Python object identity). */
  shared(token: string, emit: () => void): this {
    const i = this.memo.get(token);
    if (i !== undefined) return this.get(i);
    emit();
    this.memo.set(token, this.put());
    return this;
  }

  global(module: string, name: string): this {
    return this.shared(`global:${module}.${name}`, () => this.raw(0x63).ascii(`${module}\n${name}\n`));
  }

  /** A str object; `identity` makes repeated uses of one Python object BINGETs. */
  str(s: string, identity?: string): this {
    const emit = () => {
      const b = Buffer.from(s, 'utf8');
      this.raw(0x58);
      this.u32(b.length);
      for (const c of b) this.bytes.push(c);
    };
    if (identity !== undefined) return this.shared(`str:${identity}`, emit);
    emit();
    this.put();
    return this;
  }

  int(v: number): this {
    if (v >= 0 && v <= 0xff) return this.raw(0x4b, v);
    if (v >= 0 && v <= 0xffff) return this.raw(0x4d, v, v >>> 8);
    if (v >= -0x80000000 && v <= 0x7fffffff) {
      this.raw(0x4a);
      this.u32(v >>> 0);
      return this;
    }
    // LONG1: minimal little-endian two's complement.
    let x = BigInt(v);
    const out: number[] = [];
    for (;;) {
      out.push(Number(x & 0xffn));
      x >>= 8n;
      const sign = out[out.length - 1]! & 0x80;
      if ((x === 0n && !sign) || (x === -1n && sign)) break;
    }
    return this.raw(0x8a, out.length, ...out);
  }

  bool(v: boolean): this {
    return this.raw(v ? 0x88 : 0x89);
  }

  none(): this {
    return this.raw(0x4e);
  }

  mark(): this {
    return this.raw(0x28);
  }

  /** Closes a tuple of n items (pushed after a mark() when n > 3); memoized like CPython's. */
  tuple(n: number): this {
    if (n === 0) return this.raw(0x29);
    this.raw(n === 1 ? 0x85 : n === 2 ? 0x86 : n === 3 ? 0x87 : 0x74);
    this.put();
    return this;
  }

  intTuple(values: number[]): this {
    if (values.length > 3) this.mark();
    for (const v of values) this.int(v);
    return this.tuple(values.length);
  }

  reduce(): this {
    this.raw(0x52);
    this.put();
    return this;
  }

  emptyDict(): this {
    this.raw(0x7d);
    this.put();
    return this;
  }

  /** collections.OrderedDict() as CPython pickles it: GLOBAL, EMPTY_TUPLE, REDUCE. */
  orderedDict(): this {
    this.global('collections', 'OrderedDict');
    this.raw(0x29);
    return this.reduce();
  }

  /** Dict items of an exact dict (batch_dict_exact): one item -> SETITEM, else MARK...SETITEMS per 1000. */
  exactDictItems(items: (() => void)[]): this {
    if (items.length === 0) return this;
    if (items.length === 1) {
      items[0]!();
      return this.raw(0x73);
    }
    let i = 0;
    let count: number;
    do {
      count = 0;
      this.mark();
      while (i < items.length) {
        items[i++]!();
        if (++count === 1000) break;
      }
      this.raw(0x75);
    } while (count === 1000);
    return this;
  }

  /** Dict items through an iterator (batch_dict, used for OrderedDict): a lone item -> SETITEM. */
  iterDictItems(items: (() => void)[]): this {
    let i = 0;
    let count: number;
    do {
      count = 0;
      if (i >= items.length) break;
      if (items.length - i === 1) {
        items[i++]!();
        this.raw(0x73);
        break;
      }
      this.mark();
      while (i < items.length) {
        items[i++]!();
        if (++count === 1000) break;
      }
      this.raw(0x75);
    } while (count === 1000);
    return this;
  }

  stop(): Uint8Array {
    this.raw(0x2e);
    return Uint8Array.from(this.bytes);
  }
}

export interface TorchSaveOptions {
  /** The zip's top folder; torch uses the file name without its extension ("archive" for buffers). */
  archiveName?: string;
  /** 'OrderedDict' (what state_dict() returns, the default) or a plain dict. */
  container?: 'OrderedDict' | 'dict';
  /**
   * state_dict()._metadata as [module prefix, version] pairs; by default '' plus every module
   * prefix of the tensor names in order, version 1. null leaves it out (a plain OrderedDict).
   */
  metadata?: [string, number][] | null;
  /** Write the `byteorder` record (PyTorch >= 1.13 does). Default true. */
  byteorder?: boolean;
  /** Write `.data/serialization_id` (PyTorch >= 2.1 does). Default true. */
  serializationId?: boolean;
  /** Write `.format_version` and `.storage_alignment` and order storages by key number (PyTorch >= 2.7). Default false. */
  formatVersion?: boolean;
  /** Replace the pickle (for hostile-file tests). */
  pickle?: Uint8Array;
  /** Records appended after the storages (for hostile-file tests). */
  extraRecords?: { name: string; data: Uint8Array }[];
}

function defaultMetadata(names: string[]): [string, number][] {
  const seen = new Set<string>(['']);
  const out: [string, number][] = [['', 1]];
  for (const name of names) {
    const parts = name.split('.');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('.');
      if (!seen.has(prefix)) {
        seen.add(prefix);
        out.push([prefix, 1]);
      }
    }
  }
  return out;
}

/** The state dict pickle torch.save writes, and the storages in key order ("0", "1", ...). */
export function encodeStateDictPickle(entries: [string, PtTensor][], opts: TorchSaveOptions = {}): { pickle: Uint8Array; storages: PtStorage[] } {
  const w = new PickleWriter().proto(2);
  const keys = new Map<PtStorage, string>();
  const storages: PtStorage[] = [];
  const ordered = (opts.container ?? 'OrderedDict') === 'OrderedDict';

  const writeTensor = (t: PtTensor, requiresGrad: boolean) => {
    const s = t.storage;
    const elementBytes = { f64: 8, f32: 4, f16: 2, bf16: 2, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1 }[s.dtype];
    let key = keys.get(s);
    if (key === undefined) {
      key = String(keys.size);
      keys.set(s, key);
      storages.push(s);
    }
    const location = s.location ?? 'cpu';
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.mark();
    // persistent id ('storage', <Storage type>, key, location, numel), then BINPERSID
    w.mark();
    w.str('storage', 'storage');
    w.global('torch', STORAGE_TYPE[s.dtype]);
    w.str(key, `key:${key}`);
    // 'cpu' is one interned constant in torch; other tags are built per call.
    if (location === 'cpu') w.str(location, 'cpu');
    else w.str(location);
    w.int(s.bytes.length / elementBytes);
    w.tuple(5);
    w.raw(0x51);
    w.int(t.offset ?? 0);
    w.intTuple(t.shape);
    w.intTuple(t.stride ?? contiguous(t.shape));
    w.bool(requiresGrad);
    w.orderedDict();
    w.tuple(6);
    w.reduce();
  };

  const items = entries.map(([name, t]) => () => {
    w.str(name);
    if (t.parameter) {
      w.global('torch._utils', '_rebuild_parameter');
      writeTensor(t, false);
      w.bool(t.requiresGrad ?? true);
      w.orderedDict();
      w.tuple(3);
      w.reduce();
    } else {
      writeTensor(t, t.requiresGrad ?? false);
    }
  });

  if (ordered) {
    w.orderedDict();
    w.iterDictItems(items);
    const metadata = opts.metadata === undefined ? defaultMetadata(entries.map(([n]) => n)) : opts.metadata;
    if (metadata) {
      // OrderedDict.__reduce__ state: {'_metadata': OrderedDict(prefix -> {'version': v})}, applied by BUILD.
      w.emptyDict();
      w.exactDictItems([
        () => {
          w.str('_metadata', '_metadata');
          w.orderedDict();
          w.iterDictItems(
            metadata.map(([prefix, version]) => () => {
              w.str(prefix);
              w.emptyDict();
              w.exactDictItems([() => (w.str('version', 'version'), w.int(version))]);
            }),
          );
        },
      ]);
      w.raw(0x62);
    }
  } else {
    w.emptyDict();
    w.exactDictItems(items);
  }
  return { pickle: w.stop(), storages };
}

// ---------------------------------------------------------------------------------------------
// Zip

/** The archive folder name torch derives from a path: the base name without its last extension. */
export function torchArchiveName(path: string): string {
  const base = path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
  const dot = base.lastIndexOf('.');
  return dot >= 0 ? base.slice(0, dot) : base;
}

const u16 = (v: number) => [v & 0xff, (v >>> 8) & 0xff];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const u64 = (v: number) => [...u32(v >>> 0), ...u32(Math.floor(v / 2 ** 32))];

/**
 * A zip exactly as PyTorch's writer lays it out, records in the order given under `archiveName/`
 * (null: names used as given, for hostile-file tests).
 */
export function torchZip(archiveName: string | null, records: { name: string; data: Uint8Array }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: number[][] = [];
  let cursor = 0;
  const push = (b: Uint8Array | number[]) => {
    const u = b instanceof Uint8Array ? b : Uint8Array.from(b);
    parts.push(u);
    cursor += u.length;
  };
  for (const r of records) {
    const name = Buffer.from(archiveName === null ? r.name : `${archiveName}/${r.name}`, 'utf8');
    if (r.data.length >= 0xffffffff || cursor >= 0xffffffff) throw new Error('the test writer does not write zip64 entries');
    // Pad so the data starts on a 64-byte boundary: local header (30) + name + 4-byte extra header.
    const start = cursor + 30 + name.length + 4;
    const pad = (64 - (start % 64)) % 64;
    const crc = crc32(r.data);
    const offset = cursor;
    push([...u32(0x04034b50), ...u16(0), ...u16(0x0808), ...u16(0), ...u16(0), ...u16(0), ...u32(0), ...u32(0), ...u32(0), ...u16(name.length), ...u16(pad + 4)]);
    push(name);
    push([0x46, 0x42, ...u16(pad), ...new Array<number>(pad).fill(0x5a)]);
    push(r.data);
    push([...u32(0x08074b50), ...u32(crc), ...u32(r.data.length), ...u32(r.data.length)]);
    central.push([
      ...u32(0x02014b50), ...u16(0), ...u16(0), ...u16(0x0808), ...u16(0), ...u16(0), ...u16(0), ...u32(crc),
      ...u32(r.data.length), ...u32(r.data.length), ...u16(name.length), ...u16(0), ...u16(0), ...u16(0), ...u16(0),
      ...u32(0), ...u32(offset), ...name,
    ]);
  }
  const cdOffset = cursor;
  for (const c of central) push(c);
  const cdSize = cursor - cdOffset;
  const n = records.length;
  const zip64Offset = cursor;
  push([...u32(0x06064b50), ...u64(44), ...u16(0x031e), ...u16(0x002d), ...u32(0), ...u32(0), ...u64(n), ...u64(n), ...u64(cdSize), ...u64(cdOffset)]);
  push([...u32(0x07064b50), ...u32(0), ...u64(zip64Offset), ...u32(1)]);
  push([...u32(0x06054b50), ...u16(0), ...u16(0), ...u16(n), ...u16(n), ...u32(cdSize), ...u32(cdOffset), ...u16(0)]);
  const out = new Uint8Array(cursor);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// libstdc++'s std::hash<std::string> (_Hash_bytes, 64-bit) and unordered_set iteration order,
// which decide the first half of torch's serialization id.
const M64 = (1n << 64n) - 1n;
const MUL = (0xc6a4a793n << 32n) + 0x5bd1e995n;
const shiftMix = (v: bigint) => v ^ (v >> 47n);

function hashBytes(bytes: Uint8Array, seed = 0xc70f6907n): bigint {
  const len = bytes.length;
  const aligned = len & ~7;
  let hash = (seed ^ ((BigInt(len) * MUL) & M64)) & M64;
  const load = (from: number, n: number) => {
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[from + i]!);
    return v;
  };
  for (let p = 0; p < aligned; p += 8) {
    const data = (shiftMix((load(p, 8) * MUL) & M64) * MUL) & M64;
    hash = ((hash ^ data) * MUL) & M64;
  }
  if (len & 7) hash = ((hash ^ load(aligned, len & 7)) * MUL) & M64;
  hash = (shiftMix(hash) * MUL) & M64;
  return shiftMix(hash);
}

const hashCombine = (seed: bigint, value: bigint) => (seed ^ ((value + 0x9e3779b9n + ((seed << 6n) & M64) + (seed >> 2n)) & M64)) & M64;

// libstdc++ _Prime_rehash_policy bucket counts (its prime table, first entries).
const PRIMES = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 103, 109, 113, 127, 137, 139, 149, 157, 167, 179, 193, 199, 211, 227, 241, 257, 277, 293, 313, 337, 359, 383, 409, 439, 467, 503, 541, 577, 619, 661, 709, 761, 823, 887, 953, 1031, 1109, 1193, 1289, 1381, 1493, 1613, 1741, 1879, 2029];
const FAST_BUCKETS = [2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13];

function nextBucketCount(n: number): number {
  if (n < FAST_BUCKETS.length) return FAST_BUCKETS[n]!;
  const p = PRIMES.slice(6).find((x) => x >= n);
  if (p === undefined) throw new Error('too many records for the serialization id emulation');
  return p;
}

/** Iteration order of a std::unordered_set<std::string> filled in `names` order. */
function unorderedSetOrder(names: string[]): { name: string; hash: bigint }[] {
  let list: { name: string; hash: bigint }[] = [];
  let buckets = 1;
  let nextResize = 0;
  const insert = (l: typeof list, node: { name: string; hash: bigint }, count: number) => {
    const b = node.hash % BigInt(count);
    const at = l.findIndex((x) => x.hash % BigInt(count) === b);
    l.splice(at < 0 ? 0 : at, 0, node);
  };
  for (const name of names) {
    const elements = list.length;
    if (elements + 1 > nextResize) {
      const minBuckets = Math.max(elements + 1, nextResize ? 0 : 11);
      if (minBuckets >= buckets) {
        buckets = nextBucketCount(Math.max(Math.floor(minBuckets) + 1, buckets * 2));
        nextResize = buckets;
        const rehashed: typeof list = [];
        for (const node of list) insert(rehashed, node, buckets);
        list = rehashed;
      } else {
        nextResize = buckets;
      }
    }
    insert(list, { name, hash: hashBytes(Buffer.from(name, 'utf8')) }, buckets);
  }
  return list;
}

/**
 * torch's `.data/serialization_id`: 20 digits of a combined hash of the record names (in
 * unordered_set order) and 20 digits of the combined CRC-32s of the records (in write order).
 */
export function serializationId(recordNames: string[], crcs: number[]): string {
  let names = 0n;
  for (const { hash } of unorderedSetOrder(recordNames)) names = hashCombine(names, hash);
  let data = 0n;
  for (const c of crcs) data = hashCombine(data, BigInt(c >>> 0));
  return names.toString().padStart(20, '0') + data.toString().padStart(20, '0');
}

/** The bytes torch.save(state_dict, <file named after archiveName>) writes. */
export function encodeTorchSave(entries: [string, PtTensor][], opts: TorchSaveOptions = {}): Uint8Array {
  const { pickle, storages } = encodeStateDictPickle(entries, opts);
  const records: { name: string; data: Uint8Array }[] = [{ name: 'data.pkl', data: opts.pickle ?? pickle }];
  const byteorder = opts.byteorder ?? true;
  const withId = opts.serializationId ?? true;
  if (opts.formatVersion) {
    records.push({ name: '.format_version', data: Buffer.from('1') });
    records.push({ name: '.storage_alignment', data: Buffer.from('64') });
  }
  if (byteorder) records.push({ name: 'byteorder', data: Buffer.from('little') });
  const keyed = storages.map((s, i) => ({ key: String(i), s }));
  // Before .format_version, storages were written in sorted key order ("0", "1", "10", "2", ...).
  if (!opts.formatVersion) keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const { key, s } of keyed) records.push({ name: `data/${key}`, data: s.bytes });
  for (const r of opts.extraRecords ?? []) records.push(r);
  records.push({ name: 'version', data: Buffer.from('3\n') });
  if (withId) {
    // Writers that add the id also add byteorder at the end when the caller disabled it.
    if (!byteorder) records.push({ name: 'byteorder', data: Buffer.from('little') });
    const id = serializationId(records.map((r) => r.name), records.map((r) => crc32(r.data)));
    records.push({ name: '.data/serialization_id', data: Buffer.from(id) });
  }
  return torchZip(opts.archiveName ?? 'archive', records);
}

/** Writes `entries` to `path` as torch.save(state_dict, path) would. */
export function writeTorchSave(path: string, entries: [string, PtTensor][], opts: TorchSaveOptions = {}): Uint8Array {
  const bytes = encodeTorchSave(entries, { archiveName: torchArchiveName(path), ...opts });
  writeFileSync(path, bytes);
  return bytes;
}
