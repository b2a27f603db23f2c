import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { IngestBatch, IngestResult } from '../ingest/IngestBatch.js';
import { drainEvents } from '../ingest/drainEvents.js';
import type { RedisKeys } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { FiringSink } from '../rules/Firing.js';
import type { Judgement } from '../rules/engine.js';
import { observeAll, type Observer } from '../observe/Observer.js';
import { RecentFrames } from './recentFrames.js';

/**
 * Joins the stages: ingest batch → rules → action queue, and the observers beside the rules, with the frame-level de-duplication
 * of logplex retries (SPEC §3: a retried frame makes no second firing and no second count). The
 * frame is marked done last, so a delivery that failed half-way is processed again in full; that
 * is safe because counting (event ids) and enqueueing (job ids) are idempotent.
 */
export interface Evaluator {
  judge(events: readonly DrainEvent[]): Promise<Judgement>;
}

export class Pipeline {
  readonly #frames: RecentFrames;

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
  }

  readonly ingest = async (batch: IngestBatch): Promise<IngestResult> => {
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
    const events = drainEvents(batch);
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
    return { duplicate: false, lines: events.length, firings: firings.length };
  };

  private countLines(batch: IngestBatch): void {
    // Label values come from the lines: kept to three, so no payload can make new series.
    let heroku = 0;
    let app = 0;
    for (const m of batch.messages) {
      const source = m.appName;
      if (source === 'heroku') heroku++;
      else if (source === 'app') app++;
    }
    const other = batch.messages.length - heroku - app;
    const { linesTotal } = this.deps.metrics;
    if (heroku) linesTotal.inc({ app: batch.app, source: 'heroku' }, heroku);
    if (app) linesTotal.inc({ app: batch.app, source: 'app' }, app);
    if (other) linesTotal.inc({ app: batch.app, source: 'other' }, other);
  }
}
