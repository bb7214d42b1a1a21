// The local models folder: `<modelsDirectory>/<owner>/<name>/<files>` plus a manifest written
// last, so a folder with a manifest whose files are all there at their sizes is a complete
// model that can be used without any network access.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, realpath, rename, rm, rmdir, stat, statfs, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import {
  DownloadError,
  downloadFile,
  syncDirectory,
  toDownloadError,
  type DownloadProgress,
  type RetryOptions,
  type TransportOptions,
} from './download';
import {
  listRepoFiles,
  LOCK_NAME,
  MANIFEST_NAME,
  resolveHubConfig,
  validateRepoFilePath,
  validateRepoId,
  validateRevision,
  fileUrl,
  type HubConfig,
  type HubFile,
} from './hub';
import { acquireLock, tryLock, LockBusyError, describeOwner, type HeldLock, type LockOwner } from './lock';

export { DownloadError, downloadFile } from './download';
export type { DownloadErrorCode, DownloadProgress, DownloadFileOptions, DownloadResult } from './download';
export type { LockOwner } from './lock';
export { describeOwner } from './lock';

export interface ModelStoreOptions {
  modelsDirectory: string;
  endpoint?: string;
  token?: string;
  /** A connection silent for this long is dropped and retried (default 30 s). */
  fetchTimeoutMs?: number;
  /** Free bytes available under `dir`; default from fs.statfs. Tests inject a quota here. */
  freeSpace?: (dir: string) => Promise<number>;
  /** Environment for HF_ENDPOINT, HF_TOKEN, HTTPS_PROXY, NO_PROXY (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Explicit proxy URL, or null for none; default from the environment. */
  proxy?: string | null;
  /** Extra trusted CA certificates (PEM). */
  ca?: TransportOptions['ca'];
  retry?: RetryOptions;
  progressIntervalMs?: number;
}

export interface PullProgress extends DownloadProgress {
  /** `bytes`/`total`/`rateBytesPerS`/`etaS` cover the whole pull; these cover `file`. */
  fileBytes: number;
  fileTotal: number;
  filesDone: number;
  filesTotal: number;
}

export interface PullOptions {
  /** Globs (fnmatch style: `*` also crosses `/`), e.g. `*.safetensors`, `config.json`; default all files. */
  files?: string[];
  revision?: string;
  signal?: AbortSignal;
  onProgress?: (progress: PullProgress) => void;
  /** Called once when another pull of the same repo (maybe another process) holds it; this one waits. */
  onWait?: (owner: LockOwner | undefined) => void;
}

export interface ManifestFile {
  path: string;
  size: number;
  sha256?: string;
  gitOid?: string;
}

export interface ModelManifest {
  format: 1;
  repo: string;
  revision: string;
  commit: string;
  completedAt: string;
  files: ManifestFile[];
}

export interface PullResult {
  repo: string;
  revision: string;
  commit: string;
  directory: string;
  files: ManifestFile[];
  /** Bytes fetched over the network by this pull. */
  downloadedBytes: number;
  /** Files that were already present and verified, so not fetched again. */
  reusedFiles: string[];
}

export interface ModelEntry {
  repo: string;
  directory: string;
  /** Bytes on disk, partial downloads included. */
  sizeBytes: number;
  complete: boolean;
  revision?: string;
  commit?: string;
  completedAt?: string;
}

/** fnmatch-style glob: `*` any run of characters (slashes too), `?` one, `[...]` a class. */
export function globToRegExp(glob: string): RegExp {
  const pattern = glob.endsWith('/') ? `${glob}*` : glob;
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      out += `[${body}]`;
      i = end;
    } else out += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 's');
}

/** A folder path (absolute, `./`, `../`, `~`) rather than an `owner/name` repo id. */
export function looksLikeFolderPath(value: string): boolean {
  return (
    isAbsolute(value) ||
    value === '.' ||
    value === '..' ||
    value === '~' ||
    /^(\.{1,2}|~)[\\/]/.test(value) ||
    value.includes('\\')
  );
}

async function sizeIfFile(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/** Which file is at `path` now (device, inode, size, mtime), to tell whether it changed since. */
async function identity(path: string): Promise<string | undefined> {
  const s = await stat(path, { bigint: true }).catch(() => undefined);
  return s?.isFile() ? `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}` : undefined;
}

async function defaultFreeSpace(dir: string): Promise<number> {
  // The models folder may not exist yet: measure the nearest ancestor that does.
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      const s = await statfs(d);
      return s.bavail * s.bsize;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(d) === d) throw err;
    }
  }
}

function formatBytes(n: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${n} bytes` : `${value.toFixed(1)} ${units[unit]} (${n} bytes)`;
}

/** Whether the file's bytes on disk have the hub's checksum (sha256 for LFS, else the git blob id). */
async function hashFile(path: string, file: HubFile, signal?: AbortSignal): Promise<boolean | 'no-checksum'> {
  const sha256 = file.sha256 ? createHash('sha256') : undefined;
  const git = !sha256 && file.gitOid && file.size !== undefined ? createHash('sha1').update(`blob ${file.size}\0`) : undefined;
  if (!sha256 && !git) return 'no-checksum';
  for await (const chunk of createReadStream(path, { signal }) as AsyncIterable<Buffer>) {
    sha256?.update(chunk);
    git?.update(chunk);
  }
  return sha256 ? sha256.digest('hex') === file.sha256 : git!.digest('hex') === file.gitOid;
}

async function sizeOnDisk(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await sizeOnDisk(path);
    else if (entry.isFile()) total += (await lstat(path)).size;
  }
  return total;
}

function parseManifest(text: string, repo: string): ModelManifest | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const m = value as Partial<ModelManifest> | null;
  if (!m || typeof m !== 'object' || m.format !== 1 || m.repo !== repo || !Array.isArray(m.files)) return undefined;
  if (typeof m.revision !== 'string' || typeof m.commit !== 'string' || typeof m.completedAt !== 'string') return undefined;
  const files: ManifestFile[] = [];
  for (const f of m.files as unknown[]) {
    const entry = f as Partial<ManifestFile> | null;
    if (!entry || typeof entry.path !== 'string' || !Number.isSafeInteger(entry.size) || (entry.size as number) < 0) return undefined;
    try {
      validateRepoFilePath(entry.path, repo);
    } catch {
      return undefined;
    }
    files.push({
      path: entry.path,
      size: entry.size as number,
      ...(typeof entry.sha256 === 'string' ? { sha256: entry.sha256 } : {}),
      ...(typeof entry.gitOid === 'string' ? { gitOid: entry.gitOid } : {}),
    });
  }
  return { format: 1, repo, revision: m.revision, commit: m.commit, completedAt: m.completedAt, files };
}

export class ModelStore {
  readonly modelsDirectory: string;
  private readonly options: ModelStoreOptions;
  private readonly freeSpace: (dir: string) => Promise<number>;
  private hubConfig?: HubConfig;

  constructor(options: ModelStoreOptions) {
    if (!options.modelsDirectory) throw new DownloadError('bad-path', 'No models folder is configured.');
    this.modelsDirectory = resolve(options.modelsDirectory);
    this.options = options;
    this.freeSpace = options.freeSpace ?? defaultFreeSpace;
  }

  /** Endpoint, token and proxy are read on first network use, so offline use never needs them. */
  private get hub(): HubConfig {
    this.hubConfig ??= resolveHubConfig({
      endpoint: this.options.endpoint,
      token: this.options.token,
      env: this.options.env,
      proxy: this.options.proxy,
      ca: this.options.ca,
      timeoutMs: this.options.fetchTimeoutMs,
      retry: this.options.retry,
    });
    return this.hubConfig;
  }

  /** The folder a repo lives in (whether or not it exists). */
  directoryFor(repo: string): string {
    const [owner, name] = validateRepoId(repo).split('/') as [string, string];
    return join(this.modelsDirectory, owner, name);
  }

  private pathFor(repo: string, file: string): string {
    return join(this.directoryFor(repo), ...validateRepoFilePath(file, repo).split('/'));
  }

  async readManifest(repo: string): Promise<ModelManifest | undefined> {
    try {
      return parseManifest(await readFile(join(this.directoryFor(repo), MANIFEST_NAME), 'utf8'), repo);
    } catch {
      return undefined;
    }
  }

  /** True when the manifest exists and every file it lists is present at its size. */
  async isComplete(repo: string): Promise<boolean> {
    const manifest = await this.readManifest(repo);
    if (!manifest) return false;
    for (const file of manifest.files) {
      if ((await sizeIfFile(this.pathFor(repo, file.path))) !== file.size) return false;
    }
    return true;
  }

  /**
   * A folder to load a model from, without network access: a local folder path is used as it is;
   * a repo id must already be completely downloaded.
   */
  async localPath(repoOrFolder: string): Promise<string> {
    if (looksLikeFolderPath(repoOrFolder)) {
      const folder = resolve(repoOrFolder.replace(/^~(?=$|[\\/])/, homedir()));
      const s = await stat(folder).catch(() => undefined);
      if (!s?.isDirectory()) {
        throw new DownloadError('not-found', `The model folder ${folder} does not exist or is not a folder. Check the path in your team settings.`);
      }
      return folder;
    }
    const dir = this.directoryFor(repoOrFolder);
    if (await this.isComplete(repoOrFolder)) return dir;
    const started = await stat(dir).then(() => true, () => false);
    throw new DownloadError(
      'not-found',
      `Model ${repoOrFolder} is ${started ? 'only partly downloaded' : 'not downloaded'}. Download it first (it is stored in ${dir}).`,
    );
  }

  /** `localPath` if the model is here, else pull it first. */
  async ensure(repoOrFolder: string, opts: PullOptions = {}): Promise<string> {
    if (looksLikeFolderPath(repoOrFolder) || (await this.isComplete(repoOrFolder))) return this.localPath(repoOrFolder);
    return (await this.pull(repoOrFolder, opts)).directory;
  }

  /** The lock file of a repo's folder; see lock.ts. */
  lockPath(repo: string): string {
    return join(this.directoryFor(repo), LOCK_NAME);
  }

  /**
   * Pulls a repo. Only one pull of a repo runs at a time on this machine (any process, any store):
   * a second one waits for the first (calling `onWait`), then finds its files and reuses them.
   */
  async pull(repo: string, opts: PullOptions = {}): Promise<PullResult> {
    const dir = this.directoryFor(repo);
    const subject = { repo };
    let lock: HeldLock;
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dir, { recursive: true });
        lock = await acquireLock(this.lockPath(repo), { signal: opts.signal, onWait: opts.onWait });
        break;
      } catch (err) {
        // The folder was removed between mkdir and the lock (an `rm`, or a failed pull tidying up).
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 5) continue;
        throw toDownloadError(err, subject, '', opts.signal);
      }
    }
    try {
      return await this.pullNow(repo, opts);
    } finally {
      await lock.release();
      // A pull that failed before writing anything leaves no empty folder behind.
      await rmdir(dir).then(() => rmdir(dirname(dir))).catch(() => undefined);
    }
  }

  private async pullNow(repo: string, opts: PullOptions): Promise<PullResult> {
    const revision = validateRevision(opts.revision ?? 'main');
    const hub = this.hub;
    const dir = this.directoryFor(repo);
    const listing = await listRepoFiles(hub, repo, { revision, signal: opts.signal });
    const byPath = new Map(listing.files.map((f) => [f.path, f]));

    let selected = listing.files;
    if (opts.files?.length) {
      const globs = opts.files.map(globToRegExp);
      selected = listing.files.filter((f) => globs.some((g) => g.test(f.path)));
      if (selected.length === 0) {
        const names = listing.files.map((f) => f.path).slice(0, 20).join(', ');
        throw new DownloadError(
          'not-found',
          `No file in ${repo} at revision "${revision}" matches ${opts.files.join(', ')}. It has: ${names}${listing.files.length > 20 ? ', ...' : ''}.`,
        );
      }
    }

    // A folder holds one revision: files it already had are brought to this revision too, and
    // files the new revision no longer has are deleted.
    const previous = await this.readManifest(repo);
    const wanted = new Map(selected.map((f) => [f.path, f]));
    const stale: string[] = [];
    for (const old of previous?.files ?? []) {
      const now = byPath.get(old.path);
      if (now) wanted.set(old.path, now);
      else stale.push(old.path);
    }
    const files = [...wanted.values()];
    // path -> identity of the file on disk when its checksum was verified in this pull.
    const verified = new Map<string, string | undefined>();

    // Which files are already here, and how many bytes the rest still need.
    const reused = new Set<string>();
    let needed = 0;
    for (const file of files) {
      const dest = this.pathFor(repo, file.path);
      const have = await sizeIfFile(dest);
      // A file already here is kept when its bytes on disk match the hub's checksum; by size only
      // when the hub gives none.
      if (have !== undefined && (file.size === undefined || have === file.size)) {
        const check = await hashFile(dest, file, opts.signal).catch(() => false);
        if (check === true || (check === 'no-checksum' && file.size !== undefined)) {
          reused.add(file.path);
          verified.set(file.path, await identity(dest));
          continue;
        }
      }
      const part = (await sizeIfFile(`${dest}.part`)) ?? 0;
      if (file.size !== undefined) needed += file.size - (part <= file.size ? part : 0);
    }

    if (needed > 0) {
      const free = await this.freeSpace(dir);
      if (needed > free) {
        throw new DownloadError(
          'no-space',
          `Not enough disk space to download ${repo}: it needs ${formatBytes(needed)} more, but only ${formatBytes(free)} is free for ${this.modelsDirectory}. Free some space or choose another models folder, then download again.`,
        );
      }
    }

    const pullTotal = files.reduce((sum, f) => sum + (f.size ?? 0), 0);
    const started = Date.now();
    let doneBytes = files.filter((f) => reused.has(f.path)).reduce((sum, f) => sum + (f.size ?? 0), 0);
    let downloadedBytes = 0;
    let filesDone = reused.size;
    const emit = (file: string, fileBytes: number, fileTotal: number, fetchedNow: number, final = false): void => {
      if (!opts.onProgress) return;
      const bytes = final ? doneBytes : doneBytes + fileBytes;
      const rate = (downloadedBytes + fetchedNow) / (Math.max(Date.now() - started, 1) / 1000);
      const left = Math.max(pullTotal - bytes, 0);
      opts.onProgress({
        file,
        bytes,
        total: pullTotal,
        rateBytesPerS: rate,
        etaS: left === 0 ? 0 : rate > 0 ? left / rate : Infinity,
        fileBytes,
        fileTotal,
        filesDone,
        filesTotal: files.length,
      });
    };

    const manifestPath = join(dir, MANIFEST_NAME);
    const toFetch = files.filter((f) => !reused.has(f.path));
    if (toFetch.length > 0 || stale.length > 0 || previous?.commit !== listing.commit) {
      await mkdir(dir, { recursive: true });
      await rm(manifestPath, { force: true }); // from here on the folder does not look complete
    }
    const sizes = new Map<string, number>();
    for (const file of toFetch) {
      const dest = this.pathFor(repo, file.path);
      const startBytes = (await sizeIfFile(`${dest}.part`)) ?? 0;
      const result = await downloadFile({
        ...hub.transport,
        url: fileUrl(hub, repo, listing.commit, file.path),
        destination: dest,
        file: file.path,
        size: file.size,
        sha256: file.sha256,
        gitOid: file.gitOid,
        subject: { repo, revision, file: file.path },
        endpoint: hub.endpoint,
        signal: opts.signal,
        progressIntervalMs: this.options.progressIntervalMs,
        onProgress: (p) => emit(file.path, p.bytes, p.total, Math.max(p.bytes - startBytes, 0)),
      });
      sizes.set(file.path, result.size);
      verified.set(file.path, await identity(dest));
      downloadedBytes += result.fetchedBytes;
      doneBytes += result.size;
      filesDone++;
    }
    for (const path of stale) await rm(this.pathFor(repo, path), { force: true });

    const manifest: ModelManifest = {
      format: 1,
      repo,
      revision,
      commit: listing.commit,
      completedAt: new Date().toISOString(),
      files: files.map((f) => ({
        path: f.path,
        size: f.size ?? sizes.get(f.path) ?? 0,
        ...(f.sha256 ? { sha256: f.sha256 } : {}),
        ...(f.gitOid ? { gitOid: f.gitOid } : {}),
      })),
    };
    for (const f of manifest.files) {
      // Last check before the folder is declared complete, by checksum where the hub gives one:
      // each file was hashed on disk in this pull (reused ones above, fetched ones by downloadFile
      // just before the rename); one that is still that same file (inode, size, mtime) is not read
      // again, anything else is.
      const path = this.pathFor(repo, f.path);
      const now = await identity(path);
      const hub = byPath.get(f.path)!;
      const same = now !== undefined && now === verified.get(f.path);
      if (now === undefined || (await sizeIfFile(path)) !== f.size || (!same && (await hashFile(path, hub, opts.signal).catch(() => false)) === false)) {
        throw new DownloadError('corrupt', `"${f.path}" of ${repo} is missing or was changed after it was verified (by another program?). Download it again.`);
      }
    }
    await this.writeManifest(dir, manifest);
    const last = files[files.length - 1];
    if (last) {
      const lastSize = sizes.get(last.path) ?? last.size ?? 0;
      emit(last.path, lastSize, lastSize, 0, true);
    }
    return {
      repo,
      revision,
      commit: listing.commit,
      directory: dir,
      files: manifest.files,
      downloadedBytes,
      reusedFiles: [...reused],
    };
  }

  private async writeManifest(dir: string, manifest: ModelManifest): Promise<void> {
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `${MANIFEST_NAME}.tmp`);
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, join(dir, MANIFEST_NAME));
    await syncDirectory(dir);
  }

  /** Every `owner/name` folder in the models folder, with its size and whether it is complete. */
  async list(): Promise<ModelEntry[]> {
    const entries: ModelEntry[] = [];
    const owners = await readdir(this.modelsDirectory, { withFileTypes: true }).catch(() => []);
    for (const owner of owners) {
      if (!owner.isDirectory()) continue;
      const names = await readdir(join(this.modelsDirectory, owner.name), { withFileTypes: true }).catch(() => []);
      for (const name of names) {
        if (!name.isDirectory()) continue;
        const repo = `${owner.name}/${name.name}`;
        try {
          validateRepoId(repo);
        } catch {
          continue; // not one of ours
        }
        const directory = this.directoryFor(repo);
        const manifest = await this.readManifest(repo);
        entries.push({
          repo,
          directory,
          sizeBytes: await sizeOnDisk(directory),
          complete: await this.isComplete(repo),
          revision: manifest?.revision,
          commit: manifest?.commit,
          completedAt: manifest?.completedAt,
        });
      }
    }
    return entries.sort((a, b) => a.repo.localeCompare(b.repo));
  }

  /**
   * Deletes a repo's folder (complete or partial). Refuses anything that would resolve outside
   * the models folder. Returns false when there was nothing to delete.
   */
  async remove(repo: string): Promise<boolean> {
    const dir = this.directoryFor(repo);
    const owner = dirname(dir);
    let root: string;
    let ownerReal: string;
    try {
      root = await realpath(this.modelsDirectory);
      ownerReal = await realpath(owner);
    } catch {
      return false;
    }
    if (ownerReal !== join(root, repo.split('/')[0]!) || !ownerReal.startsWith(root + sep)) {
      throw new DownloadError('bad-path', `Refusing to delete ${dir}: it leads outside the models folder ${this.modelsDirectory}.`);
    }
    const s = await lstat(dir).catch(() => undefined);
    if (!s) return false;
    // A linked model folder: drop the link, never what it points at.
    if (s.isSymbolicLink()) await unlink(dir);
    else {
      // Never pull the folder from under a pull that is writing into it.
      let lock: HeldLock;
      try {
        lock = await tryLock(this.lockPath(repo));
      } catch (err) {
        if (err instanceof LockBusyError) {
          throw new DownloadError('busy', `${repo} is being downloaded right now (${describeOwner(err.owner)}). Wait for that pull to finish or stop it, then remove the model again.`);
        }
        throw toDownloadError(err, { repo }, '');
      }
      try {
        await rm(dir, { recursive: true, force: true });
      } finally {
        await lock.release();
      }
    }
    await rmdir(owner).catch(() => undefined); // only succeeds when no other model of this owner is left
    return true;
  }
}
