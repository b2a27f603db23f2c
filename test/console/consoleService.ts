import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { startService, type Service } from '../../src/server/service.js';
import { basic, drainLine, frame, postDrain } from '../support/drainClient.js';
import { testRedisUrl, uniquePrefix } from '../support/redis.js';
import { tempRulesFile } from '../support/rulesFile.js';

export const DRAIN = 'drain-secret-console';
export const ADMIN = 'admin-secret-console';

/** A running `mallet serve` (HTTP, worker) on its own prefixes, with the admin password set. */
export async function consoleService(rulesYaml: string, shared?: { prefix: string; queuePrefix: string; dir: string; file: string }) {
  const prefix = shared?.prefix ?? uniquePrefix('con');
  const queuePrefix = shared?.queuePrefix ?? uniquePrefix('conq');
  const { file, dir } = shared ?? tempRulesFile(rulesYaml);
  const config = loadConfig({
    REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: queuePrefix, PORT: '0', HOST: '127.0.0.1',
    MALLET_DRAIN_PASSWORD: DRAIN, MALLET_ADMIN_PASSWORD: ADMIN, MALLET_RULES: file, LOG_LEVEL: 'silent',
  }, dir);
  const service: Service = await startService({ config, logger: pino({ level: 'silent' }) });
  return { service, prefix, queuePrefix, file, dir, url: service.url! };
}

let seq = 0;
/** Posts heroku lines for `app` as one logplex frame with its own (or the given) frame id. */
export async function post(url: string, app: string, lines: Array<[proc: string, text: string]>, frameId = `F${Date.now()}${seq++}`): Promise<number> {
  const body = frame(...lines.map(([proc, text]) => drainLine('heroku', proc, text)));
  const res = await postDrain(url, app, body, { password: DRAIN, headers: { 'Logplex-Frame-Id': frameId, 'Logplex-Msg-Count': String(lines.length) } });
  return res.status;
}

/** JSON answers are read by shape in the assertions. */
// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field by the tests
type Json = any;

export async function adminGet(url: string, path: string): Promise<{ status: number; json: Json; text: string }> {
  const res = await fetch(url + path, { headers: { Authorization: basic(ADMIN) } });
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

export async function adminSend(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(url + path, {
    method, headers: { Authorization: basic(ADMIN), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}
