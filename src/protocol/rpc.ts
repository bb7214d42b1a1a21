// JSON-RPC contract between the supervisor (extension, CLI, tests) and the runtime process.
// Method names and payload shapes live here and nowhere else.
import type { Device, Mode, Precision, SolveEvent, SolveResult } from './events';

export type DeviceChoice = 'auto' | Device;
/** `auto`: fp16 on a GPU provider, int4 on the CPU (decided by the runtime, which knows the device). */
export type PrecisionChoice = 'auto' | Precision;

export interface ProviderInfo {
  name: Device;
  available: boolean;
  /** Why a provider cannot be used here (missing CUDA libraries, no WebGPU adapter...). */
  reason?: string;
  /** About a provider that can be used but that `auto` passes over (a software WebGPU adapter). */
  note?: string;
}

export interface InitializeParams {
  clientName: string;
  threads?: number;
  modelsDirectory?: string;
}
export interface InitializeResult {
  runtimeVersion: string;
  ortVersion: string;
  node: string;
  providers: ProviderInfo[];
  limits: { maxRounds: number; maxLatentSteps: number; maxNewTokens: number };
}

export interface LoadTeamParams {
  /** Names this load in its `solve/event` team-loading notifications; the runtime picks one when absent. */
  id?: string;
  team: string;
  device: DeviceChoice;
  threads?: number;
  /** Default `auto`. */
  precision?: PrecisionChoice;
}
export interface LoadTeamResult {
  team: string;
  device: Device;
  precision: Precision;
  agents: { name: string; role: string; model: string }[];
  ms: number;
  warnings: string[];
}

export interface SolveParams {
  /** Chosen by the client; names the solve in events and in cancel. */
  id: string;
  task: string;
  language: string;
  /** Surrounding code the user had open, bounded by the client. */
  context?: string;
  team: string;
  mode: Mode;
  rounds: number;
  latentSteps: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed?: number;
  device: DeviceChoice;
  threads?: number;
  /** Default `auto`; a different precision than the loaded team's reloads it. */
  precision?: PrecisionChoice;
  /** For benchmarks: every decode writes exactly its token budget (eos does not stop it) and the code retry is skipped. */
  fixedLength?: boolean;
  /** Run checks on each candidate and repair what fails (src/engine/verify). */
  verify?: VerifyParams;
}

/** Which checks a solve runs and where the candidate goes; the runtime finds and runs them. */
export interface VerifyParams {
  /** A test command the user configured, run in a temporary copy of `root`. */
  command?: string;
  /** Also look for doctests, asserts and input/output examples in the task and the selection. */
  findChecks: boolean;
  /** The project folder the command runs in (copied, never written). */
  root?: string;
  /** The file the candidate goes into: its current text and the range the candidate replaces. */
  file?: { path: string; text: string; start: number; end: number };
  /** The code the user selected, searched for doctests and asserts. */
  selection?: string;
  maxRepairs: number;
  /** Per check run; default 30 s. */
  timeoutMs?: number;
}

export interface CancelParams {
  id: string;
}
export interface CancelResult {
  /** False when no solve with that id was queued or running. */
  cancelled: boolean;
}

export interface PingResult {
  uptimeMs: number;
  /** The loaded team, or null. */
  team: string | null;
  /** Ids of the solves queued or running in the runtime. */
  solves: string[];
}

export interface SolveEventNotification {
  id: string;
  event: SolveEvent;
}

export interface LogNotification {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

export const Methods = {
  initialize: 'initialize',
  loadTeam: 'team/load',
  unloadTeam: 'team/unload',
  solve: 'solve',
  cancel: 'solve/cancel',
  ping: 'ping',
  shutdown: 'shutdown',
  /** runtime -> client notifications */
  solveEvent: 'solve/event',
  log: 'log',
} as const;

/** JSON-RPC error codes the runtime answers with; `data` is an RpcErrorData. */
export const RpcErrorCodes = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** A user-fixable problem (the engine's UserError). */
  userError: -32001,
  /** Any other engine failure. */
  engineError: -32002,
  cancelled: -32800,
} as const;

export interface RpcErrorData {
  kind: 'cancelled' | 'user' | 'engine' | 'invalid';
  /** UserError code (kind 'user'). */
  code?: string;
  /** What the user can do about it (kind 'user'). */
  action?: string;
  /** The fields that failed validation (kind 'invalid'). */
  issues?: string[];
}

export type { SolveResult };
