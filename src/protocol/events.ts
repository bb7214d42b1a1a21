// The one event stream of a solve. The engine emits it, the runtime forwards it as JSON-RPC
// notifications, the extension and the webview render it. This file imports nothing, so every
// layer may depend on it.

export type Mode = 'latent' | 'text' | 'single';
export type Style = 'sequential' | 'mixture' | 'distillation';
export type Device = 'cpu' | 'webgpu' | 'cuda';

export interface StageTiming {
  round: number;
  agent: string;
  /** What the stage did: a latent rollout, a text message, the final decode, an answer retry. */
  kind: 'latent' | 'text' | 'decode' | 'retry';
  ms: number;
}

export interface SolveMetrics {
  wallMs: number;
  stages: StageTiming[];
  promptTokens: number;
  latentSteps: number;
  textTokens: number;
  device: Device;
}

export type SolveEvent =
  | { type: 'team-loading'; team: string; model: string; index: number; count: number }
  | { type: 'team-loaded'; team: string; agents: { name: string; role: string; model: string }[]; device: Device; ms: number }
  | { type: 'solve-start'; task: string; language: string; mode: Mode; style: Style; rounds: number; latentSteps: number }
  | { type: 'round-start'; round: number; rounds: number }
  | { type: 'round-end'; round: number; ms: number }
  | { type: 'agent-start'; round: number; agent: string; role: string; action: 'latent' | 'text' | 'decode' }
  | { type: 'latent-step'; round: number; agent: string; step: number; steps: number }
  | { type: 'agent-end'; round: number; agent: string; ms: number; promptTokens: number; latentSteps: number; textTokens: number }
  | { type: 'handoff'; round: number; from: string; to: string; vectors: number; meanNorm: number; maxNorm: number; text?: string }
  | { type: 'token'; round: number; agent: string; text: string }
  | { type: 'retry'; reason: string }
  | { type: 'answer'; text: string; code: string | null; language: string }
  | { type: 'metrics'; metrics: SolveMetrics }
  | { type: 'warning'; message: string };

export type SolveEventType = SolveEvent['type'];

export interface SolveResult {
  rounds: number;
  answer: string;
  code: string | null;
  language: string;
  metrics: SolveMetrics;
  device: Device;
}
