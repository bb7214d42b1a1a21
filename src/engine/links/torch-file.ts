// Reader for PyTorch `.pt` files in the zip format torch.save writes by default since 1.6:
// `<name>/data.pkl` (a pickle of the state dict), `<name>/data/<key>` (raw little-endian storages),
// `<name>/byteorder`, `<name>/version`, and on newer versions `<name>/.data/serialization_id`,
// `.format_version`, `.storage_alignment`. Every size and name is checked against the real file
// before anything is allocated or read, and the pickle goes through pickle.ts, which executes
// nothing (security.md).
import { open, type FileHandle } from 'node:fs/promises';
import yauzl from 'yauzl';
import { UserError } from '../api';
import { DTYPE_BYTES, elementCount, StridedTensor, type DType, type LoadedTensor } from '../tensor';
import { kindOf, PyDict, TensorRef, unpickle } from './pickle';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 as zip uses it. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

// A state dict pickle takes a few hundred bytes per tensor.
const MAX_PICKLE_BYTES = 32 * 1024 * 1024;
const MAX_ENTRIES = 1 << 20;

function invalid(path: string, what: string): UserError {
  return new UserError(`${path} is not a valid PyTorch weights file: ${what}.`, 'model-invalid', 'Download the file again; if it came from your own training, re-save it with torch.save(module.state_dict(), path).');
}

function refused(path: string, what: string): UserError {
  return new UserError(`${path} was refused: ${what}. A file like this can only come from tampering or a broken writer.`, 'model-invalid');
}

/** Checks one zip entry name; returns its segments. */
function checkEntryName(path: string, name: string): string[] {
  const shown = JSON.stringify(name);
  if (!name || name.includes('\0') || name.includes('\\')) throw refused(path, `it contains the zip entry ${shown}, which is not a plain relative name`);
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw refused(path, `it contains the zip entry ${shown}, an absolute path`);
  const segments = name.split('/');
  const body = name.endsWith('/') ? segments.slice(0, -1) : segments;
  if (body.some((s) => s === '..' || s === '.' || s === '')) throw refused(path, `it contains the zip entry ${shown}, which leaves its folder`);
  return body;
}

class TorchArchive {
  readonly records = new Map<string, yauzl.Entry>();
  top = '';

  private constructor(
    private readonly path: string,
    private readonly zip: yauzl.ZipFile,
    private readonly handle: FileHandle,
    private readonly size: number,
  ) {}

  static async open(path: string, handle: FileHandle, size: number): Promise<TorchArchive> {
    let zip: yauzl.ZipFile;
    try {
      zip = await yauzl.openPromise(path, { autoClose: false, decodeStrings: false, validateEntrySizes: true, strictFileNames: true });
    } catch (e) {
      throw invalid(path, `it is not a readable zip archive (${(e as Error).message})`);
    }
    const archive = new TorchArchive(path, zip, handle, size);
    try {
      await archive.list();
    } catch (e) {
      archive.close();
      throw e;
    }
    return archive;
  }

  private async list(): Promise<void> {
    const { path } = this;
    if (this.zip.entryCount > MAX_ENTRIES) throw invalid(path, `its directory claims ${this.zip.entryCount} entries`);
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    let top: string | undefined;
    try {
      for await (const entry of this.zip.eachEntry()) {
        let name: string;
        try {
          name = utf8.decode(entry.fileNameRaw);
        } catch {
          throw refused(path, 'a zip entry name is not valid UTF-8');
        }
        const segments = checkEntryName(path, name);
        if (name.endsWith('/')) continue;
        if (segments.length < 2) throw invalid(path, `the entry "${name}" is not inside the archive's folder`);
        if (top === undefined) top = segments[0]!;
        else if (segments[0] !== top) throw invalid(path, `its entries sit in more than one top folder ("${top}" and "${segments[0]}")`);
        const rel = segments.slice(1).join('/');
        if (this.records.has(rel)) throw refused(path, `the entry "${name}" appears twice`);
        if (entry.generalPurposeBitFlag & 1) throw invalid(path, `the entry "${name}" is encrypted`);
        // The local header alone takes 30 bytes; the data must fit in the file after it.
        if (entry.relativeOffsetOfLocalHeader + 30 + entry.compressedSize > this.size) {
          throw invalid(path, `the entry "${name}" claims ${entry.compressedSize} bytes at offset ${entry.relativeOffsetOfLocalHeader} but the file has only ${this.size} bytes (truncated download?)`);
        }
        this.records.set(rel, entry);
      }
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw invalid(path, `its zip directory is damaged (${(e as Error).message})`);
    }
    if (top === undefined) throw invalid(path, 'the archive is empty');
    this.top = top;
  }

  has(rel: string): boolean {
    return this.records.has(rel);
  }

  sizeOf(rel: string): number {
    return this.records.get(rel)!.uncompressedSize;
  }

  /** Reads one stored entry whole, after checking it against the file and `maxBytes`. */
  async read(rel: string, maxBytes: number): Promise<Uint8Array> {
    const { path } = this;
    const entry = this.records.get(rel);
    if (!entry) throw invalid(path, `it has no ${this.top}/${rel}`);
    const name = `${this.top}/${rel}`;
    if (entry.compressionMethod !== 0) {
      throw invalid(path, `${name} is compressed (method ${entry.compressionMethod}); torch.save stores entries uncompressed, so the file was repacked`);
    }
    if (entry.compressedSize > maxBytes) throw invalid(path, `${name} claims ${entry.compressedSize} bytes, more than the ${maxBytes} it can hold`);
    let start: number;
    try {
      start = (await this.zip.readLocalFileHeaderPromise(entry, { minimal: true })).fileDataStart;
    } catch (e) {
      throw invalid(path, `${name} cannot be located (${(e as Error).message}; truncated download?)`);
    }
    if (start + entry.compressedSize > this.size) {
      throw invalid(path, `${name} ends at byte ${start + entry.compressedSize} but the file has only ${this.size} bytes (truncated download?)`);
    }
    const out = new Uint8Array(entry.compressedSize);
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await this.handle.read(out, done, out.length - done, start + done);
      if (bytesRead === 0) throw invalid(path, `${name} is cut short (truncated download?)`);
      done += bytesRead;
    }
    if (crc32(out) !== entry.crc32) throw invalid(path, `${name} fails its CRC-32 check (corrupt download?)`);
    return out;
  }

  close(): void {
    this.zip.close();
  }
}

/** Collects the tensors of a state dict; nested dicts ({"state_dict": {...}}) give dotted names. */
function collectTensors(path: string, d: PyDict, prefix: string, out: [string, TensorRef][], depth: number): void {
  if (depth > 8) throw invalid(path, 'its dicts are nested too deeply for a state dict');
  for (const [key, value] of d.map) {
    if (typeof key !== 'string') throw invalid(path, `a state dict key is a ${typeof key}, not a string`);
    const name = prefix + key;
    if (value instanceof TensorRef) out.push([name, value]);
    else if (value instanceof PyDict) collectTensors(path, value, `${name}.`, out, depth + 1);
  }
}

/** Reads every tensor of a torch.save'd state dict. */
export async function readTorchStateDict(path: string): Promise<Map<string, LoadedTensor>> {
  const handle = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`Cannot open ${path}: ${e.code ?? e.message}.`, 'model-missing');
  });
  try {
    const size = (await handle.stat()).size;
    const head = new Uint8Array(Math.min(size, 64));
    await handle.read(head, 0, head.length, 0);
    sniff(path, head);
    const archive = await TorchArchive.open(path, handle, size);
    try {
      return await readArchive(path, archive);
    } finally {
      archive.close();
    }
  } finally {
    await handle.close();
  }
}

function sniff(path: string, head: Uint8Array): void {
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return;
  const text = new TextDecoder('latin1').decode(head);
  if (text.startsWith('version https://git-lfs')) {
    throw new UserError(`${path} is a Git LFS pointer, not the weights themselves.`, 'model-invalid', 'Download the file through the Hugging Face hub (or run "git lfs pull").');
  }
  if (head[0] === 0x80 && head[1] === 0x02) {
    throw new UserError(
      `${path} uses the legacy torch.save format (before PyTorch 1.6, or _use_new_zipfile_serialization=False), which is not supported.`,
      'unsupported',
      'Re-save it with a current PyTorch: torch.save(torch.load(path), path).',
    );
  }
  throw invalid(path, 'it is not a zip archive');
}

async function readArchive(path: string, archive: TorchArchive): Promise<Map<string, LoadedTensor>> {
  if (archive.has('byteorder')) {
    const order = new TextDecoder().decode(await archive.read('byteorder', 16));
    if (order === 'big') {
      throw new UserError(`${path} was saved on a big-endian machine; only little-endian files are supported.`, 'unsupported', 'Load and re-save it on a little-endian (x86 or ARM) machine.');
    }
    if (order !== 'little') throw invalid(path, `its byteorder record says "${order}"`);
  }
  if (!archive.has('data.pkl')) throw invalid(path, `it has no ${archive.top}/data.pkl (a TorchScript archive or another zip?)`);
  const pkl = await archive.read('data.pkl', MAX_PICKLE_BYTES);
  const root = unpickle(pkl, { source: `${path} (${archive.top}/data.pkl)` });
  if (!(root instanceof PyDict)) throw invalid(path, `it holds ${root === null ? 'None' : `a ${kindOf(root)}`}, not a state dict`);
  const refs: [string, TensorRef][] = [];
  collectTensors(path, root, '', refs, 0);
  if (refs.length === 0) throw invalid(path, 'its state dict holds no tensors');

  // Check every view against its storage before reading any storage.
  const storages = new Map<string, { dtype: DType; numel: number }>();
  for (const [name, t] of refs) {
    const n = elementCount(t.shape);
    if (n < 0) throw invalid(path, `tensor ${name} has the absurd shape [${t.shape.join(', ')}]`);
    if (n > 0) {
      let last = t.offset;
      for (let i = 0; i < t.shape.length; i++) last += (t.shape[i]! - 1) * t.stride[i]!;
      if (last >= t.storage.numel) {
        throw invalid(path, `tensor ${name} (shape [${t.shape.join(', ')}], offset ${t.offset}, strides [${t.stride.join(', ')}]) reaches element ${last} of storage ${t.storage.key}, which has only ${t.storage.numel}`);
      }
    }
    storages.set(t.storage.key, { dtype: t.storage.type.dtype, numel: t.storage.numel });
  }
  const bytes = new Map<string, Uint8Array>();
  for (const [key, s] of storages) {
    const rel = `data/${key}`;
    if (!archive.has(rel)) throw invalid(path, `storage ${key} is used but ${archive.top}/${rel} is missing`);
    const want = s.numel * DTYPE_BYTES[s.dtype];
    const have = archive.sizeOf(rel);
    if (have !== want) {
      throw invalid(path, `${archive.top}/${rel} holds ${have} bytes but its storage has ${s.numel} ${s.dtype} elements (${want} bytes)${have < want ? ' (truncated file?)' : ''}`);
    }
    bytes.set(key, await archive.read(rel, want));
  }
  const out = new Map<string, LoadedTensor>();
  for (const [name, t] of refs) {
    if (out.has(name)) throw invalid(path, `the tensor name ${name} appears twice`);
    out.set(name, new StridedTensor(name, t.storage.type.dtype, t.shape, bytes.get(t.storage.key)!, t.offset, t.stride));
  }
  return out;
}
