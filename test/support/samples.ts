import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `../shared/samples` beside the clone (SPEC: tests and CI have shared/ next to the repo). */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SAMPLES_DIR = process.env.MALLET_SAMPLES_DIR ?? join(root, '..', 'shared', 'samples');

export function samplePath(...parts: string[]): string {
  const p = join(SAMPLES_DIR, ...parts);
  if (!existsSync(p)) throw new Error(`sample ${p} not found: the shared samples must sit beside the repo (or set MALLET_SAMPLES_DIR)`);
  return p;
}
