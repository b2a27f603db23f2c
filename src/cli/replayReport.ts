import { Writable } from 'node:stream';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { Firing } from '../rules/Firing.js';
import { DynoObserver } from '../dynos/DynoObserver.js';
import { MemoryDynoStore } from '../dynos/dynoMemory.js';
import { DEFAULT_SINCE, leakReport, renderReport, sinceMs } from '../dynos/reportIo.js';
import { observeAll } from '../observe/Observer.js';
import type { CliIo } from './CliIo.js';
import { runReplay } from './replay.js';

/**
 * `mallet replay FILE --report [--since 7d] [--json]`: the replay as usual, its batches and
 * firings also through the observer the service runs (over the in-memory mirror of its Redis
 * store), then the leak report on stdout instead of the firing lines. A path of its own beside
 * the replay loop, which only hands each batch over.
 */
export async function runReplayReport(argv: string[], io: CliIo): Promise<number> {
  let json = false;
  let since = DEFAULT_SINCE;
  let app = 'replay';
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--report') continue;
    if (a === '--json') json = true;
    else if (a === '--since' && argv[i + 1] !== undefined) since = argv[++i]!;
    else {
      if (a === '--app' && argv[i + 1] !== undefined) app = argv[i + 1]!;
      rest.push(a);
    }
  }
  const window = sinceMs(since);
  if (window === undefined) { io.stderr.write(`--since ${JSON.stringify(since)}: expected a duration like 7d or 12h\n`); return 2; }
  const store = new MemoryDynoStore();
  const observers = [new DynoObserver(store)];
  const observe = (events: readonly DrainEvent[], firings: readonly Firing[]) => observeAll(observers, app, events, firings).store();
  const quiet = new Writable({ write(_c, _e, cb) { cb(); } });
  const code = await runReplay(rest, { ...io, stdout: quiet }, observe);
  if (code !== 0) return code;
  io.stdout.write(renderReport(await leakReport(store, app, window), json));
  return 0;
}
