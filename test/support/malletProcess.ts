import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** tsx's loader by absolute URL, so the process may run in any working directory. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm')).href;

/** `mallet <args>` as a real process, from the TypeScript sources (no build needed). */
export interface MalletProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves with the first pino log line whose msg matches. */
  waitForLog(msg: RegExp, ms?: number): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `detached`: in a process group of its own, for a signal to the whole group (a terminal's Ctrl-C). */
export function spawnMallet(args: string[], opts: { env: Record<string, string | undefined>; cwd?: string; detached?: boolean }): MalletProcess {
  const child = spawn(process.execPath, ['--import', TSX, join(REPO, 'src/cli/main.ts'), ...args], {
    cwd: opts.cwd ?? REPO,
    env: opts.env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  let out = '';
  const waiters: Array<{ re: RegExp; resolve: (v: Record<string, unknown>) => void }> = [];
  const scan = () => {
    for (const line of out.split('\n')) {
      if (!line.startsWith('{')) continue;
      let rec: Record<string, unknown>;
      try { rec = JSON.parse(line); } catch { continue; }
      for (const w of [...waiters]) {
        if (typeof rec.msg === 'string' && w.re.test(rec.msg)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(rec);
        }
      }
    }
  };
  child.stdout!.on('data', (d) => { out += d; scan(); });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return {
    child,
    output: () => out,
    exited,
    waitForLog: (re, ms = 60_000) => new Promise((resolveLog, reject) => {
      const timer = setTimeout(() => reject(new Error(`no log line matching ${re} within ${ms} ms; output:\n${out}`)), ms);
      waiters.push({ re, resolve: (v) => { clearTimeout(timer); resolveLog(v); } });
      scan();
      void exited.then(() => setTimeout(() => reject(new Error(`mallet exited before logging ${re}; output:\n${out}`)), 50));
    }),
  };
}
