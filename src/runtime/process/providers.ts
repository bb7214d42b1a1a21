// Which ONNX Runtime execution provider runs a team: `auto` takes CUDA when its libraries are
// installed, else WebGPU when a hardware adapter can be created, else the CPU. A software WebGPU
// adapter (Mesa lavapipe on a machine without a GPU) works but is far slower than the CPU provider,
// so `auto` passes it over. An explicit choice is used or refused with the reason. The probes
// (../probes.ts) answer once for the life of the process.
import { availableParallelism } from 'node:os';
import { UserError } from '../../engine/host';
import type { Device } from '../../protocol/events';
import type { DeviceChoice, ProviderInfo } from '../../protocol/rpc';
import { probeCuda, probeWebGpu, type ProbeResult } from '../probes';

export interface ProviderProbes {
  cuda(): Promise<ProbeResult>;
  webgpu(): Promise<ProbeResult>;
}

export interface ProviderDecision {
  device: Device;
  /** Said to the user: e.g. why `auto` did not pick a GPU it saw. */
  warnings: string[];
}

const realProbes: ProviderProbes = { cuda: () => probeCuda(), webgpu: () => probeWebGpu() };
// One answer per process for the real probes; the hardware does not change under us.
const processCache = new Map<Device, Promise<ProbeResult>>();

const LABEL: Record<Device, string> = { cpu: 'the CPU', webgpu: 'WebGPU', cuda: 'CUDA' };

export class ProviderChooser {
  private readonly probes: ProviderProbes;
  private readonly cache: Map<Device, Promise<ProbeResult>>;
  /** Providers that probed fine but then failed to create a session: `auto` skips them. */
  private readonly failed = new Map<Device, string>();

  /** `probes` replaces the real hardware checks; tests use it to pretend a GPU is present. */
  constructor(options: { probes?: Partial<ProviderProbes> } = {}) {
    const custom = options.probes && (options.probes.cuda || options.probes.webgpu);
    this.probes = { ...realProbes, ...options.probes };
    this.cache = custom ? new Map<Device, Promise<ProbeResult>>() : processCache;
  }

  private probe(device: Exclude<Device, 'cpu'>): Promise<ProbeResult> {
    let answer = this.cache.get(device);
    if (!answer) {
      answer = this.probes[device]().catch((e: Error) => ({ available: false, reason: `the ${LABEL[device]} probe failed: ${e.message}` }));
      this.cache.set(device, answer);
    }
    return answer;
  }

  async providers(): Promise<ProviderInfo[]> {
    const [cuda, webgpu] = await Promise.all([this.probe('cuda'), this.probe('webgpu')]);
    const info = (name: Device, r: ProbeResult): ProviderInfo => {
      const failure = this.failed.get(name);
      if (failure) return { name, available: false, reason: failure };
      if (!r.available) return { name, available: false, reason: r.reason ?? 'unavailable' };
      return r.note ? { name, available: true, note: r.note } : { name, available: true };
    };
    return [info('cuda', cuda), info('webgpu', webgpu), { name: 'cpu', available: true }];
  }

  /** Picks the provider for a choice; an explicit choice that cannot work is refused with the reason. */
  async resolve(choice: DeviceChoice): Promise<ProviderDecision> {
    const list = await this.providers();
    const get = (d: Device) => list.find((p) => p.name === d)!;
    const software = async (d: Device) => d !== 'cpu' && !this.failed.has(d) && (await this.probe(d)).software === true;
    if (choice !== 'auto') {
      const p = get(choice);
      if (p.available) {
        const warnings = (await software(choice)) ? [`${LABEL[choice]} runs on a software adapter here (no GPU was found); expect it to be much slower than the CPU.`] : [];
        return { device: choice, warnings };
      }
      throw new UserError(
        `${LABEL[choice]} was requested but cannot be used here: ${p.reason}`,
        'device-unavailable',
        'Choose "auto" or "cpu" as the device (setting recursivemas.device, or --device).',
      );
    }
    for (const d of ['cuda', 'webgpu'] as const) if (get(d).available && !(await software(d))) return { device: d, warnings: [] };
    return { device: 'cpu', warnings: [] };
  }

  /** Records that a provider failed at session creation, so `auto` moves on to the next one. */
  markFailed(device: Device, reason: string): void {
    if (device !== 'cpu') this.failed.set(device, reason);
  }
}

/**
 * The intra-op thread count for ONNX Runtime: undefined or 0 leaves ORT's default (one per
 * physical core); more threads than the machine has only adds contention, so it is capped.
 */
export function resolveThreads(requested: number | undefined, cores: number = availableParallelism()): { threads: number | undefined; warning?: string } {
  if (requested === undefined || requested === 0) return { threads: undefined };
  if (!Number.isInteger(requested) || requested < 0) throw new UserError(`The thread count must be a whole number of 0 (automatic) or more, got ${requested}.`, 'bad-input');
  if (requested > cores) return { threads: cores, warning: `${requested} threads were requested but this machine has ${cores}; using ${cores}.` };
  return { threads: requested };
}
