// `recursivemas inspect <file>`: the tensors of a .pt, .safetensors or .onnx file with their dtype,
// shape and the float64 sum of their values in logical order (a cheap fingerprint to compare a file
// across tools, e.g. against torch's `t.double().sum()`).
import { open, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { UserError } from '../api';
import { SafetensorsFile } from '../model/safetensors';
import { readOnnxInitializers } from '../onnx/read';
import { decodeContiguous, StridedTensor, type DType, type LoadedTensor } from '../tensor';
import { readTorchStateDict } from './torch-file';

export interface InspectRow {
  name: string;
  dtype: DType;
  shape: number[];
  sum: number;
}

const SAFETENSORS_DTYPES: Readonly<Record<string, DType>> = {
  F32: 'f32', F16: 'f16', BF16: 'bf16', F64: 'f64', I64: 'i64', I32: 'i32', I16: 'i16', I8: 'i8', U8: 'u8', BOOL: 'bool',
};

function sum(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s;
}

function row(t: LoadedTensor): InspectRow {
  // float64 where the tensor offers it, so f64 and integer tensors sum exactly.
  const values = t instanceof StridedTensor ? t.toFloat64() : t.toFloat32();
  return { name: t.name, dtype: t.dtype, shape: [...t.shape], sum: sum(values) };
}

async function inspectSafetensors(path: string): Promise<InspectRow[]> {
  const file = await SafetensorsFile.open(path);
  try {
    const rows: InspectRow[] = [];
    for (const [name, info] of file.tensors) {
      const dtype = SAFETENSORS_DTYPES[info.dtype];
      if (!dtype) throw new UserError(`${path}: tensor ${name} has dtype ${info.dtype}, which inspect does not read.`, 'unsupported');
      const values = dtype === 'f32' || dtype === 'f16' || dtype === 'bf16' ? await file.readFloat32(name) : decodeContiguous(dtype, await file.readRaw(name), true);
      rows.push({ name, dtype, shape: [...info.shape], sum: sum(values) });
    }
    return rows;
  } finally {
    await file.close();
  }
}

async function startsWithZip(path: string): Promise<boolean> {
  const handle = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`Cannot open ${path}: ${e.code ?? e.message}.`, 'model-missing');
  });
  try {
    const head = new Uint8Array(4);
    await handle.read(head, 0, 4, 0);
    return head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
  } finally {
    await handle.close();
  }
}

/** One row per tensor, in the order the file stores them. */
export async function inspectTensors(path: string): Promise<InspectRow[]> {
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`Cannot open ${path}: ${e.code === 'ENOENT' ? 'there is no such file' : (e.code ?? e.message)}.`, 'model-missing');
  });
  if (!info.isFile()) throw new UserError(`${path} is a folder, not a file: inspect reads one .pt, .safetensors or .onnx file.`, 'bad-input');
  const ext = extname(path).toLowerCase();
  if (ext === '.safetensors') return inspectSafetensors(path);
  if (ext === '.onnx') return [...(await readOnnxInitializers(path)).values()].map(row);
  if (ext === '.pt' || ext === '.pth' || (await startsWithZip(path))) return [...(await readTorchStateDict(path)).values()].map(row);
  throw new UserError(`${path}: inspect reads .pt (torch.save), .safetensors and .onnx files; this file is none of them.`, 'bad-input');
}

function shapeText(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}

/** JSON: one {"name","dtype","shape","sum"} object per line (a non-finite sum as a string). Text: an aligned table. */
export function formatInspect(rows: InspectRow[], json: boolean): string {
  if (json) {
    return rows.map((r) => `${JSON.stringify({ name: r.name, dtype: r.dtype, shape: r.shape, sum: Number.isFinite(r.sum) ? r.sum : String(r.sum) })}\n`).join('');
  }
  const table = [['name', 'dtype', 'shape', 'sum'], ...rows.map((r) => [r.name, r.dtype, shapeText(r.shape), String(r.sum)])];
  // A reduce, not Math.max(...): a file may list hundreds of thousands of tensors, too many for a spread.
  const widths = [0, 1, 2].map((c) => table.reduce((w, line) => Math.max(w, line[c]!.length), 0));
  return table.map((line) => `${line.slice(0, 3).map((cell, c) => cell.padEnd(widths[c]!)).join('  ')}  ${line[3]}\n`).join('');
}
