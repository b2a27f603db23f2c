import { loadConfig, type Config } from '../config.js';
import { HEROKU_APP_NAME } from '../herokuAppName.js';
import { redisKeys } from '../keys.js';
import { connectRedis } from '../redisClient.js';
import { RedisDynoStore } from '../dynos/dynoScript.js';
import { RedisSuspectStore } from '../dynos/SuspectStore.js';
import { DEFAULT_SINCE, leakReport, renderReport, sinceMs } from '../dynos/reportIo.js';
import type { CliIo } from './CliIo.js';
import { cliRedisTarget } from './consoleContext.js';

const USAGE = 'usage: mallet report --app NAME [--since 7d] [--json]\n';

/** `mallet report`: the leak report the service keeps in its Redis (REDIS_URL, else the embedded one `npm start` runs here; MALLET_KEY_PREFIX). */
export async function runReport(argv: string[], io: CliIo): Promise<number> {
  let app: string | undefined;
  let since = DEFAULT_SINCE;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--app' && argv[i + 1]) app = argv[++i]!;
    else if (a === '--since' && argv[i + 1]) since = argv[++i]!;
    else if (a === '--json') json = true;
    else { io.stderr.write(USAGE); return 2; }
  }
  if (!app || !HEROKU_APP_NAME.test(app)) { io.stderr.write(USAGE); return 2; }
  const window = sinceMs(since);
  if (window === undefined) { io.stderr.write(`--since ${JSON.stringify(since)}: expected a duration like 7d or 12h\n`); return 2; }
  let config: Config;
  try {
    config = loadConfig(io.env, io.cwd);
  } catch (err) {
    io.stderr.write(`mallet: ${(err as Error).message}\n`);
    return 1;
  }
  const target = cliRedisTarget(config, io.cwd);
  if (typeof target !== 'string') {
    io.stderr.write(`mallet report: ${target.error}\n`);
    return 1;
  }
  const redis = connectRedis(target, { tlsInsecure: config.redisTlsInsecure, maxRetriesPerRequest: 1, connectionName: 'mallet-report' });
  redis.on('error', () => {});
  try {
    const keys = redisKeys(config.keyPrefix);
    const report = await leakReport(new RedisDynoStore(redis, keys), app, window, new RedisSuspectStore(redis, keys));
    io.stdout.write(renderReport(report, json));
    return 0;
  } catch (err) {
    io.stderr.write(`mallet report: ${(err as Error).message}\n`);
    return 1;
  } finally {
    redis.disconnect();
  }
}
