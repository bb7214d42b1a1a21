// `recursivemas models pull <preset|repo> | list | rm <repo>`: the local model folder, through the
// same ModelStore the extension uses. A preset pull fetches every repository the team needs, with the
// file globs and revisions its preset names.
// Exit codes: 0 ok, 1 failed, 2 bad usage, 3 not downloaded (rm of an absent repo), 4 cancelled.
import { defaultCacheDirectory, defaultModelsDirectory } from '../engine/paths';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { listPresets, readPreset, reposOf, teamRequirements, UserError, type Precision } from '../engine/index';
import { builtFrom, listCachedGraphs, removeGraphsOf } from '../runtime/store/graph-cache';
import { describeOwner, ModelStore, type ModelEntry, type PullProgress } from '../runtime/store/store';
import { PRECISION_CHOICES, PRECISIONS } from '../protocol/events';
import type { CliIo } from './io';
import { formatBytes, formatDuration, TransferView } from './progress';
import { EXIT } from './solve';

const USAGE = `usage: recursivemas models pull <preset | owner/name> [--revision R] [--files <glob,glob>]
       recursivemas models list [--precision ${PRECISION_CHOICES.join('|')}] [--json]
       recursivemas models rm <owner/name>
  common: [--models-dir <path>] [--endpoint <url>]   (also $RECURSIVEMAS_MODELS, $HF_ENDPOINT, $HF_TOKEN)`;

export interface ModelsCommandOptions {
  /** Aborting it cancels a pull like Ctrl-C; without it, SIGINT is handled here. */
  signal?: AbortSignal;
}

class UsageError extends Error {}

interface PullItem {
  repo: string;
  files?: string[];
  revision?: string;
}


/** What `pull <target>` fetches: a preset's repositories, or one repository. */
async function pullPlan(target: string, files: string[] | undefined, revision: string | undefined): Promise<{ items: PullItem[]; label: string }> {
  if (target.includes('/')) return { items: [{ repo: target, files, revision }], label: target };
  const preset = await readPreset(target);
  const items = new Map<string, PullItem>();
  for (const source of Object.values(preset.models)) {
    if ('repo' in source) items.set(source.repo, { repo: source.repo, files: source.files, revision: source.revision });
  }
  // Link repositories (outer links, inner links kept apart from their model) are small: take them whole.
  for (const repo of reposOf(preset)) if (!items.has(repo)) items.set(repo, { repo });
  return { items: [...items.values()], label: `team ${preset.name}` };
}

function describeError(e: unknown): { code: number; message: string } {
  if (e instanceof UsageError) return { code: EXIT.usage, message: `${e.message}\n${USAGE}` };
  const err = e as Error & { code?: string; action?: string };
  if (err?.name === 'DownloadError' && err.code === 'cancelled') return { code: EXIT.cancelled, message: 'cancelled' };
  if (err?.name === 'AbortError' || err?.name === 'CancelledError') return { code: EXIT.cancelled, message: 'cancelled' };
  if (err?.name === 'DownloadError' && err.code === 'bad-path') return { code: EXIT.usage, message: err.message };
  if (e instanceof UserError) return { code: e.code === 'preset-invalid' || e.code === 'bad-input' ? EXIT.usage : EXIT.failed, message: `${e.message}${e.action ? `\n${e.action}` : ''}` };
  return { code: EXIT.failed, message: err instanceof Error ? err.message : String(e) };
}

export async function runModelsCommand(argv: string[], io: CliIo, options: ModelsCommandOptions = {}): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        'models-dir': { type: 'string' },
        endpoint: { type: 'string' },
        revision: { type: 'string' },
        files: { type: 'string' },
        json: { type: 'boolean' },
        precision: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (e) {
    io.stderr(`error: ${(e as Error).message}\n${USAGE}\n`);
    return EXIT.usage;
  }
  const [action, ...rest] = positionals;
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  try {
    const modelsDirectory = values['models-dir'] ? resolve(values['models-dir']) : defaultModelsDirectory();
    const store = new ModelStore({ modelsDirectory, ...(values.endpoint ? { endpoint: values.endpoint } : {}) });
    switch (action) {
      case 'pull': {
        const [target, ...extra] = rest;
        if (target === undefined || extra.length) throw new UsageError('models pull takes one preset name or owner/name repository.');
        const files = values.files?.split(',').map((f) => f.trim()).filter(Boolean);
        return await pull(store, target, files, values.revision, io, options.signal);
      }
      case 'list':
      case 'ls': {
        if (rest.length) throw new UsageError('models list takes no arguments.');
        return await list(store, io, values.json ?? false, listPrecision(values.precision));
      }
      case 'rm':
      case 'remove': {
        const [repo, ...extra] = rest;
        if (repo === undefined || extra.length) throw new UsageError('models rm takes one owner/name repository.');
        if (!repo.includes('/')) throw new UsageError(`"${repo}" is not an owner/name repository; see recursivemas models list.`);
        const removed = await store.remove(repo);
        // Its compiled graphs are as large as the weights and useless without them.
        const graphs = await removeGraphsOf(defaultCacheDirectory(), store.directoryFor(repo));
        const graphNote = graphs.count ? ` and ${graphs.count} compiled graph${graphs.count > 1 ? 's' : ''} (${formatBytes(graphs.bytes)})` : '';
        if (!removed && !graphs.count) {
          io.stderr(`${repo} is not in ${store.modelsDirectory}; nothing was removed.\n`);
          return EXIT.modelsMissing;
        }
        io.stderr(`removed ${repo} from ${store.modelsDirectory}${graphNote}\n`);
        return EXIT.ok;
      }
      default:
        throw new UsageError(action ? `unknown models action "${action}".` : 'models needs an action: pull, list or rm.');
    }
  } catch (e) {
    const f = describeError(e);
    io.stderr(f.code === EXIT.cancelled ? 'cancelled\n' : `error: ${f.message}\n`);
    return f.code;
  }
}

async function pull(store: ModelStore, target: string, files: string[] | undefined, revision: string | undefined, io: CliIo, signal?: AbortSignal): Promise<number> {
  const { items, label } = await pullPlan(target, files, revision);
  if (items.length === 0) {
    io.stderr(`${label} uses generated weights and needs no download.\n`);
    return EXIT.ok;
  }
  const controller = new AbortController();
  const abort = () => controller.abort();
  if (signal) signal.addEventListener('abort', abort, { once: true });
  else process.on('SIGINT', abort);
  try {
    io.stderr(`pulling ${label} into ${store.modelsDirectory}: ${items.map((i) => i.repo).join(', ')}\n`);
    for (const item of items) {
      const view = new TransferView({ write: io.stderr, live: io.isTTY }, item.repo);
      const started = performance.now();
      let lastFile = '';
      const result = await store.pull(item.repo, {
        files: item.files,
        revision: item.revision,
        signal: controller.signal,
        onWait: (owner) => view.line(`${item.repo}: another pull of it is running (${describeOwner(owner)}); waiting for it to finish`),
        onProgress: (p: PullProgress) => {
          // The last event of a pull that only reused files has filesDone === filesTotal: not a new file.
          if (!io.isTTY && p.file !== lastFile && p.filesDone < p.filesTotal) {
            lastFile = p.file;
            view.line(`${item.repo}: file ${p.filesDone + 1}/${p.filesTotal} ${p.file} (${formatBytes(p.fileTotal)})`);
          }
          view.update({ ...p, file: `${p.file} (${Math.min(p.filesDone + 1, p.filesTotal)}/${p.filesTotal})` });
        },
      });
      view.finish();
      const reused = result.reusedFiles.length ? `, ${result.reusedFiles.length} already present` : '';
      io.stderr(
        `${item.repo}: ${result.files.length} files at ${result.commit.slice(0, 10)}, ${formatBytes(result.downloadedBytes)} downloaded in ${formatDuration(performance.now() - started)}${reused}\n`,
      );
    }
    return EXIT.ok;
  } finally {
    if (signal) signal.removeEventListener('abort', abort);
    else process.off('SIGINT', abort);
  }
}

/** The precision team memory is shown at; `auto` is what a CPU solve picks (this command sees no GPU). */
function listPrecision(value: string | undefined): Precision {
  if (value === undefined || value === 'auto') return 'int4';
  if ((PRECISIONS as readonly string[]).includes(value)) return value as Precision;
  throw new UsageError(`--precision must be one of ${PRECISION_CHOICES.join(', ')}, not ${JSON.stringify(value)}.`);
}

/** "MBPP+ 37.3, LiveCodeBench 43.0 (authors' figures)", or nothing for teams without reported scores. */
function referenceText(reference: Record<string, number>): string {
  const parts = Object.entries(reference).map(([k, v]) => `${k} ${v.toFixed(1)}`);
  return parts.length ? `${parts.join(', ')} (authors' figures)` : '';
}

async function list(store: ModelStore, io: CliIo, json: boolean, precision: Precision): Promise<number> {
  const graphs = await listCachedGraphs(defaultCacheDirectory());
  const entries = (await store.list()).map((e) => ({
    ...e,
    graphBytes: graphs.filter((g) => builtFrom(g, e.directory)).reduce((sum, g) => sum + g.sizeBytes, 0),
  }));
  const byRepo = new Map<string, ModelEntry>(entries.map((e) => [e.repo, e]));
  const presets = await Promise.all(
    (await listPresets()).map(async (p) => {
      const missing = p.repos.filter((r) => !byRepo.get(r)?.complete);
      const needs = await teamRequirements(await readPreset(p.name), { precision, modelsDirectory: store.modelsDirectory });
      return { name: p.name, demo: p.demo, repos: p.repos, ready: missing.length === 0, missing, reference: p.reference, ...needs };
    }),
  );
  if (json) {
    io.stdout(`${JSON.stringify({ modelsDirectory: store.modelsDirectory, models: entries, presets })}\n`);
    return EXIT.ok;
  }
  io.stdout(`models in ${store.modelsDirectory}:\n`);
  if (entries.length === 0) io.stdout('  (none)\n');
  const width = entries.reduce((w, e) => Math.max(w, e.repo.length), 0);
  for (const e of entries) {
    // Demo teams write their generated checkpoints under generated/; they are not downloads.
    const state = e.repo.startsWith('generated/') && !e.commit
      ? 'generated demo weights'
      : e.complete
        ? `complete${e.commit ? ` at ${e.commit.slice(0, 10)}` : ''}`
        : 'partial (pull again to finish)';
    const compiled = e.graphBytes ? `, compiled graphs ${formatBytes(e.graphBytes)}` : '';
    io.stdout(`  ${e.repo.padEnd(width)}  ${formatBytes(e.sizeBytes).padStart(10)}  ${state}${compiled}\n`);
  }
  io.stdout('team presets:\n');
  for (const p of presets) {
    if (p.demo && p.repos.length === 0) {
      io.stdout(`  ${p.name}: demo, generated weights (runs offline, writes no useful code)\n`);
      continue;
    }
    const about = p.exact ? '' : 'about ';
    const facts = [
      referenceText(p.reference),
      p.downloadBytes ? `download ${about}${formatBytes(p.downloadBytes)}` : '',
      `${about}${formatBytes(p.memoryBytes)} of memory at ${p.precision}, ${p.fits ? 'fits' : 'does not fit'} (${formatBytes(p.availableBytes)} free)`,
    ].filter(Boolean);
    const state = p.blockers.length
      ? `cannot run in this version: needs ${p.blockers.join(' and ')}`
      : p.ready
        ? 'ready'
        : `not downloaded (recursivemas models pull ${p.name})`;
    io.stdout(`  ${p.name}: ${state}\n    ${facts.join('; ')}\n`);
  }
  return EXIT.ok;
}
