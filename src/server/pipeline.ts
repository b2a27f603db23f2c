import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import { linesOf, type IngestBatch, type IngestResult } from '../ingest/IngestBatch.js';
import { drainEvents } from '../ingest/drainEvents.js';
import { lineClassOf } from '../ingest/lineClass.js';
import type { RedisKeys } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { FiringAdmission, FiringSink } from '../rules/Firing.js';
import type { BodyJudgement, Judgement } from '../rules/engine.js';
import type { Firing } from '../rules/Firing.js';
import { BodyScript } from './bodyScript.js';
import type { BodyPart } from '../bodyPart.js';
import { observeAll, withFirings, type Observer } from '../observe/Observer.js';
import { RecentFrames } from './recentFrames.js';
// After ioredis, String.prototype made fast again (stringPrototype.ts): every string method of the hot path.
import '../stringPrototype.js';

/**
 * Joins the stages: ingest batch → rules → action queue, and the observers beside the rules, with the frame-level de-duplication
 * of logplex retries (SPEC §3: a retried frame makes no second firing and no second count). The
 * frame is marked done last, so a delivery that failed half-way is processed again in full; that
 * is safe because counting (event ids) and enqueueing (job ids) are idempotent.
 */
export interface Evaluator {
  judge(events: readonly DrainEvent[]): Promise<Judgement>;
  /** judge() as parts of the body script (RulesEngine): the pipeline then makes one round trip per body. */
  prepareBody?(events: readonly DrainEvent[], admission?: FiringAdmission): BodyJudgement;
  /** Whether judge() could match the line, from its header and byte tests (absent: it could). */
  mayMatch?(event: DrainEvent): boolean;
}

const NO_FIRINGS: readonly Firing[] = Object.freeze([]);

export class Pipeline {
  readonly #frames: RecentFrames;
  readonly #body: BodyScript;
  /** mallet_lines_total's children per app label, resolved once (labels(), not inc({labels}) per body). */
  readonly #lineCounters = new Map<string, { heroku: { inc(n: number): void }; app: { inc(n: number): void }; other: { inc(n: number): void } }>();

  constructor(private readonly deps: {
    redis: Redis;
    keys: RedisKeys;
    engine: Evaluator;
    sink: FiringSink;
    /** See each delivery once, after the rules (they are told its firings); none by default. */
    observers?: readonly Observer[];
    metrics: Metrics;
    logger: Logger;
  }) {
    this.#frames = new RecentFrames(deps.redis, deps.keys);
    this.#body = new BodyScript(deps.redis);
  }

  /**
   * The prefilter a producer may apply before it makes a line a message (the syslog listener):
   * false only when neither the rules nor any observer could read the line. Header fields and
   * byte tests only. A rules reload between this test and the batch's judgement applies to the
   * lines kept (a line passed over under the old rules is not judged under the new ones).
   */
  readonly wants = (event: DrainEvent): boolean => {
    const { engine } = this.deps;
    if (engine.mayMatch === undefined || engine.mayMatch(event)) return true;
    const observers = this.deps.observers;
    if (observers === undefined) return false;
    const c = event.lineClass ?? lineClassOf(event.source, event.process);
    for (let i = 0; i < observers.length; i++) {
      const o = observers[i]!;
      if ((c & o.lineClasses) !== 0 && (o.mayWant === undefined || o.mayWant(event))) return true;
    }
    return false;
  };

  readonly ingest = async (batch: IngestBatch): Promise<IngestResult> => {
    if (this.deps.engine.prepareBody) return this.#ingestBody(batch);
    return this.#ingestJudged(batch);
  };

  async #ingestJudged(batch: IngestBatch): Promise<IngestResult> {
    const events = drainEvents(batch);
    const { engine, sink } = this.deps;
    const frames = this.#frames;
    // Per app as well as per drain token: an alert webhook has no token of its own, and the same
    // alert body sent for two apps is two deliveries.
    const { app, drainToken, frameId, dedupe } = batch;
    // A delivery already done is skipped whole (SPEC §3). Judging it again would be idempotent only
    // while the threshold records of its lines live (window + cooldown); the
    // drain's recent frames hold it 15 minutes and for its drain's next 126 frames, while logplex
    // retries within a minute and before it sends the drain's next frame (recentFrames.ts).
    if (dedupe && (await frames.done(app, drainToken, frameId))) return { duplicate: true, lines: 0, firings: 0 };
    // A delivery that failed half-way, or two in flight at once, is judged again, which changes
    // nothing: each line is counted once by its event id, a firing already decided is returned as
    // the same firing, and its job id is the firing's. So the frame is marked done only once its
    // firings are stored, by the command that also tells whether this delivery came first.
    const { firings, count } = await engine.judge(events);
    const observation = observeAll(this.deps.observers ?? [], batch.app, events, firings);
    if (firings.length > 0) await sink.submit(firings);
    // After the firings: a delivery whose firings could not be stored is retried whole, and the
    // observers' writes are idempotent, so storing them again on the retry adds nothing.
    await observation.store();
    if (dedupe && !(await frames.markDone(app, drainToken, frameId, batch.receivedAt))) return { duplicate: true, lines: 0, firings: 0 };
    // Counted once per delivery that got this far first; a retry re-judges but is not re-counted.
    count();
    observation.count();
    this.countLines(batch);
    return { duplicate: false, lines: linesOf(batch), firings: firings.length };
  }

  /**
   * The same stages in one round trip per body (bodyScript.ts): the frame check, the votes, the
   * observers' writes and, when nothing fired, the frame marked done, in one script call. A body
   * that fired then stores its firings and marks its frame, as above. A body with nothing to
   * write still makes that one call when it is de-duplicated: the mark is what keeps a retry out
   * of mallet_lines_total (SPEC §3); one that is not (syslog) and writes nothing makes none.
   */
  async #ingestBody(batch: IngestBatch): Promise<IngestResult> {
    const { app, drainToken, frameId, dedupe } = batch;
    const events = drainEvents(batch);
    // The firings' admissions in the same call as their votes, where the sink can (Firing.ts).
    const admission = this.deps.sink.admission?.();
    const body = this.deps.engine.prepareBody!(events, admission);
    const observers = this.deps.observers ?? [];
    const observation = observeAll(observers, app, events, NO_FIRINGS);
    const observed = observation.parts?.();
    const parts: readonly BodyPart[] = observed === undefined || observed.length === 0 ? body.parts : [...body.parts, ...observed];
    let judgement: Judgement;
    let marked = false;
    if (parts.length === 0 && !dedupe) {
      judgement = body.finish([]);
    } else {
      // An observer without parts stores after the script: the frame is then marked after it.
      const reply = await this.#body.run(this.deps.keys.recentFrames(app, drainToken), dedupe ? frameId : '', batch.receivedAt, observed !== undefined, parts);
      if (reply.status === 'duplicate') return { duplicate: true, lines: 0, firings: 0 };
      judgement = body.finish(reply.replies);
      marked = reply.status === 'marked';
      if (body.parts.length > 0) await body.stored();
    }
    const { firings, count } = judgement;
    let seen = observation;
    if (firings.length > 0) {
      await this.deps.sink.submit(firings, admission);
      // The observers are told the firings (remediations) once they are stored; their writes are
      // idempotent, so what the script already wrote is written again unchanged.
      seen = withFirings(observation, observers, app, firings);
      const after = seen.parts?.();
      if (after !== undefined && (after.length > 0 || (dedupe && !marked))) {
        // Their writes and the frame mark in one script call, atomic together: the frame is
        // done exactly when they are written, and a delivery that got here second (its frame
        // done meanwhile) writes nothing.
        const reply = await this.#body.run(this.deps.keys.recentFrames(app, drainToken), dedupe && !marked ? frameId : '', batch.receivedAt, true, after);
        if (reply.status === 'duplicate') return { duplicate: true, lines: 0, firings: 0 };
        seen.written?.();
        marked = marked || reply.status === 'marked';
      } else {
        await seen.store();
      }
    } else if (observed === undefined) {
      await observation.store();
    } else {
      observation.written?.();
    }
    if (dedupe && !marked && !(await this.#frames.markDone(app, drainToken, frameId, batch.receivedAt))) return { duplicate: true, lines: 0, firings: 0 };
    count();
    seen.count();
    this.countLines(batch);
    return { duplicate: false, lines: linesOf(batch), firings: firings.length };
  }

  private countLines(batch: IngestBatch): void {
    // Label values come from the lines: kept to three, so no payload can make new series.
    let heroku = 0;
    let app = 0;
    for (const m of batch.messages) {
      const source = m.appName;
      if (source === 'heroku') heroku++;
      else if (source === 'app') app++;
    }
    let other = batch.messages.length - heroku - app;
    const skipped = batch.passedOver;
    if (skipped !== undefined) {
      heroku += skipped.heroku;
      app += skipped.app;
      other += skipped.other;
    }
    const c = this.#countersOf(batch.app);
    if (heroku) c.heroku.inc(heroku);
    if (app) c.app.inc(app);
    if (other) c.other.inc(other);
  }

  #countersOf(app: string) {
    const label = this.deps.metrics.linesTotal.appLabel(app);
    let c = this.#lineCounters.get(label);
    if (c === undefined) {
      const { linesTotal } = this.deps.metrics;
      c = { heroku: linesTotal.labels(label, 'heroku'), app: linesTotal.labels(label, 'app'), other: linesTotal.labels(label, 'other') };
      // Bounded as the labels are (MAX_APP_LABELS, the listed apps and '_other').
      this.#lineCounters.set(label, c);
    }
    return c;
  }
}
