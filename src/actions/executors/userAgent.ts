import { readFileSync } from 'node:fs';

/** The package version, read once; the Platform API asks every client to name itself. */
function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0';
  } catch {
    return '0';
  }
}

export const MALLET_USER_AGENT = `mallet/${version()}`;
