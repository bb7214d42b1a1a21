// The part of the engine a process that must never load onnxruntime may use (the VS Code extension
// host, the model store): where files live, team presets and what they ask of this machine, the
// user's checks, the errors. Nothing this module imports reaches onnxruntime; the esbuild build of
// the extension and the layering check (.dependency-cruiser.cjs) hold it to that.
export { CancelledError, UserError } from './api';
export type {
  AgentInfo,
  Device,
  DeviceChoice,
  Engine,
  LoadedTeam,
  LoadOptions,
  Mode,
  Precision,
  PresetSummary,
  SolveEvent,
  SolveRequest,
  SolveResult,
  Style,
} from './api';
export { defaultCacheDirectory, defaultModelsDirectory } from './paths';
export { listPresets, readPreset, reposOf, type TeamPreset } from './chain/presets';
export { teamMemory, teamRequirements, type TeamMemory, type TeamRequirements } from './chain/requirements';
export { formatBytes } from './model/memory';
export { providerProbeModel } from './onnx/probe';
export { describeChecks, findChecks, type Check } from './verify/checks';
export { isolationAvailable } from './verify/sandbox';
