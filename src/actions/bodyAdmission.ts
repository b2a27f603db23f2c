import { randomBytes } from 'node:crypto';
import type { RedisKeys } from '../keys.js';
import type { FiringAdmission } from '../rules/Firing.js';
import type { Limits } from '../rules/RuleSet.js';
import { firingId } from '../rules/firingId.js';
import { HISTORY_BOUNDS } from '../console/historyLua.js';
import { silenceMatcher, type Silence } from '../console/Silence.js';
import type { BodyPart } from '../bodyPart.js';
import { admissionRequest, modeOf, type ModeDecision } from './decideMode.js';
import { admissionCall, admissionOf } from './scripts/admitFiring.js';

/**
 * A drain body's firings admitted in its body script (src/server/bodyScript.ts `admit`), so the
 * line's way to its stop key has one round trip fewer: the vote fires and its firing's mode is
 * decided in the same call. The same admission as ActionQueue's own call (admitFiring.ts, its
 * arguments built by the same functions), with what only the script knows filled in there: the
 * firing's first trigger line. A part is made for each firing the body's votes can make in their
 * own lines' window (rule+target+time) and runs only when a vote of that rule+target fired in that
 * window. A firing of another window (a line of an earlier, already fired window sent again, as
 * a retried body is, at its new arrival time) is not admitted here, nor a predict rule's (its
 * forecast is written after the script): the queue admits those, as before.
 *
 * Every key of a part is its app's (`{app}`, src/keys.ts), as the body's are: one slot.
 */
// 64 bits, as the queue's own submission ids: two processes must not draw the same prefix.
const PROCESS = randomBytes(8).toString('hex');
let submissions = 0;

export class BodyAdmission implements FiringAdmission {
  readonly #decided = new Map<string, ModeDecision>();
  #submission: string | undefined;
  #silenced: ((f: { app: string; rule: string; target: string }) => Silence | undefined) | undefined;

  constructor(private readonly o: {
    readonly keys: RedisKeys;
    readonly limits: Limits;
    readonly globalDryRun: boolean;
    /** The silences in force (from memory: the part is made synchronously). */
    readonly silences: readonly Silence[];
    /** When it is admitted (the queue's clock), as its own call's `now`. */
    readonly now: number;
  }) {}

  /**
   * Per body, made when first asked (most bodies have no vote): a retried body is another
   * submission (a `duplicate` record, admitFiring.ts; the job's read-back, queue.ts). The
   * process's random prefix and a count: unique as the queue's random ones, without a
   * randomBytes call per body (~20 µs each on a loaded machine).
   */
  get submission(): string {
    return (this.#submission ??= `${PROCESS}${(++submissions).toString(16).padStart(8, '0')}`);
  }

  part(f: { readonly rule: string; readonly app: string; readonly target: string; readonly window: number; readonly dryRun: boolean }): { readonly part: BodyPart; read(reply: unknown): void } {
    const { o } = this;
    const id = firingId(f.rule, f.app, f.target, String(f.window));
    const request = admissionRequest(
      { id, rule: f.rule, app: f.app, target: f.target, firedAt: f.window, dryRun: f.dryRun, line: '' },
      { limits: o.limits, keys: o.keys, globalDryRun: o.globalDryRun, silence: (this.#silenced ??= silenceMatcher(o.silences, o.now))(f), submission: this.submission },
    );
    const call = admissionCall(request.keys, id, o.now, o.limits, request.record, request.preset);
    // KEYS[7]: the votes' firedBy key, by which the script finds the vote that fired the
    // firing (and its first trigger line, ARGV[11], cut to ARGV[21] bytes).
    call.keys.push(o.keys.threshold(f.rule, f.app, f.target).firedBy);
    call.args.push(HISTORY_BOUNDS.lineBytes);
    return {
      part: { name: 'admit', keys: call.keys, args: call.args },
      read: (reply) => {
        const r = reply as unknown[];
        if (r[0] === 'unfired') return;
        this.#decided.set(id, modeOf(admissionOf(r), request));
      },
    };
  }

  /** The mode decided for the firing in the body script; undefined: not admitted there. */
  decision(firingId: string): ModeDecision | undefined {
    return this.#decided.get(firingId);
  }
}
