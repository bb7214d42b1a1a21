// The `recursivemas` command line: one entry, one subcommand per job.
import { UserError } from '../engine/index';
import { runGenerateCommand } from './generate';
import { debugRequested, errorLine } from './errors';
import { endQuietlyOnClosedStdout, processIo, type CliIo } from './io';

const HELP = `recursivemas <command> [options]

commands:
  solve "<task>"      solve a coding task with an agent team (see: recursivemas solve --help)
  generate            plain text generation with one model
  inspect <file>      list the tensors of a .pt, .safetensors or .onnx file
  models pull|list|rm manage downloaded models

  --debug (or RECURSIVEMAS_DEBUG=1) shows the stack of an internal error
`;

type Command = (argv: string[], io: CliIo) => Promise<number>;

// Loaded on demand so that `generate` does not pay for the runtime client, nor `solve` for ORT.
const commands: Record<string, () => Promise<Command>> = {
  generate: async () => runGenerateCommand,
  solve: async () => (await import('./solve')).runSolveCommand,
  models: async () => (await import('./models')).runModelsCommand,
  inspect: async () => (await import('./inspect')).runInspectCommand,
};

/** The exit code documented for a UserError code (README, Commands). */
export function exitCodeFor(e: unknown): number {
  if (!(e instanceof UserError)) return 1;
  return e.code === 'bad-input' || e.code === 'preset-invalid' ? 2 : e.code === 'model-missing' ? 3 : 1;
}

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const debug = debugRequested(argv);
  const [name, ...rest] = argv.filter((a) => a !== '--debug');
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(HELP);
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    io.stderr(`unknown command "${name}".\n${HELP}`);
    return 2;
  }
  try {
    return await (await load())(rest, io);
  } catch (e) {
    io.stderr(`${errorLine(e, debug)}\n`);
    return exitCodeFor(e);
  }
}

// Run as the CLI when started as one (this file through tsx, dist/cli.mjs, bin/recursivemas.js), not
// when bundled into something else that imports main (scripts/pack-device.sh bundles tests).
if (/[\\/](src[\\/]cli[\\/]main\.ts|cli\.mjs|recursivemas\.js)$/.test(process.argv[1] ?? '')) {
  const debug = debugRequested(process.argv.slice(2));
  endQuietlyOnClosedStdout();
  // Whatever escapes the commands (a stream error, a rejected promise nobody awaited) still ends
  // in one line, not Node's stack dump.
  const fatal = (e: unknown) => {
    process.stderr.write(`${errorLine(e, debug)}\n`);
    process.exit(exitCodeFor(e));
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  }, fatal);
}
