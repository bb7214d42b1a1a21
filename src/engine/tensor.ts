// Tensors as weight files hold them, whatever the format (.pt, ONNX initializers): a dtype, a
// shape, and bytes viewed through an offset and strides, decoded to float32 or float64 on demand.
import { endianness } from 'node:os';
import { DTYPE_BYTES, toFloat32, type DType } from './dtype';

export type { DType };
export { DTYPE_BYTES };

export interface LoadedTensor {
  name: string;
  dtype: DType;
  shape: number[];
  /** values in logical (row-major) order, converted to float64-safe numbers */
  toFloat32(): Float32Array;
}

/** The most elements one tensor may have; shapes beyond it are treated as corrupt, not allocated. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

if (endianness() !== 'LE') {
  // Storages are little-endian and decoded through typed arrays, which use the host's order.
  throw new Error('RecursiveMAS reads weight files on little-endian hosts only.');
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

/** Element count of a shape, or -1 when it exceeds MAX_TENSOR_ELEMENTS. */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > MAX_TENSOR_ELEMENTS) return shape.includes(0) ? 0 : -1;
  }
  return n;
}

/** Decodes `bytes` (a whole number of little-endian elements) into float32 or float64 values. */
export function decodeContiguous(dtype: DType, bytes: Uint8Array, wide: boolean): Float32Array | Float64Array {
  const size = DTYPE_BYTES[dtype];
  const count = Math.floor(bytes.byteLength / size);
  if (!wide && (dtype === 'f16' || dtype === 'bf16')) return toFloat32(dtype, bytes.subarray(0, count * size));
  const src = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const out = wide ? new Float64Array(count) : new Float32Array(count);
  const buf = src.buffer;
  const at = src.byteOffset;
  switch (dtype) {
    case 'f32':
    case 'f16':
    case 'bf16': {
      const f = dtype === 'f32' ? new Float32Array(buf, at, count) : toFloat32(dtype, src.subarray(0, count * size));
      out.set(f);
      break;
    }
    case 'f64':
      out.set(new Float64Array(buf, at, count));
      break;
    case 'i64': {
      const a = new BigInt64Array(buf, at, count);
      for (let i = 0; i < count; i++) out[i] = Number(a[i]!);
      break;
    }
    case 'i32':
      out.set(new Int32Array(buf, at, count));
      break;
    case 'i16':
      out.set(new Int16Array(buf, at, count));
      break;
    case 'i8':
      out.set(new Int8Array(buf, at, count));
      break;
    case 'u8':
      out.set(new Uint8Array(buf, at, count));
      break;
    case 'bool': {
      const a = new Uint8Array(buf, at, count);
      for (let i = 0; i < count; i++) out[i] = a[i] ? 1 : 0;
      break;
    }
  }
  return out;
}

/**
 * A tensor viewing part of a storage through an offset and strides (both in elements), the way
 * torch does: transposes, slices and several tensors sharing one storage all read correctly.
 */
export class StridedTensor implements LoadedTensor {
  readonly strides: number[];
  constructor(
    readonly name: string,
    readonly dtype: DType,
    readonly shape: number[],
    private readonly storage: Uint8Array,
    readonly offset = 0,
    strides?: number[],
  ) {
    this.strides = strides ?? contiguousStrides(shape);
  }

  get elements(): number {
    return elementCount(this.shape);
  }

  toFloat32(): Float32Array {
    return this.values(false) as Float32Array;
  }

  /** Like toFloat32, in float64 (exact for f64 and for integers up to 2^53). */
  toFloat64(): Float64Array {
    return this.values(true) as Float64Array;
  }

  private values(wide: boolean): Float32Array | Float64Array {
    const n = this.elements;
    if (n === 0) return wide ? new Float64Array(0) : new Float32Array(0);
    // Decode only the span of the storage the view touches, then gather in logical order.
    let span = 1;
    for (let i = 0; i < this.shape.length; i++) span += (this.shape[i]! - 1) * this.strides[i]!;
    const size = DTYPE_BYTES[this.dtype];
    const vals = decodeContiguous(this.dtype, this.storage.subarray(this.offset * size, (this.offset + span) * size), wide);
    if (span === n && isContiguous(this.shape, this.strides)) return vals;
    const out = wide ? new Float64Array(n) : new Float32Array(n);
    gather(vals, this.shape, this.strides, out);
    return out;
  }
}

function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

function gather(vals: Float32Array | Float64Array, shape: readonly number[], strides: readonly number[], out: Float32Array | Float64Array): void {
  const nd = shape.length;
  if (nd === 0) {
    out[0] = vals[0]!;
    return;
  }
  const last = nd - 1;
  const inner = shape[last]!;
  const step = strides[last]!;
  const index = new Array<number>(nd).fill(0);
  let o = 0;
  let base = 0;
  for (;;) {
    for (let j = 0, q = base; j < inner; j++, q += step) out[o++] = vals[q]!;
    let d = last - 1;
    for (; d >= 0; d--) {
      base += strides[d]!;
      if (++index[d]! < shape[d]!) break;
      base -= strides[d]! * shape[d]!;
      index[d] = 0;
    }
    if (d < 0) return;
  }
}

/** Euclidean norm without spreading the vector into arguments (a wide model would overflow the stack). */
export function vectorNorm(v: Float32Array): number {
  let sum = 0;
  for (const x of v) sum += x * x;
  return Math.sqrt(sum);
}
