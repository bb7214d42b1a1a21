// Writes safetensors files (single, or shards plus model.safetensors.index.json) for generated
// checkpoints. Written independently of the engine's reader (../safetensors.ts) so that each checks
// the other; test/support/safetensors-read.ts reads them back for the test tooling.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DTYPE_BYTES, f32ToBf16Bits, f32ToF16Bits, SAFETENSORS_FLOAT_DTYPES, type SafetensorsFloatDType } from '../../dtype';

/**
 * One tensor to write. `data` is float32 values in row-major order; a function yielding chunks
 * lets multi-GB checkpoints be written without holding a whole tensor set in memory.
 */
export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsFloatDType;
  shape: number[];
  data: Float32Array | (() => Iterable<Float32Array>);
}

export function encodeAs(dtype: SafetensorsFloatDType, x: Float32Array): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  const out = new Uint16Array(x.length);
  const conv = dtype === 'BF16' ? f32ToBf16Bits : f32ToF16Bits;
  for (let i = 0; i < x.length; i++) out[i] = conv(x[i]!);
  return new Uint8Array(out.buffer);
}

function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function tensorByteLength(t: Pick<SafetensorsTensor, 'dtype' | 'shape'>): number {
  return elementCount(t.shape) * DTYPE_BYTES[SAFETENSORS_FLOAT_DTYPES[t.dtype]];
}

function* chunksOf(t: SafetensorsTensor): Iterable<Float32Array> {
  if (t.data instanceof Float32Array) yield t.data;
  else yield* t.data();
}

/** Writes one safetensors file; returns the number of tensor data bytes written. */
export function writeSafetensors(path: string, tensors: SafetensorsTensor[], metadata: Record<string, string> = { format: 'pt' }): number {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name in header) throw new Error(`duplicate or reserved tensor name ${t.name}`);
    const len = tensorByteLength(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  // The format pads the header with spaces so the data starts 8-byte aligned.
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, prefix);
    writeSync(fd, headerBytes);
    for (const t of tensors) {
      let written = 0;
      for (const chunk of chunksOf(t)) {
        const bytes = encodeAs(t.dtype, chunk);
        writeSync(fd, bytes);
        written += chunk.length;
      }
      if (written !== elementCount(t.shape)) {
        throw new Error(`tensor ${t.name}: got ${written} values for shape [${t.shape.join(', ')}]`);
      }
    }
  } finally {
    closeSync(fd);
  }
  return offset;
}

export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/**
 * Writes `tensors` as `shards` files of roughly equal size (tensor order kept) plus
 * model.safetensors.index.json, as transformers' save_pretrained does for large checkpoints.
 */
export function writeShardedSafetensors(dir: string, tensors: SafetensorsTensor[], shards: number): string[] {
  if (!Number.isInteger(shards) || shards < 1) throw new Error(`shards must be a positive integer, got ${shards}`);
  if (shards > tensors.length) throw new Error(`cannot split ${tensors.length} tensors into ${shards} shards`);
  mkdirSync(dir, { recursive: true });
  const total = tensors.reduce((s, t) => s + tensorByteLength(t), 0);
  const groups: SafetensorsTensor[][] = Array.from({ length: shards }, () => []);
  let acc = 0;
  let g = 0;
  tensors.forEach((t, i) => {
    // Advance at each size boundary, or when the tensors left are only enough for one per shard.
    const mustAdvance = tensors.length - i <= shards - g - 1;
    if (g < shards - 1 && groups[g]!.length > 0 && (mustAdvance || acc >= (total * (g + 1)) / shards)) g++;
    groups[g]!.push(t);
    acc += tensorByteLength(t);
  });
  const names: string[] = [];
  const weightMap: Record<string, string> = {};
  groups.forEach((group, i) => {
    const name = shardFileName(i, shards);
    writeSafetensors(join(dir, name), group);
    for (const t of group) weightMap[t.name] = name;
    names.push(name);
  });
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2) + '\n');
  return names;
}
