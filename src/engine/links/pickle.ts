// A pickle interpreter for PyTorch state dicts, and nothing more. It runs the opcodes torch.save
// emits (protocol 2, plus the protocol 4 framing some savers use), builds plain data, and resolves
// only the globals a state dict needs (security.md): collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the torch.*Storage types. Those globals
// are never executed: each maps to a fixed constructor of inert records (PyDict, TensorRef,
// StorageRef). Any other global, or any opcode that could instantiate arbitrary classes
// (INST, OBJ, NEWOBJ, EXT*), is refused with an error naming it and the file.
import { UserError } from '../api';
import type { DType } from '../dtype';

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A dict or collections.OrderedDict; `state` is what BUILD attached (a state dict's _metadata). */
export class PyDict {
  readonly map = new Map<PyValue, PyValue>();
  state: PyValue = null;
  constructor(readonly ordered: boolean) {}
}

/** A resolved, allowed global: callable through REDUCE only in the fixed ways below. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** torch.FloatStorage and friends: only meaningful inside a persistent id. */
export class PyStorageType extends PyGlobal {
  constructor(
    name: string,
    readonly dtype: DType,
  ) {
    super('torch', name);
  }
}

/** A storage named by a persistent id: ('storage', type, key, location, numel). */
export class StorageRef {
  constructor(
    readonly type: PyStorageType,
    readonly key: string,
    readonly location: string,
    readonly numel: number,
  ) {}
}

/** What torch._utils._rebuild_tensor_v2 would build: a strided view of a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly requiresGrad: boolean,
    readonly parameter: boolean,
  ) {}
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | PyGlobal
  | StorageRef
  | TensorRef;

export const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  DoubleStorage: 'f64',
  FloatStorage: 'f32',
  HalfStorage: 'f16',
  BFloat16Storage: 'bf16',
  LongStorage: 'i64',
  IntStorage: 'i32',
  ShortStorage: 'i16',
  CharStorage: 'i8',
  ByteStorage: 'u8',
  BoolStorage: 'bool',
};

const ORDERED_DICT = 'collections.OrderedDict';
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const REBUILD_PARAMETER = 'torch._utils._rebuild_parameter';

/** The allow-list of security.md. Anything not here is refused before it is looked at further. */
function resolveGlobal(module: string, name: string, source: string): PyGlobal {
  const qualified = `${module}.${name}`;
  if (qualified === ORDERED_DICT || qualified === REBUILD_TENSOR || qualified === REBUILD_PARAMETER) return new PyGlobal(module, name);
  const storageDtype = module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name) ? STORAGE_DTYPES[name] : undefined;
  if (storageDtype) return new PyStorageType(name, storageDtype);
  throw new UserError(
    `${source} refers to the Python global "${qualified}", which a PyTorch weights file never needs; the file was refused without running anything from it (it may be malicious).`,
    'model-invalid',
    'Use a state dict saved with torch.save(module.state_dict(), path), or a .safetensors file.',
  );
}

// Bounds on what one pickle may ask for, far above any state dict.
const MAX_STRING = 1 << 26;
const MAX_DIMS = 64;
const MAX_MEMO = 1 << 22;

/** Python's name for the kind of a value, for error messages. */
export function kindOf(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number' || typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return v.ordered ? 'OrderedDict' : 'dict';
  if (v instanceof PyStorageType) return `type ${v.qualified}`;
  if (v instanceof PyGlobal) return `function ${v.qualified}`;
  if (v instanceof StorageRef) return 'storage';
  return 'tensor';
}

export interface UnpickleOptions {
  /** Names the file in errors ("adapter.pt (data.pkl)"). */
  source: string;
}

/**
 * Runs a pickle and returns the object it builds. Tensors come back as TensorRef records whose
 * storages are StorageRef records; reading the bytes is the caller's business.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): PyValue {
  return new Machine(bytes, options.source).run();
}

class Machine {
  private pos = 0;
  private stack: PyValue[] = [];
  private readonly marks: PyValue[][] = [];
  private readonly memo = new Map<number, PyValue>();
  private readonly storages = new Map<string, StorageRef>();
  private readonly view: DataView;
  private readonly decoder = new TextDecoder('utf-8');

  constructor(
    private readonly bytes: Uint8Array,
    private readonly source: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(what: string, at = this.pos): UserError {
    return new UserError(`${this.source} is not a valid PyTorch pickle: ${what} (at byte ${at}). The file is corrupt or was not written by torch.save.`, 'model-invalid');
  }

  private need(n: number): number {
    if (n < 0 || this.pos + n > this.bytes.length) throw this.fail(`it ends inside an opcode that needs ${n} more bytes`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private u8(): number {
    return this.bytes[this.need(1)]!;
  }

  private pop(): PyValue {
    if (this.stack.length === 0) throw this.fail('an opcode needs a value but the stack is empty');
    return this.stack.pop()!;
  }

  private top(): PyValue {
    if (this.stack.length === 0) throw this.fail('an opcode needs a value but the stack is empty');
    return this.stack[this.stack.length - 1]!;
  }

  private popMark(): PyValue[] {
    const items = this.stack;
    const outer = this.marks.pop();
    if (!outer) throw this.fail('an opcode needs a MARK but none is open');
    this.stack = outer;
    return items;
  }

  private str(length: number): string {
    if (length > MAX_STRING) throw this.fail(`a string claims ${length} bytes`);
    const at = this.need(length);
    return this.decoder.decode(this.bytes.subarray(at, at + length));
  }

  private line(): string {
    const start = this.pos;
    const end = this.bytes.indexOf(0x0a, start);
    if (end < 0 || end - start > 256) throw this.fail('a GLOBAL name is not terminated');
    this.pos = end + 1;
    return this.decoder.decode(this.bytes.subarray(start, end));
  }

  private memoPut(index: number): void {
    if (this.memo.size >= MAX_MEMO && !this.memo.has(index)) throw this.fail(`the pickle stores more than ${MAX_MEMO} objects`);
    this.memo.set(index, this.top());
  }

  private memoGet(index: number): void {
    if (!this.memo.has(index)) throw this.fail(`memo slot ${index} is read before it is written`);
    this.stack.push(this.memo.get(index)!);
  }

  private dictOnTop(): PyDict {
    const d = this.top();
    if (!(d instanceof PyDict)) throw this.fail(`SETITEM(S) applies to a ${kindOf(d)}, not a dict`);
    return d;
  }

  private listOnTop(): PyValue[] {
    const l = this.top();
    if (!Array.isArray(l)) throw this.fail(`APPEND(S) applies to a ${kindOf(l)}, not a list`);
    return l;
  }

  private setItems(d: PyDict, items: PyValue[]): void {
    if (items.length % 2) throw this.fail('SETITEMS has an odd number of items');
    for (let i = 0; i < items.length; i += 2) d.map.set(hashable(items[i]!, this), items[i + 1]!);
  }

  run(): PyValue {
    const b = this.bytes;
    while (this.pos < b.length) {
      const at = this.pos;
      const op = b[this.pos++]!;
      switch (op) {
        case 0x80: {
          // PROTO
          const proto = this.u8();
          if (proto > 5) throw this.fail(`pickle protocol ${proto} is unknown`, at);
          break;
        }
        case 0x95: {
          // FRAME (protocol 4): only a length hint for buffered readers.
          const n = this.view.getBigUint64(this.need(8), true);
          if (n > BigInt(b.length - this.pos)) throw this.fail('a FRAME claims more bytes than the pickle has', at);
          break;
        }
        case 0x2e: // STOP
          if (this.marks.length) throw this.fail('STOP inside an open MARK', at);
          return this.pop();
        case 0x28: // MARK
          this.marks.push(this.stack);
          this.stack = [];
          break;
        case 0x30: // POP
          this.pop();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.stack.push(this.top());
          break;
        case 0x4e: // NONE
          this.stack.push(null);
          break;
        case 0x88: // NEWTRUE
          this.stack.push(true);
          break;
        case 0x89: // NEWFALSE
          this.stack.push(false);
          break;
        case 0x4a: // BININT
          this.stack.push(this.view.getInt32(this.need(4), true));
          break;
        case 0x4b: // BININT1
          this.stack.push(this.u8());
          break;
        case 0x4d: // BININT2
          this.stack.push(this.view.getUint16(this.need(2), true));
          break;
        case 0x8a: {
          // LONG1: little-endian two's complement of n bytes.
          const n = this.u8();
          if (n > 16) throw this.fail(`an integer of ${n} bytes is beyond anything a state dict holds`, at);
          const start = this.need(n);
          let v = 0n;
          for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[start + i]!);
          if (n > 0 && b[start + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
          this.stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
          break;
        }
        case 0x47: // BINFLOAT (big-endian double)
          this.stack.push(this.view.getFloat64(this.need(8), false));
          break;
        case 0x58: // BINUNICODE
          this.stack.push(this.str(this.view.getUint32(this.need(4), true)));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.stack.push(this.str(this.u8()));
          break;
        case 0x8d: {
          // BINUNICODE8
          const n = this.view.getBigUint64(this.need(8), true);
          if (n > BigInt(MAX_STRING)) throw this.fail(`a string claims ${n} bytes`, at);
          this.stack.push(this.str(Number(n)));
          break;
        }
        case 0x43: {
          // SHORT_BINBYTES
          const n = this.u8();
          const s = this.need(n);
          this.stack.push(b.slice(s, s + n));
          break;
        }
        case 0x42: {
          // BINBYTES
          const n = this.view.getUint32(this.need(4), true);
          if (n > MAX_STRING) throw this.fail(`a bytes object claims ${n} bytes`, at);
          const s = this.need(n);
          this.stack.push(b.slice(s, s + n));
          break;
        }
        case 0x29: // EMPTY_TUPLE
          this.stack.push(new PyTuple([]));
          break;
        case 0x85: // TUPLE1
          this.stack.push(new PyTuple([this.pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const y = this.pop();
          this.stack.push(new PyTuple([this.pop(), y]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const z = this.pop();
          const y = this.pop();
          this.stack.push(new PyTuple([this.pop(), y, z]));
          break;
        }
        case 0x74: {
          // TUPLE (popMark swaps this.stack, so take the items before pushing)
          const items = this.popMark();
          this.stack.push(new PyTuple(items));
          break;
        }
        case 0x5d: // EMPTY_LIST
          this.stack.push([]);
          break;
        case 0x6c: {
          // LIST
          const items = this.popMark();
          this.stack.push(items);
          break;
        }
        case 0x61: {
          // APPEND
          const v = this.pop();
          this.listOnTop().push(v);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = this.popMark();
          // A loop, not push(...items): a spread of a few hundred thousand items overflows the stack.
          const list = this.listOnTop();
          for (const item of items) list.push(item);
          break;
        }
        case 0x7d: // EMPTY_DICT
          this.stack.push(new PyDict(false));
          break;
        case 0x64: {
          // DICT
          const d = new PyDict(false);
          this.setItems(d, this.popMark());
          this.stack.push(d);
          break;
        }
        case 0x73: {
          // SETITEM
          const v = this.pop();
          const k = this.pop();
          this.dictOnTop().map.set(hashable(k, this), v);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = this.popMark();
          this.setItems(this.dictOnTop(), items);
          break;
        }
        case 0x63: {
          // GLOBAL "module\nname\n"
          const module = this.line();
          const name = this.line();
          this.stack.push(resolveGlobal(module, name, this.source));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') throw this.fail('STACK_GLOBAL needs two strings', at);
          this.stack.push(resolveGlobal(module, name, this.source));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.pop();
          const fn = this.pop();
          this.stack.push(this.call(fn, args, at));
          break;
        }
        case 0x62: {
          // BUILD: the only state torch attaches is an OrderedDict's __dict__ (state_dict()._metadata).
          const state = this.pop();
          const target = this.top();
          if (!(target instanceof PyDict) || !target.ordered || !(state instanceof PyDict)) {
            throw this.fail(`BUILD applies a ${kindOf(state)} to a ${kindOf(target)}, which a state dict never does`, at);
          }
          target.state = state;
          break;
        }
        case 0x51: // BINPERSID
          this.stack.push(this.persistentLoad(this.pop(), at));
          break;
        case 0x71: // BINPUT
          this.memoPut(this.u8());
          break;
        case 0x72: // LONG_BINPUT
          this.memoPut(this.view.getUint32(this.need(4), true));
          break;
        case 0x94: // MEMOIZE
          this.memoPut(this.memo.size);
          break;
        case 0x68: // BINGET
          this.memoGet(this.u8());
          break;
        case 0x6a: // LONG_BINGET
          this.memoGet(this.view.getUint32(this.need(4), true));
          break;
        default:
          throw this.fail(`opcode 0x${op.toString(16).padStart(2, '0')} (${opcodeName(op)}) is not one a state dict uses, so it was refused`, at);
      }
    }
    throw this.fail('the pickle ends without STOP');
  }

  private call(fn: PyValue, args: PyValue, at: number): PyValue {
    if (!(fn instanceof PyGlobal) || fn instanceof PyStorageType) throw this.fail(`REDUCE calls a ${kindOf(fn)}`, at);
    if (!(args instanceof PyTuple)) throw this.fail(`REDUCE passes a ${kindOf(args)} as arguments`, at);
    const a = args.items;
    switch (fn.qualified) {
      case ORDERED_DICT:
        if (a.length !== 0) throw this.fail('OrderedDict is called with arguments', at);
        return new PyDict(true);
      case REBUILD_TENSOR: {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.length !== 6 && a.length !== 7) throw this.fail(`_rebuild_tensor_v2 gets ${a.length} arguments`, at);
        const [storage, offset, size, stride, requiresGrad, hooks] = a;
        if (!(storage instanceof StorageRef)) throw this.fail(`_rebuild_tensor_v2 gets a ${kindOf(storage!)} instead of a storage`, at);
        const shape = intTuple(size, 'size', this, at);
        const strides = intTuple(stride, 'stride', this, at);
        if (shape.length !== strides.length) throw this.fail(`a tensor has ${shape.length} sizes but ${strides.length} strides`, at);
        if (!isIndex(offset)) throw this.fail('a tensor has an invalid storage offset', at);
        if (typeof requiresGrad !== 'boolean') throw this.fail('requires_grad is not a bool', at);
        if (hooks !== null && !(hooks instanceof PyDict)) throw this.fail('backward_hooks is not a dict', at);
        return new TensorRef(storage, offset, shape, strides, requiresGrad, false);
      }
      case REBUILD_PARAMETER: {
        // (data, requires_grad, backward_hooks)
        if (a.length !== 3) throw this.fail(`_rebuild_parameter gets ${a.length} arguments`, at);
        const [data, requiresGrad, hooks] = a;
        if (!(data instanceof TensorRef)) throw this.fail(`_rebuild_parameter wraps a ${kindOf(data!)}`, at);
        if (typeof requiresGrad !== 'boolean') throw this.fail('requires_grad is not a bool', at);
        if (hooks !== null && !(hooks instanceof PyDict)) throw this.fail('backward_hooks is not a dict', at);
        return new TensorRef(data.storage, data.offset, data.shape, data.stride, requiresGrad, true);
      }
      default:
        throw this.fail(`${fn.qualified} cannot be called`, at);
    }
  }

  private persistentLoad(pid: PyValue, at: number): StorageRef {
    if (!(pid instanceof PyTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage') {
      throw this.fail(`a persistent id is a ${kindOf(pid)}, not ('storage', type, key, location, numel)`, at);
    }
    const [, type, key, location, numel] = pid.items;
    if (!(type instanceof PyStorageType)) throw this.fail(`a storage has type ${kindOf(type!)}`, at);
    // Keys name zip entries (data/<key>): keep them to plain names.
    if (typeof key !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(key)) throw this.fail(`a storage key ${JSON.stringify(key)} is not a plain name`, at);
    if (typeof location !== 'string') throw this.fail('a storage location is not a string', at);
    if (!isIndex(numel)) throw this.fail('a storage size is not a valid count', at);
    const known = this.storages.get(key);
    if (known) {
      if (known.type.dtype !== type.dtype || known.numel !== numel) {
        throw this.fail(`storage ${key} is used as ${known.type.name}[${known.numel}] and as ${type.name}[${numel}]`, at);
      }
      return known;
    }
    const ref = new StorageRef(type, key, location, numel);
    this.storages.set(key, ref);
    return ref;
  }
}

function isIndex(v: PyValue | undefined): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function intTuple(v: PyValue | undefined, what: string, m: { fail(what: string, at?: number): UserError }, at: number): number[] {
  const items = v instanceof PyTuple ? v.items : null;
  if (!items || items.length > MAX_DIMS || !items.every(isIndex)) throw m.fail(`a tensor ${what} is not a tuple of non-negative integers`, at);
  return items;
}

/** Dict keys: strings and numbers compare by value, as in Python; other objects by identity. */
function hashable(k: PyValue, m: { fail(what: string, at?: number): UserError }): PyValue {
  if (Array.isArray(k) || k instanceof PyDict) throw m.fail('a dict key is unhashable');
  return typeof k === 'bigint' && k >= BigInt(Number.MIN_SAFE_INTEGER) && k <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(k) : k;
}

const OPCODE_NAMES: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
  0x50: 'PERSID', 0x49: 'INT', 0x4c: 'LONG', 0x8b: 'LONG4', 0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE', 0x46: 'FLOAT', 0x67: 'GET', 0x70: 'PUT', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

function opcodeName(op: number): string {
  return OPCODE_NAMES[op] ?? 'unknown';
}
