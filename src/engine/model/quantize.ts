import type { Precision } from '../api';
import { DataType, type GraphBuilder } from '../onnx/graph';

// Weight-only int4 quantization for MatMulNBits: symmetric blocks of 32 along the input dimension,
// one float scale per block, implicit zero point 8 (the same scheme as llama.cpp's Q4_0).
export const INT4_BLOCK = 32;

/** Whether `precision` stores linear weights as integers (they then share the int8 embedding table and CPU repacking). */
export function quantizesWeights(precision: Precision): boolean {
  return precision === 'int4' || precision === 'int8';
}

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

// int8 weights for the CPU's integer matrix kernels (MatMulInteger): one symmetric scale per output
// channel, stored transposed ([inner, out]) as MatMulInteger's B. Activations are quantized per row
// inside the graph (see DecoderGraphBuilder.int8Rows), so a prefill's outlier tokens do not coarsen
// the other rows. Weights use 7 bits of the byte ([-63, 63]): on x86 CPUs without VNNI, onnxruntime's
// uint8 x int8 kernel (vpmaddubsw) adds pairs of products in int16 and saturates past 32767, which
// 255 * 127 * 2 exceeds; 255 * 63 * 2 does not. Measured on an AVX2 EPYC: full-range weights gave
// 9.5% relative error on a 256-wide product, 7-bit weights 0.11%; uint8 weights (no saturation)
// were 2.5x slower.
export const INT8_WEIGHT_LEVELS = 63;
export interface Int8Weights {
  /** [inner, out], row-major: element (k, n) is input k of output channel n. */
  values: Int8Array;
  /** [out]: value = int8 * scale. */
  scales: Float32Array;
}

/** Quantizes `rows` output channels of a Linear stored as [out, inner] into `into`, starting at channel `firstRow` of `out`. */
export function quantizeInt8Rows(w: Float32Array, rows: number, inner: number, out: number, into: Int8Weights, firstRow: number): void {
  for (let local = 0; local < rows; local++) {
    const r = firstRow + local;
    const base = local * inner;
    let amax = 0;
    for (let k = 0; k < inner; k++) amax = Math.max(amax, Math.abs(w[base + k]!));
    const scale = amax / INT8_WEIGHT_LEVELS;
    const inv = scale === 0 ? 0 : 1 / scale;
    into.scales[r] = scale;
    for (let k = 0; k < inner; k++) into.values[k * out + r] = Math.round(w[base + k]! * inv);
  }
}

/** Back to float32, [out, inner] as stored by PyTorch, for tests and error estimates. */
export function dequantizeInt8(q: Int8Weights, out: number, inner: number): Float32Array {
  const w = new Float32Array(out * inner);
  for (let r = 0; r < out; r++) for (let k = 0; k < inner; k++) w[r * inner + k] = q.values[k * out + r]! * q.scales[r]!;
  return w;
}

/** Graph values of activations quantized per row for MatMulInteger (see quantizeActivationsInt8). */
export interface Int8Activations {
  /** uint8, x / scale + 128 rounded, the shape of x. */
  values: string;
  /** float32 [..., 1]: each row's scale. */
  scale: string;
  /** The uint8 scalar 128. */
  zeroPoint: string;
}

/**
 * Graph nodes quantizing `x` ([B, S, K]) per row to uint8: symmetric, scale = the row's largest
 * magnitude / 127, zero point 128 (llama.cpp's Q8 activations do the same per 32 values).
 */
export function quantizeActivationsInt8(g: GraphBuilder, x: string): Int8Activations {
  // Axis 2, not -1: onnxruntime 1.30's ReduceMax over axis -1 of an empty [1, 0, K] (a latent
  // step keeps no logits) returns [1, 0, K] instead of [1, 0, 1].
  const largest = g.op('ReduceMax', [g.op('Abs', [x])], { axes: [2], keepdims: 1 });
  // A row of zeros keeps a tiny scale, so the division stays finite.
  const scale = g.op('Max', [g.op('Div', [largest, g.scalarF32(127)]), g.scalarF32(1e-30)]);
  const zeroPoint = g.initializer(g.fresh('zero_point_u8'), DataType.UINT8, [], Uint8Array.of(128));
  const values = g.op('QuantizeLinear', [g.op('Div', [x, scale]), g.scalarF32(1), zeroPoint]);
  return { values, scale, zeroPoint };
}

/** x W^T for int8 weights `w` ([inner, out]): int32 dot products, then times each row's and each column's scale. */
export function int8MatMul(g: GraphBuilder, a: Int8Activations, w: Int8Weights, inner: number, out: number, name: string): string {
  const sums = g.op('MatMulInteger', [a.values, g.initializer(`${name}.q8`, DataType.INT8, [inner, out], w.values), a.zeroPoint]);
  const scaled = g.op('Mul', [g.op('Cast', [sums], { to: DataType.FLOAT }), a.scale]);
  return g.op('Mul', [scaled, g.initializer(`${name}.scales`, DataType.FLOAT, [out], w.scales)]);
}
