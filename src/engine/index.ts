// The engine's public API: what the runtime process, the CLI, tests and benchmarks call. Importing
// it loads no onnxruntime: loading a team and generating text import their modules on first use,
// so the runtime answers `initialize` and `recursivemas models` runs before ONNX Runtime loads.
import type { Engine, LoadedTeam, LoadOptions } from './api';
import { listPresets } from './chain/presets';
import type { TextGenerationOptions, TextGenerationResult, TextSink } from './text-generation';

export * from './host';
export type { TextGenerationOptions, TextGenerationResult, TextSink };
export { formatInspect, inspectTensors, type InspectRow } from './links/inspect';
export { planChecks, solveWithChecks } from './verify/loop';

/** Loads a team preset's models and links on one execution provider. */
export async function loadTeam(name: string, options: LoadOptions): Promise<LoadedTeam> {
  const { loadTeam } = await import('./chain/team');
  return loadTeam(name, options);
}

/** Plain text generation with one model (llama2.c or Hugging Face), streamed to `sink`. */
export async function generateText(options: TextGenerationOptions, sink: TextSink): Promise<TextGenerationResult> {
  const { generateText } = await import('./text-generation');
  return generateText(options, sink);
}

export function createEngine(): Engine {
  return { listPresets, loadTeam };
}
