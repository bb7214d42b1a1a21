// The runtime process: ONNX Runtime and the engine live here, never in the editor. It reads
// JSON-RPC from stdin and writes it to fd 3 when the supervisor opened one (RECURSIVEMAS_RPC_FD=3),
// else to stdout. Keeping the protocol off stdout means a native library printing there (Dawn does)
// cannot corrupt a message; whatever lands on stdout or stderr is only diagnostics.
// The process exits when its parent goes away: stdin ends, an IPC channel closes, or the parent
// process is gone.
import { Socket } from 'node:net';
import { format } from 'node:util';
import type { Writable } from 'node:stream';
import { runtimeVersion, serveRuntime } from './server';

// Anything printed by the engine or a library goes to stderr, never into the protocol channel.
for (const level of ['log', 'info', 'debug', 'trace', 'warn', 'error'] as const) {
  console[level] = (...args: unknown[]) => void process.stderr.write(`${format(...args)}\n`);
}

const trace = (line: string) => void process.stderr.write(`${line}\n`);
// Diagnostics are best effort: a parent that went away must not turn a write into a crash.
process.stderr.on('error', () => {});
process.stdout.on('error', () => {});

function protocolOutput(): Writable {
  const fd = Number(process.env.RECURSIVEMAS_RPC_FD);
  if (Number.isInteger(fd) && fd > 2) return new Socket({ fd, readable: false, writable: true });
  return process.stdout;
}

let exiting = false;
function exit(reason: string, code = 0): void {
  if (exiting) return;
  exiting = true;
  trace(`runtime exiting: ${reason}`);
  // Releasing sessions is polite, not required: the OS reclaims everything if it takes too long.
  setTimeout(() => process.exit(code), 2000).unref();
  server.close().then(
    () => process.exit(code),
    () => process.exit(code),
  );
}

const output = protocolOutput();
output.on('error', (e) => exit(`the protocol channel failed (${e.message})`));

const { server } = serveRuntime(
  { input: process.stdin, output },
  {
    engine: async () => (await import('../../engine/index')).createEngine(),
    trace,
    onShutdown: () => exit('shutdown requested'),
  },
);

process.stdin.on('end', () => exit('stdin closed (the parent went away)'));
// Started with an IPC channel (child_process.fork): its loss means the parent is gone too.
if (process.channel) process.on('disconnect', () => exit('the IPC channel to the parent closed'));
process.stdin.on('error', (e) => exit(`stdin failed (${e.message})`));
process.on('SIGTERM', () => exit('SIGTERM'));
process.on('SIGHUP', () => exit('SIGHUP'));
// Ctrl-C in a terminal reaches the whole process group; the CLI that owns us cancels cleanly.
process.on('SIGINT', () => trace('ignoring SIGINT: the parent process cancels and stops the runtime'));
process.on('uncaughtException', (e) => {
  trace(`uncaught exception: ${e.stack ?? e.message}`);
  exit('uncaught exception', 1);
});
process.on('unhandledRejection', (e) => trace(`unhandled rejection: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));

// A parent killed with SIGKILL cannot close our stdin if another process shares it; watch the pid.
const parentPid = Number(process.env.RECURSIVEMAS_PARENT_PID) || process.ppid;
const originalPpid = process.ppid;
function parentAlive(): boolean {
  if (process.ppid !== originalPpid) return false;
  try {
    process.kill(parentPid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
setInterval(() => {
  if (!parentAlive()) exit(`the parent process ${parentPid} is gone`);
}, 500).unref();

trace(`recursivemas runtime ${runtimeVersion()} started (pid ${process.pid}, node ${process.version}, parent ${parentPid})`);
