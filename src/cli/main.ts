import { readFileSync } from 'node:fs';
import type { CliIo } from './CliIo.js';

const USAGE = `mallet — Heroku log drain that remediates memory leaks gracefully

Usage:
  mallet serve                     HTTP drain + syslog listener + action worker (what npm start runs)
  mallet worker                    the action worker alone
  mallet check [RULES]             validate a rules file (exit 1 with file:line:col: message lines)
  mallet test TESTS.yml            run rule unit tests
  mallet replay FILE [--app NAME] [--rules RULES]
                                   run a captured log through the rules in dry-run
                                   (--report [--since 7d] [--json]: print its leak report)
  mallet report --app NAME [--since 7d] [--json]
                                   the leak report the service keeps in Redis
  mallet --version

Environment: see README.md (PORT, REDIS_URL, MALLET_RULES, MALLET_DRAIN_PASSWORD, ...).
`;

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
    case 'worker': {
      const { runServe } = await import('./serve.js');
      return runServe(command, io);
    }
    case 'check': {
      const { runCheck } = await import('./check.js');
      return runCheck(rest, io);
    }
    case 'test': {
      const { runTest } = await import('./test.js');
      return runTest(rest, io);
    }
    case 'replay': {
      const { runReplay } = await import('./replay.js');
      return runReplay(rest, io);
    }
    case 'report': {
      const { runReport } = await import('./report.js');
      return runReport(rest, io);
    }
    case '--version':
    case '-v': {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
      io.stdout.write(`mallet ${pkg.version}\n`);
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      io.stderr.write(`mallet: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 1;
  }
}

const isEntry = process.argv[1] !== undefined && /(?:mallet(?:\.js)?|main\.[jt]s)$/.test(process.argv[1]);
if (isEntry) {
  const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
  // Let stdout drain before exiting (piped output of check/replay).
  process.stdout.write('', () => process.exit(code));
}
