// Team presets as the extension sees them: the JSON files in the extension's `models` folder, read
// with the engine's own preset parser (through src/engine/host, which never loads onnxruntime), so
// "Select Team" offers exactly the teams the runtime would load. Used to offer teams and to know
// which repositories "Download Models" must fetch. No `vscode` here.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readPreset, type TeamPreset } from '../engine/host';

export interface TeamRepo {
  repo: string;
  revision?: string;
  /** File globs to fetch (all files when absent). */
  files?: string[];
}

export interface TeamSummary {
  name: string;
  description: string;
  demo: boolean;
  style: string;
  agents: { name: string; role: string; model: string }[];
  repos: TeamRepo[];
}

/** A preset's agents and every repository it needs, with the files to fetch from each. */
export function summarizePreset(preset: TeamPreset): TeamSummary {
  const repos = new Map<string, TeamRepo>();
  const addRepo = (r: TeamRepo) => {
    const known = repos.get(r.repo);
    if (!known) repos.set(r.repo, { ...r, ...(r.files ? { files: [...r.files] } : {}) });
    else if (known.files && r.files) known.files = [...new Set([...known.files, ...r.files])];
    // One use of the whole repository (a link file in it) means all of its files.
    else known.files = undefined;
  };
  for (const m of Object.values(preset.models)) {
    if ('repo' in m) addRepo({ repo: m.repo, ...(m.revision ? { revision: m.revision } : {}), ...(m.files ? { files: m.files } : {}) });
  }
  for (const link of [...Object.values(preset.outerLinks), ...preset.agents.map((a) => a.innerLink)]) {
    if ('repo' in link && link.repo) addRepo({ repo: link.repo });
  }
  return {
    name: preset.name,
    description: preset.description,
    demo: preset.demo,
    style: preset.style,
    agents: preset.agents.map(({ name, role, model }) => ({ name, role, model })),
    repos: [...repos.values()],
  };
}

/** Every preset in `folder`, sorted: real teams first, then demo teams, each by name. */
export async function listTeams(folder: string): Promise<TeamSummary[]> {
  const names = await readdir(folder).catch(() => [] as string[]);
  const out: TeamSummary[] = [];
  for (const n of names.filter((f) => f.endsWith('.json')).sort()) {
    try {
      out.push(summarizePreset(await readPreset(join(folder, n))));
    } catch {
      // A broken preset is reported by the runtime when it is selected.
    }
  }
  return out.sort((a, b) => Number(a.demo) - Number(b.demo) || a.name.localeCompare(b.name));
}
