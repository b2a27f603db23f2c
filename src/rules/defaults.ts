/** Every default of the rules file, in one place (SPEC §4, §5). */
export const RULE_DEFAULTS = Object.freeze({
  source: 'heroku' as const,
  target: '{{process}}',
  thresholdCount: 1,
  thresholdWithin: '1m',
  cooldown: '10m',
  stopKey: 'puma::stop::{{target}}',
  stopKeyValue: '{{rule}}',
  stopKeyTtl: '60s',
  sidekiqHostname: '{{target}}',
  quietTimeout: '5m',
  stopTimeout: '1m',
  herokuRestartScope: 'dyno' as const,
  herokuRestartDyno: '{{target}}',
  notifyText: 'mallet: rule {{rule}} fired for {{app}} {{target}}: {{message}}',
  /** A predict rule's line is a metrics sample: the forecast says more than the line. */
  predictNotifyText: 'mallet: rule {{rule}} fired for {{app}} {{target}}: {{prediction}}',
});

/** Upper bounds that keep one rule from holding unbounded state in Redis. */
export const RULE_BOUNDS = Object.freeze({
  maxThresholdCount: 1000,
  maxWithinMs: 7 * 86_400_000,
  maxCooldownMs: 30 * 86_400_000,
  /** `grace.after_start` / `after_release`: a boot or a deploy is minutes, not hours. */
  maxGraceMs: 3_600_000,
  /** Trigger lines kept per firing (SPEC §6). */
  maxTriggerLines: 20,
  /** Bytes of one trigger line kept (SPEC §6: line ≤ 64 KiB kept). */
  maxLineBytes: 64 * 1024,
});

/**
 * What one drain body, and one app, can make the engine do (issue: a 1 MiB body of R14 lines for
 * 25 000 distinct dynos made 25 000 threshold scripts and 400 000 Redis keys). Votes beyond a
 * rule's count for the same rule, target and time are folded (they could only meet a cooldown or
 * the same firing again), so a real storm over a few dynos costs a few votes whatever its size;
 * only fan-out over many targets meets these bounds, and what they cut is counted
 * (`mallet_votes_dropped_total{reason}`) and logged (rate-limited).
 */
export const WORK_BOUNDS = Object.freeze({
  /** Threshold votes one body may cast, after folding; the targets with the most lines go first. */
  maxVotesPerBody: 1000,
  /** Distinct targets an app may have in play within `targetWindowMs`, across replicas (Redis). */
  maxTargetsPerApp: 500,
  targetWindowMs: 10 * 60_000,
});
