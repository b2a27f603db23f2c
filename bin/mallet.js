#!/usr/bin/env node
// Runs the compiled CLI; from a clone without a build (e.g. `npm install --ignore-scripts`) it
// falls back to the TypeScript sources through tsx so `npx mallet` still works.
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

// `mallet serve` runs with a young generation of 2 × 32 MiB from the start, not V8's 2 × 16 MiB
// grown from 1 MiB: a drain body of ~26 KB leaves about half a MiB of short-lived garbage, so at
// the default every ~30 bodies cost a scavenge, each one a pause that every in-flight trigger
// waits through (README "Trigger latency": 4.7× fewer pauses per request measured). V8 reads the
// flag only at start, so a process started without it starts its serve again with it; the
// Procfile passes it, so a dyno runs one process. NODE_OPTIONS or node flags that set either
// semi-space size are the operator's and are kept as they are (no restart).
const YOUNG_GENERATION = ['--max-semi-space-size=32', '--min-semi-space-size=32'];
const setsSemiSpace = (args) => args.some((a) => /^--(max|min)[-_]semi[-_]space[-_]size/.test(a));
if (process.argv[2] === 'serve' && !setsSemiSpace(process.execArgv) && !setsSemiSpace((process.env.NODE_OPTIONS ?? '').split(/\s+/))) {
  const child = spawn(process.execPath, [...YOUNG_GENERATION, ...process.execArgv, ...process.argv.slice(1)], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
  // The serve stops once per signal however often it comes (Heroku signals every process of the
  // dyno, so it may get a SIGTERM from here and one of its own); its IPC channel closing (this
  // process killed) stops it too, so it is never left behind.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => { if (child.exitCode === null) child.kill(signal); });
  child.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const compiled = join(root, 'dist', 'cli', 'main.js');
  if (existsSync(compiled)) {
    await import(pathToFileURL(compiled).href);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import(pathToFileURL(join(root, 'src', 'cli', 'main.ts')).href);
  }
}
