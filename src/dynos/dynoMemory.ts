import { DYNO_BOUNDS, MINUTE_MS, slotOf, type DynoBounds } from './bounds.js';
import type { DynoBatch } from './DynoRecord.js';
import { eventMember, groupSamples, parseEventMember, sortSnapshot, type DynoSnapshot, type DynoStore } from './DynoStore.js';
import { decodeSeries, seriesOf, type MetaJson } from './dynoScript.js';

interface AppState {
  /** instance -> meta, slots, last sample time (the instances set's score). */
  readonly instances: Map<string, { meta: MetaJson; slots: Uint16Array }>;
  readonly events: Map<string, number>;
}

/** DYNO_LUA (dynoScript.ts) in memory, for `mallet replay --report`; a test keeps the two equal. */
export class MemoryDynoStore implements DynoStore {
  readonly #apps = new Map<string, AppState>();
  constructor(private readonly bounds: DynoBounds = DYNO_BOUNDS) {}

  async write(app: string, batch: DynoBatch): Promise<void> {
    const b = this.bounds;
    let s = this.#apps.get(app);
    if (!s) this.#apps.set(app, (s = { instances: new Map(), events: new Map() }));
    for (const e of batch.events) {
      const m = eventMember(e);
      if (!s.events.has(m)) s.events.set(m, e.at);
    }
    if (batch.events.length > 0) {
      const sorted = [...s.events].sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
      const newest = sorted[sorted.length - 1]![1];
      let drop = sorted.filter(([, at]) => at < newest - b.retentionMs).length;
      if (sorted.length - drop > b.maxEvents) drop = sorted.length - b.maxEvents;
      for (let i = 0; i < drop; i++) s.events.delete(sorted[i]![0]);
    }
    const groups = groupSamples(batch.samples);
    for (const g of groups) {
      let inst = s.instances.get(g.instance);
      if (!inst) {
        const first = g.minutes[0]!.at;
        inst = { meta: { i: g.instance, d: g.dyno, b: Math.floor(first / MINUTE_MS), f: first, l: first, s: 0 }, slots: new Uint16Array(b.fineSlots + b.coarseSlots) };
        s.instances.set(g.instance, inst);
      }
      const m = inst.meta;
      for (const x of g.minutes) {
        const slot = slotOf(Math.floor(x.at / MINUTE_MS), m.b, b);
        if (slot < 0) continue;
        if (inst.slots[slot] !== 0) continue;
        inst.slots[slot] = Math.min(b.maxMb, Math.floor(x.valueMb + 0.5)) + 1;
        if (x.at < m.f) m.f = x.at;
        if (x.at > m.l) m.l = x.at;
        if (x.limitMb !== undefined) m.q = x.limitMb;
        if (x.swapMb !== undefined && x.swapMb > m.s) m.s = x.swapMb;
      }
    }
    if (groups.length > 0) {
      // Same order as the sorted set: by last sample, then by series key (the instance id here).
      const sorted = [...s.instances.values()].sort((x, y) => x.meta.l - y.meta.l || (x.meta.i < y.meta.i ? -1 : x.meta.i > y.meta.i ? 1 : 0));
      const newest = sorted[sorted.length - 1]!.meta.l;
      let cut = sorted.filter((x) => x.meta.l < newest - b.retentionMs).length;
      if (sorted.length - cut > b.maxInstances) cut = sorted.length - b.maxInstances;
      for (let i = 0; i < cut; i++) s.instances.delete(sorted[i]!.meta.i);
    }
  }

  async read(app: string): Promise<DynoSnapshot> {
    const s = this.#apps.get(app);
    if (!s) return { instances: [], events: [] };
    const instances = [...s.instances.values()].map(({ meta, slots }) => {
      const buf = Buffer.alloc(slots.length * 2);
      for (let i = 0; i < slots.length; i++) buf.writeUInt16BE(slots[i]!, i * 2);
      return seriesOf({ ...meta }, decodeSeries(buf, meta.b, this.bounds));
    });
    const events = [...s.events].flatMap(([member, at]) => parseEventMember(member, at) ?? []);
    return sortSnapshot(instances, events);
  }
}
