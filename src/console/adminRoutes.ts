import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.js';
import { ACTION_QUEUE, type RedisKeys } from '../keys.js';
import { requirePassword } from '../basicAuth.js';
import type { CompiledRuleSet } from '../rules/CompiledRule.js';
import { HEROKU_APP_NAME } from '../herokuAppName.js';
import { explain } from './explain.js';
import { historyApps, parseHistoryQuery, readHistory } from './history.js';
import type { RulesStatus } from './RulesStatus.js';
import { parseSilenceInput, unknownNames, type FieldError } from './Silence.js';
import type { SilenceStore } from './silenceStore.js';
import { readDayStats } from './stats.js';
import { renderStatusPage, type StatusSection } from './statusPage.js';

export const ADMIN_PATH = '/admin';

export interface AdminRoutesOptions {
  readonly password: string;
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly getRuleSet: () => CompiledRuleSet;
  readonly getRulesStatus: () => RulesStatus;
  readonly silences: SilenceStore;
  readonly clock: Clock;
  /** Where bull-board is mounted (jobs link there). */
  readonly queuesPath: string;
  /** More sections of the status page, from other parts of mallet (rendered last, in order). */
  readonly sections?: () => Promise<readonly StatusSection[]>;
}

const RULE = /^[a-z0-9-]{1,64}$/;
const TARGET = /^[A-Za-z0-9:._-]{1,200}$/;

/**
 * The operator's console (SPEC §3 `/admin`): the status page and its JSON API, behind the same
 * basic auth as /admin/queues and registered only when that is on.
 */
export async function adminRoutes(app: FastifyInstance, opts: AdminRoutesOptions) {
  app.addHook('onRequest', requirePassword(opts.password, 'mallet admin'));
  const bad = (field: string, message: string, errors: readonly FieldError[] = [{ field, message }]) => ({ error: 'bad_request', field, message: `${field}: ${message}`, errors });
  const jobUrl = (id: string) => `${opts.queuesPath}/queue/${ACTION_QUEUE}/${encodeURIComponent(id)}`;

  app.get(ADMIN_PATH, async (_req, reply) => {
    const now = opts.clock();
    const ruleSet = opts.getRuleSet();
    const apps = await historyApps(opts.redis, opts.keys, ruleSet.apps?.keys());
    const [stats, history, silences, sections] = await Promise.all([
      readDayStats(opts.redis, opts.keys, apps, now),
      readHistory(opts.redis, opts.keys, { limit: 50 }, apps),
      opts.silences.active(),
      opts.sections?.() ?? Promise.resolve([]),
    ]);
    const html = renderStatusPage({
      now, rules: opts.getRulesStatus(), ruleNames: ruleSet.rules.map((r) => r.name), stats, recent: history.records, silences,
      jobUrl, queuesUrl: opts.queuesPath, sections,
    });
    return reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-store').send(html);
  });
  // /admin/ with the slash: the page's relative links (api/…) resolve under /admin/ either way.
  app.get(`${ADMIN_PATH}/`, async (_req, reply) => reply.redirect(ADMIN_PATH));

  app.get(`${ADMIN_PATH}/api/firings`, async (req, reply) => {
    const parsed = parseHistoryQuery(req.query as Record<string, unknown>);
    if (!parsed.ok) return reply.code(400).send(bad(parsed.parameter, parsed.message));
    const page = await readHistory(opts.redis, opts.keys, parsed.filter, await historyApps(opts.redis, opts.keys, opts.getRuleSet().apps?.keys()));
    return { firings: page.records.map((r) => ({ ...r, at: new Date(r.at).toISOString(), last: new Date(r.last).toISOString(), ...(r.job ? { jobUrl: jobUrl(r.job) } : {}) })), ...(page.next ? { next: page.next } : {}) };
  });

  app.get(`${ADMIN_PATH}/api/explain`, async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const checks: Array<[string, RegExp, string]> = [['app', HEROKU_APP_NAME, 'a Heroku app name'], ['rule', RULE, 'a rule name'], ['target', TARGET, 'a target (web.3)']];
    for (const [name, re, what] of checks) {
      const v = q[name];
      if (typeof v !== 'string' || !re.test(v)) return reply.code(400).send(bad(name, v === undefined ? 'is required' : `expected ${what}`));
    }
    // `line`: a `heroku logs` line to judge (its grace); as long as a line may be (64 KiB).
    const line = q.line;
    if (line !== undefined && (typeof line !== 'string' || line.length > 65_536)) return reply.code(400).send(bad('line', 'expected one `heroku logs` line, at most 64 KiB'));
    const e = await explain(opts.redis, opts.keys, opts.getRuleSet(), await opts.silences.active(), { app: q.app as string, rule: q.rule as string, target: q.target as string, ...(line !== undefined ? { line } : {}) }, opts.clock());
    return e;
  });

  app.get(`${ADMIN_PATH}/api/silences`, async () => ({ silences: await opts.silences.active() }));

  app.post(`${ADMIN_PATH}/api/silences`, async (req, reply) => {
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return reply.code(400).send(bad('body', 'expected a JSON object {app, rule?, target?, for, comment, force?}'));
    const input = body as Record<string, unknown>;
    const known = ['app', 'rule', 'target', 'for', 'comment', 'createdBy', 'force'];
    const unknownField = Object.keys(input).find((k) => !known.includes(k));
    if (unknownField) return reply.code(400).send(bad(unknownField, `unknown field (known: ${known.join(', ')})`));
    if (input.force !== undefined && typeof input.force !== 'boolean') return reply.code(400).send(bad('force', 'expected true or false'));
    const parsed = parseSilenceInput(input);
    if (!parsed.ok) return reply.code(400).send(bad(parsed.errors[0]!.field, parsed.errors[0]!.message, parsed.errors));
    const ruleSet = opts.getRuleSet();
    const unknown = unknownNames(parsed.value, { apps: ruleSet.apps ? new Set(ruleSet.apps.keys()) : undefined, rules: new Set(ruleSet.rules.map((r) => r.name)) });
    if (unknown.length > 0 && input.force !== true) {
      return reply.code(400).send(bad(unknown[0]!.field, `${unknown[0]!.message}; send "force": true to add it anyway`, unknown));
    }
    const silence = await opts.silences.add(parsed.value);
    if (silence === 'full') return reply.code(409).send({ error: 'too_many_silences', message: 'too many active silences: expire some first' });
    if (unknown.length > 0) req.log.warn({ silence: silence.id, warnings: unknown.map((u) => u.message) }, 'silence added for an unknown app or rule (forced)');
    return reply.code(201).send({ silence, warnings: unknown.map((u) => u.message) });
  });

  app.delete(`${ADMIN_PATH}/api/silences/:id`, async (req, reply) => {
    const { id } = req.params as { id: string };
    if (!(await opts.silences.expire(id))) return reply.code(404).send({ error: 'not_found', message: `no active silence ${id.slice(0, 40)}` });
    return reply.code(204).send();
  });
}
