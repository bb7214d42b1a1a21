// A JSON-RPC message reader for `Content-Length` framed streams that survives bad input.
// vscode-jsonrpc's StreamMessageReader loses its place for good after some kinds of garbage (a
// header block without Content-Length leaves the next body to be read as a header), so one stray
// write from a misbehaving peer or a native library would silence the channel. This reader drops
// what it cannot use, reports it, and finds the next `Content-Length:` header. It checks the
// JSON-RPC 2.0 envelope too; payloads are checked by the handlers against their schemas (src/protocol/rpc.ts).
import type { Readable } from 'node:stream';
import { AbstractMessageReader, type DataCallback, type Disposable, type Message } from 'vscode-jsonrpc/node';

export interface MalformedInput {
  /** JSON-RPC error code to answer with: -32700 unparseable, -32600 not a JSON-RPC message. */
  code: -32700 | -32600;
  /** What was wrong, for the log. */
  problem: string;
  /** The request id when one could be read, so the answer can name it; otherwise null. */
  id: string | number | null;
  /** Whether the bad input was a request that expects an answer (or could not be told apart). */
  answerable: boolean;
  /** The start of the rejected bytes, printable, for the log. */
  excerpt: string;
}

export interface FramedReaderOptions {
  /** Larger messages are refused (default 64 MiB). */
  maxMessageBytes?: number;
  onMalformed?: (input: MalformedInput) => void;
  /**
   * A message whose body stops arriving for this long is dropped (default 30 s): a peer that
   * announced N bytes and never sent them would otherwise stall the channel for good.
   */
  frameTimeoutMs?: number;
  /** Called when a message was dropped for that timeout; the supervisor restarts the runtime. */
  onFrameTimeout?: (problem: string) => void;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const LENGTH_HEADER = 'content-length:';
const MAX_HEADER_BYTES = 8192;

function excerpt(bytes: Buffer): string {
  const text = bytes.subarray(0, 120).toString('utf8').replace(/[^\x20-\x7e]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : '?'));
  return bytes.length > 120 ? `${text}... (${bytes.length} bytes)` : text;
}

/** Index of the next `Content-Length:` header (any case) at or after `from`, or -1. */
function nextLengthHeader(buffer: Buffer, from: number): number {
  const lower = buffer.toString('latin1').toLowerCase();
  return lower.indexOf(LENGTH_HEADER, from);
}

/** Checks the JSON-RPC 2.0 envelope; returns a problem description or undefined when it is sound. */
export function envelopeProblem(message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return 'a JSON-RPC message must be a JSON object (batches are not supported)';
  const m = message as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') return '"jsonrpc" must be "2.0"';
  const idOk = (id: unknown) => typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id));
  if ('method' in m) {
    if (typeof m.method !== 'string' || m.method.length === 0) return '"method" must be a non-empty string';
    if ('id' in m && !idOk(m.id)) return '"id" must be a string or a whole number';
    if ('params' in m && (typeof m.params !== 'object' || m.params === null)) return '"params" must be an object or an array';
    return undefined;
  }
  if (!('id' in m) || !(idOk(m.id) || m.id === null)) return 'a message without "method" must be a response with an "id"';
  const hasResult = 'result' in m;
  const hasError = 'error' in m && m.error !== undefined;
  if (hasResult === hasError) return 'a response must have exactly one of "result" and "error"';
  if (hasError) {
    const e = m.error as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || !Number.isInteger(e.code) || typeof e.message !== 'string') return '"error" must have a whole-number "code" and a string "message"';
  }
  return undefined;
}

export class FramedMessageReader extends AbstractMessageReader {
  private buffer: Buffer = Buffer.alloc(0);
  private expected = -1;
  private callback?: DataCallback;
  private readonly maxMessageBytes: number;
  private readonly frameTimeoutMs: number;
  private frameTimer?: NodeJS.Timeout;

  constructor(
    private readonly readable: Readable,
    private readonly options: FramedReaderOptions = {},
  ) {
    super();
    this.maxMessageBytes = options.maxMessageBytes ?? 64 * 1024 * 1024;
    this.frameTimeoutMs = options.frameTimeoutMs ?? 30_000;
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    const onData = (chunk: Buffer) => this.onData(chunk);
    const onError = (error: Error) => this.fireError(error);
    const onClose = () => {
      this.clearFrameTimer();
      this.fireClose();
    };
    this.readable.on('data', onData);
    this.readable.on('error', onError);
    this.readable.on('end', onClose);
    this.readable.on('close', onClose);
    return {
      dispose: () => {
        this.clearFrameTimer();
        this.readable.off('data', onData);
        this.readable.off('error', onError);
        this.readable.off('end', onClose);
        this.readable.off('close', onClose);
      },
    };
  }

  private malformed(input: Omit<MalformedInput, 'excerpt'>, bytes: Buffer): void {
    this.options.onMalformed?.({ ...input, excerpt: excerpt(bytes) });
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    while (this.takeOne());
    // Waiting for the rest of a body: (re)start the clock, so only a body that stops arriving
    // times out, not a large one that keeps coming.
    if (this.expected >= 0) this.armFrameTimer();
    else this.clearFrameTimer();
  }

  private clearFrameTimer(): void {
    clearTimeout(this.frameTimer);
    this.frameTimer = undefined;
  }

  private armFrameTimer(): void {
    if (this.frameTimer) {
      this.frameTimer.refresh();
      return;
    }
    this.frameTimer = setTimeout(() => this.frameTimedOut(), this.frameTimeoutMs);
    this.frameTimer.unref();
  }

  private frameTimedOut(): void {
    this.frameTimer = undefined;
    if (this.expected < 0) return;
    const problem = `a message announced ${this.expected} bytes but only ${this.buffer.length} arrived, then nothing for ${this.frameTimeoutMs / 1000} s`;
    const partial = this.buffer;
    this.expected = -1;
    this.buffer = Buffer.alloc(0);
    this.malformed({ code: -32700, problem, id: null, answerable: false }, partial);
    // What arrived may hold the start of a real message after an overstated length.
    const next = nextLengthHeader(partial, 0);
    if (next >= 0) {
      this.buffer = partial.subarray(next);
      while (this.takeOne());
      if (this.expected >= 0) this.armFrameTimer();
    }
    this.options.onFrameTimeout?.(problem);
  }

  /** Consumes one header or one body from the buffer; false when more bytes are needed. */
  private takeOne(): boolean {
    if (this.expected < 0) {
      const end = this.buffer.indexOf(HEADER_END);
      if (end < 0) {
        if (this.buffer.length > MAX_HEADER_BYTES) {
          // Keep a tail that may hold the start of the next header.
          const next = nextLengthHeader(this.buffer, 1);
          const cut = next > 0 ? next : this.buffer.length - LENGTH_HEADER.length;
          this.malformed({ code: -32700, problem: 'bytes that are not a Content-Length framed message were skipped', id: null, answerable: true }, this.buffer.subarray(0, cut));
          this.buffer = this.buffer.subarray(cut);
          return true;
        }
        return false;
      }
      const length = this.parseHeaders(this.buffer.subarray(0, end));
      if (typeof length === 'number') {
        this.expected = length;
        this.buffer = this.buffer.subarray(end + HEADER_END.length);
        return true;
      }
      const next = nextLengthHeader(this.buffer, 1);
      const cut = next > 0 && next < end ? next : end + HEADER_END.length;
      this.malformed({ code: -32700, problem: length.problem, id: null, answerable: true }, this.buffer.subarray(0, cut));
      this.buffer = this.buffer.subarray(cut);
      return true;
    }
    if (this.buffer.length < this.expected) return false;
    const body = this.buffer.subarray(0, this.expected);
    this.buffer = this.buffer.subarray(this.expected);
    this.expected = -1;
    this.deliver(body);
    return true;
  }

  private parseHeaders(block: Buffer): number | { problem: string } {
    let length: number | undefined;
    for (const line of block.toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      const key = colon > 0 ? line.slice(0, colon).toLowerCase() : '';
      // The base protocol defines two headers; anything else is stray output, not a header.
      if (key !== 'content-length' && key !== 'content-type') return { problem: `not a message header: ${JSON.stringify(line.slice(0, 80))}` };
      if (key === 'content-length') {
        const value = line.slice(colon + 1).trim();
        if (!/^\d{1,12}$/.test(value)) return { problem: `Content-Length must be a whole number, got ${JSON.stringify(value.slice(0, 40))}` };
        length = Number(value);
      }
    }
    if (length === undefined) return { problem: 'the message header has no Content-Length' };
    if (length > this.maxMessageBytes) return { problem: `a message of ${length} bytes exceeds the ${this.maxMessageBytes}-byte limit` };
    return length;
  }

  private deliver(body: Buffer): void {
    let message: unknown;
    try {
      message = JSON.parse(body.toString('utf8'));
    } catch (e) {
      // A Content-Length that overstated the body swallowed the next frame's header: resume there.
      const next = nextLengthHeader(body, 1);
      if (next > 0) this.buffer = Buffer.concat([body.subarray(next), this.buffer]);
      this.malformed({ code: -32700, problem: `the message body is not JSON (${(e as Error).message})`, id: null, answerable: true }, next > 0 ? body.subarray(0, next) : body);
      return;
    }
    const problem = envelopeProblem(message);
    if (problem) {
      const m = (typeof message === 'object' && message !== null ? message : {}) as Record<string, unknown>;
      const id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : null;
      // Answering a broken response or notification would start a ping-pong of errors.
      const answerable = typeof m.method === 'string' ? id !== null : !('result' in m || 'error' in m);
      this.malformed({ code: -32600, problem, id, answerable }, body);
      return;
    }
    this.callback?.(message as Message);
  }
}
