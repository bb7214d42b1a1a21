// `recursivemas inspect <file.pt|file.safetensors|file.onnx> [--json]`: every tensor's name, dtype,
// shape and the float64 sum of its values.
import { parseArgs } from 'node:util';
import { formatInspect, inspectTensors } from '../engine/index';
import type { CliIo } from './io';

const USAGE = 'usage: recursivemas inspect <file.pt | file.safetensors | file.onnx> [--json]';

export async function runInspectCommand(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (e) {
    io.stderr(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const [file, ...extra] = parsed.positionals;
  if (file === undefined || extra.length) {
    io.stderr(`${USAGE}\n`);
    return 2;
  }
  const rows = await inspectTensors(file);
  io.stdout(formatInspect(rows, parsed.values.json ?? false));
  return 0;
}
