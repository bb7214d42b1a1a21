// File names read from files we did not write (manifests, shard indexes, ONNX external data) are
// untrusted: every reader joins them to their folder through this module, which refuses names that
// are absolute, Windows-style, hold control characters or leave the folder.
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { UserError } from './api';

/**
 * Checks a file name taken from a manifest: relative, forward slashes, no "." or ".." segments,
 * no drive letters or control characters.
 */
export function checkFileName(file: unknown, source: string): string {
  if (typeof file !== 'string' || file.length === 0 || file.length > 255) throw new UserError(`${source}: the file name ${JSON.stringify(file)} is not a usable name.`, 'model-invalid');
  const shown = JSON.stringify(file);
  if (isAbsolute(file) || file.startsWith('/') || /^[A-Za-z]:/.test(file) || file.includes('\\')) {
    throw new UserError(`${source} names the file ${shown}, an absolute or Windows-style path outside the model folder; it was refused.`, 'model-invalid');
  }
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (/[\u0000-\u001f]/.test(file)) throw new UserError(`${source} names a file with control characters; it was refused.`, 'model-invalid');
  if (file.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new UserError(`${source} names the file ${shown}, which leaves the model folder; it was refused.`, 'model-invalid');
  }
  return file;
}

/** `folder`/`file` after checking that it stays inside `folder` (also through symbolic links). */
export function resolveInside(folder: string, file: string, source = `The file name "${file}"`): string {
  checkFileName(file, source);
  const root = resolve(folder);
  const target = resolve(join(root, file));
  const inside = (base: string, p: string) => {
    const rel = relative(base, p);
    return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
  };
  if (!inside(root, target)) throw new UserError(`The file "${file}" lies outside ${folder}; it was refused.`, 'model-invalid');
  if (existsSync(target)) {
    const realRoot = realpathSync(root);
    const realTarget = realpathSync(target);
    if (!inside(realRoot, realTarget)) {
      throw new UserError(`${target} is a link to ${realTarget}, outside ${folder}; it was refused.`, 'model-invalid');
    }
  }
  return target;
}

/**
 * `folder`/`file` after checking the name only: a Hugging Face cache snapshot keeps its shards as
 * links to blobs outside the snapshot folder, so where the target may legitimately be a link
 * elsewhere the name is what is checked.
 */
export function joinInside(folder: string, file: string, source: string): string {
  return join(folder, checkFileName(file, source));
}
