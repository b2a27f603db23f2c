#!/usr/bin/env node
// `npm start` runs this first: it compiles TypeScript only when a source is newer than the build
// (or there is no build), so a built clone starts at once and an edited one is never run stale.
// `npm install` builds through `prepare`; `npm run build` always builds.
import { readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'cli', 'main.js');

function mtime(path) {
  try { return statSync(path).mtimeMs; } catch { return undefined; }
}

function newest(dir) {
  let max = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) max = Math.max(max, newest(p));
    else if (entry.name.endsWith('.ts')) max = Math.max(max, mtime(p) ?? 0);
  }
  return max;
}

const builtAt = mtime(built);
const sourcesAt = Math.max(newest(join(root, 'src')), mtime(join(root, 'tsconfig.json')) ?? 0, mtime(join(root, 'tsconfig.build.json')) ?? 0);
if (builtAt === undefined || sourcesAt > builtAt) {
  process.stderr.write(builtAt === undefined ? 'mallet: no build yet, compiling (once)…\n' : 'mallet: sources changed since the last build, compiling…\n');
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  process.exit(build.status ?? 1);
}
