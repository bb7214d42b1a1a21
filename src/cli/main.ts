// The `recursivemas` command line: one entry, one subcommand per job.
import { UserError } from '../engine/api';
import { runGenerateCommand } from './generate';
import { processIo, type CliIo } from './io';

const HELP = `recursivemas <command> [options]

commands:
  solve "<task>"      solve a coding task with an agent team (see: recursivemas solve --help)
  generate            plain text generation with one model
  inspect <file>      list the tensors of a .pt, .safetensors or .onnx file
  models pull|list|rm manage downloaded models
`;

type Command = (argv: string[], io: CliIo) => Promise<number>;

// Loaded on demand so that `generate` does not pay for the runtime client, nor `solve` for ORT.
const commands: Record<string, () => Promise<Command>> = {
  generate: async () => runGenerateCommand,
  solve: async () => (await import('./solve')).runSolveCommand,
  models: async () => (await import('./models')).runModelsCommand,
  inspect: async () => (await import('./inspect')).runInspectCommand,
};

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
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
    if (e instanceof UserError) {
      io.stderr(`error: ${e.message}${e.action ? `\n${e.action}` : ''}\n`);
      return e.code === 'bad-input' ? 2 : e.code === 'model-missing' ? 3 : 1;
    }
    io.stderr(`error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('cli.mjs') || process.argv[1]?.endsWith('recursivemas.js')) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
