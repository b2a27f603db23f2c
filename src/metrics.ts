import { Counter, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration, type LabelValues } from 'prom-client';

/**
 * Distinct `app` values `mallet_lines_total` takes for apps the rules file does not list (all of
 * them when it lists none): an app name comes from the drain URL, so anyone holding the drain
 * password could otherwise add series without end. Further apps count under OTHER_APP_LABEL.
 */
export const MAX_APP_LABELS = 100;
/** Not a Heroku app name (those start with a letter), so it never merges with a real app. */
export const OTHER_APP_LABEL = '_other';

type LinesLabel = 'app' | 'source';

/** `mallet_lines_total`, whose `app` label takes listed apps, the first MAX_APP_LABELS others, then `_other`. */
class LinesCounter extends Counter<LinesLabel> {
  readonly #labelled = new Set<string>();
  #listed: () => ReadonlyMap<string, unknown> | undefined = () => undefined;

  constructor(config: CounterConfiguration<LinesLabel>) {
    super(config);
    // prom-client sets `inc` on the instance in its constructor, so it is wrapped here, not overridden.
    const inc = this.inc.bind(this) as (labels: LabelValues<LinesLabel>, value?: number) => void;
    this.inc = ((labels?: LabelValues<LinesLabel> | number, value?: number) => {
      if (labels === undefined || typeof labels === 'number' || labels.app === undefined || 'exemplarLabels' in labels) {
        return (inc as (...a: unknown[]) => void)(labels, value);
      }
      inc({ ...labels, app: this.#appLabel(String(labels.app)) }, value);
    }) as Counter<LinesLabel>['inc'];
  }

  /** The rules file's `apps:` (read per call: hot reload); listed apps always get their own series. */
  listAppsFrom(listed: () => ReadonlyMap<string, unknown> | undefined): void {
    this.#listed = listed;
  }

  /** The `app` label a drain app counts under (its own, or OTHER_APP_LABEL past the cap). */
  appLabel(app: string): string {
    return this.#appLabel(app);
  }

  #appLabel(app: string): string {
    if (this.#labelled.has(app)) return app;
    if (this.#listed()?.has(app) || this.#labelled.size < MAX_APP_LABELS) {
      this.#labelled.add(app);
      return app;
    }
    return OTHER_APP_LABEL;
  }
}

/**
 * A counter whose increments are read when /metrics is scraped, from a source that exists only
 * later (the worker thread is started after the metrics): until then it stays at 0.
 */
class ScrapedCounter extends Counter {
  #read: (() => number) | undefined;

  constructor(config: Omit<CounterConfiguration<string>, 'collect' | 'labelNames'>) {
    super({
      ...config,
      collect(this: Counter) {
        const add = (this as ScrapedCounter).#read?.() ?? 0;
        if (add > 0) this.inc(add);
      },
    });
  }

  /** `read` returns what was added since its previous call. */
  readFrom(read: () => number): void {
    this.#read = read;
  }
}

/**
 * The metric names of SPEC §7, declared once. Each app instance gets its own registry so tests
 * can run several in one process.
 */
export function createMetrics(registry = new Registry(), { defaults = true } = {}) {
  if (defaults) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    linesTotal: new LinesCounter({ name: 'mallet_lines_total', help: 'Log lines received', labelNames: ['app', 'source'] as const, registers }),
    framesInvalidTotal: new Counter({ name: 'mallet_frames_invalid_total', help: 'Frames skipped as unparseable, by reason', labelNames: ['reason'] as const, registers }),
    drainRequestsTotal: new Counter({ name: 'mallet_drain_requests_total', help: 'Drain requests by response status', labelNames: ['status'] as const, registers }),
    drainRequestDuration: new Histogram({
      name: 'mallet_drain_request_duration_seconds', help: 'Drain request handling time', registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    }),
    ruleMatchesTotal: new Counter({ name: 'mallet_rule_matches_total', help: 'Lines matched by a rule', labelNames: ['rule'] as const, registers }),
    firingsTotal: new Counter({ name: 'mallet_firings_total', help: 'Rule firings by outcome', labelNames: ['rule', 'outcome'] as const, registers }),
    votesDroppedTotal: new Counter({ name: 'mallet_votes_dropped_total', help: 'Matched lines not judged because a body or an app hit its work bound, by reason', labelNames: ['reason'] as const, registers }),
    actionsTotal: new Counter({ name: 'mallet_actions_total', help: 'Action steps by type and outcome', labelNames: ['type', 'outcome'] as const, registers }),
    triggerLatency: new Histogram({
      name: 'mallet_trigger_latency_seconds', help: 'Line received to first action step done', registers,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    workerThreadBusySeconds: new ScrapedCounter({
      name: 'mallet_worker_thread_busy_seconds_total', registers,
      help: 'Time the event loop of mallet serve\'s action worker thread was busy (its rate is the thread\'s utilization, 0 to 1); 0 where the worker runs elsewhere',
    }),
    workerThreadRestartsTotal: new Counter({ name: 'mallet_worker_thread_restarts_total', help: 'Times the action worker thread of mallet serve died and was started again', registers }),
    otlpRequestsTotal: new Counter({ name: 'mallet_otlp_requests_total', help: 'OTLP (Fir telemetry drain) requests by signal and response status', labelNames: ['signal', 'status'] as const, registers }),
    otlpItemsTotal: new Counter({
      name: 'mallet_otlp_items_total', registers, labelNames: ['signal', 'outcome'] as const,
      help: 'OTLP log records and data points by outcome: accepted (became events), rejected (partial_success), unmapped (no mapping uses it), dropped (traces)',
    }),
    logplexCountMismatchTotal: new Counter({ name: 'mallet_logplex_msg_count_mismatch_total', help: 'Bodies whose Logplex-Msg-Count disagreed with the frames found', registers }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
