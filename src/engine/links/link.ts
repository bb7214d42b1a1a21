// RecursiveLink modules as small ONNX graphs, run on the same execution provider as the models and
// applied to all vectors of a hand-off at once ([n, dIn] -> [n, dOut]).
//   inner (ln_res_adapter):        post_ln( x + proj2( gelu( proj1( pre_ln(x) ) ) ) )
//   outer (outer_ln_res_adapter):  ln_target( proj2( gelu( proj1( ln_source(x) ) ) ) + residual_proj(x) )
//   training-free:                 rescale( x M ) with M from a ridge fit (or identity), rows rescaled
//                                  to the target embedding table's mean norm.
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import { UserError, type Device } from '../api';
import { DataType, GraphBuilder } from '../onnx/graph';
import { createSession } from '../model/decoder';

export type LinkKind = 'inner' | 'outer';
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

const LN_EPS = 1e-5;

const REQUIRED: Record<LinkKind, string[]> = {
  inner: ['pre_ln.weight', 'pre_ln.bias', 'proj1.weight', 'proj1.bias', 'proj2.weight', 'proj2.bias', 'post_ln.weight', 'post_ln.bias'],
  outer: [
    'ln_source.weight', 'ln_source.bias', 'proj1.weight', 'proj1.bias', 'proj2.weight', 'proj2.bias',
    'residual_proj.weight', 'residual_proj.bias', 'ln_target.weight', 'ln_target.bias',
  ],
};

export interface LinkExpectation {
  /** Where the weights came from, named in errors. */
  source: string;
  /** Width of the vectors going in (the sender's hidden size) and out (the receiver's). */
  dIn: number;
  dOut: number;
  /** Model names, for errors. */
  from: string;
  to: string;
}

/** Checks names and shapes against the models the link must bridge, naming file and dimension. */
export function checkLinkTensors(kind: LinkKind, tensors: Map<string, NamedTensor>, e: LinkExpectation): void {
  const missing = REQUIRED[kind].filter((k) => !tensors.has(k));
  if (missing.length) {
    const found = [...tensors.keys()].slice(0, 12).join(', ');
    throw new UserError(`${e.source} is not an ${kind} RecursiveLink: it lacks ${missing.join(', ')} (it has ${found}).`, 'link-mismatch');
  }
  const shape = (k: string) => tensors.get(k)!.shape;
  const want = (k: string, expected: number[], meaning: string) => {
    const got = shape(k);
    if (got.length !== expected.length || got.some((d, i) => d !== expected[i])) {
      throw new UserError(
        `${e.source}: ${k} has shape [${got.join(', ')}] but bridging ${e.from} (hidden ${e.dIn}) to ${e.to} (hidden ${e.dOut}) needs [${expected.join(', ')}] (${meaning}). This link was trained for other models.`,
        'link-mismatch',
      );
    }
  };
  if (kind === 'inner') {
    const d = e.dIn;
    want('pre_ln.weight', [d], 'the model width');
    want('pre_ln.bias', [d], 'the model width');
    want('proj1.weight', [d, d], 'd -> d');
    want('proj1.bias', [d], 'd');
    want('proj2.weight', [d, d], 'd -> d');
    want('proj2.bias', [d], 'd');
    want('post_ln.weight', [d], 'the model width');
    want('post_ln.bias', [d], 'the model width');
  } else {
    const [hidden] = shape('proj1.weight');
    if (hidden === undefined) {
      throw new UserError(`${e.source}: proj1.weight is a scalar, but an outer RecursiveLink's proj1.weight is a [hidden, ${e.dIn}] matrix. This file is not an outer link.`, 'link-mismatch');
    }
    want('ln_source.weight', [e.dIn], "the sender's width");
    want('ln_source.bias', [e.dIn], "the sender's width");
    want('proj1.weight', [hidden, e.dIn], "input width = the sender's hidden size");
    want('proj1.bias', [hidden], 'proj1 output width');
    want('proj2.weight', [e.dOut, hidden], "output width = the receiver's hidden size");
    want('proj2.bias', [e.dOut], "the receiver's width");
    want('residual_proj.weight', [e.dOut, e.dIn], "sender's width -> receiver's width");
    want('residual_proj.bias', [e.dOut], "the receiver's width");
    want('ln_target.weight', [e.dOut], "the receiver's width");
    want('ln_target.bias', [e.dOut], "the receiver's width");
  }
}

function transposed(t: NamedTensor): Float32Array {
  const [rows, cols] = t.shape as [number, number];
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c]!;
  return out;
}

class LinkGraph {
  constructor(
    readonly g: GraphBuilder,
    private readonly tensors: Map<string, NamedTensor>,
    /** Prefix of the initializers' names, so the link can share a graph with a decoder. */
    private readonly scope: string,
  ) {}

  param(name: string): string {
    const t = this.tensors.get(name)!;
    return this.g.initializer(`${this.scope}${name}`, DataType.FLOAT, t.shape, t.data);
  }

  linear(x: string, prefix: string): string {
    const w = this.tensors.get(`${prefix}.weight`)!;
    const wt = this.g.initializer(`${this.scope}${prefix}.weight.t`, DataType.FLOAT, [w.shape[1]!, w.shape[0]!], transposed(w));
    return this.g.op('Add', [this.g.op('MatMul', [x, wt]), this.param(`${prefix}.bias`)]);
  }

  layerNorm(x: string, prefix: string): string {
    return this.g.op('LayerNormalization', [x, this.param(`${prefix}.weight`), this.param(`${prefix}.bias`)], { axis: -1, epsilon: { float: LN_EPS } });
  }

  /** Exact (erf) GELU. */
  gelu(x: string): string {
    const { g } = this;
    const erf = g.op('Erf', [g.op('Mul', [x, g.scalarF32(Math.SQRT1_2)])]);
    return g.op('Mul', [g.op('Mul', [x, g.scalarF32(0.5)]), g.op('Add', [erf, g.scalarF32(1)])]);
  }
}

/**
 * A link's computation as graph nodes: built into the link's own session, or into an agent's
 * decoder graph after its last hidden state (the inner link), so that a latent step is one run.
 * `key` identifies the weights, for the graph cache.
 */
export interface LinkComputation {
  key: string;
  /** Adds the link's nodes to `g`, mapping `x` ([..., dIn]) to the returned value ([..., dOut]). */
  append(g: GraphBuilder, x: string, scope: string): string;
}

function weightsKey(kind: string, parts: [string, NamedTensor][]): string {
  const hash = createHash('sha256').update(kind);
  for (const [name, t] of parts) {
    hash.update(`${name}:${t.shape.join('x')};`);
    hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return hash.digest('hex').slice(0, 24);
}

/** A trained link's computation (names and shapes checked first), for its own session or a decoder graph. */
export function linkComputation(kind: LinkKind, tensors: Map<string, NamedTensor>, e: LinkExpectation): LinkComputation {
  checkLinkTensors(kind, tensors, e);
  return {
    key: weightsKey(kind, REQUIRED[kind].map((name) => [name, tensors.get(name)!])),
    append(g, x, scope) {
      const lg = new LinkGraph(g, tensors, scope);
      if (kind === 'inner') {
        const h = lg.linear(lg.gelu(lg.linear(lg.layerNorm(x, 'pre_ln'), 'proj1')), 'proj2');
        return lg.layerNorm(g.op('Add', [x, h]), 'post_ln');
      }
      const h = lg.linear(lg.gelu(lg.linear(lg.layerNorm(x, 'ln_source'), 'proj1')), 'proj2');
      return lg.layerNorm(g.op('Add', [h, lg.linear(x, 'residual_proj')]), 'ln_target');
    },
  };
}

export class RecursiveLink {
  private constructor(
    readonly kind: LinkKind | 'training-free',
    readonly dIn: number,
    readonly dOut: number,
    private readonly session: ort.InferenceSession,
    readonly device: Device,
    /**
     * The key of the weights (LinkComputation.key): a decoder graph built with this link as its
     * latent head carries the same key. Only the key is kept: the weights live in the session.
     */
    readonly key: string,
  ) {}

  static async fromTensors(kind: LinkKind, tensors: Map<string, NamedTensor>, e: LinkExpectation, device: Device): Promise<RecursiveLink> {
    return RecursiveLink.fromComputation(kind, linkComputation(kind, tensors, e), e.dIn, e.dOut, device);
  }

  /**
   * A training-free link: y = x M (M omitted when it is the identity), each row then rescaled to
   * `targetNorm`, the mean norm of the receiving model's input-embedding rows.
   */
  static async trainingFree(map: Float32Array | null, dIn: number, dOut: number, targetNorm: number, device: Device): Promise<RecursiveLink> {
    if (!map && dIn !== dOut) throw new UserError(`An identity link cannot map width ${dIn} to ${dOut}.`, 'link-mismatch');
    const computation: LinkComputation = {
      key: weightsKey(`training-free ${dIn}x${dOut} ${targetNorm}`, map ? [['map', { shape: [dIn, dOut], data: map }]] : []),
      append(g, x, scope) {
        const mapped = map ? g.op('MatMul', [x, g.initializer(`${scope}map`, DataType.FLOAT, [dIn, dOut], map)]) : x;
        const norm = g.op('Max', [g.op('ReduceL2', [mapped], { axes: [-1], keepdims: 1 }), g.scalarF32(1e-12)]);
        return g.op('Mul', [g.op('Div', [mapped, norm]), g.scalarF32(targetNorm)]);
      },
    };
    return RecursiveLink.fromComputation('training-free', computation, dIn, dOut, device);
  }

  private static async fromComputation(kind: RecursiveLink['kind'], computation: LinkComputation, dIn: number, dOut: number, device: Device): Promise<RecursiveLink> {
    const g = new GraphBuilder();
    const x = g.input('x', DataType.FLOAT, ['n', dIn]);
    g.bindOutput(computation.append(g, x, ''), 'y', DataType.FLOAT, ['n', dOut]);
    // A link runs on one CPU thread (also where a GPU provider falls back to the CPU): its work is a
    // few d x d products, and a thread pool of its own keeps spinning after each run, taking a core
    // from the decoder's next run (measured on 2 cores: a latent step's decoder run took 25.0 ms
    // after a 2-thread link, 14.1 ms after a 1-thread one; the link itself 0.53 ms either way).
    const { session, device: used } = await createSession(g.finish(`recursive-link-${kind}`), device, 1);
    return new RecursiveLink(kind, dIn, dOut, session, used, computation.key);
  }

  /** Maps `count` row vectors ([count * dIn]) to [count * dOut]. */
  async apply(x: Float32Array, count: number): Promise<Float32Array> {
    if (x.length !== count * this.dIn) {
      throw new UserError(`A ${this.kind} link of width ${this.dIn} got ${x.length / Math.max(count, 1)}-wide vectors.`, 'link-mismatch');
    }
    const out = await this.session.run({ x: new ort.Tensor('float32', x, [count, this.dIn]) });
    return out.y!.data as Float32Array;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
