import { systemClock } from '../clock.js';
import { explain, explainText } from '../console/explain.js';
import { SilenceStore } from '../console/silenceStore.js';
import type { CliIo } from './CliIo.js';
import { openConsole, parseFlags } from './consoleContext.js';

const USAGE = 'Usage: mallet explain --app APP --rule RULE --target TARGET [--line LINE] [--json]\n';

/** `mallet explain`: why a rule did or did not act on a target, from the configured Redis. */
export async function runExplain(argv: string[], io: CliIo): Promise<number> {
  const { flags, error } = parseFlags(argv, ['app', 'rule', 'target', 'line'], ['json']);
  const missing = ['app', 'rule', 'target'].find((f) => !flags.has(f));
  if (error || missing) {
    io.stderr.write(`mallet explain: ${error ?? `--${missing} is required`}\n${USAGE}`);
    return 2;
  }
  const ctx = await openConsole(io);
  if (typeof ctx === 'string') {
    io.stderr.write(`mallet explain: ${ctx}\n`);
    return 1;
  }
  try {
    const silences = await new SilenceStore(ctx.redis, ctx.keys, systemClock).active();
    const e = await explain(ctx.redis, ctx.keys, ctx.ruleSet, silences, { app: flags.get('app')!, rule: flags.get('rule')!, target: flags.get('target')!, ...(flags.has('line') ? { line: flags.get('line')! } : {}) }, systemClock());
    io.stdout.write(flags.has('json') ? JSON.stringify(e, null, 2) + '\n' : explainText(e));
    return e.verdict === 'unknown-rule' ? 1 : 0;
  } finally {
    await ctx.close();
  }
}
