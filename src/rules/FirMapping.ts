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
  /**
   * The memory limit (MB, as Heroku writes MB: MiB) of a process type's dynos when no
   * memory-limit metric arrives for a sample; `*` for every other type. Empty by default: the
   * limit is then unknown, rules comparing with `sample#memory_quota` cannot fire, and the leak
   * report says "quota unknown" rather than guess a dyno size.
   */
  readonly memoryQuota: ReadonlyMap<string, number>;
}

/** The fallback limit of a dyno's process type, else `*`'s, else undefined. */
export function fallbackQuotaMb(fir: FirMapping, processType: string): number | undefined {
  return fir.memoryQuota.get(processType) ?? fir.memoryQuota.get('*');
}

const SIZE = /^(\d{1,6}(?:\.\d{1,3})?)\s?(MB|GB)$/i;
/** A Fir dyno size name ends in its memory: `dyno-1c-0.5gb`, `dyno-2c-4gb` (research notes §4, unconfirmed list). */
const FIR_SIZE = /^dyno-\d{1,3}c-(\d{1,4}(?:\.\d{1,3})?)gb$/i;

/** `512MB`, `1GB`, `1.5 GB` or a Fir size name → MB (1 GB = 1024 MB, as Heroku's quotas: 512MB, 1024MB). */
export function quotaMbOf(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  const f = m ? undefined : FIR_SIZE.exec(text.trim());
  const mb = m ? Number(m[1]) * (m[2]!.toUpperCase() === 'GB' ? 1024 : 1) : f ? Number(f[1]) * 1024 : undefined;
  return mb !== undefined && mb >= 1 && mb <= 1_048_576 ? Math.round(mb * 100) / 100 : undefined;
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
  memory_quota: {} as Record<string, string>,
});

export interface RawFir {
  dyno_attributes?: string[] | undefined;
  service_attribute?: string | undefined;
  platform_services?: Record<string, string> | undefined;
  metrics?: { memory_usage?: string[] | undefined; memory_limit?: string[] | undefined; cpu?: string[] | undefined } | undefined;
  memory_quota?: Record<string, string> | undefined;
}

const PROCESS_TYPE = /^[a-z](?:[a-z0-9_-]{0,62}[a-z0-9_])?$/;

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
  const memoryQuota = new Map<string, number>();
  for (const [type, size] of Object.entries(raw?.memory_quota ?? FIR_DEFAULTS.memory_quota)) {
    if (type !== '*' && !PROCESS_TYPE.test(type)) {
      fail(['fir', 'memory_quota', type], `process type ${JSON.stringify(type)}: expected a process type (web, node-worker) or "*"`);
      continue;
    }
    const mb = quotaMbOf(size);
    if (mb === undefined) fail(['fir', 'memory_quota', type], `memory limit ${JSON.stringify(size)}: expected a size like 512MB or 1GB, or a Fir dyno size like dyno-2c-4gb`);
    else memoryQuota.set(type, mb);
  }
  return Object.freeze({
    dynoAttributes: Object.freeze([...(raw?.dyno_attributes ?? FIR_DEFAULTS.dyno_attributes)]),
    serviceAttribute: raw?.service_attribute ?? FIR_DEFAULTS.service_attribute,
    platformServices: new Map(Object.entries(raw?.platform_services ?? FIR_DEFAULTS.platform_services)),
    memoryUsage: Object.freeze(globs('memory_usage')),
    memoryLimit: Object.freeze(globs('memory_limit')),
    cpu: Object.freeze(globs('cpu')),
    memoryQuota,
  });
}
