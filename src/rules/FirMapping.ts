import { compileGlob, type ProcessMatcher } from './glob.js';
import type { YamlPath } from './yamlPositions.js';

/**
 * What the attributes and metric names of a Fir telemetry drain mean (the rules file's `fir:`
 * section). Heroku's attribute reference could not be read in full
 * (../shared/docs/heroku-fir-telemetry.md §3, §4, §8), so every name is configuration; the
 * defaults are the best evidence found, to be checked against a capture (README, "Fir apps").
 */
export interface FirMapping {
  /** Attributes naming the dyno (`web-12a34b56d-e78f9`), tried in order: record's first, then the resource's. */
  readonly dynoAttributes: readonly string[];
  /** The attribute telling Heroku's own services apart from the app (`service.name`). */
  readonly serviceAttribute: string;
  /** Its values for platform services → the PROCID their records get (source `heroku`). */
  readonly platformServices: ReadonlyMap<string, string>;
  /** Metric-name globs of a dyno's memory in use, its memory limit, and its CPU. */
  readonly memoryUsage: readonly ProcessMatcher[];
  readonly memoryLimit: readonly ProcessMatcher[];
  readonly cpu: readonly ProcessMatcher[];
}

export const FIR_DEFAULTS = Object.freeze({
  dyno_attributes: ['heroku.dyno.name', 'service.instance.id', 'host.name'],
  service_attribute: 'service.name',
  platform_services: { 'heroku-router': 'router', 'heroku-api': 'api' } as Record<string, string>,
  metrics: Object.freeze({
    // Limit first: a name like `memory.usage.limit` is a limit, not a usage.
    memory_limit: ['*memory*limit*', '*memory*quota*'],
    memory_usage: ['*memory*usage*', '*memory*used*', '*memory*total*', '*memory*rss*'],
    cpu: ['*cpu*'],
  }),
});

export interface RawFir {
  dyno_attributes?: string[] | undefined;
  service_attribute?: string | undefined;
  platform_services?: Record<string, string> | undefined;
  metrics?: { memory_usage?: string[] | undefined; memory_limit?: string[] | undefined; cpu?: string[] | undefined } | undefined;
}

export function compileFirMapping(raw: RawFir | undefined, fail: (path: YamlPath, message: string) => void): FirMapping {
  const globs = (key: 'memory_usage' | 'memory_limit' | 'cpu'): ProcessMatcher[] => {
    const list = raw?.metrics?.[key] ?? FIR_DEFAULTS.metrics[key];
    const out: ProcessMatcher[] = [];
    list.forEach((g, i) => {
      const c = compileGlob(g);
      if (c.error) fail(['fir', 'metrics', key, i], `bad metric-name glob ${JSON.stringify(g)}: use [A-Za-z0-9._-] with * and ? wildcards`);
      else out.push(c.matcher!);
    });
    return out;
  };
  return Object.freeze({
    dynoAttributes: Object.freeze([...(raw?.dyno_attributes ?? FIR_DEFAULTS.dyno_attributes)]),
    serviceAttribute: raw?.service_attribute ?? FIR_DEFAULTS.service_attribute,
    platformServices: new Map(Object.entries(raw?.platform_services ?? FIR_DEFAULTS.platform_services)),
    memoryUsage: Object.freeze(globs('memory_usage')),
    memoryLimit: Object.freeze(globs('memory_limit')),
    cpu: Object.freeze(globs('cpu')),
  });
}
