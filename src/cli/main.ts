import { readFileSync } from 'node:fs';
import type { CliIo } from './CliIo.js';

const USAGE = `mallet — Heroku log drain that remediates memory leaks gracefully

Usage:
  mallet serve                     HTTP drain + syslog listener + action worker (what npm start runs)
  mallet worker                    the action worker alone
  mallet check [--allow-unset-env] [RULES]
                                   validate a rules file (exit 1 with file:line:col: message lines)
  mallet test TESTS.yml            run rule unit tests
  mallet replay FILE [--app NAME] [--rules RULES] [--explain]
                                   run a captured log through the rules and limits, as the service would
                                   (--report [--since 7d] [--json]: print its leak report instead)
  mallet report --app NAME [--since 7d] [--json]
                                   the leak report the service keeps in Redis
  mallet explain --app APP --rule RULE --target TARGET
                                   why a rule did (or did not) act on a target, from the live state
  mallet silence add --app APP [--rule RULE] [--target GLOB] --for 2h --comment "why" [--force]
  mallet silence list | mallet silence expire ID
  mallet --version

Environment: see README.md (PORT, REDIS_URL, MALLET_RULES, MALLET_DRAIN_PASSWORD, ...).
Exit codes: 0 ok, 1 failure (invalid rules, failed tests), 2 usage error.
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
      if (rest.includes('--report')) {
        const { runReplayReport } = await import('./replayReport.js');
        return runReplayReport(rest, io);
      }
      const { runReplay } = await import('./replay.js');
      return runReplay(rest, io);
    }
    case 'report': {
      const { runReport } = await import('./report.js');
      return runReport(rest, io);
    }
    case 'explain': {
      const { runExplain } = await import('./explain.js');
      return runExplain(rest, io);
    }
    case 'silence': {
      const { runSilence } = await import('./silence.js');
      return runSilence(rest, io);
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
      if (command === undefined) {
        io.stderr.write(USAGE);
        return 2;
      }
      io.stdout.write(USAGE);
      return 0;
    default:
      io.stderr.write(`mallet: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

const isEntry = process.argv[1] !== undefined && /(?:mallet(?:\.js)?|main\.[jt]s)$/.test(process.argv[1]);
if (isEntry) {
  const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
  // Let stdout drain before exiting (piped output of check/replay).
  process.stdout.write('', () => process.exit(code));
}
