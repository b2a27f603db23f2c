import type { DrainEvent } from '../ingest/DrainEvent.js';
import { LINE_API, LINE_APP, LINE_OTHER, LINE_PLATFORM, LINE_ROUTER, lineClassOf } from '../ingest/lineClass.js';
import type { CompiledRule } from './CompiledRule.js';

/**
 * The rules' half of the ingest prefilter (match.ts mayMatch): whether any rule could match a line,
 * from its header and byte tests, decided by a plan compiled once per rules array, so that the
 * ~97 % of lines no rule reads are refused for a few dozen instructions each, with no string made.
 *
 * The decision, cheapest first:
 *  1. The line class (the parser decides it from the header bytes): a class no rule's APP-NAME
 *     allows is refused by one table read. With rules only for `heroku`, that is all app output.
 *  2. The class's byte plan: what every rule the class allows (its PROCID glob not applied yet)
 *     needs of the text, deduplicated (the four memory rules need the same two literals): a line
 *     that fails every need is refused. `heroku router` has one PROCID, so its plan is exact:
 *     a router line (72 % of a drain) costs the class read and one literal look-up in the body's
 *     LiteralScan, which finds the literal's next place once per body, not once per line.
 *  3. Only a line the class plan keeps, of a class whose PROCID varies, makes its APP-NAME and
 *     PROCID strings for the exact per-kind plan (match.ts rulesForKind: the globs, remembered).
 * Step 2 tests a superset of step 3's rules, so it refuses only lines step 3 would refuse: the
 * answer is the same as testing each rule of the kind in turn (test/rules/prefilterPlan.test.ts).
 */

/** What one rule needs of a line's text, all of it: `starts` at offset 0, then each of `includes`. */
interface Need {
  readonly starts: Buffer | undefined;
  /** In the rule's order: the regex literal, then its fields' (an equality value before `key=`, the rarer first). */
  readonly includes: readonly Buffer[];
}

/** A list of rules as byte tests: `always` when one of them cannot be ruled out from bytes. */
export interface BytePlan {
  readonly always: boolean;
  readonly needs: readonly Need[];
}

export const NEVER: BytePlan = { always: false, needs: [] };

/** The plan of a list of rules: their needs, each distinct one once. */
export function bytePlanOf(rules: readonly CompiledRule[]): BytePlan {
  if (rules.length === 0) return NEVER;
  const needs: Need[] = [];
  const seen = new Set<string>();
  for (const rule of rules) {
    const lit = rule.literal;
    let starts: Buffer | undefined;
    const includes: Buffer[] = [];
    if (lit !== undefined) {
      // A literal without an exact byte form needs the text: no byte test can refuse for it.
      if (rule.literalBytes === undefined) return { always: true, needs: [] };
      if (lit.anchored) starts = rule.literalBytes;
      else includes.push(rule.literalBytes);
    }
    // A field literal without a byte form rules nothing out here (match.ts tests it on the text).
    for (const b of rule.fieldLiteralBytes) if (b !== undefined) includes.push(b);
    // A rule that needs nothing of the text can match any line of its kind.
    if (starts === undefined && includes.length === 0) return { always: true, needs: [] };
    const key = `${starts?.toString('hex') ?? ''}|${includes.map((b) => b.toString('hex')).join(',')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    needs.push({ starts, includes });
  }
  return { always: false, needs };
}

/** Whether a line with byte tests meets some need of the plan. */
export function planKeeps(plan: BytePlan, event: DrainEvent): boolean {
  if (plan.always) return true;
  const needs = plan.needs;
  for (let i = 0; i < needs.length; i++) {
    const need = needs[i]!;
    if (need.starts !== undefined && !event.messageStartsWith!(need.starts)) continue;
    const includes = need.includes;
    let j = 0;
    while (j < includes.length && event.messageIncludes!(includes[j]!)) j++;
    if (j === includes.length) return true;
  }
  return false;
}

/** The line classes a rule's APP-NAME test allows (lineClass.ts). */
function classesOf(rule: CompiledRule): number {
  if (rule.source === 'heroku') return LINE_ROUTER | LINE_PLATFORM;
  if (rule.source === 'app') return LINE_API | LINE_APP;
  return LINE_APP | LINE_API | LINE_ROUTER | LINE_PLATFORM | LINE_OTHER;
}

/**
 * One rules array's prefilter, by line class: the class plan (step 2), and whether it is exact
 * (the class has one APP-NAME and one PROCID, so no glob is left to apply: router and `app[api]`).
 */
export class RulePrefilter {
  /** Indexed by the class bit's position (lineClass.ts: 1, 2, 4, 8, 16 → 0..4). */
  readonly #plans: BytePlan[] = [];
  readonly #exact: boolean[] = [];

  constructor(
    readonly rules: readonly CompiledRule[],
    /** The plan of a kind's own rules (match.ts rulesForKind's, remembered per kind; NEVER when it has none). */
    private readonly forKind: (rules: readonly CompiledRule[], source: string, process: string) => BytePlan,
  ) {
    for (const c of [LINE_APP, LINE_API, LINE_ROUTER, LINE_PLATFORM, LINE_OTHER]) {
      const allowed = rules.filter((r) => (classesOf(r) & c) !== 0);
      const exact = c === LINE_ROUTER || c === LINE_API;
      const list = exact ? allowed.filter((r) => r.process === undefined || r.process(c === LINE_ROUTER ? 'router' : 'api')) : allowed;
      this.#plans[bitIndex(c)] = bytePlanOf(list);
      this.#exact[bitIndex(c)] = exact;
    }
  }

  /** mayMatch's answer for this rules array. */
  mayMatch(event: DrainEvent): boolean {
    const c = event.lineClass ?? lineClassOf(event.source, event.process);
    const k = bitIndex(c);
    const plan = this.#plans[k]!;
    // Step 1: no rule takes this class (no strings made, no byte read).
    if (!plan.always && plan.needs.length === 0) return false;
    // A producer over strings offers no byte tests: a line is kept when a rule of its kind exists.
    if (event.messageIncludes === undefined || event.messageStartsWith === undefined) {
      return this.#exact[k]! || this.forKind(this.rules, event.source, event.process) !== NEVER;
    }
    // Step 2: the class's needs, on the bytes.
    if (!planKeeps(plan, event)) return false;
    if (this.#exact[k]!) return true;
    // Step 3: the kind's own rules, once the class could not refuse the line.
    return planKeeps(this.forKind(this.rules, event.source, event.process), event);
  }
}

/** 1, 2, 4, 8, 16 → 0..4 (a class is one bit). */
function bitIndex(c: number): number {
  return 31 - Math.clz32(c);
}
