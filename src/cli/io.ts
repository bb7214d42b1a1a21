// Where a command writes: the real streams in the CLI, buffers in tests.
export interface CliIo {
  // Function properties, not methods: callers pass them on alone (`{ write: io.stderr }`).
  stdout: (text: string) => void;
  stdoutBytes: (bytes: Uint8Array) => void;
  stderr: (text: string) => void;
  isTTY: boolean;
}

export const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stdoutBytes: (bytes) => void process.stdout.write(bytes),
  stderr: (text) => void process.stderr.write(text),
  isTTY: Boolean(process.stdout.isTTY),
};

/**
 * A reader that closed our stdout (`recursivemas models list | head -1`) has all it wants: end at
 * once and quietly, as other command-line tools do, instead of failing on an unhandled EPIPE.
 */
export function endQuietlyOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') process.exit(0);
    throw err;
  });
  // Diagnostics nobody reads any more are not a reason to stop a download.
  process.stderr.on('error', () => undefined);
}
