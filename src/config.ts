import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { MalletError } from './errors.js';

/**
 * The environment (SPEC §2), read once at the edge and passed inward frozen. Every problem is
 * collected and reported together, each saying what to set.
 */
export interface Config {
  readonly port: number;
  readonly host: string;
  /** Undefined: start the embedded redis-server (src/server/embeddedRedis.ts). */
  readonly redisUrl: string | undefined;
  readonly redisTlsInsecure: boolean;
  /** MALLET_REDIS_CLUSTER=1: REDIS_URL names seed nodes of a Redis Cluster. */
  readonly redisCluster: boolean;
  readonly rulesPath: string;
  /** True when MALLET_RULES was unset and config/rules.yml is absent, so the example is used. */
  readonly rulesFromExample: boolean;
  readonly metricsPassword: string | undefined;
  readonly drainPassword: string | undefined;
  readonly adminPassword: string | undefined;
  readonly herokuApiToken: string | undefined;
  readonly herokuApiUrl: string;
  readonly syslogPort: number | undefined;
  readonly syslogTlsCert: string | undefined;
  readonly syslogTlsKey: string | undefined;
  readonly logentriesUser: string | undefined;
  readonly logentriesPassword: string | undefined;
  readonly papertrailToken: string | undefined;
  readonly webhookSecret: string | undefined;
  readonly dryRun: boolean;
  /** `MALLET_OTLP_CAPTURE`: folder receiving each OTLP request as JSON (bounded); undefined: off. */
  readonly otlpCaptureDir: string | undefined;
  /**
   * MALLET_WORKER (default 1): `mallet serve` runs the action worker in-process. 0 when
   * `mallet worker` processes (a Procfile `worker:` dyno) run the jobs apart from ingest.
   */
  readonly inProcessWorker: boolean;
  /**
   * WEB_CONCURRENCY (Heroku's convention, set per dyno size): how many HTTP processes
   * `mallet serve` runs. Undefined: 1. Needs REDIS_URL (the embedded Redis serves one process).
   */
  readonly webConcurrency: number | undefined;
  /** MALLET_LOG_FORMAT: `pretty` (readable lines) or `json`; default pretty on a terminal, else JSON. */
  readonly logFormat: 'pretty' | 'json' | undefined;
  readonly logLevel: string;
  readonly production: boolean;
  /** Prefix of mallet's own Redis keys (tests isolate by it). */
  readonly keyPrefix: string;
  /** BullMQ prefix; the queue's keys are `<queuePrefix>:mallet-actions:*`. */
  readonly queuePrefix: string;
  /** Rebalancing: `Connection: close` after this many requests on one connection (0: never). */
  readonly connectionMaxRequests: number;
  /** … or once a connection is this old (ms; 0: never). */
  readonly connectionMaxAgeMs: number;
  /** The whole environment, for `${VAR}` references in the rules file and job data. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const problems: string[] = [];
  const str = (name: string) => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const port = (name: string, fallback?: number) => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n > 65535) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected a TCP port number (0-65535; 0 picks a free one)`);
      return fallback;
    }
    return n;
  };
  const flag = (name: string) => {
    const raw = str(name);
    if (raw === undefined || raw === '0' || raw === 'false') return false;
    if (raw === '1' || raw === 'true') return true;
    problems.push(`${name}=${JSON.stringify(raw)}: expected 1 or 0`);
    return false;
  };

  const count = (name: string, fallback: number) => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected a whole number (0 turns it off)`);
      return fallback;
    }
    return Number(raw);
  };

  const redisUrl = str('REDIS_URL');
  const redisCluster = flag('MALLET_REDIS_CLUSTER');
  if (redisCluster) {
    // Seed nodes: any one master is enough (the client asks it for the rest); more survive one being down.
    if (redisUrl === undefined) problems.push('MALLET_REDIS_CLUSTER=1 needs REDIS_URL: one or more comma-separated redis:// URLs of cluster nodes');
    else if (!redisUrl.split(',').every((u) => /^rediss?:\/\/[^/,]+/.test(u.trim()))) {
      problems.push('REDIS_URL: with MALLET_REDIS_CLUSTER=1, expected comma-separated redis:// or rediss:// URLs of cluster nodes');
    }
  } else if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push('REDIS_URL: expected a redis:// or rediss:// URL');
  }
  const keyPrefix = str('MALLET_KEY_PREFIX') ?? 'mallet';
  if (/[{}]/.test(keyPrefix)) problems.push('MALLET_KEY_PREFIX: must not contain { or } (mallet adds its own hash tags for Redis Cluster)');
  // BullMQ on a cluster needs every key of the queue in one slot: its prefix must be hash-tagged.
  const queuePrefix = str('MALLET_QUEUE_PREFIX') ?? (redisCluster ? '{bull}' : 'bull');
  if (redisCluster && !/\{[^}]+\}/.test(queuePrefix)) {
    problems.push(`MALLET_QUEUE_PREFIX=${JSON.stringify(queuePrefix)}: on a Redis Cluster it must contain a hash tag, e.g. {bull}`);
  }

  let rulesPath = str('MALLET_RULES');
  let rulesFromExample = false;
  if (rulesPath === undefined) {
    rulesPath = resolve(cwd, 'config/rules.yml');
    if (!existsSync(rulesPath)) {
      rulesPath = resolve(cwd, 'config/rules.example.yml');
      rulesFromExample = true;
    }
  } else {
    rulesPath = resolve(cwd, rulesPath);
  }

  const herokuApiUrl = (str('HEROKU_API_URL') ?? 'https://api.heroku.com').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(herokuApiUrl)) problems.push('HEROKU_API_URL: expected an http(s):// URL');

  const logLevel = str('LOG_LEVEL') ?? 'info';
  if (!LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL=${JSON.stringify(logLevel)}: expected one of ${LEVELS.join(', ')}`);

  const syslogTlsCert = str('MALLET_SYSLOG_TLS_CERT');
  const syslogTlsKey = str('MALLET_SYSLOG_TLS_KEY');
  if ((syslogTlsCert === undefined) !== (syslogTlsKey === undefined)) {
    problems.push('MALLET_SYSLOG_TLS_CERT and MALLET_SYSLOG_TLS_KEY go together: set both or neither');
  }
  for (const [name, path] of [['MALLET_SYSLOG_TLS_CERT', syslogTlsCert], ['MALLET_SYSLOG_TLS_KEY', syslogTlsKey]] as const) {
    if (path !== undefined && !existsSync(path)) problems.push(`${name}: no such file ${path}`);
  }

  const production = env.NODE_ENV === 'production';
  const drainPassword = str('MALLET_DRAIN_PASSWORD');
  if (production && drainPassword === undefined) {
    problems.push('MALLET_DRAIN_PASSWORD is required when NODE_ENV=production (drains would be open to anyone)');
  }
  for (const name of ['MALLET_DRAIN_PASSWORD', 'MALLET_ADMIN_PASSWORD', 'MALLET_METRICS_PASSWORD']) {
    const v = str(name);
    if (v !== undefined && v.length < 8) problems.push(`${name}: use at least 8 characters`);
  }
  if (drainPassword?.includes(':')) {
    problems.push('MALLET_DRAIN_PASSWORD must not contain ":" (logplex splits the drain URL userinfo on it)');
  }

  const workerRaw = str('MALLET_WORKER');
  if (workerRaw !== undefined && workerRaw !== '0' && workerRaw !== '1') problems.push(`MALLET_WORKER=${JSON.stringify(workerRaw)}: expected 1 (serve runs the action worker too) or 0 (only mallet worker processes run jobs)`);
  const concurrencyRaw = str('WEB_CONCURRENCY');
  if (concurrencyRaw !== undefined && !(/^\d+$/.test(concurrencyRaw) && Number(concurrencyRaw) >= 1 && Number(concurrencyRaw) <= 64)) {
    problems.push(`WEB_CONCURRENCY=${JSON.stringify(concurrencyRaw)}: expected a whole number from 1 to 64 (HTTP processes of mallet serve)`);
  }
  const logFormat = str('MALLET_LOG_FORMAT');
  if (logFormat !== undefined && logFormat !== 'pretty' && logFormat !== 'json') problems.push(`MALLET_LOG_FORMAT=${JSON.stringify(logFormat)}: expected pretty or json`);

  const config: Config = {
    port: port('PORT', 3000)!,
    host: str('HOST') ?? '0.0.0.0',
    redisUrl,
    redisTlsInsecure: flag('REDIS_TLS_INSECURE'),
    redisCluster,
    rulesPath,
    rulesFromExample,
    metricsPassword: str('MALLET_METRICS_PASSWORD'),
    drainPassword,
    adminPassword: str('MALLET_ADMIN_PASSWORD'),
    herokuApiToken: str('HEROKU_API_TOKEN'),
    herokuApiUrl,
    syslogPort: port('MALLET_SYSLOG_PORT'),
    syslogTlsCert,
    syslogTlsKey,
    logentriesUser: str('MALLET_LOGENTRIES_USER'),
    logentriesPassword: str('MALLET_LOGENTRIES_PASSWORD'),
    papertrailToken: str('MALLET_PAPERTRAIL_TOKEN'),
    webhookSecret: str('MALLET_WEBHOOK_SECRET'),
    dryRun: flag('MALLET_DRY_RUN'),
    otlpCaptureDir: str('MALLET_OTLP_CAPTURE') === undefined ? undefined : resolve(cwd, str('MALLET_OTLP_CAPTURE')!),
    inProcessWorker: workerRaw !== '0',
    webConcurrency: concurrencyRaw !== undefined && /^\d+$/.test(concurrencyRaw) ? Number(concurrencyRaw) : undefined,
    logFormat: logFormat === 'pretty' || logFormat === 'json' ? logFormat : undefined,
    logLevel,
    production,
    keyPrefix,
    queuePrefix,
    connectionMaxRequests: count('MALLET_CONNECTION_MAX_REQUESTS', 1000),
    connectionMaxAgeMs: count('MALLET_CONNECTION_MAX_AGE', 300) * 1000,
    env: Object.freeze({ ...env }),
  };
  if (problems.length > 0) {
    throw new MalletError('MALLET_CONFIG_INVALID', `invalid environment:\n  ${problems.join('\n  ')}`, problems);
  }
  return Object.freeze(config);
}
