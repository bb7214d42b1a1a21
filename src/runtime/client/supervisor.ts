// The client side of the runtime process, for the extension, the CLI and tests (no `vscode` here,
// and nothing that loads ONNX Runtime). It spawns the runtime, speaks JSON-RPC to it, queues work so
// that two solves never run at once, restarts it after a crash with exponential backoff, and gives up
// (saying why) when it keeps crashing. Failed requests carry the last lines the runtime printed.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createMessageConnection, RequestType0, ResponseError, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { CancelledError, UserError } from '../../engine/host';
import { RpcErrorCodes, validateRpcErrorData } from '../../protocol/errors';
import type { SolveEvent, SolveResult } from '../../protocol/events';
import {
  Notifications,
  Requests,
  type InitializeParams,
  type InitializeResult,
  type LoadTeamParams,
  type LoadTeamResult,
  type LogNotification,
  type NotificationHandlers,
  type NotificationName,
  type PingResult,
  type RpcRequest,
  type SolveEventNotification,
  type SolveParams,
} from '../../protocol/rpc';
import { FramedMessageReader } from '../framing';

export type RuntimeState = 'starting' | 'ready' | 'busy' | 'crashed' | 'stopped';

export interface Disposable {
  dispose(): void;
}

/** Subscribe with a listener; dispose the result to unsubscribe. */
export type Event<T> = (listener: (value: T) => void) => Disposable;

export interface StateChange {
  state: RuntimeState;
  /** Why, for 'crashed' and for 'stopped' after giving up. */
  detail?: string;
}

export interface RuntimeLogEntry {
  level: LogNotification['level'];
  message: string;
  /** `runtime`: a log notification; `stderr`/`stdout`: a line the process printed; `supervisor`: ours. */
  source: 'runtime' | 'stderr' | 'stdout' | 'supervisor';
}

export interface SupervisorOptions {
  /** The runtime's entry: src/runtime/process/main.ts (with nodeArgs ['--import', 'tsx']) or dist/runtime.mjs. Default: found next to this module. */
  runtimeEntry?: string;
  /** Node arguments before the entry. Default: ['--import', 'tsx'] for a .ts entry, none otherwise. */
  nodeArgs?: string[];
  /** The Node binary (default process.execPath; ELECTRON_RUN_AS_NODE is set, so VS Code's works). */
  execPath?: string;
  cwd?: string;
  /** Added to the environment the runtime inherits. */
  env?: Record<string, string | undefined>;
  clientName?: string;
  threads?: number;
  modelsDirectory?: string;
  /** Give up after this many crashes within crashWindowMs (default 3 within 60 s). */
  maxCrashes?: number;
  crashWindowMs?: number;
  /** First restart delay, doubled per recent crash up to maxRestartDelayMs (default 250 ms, 8 s). */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** How long spawning plus `initialize` may take (default 60 s). */
  startTimeoutMs?: number;
  /** SIGTERM, then SIGKILL after this long (default 3 s). */
  killTimeoutMs?: number;
  /** Lines of runtime output quoted in errors (default 20). */
  outputLines?: number;
  /** A message from the runtime whose body stops arriving this long means a broken channel: restart (default 30 s). */
  frameTimeoutMs?: number;
}

export type RuntimeErrorReason = 'crashed' | 'gave-up' | 'stopped' | 'protocol' | 'engine' | 'start-failed';

/** A failure of the runtime process or of the protocol, as opposed to a cancel or a user error. */
export class RuntimeError extends Error {
  override name = 'RuntimeError';
  constructor(
    message: string,
    readonly reason: RuntimeErrorReason,
    /** The last lines the runtime printed (stderr, and stray stdout). */
    readonly output: string[] = [],
  ) {
    super(message);
  }
}

class Emitter<T> {
  private readonly listeners = new Set<(value: T) => void>();
  readonly event: Event<T> = (listener) => {
    this.listeners.add(listener);
    return { dispose: () => void this.listeners.delete(listener) };
  };
  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch {
        // One failing listener must not starve the others or break the supervisor.
      }
    }
  }
  clear(): void {
    this.listeners.clear();
  }
}

/** Where the runtime is: src/runtime/process/main.ts when running from source (tsx), beside the bundle in dist/ otherwise. */
export function defaultRuntimeCommand(): { runtimeEntry: string; nodeArgs: string[]; cwd?: string } {
  const here = typeof __filename === 'string' ? __filename : fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    // tsx is resolved from the working directory, so run from the package root.
    return { runtimeEntry: join(dirname(here), '..', 'process', 'main.ts'), nodeArgs: ['--import', 'tsx'], cwd: resolve(dirname(here), '..', '..', '..') };
  }
  return { runtimeEntry: join(dirname(here), 'runtime.mjs'), nodeArgs: [] };
}

interface Pending {
  method: string;
  reject: (error: Error) => void;
}

interface Session {
  generation: number;
  child: ChildProcess;
  connection: MessageConnection;
  pending: Set<Pending>;
  ready: boolean;
  /** Set when we stop it on purpose (dispose, failed start). */
  stopping: boolean;
  exited: boolean;
  closed: Promise<void>;
  crashError?: Error;
  /** Why the supervisor killed it, when it did (a stalled message): reported instead of the signal. */
  killedBecause?: string;
}

interface Job {
  /** The solve or load id, for cancel(id). */
  id?: string;
  run: (session: Session) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  cancel: AbortController;
}

export class RuntimeSupervisor {
  private readonly stateEmitter = new Emitter<StateChange>();
  private readonly eventEmitter = new Emitter<SolveEventNotification>();
  private readonly logEmitter = new Emitter<RuntimeLogEntry>();
  /** Every solve event, after validation. */
  readonly onEvent: Event<SolveEventNotification> = this.eventEmitter.event;
  readonly onStateChange: Event<StateChange> = this.stateEmitter.event;
  readonly onLog: Event<RuntimeLogEntry> = this.logEmitter.event;

  private readonly options: Required<Omit<SupervisorOptions, 'cwd' | 'env' | 'threads' | 'modelsDirectory' | 'frameTimeoutMs'>> & SupervisorOptions;
  private currentState: RuntimeState = 'stopped';
  private session?: Session;
  private generation = 0;
  private starting?: Promise<Session>;
  private restartTimer?: NodeJS.Timeout;
  private readyWaiters: { resolve: (s: Session) => void; reject: (e: Error) => void }[] = [];
  private crashTimes: number[] = [];
  private gaveUp?: RuntimeError;
  private disposed = false;
  private output: string[] = [];
  private init?: InitializeResult;
  private readonly queue: Job[] = [];
  private running?: Job;
  private readonly solveListeners = new Map<string, (event: SolveEvent) => void>();

  constructor(options: SupervisorOptions = {}) {
    const defaults = defaultRuntimeCommand();
    const entry = options.runtimeEntry ?? defaults.runtimeEntry;
    this.options = {
      runtimeEntry: entry,
      nodeArgs: options.nodeArgs ?? (options.runtimeEntry ? (entry.endsWith('.ts') ? ['--import', 'tsx'] : []) : defaults.nodeArgs),
      execPath: options.execPath ?? process.execPath,
      clientName: options.clientName ?? 'recursivemas',
      maxCrashes: options.maxCrashes ?? 3,
      crashWindowMs: options.crashWindowMs ?? 60_000,
      restartDelayMs: options.restartDelayMs ?? 250,
      maxRestartDelayMs: options.maxRestartDelayMs ?? 8_000,
      startTimeoutMs: options.startTimeoutMs ?? 60_000,
      killTimeoutMs: options.killTimeoutMs ?? 3_000,
      outputLines: options.outputLines ?? 20,
      cwd: options.cwd ?? (options.runtimeEntry ? undefined : defaults.cwd),
      env: options.env,
      threads: options.threads,
      modelsDirectory: options.modelsDirectory,
      frameTimeoutMs: options.frameTimeoutMs,
    };
  }

  get state(): RuntimeState {
    return this.currentState;
  }

  /** The runtime's process id while one runs. */
  get pid(): number | undefined {
    return this.session && !this.session.exited ? this.session.child.pid : undefined;
  }

  /** What the runtime reported at start (versions, providers, limits). */
  get runtimeInfo(): InitializeResult | undefined {
    return this.init;
  }

  /** The last lines the runtime printed. */
  lastOutput(lines = this.options.outputLines): string[] {
    return this.output.slice(-lines);
  }

  /** Starts the runtime (if it is not running) and waits until it answered `initialize`. */
  async start(): Promise<InitializeResult> {
    await this.ready();
    return this.init!;
  }

  /** Forgets earlier crashes after the supervisor gave up, and starts again. */
  async restart(): Promise<InitializeResult> {
    if (this.disposed) throw this.stoppedError();
    this.gaveUp = undefined;
    this.crashTimes = [];
    if (this.session && !this.session.exited) await this.stopSession(this.session);
    return this.start();
  }

  // --- requests ---------------------------------------------------------------------------

  /** Queued behind other loads and solves; events also go to `onEvent` (tagged with params.id). */
  solve(params: SolveParams, onEvent?: (event: SolveEvent) => void): Promise<SolveResult> {
    // Refused here rather than after waiting in the queue; the runtime checks again on receipt.
    const checked = Requests.solve.params(params);
    if (!checked.ok) return Promise.reject(new UserError(checked.message, 'bad-input'));
    return this.enqueue(params.id, async (session) => {
      if (onEvent) this.solveListeners.set(params.id, onEvent);
      try {
        return await this.send(session, Requests.solve, params);
      } finally {
        this.solveListeners.delete(params.id);
      }
    }) as Promise<SolveResult>;
  }

  loadTeam(params: LoadTeamParams, onEvent?: (event: SolveEvent) => void): Promise<LoadTeamResult> {
    const checked = Requests.loadTeam.params(params);
    if (!checked.ok) return Promise.reject(new UserError(checked.message, 'bad-input'));
    return this.enqueue(params.id, async (session) => {
      if (onEvent && params.id) this.solveListeners.set(params.id, onEvent);
      try {
        return await this.send(session, Requests.loadTeam, params);
      } finally {
        if (params.id) this.solveListeners.delete(params.id);
      }
    }) as Promise<LoadTeamResult>;
  }

  unloadTeam(): Promise<void> {
    return this.enqueue(undefined, async (session) => {
      await this.send(session, Requests.unloadTeam);
    }) as Promise<void>;
  }

  /** Answered by the runtime between model steps, also while it is busy. */
  async ping(): Promise<PingResult> {
    return this.send(await this.ready(), Requests.ping);
  }

  /**
   * Cancels a queued or running solve (or load) by id: a queued one is dropped at once, a running
   * one stops within one model step and its promise rejects with CancelledError. False when unknown.
   */
  async cancel(id: string): Promise<boolean> {
    const queued = this.queue.findIndex((j) => j.id === id);
    if (queued >= 0) {
      const [job] = this.queue.splice(queued, 1);
      job!.reject(new CancelledError('cancelled before it started'));
      return true;
    }
    const job = this.running;
    if (!job || job.id !== id) return false;
    job.cancel.abort();
    const session = this.session;
    // If the runtime finished just before the cancel arrived, the job simply resolves.
    if (session?.ready && !session.exited) await this.send(session, Requests.cancel, { id }).catch(() => undefined);
    return true;
  }

  /** Stops the runtime (SIGTERM, then SIGKILL) and fails everything queued. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.restartTimer);
    const stopped = this.stoppedError();
    for (const job of this.queue.splice(0)) job.reject(stopped);
    for (const w of this.readyWaiters.splice(0)) w.reject(stopped);
    if (this.session && !this.session.exited) await this.stopSession(this.session);
    this.setState('stopped', 'disposed');
    this.stateEmitter.clear();
    this.eventEmitter.clear();
    this.logEmitter.clear();
  }

  // --- queue ------------------------------------------------------------------------------

  private enqueue(id: string | undefined, run: Job['run']): Promise<unknown> {
    if (this.disposed) return Promise.reject(this.stoppedError());
    if (this.gaveUp) return Promise.reject(this.gaveUp);
    if (id !== undefined && (this.running?.id === id || this.queue.some((j) => j.id === id))) {
      return Promise.reject(new UserError(`A solve with id "${id}" is already queued or running.`, 'bad-input'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ id, run, resolve, reject, cancel: new AbortController() });
      this.pump();
    });
  }

  private pump(): void {
    if (this.running || this.disposed) return;
    const job = this.queue.shift();
    if (!job) return;
    this.running = job;
    const cancelled = new Promise<never>((_, reject) => {
      job.cancel.signal.addEventListener('abort', () => reject(new CancelledError('cancelled')), { once: true });
    });
    cancelled.catch(() => {});
    const work = (async () => {
      // Waiting for a (re)start can take a while; a cancel in the meantime ends the wait.
      const session = await Promise.race([this.ready(), cancelled]);
      if (job.cancel.signal.aborted) throw new CancelledError('cancelled before it started');
      this.setState('busy');
      return job.run(session);
    })();
    // The state is settled before the caller hears the outcome, so 'ready' really means idle.
    const finish = () => {
      this.running = undefined;
      if (this.queue.length === 0 && this.session?.ready && !this.session.exited && this.currentState === 'busy') this.setState('ready');
      this.pump();
    };
    work.then(
      (value) => {
        finish();
        job.resolve(value);
      },
      (error: Error) => {
        finish();
        job.reject(error);
      },
    );
  }

  // --- process ----------------------------------------------------------------------------

  private setState(state: RuntimeState, detail?: string): void {
    if (state === this.currentState && detail === undefined) return;
    this.currentState = state;
    this.stateEmitter.fire(detail === undefined ? { state } : { state, detail });
  }

  private log(level: RuntimeLogEntry['level'], source: RuntimeLogEntry['source'], message: string): void {
    this.logEmitter.fire({ level, source, message });
  }

  private stoppedError(): RuntimeError {
    return new RuntimeError('The RecursiveMAS runtime was stopped.', 'stopped', this.lastOutput());
  }

  private ready(): Promise<Session> {
    if (this.disposed) return Promise.reject(this.stoppedError());
    if (this.gaveUp) return Promise.reject(this.gaveUp);
    if (this.session?.ready && !this.session.exited) return Promise.resolve(this.session);
    const waiter = new Promise<Session>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
    if (!this.starting && !this.restartTimer && (!this.session || this.session.exited)) this.spawnSession();
    return waiter;
  }

  private outputLine(source: 'stderr' | 'stdout', line: string): void {
    this.output.push(line);
    if (this.output.length > 200) this.output.splice(0, this.output.length - 200);
    this.log(source === 'stderr' ? 'info' : 'warn', source, line);
  }

  private spawnSession(): void {
    const generation = ++this.generation;
    this.setState('starting');
    const o = this.options;
    const child = spawn(o.execPath, [...o.nodeArgs, o.runtimeEntry], {
      cwd: o.cwd,
      env: {
        // glibc raises its mmap threshold after each large free, so later multi-MB buffers (ONNX
        // Runtime's weight packing) land in the heap and are never returned: a fixed threshold kept
        // the released Sequential-Light team 190 MB smaller (4.74 vs 4.93 GB, measured). Ignored
        // elsewhere; a user's own value wins.
        MALLOC_MMAP_THRESHOLD_: '131072',
        ...process.env,
        ...o.env,
        ELECTRON_RUN_AS_NODE: '1',
        RECURSIVEMAS_RPC_FD: '3',
        RECURSIVEMAS_PARENT_PID: String(process.pid),
      },
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    for (const [stream, source] of [
      [child.stderr, 'stderr'],
      [child.stdout, 'stdout'],
    ] as const) {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const lines = (partial + chunk).split(/\r?\n/);
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) this.outputLine(source, line);
      });
      stream?.on('end', () => {
        if (partial.trim()) this.outputLine(source, partial);
        partial = '';
      });
    }
    child.stdin?.on('error', () => {});
    const reader = new FramedMessageReader(child.stdio[3] as Readable, {
      onMalformed: (m) => this.log('warn', 'supervisor', `the runtime wrote something that is not a protocol message (${m.problem}): ${m.excerpt}`),
      frameTimeoutMs: o.frameTimeoutMs,
      // A half-sent message means the runtime is stuck mid-write or its channel is broken; every
      // answer after it would be lost too. Kill it: the exit handler restarts it like a crash.
      onFrameTimeout: (problem) => {
        if (session.exited || session.stopping) return;
        session.killedBecause = `stopped sending in the middle of a message (${problem}), so it was restarted`;
        this.log('error', 'supervisor', `the runtime ${session.killedBecause}`);
        child.kill('SIGKILL');
      },
    });
    // vscode-jsonrpc turns a failed request write into an unhandled rejection (fatal in a CLI), so
    // writes to a runtime that is gone are dropped here; the exit handler fails what is pending.
    const toRuntime = new Writable({
      write(chunk: Buffer, _encoding, done) {
        const stdin = child.stdin;
        if (!stdin || stdin.destroyed || !stdin.writable) return done();
        stdin.write(chunk, () => done());
      },
    });
    const writer = new StreamMessageWriter(toRuntime, 'utf-8');
    const connection = createMessageConnection(reader, writer, {
      error: (m) => this.log('warn', 'supervisor', `[jsonrpc] ${m}`),
      warn: (m) => this.log('warn', 'supervisor', `[jsonrpc] ${m}`),
      info: () => {},
      log: () => {},
    });
    let markClosed!: () => void;
    const session: Session = {
      generation,
      child,
      connection,
      pending: new Set(),
      ready: false,
      stopping: false,
      exited: false,
      closed: new Promise<void>((r) => (markClosed = r)),
    };
    this.session = session;
    connection.onNotification((method, params) => this.onNotification(session, method, params));
    connection.onRequest((method) => {
      throw new ResponseError(RpcErrorCodes.methodNotFound, `the supervisor answers no requests (got "${method}")`);
    });
    connection.listen();

    let ended = false;
    const onEnd = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (ended) return;
      ended = true;
      session.exited = true;
      this.onSessionEnd(session, code, signal, error);
      connection.dispose();
      markClosed();
    };
    child.on('error', (e) => onEnd(null, null, e));
    child.on('close', (code, signal) => onEnd(code, signal));

    const initialize: InitializeParams = { clientName: o.clientName };
    if (o.threads !== undefined) initialize.threads = o.threads;
    if (o.modelsDirectory !== undefined) initialize.modelsDirectory = o.modelsDirectory;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RuntimeError(`The RecursiveMAS runtime did not start within ${o.startTimeoutMs / 1000} s.`, 'start-failed')), o.startTimeoutMs);
    });
    this.starting = Promise.race([this.send(session, Requests.initialize, initialize), timeout])
      .then((result) => {
        this.init = result;
        session.ready = true;
        this.setState(this.running ? 'busy' : 'ready');
        for (const w of this.readyWaiters.splice(0)) w.resolve(session);
        return session;
      })
      .catch((e: Error) => {
        // A runtime that cannot start counts as a crash: the exit handler decides on a retry.
        if (!session.exited) {
          this.log('error', 'supervisor', `the runtime failed to start: ${e.message}`);
          session.crashError = e;
          child.kill('SIGKILL');
        }
        return session;
      })
      .finally(() => {
        clearTimeout(timer);
        this.starting = undefined;
      });
  }

  private onSessionEnd(session: Session, code: number | null, signal: NodeJS.Signals | null, error?: Error): void {
    const lines = this.lastOutput();
    const quoted = lines.length ? `\nIts last output:\n  ${lines.join('\n  ')}` : '\nIt printed nothing.';
    if (session.stopping || this.disposed) {
      for (const p of session.pending) p.reject(this.stoppedError());
      session.pending.clear();
      if (this.session === session && !this.disposed) this.setState('stopped');
      return;
    }
    const how = error
      ? `could not be started (${error.message})`
      : session.killedBecause
        ? session.killedBecause
        : signal
        ? `was killed by ${signal}`
        : `exited with code ${code}`;
    const during = [...session.pending].map((p) => p.method).filter((m) => m !== Requests.cancel.method);
    const while_ = !session.ready ? ' while starting' : during.length ? ` while running ${[...new Set(during)].join(', ')}` : '';
    const crash = new RuntimeError(`The RecursiveMAS runtime ${how}${while_}.${quoted}`, 'crashed', lines);
    session.crashError = crash;
    for (const p of session.pending) p.reject(crash);
    session.pending.clear();
    if (this.session !== session) return;

    const now = Date.now();
    this.crashTimes = [...this.crashTimes.filter((t) => now - t < this.options.crashWindowMs), now];
    this.log('error', 'supervisor', crash.message);
    this.setState('crashed', crash.message);
    if (this.crashTimes.length >= this.options.maxCrashes) {
      this.gaveUp = new RuntimeError(
        `The RecursiveMAS runtime crashed ${this.crashTimes.length} times within ${Math.round(this.options.crashWindowMs / 1000)} s, so it is not restarted again. ` +
          `The last time it ${how}${while_}.${quoted}\nFix the cause (see the output above), then restart the runtime.`,
        'gave-up',
        lines,
      );
      this.setState('stopped', this.gaveUp.message);
      for (const w of this.readyWaiters.splice(0)) w.reject(this.gaveUp);
      for (const job of this.queue.splice(0)) job.reject(this.gaveUp);
      return;
    }
    const delay = Math.min(this.options.restartDelayMs * 2 ** (this.crashTimes.length - 1), this.options.maxRestartDelayMs);
    this.log('info', 'supervisor', `restarting the runtime in ${delay} ms`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.disposed && !this.gaveUp) this.spawnSession();
    }, delay);
  }

  private async stopSession(session: Session): Promise<void> {
    session.stopping = true;
    session.child.stdin?.end();
    session.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!session.exited) session.child.kill('SIGKILL');
    }, this.options.killTimeoutMs);
    await session.closed;
    clearTimeout(timer);
  }

  private onNotification(session: Session, method: string, params: unknown): void {
    if (session !== this.session) return;
    const handle = this.notificationHandlers.get(method);
    if (handle) handle(params);
    else this.log('warn', 'supervisor', `ignored an unknown notification "${method}" from the runtime`);
  }

  /** By method name: validates the params, then hands them to the notification's handler. */
  private readonly notificationHandlers = (() => {
    const handlers: NotificationHandlers = {
      solveEvent: (n) => this.onSolveEvent(n),
      log: (n) => this.log(n.level, 'runtime', n.message),
    };
    const byMethod = new Map<string, (params: unknown) => void>();
    const bind = <K extends NotificationName>(name: K) => {
      const notification = Notifications[name];
      const handler = handlers[name];
      byMethod.set(notification.method, (raw) => {
        const v = notification.params(raw);
        if (v.ok) handler(v.value);
        else this.log('warn', 'supervisor', `dropped a malformed ${notification.method} notification from the runtime: ${v.message}`);
      });
    };
    for (const name of Object.keys(Notifications) as NotificationName[]) bind(name);
    return byMethod;
  })();

  private onSolveEvent(notification: SolveEventNotification): void {
    this.eventEmitter.fire(notification);
    const listener = this.solveListeners.get(notification.id);
    if (!listener) return;
    try {
      listener(notification.event);
    } catch (e) {
      this.log('warn', 'supervisor', `a solve event listener failed: ${(e as Error).message}`);
    }
  }

  /** Sends one request on a session; fails it with the crash error if the runtime dies meanwhile. */
  private send<R>(session: Session, request: RpcRequest<undefined, R>): Promise<R>;
  // NoInfer: the request alone decides what its params are, so a wrong argument is an error, not a wider P.
  private send<P, R>(session: Session, request: RpcRequest<P, R>, params: NoInfer<P>): Promise<R>;
  private send<P, R>(session: Session, request: RpcRequest<P, R>, params?: P): Promise<R> {
    const method = request.method;
    return new Promise<R>((resolve, reject) => {
      if (session.exited) {
        reject(session.crashError ?? this.stoppedError());
        return;
      }
      const pending: Pending = { method, reject };
      session.pending.add(pending);
      let sent: Promise<unknown>;
      try {
        sent = request.type instanceof RequestType0 ? session.connection.sendRequest(request.type) : session.connection.sendRequest(request.type, params);
      } catch (e) {
        sent = Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
      sent.then(
        (result) => {
          session.pending.delete(pending);
          const v = request.result(result);
          if (v.ok) resolve(v.value);
          else reject(new RuntimeError(`The runtime answered ${method} with a malformed result: ${v.message}`, 'protocol', this.lastOutput()));
        },
        (error: unknown) => {
          if (error instanceof ResponseError) {
            session.pending.delete(pending);
            reject(this.translate(error, method));
            return;
          }
          // The connection broke: the process is going away; wait for its exit to report why.
          const fallback = setTimeout(() => {
            session.pending.delete(pending);
            reject(new RuntimeError(`The connection to the runtime broke during ${method}: ${(error as Error)?.message ?? error}`, 'crashed', this.lastOutput()));
          }, 3000);
          void session.closed.then(() => clearTimeout(fallback));
        },
      );
    });
  }

  private translate(error: ResponseError<unknown>, method: string): Error {
    const data = error.data === undefined ? undefined : validateRpcErrorData(error.data);
    const kind = data?.ok ? data.value.kind : undefined;
    if (error.code === RpcErrorCodes.cancelled || kind === 'cancelled') return new CancelledError(error.message || 'cancelled');
    if (kind === 'user' && data?.ok) {
      return new UserError(error.message, data.value.code ?? 'bad-input', data.value.action);
    }
    if (kind === 'invalid' || error.code === RpcErrorCodes.invalidParams) return new UserError(error.message, 'bad-input');
    const reason = kind === 'engine' ? 'engine' : 'protocol';
    return new RuntimeError(`${method} failed in the runtime: ${error.message}`, reason, this.lastOutput());
  }
}
