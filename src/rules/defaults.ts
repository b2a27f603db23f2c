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
});

/** Upper bounds that keep one rule from holding unbounded state in Redis. */
export const RULE_BOUNDS = Object.freeze({
  maxThresholdCount: 1000,
  maxWithinMs: 7 * 86_400_000,
  maxCooldownMs: 30 * 86_400_000,
  /** Trigger lines kept per firing (SPEC §6). */
  maxTriggerLines: 20,
  /** Bytes of one trigger line kept (SPEC §6: line ≤ 64 KiB kept). */
  maxLineBytes: 64 * 1024,
});
