// The token-embedding table lives outside the graph, in its stored precision (a bf16 table is
// half the memory of a float32 copy); a lookup converts only the rows it needs.
import { UserError } from '../api';
import type { Checkpoint } from './checkpoint';
import { EMBED } from './checkpoint';
import { bf16ToF32, f16ToF32, type FloatDType } from './dtype';

export class EmbeddingTable {
  private constructor(
    private readonly dtype: FloatDType,
    private readonly f32?: Float32Array,
    private readonly halves?: Uint16Array,
    readonly vocabSize = 0,
    readonly width = 0,
    private readonly scale = 1,
  ) {}

  static async load(checkpoint: Checkpoint): Promise<EmbeddingTable> {
    const { dtype, bytes } = await checkpoint.weights.readStored(EMBED);
    const { vocabSize, hiddenSize, embeddingScale } = checkpoint.config;
    const copy = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    if (dtype === 'f32') return new EmbeddingTable(dtype, new Float32Array(copy.buffer, copy.byteOffset, vocabSize * hiddenSize), undefined, vocabSize, hiddenSize, embeddingScale);
    return new EmbeddingTable(dtype, undefined, new Uint16Array(copy.buffer, copy.byteOffset, vocabSize * hiddenSize), vocabSize, hiddenSize, embeddingScale);
  }

  /** Embeds `ids` into `out` (length ids.length * width) and returns it. */
  lookup(ids: readonly number[], out = new Float32Array(ids.length * this.width)): Float32Array {
    const w = this.width;
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new UserError(`Token id ${id} is outside the model's vocabulary (size ${this.vocabSize}); the tokenizer does not fit this model.`, 'model-invalid');
      }
      const dst = out.subarray(i * w, (i + 1) * w);
      if (this.f32) dst.set(this.f32.subarray(id * w, (id + 1) * w));
      else if (this.dtype === 'bf16') bf16ToF32(this.halves!.subarray(id * w, (id + 1) * w), dst);
      else f16ToF32(this.halves!.subarray(id * w, (id + 1) * w), dst);
      if (this.scale !== 1) for (let j = 0; j < w; j++) dst[j]! *= this.scale;
    });
    return out;
  }

  /** One row as float32 (used by training-free link fits). */
  row(id: number): Float32Array {
    return this.lookup([id]);
  }
}
