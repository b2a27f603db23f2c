import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { Firing } from '../rules/Firing.js';
import { DynoObserver } from '../dynos/DynoObserver.js';
import { MemoryDynoStore } from '../dynos/dynoMemory.js';
import { leakReport, renderReport } from '../dynos/reportIo.js';
import { observeAll } from '../observe/Observer.js';
import type { CliIo } from './CliIo.js';

/**
 * `mallet replay FILE --report`: the replayed lines and the dry-run firings go through the same
 * observer the service runs, over the in-memory mirror of its Redis store, and the leak report is
 * printed at the end. Kept apart from the replay loop, which only hands each batch over.
 */
export class ReplayReport {
  readonly #store = new MemoryDynoStore();
  readonly #observers = [new DynoObserver(this.#store)];
  constructor(private readonly app: string, private readonly since: number, private readonly json: boolean) {}

  async observe(events: readonly DrainEvent[], firings: readonly Firing[]): Promise<void> {
    await observeAll(this.#observers, this.app, events, firings).store();
  }

  async print(io: CliIo): Promise<void> {
    io.stdout.write(renderReport(await leakReport(this.#store, this.app, this.since), this.json));
  }
}
