// safetensors reader: the header is parsed and checked against the file's real length before
// anything is allocated; tensors are read one at a time on demand, so a multi-GB checkpoint is
// never held whole in memory.
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UserError } from '../api';
import { joinInside } from '../safe-path';
import { SAFETENSORS_FLOAT_DTYPES, toFloat32, type FloatDType, type SafetensorsFloatDType } from '../dtype';

export interface SafetensorsTensorInfo {
  dtype: string;
  shape: number[];
  /** Absolute offset of the tensor's first byte in the file. */
  byteOffset: number;
  byteLength: number;
}

const DTYPE_SIZE: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4, U64: 8,
};
const MAX_HEADER = 100 * 1024 * 1024;
const READ_AHEAD_BYTES = 4 * 1024 * 1024;

function corrupt(path: string, what: string): UserError {
  return new UserError(
    `${path} is not a valid safetensors file: ${what}. Delete it and download it again.`,
    'model-invalid',
  );
}

/**
 * The format requires the tensors to tile the data section exactly: in offset order each starts
 * where the previous one ended, and the last one ends at the end of the file. Overlapping tensors
 * (two names for the same bytes) and bytes no tensor accounts for are refused.
 */
function checkLayout(path: string, tensors: Map<string, SafetensorsTensorInfo>, dataStart: number, size: number): void {
  const spans = [...tensors].map(([name, t]) => ({ name, begin: t.byteOffset - dataStart, end: t.byteOffset - dataStart + t.byteLength }));
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous = '';
  for (const span of spans) {
    if (span.begin < expected) throw corrupt(path, `tensor ${span.name} overlaps tensor ${previous} (bytes ${span.begin}-${span.end} of the data)`);
    if (span.begin > expected) throw corrupt(path, `bytes ${expected}-${span.begin} of the data belong to no tensor (before ${span.name})`);
    expected = span.end;
    previous = span.name;
  }
  const dataBytes = size - dataStart;
  if (expected !== dataBytes) throw corrupt(path, `the tensors end at byte ${expected} of the data but the data section has ${dataBytes} bytes`);
}

export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private handle: FileHandle,
    readonly tensors: Map<string, SafetensorsTensorInfo>,
    readonly metadata: Record<string, string>,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    const handle = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
      throw new UserError(`Cannot open ${path}: ${e.code ?? e.message}.`, 'model-missing');
    });
    try {
      const size = (await handle.stat()).size;
      if (size < 8) throw corrupt(path, `only ${size} bytes`);
      const lenBuf = Buffer.alloc(8);
      await handle.read(lenBuf, 0, 8, 0);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen > MAX_HEADER || headerLen + 8 > size) {
        throw corrupt(path, `header claims ${headerLen} bytes but the file has ${size}`);
      }
      const headerBuf = Buffer.alloc(headerLen);
      await handle.read(headerBuf, 0, headerLen, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(headerBuf.toString('utf8')) as Record<string, unknown>;
      } catch {
        throw corrupt(path, 'the header is not JSON');
      }
      if (!header || typeof header !== 'object' || Array.isArray(header)) throw corrupt(path, 'the header is not an object');
      const dataStart = 8 + headerLen;
      const tensors = new Map<string, SafetensorsTensorInfo>();
      let metadata: Record<string, string> = {};
      for (const [name, raw] of Object.entries(header)) {
        if (name === '__metadata__') {
          if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === 'string')) {
            throw corrupt(path, '__metadata__ must map names to strings');
          }
          metadata = raw as Record<string, string>;
          continue;
        }
        const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
        const dsize = typeof info?.dtype === 'string' ? DTYPE_SIZE[info.dtype] : undefined;
        if (!dsize) throw corrupt(path, `tensor ${name} has unknown dtype ${String(info?.dtype)}`);
        const shape = info.shape;
        const offsets = info.data_offsets;
        if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
          throw corrupt(path, `tensor ${name} has an invalid shape`);
        }
        if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
          throw corrupt(path, `tensor ${name} has invalid data_offsets`);
        }
        const [begin, end] = offsets as [number, number];
        const count = (shape as number[]).reduce((a, b) => a * b, 1);
        if (!Number.isSafeInteger(count * dsize)) throw corrupt(path, `tensor ${name} has an impossibly large shape`);
        if (end < begin || end - begin !== count * dsize) {
          throw corrupt(path, `tensor ${name} spans ${end - begin} bytes but its shape [${shape.join(', ')}] needs ${count * dsize}`);
        }
        if (dataStart + end > size) {
          throw corrupt(path, `tensor ${name} ends at byte ${dataStart + end} but the file has only ${size} bytes (truncated download?)`);
        }
        tensors.set(name, { dtype: info.dtype as string, shape: shape as number[], byteOffset: dataStart + begin, byteLength: end - begin });
      }
      checkLayout(path, tensors, dataStart, size);
      return new SafetensorsFile(path, handle, tensors, metadata);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  // Small tensors are served from one read-ahead window: a file of many tiny tensors (norms,
  // biases; or 300,000 of them) would otherwise cost one system call each.
  private window?: { start: number; bytes: Uint8Array };

  async readRaw(name: string): Promise<Uint8Array> {
    const info = this.tensors.get(name);
    if (!info) throw new UserError(`${this.path} has no tensor named ${name}.`, 'model-invalid');
    if (info.byteLength <= READ_AHEAD_BYTES / 16) {
      let w = this.window;
      if (!w || info.byteOffset < w.start || info.byteOffset + info.byteLength > w.start + w.bytes.length) {
        const bytes = new Uint8Array(READ_AHEAD_BYTES);
        const { bytesRead } = await this.handle.read(bytes, 0, bytes.length, info.byteOffset);
        w = this.window = { start: info.byteOffset, bytes: bytes.subarray(0, bytesRead) };
        if (bytesRead < info.byteLength) throw corrupt(this.path, `unexpected end of file in tensor ${name}`);
      }
      return w.bytes.slice(info.byteOffset - w.start, info.byteOffset - w.start + info.byteLength);
    }
    const buf = new Uint8Array(info.byteLength);
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await this.handle.read(buf, done, buf.length - done, info.byteOffset + done);
      if (bytesRead === 0) throw corrupt(this.path, `unexpected end of file in tensor ${name}`);
      done += bytesRead;
    }
    return buf;
  }

  floatDType(name: string): FloatDType {
    const info = this.tensors.get(name);
    const dtype = info && Object.hasOwn(SAFETENSORS_FLOAT_DTYPES, info.dtype) ? SAFETENSORS_FLOAT_DTYPES[info.dtype as SafetensorsFloatDType] : undefined;
    if (!dtype) throw new UserError(`${this.path}: tensor ${name} has dtype ${info?.dtype}; only F32, F16 and BF16 weights are supported.`, 'unsupported');
    return dtype;
  }

  async readFloat32(name: string): Promise<Float32Array> {
    return toFloat32(this.floatDType(name), await this.readRaw(name));
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** All safetensors files of a Hugging Face model folder: one file, or shards listed by the index. */
export async function openCheckpointShards(folder: string): Promise<SafetensorsFile[]> {
  const single = join(folder, 'model.safetensors');
  const index = join(folder, 'model.safetensors.index.json');
  if (await stat(single).then(() => true, () => false)) return [await SafetensorsFile.open(single)];
  if (!(await stat(index).then(() => true, () => false))) {
    throw new UserError(`${folder} has neither model.safetensors nor model.safetensors.index.json. Download the model's weights (recursivemas models pull).`, 'model-missing');
  }
  let parsed: { weight_map?: Record<string, string> };
  try {
    parsed = JSON.parse(await readFile(index, 'utf8')) as typeof parsed;
  } catch {
    throw new UserError(`${index} is not valid JSON. Download it again.`, 'model-invalid');
  }
  if (!parsed.weight_map || typeof parsed.weight_map !== 'object') {
    throw new UserError(`${index} has no weight_map.`, 'model-invalid');
  }
  const files = [...new Set(Object.values(parsed.weight_map))];
  const shards: SafetensorsFile[] = [];
  try {
    for (const f of files) shards.push(await SafetensorsFile.open(joinInside(dirname(index), String(f), index)));
  } catch (e) {
    await Promise.all(shards.map((s) => s.close()));
    throw e;
  }
  return shards;
}
