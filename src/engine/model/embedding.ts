// The token-embedding table lives outside the graph, in its stored precision (a bf16 table is
// half the memory of a float32 copy), or for int4 models as int8 rows with one scale each, kept in
// a file beside the compiled graph and read a row at a time (the tables of a 150k-token team are
// 0.8 GB even at int8, most of what int4 leaves in memory; a lookup reads a few kB). A lookup
// converts only the rows it needs.
import { closeSync, existsSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import { UserError } from '../api';
import type { Checkpoint } from './checkpoint';
import { EMBED } from './checkpoint';
import { bf16ToF32, f16ToF32, toFloat32, type FloatDType } from '../dtype';

type Rows =
  | { kind: 'f32'; values: Float32Array }
  | { kind: 'bf16' | 'f16'; halves: Uint16Array }
  | { kind: 'int8'; values: Int8Array; scales: Float32Array }
  | { kind: 'int8-file'; fd: number; scales: Float32Array };

export interface EmbeddingOptions {
  /** Keep the table as int8 rows with a float32 scale each (absmax / 127), instead of as stored. */
  int8?: boolean;
  /**
   * With int8: the table's file (float32 scales, then int8 rows), written on first use. Lookups
   * then read rows from it instead of holding the table in memory.
   */
  int8File?: string;
}

export class EmbeddingTable {
  private constructor(
    private readonly rows: Rows,
    readonly vocabSize: number,
    readonly width: number,
    private readonly scale: number,
  ) {}

  static async load(checkpoint: Checkpoint, options: EmbeddingOptions = {}): Promise<EmbeddingTable> {
    const { vocabSize, hiddenSize, embeddingScale } = checkpoint.config;
    if (options.int8 && options.int8File) {
      const file = options.int8File;
      if (!existsSync(file) || statSync(file).size !== int8FileBytes(vocabSize, hiddenSize)) {
        const { dtype, bytes } = await checkpoint.weights.readStored(EMBED);
        const rows = quantizeRows(dtype, bytes, vocabSize, hiddenSize);
        writeInt8File(file, rows.values, rows.scales);
      }
      return new EmbeddingTable(openInt8File(file, vocabSize), vocabSize, hiddenSize, embeddingScale);
    }
    const { dtype, bytes } = await checkpoint.weights.readStored(EMBED);
    const rows = options.int8 ? quantizeRows(dtype, bytes, vocabSize, hiddenSize) : storedRows(dtype, bytes, vocabSize * hiddenSize);
    return new EmbeddingTable(rows, vocabSize, hiddenSize, embeddingScale);
  }

  /** Bytes the table holds in memory (a file-backed table: only its scales). */
  get bytes(): number {
    const r = this.rows;
    switch (r.kind) {
      case 'f32':
        return r.values.byteLength;
      case 'int8':
        return r.values.byteLength + r.scales.byteLength;
      case 'int8-file':
        return r.scales.byteLength;
      default:
        return r.halves.byteLength;
    }
  }

  /** Closes a file-backed table's file; lookups fail afterwards. */
  close(): void {
    if (this.rows.kind === 'int8-file' && this.rows.fd >= 0) {
      closeSync(this.rows.fd);
      this.rows.fd = -1;
    }
  }

  /** Embeds `ids` into `out` (length ids.length * width) and returns it. */
  lookup(ids: readonly number[], out = new Float32Array(ids.length * this.width)): Float32Array {
    const w = this.width;
    const r = this.rows;
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new UserError(`Token id ${id} is outside the model's vocabulary (size ${this.vocabSize}); the tokenizer does not fit this model.`, 'model-invalid');
      }
      const dst = out.subarray(i * w, (i + 1) * w);
      const from = id * w;
      if (r.kind === 'int8-file') {
        const row = new Int8Array(w);
        const read = readSync(r.fd, row, 0, w, r.scales.byteLength + from);
        if (read !== w) throw new UserError(`The embedding table file ended early at row ${id}; delete the model's compiled graphs (models rm) and load it again.`, 'model-invalid');
        const s = r.scales[id]! * this.scale;
        for (let j = 0; j < w; j++) dst[j] = row[j]! * s;
        return;
      }
      if (r.kind === 'int8') {
        const s = r.scales[id]! * this.scale;
        for (let j = 0; j < w; j++) dst[j] = r.values[from + j]! * s;
        return;
      }
      if (r.kind === 'f32') dst.set(r.values.subarray(from, from + w));
      else (r.kind === 'bf16' ? bf16ToF32 : f16ToF32)(r.halves.subarray(from, from + w), dst);
      if (this.scale !== 1) for (let j = 0; j < w; j++) dst[j]! *= this.scale;
    });
    return out;
  }

  /** One row as float32 (used by training-free link fits). */
  row(id: number): Float32Array {
    return this.lookup([id]);
  }
}

function storedRows(dtype: FloatDType, bytes: Uint8Array, count: number): Rows {
  const copy = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  if (dtype === 'f32') return { kind: 'f32', values: new Float32Array(copy.buffer, copy.byteOffset, count) };
  return { kind: dtype, halves: new Uint16Array(copy.buffer, copy.byteOffset, count) };
}

const int8FileBytes = (vocab: number, width: number): number => vocab * 4 + vocab * width;

/** Writes the int8 table (scales first) to a temporary file and renames it, so a partial file never looks whole. */
function writeInt8File(path: string, values: Int8Array, scales: Float32Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    for (const part of [new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength), new Uint8Array(values.buffer, values.byteOffset, values.byteLength)]) {
      for (let done = 0; done < part.length; ) done += writeSync(fd, part, done);
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function openInt8File(path: string, vocab: number): Rows {
  const fd = openSync(path, 'r');
  const scales = new Float32Array(vocab);
  if (readSync(fd, new Uint8Array(scales.buffer), 0, vocab * 4, 0) !== vocab * 4) {
    closeSync(fd);
    throw new UserError(`The embedding table file ${path} is cut short; delete the model's compiled graphs (models rm) and load it again.`, 'model-invalid');
  }
  return { kind: 'int8-file', fd, scales };
}

/** Symmetric int8 per row, converted from the stored bytes a few MB at a time. */
function quantizeRows(dtype: FloatDType, bytes: Uint8Array, vocab: number, width: number): { kind: 'int8'; values: Int8Array; scales: Float32Array } {
  const values = new Int8Array(vocab * width);
  const scales = new Float32Array(vocab);
  const size = dtype === 'f32' ? 4 : 2;
  const chunk = Math.max(1, Math.floor((4 << 20) / (width * 4)));
  for (let first = 0; first < vocab; first += chunk) {
    const count = Math.min(chunk, vocab - first);
    const f = toFloat32(dtype, bytes.subarray(first * width * size, (first + count) * width * size));
    for (let r = 0; r < count; r++) {
      let max = 0;
      for (let j = 0; j < width; j++) max = Math.max(max, Math.abs(f[r * width + j]!));
      const scale = max / 127;
      const inv = scale === 0 ? 0 : 1 / scale;
      scales[first + r] = scale;
      const base = (first + r) * width;
      for (let j = 0; j < width; j++) values[base + j] = Math.round(f[r * width + j]! * inv);
    }
  }
  return { kind: 'int8', values, scales };
}
