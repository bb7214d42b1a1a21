// Checkpoints with generated (random) weights in the real Hugging Face formats, for demo teams that
// run offline and for tests. Written once per spec into the models folder, then reused.
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SyntheticSpec } from '../../chain/presets';
import { writeTinyHfModel } from './hf-checkpoint';

export async function ensureSyntheticModel(spec: SyntheticSpec, folder: string): Promise<string> {
  if (await stat(`${folder}/.complete`).then(() => true, () => false)) return folder;
  await mkdir(dirname(folder), { recursive: true });
  const staging = `${folder}.writing-${process.pid}-${Date.now()}`;
  try {
    await writeTinyHfModel(staging, { ...spec, keepTensors: false });
    await writeFile(`${staging}/.complete`, JSON.stringify(spec));
    await rm(folder, { recursive: true, force: true });
    await rename(staging, folder);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
  return folder;
}
