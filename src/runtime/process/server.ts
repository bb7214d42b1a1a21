// The runtime's JSON-RPC handlers: initialize, team/load, solve (streaming `solve/event`),
// solve/cancel, team/unload, ping, shutdown. One team is loaded at a time and one load or solve
// runs at a time (later ones wait their turn); every request is validated before use, and a
// malformed message is answered with an error and logged, never allowed to stop the process.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import {
  createMessageConnection,
  ResponseError,
  StreamMessageWriter,
  type CancellationToken,
  type Message,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import { planChecks, solveWithChecks, type Device, type Engine, type LoadedTeam, type Precision, type SolveEvent, type SolveRequest } from '../../engine/index';
import { isUserErrorCode, RpcErrorCodes, type RpcErrorData } from '../../protocol/errors';
import type { DeviceChoice, PrecisionChoice, SolveResult } from '../../protocol/events';
import { expectValid, ProtocolError } from '../../protocol/kit';
import { LIMITS } from '../../protocol/limits';
import {
  Notifications,
  Requests,
  type CancelParams,
  type CancelResult,
  type InitializeParams,
  type InitializeResult,
  type LoadTeamParams,
  type LoadTeamResult,
  type LogNotification,
  type PingResult,
  type RequestHandlers,
  type RequestName,
  type RpcRequest,
  type SolveParams,
} from '../../protocol/rpc';
import { FramedMessageReader, type MalformedInput } from '../framing';
import { ProviderChooser, resolveThreads } from './providers';

export interface RuntimeServerOptions {
  /** Imported on first use, so the process answers `initialize` and `ping` before ONNX Runtime loads. */
  engine: () => Promise<Engine>;
  providers?: ProviderChooser;
  /** Diagnostics for humans (the process's stderr). */
  trace?: (line: string) => void;
  /** Called once `shutdown` has been answered. */
  onShutdown?: () => void;
}

interface CurrentTeam {
  key: string;
  team: LoadedTeam;
  warnings: string[];
}

/** The package version, from the package.json above this file (source tree or dist/). */
export function runtimeVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'recursivemas' && pkg.version) return pkg.version;
      } catch {
        // keep looking upwards
      }
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}

/** `auto`: fp16 where a GPU provider runs the graph, int4 on the CPU (a quarter of fp32's memory). */
export function resolvePrecision(choice: PrecisionChoice, device: Device): Precision {
  if (choice !== 'auto') return choice;
  return device === 'cpu' ? 'int4' : 'fp16';
}

function isNamed(e: unknown, name: string): e is Error & Record<string, unknown> {
  return e instanceof Error && e.name === name;
}

/** Maps what a handler threw to the JSON-RPC error the client sees. */
export function toResponseError(e: unknown): ResponseError<RpcErrorData> {
  if (e instanceof ResponseError) return e as ResponseError<RpcErrorData>;
  if (e instanceof ProtocolError) return new ResponseError(RpcErrorCodes.invalidParams, e.message, { kind: 'invalid', issues: e.issues });
  if (isNamed(e, 'CancelledError') || isNamed(e, 'AbortError')) return new ResponseError(RpcErrorCodes.cancelled, e.message || 'cancelled', { kind: 'cancelled' });
  if (isNamed(e, 'UserError')) {
    const data: RpcErrorData = { kind: 'user' };
    if (isUserErrorCode(e.code)) data.code = e.code;
    if (typeof e.action === 'string') data.action = e.action;
    return new ResponseError(RpcErrorCodes.userError, e.message, data);
  }
  return new ResponseError(RpcErrorCodes.engineError, e instanceof Error ? e.message : String(e), { kind: 'engine' });
}

export class RuntimeServer {
  private readonly started = performance.now();
  private readonly providers: ProviderChooser;
  private readonly trace: (line: string) => void;
  private engineModule?: Promise<Engine>;
  private threads?: number;
  private modelsDirectory?: string;
  private current?: CurrentTeam;
  /** Loads and solves run one after another: one team, one model step at a time. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Every queued or running solve, by id, so solve/cancel reaches it in either state. */
  private readonly solves = new Map<string, AbortController>();
  private readonly loads = new Map<string, AbortController>();
  /** By method name: validates the raw params, then runs the request's handler. */
  private readonly handlers = new Map<string, (params: unknown, token: CancellationToken) => Promise<unknown>>();
  private closing = false;
  private shutdownAnswered = false;
  private loadCounter = 0;

  constructor(
    private readonly connection: MessageConnection,
    private readonly options: RuntimeServerOptions,
  ) {
    this.providers = options.providers ?? new ProviderChooser();
    this.trace = options.trace ?? (() => {});
    const handlers: RequestHandlers<CancellationToken> = {
      initialize: (params) => this.initialize(params),
      loadTeam: (params) => this.loadTeam(params),
      unloadTeam: () => this.serialize(() => this.unload()).then(() => null),
      solve: (params, token) => this.solve(params, token),
      cancel: (params) => this.cancel(params),
      ping: () => this.ping(),
      shutdown: () => this.shutdown(),
    };
    const bind = <K extends RequestName>(name: K) => this.handle(Requests[name], handlers[name]);
    for (const name of Object.keys(Requests) as RequestName[]) bind(name);
    // One entry point for every request, so params are validated here (arrays and all) before a
    // handler sees them, and an unknown method gets an answer that lists the known ones.
    connection.onRequest((method, params, token) => this.dispatch(method, params, token));
    connection.onNotification((method) => {
      this.log('warn', `ignored an unknown notification "${method}"`);
    });
  }

  /** Sends a `log` notification (and traces it); never throws, even with the client gone. */
  log(level: LogNotification['level'], message: string): void {
    this.trace(`[${level}] ${message}`);
    if (this.closing) return;
    this.connection.sendNotification(Notifications.log.type, { level, message }).catch(() => {});
  }

  /** Called by the writer after each response reached the channel: the `shutdown` answer lets the process go. */
  responseWritten(message: { result?: unknown }): void {
    if (this.shutdownAnswered && message.result === null) {
      this.shutdownAnswered = false;
      this.options.onShutdown?.();
    }
  }

  /** Answers input the reader could not use: an error response when it expects one, and a log line. */
  rejectMalformed(input: MalformedInput, write: (message: object) => void): void {
    this.log('warn', `rejected a malformed message (${input.problem}): ${input.excerpt}`);
    if (input.answerable && !this.closing) write({ jsonrpc: '2.0', id: input.id, error: { code: input.code, message: input.problem } });
  }

  /** Registers the handler of one request; its params are checked against the request's schema first. */
  private handle<P, R>(request: RpcRequest<P, R>, handler: (params: P, token: CancellationToken) => Promise<R> | R): void {
    this.handlers.set(request.method, async (raw, token) => handler(expectValid(request.params(raw), `${request.method} params`), token));
  }

  private async dispatch(method: string, params: unknown, token: CancellationToken): Promise<unknown> {
    try {
      const handler = this.handlers.get(method);
      if (!handler) throw new ResponseError(RpcErrorCodes.methodNotFound, `unknown method "${method}"; this runtime answers ${[...this.handlers.keys()].join(', ')}`);
      return await handler(params, token);
    } catch (e) {
      const error = toResponseError(e);
      if (error.code === RpcErrorCodes.invalidParams || error.code === RpcErrorCodes.methodNotFound) this.log('warn', `rejected ${method}: ${error.message}`);
      else if (error.code === RpcErrorCodes.engineError) this.log('error', `${method} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      throw error;
    }
  }

  private ping(): PingResult {
    return {
      uptimeMs: Math.round(performance.now() - this.started),
      team: this.current?.team.name ?? null,
      solves: [...this.solves.keys()],
    };
  }

  private async shutdown(): Promise<null> {
    await this.close();
    this.shutdownAnswered = true;
    // The exit waits until this answer is written (see responseWritten); this is the fallback.
    setTimeout(() => this.options.onShutdown?.(), 1000).unref();
    return null;
  }

  private engine(): Promise<Engine> {
    this.engineModule ??= this.options.engine();
    return this.engineModule;
  }

  private async initialize(params: InitializeParams): Promise<InitializeResult> {
    if (params.threads !== undefined) this.threads = params.threads;
    if (params.modelsDirectory !== undefined) this.modelsDirectory = params.modelsDirectory;
    const [providers, ort] = await Promise.all([this.providers.providers(), import('onnxruntime-node')]);
    this.trace(`initialized by ${params.clientName}; providers: ${providers.map((p) => `${p.name}=${p.available ? 'yes' : 'no'}`).join(' ')}`);
    return {
      runtimeVersion: runtimeVersion(),
      ortVersion: ort.env.versions.node ?? ort.env.versions.common,
      node: process.version,
      providers,
      limits: { maxRounds: LIMITS.rounds.max, maxLatentSteps: LIMITS.latentSteps.max, maxNewTokens: LIMITS.maxNewTokens.max },
    };
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work, work);
    this.tail = run.catch(() => {});
    return run;
  }

  private notify(id: string, event: SolveEvent): void {
    if (this.closing) return;
    this.connection.sendNotification(Notifications.solveEvent.type, { id, event }).catch(() => {});
  }

  /** Loads the team unless the same team is loaded with the same device, threads and precision. */
  private async ensureTeam(
    spec: { team: string; device: DeviceChoice; threads?: number; precision?: PrecisionChoice },
    eventId: string,
    signal: AbortSignal,
  ): Promise<{ current: CurrentTeam; loadedNow: boolean; ms: number }> {
    const threads = resolveThreads(spec.threads ?? this.threads);
    const precisionChoice = spec.precision ?? 'auto';
    const key = JSON.stringify([spec.team, spec.device, threads.threads ?? 0, precisionChoice]);
    if (this.current?.key === key) return { current: this.current, loadedNow: false, ms: 0 };
    await this.unload();
    if (signal.aborted) throw cancelled('the team load was cancelled');
    // int8 has CPU kernels only, so `auto` means the CPU for it; an explicit GPU is refused at load.
    const decision = await this.providers.resolve(precisionChoice === 'int8' && spec.device === 'auto' ? 'cpu' : spec.device);
    const engine = await this.engine();
    const started = performance.now();
    const precision = resolvePrecision(precisionChoice, decision.device);
    this.trace(`loading team ${spec.team} on ${decision.device} at ${precision}${threads.threads ? ` with ${threads.threads} threads` : ''}`);
    const team = await engine.loadTeam(spec.team, {
      device: decision.device,
      threads: threads.threads,
      precision,
      modelsDirectory: this.modelsDirectory,
      onEvent: (event) => this.notify(eventId, event),
      signal,
    });
    const warnings = [...decision.warnings, ...(threads.warning ? [threads.warning] : []), ...team.warnings];
    if (team.device !== decision.device) {
      // The provider probed fine but failed to create a session: `auto` skips it from now on.
      this.providers.markFailed(decision.device, team.warnings.find((w) => w.includes(decision.device)) ?? `it failed at session creation; ${team.device} was used`);
    }
    const ms = performance.now() - started;
    this.current = { key, team, warnings };
    this.trace(`team ${team.name} loaded on ${team.device} in ${ms.toFixed(0)} ms`);
    for (const w of warnings) this.log('info', `load warning: ${w}`);
    return { current: this.current, loadedNow: true, ms };
  }

  private async unload(): Promise<void> {
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    this.trace(`unloading team ${current.team.name}`);
    await current.team.dispose();
  }

  private async loadTeam(params: LoadTeamParams): Promise<LoadTeamResult> {
    const id = params.id ?? `load-${++this.loadCounter}`;
    if (this.loads.has(id) || this.solves.has(id)) throw new ProtocolError('team/load params', [`params.id: "${id}" is already in use by a queued or running load or solve`]);
    const controller = new AbortController();
    this.loads.set(id, controller);
    try {
      return await this.serialize(async () => {
        if (controller.signal.aborted) throw cancelled('the team load was cancelled before it started');
        const { current, ms } = await this.ensureTeam(params, id, controller.signal);
        const t = current.team;
        return { team: t.name, device: t.device, precision: t.precision, agents: t.agents, ms, warnings: current.warnings };
      });
    } finally {
      this.loads.delete(id);
    }
  }

  private async solve(params: SolveParams, token: CancellationToken): Promise<SolveResult> {
    if (this.solves.has(params.id) || this.loads.has(params.id)) throw new ProtocolError('solve params', [`params.id: "${params.id}" is already in use by a queued or running load or solve`]);
    const controller = new AbortController();
    this.solves.set(params.id, controller);
    const stop = token.onCancellationRequested(() => controller.abort());
    try {
      return await this.serialize(async () => {
        if (controller.signal.aborted) throw cancelled('the solve was cancelled before it started');
        this.trace(`solve ${params.id} started (team ${params.team}, ${params.mode}, ${params.rounds} rounds, ${params.latentSteps} latent steps)`);
        // The checks are known before the team loads, so the client shows them before anything runs.
        const plan = params.verify ? planChecks(params, params.verify) : undefined;
        if (plan) this.notify(params.id, plan.event);
        const { current, loadedNow } = await this.ensureTeam(params, params.id, controller.signal);
        if (loadedNow) for (const message of current.warnings) this.notify(params.id, { type: 'warning', message });
        // Every solve says which team runs it; a team kept from an earlier solve took no time to load.
        else this.notify(params.id, { type: 'team-loaded', team: current.team.name, agents: current.team.agents, device: current.team.device, precision: current.team.precision, ms: 0 });
        const request: SolveRequest = {
          task: params.task,
          language: params.language,
          context: params.context,
          mode: params.mode,
          rounds: params.rounds,
          latentSteps: params.latentSteps,
          maxNewTokens: params.maxNewTokens,
          temperature: params.temperature,
          topP: params.topP,
          seed: params.seed,
          fixedLength: params.fixedLength,
        };
        const started = performance.now();
        try {
          const onEvent = (event: SolveEvent) => this.notify(params.id, event);
          const team = current.team;
          // With checks, the repair loop (src/engine/verify) runs the team once per candidate.
          const result = params.verify && plan
            ? await solveWithChecks({ solve: (r, e, s) => team.solve(r, e, s), request, verify: params.verify, plan, onEvent, signal: controller.signal })
            : await team.solve(request, onEvent, controller.signal);
          this.trace(`solve ${params.id} finished in ${(performance.now() - started).toFixed(0)} ms`);
          return result;
        } catch (e) {
          // A signal that fired means the work stopped because of it, whatever the engine threw.
          if (controller.signal.aborted && !isNamed(e, 'CancelledError')) throw cancelled(`the solve was cancelled (${(e as Error).message})`);
          this.trace(`solve ${params.id} ${isNamed(e, 'CancelledError') ? 'cancelled' : `failed: ${(e as Error).message}`}`);
          throw e;
        }
      });
    } finally {
      stop.dispose();
      this.solves.delete(params.id);
    }
  }

  private cancel({ id }: CancelParams): CancelResult {
    const controller = this.solves.get(id) ?? this.loads.get(id);
    if (!controller) return { cancelled: false };
    this.trace(`cancelling ${id}`);
    controller.abort();
    return { cancelled: true };
  }

  /** Stops all work and releases the team; the process may exit afterwards. */
  async close(): Promise<void> {
    for (const c of this.solves.values()) c.abort();
    for (const c of this.loads.values()) c.abort();
    await this.tail;
    await this.unload().catch((e: Error) => this.trace(`releasing the team failed: ${e.message}`));
    this.closing = true;
  }
}

function cancelled(message: string): Error {
  const e = new Error(message);
  e.name = 'CancelledError';
  return e;
}

export interface RuntimeChannel {
  input: Readable;
  output: Writable;
}

/** Wires a RuntimeServer to a framed JSON-RPC channel and starts listening. */
export function serveRuntime(channel: RuntimeChannel, options: RuntimeServerOptions): { server: RuntimeServer; connection: MessageConnection } {
  let server: RuntimeServer | undefined;
  const writer = new (class extends StreamMessageWriter {
    override async write(message: Message): Promise<void> {
      await super.write(message);
      if ('id' in message && !('method' in message)) server?.responseWritten(message as { result?: unknown });
    }
  })(channel.output, 'utf-8');
  const reader = new FramedMessageReader(channel.input, {
    onMalformed: (input) => server?.rejectMalformed(input, (message) => void writer.write(message as never).catch(() => {})),
  });
  const connection = createMessageConnection(reader, writer, {
    error: (message) => options.trace?.(`[jsonrpc] ${message}`),
    warn: (message) => options.trace?.(`[jsonrpc] ${message}`),
    info: () => {},
    log: () => {},
  });
  server = new RuntimeServer(connection, options);
  connection.listen();
  return { server, connection };
}
