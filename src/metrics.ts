import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The metric names of SPEC §7, declared once. Each app instance gets its own registry so tests
 * can run several in one process.
 */
export function createMetrics(registry = new Registry(), { defaults = true } = {}) {
  if (defaults) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    linesTotal: new Counter({ name: 'mallet_lines_total', help: 'Log lines received', labelNames: ['app', 'source'] as const, registers }),
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
    logplexCountMismatchTotal: new Counter({ name: 'mallet_logplex_msg_count_mismatch_total', help: 'Bodies whose Logplex-Msg-Count disagreed with the frames found', registers }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
