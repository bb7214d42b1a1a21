// JSON-RPC contract between the supervisor (extension, CLI, tests) and the runtime process. Each
// method is one entry in `Requests` or `Notifications`: its name, the schemas of its params and
// result, and the vscode-jsonrpc type that ties them (and RpcErrorData) together. The server's
// handlers and the supervisor's calls are typed by these entries, so adding or changing a method is
// one edit here that the compiler then checks at every caller and handler.
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc/node';
import {
  agentInfo,
  count,
  device,
  deviceChoice,
  mode,
  ms,
  name,
  precision,
  precisionChoice,
  solveEvent,
  solveResult,
  text,
  language,
} from './events';
import type { RpcErrorData } from './errors';
import { arrayOf, bool, custom, int, isPlainObject, nullable, num, object, oneOf, show, str, validator, type Infer, type Schema, type Validator } from './kit';
import { LIMITS } from './limits';

export { RpcErrorCodes, validateRpcErrorData, type RpcErrorData, type UserErrorCode } from './errors';
export type { DeviceChoice, PrecisionChoice, SolveResult } from './events';

const id = str({ min: 1, max: LIMITS.idChars });
const threads = int(LIMITS.threads);
const path = str({ min: 1, max: 4096 });

const providerInfo = object(
  { name: device, available: bool },
  {
    /** Why a provider cannot be used here (missing CUDA libraries, no WebGPU adapter...). */
    reason: text,
    /** About a provider that can be used but that `auto` passes over (a software WebGPU adapter). */
    note: text,
  },
);
export type ProviderInfo = Infer<typeof providerInfo>;

const initializeParams = object({ clientName: name }, { threads, modelsDirectory: path });
export type InitializeParams = Infer<typeof initializeParams>;

const initializeResult = object({
  runtimeVersion: name,
  ortVersion: name,
  node: name,
  providers: arrayOf(providerInfo, 16),
  limits: object({ maxRounds: count, maxLatentSteps: count, maxNewTokens: count }),
});
export type InitializeResult = Infer<typeof initializeResult>;

const loadTeamParams = object(
  { team: name, device: deviceChoice },
  {
    /** Names this load in its `solve/event` team-loading notifications; the runtime picks one when absent. */
    id,
    threads,
    /** Default `auto`. */
    precision: precisionChoice,
  },
);
export type LoadTeamParams = Infer<typeof loadTeamParams>;

const loadTeamResult = object({ team: name, device, precision, agents: arrayOf(agentInfo, 64), ms, warnings: arrayOf(text, 1000) });
export type LoadTeamResult = Infer<typeof loadTeamResult>;

/** Which checks a solve runs and where the candidate goes; the runtime finds and runs them. */
const verifyParams = object(
  {
    /** Also look for doctests, asserts and input/output examples in the task and the selection. */
    findChecks: bool,
    maxRepairs: int(LIMITS.maxRepairs),
  },
  {
    /** A test command the user configured, run in a temporary copy of `root`. */
    command: str({ min: 1, max: 10_000 }),
    /** The project folder the command runs in (copied, never written). */
    root: path,
    /** The file the candidate goes into: its current text and the range the candidate replaces. */
    file: object({ path, text: str({ max: LIMITS.contextChars }), start: count, end: count }),
    /** The code the user selected, searched for doctests and asserts. */
    selection: str({ max: LIMITS.taskChars }),
    /** Per check run; default 30 s. */
    timeoutMs: int({ min: 100, max: 3_600_000 }),
  },
);
export type VerifyParams = Infer<typeof verifyParams>;

const solveParams = object(
  {
    /** Chosen by the client; names the solve in events and in cancel. */
    id,
    task: str({ min: 1, max: LIMITS.taskChars }),
    language,
    team: name,
    mode,
    rounds: int(LIMITS.rounds),
    latentSteps: int(LIMITS.latentSteps),
    maxNewTokens: int(LIMITS.maxNewTokens),
    temperature: num(LIMITS.temperature),
    topP: num(LIMITS.topP),
    device: deviceChoice,
  },
  {
    /** Surrounding code the user had open, bounded by the client. */
    context: str({ max: LIMITS.contextChars }),
    seed: int({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    threads,
    /** Default `auto`; a different precision than the loaded team's reloads it. */
    precision: precisionChoice,
    /** For benchmarks: every decode writes exactly its token budget (eos does not stop it) and the code retry is skipped. */
    fixedLength: bool,
    /** Run checks on each candidate and repair what fails (src/engine/verify). */
    verify: verifyParams,
  },
);
export type SolveParams = Infer<typeof solveParams>;

const cancelParams = object({ id });
export type CancelParams = Infer<typeof cancelParams>;
const cancelResult = object({
  /** False when no solve with that id was queued or running. */
  cancelled: bool,
});
export type CancelResult = Infer<typeof cancelResult>;

const pingResult = object({
  uptimeMs: ms,
  /** The loaded team, or null. */
  team: nullable(name),
  /** Ids of the solves queued or running in the runtime. */
  solves: arrayOf(id, 10_000),
});
export type PingResult = Infer<typeof pingResult>;

/** For requests that take no parameters: nothing, null, {} or [] are accepted. */
const noParams: Schema<undefined> = custom<undefined>((v, at, issues) => {
  if (v === undefined || v === null) return;
  if (Array.isArray(v) ? v.length > 0 : !isPlainObject(v) || Object.keys(v).length > 0) issues.push(`${at}: this method takes no parameters, got ${show(v)}`);
});
/** Answers that carry nothing (JSON-RPC's `null` result). */
const noResult: Schema<null> = custom<null>((v, at, issues) => {
  if (v !== null && v !== undefined) issues.push(`${at}: expected null, got ${show(v)}`);
});

const solveEventNotification = object({ id, event: solveEvent });
export type SolveEventNotification = Infer<typeof solveEventNotification>;
const logNotification = object({ level: oneOf(['trace', 'debug', 'info', 'warn', 'error']), message: text });
export type LogNotification = Infer<typeof logNotification>;

/** One request the runtime answers. `P` is `undefined` for a request without parameters. */
export class RpcRequest<P, R> {
  readonly params: Validator<P>;
  readonly result: Validator<R>;
  private constructor(
    readonly method: string,
    /** The vscode-jsonrpc signature: a RequestType0 when there are no parameters, so none are sent. */
    readonly type: RequestType<P, R, RpcErrorData> | RequestType0<R, RpcErrorData>,
    params: Schema<P>,
    result: Schema<R>,
  ) {
    this.params = validator(params, 'params');
    this.result = validator(result, 'result');
  }

  static withParams<P, R>(method: string, params: Schema<P>, result: Schema<R>): RpcRequest<P, R> {
    return new RpcRequest(method, new RequestType<P, R, RpcErrorData>(method), params, result);
  }

  static withoutParams<R>(method: string, result: Schema<R>): RpcRequest<undefined, R> {
    return new RpcRequest(method, new RequestType0<R, RpcErrorData>(method), noParams, result);
  }
}

/** One notification the runtime sends to its client. */
export class RpcNotification<P> {
  readonly type: NotificationType<P>;
  readonly params: Validator<P>;
  constructor(
    readonly method: string,
    params: Schema<P>,
  ) {
    this.type = new NotificationType<P>(method);
    this.params = validator(params, 'params');
  }
}

/** The params type of a request or a notification. */
type ParamsOf<T> = T extends { params: Validator<infer P> } ? P : never;
type ResultOf<T> = T extends { result: Validator<infer R> } ? R : never;

const requestList = {
  initialize: RpcRequest.withParams('initialize', initializeParams, initializeResult),
  loadTeam: RpcRequest.withParams('team/load', loadTeamParams, loadTeamResult),
  unloadTeam: RpcRequest.withoutParams('team/unload', noResult),
  solve: RpcRequest.withParams('solve', solveParams, solveResult),
  cancel: RpcRequest.withParams('solve/cancel', cancelParams, cancelResult),
  ping: RpcRequest.withoutParams('ping', pingResult),
  shutdown: RpcRequest.withoutParams('shutdown', noResult),
};

/** Each request's params and result, by name. */
export type RequestMap = { [K in keyof typeof requestList]: { params: ParamsOf<(typeof requestList)[K]>; result: ResultOf<(typeof requestList)[K]> } };
export type RequestName = keyof RequestMap;

/** client -> runtime. Typed through RequestMap so code generic over a name keeps params and result paired. */
export const Requests: { readonly [K in RequestName]: RpcRequest<RequestMap[K]['params'], RequestMap[K]['result']> } = requestList;

/** What a runtime implements: one handler per request; a new entry in `Requests` fails to compile until it has one. */
export type RequestHandlers<Token> = {
  readonly [K in RequestName]: (params: RequestMap[K]['params'], token: Token) => Promise<RequestMap[K]['result']> | RequestMap[K]['result'];
};

const notificationList = {
  solveEvent: new RpcNotification('solve/event', solveEventNotification),
  log: new RpcNotification('log', logNotification),
};

/** Each notification's params, by name. */
export type NotificationMap = { [K in keyof typeof notificationList]: ParamsOf<(typeof notificationList)[K]> };
export type NotificationName = keyof NotificationMap;

/** runtime -> client */
export const Notifications: { readonly [K in NotificationName]: RpcNotification<NotificationMap[K]> } = notificationList;

/** What a client implements: one handler per notification, checked like RequestHandlers. */
export type NotificationHandlers = { readonly [K in NotificationName]: (params: NotificationMap[K]) => void };

export const validateNoParams = validator(noParams, 'params');
