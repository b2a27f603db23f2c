import { batchByDyno, EMPTY_DYNO, LIFE_BOUNDS, mergeDyno, newestTimes, type AppLife, type DynoLife, type LifeBatch, type LifeStore } from './instanceLife.js';

interface AppState {
  releases: number[];
  readonly dynos: Map<string, DynoLife>;
  /** dyno -> newest time heard of (the index sorted set). */
  readonly heard: Map<string, number>;
}

/** LIFE_LUA (lifeScript.ts) in memory, for `mallet test` and `mallet replay`. */
export class MemoryLifeStore implements LifeStore {
  readonly #apps = new Map<string, AppState>();

  async read(app: string, dynos: readonly string[]): Promise<AppLife> {
    return this.readNow(app, dynos);
  }

  readNow(app: string, dynos: readonly string[]): AppLife {
    const s = this.#apps.get(app);
    return { releases: s?.releases ?? [], dynos: new Map(dynos.map((d) => [d, s?.dynos.get(d) ?? EMPTY_DYNO])) };
  }

  async write(app: string, batch: LifeBatch): Promise<void> {
    this.writeNow(app, batch);
  }

  writeNow(app: string, batch: LifeBatch): void {
    let s = this.#apps.get(app);
    if (!s) this.#apps.set(app, (s = { releases: [], dynos: new Map(), heard: new Map() }));
    if (batch.releases.length > 0) s.releases = newestTimes(s.releases, batch.releases, LIFE_BOUNDS.releases);
    for (const [dyno, g] of batchByDyno(batch)) {
      s.dynos.set(dyno, mergeDyno(s.dynos.get(dyno) ?? EMPTY_DYNO, g.starts, g.samples));
      let heard = 0;
      for (const t of g.starts) if (t > heard) heard = t;
      for (const [, t] of g.samples) if (t > heard) heard = t;
      const prev = s.heard.get(dyno);
      if (prev === undefined || prev < heard) s.heard.set(dyno, heard);
    }
    if (s.heard.size > LIFE_BOUNDS.dynos) {
      const order = [...s.heard].sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
      for (const [dyno] of order.slice(0, s.heard.size - LIFE_BOUNDS.dynos)) {
        s.heard.delete(dyno);
        s.dynos.delete(dyno);
      }
    }
  }
}
