import { systemClock } from '../clock.js';
import { parseSilenceInput, unknownNames, type Silence } from '../console/Silence.js';
import { SilenceStore } from '../console/silenceStore.js';
import { human } from '../console/explain.js';
import type { CliIo } from './CliIo.js';
import { openConsole, parseFlags } from './consoleContext.js';

const USAGE = `Usage:
  mallet silence add --app APP [--rule RULE] [--target GLOB] --for 2h --comment "why" [--by NAME] [--force]
  mallet silence list [--json]
  mallet silence expire ID
`;

/** `mallet silence add|list|expire`: the same silences as /admin/api/silences, in the configured Redis. */
export async function runSilence(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'add' && sub !== 'list' && sub !== 'expire') {
    io.stderr.write(`mallet silence: expected add, list or expire\n${USAGE}`);
    return 2;
  }
  const parsed = sub === 'add'
    ? parseFlags(rest, ['app', 'rule', 'target', 'for', 'comment', 'by'], ['force'])
    : sub === 'list' ? parseFlags(rest, [], ['json']) : { flags: new Map<string, string>(), ...(rest.length === 1 ? {} : { error: 'expected one silence id' }) };
  if (parsed.error) {
    io.stderr.write(`mallet silence ${sub}: ${parsed.error}\n${USAGE}`);
    return 2;
  }
  const { flags } = parsed;
  let input: ReturnType<typeof parseSilenceInput> | undefined;
  if (sub === 'add') {
    // Checked before connecting: a typo is told at once, with every bad field.
    input = parseSilenceInput({ app: flags.get('app'), rule: flags.get('rule'), target: flags.get('target'), for: flags.get('for'), comment: flags.get('comment'), createdBy: flags.get('by') });
    if (!input.ok) {
      for (const e of input.errors) io.stderr.write(`mallet silence add: --${e.field === 'createdBy' ? 'by' : e.field}: ${e.message}\n`);
      return 2;
    }
  }
  const ctx = await openConsole(io);
  if (typeof ctx === 'string') {
    io.stderr.write(`mallet silence: ${ctx}\n`);
    return 1;
  }
  try {
    const store = new SilenceStore(ctx.redis, ctx.keys, systemClock);
    if (sub === 'add' && input?.ok) {
      const unknown = unknownNames(input.value, { apps: ctx.ruleSet.apps ? new Set(ctx.ruleSet.apps.keys()) : undefined, rules: new Set(ctx.ruleSet.rules.map((r) => r.name)) });
      if (unknown.length > 0 && !flags.has('force')) {
        for (const u of unknown) io.stderr.write(`mallet silence add: --${u.field}: ${u.message} (add --force to silence it anyway)\n`);
        return 2;
      }
      for (const u of unknown) io.stderr.write(`warning: ${u.message}; added anyway (--force)\n`);
      const s = await store.add(input.value);
      if (s === 'full') {
        io.stderr.write('mallet silence add: too many active silences: expire some first\n');
        return 1;
      }
      io.stdout.write(`${s.id}\n`);
      io.stderr.write(`silenced ${describe(s)} until ${new Date(s.endsAt).toISOString()}\n`);
      return 0;
    }
    if (sub === 'list') {
      const list = await store.active();
      if (flags.has('json')) io.stdout.write(JSON.stringify(list, null, 2) + '\n');
      else if (list.length === 0) io.stdout.write('no active silences\n');
      else for (const s of list) io.stdout.write(`${s.id}  ${describe(s)}  until ${new Date(s.endsAt).toISOString()} (${human(s.endsAt - Date.now())} left)  ${s.createdBy ? `by ${s.createdBy}  ` : ''}${JSON.stringify(s.comment)}\n`);
      return 0;
    }
    const id = rest[0]!;
    if (!(await store.expire(id))) {
      io.stderr.write(`mallet silence expire: no active silence ${JSON.stringify(id.slice(0, 40))}\n`);
      return 1;
    }
    io.stdout.write(`expired ${id}\n`);
    return 0;
  } finally {
    await ctx.close();
  }
}

function describe(s: Silence): string {
  return `app ${s.app}, ${s.rule ? `rule ${s.rule}` : 'every rule'}, ${s.target ? `target ${s.target}` : 'every target'}`;
}
