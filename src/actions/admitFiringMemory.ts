import type { Limits } from '../rules/RuleSet.js';
import type { Admission, AdmissionPreset } from './scripts/admitFiring.js';

/**
 * admitFiring's semantics in memory, for `mallet replay` (no Redis): mirrors ADMIT_FIRING's Lua
 * step by step; test/actions/admissionEquivalence runs both on the same random firings and
 * requires equal answers. Real-time expiry (PEXPIRE) is not mirrored: it only collects garbage.
 */
export class MemoryAdmission {
  readonly #sets = new Map<string, Map<string, number>>();
  readonly #decided = new Map<string, Admission>();

  admit(keys: { storm: string; flapping: string; admission: string }, firingId: string, now: number, limits: Limits, preset?: AdmissionPreset): Admission {
    const prev = this.#decided.get(keys.admission);
    if (prev !== undefined) return prev;
    if (preset) {
      this.#decided.set(keys.admission, preset.mode);
      return preset.mode;
    }
    const storm = this.#count(keys.storm, firingId, now, limits.perApp.maxFirings, limits.perApp.withinMs);
    const flap = this.#count(keys.flapping, firingId, now, limits.flapping.maxFirings, limits.flapping.withinMs);
    let mode: Admission = 'execute';
    if (flap > limits.flapping.maxFirings) mode = 'flapping';
    else if (storm > limits.perApp.maxFirings) mode = 'held';
    this.#decided.set(keys.admission, mode);
    return mode;
  }

  #count(key: string, id: string, now: number, max: number, within: number): number {
    let set = this.#sets.get(key);
    if (!set) this.#sets.set(key, (set = new Map()));
    // ZREMRANGEBYSCORE -inf (now - within): inclusive.
    for (const [m, s] of set) if (s <= now - within) set.delete(m);
    if (!set.has(id)) set.set(id, now);
    // ZREMRANGEBYRANK 0 -(max+2): the newest max+1 by Redis order (score, then member bytes).
    const ordered = [...set].sort((a, b) => a[1] - b[1] || Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
    for (const [m] of ordered.slice(0, Math.max(0, ordered.length - (max + 1)))) set.delete(m);
    return set.size;
  }
}
