// Where the engine keeps its files on this machine. One models folder serves the CLI and the
// extension, so a team pulled in a terminal is not downloaded again by VS Code. This module loads
// nothing else (the extension host imports it and must never load onnxruntime).
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Built graphs and caches: $RECURSIVEMAS_CACHE, else $XDG_CACHE_HOME/recursivemas, else ~/.cache/recursivemas. */
export function defaultCacheDirectory(): string {
  return process.env.RECURSIVEMAS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'recursivemas');
}

/** Downloaded models: $RECURSIVEMAS_MODELS, else the cache directory's `models` folder. */
export function defaultModelsDirectory(): string {
  return process.env.RECURSIVEMAS_MODELS ?? join(defaultCacheDirectory(), 'models');
}
