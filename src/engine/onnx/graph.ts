// A small ONNX graph builder: named values, nodes with attributes, initializers (large ones go to
// an external-data side file, so models of any size stay under protobuf's 2 GiB message limit),
// symbolic dimensions and opset imports.
import { closeSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { ProtoWriter } from './proto';

export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

export type Dim = number | string;
export type AttrValue = number | string | number[] | { float: number } | { floats: number[] } | { tensor: TensorValue };

interface TensorValue {
  dataType: DataTypeId;
  dims: number[];
  data: ArrayBufferView;
}

interface NodeRecord {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  domain: string;
  name: string;
}

interface InitializerRecord {
  name: string;
  dataType: DataTypeId;
  dims: number[];
  inline?: Uint8Array;
  external?: { offset: number; length: number };
}

interface ValueInfo {
  name: string;
  dataType: DataTypeId;
  dims: Dim[];
}

/** Appends tensors to the external-data file as they are produced, so weights are never all in memory. */
class ExternalData {
  private fd: number;
  private offset = 0;
  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }
  append(bytes: Uint8Array): { offset: number; length: number } {
    // 64-byte alignment lets ORT map tensors without copying on platforms that allow it.
    const pad = (64 - (this.offset % 64)) % 64;
    if (pad) {
      writeSync(this.fd, new Uint8Array(pad));
      this.offset += pad;
    }
    const at = this.offset;
    let written = 0;
    while (written < bytes.length) written += writeSync(this.fd, bytes, written, bytes.length - written);
    this.offset += bytes.length;
    return { offset: at, length: bytes.length };
  }
  close(): void {
    closeSync(this.fd);
  }
}

function asBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

export class GraphBuilder {
  private nodes: NodeRecord[] = [];
  private initializers: InitializerRecord[] = [];
  private inputs: ValueInfo[] = [];
  private outputs: ValueInfo[] = [];
  private counter = 0;
  private constCache = new Map<string, string>();
  private external?: ExternalData;
  private opsets = new Map<string, number>();
  /** Values renamed into graph outputs; later nodes that name the old value get the new one. */
  private renamed = new Map<string, string>();

  /** @param externalDataPath where tensors of at least `externalThreshold` bytes are written. */
  constructor(
    externalDataPath?: string,
    private readonly externalThreshold = 1024,
  ) {
    if (externalDataPath) this.external = new ExternalData(externalDataPath);
    this.opsets.set('', 17);
  }

  useOpset(domain: string, version: number): void {
    this.opsets.set(domain, Math.max(version, this.opsets.get(domain) ?? 0));
  }

  input(name: string, dataType: DataTypeId, dims: Dim[]): string {
    this.inputs.push({ name, dataType, dims });
    return name;
  }

  output(name: string, dataType: DataTypeId, dims: Dim[]): void {
    this.outputs.push({ name, dataType, dims });
  }

  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  /** Adds a node with one output and returns the output's name. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: { domain?: string; output?: string } = {}): string {
    return this.opN(op, inputs, 1, attrs, opts.domain ?? '', opts.output ? [opts.output] : undefined)[0]!;
  }

  opN(op: string, inputs: string[], count: number, attrs: Record<string, AttrValue> = {}, domain = '', names?: string[]): string[] {
    const outputs = names ?? Array.from({ length: count }, () => this.fresh(op));
    const resolved = inputs.map((i) => this.renamed.get(i) ?? i);
    this.nodes.push({ op, inputs: resolved, outputs, attrs, domain, name: this.fresh(`n_${op}`) });
    return outputs;
  }

  /**
   * Makes `value` a graph output called `name`: the node producing it is renamed (an Identity would
   * copy the tensor on every run, which for a KV cache is megabytes a step).
   */
  bindOutput(value: string, name: string, dataType: DataTypeId, dims: Dim[]): void {
    const producer = this.nodes.find((n) => n.outputs.includes(value));
    if (producer && !this.outputs.some((o) => o.name === value)) {
      producer.outputs = producer.outputs.map((o) => (o === value ? name : o));
      for (const n of this.nodes) n.inputs = n.inputs.map((i) => (i === value ? name : i));
      this.renamed.set(value, name);
    } else {
      this.op('Identity', [value], {}, { output: name });
    }
    this.output(name, dataType, dims);
  }

  initializer(name: string, dataType: DataTypeId, dims: number[], data: ArrayBufferView): string {
    const bytes = asBytes(data);
    if (this.external && bytes.length >= this.externalThreshold) {
      this.initializers.push({ name, dataType, dims, external: this.external.append(bytes) });
    } else {
      this.initializers.push({ name, dataType, dims, inline: bytes.slice() });
    }
    return name;
  }

  constI64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join(',')}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.initializer(this.fresh('c_i64'), DataType.INT64, dims, BigInt64Array.from(values.map(BigInt)));
      this.constCache.set(key, name);
    }
    return name;
  }

  constF32(values: number[] | Float32Array, dims: number[] = [values.length]): string {
    const arr = values instanceof Float32Array ? values : Float32Array.from(values);
    const key = arr.length <= 16 ? `f32:${dims.join(',')}:${Array.from(arr).join(',')}` : '';
    let name = key ? this.constCache.get(key) : undefined;
    if (!name) {
      name = this.initializer(this.fresh('c_f32'), DataType.FLOAT, dims, arr);
      if (key) this.constCache.set(key, name);
    }
    return name;
  }

  scalarF32(value: number): string {
    return this.constF32([value], []);
  }

  /** Serialises the ModelProto and closes the external-data file. */
  finish(graphName: string, irVersion = 8): Uint8Array {
    const location = this.external ? basename(this.external.path) : '';
    this.external?.close();
    const w = new ProtoWriter();
    w.int(1, irVersion);
    w.string(2, 'recursivemas');
    w.string(3, '0.1.0');
    for (const [domain, version] of this.opsets) {
      w.message(8, (o) => {
        o.string(1, domain);
        o.int(2, version);
      });
    }
    w.message(7, (g) => {
      for (const n of this.nodes) g.message(1, (nw) => writeNode(nw, n));
      g.string(2, graphName);
      for (const t of this.initializers) g.message(5, (tw) => writeInitializer(tw, t, location));
      for (const v of this.inputs) g.message(11, (vw) => writeValueInfo(vw, v));
      for (const v of this.outputs) g.message(12, (vw) => writeValueInfo(vw, v));
    });
    return w.finish();
  }
}

function writeNode(w: ProtoWriter, n: NodeRecord): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.op);
  for (const [name, value] of Object.entries(n.attrs)) w.message(5, (a) => writeAttribute(a, name, value));
  if (n.domain) w.string(7, n.domain);
}

function writeAttribute(a: ProtoWriter, name: string, value: AttrValue): void {
  a.string(1, name);
  if (typeof value === 'number') {
    a.int(3, value).int(20, 2);
  } else if (typeof value === 'string') {
    a.string(4, value).int(20, 3);
  } else if (Array.isArray(value)) {
    a.ints(8, value).int(20, 7);
  } else if ('float' in value) {
    a.float(2, value.float).int(20, 1);
  } else if ('floats' in value) {
    for (const f of value.floats) a.float(7, f);
    a.int(20, 6);
  } else {
    const t = value.tensor;
    a.message(5, (tw) => writeInitializer(tw, { name: '', dataType: t.dataType, dims: t.dims, inline: asBytes(t.data) }, ''));
    a.int(20, 4);
  }
}

function writeInitializer(w: ProtoWriter, t: InitializerRecord, location: string): void {
  w.ints(1, t.dims);
  w.int(2, t.dataType);
  if (t.name) w.string(8, t.name);
  if (t.inline) {
    w.bytes(9, t.inline);
  } else if (t.external) {
    const ext = t.external;
    const entry = (key: string, value: string) =>
      w.message(13, (e) => {
        e.string(1, key);
        e.string(2, value);
      });
    entry('location', location);
    entry('offset', String(ext.offset));
    entry('length', String(ext.length));
    w.int(14, 1);
  }
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.dataType);
      tensor.message(2, (shape) => {
        for (const d of v.dims) {
          shape.message(1, (dim) => {
            if (typeof d === 'number') dim.int(1, d);
            else dim.string(2, d);
          });
        }
      });
    }),
  );
}
