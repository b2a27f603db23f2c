import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '../config.js';
import { redisKeys, type RedisKeys } from '../keys.js';
import { connectRedis } from '../redisClient.js';
import { formatRuleError, loadRules, type CompiledRuleSet } from '../rules/load.js';
import type { CliIo } from './CliIo.js';

/**
 * What `mallet explain` and `mallet silence` work against: the configured Redis (REDIS_URL, else
 * the embedded one `npm start` runs under .mallet/redis) with the configured key prefix, and the
 * configured rules file, so they see exactly what the running service sees.
 */
export interface ConsoleContext {
  readonly config: Config;
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly ruleSet: CompiledRuleSet;
  close(): Promise<void>;
}

/**
 * The Redis a command run beside the service reads: REDIS_URL, else the embedded one that
 * `npm start` runs in this directory (a unix socket, which REDIS_URL cannot name).
 */
export function cliRedisTarget(config: Config, cwd: string): string | { error: string } {
  if (config.redisUrl !== undefined) return config.redisUrl;
  const socket = resolve(cwd, '.mallet/redis/redis.sock');
  if (existsSync(socket)) return socket;
  return { error: 'REDIS_URL is not set and no embedded Redis is running here (.mallet/redis): set REDIS_URL to the Redis mallet serve uses' };
}

export async function openConsole(io: CliIo): Promise<ConsoleContext | string> {
  let config: Config;
  try {
    config = loadConfig(io.env, io.cwd);
  } catch (err) {
    return (err as Error).message;
  }
  const target = cliRedisTarget(config, io.cwd);
  if (typeof target !== 'string') return target.error;
  const rules = await loadRules(config.rulesPath, config.env);
  if (!rules.ok) return `rules file ${config.rulesPath} is invalid:\n${rules.errors.map(formatRuleError).join('\n')}`;
  const redis = connectRedis(target, { tlsInsecure: config.redisTlsInsecure, maxRetriesPerRequest: 1, connectionName: 'mallet-cli' });
  redis.on('error', () => {});
  try {
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    return `cannot reach Redis: ${(err as Error).message}`;
  }
  return {
    config, redis, keys: redisKeys(config.keyPrefix), ruleSet: rules.ruleSet,
    close: async () => { await redis.quit().catch(() => redis.disconnect()); },
  };
}

/** `--name value` flags; a flag given twice, an unknown one or one without its value is an error. */
export function parseFlags(argv: readonly string[], known: readonly string[], booleans: readonly string[] = []): { flags: Map<string, string>; error?: string } {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    if (name === undefined || (!known.includes(name) && !booleans.includes(name))) return { flags, error: `unknown argument ${JSON.stringify(a)}` };
    if (flags.has(name)) return { flags, error: `--${name} given twice` };
    if (booleans.includes(name)) { flags.set(name, 'true'); continue; }
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) return { flags, error: `--${name} needs a value` };
    flags.set(name, v);
    i++;
  }
  return { flags };
}
