// Reads back what the generated checkpoints stored (trusted test files, so no hostile-input
// hardening beyond bounds): the values a bf16 or f16 weight holds, and every tensor of a folder.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { f32ToBf16Bits, f32ToF16Bits, type SafetensorsFloatDType } from '../../src/engine/dtype';

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

export function bf16BitsToF32(bits: number): number {
  scratchU32[0] = bits << 16;
  return scratchF32[0]!;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** The float32 values that bf16 storage of `x` represents. */
export function bf16Round(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = bf16BitsToF32(f32ToBf16Bits(x[i]!));
  return out;
}

/** The float32 values that f16 storage of `x` represents. */
export function f16Round(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f16BitsToF32(f32ToF16Bits(x[i]!));
  return out;
}

/** The values `dtype` storage keeps of `x` (F32: `x` itself). */
export function roundTo(dtype: SafetensorsFloatDType, x: Float32Array): Float32Array {
  return dtype === 'BF16' ? bf16Round(x) : dtype === 'F16' ? f16Round(x) : x;
}

export interface StoredTensorInfo {
  dtype: SafetensorsFloatDType;
  shape: number[];
  file: string;
  /** Absolute byte offset of the tensor's data in `file`. */
  start: number;
  byteLength: number;
}

/** Parses one safetensors header. */
export function readSafetensorsHeader(path: string): { tensors: Map<string, StoredTensorInfo>; metadata: Record<string, string> } {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const prefix = Buffer.alloc(8);
    readSync(fd, prefix, 0, 8, 0);
    const n = Number(prefix.readBigUInt64LE(0));
    if (n + 8 > size) throw new Error(`${path}: header length ${n} exceeds the file size ${size}`);
    const headerBytes = Buffer.alloc(n);
    readSync(fd, headerBytes, 0, n, 8);
    const header = JSON.parse(headerBytes.toString('utf8')) as Record<string, { dtype: SafetensorsFloatDType; shape: number[]; data_offsets: [number, number] }>;
    const tensors = new Map<string, StoredTensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') {
        metadata = v as unknown as Record<string, string>;
        continue;
      }
      const [b, e] = v.data_offsets;
      if (8 + n + e > size) throw new Error(`${path}: tensor ${name} runs past the end of the file`);
      tensors.set(name, { dtype: v.dtype, shape: v.shape, file: path, start: 8 + n + b, byteLength: e - b });
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

/** All tensors of a model folder (single model.safetensors or an index with shards). */
export function listModelTensors(dir: string): Map<string, StoredTensorInfo> {
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!existsSync(indexPath)) return readSafetensorsHeader(join(dir, 'model.safetensors')).tensors;
  const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map: Record<string, string> };
  const out = new Map<string, StoredTensorInfo>();
  for (const file of new Set(Object.values(index.weight_map))) {
    for (const [k, v] of readSafetensorsHeader(join(dir, file)).tensors) out.set(k, v);
  }
  return out;
}

/** Reads one tensor as float32 (decoding bf16/f16). */
export function readStoredTensor(info: StoredTensorInfo): Float32Array {
  const fd = openSync(info.file, 'r');
  try {
    const bytes = new Uint8Array(info.byteLength);
    let got = 0;
    while (got < bytes.length) {
      const n = readSync(fd, bytes, got, bytes.length - got, info.start + got);
      if (n === 0) throw new Error(`${info.file}: unexpected end of file`);
      got += n;
    }
    if (info.dtype === 'F32') return new Float32Array(bytes.buffer);
    const halves = new Uint16Array(bytes.buffer);
    const out = new Float32Array(halves.length);
    const conv = info.dtype === 'BF16' ? bf16BitsToF32 : f16BitsToF32;
    for (let i = 0; i < halves.length; i++) out[i] = conv(halves[i]!);
    return out;
  } finally {
    closeSync(fd);
  }
}
