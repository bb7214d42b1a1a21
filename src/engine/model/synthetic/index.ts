// Checkpoints with generated (random) weights in the real Hugging Face formats, for demo teams that
// run offline. Written once per spec into the models folder, then reused.
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeHfCheckpoint, type CheckpointSpec } from './hf-checkpoint';

/** A team preset's `generated` model: the shape and seed of its random checkpoint. */
export type SyntheticSpec = Pick<CheckpointSpec, 'family' | 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'vocabSize'> &
  Pick<CheckpointSpec, 'headDim' | 'maxPositionEmbeddings' | 'tieWordEmbeddings' | 'qwen3_5' | 'layout' | 'gemma3'> & { seed: number };

export async function ensureSyntheticModel(spec: SyntheticSpec, folder: string): Promise<string> {
  if (await stat(`${folder}/.complete`).then(() => true, () => false)) return folder;
  await mkdir(dirname(folder), { recursive: true });
  const staging = `${folder}.writing-${process.pid}-${Date.now()}`;
  try {
    await writeHfCheckpoint(staging, spec);
    await writeFile(`${staging}/.complete`, JSON.stringify(spec));
    await rm(folder, { recursive: true, force: true });
    await rename(staging, folder);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
  return folder;
}
