// Downloads one file from the hub (or its CDN) into `<dest>.part`, resumes, verifies, then renames
// it into place. Also holds the HTTP plumbing the hub listing shares: redirects, proxy tunnel,
// retries, and the error type every model-download failure is reported with.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import { basename, dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tls from 'node:tls';

export type DownloadErrorCode =
  | 'unauthorized'
  | 'not-found'
  | 'server'
  | 'network'
  | 'corrupt'
  | 'no-space'
  | 'cancelled'
  | 'busy'
  | 'bad-path';

export class DownloadError extends Error {
  override readonly name = 'DownloadError';
  readonly code: DownloadErrorCode;
  readonly status?: number;
  /** Whether trying again later may succeed (network errors, 5xx, 429). */
  readonly retryable: boolean;
  readonly retryAfterMs?: number;

  constructor(
    code: DownloadErrorCode,
    message: string,
    opts: { status?: number; retryable?: boolean; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = opts.status;
    this.retryable = opts.retryable ?? false;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** Shown wherever a token is the fix; the extension registers a command with this title. */
export const TOKEN_HINT =
  'set a Hugging Face token (the HF_TOKEN environment variable or the "RecursiveMAS: Set Hugging Face Token" command)';

export interface RetryOptions {
  /** Further tries after the first failure; a try that made progress does not use one up. */
  retries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Upper bound on a server's Retry-After, so a hostile value cannot park us for hours. */
  maxRetryAfterMs?: number;
}

export interface TransportOptions {
  token?: string;
  /** Proxy URL; `null` disables proxying; undefined reads HTTPS_PROXY/HTTP_PROXY/NO_PROXY from `env`. */
  proxy?: string | null;
  env?: NodeJS.ProcessEnv;
  /** Extra trusted CA certificates (PEM), e.g. a corporate TLS-inspecting proxy or a test server. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** A connection that stays silent this long is dropped (and retried). */
  timeoutMs?: number;
  retry?: RetryOptions;
}

/** Names what a request is about, so errors can say it without leaking URLs or tokens. */
export interface RequestSubject {
  repo?: string;
  revision?: string;
  file?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 10;
const USER_AGENT = 'recursivemas/0.1 (model-download)';

// ---------------------------------------------------------------------------------------------
// URLs, proxies

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase());
}

/** Only HTTPS leaves the machine; plain HTTP is accepted for loopback test servers only. */
export function assertAllowedUrl(url: URL, what: string): void {
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return;
  throw new DownloadError(
    'bad-path',
    `Refusing ${what} over ${url.protocol.replace(':', '')} to ${url.host}: model downloads use HTTPS ` +
      '(plain HTTP only to localhost). Use an https:// endpoint.',
  );
}

function envValue(env: NodeJS.ProcessEnv, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return value;
  }
  return undefined;
}

function defaultPort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

/** NO_PROXY: comma/space separated hosts, `.suffix` or `suffix` domain matches, optional `:port`, `*`. */
export function bypassesProxy(url: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = defaultPort(url);
  for (const raw of noProxy.split(/[\s,]+/)) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    let entryPort: string | undefined;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracketed) {
      entry = bracketed[1]!;
      entryPort = bracketed[2];
    } else if (isIP(entry) !== 6) {
      const colon = entry.lastIndexOf(':');
      if (colon > 0 && /^\d+$/.test(entry.slice(colon + 1))) {
        entryPort = entry.slice(colon + 1);
        entry = entry.slice(0, colon);
      }
    }
    if (entryPort && entryPort !== port) continue;
    if (entry.startsWith('*.')) entry = entry.slice(1);
    if (host === entry.replace(/^\./, '')) return true;
    if (isIP(host) === 0 && host.endsWith(entry.startsWith('.') ? entry : `.${entry}`)) return true;
  }
  return false;
}

/** The proxy to use for `url`, from explicit options or the usual environment variables. */
export function proxyForUrl(url: URL, transport: Pick<TransportOptions, 'proxy' | 'env'> = {}): URL | undefined {
  const env = transport.env ?? process.env;
  if (transport.proxy === null) return undefined;
  const raw =
    transport.proxy ??
    (url.protocol === 'https:'
      ? envValue(env, 'HTTPS_PROXY', 'https_proxy')
      : envValue(env, 'HTTP_PROXY', 'http_proxy'));
  if (!raw) return undefined;
  if (bypassesProxy(url, envValue(env, 'NO_PROXY', 'no_proxy'))) return undefined;
  let proxy: URL;
  try {
    proxy = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    throw new DownloadError('network', 'The proxy setting (HTTPS_PROXY) is not a valid URL. Fix it or unset it.');
  }
  if (proxy.protocol !== 'http:' && proxy.protocol !== 'https:') {
    throw new DownloadError(
      'network',
      `Proxy ${proxy.host} uses ${proxy.protocol}; only http:// and https:// proxies are supported.`,
    );
  }
  return proxy;
}

/**
 * An agent whose every connection goes through an HTTP CONNECT tunnel on `proxy`; for an https
 * target TLS is then negotiated end to end inside the tunnel, so the proxy sees only ciphertext.
 */
export class ProxyTunnelAgent extends http.Agent {
  private readonly proxyUrl: URL;
  private readonly secure: boolean;
  private readonly ca?: TransportOptions['ca'];
  private readonly connectTimeoutMs: number;

  constructor(opts: { proxy: URL; secure: boolean; ca?: TransportOptions['ca']; timeoutMs?: number }) {
    super({ keepAlive: false });
    this.proxyUrl = opts.proxy;
    this.secure = opts.secure;
    this.ca = opts.ca;
    this.connectTimeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // ClientRequest checks that the agent's protocol matches the request's.
    (this as unknown as { protocol: string }).protocol = opts.secure ? 'https:' : 'http:';
    (this as unknown as { defaultPort: number }).defaultPort = opts.secure ? 443 : 80;
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const done = callback ?? (() => undefined);
    const host = String(options.hostname ?? options.host ?? '').replace(/^\[|\]$/g, '');
    const port = Number(options.port) || (this.secure ? 443 : 80);
    this.openTunnel(host, port).then(
      (socket) => {
        if (!this.secure) return done(null, socket);
        // `host` is what the certificate is checked against; without it tls.connect would check
        // against "localhost".
        const secureSocket = tls.connect({
          socket,
          host,
          servername: isIP(host) ? undefined : host,
          ca: this.ca,
        });
        done(null, secureSocket);
      },
      (err: Error) => done(err, undefined as unknown as Duplex),
    );
    return undefined;
  }

  private openTunnel(host: string, port: number): Promise<Duplex> {
    const proxy = this.proxyUrl;
    const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    const headers: http.OutgoingHttpHeaders = { Host: authority };
    if (proxy.username || proxy.password) {
      const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
      headers['Proxy-Authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
    }
    const request = proxy.protocol === 'https:' ? https.request : http.request;
    const proxyName = `${proxy.hostname}:${defaultPort(proxy)}`;
    return new Promise((resolve, reject) => {
      const req = request({
        host: proxy.hostname.replace(/^\[|\]$/g, ''),
        port: defaultPort(proxy),
        method: 'CONNECT',
        path: authority,
        headers,
        agent: false,
        ca: this.ca,
      });
      req.setTimeout(this.connectTimeoutMs, () =>
        req.destroy(Object.assign(new Error(`proxy ${proxyName} did not answer`), { code: 'ETIMEDOUT' })),
      );
      req.once('connect', (res, socket, head) => {
        req.setTimeout(0);
        if (res.statusCode !== 200) {
          socket.destroy();
          const err = new DownloadError(
            'network',
            `Proxy ${proxyName} refused the tunnel to ${authority} (HTTP ${res.statusCode}).` +
              (res.statusCode === 407 ? ' It wants credentials: put them in the proxy URL (http://user:pass@host:port).' : ' Check HTTPS_PROXY and NO_PROXY.'),
            { status: res.statusCode },
          );
          return reject(err);
        }
        if (head.length) socket.unshift(head);
        resolve(socket);
      });
      req.once('error', (err) => reject(err));
      req.end();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

function describe(subject: RequestSubject): string {
  if (subject.file && subject.repo) return `"${subject.file}" from ${subject.repo}`;
  if (subject.file) return `"${subject.file}"`;
  return subject.repo ?? 'the model';
}

function retryAfterMs(headers: http.IncomingHttpHeaders): number | undefined {
  const raw = headers['retry-after'];
  if (typeof raw !== 'string' || !raw.trim()) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw.trim())) return Math.round(Number(raw) * 1000);
  const when = Date.parse(raw);
  return Number.isNaN(when) ? undefined : Math.max(0, when - Date.now());
}

/** Turns an HTTP status that is not success into the error a user should see. */
export function statusError(
  status: number,
  headers: http.IncomingHttpHeaders,
  subject: RequestSubject,
  endpoint: string,
): DownloadError {
  const rev = subject.revision ? ` at revision "${subject.revision}"` : '';
  if (status === 401 || status === 403) {
    const page = subject.repo ? ` (${endpoint.replace(/\/$/, '')}/${subject.repo})` : '';
    return new DownloadError(
      'unauthorized',
      `The hub refused access to ${describe(subject)} (HTTP ${status}). If the model is private or gated, ` +
        `${TOKEN_HINT}, and for a gated model accept its licence on its hub page${page}. ` +
        'If a token is already set, check that it is valid and allowed to read this repository, and that the repo id is spelled right.',
      { status },
    );
  }
  if (status === 404) {
    const message = subject.file
      ? `File "${subject.file}" was not found in ${subject.repo ?? 'the repository'}${rev} (HTTP 404). Check the file name and the revision.`
      : `Model ${subject.repo ?? ''}${rev} was not found on ${endpoint} (HTTP 404). Check the repo id (owner/name) and the revision.`;
    return new DownloadError('not-found', message, { status });
  }
  if (status === 429 || status >= 500) {
    return new DownloadError(
      'server',
      `The hub answered HTTP ${status} for ${describe(subject)}${rev}. It may be busy or down; try again in a few minutes.`,
      { status, retryable: true, retryAfterMs: retryAfterMs(headers) },
    );
  }
  return new DownloadError('server', `The hub answered HTTP ${status} for ${describe(subject)}${rev}, which we did not expect.`, {
    status,
  });
}

function isAbortError(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'AbortError';
}

function cancelledError(subject: RequestSubject): DownloadError {
  return new DownloadError('cancelled', `Download of ${describe(subject)} was cancelled.`);
}

/** Maps anything thrown while talking to a server onto a DownloadError. */
export function toDownloadError(err: unknown, subject: RequestSubject, origin: string, signal?: AbortSignal): DownloadError {
  if (signal?.aborted || isAbortError(err)) return cancelledError(subject);
  if (err instanceof DownloadError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') {
    return new DownloadError('no-space', `The disk filled up while downloading ${describe(subject)}. Free some space and pull again; the download resumes.`, {
      cause: err,
    });
  }
  if (typeof (e as { path?: unknown })?.path === 'string') {
    // A file-system error (only those carry a path): retrying will not help. Say which one.
    const where = `${describe(subject)} at ${e.path}`;
    const message =
      e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS'
        ? `Cannot write ${where} (${e.code}: not allowed). Check that the models folder is writable, or choose another one.`
        : e.code === 'ENOENT'
          ? `A file or folder of ${where} disappeared during the download (ENOENT): something else deleted it (another program, or the models folder was removed). Pull again.`
          : e.code === 'ENOTDIR' || e.code === 'EISDIR' || e.code === 'EEXIST'
            ? `Cannot store ${where} (${e.code}): something of another kind is already there. Remove it (recursivemas models rm), then pull again.`
            : `File system error for ${where} (${e.code ?? e.message}). Check the disk and the models folder, then pull again.`;
    return new DownloadError('bad-path', message, { cause: err });
  }
  if (e?.code?.startsWith?.('ERR_TLS') || /certificate|self.signed/i.test(e?.message ?? '')) {
    return new DownloadError(
      'network',
      `The TLS certificate of ${origin} was not accepted (${e.code ?? e.message}). If a proxy inspects TLS, add its CA with NODE_EXTRA_CA_CERTS.`,
      { cause: err },
    );
  }
  const detail = e?.code ?? e?.message ?? String(err);
  return new DownloadError(
    'network',
    `Network error while downloading ${describe(subject)} from ${origin} (${detail}). Check your connection and proxy settings (HTTPS_PROXY, NO_PROXY) and try again; a partial download resumes where it stopped.`,
    { retryable: true, cause: err },
  );
}

interface OpenOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  transport: TransportOptions;
}

function requestOnce(url: URL, opts: OpenOptions, withAuth: boolean): Promise<http.IncomingMessage> {
  const { transport } = opts;
  const secure = url.protocol === 'https:';
  const proxy = proxyForUrl(url, transport);
  const headers: Record<string, string> = {
    'User-Agent': USER_AGENT,
    'Accept-Encoding': 'identity', // byte ranges and sizes refer to the stored bytes
    ...opts.headers,
  };
  if (withAuth && transport.token) headers.Authorization = `Bearer ${transport.token}`;
  const agent = proxy ? new ProxyTunnelAgent({ proxy, secure, ca: transport.ca, timeoutMs: transport.timeoutMs }) : undefined;
  const request = secure ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers, agent, ca: transport.ca, signal: opts.signal });
    req.setTimeout(transport.timeoutMs ?? DEFAULT_TIMEOUT_MS, () =>
      req.destroy(Object.assign(new Error('connection timed out'), { code: 'ETIMEDOUT' })),
    );
    req.once('response', resolve);
    req.once('error', reject);
    req.end();
  });
}

/**
 * GET `url`, following redirects. The Authorization header goes only to the origin of the first
 * URL (the hub), never to a CDN it redirects to. Returns the final response whatever its status.
 */
export async function openUrl(url: URL, opts: OpenOptions): Promise<{ res: http.IncomingMessage; url: URL }> {
  const first = url;
  let current = url;
  for (let hop = 0; ; hop++) {
    assertAllowedUrl(current, 'a download');
    const res = await requestOnce(current, opts, current.origin === first.origin);
    const status = res.statusCode ?? 0;
    if (![301, 302, 303, 307, 308].includes(status) || !res.headers.location) return { res, url: current };
    res.resume();
    if (hop >= MAX_REDIRECTS) {
      throw new DownloadError('server', `The hub redirected more than ${MAX_REDIRECTS} times; giving up.`);
    }
    try {
      current = new URL(res.headers.location, current);
    } catch {
      throw new DownloadError('server', 'The hub sent a redirect to an invalid address.');
    }
  }
}

export function backoffDelayMs(attempt: number, retry: RetryOptions = {}, serverHintMs?: number): number {
  const base = retry.baseDelayMs ?? 500;
  const max = retry.maxDelayMs ?? 30_000;
  if (serverHintMs !== undefined) return Math.min(serverHintMs, retry.maxRetryAfterMs ?? 60_000);
  const exp = Math.min(max, base * 2 ** attempt);
  return Math.round(exp / 2 + Math.random() * (exp / 2)); // jitter spreads clients that failed together
}

async function waitBeforeRetry(ms: number, signal: AbortSignal | undefined, subject: RequestSubject): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (err) {
    if (isAbortError(err)) throw cancelledError(subject);
    throw err;
  }
}

const MAX_JSON_BYTES = 64 * 1024 * 1024;

/** GET a JSON document with retries; also returns the `Link: <...>; rel="next"` target if any. */
export async function getJson(
  url: URL,
  opts: { transport: TransportOptions; subject: RequestSubject; signal?: AbortSignal; endpoint: string },
): Promise<{ body: unknown; next?: URL }> {
  const retries = opts.transport.retry?.retries ?? 5;
  for (let attempt = 0; ; attempt++) {
    try {
      const { res, url: finalUrl } = await openUrl(url, {
        headers: { Accept: 'application/json' },
        signal: opts.signal,
        transport: opts.transport,
      });
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        throw statusError(status, res.headers, opts.subject, opts.endpoint);
      }
      const chunks: Buffer[] = [];
      let length = 0;
      for await (const chunk of res as AsyncIterable<Buffer>) {
        length += chunk.length;
        if (length > MAX_JSON_BYTES) {
          res.destroy();
          throw new DownloadError('server', `The hub's file list for ${describe(opts.subject)} is larger than ${MAX_JSON_BYTES} bytes; refusing it.`);
        }
        chunks.push(chunk);
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        throw new DownloadError('server', `The hub sent a malformed answer (not JSON) for ${describe(opts.subject)}. Try again later.`, {
          retryable: true,
        });
      }
      const link = res.headers.link;
      const nextMatch = typeof link === 'string' ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
      return { body, next: nextMatch ? new URL(nextMatch[1]!, finalUrl) : undefined };
    } catch (err) {
      const error = toDownloadError(err, opts.subject, new URL(opts.endpoint).origin, opts.signal);
      if (!error.retryable || attempt >= retries) throw error;
      await waitBeforeRetry(backoffDelayMs(attempt, opts.transport.retry, error.retryAfterMs), opts.signal, opts.subject);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One file

export interface DownloadProgress {
  file: string;
  /** Bytes of this file on disk so far, including a resumed part. */
  bytes: number;
  /** The file's size (0 while unknown). */
  total: number;
  /** Average transfer rate of this download so far. */
  rateBytesPerS: number;
  /** Seconds left at that rate (Infinity while nothing has arrived yet). */
  etaS: number;
}

export interface DownloadFileOptions extends TransportOptions {
  url: string | URL;
  /** Final path; the data goes to `<destination>.part` until verified. */
  destination: string;
  /** Name used in progress events and messages (defaults to the file's base name). */
  file?: string;
  /** Expected size in bytes, when the hub listed it. */
  size?: number;
  /** Expected SHA-256 (hex) of the content; the hub gives it for LFS files. */
  sha256?: string;
  /** Expected git blob id (SHA-1 of "blob <size>\0" + content) for files stored in git; needs `size`. */
  gitOid?: string;
  /** For messages: the repository and revision the file belongs to. */
  subject?: RequestSubject;
  /** Where the request is aimed, for messages (defaults to the URL's origin). */
  endpoint?: string;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  progressIntervalMs?: number;
}

export interface DownloadResult {
  path: string;
  size: number;
  sha256: string;
  /** Bytes that were already in the .part file when this call began. */
  resumedFrom: number;
  /** Bytes received over the network by this call. */
  fetchedBytes: number;
  /** HTTP requests made for the content. */
  requests: number;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

function newHashes(size: number | undefined, wantGit: boolean): { sha256: Hash; git?: Hash } {
  const sha256 = createHash('sha256');
  const git = wantGit && size !== undefined ? createHash('sha1').update(`blob ${size}\0`) : undefined;
  return { sha256, git };
}

async function hashPrefix(path: string, hashes: { sha256: Hash; git?: Hash }, signal?: AbortSignal): Promise<void> {
  for await (const chunk of createReadStream(path, { signal }) as AsyncIterable<Buffer>) {
    hashes.sha256.update(chunk);
    hashes.git?.update(chunk);
  }
}

/** Fsyncs a directory so a rename in it survives a crash; not possible on every platform. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Windows cannot open directories; the rename is still atomic there.
  }
}

class ProgressReporter {
  private lastEmit = 0;
  private readonly started = Date.now();
  private transferred = 0;
  constructor(
    private readonly file: string,
    private readonly intervalMs: number,
    private readonly callback?: (p: DownloadProgress) => void,
  ) {}

  update(bytes: number, total: number, newBytes: number, force = false): void {
    this.transferred += newBytes;
    if (!this.callback) return;
    const now = Date.now();
    if (!force && now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    const seconds = Math.max(now - this.started, 1) / 1000;
    const rate = this.transferred / seconds;
    const left = Math.max(total - bytes, 0);
    this.callback({
      file: this.file,
      bytes,
      total,
      rateBytesPerS: rate,
      etaS: left === 0 ? 0 : rate > 0 ? left / rate : Infinity,
    });
  }
}

function corrupt(subject: RequestSubject, detail: string): DownloadError {
  return new DownloadError(
    'corrupt',
    `The download of ${describe(subject)} is corrupt (${detail}). The partial file was deleted; pull again, and if this repeats the copy on the hub or a proxy in between is damaged.`,
  );
}

/**
 * Downloads one file. Resumes an existing `.part` with a Range request, retries network errors
 * and 5xx/429 with backoff, verifies size and hash, fsyncs and renames into place. Cancelling
 * (via `signal`) keeps the `.part` for a later resume; nothing at `destination` looks complete
 * until the content has been verified. The caller must be the only writer of `<destination>.part`:
 * ModelStore holds the repository's lock file (lock.ts) around every call.
 */
export async function downloadFile(opts: DownloadFileOptions): Promise<DownloadResult> {
  const url = typeof opts.url === 'string' ? new URL(opts.url) : opts.url;
  const dest = opts.destination;
  const part = `${dest}.part`;
  const name = opts.file ?? basename(dest);
  const subject: RequestSubject = { ...opts.subject, file: opts.subject?.file ?? name };
  const endpoint = opts.endpoint ?? url.origin;
  const origin = new URL(endpoint).origin;
  const retries = opts.retry?.retries ?? 5;
  const signal = opts.signal;
  const progress = new ProgressReporter(name, opts.progressIntervalMs ?? 250, opts.onProgress);
  const expectedSha = opts.sha256?.toLowerCase();
  const expectedGit = opts.gitOid?.toLowerCase();

  assertAllowedUrl(url, 'a download');
  if (signal?.aborted) throw cancelledError(subject);
  await mkdir(dirname(dest), { recursive: true }).catch((err) => {
    throw toDownloadError(err, subject, origin, signal);
  });

  const resumedFrom = (await fileSize(part)) ?? 0;
  let attempt = 0;
  let restarts = 0;
  let requests = 0;
  let fetchedBytes = 0;
  // A failed try only resets the retry count if the .part grew past anything seen before, so a
  // server that keeps cutting the connection (or ignoring Range) cannot loop us forever.
  let furthest = resumedFrom;

  // The checksum is taken from the .part as it is on disk, just before the rename: it covers the
  // bytes that will be used, not the bytes that arrived (which a second writer or a failing disk
  // could make differ).
  const finish = async (size: number): Promise<DownloadResult> => {
    const onDisk = await fileSize(part);
    if (onDisk === undefined) {
      throw toDownloadError(Object.assign(new Error(`${part} is gone`), { code: 'ENOENT', path: part }), subject, origin, signal);
    }
    if (onDisk !== size) {
      await rm(part, { force: true });
      throw corrupt(subject, `the partial file holds ${onDisk ?? 0} bytes, not the ${size} written`);
    }
    const hashes = newHashes(size, !!expectedGit);
    await hashPrefix(part, hashes, signal).catch((err) => {
      throw toDownloadError(err, subject, origin, signal);
    });
    const sha256 = hashes.sha256.digest('hex');
    if (expectedSha && sha256 !== expectedSha) {
      await rm(part, { force: true });
      throw corrupt(subject, `SHA-256 ${sha256} does not match the hub's ${expectedSha}`);
    }
    if (expectedGit && hashes.git) {
      const oid = hashes.git.digest('hex');
      if (oid !== expectedGit) {
        await rm(part, { force: true });
        throw corrupt(subject, `git object id ${oid} does not match the hub's ${expectedGit}`);
      }
    }
    await rename(part, dest);
    await syncDirectory(dirname(dest));
    progress.update(size, size, 0, true);
    return { path: dest, size, sha256, resumedFrom, fetchedBytes, requests };
  };

  for (;;) {
    let offset = (await fileSize(part)) ?? 0;
    if (opts.size !== undefined && offset > opts.size) {
      await rm(part, { force: true });
      offset = 0;
    }
    if (opts.size !== undefined && offset === opts.size && offset > 0) {
      // A previous run wrote everything but stopped before the rename: verify what is there.
      return finish(offset);
    }
    if (signal?.aborted) throw cancelledError(subject);

    let madeProgress = false;
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    try {
      requests++;
      const { res } = await openUrl(url, {
        headers: offset > 0 ? { Range: `bytes=${offset}-` } : {},
        signal,
        transport: opts,
      });
      const status = res.statusCode ?? 0;
      let total: number | undefined = opts.size;
      if (status === 206 && offset > 0) {
        const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? '').trim());
        if (!range || Number(range[1]) !== offset) {
          // The server answered a different range than asked: start over from byte 0.
          res.destroy();
          await rm(part, { force: true });
          if (++restarts > 2) throw new DownloadError('server', `The server keeps answering the wrong byte range for ${describe(subject)}.`);
          continue;
        }
        if (range[3] !== '*') total ??= Number(range[3]);
      } else if (status === 200) {
        if (offset > 0) offset = 0; // Range ignored: the body is the whole file.
        const length = Number(res.headers['content-length']);
        if (Number.isFinite(length) && length >= 0 && res.headers['content-length'] !== undefined) {
          if (total !== undefined && length !== total) {
            res.destroy();
            await rm(part, { force: true });
            throw corrupt(subject, `the server sends ${length} bytes but the hub lists ${total}`);
          }
          total ??= length;
        }
      } else if (status === 416) {
        res.resume();
        await rm(part, { force: true });
        if (++restarts > 2) throw new DownloadError('server', `The server refuses every byte range for ${describe(subject)}.`, { status });
        continue;
      } else {
        res.resume();
        throw statusError(status, res.headers, subject, endpoint);
      }

      handle = await open(part, offset > 0 ? 'a' : 'w');
      let written = offset;
      const idleMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const idle = setTimeout(() => res.destroy(Object.assign(new Error('download stalled'), { code: 'ETIMEDOUT' })), idleMs);
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          if (total !== undefined && written + chunk.length > total) {
            res.destroy();
            throw corrupt(subject, `the server sent more than the ${total} bytes listed`);
          }
          await handle.write(chunk);
          written += chunk.length;
          fetchedBytes += chunk.length;
          if (written > furthest) {
            furthest = written;
            madeProgress = true;
          }
          progress.update(written, total ?? 0, chunk.length);
          idle.refresh();
        }
      } finally {
        clearTimeout(idle);
      }
      if (signal?.aborted) throw cancelledError(subject);
      await handle.sync();
      await handle.close();
      handle = undefined;
      if (total !== undefined && written < total) {
        throw new DownloadError('network', `The connection closed after ${written} of ${total} bytes of ${describe(subject)}.`, {
          retryable: true,
        });
      }
      return await finish(written);
    } catch (err) {
      await handle?.close().catch(() => undefined);
      const error = toDownloadError(err, subject, origin, signal);
      if (error.code === 'corrupt') await rm(part, { force: true });
      if (!error.retryable) throw error;
      if (madeProgress) attempt = 0;
      if (attempt >= retries) throw error;
      await waitBeforeRetry(backoffDelayMs(attempt, opts.retry, error.retryAfterMs), signal, subject);
      attempt++;
    }
  }
}
