// Weight-only int4 quantization for MatMulNBits: symmetric blocks of 32 along the input dimension,
// one float scale per block, implicit zero point 8 (the same scheme as llama.cpp's Q4_0).
export const INT4_BLOCK = 32;

export interface Int4Weights {
  /** [out, blocksPerRow, INT4_BLOCK / 2]: two values a byte, the even element in the low nibble. */
  packed: Uint8Array;
  /** [out * blocksPerRow] */
  scales: Float32Array;
  blocksPerRow: number;
}

/** Quantizes a PyTorch Linear weight stored as [out, inner] (rows are output channels). */
export function quantizeInt4(w: Float32Array, out: number, inner: number): Int4Weights {
  const blocksPerRow = Math.ceil(inner / INT4_BLOCK);
  const q = { packed: new Uint8Array(out * blocksPerRow * (INT4_BLOCK / 2)), scales: new Float32Array(out * blocksPerRow), blocksPerRow };
  quantizeInt4Rows(w, out, inner, q, 0);
  return q;
}

/** Quantizes `rows` rows of `inner` values into `into`, starting at output row `firstRow`. */
export function quantizeInt4Rows(w: Float32Array, rows: number, inner: number, into: Int4Weights, firstRow: number): void {
  const { packed, scales, blocksPerRow } = into;
  const q = new Uint8Array(INT4_BLOCK);
  for (let local = 0; local < rows; local++) {
    const r = firstRow + local;
    for (let b = 0; b < blocksPerRow; b++) {
      const start = local * inner + b * INT4_BLOCK;
      const end = local * inner + Math.min(inner, (b + 1) * INT4_BLOCK);
      // The value of largest magnitude maps to -8, so the full range [-8, 7] is used.
      let extreme = 0;
      for (let i = start; i < end; i++) if (Math.abs(w[i]!) > Math.abs(extreme)) extreme = w[i]!;
      const scale = extreme / -8;
      const inv = scale === 0 ? 0 : 1 / scale;
      q.fill(8);
      for (let i = start; i < end; i++) q[i - start] = Math.max(0, Math.min(15, Math.round(w[i]! * inv) + 8));
      scales[r * blocksPerRow + b] = scale;
      const base = (r * blocksPerRow + b) * (INT4_BLOCK / 2);
      for (let j = 0; j < INT4_BLOCK / 2; j++) packed[base + j] = q[2 * j]! | (q[2 * j + 1]! << 4);
    }
  }
}

/** Back to float32 (what MatMulNBits multiplies with), for tests and error estimates. */
export function dequantizeInt4(q: Int4Weights, out: number, inner: number): Float32Array {
  const w = new Float32Array(out * inner);
  for (let r = 0; r < out; r++) {
    for (let k = 0; k < inner; k++) {
      const b = Math.floor(k / INT4_BLOCK);
      const j = k % INT4_BLOCK;
      const byte = q.packed[(r * q.blocksPerRow + b) * (INT4_BLOCK / 2) + (j >> 1)]!;
      const nibble = j & 1 ? byte >> 4 : byte & 15;
      w[r * inner + k] = (nibble - 8) * q.scales[r * q.blocksPerRow + b]!;
    }
  }
  return w;
}
