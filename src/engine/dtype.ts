// The engine's one dtype vocabulary (the element types weight files store) and the conversions
// between the floating-point ones and float32.

export type DType = 'f32' | 'f16' | 'bf16' | 'f64' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

/** The floating-point storage formats checkpoints keep their weights in. */
export type FloatDType = Extract<DType, 'f32' | 'f16' | 'bf16'>;

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  f32: 4, f16: 2, bf16: 2, f64: 8, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1,
};

/** How safetensors headers name the float dtypes. */
export const SAFETENSORS_FLOAT_DTYPES = { F32: 'f32', F16: 'f16', BF16: 'bf16' } as const satisfies Record<string, FloatDType>;
export type SafetensorsFloatDType = keyof typeof SAFETENSORS_FLOAT_DTYPES;

/** How config.json (`dtype`, `torch_dtype`) names the float dtypes. */
export const TORCH_FLOAT_DTYPES = { float32: 'f32', float16: 'f16', bfloat16: 'bf16' } as const satisfies Record<string, FloatDType>;

export function bf16ToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

const f16Table = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * frac * 2 ** -24;
    else if (exp === 31) table[h] = frac ? NaN : sign * Infinity;
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return table;
})();

export function f16ToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) out[i] = f16Table[src[i]!]!;
  return out;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** float32 -> IEEE binary16 bits, round to nearest even; overflow gives infinity. */
export function f32ToF16Bits(value: number): number {
  scratch[0] = value;
  const x = scratchBits[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

const bf16Scratch = new Float32Array(1);
const bf16ScratchBits = new Uint32Array(bf16Scratch.buffer);

/** float32 -> bfloat16 bits, round to nearest even (NaN stays a quiet NaN). */
export function f32ToBf16Bits(value: number): number {
  bf16Scratch[0] = value;
  const x = bf16ScratchBits[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]!);
  return out;
}

/** Decodes little-endian stored floats of any supported dtype into float32. */
export function toFloat32(dtype: FloatDType, bytes: Uint8Array): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  if (dtype === 'f32') return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4).slice();
  const halves = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
  return dtype === 'bf16' ? bf16ToF32(halves) : f16ToF32(halves);
}
