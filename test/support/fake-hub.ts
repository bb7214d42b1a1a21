// A local stand-in for the Hugging Face hub's file endpoints, on 127.0.0.1 only: the two API
// endpoints, /resolve/ with Range support, LFS files redirected to a second server ("CDN", another
// origin), and switchable faults. It stops itself after `lifetimeMs` so a failed test cannot hang.
import { createHash, generateKeyPairSync, randomBytes, sign, type Hash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeFile {
  path: string;
  content: Buffer;
  /** Stored in LFS: listed with a sha256 and served through a redirect to the CDN. */
  lfs?: boolean;
}

export interface FakeRepo {
  /** Commit id `main` resolves to. */
  sha?: string;
  files: FakeFile[];
  /** Extra names listed by the API with no content behind them (for hostile lists). */
  listOnly?: string[];
}

export interface FakeHubFaults {
  /** Answer 401 unless `Authorization: Bearer <token>` (hub only; the CDN trusts its signed URL). */
  requireToken?: string;
  /** The next file body is cut (socket destroyed) after this many bytes; then the fault clears. */
  cutAfterBytes?: number;
  /** Flip one byte in the middle of every file body (same size, wrong content). */
  corrupt?: boolean;
  /** Paths whose /resolve/ answers 404. */
  missingFiles?: string[];
  /** The next `failFirst` requests that `failOn` selects answer `failStatus`. */
  failFirst?: number;
  failStatus?: number;
  failOn?: 'api' | 'content' | 'all';
  retryAfterS?: number;
  /** Send file bodies slowly: `chunkBytes` every `intervalMs`. */
  trickle?: { chunkBytes: number; intervalMs: number };
  /** Answer 200 with the whole file even when a Range is asked for. */
  ignoreRange?: boolean;
}

export interface FakeHubRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  status: number;
  /** Set when the request was answered with (part of) a file's bytes. */
  file?: string;
}

export interface FakeHubOptions {
  repos: Record<string, FakeRepo>;
  /** Serve HTTPS with a fresh self-signed certificate (see `ca`). */
  tls?: boolean;
  /** Tree entries per page; the API then paginates with a Link header like the real hub. */
  treePageSize?: number;
  lifetimeMs?: number;
}

// Remembered per buffer: multi-GB files (bench:release) are hashed once, not on every listing and redirect.
const sha256s = new WeakMap<Buffer, string>();
const blobOids = new WeakMap<Buffer, string>();

/** Feeds `data` in pieces: a hash takes at most 2 GiB per update. */
function hashed(hash: Hash, data: Buffer): string {
  for (let at = 0; at < data.length; at += 1 << 30) hash.update(data.subarray(at, at + (1 << 30)));
  return hash.digest('hex');
}

export function sha256Hex(data: Buffer): string {
  let hex = sha256s.get(data);
  if (hex === undefined) sha256s.set(data, (hex = hashed(createHash('sha256'), data)));
  return hex;
}

export function gitBlobOid(data: Buffer): string {
  let hex = blobOids.get(data);
  if (hex === undefined) blobOids.set(data, (hex = hashed(createHash('sha1').update(`blob ${data.length}\0`), data)));
  return hex;
}

// --- a minimal X.509 certificate, DER-encoded by hand, so tests need no openssl binary ---------

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const der = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
};
const seq = (...parts: Buffer[]): Buffer => der(0x30, ...parts);
const set = (...parts: Buffer[]): Buffer => der(0x31, ...parts);
const integer = (bytes: Buffer): Buffer => der(0x02, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >> 7; v > 0; v >>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return der(0x06, Buffer.from(out));
}
function utcTime(d: Date): Buffer {
  const p = (n: number): string => String(n).padStart(2, '0');
  const text = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return der(0x17, Buffer.from(text));
}

/** A self-signed ECDSA P-256 certificate for 127.0.0.1, valid for a day. */
export function createSelfSignedCertificate(): { key: string; cert: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(set(seq(oid('2.5.4.3'), der(0x0c, Buffer.from('fake-hub 127.0.0.1')))));
  const serial = randomBytes(8);
  serial[0] = (serial[0]! & 0x3f) | 0x40; // positive and minimal: DER forbids a needless leading zero
  const now = Date.now();
  // Only the IP: a client that checks the wrong host name (say "localhost") fails against it.
  const subjectAltName = seq(oid('2.5.29.17'), der(0x04, seq(der(0x87, Buffer.from([127, 0, 0, 1])))));
  const basicConstraints = seq(oid('2.5.29.19'), der(0x04, seq(der(0x01, Buffer.from([0xff])))));
  const tbs = seq(
    der(0xa0, integer(Buffer.from([2]))),
    integer(serial),
    ecdsaSha256,
    name,
    seq(utcTime(new Date(now - 3_600_000)), utcTime(new Date(now + 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, seq(subjectAltName, basicConstraints)),
  );
  const signature = sign('sha256', tbs, privateKey);
  const cert = seq(tbs, ecdsaSha256, der(0x03, Buffer.from([0]), signature));
  const pem = cert.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n');
  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    cert: `-----BEGIN CERTIFICATE-----\n${pem}-----END CERTIFICATE-----\n`,
  };
}

// --- the servers -------------------------------------------------------------------------------

type Server = http.Server | https.Server;

export class FakeHub {
  faults: FakeHubFaults = {};
  readonly requests: FakeHubRequest[] = [];
  /** Base URL of the hub, e.g. http://127.0.0.1:PORT */
  endpoint = '';
  /** Origin of the CDN server LFS files are redirected to. */
  cdnOrigin = '';
  /** PEM of the self-signed certificate when `tls` is on. */
  readonly ca?: string;

  private readonly repos: Record<string, FakeRepo>;
  private readonly hub: Server;
  private readonly cdn: Server;
  private readonly sockets = new Set<Socket>();
  private readonly treePageSize: number;
  private lifetime?: NodeJS.Timeout;
  private stopped?: Promise<void>;

  private constructor(opts: FakeHubOptions) {
    this.repos = opts.repos;
    this.treePageSize = opts.treePageSize ?? 1000;
    const handler = (server: 'hub' | 'cdn') => (req: http.IncomingMessage, res: http.ServerResponse) => {
      try {
        this.handle(server, req, res);
      } catch (err) {
        res.writeHead(500).end(String(err));
      }
    };
    if (opts.tls) {
      const { key, cert } = createSelfSignedCertificate();
      this.ca = cert;
      this.hub = https.createServer({ key, cert }, handler('hub'));
      this.cdn = https.createServer({ key, cert }, handler('cdn'));
    } else {
      this.hub = http.createServer(handler('hub'));
      this.cdn = http.createServer(handler('cdn'));
    }
    for (const server of [this.hub, this.cdn]) {
      server.on(opts.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
      });
    }
  }

  static async start(opts: FakeHubOptions): Promise<FakeHub> {
    const hub = new FakeHub(opts);
    const scheme = opts.tls ? 'https' : 'http';
    const listen = (server: Server): Promise<number> =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
      });
    hub.endpoint = `${scheme}://127.0.0.1:${await listen(hub.hub)}`;
    hub.cdnOrigin = `${scheme}://127.0.0.1:${await listen(hub.cdn)}`;
    hub.lifetime = setTimeout(() => void hub.stop(), opts.lifetimeMs ?? 60_000);
    hub.lifetime.unref();
    return hub;
  }

  /** Forget faults and the request log between tests. */
  reset(): void {
    this.faults = {};
    this.requests.length = 0;
  }

  /** Requests that were answered with file bytes (optionally of one file). */
  contentRequests(file?: string): FakeHubRequest[] {
    return this.requests.filter((r) => r.file !== undefined && (file === undefined || r.file === file));
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      clearTimeout(this.lifetime);
      for (const socket of this.sockets) socket.destroy();
      await Promise.all(
        [this.hub, this.cdn].map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
    })();
    return this.stopped;
  }

  private handle(server: 'hub' | 'cdn', req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const entry: FakeHubRequest = {
      server,
      method: req.method ?? '',
      path: url.pathname,
      range: req.headers.range,
      authorization: req.headers.authorization,
      status: 0,
    };
    this.requests.push(entry);
    const reply = (status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void => {
      entry.status = status;
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json', ...headers });
      res.end(text);
    };

    const isApi = server === 'hub' && url.pathname.startsWith('/api/');
    const f = this.faults;
    if (f.failFirst && f.failFirst > 0 && (f.failOn ?? 'all') !== (isApi ? 'content' : 'api')) {
      f.failFirst--;
      const headers = f.retryAfterS !== undefined ? { 'Retry-After': String(f.retryAfterS) } : undefined;
      return reply(f.failStatus ?? 500, { error: 'injected failure' }, headers);
    }

    if (server === 'cdn') {
      const match = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
      const file = match && this.allFiles().find((x) => x.lfs && sha256Hex(x.content) === match[1]);
      if (!file || url.searchParams.get('sig') !== 'signed') return reply(403, 'bad signature');
      return this.serveContent(req, res, entry, file);
    }

    if (f.requireToken && req.headers.authorization !== `Bearer ${f.requireToken}`) {
      return reply(401, { error: 'Invalid credentials in Authorization header' });
    }

    const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
    if (segments[0] === 'api' && segments[1] === 'models' && segments.length === 6) {
      const [, , owner, name, kind, rev] = segments as [string, string, string, string, string, string];
      const repo = this.repos[`${owner}/${name}`];
      if (!repo || !this.revisionOk(repo, rev)) return reply(404, { error: 'Repository not found' });
      if (kind === 'revision') {
        const siblings = [...repo.files.map((x) => x.path), ...(repo.listOnly ?? [])].map((rfilename) => ({ rfilename }));
        return reply(200, { id: `${owner}/${name}`, sha: repo.sha, siblings });
      }
      if (kind === 'tree' && url.searchParams.get('recursive') === 'true') {
        const entries = [
          ...repo.files.map((x) => ({
            type: 'file',
            path: x.path,
            size: x.content.length,
            oid: x.lfs ? gitBlobOid(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256Hex(x.content)}\n`)) : gitBlobOid(x.content),
            ...(x.lfs ? { lfs: { oid: sha256Hex(x.content), size: x.content.length, pointerSize: 130 } } : {}),
          })),
          ...(repo.listOnly ?? []).map((path) => ({ type: 'file', path, size: 1, oid: '0'.repeat(40) })),
          { type: 'directory', path: 'zz-dir', oid: '0'.repeat(40), size: 0 },
        ];
        const cursor = Number(url.searchParams.get('cursor') ?? 0);
        const page = entries.slice(cursor, cursor + this.treePageSize);
        const headers: http.OutgoingHttpHeaders = {};
        if (cursor + this.treePageSize < entries.length) {
          const next = new URL(url.pathname, this.endpoint);
          next.searchParams.set('recursive', 'true');
          next.searchParams.set('cursor', String(cursor + this.treePageSize));
          headers.Link = `<${next.href}>; rel="next"`;
        }
        return reply(200, page, headers);
      }
      return reply(404, { error: 'Not found' });
    }

    const resolveAt = segments.indexOf('resolve');
    if (resolveAt === 2 && segments.length >= 5) {
      const repo = this.repos[`${segments[0]}/${segments[1]}`];
      const rev = segments[3]!;
      const path = segments.slice(4).join('/');
      if (!repo || !this.revisionOk(repo, rev)) return reply(404, { error: 'Repository not found' });
      const file = repo.files.find((x) => x.path === path);
      if (!file || f.missingFiles?.includes(path)) return reply(404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
      if (file.lfs) {
        entry.status = 302;
        res.writeHead(302, { Location: `${this.cdnOrigin}/cdn/${sha256Hex(file.content)}?sig=signed` });
        return void res.end();
      }
      return this.serveContent(req, res, entry, file);
    }
    return reply(404, { error: 'Not found' });
  }

  private allFiles(): FakeFile[] {
    return Object.values(this.repos).flatMap((r) => r.files);
  }

  private revisionOk(repo: FakeRepo, rev: string): boolean {
    return rev === 'main' || (repo.sha !== undefined && rev === repo.sha);
  }

  private serveContent(req: http.IncomingMessage, res: http.ServerResponse, entry: FakeHubRequest, file: FakeFile): void {
    const f = this.faults;
    entry.file = file.path;
    let body = file.content;
    if (f.corrupt && body.length > 0) {
      body = Buffer.from(body);
      body[body.length >> 1] = body[body.length >> 1]! ^ 0xff;
    }
    let status = 200;
    const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && !f.ignoreRange) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
      if (start >= body.length || end < start) {
        entry.status = 416;
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` });
        return void res.end();
      }
      headers['Content-Range'] = `bytes ${start}-${end}/${body.length}`;
      body = body.subarray(start, end + 1);
      status = 206;
    }
    headers['Content-Length'] = body.length;
    entry.status = status;
    res.writeHead(status, headers);

    const cut = f.cutAfterBytes;
    if (cut !== undefined && cut < body.length) {
      f.cutAfterBytes = undefined;
      res.write(body.subarray(0, cut), () => res.socket?.destroy());
      return;
    }
    const trickle = f.trickle;
    if (!trickle) return void res.end(body);
    let offset = 0;
    const timer = setInterval(() => {
      if (res.destroyed || offset >= body.length) {
        clearInterval(timer);
        if (!res.destroyed) res.end();
        return;
      }
      res.write(body.subarray(offset, offset + trickle.chunkBytes));
      offset += trickle.chunkBytes;
    }, trickle.intervalMs);
    res.on('close', () => clearInterval(timer));
  }
}
