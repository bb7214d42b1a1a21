// A runtime that misbehaves on purpose, for the supervisor's failure handling. It speaks just
// enough JSON-RPC by hand (no shared code with the real runtime) to be believable.
// Mode: argv[2] or $MISBEHAVE.
//   crash-at-start   prints a few lines to stderr and exits with code 3 before answering anything
//   malformed        answers initialize and ping, but a solve gets garbage bytes, malformed
//                    solve/event notifications among valid ones, and a malformed result
//   ignore-sigterm   answers initialize and ping, ignores SIGTERM and the end of stdin (dispose
//                    must SIGKILL it)
//   stall-frame      answers initialize; a ping gets a header announcing 5000 bytes and only the
//                    first few of them, then nothing (the process stays alive)
import { createWriteStream } from 'node:fs';

const mode = process.argv[2] ?? process.env.MISBEHAVE ?? 'crash-at-start';
const fd = Number(process.env.RECURSIVEMAS_RPC_FD) || 1;
const out = fd === 1 ? process.stdout : createWriteStream('', { fd });

function frame(message: object): string {
  const body = JSON.stringify(message);
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
const send = (message: object) => out.write(frame(message));

if (mode === 'crash-at-start') {
  process.stderr.write('misbehaving runtime: loading settings\n');
  process.stderr.write('misbehaving runtime: fatal: the model cache is corrupt (on purpose)\n');
  process.exit(3);
}

if (mode === 'ignore-sigterm') process.on('SIGTERM', () => process.stderr.write('misbehaving runtime: ignoring SIGTERM\n'));

const initializeResult = {
  runtimeVersion: '0.0.0-misbehaving',
  ortVersion: '0.0.0',
  node: process.version,
  providers: [{ name: 'cpu', available: true }],
  limits: { maxRounds: 16, maxLatentSteps: 256, maxNewTokens: 32768 },
};

function handle(message: { id?: number | string; method?: string; params?: { id?: string } }): void {
  if (message.id === undefined || !message.method) return;
  switch (message.method) {
    case 'initialize':
      send({ jsonrpc: '2.0', id: message.id, result: initializeResult });
      return;
    case 'ping':
      if (mode === 'stall-frame') {
        out.write(`Content-Length: 5000\r\n\r\n{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"result":{"uptimeMs":`);
        return;
      }
      send({ jsonrpc: '2.0', id: message.id, result: { uptimeMs: 1, team: null, solves: [] } });
      return;
    case 'solve': {
      const id = message.params?.id ?? 'x';
      out.write('this line is not a protocol message\r\n\r\n');
      send({ jsonrpc: '2.0', method: 'solve/event', params: { id, event: { type: 'round-start', round: 1, rounds: 1 } } });
      send({ jsonrpc: '2.0', method: 'solve/event', params: { id, event: { type: 'no-such-event' } } });
      send({ jsonrpc: '2.0', method: 'solve/event', params: { id, event: { type: 'latent-step', round: 1, agent: 'a', step: 'one', steps: 2 } } });
      send({ jsonrpc: '2.0', method: 'log', params: { level: 'loud', message: 3 } });
      send({ jsonrpc: '2.0', method: 'solve/event', params: { id, event: { type: 'round-end', round: 1, ms: 5 } } });
      send({ jsonrpc: '2.0', id: message.id, result: { rounds: 1, answer: 42, code: null } });
      return;
    }
    default:
      send({ jsonrpc: '2.0', id: message.id, error: { code: -32601, message: `unknown method ${message.method}` } });
  }
}

let buffer = Buffer.alloc(0);
process.stdin.on('data', (chunk: Buffer) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const end = buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const length = Number(/content-length:\s*(\d+)/i.exec(buffer.subarray(0, end).toString())?.[1]);
    if (!Number.isFinite(length) || buffer.length < end + 4 + length) return;
    const body = buffer.subarray(end + 4, end + 4 + length).toString();
    buffer = buffer.subarray(end + 4 + length);
    handle(JSON.parse(body));
  }
});
if (mode === 'ignore-sigterm') {
  // Stays when asked to go (only SIGKILL ends it), but never outlives a broken test for long.
  process.stdin.on('end', () => process.stderr.write('misbehaving runtime: ignoring the end of stdin\n'));
  setTimeout(() => process.exit(0), 30_000);
} else process.stdin.on('end', () => process.exit(0));
process.stderr.write(`misbehaving runtime (${mode}) started\n`);
