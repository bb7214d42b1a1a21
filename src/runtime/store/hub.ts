// The Hugging Face hub as we use it: which endpoint and token, checked repo ids / revisions /
// file paths, a repository's file list with sizes and hashes, and the URL of one file.
import {
  assertAllowedUrl,
  DownloadError,
  getJson,
  type RequestSubject,
  type RetryOptions,
  type TransportOptions,
} from './download';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** The manifest our store writes into each model folder, last. */
export const MANIFEST_NAME = '.recursivemas.json';
/** The lock file of a model folder while a pull or a removal works on it (see lock.ts). */
export const LOCK_NAME = '.recursivemas.lock';
/** Every name of ours in a model folder starts with this (manifest, its temporary, lock). */
export const RESERVED_PREFIX = '.recursivemas';
/** Suffix of a download in progress. */
export const PART_SUFFIX = '.part';

/** Why a hub file name would collide with a name the store writes, or undefined when it is free. */
export function reservedNameProblem(path: string): string | undefined {
  const segments = path.split('/');
  if (segments.some((seg) => seg.startsWith(RESERVED_PREFIX))) return `names starting with "${RESERVED_PREFIX}" are reserved for our manifest and lock files`;
  if (path.endsWith(PART_SUFFIX)) return `names ending in "${PART_SUFFIX}" are used for downloads in progress`;
  return undefined;
}

export interface HubOptions {
  /** Hub base URL; default HF_ENDPOINT from `env`, else https://huggingface.co. */
  endpoint?: string;
  /** Access token; default HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) from `env`. */
  token?: string;
  env?: NodeJS.ProcessEnv;
  proxy?: string | null;
  ca?: TransportOptions['ca'];
  timeoutMs?: number;
  retry?: RetryOptions;
}

export interface HubConfig {
  /** Normalised base URL without a trailing slash. */
  endpoint: string;
  transport: TransportOptions;
}

export function resolveHubConfig(opts: HubOptions = {}): HubConfig {
  const env = opts.env ?? process.env;
  const raw = (opts.endpoint ?? env.HF_ENDPOINT ?? '').trim() || DEFAULT_ENDPOINT;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DownloadError('bad-path', `The hub endpoint "${raw}" is not a valid URL. Set HF_ENDPOINT (or the endpoint setting) to e.g. ${DEFAULT_ENDPOINT}.`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new DownloadError('bad-path', 'The hub endpoint must be a plain base URL (no credentials, query or fragment). Put the token in HF_TOKEN instead.');
  }
  assertAllowedUrl(url, 'the hub endpoint');
  const token = (opts.token ?? env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN ?? '').trim() || undefined;
  if (token && /[\r\n\0]/.test(token)) {
    throw new DownloadError('unauthorized', 'The Hugging Face token contains line breaks; paste it again as a single line.');
  }
  return {
    endpoint: url.href.replace(/\/+$/, ''),
    transport: { token, env, proxy: opts.proxy, ca: opts.ca, timeoutMs: opts.timeoutMs, retry: opts.retry },
  };
}

const NAME_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;

/** `owner/name` with the characters the hub allows; returned unchanged when valid. */
export function validateRepoId(repo: string): string {
  const parts = typeof repo === 'string' ? repo.split('/') : [];
  if (parts.length !== 2 || !parts.every((p) => NAME_PART.test(p) && !p.includes('..'))) {
    throw new DownloadError(
      'bad-path',
      `"${String(repo).slice(0, 200)}" is not a valid model id. Use the hub's owner/name form, e.g. Qwen/Qwen3-0.6B.`,
    );
  }
  return repo;
}

/** A branch, tag, `refs/pr/N` or commit id. */
export function validateRevision(revision: string): string {
  const ok =
    typeof revision === 'string' &&
    revision.length > 0 &&
    revision.length <= 255 &&
    /^[A-Za-z0-9._/-]+$/.test(revision) &&
    !revision.split('/').some((seg) => seg === '' || seg === '.' || seg === '..');
  if (!ok) {
    throw new DownloadError('bad-path', `"${String(revision).slice(0, 200)}" is not a valid revision. Use a branch, a tag or a commit id (default: main).`);
  }
  return revision;
}

/**
 * A path from a hub file list, checked before it names anything on disk: relative, forward
 * slashes only, no `.`/`..`/empty segments, no drive letters, colons or control characters.
 */
export function validateRepoFilePath(path: unknown, repo?: string): string {
  const bad = (why: string): never => {
    const shown = JSON.stringify(String(path).slice(0, 200));
    throw new DownloadError(
      'bad-path',
      `The hub's file list${repo ? ` for ${repo}` : ''} contains an unsafe path ${shown} (${why}). Refusing to download from it.`,
    );
  };
  if (typeof path !== 'string' || path.length === 0) return bad('not a file name');
  if (path.length > 1024) bad('too long');
  if (path.startsWith('/')) bad('absolute path');
  if (path.includes('\\')) bad('backslash');
  if (/^[A-Za-z]:/.test(path) || path.includes(':')) bad('drive letter or colon');
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (/[\u0000-\u001f\u007f]/.test(path)) bad('control character');
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') bad('empty, "." or ".." segment');
  }
  return path;
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

export function apiUrl(config: HubConfig, repo: string, kind: 'revision' | 'tree', revision: string): URL {
  const url = new URL(`${config.endpoint}/api/models/${encodePath(validateRepoId(repo))}/${kind}/${encodeURIComponent(validateRevision(revision))}`);
  if (kind === 'tree') url.searchParams.set('recursive', 'true');
  return url;
}

/** `{endpoint}/{repo}/resolve/{revision}/{path}`. */
export function fileUrl(config: HubConfig, repo: string, revision: string, path: string): URL {
  return new URL(
    `${config.endpoint}/${encodePath(validateRepoId(repo))}/resolve/${encodeURIComponent(validateRevision(revision))}/${encodePath(validateRepoFilePath(path, repo))}`,
  );
}

export interface HubFile {
  path: string;
  /** Size in bytes; undefined when the hub did not list it. */
  size?: number;
  /** SHA-256 of the content (LFS files). */
  sha256?: string;
  /** Git blob id of the content (files stored directly in git). */
  gitOid?: string;
  lfs: boolean;
}

export interface RepoListing {
  repo: string;
  /** The revision asked for. */
  revision: string;
  /** The commit it resolved to (or `revision` if the hub did not say); downloads are pinned to it. */
  commit: string;
  files: HubFile[];
}

const MAX_TREE_PAGES = 1000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function malformed(repo: string, what: string): DownloadError {
  return new DownloadError('server', `The hub sent a malformed ${what} for ${repo}. Try again later, or check HF_ENDPOINT points at a Hugging Face hub.`);
}

function sizeOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/**
 * Lists a repository's files at `revision`: names from the revision endpoint's `siblings`, sizes
 * and hashes from the recursive tree endpoint. Every path is validated; one unsafe path refuses
 * the whole list, since a hub that sends it cannot be trusted for the rest.
 */
export async function listRepoFiles(
  config: HubConfig,
  repo: string,
  opts: { revision?: string; signal?: AbortSignal } = {},
): Promise<RepoListing> {
  validateRepoId(repo);
  const revision = validateRevision(opts.revision ?? 'main');
  const subject: RequestSubject = { repo, revision };
  const common = { transport: config.transport, subject, signal: opts.signal, endpoint: config.endpoint };

  const { body: info } = await getJson(apiUrl(config, repo, 'revision', revision), common);
  if (!isRecord(info) || !Array.isArray(info.siblings)) throw malformed(repo, 'model description');
  const commit = typeof info.sha === 'string' && /^[0-9a-f]{40}$/.test(info.sha) ? info.sha : revision;
  const names: string[] = [];
  for (const sibling of info.siblings) {
    if (!isRecord(sibling)) throw malformed(repo, 'file list');
    names.push(validateRepoFilePath(sibling.rfilename, repo));
  }

  const details = new Map<string, Omit<HubFile, 'path'>>();
  let page: URL | undefined = apiUrl(config, repo, 'tree', commit);
  for (let pages = 0; page; pages++) {
    if (pages >= MAX_TREE_PAGES) throw malformed(repo, 'file tree (too many pages)');
    if (page.origin !== new URL(config.endpoint).origin) throw malformed(repo, 'file tree (next page on another host)');
    const { body, next }: { body: unknown; next?: URL } = await getJson(page, common);
    if (!Array.isArray(body)) throw malformed(repo, 'file tree');
    for (const entry of body) {
      if (!isRecord(entry)) throw malformed(repo, 'file tree entry');
      const path = validateRepoFilePath(entry.path, repo);
      if (entry.type !== 'file') continue;
      const lfs = isRecord(entry.lfs) ? entry.lfs : undefined;
      const sha256 = typeof lfs?.oid === 'string' && /^[0-9a-f]{64}$/i.test(lfs.oid) ? lfs.oid.toLowerCase() : undefined;
      if (lfs && !sha256) throw malformed(repo, `LFS entry for "${path}"`);
      const gitOid = !lfs && typeof entry.oid === 'string' && /^[0-9a-f]{40}$/i.test(entry.oid) ? entry.oid.toLowerCase() : undefined;
      details.set(path, { size: sizeOf(lfs?.size) ?? sizeOf(entry.size), sha256, gitOid, lfs: !!lfs });
    }
    page = next;
  }

  const seen = new Set<string>();
  const files: HubFile[] = [];
  for (const path of names) {
    if (seen.has(path)) continue;
    seen.add(path);
    files.push({ path, ...(details.get(path) ?? { lfs: false }) });
  }
  for (const path of seen) {
    // These names are ours on disk: a hub file with them would overwrite a download in progress
    // or our manifest.
    const reserved = reservedNameProblem(path);
    if (reserved) {
      throw new DownloadError('bad-path', `The hub's file list for ${repo} contains "${path}" (${reserved}); refusing the repository.`);
    }
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const folder = parts.slice(0, i).join('/');
      if (seen.has(folder)) {
        throw new DownloadError('bad-path', `The hub's file list for ${repo} has "${folder}" both as a file and as a folder; refusing it.`);
      }
    }
  }
  return { repo, revision, commit, files };
}
