// Where a command writes: the real streams in the CLI, buffers in tests.
export interface CliIo {
  stdout(text: string): void;
  stdoutBytes(bytes: Uint8Array): void;
  stderr(text: string): void;
  isTTY: boolean;
}

export const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stdoutBytes: (bytes) => void process.stdout.write(bytes),
  stderr: (text) => void process.stderr.write(text),
  isTTY: Boolean(process.stdout.isTTY),
};
