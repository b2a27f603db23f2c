import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The Heroku drain samples (real-format lines, byte-exact bodies with their expected parse,
 * malformed bodies, and the benchmark corpus generator), vendored byte for byte in
 * test/fixtures/samples so a clone is self-contained.
 */
export const SAMPLES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/samples');

export function samplePath(...parts: string[]): string {
  return join(SAMPLES_DIR, ...parts);
}
