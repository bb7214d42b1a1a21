// Reads the initializers (weights) of an .onnx file for `recursivemas inspect`: a minimal protobuf
// decoder for ModelProto -> graph -> initializer (TensorProto), field numbers from onnx/onnx.proto.
// Data may be inline (raw_data or the typed *_data fields) or in an external-data side file, which
// must stay inside the model's folder and is checked against its real length before it is read.
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../api';
import { resolveInside } from '../safe-path';
import { DTYPE_BYTES, elementCount, StridedTensor, type DType, type LoadedTensor } from '../tensor';

/** ONNX TensorProto.DataType -> our dtype names (the types checkpoints use). */
const ONNX_DTYPES: Readonly<Record<number, DType>> = {
  1: 'f32', 2: 'u8', 3: 'i8', 5: 'i16', 6: 'i32', 7: 'i64', 9: 'bool', 10: 'f16', 11: 'f64', 16: 'bf16',
};
const ONNX_TYPE_NAMES: Readonly<Record<number, string>> = {
  4: 'UINT16', 8: 'STRING', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64', 15: 'COMPLEX128', 17: 'FLOAT8E4M3FN',
  18: 'FLOAT8E4M3FNUZ', 19: 'FLOAT8E5M2', 20: 'FLOAT8E5M2FNUZ', 21: 'UINT4', 22: 'INT4', 23: 'FLOAT4E2M1',
};
const MAX_MODEL_BYTES = 2 ** 31; // protobuf's own limit for one message

class ProtoError extends Error {}

/** Cursor over one protobuf message. */
class Proto {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  more(): boolean {
    return this.pos < this.end;
  }

  private byte(): number {
    if (this.pos >= this.end) throw new ProtoError('a value runs past the end of its message');
    return this.buf[this.pos++]!;
  }

  /** A varint as a number; values past 2^53 (including negative int64s) throw. */
  uint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      v += (b & 0x7f) * scale;
      if (!(b & 0x80)) {
        if (!Number.isSafeInteger(v)) throw new ProtoError('an integer is out of range');
        return v;
      }
      scale *= 128;
    }
    throw new ProtoError('a varint is longer than 10 bytes');
  }

  /** A varint as a signed 64-bit integer. */
  int64(): bigint {
    let v = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      v |= BigInt(b & 0x7f) << BigInt(7 * i);
      if (!(b & 0x80)) return BigInt.asIntN(64, v);
    }
    throw new ProtoError('a varint is longer than 10 bytes');
  }

  tag(): [field: number, wire: number] {
    const t = this.uint();
    return [Math.floor(t / 8), t % 8];
  }

  /** A length-delimited field as a sub-message cursor. */
  sub(): Proto {
    const n = this.uint();
    if (this.pos + n > this.end) throw new ProtoError(`a field claims ${n} bytes but its message has ${this.end - this.pos} left`);
    const p = new Proto(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return p;
  }

  bytes(): Uint8Array {
    const p = this.sub();
    return this.buf.subarray(p.pos, p.end);
  }

  string(): string {
    return new TextDecoder().decode(this.bytes());
  }

  fixed(n: 4 | 8): Uint8Array {
    if (this.pos + n > this.end) throw new ProtoError('a fixed-width value runs past the end of its message');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.int64();
    else if (wire === 1) this.fixed(8);
    else if (wire === 2) this.sub();
    else if (wire === 5) this.fixed(4);
    else throw new ProtoError(`wire type ${wire} is not supported`);
  }

  /** Repeated scalar field: packed (wire 2) or one element (its own wire type). */
  repeated(wire: number, single: number, read: (p: Proto) => void): void {
    if (wire === 2) {
      const p = this.sub();
      while (p.more()) read(p);
    } else if (wire === single) {
      read(this);
    } else {
      throw new ProtoError(`a repeated field has wire type ${wire}`);
    }
  }
}

interface RawInitializer {
  name: string;
  dataType: number;
  dims: number[];
  raw?: Uint8Array;
  floats: Uint8Array[];
  doubles: Uint8Array[];
  int32s: bigint[];
  int64s: bigint[];
  external: Map<string, string>;
  location: number;
  segmented: boolean;
}

function parseTensor(p: Proto): RawInitializer {
  const t: RawInitializer = { name: '', dataType: 0, dims: [], floats: [], doubles: [], int32s: [], int64s: [], external: new Map(), location: 0, segmented: false };
  while (p.more()) {
    const [field, wire] = p.tag();
    switch (field) {
      case 1:
        p.repeated(wire, 0, (q) => {
          const d = q.int64();
          if (d < 0n || d > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtoError(`a dimension is ${d}`);
          t.dims.push(Number(d));
        });
        break;
      case 2:
        t.dataType = p.uint();
        break;
      case 3:
        t.segmented = true;
        p.skip(wire);
        break;
      case 4:
        p.repeated(wire, 5, (q) => t.floats.push(q.fixed(4)));
        break;
      case 5:
        p.repeated(wire, 0, (q) => t.int32s.push(q.int64()));
        break;
      case 7:
        p.repeated(wire, 0, (q) => t.int64s.push(q.int64()));
        break;
      case 8:
        t.name = p.string();
        break;
      case 9:
        t.raw = p.bytes();
        break;
      case 10:
        p.repeated(wire, 1, (q) => t.doubles.push(q.fixed(8)));
        break;
      case 13: {
        const e = p.sub();
        let key = '';
        let value = '';
        while (e.more()) {
          const [f, w] = e.tag();
          if (f === 1 && w === 2) key = e.string();
          else if (f === 2 && w === 2) value = e.string();
          else e.skip(w);
        }
        t.external.set(key, value);
        break;
      }
      case 14:
        t.location = p.uint();
        break;
      default:
        p.skip(wire);
    }
  }
  return t;
}

function parseModel(buf: Uint8Array): RawInitializer[] {
  const model = new Proto(buf);
  const out: RawInitializer[] = [];
  let graphs = 0;
  while (model.more()) {
    const [field, wire] = model.tag();
    if (field === 7 && wire === 2) {
      graphs++;
      const g = model.sub();
      while (g.more()) {
        const [f, w] = g.tag();
        if (f === 5 && w === 2) out.push(parseTensor(g.sub()));
        else g.skip(w);
      }
    } else {
      model.skip(wire);
    }
  }
  if (graphs === 0) throw new ProtoError('it has no graph');
  return out;
}

/** Encodes the typed *_data fields as little-endian element bytes of `dtype`. */
function typedBytes(t: RawInitializer, dtype: DType, count: number, fail: (what: string) => UserError): Uint8Array | undefined {
  const check = (n: number, field: string) => {
    if (n !== count) throw fail(`its ${field} has ${n} values but the shape needs ${count}`);
  };
  if (t.floats.length) {
    if (dtype !== 'f32') throw fail(`it stores float_data for a ${dtype} tensor`);
    check(t.floats.length, 'float_data');
    const out = new Uint8Array(count * 4);
    t.floats.forEach((b, i) => out.set(b, i * 4));
    return out;
  }
  if (t.doubles.length) {
    if (dtype !== 'f64') throw fail(`it stores double_data for a ${dtype} tensor`);
    check(t.doubles.length, 'double_data');
    const out = new Uint8Array(count * 8);
    t.doubles.forEach((b, i) => out.set(b, i * 8));
    return out;
  }
  if (t.int64s.length) {
    if (dtype !== 'i64') throw fail(`it stores int64_data for a ${dtype} tensor`);
    check(t.int64s.length, 'int64_data');
    return new Uint8Array(BigInt64Array.from(t.int64s).buffer);
  }
  if (t.int32s.length) {
    check(t.int32s.length, 'int32_data');
    const v = t.int32s.map((x) => Number(BigInt.asIntN(32, x)));
    let arr: ArrayBufferView;
    switch (dtype) {
      case 'i32':
        arr = Int32Array.from(v);
        break;
      case 'i16':
        arr = Int16Array.from(v);
        break;
      case 'i8':
        arr = Int8Array.from(v);
        break;
      case 'u8':
      case 'bool':
        arr = Uint8Array.from(v);
        break;
      case 'f16':
      case 'bf16':
        // Half and bfloat16 values travel as their 16-bit patterns.
        arr = Uint16Array.from(v);
        break;
      default:
        throw fail(`it stores int32_data for a ${dtype} tensor`);
    }
    return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  }
  return undefined;
}

/** All initializers of an ONNX model, in file order. */
export async function readOnnxInitializers(path: string): Promise<Map<string, LoadedTensor>> {
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`Cannot open ${path}: ${e.code ?? e.message}.`, 'model-missing');
  });
  if (info.size > MAX_MODEL_BYTES) throw new UserError(`${path} is ${info.size} bytes, more than an ONNX model can be (2 GiB); it is not a valid model.`, 'model-invalid');
  const buf = new Uint8Array(await readFile(path));
  let raws: RawInitializer[];
  try {
    raws = parseModel(buf);
  } catch (e) {
    if (e instanceof ProtoError) throw new UserError(`${path} is not a valid ONNX model: ${e.message}.`, 'model-invalid');
    throw e;
  }

  const folder = dirname(path);
  const handles = new Map<string, { handle: FileHandle; size: number }>();
  const out = new Map<string, LoadedTensor>();
  try {
    for (const t of raws) {
      const label = `${path}: initializer "${t.name}"`;
      const fail = (what: string) => new UserError(`${label} is invalid: ${what}.`, 'model-invalid');
      if (out.has(t.name)) throw fail('the name appears twice');
      const dtype = ONNX_DTYPES[t.dataType];
      if (!dtype) {
        throw new UserError(`${label} has the ONNX type ${ONNX_TYPE_NAMES[t.dataType] ?? t.dataType}, which inspect does not read.`, 'unsupported');
      }
      if (t.segmented) throw new UserError(`${label} is a segmented tensor, which inspect does not read.`, 'unsupported');
      const count = elementCount(t.dims);
      if (count < 0) throw fail(`its shape [${t.dims.join(', ')}] is absurd`);
      const want = count * DTYPE_BYTES[dtype];
      let bytes: Uint8Array;
      if (t.location === 1) {
        bytes = await readExternal(t, want, folder, handles, label, fail);
      } else if (t.raw) {
        if (t.raw.length !== want) throw fail(`raw_data has ${t.raw.length} bytes but the shape needs ${want}`);
        bytes = t.raw;
      } else {
        const typed = typedBytes(t, dtype, count, fail);
        if (!typed && count > 0) throw fail('it has no data');
        bytes = typed ?? new Uint8Array(0);
      }
      out.set(t.name, new StridedTensor(t.name, dtype, t.dims, bytes));
    }
  } finally {
    for (const { handle } of handles.values()) await handle.close();
  }
  return out;
}

async function readExternal(
  t: RawInitializer,
  want: number,
  folder: string,
  handles: Map<string, { handle: FileHandle; size: number }>,
  label: string,
  fail: (what: string) => UserError,
): Promise<Uint8Array> {
  const location = t.external.get('location');
  if (location === undefined) throw fail('its data is external but it names no file');
  const file = resolveInside(folder, location, `${label} (external data)`);
  const number = (key: string, fallback?: number): number => {
    const s = t.external.get(key);
    if (s === undefined) {
      if (fallback === undefined) throw fail(`its external data has no ${key}`);
      return fallback;
    }
    if (!/^\d{1,16}$/.test(s) || !Number.isSafeInteger(Number(s))) throw fail(`its external ${key} "${s}" is not a byte count`);
    return Number(s);
  };
  const offset = number('offset', 0);
  const length = number('length', want);
  if (length !== want) throw fail(`its external data is ${length} bytes but the shape needs ${want}`);
  let f = handles.get(file);
  if (!f) {
    const handle = await open(file, 'r').catch((e: NodeJS.ErrnoException) => {
      throw new UserError(`${label} keeps its data in ${location}, which cannot be opened (${e.code ?? e.message}).`, 'model-missing');
    });
    f = { handle, size: (await handle.stat()).size };
    handles.set(file, f);
  }
  if (offset + length > f.size) {
    throw fail(`its data spans bytes ${offset}..${offset + length} of ${location}, which has only ${f.size} bytes (truncated file?)`);
  }
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await f.handle.read(bytes, done, length - done, offset + done);
    if (bytesRead === 0) throw fail(`${location} ends early`);
    done += bytesRead;
  }
  return bytes;
}
