// The token-embedding table lives outside the graph, in its stored precision (a bf16 table is
// half the memory of a float32 copy), or for int4 models as int8 rows with one scale each (a
// quarter of float32: the tables of a 150k-token team are most of what int4 leaves); a lookup
// converts only the rows it needs.
import { UserError } from '../api';
import type { Checkpoint } from './checkpoint';
import { EMBED } from './checkpoint';
import { bf16ToF32, f16ToF32, toFloat32, type FloatDType } from './dtype';

type Rows =
  | { kind: 'f32'; values: Float32Array }
  | { kind: 'bf16' | 'f16'; halves: Uint16Array }
  | { kind: 'int8'; values: Int8Array; scales: Float32Array };

export interface EmbeddingOptions {
  /** Keep the table as int8 rows with a float32 scale each (absmax / 127), instead of as stored. */
  int8?: boolean;
}

export class EmbeddingTable {
  private constructor(
    private readonly rows: Rows,
    readonly vocabSize: number,
    readonly width: number,
    private readonly scale: number,
  ) {}

  static async load(checkpoint: Checkpoint, options: EmbeddingOptions = {}): Promise<EmbeddingTable> {
    const { dtype, bytes } = await checkpoint.weights.readStored(EMBED);
    const { vocabSize, hiddenSize, embeddingScale } = checkpoint.config;
    const rows = options.int8 ? quantizeRows(dtype, bytes, vocabSize, hiddenSize) : storedRows(dtype, bytes, vocabSize * hiddenSize);
    return new EmbeddingTable(rows, vocabSize, hiddenSize, embeddingScale);
  }

  /** Bytes the table holds. */
  get bytes(): number {
    const r = this.rows;
    return r.kind === 'f32' ? r.values.byteLength : r.kind === 'int8' ? r.values.byteLength + r.scales.byteLength : r.halves.byteLength;
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

/** Symmetric int8 per row, converted from the stored bytes a few MB at a time. */
function quantizeRows(dtype: FloatDType, bytes: Uint8Array, vocab: number, width: number): Rows {
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
