// The framed JSON-RPC reader: it delivers well-formed messages however the bytes are split, and
// after garbage of any kind it reports what it dropped and finds the next message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { envelopeProblem, FramedMessageReader, type MalformedInput } from '../../src/runtime/framing';

function frame(message: unknown): string {
  const body = JSON.stringify(message);
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function reader(options: { maxMessageBytes?: number } = {}) {
  const stream = new PassThrough();
  const messages: unknown[] = [];
  const malformed: MalformedInput[] = [];
  let closed = false;
  const r = new FramedMessageReader(stream, { ...options, onMalformed: (m) => malformed.push(m) });
  r.onClose(() => (closed = true));
  r.listen((m) => messages.push(m));
  return { stream, messages, malformed, closed: () => closed };
}

const ping = (id: number | string) => ({ jsonrpc: '2.0', id, method: 'ping' });

test('messages split at every byte boundary, or several in one chunk, arrive whole and in order', () => {
  const bytes = Buffer.from(frame(ping(1)) + frame({ jsonrpc: '2.0', method: 'log', params: { message: 'héllo ✓' } }) + frame(ping(2)));
  for (const step of [1, 2, 7, 64, bytes.length]) {
    const { stream, messages, malformed } = reader();
    for (let i = 0; i < bytes.length; i += step) stream.write(bytes.subarray(i, i + step));
    assert.equal(malformed.length, 0);
    assert.deepEqual(messages, [ping(1), { jsonrpc: '2.0', method: 'log', params: { message: 'héllo ✓' } }, ping(2)]);
  }
});

test('garbage before a header, an unknown header, and bad JSON are skipped and reported', () => {
  const { stream, messages, malformed } = reader();
  stream.write('Warning: stray native output\n');
  stream.write(frame(ping(1)));
  stream.write('X-Other: 1\r\n\r\n');
  stream.write(frame(ping(2)));
  stream.write('Content-Length: 9\r\n\r\n{"jsonrpc');
  stream.write(frame(ping(3)));
  stream.write('Content-Length: nope\r\n\r\n');
  stream.write(frame(ping(4)));
  assert.deepEqual(messages, [ping(1), ping(2), ping(3), ping(4)]);
  assert.deepEqual(
    malformed.map((m) => [m.code, m.id]),
    [
      [-32700, null],
      [-32700, null],
      [-32700, null],
      [-32700, null],
    ],
  );
  assert.match(malformed[0]!.problem, /not a message header/);
  assert.match(malformed[0]!.excerpt, /Warning: stray native output/);
  assert.match(malformed[1]!.problem, /not a message header: "X-Other: 1"/);
  assert.match(malformed[2]!.problem, /not JSON/);
  assert.match(malformed[3]!.problem, /must be a whole number/);
});

test('an overstated Content-Length gives back the frame it swallowed', () => {
  const { stream, messages, malformed } = reader();
  const body = JSON.stringify(ping(1));
  stream.write(`Content-Length: ${body.length + 40}\r\n\r\n${body}`);
  stream.write(frame(ping(2)));
  stream.write(frame(ping(3)));
  assert.deepEqual(messages, [ping(2), ping(3)]);
  assert.equal(malformed.length, 1);
});

test('a long run of bytes without any header end is dropped without buffering it forever', () => {
  const { stream, messages, malformed } = reader();
  stream.write('x'.repeat(20_000));
  stream.write(frame(ping(1)));
  assert.deepEqual(messages, [ping(1)]);
  assert.ok(malformed.length >= 1);
  assert.match(malformed[0]!.excerpt, /\(\d+ bytes\)/);
});

test('oversized messages are refused before they are buffered', () => {
  const { stream, messages, malformed } = reader({ maxMessageBytes: 100 });
  stream.write(frame({ jsonrpc: '2.0', method: 'log', params: { message: 'y'.repeat(200) } }));
  stream.write(frame(ping(1)));
  assert.deepEqual(messages, [ping(1)]);
  assert.match(malformed[0]!.problem, /exceeds the 100-byte limit/);
});

test('JSON that is not a JSON-RPC 2.0 message is reported with its id, and answerable only when it expects an answer', () => {
  const { stream, messages, malformed } = reader();
  stream.write(frame([ping(1)]));
  stream.write(frame({ jsonrpc: '1.0', id: 5, method: 'ping' }));
  stream.write(frame({ jsonrpc: '2.0', method: 'x', params: 3 }));
  stream.write(frame({ jsonrpc: '2.0', id: 6, result: 1, error: { code: 1, message: 'm' } }));
  stream.write(frame({ jsonrpc: '2.0', id: 7, method: 'ping', params: {} }));
  assert.deepEqual(messages, [{ jsonrpc: '2.0', id: 7, method: 'ping', params: {} }]);
  assert.deepEqual(
    malformed.map((m) => [m.code, m.id, m.answerable]),
    [
      [-32600, null, true],
      [-32600, 5, true],
      [-32600, null, false],
      [-32600, 6, false],
    ],
  );
});

test('envelope checks', () => {
  assert.equal(envelopeProblem(ping(1)), undefined);
  assert.equal(envelopeProblem({ jsonrpc: '2.0', id: 1, result: null }), undefined);
  assert.equal(envelopeProblem({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'x' } }), undefined);
  assert.match(envelopeProblem({ jsonrpc: '2.0', id: 1.5, method: 'ping' })!, /"id"/);
  assert.match(envelopeProblem({ jsonrpc: '2.0', id: 1 })!, /exactly one of/);
  assert.match(envelopeProblem({ jsonrpc: '2.0', id: 1, error: { message: 'no code' } })!, /"error"/);
  assert.match(envelopeProblem('hi')!, /JSON object/);
});

test('the end of the stream closes the reader', () => {
  const r = reader();
  r.stream.end();
  r.stream.resume();
  return new Promise<void>((resolve) => setImmediate(() => {
    assert.ok(r.closed());
    resolve();
  }));
});

test('a body that stops arriving is dropped after frameTimeoutMs and reported; a later message gets through', async () => {
  const stream = new PassThrough();
  const messages: unknown[] = [];
  const malformed: MalformedInput[] = [];
  const timeouts: string[] = [];
  const r = new FramedMessageReader(stream, { frameTimeoutMs: 100, onMalformed: (m) => malformed.push(m), onFrameTimeout: (p) => timeouts.push(p) });
  r.listen((m) => messages.push(m));
  stream.write('Content-Length: 5000\r\n\r\n{"jsonrpc":"2.0","id":1,');
  // A body that keeps coming, however slowly, does not time out.
  const slow = frame(ping(7));
  stream.write(slow.slice(0, 20));
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(timeouts.length, 0);
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(timeouts.length, 1);
  assert.match(timeouts[0]!, /announced 5000 bytes but only \d+ arrived/);
  assert.equal(malformed.length, 1);
  // The start of the next message had been swallowed by the stalled body; it is found again.
  stream.write(slow.slice(20));
  assert.deepEqual(messages, [ping(7)]);
  for (let i = 0; i < 3; i++) {
    stream.write(slow.slice(i * 10, i * 10 + 10));
    await new Promise((resolve) => setTimeout(resolve, 60));
  }
  stream.write(slow.slice(30));
  assert.equal(timeouts.length, 1, 'a message that keeps arriving timed out');
  assert.deepEqual(messages, [ping(7), ping(7)]);
  r.dispose();
});
