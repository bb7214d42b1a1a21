// What a first run needs to know: which team to recommend on this machine, and whether the chosen
// team still has to be downloaded. No `vscode` here, so the choice is unit-testable.
import { join } from 'node:path';
import { freemem, totalmem } from 'node:os';
import { readPreset, teamRequirements, type Precision } from '../engine/host';
import { listTeams, type TeamSummary } from './teams';

/** The demo team a first run falls back to: it needs no download. */
export const DEMO_TEAM = 'demo-sequential';

export interface TeamOffer {
  team: TeamSummary;
  downloadBytes: number;
  memoryBytes: number;
  fits: boolean;
  /** "MBPP+ 37.3" and the like: the authors' reference scores; empty when the preset has none. */
  scores: string;
  /** False when the sizes come from model cards (nothing downloaded yet). */
  exact: boolean;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) {
    n /= 1000;
    u++;
  }
  return `${n.toFixed(n >= 100 || u === 0 ? 0 : 1)} ${units[u]}`;
}

/** "9.6 GB" (or "~9.6 GB" when estimated from model cards). */
export function downloadLabel(o: TeamOffer): string {
  return `${o.exact ? '' : '~'}${formatBytes(o.downloadBytes)}`;
}

/** Every real team that this version can run, with its sizes at `precision`. */
export async function teamOffers(presetsFolder: string, modelsDirectory: string, precision: Precision, availableMemoryBytes = freemem()): Promise<TeamOffer[]> {
  const out: TeamOffer[] = [];
  for (const team of await listTeams(presetsFolder)) {
    if (team.demo) continue;
    try {
      const preset = await readPreset(join(presetsFolder, `${team.name}.json`));
      const r = await teamRequirements(preset, { precision, modelsDirectory, availableMemoryBytes });
      if (r.blockers.length) continue;
      const scores = Object.entries(preset.reference).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
      out.push({ team, downloadBytes: r.downloadBytes, memoryBytes: r.memoryBytes, fits: r.fits, scores, exact: r.exact });
    } catch {
      // A broken preset is reported when it is selected, not here.
    }
  }
  return out;
}

/**
 * The team to recommend: one that fits in memory, preferring the authors' measured systems (they
 * carry reference scores) and, among those, the smallest download, so a first run gets a real
 * answer soonest. When nothing fits, the smallest team, marked as not fitting.
 */
export function recommend(offers: TeamOffer[]): TeamOffer | undefined {
  const fitting = offers.filter((o) => o.fits);
  if (!fitting.length) return [...offers].sort((a, b) => a.memoryBytes - b.memoryBytes)[0];
  return [...fitting].sort((a, b) => Number(!a.scores) - Number(!b.scores) || a.downloadBytes - b.downloadBytes)[0];
}

export interface MachineFacts {
  totalMemoryBytes: number;
  freeMemoryBytes: number;
  /** GPU providers the runtime found usable ("cuda", "webgpu"); empty: CPU only. */
  gpus: string[];
  /** Why a GPU provider is not usable, per provider, when the runtime said. */
  unavailable: { name: string; reason: string }[];
}

export function machineFacts(providers: { name: string; available: boolean; reason?: string }[]): MachineFacts {
  const gpu = providers.filter((p) => p.name !== 'cpu');
  return {
    totalMemoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    gpus: gpu.filter((p) => p.available).map((p) => p.name),
    // The first clause says why; the runtime's full reason (paths, install commands) belongs in the logs.
    unavailable: gpu.filter((p) => !p.available).map((p) => ({ name: p.name, reason: (p.reason ?? '').split(/[.(:;]/)[0]!.trim() || 'not usable here' })),
  };
}

/** One line per fact, in plain words, for the machine check. */
export function describeMachine(m: MachineFacts): string[] {
  return [
    `Memory: ${formatBytes(m.freeMemoryBytes)} free of ${formatBytes(m.totalMemoryBytes)}.`,
    m.gpus.length ? `GPU: ${m.gpus.join(' and ')} found; the models run there.` : `GPU: none found; the models run on the CPU${m.unavailable.length ? ` (${m.unavailable.map((u) => `${u.name}: ${u.reason}`).join('; ')})` : ''}.`,
  ];
}
